"""The frame header inside each compressed codestream, read and checked before any decoder sees it.

Decoders allocate from what a codestream says, not from Rows x Columns: a JPEG frame header
(SOF) claiming height 0 (the height then comes from a DNL marker after the first scan) made
libjpeg and CharLS allocate without bound, and a header claiming 46340 x 46340 pixels over a few
kilobytes makes pydicom allocate gigabytes.  So every compressed frame is checked here, whatever
its size, by reading only its header bytes: the JPEG / JPEG-LS SOF segment, the JPEG 2000 SIZ
segment, the RLE segment table.  A frame must declare exactly Rows x Columns, Samples per Pixel
components and no more bits than Bits Allocated; height 0 is refused; a frame whose header
cannot be found is refused too (a decoder is never handed a codestream that was not checked).
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Optional, Tuple

__all__ = ["FrameHeader", "jpeg_header", "j2k_header", "jpeg_size", "j2k_size", "rle_capacity", "frame_mismatch",
           "frame_problem"]

# SOF0..SOF15 without DHT (C4), JPG (C8) and DAC (CC); F7 is JPEG-LS SOF55.
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7))
_JPEG_SYNTAXES = frozenset(("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                            "1.2.840.10008.1.2.4.70"))
_JPEG_LS_SYNTAXES = frozenset(("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"))
_J2K_SYNTAXES = frozenset(("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
                           "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"))
_RLE_SYNTAX = "1.2.840.10008.1.2.5"

#: Marker segments walked before the first scan at most: real codestreams have a dozen.
_MAX_SEGMENTS = 1024
#: Boxes walked in a JP2 file before its codestream box at most.
_MAX_BOXES = 64
_RLE_HEADER = struct.Struct("<16I")
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


class FrameHeader(NamedTuple):
    """What a codestream header declares: size, components and the largest sample precision (bits)."""

    rows: int
    columns: int
    components: int
    precision: int


class _Walk(NamedTuple):
    header: Optional[FrameHeader]
    problem: str


def _jpeg_walk(data, ls: bool = True) -> _Walk:
    """The frame header of a JPEG or JPEG-LS codestream, walking its marker segments up to the first scan."""
    if bytes(data[:2]) != b"\xff\xd8":
        return _Walk(None, "it does not start with a JPEG SOI marker")
    header: Optional[FrameHeader] = None
    i, n = 2, len(data)
    for _ in range(_MAX_SEGMENTS):
        if i + 4 > n:  # the data ends before a scan: a decoder fails on it, after the header checked here
            return _Walk(header, "" if header else "it ends before any frame header (SOF)")
        if data[i] != 0xFF:
            return _Walk(None, f"no JPEG marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length field
            i += 2
            continue
        if marker in (0xD8, 0xD9, 0x00):
            return _Walk(None, f"a misplaced marker FF{marker:02X} before its first scan")
        length = struct.unpack_from(">H", data, i + 2)[0]
        if length < 2:
            return _Walk(None, f"a JPEG marker segment at byte {i} has length {length}")
        if marker == 0xDA:  # start of scan: every header segment has been seen
            return _Walk(header, "" if header else "a scan starts before any frame header (SOF)")
        if marker in _SOF:
            if header is not None:
                return _Walk(None, "it has two frame headers (SOF)")
            if i + 10 > n or length < 8:
                return _Walk(None, "its frame header (SOF) is truncated")
            precision, rows, columns, components = struct.unpack_from(">BHHB", data, i + 4)
            header = FrameHeader(rows, columns, components, precision)
        elif ls and marker == 0xF8 and i + 4 < n and data[i + 4] == 4:
            # JPEG-LS LSE ID 4 (oversize image dimension) overrides the SOF size: not followed
            return _Walk(None, "its JPEG-LS LSE segment declares an oversize image dimension")
        i += 2 + length
    return _Walk(None, f"more than {_MAX_SEGMENTS} marker segments before its first scan")


def jpeg_header(data) -> Optional[FrameHeader]:
    """The frame header (SOF segment) of a JPEG or JPEG-LS codestream, or None."""
    return _jpeg_walk(data).header


def _j2k_codestream_start(data) -> Optional[int]:
    """Where the codestream of a bare JPEG 2000 codestream or of a JP2 file starts, or None."""
    if bytes(data[:4]) == b"\xff\x4f\xff\x51":
        return 0
    if bytes(data[:12]) != _JP2_SIGNATURE:
        return None
    at, n = 0, len(data)
    for _ in range(_MAX_BOXES):
        if at + 8 > n:
            return None
        length, kind = struct.unpack_from(">I4s", data, at)
        body = at + 8
        if length == 1:  # XLBox: a 64-bit length follows the type
            if at + 16 > n:
                return None
            length = struct.unpack_from(">Q", data, at + 8)[0]
            body = at + 16
        if kind == b"jp2c":
            return body
        if length == 0 or length < body - at:  # to the end of the file, or broken: no codestream box after it
            return None
        at += length
    return None


def j2k_header(data) -> Optional[FrameHeader]:
    """The image size, components and largest precision from the SIZ segment of a JPEG 2000 codestream
    (bare or in a JP2 file), or None."""
    at = _j2k_codestream_start(data)
    if at is None or bytes(data[at:at + 4]) != b"\xff\x4f\xff\x51" or at + 41 > len(data):
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">IIII", data, at + 8)
    components = struct.unpack_from(">H", data, at + 40)[0]
    if xsiz < xosiz or ysiz < yosiz or not components or at + 42 + 3 * components > len(data):
        return None
    precision = max((data[at + 42 + 3 * c] & 0x7F) + 1 for c in range(components))
    return FrameHeader(ysiz - yosiz, xsiz - xosiz, components, precision)


def jpeg_size(data) -> Optional[Tuple[int, int]]:
    """(rows, columns) from the SOF segment of a JPEG or JPEG-LS codestream, or None."""
    header = jpeg_header(data)
    return None if header is None else (header.rows, header.columns)


def j2k_size(data) -> Optional[Tuple[int, int]]:
    """(rows, columns) from the SIZ segment of a JPEG 2000 codestream, or None."""
    header = j2k_header(data)
    return None if header is None else (header.rows, header.columns)


def _rle_segments(data) -> Optional[Tuple[int, int]]:
    """(segment count, longest segment in bytes) of an RLE frame (PS3.5 G.3), or None."""
    if len(data) < 64:
        return None
    header = _RLE_HEADER.unpack_from(data, 0)
    count = header[0]
    if not 1 <= count <= 15 or header[1] != 64:
        return None
    longest = 0
    for j in range(1, count + 1):
        stop = header[j + 1] if j < count else len(data)
        if stop < header[j]:
            return None
        longest = max(longest, stop - header[j])
    return count, longest


def rle_capacity(data) -> Optional[int]:
    """The most bytes any segment of an RLE frame (PS3.5 G.3) can decode to, or None.

    Every two encoded bytes expand to at most 128, so a segment of ``L`` bytes
    gives at most ``64 * L + 128``.
    """
    segments = _rle_segments(data)
    return None if segments is None else 64 * segments[1] + 128


def _check_header(header: FrameHeader, kind: str, rows: int, columns: int, samples: Optional[int],
                  bits: Optional[int]) -> Optional[Tuple[str, str]]:
    if header.rows == 0 and kind != "JPEG 2000":
        return "Rows", (f"the {kind} codestream declares height 0 (to be set by a DNL marker after the first scan), "
                        f"which is refused: the height cannot be checked before decoding")
    if (header.rows, header.columns) != (rows, columns):
        return "Rows", f"the {kind} codestream is {header.rows}x{header.columns}"
    if samples is not None and header.components != samples:
        return "SamplesPerPixel", f"the {kind} codestream has {header.components} components"
    if bits is not None and header.precision > bits:
        return "BitsAllocated", f"the {kind} codestream has {header.precision}-bit samples"
    return None


def frame_problem(data, tsyntax: str, rows: int, columns: int, samples: Optional[int] = None,
                  bits: Optional[int] = None) -> Optional[Tuple[str, str]]:
    """``(attribute, reason)`` when the compressed frame ``data`` cannot be handed to a decoder for
    ``rows x columns`` pixels of ``samples`` samples of ``bits`` allocated bits, or None when it can.

    Reads only the header bytes of the frame.  A frame whose header cannot be found or checked is
    refused with the reason; ``samples`` and ``bits`` None: not checked.
    """
    tsyntax = str(tsyntax)
    if tsyntax in _JPEG_SYNTAXES or tsyntax in _JPEG_LS_SYNTAXES:
        kind = "JPEG-LS" if tsyntax in _JPEG_LS_SYNTAXES else "JPEG"
        walk = _jpeg_walk(data, tsyntax in _JPEG_LS_SYNTAXES)
        if walk.header is None:
            return "PixelData", f"its {kind} codestream header cannot be checked: {walk.problem}"
        return _check_header(walk.header, kind, rows, columns, samples, bits)
    if tsyntax in _J2K_SYNTAXES:
        header = j2k_header(data)
        if header is None:
            return "PixelData", "its JPEG 2000 codestream header (SIZ) cannot be found"
        return _check_header(header, "JPEG 2000", rows, columns, samples, bits)
    if tsyntax == _RLE_SYNTAX:
        segments = _rle_segments(data)
        if segments is None:
            return "PixelData", f"its RLE header ({len(data)} bytes) is not a valid segment table"
        count, longest = segments
        if samples is not None and bits is not None and count != samples * ((bits + 7) // 8):
            return "SamplesPerPixel", f"it has {count} RLE segments, {samples * ((bits + 7) // 8)} expected"
        capacity = 64 * longest + 128
        if rows * columns > capacity:
            return "Rows", f"its RLE segments ({len(data)} bytes) decode to at most {capacity} bytes each"
        return None
    return "TransferSyntaxUID", f"no codestream check exists for transfer syntax {tsyntax}"


def frame_mismatch(data, tsyntax: str, rows: int, columns: int, samples: Optional[int] = None,
                   bits: Optional[int] = None) -> Optional[str]:
    """The reason of :func:`frame_problem`, or None."""
    problem = frame_problem(data, tsyntax, rows, columns, samples, bits)
    return None if problem is None else problem[1]
