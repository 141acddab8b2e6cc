"""The :class:`Preset` type: a named way of choosing the VOI window of an image.

A preset is a fixed window (centre, width, VOI LUT Function), a function of the image that
computes one or more windows, or a stack of other presets (one output channel each).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple, Union

from .._types import VOI, VOILut, Window
from ..errors import DicomRenderError, PluginError, PresetError

if TYPE_CHECKING:  # pragma: no cover
    from .context import RenderContext

__all__ = ["Preset"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _names(value, attribute: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise PluginError(f"{attribute} must be non-empty strings, got {item!r}", attribute=attribute)
    return tuple(item.strip() for item in items)


@dataclass(frozen=True)
class Preset:
    """A named window choice.

    Exactly one of: a fixed window (``center`` and ``width``, with
    ``function``), a ``compute`` function, or a ``stack`` of other presets.

    Parameters
    ----------
    name : str
        The name users type; matched case-insensitively.  Letters, digits and
        ``_ . + -`` (no commas: the command line separates stacked presets by
        commas).
    description : str
        One line saying what the window shows.
    center, width : float, optional
        A fixed window, in modality units (Hounsfield units for CT presets).
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        VOI LUT Function of the fixed window.
    compute : callable, optional
        ``compute(ctx) -> VOI or sequence of VOI``: computes the window(s)
        from a :class:`dicomrender.RenderContext` (dataset, modality
        values, options passed to :func:`dicomrender.render`).  A sequence
        gives one output channel per VOI.
    stack : tuple of str
        Names of presets rendered as one channel each (e.g. an RGB stack).
    modalities : tuple of str
        DICOM Modality values the preset is meant for (documentation; with
        ``strict`` and no ``units``, other modalities are refused).
    units : str, optional
        ``"HU"``: the window is in Hounsfield units; with ``strict=True``
        (the default of :func:`dicomrender.render`) images without a
        Hounsfield rescale are refused with :class:`dicomrender.PresetError`.
    aliases : tuple of str
        Other names of the preset.
    reference : str
        Where the values come from (shown in the documentation table).
    source : str
        The plugin that registered the preset (set on registration).
    options : tuple of str, optional
        The keyword options of :func:`dicomrender.render` that ``compute``
        reads from ``ctx.options`` (e.g. ``("percentiles",)``); ``render``
        refuses any other with :class:`TypeError`, so that a misspelled
        option is not silently ignored.  ``None`` (the default of computed
        presets) leaves the options unchecked: the preset may read any.
        Fixed windows and stacks read none (a stack takes its presets').
    """

    name: str
    description: str = ""
    center: Optional[float] = None
    width: Optional[float] = None
    function: str = "LINEAR"
    compute: Optional[Callable[["RenderContext"], Union[VOI, Sequence[VOI]]]] = field(default=None, compare=False)
    stack: Tuple[str, ...] = ()
    modalities: Tuple[str, ...] = ()
    units: Optional[str] = None
    aliases: Tuple[str, ...] = ()
    reference: str = ""
    source: str = "dicomrender"
    options: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise PluginError(f"preset name must be letters, digits and _.+- (no spaces or commas), got {self.name!r}",
                              attribute="name")
        aliases = _names(self.aliases, "aliases")
        for alias in aliases:
            if not _NAME.match(alias):
                raise PluginError(f"preset {self.name!r}: alias {alias!r} must be letters, digits and _.+-",
                                  attribute="aliases")
        object.__setattr__(self, "aliases", aliases)
        object.__setattr__(self, "stack", _names(self.stack, "stack"))
        object.__setattr__(self, "modalities", tuple(m.upper() for m in _names(self.modalities, "modalities")))
        fixed = self.center is not None or self.width is not None
        kinds = int(fixed) + int(self.compute is not None) + int(bool(self.stack))
        if kinds != 1:
            raise PluginError(f"preset {self.name!r} needs exactly one of center/width, compute or stack",
                              attribute="center")
        if fixed:
            if self.center is None or self.width is None:
                raise PluginError(f"preset {self.name!r} needs both center and width", attribute="width")
            window = Window(self.center, self.width, self.function)  # validates (InvalidWindowError)
            object.__setattr__(self, "center", window.center)
            object.__setattr__(self, "width", window.width)
            object.__setattr__(self, "function", window.function)
        elif self.compute is not None and not callable(self.compute):
            raise PluginError(f"preset {self.name!r}: compute must be callable", attribute="compute")
        if self.units is not None:
            object.__setattr__(self, "units", str(self.units).strip().upper())
        if self.options is not None or self.compute is None:  # fixed windows and stacks read no option
            options = _names(self.options, "options")
            for option in options:
                if not option.isidentifier():
                    raise PluginError(f"preset {self.name!r}: option {option!r} must be a keyword argument name",
                                      attribute="options")
            object.__setattr__(self, "options", options)

    @property
    def hounsfield(self) -> bool:
        """True when the window is in Hounsfield units."""
        return self.units == "HU"

    @property
    def fixed(self) -> bool:
        """True for a fixed centre/width window."""
        return self.center is not None

    @property
    def window(self) -> Optional[Window]:
        """The fixed window, or None for computed and stacked presets."""
        if self.center is None or self.width is None:
            return None
        return Window(self.center, self.width, self.function, self.name)

    def check(self, ctx: "RenderContext") -> None:
        """Raise :class:`PresetError` when ``ctx.strict`` and the image is not one this preset is meant for."""
        if not ctx.strict:
            return
        modality = ctx.modality or "unknown"
        if self.hounsfield and not ctx.hounsfield:
            raise PresetError(
                f"preset {self.name!r} is in Hounsfield units, but this image (Modality {modality}) has no "
                f"Hounsfield rescale (RescaleType HU or a CT rescale); pass strict=False to apply it anyway",
                attribute="RescaleType")
        if self.units is None and self.modalities and ctx.modality and ctx.modality not in self.modalities:
            raise PresetError(
                f"preset {self.name!r} is meant for Modality {', '.join(self.modalities)}, this image is "
                f"{modality}; pass strict=False to apply it anyway", attribute="Modality")

    def windows(self, ctx: "RenderContext") -> List[VOI]:
        """One VOI per output channel for the image of ``ctx`` (a fixed or computed preset; the
        presets of a stack are looked up by :func:`dicomrender.presets.resolve`)."""
        self.check(ctx)
        if self.stack:
            raise PresetError(f"preset {self.name!r} is a stack of {', '.join(self.stack)}: resolve it by name "
                              f"(dicomrender.presets.resolve)", attribute="preset")
        if self.compute is None:
            assert self.window is not None
            return [self.window]
        try:
            result = self.compute(ctx)
        except DicomRenderError:
            raise
        except Exception as exc:  # a plugin's bug must not surface as a bare crash
            raise PluginError(f"preset {self.name!r} (from {self.source}) failed: {type(exc).__name__}: {exc}",
                              attribute="compute") from exc
        vois = [result] if isinstance(result, (Window, VOILut)) else list(result) if isinstance(
            result, (list, tuple)) else None
        if not vois or not all(isinstance(v, (Window, VOILut)) for v in vois):
            raise PluginError(f"preset {self.name!r} (from {self.source}) computed {result!r}; "
                              f"expected a dicomrender.Window or a list of them", attribute="compute")
        return vois

    def summary(self) -> Tuple[str, str, str, str, str]:
        """``(name, window, function, modality, source)`` as the preset table shows them."""
        name = self.name + (f" ({', '.join(self.aliases)})" if self.aliases else "")
        if self.fixed:
            window, function = f"{self.center:g}/{self.width:g}", self.function
        elif self.stack:
            window, function = "+".join(self.stack), "stack"
        else:
            window, function = "computed", "-"
        modality = ",".join(self.modalities) or "any"
        if self.units:
            modality += f" ({self.units})"
        return name, window, function, modality, self.source

