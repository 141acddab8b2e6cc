"""``series.quick.read_headers`` against the full read (``sources.read_one``, pydicom, each file on its
own): the same slice headers and the same skipped files, field by field, on the test files and on
series built to exercise the template path (and its fallbacks: malformed numbers, character sets,
multi-frame and enhanced objects, broken files)."""

from __future__ import annotations

import dataclasses
import os
import random
import shutil

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

import dicomrender.series.find as find
import dicomrender.series.quick as quick
from dicomrender.dicom.flat import read_flat
from dicomrender.dicom.header import DEFAULT_MAX_PIXELS
from dicomrender.series.sources import Skipped, read_one

from .data import all_test_files, data_file
from .synthetic import make_dataset, write_dataset

KINDS = 3  # intercepts alternate between this many values in a generated series


def _parameters(p) -> tuple:
    """FrameParameters by value: the modality transform, the windows, every VOI LUT's table."""
    modality = p.modality
    if hasattr(modality, "data"):
        modality = ("lut", modality.data.dtype.str, modality.data.tobytes(), modality.first_mapped)
    luts = tuple((lut.data.dtype.str, lut.data.tobytes(), lut.first_mapped, lut.bits, lut.explanation)
                 for lut in p.voi_luts)
    return (repr(modality), repr(list(p.windows)), luts, p.hounsfield)


def _header(h) -> tuple:
    return tuple(_parameters(v) if f.name == "parameters" else repr(v)
                 for f, v in ((f, getattr(h, f.name)) for f in dataclasses.fields(h)))


def _skipped(s: Skipped) -> tuple:
    return (s.source, s.name, s.reason, s.message, s.series_uid, type(s.error), str(s.error))


def _full(items, max_pixels=DEFAULT_MAX_PIXELS):
    headers, skipped = [], []
    for item in items:
        result = read_one(item, None, max_pixels, {})
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            headers.extend(result)
    return headers, skipped


def _assert_same(items, max_pixels=DEFAULT_MAX_PIXELS):
    """read_headers gives what the full read gives; returns the headers and the skipped."""
    headers, skipped = quick.read_headers(items, None, max_pixels)
    full_headers, full_skipped = _full(items, max_pixels)
    assert [_skipped(s) for s in skipped] == [_skipped(s) for s in full_skipped]
    assert len(headers) == len(full_headers)
    for got, expected in zip(headers, full_headers):
        assert _header(got) == _header(expected), expected.name
    return headers, skipped


@pytest.fixture
def count_full_reads(monkeypatch):
    calls = []

    def counting(item, *args):
        calls.append(item)
        return read_one(item, *args)

    monkeypatch.setattr(quick, "read_one", counting)
    return calls


def _slice(i: int, frames: int = 0, implicit: bool = False, **attributes) -> Dataset:
    shape = (frames, 64, 64) if frames else (64, 64)
    pixels = (np.arange(int(np.prod(shape)), dtype=np.uint16).reshape(shape) + i) % 4096
    values = dict(RescaleIntercept=-1024 - i % KINDS, RescaleSlope=1, WindowCenter=40, WindowWidth=400,
                  ImagePositionPatient=[-100, -120.5, 2.5 * i], ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
                  PixelSpacing=[0.5, 0.5], SliceThickness=2.5, SpacingBetweenSlices=2.5, InstanceNumber=i + 1,
                  SeriesNumber=7, SeriesDescription="Head 1.0 H30s", SeriesInstanceUID="1.2.826.0.1.3680043.2.1",
                  StudyInstanceUID="1.2.826.0.1.3680043.2")
    values.update(attributes)
    ds = make_dataset(pixels, bits_stored=12, **values)
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def _series(folder, count: int = 30, implicit: bool = False) -> list:
    """``count`` slices under shuffled names, in name order (kinds alternate)."""
    os.makedirs(folder, exist_ok=True)
    names = [f"IM{n:04d}" for n in random.Random(count).sample(range(1000), count)]
    for i, name in enumerate(names):
        write_dataset(_slice(i, implicit=implicit), os.path.join(folder, name))
    return sorted(os.path.join(folder, name) for name in names)


def _patched(path, old: bytes, new: bytes) -> str:
    """``path`` with the value ``old`` replaced by ``new`` (same length), once."""
    data = open(path, "rb").read()
    assert len(old) == len(new) and data.count(old) == 1
    with open(path, "wb") as f:
        f.write(data.replace(old, new))
    return str(path)


def test_each_test_file_alone():
    for path in all_test_files():
        _assert_same([path])


def test_all_test_files_together_each_twice(tmp_path):
    # Every file read_flat takes comes again under another name: its second reading is from a template
    files = all_test_files()
    copies = []
    for i, path in enumerate(files):
        if read_flat(path) is not None:
            copies.append(shutil.copyfile(path, tmp_path / f"{i:03d}_{os.path.basename(path)}"))
    assert len(copies) >= 30, f"read_flat took only {len(copies)} of {len(files)} test files"
    items = [str(p) for pair in zip(files, files[1:] + files[:1]) for p in pair] + [str(p) for p in copies]
    headers, _ = _assert_same(items)
    read = {h.source for h in headers} & {str(p) for p in copies}
    assert len(read) >= 25, f"only {len(read)} of {len(copies)} copies give slices"


@pytest.mark.parametrize("implicit", [False, True])
def test_generated_series_reads_one_file_per_kind_the_full_way(tmp_path, count_full_reads, implicit):
    paths = _series(tmp_path / "series", implicit=implicit)
    headers, skipped = _assert_same(paths)
    assert not skipped and len(headers) == 30
    assert sorted(h.instance for h in headers) == list(range(1, 31))
    assert {h.position[2] for h in headers} == {2.5 * i for i in range(30)}
    count_full_reads.clear()
    quick.read_headers(paths, None)
    assert len(count_full_reads) == KINDS, f"{len(count_full_reads)} full reads for {KINDS} kinds of 30 files"


def test_a_scan_reads_one_file_per_kind_the_full_way_across_its_timed_first_files(tmp_path, count_full_reads,
                                                                                    monkeypatch):
    paths = _series(tmp_path / "series")
    monkeypatch.setattr(find, "PROBE_FILES", 2)  # the first kinds are met while timing, the third after
    monkeypatch.setattr(find, "FORK_PAYS_AFTER", float("inf"))  # the rest read in the caller
    count_full_reads.clear()
    found = find.scan(paths, jobs=2)
    assert len(count_full_reads) == KINDS, f"{len(count_full_reads)} full reads for {KINDS} kinds of 30 files"
    assert [_header(h) for h in found.headers] == [_header(h) for h in _full(paths)[0]]


def test_small_max_pixels_gives_the_full_reads_errors(tmp_path):
    paths = _series(tmp_path / "series", count=6)
    headers, skipped = _assert_same(paths, max_pixels=100)
    assert not headers and len(skipped) == 6


@pytest.mark.parametrize("value", [b"1\\2        ", b"a\\b\\c      ", b"nan\\0\\0    ", b"1\\2\\inf    ",
                                   b"1\\\\3       "])
def test_malformed_position_is_the_full_reads_error(tmp_path, count_full_reads, value):
    paths = _series(tmp_path / "series", count=9)
    ds = _slice(20, ImagePositionPatient=["100.5", "200.5", "3"])  # 12 bytes in the file, the kind of slice 2
    bad = _patched(write_dataset(ds, tmp_path / "series" / "bad.dcm"), b"100.5\\200.5\\3 ", value + b"   ")
    items = paths[:4] + [bad] + paths[4:]
    headers, skipped = _assert_same(items)
    assert len(headers) == 9 and [s.source for s in skipped] == [bad]
    assert "ImagePositionPatient" in skipped[0].message


@pytest.mark.parametrize("attributes", [
    dict(SpecificCharacterSet="ISO_IR 100", SeriesDescription="Schädel nativ"),
    dict(SpecificCharacterSet="ISO_IR 100", SeriesDescription="Thorax"),
    dict(SeriesDescription="a\\b"),
    dict(SeriesDescription=" padded "),
    dict(SpecificCharacterSet="ISO_IR 192", SeriesDescription="Éß 頭部"),
    dict(SeriesNumber=None, InstanceNumber=None, SliceThickness=None, SpacingBetweenSlices=None),
])
def test_text_attributes(tmp_path, attributes):
    folder = tmp_path / "text"
    folder.mkdir()
    items = []
    for i in range(4):
        items.append(write_dataset(_slice(i * KINDS, **attributes), folder / f"t{i}.dcm"))
    headers, _ = _assert_same(items)
    assert len(headers) == 4


def test_multi_frame_objects(tmp_path, count_full_reads):
    items = [write_dataset(_slice(i * KINDS, frames=3), tmp_path / f"mf{i}.dcm") for i in range(3)]
    headers, _ = _assert_same(items)
    assert [(h.frame, h.frames) for h in headers] == [(f, 3) for _ in range(3) for f in range(3)]
    assert all(h.position is None for h in headers)
    count_full_reads.clear()
    quick.read_headers(items, None)
    assert len(count_full_reads) == 1


def _enhanced(i: int) -> Dataset:
    ds = _slice(i, frames=2)
    del ds.ImagePositionPatient
    frames = []
    for f in range(2):
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = [0, 0, 5 * i + f]
        item.PlanePositionSequence = Sequence([position])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.7, 0.7], 1.5
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    return ds


def test_enhanced_objects(tmp_path, count_full_reads):
    items = [write_dataset(_enhanced(i * KINDS), tmp_path / f"en{i}.dcm") for i in range(3)]
    for name in ("eCT_Supplemental.dcm", "liver.dcm"):
        try:
            path = data_file(name)
        except pytest.skip.Exception:
            continue
        items += [path, shutil.copyfile(path, tmp_path / name)]
    items = [str(p) for p in items]
    headers, _ = _assert_same(items)
    assert [h.position[2] for h in headers[:6]] == [0, 1, 15, 16, 30, 31]
    count_full_reads.clear()
    quick.read_headers(items, None)
    assert len(count_full_reads) == len(items)  # functional groups: every file the full way


def test_broken_and_other_files_among_good_ones(tmp_path):
    paths = _series(tmp_path / "series", count=9)
    data = open(paths[3], "rb").read()
    truncated = tmp_path / "series" / "truncated"
    truncated.write_bytes(data[:-100])
    short = tmp_path / "series" / "short"
    short.write_bytes(data[:len(data) // 3 * 2])
    padded = tmp_path / "series" / "padded"
    padded.write_bytes(data + b"\xfc\xff\xfc\xff" + b"OB\0\0" + (4).to_bytes(4, "little") + b"\0" * 4)
    text = tmp_path / "series" / "notes.txt"
    text.write_text("not DICOM")
    empty = tmp_path / "series" / "empty"
    empty.write_bytes(b"")
    nopixels = make_dataset(np.zeros((64, 64), np.uint16))
    del nopixels.PixelData
    nopixels = write_dataset(nopixels, tmp_path / "series" / "nopixels")
    items = paths[:2] + [str(truncated), str(short), str(padded), str(text), str(empty), nopixels,
                         get_testdata_file("rtplan.dcm"), get_testdata_file("MR_truncated.dcm")] + paths[2:]
    headers, skipped = _assert_same(items)
    assert len(headers) == 10 and len(skipped) == 7  # the padded file gives a slice
    assert str(padded) in {h.source for h in headers}
