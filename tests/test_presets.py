"""Presets: fixed clinical windows, header windows, data-driven windows, stacks.

Independent sources: the float64 twin ``_reference.render_reference`` for the
pixels, the published values (Radiopaedia, "Windowing (CT)") for the fixed
windows, numpy for percentiles, and the windows dcmtk 3.6.7 ``dcm2pnm -d``
reports for ``+Wm`` / ``+Wh n`` (recorded below, and checked live when
dcm2pnm is installed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import dicomrender
from dicomrender import _reference, _types
from dicomrender.dicom.header import ImageInfo
from dicomrender.dicom.pixels import read_frames
from dicomrender.engine import dispatch, render_stored
from dicomrender.errors import InvalidWindowError, PluginError, PresetError, UnknownPresetError
from dicomrender.presets import Preset, get_preset, list_presets, preset_table, resolve
from dicomrender.presets import builtin as builtin_presets
from dicomrender.presets import registry as plugins
from dicomrender.rendering import context_for

from .data import data_file


@pytest.fixture(autouse=True)
def builtin_only(monkeypatch):
    """Only the built-in presets: third-party plugins cannot change these results."""
    monkeypatch.setenv(plugins.ENV_VAR, "")
    plugins.reset()
    yield
    plugins.reset()


def make_dataset(stored: np.ndarray, *, modality="CT", slope=1.0, intercept=0.0, bits_stored=None,
                 rescale_type=None, photometric="MONOCHROME2", **attributes) -> Dataset:
    """An in-memory image with ``stored`` as Pixel Data ((rows, cols) or (frames, rows, cols))."""
    stored = np.asarray(stored)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = modality
    if stored.ndim == 3:
        ds.NumberOfFrames = stored.shape[0]
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(stored.dtype.kind == "i")
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleIntercept = f"{intercept:g}"
    if rescale_type:
        ds.RescaleType = rescale_type
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(stored.astype(stored.dtype.newbyteorder("<"))).tobytes()
    return ds


# Every stored value of 12 bits: HU -1024 .. 3071 on a 64 x 64 ramp.
RAMP = np.arange(4096, dtype=np.uint16).reshape(64, 64)
RAMP_KW = dict(slope=1.0, intercept=-1024.0, bits_stored=12)

# Published centre/width (Radiopaedia "Windowing (CT)"; stroke 40/40 Turner & Holdsworth 2011,
# 32/8 Lev et al. 1999; subdural and head soft tissue within the published ranges).
FIXED = {
    "brain": (40, 80),
    "subdural": (75, 215),
    "stroke": (40, 40),
    "stroke_narrow": (32, 8),
    "temporal_bone": (600, 2800),
    "head_soft_tissue": (50, 380),
    "lung": (-600, 1500),
    "mediastinum": (50, 350),
    "abdomen": (50, 400),
    "liver": (30, 150),
    "spine_soft_tissue": (50, 250),
    "bone": (400, 1800),
}


def test_fixed_presets_are_the_published_ones():
    fixed = {p.name: (p.center, p.width) for p in list_presets() if p.fixed}
    assert fixed == FIXED
    assert all(p.function == "LINEAR" and p.units == "HU" and p.reference for p in list_presets() if p.fixed)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_preset_on_hu_ramp_equals_reference(name):
    center, width = FIXED[name]
    ds = make_dataset(RAMP, **RAMP_KW)
    expected = _reference.render_reference(RAMP, center, width, slope=1, intercept=-1024, bits_stored=12)
    got = dicomrender.render(ds, name)
    np.testing.assert_array_equal(got, expected)
    # hand check of the window edges: HU <= c-0.5-(w-1)/2 black, HU > c-0.5+(w-1)/2 white
    hu = RAMP.astype(np.int64) - 1024
    assert np.all(got[hu <= center - 0.5 - (width - 1) / 2] == 0)
    assert np.all(got[hu > center - 0.5 + (width - 1) / 2] == 255)


def test_fixed_preset_signed_ramp_and_monochrome1():
    stored = (np.arange(4096, dtype=np.int16) - 1024).reshape(64, 64)
    ds = make_dataset(stored, photometric="MONOCHROME1")
    got = dicomrender.render(ds, "lung")
    np.testing.assert_array_equal(got, _reference.render_reference(stored, -600, 1500, invert=True))


def test_preset_names_are_case_insensitive_and_aliases_work():
    ds = make_dataset(RAMP, **RAMP_KW)
    np.testing.assert_array_equal(dicomrender.render(ds, "BRAIN"), dicomrender.render(ds, "brain"))
    np.testing.assert_array_equal(dicomrender.render(ds, "Lungs"), dicomrender.render(ds, "lung"))
    assert get_preset("  Temporal_Bones ").name == "temporal_bone"


def test_hu_preset_on_non_hu_image_is_refused_unless_not_strict():
    path = data_file("MR_small.dcm")
    with pytest.raises(PresetError) as info:
        dicomrender.render(path, "brain")
    assert "MR_small.dcm" in str(info.value) and "strict=False" in str(info.value)
    assert info.value.attribute == "RescaleType"
    ds = pydicom.dcmread(path)
    got = dicomrender.render(path, "brain", strict=False)
    np.testing.assert_array_equal(got, _reference.render_reference(ds.pixel_array, 40, 80))


def test_rescale_type_hu_counts_as_hounsfield_on_other_modalities():
    ds = make_dataset(RAMP, modality="OT", rescale_type="HU", **RAMP_KW)
    np.testing.assert_array_equal(dicomrender.render(ds, "bone"),
                                  _reference.render_reference(RAMP, 400, 1800, intercept=-1024, bits_stored=12))
    with pytest.raises(PresetError):
        dicomrender.render(make_dataset(RAMP, modality="OT", **RAMP_KW), "bone")


def test_unknown_preset_lists_close_matches():
    ds = make_dataset(RAMP, **RAMP_KW)
    with pytest.raises(UnknownPresetError) as info:
        dicomrender.render(ds, "brian")
    assert isinstance(info.value, KeyError)
    assert "'brian'" in str(info.value) and "'brain'" in str(info.value)
    with pytest.raises(UnknownPresetError, match="known presets: .*abdomen.*bone"):
        get_preset("zzzzzz")
    with pytest.raises(PresetError):
        get_preset(42)


# ---- header ----------------------------------------------------------------


def test_header_single_window():
    path = data_file("693_UNCI.dcm")  # Window Center 40, Width 100
    ds = pydicom.dcmread(path)
    expected = _reference.render_reference(ds.pixel_array, 40, 100, slope=1, intercept=-1024, bits_stored=14,
                                           signed=True)
    np.testing.assert_array_equal(dicomrender.render(path, "header"), expected)
    np.testing.assert_array_equal(dicomrender.render(path), expected)  # the default
    with pytest.raises(InvalidWindowError, match="voi_index 1 out of range"):
        dicomrender.render(path, "header", voi_index=1)


def test_header_several_windows_by_index_and_explanation():
    path = data_file("examples_overlay.dcm")  # 450/790 WINDOW1, 200/443 WINDOW2
    stored = pydicom.dcmread(path).pixel_array
    first = _reference.render_reference(stored, 450, 790)
    second = _reference.render_reference(stored, 200, 443)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(dicomrender.render(path, "header"), first)
    np.testing.assert_array_equal(dicomrender.render(path, "header", voi_index=1), second)
    np.testing.assert_array_equal(dicomrender.render(path, "header", voi_explanation="window2"), second)
    np.testing.assert_array_equal(dicomrender.render(path, "header", voi_explanation="WINDOW1"), first)
    with pytest.raises(InvalidWindowError, match="'WINDOW1', 'WINDOW2'") as info:
        dicomrender.render(path, "header", voi_explanation="BONE")
    assert info.value.attribute == "WindowCenterWidthExplanation"


def test_header_falls_back_to_voi_lut_then_auto():
    path = data_file("vlut_04.dcm")  # no window, one VOI LUT (256 entries, first 0, 16 bits)
    ds = pydicom.dcmread(path)
    item = ds.VOILUTSequence[0]
    lut = np.asarray(item.LUTData, dtype=np.float64)
    index = np.clip(ds.pixel_array.astype(np.int64) - int(item.LUTDescriptor[1]), 0, lut.size - 1)
    expected = np.floor(lut[index] * 255 / 65535 + 1e-9).astype(np.uint8)
    np.testing.assert_array_equal(dicomrender.render(path, "header"), expected)

    ct = data_file("CT_small.dcm")  # no window and no VOI LUT: the auto window (dcmtk +Wm 136/2064)
    stored = pydicom.dcmread(ct).pixel_array
    np.testing.assert_array_equal(dicomrender.render(ct, "header"),
                                  _reference.render_reference(stored, 136, 2064, intercept=-1024))


# ---- data-driven windows ---------------------------------------------------

# dcm2pnm 3.6.7 -d, "applying linear VOI transformation with window center = C, width = W":
# (file, 0-based frame) -> {option: (C, W)}
DCMTK = {
    ("CT_small.dcm", None): {"+Wm": (136, 2064), "+Wh 0": (136.5, 2065), "+Wh 1": (-85, 1528),
                             "+Wh 5": (-236.5, 1171), "+Wh 10": (-291, 1016)},
    ("MR_small.dcm", None): {"+Wm": (1136.5, 2019), "+Wh 1": (942.5, 1577), "+Wh 5": (798.5, 1249),
                             "+Wh 10": (716.5, 1041)},
    ("693_UNCI.dcm", None): {"+Wm": (-1091, 5808), "+Wh 0": (-1090.5, 5809), "+Wh 1": (-1090, 4130),
                             "+Wh 5": (-1268.5, 3567), "+Wh 10": (-1481.5, 3109)},
    # padding (stored -2000) is the minimum here: dcmtk counts it
    ("693_UNCR.dcm", None): {"+Wm": (-777.5, 4493), "+Wh 1": (-983, 4080), "+Wh 5": (-1239.5, 3567)},
    # Rescale Slope 3.774114: dcmtk truncates the modality values to integers
    ("MR2_UNCI.dcm", None): {"+Wm": (1132.5, 2265), "+Wh 5": (604.5, 1207)},
    ("emri_small.dcm", 0): {"+Wm": (213, 426), "+Wh 5": (160, 280)},
    ("emri_small.dcm", 2): {"+Wm": (212.5, 425), "+Wh 5": (151, 268)},
}
CASES = [(f, frame, opt, cw) for (f, frame), opts in DCMTK.items() for opt, cw in opts.items()]


def _preset_of(option: str):
    if option == "+Wm":
        return "minmax", {}
    return "histogram", {"histogram_percent": int(option.split()[1])}


def _expected(path, frame, center, width):
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array if frame is None else ds.pixel_array[frame]
    return _reference.render_reference(stored, center, width, slope=float(ds.get("RescaleSlope", 1)),
                                       intercept=float(ds.get("RescaleIntercept", 0)), bits_stored=ds.BitsStored,
                                       signed=bool(ds.PixelRepresentation))


@pytest.mark.parametrize("name,frame,option,cw", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_data_driven_window_equals_dcmtk(name, frame, option, cw):
    path = data_file(name)
    preset, options = _preset_of(option)
    got = dicomrender.render(path, preset, frame=frame, **options)
    np.testing.assert_array_equal(got, _expected(path, frame, *cw))


def _dcm2pnm_window(path, *args):
    run = subprocess.run(["dcm2pnm", "-d", "-O", *args, path, os.devnull], capture_output=True, text=True, timeout=60)
    found = re.findall(r"window center = ([-\d.e+]+), width = ([-\d.e+]+)", run.stdout + run.stderr)
    assert found, run.stderr[-2000:]
    return float(found[0][0]), float(found[0][1])


@pytest.mark.skipif(shutil.which("dcm2pnm") is None, reason="dcmtk's dcm2pnm is not installed")
@pytest.mark.parametrize("name,frame", [("CT_small.dcm", None), ("693_UNCR.dcm", None), ("MR2_UNCI.dcm", None),
                                        ("emri_small.dcm", 2)])
@pytest.mark.parametrize("option", ["+Wm", "+Wh 0", "+Wh 3", "+Wh 5"])
def test_data_driven_window_equals_live_dcm2pnm(name, frame, option):
    path = data_file(name)
    args = option.split() + ([] if frame is None else ["+F", str(frame + 1)])
    preset, options = _preset_of(option)
    assert _window_of(pydicom.dcmread(path), preset, frame, **options) == _dcm2pnm_window(path, *args)


def _window_of(ds, preset, frame=None, **options):
    info = ImageInfo.from_dataset(ds)
    indices = info.frame_indices(frame)
    ctx = context_for(info, info.frame_parameters(indices[0]), read_frames(info, indices).words, True, options)
    (window,) = resolve(preset, ctx)
    return window.center, window.width


def test_data_driven_windows_on_float_pixel_data_keep_fractions():
    values = np.linspace(-3.5, 400.25, 256, dtype=np.float32).reshape(16, 16)
    values[0, 0] = np.nan  # ignored
    ds = make_dataset(np.zeros((16, 16), np.uint16), modality="MR")
    del ds.PixelData
    ds.BitsAllocated, ds.FloatPixelData = 32, values.tobytes()
    del ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    finite = values[~np.isnan(values)].astype(np.float64)
    lo, hi = finite.min(), finite.max()  # -3.5 + step: no integer truncation for float data
    assert _window_of(ds, "minmax") == ((lo + hi + 1) / 2, hi - lo + 1)
    assert _window_of(ds, "auto") == ((lo + hi + 1) / 2, hi - lo + 1)
    p1, p99 = np.percentile(finite, (1, 99))
    assert _window_of(ds, "percentile") == ((p1 + p99 + 1) / 2, p99 - p1 + 1)


@pytest.mark.parametrize("preset,options", [("minmax", {}), ("auto", {}), ("histogram", {"histogram_percent": 0}),
                                            ("histogram", {"histogram_percent": 7})])
def test_counted_and_per_pixel_windows_agree(preset, options):
    """16-bit data is counted per stored value; the same values in 32-bit words go pixel by pixel."""
    rng = np.random.default_rng(4)
    values = rng.integers(-1500, 3000, (3, 40, 50))
    values[:, :5] = -2000  # padding, the darkest value
    narrow = make_dataset(values.astype(np.int16), slope=1, intercept=-1024, PixelPaddingValue=-2000)
    wide = make_dataset(values.astype(np.int32), slope=1, intercept=-1024, PixelPaddingValue=-2000)
    for frame in (None, 1):
        counted = _window_of(narrow, preset, frame, **options)
        assert counted == _window_of(wide, preset, frame, **options)
        hu = (values if frame is None else values[frame]) - 1024
        if preset == "minmax":
            assert counted == ((hu.min() + hu.max() + 1) / 2, hu.max() - hu.min() + 1)
        if preset == "auto":
            kept = hu[hu != -3024]
            assert counted == ((kept.min() + kept.max() + 1) / 2, kept.max() - kept.min() + 1)


def test_auto_ignores_pixel_padding_and_otherwise_equals_minmax():
    # 693_UNCR: 55772 padding pixels (stored -2000 = -3024 HU) are the minimum
    path = data_file("693_UNCR.dcm")
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float64) - 1024
    kept = hu[ds.pixel_array != -2000]
    lo, hi = kept.min(), kept.max()
    np.testing.assert_array_equal(dicomrender.render(path, "auto"), _expected(path, None, (lo + hi + 1) / 2,
                                                                            hi - lo + 1))
    for name in ("CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm"):
        np.testing.assert_array_equal(dicomrender.render(data_file(name), "auto"),
                                      dicomrender.render(data_file(name), "min-max"))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm"])
@pytest.mark.parametrize("percentiles", [None, (5, 95), (0, 100)])
def test_percentile_equals_numpy(name, percentiles):
    path = data_file(name)
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    keep = np.ones(stored.shape, bool)
    if "PixelPaddingValue" in ds:
        keep = stored != ds.PixelPaddingValue
    values = stored[keep].astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    lo, hi = np.percentile(values, percentiles or (1, 99))
    options = {} if percentiles is None else {"percentiles": percentiles}
    got = dicomrender.render(path, "percentile", **options)
    np.testing.assert_array_equal(got, _expected(path, None, (lo + hi + 1) / 2, hi - lo + 1))
    # the low percentile renders black, the high one white
    m = stored.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    assert np.all(got[keep & (m <= lo)] == 0) and np.all(got[keep & (m >= hi)] == 255)


def test_percentile_padding_changes_the_window():
    path = data_file("693_UNCR.dcm")  # 55772 padding pixels (21 %)
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float64) - 1024
    with_padding = np.percentile(hu, 1)
    without = np.percentile(hu[ds.pixel_array != -2000], 1)
    assert with_padding != without
    lo, hi = np.percentile(hu[ds.pixel_array != -2000], (1, 99))
    np.testing.assert_array_equal(dicomrender.render(path, "percentile"),
                                  _expected(path, None, (lo + hi + 1) / 2, hi - lo + 1))


@pytest.mark.parametrize("bad", [(99, 1), (-1, 50), (1, 101), "x", (1, 2, 3)])
def test_percentile_rejects_bad_percentiles(bad):
    with pytest.raises(PresetError, match="percentiles"):
        dicomrender.render(data_file("CT_small.dcm"), "percentile", percentiles=bad)


def test_histogram_flat_image_falls_back_to_minmax():
    ds = make_dataset(np.full((8, 8), 1100, np.uint16), **RAMP_KW)  # 76 HU everywhere
    np.testing.assert_array_equal(dicomrender.render(ds, "histogram"),
                                  _reference.render_reference(np.full((8, 8), 1100, np.uint16), 76.5, 1,
                                                              intercept=-1024, bits_stored=12))


def test_data_driven_windows_per_frame_of_multiframe():
    path = data_file("emri_small.dcm")
    all_frames = dicomrender.render(path, "minmax")
    ds = pydicom.dcmread(path)
    lo, hi = ds.pixel_array.min(), ds.pixel_array.max()  # all frames share one window, as dcm2pnm +Fa
    np.testing.assert_array_equal(all_frames, _reference.render_reference(ds.pixel_array, (lo + hi + 1) / 2,
                                                                         hi - lo + 1, bits_stored=12))


# ---- multi-window ------------------------------------------------------------

ICH = ["brain", "subdural", "head_soft_tissue"]


@pytest.mark.parametrize("name", ["CT_small.dcm", "693_UNCI.dcm"])
def test_multi_window_equals_single_renders_stacked(name):
    path = data_file(name)
    stacked = np.stack([dicomrender.render(path, p) for p in ICH], axis=-1)
    multi = dicomrender.render(path, ICH)
    assert multi.shape == stacked.shape and multi.dtype == np.uint8
    np.testing.assert_array_equal(multi, stacked)
    np.testing.assert_array_equal(dicomrender.render(path, "ich_rgb"), stacked)
    np.testing.assert_array_equal(dicomrender.render(path, "brain,subdural,head_soft_tissue"), stacked)


def test_multi_window_multiframe_and_mixed_kinds():
    frames = np.stack([RAMP, RAMP[::-1], RAMP.T])
    ds = make_dataset(frames, **RAMP_KW)
    multi = dicomrender.render(ds, ["lung", "auto", "bone"])
    assert multi.shape == (3, 64, 64, 3)
    for j, name in enumerate(["lung", "auto", "bone"]):
        np.testing.assert_array_equal(multi[..., j], dicomrender.render(ds, name))
    expected = _reference.render_reference(frames, 600, 2800, intercept=-1024, bits_stored=12)
    np.testing.assert_array_equal(dicomrender.render(ds, ["brain", "temporal_bone"])[..., 1], expected)


def test_multi_window_is_one_kernel_pass(monkeypatch):
    """Three windows: one kernel call producing three channels, whichever loop the engine picks."""
    calls = []
    for loop in ("gather", "affine", "arithmetic"):
        original = getattr(dispatch._kernel, loop, None)
        if original is None:
            continue

        def counting(src, params, out, *args, _loop=loop, _original=original):
            calls.append((_loop, params.shape[0], out.size))
            return _original(src, params, out, *args)

        monkeypatch.setattr(dispatch._kernel, loop, counting)
    out = dicomrender.render(data_file("CT_small.dcm"), "ich_rgb")
    assert out.shape == (128, 128, 3)
    assert [(channels, size) for _, channels, size in calls] == [(3, 128 * 128 * 3)]


def test_stack_presets_refuse_non_hu_and_too_many_windows():
    with pytest.raises(PresetError, match="ich_rgb"):
        dicomrender.render(data_file("MR_small.dcm"), "ich_rgb")
    with pytest.raises(PresetError, match="at most 4"):
        dicomrender.render(data_file("CT_small.dcm"), ["brain"] * 5)
    with pytest.raises(PresetError, match="empty"):
        dicomrender.render(data_file("CT_small.dcm"), [])


# ---- the Preset type and the table --------------------------------------------


def test_preset_validation():
    with pytest.raises(PluginError, match="exactly one"):
        Preset("x", center=1, width=2, compute=lambda ctx: None)
    with pytest.raises(PluginError, match="exactly one"):
        Preset("x")
    with pytest.raises(PluginError, match="both center and width"):
        Preset("x", center=1)
    with pytest.raises(PluginError, match="no spaces or commas"):
        Preset("a,b", center=1, width=2)
    with pytest.raises(InvalidWindowError, match="WindowWidth"):
        Preset("x", center=1, width=0)
    preset = Preset("x", center="40", width=80, function="linear exact")
    assert (preset.center, preset.width, preset.function) == (40.0, 80.0, "LINEAR_EXACT")


def test_unregistered_preset_and_window_objects_render_directly():
    ds = make_dataset(RAMP, **RAMP_KW)
    custom = Preset("custom", center=100, width=50, function="SIGMOID")
    expected = _reference.render_reference(RAMP, 100, 50, function="SIGMOID", intercept=-1024, bits_stored=12)
    np.testing.assert_array_equal(dicomrender.render(ds, custom), expected)
    both = dicomrender.render(ds, [custom, dicomrender.Window(100, 50, "SIGMOID")])
    np.testing.assert_array_equal(both[..., 0], both[..., 1])


def test_compute_returning_garbage_or_raising_is_a_plugin_error():
    bad = Preset("bad", compute=lambda ctx: (40, 80))
    with pytest.raises(PluginError, match="expected a dicomrender.Window"):
        dicomrender.render(make_dataset(RAMP, **RAMP_KW), bad)
    buggy = Preset("buggy", compute=lambda ctx: 1 / 0)
    with pytest.raises(PluginError, match="preset 'buggy' .*ZeroDivisionError") as info:
        dicomrender.render(make_dataset(RAMP, **RAMP_KW), buggy)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_preset_table_and_cli(capsys):
    table = preset_table()
    lines = table.splitlines()
    assert lines[0].split() == ["name", "window", "(C/W)", "function", "modality", "plugin"]
    brain = next(line for line in lines if line.startswith("brain"))
    assert brain.split() == ["brain", "(head)", "40/80", "LINEAR", "CT", "(HU)", "dicomrender"]
    ich = next(line for line in lines if line.startswith("ich_rgb"))
    assert "brain+subdural+head_soft_tissue" in ich and "stack" in ich
    assert len(lines) == 2 + len(builtin_presets.PRESETS)

    from dicomrender import cli

    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert table in out and "plugins: dicomrender" in out


def test_cli_renders_a_stack_to_rgb_png(tmp_path):
    from PIL import Image

    from dicomrender import cli

    path = data_file("CT_small.dcm")
    target = tmp_path / "ich.png"
    assert cli.main(["render", path, str(target), "--preset", "brain,subdural,head_soft_tissue"]) == 0
    with Image.open(target) as image:
        assert image.mode == "RGB"
        pixels = np.asarray(image)
    stored = pydicom.dcmread(path).pixel_array
    expected = np.stack([_reference.render_reference(stored, c, w, intercept=-1024) for c, w in
                         (FIXED["brain"], FIXED["subdural"], FIXED["head_soft_tissue"])], axis=-1)
    np.testing.assert_array_equal(pixels, expected)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_multi_window_equals_single_renders_property(data):
    bits = data.draw(st.sampled_from([8, 12, 16]), label="bits")
    signed = data.draw(st.booleans(), label="signed")
    dtype = np.dtype(f"{'i' if signed else 'u'}{1 if bits == 8 else 2}")
    info = np.iinfo(dtype)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    words = np.asarray(data.draw(st.lists(st.integers(max(low, info.min), min(high, info.max)), min_size=1,
                                          max_size=300), label="words"), dtype=dtype)
    windows = data.draw(st.lists(st.tuples(st.integers(-3000, 3000), st.integers(1, 5000),
                                           st.sampled_from(_types.FUNCTIONS)), min_size=2, max_size=4),
                        label="windows")
    fmt = _types.StoredFormat(dtype.itemsize * 8, bits, bits - 1, signed)
    modality = _types.Rescale(1.0, data.draw(st.sampled_from([0.0, -1024.0]), label="intercept"))
    vois = [_types.Window(c, w, f) for c, w, f in windows]
    multi = render_stored(words, fmt, modality, vois)
    singles = np.stack([render_stored(words, fmt, modality, [v]) for v in vois], axis=-1)
    np.testing.assert_array_equal(multi, singles)
    for j, (c, w, f) in enumerate(windows):
        np.testing.assert_array_equal(multi[..., j], _reference.render_reference(
            words, c, w, function=f, intercept=modality.intercept, bits_stored=bits, signed=signed))
