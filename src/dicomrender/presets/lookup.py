"""Looking presets up by name and resolving a ``preset=`` argument to one VOI per output channel.

:func:`resolve_runs` is the one decision of what each output channel shows, for every group of
frames of a render, with the reason (:class:`Choice`): ``render`` applies it and ``explain``
reports it, so the two cannot disagree.
"""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, AbstractSet, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from .._types import FUNCTIONS, VOI, HeaderWindow, VOILut, Window
from ..errors import HeaderWindowWarning, InvalidWindowError, PresetError, UnknownPresetError
from .builtin import HEADER_OPTIONS
from .preset import Preset
from .registry import registry
from .windows import auto_window, header_choice, header_window, is_data_driven, pooled_window

if TYPE_CHECKING:  # pragma: no cover
    from .context import RenderContext

__all__ = ["get_preset", "list_presets", "resolve", "resolve_runs", "Choice", "preset_table", "preset_windows",
           "preset_items", "explicit_window", "accepted_options", "check_options"]


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


def header_function(windows: Sequence[HeaderWindow]) -> str:
    """The VOI LUT Function an explicit window takes from the header: that of its first window (dcmtk
    reads VOI LUT Function once and keeps it for ``+Ww``), LINEAR without one or with an unknown one."""
    if windows:
        function = str(windows[0].function or "LINEAR").strip().upper().replace(" ", "_")
        if function in FUNCTIONS:
            return function
    return "LINEAR"


def explicit_window(preset, window, function: Optional[str],
                    windows: Sequence[HeaderWindow] = ()) -> Optional[Window]:
    """The caller's ``window=(center, width)`` as a :class:`Window`, None without one; ``preset=`` and
    ``window=`` together are refused.  Its VOI LUT Function is ``function``, else the header's
    (:func:`header_function` of ``windows``, the header windows of the frames), else LINEAR."""
    if window is None:
        return None
    if preset is not None:
        raise ValueError("give either preset= or window=, not both")
    try:
        center, width = window
    except (TypeError, ValueError):
        raise InvalidWindowError(f"window must be (center, width), got {window!r}", attribute="window") from None
    return Window(center, width, function or header_function(windows), "window=")


@dataclass(frozen=True)
class Choice:
    """One output channel of a group of frames: its VOI and why it was chosen.

    ``source`` is ``"window"`` (the caller's ``window=``), ``"item"`` (a Window or VOI LUT given as
    ``preset=``), ``"fixed"`` (a fixed preset), ``"header window"``, ``"header VOI LUT"``, ``"data"``
    (a data-driven preset, or the header's fallback to ``auto``) or ``"plugin"`` (a computed preset
    evaluated on the group).  ``preset`` is the preset that chose it; ``index`` / ``count`` the header
    item (0-based) and how many the header has; ``reason`` says why in words; ``warnings`` are the
    header items skipped on the way.
    """

    voi: VOI
    source: str
    reason: str
    preset: Optional[Preset] = None
    index: Optional[int] = None
    count: Optional[int] = None
    warnings: Tuple[HeaderWindowWarning, ...] = ()


def _with_function(choices: List[Choice], function: Optional[str]) -> List[Choice]:
    if function is None:
        return choices
    return [Choice(Window(c.voi.center, c.voi.width, function, c.voi.explanation), c.source,
                   f"{c.reason}; VOI LUT Function {function} from function=", c.preset, c.index, c.count, c.warnings)
            if isinstance(c.voi, Window) else c for c in choices]


def _header_choices(preset: Optional[Preset], ctxs: Sequence["RenderContext"]) -> List[List[Choice]]:
    """The header's VOI for each group; groups without one share one ``auto`` window over them all."""
    picks = [header_choice(ctx) for ctx in ctxs]
    missing = [ctx for ctx, pick in zip(ctxs, picks) if pick.voi is None]
    auto = pooled_window(auto_window, missing) if missing else None
    result = []
    for pick in picks:
        if pick.voi is None:
            assert auto is not None
            result.append([Choice(auto[0], "data", f"{pick.reason}: auto window (min-max without Pixel Padding)",
                                  preset, warnings=pick.warnings)])
        else:
            source = "header window" if pick.kind == "window" else "header VOI LUT"
            result.append([Choice(pick.voi, source, pick.reason, preset, pick.index, pick.count, pick.warnings)])
    return result


def _preset_choices(preset: Preset, ctxs: Sequence["RenderContext"]) -> List[List[Choice]]:
    """One list of channels per group for a preset (a stack: its presets' channels in order)."""
    if preset.stack:
        for ctx in ctxs:
            preset.check(ctx)
        result: List[List[Choice]] = [[] for _ in ctxs]
        for name in preset.stack:
            for channels, more in zip(result, _preset_choices(get_preset(name), ctxs)):
                channels.extend(dataclasses.replace(c, reason=f"{c.reason} (channel of stack {preset.name!r})")
                                for c in more)
        return result
    if preset.compute is header_window:
        for ctx in ctxs:
            preset.check(ctx)
        return _header_choices(preset, ctxs)
    if preset.compute is not None and len(ctxs) > 1:
        for ctx in ctxs:
            preset.check(ctx)
        pooled = pooled_window(preset.compute, ctxs)
        if pooled is not None:  # data-driven: one window over the modality values of every frame rendered
            return [[Choice(v, "data", f"computed over the {len(ctxs)} groups of frames together", preset)
                     for v in pooled] for _ in ctxs]
    source = "fixed" if preset.fixed else "data" if is_data_driven(preset.compute) else "plugin"
    reason = "computed from the modality values of the frames rendered" if source == "data" else \
        _preset_reason(preset)
    return [[Choice(v, source, reason, preset) for v in preset.windows(ctx)] for ctx in ctxs]


def _explicit_reason(function: Optional[str], windows: Sequence[HeaderWindow]) -> str:
    if function:
        return f"window= of the caller, VOI LUT Function {function.upper()} from function="
    if windows:
        return f"window= of the caller, VOI LUT Function {header_function(windows)} of the header's first window"
    return "window= of the caller, VOI LUT Function LINEAR (the header has no window)"


def _preset_reason(preset: Preset) -> str:
    if preset.fixed:
        return f"preset {preset.name!r}: {preset.center:g}/{preset.width:g} {preset.function}" + \
            (f" ({preset.units})" if preset.units else "")
    return f"preset {preset.name!r}" + (f" from {preset.source}" if preset.source != "dicomrender" else "")


def resolve_runs(preset, window, function: Optional[str], ctxs: Sequence["RenderContext"],
                 max_windows: Optional[int] = None) -> List[List[Choice]]:
    """What each output channel shows, for each group of frames of one render: one list of
    :class:`Choice` per context of ``ctxs`` (the groups of frames that share their header parameters).

    ``window=`` gives one window (in the header's VOI LUT Function unless ``function=``); otherwise as
    :func:`resolve` for each group, except that the built-in data-driven presets (and the header's
    fallback to ``auto``) compute one window over the modality values of every group at once.
    ``function=`` replaces the VOI LUT Function of every centre/width window.
    """
    if window is not None:
        explicit = [explicit_window(preset, window, function, ctx.windows) for ctx in ctxs]
        return [[Choice(voi, "window", _explicit_reason(function, ctx.windows))]
                for voi, ctx in zip(explicit, ctxs) if voi is not None]
    if preset is None:
        runs = _header_choices(None, ctxs)
    else:
        runs = [[] for _ in ctxs]
        for item in preset_items(preset):
            if isinstance(item, (Window, VOILut)):
                more = [[Choice(item, "item", "a Window or VOI LUT given as preset=")] for _ in ctxs]
            else:
                more = _preset_choices(get_preset(item), ctxs)
            for channels, extra in zip(runs, more):
                channels.extend(extra)
        if max_windows is not None and runs and len(runs[0]) > max_windows:
            raise PresetError(f"{len(runs[0])} windows requested; at most {max_windows} channels are rendered at "
                              f"once", attribute="preset")
    return [_with_function(channels, function) for channels in runs]


def resolve(preset, ctx: "RenderContext", max_windows: Optional[int] = None) -> List[VOI]:
    """One VOI per output channel for ``preset``.

    ``preset`` is None (the header window), a name (``"a,b,c"`` stacks), a :class:`Preset`, a
    :class:`~dicomrender.Window` or VOI LUT, or a sequence of these.  ``max_windows`` bounds the
    number of channels (the engine's limit, given by the caller).  Header windows skipped as invalid
    are reported with :class:`~dicomrender.errors.HeaderWindowWarning`.
    """
    choices = resolve_runs(preset, None, None, [ctx], max_windows)[0]
    filename = getattr(ctx.dataset, "filename", None)
    for choice in choices:
        for warning in choice.warnings:
            warnings.warn(warning.with_filename(filename if isinstance(filename, str) else None), stacklevel=2)
    return [c.voi for c in choices]


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
