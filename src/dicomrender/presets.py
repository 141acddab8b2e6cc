"""Presets: named ways of choosing the VOI window of an image.

A :class:`Preset` is either a fixed window (centre, width, VOI LUT Function),
a function of the image that computes one or more windows, or a stack of other
presets (one output channel each).  Presets are registered by plugins
(:mod:`dicomrender.hookspecs`); the built-in ones live in
:mod:`dicomrender.builtin_presets`.

``resolve(preset, ctx)`` is what :func:`dicomrender.render` calls; it returns
one VOI (window or VOI LUT) per output channel.

The data-driven windows of this module follow dcmtk (``dcm2pnm``) where dcmtk
has an equivalent, so that the same file gives the same window:

- :func:`minmax_window` is ``dcm2pnm +Wm``;
- :func:`histogram_window` is ``dcm2pnm +Wh n``;
- :func:`auto_window` is ``+Wm`` without the Pixel Padding Value/Range;
- :func:`percentile_window` has no dcmtk equivalent.

All of them are computed over the frames being rendered (``render(...,
frame=n)``: that frame; all frames: every frame sharing the same modality
transform), as ``dcm2pnm +F n+1`` / ``+Fa`` do.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DicomRenderError, InvalidWindowError, PluginError, PresetError, UnknownPresetError
from .windowing import VOI, VOILut, Window

if TYPE_CHECKING:  # pragma: no cover
    from .render import RenderContext

__all__ = [
    "Preset",
    "resolve",
    "get_preset",
    "list_presets",
    "preset_table",
    "header_window",
    "minmax_window",
    "auto_window",
    "percentile_window",
    "histogram_window",
    "DEFAULT_PERCENTILES",
    "DEFAULT_HISTOGRAM_PERCENT",
]

#: Lower and upper percentile of the ``percentile`` preset (``render(..., percentiles=(lo, hi))``).
DEFAULT_PERCENTILES = (1.0, 99.0)

#: Percentage of pixels ignored at each end by the ``histogram`` preset (``histogram_percent=``).
DEFAULT_HISTOGRAM_PERCENT = 5.0

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
        from a :class:`dicomrender.render.RenderContext` (dataset, modality
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
        return Window(self.center, self.width, self.function, self.name) if self.fixed else None

    def check(self, ctx: "RenderContext") -> None:
        """Raise :class:`PresetError` when ``ctx.strict`` and the image is not one this preset is meant for."""
        if not ctx.strict:
            return
        modality = ctx.info.modality_name or "unknown"
        if self.hounsfield and not ctx.hounsfield:
            raise PresetError(
                f"preset {self.name!r} is in Hounsfield units, but this image (Modality {modality}) has no "
                f"Hounsfield rescale (RescaleType HU or a CT rescale); pass strict=False to apply it anyway",
                attribute="RescaleType")
        if self.units is None and self.modalities and ctx.info.modality_name \
                and ctx.info.modality_name not in self.modalities:
            raise PresetError(
                f"preset {self.name!r} is meant for Modality {', '.join(self.modalities)}, this image is "
                f"{modality}; pass strict=False to apply it anyway", attribute="Modality")

    def windows(self, ctx: "RenderContext") -> list:
        """One VOI per output channel for the image of ``ctx``."""
        self.check(ctx)
        if self.stack:
            vois = []
            for name in self.stack:
                vois.extend(get_preset(name).windows(ctx))
            return vois
        if self.compute is None:
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


# ---- data-driven windows ---------------------------------------------------


def _range_window(low: float, high: float, explanation: str) -> Window:
    """The window dcmtk builds from a value range: ``low`` maps to 0, ``high`` to 255.

    c = (low + high + 1) / 2, w = high - low + 1 (DICOM Supplement 33: "a Window
    Center of 2^n-1 and a Window Width of 2^n selects the range 0 to 2^n-1").
    """
    return Window((low + high + 1) / 2, high - low + 1, "LINEAR", explanation)


def _dcmtk_values(ctx: "RenderContext", exclude_padding: bool) -> np.ndarray:
    """Modality values as dcmtk's intermediate image holds them.

    dcmtk stores the modality values of integer images in an integer buffer,
    truncating non-integer rescale results toward zero (e.g. MR2_UNCI, slope
    3.774); its min-max and histogram windows are computed from those.  Float
    pixel data keeps its values.
    """
    values = ctx.modality_values(exclude_padding=exclude_padding)
    if ctx.info.format is not None:
        values = np.trunc(values)
    return values


#: Words per chunk when counting stored values (bounds the temporary memory).
_CHUNK = 1 << 20


def _stored_counts(ctx: "RenderContext") -> Optional[np.ndarray]:
    """Pixel count of every stored bit pattern, for integer data of at most 16 stored bits (else None)."""
    fmt = ctx.info.format
    if fmt is None or fmt.bits_stored > 16:
        return None
    words = np.asarray(ctx.words)
    if words.dtype.byteorder not in "=|":
        words = words.astype(words.dtype.newbyteorder("="))
    words = np.ascontiguousarray(words).view(fmt.unsigned_dtype).reshape(-1)
    size = 1 << fmt.bits_stored
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, words.size, _CHUNK):
        chunk = words[start:start + _CHUNK]
        counts += np.bincount((chunk >> fmt.shift) & (size - 1), minlength=size)
    return counts


def _value_counts(ctx: "RenderContext", exclude_padding: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``(values, counts)``: the modality values in dcmtk's integer view, and how many pixels have each.

    Integer data of at most 16 stored bits is counted per stored value (one
    pass, little memory; each distinct value once, ``counts`` its pixels);
    other data gives every pixel's value and ``counts`` None.
    """
    counts = _stored_counts(ctx)
    if counts is None:
        return _dcmtk_values(ctx, exclude_padding), None
    stored = ctx.info.format.domain()
    if exclude_padding and ctx.info.pixel_padding is not None:
        low, high = ctx.info.pixel_padding
        counts[(stored >= low) & (stored <= high)] = 0
    present = counts > 0
    values = np.trunc(ctx.parameters.modality.values(stored[present]))
    return values, counts[present]


def minmax_window(ctx: "RenderContext") -> list:
    """Min-max window of the modality values, exactly as ``dcm2pnm +Wm``.

    c = (min + max + 1) / 2, w = max - min + 1 over every pixel of the frames
    rendered (Pixel Padding included, as dcmtk does), modality values of
    integer images truncated toward zero as in dcmtk's integer intermediate
    image.  Source: dcmtk ``DiMonoPixelTemplate::getMinMaxWindow``.
    """
    values, _ = _value_counts(ctx, exclude_padding=False)
    if values.size == 0:  # only NaN (float data)
        return [_range_window(0.0, 0.0, "Min-Max Window")]
    return [_range_window(float(values.min()), float(values.max()), "Min-Max Window")]


def auto_window(ctx: "RenderContext") -> list:
    """Min-max window ignoring Pixel Padding Value/Range.

    The same window as :func:`minmax_window` (and ``dcm2pnm +Wm``) on images
    without padding pixels; on images whose padding (e.g. -2000 outside the CT
    field of view) is the darkest value, the padding does not stretch the
    window.  Falls back to :func:`minmax_window` when every pixel is padding.
    """
    values, _ = _value_counts(ctx, exclude_padding=True)
    if values.size == 0:
        return minmax_window(ctx)
    return [_range_window(float(values.min()), float(values.max()), "Auto Window")]


def _option_number(ctx, key: str, default: float) -> float:
    value = ctx.options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PresetError(f"{key} must be a number, got {value!r}", attribute=key) from None
    if not math.isfinite(number):
        raise PresetError(f"{key} must be finite, got {value!r}", attribute=key)
    return number


def percentile_window(ctx: "RenderContext") -> list:
    """Window from the low and high percentiles of the modality values.

    ``render(..., "percentile", percentiles=(1, 99))`` (the default): values at
    or below the 1st percentile render black, values at or above the 99th
    white.  Pixels equal to the Pixel Padding Value (or inside the Pixel
    Padding Range) and NaN are ignored.  Percentiles use numpy's default
    (linear) interpolation: ``numpy.percentile(values, (lo, hi))``.
    """
    percentiles = ctx.options.get("percentiles", DEFAULT_PERCENTILES)
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise PresetError(f"percentiles must be (low, high), got {percentiles!r}", attribute="percentiles") from None
    if not 0 <= low < high <= 100:
        raise PresetError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}",
                          attribute="percentiles")
    values = ctx.modality_values(exclude_padding=True)
    if values.size == 0:
        raise PresetError("no pixel values to take percentiles of: every pixel is Pixel Padding or NaN",
                          attribute="PixelPaddingValue")
    lo, hi = np.percentile(values, (low, high))
    return [_range_window(float(lo), float(hi), f"Percentile {low:g}-{high:g}")]


def histogram_window(ctx: "RenderContext") -> list:
    """Histogram window, exactly as ``dcm2pnm +Wh n``.

    ``render(..., "histogram", histogram_percent=5)`` (the default):
    histogram of the (integer) modality values of every pixel of the frames
    rendered, one bin per value; walking in from each end until ``n`` percent
    of the pixels are passed gives the range.  dcmtk's walk is asymmetric and
    kept as is: the low end is one value above the bin where the count is
    reached, the high end that bin itself.  Source: dcmtk
    ``DiMonoPixelTemplate::getHistogramWindow``.  Where dcmtk finds no window
    (a flat image), the min-max window is used.
    """
    percent = _option_number(ctx, "histogram_percent", DEFAULT_HISTOGRAM_PERCENT)
    if not 0 <= percent <= 100:
        raise PresetError(f"histogram_percent must be 0..100, got {percent:g}", attribute="histogram_percent")
    values, counts = _value_counts(ctx, exclude_padding=False)
    if values.size == 0:
        return minmax_window(ctx)
    if not np.all(np.abs(values) < 2.0 ** 62):  # inf, or beyond int64: no integer histogram
        return minmax_window(ctx)
    values = np.trunc(values).astype(np.int64)  # float data: one bin per integer
    low, high = int(values.min()), int(values.max())
    if low >= high:
        return minmax_window(ctx)
    # Only the occupied bins of dcmtk's histogram: the value range can be far larger than the
    # number of pixels (a large Rescale Slope), and empty bins never change the walk.
    occupied, inverse = np.unique(values, return_inverse=True)
    if counts is None:
        quant, total = np.bincount(inverse.reshape(-1)), values.size
    else:  # weights are pixel counts: exact in float64 up to 2**53
        quant = np.bincount(inverse.reshape(-1), weights=counts).astype(np.int64)
        total = int(counts.sum())
    n = high - low + 1
    threshold = int(percent / 100.0 * total)
    if threshold == 0:
        start, stop = 0, n
    else:
        first = occupied[np.searchsorted(np.cumsum(quant), threshold, side="left")]
        last = occupied[::-1][np.searchsorted(np.cumsum(quant[::-1]), threshold, side="left")]
        start = min(int(first) - low + 1, n)
        stop = max(int(last) - low, 0)
    minvalue = low + start if start < n else 0
    maxvalue = low + stop if stop > 0 else 0
    if minvalue >= maxvalue:
        return minmax_window(ctx)
    return [_range_window(float(minvalue), float(maxvalue), f"Histogram Window {percent:g}%")]


def header_window(ctx: "RenderContext") -> list:
    """The file's own window, else its VOI LUT, else :func:`auto_window`.

    ``voi_index`` (0-based, default 0) or ``voi_explanation`` (matched
    case-insensitively against Window Center & Width Explanation, then LUT
    Explanation) choose among several; ``render(..., voi_index=1)`` is
    ``dcm2pnm +Wi 2``.  Per-frame windows of enhanced multi-frame images
    (Frame VOI LUT Sequence) take precedence over the top level.
    """
    windows = ctx.parameters.windows
    luts = ctx.parameters.voi_luts
    explanation = ctx.options.get("voi_explanation")
    index = ctx.options.get("voi_index", 0)
    try:
        index = int(index)
    except (TypeError, ValueError):
        raise InvalidWindowError(f"voi_index must be an integer, got {index!r}", attribute="voi_index") from None
    if explanation is not None:
        wanted = str(explanation).strip().upper()
        for i, w in enumerate(windows):
            if (w.explanation or "").strip().upper() == wanted:
                return [windows[i].to_window()]
        for lut in luts:
            if (lut.explanation or "").strip().upper() == wanted:
                return [lut]
        known = [repr(w.explanation) for w in windows if w.explanation] + \
            [repr(v.explanation) for v in luts if v.explanation]
        raise InvalidWindowError(f"no window or VOI LUT explained as {explanation!r} "
                                 f"(the header has {', '.join(known) or 'no explanations'})",
                                 attribute="WindowCenterWidthExplanation")
    if windows:
        if not 0 <= index < len(windows):
            raise InvalidWindowError(f"voi_index {index} out of range: the header has {len(windows)} window(s)",
                                     attribute="WindowCenter")
        return [windows[index].to_window()]
    if luts:
        if not 0 <= index < len(luts):
            raise InvalidWindowError(f"voi_index {index} out of range: the header has {len(luts)} VOI LUT(s)",
                                     attribute="VOILUTSequence")
        return [luts[index]]
    return auto_window(ctx)


# ---- look-up ---------------------------------------------------------------


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
    from .plugins import registry

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


def list_presets() -> list:
    """All registered presets, built-in first, in registration order."""
    from .plugins import registry

    return list(registry().presets)


def resolve(preset, ctx: "RenderContext") -> list:
    """One VOI per output channel for ``preset``.

    ``preset`` is None (the header window), a name (``"a,b,c"`` stacks), a
    :class:`Preset`, a :class:`~dicomrender.Window`, or a sequence of these.
    """
    from . import _kernel

    if preset is None:
        return header_window(ctx)
    if isinstance(preset, str) and "," in preset:
        preset = [p for p in (s.strip() for s in preset.split(",")) if p]
    if isinstance(preset, (str, Preset)):
        vois = get_preset(preset).windows(ctx)
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
            vois.extend([item] if isinstance(item, (Window, VOILut)) else get_preset(item).windows(ctx))
    if len(vois) > _kernel.MAX_WINDOWS:
        raise PresetError(f"{len(vois)} windows requested; at most {_kernel.MAX_WINDOWS} channels are rendered at once",
                          attribute="preset")
    return vois


def preset_table(presets=None) -> str:
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
