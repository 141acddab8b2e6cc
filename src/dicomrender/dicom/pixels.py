"""The stored words of the selected frames: native Pixel Data viewed in place, compressed data decoded.

Native (uncompressed) Pixel Data is viewed straight from the element's bytes, one frame at a
time if asked, so the kernel sees the allocated words exactly as stored (overlay or garbage bits
above High Bit included: the kernel masks them).  Compressed Pixel Data goes through pydicom's
decoders, each frame's codestream checked against the header first (:mod:`.codestream`).

Colour JPEG Baseline is decoded by Pillow (libjpeg) where it is installed: its output equals
dcmtk's, Orthanc's, PixelMed's and pydicom's own Pillow path, while pylibjpeg-libjpeg's differs by
up to 5 levels on YBR_FULL_422 and YBR_FULL files (its colour conversion and chroma upsampling
differ); see tests/conformance/REPORT.md.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np
import pydicom.uid
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import as_pixel_options

from ..errors import DicomRenderError, MissingCodecError, PixelDataError, UnsupportedImageError
from . import codestream, fragments
from .elements import get, has, integer, tag_of
from .header import ImageInfo

__all__ = ["Frames", "read_frames", "decoding_plugin", "PREFERRED_PLUGINS"]

#: The decoder plugin preferred per transfer syntax for colour data (the one agreeing with dcmtk).
PREFERRED_PLUGINS = {pydicom.uid.JPEGBaseline8Bit: "pillow"}


def decoding_plugin(decoder, tsyntax, samples_per_pixel: int) -> str:
    """The pydicom decoding plugin to use: the preferred one of :data:`PREFERRED_PLUGINS` for colour data
    when it is available, else ``""`` (pydicom's first available)."""
    preferred = PREFERRED_PLUGINS.get(tsyntax, "") if samples_per_pixel == 3 else ""
    return preferred if preferred in decoder.available_plugins else ""


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
    if element.is_undefined_length:
        # items of an encapsulation read as pixels would render their tags and lengths as an image
        raise PixelDataError(f"{info.pixel_keyword} has undefined length (encapsulated fragments), but transfer "
                             f"syntax {info.transfer_syntax or 'Implicit VR Little Endian'} stores pixels natively",
                             attribute=info.pixel_keyword)
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
    info.check_memory(len(indices), _channels(info))
    planar = info.samples_per_pixel > 1 and integer(info.dataset, "PlanarConfiguration", 0) == 1
    # one view of every frame, then of the selected run: no per-frame arrays (a million 1x1 frames...)
    every = np.frombuffer(value, dtype=dtype, count=frame_items * info.frames)
    if planar:
        every = every.reshape(info.frames, info.samples_per_pixel, info.rows, info.columns).transpose(0, 2, 3, 1)
    every = every.reshape((info.frames,) + shape)
    run = _run(indices)
    selected = every[run] if run is not None else every[np.asarray(indices, dtype=np.intp)]
    if big_endian:
        selected = selected.astype(selected.dtype.newbyteorder("="))
    return selected


def _channels(info: ImageInfo) -> int:
    """The fewest output channels of a render of ``info``: 3 for colour images (RGB)."""
    return 1 if info.is_grayscale else 3


def _run(indices: Sequence[int]) -> Optional[slice]:
    """``indices`` as a slice when they are consecutive frames (all of them, or one), else None."""
    if isinstance(indices, range) and indices.step == 1:
        return slice(indices.start, indices.stop)
    if len(indices) == 1:
        return slice(indices[0], indices[0] + 1)
    return None


def _unpacked(info: ImageInfo, value, indices: Sequence[int], frame_items: int, shape: Tuple[int, ...]) -> np.ndarray:
    # Frames of 1-bit data need not start on a byte boundary: bit k of the
    # element is pixel k, least significant bit first (PS3.5 8.1.1).
    needed = (frame_items * info.frames + 7) // 8
    if len(value) < needed:
        raise PixelDataError(f"{info.pixel_keyword} is truncated: {len(value)} bytes, {needed} needed for "
                             f"{info.frames} frame(s) of {info.rows}x{info.columns} at 1 bit",
                             attribute=info.pixel_keyword)
    info.check_memory(len(indices), _channels(info))
    run = _run(indices)
    runs = [(run.start, run.stop - run.start)] if run is not None else [(index, 1) for index in indices]
    frames = []
    for index, count in runs:  # a run of consecutive frames is unpacked at once
        start = index * frame_items
        first_byte, skip = divmod(start, 8)
        chunk = np.frombuffer(value, dtype=np.uint8, count=(skip + count * frame_items + 7) // 8, offset=first_byte)
        bits = np.unpackbits(chunk, bitorder="little")[skip:skip + count * frame_items]
        frames.append(bits.reshape((count,) + shape))
    return frames[0] if len(frames) == 1 else np.concatenate(frames)


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
    element = info.dataset[tag_of(info.pixel_keyword)]
    extended = None
    if has(info.dataset, "ExtendedOffsetTable") and has(info.dataset, "ExtendedOffsetTableLengths"):
        extended = (get(info.dataset, "ExtendedOffsetTable"), get(info.dataset, "ExtendedOffsetTableLengths"))
    index = fragments.indexed(element, info.frames, extended)
    bits = info.format.bits_allocated if info.format is not None else 8 * info.word_dtype.itemsize
    selected = []
    for position in indices:
        if position >= len(index.frames):
            raise PixelDataError(f"encapsulated Pixel Data holds {len(index.frames)} frame(s) in {index.fragments} "
                                 f"fragment(s): there is no frame {position}", attribute="NumberOfFrames")
        # decoders allocate from the codestream's own header: check every frame's before any is decoded
        spans = index.frames[position]
        problem = codestream.frame_problem(fragments.frame_head(element.value, spans), tsyntax, info.rows,
                                           info.columns, info.samples_per_pixel, bits)
        if problem:
            raise PixelDataError(f"frame {position} cannot be decoded as Rows x Columns {info.rows}x{info.columns}, "
                                 f"SamplesPerPixel {info.samples_per_pixel}, BitsAllocated {bits}: {problem[1]}",
                                 attribute=problem[0])
        selected.append(spans)
    info.check_memory(len(selected), _channels(info))  # every frame checked: now the budget, before decoding
    # one decoder call over the checked frames, re-encapsulated one fragment each: no per-frame search
    try:
        options = as_pixel_options(info.dataset, number_of_frames=len(selected), pixel_keyword="PixelData")
        options.pop("extended_offsets", None)
        encapsulated = fragments.encapsulate_frames(element.value, selected)
        plugin = decoding_plugin(decoder, tsyntax, info.samples_per_pixel)
        try:
            array, meta = decoder.as_array(encapsulated, raw=True, decoding_plugin=plugin, **options)
        except (DicomRenderError, KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            if not plugin:
                raise
            # the preferred plugin refused this codestream: every available plugin, as pydicom does
            array, meta = decoder.as_array(encapsulated, raw=True, **options)
    except (DicomRenderError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # BaseException: decoders written in Rust raise pyo3's PanicException
        raise PixelDataError(f"cannot decode Pixel Data ({tsyntax.name}): {type(exc).__name__}: {exc}",
                             attribute="PixelData") from None
    photometric = str(meta.get("photometric_interpretation", info.photometric))
    out = np.asarray(array).reshape((len(selected),) + shape)
    if info.format is not None:
        out = out.astype(info.word_dtype, copy=False)
    return Frames(out, photometric)
