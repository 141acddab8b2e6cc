"""Data-driven windows: computed from the pixels being rendered (and the header window).

They follow dcmtk (``dcm2pnm``) where dcmtk has an equivalent, so that the same file gives the
same window:

- :func:`minmax_window` is ``dcm2pnm +Wm``;
- :func:`histogram_window` is ``dcm2pnm +Wh n``;
- :func:`auto_window` is ``+Wm`` without the Pixel Padding Value/Range;
- :func:`percentile_window` has no dcmtk equivalent.

All of them are computed over the frames being rendered (``render(..., frame=n)``: that frame;
all frames: every frame sharing the same modality transform), as ``dcm2pnm +F n+1`` / ``+Fa`` do.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from .._types import Window
from ..errors import InvalidWindowError, PresetError

if TYPE_CHECKING:  # pragma: no cover
    from .context import RenderContext

__all__ = ["header_window", "minmax_window", "auto_window", "percentile_window", "histogram_window",
           "DEFAULT_PERCENTILES", "DEFAULT_HISTOGRAM_PERCENT"]

#: Lower and upper percentile of the ``percentile`` preset (``render(..., percentiles=(lo, hi))``).
DEFAULT_PERCENTILES = (1.0, 99.0)

#: Percentage of pixels ignored at each end by the ``histogram`` preset (``histogram_percent=``).
DEFAULT_HISTOGRAM_PERCENT = 5.0

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
    if ctx.format is not None:
        values = np.trunc(values)
    return values


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


def _value_counts(ctx: "RenderContext", exclude_padding: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``(values, counts)``: the modality values in dcmtk's integer view, and how many pixels have each.

    Integer data of at most 16 stored bits is counted per stored value (one
    pass, little memory; each distinct value once, ``counts`` its pixels);
    other data gives every pixel's value and ``counts`` None.
    """
    counts = _stored_counts(ctx)
    if counts is None:
        return _dcmtk_values(ctx, exclude_padding), None
    assert ctx.format is not None  # counted: integer data
    stored = ctx.format.domain()
    if exclude_padding and ctx.pixel_padding is not None:
        low, high = ctx.pixel_padding
        counts[(stored >= low) & (stored <= high)] = 0
    present = counts > 0
    values = np.trunc(ctx.transform.values(stored[present]))
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
    windows = ctx.windows
    luts = ctx.voi_luts
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

