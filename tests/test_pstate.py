"""Presentation states on synthetic images: every expected pixel is written out by hand or computed from
the formulas of PS3.3 / PS3.4 here, independently of the renderer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import dicomrender
from dicomrender.dicom.header import ImageInfo
from dicomrender.dicom.pstate import resolve_state
from dicomrender.errors import InvalidArgumentError, InvalidDatasetError, PixelLimitError, PresentationStateError

from .states import add_overlay, make_image, make_state, reference

#: 3 x 4 stored values 0, 10, 20 ... 110; with window 55.5/111 (LINEAR): y = ((x - 55) / 110 + 0.5) * 255
PIXELS = (np.arange(12, dtype=np.uint16) * 10).reshape(3, 4)
LINEAR = np.array([0, 23, 46, 69, 92, 115, 139, 162, 185, 208, 231, 255], dtype=np.uint8).reshape(3, 4)


@pytest.fixture
def image():
    return make_image(PIXELS, modality="MR")


def _render(image, state, **kwargs):
    return dicomrender.render(image, presentation_state=state, **kwargs)


def test_window_of_the_state(image):
    np.testing.assert_array_equal(_render(image, make_state(image, window=("55.5", "111"))), LINEAR)


def test_state_replaces_the_image_window_and_rescale(image):
    image.WindowCenter, image.WindowWidth = "1000", "10"
    image.RescaleSlope, image.RescaleIntercept = "5", "300"
    # the state has no Modality LUT module: identity, whatever the image says
    np.testing.assert_array_equal(_render(image, make_state(image, window=("55.5", "111"))), LINEAR)
    state = make_state(image, window=("55.5", "111"), RescaleSlope="1", RescaleIntercept="-10")
    expected = np.concatenate([[0], LINEAR.ravel()[:-1]]).reshape(3, 4)  # every value moved down by one step
    np.testing.assert_array_equal(_render(image, state), expected)


def test_no_voi_maps_the_modality_range_top_bits(image):
    # 16-bit unsigned, identity modality: floor(x * 256 / 65536) = x >> 8 -> all 0 for 0..110
    np.testing.assert_array_equal(_render(image, make_state(image)), np.zeros((3, 4), np.uint8))
    image.BitsStored, image.HighBit = 7, 6  # range 0..127: floor(x * 256 / 128) = 2x
    np.testing.assert_array_equal(_render(image, make_state(image)), (PIXELS * 2).astype(np.uint8))


def test_only_the_presentation_lut_shape_inverts():
    mono1 = make_image(PIXELS, modality="CR", photometric="MONOCHROME1")
    np.testing.assert_array_equal(_render(mono1, make_state(mono1, window=("55.5", "111"))), LINEAR)
    inverse = make_state(mono1, window=("55.5", "111"), PresentationLUTShape="INVERSE")
    # floor(255 - y) with y = 255 * i / 11 (i = x / 10): the LINEAR values in reverse order
    np.testing.assert_array_equal(_render(mono1, inverse), LINEAR.ravel()[::-1].reshape(3, 4))
    np.testing.assert_array_equal(_render(mono1, inverse, invert=False), LINEAR)
    resolved = resolve_state(inverse, "ps.dcm", ImageInfo.from_dataset(mono1), 0)
    assert resolved.invert and "INVERSE" in resolved.invert_reason


def test_presentation_lut_sequence(image):
    state = make_state(image, window=("55.5", "111"))
    del state.PresentationLUTShape
    item = Dataset()
    item.LUTDescriptor = [3, 0, 8]
    item.LUTData = [200, 100, 0]
    item["LUTDescriptor"].VR = item["LUTData"].VR = "US"
    state.PresentationLUTSequence = Sequence([item])
    # entry floor(y * 2 / 255): y < 127.5 -> 200, y < 255 -> 100, y = 255 -> 0
    expected = np.where(LINEAR < 127.5, 200, np.where(LINEAR < 255, 100, 0))
    expected.ravel()[5] = 200  # x = 50: y = 115.9..., index 0
    np.testing.assert_array_equal(_render(image, state), expected.astype(np.uint8))


def test_voi_item_for_another_image_and_the_one_for_this_image(image):
    state = make_state(image, window=("55.5", "111"))
    other = Dataset()
    other.WindowCenter, other.WindowWidth = "0", "2"
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3"
    other.ReferencedImageSequence = Sequence([ref])
    state.SoftcopyVOILUTSequence = Sequence([other] + list(state.SoftcopyVOILUTSequence))
    np.testing.assert_array_equal(_render(image, state), LINEAR)


@pytest.mark.parametrize("rotation,flip,expected", [
    (90, "N", [[8, 4, 0], [9, 5, 1], [10, 6, 2], [11, 7, 3]]),
    (180, "N", [[11, 10, 9, 8], [7, 6, 5, 4], [3, 2, 1, 0]]),
    (270, "N", [[3, 7, 11], [2, 6, 10], [1, 5, 9], [0, 4, 8]]),
    (0, "Y", [[3, 2, 1, 0], [7, 6, 5, 4], [11, 10, 9, 8]]),
    (90, "Y", [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]),  # rotation first, then the flip
])
def test_rotation_then_flip(image, rotation, flip, expected):
    state = make_state(image, window=("127.5", "256"), ImageRotation=rotation, ImageHorizontalFlip=flip)
    np.testing.assert_array_equal(_render(image, state), np.array(expected) * 10)
    out = np.zeros(np.shape(expected), dtype=np.uint8)
    assert _render(image, state, out=out) is out and (out == np.array(expected) * 10).all()


@pytest.mark.parametrize("value", [45, -90, "x", 360])
def test_nonsense_rotation(image, value):
    state = make_state(image)
    state.add_new(0x00700042, "US" if isinstance(value, int) and value >= 0 else "CS", value)
    with pytest.raises((InvalidDatasetError, PresentationStateError)) as info:
        _render(image, state)
    assert info.value.attribute in ("ImageRotation", None) and "ImageRotation" in str(info.value)


def _area(state, top_left, bottom_right, mode="SCALE TO FIT", ratio=None):
    item = Dataset()
    item.DisplayedAreaTopLeftHandCorner, item.DisplayedAreaBottomRightHandCorner = top_left, bottom_right
    item.PresentationSizeMode = mode
    if ratio is not None:
        item.PresentationPixelMagnificationRatio = ratio
    state.DisplayedAreaSelectionSequence = Sequence([item])
    return state


def test_displayed_area_crops_and_pads_black(image):
    state = _area(make_state(image, window=("127.5", "256")), [0, 2], [2, 4])  # columns 0..2, rows 2..4
    expected = np.array([[0, 40, 50], [0, 80, 90], [0, 0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(_render(image, state), expected)
    state.ImageRotation, state.ImageHorizontalFlip = 90, "N"
    np.testing.assert_array_equal(_render(image, state), np.rot90(expected, -1))


def test_magnify(image):
    state = _area(make_state(image, window=("127.5", "256")), [1, 1], [2, 1], "MAGNIFY", 2.0)
    np.testing.assert_array_equal(_render(image, state), [[0, 0, 10, 10], [0, 0, 10, 10]])


def test_huge_displayed_area_is_refused(image):
    state = _area(make_state(image), [-2_000_000_000, -2_000_000_000], [2_000_000_000, 2_000_000_000])
    with pytest.raises(PixelLimitError):
        _render(image, state)
    state = _area(make_state(image), [1, 1], [4, 3], "MAGNIFY", 1e30)
    with pytest.raises(PixelLimitError):
        _render(image, state)


def test_state_overlay_and_bitmap_shutter(image):
    state = make_state(image, window=("55.5", "111"))
    mark = np.zeros((3, 4), dtype=bool)
    mark[0, 1] = True
    add_overlay(state, 0x6002, mark)
    state.add_new(0x60021001, "CS", "MARKS")
    layer = Dataset()
    layer.GraphicLayer, layer.GraphicLayerOrder, layer.GraphicLayerRecommendedDisplayGrayscaleValue = "MARKS", 1, 32768
    state.GraphicLayerSequence = Sequence([layer])
    covered = np.zeros((3, 4), dtype=bool)
    covered[:, 3] = True
    add_overlay(state, 0x6000, covered)
    state.ShutterShape, state.ShutterOverlayGroup, state.ShutterPresentationValue = "BITMAP", 0x6000, 65535
    expected = LINEAR.copy()
    expected[:, 3] = 255
    expected[0, 1] = 127  # floor(255 * 32768 / 65535)
    np.testing.assert_array_equal(_render(image, state), expected)


def test_annotations_only_when_asked(image):
    state = make_state(image, window=("127.5", "256"))
    item, line = Dataset(), Dataset()
    item.GraphicLayer = "A"
    line.GraphicAnnotationUnits, line.GraphicDimensions, line.NumberOfGraphicPoints = "PIXEL", 2, 2
    line.GraphicData, line.GraphicType, line.GraphicFilled = [0.5, 1.5, 3.5, 1.5], "POLYLINE", "N"
    item.GraphicObjectSequence = Sequence([line])
    state.GraphicAnnotationSequence = Sequence([item])
    layer = Dataset()
    layer.GraphicLayer, layer.GraphicLayerOrder = "A", 1
    state.GraphicLayerSequence = Sequence([layer])
    np.testing.assert_array_equal(_render(image, state), PIXELS)
    expected = PIXELS.copy()
    expected[1] = 255  # the centres of row 1 from column 0 to 3, white (no recommended grey)
    np.testing.assert_array_equal(_render(image, state, annotations=True), expected)
    line.GraphicAnnotationUnits, line.GraphicData = "DISPLAY", [0.125, 0.5, 0.875, 0.5]  # same line, 0..1
    np.testing.assert_array_equal(_render(image, state, annotations=True), expected)
    state.ImageRotation, state.ImageHorizontalFlip = 90, "N"  # DISPLAY: a horizontal line on the turned image
    line.GraphicData = [0.5, 0.125, 0.5, 0.875]
    np.testing.assert_array_equal(_render(image, state, annotations=True), np.rot90(expected, -1))


def test_state_that_does_not_reference_the_image(image, tmp_path):
    other = make_image(PIXELS)
    path = str(tmp_path / "ps.dcm")
    make_state(other).save_as(path, enforce_file_format=True)
    with pytest.raises(PresentationStateError) as info:
        _render(image, path)
    assert info.value.attribute == "ReferencedSeriesSequence" and info.value.filename == path
    state = make_state(other)
    state.ReferencedSeriesSequence[0].SeriesInstanceUID = image.SeriesInstanceUID
    with pytest.raises(PresentationStateError) as info:
        _render(image, state)
    assert info.value.attribute == "ReferencedImageSequence"


def test_frames_referenced():
    frames = make_image(np.stack([PIXELS, PIXELS + 1]))
    state = make_state(frames, window=("55.5", "111"), frames=[2])
    with pytest.raises(PresentationStateError) as info:
        _render(frames, state, frame=0)
    assert info.value.attribute == "ReferencedFrameNumber"
    with pytest.raises(InvalidArgumentError) as info:
        _render(frames, state)
    assert info.value.attribute == "frame"
    np.testing.assert_array_equal(_render(frames, state, frame=1), _render(frames, make_state(frames, window=(
        "55.5", "111")), frame=1))


def test_state_referencing_many_images(image):
    state = make_state(image, window=("55.5", "111"))
    refs = [reference(image)]
    for i in range(20_000):
        ref = Dataset()
        ref.ReferencedSOPInstanceUID = f"1.2.3.{i}"
        refs.append(ref)
    state.ReferencedSeriesSequence[0].ReferencedImageSequence = Sequence(refs[::-1])
    np.testing.assert_array_equal(_render(image, state), LINEAR)


def test_not_a_gsps_and_bad_arguments(image):
    state = make_state(image)
    state.SOPClassUID = "1.2.840.10008.5.1.4.1.1.11.2"  # colour softcopy presentation state
    with pytest.raises(PresentationStateError) as info:
        _render(image, state)
    assert info.value.attribute == "SOPClassUID"
    with pytest.raises(InvalidArgumentError):
        _render(image, make_state(image), preset="brain")
    np.testing.assert_array_equal(_render(image, make_state(image), window=(55.5, 111)), LINEAR)


def test_resolved_state_describes_itself(image):
    state = _area(make_state(image, window=("55.5", "111"), ImageRotation=270, ImageHorizontalFlip="Y"), [1, 1],
                  [2, 2])
    resolved = resolve_state(copy.deepcopy(state), "ps.dcm", ImageInfo.from_dataset(image), 0)
    assert (resolved.voi.center, resolved.voi.width, resolved.voi.function) == (55.5, 111.0, "LINEAR")
    assert (resolved.rotation, resolved.flip, resolved.invert) == (270, True, False)
    assert resolved.displayed_area.bounds == (0, 0, 1, 1) and resolved.shutters is None
    assert "identity" in resolved.modality_source and "window" in resolved.voi_source
