"""Bad input raises documented dicomrender errors that name the file and the attribute."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import dicomrender
from dicomrender import errors

from .synthetic import make_dataset, write_dataset


@pytest.mark.parametrize("window,match", [((40, 0), "WindowWidth"), ((40, -5), "WindowWidth"),
                                          ((40, float("nan")), "WindowWidth"), ((float("nan"), 80), "WindowCenter")])
def test_bad_window_argument(ct_dataset, window, match):
    with pytest.raises(errors.InvalidWindowError, match=match) as info:
        dicomrender.render(ct_dataset, window=window)
    assert isinstance(info.value, ValueError)


def test_bad_header_window_names_file_and_attribute(tmp_path):
    ds = make_dataset(np.zeros((4, 4), np.uint16), WindowCenter=40, WindowWidth=0)
    path = write_dataset(ds, tmp_path / "zero_width.dcm")
    # an invalid header window is skipped with a warning naming the file and the attribute (as dcmtk)
    with pytest.warns(errors.HeaderWindowWarning) as caught:
        dicomrender.render(path)
    warning = caught[0].message
    assert "zero_width.dcm" in str(warning) and "WindowWidth" in str(warning)
    assert warning.attribute == "WindowWidth" and warning.filename == path
    # the same window given by the caller is an error
    with pytest.raises(errors.InvalidWindowError) as info:
        dicomrender.render(path, window=(40, 0))
    assert info.value.attribute == "WindowWidth" and "width" in str(info.value)


def test_dataset_without_pixel_data(ct_dataset):
    del ct_dataset.PixelData
    with pytest.raises(errors.PixelDataError, match="Pixel Data"):
        dicomrender.render(ct_dataset)


def test_truncated_pixel_data_names_file(tmp_path, ct_dataset):
    ct_dataset.PixelData = ct_dataset.PixelData[: 64 * 64]  # half of the 16-bit words
    path = write_dataset(ct_dataset, tmp_path / "short.dcm")
    with pytest.raises(errors.PixelDataError, match="truncated") as info:
        dicomrender.render(path)
    assert "short.dcm" in str(info.value) and info.value.attribute == "PixelData"


def test_truncated_multiframe():
    ds = make_dataset(np.zeros((3, 4, 4), np.uint16))
    ds.PixelData = ds.PixelData[:-2]
    with pytest.raises(errors.PixelDataError, match="3 frame"):
        dicomrender.render(ds, frame=0)


def test_text_file_is_not_dicom(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not an image\n" * 20)
    with pytest.raises(errors.NotDicomError) as info:
        dicomrender.render(path)
    assert "notes.txt" in str(info.value)


@pytest.mark.parametrize("attributes,attribute", [
    (dict(BitsStored=20), "BitsStored"),
    (dict(HighBit=3), "HighBit"),
    (dict(BitsAllocated=12), "BitsAllocated"),
    (dict(Rows=0), "Rows"),
    (dict(PixelRepresentation=2), "PixelRepresentation"),
    (dict(RescaleSlope="abc"), "RescaleSlope"),
    (dict(RescaleSlope=float("nan")), "RescaleSlope"),
    (dict(NumberOfFrames=0), "NumberOfFrames"),
])
def test_nonsense_headers(attributes, attribute):
    ds = make_dataset(np.zeros((4, 4), np.uint16), bits_stored=12)
    for keyword, value in attributes.items():
        if keyword == "RescaleSlope" and value == "abc":
            ds.add_new((0x0028, 0x1053), "LO", value)  # a non-number where a decimal belongs
        else:
            setattr(ds, keyword, value)
    with pytest.raises(errors.DicomRenderError, match=attribute) as info:
        dicomrender.render(ds, window=(0, 100))
    assert info.value.attribute == attribute


def test_unknown_preset_lists_close_matches(ct_dataset):
    with pytest.raises(errors.UnknownPresetError, match="header") as info:
        dicomrender.render(ct_dataset, preset="headr")
    assert isinstance(info.value, KeyError)


def test_colour_image_is_refused_for_windowing():
    ds = make_dataset(np.zeros((4, 4), np.uint8))
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PixelData = bytes(4 * 4 * 3)
    with pytest.raises(errors.DicomRenderError, match="PhotometricInterpretation|window"):
        dicomrender.render(ds, window=(40, 80))


def test_errors_survive_pickling():
    import pickle

    err = errors.PixelDataError("truncated", filename="a.dcm", attribute="PixelData")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is errors.PixelDataError and copy.filename == "a.dcm" and copy.attribute == "PixelData"
    assert str(copy) == "a.dcm: truncated"


def test_bad_files_do_not_crash_the_process(tmp_path, ct_dataset):
    """A fresh interpreter renders a set of broken files and exits normally with the right errors."""
    ct_dataset.PixelData = ct_dataset.PixelData[:100]
    write_dataset(ct_dataset, tmp_path / "short.dcm")
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 300)
    (tmp_path / "text.dcm").write_text("not DICOM at all\n" * 50)
    code = (
        "import sys, dicomrender\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        dicomrender.render(name)\n"
        "    except dicomrender.DicomRenderError as e:\n"
        "        print(type(e).__name__)\n"
    )
    names = [str(tmp_path / n) for n in ("short.dcm", "junk.dcm", "text.dcm")]
    result = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    short, junk, text = result.stdout.split()
    assert (short, text) == ("PixelDataError", "NotDicomError")
    assert junk in ("PixelDataError", "NotDicomError", "InvalidDatasetError")  # a DICM prefix, then garbage
