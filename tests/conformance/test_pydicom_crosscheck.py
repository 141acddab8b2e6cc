"""Cross-check with pydicom: ``apply_modality_lut`` + ``apply_voi_lut`` followed by the project's rounding
equals ``render`` on the same files and windows.

pydicom scales the VOI output to the stored range ``[y_min, y_max]`` instead of
``[0, 255]``; ``(y - y_min) / (y_max - y_min) * 255`` brings it back.  Its float
evaluation order differs from ours, so a pixel may differ only where that
value is within 1e-6 of an integer, and there render must give that integer.
"""

from __future__ import annotations

import copy

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut

import dicomrender

from . import dcmtk_support as support
from .dcmtk_support import explicit_windows as _explicit_windows

#: Files pydicom's VOI functions cannot reproduce, and why.
NOT_SUPPORTED = {
    "eCT_Supplemental.dcm": "rescale and window live in functional groups, which apply_modality_lut and "
                            "apply_voi_lut do not read",
}
FILES = [name for name in support.all_files() if name not in NOT_SUPPORTED]


def _pydicom_rounded(ds, arr, invert):
    """pydicom's VOI output of ``arr`` (modality values) mapped to [0, 255] and rounded by the project's rule."""
    voi = apply_voi_lut(arr, ds, index=0, prefer_lut=False).astype(np.float64)
    if "VOILUTSequence" in ds and "WindowCenter" not in ds:
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        y = voi * 255.0 / ((1 << bits) - 1)
    else:
        y_min, y_max = _output_range(ds)
        y = (voi - y_min) / (y_max - y_min) * 255.0
    if invert:
        y = 255.0 - y
    return y


def _output_range(ds):
    """The [y_min, y_max] pydicom's apply_windowing scales to (pydicom.pixels.processing.apply_windowing)."""
    if ds.PixelRepresentation == 0:
        y_min, y_max = 0, 2 ** ds.BitsStored - 1
    else:
        y_min, y_max = -(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1
    slope = ds.get("RescaleSlope", None)
    intercept = ds.get("RescaleIntercept", None)
    if "ModalityLUTSequence" in ds:
        y_min, y_max = 0, 2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    elif slope is not None and intercept is not None:
        y_min, y_max = y_min * float(slope) + float(intercept), y_max * float(slope) + float(intercept)
    return float(y_min), float(y_max)


def _check(ours, y):
    expected = np.clip(np.floor(y + 1e-9), 0, 255)
    mismatch = ours != expected
    if mismatch.any():
        # pydicom's float landed just off an integer display value: ours must be that integer
        near_integer = np.abs(y[mismatch] - np.round(y[mismatch])) < 1e-6
        is_integer = ours[mismatch].astype(np.float64) == np.clip(np.round(y[mismatch]), 0, 255)
        assert near_integer.all() and is_integer.all(), (
            f"{int(mismatch.sum())} pixels differ, {int((~near_integer).sum())} away from integer points")
    return int(mismatch.sum())


@pytest.mark.parametrize("name", FILES)
def test_pydicom_voi_then_our_rounding_equals_render(name):
    try:
        path = support.test_file(name)
    except FileNotFoundError:
        pytest.skip("pydicom-data is not installed")
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    info = dicomrender.dicom.header.ImageInfo.from_dataset(ds, path)
    invert = info.inverse
    modality = apply_modality_lut(arr, ds)
    checked = 0
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        ours = dicomrender.render(path, "header")
        _check(ours, _pydicom_rounded(ds, modality, invert))
        checked += 1
    values = modality.astype(np.float64)
    windowed = copy.deepcopy(ds)
    windowed.pop("VOILUTSequence", None)
    windowed.VOILUTFunction = "LINEAR"
    for _, c, w in _explicit_windows(float(values.min()), float(values.max()), big=True):
        windowed.WindowCenter, windowed.WindowWidth = c, w
        ours = dicomrender.render(path, window=(c, w))
        _check(ours, _pydicom_rounded(windowed, modality, invert))
        checked += 1
    assert checked >= 3
