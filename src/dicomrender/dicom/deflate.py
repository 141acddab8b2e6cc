"""Deflated Explicit VR Little Endian data sets (PS3.5 A.5), inflated no further than their image needs.

pydicom inflates the whole data set in one ``zlib.decompress`` before any attribute can be looked
at, so 1 MB of file holding 1 GiB of zeros in a private element cost 2.1 GB and 7 s.  Here the
data set is inflated incrementally (``decompressobj`` with ``max_length``): first at most
:data:`ALLOWANCE` bytes, enough for any real header; if the data set is longer, the header in
those bytes says where Pixel Data starts and how many bytes the image needs (Rows x Columns x
frames x samples x bits, at most ``max_pixels`` pixels of 8 bytes), and inflation stops with an
error as soon as the data set runs more than :data:`ALLOWANCE` past that.  The inflated bytes are
then parsed as pydicom parses them (``pydicom/filereader.py``: Explicit VR Little Endian).
"""

from __future__ import annotations

import struct
import warnings
import zlib
from typing import BinaryIO, List, NamedTuple, Optional, cast

from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag

from ..errors import InvalidDatasetError, PixelDataError
from .header import DEFAULT_MAX_PIXELS

__all__ = ["DEFLATED", "ALLOWANCE", "Inflated", "read_deflated"]

DEFLATED = "1.2.840.10008.1.2.1.99"
#: Inflated bytes allowed before Pixel Data, and again after the bytes the image needs.
ALLOWANCE = 16 << 20
#: Compressed bytes read at a time.
_CHUNK = 1 << 20
_PIXEL_TAGS = frozenset((0x7FE00008, 0x7FE00009, 0x7FE00010))
#: Explicit VRs with a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"))
_MAX_META_ELEMENTS = 32


class Inflated(NamedTuple):
    """A data set read from a deflated file, and the size of the inflated data set."""

    dataset: FileDataset
    size: int


def _quick_syntax(fp) -> Optional[str]:
    """The Transfer Syntax UID of the file meta group at the start of ``fp`` when it is plain Explicit VR
    Little Endian (what nearly every file has), read from a few element headers; None: look closer."""
    head = fp.read(132)
    if head[128:132] != b"DICM":
        fp.seek(-len(head), 1)
    for _ in range(_MAX_META_ELEMENTS):
        start = fp.read(8)
        if len(start) < 8:
            return None
        group, element, vr = struct.unpack("<HH2s", start[:6])
        if group != 2:
            return ""  # the meta group ended without a transfer syntax
        if vr in _LONG_VRS:
            more = fp.read(4)
            if len(more) < 4:
                return None
            length = struct.unpack("<I", more)[0]
        elif vr.isalpha() and vr.isupper():
            length = struct.unpack("<H", start[6:])[0]
        else:
            return None
        if element == 0x0010:
            return fp.read(length).rstrip(b"\0 ").decode("ascii", "replace") if length <= 64 else None
        fp.seek(length, 1)
    return None


def _meta(fp) -> Optional[tuple]:
    """``(preamble, file meta)`` when ``fp`` holds a deflated data set (then positioned at its start), else
    None with ``fp`` back where it was."""
    start = fp.tell()
    try:
        quick = _quick_syntax(fp)
    except (OSError, ValueError, struct.error):
        quick = None
    fp.seek(start)
    if quick is not None and quick != DEFLATED:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            head = fp.read(132)
            preamble = head[:128] if head[128:132] == b"DICM" else None
            if preamble is None:
                fp.seek(start)
            meta = FileMetaDataset(read_dataset(fp, False, True, stop_when=lambda tag, vr, length: tag >> 16 != 2))
            deflated = str(meta.get("TransferSyntaxUID", "") or "") == DEFLATED
    except Exception:  # not a readable meta group: pydicom reports it as it reads the file
        deflated = False
    if not deflated:
        fp.seek(start)
        return None
    return preamble, meta


def _image_bytes(header_bytes: bytes, filename: Optional[str], max_pixels: Optional[int]) -> tuple:
    """``(offset of the pixel data value, bytes its image needs, description)`` from the inflated header."""
    found: dict = {}
    buffer = DicomBytesIO(header_bytes)

    def at_pixels(tag: BaseTag, vr, length: int) -> bool:
        if tag in _PIXEL_TAGS:
            found.update(tag=int(tag), offset=buffer.tell())
            return True
        return False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = read_dataset(cast(BinaryIO, buffer), False, True, stop_when=at_pixels)
        except Exception:
            ds = None
    if ds is None or not found:
        raise InvalidDatasetError(f"the deflated data set inflates to more than {ALLOWANCE} bytes before any "
                                  f"Pixel Data: refused (a header is never that long)", filename=filename,
                                  attribute="TransferSyntaxUID")
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        default_bits = {0x7FE00008: 32, 0x7FE00009: 64}.get(found["tag"], 16)
        bits = int(ds.get("BitsAllocated", default_bits) or default_bits)
    except Exception:  # the header is rendered (and refused) later: it gets no pixel bytes
        return found["offset"], 0, "an image the header does not describe"
    pixels = max(0, rows) * max(0, columns) * max(0, frames) * max(0, samples)
    if max_pixels is not None:
        pixels = min(pixels, max_pixels)
    need = (pixels * min(max(bits, 1), 64) + 7) // 8
    return found["offset"], need, f"{rows}x{columns}x{frames}x{samples} at {bits} bits: {need} bytes"


def _inflate(fp, filename: Optional[str], max_pixels: Optional[int]) -> bytes:
    """The inflated data set, refused once it is longer than the image can need."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    chunks: List[bytes] = []
    total, limit, image = 0, ALLOWANCE, None
    pending, at_end = b"", False
    while not inflater.eof:
        if not pending and not at_end:
            pending = fp.read(_CHUNK)
            at_end = not pending
        try:
            # max_length: zlib stops there, keeping the rest of the input in unconsumed_tail
            out = inflater.decompress(pending, limit + 1 - total)
        except zlib.error as exc:
            raise InvalidDatasetError(f"the deflated data set is corrupt: {exc}", filename=filename,
                                      attribute="TransferSyntaxUID") from None
        if at_end and not out and not inflater.eof:
            raise InvalidDatasetError("the deflated data set is truncated (its deflate stream does not end)",
                                      filename=filename, attribute="TransferSyntaxUID")
        pending = inflater.unconsumed_tail
        chunks.append(out)
        total += len(out)
        if total > limit:
            if image is None:
                chunks = [b"".join(chunks)]
                offset, need, image = _image_bytes(chunks[0], filename, max_pixels)
                limit = offset + need + ALLOWANCE
            if total > limit:
                raise PixelDataError(f"the deflated data set inflates to more than {limit} bytes: more than its "
                                     f"image ({image}) and {ALLOWANCE} bytes of other elements need; refused",
                                     filename=filename, attribute="PixelData")
    return b"".join(chunks)


def read_deflated(fp, filename: Optional[str], *, stop_before_pixels: bool = False,
                  max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Optional[Inflated]:
    """The data set of the file ``fp`` (positioned at its start) when its transfer syntax is Deflated
    Explicit VR Little Endian, else None (``fp`` is then where it was).

    Raises
    ------
    InvalidDatasetError, PixelDataError
        Naming the file, when the deflate stream is corrupt or truncated, or inflates to more than the
        image can need.
    """
    found = _meta(fp)
    if found is None:
        return None
    preamble, meta = found
    data = _inflate(fp, filename, max_pixels)
    size = len(data)
    buffer = DicomBytesIO(data)  # shares the bytes: no copy
    del data
    stop = (lambda tag, vr, length: tag in _PIXEL_TAGS) if stop_before_pixels else None
    dataset = read_dataset(cast(BinaryIO, buffer), False, True, stop_when=stop)
    ds = FileDataset(filename if filename is not None else "", dataset, preamble, meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return Inflated(ds, size)
