"""The stored words of the selected frames: native Pixel Data viewed in place, compressed data decoded.

Native (uncompressed) Pixel Data is viewed straight from the element's bytes, one frame at a
time if asked, so the kernel sees the allocated words exactly as stored (overlay or garbage bits
above High Bit included: the kernel masks them).  Compressed Pixel Data goes through pydicom's
decoders, each frame's codestream checked against the header first (:mod:`.codestream`).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple

import numpy as np
import pydicom.uid
from pydicom.pixels import get_decoder

from ..errors import DicomRenderError, MissingCodecError, PixelDataError, UnsupportedImageError
from . import codestream
from .elements import integer, tag_of
from .header import ImageInfo

__all__ = ["Frames", "read_frames"]


class Frames(NamedTuple):
    """Words ``(frames, rows, columns[, samples])`` and the photometric interpretation they are in
    (a decoder may have converted colour data, e.g. YBR_FULL_422 JPEG to RGB)."""

    words: np.ndarray
    photometric: str


def read_frames(info: ImageInfo, indices: Sequence[int]) -> Frames:
    """The allocated words of the frames ``indices`` of the image ``info`` describes."""
    shape: Tuple[int, ...] = (info.rows, info.columns) if info.samples_per_pixel == 1 else \
        (info.rows, info.columns, info.samples_per_pixel)
    element = info.dataset[tag_of(info.pixel_keyword)]
    if info.compressed:
        # every frame needs at least one 8-byte fragment item: refuse impossible frame counts up front
        if isinstance(element.value, (bytes, bytearray)) and info.frames > len(element.value) // 8:
            raise PixelDataError(f"NumberOfFrames {info.frames} cannot fit in {len(element.value)} bytes of "
                                 f"encapsulated Pixel Data", attribute="NumberOfFrames")
        return _decoded(info, indices, shape)
    return Frames(_native(info, element, indices, shape), info.photometric)


def _native(info: ImageInfo, element, indices: Sequence[int], shape: Tuple[int, ...]) -> np.ndarray:
    value = element.value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise PixelDataError(f"{info.pixel_keyword} has no byte value", attribute=info.pixel_keyword)
    dtype = info.word_dtype
    big_endian = info.transfer_syntax == pydicom.uid.ExplicitVRBigEndian
    if big_endian:
        dtype = dtype.newbyteorder(">")
        if dtype.itemsize == 1 and element.VR == "OW":
            # OW is a stream of 16-bit words: in big endian, 8-bit samples come swapped in pairs
            value = np.frombuffer(value, dtype=">u2", count=len(value) // 2).astype("<u2").tobytes()
    frame_items = info.rows * info.columns * info.samples_per_pixel
    if info.packed_bits:
        return _unpacked(info, value, indices, frame_items, shape)
    frame_bytes = frame_items * dtype.itemsize
    needed = frame_bytes * info.frames
    if len(value) < needed:
        raise PixelDataError(
            f"{info.pixel_keyword} is truncated: {len(value)} bytes, {needed} needed for "
            f"{info.frames} frame(s) of {info.rows}x{info.columns}x{info.samples_per_pixel} at "
            f"{dtype.itemsize * 8} bits", attribute=info.pixel_keyword)
    planar = info.samples_per_pixel > 1 and integer(info.dataset, "PlanarConfiguration", 0) == 1
    frames = []
    for index in indices:
        array = np.frombuffer(value, dtype=dtype, count=frame_items, offset=index * frame_bytes)
        if planar:
            array = array.reshape(info.samples_per_pixel, info.rows, info.columns).transpose(1, 2, 0)
        frames.append(array.reshape(shape))
    if len(frames) == info.frames == len(indices) and not planar and frames:
        stacked = np.frombuffer(value, dtype=dtype, count=frame_items * info.frames).reshape((info.frames,) + shape)
    else:
        stacked = np.stack(frames)
    if big_endian:
        stacked = stacked.astype(stacked.dtype.newbyteorder("="))
    return stacked


def _unpacked(info: ImageInfo, value, indices: Sequence[int], frame_items: int, shape: Tuple[int, ...]) -> np.ndarray:
    # Frames of 1-bit data need not start on a byte boundary: bit k of the
    # element is pixel k, least significant bit first (PS3.5 8.1.1).
    needed = (frame_items * info.frames + 7) // 8
    if len(value) < needed:
        raise PixelDataError(f"{info.pixel_keyword} is truncated: {len(value)} bytes, {needed} needed for "
                             f"{info.frames} frame(s) of {info.rows}x{info.columns} at 1 bit",
                             attribute=info.pixel_keyword)
    frames = []
    for index in indices:
        start = index * frame_items
        first_byte, skip = divmod(start, 8)
        chunk = np.frombuffer(value, dtype=np.uint8, count=(skip + frame_items + 7) // 8, offset=first_byte)
        bits = np.unpackbits(chunk, bitorder="little")[skip:skip + frame_items]
        frames.append(bits.reshape(shape))
    return np.stack(frames)


def _decoded(info: ImageInfo, indices: Sequence[int], shape: Tuple[int, ...]) -> Frames:
    tsyntax = info.transfer_syntax
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise UnsupportedImageError(f"Pixel Data uses transfer syntax {tsyntax.name} ({tsyntax}), "
                                    f"which has no decoder", attribute="TransferSyntaxUID") from None
    if not decoder.is_available:
        raise MissingCodecError(
            f"Pixel Data uses {tsyntax.name} ({tsyntax}) and no decoder for it is installed; "
            f"install the codecs extra: pip install 'dicomrender[codecs]'", attribute="TransferSyntaxUID")
    frames = []
    photometric = info.photometric
    try:
        bits = info.format.bits_allocated if info.format is not None else 8 * info.word_dtype.itemsize
        frame_bytes = info.rows * info.columns * info.samples_per_pixel * ((bits + 7) // 8)
        for index in indices:
            # decoders allocate Rows x Columns before reading the codestream: check its own size first
            mismatch = codestream.check_frame(info.dataset, index, info.frames, tsyntax, info.rows, info.columns,
                                              frame_bytes)
            if mismatch:
                raise PixelDataError(f"Rows x Columns ({info.rows}x{info.columns}) do not fit frame {index}: "
                                     f"{mismatch}", attribute="Rows")
            array, meta = decoder.as_array(info.dataset, index=index, raw=True)
            photometric = str(meta.get("photometric_interpretation", info.photometric))
            frames.append(np.asarray(array))
    except (DicomRenderError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # BaseException: decoders written in Rust raise pyo3's PanicException
        raise PixelDataError(f"cannot decode Pixel Data ({tsyntax.name}): {type(exc).__name__}: {exc}",
                             attribute="PixelData") from None
    out = np.stack([f.reshape(shape) for f in frames])
    if info.format is not None:
        out = out.astype(info.word_dtype, copy=False)
    return Frames(out, photometric)
