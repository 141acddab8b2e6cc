"""dicomrender.explain and ``dicomrender info``: the decisions render makes, reported."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import dicomrender
from dicomrender import _kernel, _reference
from dicomrender.cli.command import main

from .data import data_file
from .states import make_image, make_state
from .synthetic import make_dataset, write_dataset

CASES = [
    ("CT_small.dcm", None), ("CT_small.dcm", "brain"), ("CT_small.dcm", "minmax"), ("CT_small.dcm", "percentile"),
    ("CT_small.dcm", "histogram"), ("CT_small.dcm", "ich_rgb"), ("MR_small.dcm", None), ("MR_small.dcm", "auto"),
    ("MR_small.dcm", "histogram"), ("MR2_UNCI.dcm", None), ("MR2_UNCI.dcm", "minmax"), ("RG3_UNCI.dcm", None),
    ("emri_small.dcm", None), ("emri_small.dcm", "percentile"),
]


def _expected(path, explanation):
    """render's pixels rebuilt from the explanation alone: pydicom's stored values, the explained modality
    transform and windows through the float64 reference."""
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array.reshape((-1, ds.Rows, ds.Columns))
    channels = []
    for group in explanation.groups:
        frames = stored[group.first_frame:group.last_frame + 1]
        x = _reference.modality_values(frames, group.modality.slope, group.modality.intercept)
        channels.append(np.stack([
            _reference.to_uint8(_reference.voi_values(x, v.center, v.width, v.function), explanation.inversion.applied,
                                v.function != "SIGMOID") for v in group.vois], axis=-1))
    result = np.concatenate(channels)
    if result.shape[-1] == 1:
        result = result[..., 0]
    return result[0] if len(explanation.output_shape) == (2 if result.ndim == 3 else 3) else result


@pytest.mark.parametrize("name,preset", CASES)
def test_explained_windows_produce_the_rendered_pixels(name, preset):
    path = data_file(name)
    explanation = dicomrender.explain(path, preset)
    rendered = dicomrender.render(path, preset)
    assert rendered.shape == explanation.output_shape and explanation.output_dtype == str(rendered.dtype)
    assert all(v.kind == "window" for g in explanation.groups for v in g.vois)
    np.testing.assert_array_equal(rendered, _expected(path, explanation))


def test_kernel_path_is_the_loop_render_runs(monkeypatch):
    ran = []
    for name in ("narrow", "affine", "gather", "arithmetic"):
        original = getattr(_kernel, name)

        def spy(*args, _name=name, _original=original):
            ran.append(_name)
            return _original(*args)
        monkeypatch.setattr(_kernel, name, spy)
    loops = {"narrow": "narrow", "affine": "affine", "lut": "gather", "arithmetic": "arithmetic"}
    seen = set()
    for path, options in [(data_file("CT_small.dcm"), {"preset": "brain"}),
                          (data_file("CT_small.dcm"), {"preset": "stroke_narrow"}),
                          (data_file("MR_small.dcm"), {"window": (600, 1600), "function": "SIGMOID"}),
                          (data_file("CT_small.dcm"), {"preset": "ich_rgb"})]:
        ran.clear()
        explained = dicomrender.explain(path, **options).groups[0].path
        dicomrender.render(path, **options)
        assert ran == [loops[explained]], (options, explained, ran)
        seen.add(explained)
    assert "lut" in seen  # SIGMOID: no affine form


def test_header_window_item_and_its_explanation_are_reported(tmp_path):
    stored = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    path = write_dataset(make_dataset(stored, bits_stored=12, modality="MR", WindowCenter=["1000", "3000"],
                                      WindowWidth=["500", "800"], WindowCenterWidthExplanation=["SOFT", "BRIGHT"]),
                         tmp_path / "two.dcm")
    voi = dicomrender.explain(path, voi_index=1).vois[0]
    assert (voi.center, voi.width, voi.explanation, voi.header_item, voi.header_items) == (3000, 800, "BRIGHT", 1, 2)
    assert "header window item 2 of 2" in voi.why() and "voi_index" in voi.why()
    by_name = dicomrender.explain(path, "header", voi_explanation="soft").vois[0]
    assert (by_name.center, by_name.header_item) == (1000, 0)


def test_modality_lut_and_inversion_reasons(tmp_path):
    stored = np.arange(0, 256, dtype=np.uint16).reshape(16, 16)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 12]
    item.LUTData = (np.arange(256, dtype="<u2") * 16).tobytes()
    item["LUTData"].VR = "OW"
    item.LUTExplanation = "TIMES 16"
    ds = make_dataset(stored, bits_stored=8, modality="CR", photometric="MONOCHROME1",
                      ModalityLUTSequence=Sequence([item]), WindowCenter="2048", WindowWidth="4096")
    explanation = dicomrender.explain(ds)
    step = explanation.groups[0].modality
    assert (step.kind, step.descriptor, step.explanation) == ("modality LUT", (256, 0, 12), "TIMES 16")
    assert explanation.inversion == dicomrender.explain(ds, invert=True).inversion.__class__(
        True, "PhotometricInterpretation MONOCHROME1")
    assert dicomrender.explain(ds, invert=False).inversion.reason == "invert=False argument"
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PresentationLUTShape = "INVERSE"
    assert dicomrender.explain(ds).inversion.reason == "PresentationLUTShape INVERSE"


def test_record_is_frozen_readable_and_json():
    explanation = dicomrender.explain(data_file("CT_small.dcm"), "brain")
    with pytest.raises(dataclasses.FrozenInstanceError):
        explanation.rows = 1  # type: ignore[misc]
    text = str(explanation)
    for line in ("modality:", "Rescale Slope 1, Intercept -1024", "window 40/80", "preset 'brain'", "kernel path:",
                 "inversion:", "output:          uint8 (128, 128)", "overlays:"):
        assert line in text
    assert json.loads(json.dumps(explanation.to_dict()))["groups"][0]["vois"][0]["center"] == 40


def test_colour_image_explained(tmp_path):
    explanation = dicomrender.explain(data_file("SC_rgb.dcm"))
    assert explanation.groups == () and "RGB" in explanation.colour
    assert explanation.output_shape == dicomrender.render(data_file("SC_rgb.dcm")).shape


def test_explain_raises_what_render_raises():
    with pytest.raises(dicomrender.PresetError):
        dicomrender.explain(data_file("MR_small.dcm"), "brain")
    with pytest.raises(TypeError, match="voi_index"):
        dicomrender.explain(data_file("MR_small.dcm"), voi_indx=1)


def test_info_command(capsys, tmp_path):
    path = data_file("MR_small.dcm")
    assert main(["info", path, "--window", "100", "200"]) == 0
    out = capsys.readouterr().out
    assert "window 100/200" in out and "window= of the caller" in out
    assert main(["info", path, "--preset", "minmax", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["groups"][0]["vois"][0]["source"] == "data"
    bad = tmp_path / "not.dcm"
    bad.write_bytes(b"not dicom")
    assert main(["info", str(bad)]) == 1


def test_presentation_state_voi_and_inversion_are_the_states():
    stored = (np.arange(12, dtype=np.uint16) * 10).reshape(3, 4)
    image = make_image(stored, modality="MR", WindowCenter="1000", WindowWidth="10")
    state = make_state(image, window=("55.5", "111"))
    explanation = dicomrender.explain(image, presentation_state=state)
    voi = explanation.vois[0]
    assert (voi.source, voi.center, voi.width, voi.function) == ("presentation state", 55.5, 111, "LINEAR")
    assert explanation.presentation_state.requested and explanation.spatial.requested
    assert not dicomrender.explain(image).presentation_state.requested
    # the explained window gives render's pixels: y = ((x - 55) / 110 + 0.5) * 255, floored
    expected = np.floor(((stored.astype(float) - 55) / 110 + 0.5) * 255).clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(dicomrender.render(image, presentation_state=state), expected)
    with pytest.raises(dicomrender.InvalidArgumentError):
        dicomrender.explain(image, "auto", presentation_state=state)
