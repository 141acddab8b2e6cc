"""``dicom.flat.read_flat`` against pydicom's dcmread: on every file it takes, the same top-level elements
before Pixel Data at the same value offsets, with the same lengths, VRs and raw values, and Pixel Data
ending the file; None on every file it must leave to pydicom; never an exception, never a hang, and
still pydicom's elements on corrupted copies of the files it takes."""

from __future__ import annotations

import os
import random
import struct
import threading
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from dicomrender.dicom.flat import EXPLICIT_LE, IMPLICIT_LE, read_flat

from .data import all_test_files
from .synthetic import make_dataset, write_dataset

DEFER = 4096
_PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
_UNDEFINED = 0xFFFFFFFF


PADDING = 0xFFFCFFFC  # Data Set Trailing Padding


def _dcmread(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, defer_size=DEFER)


def _disagreement(path: str, flat) -> str | None:
    """Where ``flat`` differs from what pydicom reads in ``path`` (None: they agree); pydicom raising
    on a file read_flat took is a disagreement too."""
    try:
        ds = _dcmread(path)
    except Exception as exc:
        return f"pydicom cannot read a file read_flat took: {type(exc).__name__}: {exc}"
    meta = getattr(ds, "file_meta", None)
    syntax = None if meta is None else meta.get("TransferSyntaxUID")
    if flat.syntax != syntax:
        return f"transfer syntax {flat.syntax} != {syntax}"
    explicit = flat.syntax == EXPLICIT_LE
    with open(path, "rb") as f:
        data = f.read()
    if flat.size != len(data):
        return f"size {flat.size} != {len(data)}"
    pixel = [t for t in ds.keys() if t in _PIXEL_TAGS]
    if len(pixel) != 1:
        return f"pydicom finds pixel elements {pixel}"
    pixel_tag = pixel[0]
    after = [int(t) for t in ds.keys() if t > pixel_tag]
    if after not in ([], [PADDING]):
        return f"pydicom finds elements after Pixel Data: {list(map(hex, after))}"
    element = ds.get_item(pixel_tag, keep_deferred=True)
    expected_pixel = (int(pixel_tag), element.VR if explicit else None, element.value_tell, element.length)
    if flat.pixel != expected_pixel:
        return f"pixel {flat.pixel} != pydicom's {expected_pixel}"
    last = ds.get_item(after[0], keep_deferred=True) if after else element
    if last.value_tell + last.length != len(data):
        return "Pixel Data (and the trailing padding) does not end the file"
    tags = [int(t) for t in ds.keys() if t < pixel_tag]
    if sorted(flat.elements) != tags:
        return f"elements {sorted(map(hex, flat.elements))} != pydicom's {list(map(hex, tags))}"
    for tag in tags:
        vr, offset, length = flat.elements[tag]
        element = ds.get_item(tag, keep_deferred=True)
        if explicit and vr != element.VR:
            return f"{tag:08X}: VR {vr} != pydicom's {element.VR}"
        if not explicit and vr is not None:
            return f"{tag:08X}: VR {vr} in an implicit VR file"
        if type(element) is RawDataElement:
            expected_length = -1 if element.length == _UNDEFINED else element.length
            if (offset, length) != (element.value_tell, expected_length):
                return f"{tag:08X}: at {offset} length {length}, pydicom {element.value_tell} {expected_length}"
            if length >= 0:
                raw = element.value
                if raw is None:  # deferred: the bytes where pydicom says they lie
                    raw = data[element.value_tell:element.value_tell + element.length]
                if flat.value(tag) != raw:
                    return f"{tag:08X}: value {flat.value(tag)!r} != pydicom's {raw!r}"
            continue
        # Converted by pydicom while reading: sequences (parsed into items) and Specific Character Set
        if offset != element.file_tell:
            return f"{tag:08X}: at {offset}, pydicom {element.file_tell}"
        if element.VR == "SQ":
            if element.is_undefined_length != (length == -1):
                return f"{tag:08X}: length {length}, pydicom undefined: {element.is_undefined_length}"
            continue
        raw = flat.value(tag)
        if raw is None:
            return f"{tag:08X}: no value"
        value = element.value
        values = [] if value in (None, "") else [value] if isinstance(value, str) else list(value)
        words = [w.strip(" \x00") for w in raw.decode("latin-1").split("\\")]
        if words != ([""] if not values else values):
            return f"{tag:08X}: value {raw!r} != pydicom's {value!r}"
    return None


def _assert_agrees(path: str, flat) -> None:
    problem = _disagreement(path, flat)
    assert problem is None, f"{path}: {problem}"


def _series(tmp_path, implicit: bool = False, count: int = 6) -> list:
    paths = []
    for i in range(count):
        pixels = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) + i
        ds = make_dataset(pixels, bits_stored=12, RescaleIntercept=-1024 - i % 2, RescaleSlope=1,
                          ImagePositionPatient=[0, 0, 2.5 * i], ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
                          PixelSpacing=[0.5, 0.5], SliceThickness=2.5, InstanceNumber=i + 1, SeriesNumber=3,
                          SeriesInstanceUID="1.2.3.4", StudyInstanceUID="1.2.3", SeriesDescription="flat")
        if implicit:
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        paths.append(write_dataset(ds, tmp_path / f"s{i:02d}.dcm"))
    return paths


def _nested(depth: int, undefined: bool = True) -> Dataset:
    """An item holding a sequence nested ``depth`` levels, every level of undefined length."""
    item = Dataset()
    item.CodeValue, item.CodeMeaning = "1", "leaf"
    for level in range(depth):
        item.is_undefined_length_sequence_item = undefined
        outer = Dataset()
        outer.CodeValue = str(level)
        leaf = Dataset()
        leaf.CodeValue = "leaf"
        leaf.is_undefined_length_sequence_item = undefined
        outer.ConceptNameCodeSequence = Sequence([item, leaf])
        outer["ConceptNameCodeSequence"].is_undefined_length = undefined
        item = outer
    item.is_undefined_length_sequence_item = undefined
    return item


def _with_sequences(path, depth: int, implicit: bool = False, undefined: bool = True) -> str:
    ds = make_dataset(np.arange(16 * 16, dtype=np.uint16).reshape(16, 16), Manufacturer="after",
                      SeriesDescription="nested", ImagePositionPatient=[1, 2, 3])
    ds.ReferencedImageSequence = Sequence([_nested(depth, undefined), _nested(1, undefined)])
    ds["ReferencedImageSequence"].is_undefined_length = undefined
    ds.AnatomicRegionSequence = Sequence([_nested(2, False)])  # defined length, stepped over whole
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return write_dataset(ds, path)


def test_read_flat_agrees_with_pydicom_on_every_test_file():
    files = all_test_files()
    taken = 0
    for path in files:
        flat = read_flat(path)
        if flat is None:
            continue
        taken += 1
        _assert_agrees(path, flat)
    assert taken >= 30, f"read_flat took only {taken} of {len(files)} test files"


@pytest.mark.parametrize("implicit", [False, True])
def test_read_flat_agrees_with_pydicom_on_a_series(tmp_path, implicit):
    for path in _series(tmp_path, implicit):
        flat = read_flat(path)
        assert flat is not None, path
        assert flat.syntax == (IMPLICIT_LE if implicit else EXPLICIT_LE)
        assert flat.pixel[3] == 64 * 64 * 2 and flat.pixel[2] + flat.pixel[3] == os.path.getsize(path)
        _assert_agrees(path, flat)


@pytest.mark.parametrize("implicit", [False, True])
def test_undefined_length_sequences_are_stepped_over(tmp_path, implicit):
    path = _with_sequences(tmp_path / "seq.dcm", 3, implicit)
    data = open(path, "rb").read()
    assert data.count(b"\xfe\xff\xdd\xe0") >= 4 and data.count(b"\xfe\xff\x0d\xe0") >= 4  # written undefined
    flat = read_flat(path)
    assert flat is not None
    assert flat.elements[0x00081140][2] == -1 and flat.value(0x00081140) is None
    assert flat.elements[0x00082218][2] > 0  # the defined-length sequence, with its length
    assert flat.value(0x00080070) == b"after "  # Manufacturer, after the sequences
    _assert_agrees(path, flat)


def test_sequences_nested_too_deep_are_left_to_pydicom(tmp_path):
    assert read_flat(_with_sequences(tmp_path / "ten.dcm", 10)) is not None
    deep = _with_sequences(tmp_path / "deep.dcm", 40)
    assert read_flat(deep) is None
    assert _dcmread(deep).ReferencedImageSequence[0].CodeValue == "39"  # pydicom reads it


@pytest.mark.parametrize("name", ["image_dfl.dcm", "MR_small_bigendian.dcm", "JPEG-lossy.dcm", "SC_rgb_rle.dcm",
                                  "no_meta.dcm", "MR_truncated.dcm", "rtplan.dcm", "test-SR.dcm",
                                  "meta_missing_tsyntax.dcm"])
def test_files_left_to_pydicom(name):
    # deflated, big endian, JPEG, RLE, no preamble, truncated, no Pixel Data, no Transfer Syntax
    assert read_flat(get_testdata_file(name)) is None


def _declined(path, data: bytes) -> bool:
    with open(path, "wb") as f:
        f.write(data)
    return read_flat(str(path)) is None


def test_broken_copies_are_left_to_pydicom(tmp_path):
    path = _series(tmp_path, count=1)[0]
    data = open(path, "rb").read()
    flat = read_flat(path)
    assert flat is not None
    target = tmp_path / "copy.dcm"
    assert _declined(target, data[:-1])  # truncated inside Pixel Data
    assert _declined(target, data[:flat.pixel[2] + 100])
    assert _declined(target, data[128:])  # no preamble
    assert _declined(target, b"\0" * 128 + b"DICM")
    assert _declined(target, data + b"\0\0")  # bytes after Pixel Data
    assert not _declined(target, data)
    ds = _dcmread(path)
    ds.add_new(PADDING, "OB", b"\0" * 8)  # Data Set Trailing Padding: taken, as pydicom reads it
    padded = write_dataset(ds, tmp_path / "padded.dcm")
    flat = read_flat(padded)
    assert flat is not None
    _assert_agrees(padded, flat)
    data = open(padded, "rb").read()
    assert _declined(target, data + b"\0\0")  # bytes after the padding
    assert _declined(target, data[:-1])  # the padding cut short
    ds = _dcmread(path)
    ds.add_new(0x7FE10010, "LO", "after")  # an element after Pixel Data
    assert read_flat(write_dataset(ds, tmp_path / "after.dcm")) is None
    ds = _dcmread(path)
    del ds.PixelData
    assert read_flat(write_dataset(ds, tmp_path / "nopixels.dcm")) is None


def test_meta_group_length_that_overstates_the_meta_is_left_to_pydicom(tmp_path):
    # pydicom reads the File Meta up to the first element of another group, whatever its Group Length says:
    # a Group Length covering the first data set elements must not hide them
    ds = make_dataset(np.zeros((4, 4), np.uint16), SpecificCharacterSet="ISO_IR 100")
    path = write_dataset(ds, tmp_path / "a.dcm")
    data = bytearray(open(path, "rb").read())
    (meta_length,) = struct.unpack_from("<L", data, 140)
    assert data[144 + meta_length:144 + meta_length + 4] == b"\x08\x00\x05\x00"
    struct.pack_into("<L", data, 140, meta_length + 18)  # (0008,0005) CS "ISO_IR 100": 18 bytes
    open(path, "wb").write(data)
    assert 0x00080005 in _dcmread(path)
    assert read_flat(path) is None  # pydicom reads it otherwise: left to pydicom


def test_not_regular_files_and_small_files(tmp_path):
    assert read_flat(str(tmp_path)) is None
    assert read_flat(str(tmp_path / "missing.dcm")) is None
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    assert read_flat(str(empty)) is None
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    result = []
    thread = threading.Thread(target=lambda: result.append(read_flat(fifo)), daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock it before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert result == [None]


# Corrupted copies ------------------------------------------------------------------------------------------

def _length_fields(flat):
    """``(offset, size)`` of the length field of every top-level element and of Pixel Data."""
    explicit = flat.syntax == EXPLICIT_LE
    fields = []
    for vr, offset, _ in list(flat.elements.values()) + [flat.pixel[1:]]:
        short = explicit and vr not in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV")
        fields.append((offset - 2, 2) if short else (offset - 4, 4))
    return fields


def _corrupted(data: bytes, flat, rng: random.Random):
    header = flat.pixel[2]
    for _ in range(250):  # byte flips in the header
        copy = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            copy[rng.randrange(128, header)] ^= rng.randint(1, 255)
        yield bytes(copy)
    for cut in range(0, header + 64, 37):
        yield data[:cut]
    for offset, size in _length_fields(flat):
        for value in (0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFF0, 1 << 22, 2, 0):
            copy = bytearray(data)
            copy[offset:offset + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")
            yield bytes(copy)
    yield data[:140] + b"\xff\xff\xff\xff" + data[144:]  # meta group length
    yield data[:140] + b"\x00\x00\x00\x00" + data[144:]


def test_corrupted_copies(tmp_path):
    sources = [get_testdata_file("MR_small_implicit.dcm"), get_testdata_file("SC_rgb_small_odd.dcm"),
               _with_sequences(tmp_path / "seq.dcm", 3), _with_sequences(tmp_path / "seqi.dcm", 3, implicit=True)]
    rng = random.Random(20240611)
    target = str(tmp_path / "corrupt.dcm")
    counts = {"copies": 0, "taken": 0}
    problems = []
    for source in sources:
        data = open(source, "rb").read()
        flat = read_flat(source)
        assert flat is not None, source
        for copy in _corrupted(data, flat, rng):
            with open(target, "wb") as f:
                f.write(copy)
            counts["copies"] += 1
            result = read_flat(target)  # never raises
            if result is None:
                continue
            counts["taken"] += 1
            problem = _disagreement(target, result)
            if problem is not None:
                problems.append(f"{os.path.basename(source)}: {problem[:300]}")
    assert not problems, f"{len(problems)} corrupted copies read_flat took disagree with pydicom: {problems[:8]}"
    assert counts["copies"] > 1000 and counts["taken"] > 0, counts


def test_implicit_undefined_length_element_that_is_not_a_sequence(tmp_path):
    # (0040,A027) is LO in the dictionary: pydicom reads its undefined-length value as bytes up to the
    # first (FFFE,E0DD), here the one of a nested sequence, and loses the thread of the data set
    path = _with_sequences(tmp_path / "seq.dcm", 3, implicit=True)
    data = open(path, "rb").read()
    sequence = b"\x40\x00\x43\xa0\xff\xff\xff\xff"  # ConceptNameCodeSequence, undefined length
    with open(path, "wb") as f:
        f.write(data.replace(sequence, b"\x40\x00\x27\xa0\xff\xff\xff\xff", 1))
    assert read_flat(path) is None  # pydicom reads it otherwise: left to pydicom
