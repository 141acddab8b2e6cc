"""Colour images: PALETTE COLOR, RGB and YBR_* to RGB uint8 (PS3.3 C.7.6.3.1.2, C.7.9).

Samples are taken at their stored bit depth and reduced to 8 bits by dropping the low bits
(``value >> (bits - 8)``), the reduction DICOM viewers such as dcmtk use for colour output.
Windowing is not part of the colour path; an explicit window is applied to each channel when the
caller asks for it.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence, Tuple

import numpy as np
from pydicom.pixels.utils import expand_ybr422

from .. import _reference
from .._types import StoredFormat, Window
from ..errors import InvalidDatasetError, PixelDataError, UnsupportedImageError
from .header import ImageInfo
from .luts import palette_tables
from .pixels import read_frames

__all__ = ["render_colour", "ybr_full_to_rgb", "ybr_rct_to_rgb", "to_8bit", "BLOCK_PIXELS"]

#: Pixels converted at a time: the float64 temporaries of the colour formulas take ~150 bytes a pixel.
BLOCK_PIXELS = 1 << 18

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
    # the output is allocated once the pixels are read: reading checks them, and max_memory, first
    shape = (len(indices), info.rows, info.columns, 3)
    if photometric == "PALETTE COLOR":
        tables, first, table_bits = palette_tables(info.dataset, fmt.signed, _little_endian(info))
        # every entry converted once: the pixels then only look their colour up
        colours = np.ascontiguousarray(_to_output(tables.T, table_bits, window, function, invert))
        words = read_frames(info, indices).words
        out = np.empty(shape, dtype=np.uint8)
        if fmt.bits_stored <= _PATTERN_BITS:  # and each stored bit pattern's colour once
            table = colours[np.clip(fmt.domain() - first, 0, len(colours) - 1)]
            for block in _blocks(words.shape):
                np.take(table, _patterns(words[block], fmt), axis=0, out=out[block], mode="clip")
        else:
            for block in _blocks(words.shape):
                out[block] = colours[np.clip(fmt.stored(words[block]) - first, 0, len(colours) - 1)]
        return out
    position = 0
    rgb: Optional[np.ndarray] = None
    for words, photometric in _colour_samples(info, indices):
        if photometric not in ("YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "RGB"):
            raise UnsupportedImageError(f"PhotometricInterpretation {photometric} is not supported",
                                        attribute="PhotometricInterpretation")
        if rgb is None:
            rgb = np.empty(shape, dtype=np.uint8)
        target = rgb[position:position + len(words)]
        position += len(words)
        convert = _converter(photometric, fmt, window, function, bool(invert))
        scratch = _Scratch()
        for block in _blocks(words.shape):
            convert(words[block], target[block], scratch)
    assert rgb is not None  # at least one frame
    return rgb


#: Stored bit depths whose samples are converted by a table of every bit pattern (64 K entries at most).
_PATTERN_BITS = 16


class _Scratch:
    """Buffers reused from block to block: a new array per block would pay its page faults every time."""

    def __init__(self) -> None:
        self._buffers: dict = {}

    def get(self, name: str, shape: Tuple[int, ...], dtype) -> np.ndarray:
        size = int(np.prod(shape))
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)


Converter = Callable[[np.ndarray, np.ndarray, _Scratch], None]


def _converter(photometric: str, fmt: StoredFormat, window, function: Optional[str], invert: bool) -> Converter:
    """How a block of words ``(frames, rows, columns, 3)`` becomes uint8 RGB: ``convert(words, out, scratch)``.
    Each way gives the bytes of the formulas above applied to the whole image (see the tests)."""
    bits = fmt.bits_stored
    if photometric == "RGB" and bits <= _PATTERN_BITS:
        # each sample on its own: through the table of its bit patterns
        table = _to_output(fmt.domain(), bits, window, function, invert)
        if fmt.bits_allocated == 8 and np.array_equal(table, np.arange(256)):
            return lambda words, out, scratch: np.copyto(out, words, casting="unsafe")

        def look_up(words: np.ndarray, out: np.ndarray, scratch: _Scratch) -> None:
            np.take(table, _patterns(words, fmt), out=out, mode="clip")

        return look_up
    if window is None and bits <= 16 and photometric != "RGB":
        convert = _ybr_rct_to_8bit if photometric == "YBR_RCT" else _ybr_full_to_8bit
        return lambda words, out, scratch: convert(words, out, fmt, invert, scratch)

    def generic(words: np.ndarray, out: np.ndarray, scratch: _Scratch) -> None:
        rgb = fmt.stored(words)
        if photometric == "YBR_RCT":
            rgb = ybr_rct_to_rgb(rgb, bits)
        elif photometric != "RGB":
            rgb = ybr_full_to_rgb(rgb, bits)
        out[...] = _to_output(rgb, bits, window, function, invert)

    return generic


def _stored(words: np.ndarray, fmt: StoredFormat) -> np.ndarray:
    """The stored values of ``words``: the words themselves when every bit is stored (no int64 copy)."""
    if fmt.bits_stored == fmt.bits_allocated and words.dtype.isnative and words.dtype.kind in "iu":
        return words.view(f"{'i' if fmt.signed else 'u'}{fmt.bits_allocated // 8}")
    return fmt.stored(words)


def _patterns(words: np.ndarray, fmt: StoredFormat) -> np.ndarray:
    """The stored bit patterns of ``words`` (their index in :meth:`StoredFormat.domain`), in the words' dtype."""
    patterns = words.view(fmt.unsigned_dtype) if words.dtype.itemsize == fmt.unsigned_dtype.itemsize else words
    if fmt.shift:
        patterns = patterns >> fmt.shift
    if fmt.bits_stored < 8 * patterns.dtype.itemsize:
        patterns = patterns & ((1 << fmt.bits_stored) - 1)
    return patterns


def _ybr_full_to_8bit(words: np.ndarray, out: np.ndarray, fmt: StoredFormat, invert: bool, scratch: _Scratch) -> None:
    """:func:`ybr_full_to_rgb` then :func:`to_8bit` into ``out``, in buffers reused from block to block.

    The same bytes: the same centred values and matrix product (over the same C-ordered rows), then
    ``floor(v + 0.5)`` clipped to ``0 .. 2**bits - 1`` and shifted right by ``bits - 8``, which for
    ``a = v + 0.5`` is ``floor(clip(a, 0, 2**bits - 1) / 2**(bits - 8))``: one truncating cast.
    """
    bits = fmt.bits_stored
    half = float(1 << (bits - 1))
    ybr = scratch.get("ybr", words.shape, np.float64)
    # integers below 2**17 are exact in float64, and y - 0.0 is y: the centred samples of ybr_full_to_rgb
    np.subtract(_stored(words, fmt), np.array([0.0, half, half]), out=ybr)
    rgb = scratch.get("rgb", words.shape, np.float64)
    np.matmul(ybr, _YBR_TO_RGB, out=rgb)
    rgb += 0.5
    np.clip(rgb, 0, (1 << bits) - 1, out=rgb)
    if bits > 8:
        rgb *= 1.0 / (1 << (bits - 8))  # a power of two: exact
    np.copyto(out, rgb, casting="unsafe")  # non-negative: truncation is the floor
    if invert:
        np.subtract(255, out, out=out)


def _ybr_rct_to_8bit(words: np.ndarray, out: np.ndarray, fmt: StoredFormat, invert: bool, scratch: _Scratch) -> None:
    """:func:`ybr_rct_to_rgb` then :func:`to_8bit` into ``out``, in int32 (exact for 16 stored bits or fewer)."""
    bits = fmt.bits_stored
    ybr = scratch.get("rct", words.shape, np.int32)
    half = 1 << (bits - 1)
    np.subtract(_stored(words, fmt), np.array([0, half, half], dtype=np.int32), out=ybr, casting="unsafe")
    y, cb, cr = ybr[..., 0], ybr[..., 1], ybr[..., 2]
    rgb = scratch.get("rgb32", words.shape, np.int32)
    green = rgb[..., 1]
    np.add(cb, cr, out=green)
    np.floor_divide(green, 4, out=green)
    np.subtract(y, green, out=green)
    np.add(cr, green, out=rgb[..., 0])
    np.add(cb, green, out=rgb[..., 2])
    np.clip(rgb, 0, (1 << bits) - 1, out=rgb)
    if bits > 8:
        rgb >>= bits - 8
    if invert:
        np.subtract(255, rgb, out=rgb)
    np.copyto(out, rgb, casting="unsafe")  # integers 0..255


def _to_output(rgb: np.ndarray, bits: int, window, function: Optional[str], invert: Optional[bool]) -> np.ndarray:
    """RGB samples of ``bits`` bits to uint8: windowed when asked, else their top 8 bits; inverted when asked."""
    out = to_8bit(rgb, bits) if window is None else _explicit_window(rgb, window, function)
    return 255 - out if invert else out


def _blocks(shape: Tuple[int, ...]) -> Iterator[Tuple[slice, slice]]:
    """``(frames, rows)`` slices covering ``shape`` about :data:`BLOCK_PIXELS` pixels at a time, in whole
    rows (the YBR formula is a matrix product per row: the same products as over the whole array)."""
    frames, rows, columns = shape[:3]
    frame_pixels = rows * columns
    if frame_pixels <= BLOCK_PIXELS:
        step = BLOCK_PIXELS // max(frame_pixels, 1)
        for start in range(0, frames, step):
            yield slice(start, start + step), slice(None)
        return
    step = max(BLOCK_PIXELS // columns, 1)
    for frame in range(frames):
        for start in range(0, rows, step):
            yield slice(frame, frame + 1), slice(start, start + step)


def _colour_samples(info: ImageInfo, indices) -> Iterator[Tuple[np.ndarray, str]]:
    """Allocated words ``(n, rows, columns, 3)`` of runs of the frames ``indices``, in order, and their
    photometric interpretation: all at once (native data as views), except native YBR_FULL_422 (each
    pair of pixels stored as Y1 Y2 Cb Cr), which is expanded to YBR_FULL a frame at a time."""
    fmt = info.format
    assert fmt is not None
    if info.photometric != "YBR_FULL_422" or info.compressed:
        decoded = read_frames(info, indices)
        yield decoded.words, decoded.photometric
        return
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
    info.check_memory(len(indices), 3)
    for index in indices:
        full = expand_ybr422(bytes(value[index * frame_bytes:(index + 1) * frame_bytes]), fmt.bits_allocated)
        words = np.frombuffer(full, dtype=dtype).reshape(1, info.rows, info.columns, 3)
        yield words.astype(words.dtype.newbyteorder("="), copy=False), "YBR_FULL"
