"""Data-driven windows: computed from the pixels being rendered (and the header window).

They follow dcmtk (``dcm2pnm``) where dcmtk has an equivalent, so that the same file gives the
same window:

- :func:`minmax_window` is ``dcm2pnm +Wm``;
- :func:`histogram_window` is ``dcm2pnm +Wh n``;
- :func:`auto_window` is ``+Wm`` without the Pixel Padding Value/Range;
- :func:`percentile_window` has no dcmtk equivalent.

All of them are computed over the frames being rendered (``render(..., frame=n)``: that frame;
all frames: every frame, in modality values, also when the frames of an enhanced object have
different Pixel Value Transformations), as ``dcm2pnm +F n+1`` / ``+Fa`` do.  Each ``*_window(ctx)``
sees one group of frames; :func:`pooled_window` computes the same window over several groups at once.
Non-finite modality values (NaN and +-inf pixels of float data, or a rescale that overflows) are
ignored like Pixel Padding: they have no place on a value range; the rendering saturates +-inf pixels
to 255/0 and renders NaN 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .._types import VOI, HeaderWindow, Window
from ..errors import HeaderWindowWarning, InvalidArgumentError, InvalidWindowError, PresetError

if TYPE_CHECKING:  # pragma: no cover
    from .context import RenderContext

__all__ = ["header_window", "header_choice", "HeaderChoice", "minmax_window", "auto_window", "percentile_window",
           "histogram_window", "pooled_window", "is_data_driven", "DEFAULT_PERCENTILES", "DEFAULT_HISTOGRAM_PERCENT",
           "VOI_CHOICES"]

Contexts = Sequence["RenderContext"]

#: Lower and upper percentile of the ``percentile`` preset (``render(..., percentiles=(lo, hi))``).
DEFAULT_PERCENTILES = (1.0, 99.0)

#: Percentage of pixels ignored at each end by the ``histogram`` preset (``histogram_percent=``).
DEFAULT_HISTOGRAM_PERCENT = 5.0

def range_window(low: float, high: float, explanation: str) -> Window:
    """The window dcmtk builds from a value range: ``low`` maps to 0, ``high`` to 255.

    c = (low + high + 1) / 2, w = high - low + 1 (DICOM Supplement 33: "a Window
    Center of 2^n-1 and a Window Width of 2^n selects the range 0 to 2^n-1").
    """
    return Window((low + high + 1) / 2, high - low + 1, "LINEAR", explanation)


def _dcmtk_blocks(ctxs: Contexts, exclude_padding: bool, truncate: bool = True) -> Iterator[np.ndarray]:
    """Modality values as dcmtk's intermediate image holds them, block by block (bounded memory).

    dcmtk stores the modality values of integer images in an integer buffer,
    truncating non-integer rescale results toward zero (e.g. MR2_UNCI, slope
    3.774); its min-max and histogram windows are computed from those.  Float
    pixel data keeps its values; ``truncate=False`` keeps them for integer data too.
    """
    for ctx in ctxs:
        # an integer rescale (or a modality LUT) of integers gives integers: nothing to truncate
        cut = truncate and ctx.format is not None and not getattr(ctx.transform, "is_integer", False)
        for values in ctx.modality_blocks(exclude_padding=exclude_padding):
            values = _finite(values)
            yield np.trunc(values) if cut else values


def _finite(values: np.ndarray) -> np.ndarray:
    """``values`` without NaN and +-inf (the context drops NaN only)."""
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


#: Words per chunk when counting stored values (bounds the temporary memory).
_CHUNK = 1 << 20


def _stored_counts(ctx: "RenderContext") -> Optional[np.ndarray]:
    """Pixel count of every stored bit pattern, for integer data of at most 16 stored bits (else None)."""
    fmt = ctx.format
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


def _value_counts(ctxs: Contexts, exclude_padding: bool,
                  truncate: bool = True) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """``(values, counts)``: the modality values in dcmtk's integer view (``truncate=False``: as they are)
    and how many pixels have each (each distinct value once per group of frames); None unless the data
    is integer of at most 16 stored bits (counted per stored value in one pass, with little memory)."""
    parts = [_group_counts(ctx, exclude_padding, truncate) for ctx in ctxs]
    if any(part is None for part in parts):
        return None
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts if p is not None]),
            np.concatenate([p[1] for p in parts if p is not None]))


def _group_counts(ctx: "RenderContext", exclude_padding: bool,
                  truncate: bool) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    counts = _stored_counts(ctx)
    if counts is None:
        return None
    assert ctx.format is not None  # counted: integer data
    stored = ctx.format.domain()
    if exclude_padding and ctx.pixel_padding is not None:
        low, high = ctx.pixel_padding
        counts[(stored >= low) & (stored <= high)] = 0
    present = counts > 0
    values = ctx.transform.values(stored[present])
    if truncate:
        values = np.trunc(values)
    finite = np.isfinite(values)  # a rescale or modality LUT that overflows float64
    return (values, counts[present]) if finite.all() else (values[finite], counts[present][finite])


# ---- order statistics of values streamed block by block ----------------------------------------------
#
# Percentiles and the histogram walk need a few values of the sorted order, not the sorted values:
# each is found by radix selection over the float64 bit patterns (made to sort as the values do),
# 16 bits a pass, until few enough values are left to sort.  Every pass streams the blocks again,
# so the memory is a few blocks and a 2**16 histogram whatever the image size.

#: Values kept to finish a selection by sorting (8 bytes each); with more, one more pass narrows them.
_CANDIDATES = 1 << 21
_DIGIT = 16
_SIGN = np.uint64(1 << 63)

Blocks = Callable[[], Iterable[np.ndarray]]


def _keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys that sort as the float64 ``values`` do (-0.0 as 0.0: numpy's sort keeps them equal):
    the bits of a negative value all flipped, those of a positive one with the sign bit set."""
    bits = (values + 0.0).view(np.int64)  # a new array: + 0.0 turns -0.0 into 0.0
    flip = bits >> 63  # -1 for negative values, else 0
    flip &= np.int64(0x7FFFFFFFFFFFFFFF)
    bits ^= flip
    keys = bits.view(np.uint64)
    keys ^= _SIGN
    return keys


def _value_of(key: int) -> float:
    bits = key ^ (1 << 63) if key >= 1 << 63 else ~key & ((1 << 64) - 1)
    return float(np.array(bits, dtype=np.uint64).view(np.float64))


def _scan(blocks: Blocks, histogram: bool = True) -> Tuple[int, float, float, np.ndarray]:
    """``(count, smallest, largest, histogram of the top 16 bits of the keys)`` of the streamed values."""
    total, low, high = 0, math.inf, -math.inf
    counts = np.zeros(1 << _DIGIT if histogram else 0, dtype=np.int64)
    for values in blocks():
        if values.size:
            total += values.size
            low, high = min(low, float(values.min())), max(high, float(values.max()))
            if histogram:
                counts += np.bincount((_keys(values) >> np.uint64(64 - _DIGIT)).astype(np.intp),
                                      minlength=1 << _DIGIT)
    return total, low, high, counts


def _selection(blocks: Blocks) -> Tuple[int, Callable[[Sequence[int]], List[float]]]:
    """``(count, pick)``: how many values ``blocks()`` streams, and ``pick(ranks)``, the values at those
    0-based ranks of their sorted order (each call streams the blocks a few more times)."""
    total, low, high, top = _scan(blocks)

    def pick(ranks: Sequence[int]) -> List[float]:
        found = {0: low, total - 1: high}
        # each rank still open: [prefix of its key, bits fixed, rank among the keys with that prefix, their count]
        open_ranks = {}
        cumulative = np.cumsum(top)
        for rank in set(ranks) - set(found):
            digit = int(np.searchsorted(cumulative, rank, side="right"))
            below = int(cumulative[digit - 1]) if digit else 0
            open_ranks[rank] = [digit, _DIGIT, rank - below, int(top[digit])]
        while open_ranks:
            groups: dict = {}
            for rank, (prefix, fixed, _, count) in open_ranks.items():
                groups.setdefault((prefix, fixed, count <= _CANDIDATES), []).append(rank)
            gathered: dict = {group: [] for group in groups if group[2]}
            histograms = {group: np.zeros(1 << _DIGIT, dtype=np.int64) for group in groups if not group[2]}
            for values in blocks():
                keys = _keys(values)
                tops: dict = {}  # the fixed bits of every key, per number of bits fixed
                for prefix, fixed, small in groups:
                    if fixed not in tops:
                        tops[fixed] = keys >> np.uint64(64 - fixed)
                    chosen = keys[tops[fixed] == prefix]
                    if small:
                        gathered[(prefix, fixed, small)].append(chosen)
                    else:
                        digits = (chosen >> np.uint64(64 - fixed - _DIGIT)) & np.uint64((1 << _DIGIT) - 1)
                        histograms[(prefix, fixed, small)] += np.bincount(digits.astype(np.intp),
                                                                           minlength=1 << _DIGIT)
            for group, members in groups.items():
                prefix, fixed, small = group
                if small:
                    keys = np.concatenate(gathered[group])
                    within = sorted(open_ranks[rank][2] for rank in members)
                    keys.partition(within)
                    for rank in members:
                        found[rank] = _value_of(int(keys[open_ranks.pop(rank)[2]]))
                    continue
                cumulative = np.cumsum(histograms[group])
                for rank in members:
                    state = open_ranks[rank]
                    digit = int(np.searchsorted(cumulative, state[2], side="right"))
                    below = int(cumulative[digit - 1]) if digit else 0
                    state[:] = [prefix << _DIGIT | digit, fixed + _DIGIT, state[2] - below,
                                int(histograms[group][digit])]
                    if state[1] == 64:  # every bit fixed: the key itself
                        found[rank] = _value_of(state[0])
                        del open_ranks[rank]
        return [found[rank] for rank in ranks]

    return total, pick


def minmax_window(ctx: "RenderContext") -> list:
    """Min-max window of the modality values, exactly as ``dcm2pnm +Wm``.

    c = (min + max + 1) / 2, w = max - min + 1 over every pixel of the frames
    rendered (Pixel Padding included, as dcmtk does), modality values of
    integer images truncated toward zero as in dcmtk's integer intermediate
    image.  Source: dcmtk ``DiMonoPixelTemplate::getMinMaxWindow``.
    """
    return _minmax([ctx])


def _minmax(ctxs: Contexts) -> list:
    bounds = _value_range(ctxs, exclude_padding=False)
    if bounds is None:  # only NaN and +-inf (float data)
        return [range_window(0.0, 0.0, "Min-Max Window")]
    return [range_window(bounds[0], bounds[1], "Min-Max Window")]


def auto_window(ctx: "RenderContext") -> list:
    """Min-max window ignoring Pixel Padding Value/Range.

    The same window as :func:`minmax_window` (and ``dcm2pnm +Wm``) on images
    without padding pixels; on images whose padding (e.g. -2000 outside the CT
    field of view) is the darkest value, the padding does not stretch the
    window.  Falls back to :func:`minmax_window` when every pixel is padding.
    """
    return _auto([ctx])


def _auto(ctxs: Contexts) -> list:
    bounds = _value_range(ctxs, exclude_padding=True)
    if bounds is None:
        return _minmax(ctxs)
    return [range_window(bounds[0], bounds[1], "Auto Window")]


def _value_range(ctxs: Contexts, exclude_padding: bool) -> Optional[Tuple[float, float]]:
    """Smallest and largest modality value in dcmtk's view, or None when no pixel has a finite one."""
    counted = _value_counts(ctxs, exclude_padding)
    if counted is not None:
        values = counted[0]
        return (float(values.min()), float(values.max())) if values.size else None
    total, low, high = _scan(lambda: _dcmtk_blocks(ctxs, exclude_padding), histogram=False)[:3]
    return (low, high) if total else None


def _option_number(options: dict, key: str, default: float) -> float:
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PresetError(f"{key} must be a number, got {value!r}", attribute=key) from None
    if not math.isfinite(number):
        raise PresetError(f"{key} must be finite, got {value!r}", attribute=key)
    return number


def histogram_percent_option(options: dict) -> float:
    """The ``histogram_percent=`` option (default :data:`DEFAULT_HISTOGRAM_PERCENT`), checked: 0..100."""
    percent = _option_number(options, "histogram_percent", DEFAULT_HISTOGRAM_PERCENT)
    if not 0 <= percent <= 100:
        raise PresetError(f"histogram_percent must be 0..100, got {percent:g}", attribute="histogram_percent")
    return percent


def histogram_ends(occupied: np.ndarray, quant: np.ndarray, threshold: int) -> Tuple[int, int]:
    """The bins where dcmtk's walk in from each end reaches ``threshold`` pixels (``occupied``: the
    occupied bins in order, ``quant``: their pixel counts)."""
    first = occupied[np.searchsorted(np.cumsum(quant), threshold, side="left")]
    last = occupied[::-1][np.searchsorted(np.cumsum(quant[::-1]), threshold, side="left")]
    return int(first), int(last)


def histogram_limits(low: int, high: int, threshold: int, ends: Tuple[int, int]) -> Optional[Tuple[int, int]]:
    """The value range of dcmtk's histogram window (``DiMonoPixelTemplate::getHistogramWindow``), or None
    where dcmtk finds none (the caller falls back to min-max).  dcmtk's walk is asymmetric and kept as
    is: the low end is one value above the bin where the count is reached, the high end that bin."""
    if low >= high:
        return None
    n = high - low + 1
    if threshold == 0:
        start, stop = 0, n
    else:
        start = min(ends[0] - low + 1, n)
        stop = max(ends[1] - low, 0)
    minvalue = low + start if start < n else 0
    maxvalue = low + stop if stop > 0 else 0
    return None if minvalue >= maxvalue else (minvalue, maxvalue)


def percentile_option(options: dict) -> Tuple[float, float]:
    """The ``percentiles=(low, high)`` option (default :data:`DEFAULT_PERCENTILES`), checked."""
    percentiles = options.get("percentiles", DEFAULT_PERCENTILES)
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise PresetError(f"percentiles must be (low, high), got {percentiles!r}", attribute="percentiles") from None
    if not 0 <= low < high <= 100:
        raise PresetError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}",
                          attribute="percentiles")
    return low, high


def percentile_window(ctx: "RenderContext") -> list:
    """Window from the low and high percentiles of the modality values.

    ``render(..., "percentile", percentiles=(1, 99))`` (the default): values at
    or below the 1st percentile render black, values at or above the 99th
    white.  Pixels equal to the Pixel Padding Value (or inside the Pixel
    Padding Range), NaN and +-inf are ignored.  Percentiles use numpy's default
    (linear) interpolation: ``numpy.percentile(values, (lo, hi))``.
    """
    return _percentile([ctx])


def _percentile(ctxs: Contexts) -> list:
    low, high = percentile_option(ctxs[0].options)
    counted = _value_counts(ctxs, exclude_padding=True, truncate=False)
    pick: Callable[[Sequence[int]], List[float]]
    if counted is not None:
        values, counts = counted
        order = np.argsort(values, kind="stable")
        ordered, cumulative = values[order], np.cumsum(counts[order])
        total = int(cumulative[-1]) if cumulative.size else 0

        def pick(ranks: Sequence[int]) -> List[float]:
            return [float(ordered[np.searchsorted(cumulative, rank, side="right")]) for rank in ranks]
    else:
        total, pick = _selection(lambda: _dcmtk_blocks(ctxs, exclude_padding=True, truncate=False))
    if total == 0:
        raise PresetError("no pixel values to take percentiles of: every pixel is Pixel Padding, NaN or +-inf",
                          attribute="PixelPaddingValue")
    lo, hi = _percentiles(total, (low, high), pick)
    return [range_window(lo, hi, f"Percentile {low:g}-{high:g}")]


def _percentiles(total: int, percents: Sequence[float], pick: Callable[[Sequence[int]], List[float]]) -> List[float]:
    """``numpy.percentile(values, percents)`` (linear interpolation) of ``total`` values of which ``pick``
    gives those at 0-based ranks of the sorted order: numpy's own arithmetic, step by step."""
    virtual = (total - 1) * np.true_divide(np.asarray(percents, dtype=np.float64), 100)
    previous = np.minimum(np.floor(virtual), total - 1).astype(np.intp)
    following = np.minimum(previous + 1, total - 1)
    gamma = virtual - previous
    needed = sorted(set(previous.tolist()) | set(following.tolist()))
    value_at = dict(zip(needed, pick(needed)))
    result = []
    for p, f, t in zip(previous.tolist(), following.tolist(), gamma.tolist()):
        a, b = np.float64(value_at[p]), np.float64(value_at[f])
        diff = b - a
        result.append(float(b - diff * (1 - t) if t >= 0.5 else a + diff * t))
    return result


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
    return _histogram([ctx])


def _histogram(ctxs: Contexts) -> list:
    percent = histogram_percent_option(ctxs[0].options)
    counted = _value_counts(ctxs, exclude_padding=False)
    if counted is None:  # every pixel's value, streamed: the ends of the walk are order statistics
        total, pick = _selection(lambda: _dcmtk_blocks(ctxs, exclude_padding=False))
        if total == 0:
            return _minmax(ctxs)
        low_value, high_value = pick([0, total - 1])
        if not (abs(low_value) < 2.0 ** 62 and abs(high_value) < 2.0 ** 62):  # beyond int64: no histogram
            return _minmax(ctxs)
        low, high = int(low_value), int(high_value)  # float data: one bin per integer
        threshold = int(percent / 100.0 * total)
        picked = pick([threshold - 1, total - threshold]) if threshold else [low, high]
        ends = (int(np.trunc(picked[0])), int(np.trunc(picked[1])))
    else:
        values, counts = counted
        if values.size == 0:
            return _minmax(ctxs)
        if not np.all(np.abs(values) < 2.0 ** 62):  # beyond int64: no integer histogram
            return _minmax(ctxs)
        values = np.trunc(values).astype(np.int64)
        low, high = int(values.min()), int(values.max())
        # Only the occupied bins of dcmtk's histogram: the value range can be far larger than the
        # number of pixels (a large Rescale Slope), and empty bins never change the walk.
        occupied, inverse = np.unique(values, return_inverse=True)
        # weights are pixel counts: exact in float64 up to 2**53
        quant = np.bincount(inverse.reshape(-1), weights=counts).astype(np.int64)
        total = int(counts.sum())
        threshold = int(percent / 100.0 * total)
        ends = histogram_ends(occupied, quant, threshold) if threshold else (low, high)
    limits = histogram_limits(low, high, threshold, ends)
    if limits is None:
        return _minmax(ctxs)
    return [range_window(float(limits[0]), float(limits[1]), f"Histogram Window {percent:g}%")]


#: The values of ``render(..., voi=)``: which of a header window and a VOI LUT applies when the header has both.
VOI_CHOICES = ("window", "lut")


@dataclass(frozen=True)
class HeaderChoice:
    """What the header gives for a group of frames: the VOI (None when it has no usable one: the caller
    computes :func:`auto_window`), which kind (``"window"``, ``"lut"`` or ``"none"``), the item chosen
    (0-based ``index`` of ``count``), why, and the warnings about skipped items (invalid windows)."""

    voi: Optional[VOI]
    kind: str
    index: int = 0
    count: int = 0
    reason: str = ""
    warnings: Tuple[HeaderWindowWarning, ...] = ()


def _voi_option(options: dict) -> Optional[str]:
    value = options.get("voi")
    if value is None:
        return None
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in VOI_CHOICES:
        raise InvalidArgumentError(f"voi must be one of {', '.join(map(repr, VOI_CHOICES))}, got {value!r}",
                                   attribute="voi")
    return text


def _usable(windows: Sequence[HeaderWindow], index: int, skipped: List[HeaderWindowWarning]) -> Optional[Window]:
    """Header window ``index`` as a :class:`Window`, or None (and a warning) when its values are invalid
    (width below 1 for LINEAR, NaN...): dcmtk skips such a window too."""
    item = windows[index]
    try:
        return item.to_window()
    except InvalidWindowError as exc:
        skipped.append(HeaderWindowWarning(
            f"header window {index + 1} of {len(windows)} (WindowCenter {item.center}, WindowWidth {item.width}, "
            f"{item.function}) is invalid and skipped: {exc.detail}", attribute=exc.attribute or "WindowWidth"))
        return None


def _explained(item) -> str:
    return f" ({item.explanation!r})" if getattr(item, "explanation", None) else ""


def header_choice(ctx: "RenderContext") -> HeaderChoice:
    """The header's VOI for the frames of ``ctx``, and why (see :func:`header_window`)."""
    windows, luts = ctx.windows, ctx.voi_luts
    prefer = _voi_option(ctx.options)
    explanation = ctx.options.get("voi_explanation")
    index = ctx.options.get("voi_index", 0)
    try:
        index = int(index)
    except (TypeError, ValueError):
        raise InvalidWindowError(f"voi_index must be an integer, got {index!r}", attribute="voi_index") from None
    skipped: List[HeaderWindowWarning] = []
    lut_first = prefer == "lut" and bool(luts)
    if explanation is not None:
        wanted = str(explanation).strip().upper()
        kinds = (("lut", luts), ("window", windows)) if lut_first else (("window", windows), ("lut", luts))
        for kind, items in kinds:
            for i in range(len(items)):
                item = items[i]
                if (item.explanation or "").strip().upper() != wanted:
                    continue
                voi: Optional[VOI] = _usable(windows, i, skipped) if kind == "window" else luts[i]
                if voi is None:
                    return _fallback(luts, skipped, f"the window explained as {explanation!r} is invalid")
                return HeaderChoice(voi, kind, i, len(items), f"explained as {explanation!r} (voi_explanation=)")
        known = [repr(w.explanation) for w in windows if w.explanation] + \
            [repr(v.explanation) for v in luts if v.explanation]
        raise InvalidWindowError(f"no window or VOI LUT explained as {explanation!r} "
                                 f"(the header has {', '.join(known) or 'no explanations'})",
                                 attribute="WindowCenterWidthExplanation")
    why = "chosen by voi_index=" if "voi_index" in ctx.options else "the default (the first)"
    if windows and not lut_first:
        if not 0 <= index < len(windows):
            raise InvalidWindowError(f"voi_index {index} out of range: the header has {len(windows)} window(s)",
                                     attribute="WindowCenter")
        voi = _usable(windows, index, skipped)
        if voi is None:
            return _fallback(luts, skipped, f"header window {index + 1} is invalid")
        both = " (the header also has a VOI LUT: voi='lut' applies it)" if luts else ""
        return HeaderChoice(voi, "window", index, len(windows), f"{why}{both}")
    if luts:
        if not 0 <= index < len(luts):
            raise InvalidWindowError(f"voi_index {index} out of range: the header has {len(luts)} VOI LUT(s)",
                                     attribute="VOILUTSequence")
        why = "voi='lut' (the header also has a window)" if lut_first and windows else why
        return HeaderChoice(luts[index], "lut", index, len(luts), why)
    return HeaderChoice(None, "none", reason="the header has no window and no VOI LUT")


def _fallback(luts, skipped: List[HeaderWindowWarning], problem: str) -> HeaderChoice:
    """What the header gives once an invalid window is skipped: as if it had none."""
    if luts:
        return HeaderChoice(luts[0], "lut", 0, len(luts), f"{problem}: its first VOI LUT instead", tuple(skipped))
    return HeaderChoice(None, "none", reason=f"{problem} and there is no VOI LUT", warnings=tuple(skipped))


def header_window(ctx: "RenderContext") -> list:
    """The file's own window, else its VOI LUT, else :func:`auto_window`.

    ``voi_index`` (0-based, default 0) or ``voi_explanation`` (matched
    case-insensitively against Window Center & Width Explanation, then LUT
    Explanation) choose among several; ``render(..., voi_index=1)`` is
    ``dcm2pnm +Wi 2``.  When the header has both windows and VOI LUTs,
    the window applies unless ``voi="lut"`` (``voi="window"``: the window).
    Per-frame windows of enhanced multi-frame images (Frame VOI LUT
    Sequence) take precedence over the top level.  A header window that
    cannot be used (width below 1 with LINEAR, NaN...) is skipped with a
    :class:`~dicomrender.errors.HeaderWindowWarning`, as dcmtk skips it: the
    header's VOI LUT applies instead, else :func:`auto_window`.
    """
    choice = header_choice(ctx)
    filename = getattr(ctx.dataset, "filename", None)
    for warning in choice.warnings:
        warnings.warn(warning.with_filename(filename if isinstance(filename, str) else None), stacklevel=2)
    return [choice.voi] if choice.voi is not None else auto_window(ctx)


#: The data-driven presets computed over several groups of frames at once.
_POOLED: Dict[Callable, Callable[[Contexts], list]] = {
    minmax_window: _minmax, auto_window: _auto, percentile_window: _percentile, histogram_window: _histogram}


def is_data_driven(compute: Optional[Callable]) -> bool:
    """Whether ``compute`` is one of the built-in data-driven windows (computed from the pixels)."""
    return compute in _POOLED


def pooled_window(compute: Callable, ctxs: Contexts) -> Optional[list]:
    """The window of the data-driven preset ``compute`` (one of this module's) over every frame of every
    context in ``ctxs`` at once, in modality values; None for any other ``compute``."""
    pooled = _POOLED.get(compute)
    return None if pooled is None else pooled(ctxs)
