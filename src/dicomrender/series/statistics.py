"""Data-driven windows computed once over a whole series, so that every slice gets the same window.

A preset such as ``minmax`` computed slice by slice gives each slice its own window: the same tissue
changes grey level from one slice to the next.  Over a series these windows are computed once, from
the modality values of every pixel of every slice (each slice through its own modality transform:
Rescale Slope/Intercept or Modality LUT), with exactly the rules of the single-image presets of
:mod:`dicomrender.presets.windows`, as if the series were one multi-frame image:

- ``minmax``: min and max of the modality values of all pixels (integer data truncated toward zero
  as dcmtk does), ``c = (min + max + 1) / 2``, ``w = max - min + 1``;
- ``auto``: the same without each slice's Pixel Padding Value/Range pixels;
- ``histogram``: dcmtk's histogram walk over the histogram of all pixels;
- ``percentile``: numpy's linear percentiles of all pixel values (padding and non-finite values left
  out), computed from the histogram exactly as ``numpy.percentile`` would on the whole array.

Memory stays small: integer data of at most 16 stored bits is counted per stored value and
transform (one 2**bits histogram per distinct transform); other data keeps its distinct values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .._types import Modality, StoredFormat, Window
from ..errors import PresetError
from ..presets.windows import (
    histogram_ends,
    histogram_limits,
    histogram_percent_option,
    percentile_option,
    range_window,
)

__all__ = ["SeriesCounts", "series_window", "KINDS"]

#: The data-driven presets computed over the whole series.
KINDS = ("minmax", "auto", "percentile", "histogram")

_CHUNK = 1 << 20


def _transform_key(modality: Modality):
    return modality if not hasattr(modality, "key") else modality.key()


@dataclass
class SeriesCounts:
    """How many pixels of the series have each value: per stored value and transform where it can."""

    #: (format, transform key, padding) -> [format, transform, padding, counts per stored bit pattern]
    counted: Dict[tuple, list] = field(default_factory=dict)
    #: (transform key, padding) -> [transform, padding, distinct stored values, their counts] (float, > 16 bits)
    listed: Dict[tuple, list] = field(default_factory=dict)
    pixels: int = 0

    def add(self, words: np.ndarray, fmt: Optional[StoredFormat], modality: Modality,
            padding: Optional[Tuple[int, int]]) -> None:
        """Count the pixels of one slice (its allocated words, format, transform and padding)."""
        self.pixels += words.size
        if fmt is not None and fmt.bits_stored <= 16:
            key = (fmt.bits_stored, fmt.high_bit, fmt.signed, _transform_key(modality), padding)
            entry = self.counted.get(key)
            size = 1 << fmt.bits_stored
            if entry is None:
                entry = self.counted[key] = [fmt, modality, padding, np.zeros(size, dtype=np.int64)]
            flat = np.ascontiguousarray(words).view(fmt.unsigned_dtype).reshape(-1)
            for start in range(0, flat.size, _CHUNK):
                chunk = flat[start:start + _CHUNK]
                entry[3] += np.bincount((chunk >> fmt.shift) & (size - 1), minlength=size)
            return
        stored = words.astype(np.float64).reshape(-1) if fmt is None else fmt.stored(words).reshape(-1)
        distinct, counts = np.unique(stored, return_counts=True)
        listed_key = (_transform_key(modality), padding, fmt is None)
        entry = self.listed.get(listed_key)
        if entry is None:
            self.listed[listed_key] = [modality, padding, distinct, counts, fmt is None]
        else:
            merged, inverse = np.unique(np.concatenate([entry[2], distinct]), return_inverse=True)
            entry[3] = np.bincount(inverse, weights=np.concatenate([entry[3], counts])).astype(np.int64)
            entry[2] = merged

    def merge(self, other: "SeriesCounts") -> "SeriesCounts":
        """Add the counts of another part of the series (a worker's) to these."""
        for key, (fmt, modality, padding, counts) in other.counted.items():
            entry = self.counted.get(key)
            if entry is None:
                self.counted[key] = [fmt, modality, padding, counts.copy()]
            else:
                entry[3] += counts
        for key, (modality, padding, distinct, counts, is_float) in other.listed.items():
            entry = self.listed.get(key)
            if entry is None:
                self.listed[key] = [modality, padding, distinct, counts, is_float]
            else:
                merged, inverse = np.unique(np.concatenate([entry[2], distinct]), return_inverse=True)
                entry[3] = np.bincount(inverse, weights=np.concatenate([entry[3], counts])).astype(np.int64)
                entry[2] = merged
        self.pixels += other.pixels
        return self

    def values(self, exclude_padding: bool, truncate: bool) -> Tuple[np.ndarray, np.ndarray]:
        """Sorted distinct modality values of the series and how many pixels have each.

        ``truncate``: integer data's values truncated toward zero (dcmtk's integer intermediate
        image).  Non-finite values are left out.
        """
        parts: List[Tuple[np.ndarray, np.ndarray]] = []
        for fmt, modality, padding, counts in self.counted.values():
            stored = fmt.domain()
            counts = counts.copy()
            if exclude_padding and padding is not None:
                counts[(stored >= padding[0]) & (stored <= padding[1])] = 0
            present = counts > 0
            v = modality.values(stored[present])
            parts.append((np.trunc(v) if truncate else v, counts[present]))
        for modality, padding, distinct, counts, is_float in self.listed.values():
            keep = np.ones(distinct.size, dtype=bool)
            if exclude_padding and padding is not None and not is_float:
                keep = (distinct < padding[0]) | (distinct > padding[1])
            v = modality.values(distinct[keep])
            parts.append((np.trunc(v) if truncate and not is_float else v, counts[keep]))
        if not parts:
            return np.empty(0), np.empty(0, dtype=np.int64)
        v = np.concatenate([p[0] for p in parts]).astype(np.float64)
        c = np.concatenate([p[1] for p in parts])
        finite = np.isfinite(v)
        merged, inverse = np.unique(v[finite], return_inverse=True)
        totals = np.bincount(inverse.reshape(-1), weights=c[finite], minlength=merged.size).astype(np.int64)
        return merged, totals


def _minmax(counts: SeriesCounts) -> Window:
    values, _ = counts.values(exclude_padding=False, truncate=True)
    if values.size == 0:
        return range_window(0.0, 0.0, "Min-Max Window")
    return range_window(float(values[0]), float(values[-1]), "Min-Max Window")


def _auto(counts: SeriesCounts) -> Window:
    values, _ = counts.values(exclude_padding=True, truncate=True)
    if values.size == 0:
        return _minmax(counts)
    return range_window(float(values[0]), float(values[-1]), "Auto Window")


def _weighted_percentiles(values: np.ndarray, counts: np.ndarray, qs: Tuple[float, float]) -> List[float]:
    """``numpy.percentile(all_values, qs)`` (linear method) from sorted distinct values and their counts."""
    n = int(counts.sum())
    ends = np.cumsum(counts)  # the sorted array holds values[i] at positions ends[i-1] .. ends[i]-1
    result = []
    for q in qs:
        virtual = (n - 1) * np.true_divide(q, 100)
        if virtual >= n - 1:
            result.append(float(values[-1]))
            continue
        previous = int(np.floor(virtual))
        a = values[np.searchsorted(ends, previous, side="right")]
        b = values[np.searchsorted(ends, previous + 1, side="right")]
        gamma = virtual - previous
        diff = b - a
        # numpy's _lerp: a + (b - a) * t, or b - (b - a) * (1 - t) from t = 0.5 on
        result.append(float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma))
    return result


def _percentile(counts: SeriesCounts, options: dict) -> Window:
    low, high = percentile_option(options)
    values, weights = counts.values(exclude_padding=True, truncate=False)
    if values.size == 0:
        raise PresetError("no pixel values to take percentiles of: every pixel of the series is Pixel Padding "
                          "or not finite", attribute="PixelPaddingValue")
    lo, hi = _weighted_percentiles(values, weights, (low, high))
    return range_window(lo, hi, f"Percentile {low:g}-{high:g}")


def _histogram(counts: SeriesCounts, options: dict) -> Window:
    """dcmtk's histogram window over the whole series, as :func:`dicomrender.presets.windows.histogram_window`."""
    percent = histogram_percent_option(options)
    values, weights = counts.values(exclude_padding=False, truncate=True)
    if values.size == 0 or not np.all(np.abs(values) < 2.0 ** 62):
        return _minmax(counts)
    occupied = np.trunc(values).astype(np.int64)  # float data: one bin per integer
    occupied, inverse = np.unique(occupied, return_inverse=True)
    quant = np.bincount(inverse, weights=weights).astype(np.int64)
    low, high = int(occupied[0]), int(occupied[-1])
    threshold = int(percent / 100.0 * int(weights.sum()))
    ends = histogram_ends(occupied, quant, threshold) if threshold else (low, high)
    limits = histogram_limits(low, high, threshold, ends)
    if limits is None:
        return _minmax(counts)
    return range_window(float(limits[0]), float(limits[1]), f"Histogram Window {percent:g}%")


def series_window(kind: str, counts: SeriesCounts, options: dict) -> Window:
    """The ``kind`` window (one of :data:`KINDS`) of the whole series counted in ``counts``."""
    if kind == "minmax":
        return _minmax(counts)
    if kind == "auto":
        return _auto(counts)
    if kind == "percentile":
        return _percentile(counts, options)
    if kind == "histogram":
        return _histogram(counts, options)
    raise ValueError(f"unknown series window {kind!r}")
