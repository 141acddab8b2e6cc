"""Looking presets up by name and resolving a ``preset=`` argument to one VOI per output channel."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, AbstractSet, FrozenSet, Iterable, List, Optional, Set

from .._types import VOI, VOILut, Window
from ..errors import InvalidWindowError, PresetError, UnknownPresetError
from .builtin import HEADER_OPTIONS
from .preset import Preset
from .registry import registry
from .windows import header_window

if TYPE_CHECKING:  # pragma: no cover
    from .context import RenderContext

__all__ = ["get_preset", "list_presets", "resolve", "preset_table", "preset_windows", "preset_items",
           "explicit_window", "accepted_options", "check_options"]


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


def preset_items(preset) -> list:
    """The items of a ``preset=`` argument: ``"a,b,c"`` split at commas, one name, Preset, Window or VOI LUT
    as a list of one, a sequence as a list; :class:`PresetError` for anything else or an empty list."""
    if isinstance(preset, str) and "," in preset:
        preset = [p for p in (s.strip() for s in preset.split(",")) if p]
    if isinstance(preset, (str, Preset, Window, VOILut)):
        return [preset]
    try:
        items = list(preset)
    except TypeError:
        raise PresetError(f"a preset is a name, a Preset or a sequence of them, got {preset!r}",
                          attribute="preset") from None
    if not items:
        raise PresetError("the list of presets is empty", attribute="preset")
    return items


def explicit_window(preset, window, function: Optional[str]) -> Optional[Window]:
    """The caller's ``window=(center, width)`` as a :class:`Window` (``function`` or LINEAR), None without one;
    ``preset=`` and ``window=`` together are refused."""
    if window is None:
        return None
    if preset is not None:
        raise ValueError("give either preset= or window=, not both")
    try:
        center, width = window
    except (TypeError, ValueError):
        raise InvalidWindowError(f"window must be (center, width), got {window!r}", attribute="window") from None
    return Window(center, width, function or "LINEAR")


def resolve(preset, ctx: "RenderContext", max_windows: Optional[int] = None) -> List[VOI]:
    """One VOI per output channel for ``preset``.

    ``preset`` is None (the header window), a name (``"a,b,c"`` stacks), a :class:`Preset`, a
    :class:`~dicomrender.Window` or VOI LUT, or a sequence of these.  ``max_windows`` bounds the
    number of channels (the engine's limit, given by the caller).
    """
    if preset is None:
        return header_window(ctx)
    items = preset_items(preset)
    if len(items) == 1 and isinstance(items[0], (str, Preset)):
        vois = preset_windows(get_preset(items[0]), ctx)
    elif len(items) == 1 and isinstance(items[0], (Window, VOILut)):
        vois = [items[0]]
    else:
        vois = []
        for item in items:
            vois.extend([item] if isinstance(item, (Window, VOILut)) else preset_windows(get_preset(item), ctx))
    if max_windows is not None and len(vois) > max_windows:
        raise PresetError(f"{len(vois)} windows requested; at most {max_windows} channels are rendered at once",
                          attribute="preset")
    return vois


def _items(preset) -> list:
    """The items of a ``preset=`` argument, as :func:`resolve` reads it (None: the header window)."""
    if isinstance(preset, str) and "," in preset:
        return [p for p in (s.strip() for s in preset.split(",")) if p]
    if isinstance(preset, (str, Preset, Window, VOILut)):
        return [preset]
    try:
        return list(preset)
    except TypeError:
        raise PresetError(f"a preset is a name, a Preset or a sequence of them, got {preset!r}",
                          attribute="preset") from None


def _preset_options(preset: Preset, seen: Set[str]) -> Optional[Set[str]]:
    if preset.options is None:
        return None
    taken = set(preset.options)
    if preset.name not in seen:
        seen.add(preset.name)
        for name in preset.stack:
            member = _preset_options(get_preset(name), seen)
            if member is None:
                return None
            taken |= member
    return taken


def accepted_options(preset) -> Optional[FrozenSet[str]]:
    """The ``render(**options)`` keys the presets of a ``preset=`` argument read (None: the header
    window's); None when one of them reads any (a computed preset that declares no ``options``).

    Raises
    ------
    UnknownPresetError
        A name is not registered.
    """
    if preset is None:
        return frozenset(HEADER_OPTIONS)
    accepted: Set[str] = set()
    seen: Set[str] = set()
    for item in _items(preset):
        if isinstance(item, (Window, VOILut)):
            continue
        taken = _preset_options(get_preset(item), seen)
        if taken is None:
            return None
        accepted |= taken
    return frozenset(accepted)


def check_options(function: str, preset, options: Iterable[str], own: AbstractSet[str] = frozenset(),
                  parameters: Iterable[str] = ()) -> None:
    """Refuse keyword options that neither the caller (``own``) nor the presets of ``preset`` read.

    A misspelled option (``windw=``, ``voi_indx=``) would otherwise be silently ignored.  ``function``
    and ``parameters`` (its named keyword parameters) word the error the way Python does.

    Raises
    ------
    TypeError
        Naming the option and the closest valid keyword.
    """
    accepted = accepted_options(preset)
    if accepted is None:
        return
    for key in options:
        if key in own or key in accepted:
            continue
        valid = [*parameters, *own, *sorted(accepted)]
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        taken = ", ".join(sorted(accepted)) or "none"
        raise TypeError(f"{function}() got an unexpected keyword argument {key!r}{hint} "
                        f"(options the presets in use read: {taken})")


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
