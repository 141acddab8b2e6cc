"""Looking presets up by name and resolving a ``preset=`` argument to one VOI per output channel."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Iterable, List, Optional

from .._types import VOI, VOILut, Window
from ..errors import PresetError, UnknownPresetError
from .preset import Preset
from .registry import registry
from .windows import header_window

if TYPE_CHECKING:  # pragma: no cover
    from .context import RenderContext

__all__ = ["get_preset", "list_presets", "resolve", "preset_table", "preset_windows"]


def get_preset(name) -> Preset:
    """The preset registered under ``name`` (case-insensitive; names and aliases).

    Raises
    ------
    UnknownPresetError
        No such preset; the message lists the closest names.
    """
    if isinstance(name, Preset):
        return name
    if not isinstance(name, str):
        raise PresetError(f"a preset is a name or a dicomrender.Preset, got {name!r}", attribute="preset")
    names = registry().names
    key = name.strip().lower()
    if key in names:
        return names[key]
    close = difflib.get_close_matches(key, list(names), n=3, cutoff=0.6)
    if close:
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?"
    else:
        hint = f"; known presets: {', '.join(sorted(p.name for p in registry().presets))}"
    raise UnknownPresetError(f"unknown preset {name!r}{hint}", attribute="preset")


def list_presets() -> List[Preset]:
    """All registered presets, built-in first, in registration order."""
    return list(registry().presets)


def preset_windows(preset: Preset, ctx: "RenderContext") -> List[VOI]:
    """One VOI per output channel for ``preset``; the presets of a stack are looked up by name."""
    if not preset.stack:
        return preset.windows(ctx)
    preset.check(ctx)
    vois: List[VOI] = []
    for name in preset.stack:
        vois.extend(preset_windows(get_preset(name), ctx))
    return vois


def resolve(preset, ctx: "RenderContext", max_windows: Optional[int] = None) -> List[VOI]:
    """One VOI per output channel for ``preset``.

    ``preset`` is None (the header window), a name (``"a,b,c"`` stacks), a :class:`Preset`, a
    :class:`~dicomrender.Window` or VOI LUT, or a sequence of these.  ``max_windows`` bounds the
    number of channels (the engine's limit, given by the caller).
    """
    if preset is None:
        return header_window(ctx)
    if isinstance(preset, str) and "," in preset:
        preset = [p for p in (s.strip() for s in preset.split(",")) if p]
    if isinstance(preset, (str, Preset)):
        vois = preset_windows(get_preset(preset), ctx)
    elif isinstance(preset, (Window, VOILut)):
        vois = [preset]
    else:
        try:
            items = list(preset)
        except TypeError:
            raise PresetError(f"a preset is a name, a Preset or a sequence of them, got {preset!r}",
                              attribute="preset") from None
        if not items:
            raise PresetError("the list of presets is empty", attribute="preset")
        vois = []
        for item in items:
            vois.extend([item] if isinstance(item, (Window, VOILut)) else preset_windows(get_preset(item), ctx))
    if max_windows is not None and len(vois) > max_windows:
        raise PresetError(f"{len(vois)} windows requested; at most {max_windows} channels are rendered at once",
                          attribute="preset")
    return vois


def preset_table(presets: Optional[Iterable[Preset]] = None) -> str:
    """A plain-text table: name, window, function, modality, source plugin.

    ``presets`` defaults to :func:`list_presets`.
    """
    if presets is None:
        presets = list_presets()
    rows = [("name", "window (C/W)", "function", "modality", "plugin")]
    rows.extend(p.summary() for p in presets)
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
