"""Series and volumes: find_series, render_series, SeriesDataset and ``dicomrender series``.

The series are made here with pydicom: a folder holding a second series, files without suffix in
shuffled order, InstanceNumber reversed against position, the intercept varying from slice to slice,
a gantry-tilted normal, an object without pixels and a file that is not DICOM.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import shutil
import tracemalloc
import warnings

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

import dicomrender
from dicomrender import _reference, cli
from dicomrender.errors import (
    DuplicateSliceError,
    SeriesError,
    SeriesGeometryError,
    SeriesSelectionError,
    SeriesWarning,
)
from dicomrender.series import SeriesDataset, find_series, render_series
from dicomrender.series import find as find_module
from dicomrender.series import volume as volume_module

from .synthetic import make_dataset, write_dataset

ROWS, COLS = 24, 20
SLICES = 12
TILT = 15.0  # degrees of gantry tilt
DZ = 2.5  # table step, mm
PIXEL_SPACING = (0.75, 0.6)  # row spacing, column spacing
INTERCEPTS = (-1024, -1000, -1012)


def _stored(seed: int, rows: int = ROWS, cols: int = COLS) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, (rows, cols), dtype=np.uint16)


def _iop(tilt: float = TILT) -> list:
    t = math.radians(tilt)
    return [1.0, 0.0, 0.0, 0.0, math.cos(t), -math.sin(t)]


def _slice(k: int, series_uid: str, count: int = SLICES, tilt: float = TILT, rows: int = ROWS, cols: int = COLS,
           **attributes) -> Dataset:
    """Slice ``k`` (in position order) of a tilted CT series: IPP moves along z only, the planes tilt."""
    values = dict(SeriesInstanceUID=series_uid, StudyInstanceUID="1.2.3", SeriesDescription="tilted head",
                  SeriesNumber=3, InstanceNumber=count - k, ImagePositionPatient=[-12.0, 30.0, 100.0 + DZ * k],
                  ImageOrientationPatient=_iop(tilt), PixelSpacing=list(PIXEL_SPACING), SliceThickness=DZ,
                  RescaleIntercept=INTERCEPTS[k % 3], RescaleSlope=1, WindowCenter=40, WindowWidth=80)
    values.update(attributes)
    return make_dataset(_stored(k, rows, cols), bits_stored=12, **values)


def _sr(series_uid: str) -> Dataset:
    ds = make_dataset(np.zeros((2, 2), np.uint16))
    for keyword in ("Rows", "Columns", "PixelData", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel",
                    "PhotometricInterpretation", "PixelRepresentation"):
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "SR"
    return ds


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A folder: the tilted series (shuffled suffix-less names), a second series in a subfolder, an SR
    object in the first series, and a text file.  Returns (root, uid, files in position order, other uid)."""
    root = tmp_path_factory.mktemp("study")
    uid, other = generate_uid(), generate_uid()
    names = [f"{n:08x}" for n in np.random.default_rng(7).permutation(1 << 20)[:SLICES]]
    files = [write_dataset(_slice(k, uid), root / names[k]) for k in range(SLICES)]
    (root / "sub").mkdir()
    for k in range(3):
        write_dataset(_slice(k, other, count=3, tilt=0.0, SeriesDescription="scout", Modality="CT"),
                      root / "sub" / f"IM{k}.dcm")
    write_dataset(_sr(uid), root / "report")
    (root / "notes.txt").write_text("not DICOM")
    return root, uid, files, other


def _exact(path, center=40.0, width=80.0) -> np.ndarray:
    """The per-slice exact result: pydicom's stored values through the float64 reference chain."""
    ds = pydicom.dcmread(path)
    m = _reference.modality_values(ds.pixel_array, float(ds.RescaleSlope), float(ds.RescaleIntercept))
    return _reference.to_uint8(_reference.voi_values(m, center, width))


# ---- find_series -----------------------------------------------------------------------


def test_find_series_lists_each_series_with_its_geometry(study):
    root, uid, files, other = study
    found = {s.series_uid: s for s in find_series(root)}
    assert set(found) == {uid, other}
    tilted = found[uid]
    assert (tilted.modality, tilted.description, tilted.number) == ("CT", "tilted head", 3)
    assert tilted.files == tuple(files)  # in slice order, not name order
    assert tilted.shape == (SLICES, ROWS, COLS)
    assert tilted.spacing == pytest.approx((DZ * math.cos(math.radians(TILT)), *PIXEL_SPACING))
    assert tilted.skipped == (str(root / "report"),) and tilted.problems == ()
    assert tilted.plane == "AXIAL" and found[other].shape == (3, ROWS, COLS)


def test_find_series_in_parallel_equals_serial(study, monkeypatch):
    root = study[0]
    monkeypatch.setattr(find_module, "FILES_PER_WORKER", 1)
    monkeypatch.setattr(find_module, "PROBE_FILES", 1)
    monkeypatch.setattr(find_module, "FORK_PAYS_AFTER", 0.0)
    serial = [(s.series_uid, s.files, s.shape) for s in find_series(root, jobs=1)]
    for executor in ("processes", "threads"):
        assert [(s.series_uid, s.files, s.shape) for s in find_series(root, jobs=2, executor=executor)] == serial


# ---- render_series: pixels in position order ---------------------------------------------


def test_several_series_need_a_series_uid_and_the_message_lists_them(study):
    root, uid, _, other = study
    with pytest.raises(SeriesSelectionError) as info:
        render_series(root, "brain")
    assert uid in str(info.value) and other in str(info.value) and "series_uid" in str(info.value)
    with pytest.raises(SeriesSelectionError, match="no image series with SeriesInstanceUID '1.2'"):
        render_series(root, "brain", series_uid="1.2")


def test_render_series_equals_the_exact_render_of_each_slice_in_position_order(study):
    root, uid, files, _ = study
    with pytest.warns(SeriesWarning, match="without pixel data: .*report"):
        volume = render_series(root, "brain", series_uid=uid)
    pixels = np.asarray(volume)
    assert pixels.dtype == np.uint8 and pixels.shape == (SLICES, ROWS, COLS)
    assert volume.files == tuple(files)
    for k, path in enumerate(files):  # each slice's own intercept
        np.testing.assert_array_equal(pixels[k], _exact(path))
        np.testing.assert_array_equal(pixels[k], dicomrender.render(path, "brain"))
    instance = [pydicom.dcmread(f).InstanceNumber for f in volume.files]
    assert instance == sorted(instance, reverse=True)  # InstanceNumber ignored where positions exist
    assert volume.sop_instance_uids == tuple(pydicom.dcmread(f).SOPInstanceUID for f in files)


def test_geometry_of_a_tilted_series_against_hand_computed_values(study):
    root, uid, files, _ = study
    with pytest.warns(SeriesWarning):
        volume = render_series(root, window=(40, 80), series_uid=uid)
    t = math.radians(TILT)
    row_dir, col_dir = np.array([1.0, 0, 0]), np.array([0, math.cos(t), -math.sin(t)])
    normal = np.array([0, math.sin(t), math.cos(t)])  # row x column
    np.testing.assert_allclose(volume.orientation, np.column_stack([row_dir, col_dir, normal]), atol=1e-12)
    expected = np.array([[PIXEL_SPACING[1], 0, 0, -12.0],
                         [0, PIXEL_SPACING[0] * math.cos(t), 0, 30.0],
                         [0, -PIXEL_SPACING[0] * math.sin(t), DZ, 100.0],
                         [0, 0, 0, 1]])
    np.testing.assert_allclose(volume.affine, expected, atol=1e-9)
    np.testing.assert_allclose(volume.ras_affine, np.diag([-1, -1, 1, 1]) @ expected, atol=1e-9)
    np.testing.assert_allclose(volume.origin, [-12.0, 30.0, 100.0])
    np.testing.assert_allclose(volume.positions[:, 2], 100.0 + DZ * np.arange(SLICES))
    assert volume.spacing == pytest.approx((DZ * math.cos(t), *PIXEL_SPACING))  # between planes, along the normal
    assert volume.geometry.tilt == pytest.approx(TILT)
    assert volume.geometry.sorted_by == "position" and volume.geometry.gaps == () and not volume.geometry.irregular
    # the affine puts voxel (column 3, row 5) of slice 7 where that file's own header says it is
    ds = pydicom.dcmread(files[7])
    ipp, iop = np.array(ds.ImagePositionPatient, float), np.array(ds.ImageOrientationPatient, float)
    by_header = ipp + 3 * PIXEL_SPACING[1] * iop[:3] + 5 * PIXEL_SPACING[0] * iop[3:]
    np.testing.assert_allclose((volume.affine @ [3, 5, 7, 1])[:3], by_header, atol=1e-9)


def test_untilted_axial_series_has_the_plain_diagonal_affine(study):
    root, _, _, other = study
    volume = render_series(root / "sub", "brain")
    assert volume.series_uid == other
    np.testing.assert_allclose(volume.affine, [[0.6, 0, 0, -12], [0, 0.75, 0, 30], [0, 0, DZ, 100], [0, 0, 0, 1]])
    assert volume.geometry.tilt == 0.0 and volume.spacing == pytest.approx((DZ, 0.75, 0.6))


@pytest.mark.parametrize("executor", ["processes", "threads"])
def test_workers_give_the_serial_volume(study, monkeypatch, executor):
    root, uid, _, _ = study
    monkeypatch.setattr(find_module, "FILES_PER_WORKER", 1)
    monkeypatch.setattr(find_module, "PROBE_FILES", 1)
    monkeypatch.setattr(find_module, "FORK_PAYS_AFTER", 0.0)
    monkeypatch.setattr(volume_module, "SLICES_PER_WORKER", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)
        serial = render_series(root, ["brain", "subdural"], series_uid=uid, jobs=1, neighbours=1)
        parallel = render_series(root, ["brain", "subdural"], series_uid=uid, jobs=2, neighbours=1, executor=executor)
        minmax = render_series(root, "minmax", series_uid=uid, jobs=1)
        minmax_parallel = render_series(root, "minmax", series_uid=uid, jobs=2, executor=executor)
    np.testing.assert_array_equal(np.asarray(parallel), np.asarray(serial))
    np.testing.assert_array_equal(np.asarray(minmax_parallel), np.asarray(minmax))
    assert parallel.files == serial.files


def test_a_list_of_shuffled_paths_and_a_list_of_datasets_give_the_same_volume(study):
    _, uid, files, _ = study
    shuffled = [files[i] for i in np.random.default_rng(1).permutation(SLICES)]
    from_paths = render_series(shuffled, "brain")
    from_datasets = render_series([pydicom.dcmread(f) for f in shuffled], "brain")
    np.testing.assert_array_equal(np.asarray(from_paths), np.asarray(from_datasets))
    np.testing.assert_array_equal(np.asarray(from_paths), np.stack([_exact(f) for f in files]))


def test_frames_and_out(study):
    _, _, files, _ = study
    out = np.zeros((3, ROWS, COLS), np.uint8)
    volume = render_series(files, "brain", frames=slice(2, 8, 2), out=out)
    assert np.asarray(volume) is out
    np.testing.assert_array_equal(out, np.stack([_exact(files[k]) for k in (2, 4, 6)]))
    np.testing.assert_allclose(volume.affine[:3, 2], [0, 0, 2 * DZ])  # the step of the selection
    np.testing.assert_allclose(volume.origin, [-12, 30, 100 + 2 * DZ])
    backwards = render_series(files, "brain", frames=[5, 1])  # a regular step, backwards
    np.testing.assert_allclose(backwards.affine[:3, 2:], [[0, -12], [0, 30], [-4 * DZ, 100 + 5 * DZ]], atol=1e-9)
    assert render_series(files, "brain", frames=[5, 1, 2]).affine is None  # irregular selection
    with pytest.raises(IndexError):
        render_series(files, "brain", frames=[SLICES])
    with pytest.raises(ValueError, match="C-contiguous uint8"):
        render_series(files, "brain", out=np.zeros((SLICES, ROWS, COLS), np.int16))


# ---- neighbours and channels -------------------------------------------------------------


def test_neighbours_stack_clamped_slices_slice_major(study):
    _, _, files, _ = study
    presets = ["brain", "subdural", "head_soft_tissue"]
    base = np.asarray(render_series(files, presets))  # (slices, rows, cols, 3)
    volume = render_series(files, presets, neighbours=2)
    pixels = np.asarray(volume)
    assert pixels.shape == (SLICES, ROWS, COLS, 15)
    assert volume.channels[:4] == ((-2, "brain"), (-2, "subdural"), (-2, "head_soft_tissue"), (-1, "brain"))
    for i in range(SLICES):
        for b, d in enumerate(range(-2, 3)):
            j = min(max(i + d, 0), SLICES - 1)
            np.testing.assert_array_equal(pixels[i, :, :, 3 * b:3 * b + 3], base[j])
    one = np.asarray(render_series(files, "brain", neighbours=1))
    assert one.shape == (SLICES, ROWS, COLS, 3)
    np.testing.assert_array_equal(one[0, :, :, 0], one[0, :, :, 1])  # slice -1 clamps to slice 0
    np.testing.assert_array_equal(one[5, :, :, 2], _exact(files[6]))


# ---- windows over the series ------------------------------------------------------------------


PADDING = 4050  # the padding value of the series as one multi-frame image (above every other pixel)


def _padded_series(tmp_path) -> list:
    """Slices whose Pixel Padding Value differs with the intercept so that padding pixels share one
    modality value; a few padding pixels in each."""
    uid = generate_uid()
    files = []
    for k in range(SLICES):
        padding = PADDING - (INTERCEPTS[k % 3] - min(INTERCEPTS))
        ds = _slice(k, uid, tilt=0, PixelPaddingValue=padding)
        stored = _stored(k) % 4000
        stored[0, : 3 + k] = padding
        ds.PixelData = stored.tobytes()
        files.append(write_dataset(ds, tmp_path / f"s{k}"))
    return files


def _as_one_multiframe(files) -> Dataset:
    """The series as one multi-frame image with one intercept (stored values shifted to keep the modality
    values): single-image presets on it see exactly the pixels of the whole series."""
    common = min(INTERCEPTS)
    frames = []
    for path in files:
        ds = pydicom.dcmread(path)
        frames.append(ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept) - common)
    return make_dataset(np.stack(frames).astype(np.uint16), bits_stored=16, RescaleIntercept=common, RescaleSlope=1,
                        PixelPaddingValue=PADDING)


@pytest.mark.parametrize("preset,options", [("minmax", {}), ("auto", {}), ("histogram", {}),
                                            ("histogram", {"histogram_percent": 20}), ("percentile", {}),
                                            ("percentile", {"percentiles": (3.3, 71.7)})])
def test_data_driven_windows_are_computed_once_over_the_whole_series(tmp_path, preset, options):
    files = _padded_series(tmp_path)
    volume = render_series(files, preset, **options)
    whole = dicomrender.render(_as_one_multiframe(files), preset, **options)
    np.testing.assert_array_equal(np.asarray(volume), whole)
    window = volume.windows[0][0]
    assert all(w == (window,) for w in volume.windows)  # one window for every slice
    per_slice = render_series(files, preset, per_slice=True, **options)
    np.testing.assert_array_equal(np.asarray(per_slice), np.stack([dicomrender.render(f, preset, **options)
                                                                   for f in files]))


def test_auto_leaves_the_padding_of_every_slice_out(tmp_path):
    files = _padded_series(tmp_path)
    auto, minmax = render_series(files, "auto").windows[0][0], render_series(files, "minmax").windows[0][0]
    high = PADDING + min(INTERCEPTS)  # the modality value of every padding pixel
    top = [w.center + w.width / 2 - 1 for w in (minmax, auto)]  # c = (lo + hi + 1) / 2, w = hi - lo + 1
    assert top[0] == high and top[1] < high


def test_header_windows_agreeing_are_each_slices_and_disagreeing_one_median(tmp_path):
    uid = generate_uid()
    agree = [write_dataset(_slice(k, uid, tilt=0), tmp_path / f"a{k}") for k in range(4)]
    np.testing.assert_array_equal(np.asarray(render_series(agree)), np.stack([dicomrender.render(f) for f in agree]))
    uid = generate_uid()
    centres = [30, 40, 50, 100]
    differ = [write_dataset(_slice(k, uid, tilt=0, WindowCenter=centres[k], WindowWidth=80 + 10 * k),
                            tmp_path / f"d{k}") for k in range(4)]
    with pytest.warns(SeriesWarning, match="header windows differ"):
        volume = render_series(differ)
    assert volume.windows[0][0] == dicomrender.Window(45, 95)  # medians of 30/40/50/100 and 80/90/100/110
    np.testing.assert_array_equal(np.asarray(volume), np.stack([dicomrender.render(f, window=(45, 95))
                                                                for f in differ]))
    own = render_series(differ, per_slice=True)
    np.testing.assert_array_equal(np.asarray(own), np.stack([dicomrender.render(f) for f in differ]))


# ---- errors and malformed series ---------------------------------------------------------------


def _series(tmp_path, count=6, **per_slice):
    uid = generate_uid()
    return [write_dataset(_slice(k, uid, count=count, tilt=0, **{key: f(k) for key, f in per_slice.items()}),
                          tmp_path / f"IM{k:02d}") for k in range(count)]


def test_duplicate_positions_are_refused_naming_both_files(tmp_path):
    files = _series(tmp_path)
    shutil.copy(files[2], tmp_path / "copy_of_IM02")
    with pytest.raises(DuplicateSliceError) as info:
        render_series(tmp_path, "brain")
    assert "IM02" in str(info.value) and "copy_of_IM02" in str(info.value)
    assert {os.path.basename(f) for f in info.value.files} == {"IM02", "copy_of_IM02"}


def test_mixed_orientation_is_refused(tmp_path):
    _series(tmp_path, ImageOrientationPatient=lambda k: [1, 0, 0, 0, 1, 0] if k != 4 else [1, 0, 0, 0, 0, -1])
    with pytest.raises(SeriesGeometryError, match="different orientation.*IM04"):
        render_series(tmp_path, "brain")


def test_a_slice_of_another_size_is_refused_naming_it(tmp_path):
    files = _series(tmp_path)
    ds = pydicom.dcmread(files[3])
    odd = make_dataset(_stored(3, 16, 16), bits_stored=12, **{k: ds.data_element(k).value for k in (
        "SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleIntercept")})
    write_dataset(odd, files[3])
    with pytest.raises(SeriesGeometryError) as info:
        render_series(tmp_path, "brain")
    assert "16x16 (1 slice)" in str(info.value) and info.value.files == (files[3],)


def test_a_truncated_file_is_an_error_naming_it(tmp_path):
    files = _series(tmp_path)
    data = open(files[2], "rb").read()
    with open(files[2], "wb") as f:
        f.write(data[:-100])
    with pytest.raises(SeriesError) as info:
        render_series(tmp_path, "brain")
    assert files[2] in str(info.value) and "truncated" in str(info.value) and info.value.files == (files[2],)


def test_an_object_without_pixels_is_skipped_with_a_warning(tmp_path):
    files = _series(tmp_path)
    write_dataset(_sr(pydicom.dcmread(files[0]).SeriesInstanceUID), tmp_path / "sr")
    with pytest.warns(SeriesWarning, match="skipped 1 object.*sr"):
        volume = render_series(tmp_path, "brain")
    assert volume.shape[0] == len(files) and volume.skipped == (str(tmp_path / "sr"),)


def test_positions_on_some_slices_only_are_refused(tmp_path):
    files = _series(tmp_path)
    ds = pydicom.dcmread(files[1])
    del ds.ImagePositionPatient
    ds.save_as(files[1])
    with pytest.raises(SeriesGeometryError, match="1 of 6 slices have no ImagePositionPatient: .*IM01"):
        render_series(tmp_path, "brain")


def test_missing_and_irregular_slices_are_reported_and_warned(tmp_path):
    files = _series(tmp_path, count=8)
    os.remove(files[4])
    with pytest.warns(SeriesWarning, match="1 slice.s. missing.*after slice 3"):
        volume = render_series(tmp_path, "brain")
    assert volume.geometry.gaps == ((3, 1),) and volume.shape[0] == 7
    ds = pydicom.dcmread(files[6])
    ds.ImagePositionPatient = [-12.0, 30.0, 100.0 + DZ * 6 + 0.4]
    ds.save_as(files[6])
    with pytest.warns(SeriesWarning, match="irregular slice spacing"):
        assert render_series(tmp_path, "brain").geometry.irregular


def test_without_positions_instance_number_decides(tmp_path):
    uid = generate_uid()
    files = []
    for k in range(5):
        ds = _slice(k, uid, tilt=0, InstanceNumber=[3, 1, 5, 2, 4][k])
        del ds.ImagePositionPatient
        files.append(write_dataset(ds, tmp_path / f"x{k}"))
    with pytest.warns(SeriesWarning, match="sorted by instance number"):
        volume = render_series(tmp_path, "brain")
    assert volume.files == tuple(files[i] for i in (1, 3, 0, 4, 2)) and volume.affine is None


def test_each_slice_keeps_its_own_pixel_description(tmp_path):
    # headers that differ only in the presentation LUT, the padding or the bit layout are read each as its own
    files = _series(tmp_path, PresentationLUTShape=lambda k: "INVERSE" if k == 2 else "IDENTITY",
                    PixelPaddingValue=lambda k: 7 * k)
    ds = pydicom.dcmread(files[4])
    ds.HighBit = 12  # the words hold the same values one bit higher
    ds.PixelData = (ds.pixel_array.astype(np.uint16) << 1).tobytes()
    ds.save_as(files[4])
    np.testing.assert_array_equal(np.asarray(render_series(files, "brain")),
                                  np.stack([dicomrender.render(f, "brain") for f in files]))
    assert not np.array_equal(dicomrender.render(files[2], "brain"), _exact(files[2]))  # inverted


def test_a_hounsfield_preset_on_mr_is_refused_naming_the_file(tmp_path):
    files = _series(tmp_path, Modality=lambda k: "MR")
    with pytest.raises(dicomrender.PresetError, match="IM00"):
        render_series(files, "brain")


# ---- multi-frame and enhanced objects -----------------------------------------------------------


def test_an_enhanced_multiframe_object_is_a_series_sorted_by_per_frame_position(tmp_path):
    stored = np.stack([_stored(k) for k in range(5)])
    z = [10.0, 0.0, 40.0, 20.0, 30.0]  # frames out of position order
    ds = make_dataset(stored, bits_stored=12)
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.5], 10
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = DicomSequence([orientation]), \
        DicomSequence([measures])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in range(5):
        item, position, transform = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [0, 0, z[k]]
        transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = -1000 - k, 1, "HU"
        item.PlanePositionSequence = DicomSequence([position])
        item.PixelValueTransformationSequence = DicomSequence([transform])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    path = write_dataset(ds, tmp_path / "enhanced.dcm")
    volume = render_series(path, "brain")
    order = np.argsort(z)
    assert volume.frame_numbers == tuple(order)
    np.testing.assert_array_equal(np.asarray(volume), np.stack([dicomrender.render(path, "brain", frame=int(i))
                                                                for i in order]))
    np.testing.assert_allclose(volume.affine, [[0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 10, 0], [0, 0, 0, 1]])


def test_compressed_slices_are_read_through_pydicom(tmp_path):
    files = _series(tmp_path, count=4)
    for path in files[::2]:
        ds = pydicom.dcmread(path)
        try:
            ds.compress(pydicom.uid.RLELossless)
        except Exception as exc:  # pragma: no cover - pydicom without its RLE encoder
            pytest.skip(f"pydicom cannot RLE-encode here: {exc}")
        ds.save_as(path)
    np.testing.assert_array_equal(np.asarray(render_series(files, "brain")),
                                  np.stack([dicomrender.render(f, "brain") for f in files]))


# ---- memory ---------------------------------------------------------------------------------------


def test_rendering_allocates_the_output_and_little_else(tmp_path):
    uid = generate_uid()
    files = [write_dataset(_slice(k, uid, count=40, tilt=0, rows=128, cols=128), tmp_path / f"m{k}")
             for k in range(40)]
    render_series(files, "brain", jobs=1)  # warm: tables compiled, modules imported
    tracemalloc.start()
    try:
        volume = render_series(files, "brain", jobs=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    output = np.asarray(volume).nbytes
    assert peak < output + (2 << 20), (peak, output)  # no per-slice temporaries kept


# ---- SeriesDataset ---------------------------------------------------------------------------------


def _dataset_items(dataset, indices):
    return [dataset[i] for i in indices]


def test_series_dataset_items_layouts_and_pickling(study):
    root, uid, files, other = study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)
        hwc = SeriesDataset(root, ["brain", "subdural", "head_soft_tissue"], series_uid=uid, neighbours=1)
        chw = SeriesDataset(root, ["brain", "subdural", "head_soft_tissue"], series_uid=uid, neighbours=1,
                            layout="chw")
        volume = render_series(root, ["brain", "subdural", "head_soft_tissue"], series_uid=uid, neighbours=1)
        whole = SeriesDataset(root, "brain", item="series")
    assert len(hwc) == SLICES and hwc[3].shape == (ROWS, COLS, 9) and chw[3].shape == (9, ROWS, COLS)
    np.testing.assert_array_equal(hwc[3], np.asarray(volume)[3])
    np.testing.assert_array_equal(chw[-1], np.moveaxis(np.asarray(volume)[-1], -1, 0))
    assert hwc.info(3)["file"] == files[3] and hwc.info(3)["sop_instance_uid"] == volume.sop_instance_uids[3]
    clone = pickle.loads(pickle.dumps(hwc))
    np.testing.assert_array_equal(clone[5], hwc[5])
    assert len(whole) == 2 and {whole[i].shape for i in range(2)} == {(SLICES, ROWS, COLS, 1), (3, ROWS, COLS, 1)}
    with pytest.raises(IndexError):
        hwc[SLICES]
    with pytest.raises(SeriesSelectionError):
        SeriesDataset(root, "brain")


def test_series_dataset_in_a_worker_pool(study):
    _, _, files, _ = study
    dataset = SeriesDataset(files, "brain", layout="chw")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        items = pool.starmap(_dataset_items, [(dataset, [0, 1, 2]), (dataset, [9, 10, 11])])
    got = np.stack(items[0] + items[1])
    assert got.shape == (6, 1, ROWS, COLS)
    np.testing.assert_array_equal(got[:, 0], np.stack([_exact(files[k]) for k in (0, 1, 2, 9, 10, 11)]))


def test_series_dataset_through_a_torch_dataloader(study):
    torch = pytest.importorskip("torch", reason="torch is not installed: the worker-pool test covers pickling")
    _, _, files, _ = study
    dataset = SeriesDataset(files, ["brain", "subdural", "head_soft_tissue"], neighbours=1, layout="chw")
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2)
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(4, 9, ROWS, COLS)] * 3 and batches[0].dtype == torch.uint8
    np.testing.assert_array_equal(torch.cat(batches).numpy(), np.stack([dataset[i] for i in range(SLICES)]))


# ---- the command line --------------------------------------------------------------------------------


def test_series_command_lists_writes_npz_npy_and_a_contact_sheet(study, tmp_path, capsys):
    root, uid, files, other = study
    assert cli.main(["series", str(root), "--list"]) == 0
    table = capsys.readouterr().out
    assert uid in table and other in table and "tilted head" in table and "AXIAL" in table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)
        assert cli.main(["series", str(root), "-o", str(tmp_path / "v.npz"), "--series", uid, "--preset", "brain"]) == 0
        assert cli.main(["series", str(root / "sub"), "-o", str(tmp_path / "v.npy"), "--window", "40", "80"]) == 0
        assert cli.main(["series", *files, "-o", str(tmp_path / "sheet.png"), "--montage", "--every", "2"]) == 0
        assert cli.main(["series", str(root), "-o", str(tmp_path / "x.npy")]) == 1  # two series
    saved = np.load(tmp_path / "v.npz")
    np.testing.assert_array_equal(saved["pixels"], np.stack([_exact(f) for f in files]))
    assert saved["affine"].shape == (4, 4) and list(saved["files"]) == files
    assert np.load(tmp_path / "v.npy").shape == (3, ROWS, COLS)
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape == (2 * ROWS, 3 * COLS)  # 6 tiles (every 2nd of 12) in 3 columns
    np.testing.assert_array_equal(sheet[:ROWS, COLS:2 * COLS], dicomrender.render(files[2], window=(40, 80)))
    capsys.readouterr()
    assert cli.main(["series", str(root), "-o", str(tmp_path / "x.jpg")]) == 2
    assert "OUT must end in" in capsys.readouterr().err
