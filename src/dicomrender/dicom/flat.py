"""A file's top-level elements read straight from its bytes: where each value lies, nothing decoded.

Sorting a series reads hundreds of headers, and the few attributes it needs (UIDs, position,
orientation, spacing, the image pixel group) are a small part of what a pydicom parse builds: a
``FileDataset`` with its File Meta, one element object per attribute, each sequence parsed into items.
:func:`read_flat` walks the elements of the common files instead — a ``DICM`` preamble, File Meta
Information with its Group Length, an Implicit or Explicit VR Little Endian data set, native Pixel
Data ending the file (or followed only by Data Set Trailing Padding) — and records
``tag -> (VR, value offset, length)`` for the top-level elements up to Pixel Data, walking over
sequences as pydicom reads them (their items are checked, not kept).

It never decides anything about a file it does not fully understand: a command set, another transfer
syntax, a duplicate or out-of-order tag, an unknown VR, an undefined length outside a sequence, a
header over :data:`MAX_HEADER` bytes, Pixel Data that is encapsulated, missing, or that does not end
the file (truncated, or elements other than the padding after it): :func:`read_flat` returns None and
the caller reads the file with pydicom, whose result or error then stands.  ``tests/test_flat.py``
compares the elements found with pydicom's on every test file and on corrupted copies of them.
"""

from __future__ import annotations

import functools
import os
import stat
import struct
from typing import Dict, Optional, Tuple

from pydicom.datadict import dictionary_VR

__all__ = ["FlatHeader", "read_flat", "MAX_HEADER", "IMPLICIT_LE", "EXPLICIT_LE", "LONG_VRS"]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
#: Bytes of a header (everything before Pixel Data) read here at most; longer headers go to pydicom.
MAX_HEADER = 4 << 20
#: The first read: most headers are a few KiB.
_FIRST_READ = 16 << 10
#: Sequences nested deeper than this go to pydicom.
_MAX_DEPTH = 16

_PIXEL_TAGS = frozenset((0x7FE00010, 0x7FE00008, 0x7FE00009))
_ITEM, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
#: Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2), and the others.
LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"))
_SHORT_VRS = frozenset((b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
                        b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"))
#: Explicit VR code -> (VR, whether its length is the 4-byte form).
_VR_FORMS = {**{vr: (vr.decode(), True) for vr in LONG_VRS}, **{vr: (vr.decode(), False) for vr in _SHORT_VRS}}
_TAG_LENGTH = struct.Struct("<HHL")  # implicit VR element header; also item and delimiter headers
_EXPLICIT = struct.Struct("<HH2sHL")  # explicit VR element header: short length, or reserved + long length
_LONG_LENGTH = struct.Struct("<L")
_META_START = b"\x02\x00\x00\x00UL\x04\x00"


class _Decline(Exception):
    """The file is not one read here (pydicom reads it)."""


class FlatHeader:
    """The top-level elements before Pixel Data of one file.

    Attributes
    ----------
    path : str
    size : int
        The file's size in bytes.
    syntax : str
        Its Transfer Syntax UID (:data:`IMPLICIT_LE` or :data:`EXPLICIT_LE`).
    elements : dict
        ``tag (int) -> (VR or None, value offset in the file, length)``: the VR is None in Implicit VR
        files; sequences are listed (with their length, or -1 for an undefined length), not their items.
    pixel : (int, str or None, int, int)
        Pixel Data (or Float / Double Float Pixel Data): ``(tag, VR, value offset, length)``; the value
        ends the file, or only Data Set Trailing Padding follows.
    """

    __slots__ = ("path", "size", "syntax", "elements", "pixel", "_data")

    def __init__(self, path: str, size: int, syntax: str, elements: Dict[int, Tuple[Optional[str], int, int]],
                 pixel: Tuple[int, Optional[str], int, int], data: bytes):
        self.path, self.size, self.syntax = path, size, syntax
        self.elements, self.pixel, self._data = elements, pixel, data

    def value(self, tag: int) -> Optional[bytes]:
        """The raw value of a top-level element before Pixel Data (None when absent or a sequence of
        undefined length)."""
        found = self.elements.get(tag)
        if found is None or found[2] < 0:
            return None
        _, offset, length = found
        return self._data[offset:offset + length]


class _Reader:
    """The start of a file, read further on demand up to :data:`MAX_HEADER` bytes."""

    __slots__ = ("fd", "size", "data")

    def __init__(self, fd: int, size: int):
        self.fd, self.size = fd, size
        self.data = os.pread(fd, min(_FIRST_READ, size), 0)

    def need(self, end: int) -> bytes:
        """The data read so far, holding at least ``end`` bytes; _Decline past the header limit or the file."""
        if end > len(self.data):
            if end > MAX_HEADER or end > self.size:
                raise _Decline
            want = min(max(end, 2 * len(self.data)), MAX_HEADER, self.size)
            more = os.pread(self.fd, want - len(self.data), len(self.data))
            self.data += more
            if end > len(self.data):
                raise _Decline
        return self.data


def read_flat(path: str) -> Optional[FlatHeader]:
    """The :class:`FlatHeader` of the regular file at ``path``, or None when pydicom must read it (see
    the module's description: anything unusual, missing or broken)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size < 144:
            return None
        reader = _Reader(fd, st.st_size)
        try:
            return _walk(path, reader)
        except (_Decline, struct.error, UnicodeDecodeError):
            return None
    except OSError:
        return None
    finally:
        os.close(fd)


def _walk(path: str, reader: _Reader) -> Optional[FlatHeader]:
    data = reader.data
    if data[128:132] != b"DICM" or data[132:140] != _META_START:
        return None
    (meta_length,) = _LONG_LENGTH.unpack_from(data, 140)
    start = 144 + meta_length
    data = reader.need(start + 12)
    syntax = _transfer_syntax(data, 144, start)
    if syntax not in (IMPLICIT_LE, EXPLICIT_LE):
        return None
    implicit = syntax == IMPLICIT_LE
    elements: Dict[int, Tuple[Optional[str], int, int]] = {}
    pos, last, end = start, -1, len(data)
    while True:
        if pos + 12 > end:  # an element header (a value follows: Pixel Data is yet to come)
            data = reader.need(pos + 12)
            end = len(data)
        tag, vr, length, at = _element(data, pos, implicit)
        if tag <= last or tag < 0x00080000 or tag >= 0xFFFE0000:  # out of order, duplicate, command set, item
            return None
        last = tag
        if tag in _PIXEL_TAGS:
            if length == _UNDEFINED or length == 0 or not _ends_file(reader, at + length, implicit):
                return None  # encapsulated, or truncated, or other elements after it
            return FlatHeader(path, reader.size, syntax, elements, (tag, vr, at, length), reader.data)
        if length == _UNDEFINED:
            if not _may_be_sequence(tag, vr):  # e.g. UN of undefined length: implicit VR inside
                return None
            pos = _sequence(reader, at, None, implicit, 1)
            elements[tag] = (vr, at, -1)
        else:
            if _is_sequence(tag, vr):  # walked: its items must end where its length says, as pydicom reads them
                _sequence(reader, at, at + length, implicit, 1)
            elements[tag] = (vr, at, length)
            pos = at + length
        data = reader.data
        end = len(data)


def _element(data: bytes, pos: int, implicit: bool) -> Tuple[int, Optional[str], int, int]:
    """``(tag, VR or None, length, value offset)`` of the element header at ``pos`` (12 bytes available)."""
    if implicit:
        group, number, length = _TAG_LENGTH.unpack_from(data, pos)
        return group << 16 | number, None, length, pos + 8
    group, number, code, short, long = _EXPLICIT.unpack_from(data, pos)
    form = _VR_FORMS.get(code)
    if form is None:
        raise _Decline
    vr, is_long = form
    return (group << 16 | number, vr, long, pos + 12) if is_long else (group << 16 | number, vr, short, pos + 8)


def _transfer_syntax(data: bytes, start: int, end: int) -> Optional[str]:
    """The Transfer Syntax UID of the File Meta elements in ``data[start:end]`` (Explicit VR LE; ``data``
    holds at least 12 bytes past ``end``); None unless they end exactly at ``end``: pydicom reads the
    File Meta up to the first element of another group, whatever its Group Length says."""
    pos, syntax = start, None
    while pos + 8 <= end:
        tag, _, length, at = _element(data, pos, False)
        if tag >> 16 != 2 or length == _UNDEFINED or at + length > end:
            return None
        if tag == 0x00020010:
            syntax = data[at:at + length].decode("ascii").rstrip(" \x00")
        pos = at + length
    return syntax if pos == end else None


def _ends_file(reader: _Reader, pos: int, implicit: bool) -> bool:
    """Whether the file ends at ``pos``, or after one Data Set Trailing Padding element starting there."""
    if pos >= reader.size:
        return pos == reader.size
    head = os.pread(reader.fd, 12, pos)
    if len(head) < 12 or head[:4] != b"\xfc\xff\xfc\xff":
        return False
    tag, _, length, at = _element(head, 0, implicit)
    return length != _UNDEFINED and pos + at + length == reader.size


def _is_sequence(tag: int, vr: Optional[str]) -> bool:
    """Whether pydicom reads the element of defined length as a sequence: its VR, or in Implicit VR the
    dictionary's."""
    return vr == "SQ" if vr is not None else _dictionary_vr(tag) == "SQ"


def _may_be_sequence(tag: int, vr: Optional[str]) -> bool:
    """Whether an element of undefined length is read as a sequence: SQ, or in Implicit VR a tag the
    dictionary does not know (pydicom then looks for items) or knows as SQ."""
    return vr == "SQ" if vr is not None else _dictionary_vr(tag) in (None, "SQ")


@functools.lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> Optional[str]:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _sequence(reader: _Reader, pos: int, end: Optional[int], implicit: bool, depth: int) -> int:
    """The offset after a sequence whose first item starts at ``pos``: at its Sequence Delimitation Item
    (``end`` None: undefined length), else exactly at ``end``."""
    if depth > _MAX_DEPTH:
        raise _Decline
    while end is None or pos < end:
        data = reader.need(pos + 8)
        group, number, length = _TAG_LENGTH.unpack_from(data, pos)
        tag = group << 16 | number
        if tag == _SEQUENCE_END and end is None:
            return pos + 8
        if tag != _ITEM:
            raise _Decline
        pos = _item(reader, pos + 8, None if length == _UNDEFINED else pos + 8 + length, implicit, depth)
    if pos != end:
        raise _Decline
    return pos


def _item(reader: _Reader, pos: int, end: Optional[int], implicit: bool, depth: int) -> int:
    """The offset after an item whose first element starts at ``pos``: at its Item Delimitation Item
    (``end`` None: undefined length), else exactly at ``end``."""
    while end is None or pos < end:
        data = reader.need(pos + 8)
        if end is None and _TAG_LENGTH.unpack_from(data, pos)[:2] == (0xFFFE, 0xE00D):
            return pos + 8
        data = reader.need(pos + 12)
        tag, vr, length, at = _element(data, pos, implicit)
        if tag >= 0xFFFE0000:
            raise _Decline
        if length == _UNDEFINED:
            if not _may_be_sequence(tag, vr):
                raise _Decline
            pos = _sequence(reader, at, None, implicit, depth + 1)
        else:
            if _is_sequence(tag, vr):
                _sequence(reader, at, at + length, implicit, depth + 1)
            pos = at + length
            reader.need(pos)
    if pos != end:
        raise _Decline
    return pos
