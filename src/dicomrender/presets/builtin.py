"""The built-in presets: a default plugin, registered exactly like a third-party one.

CT windows are in Hounsfield units (centre/width, VOI LUT Function LINEAR);
with ``strict=True`` they refuse images without a Hounsfield rescale.  The
values are the typical ones of

- [R] Radiopaedia, "Windowing (CT)", https://radiopaedia.org/articles/windowing-ct
  (brain W:80 L:40; subdurals W:130-300 L:50-100; stroke W:8 L:32 or
  W:40 L:40; temporal bones W:2800 L:600; head and neck soft tissues
  W:350-400 L:20-60; lungs W:1500 L:-600; mediastinum W:350 L:50; abdomen
  soft tissues W:400 L:50; liver W:150 L:30; spine soft tissues W:250 L:50;
  bone W:1800 L:400);
- [T] Turner PJ, Holdsworth G. "CT stroke window settings: an unfortunate
  misleading misnomer?" Br J Radiol 2011;84:1061-1066 (stroke 40/40);
- [L] Lev MH et al. "Acute stroke: improved nonenhanced CT detection."
  Radiology 1999;213:150-155 (narrow stroke window 32/8);
- [I] RSNA Intracranial Hemorrhage Detection challenge 2019 (Flanders AE et
  al., Radiology: Artificial Intelligence 2020;2:e190211): brain, subdural
  and soft-tissue windows stacked as the three input channels.
"""

from __future__ import annotations

from .hookspecs import hookimpl
from .preset import Preset
from .windows import auto_window, header_window, histogram_window, minmax_window, percentile_window

__all__ = ["PRESETS", "HEADER_OPTIONS", "register_presets"]

_R = "Radiopaedia, Windowing (CT)"

#: The ``render(**options)`` the header window reads; ``render(preset=None)`` takes these.
HEADER_OPTIONS = ("voi_index", "voi_explanation", "voi")


def _ct(name: str, center: float, width: float, description: str, reference: str = _R, aliases=()) -> Preset:
    return Preset(name, description, center=center, width=width, modalities=("CT",), units="HU",
                  aliases=aliases, reference=reference)


#: The built-in presets, in table order.
PRESETS = (
    # head
    _ct("brain", 40, 80, "Brain parenchyma: grey/white matter, acute blood.", aliases=("head",)),
    _ct("subdural", 75, 215, "Subdural/extra-axial blood against the skull (Radiopaedia subdurals W:130-300 "
        "L:50-100, midpoints).", reference=f"{_R} (subdurals, midpoint of W:130-300 L:50-100)"),
    _ct("stroke", 40, 40, "Narrow window for early ischaemia (grey/white differentiation).",
        reference="Turner & Holdsworth, Br J Radiol 2011; Radiopaedia W:40 L:40"),
    _ct("stroke_narrow", 32, 8, "Very narrow stroke window of Lev et al.",
        reference="Lev et al., Radiology 1999; Radiopaedia W:8 L:32"),
    _ct("temporal_bone", 600, 2800, "Temporal bone and ossicles.", aliases=("temporal_bones",)),
    _ct("head_soft_tissue", 50, 380, "Scalp, orbits and neck soft tissues (Radiopaedia W:350-400 L:20-60).",
        reference=f"{_R} (head and neck soft tissues W:350-400 L:20-60)"),
    # chest
    _ct("lung", -600, 1500, "Lung parenchyma and airways.", aliases=("lungs",)),
    _ct("mediastinum", 50, 350, "Mediastinum, heart and great vessels."),
    # abdomen
    _ct("abdomen", 50, 400, "Abdominal soft tissues.", reference=f"{_R} (abdomen soft tissues)",
        aliases=("soft_tissue",)),
    _ct("liver", 30, 150, "Narrow liver window for focal lesions."),
    # spine and bone
    _ct("spine_soft_tissue", 50, 250, "Spinal soft tissues, discs and canal.", reference=f"{_R} (spine soft tissues)"),
    _ct("bone", 400, 1800, "Cortical and trabecular bone.", reference=f"{_R} (spine bone)"),
    # stacks
    Preset("ich_rgb", "Intracranial haemorrhage RGB: brain, subdural and head soft-tissue windows as the red, "
           "green and blue channel, rendered in one pass.", stack=("brain", "subdural", "head_soft_tissue"),
           modalities=("CT",), units="HU",
           reference="RSNA Intracranial Hemorrhage Detection 2019 (Flanders et al., Radiol AI 2020)"),
    # from the file and the data
    Preset("header", "The file's own window (voi_index= or voi_explanation=), else its VOI LUT (voi='lut': the "
           "VOI LUT when it has both), else auto.",
           compute=header_window, options=HEADER_OPTIONS,
           reference="DICOM PS3.3 C.11.2 (Window Center/Width, VOI LUT Sequence)"),
    Preset("auto", "Min-max of the modality values without Pixel Padding (= dcm2pnm +Wm on unpadded images).",
           compute=auto_window, options=(),
           reference="dcmtk getMinMaxWindow, Pixel Padding excluded"),
    Preset("minmax", "Min-max of all modality values, exactly as dcm2pnm +Wm.", compute=minmax_window,
           options=(), aliases=("min-max",), reference="dcmtk DiMonoPixelTemplate::getMinMaxWindow"),
    Preset("percentile", "Low to high percentile of the modality values (percentiles=(1, 99) by default), "
           "Pixel Padding ignored.", compute=percentile_window, options=("percentiles",),
           reference="numpy.percentile (linear)"),
    Preset("histogram", "Histogram window ignoring histogram_percent=5 percent of the pixels at each end, "
           "exactly as dcm2pnm +Wh 5.", compute=histogram_window, options=("histogram_percent",),
           reference="dcmtk DiMonoPixelTemplate::getHistogramWindow"),
)


@hookimpl
def register_presets(register):
    """Register the built-in presets."""
    for preset in PRESETS:
        register(preset)
