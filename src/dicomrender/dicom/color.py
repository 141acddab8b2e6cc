"""Colour images: PALETTE COLOR, RGB and YBR_* to RGB uint8 (PS3.3 C.7.6.3.1.2, C.7.9).

Samples are taken at their stored bit depth and reduced to 8 bits by dropping the low bits
(``value >> (bits - 8)``), the reduction DICOM viewers such as dcmtk use for colour output.
Windowing is not part of the colour path; an explicit window is applied to each channel when the
caller asks for it.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from pydicom.pixels.utils import expand_ybr422

from .. import _reference
from .._types import Window
from ..errors import InvalidDatasetError, PixelDataError, UnsupportedImageError
from .header import ImageInfo
from .luts import palette_tables
from .pixels import read_frames

__all__ = ["render_colour", "ybr_full_to_rgb", "ybr_rct_to_rgb", "to_8bit"]

#: YBR_FULL / YBR_ICT to RGB (PS3.3 C.7.6.3.1.2, the ITU-R BT.601 full-range inverse).
_YBR_TO_RGB = np.array([[1.0, 1.0, 1.0],
                        [0.0, -0.114 * 1.772 / 0.587, 1.772],
                        [1.402, -0.299 * 1.402 / 0.587, 0.0]], dtype=np.float64)


def to_8bit(values: np.ndarray, bits: int) -> np.ndarray:
    """Reduce ``bits``-bit unsigned samples to uint8 by dropping the low bits."""
    values = np.asarray(values)
    if bits > 8:
        values = values >> (bits - 8)
    return np.clip(values, 0, 255).astype(np.uint8)


def ybr_full_to_rgb(ybr: np.ndarray, bits: int = 8) -> np.ndarray:
    """YBR_FULL (and YBR_ICT) samples ``(..., 3)`` to RGB of the same bit depth.

    Chroma is centred at ``2**(bits-1)``; the result is rounded half up and
    clipped to ``0 .. 2**bits - 1``.
    """
    ybr = np.asarray(ybr, dtype=np.float64)
    half = float(1 << (bits - 1))
    centred = ybr - np.array([0.0, half, half])
    rgb = np.floor(centred @ _YBR_TO_RGB + 0.5)
    return np.clip(rgb, 0, (1 << bits) - 1).astype(np.int64)


def ybr_rct_to_rgb(ybr: np.ndarray, bits: int = 8) -> np.ndarray:
    """YBR_RCT samples ``(..., 3)`` to RGB: the inverse reversible colour transform of JPEG 2000.

    ``G = Y - floor((Cb + Cr) / 4)``, ``R = Cr + G``, ``B = Cb + G`` with the
    chroma differences centred at ``2**(bits-1)``.
    """
    ybr = np.asarray(ybr, dtype=np.int64)
    half = 1 << (bits - 1)
    y, cb, cr = ybr[..., 0], ybr[..., 1] - half, ybr[..., 2] - half
    g = y - np.floor_divide(cb + cr, 4)
    rgb = np.stack([cr + g, g, cb + g], axis=-1)
    return np.clip(rgb, 0, (1 << bits) - 1)


def _little_endian(info: ImageInfo) -> bool:
    tsyntax = info.transfer_syntax
    if tsyntax is not None:
        try:
            return bool(tsyntax.is_little_endian)
        except AttributeError:
            pass
    encoding = getattr(info.dataset, "original_encoding", (None, True))
    return encoding[1] is not False


def _explicit_window(rgb: np.ndarray, window, function: Optional[str]) -> np.ndarray:
    center, width = window
    w = Window(center, width, function or "LINEAR")
    return _reference.to_uint8(w.values(rgb.astype(np.float64)), snap=w.snap)


def render_colour(info: ImageInfo, indices: Sequence[int], *, window=None, function: Optional[str] = None,
                  invert: Optional[bool] = None) -> np.ndarray:
    """RGB uint8 ``(len(indices), rows, columns, 3)`` of the frames ``indices`` of a colour image.

    ``window=(center, width)`` windows each channel at its stored bit depth
    (after colour conversion); without it no VOI is applied.
    """
    photometric = info.photometric
    fmt = info.format
    if fmt is None:
        raise UnsupportedImageError(f"{photometric} with {info.pixel_keyword} is not supported",
                                    attribute="PhotometricInterpretation")
    if photometric.startswith("YBR_PARTIAL"):
        raise UnsupportedImageError(f"PhotometricInterpretation {photometric} (retired) is not supported",
                                    attribute="PhotometricInterpretation")
    bits = fmt.bits_stored
    if photometric == "PALETTE COLOR":
        tables, first, table_bits = palette_tables(info.dataset, fmt.signed, _little_endian(info))
        stored = fmt.stored(read_frames(info, indices).words)
        index = np.clip(stored - first, 0, tables.shape[1] - 1)
        rgb = np.stack([tables[c][index] for c in range(3)], axis=-1)
        bits = table_bits
    else:
        samples, photometric = _colour_samples(info, indices)
        if photometric in ("YBR_FULL", "YBR_FULL_422", "YBR_ICT"):
            rgb = ybr_full_to_rgb(samples, bits)
        elif photometric == "YBR_RCT":
            rgb = ybr_rct_to_rgb(samples, bits)
        elif photometric == "RGB":
            rgb = samples
        else:
            raise UnsupportedImageError(f"PhotometricInterpretation {photometric} is not supported",
                                        attribute="PhotometricInterpretation")
    if window is not None:
        out = _explicit_window(rgb, window, function)
    else:
        out = to_8bit(rgb, bits)
    if invert:
        out = 255 - out
    return np.ascontiguousarray(out, dtype=np.uint8)


def _colour_samples(info: ImageInfo, indices) -> Tuple[np.ndarray, str]:
    """Stored samples ``(n, rows, columns, 3)`` and their photometric interpretation; native
    YBR_FULL_422 data (each pair of pixels stored as Y1 Y2 Cb Cr) is expanded to YBR_FULL."""
    fmt = info.format
    assert fmt is not None
    if info.photometric != "YBR_FULL_422" or info.compressed:
        decoded = read_frames(info, indices)
        return fmt.stored(decoded.words), decoded.photometric
    if info.columns % 2:
        raise InvalidDatasetError("YBR_FULL_422 needs an even number of Columns", attribute="Columns")
    value = info.dataset[info.pixel_keyword].value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise PixelDataError(f"{info.pixel_keyword} has no byte value", attribute=info.pixel_keyword)
    dtype = info.word_dtype if _little_endian(info) else info.word_dtype.newbyteorder(">")
    frame_bytes = info.rows * info.columns * 2 * dtype.itemsize
    if len(value) < frame_bytes * info.frames:
        raise PixelDataError(f"{info.pixel_keyword} is truncated for {info.frames} YBR_FULL_422 frame(s)",
                             attribute=info.pixel_keyword)
    frames = []
    for index in indices:
        full = expand_ybr422(bytes(value[index * frame_bytes:(index + 1) * frame_bytes]), fmt.bits_allocated)
        words = np.frombuffer(full, dtype=dtype).reshape(info.rows, info.columns, 3)
        frames.append(fmt.stored(words.astype(words.dtype.newbyteorder("="))))
    return np.stack(frames), "YBR_FULL"
