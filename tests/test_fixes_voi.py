"""The header's VOI choices: window= in the header's VOI LUT Function, voi="window"|"lut", data-driven
windows over frames with different Pixel Value Transformations, invalid header windows skipped."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import dicomrender
from dicomrender.errors import HeaderWindowWarning, InvalidArgumentError, InvalidWindowError

from .conformance.dcmtk_support import dcm2pnm, dcmtk_available
from .synthetic import make_dataset, write_dataset


def _sigmoid(x, c, w):
    """PS3.3 C.11.2.1.3.1 SIGMOID, floored (the project's rounding rule: no snap for SIGMOID)."""
    return np.floor(255.0 / (1.0 + np.exp(-4.0 * (np.asarray(x, dtype=float) - c) / w))).astype(np.uint8)


def _linear(x, c, w):
    """PS3.3 C.11.2.1.2 LINEAR, written out with exact rationals: floor of the exact value."""
    from fractions import Fraction
    out = []
    for v in np.asarray(x).reshape(-1).tolist():
        v, cc, ww = Fraction(v), Fraction(c), Fraction(w)
        if v <= cc - Fraction(1, 2) - (ww - 1) / 2:
            out.append(0)
        elif v > cc - Fraction(1, 2) + (ww - 1) / 2:
            out.append(255)
        else:
            out.append(math.floor(((v - (cc - Fraction(1, 2))) / (ww - 1) + Fraction(1, 2)) * 255))
    return np.array(out, dtype=np.uint8).reshape(np.shape(x))


def _sigmoid_file(tmp_path):
    stored = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    ds = make_dataset(stored, bits_stored=12, modality="MR", WindowCenter="2000", WindowWidth="1500",
                      VOILUTFunction="SIGMOID")
    return write_dataset(ds, tmp_path / "sigmoid.dcm"), stored


# ---- window= takes the header's VOI LUT Function ---------------------------------------------------------


def test_explicit_window_uses_the_header_sigmoid(tmp_path):
    path, stored = _sigmoid_file(tmp_path)
    got = dicomrender.render(path, window=(1000, 800))
    np.testing.assert_array_equal(got, _sigmoid(stored, 1000, 800))
    # function= still overrides it
    np.testing.assert_array_equal(dicomrender.render(path, window=(1000, 800), function="LINEAR"),
                                  _linear(stored, 1000, 800))


@pytest.mark.skipif(not dcmtk_available(), reason="dcmtk not installed")
def test_explicit_window_on_a_sigmoid_file_matches_dcm2pnm(tmp_path):
    path, stored = _sigmoid_file(tmp_path)
    dcmtk = dcm2pnm(path, ("+Ww", "1000", "800"), 1)[0]
    ours = dicomrender.render(path, window=(1000, 800))
    # dcmtk evaluates the sigmoid in its own float order: equal, or one level apart at a boundary
    assert np.abs(ours.astype(int) - dcmtk.astype(int)).max() <= 1
    assert (ours == dcmtk).mean() > 0.95
    # and LINEAR is far from what dcmtk shows (what window= gave before)
    assert np.abs(_linear(stored, 1000, 800).astype(int) - dcmtk.astype(int)).max() > 20


def test_convert_renders_the_explicit_window_in_the_header_function(tmp_path):
    path, stored = _sigmoid_file(tmp_path)
    report = dicomrender.convert([path], tmp_path / "out", window=(1000, 800), format="png")
    assert [r.status for r in report] == ["ok"]
    from PIL import Image
    written = np.asarray(Image.open(tmp_path / "out" / report[0].written[0]))
    np.testing.assert_array_equal(written, _sigmoid(stored, 1000, 800))


def test_render_series_takes_each_slices_header_function_for_window(tmp_path):
    stored = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    paths = []
    for k, function in enumerate(["SIGMOID", "LINEAR", "SIGMOID"]):
        ds = make_dataset(stored + k, bits_stored=12, modality="MR", WindowCenter="2000", WindowWidth="1500",
                          VOILUTFunction=function, ImagePositionPatient=[0, 0, k],
                          ImageOrientationPatient=[1, 0, 0, 0, 1, 0], InstanceNumber=k + 1)
        paths.append(write_dataset(ds, tmp_path / f"s{k}.dcm"))
    volume = np.asarray(dicomrender.render_series(paths, window=(1000, 800)))
    np.testing.assert_array_equal(volume[0], _sigmoid(stored, 1000, 800))
    np.testing.assert_array_equal(volume[1], _linear(stored + 1, 1000, 800))
    np.testing.assert_array_equal(volume[2], _sigmoid(stored + 2, 1000, 800))
    # function= overrides every slice's
    linear = np.asarray(dicomrender.render_series(paths, window=(1000, 800), function="LINEAR"))
    np.testing.assert_array_equal(linear[2], _linear(stored + 2, 1000, 800))


def test_explain_says_where_the_function_of_window_comes_from(tmp_path):
    path, _ = _sigmoid_file(tmp_path)
    voi = dicomrender.explain(path, window=(1000, 800)).vois[0]
    assert (voi.center, voi.width, voi.function) == (1000, 800, "SIGMOID")
    assert "header's first window" in voi.reason


# ---- voi="window" | "lut" ----------------------------------------------------------------------------------


def _window_and_lut(tmp_path):
    stored = np.arange(0, 256, dtype=np.uint16).reshape(16, 16)
    lut = Dataset()
    lut.LUTDescriptor = [256, 0, 8]
    table = (255 - np.arange(256)).astype(np.uint16)  # an inverting table
    lut.LUTData = table.astype("<u2").tobytes()
    lut["LUTData"].VR = "OW"
    lut.LUTExplanation = "INVERTING"
    ds = make_dataset(stored, bits_stored=8, modality="MR", WindowCenter="100", WindowWidth="50",
                      VOILUTSequence=Sequence([lut]))
    return write_dataset(ds, tmp_path / "both.dcm"), stored, table


def test_voi_option_chooses_between_header_window_and_voi_lut(tmp_path):
    path, stored, table = _window_and_lut(tmp_path)
    by_window = _linear(stored, 100, 50)
    np.testing.assert_array_equal(dicomrender.render(path), by_window)  # the default is unchanged
    np.testing.assert_array_equal(dicomrender.render(path, voi="window"), by_window)
    np.testing.assert_array_equal(dicomrender.render(path, "header", voi="LUT"), table[stored].astype(np.uint8))
    assert dicomrender.explain(path).vois[0].source == "header window"
    lut = dicomrender.explain(path, voi="lut").vois[0]
    assert (lut.source, lut.kind, lut.descriptor, lut.explanation) == ("header VOI LUT", "VOI LUT", (256, 0, 8),
                                                                       "INVERTING")
    assert "voi='lut'" in lut.reason


def test_voi_option_misspelled_is_refused_naming_voi(tmp_path):
    path, _, _ = _window_and_lut(tmp_path)
    with pytest.raises(InvalidArgumentError) as caught:
        dicomrender.render(path, voi="lookup")
    assert caught.value.attribute == "voi" and "both.dcm" in str(caught.value)
    with pytest.raises(TypeError, match="voi"):  # a preset that reads no voi= refuses it
        dicomrender.render(path, "minmax", voi="lut")


# ---- data-driven windows over frames with different Pixel Value Transformations ----------------------------


def _two_transforms():
    stored = np.array([[[0, 10], [20, 30]], [[0, 10], [20, 30]]], dtype=np.uint16)
    ds = make_dataset(stored, bits_stored=16, modality="MR")
    groups = []
    for intercept in (0, 1000):
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 1, intercept, "US"
        group = Dataset()
        group.PixelValueTransformationSequence = Sequence([transform])
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    return ds


def test_minmax_over_all_frames_spans_every_pixel_value_transformation():
    # modality values 0..30 and 1000..1030: one window c = 515.5, w = 1031, so y = x * 255 / 1030
    got = dicomrender.render(_two_transforms(), "minmax")
    expected = np.array([[[0, 2], [4, 7]], [[247, 250], [252, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(got, expected)
    explanation = dicomrender.explain(_two_transforms(), "minmax")
    assert len(explanation.groups) == 2
    assert {(g.vois[0].center, g.vois[0].width) for g in explanation.groups} == {(515.5, 1031.0)}


@pytest.mark.parametrize("preset", ["auto", None, "percentile"])
def test_other_data_driven_windows_span_the_frames_too(preset):
    # percentiles 0-100: low 0, high 1030 as well; None: the header has no window, so auto over all frames
    options = {"percentiles": (0, 100)} if preset == "percentile" else {}
    got = dicomrender.render(_two_transforms(), preset, **options)
    expected = np.array([[[0, 2], [4, 7]], [[247, 250], [252, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(got, expected)


def test_one_frame_keeps_its_own_window():
    got = dicomrender.render(_two_transforms(), "minmax", frame=1)
    np.testing.assert_array_equal(got, _linear(np.array([[1000, 1010], [1020, 1030]]), 1015.5, 31))


# ---- invalid header windows --------------------------------------------------------------------------------


@pytest.mark.parametrize("width", ["0", "0.5"])
def test_invalid_header_window_is_skipped_with_a_warning(tmp_path, width):
    stored = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    path = write_dataset(make_dataset(stored, bits_stored=12, modality="MR", WindowCenter="100",
                                      WindowWidth=width), tmp_path / "bad.dcm")
    with pytest.warns(HeaderWindowWarning) as caught:
        got = dicomrender.render(path)
    message = str(caught[0].message)
    assert "bad.dcm" in message and "WindowWidth" in message
    assert caught[0].message.attribute == "WindowWidth"
    # as if the header had no window: the auto window, min-max 0..4080: c = 2040.5, w = 4081
    np.testing.assert_array_equal(got, _linear(stored, 2040.5, 4081))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explanation = dicomrender.explain(path)  # explain reports, it does not warn
    assert explanation.vois[0].source == "data" and "invalid" in explanation.vois[0].reason
    assert len(explanation.warnings) == 1 and "WindowWidth" in explanation.warnings[0]
    # the caller's own invalid window still raises
    with pytest.raises(InvalidWindowError):
        dicomrender.render(path, window=(100, float(width)))


def test_invalid_header_window_falls_back_to_the_voi_lut(tmp_path):
    stored = np.arange(0, 256, dtype=np.uint16).reshape(16, 16)
    lut = Dataset()
    lut.LUTDescriptor = [256, 0, 8]
    lut.LUTData = (255 - np.arange(256)).tolist()
    ds = make_dataset(stored, bits_stored=8, modality="MR", WindowCenter="100", WindowWidth="0",
                      VOILUTSequence=Sequence([lut]))
    with pytest.warns(HeaderWindowWarning):
        got = dicomrender.render(ds)
    np.testing.assert_array_equal(got, (255 - stored).astype(np.uint8))


def test_convert_records_the_invalid_window_warning(tmp_path):
    stored = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    path = write_dataset(make_dataset(stored, bits_stored=12, modality="MR", WindowCenter="100",
                                      WindowWidth="0.5"), tmp_path / "bad.dcm")
    report = dicomrender.convert([path], tmp_path / "out", format="png")
    assert [r.status for r in report] == ["ok"]
    assert "WindowWidth" in report[0].message and report[0].message.startswith("warning:")
