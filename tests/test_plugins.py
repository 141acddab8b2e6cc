"""Preset plugins: entry-point discovery, the environment variable, broken and clashing plugins.

The installed example package ``presets/dicomrender-presets-mr`` is found through
its real entry point; the fake distributions in ``tests/fake_plugins`` are put
on ``sys.path`` so that ``importlib.metadata`` discovers them the same way.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import pathlib
import threading
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import dicomrender
from dicomrender import _reference, hookimpl
from dicomrender.errors import PluginError, PresetError, UnknownPresetError
from dicomrender.presets import Preset, get_preset, list_presets
from dicomrender.presets import registry as plugins

from .data import data_file

FAKE = pathlib.Path(__file__).parent / "fake_plugins"
MR_DIST = "dicomrender-presets-mr"


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# CI installs the package, so there a missing package fails the tests instead of skipping them
needs_mr = pytest.mark.skipif(not _installed(MR_DIST) and os.environ.get("CI", "").lower() != "true",
                              reason=f"pip install ./presets/{MR_DIST} (CI installs it) to test entry-point discovery")


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """Every test loads the plugins anew; the environment variable is unset unless the test sets it."""
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    plugins.reset()
    yield
    plugins.reset()


def _load(monkeypatch, *folders) -> list:
    """Put fake distributions on sys.path, load the plugins and return the warnings raised."""
    for folder in folders:
        monkeypatch.syspath_prepend(str(FAKE / folder))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list_presets()
    return [w for w in caught if issubclass(w.category, plugins.PluginWarning)]


def mr_small():
    return data_file("MR_small.dcm")


# ---- the installed example package ---------------------------------------------


@needs_mr
def test_installed_package_is_discovered_through_its_entry_point():
    (ep,) = [e for e in importlib.metadata.distribution(MR_DIST).entry_points if e.group == "dicomrender"]
    assert (ep.name, ep.value) == ("mr", "dicomrender_presets_mr")
    preset = get_preset("MR_Foreground")
    assert preset.source == MR_DIST
    assert get_preset("mr") is preset
    info = {i.name: i for i in plugins.plugin_infos()}
    assert info["mr"].distribution.startswith(f"{MR_DIST} ")
    assert [i.name for i in plugins.plugin_infos()][0] == "dicomrender"  # built-in first
    assert any(line.startswith("mr_foreground") and line.rstrip().endswith(MR_DIST)
               for line in dicomrender.presets.preset_table().splitlines())


@needs_mr
def test_render_through_installed_plugin_equals_numpy_percentiles():
    ds = pydicom.dcmread(mr_small())
    values = ds.pixel_array.astype(np.float64)
    lo, hi = np.percentile(values[values != 0], (0.5, 99.5))
    expected = _reference.render_reference(ds.pixel_array, (lo + hi + 1) / 2, hi - lo + 1)
    np.testing.assert_array_equal(dicomrender.render(mr_small(), "mr_foreground"), expected)
    lo, hi = np.percentile(values[values != 0], (10, 90))
    np.testing.assert_array_equal(dicomrender.render(mr_small(), "mr", foreground_percentiles=(10, 90)),
                                  _reference.render_reference(ds.pixel_array, (lo + hi + 1) / 2, hi - lo + 1))
    with pytest.raises(PresetError, match="Modality MR"):
        dicomrender.render(data_file("CT_small.dcm"), "mr")


def _pet(stored: np.ndarray, **changes) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "PT"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = "10", "0"
    ds.Units, ds.DecayCorrection, ds.PatientWeight, ds.SeriesTime = "BQML", "START", "75", "110000"
    item = Dataset()
    item.RadionuclideTotalDose = "370000000"  # 370 MBq
    item.RadionuclideHalfLife = "6586.2"  # F-18
    item.RadiopharmaceuticalStartTime = "100000"
    ds.RadiopharmaceuticalInformationSequence = [item]
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.PixelData = stored.astype("<u2").tobytes()
    return ds


@needs_mr
def test_pet_suv_window_from_header():
    stored = np.arange(4096, dtype=np.uint16).reshape(64, 64)
    # by hand: one hour after injection, 370 MBq * 2**(-3600/6586.2) remain; SUV 6 in Bq/ml
    remaining = 370e6 * 2 ** (-3600 / 6586.2)
    high = 6 * remaining / 75000
    assert math.isclose(high, 20266.0, rel_tol=1e-3)
    expected = _reference.render_reference(stored, high / 2, high, function="LINEAR_EXACT", slope=10)
    np.testing.assert_array_equal(dicomrender.render(_pet(stored), "pet_suv"), expected)
    half = dicomrender.render(_pet(stored), "pet_suv", suv_max=3)
    np.testing.assert_array_equal(half, _reference.render_reference(stored, high / 4, high / 2,
                                                                    function="LINEAR_EXACT", slope=10))
    with pytest.raises(PresetError, match="Units BQML") as info:
        dicomrender.render(_pet(stored, Units="CNTS"), "pet_suv")
    assert info.value.attribute == "Units"
    with pytest.raises(PresetError, match="PatientWeight"):
        dicomrender.render(_pet(stored, PatientWeight=""), "pet_suv")


# ---- the environment variable --------------------------------------------------


@needs_mr
@pytest.mark.parametrize("value", ["mr", "dicomrender-presets-mr", " DICOMRENDER_PRESETS_MR , other_missing"])
def test_env_var_selects_plugins(monkeypatch, value):
    monkeypatch.setenv(plugins.ENV_VAR, value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert get_preset("mr_foreground").source == MR_DIST
    missing = [str(w.message) for w in caught if "no such dicomrender plugin" in str(w.message)]
    assert missing == (["DICOMRENDER_PLUGINS names other-missing, but no such dicomrender plugin is installed"]
                       if "other" in value else [])


def test_env_var_empty_disables_third_party_plugins(monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, "")
    assert _load(monkeypatch, "broken_import", "duplicate") == []  # not even imported
    assert {p.source for p in list_presets()} == {"dicomrender"}
    with pytest.raises(UnknownPresetError):
        get_preset("mr_foreground")
    assert get_preset("brain").center == 40


def test_env_var_is_read_when_plugins_load(monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, "")
    list_presets()
    monkeypatch.setenv(plugins.ENV_VAR, "duplicate")
    assert all(p.source == "dicomrender" for p in list_presets())  # loaded once: the change is not seen
    plugins.reset()
    with pytest.raises(PluginError):
        _load(monkeypatch, "duplicate")


# ---- broken and clashing plugins -------------------------------------------------


def test_broken_plugin_warns_with_its_distribution_and_the_rest_loads(monkeypatch):
    caught = _load(monkeypatch, "broken_import")
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "dicomrender-broken-plugin 0.1" in message
    assert "ModuleNotFoundError" in message and "dicomrender_dependency_that_is_not_installed" in message
    assert get_preset("brain").source == "dicomrender"
    if _installed(MR_DIST):
        assert get_preset("mr_foreground").source == MR_DIST
    assert "broken" not in {i.name for i in plugins.plugin_infos()}


def test_plugins_load_once(monkeypatch):
    caught = _load(monkeypatch, "broken_import")
    manager = plugins.get_plugin_manager()
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        list_presets()
        get_preset("lung")
    assert len(caught) == 1 and again == []
    assert plugins.get_plugin_manager() is manager


def test_concurrent_first_use_loads_once(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE / "broken_import"))
    barrier = threading.Barrier(8)
    registries = []

    def worker():
        barrier.wait()
        registries.append(plugins.registry())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(registries) == 8 and all(r is registries[0] for r in registries)
    assert len([w for w in caught if "dicomrender-broken-plugin" in str(w.message)]) == 1


def test_failing_hook_warns_and_registers_nothing_of_that_plugin(monkeypatch):
    caught = _load(monkeypatch, "failing_hook")
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "dicomrender-failing-hook 0.2" in message and "RuntimeError" in message and "corrupt" in message
    with pytest.raises(UnknownPresetError):
        get_preset("half_registered")
    assert get_preset("bone").width == 1800


def test_duplicate_name_names_both_sources(monkeypatch):
    with pytest.raises(PluginError) as info:
        _load(monkeypatch, "duplicate")
    message = str(info.value)
    assert "'brain'" in message
    assert "dicomrender (built-in presets)" in message
    assert "dicomrender-duplicate-plugin 1.0" in message and "'wide_brain'" in message


class _CodePlugin:
    def __init__(self, *presets):
        self.presets = presets

    @hookimpl
    def register_presets(self, register):
        for preset in self.presets:
            register(preset)


def test_register_plugin_in_code():
    path = data_file("CT_small.dcm")
    name = plugins.register_plugin(_CodePlugin(Preset("soft_exact", center=40, width=400, function="LINEAR_EXACT",
                                                      units="HU")), name="house")
    assert name == "house"
    assert get_preset("soft_exact").source == "house"
    expected = _reference.render_reference(pydicom.dcmread(path).pixel_array, 40, 400, function="LINEAR_EXACT",
                                           intercept=-1024)
    np.testing.assert_array_equal(dicomrender.render(path, "Soft_Exact"), expected)
    plugins.unregister_plugin("house")
    with pytest.raises(UnknownPresetError):
        get_preset("soft_exact")


def test_register_plugin_duplicates_are_errors():
    plugins.register_plugin(_CodePlugin(Preset("x1", center=1, width=2), Preset("X1", center=1, width=3)), name="dup")
    with pytest.raises(PluginError, match="registered twice: by preset 'x1' of plugin 'dup' and by preset 'X1'"):
        list_presets()
    plugins.unregister_plugin("dup")
    plugins.register_plugin(_CodePlugin(Preset("x2", center=1, width=2, aliases=("X2",))), name="self")
    with pytest.raises(PluginError, match="repeated name or alias"):
        list_presets()
    plugins.unregister_plugin("self")
    plugins.register_plugin(_CodePlugin("not a preset"), name="junk")
    with pytest.raises(PluginError, match="not a dicomrender.Preset"):
        list_presets()
    plugins.unregister_plugin("junk")
    assert get_preset("brain").center == 40
    with pytest.raises(PluginError, match="no plugin named"):
        plugins.unregister_plugin("junk")


def test_hookspec_validation_of_a_bad_plugin(monkeypatch):
    class Wrong:
        @hookimpl
        def register_presets(self, register, extra):  # not in the hook specification
            pass

    with pytest.raises(Exception, match="extra"):
        plugins.register_plugin(Wrong(), name="wrong")


@needs_mr
def test_presets_command_shows_plugin_presets_and_distribution(capsys):
    from dicomrender import cli

    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("pet_suv"))
    assert row.split() == ["pet_suv", "computed", "-", "PT", MR_DIST]
    assert f"plugins: dicomrender, {MR_DIST} 0.1.0" in out


def test_presets_command_reports_a_duplicate_as_an_error(monkeypatch, capsys):
    from dicomrender import cli

    monkeypatch.syspath_prepend(str(FAKE / "duplicate"))
    assert cli.main(["presets"]) == 1
    assert "registered twice" in capsys.readouterr().err


def test_entry_point_name_taken_is_skipped_with_a_warning(monkeypatch):
    caught = _load(monkeypatch, "name_clash")
    assert [str(w.message) for w in caught] == [
        "dicomrender plugin 'dicomrender' of distribution dicomrender-name-clash 0.3 is skipped: another plugin "
        "already uses that name (dicomrender (built-in presets))"]
    with pytest.raises(UnknownPresetError):
        get_preset("clash_window")
    assert get_preset("liver").center == 30
