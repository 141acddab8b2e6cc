"""What each output channel of a series shows: ``preset=`` / ``window=`` resolved once for the series.

Each channel is one of:

- a fixed window (``window=``, a fixed preset such as ``brain``, a Window or VOI LUT): the same on every
  slice, applied to each slice's own modality values (its own Rescale Slope/Intercept);
- ``header`` (and ``preset=None``): each slice's own window when all slices agree on it (choose one with
  ``voi_index=`` / ``voi_explanation=``); where they disagree, one window for the whole series: the median
  centre and the median width of the slices' windows (the middle slice's VOI LUT when some have LUTs),
  with a :class:`~dicomrender.SeriesWarning`; slices without any take it too; when no slice has a window
  or VOI LUT, ``auto`` over the series;
- a data-driven preset (``auto``, ``minmax``, ``percentile``, ``histogram``): computed once over every
  pixel of the series (:mod:`.statistics`);
- a computed preset of a plugin: evaluated on each slice, with that slice's :class:`RenderContext`
  (as ``render`` of that file alone would).

``per_slice=True`` evaluates every computed and header channel on each slice alone instead: each
slice then looks exactly as ``render(file)`` renders it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset

from .._types import VOI, VOILut, Window
from ..errors import InvalidWindowError, PresetError, SeriesWarning
from ..presets import Preset, RenderContext, get_preset
from ..presets.lookup import explicit_window, header_function, preset_items
from ..presets.windows import auto_window, header_window, histogram_window, minmax_window, percentile_window
from .sources import SliceHeader

__all__ = ["Channel", "caller_window", "channels_for", "check_presets", "context_for", "header_choice", "with_function"]

#: The built-in data-driven presets, by their compute function: computed over the series.
_SERIES_KINDS = {minmax_window: "minmax", auto_window: "auto", percentile_window: "percentile",
                 histogram_window: "histogram"}
_BUILTIN = (*_SERIES_KINDS, header_window)
_NO_DATASET = Dataset()


@dataclass(frozen=True)
class Channel:
    """One output channel: ``kind`` is "fixed" (``voi``), "window" (the caller's, ``voi``), "header",
    "series" (``stat``) or "slice" (``preset`` evaluated per slice); ``label`` names it for the channel
    order."""

    kind: str
    label: str
    voi: Optional[VOI] = None
    preset: Optional[Preset] = None
    stat: str = ""

    @property
    def needs_dataset(self) -> bool:
        """A plugin's computed preset may read any attribute: it sees the slice's whole dataset."""
        return self.kind == "slice" and self.preset is not None and \
            not any(self.preset.compute is f for f in _BUILTIN)


def _expand(item, checked: List[Preset], per_slice: bool) -> List[Channel]:
    if isinstance(item, (Window, VOILut)):
        return [Channel("fixed", item.explanation or "window" if isinstance(item, Window) else "VOI LUT", item)]
    preset = get_preset(item)
    checked.append(preset)
    if preset.stack:
        return [c for name in preset.stack for c in _expand(name, checked, per_slice)]
    if preset.fixed:
        assert preset.window is not None
        return [Channel("fixed", preset.name, preset.window, preset)]
    if per_slice:
        return [Channel("slice", preset.name, preset=preset)]
    if preset.compute is header_window:
        return [Channel("header", preset.name, preset=preset)]
    kind = next((k for f, k in _SERIES_KINDS.items() if preset.compute is f), None)
    if kind is not None:
        return [Channel("series", preset.name, preset=preset, stat=kind)]
    return [Channel("slice", preset.name, preset=preset)]


def channels_for(preset, window, function, per_slice: bool) -> Tuple[List[Channel], List[Preset]]:
    """The channels of ``preset=`` / ``window=``, and every preset involved (for the strict checks)."""
    explicit = explicit_window(preset, window, function)
    if explicit is not None:  # "window": its function is each slice's header function unless function= is given
        return [Channel("window", "window", explicit)], []
    if preset is None:
        return [Channel("slice" if per_slice else "header", "header")], []
    checked: List[Preset] = []
    channels = [c for item in preset_items(preset) for c in _expand(item, checked, per_slice)]
    return channels, checked


def context_for(header: SliceHeader, words: Optional[np.ndarray], strict: bool, options: dict,
                dataset: Optional[Dataset] = None) -> RenderContext:
    """The RenderContext a preset sees for one slice (its words, or none for header-only decisions)."""
    parameters = header.parameters
    return RenderContext(dataset if dataset is not None else _NO_DATASET,
                         words if words is not None else np.empty((0,), dtype=header.word_dtype), header.format,
                         parameters.modality, parameters.windows, parameters.voi_luts, header.modality,
                         parameters.hounsfield, header.padding, strict, dict(options))


def check_presets(presets: Sequence[Preset], headers: Sequence[SliceHeader], strict: bool) -> None:
    """Refuse presets on slices they are not meant for (HU presets without a Hounsfield rescale), once
    per kind of slice; the error names the first such file."""
    if not strict or not presets:
        return
    seen = set()
    for header in headers:
        key = (header.modality, header.parameters.hounsfield)
        if key in seen:
            continue
        seen.add(key)
        ctx = context_for(header, None, strict, {})
        for preset in presets:
            try:
                preset.check(ctx)
            except PresetError as exc:
                raise exc.with_filename(header.name) from None


def header_choice(header: SliceHeader, options: dict) -> Optional[VOI]:
    """The slice's own header VOI (``voi_index=`` / ``voi_explanation=``), or None when it has none."""
    if not header.parameters.windows and not header.parameters.voi_luts:
        return None
    try:
        return header_window(context_for(header, None, False, options))[0]
    except InvalidWindowError as exc:
        raise exc.with_filename(header.name) from None


def series_header_voi(headers: Sequence[SliceHeader], options: dict) -> Optional[VOI]:
    """One header VOI for the whole series (see the module's notes), or None: ``auto`` over the series."""
    choices = [header_choice(h, options) for h in headers]
    present = [c for c in choices if c is not None]
    if not present:
        return None
    distinct: Dict[object, int] = {}
    for choice in present:
        key = choice if isinstance(choice, Window) else choice.key()
        distinct[key] = distinct.get(key, 0) + 1
    if len(distinct) == 1 and len(present) == len(choices):
        return present[0]
    if all(isinstance(c, Window) for c in present):
        windows = [c for c in present if isinstance(c, Window)]
        functions = {w.function for w in windows}
        median = Window(float(np.median([w.center for w in windows])), float(np.median([w.width for w in windows])),
                        functions.pop() if len(functions) == 1 else "LINEAR", "Series median window")
        chosen: VOI = median
        how = f"the median centre/width {median.center:g}/{median.width:g}"
    else:
        middle = len(choices) // 2
        chosen = min(((abs(i - middle), c) for i, c in enumerate(choices) if c is not None), key=lambda t: t[0])[1]
        how = "the VOI of the middle slice"
    warnings.warn(f"the header windows differ between the {len(choices)} slices of the series "
                  f"({len(distinct)} distinct, {len(choices) - len(present)} slices without one): every slice "
                  f"uses {how}; per_slice=True keeps each slice's own", SeriesWarning, stacklevel=4)
    return chosen


def caller_window(window: Window, header: SliceHeader, function: Optional[str]) -> Window:
    """The caller's ``window=`` for one slice: ``function``, else the slice's header function (as render)."""
    return Window(window.center, window.width, function or header_function(header.parameters.windows),
                  window.explanation)


def with_function(vois: Sequence[VOI], function: Optional[str]) -> List[VOI]:
    """The VOIs with ``function=`` applied to the windows (as ``render`` does)."""
    if function is None:
        return list(vois)
    return [Window(v.center, v.width, function, v.explanation) if isinstance(v, Window) else v for v in vois]
