"""SIGMOID (``dcm2pnm +Ww c w +Wfs``) against dcmtk.

dcmtk's output is ``floor(y')`` of ``y' = 255 / (1 + exp(-4 (m - c) / w))`` with no
snapping.  The rounding rule snaps a float64 ``y'`` within 1e-9 of an integer only
where the exact value can be an integer (LINEAR, LINEAR_EXACT, VOI LUTs); SIGMOID's
exact value never is, and its tails come within 1e-9 of 255 without reaching it
(254.99999999... floors to 254), so it is floored unsnapped, like dcmtk.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import dicomrender
from dicomrender.dicom.header import ImageInfo
from dicomrender.dicom.pixels import read_frames

from . import dcmtk_support as support

FILES = ["CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm", "mlut_18.dcm", "emri_small.dcm", "RG3_UNCI.dcm"]
WINDOWS = [("40", "80"), ("100.5", "301"), ("1000", "2000"), ("300", "50")]


def _case(name):
    path = support.test_file(name)
    info = ImageInfo.from_dataset(pydicom.dcmread(path), path)
    stored = info.format.stored(read_frames(info, list(range(info.frames))).words)
    return path, info, info.frame_parameters(0).modality.values(stored)


@pytest.mark.parametrize("name", FILES)
def test_dcmtk_sigmoid_is_the_unsnapped_floor(name, dcmtk):
    path, info, m = _case(name)
    for c, w in WINDOWS:
        theirs = support.dcm2pnm(path, ("+Ww", c, w, "+Wfs"), info.frames)
        y = 255.0 / (1.0 + np.exp(-4.0 * (m - float(c)) / float(w)))
        if info.inverse:
            y = 255.0 - y
        np.testing.assert_array_equal(theirs, np.clip(np.floor(y), 0, 255).astype(np.uint8), err_msg=f"{c}/{w}")


@pytest.mark.parametrize("name", FILES)
def test_render_sigmoid_equals_dcmtk(name, dcmtk):
    path, info, _ = _case(name)
    for c, w in WINDOWS:
        theirs = support.dcm2pnm(path, ("+Ww", c, w, "+Wfs"), info.frames)
        ours = dicomrender.render(path, window=(c, w), function="SIGMOID")
        np.testing.assert_array_equal(ours[None] if info.frames == 1 else ours, theirs, err_msg=f"{c}/{w}")
