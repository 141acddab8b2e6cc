"""``render`` and ``save`` on synthetic and real files, against hand-computed pixels and the reference."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

import dicomrender
from dicomrender import _reference

from .data import data_file
from .synthetic import make_dataset, write_dataset


def _reference_for(ds, center, width, invert=False):
    """Independent path: pydicom's own decoding of the stored values, then the reference chain."""
    stored = ds.pixel_array
    return _reference.to_uint8(
        _reference.voi_values(_reference.modality_values(stored, float(ds.get("RescaleSlope", 1)),
                                                         float(ds.get("RescaleIntercept", 0))), center, width),
        invert)


def test_brain_window_on_synthetic_ct_slice_hand_computed():
    hu = np.array([[-1024, -1, 0, 39], [40, 79, 80, 3071]])
    ds = make_dataset((hu + 1024).astype(np.uint16), bits_stored=12, RescaleIntercept=-1024, RescaleSlope=1)
    got = dicomrender.render(ds, window=(40, 80))
    # LINEAR c=40 w=80: 0 for x <= 0, 255 for x > 79, else floor(((x - 39.5) / 79 + 0.5) * 255)
    np.testing.assert_array_equal(got, [[0, 0, 0, 125], [129, 255, 255, 255]])


def test_header_window_is_the_default(ct_dataset):
    np.testing.assert_array_equal(dicomrender.render(ct_dataset), dicomrender.render(ct_dataset, window=(40, 80)))


def test_minmax_when_header_has_no_window():
    stored = np.array([[0, 1000], [2000, 4095]], dtype=np.uint16)
    ds = make_dataset(stored, bits_stored=12, RescaleIntercept=-1024, RescaleSlope=1)
    low, high = -1024.0, 3071.0
    expected = _reference.render_reference(stored, (low + high + 1) / 2, high - low + 1, intercept=-1024,
                                           bits_stored=12)
    np.testing.assert_array_equal(dicomrender.render(ds), expected)
    assert dicomrender.render(ds)[0, 0] == 0 and dicomrender.render(ds)[1, 1] == 255


def test_ct_small_brain_window_matches_reference():
    ds = pydicom.dcmread(data_file("CT_small.dcm"))
    got = dicomrender.render(ds, window=(40, 80))
    assert got.shape == (128, 128) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, _reference_for(ds, 40, 80))
    assert 0 < np.count_nonzero((got > 0) & (got < 255))  # the window cuts through the data


def test_mr_small_header_window_matches_reference():
    path = data_file("MR_small.dcm")
    ds = pydicom.dcmread(path)
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    np.testing.assert_array_equal(dicomrender.render(path), _reference_for(ds, center, width))


def test_path_file_object_and_dataset_agree():
    path = data_file("CT_small.dcm")
    with open(path, "rb") as f:
        from_file = dicomrender.render(f, window=(40, 80))
    np.testing.assert_array_equal(from_file, dicomrender.render(path, window=(40, 80)))
    np.testing.assert_array_equal(from_file, dicomrender.render(pydicom.dcmread(path), window=(40, 80)))


def test_monochrome1_renders_inverted_air_white():
    hu = np.full((4, 4), -1000)
    hu[1:3, 1:3] = 60  # soft tissue in the middle
    stored = (hu + 1024).astype(np.uint16)
    ds = make_dataset(stored, bits_stored=12, photometric="MONOCHROME1", RescaleIntercept=-1024, RescaleSlope=1)
    got = dicomrender.render(ds, window=(40, 400))
    assert got[0, 0] == 255  # air is white
    # floor(255 - y), not 255 - floor(y): inversion happens before the 8-bit rounding
    np.testing.assert_array_equal(got, _reference.render_reference(stored, 40, 400, intercept=-1024, bits_stored=12,
                                                                   invert=True))
    assert got[1, 1] == 114  # y = ((60 - 39.5) / 399 + 0.5) * 255 = 140.60; 255 - 140.60 = 114.40
    np.testing.assert_array_equal(dicomrender.render(ds, window=(40, 400), invert=False),
                                  _reference.render_reference(stored, 40, 400, intercept=-1024, bits_stored=12))


def test_presentation_lut_shape_inverse_inverts_once():
    stored = np.arange(16, dtype=np.uint16).reshape(4, 4) * 200
    plain = dicomrender.render(make_dataset(stored, bits_stored=12), window=(1500, 3000))
    inverse = make_dataset(stored, bits_stored=12, PresentationLUTShape="INVERSE")
    np.testing.assert_array_equal(dicomrender.render(inverse, window=(1500, 3000)),
                                  _reference.render_reference(stored, 1500, 3000, bits_stored=12, invert=True))
    both = make_dataset(stored, bits_stored=12, photometric="MONOCHROME1", PresentationLUTShape="INVERSE")
    np.testing.assert_array_equal(dicomrender.render(both, window=(1500, 3000)),
                                  dicomrender.render(inverse, window=(1500, 3000)))
    assert not np.array_equal(plain, dicomrender.render(both, window=(1500, 3000)))


def test_real_monochrome1_radiograph():
    path = data_file("RG3_UNCI.dcm")
    if path is None:
        pytest.skip("pydicom-data is not installed")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    got = dicomrender.render(ds)
    np.testing.assert_array_equal(got, _reference_for(ds, float(ds.WindowCenter), float(ds.WindowWidth), invert=True))


def test_multiframe_all_frames_and_one_frame():
    frames = (np.arange(3 * 8 * 8, dtype=np.int16).reshape(3, 8, 8) * 37 - 2000)
    ds = make_dataset(frames, WindowCenter=0, WindowWidth=1000)
    volume = dicomrender.render(ds)
    assert volume.shape == (3, 8, 8)
    np.testing.assert_array_equal(volume, _reference.render_reference(frames, 0, 1000))
    np.testing.assert_array_equal(dicomrender.render(ds, frame=2), volume[2])
    np.testing.assert_array_equal(dicomrender.render(ds, frame=-1), volume[2])
    with pytest.raises(dicomrender.InvalidDatasetError, match="NumberOfFrames"):
        dicomrender.render(ds, frame=3)


def test_multivalued_header_window_by_index_and_explanation():
    stored = np.arange(64, dtype=np.uint16).reshape(8, 8) * 60
    ds = make_dataset(stored, bits_stored=12, WindowCenter=[1000, 3000], WindowWidth=[500, 2000],
                      WindowCenterWidthExplanation=["SOFT", "BONE"])
    np.testing.assert_array_equal(dicomrender.render(ds), _reference.render_reference(stored, 1000, 500, bits_stored=12))
    second = _reference.render_reference(stored, 3000, 2000, bits_stored=12)
    np.testing.assert_array_equal(dicomrender.render(ds, preset="header", voi_index=1), second)
    np.testing.assert_array_equal(dicomrender.render(ds, preset="header", voi_explanation="bone"), second)


def test_function_override_and_header_voi_function():
    stored = np.arange(64, dtype=np.uint16).reshape(8, 8) * 60
    ds = make_dataset(stored, bits_stored=12, WindowCenter=2000, WindowWidth=1500, VOILUTFunction="SIGMOID")
    np.testing.assert_array_equal(dicomrender.render(ds),
                                  _reference.render_reference(stored, 2000, 1500, function="SIGMOID", bits_stored=12))
    np.testing.assert_array_equal(dicomrender.render(ds, function="LINEAR_EXACT"),
                                  _reference.render_reference(stored, 2000, 1500, function="LINEAR_EXACT",
                                                              bits_stored=12))


def test_out_buffer_is_filled(ct_dataset):
    out = np.empty((64, 64), dtype=np.uint8)
    assert dicomrender.render(ct_dataset, out=out) is out
    np.testing.assert_array_equal(out, dicomrender.render(ct_dataset))


def test_render_does_not_modify_the_dataset(ct_dataset):
    before = bytes(ct_dataset.PixelData)
    dicomrender.render(ct_dataset, window=(40, 80))
    assert bytes(ct_dataset.PixelData) == before


@pytest.mark.parametrize("suffix,fmt", [(".png", "PNG"), (".jpg", "JPEG")])
def test_save_writes_the_rendered_pixels(tmp_path, ct_dataset, suffix, fmt):
    target = tmp_path / f"slice{suffix}"
    dicomrender.save(ct_dataset, target, window=(40, 80))
    image = Image.open(target)
    assert image.format == fmt and image.size == (64, 64) and image.mode == "L"
    pixels = np.asarray(image)
    expected = dicomrender.render(ct_dataset, window=(40, 80))
    if fmt == "PNG":
        np.testing.assert_array_equal(pixels, expected)
    else:  # lossy, but close at quality 95
        assert np.abs(pixels.astype(int) - expected).mean() < 2.0
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind


def test_save_from_a_file_on_disk_leaves_it_unchanged(tmp_path, ct_dataset):
    source = write_dataset(ct_dataset, tmp_path / "in.dcm")
    before = open(source, "rb").read()
    dicomrender.save(source, tmp_path / "out.png")
    assert open(source, "rb").read() == before
    assert np.array_equal(np.asarray(Image.open(io.BytesIO((tmp_path / "out.png").read_bytes()))),
                          dicomrender.render(source))


def test_save_rejects_unknown_suffix(tmp_path, ct_dataset):
    with pytest.raises(ValueError, match=".bmp"):
        dicomrender.save(ct_dataset, tmp_path / "x.bmp")
