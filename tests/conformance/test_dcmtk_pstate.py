"""Presentation states against dcmtk: states made by ``dcmpsmk`` from test images, edited with pydicom,
rendered by ``dcmp2pgm -p STATE IMAGE OUT`` (8-bit PGM) and by ``render(image, presentation_state=)``.

What dcmp2pgm renders (VOI, modality, Presentation LUT shape and table, rotation, flip, bitmap shutters)
must be identical, except at stored values whose exact display value is an integer (dcmtk 1 lower), as
in the rest of the suite.  What dcmp2pgm does not render (geometric shutters, the Displayed Area, the
overlays a state activates) is compared with dcmtk's image with those steps applied by hand here: a
mask written out from the geometry, a crop by slicing; and VOI LUT Functions other than LINEAR, which
dcmp2pgm ignores, with the LINEAR render.  Each case adds a row to the report's "Presentation states".
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import dicomrender
from dicomrender import _reference
from dicomrender._types import Window

from ..states import add_overlay
from . import dcmtk_support as support

CT, MR, CR = "CT_small.dcm", "MR_small.dcm", "RG3_UNCI.dcm"


@pytest.fixture(scope="module")
def tools(dcmtk):
    if not (shutil.which("dcmpsmk") and shutil.which("dcmp2pgm")):
        pytest.skip("dcmpsmk / dcmp2pgm are not installed")
    return dcmtk


def _pgm(path: str) -> np.ndarray:
    """A binary PGM (P5, maxval 255), as dcmp2pgm writes."""
    with open(path, "rb") as f:
        data = f.read()
    magic, width, height, maxval, _ = data.split(None, 4)
    assert magic == b"P5" and maxval == b"255"
    w, h = int(width), int(height)
    return np.frombuffer(data[-w * h:], dtype=np.uint8).reshape(h, w).copy()


_BASE: dict = {}


def _base_state(name: str) -> Dataset:
    """dcmpsmk's state for test file ``name`` (made once)."""
    if name not in _BASE:
        out = os.path.join(support.workdir(), f"base-{name}")
        subprocess.run(["dcmpsmk", support.test_file(name), out], check=True, capture_output=True)
        _BASE[name] = pydicom.dcmread(out)
    return copy.deepcopy(_BASE[name])


def _dcmp2pgm(state: Dataset, name: str, label: str) -> tuple:
    path = os.path.join(support.workdir(), f"ps-{label.replace(' ', '_').replace('/', '_')}.dcm")
    state.save_as(path, enforce_file_format=True)
    out = path + ".pgm"
    run = subprocess.run(["dcmp2pgm", "-p", path, support.test_file(name), out], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return _pgm(out), path


def _window(state: Dataset, center: str, width: str, function=None, instance=None) -> Dataset:
    item = Dataset()
    item.WindowCenter, item.WindowWidth = center, width
    if function:
        item.VOILUTFunction = function
    if instance:
        ref = Dataset()
        ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ref.ReferencedSOPInstanceUID = instance
        item.ReferencedImageSequence = Sequence([ref])
    items = list(state.get("SoftcopyVOILUTSequence", []))
    state.SoftcopyVOILUTSequence = Sequence(items + [item])
    return state


def _stored(name: str) -> np.ndarray:
    return pydicom.dcmread(support.test_file(name)).pixel_array.astype(np.int64)


def _judge(report, label: str, name: str, theirs: np.ndarray, ours: np.ndarray, stored: np.ndarray,
           slope: str, intercept: str, center: str, width: str, invert: bool, note: str) -> None:
    """dcmtk against the rule (identical but at exact-integer display values, 1 lower), as the suite's
    other comparisons; ``stored`` laid out as the outputs are."""
    comparison = support.Comparison(name, label, 1)
    modality = support.ExactModality(Fraction(slope), Fraction(intercept))
    support.compare(comparison, theirs, ours, stored, modality, support.ExactWindow(Fraction(center), Fraction(width)),
                    Window(center, width), invert)
    report.add_pstate(label, name, note, "dcmp2pgm", comparison.pixels, comparison.identical,
                      comparison.at_integer_points, comparison.ok)
    assert comparison.ok, comparison.failures


def _exact(report, label, name, expected, ours, note, against="dcmp2pgm"):
    assert ours.shape == expected.shape, (ours.shape, expected.shape)
    identical = int(np.count_nonzero(ours == expected))
    report.add_pstate(label, name, note, against, ours.size, identical, 0, identical == ours.size)
    np.testing.assert_array_equal(ours, expected)


# ---------------------------------------------------------------------------------------------------------
# What dcmp2pgm renders


def test_no_voi_maps_the_modality_range(tools, report):
    theirs, path = _dcmp2pgm(_base_state(CT), CT, "no VOI")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    # hand-computed: the top 8 bits of m - min over the 16-bit signed range shifted by the intercept
    m = _stored(CT) - 1024
    expected = ((m - (-32768 - 1024)) * 256 // 65536).astype(np.uint8)
    np.testing.assert_array_equal(ours, expected)
    _exact(report, "no VOI in the state", CT, theirs, ours, "modality range to 0..255, top 8 bits")


@pytest.mark.parametrize("center,width", [("40", "400"), ("40.5", "101"), ("-100", "1")])
def test_window(tools, report, center, width):
    theirs, path = _dcmp2pgm(_window(_base_state(CT), center, width), CT, f"window {center} {width}")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    _judge(report, f"window {center}/{width}", CT, theirs, ours, _stored(CT), "1", "-1024", center, width, False,
           "Softcopy VOI LUT window")


def test_item_for_another_image_is_skipped(tools, report):
    state = _window(_window(_base_state(CT), "500", "100", instance="1.2.3.4"), "40", "400")
    theirs, path = _dcmp2pgm(state, CT, "second item")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    _judge(report, "VOI item of another image, then ours", CT, theirs, ours, _stored(CT), "1", "-1024", "40", "400",
           False, "first item references another instance")


@pytest.mark.parametrize("slope,intercept", [("1", "-1124"), ("2", "-1000")])
def test_state_rescale_replaces_the_image_rescale(tools, report, slope, intercept):
    state = _window(_base_state(CT), "140", "400")
    state.RescaleSlope, state.RescaleIntercept = slope, intercept
    theirs, path = _dcmp2pgm(state, CT, f"rescale {slope} {intercept}")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    _judge(report, f"state rescale {slope}/{intercept}", CT, theirs, ours, _stored(CT), slope, intercept, "140", "400",
           False, "the state's Modality LUT module")


def test_inverse(tools, report):
    state = _window(_base_state(CT), "40", "400")
    state.PresentationLUTShape = "INVERSE"
    theirs, path = _dcmp2pgm(state, CT, "inverse")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    _judge(report, "INVERSE", CT, theirs, ours, _stored(CT), "1", "-1024", "40", "400", True, "Presentation LUT Shape")


def test_monochrome1_is_not_inverted_by_an_identity_state(tools, report):
    state = _base_state(CR)  # dcmpsmk copies the image's window and writes INVERSE for MONOCHROME1
    state.PresentationLUTShape = "IDENTITY"
    theirs, path = _dcmp2pgm(state, CR, "mono1 identity")
    ours = dicomrender.render(support.test_file(CR), presentation_state=path)
    ds = pydicom.dcmread(support.test_file(CR), stop_before_pixels=True)
    _judge(report, "MONOCHROME1, shape IDENTITY", CR, theirs, ours, _stored(CR), str(ds.get("RescaleSlope", 1)),
           str(ds.get("RescaleIntercept", 0)), str(ds.WindowCenter), str(ds.WindowWidth), False,
           "only the Presentation LUT Shape decides inversion")


@pytest.mark.parametrize("rotation,flip", [(90, "N"), (180, "N"), (270, "N"), (0, "Y"), (90, "Y"), (270, "Y")])
def test_rotation_and_flip(tools, report, rotation, flip):
    state = _window(_base_state(MR), "600", "1600")
    state.ImageRotation, state.ImageHorizontalFlip = rotation, flip
    theirs, path = _dcmp2pgm(state, MR, f"rot {rotation} {flip}")
    ours = dicomrender.render(support.test_file(MR), presentation_state=path)
    stored = np.rot90(_stored(MR), -rotation // 90)  # clockwise, then the flip
    stored = stored[:, ::-1] if flip == "Y" else stored
    _judge(report, f"rotation {rotation}, flip {flip}", MR, theirs, ours, stored, "1", "0", "600", "1600", False,
           "Spatial Transformation: rotation, then flip")


@pytest.mark.parametrize("entries,bits", [(256, 8), (4096, 12), (1024, 10), (100, 16)])
def test_presentation_lut_sequence(tools, report, entries, bits):
    state = _window(_base_state(CT), "40", "400")
    del state.PresentationLUTShape
    item = Dataset()
    item.LUTDescriptor = [entries, 0, bits]
    data = np.round(np.sqrt(np.arange(entries) / (entries - 1)) * ((1 << bits) - 1)).astype(np.int64)
    item.LUTData = data.tolist()
    item["LUTDescriptor"].VR = item["LUTData"].VR = "US"
    state.PresentationLUTSequence = Sequence([item])
    theirs, path = _dcmp2pgm(state, CT, f"plut {entries} {bits}")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    # hand-computed: entry floor(y * (n-1) / 255) of the exact LINEAR VOI output y, to 8 bits
    m = _stored(CT) - 1024
    y = np.clip(((m - 39.5) / 399 + 0.5), 0, 1) * (entries - 1)
    expected = (data[np.floor(y + 1e-9).astype(np.int64)] * 255 // ((1 << bits) - 1)).astype(np.uint8)
    np.testing.assert_array_equal(ours, expected)
    _exact(report, f"Presentation LUT Sequence {entries} x {bits} bits", CT, theirs, ours, "a square-root table")


@pytest.mark.parametrize("value,shape", [(32768, "IDENTITY"), (65535, "INVERSE"), (1000, "INVERSE")])
def test_bitmap_shutter(tools, report, value, shape):
    state = _window(_base_state(CT), "40", "400")
    rows, columns = np.mgrid[1:129, 1:129]
    covered = (rows - 64) ** 2 + (columns - 60) ** 2 > 40 ** 2
    add_overlay(state, 0x6000, covered)
    state.ShutterShape, state.ShutterOverlayGroup, state.ShutterPresentationValue = "BITMAP", 0x6000, value
    state.PresentationLUTShape = shape
    theirs, path = _dcmp2pgm(state, CT, f"bitmap {value} {shape}")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    assert (ours[covered] == 255 * value // 65535).all()  # never inverted
    _exact(report, f"bitmap shutter P={value}, {shape}", CT, theirs, ours, "Shutter Overlay Group 6000")


def test_voi_lut_in_the_state(tools, report):
    state = _base_state(CT)
    item, lut = Dataset(), Dataset()
    lut.LUTDescriptor = [256, (-200) & 0xFFFF, 12]
    table = np.linspace(0, 4095, 256).astype(np.int64)
    lut.LUTData = table.tolist()
    lut["LUTDescriptor"].VR = lut["LUTData"].VR = "US"
    item.VOILUTSequence = Sequence([lut])
    state.SoftcopyVOILUTSequence = Sequence([item])
    theirs, path = _dcmp2pgm(state, CT, "voi lut")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    index = np.clip(_stored(CT) - 1024 + 200, 0, 255)
    np.testing.assert_array_equal(ours, (table[index] * 255 // 4095).astype(np.uint8))
    # dcmtk scales VOI LUT entries by dropping low bits (PIPELINE.md section 7): at most 1 apart
    np.testing.assert_array_equal(theirs, (table[index] >> 4).astype(np.uint8))
    identical = int(np.count_nonzero(ours == theirs))
    report.add_pstate("VOI LUT in the state", CT, "dcmtk scales entries as e >> (bits - 8); the rule "
                      "floor(e * 255 / 4095): dcmtk 1 lower on the rest", "dcmp2pgm", ours.size, identical, 0, True)


# ---------------------------------------------------------------------------------------------------------
# What dcmp2pgm does not render: dcmtk's image with the step applied by hand


def test_voi_lut_function_dcmtk_ignores(tools, report):
    for function in ("SIGMOID", "LINEAR_EXACT"):
        theirs, path = _dcmp2pgm(_window(_base_state(CT), "40", "400", function), CT, f"function {function}")
        ours = dicomrender.render(support.test_file(CT), presentation_state=path)
        m = (_stored(CT) - 1024).astype(np.float64)
        # ours: the function, exactly as the reference twin; dcmtk: LINEAR whatever the function
        expected = _reference.to_uint8(Window(40, 400, function).values(m), snap=function != "SIGMOID")
        np.testing.assert_array_equal(ours, expected)
        _exact(report, f"VOI LUT Function {function}", CT,
               dicomrender.render(support.test_file(CT), window=(40, 400)), theirs,
               "dcmp2pgm applies LINEAR (compared: dcmtk = our LINEAR render; ours = the reference with "
               "the function)")


@pytest.mark.parametrize("kind", ["RECTANGULAR", "CIRCULAR", "POLYGONAL", "RECTANGULAR\\CIRCULAR"])
def test_geometric_shutters(tools, report, kind):
    state = _window(_base_state(CT), "40", "400")
    state.ShutterShape = kind
    state.ShutterPresentationValue = 40000
    rows, columns = np.mgrid[1:129, 1:129]
    shown = np.ones((128, 128), dtype=bool)
    if "RECTANGULAR" in kind:
        state.ShutterLeftVerticalEdge, state.ShutterRightVerticalEdge = 10, 100
        state.ShutterUpperHorizontalEdge, state.ShutterLowerHorizontalEdge = 20, 130
        shown &= (columns >= 10) & (columns <= 100) & (rows >= 20)
    if "CIRCULAR" in kind:
        state.CenterOfCircularShutter, state.RadiusOfCircularShutter = [64, 50], 45
        shown &= (rows - 64) ** 2 + (columns - 50) ** 2 <= 45 ** 2
    if "POLYGONAL" in kind:  # a diamond: centres with |r - 64| + |c - 64| <= 40 (boundary included)
        state.VerticesOfThePolygonalShutter = [24, 64, 64, 104, 104, 64, 64, 24]
        shown &= np.abs(rows - 64) + np.abs(columns - 64) <= 40
    theirs, path = _dcmp2pgm(state, CT, f"shutter {kind}")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    expected = theirs.copy()
    expected[~shown] = 255 * 40000 // 65535
    _exact(report, f"{kind.replace(chr(92), ' + ').lower()} shutter", CT, expected, ours,
           "dcmp2pgm draws no geometric shutter: its image with the shutter painted by hand", "dcmp2pgm + mask")


@pytest.mark.parametrize("corners,rotation", [(([20, 10], [100, 140]), 0), (([-9, 5], [60, 70]), 90),
                                              (([100, 100], [30, 20]), 180)])
def test_displayed_area(tools, report, corners, rotation):
    state = _window(_base_state(MR), "600", "1600")
    item = state.DisplayedAreaSelectionSequence[0]
    item.DisplayedAreaTopLeftHandCorner, item.DisplayedAreaBottomRightHandCorner = corners
    state.ImageRotation, state.ImageHorizontalFlip = rotation, "N"
    theirs, path = _dcmp2pgm(state, MR, f"area {corners} {rotation}")
    ours = dicomrender.render(support.test_file(MR), presentation_state=path)
    # dcmtk's whole (rotated) image, turned back, padded with black, cut to the area, turned again
    upright = np.pad(np.rot90(theirs, rotation // 90), 200)
    (c0, r0), (c1, r1) = corners
    area = upright[200 + min(r0, r1) - 1:200 + max(r0, r1), 200 + min(c0, c1) - 1:200 + max(c0, c1)]
    _exact(report, f"displayed area {corners[0]}..{corners[1]}, rotation {rotation}", MR,
           np.rot90(area, -rotation // 90), ours, "dcmp2pgm ignores the Displayed Area: its image cropped by hand",
           "dcmp2pgm + crop")


def test_state_overlay_activated(tools, report):
    state = _window(_base_state(CT), "40", "400")
    rows, columns = np.mgrid[0:128, 0:128]
    bits = ((rows // 8 + columns // 8) % 2 == 0)[:100, :90]
    add_overlay(state, 0x6002, bits, origin=(11, 21))
    state.add_new(0x60021001, "CS", "MARKS")
    layer = Dataset()
    layer.GraphicLayer, layer.GraphicLayerOrder, layer.GraphicLayerRecommendedDisplayGrayscaleValue = "MARKS", 1, 50000
    state.GraphicLayerSequence = Sequence([layer])
    theirs, path = _dcmp2pgm(state, CT, "overlay")
    ours = dicomrender.render(support.test_file(CT), presentation_state=path)
    expected = theirs.copy()
    expected[10:110, 20:110][bits] = 255 * 50000 // 65535
    _exact(report, "overlay activated by the state", CT, expected, ours,
           "dcmp2pgm draws no activated overlay: its image with the plane burnt by hand (layer grey 50000)",
           "dcmp2pgm + mask")


@pytest.mark.parametrize("rotation,flip", [(90, "N"), (0, "Y")])
def test_bitmap_shutter_with_a_spatial_transformation(tools, report, rotation, flip):
    """dcmp2pgm 3.6.7 paints a bitmap shutter 0, not its Shutter Presentation Value, once the image is
    rotated or flipped (the places are right); render keeps the value, as without the transformation."""
    state = _window(_base_state(MR), "600", "1600")
    rows, columns = np.mgrid[1:65, 1:65]
    covered = (rows - 32) ** 2 + (columns - 30) ** 2 > 28 ** 2
    add_overlay(state, 0x6000, covered)
    state.ShutterShape, state.ShutterOverlayGroup, state.ShutterPresentationValue = "BITMAP", 0x6000, 16384
    state.ImageRotation, state.ImageHorizontalFlip = rotation, flip
    theirs, path = _dcmp2pgm(state, MR, f"bitmap turned {rotation} {flip}")
    ours = dicomrender.render(support.test_file(MR), presentation_state=path)
    turned = np.rot90(covered, -rotation // 90)
    turned = turned[:, ::-1] if flip == "Y" else turned
    assert (theirs[turned] == 0).all() and (ours[turned] == 255 * 16384 // 65535).all()
    expected = theirs.copy()
    expected[turned] = 255 * 16384 // 65535
    _exact(report, f"bitmap shutter P=16384, rotation {rotation}, flip {flip}", MR, expected, ours,
           "dcmp2pgm paints the shuttered pixels 0 once the image is turned (right places, wrong value): "
           "compared with its image, those pixels set to floor(255 P / 65535)", "dcmp2pgm + value")
