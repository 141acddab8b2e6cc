"""Reading a file's header quickly: pydicom's element reader without ``dcmread``'s per-file extras.

Listing and sorting a series reads hundreds of headers up to Pixel Data, and ``dcmread`` spends about a
third of that time around the parse itself (preamble and command-set passes, file-object handling).
For the common files — a ``DICM`` preamble, File Meta Information, then an uncompressed or encapsulated
data set in Implicit VR Little Endian, Explicit VR Little Endian or Explicit VR Big Endian —
:func:`read_header` calls pydicom's own readers (``read_dataset`` on the open file, values over the
deferral size left on disk) and builds the same ``FileDataset`` ``dcmread`` would.  Anything else
(no preamble, a command set, deflated or private transfer syntaxes, a reader error) returns None and
the caller uses ``dcmread``, so results and errors never differ from it (``tests/test_headers.py``
compares both on every test file).
"""

from __future__ import annotations

import struct
from typing import Dict, Optional, Union

from pydicom import filereader
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.tag import BaseTag, TupleTag
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .flat import LONG_VRS

__all__ = ["read_header"]

#: (implicit VR, little endian) of the transfer syntaxes read here.
_ENCODINGS = {ImplicitVRLittleEndian: (True, True), ExplicitVRLittleEndian: (False, True),
              ExplicitVRBigEndian: (False, False)}
#: A File Meta group longer than this is not read here.
_MAX_META = 1 << 16


def read_header(f, filename: str, defer_size: int) -> Optional[FileDataset]:
    """The data set of the open binary file ``f`` (at its start, with the ``DICM`` marker at byte 128), values
    longer than ``defer_size`` deferred; None when :func:`pydicom.dcmread` must read it instead."""
    start = f.tell()
    try:
        read = _read(f, defer_size)
    except Exception:  # whatever it is, dcmread meets it again and reports it its own way
        read = None
    if read is None:
        f.seek(start)  # dcmread starts where this did
        return None
    preamble, meta, dataset, implicit, little = read
    ds = FileDataset(filename, dataset, preamble, meta, implicit, little)
    ds.set_original_encoding(implicit, little, dataset._character_set)
    return ds


def _read(f, defer_size: int):
    """``(preamble, file meta, data set, implicit VR, little endian)``, or None for dcmread's files."""
    preamble = f.read(128)
    if f.read(4) != b"DICM":
        return None
    meta = _file_meta(f)
    if meta is None:
        return None
    syntax = meta.get("TransferSyntaxUID")
    if syntax in _ENCODINGS:
        implicit, little = _ENCODINGS[syntax]
    elif syntax is not None and syntax.is_encapsulated and not syntax.is_deflated and syntax.is_little_endian \
            and not syntax.is_implicit_VR:  # compressed pixel data in Explicit VR Little Endian
        implicit, little = False, True
    else:  # none, deflated, private (an unknown UID raises: dcmread then reads it)
        return None
    peek = f.read(2)
    if len(peek) < 2 or struct.unpack("<H" if little else ">H", peek)[0] == 0:  # empty, or a command set
        return None
    f.seek(-2, 1)
    return preamble, meta, filereader.read_dataset(f, implicit, little, defer_size=defer_size), implicit, little


def _file_meta(f) -> Optional[FileMetaDataset]:
    """The File Meta Information (always Explicit VR Little Endian) as pydicom reads it, from its Group
    Length; None when that is missing or the group does not parse exactly (dcmread then reads it)."""
    where = f.tell()
    head = f.read(12)
    if len(head) < 12 or head[:8] != b"\x02\x00\x00\x00UL\x04\x00":
        return None
    (length,) = struct.unpack("<L", head[8:])
    if length > _MAX_META:
        return None
    body = f.read(length)
    if len(body) != length:
        return None
    group_length = TupleTag((2, 0))
    elements: Dict[BaseTag, Union[DataElement, RawDataElement]] = {
        group_length: RawDataElement(group_length, "UL", 4, head[8:], where + 8, False, True)}
    offset = 0
    while offset < length:
        if offset + 8 > length:
            return None
        group, element, vr = struct.unpack_from("<HH2s", body, offset)
        if group != 2 or not vr.isalpha() or not vr.isupper():
            return None
        if vr in LONG_VRS:
            if offset + 12 > length:
                return None
            (size,) = struct.unpack_from("<L", body, offset + 8)
            offset += 12
        else:
            (size,) = struct.unpack_from("<H", body, offset + 6)
            offset += 8
        if size == 0xFFFFFFFF or offset + size > length:
            return None
        tag = TupleTag((group, element))
        elements[tag] = RawDataElement(tag, vr.decode("ascii"), size, body[offset:offset + size],
                                       where + 12 + offset, False, True)
        offset += size
    meta = FileMetaDataset(elements)
    meta.set_original_encoding(False, True, "iso8859")
    meta[0x00020000]  # decoded, as pydicom's reader leaves it (it checks the group length)
    return meta
