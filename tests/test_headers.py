"""The quick header reader against pydicom's dcmread: the same elements, raw values, offsets and file meta
on every test file it takes, and None (dcmread then reads it) on every file it does not."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomrender.dicom.headers import read_header
from dicomrender.dicom.source import read_file

from .data import all_test_files

DEFER = 64 * 1024


def _elements(ds) -> list:
    rows = []
    for tag in sorted(ds.keys()):
        element = ds.get_item(tag, keep_deferred=True)
        value = getattr(element, "value", None)
        rows.append((int(tag), element.VR, getattr(element, "length", None), getattr(element, "value_tell", None),
                     value if isinstance(value, (bytes, type(None))) else repr(value)))
    return rows


def test_quick_header_equals_dcmread_on_every_test_file():
    files = all_test_files()
    taken = 0
    for path in files:
        with open(path, "rb") as f:
            quick = read_header(f, path, DEFER)
        try:
            expected = pydicom.dcmread(path, defer_size=DEFER)
        except Exception:
            assert quick is None, f"{path}: dcmread fails, the quick reader must leave it to dcmread"
            continue
        if quick is None:
            continue
        taken += 1
        assert _elements(quick) == _elements(expected), path
        assert _elements(quick.file_meta) == _elements(expected.file_meta), path
        assert quick.preamble == expected.preamble and quick.filename == expected.filename, path
        assert quick.original_encoding == expected.original_encoding, path
        assert quick.original_character_set == expected.original_character_set, path
    assert taken >= len(files) // 2, f"the quick reader took only {taken} of {len(files)} files"


@pytest.mark.parametrize("name", ["image_dfl.dcm", "no_meta.dcm"])
def test_files_the_quick_reader_leaves_to_dcmread(name):
    path = get_testdata_file(name)
    with open(path, "rb") as f:
        assert read_header(f, path, DEFER) is None  # deflated; no preamble
        assert f.tell() == 0  # back at the start for dcmread


def test_read_file_gives_dcmreads_elements():
    path = get_testdata_file("rtplan.dcm")  # sequences of every kind
    ds, _ = read_file(path, whole=False)
    assert _elements(ds) == _elements(pydicom.dcmread(path, defer_size=DEFER))


def test_a_truncated_header_is_left_to_dcmread(tmp_path):
    data = open(get_testdata_file("CT_small.dcm"), "rb").read()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:900])
    with open(cut, "rb") as f:
        quick = read_header(f, str(cut), DEFER)
    try:
        expected = pydicom.dcmread(str(cut), defer_size=DEFER)
    except Exception:
        assert quick is None
    else:
        assert quick is None or _elements(quick) == _elements(expected)
