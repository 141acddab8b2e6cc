"""Frame sizes declared inside compressed codestreams, read before decoding.

pydicom's decoders allocate the whole output frame from Rows x Columns before
they look at the codestream, so a header claiming 46340 x 46340 pixels over a
few kilobytes of JPEG makes them allocate (and for RLE, zero-fill) gigabytes
before failing.  For large frames dicomrender first reads the few header bytes
of the codestream (JPEG / JPEG-LS SOF, JPEG 2000 SIZ) or bounds what an RLE
segment can expand to, and refuses a frame that cannot match the header.
"""

from __future__ import annotations

import struct
from typing import Optional, Tuple

from pydicom.encaps import get_frame

__all__ = ["CHECK_BYTES", "jpeg_size", "j2k_size", "rle_capacity", "frame_mismatch"]

#: Frames whose decoded size is at most this many bytes are decoded without the check.
CHECK_BYTES = 1 << 24

# SOF0..SOF15 without DHT (C4), JPG (C8) and DAC (CC); F7 is JPEG-LS SOF55.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_JPEG_SYNTAXES = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                  "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
_J2K_SYNTAXES = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
                 "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")
_RLE_SYNTAX = "1.2.840.10008.1.2.5"


def jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(rows, columns) from the SOF segment of a JPEG or JPEG-LS codestream, or None."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        length = struct.unpack_from(">H", data, i + 2)[0]
        if marker in _SOF:
            if i + 9 > n:
                return None
            rows, columns = struct.unpack_from(">HH", data, i + 5)
            return rows, columns
        i += 2 + length
    return None


def j2k_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(rows, columns) from the SIZ segment of a JPEG 2000 codestream (bare or in a JP2 box), or None."""
    at = data.find(b"\xff\x4f\xff\x51", 0, 4096)
    if at < 0 or at + 24 > len(data):
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">IIII", data, at + 8)
    if xsiz < xosiz or ysiz < yosiz:
        return None
    return ysiz - yosiz, xsiz - xosiz


def rle_capacity(data: bytes) -> Optional[int]:
    """The most bytes any segment of an RLE frame (PS3.5 G.3) can decode to, or None.

    Every two encoded bytes expand to at most 128, so a segment of ``L`` bytes
    gives at most ``64 * L + 128``.
    """
    if len(data) < 64:
        return None
    count = struct.unpack_from("<I", data, 0)[0]
    if not 1 <= count <= 15:
        return None
    offsets = list(struct.unpack_from("<15I", data, 4)[:count]) + [len(data)]
    lengths = [max(0, offsets[j + 1] - offsets[j]) for j in range(count)]
    return 64 * max(lengths) + 128


def frame_mismatch(data: bytes, tsyntax: str, rows: int, columns: int) -> Optional[str]:
    """Why a compressed frame cannot hold ``rows x columns`` pixels, or None when it may."""
    tsyntax = str(tsyntax)
    if tsyntax in _JPEG_SYNTAXES:
        size = jpeg_size(data)
        if size is not None and (size[1] != columns or size[0] not in (0, rows)):  # height 0: set by DNL
            return f"the JPEG codestream is {size[0]}x{size[1]}"
    elif tsyntax in _J2K_SYNTAXES:
        size = j2k_size(data)
        if size is not None and size != (rows, columns):
            return f"the JPEG 2000 codestream is {size[0]}x{size[1]}"
    elif tsyntax == _RLE_SYNTAX:
        capacity = rle_capacity(data)
        if capacity is not None and rows * columns > capacity:
            return f"its RLE segments ({len(data)} bytes) decode to at most {capacity} bytes each"
    return None


def check_frame(ds, index: int, frames: int, tsyntax, rows: int, columns: int, frame_bytes: int) -> Optional[str]:
    """:func:`frame_mismatch` for frame ``index`` of ``ds`` when its decoded size exceeds :data:`CHECK_BYTES`."""
    if frame_bytes <= CHECK_BYTES:
        return None
    try:
        offsets = None
        if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
            offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        data = get_frame(ds.PixelData, index, extended_offsets=offsets, number_of_frames=frames)
    except Exception:  # the decoder reports broken encapsulation itself
        return None
    return frame_mismatch(data, tsyntax, rows, columns)
