"""Opening DICOM: the one rule that decides whether a file is DICOM, for single renders and batches.

A file is DICOM when it carries the ``DICM`` marker at byte 128 (PS3.10 7.1),
or, without the preamble, when it starts like a data set and parses into one
that has a SOP Class or image attributes.
"""

from __future__ import annotations

import io
import os
import stat
from typing import Optional

import pydicom
from pydicom.dataset import Dataset

from ..errors import DicomRenderError, InvalidDatasetError, NotDicomError, PixelDataError
from .deflate import read_deflated
from .elements import keyword_of, parse_elements
from .header import PIXEL_KEYWORDS
from .headers import read_header

__all__ = ["read_dataset", "read_file", "is_dicom_header", "parsed_to_end"]

#: Pixel Data (and other elements) larger than this are read by :func:`read_file` only when used, so
#: the header read that decides whether a file needs converting stays small.
_DEFER_SIZE = 64 * 1024
#: Files up to this size are read in one go when they are going to be rendered.
_WHOLE_READ_LIMIT = 256 * 1024 * 1024
#: A stream that cannot seek (a pipe, a socket, a decompressor) is read into memory first, up to this size.
_STREAM_READ_LIMIT = _WHOLE_READ_LIMIT
_STREAM_CHUNK = 1 << 20
#: Groups a DICOM data set without preamble starts with (command, file meta, identifying), either byte order.
_HEADLESS_STARTS = (b"\x00\x00", b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def is_dicom_header(head: bytes) -> bool:
    """True when the first 132 bytes carry the ``DICM`` marker of a DICOM file (PS3.10 7.1)."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def _parse(source, head: bytes, filename: Optional[str], **options) -> Dataset:
    """The data set of ``source`` (a path, or a binary file at the start of the data), whose first
    132 bytes are ``head``; :class:`NotDicomError` when it is not DICOM.

    Errors of a file with the ``DICM`` marker are pydicom's: the file is DICOM, and broken.
    """
    if is_dicom_header(head):
        return pydicom.dcmread(source, **options)
    if head[:2] not in _HEADLESS_STARTS:
        raise NotDicomError("not a DICOM file (no DICM marker at byte 128)", filename=filename)
    # Without the preamble a file is DICOM when its data set parses and looks like one.
    try:
        ds = pydicom.dcmread(source, force=True, **options)
    except Exception as exc:
        raise NotDicomError(f"not a DICOM file (no DICM marker; parse failed: {type(exc).__name__}: {exc})",
                            filename=filename) from None
    if "SOPClassUID" not in ds and "Rows" not in ds:
        raise NotDicomError("not a DICOM file (no DICM marker and no SOP Class or image attributes)",
                            filename=filename)
    return ds


def read_dataset(src, *, stop_before_pixels: bool = False) -> tuple:
    """Return ``(dataset, filename)`` for a Dataset, a path or a binary file-like object.

    The elements rendering reads are decoded now, so a corrupt one raises here.

    Raises
    ------
    NotDicomError
        Naming the file, when it is not DICOM or cannot be parsed.
    """
    if isinstance(src, Dataset):
        filename = src.filename if isinstance(getattr(src, "filename", None), str) else None
        parse_elements(src, filename)
        return src, filename
    if isinstance(src, (str, os.PathLike)):
        filename = os.fspath(src)
        with open(filename, "rb") as f:  # a missing file or a folder raises OSError as it is
            ds = _read_open(f, filename, stop_before_pixels)
    else:
        filename = getattr(src, "name", None)
        filename = filename if isinstance(filename, str) else None
        ds = _read_open(_seekable(src, filename), filename, stop_before_pixels)
    parse_elements(ds, filename)
    return ds, filename


def _seekable(f, filename: Optional[str]):
    """``f``, or its bytes in memory when it cannot seek: telling DICOM from not-DICOM and pydicom's
    parser both step back.  The copy is bounded by ``_STREAM_READ_LIMIT``.

    Raises
    ------
    NotDicomError
        ``f`` is not a readable binary stream, or holds more than the limit.
    """
    try:
        if f.seekable():
            return f
    except (AttributeError, TypeError, ValueError, OSError):  # no seekable(), or a closed stream
        pass
    buffer = io.BytesIO()
    while True:
        try:
            chunk = f.read(_STREAM_CHUNK)
        except (AttributeError, TypeError, io.UnsupportedOperation) as exc:
            raise NotDicomError(f"cannot read {type(f).__name__} as a binary stream: {type(exc).__name__}: {exc}; "
                                f"pass a path, a binary file or a pydicom Dataset", filename=filename) from None
        if chunk is None or not isinstance(chunk, (bytes, bytearray, memoryview)):
            what = "no data ready (a non-blocking stream)" if chunk is None else f"{type(chunk).__name__}, not bytes"
            raise NotDicomError(f"cannot read {type(f).__name__} as a binary stream: read() gave {what}",
                                filename=filename)
        if not chunk:
            break
        buffer.write(chunk)
        if buffer.tell() > _STREAM_READ_LIMIT:
            raise NotDicomError(f"a stream that cannot seek is read into memory, up to {_STREAM_READ_LIMIT} bytes; "
                                f"this one holds more: pass a path or a seekable file", filename=filename)
    buffer.seek(0)
    return buffer


def _read_open(f, filename: Optional[str], stop_before_pixels: bool) -> Dataset:
    try:
        start = f.tell()
        head = f.read(132)
        f.seek(start)
        inflated = read_deflated(f, filename, stop_before_pixels=stop_before_pixels)
        if inflated is not None:
            return inflated.dataset
        return _parse(f, head, filename, stop_before_pixels=stop_before_pixels)
    except DicomRenderError:
        raise
    except RecursionError:  # pydicom parses sequences of undefined length as it reads, a few frames per level
        raise InvalidDatasetError("its sequences nest too deep to be parsed (hundreds of levels): refused",
                                  filename=filename) from None
    except Exception as exc:
        raise NotDicomError(f"cannot parse as DICOM: {type(exc).__name__}: {exc}", filename=filename) from None


def read_file(path: str, *, whole: bool) -> tuple:
    """``(dataset, file size)`` of the file at ``path``, for batch conversion (for a deflated data set,
    the size inflated: the offsets of its elements are in the inflated data).

    Only regular files are opened (a FIFO or a device could block or never
    end).  ``whole``: read the file in one go (it is going to be rendered);
    else leave large values (Pixel Data) on disk until used, so that deciding
    that a file needs no work costs a header read.  Errors of a broken DICOM
    file are pydicom's (the batch records their class).

    Raises
    ------
    NotDicomError
        When it is not a regular file, or not DICOM.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotDicomError("not a regular file", filename=path)
    whole = whole and st.st_size <= _WHOLE_READ_LIMIT
    with open(path, "rb") as f:
        head = f.read(132)
        f.seek(0)
        size = st.st_size
        # A deflated data set is read whole, inflated (and bounded): its size is the inflated size
        inflated = read_deflated(f, path)
        ds: Dataset
        # Whole: pydicom reads from this open file, Pixel Data included; else it reopens
        # the file by name for the deferred values, if ever needed.
        if inflated is not None:
            ds, size = inflated
        elif whole:
            ds = _parse(f, head, path)
        else:
            f.seek(0)
            ds = read_header(f, path, _DEFER_SIZE) or _parse(path, head, path, defer_size=_DEFER_SIZE)
    ds.filename = path  # error messages name the file
    return ds, size


def parsed_to_end(ds: Dataset, path: str, size: int) -> Optional[bool]:
    """Whether the last element ends exactly at the end of the file (None: cannot tell).

    pydicom returns what it could read of a truncated file without a word; a
    last element whose declared length runs past the end of the file is
    truncated, and is an error (:class:`PixelDataError` for pixel data, else
    :class:`InvalidDatasetError`).
    """
    tags = list(ds.keys())
    if not tags:
        return False
    try:
        # key=int: the same tag, compared as plain ints instead of through BaseTag's Python __gt__
        last = max(tags, key=int)
        element = ds.get_item(last, keep_deferred=True)  # pydicom >= 3 would read a deferred value
    except TypeError:
        element = ds.get_item(last)
    length, offset = getattr(element, "length", None), getattr(element, "value_tell", None)
    if length is None or offset is None or length == 0xFFFFFFFF:
        return None
    end = offset + length
    if end > size:
        keyword = keyword_of(element.tag)
        pixels = any(keyword == name for name, _ in PIXEL_KEYWORDS)
        error = PixelDataError if pixels else InvalidDatasetError
        raise error(f"the file is truncated: {keyword} needs {length} bytes at offset {offset}, the file has "
                    f"{size - offset}", filename=path, attribute=keyword)
    return end == size
