"""Proofs that a fast kernel path gives exactly the exact table, per parameter set.

- The float32 affine loop (:func:`prove_affine`): evaluated here, in both forms the kernel
  uses (two roundings in the portable loops, one fused multiply-add in the SIMD loops), on
  every stored value of the domain and compared with the exact table.
- The narrow-table lookup (:func:`narrow_table`): exact by construction (a slice of the table);
  this finds whether the table changes over at most 256 stored values.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._types import VOI, Modality, Rescale, StoredFormat, Window

__all__ = ["prove_affine", "narrow_table", "AFFINE_LIMIT", "NARROW_MAX_RANGE"]

#: The kernel's affine path keeps every intermediate below this, far inside int32.
AFFINE_LIMIT = float(1 << 30)


def _preferred_pivot(fmt: StoredFormat, modality: Rescale, voi: Window) -> int:
    """The stored value at the window centre (clipped to the domain): |s - pivot| * a stays small."""
    x_mid = voi.center - 0.5 if voi.function == "LINEAR" else voi.center
    low = -(1 << (fmt.bits_stored - 1)) if fmt.signed else 0
    high = low + (1 << fmt.bits_stored) - 1
    if modality.slope == 0:
        return 0
    with np.errstate(all="ignore"):
        s = (x_mid - modality.intercept) / modality.slope
    return int(np.clip(np.round(s), low, high)) if np.isfinite(s) else 0


def _affine_channel(fmt: StoredFormat, modality: Rescale, voi: Window, invert: bool,
                    table: np.ndarray, pivot: int) -> Optional[tuple]:
    """(a, b, pivot) of the kernel's float32 affine path for one window, or None.

    A LINEAR or LINEAR_EXACT window after a rescale is ``y = A * (s - pivot) + B``
    before clipping.  The kernel evaluates ``float32(s - pivot) * a + b`` in
    float32 and truncates, either with two roundings (multiply, then add: the
    portable loops) or with one (a fused multiply-add: the SIMD loops); ``b`` is
    placed in the middle of the interval that every table entry allows under
    both.  Both forms are then evaluated here exactly as the kernel does (IEEE
    float32) on every stored value of the domain and must equal the exact table
    everywhere: that is the proof, per parameter set, that the fast path cannot
    change any output on any target.
    """
    slope, w = modality.slope, voi.width
    if voi.function == "LINEAR":
        if w <= 1:
            return None
        scale = 255.0 / (w - 1)
    elif voi.function == "LINEAR_EXACT":
        scale = 255.0 / w
    else:
        return None
    slope_out = -slope * scale if invert else slope * scale
    with np.errstate(over="ignore"):  # a slope beyond float32 becomes inf and is refused just below
        a = np.float32(slope_out)
    if not np.isfinite(a):
        return None
    d = fmt.domain() - pivot
    t = table.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        p = d.astype(np.float32) * a                      # rounded product (multiply, then add)
        exact = d.astype(np.float64) * np.float64(a)     # the fused form's product: exact in float64
        above = t >= 1
        below = t <= 254
        if above.any():
            lower = max(np.max(t[above] - p[above]), np.max(t[above] - exact[above]))
        else:
            lower = -AFFINE_LIMIT / 2
        if below.any():
            upper = min(np.min(t[below] + 1 - p[below]), np.min(t[below] + 1 - exact[below]))
        else:
            upper = AFFINE_LIMIT / 2
        if not (np.isfinite(lower) and np.isfinite(upper) and lower < upper):
            return None
        b = np.float32((lower + upper) / 2)
        # the kernel also bounds |a| * max|d| + |b| before converting to int32
        bound = abs(float(a)) * float(np.abs(d).max()) + abs(float(b))
        if not bound < AFFINE_LIMIT:
            return None
        for y in (p + b, _fma_float32(exact, b)):
            if not np.all(np.abs(y) < AFFINE_LIMIT):
                return None
            if not np.array_equal(np.clip(np.trunc(y), 0, 255).astype(np.uint8), table):
                return None
    return float(a), float(b), pivot


def _fma_float32(product: np.ndarray, b: np.float32) -> np.ndarray:
    """float32(product + b) rounded once, as a float32 fused multiply-add computes it.

    ``product`` is the exact float64 product of a float32 ``d`` and ``a``.  The float64 sum
    can round, and rounding it again to float32 could then differ from one rounding of the
    exact sum, but only where the float64 sum falls exactly on a midpoint between two
    float32 values: there the sign of the float64 rounding error (two-sum) decides.
    """
    b64 = np.float64(b)
    s = product + b64
    bv = s - product
    err = (product - (s - bv)) + (b64 - bv)               # exact: product + b == s + err
    r = s.astype(np.float32)
    towards = np.nextafter(r, np.where(s > r.astype(np.float64), np.float32(np.inf), np.float32(-np.inf)))
    tie = (err != 0) & (r.astype(np.float64) != s) & ((r.astype(np.float64) + towards.astype(np.float64)) / 2 == s)
    if tie.any():
        # the exact sum lies beyond the midpoint on the side of err
        beyond = np.sign(err) == np.sign(towards.astype(np.float64) - r.astype(np.float64))
        r = np.where(tie & beyond, towards, r)
    return r


def prove_affine(fmt: StoredFormat, modality: Modality, vois: Sequence[VOI], invert: bool,
                  tables: np.ndarray) -> Optional[np.ndarray]:
    """The (k, 3) parameters of the affine path when it is proven exact for every channel."""
    windows = [v for v in vois if isinstance(v, Window)]
    if fmt.bits_allocated > 16 or not isinstance(modality, Rescale) or len(windows) != len(vois):
        return None
    pivots = [_preferred_pivot(fmt, modality, v) for v in windows]
    # Several windows first try one shared pivot (the kernel then computes s - pivot once).
    candidates = ([[int(np.median(pivots))] * len(vois)] if len(vois) > 1 else []) + [pivots]
    for candidate in candidates:
        rows = [_affine_channel(fmt, modality, voi, invert, table, pivot)
                for voi, table, pivot in zip(windows, tables, candidate)]
        if all(row is not None for row in rows):
            break
    else:
        return None
    params = np.array(rows, dtype=np.float64)
    params.setflags(write=False)
    return params


#: Longest run of stored values over which a table may change for the narrow path (one byte index).
NARROW_MAX_RANGE = 255


def narrow_table(fmt: StoredFormat, table: np.ndarray) -> Optional[tuple]:
    """(table256, low, range) for the kernel's narrow path, or None.

    ``table`` is indexed by stored bit pattern; ordered by stored value it is constant up to some
    value and from some later value on (a window: 0 below, 255 above).  When at most 256 values lie
    from the last of the first run to the first of the last run, the kernel looks them up with byte
    permutes: ``out = small[min(max(lane - low, 0), range)]``, lane = stored value (+ 32768 when
    signed).  The small table is a slice of the exact table, so the path is exact by construction.
    """
    size = table.size
    # by_value[i]: the entry of stored value i (i - size/2 when signed)
    by_value = np.concatenate((table[size // 2:], table[: size // 2])) if fmt.signed else table
    first = int(np.argmax(by_value != by_value[0]))
    if by_value[first] == by_value[0]:  # a constant table
        start = stop = 0
    else:
        start = first - 1
        # narrow when every value from start + 255 on holds the last entry (tail[0] first: a wide table
        # usually shows it at once)
        tail = by_value[start + NARROW_MAX_RANGE:]
        if tail.size and (tail[0] != by_value[-1] or np.any(tail != by_value[-1])):
            return None
        stop = size - 1 - int(np.argmax(by_value[::-1] != by_value[-1])) + 1
    small = np.zeros(256, dtype=np.uint8)
    small[: stop - start + 1] = by_value[start: stop + 1]
    small.setflags(write=False)
    low = start - size // 2 + 32768 if fmt.signed else start
    return small, low, stop - start
