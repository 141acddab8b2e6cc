"""Colour images: PALETTE COLOR, RGB and YBR_* to RGB uint8 (PS3.3 C.7.6.3.1.2, C.7.9).

Samples are taken at their stored bit depth and reduced to 8 bits by dropping
the low bits (``value >> (bits - 8)``), the reduction DICOM viewers such as
dcmtk use for colour output.  Windowing is not part of the colour path; an
explicit window is applied to each channel when the caller asks for it.
"""

from __future__ import annotations

from struct import unpack
from typing import Optional, Sequence

import numpy as np

from . import _reference
from .errors import InvalidDatasetError, PixelDataError, UnsupportedImageError
from .image import ImageInfo

__all__ = ["render_colour", "palette_tables", "ybr_full_to_rgb", "ybr_rct_to_rgb", "to_8bit"]

_CHANNELS = ("Red", "Green", "Blue")

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


def _little_endian(ds) -> bool:
    meta = getattr(ds, "file_meta", None)
    tsyntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if tsyntax is not None:
        try:
            return bool(tsyntax.is_little_endian)
        except AttributeError:
            pass
    encoding = getattr(ds, "original_encoding", (None, True))
    return encoding[1] is not False


#: Segments a segmented LUT may visit while expanding (indirect ones included); real palettes use a few.
_SEGMENT_BUDGET = 1_000_000


def _segmented_size(words, fmt: str, limit: int) -> Optional[int]:
    """Entries pydicom's expansion of a segmented LUT (PS3.3 C.7.9.2) yields, counted without expanding.

    ``None`` when that is more than ``limit`` entries or takes more than
    :data:`_SEGMENT_BUDGET` segment visits: a few kB of linear segments expand
    to gigabytes, and each indirect segment can double the table.  Follows
    pydicom's reading of indirect offsets; malformed data counts as 0 here and
    is reported by the expansion itself.
    """
    budget = [_SEGMENT_BUDGET]
    order = [3, 2, 1, 0] if "<" in fmt else [2, 3, 0, 1]

    def count(start: int, segments: Optional[int], depth: int) -> Optional[int]:
        if depth > 64:
            return None
        total, offset, read = 0, start, 0
        while offset + 1 < len(words):
            opcode, length = words[offset], words[offset + 1]
            offset += 2
            budget[0] -= 1
            if budget[0] < 0:
                return None
            if opcode == 0:  # the data may end early: the expansion then takes what is there
                total, offset = total + max(0, min(length, len(words) - offset)), offset + length
            elif opcode == 1:
                total, offset = total + length, offset + 1
            elif opcode == 2:
                if "B" in fmt:
                    b = [words[offset + i] for i in order]
                    target = (b[0] << 8 | b[1]) << 16 | (b[2] << 8 | b[3])
                    offset += 4
                else:
                    target = words[offset + 1] << 16 | words[offset]
                    offset += 2
                copied = count(start + target, length, depth + 1)  # offsets are relative, as in pydicom
                if copied is None:
                    return None
                total += copied
            else:
                return total
            if total > limit:
                return None
            read += 1
            if read == segments:
                break
        return total

    try:
        return count(0, None, 0)
    except IndexError:
        return 0


def palette_tables(ds, signed: bool = False) -> tuple:
    """``(tables, first_mapped, bits)`` of the Palette Color LUT: ``tables`` is ``(3, n)`` int64.

    Normal and segmented palettes (PS3.3 C.7.6.3.1.5-6, C.7.9.2).  Raises
    :class:`InvalidDatasetError` naming the attribute when a descriptor or
    the data is missing or inconsistent.
    """
    from pydicom.pixels.processing import _expand_segmented_lut

    tables = []
    first = bits = None
    little = _little_endian(ds)
    for colour in _CHANNELS:
        keyword = f"{colour}PaletteColorLookupTableDescriptor"
        descriptor = ds.get(keyword)
        if descriptor is None:
            raise InvalidDatasetError(f"PALETTE COLOR image has no {keyword}", attribute=keyword)
        values = list(descriptor) if not isinstance(descriptor, (int, float)) else [descriptor]
        if len(values) != 3:
            raise InvalidDatasetError(f"{keyword} must have 3 values, got {values!r}", attribute=keyword)
        n, first_c, bits_c = (int(v) for v in values)
        n = 65536 if n == 0 else n
        if signed and first_c >= 32768:
            first_c -= 65536
        if bits_c not in (8, 16):
            raise InvalidDatasetError(f"{keyword} bits must be 8 or 16, got {bits_c}", attribute=keyword)
        if first is None:
            first, bits = first_c, bits_c
        elif (first_c, bits_c) != (first, bits):
            raise InvalidDatasetError(f"{keyword} {values} differs from the Red descriptor", attribute=keyword)
        plain = f"{colour}PaletteColorLookupTableData"
        segmented = f"Segmented{colour}PaletteColorLookupTableData"
        if ds.get(plain) is not None:
            raw = ds[plain].value
            if not isinstance(raw, (bytes, bytearray)):
                table = np.asarray(list(raw), dtype=np.int64)
            elif len(raw) == n:  # 8-bit entries packed into OW
                table = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
            else:
                table = np.frombuffer(raw, dtype="<u2" if little else ">u2", count=len(raw) // 2).astype(np.int64)
            if bits == 8 and table.size == n and table.max(initial=0) > 255:
                # 8-bit entries stored in the high byte of each word (seen in the wild)
                table = table >> 8
            attribute = plain
        elif ds.get(segmented) is not None:
            raw = ds[segmented].value
            size = 1 if bits == 8 else 2
            fmt = f"{'<' if little else '>'}{len(raw) // size}{'B' if size == 1 else 'H'}"
            try:
                words = unpack(fmt, raw[:len(raw) // size * size])
            except Exception as exc:
                raise InvalidDatasetError(f"{segmented} cannot be expanded: {exc}", attribute=segmented) from None
            if _segmented_size(words, fmt, n) is None:  # refused before expanding: see _segmented_size
                raise InvalidDatasetError(f"{segmented} expands to more than the {n} entries {keyword} says",
                                          attribute=segmented)
            try:
                table = np.asarray(_expand_segmented_lut(words, fmt), dtype=np.int64)
            except Exception as exc:
                raise InvalidDatasetError(f"{segmented} cannot be expanded: {exc}", attribute=segmented) from None
            attribute = segmented
        else:
            raise InvalidDatasetError(f"PALETTE COLOR image has neither {plain} nor {segmented}", attribute=plain)
        if table.size != n:
            raise InvalidDatasetError(f"{attribute} has {table.size} entries, {keyword} says {n}",
                                      attribute=attribute)
        tables.append(table)
    return np.stack(tables), first, bits


def _explicit_window(rgb: np.ndarray, bits: int, window, function: Optional[str]) -> np.ndarray:
    from .windowing import Window

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
        tables, first, table_bits = palette_tables(info.dataset, fmt.signed)
        stored = fmt.stored(info.words(indices))
        index = np.clip(stored - first, 0, tables.shape[1] - 1)
        rgb = np.stack([tables[c][index] for c in range(3)], axis=-1)
        bits = table_bits
    else:
        samples = _colour_samples(info, indices)
        photometric = info.decoded_photometric or photometric
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
        out = _explicit_window(rgb, bits, window, function)
    else:
        out = to_8bit(rgb, bits)
    if invert:
        out = 255 - out
    return np.ascontiguousarray(out, dtype=np.uint8)


def _colour_samples(info: ImageInfo, indices) -> np.ndarray:
    """Stored samples ``(n, rows, columns, 3)`` as int64, chroma upsampled where the data is 4:2:2."""
    fmt = info.format
    ds = info.dataset
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    native_422 = info.photometric == "YBR_FULL_422" and not (tsyntax is not None and tsyntax.is_compressed)
    if not native_422:
        return fmt.stored(info.words(indices))
    # Native YBR_FULL_422: each pair of pixels is stored as Y1 Y2 Cb Cr (PS3.3 C.7.6.3.1.2).
    if info.columns % 2:
        raise InvalidDatasetError("YBR_FULL_422 needs an even number of Columns", attribute="Columns")
    value = ds[info.pixel_keyword].value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise PixelDataError(f"{info.pixel_keyword} has no byte value", attribute=info.pixel_keyword)
    dtype = info.word_dtype if tsyntax is None or tsyntax.is_little_endian else info.word_dtype.newbyteorder(">")
    frame_items = info.rows * info.columns * 2
    if len(value) < frame_items * dtype.itemsize * info.frames:
        raise PixelDataError(f"{info.pixel_keyword} is truncated for {info.frames} YBR_FULL_422 frame(s)",
                             attribute=info.pixel_keyword)
    frames = []
    for index in indices:
        words = np.frombuffer(value, dtype=dtype, count=frame_items, offset=index * frame_items * dtype.itemsize)
        quads = fmt.stored(words.astype(words.dtype.newbyteorder("="))).reshape(info.rows, info.columns // 2, 4)
        out = np.empty((info.rows, info.columns, 3), dtype=np.int64)
        out[:, 0::2, 0] = quads[..., 0]
        out[:, 1::2, 0] = quads[..., 1]
        out[:, :, 1] = np.repeat(quads[..., 2], 2, axis=1)
        out[:, :, 2] = np.repeat(quads[..., 3], 2, axis=1)
        frames.append(out)
    info.decoded_photometric = "YBR_FULL"
    return np.stack(frames)
