"""Presets: named ways of choosing the VOI window of an image.

``resolve(preset, ctx)`` is what :func:`dicomrender.render` calls; it returns
one VOI (window or VOI LUT) per output channel.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import numpy as np

from .errors import InvalidWindowError, PresetError, UnknownPresetError
from .windowing import Window

__all__ = ["Preset", "resolve", "get_preset", "list_presets", "header_window", "minmax_window"]


@dataclass(frozen=True)
class Preset:
    """A named window choice: fixed (center/width/function) or computed from the image."""

    name: str
    description: str = ""
    center: Optional[float] = None
    width: Optional[float] = None
    function: str = "LINEAR"
    compute: Optional[Callable] = field(default=None, compare=False)
    modalities: Tuple[str, ...] = ()
    aliases: Tuple[str, ...] = ()
    hounsfield: bool = False
    source: str = "dicomrender"

    def windows(self, ctx) -> list:
        if self.compute is not None:
            result = self.compute(ctx)
            return list(result) if isinstance(result, (list, tuple)) else [result]
        if self.hounsfield and ctx.strict and not ctx.hounsfield:
            raise PresetError(f"preset {self.name!r} expects CT Hounsfield units; this image is "
                              f"{ctx.info.modality_name or 'of unknown modality'} without an HU rescale "
                              f"(pass strict=False to apply it anyway)", attribute="Modality")
        return [Window(self.center, self.width, self.function)]


def header_window(ctx) -> list:
    """The file's own window (``voi_index`` or ``voi_explanation``), then min-max."""
    windows = ctx.parameters.windows
    explanation = ctx.options.get("voi_explanation")
    index = ctx.options.get("voi_index", 0)
    if explanation is not None:
        matches = [i for i, w in enumerate(windows) if (w.explanation or "").strip().upper() == explanation.upper()]
        if not matches:
            known = ", ".join(repr(w.explanation) for w in windows) or "none"
            raise InvalidWindowError(f"no window explained as {explanation!r} (header has {known})",
                                     attribute="WindowCenterWidthExplanation")
        index = matches[0]
    if windows:
        if not 0 <= index < len(windows):
            raise InvalidWindowError(f"voi_index {index} out of range: the header has {len(windows)} window(s)",
                                     attribute="WindowCenter")
        return [windows[index].to_window()]
    if ctx.parameters.voi_luts:
        return [ctx.parameters.voi_luts[min(index, len(ctx.parameters.voi_luts) - 1)]]
    return minmax_window(ctx)


def minmax_window(ctx) -> list:
    """Min-max of the modality values, as dcmtk's ``+Wm``: c = (min+max+1)/2, w = max-min+1."""
    values = ctx.modality_values()
    if values.size == 0:
        low = high = 0.0
    else:
        low, high = float(np.min(values)), float(np.max(values))
    return [Window((low + high + 1) / 2, high - low + 1, "LINEAR", "Min-Max Window")]


_BUILTIN = [
    Preset("header", "The file's own window (Window Center/Width), else VOI LUT, else min-max.",
           compute=header_window),
    Preset("auto", "Min-max of the modality values (dcmtk +Wm).", compute=minmax_window, aliases=("minmax",)),
]


def _registry() -> dict:
    names = {}
    for preset in _BUILTIN:
        for name in (preset.name,) + preset.aliases:
            names[name.lower()] = preset
    return names


def get_preset(name) -> Preset:
    """The preset registered under ``name`` (case-insensitive)."""
    if isinstance(name, Preset):
        return name
    registry = _registry()
    key = str(name).strip().lower()
    if key not in registry:
        close = difflib.get_close_matches(key, list(registry), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(registry))}"
        raise UnknownPresetError(f"unknown preset {name!r}{hint}", attribute="preset")
    return registry[key]


def list_presets() -> list:
    """All registered presets."""
    return list(_BUILTIN)


def resolve(preset, ctx) -> list:
    """One VOI per output channel for ``preset`` (None, a name, a Preset, or a sequence of them)."""
    if preset is None:
        return header_window(ctx)
    if isinstance(preset, (str, Preset)):
        return get_preset(preset).windows(ctx)
    vois = []
    for item in preset:
        vois.extend(get_preset(item).windows(ctx))
    return vois


def preset_table(presets) -> str:
    """A plain-text table: name, window, function, modality, source."""
    rows = [("name", "window (C/W)", "function", "modality", "source")]
    for p in presets:
        window = f"{p.center:g}/{p.width:g}" if p.center is not None else "computed"
        name = p.name + (f" ({', '.join(p.aliases)})" if p.aliases else "")
        rows.append((name, window, p.function if p.compute is None else "-", ",".join(p.modalities) or "any", p.source))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
