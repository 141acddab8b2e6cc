"""MR and PET presets for dicomrender, as an installable plugin.

Uses dicomrender's public API only: :class:`dicomrender.Preset`,
:class:`dicomrender.Window`, :class:`dicomrender.PresetError` and the
:data:`dicomrender.hookimpl` marker.  dicomrender discovers the module through
the ``dicomrender`` entry point declared in ``pyproject.toml``.  Each preset
declares the ``render()`` options it reads (``Preset(options=...)``), so that
dicomrender refuses a misspelled one instead of ignoring it.

Presets
-------
mr_foreground (alias ``mr``)
    MR intensities have no absolute scale, so the window comes from the image:
    the 0.5th to 99.5th percentile of the non-zero modality values (air
    outside the body is zero on most scanners and would otherwise pull the
    low end down).  Options: ``foreground_percentiles=(low, high)``.
pet_suv
    PET in body-weight SUV from 0 to ``suv_max`` (default 6, a common display
    range for FDG), computed from the header: Units BQML, PatientWeight and
    the Radiopharmaceutical Information Sequence (total dose, half-life,
    injection time), the dose decayed to the Series Time (Decay Correction
    START).  Sources: DICOM PS3.3 C.8.9.1 (PET Series, Units and Decay
    Correction); QIBA FDG-PET/CT profile, vendor-neutral SUV calculation;
    Boellaard R et al., "FDG PET/CT: EANM procedure guidelines for tumour
    imaging: version 2.0", Eur J Nucl Med Mol Imaging 2015;42:328-354.
"""

from __future__ import annotations

import math

import numpy as np

from dicomrender import Preset, PresetError, Window, hookimpl

__all__ = ["register_presets", "foreground_window", "suv_window", "suv_factor"]

__version__ = "0.1.0"

#: Default percentiles of :func:`foreground_window`.
FOREGROUND_PERCENTILES = (0.5, 99.5)

#: Default upper end of the SUV window.
SUV_MAX = 6.0


def foreground_window(ctx) -> Window:
    """Percentile window over the non-zero modality values (all of them if none is non-zero)."""
    low, high = ctx.options.get("foreground_percentiles", FOREGROUND_PERCENTILES)
    values = ctx.modality_values()
    values = values[np.isfinite(values)]  # +-inf (float data) would make the percentiles NaN
    foreground = values[values != 0]
    if foreground.size:
        values = foreground
    if values.size == 0:
        raise PresetError("no pixel values outside the Pixel Padding", attribute="PixelData")
    lo, hi = np.percentile(values, (float(low), float(high)))
    # lo maps to 0 and hi to 255, as dcmtk's min-max window does
    return Window((lo + hi + 1) / 2, hi - lo + 1, "LINEAR", "MR foreground")


def _seconds(value, keyword: str) -> float:
    text = str(value or "").strip()
    if len(text) < 6 or not text[:6].isdigit():
        raise PresetError(f"{keyword} must be a DICOM time HHMMSS[.frac], got {value!r}", attribute=keyword)
    fraction = float("0" + text[6:]) if text[6:7] == "." else 0.0
    return int(text[0:2]) * 3600 + int(text[2:4]) * 60 + int(text[4:6]) + fraction


def suv_factor(ds) -> float:
    """Factor turning Bq/ml into body-weight SUV (g/ml) for a PET dataset.

    ``SUV = value * weight_g / dose_decayed``, the injected dose decayed from
    the injection time to the Series Time (or Acquisition Time).

    Raises
    ------
    dicomrender.PresetError
        The header lacks what the computation needs; the message names the attribute.
    """
    units = str(ds.get("Units", "")).strip().upper()
    if units != "BQML":
        raise PresetError(f"SUV needs Units BQML, this image has {units or 'no Units'}", attribute="Units")
    correction = str(ds.get("DecayCorrection", "START")).strip().upper()
    if correction != "START":
        raise PresetError(f"SUV needs Decay Correction START, this image has {correction}",
                          attribute="DecayCorrection")
    try:
        weight = float(ds.PatientWeight)
    except (AttributeError, TypeError, ValueError):
        raise PresetError("SUV needs PatientWeight (kg)", attribute="PatientWeight") from None
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        raise PresetError("SUV needs the Radiopharmaceutical Information Sequence",
                          attribute="RadiopharmaceuticalInformationSequence")
    item = sequence[0]
    try:
        dose = float(item.RadionuclideTotalDose)
        half_life = float(item.RadionuclideHalfLife)
    except (AttributeError, TypeError, ValueError):
        raise PresetError("SUV needs RadionuclideTotalDose and RadionuclideHalfLife",
                          attribute="RadionuclideTotalDose") from None
    start = _seconds(item.get("RadiopharmaceuticalStartTime"), "RadiopharmaceuticalStartTime")
    scan = _seconds(ds.get("SeriesTime") or ds.get("AcquisitionTime"), "SeriesTime")
    if weight <= 0 or dose <= 0 or half_life <= 0:
        raise PresetError("PatientWeight, RadionuclideTotalDose and RadionuclideHalfLife must be positive",
                          attribute="PatientWeight")
    elapsed = (scan - start) % 86400  # injection the evening before a scan after midnight
    decayed = dose * math.exp(-math.log(2) * elapsed / half_life)
    return weight * 1000.0 / decayed


def suv_window(ctx) -> Window:
    """SUV 0 .. ``suv_max`` (option, default 6) as a window in the image's Bq/ml."""
    suv_max = float(ctx.options.get("suv_max", SUV_MAX))
    if not suv_max > 0:
        raise PresetError(f"suv_max must be positive, got {suv_max}", attribute="suv_max")
    high = suv_max / suv_factor(ctx.dataset)
    # LINEAR_EXACT maps exactly [0, high] onto [0, 255]
    return Window(high / 2, high, "LINEAR_EXACT", f"SUV 0-{suv_max:g}")


PRESETS = (
    Preset("mr_foreground", "MR: 0.5-99.5 percentile of the non-zero (foreground) values.",
           compute=foreground_window, options=("foreground_percentiles",), modalities=("MR",), aliases=("mr",),
           reference="percentile window; MR has no absolute intensity scale"),
    Preset("pet_suv", "PET: body-weight SUV 0-6 (suv_max=) from the header's dose, weight and times.",
           compute=suv_window, options=("suv_max",), modalities=("PT",),
           reference="DICOM PS3.3 C.8.9.1; QIBA FDG-PET/CT SUV calculation; EANM guideline 2.0 (2015)"),
)


@hookimpl
def register_presets(register):
    """Register the MR and PET presets."""
    for preset in PRESETS:
        register(preset)
