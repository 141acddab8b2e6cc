"""The fused windowing engine: parameters, path choice and the public ``window`` call.

A render is described by the stored-value format, one modality transform and
one or more VOI transforms (one per output channel).  For integer data with at
most 16 stored bits the whole chain is composed into one uint8 table per
channel over the stored-value domain, built by :mod:`dicomrender._reference`
itself (so it is exact by construction).  When the chain is a rescale and
LINEAR / LINEAR_EXACT windows, the kernel's float32 affine loop is evaluated
on every value of that domain (with and without a fused multiply-add, the
two forms its loops use) and compared with the table; only when it
matches everywhere (a proof, per parameter set, that it cannot change any
output) does the kernel run it, otherwise it gathers through the table.  A
single window whose table changes over at most 256 stored values is looked
up with byte permutes instead where the CPU has them.  Wider
integers and float data go through the kernel's fused float64 arithmetic,
which evaluates the same expressions in the same order.  Tables, proofs and
parsed ``window()`` arguments are cached, so a repeated call costs about two
microseconds before the loop starts.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from . import _kernel, _reference
from .errors import InvalidDatasetError, InvalidWindowError, PixelDataError

__all__ = [
    "FUNCTIONS",
    "Window",
    "VOILut",
    "Rescale",
    "ModalityLut",
    "StoredFormat",
    "window",
    "render_stored",
    "set_threads",
    "get_threads",
]

FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_FUNCTION_CODE = {name: i for i, name in enumerate(FUNCTIONS)}

#: Largest stored-value domain composed into a lookup table (16 bits: 64 KiB per channel).
LUT_MAX_BITS = 16


@functools.lru_cache(maxsize=64)
def _domain(bits_stored: int, signed: bool) -> np.ndarray:
    # cached: 16-bit domains take ~2 ms to build and every data-driven window asks for one
    patterns = np.arange(1 << bits_stored, dtype=np.int64)
    values = _reference.stored_values(patterns, bits_stored, bits_stored - 1, signed)
    values.setflags(write=False)
    return values


def _finite(value, attribute: str, error=InvalidWindowError) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float64 range
        number = math.inf
    except (TypeError, ValueError):
        raise error(f"{attribute} must be a number, got {value!r}", attribute=attribute) from None
    if not math.isfinite(number):
        raise error(f"{attribute} must be finite, got {number!r}", attribute=attribute)
    return number


@dataclass(frozen=True)
class Window:
    """A VOI window: centre, width and VOI LUT Function (PS3.3 C.11.2.1.2).

    Raises :class:`InvalidWindowError` for NaN/inf values, width < 1 with
    LINEAR and width <= 0 with LINEAR_EXACT or SIGMOID.
    """

    center: float
    width: float
    function: str = "LINEAR"
    explanation: Optional[str] = field(default=None, compare=False)

    def __post_init__(self):
        center = _finite(self.center, "WindowCenter")
        width = _finite(self.width, "WindowWidth")
        function = str(self.function or "LINEAR").strip().upper().replace(" ", "_")
        if function not in _FUNCTION_CODE:
            raise InvalidWindowError(
                f"VOILUTFunction must be one of {', '.join(FUNCTIONS)}, got {self.function!r}",
                attribute="VOILUTFunction",
            )
        if function == "LINEAR" and width < 1:
            raise InvalidWindowError(f"WindowWidth must be >= 1 for LINEAR, got {width:g}", attribute="WindowWidth")
        if function != "LINEAR" and width <= 0:
            raise InvalidWindowError(f"WindowWidth must be > 0 for {function}, got {width:g}", attribute="WindowWidth")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "function", function)

    @property
    def snap(self) -> bool:
        """Whether the rounding rule snaps near-integers (not for SIGMOID: see ``_reference.to_uint8``)."""
        return self.function != "SIGMOID"

    def values(self, x: np.ndarray) -> np.ndarray:
        """Continuous display values in [0, 255] for modality values ``x``."""
        return _reference.voi_values(x, self.center, self.width, self.function)


def _lut_array(data, attribute: str) -> np.ndarray:
    array = np.asarray(data)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        raise InvalidDatasetError(f"{attribute} must be a non-empty 1-D integer table", attribute=attribute)
    array = array.astype(np.int64)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class VOILut:
    """A VOI LUT Sequence item: table, first mapped value and entry bit depth."""

    data: np.ndarray
    first_mapped: int
    bits: int
    explanation: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "data", _lut_array(self.data, "LUTData"))
        if not 1 <= int(self.bits) <= 16:
            raise InvalidDatasetError(f"LUTDescriptor bits must be 8..16, got {self.bits}", attribute="LUTDescriptor")

    #: entry * 255 / (2**bits - 1) is rational: the snap applies.
    snap = True

    def values(self, x: np.ndarray) -> np.ndarray:
        return _reference.voi_lut_values(x, self.data, self.first_mapped, self.bits)

    def key(self):
        return ("voilut", self.data.tobytes(), self.first_mapped, self.bits)


@dataclass(frozen=True)
class Rescale:
    """Modality transform by Rescale Slope and Intercept."""

    slope: float = 1.0
    intercept: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "slope", _finite(self.slope, "RescaleSlope", InvalidDatasetError))
        object.__setattr__(self, "intercept", _finite(self.intercept, "RescaleIntercept", InvalidDatasetError))

    def values(self, stored: np.ndarray) -> np.ndarray:
        return _reference.modality_values(stored, self.slope, self.intercept)

    @property
    def is_integer(self) -> bool:
        return self.slope.is_integer() and self.intercept.is_integer()


@dataclass(frozen=True, eq=False)
class ModalityLut:
    """A Modality LUT Sequence item."""

    data: np.ndarray
    first_mapped: int

    def __post_init__(self):
        object.__setattr__(self, "data", _lut_array(self.data, "LUTData"))

    def values(self, stored: np.ndarray) -> np.ndarray:
        return _reference.apply_lut(stored, self.data, self.first_mapped).astype(np.float64)

    def key(self):
        return ("modlut", self.data.tobytes(), self.first_mapped)

    is_integer = True


@dataclass(frozen=True)
class StoredFormat:
    """How stored values sit in their allocated words (PS3.3 C.7.6.3.1)."""

    bits_allocated: int
    bits_stored: int
    high_bit: int
    signed: bool

    def __post_init__(self):
        if self.bits_allocated not in (8, 16, 32):
            raise InvalidDatasetError(f"BitsAllocated must be 8, 16 or 32, got {self.bits_allocated}",
                                      attribute="BitsAllocated")
        if not 1 <= self.bits_stored <= self.bits_allocated:
            raise InvalidDatasetError(
                f"BitsStored must be 1..BitsAllocated ({self.bits_allocated}), got {self.bits_stored}",
                attribute="BitsStored")
        if not self.bits_stored - 1 <= self.high_bit < self.bits_allocated:
            raise InvalidDatasetError(
                f"HighBit must be {self.bits_stored - 1}..{self.bits_allocated - 1}, got {self.high_bit}",
                attribute="HighBit")

    @property
    def shift(self) -> int:
        return self.high_bit - self.bits_stored + 1

    @property
    def unsigned_dtype(self) -> np.dtype:
        return _UNSIGNED[self.bits_allocated]

    def domain(self) -> np.ndarray:
        """Stored value of every bit pattern ``0 .. 2**bits_stored - 1``, in pattern order (read-only)."""
        return _domain(self.bits_stored, self.signed)

    def stored(self, raw: np.ndarray) -> np.ndarray:
        return _reference.stored_values(raw, self.bits_stored, self.high_bit, self.signed)


_UNSIGNED = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.uint32)}

Modality = Union[Rescale, ModalityLut]
VOI = Union[Window, VOILut]

# ---- threads ---------------------------------------------------------------

def _usable_cpus() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_threads = _usable_cpus()


def set_threads(n: Optional[int]) -> None:
    """Set the default number of kernel threads (``None``: every core this process may use)."""
    global _threads
    if n is None:
        n = _usable_cpus()
    if int(n) < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    _threads = int(n)


def get_threads() -> int:
    """The default number of kernel threads."""
    return _threads


# ---- tables ----------------------------------------------------------------

_TABLE_CACHE: "OrderedDict[tuple, _Compiled]" = OrderedDict()
_TABLE_CACHE_SIZE = 64
_TABLE_LOCK = threading.Lock()


def _transform_key(t):
    # Rescale and Window are frozen dataclasses, hashable by value; LUT items hash their table bytes.
    return t if isinstance(t, (Rescale, Window)) else t.key()


class _Compiled:
    """What a parameter set compiles to: the exact tables, the affine form when proven, and for one
    window whose table changes only over a short run of stored values, that run (see _narrow)."""

    __slots__ = ("tables", "affine", "narrow")

    def __init__(self, tables: np.ndarray, affine: Optional[np.ndarray], narrow: Optional[tuple] = None):
        self.tables = tables
        self.affine = affine
        self.narrow = narrow


#: The same cache keyed by the parameter objects themselves: one dict look-up per call.  Holding
#: the objects keeps them alive, so an identity-hashed LUT item can never alias a new one.
_COMPILED_BY_OBJECT: dict = {}


def _compile(fmt: StoredFormat, modality: Modality, vois: Sequence[VOI], invert: bool) -> _Compiled:
    fast_key = (fmt, modality, tuple(vois), invert)
    compiled = _COMPILED_BY_OBJECT.get(fast_key)
    if compiled is not None:
        return compiled
    compiled = _compile_by_value(fmt, modality, vois, invert)
    with _TABLE_LOCK:
        if len(_COMPILED_BY_OBJECT) >= _TABLE_CACHE_SIZE:
            _COMPILED_BY_OBJECT.clear()
        _COMPILED_BY_OBJECT[fast_key] = compiled
    return compiled


def _compile_by_value(fmt: StoredFormat, modality: Modality, vois: Sequence[VOI], invert: bool) -> _Compiled:
    key = (fmt.bits_stored, fmt.signed, _transform_key(modality), tuple(_transform_key(v) for v in vois), bool(invert))
    with _TABLE_LOCK:
        compiled = _TABLE_CACHE.get(key)
        if compiled is not None:
            _TABLE_CACHE.move_to_end(key)
            return compiled
    m = modality.values(fmt.domain())
    tables = np.empty((len(vois), m.size), dtype=np.uint8)
    for j, voi in enumerate(vois):
        tables[j] = _reference.to_uint8(voi.values(m), invert, voi.snap)
    tables.setflags(write=False)
    compiled = _Compiled(tables, _prove_affine(fmt, modality, vois, invert, tables),
                         _narrow(fmt, tables[0]) if len(vois) == 1 and fmt.bits_allocated <= 16 else None)
    with _TABLE_LOCK:
        _TABLE_CACHE[key] = compiled
        while len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
            _TABLE_CACHE.popitem(last=False)
    return compiled


def _clear_caches() -> None:
    """Forget every compiled table and parsed argument set (for tests and memory measurements)."""
    with _TABLE_LOCK:
        _TABLE_CACHE.clear()
        _COMPILED_BY_OBJECT.clear()
        _WINDOW_PLANS.clear()


#: The kernel's affine path keeps every intermediate below this, far inside int32.
_AFFINE_LIMIT = float(1 << 30)


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
            lower = -_AFFINE_LIMIT / 2
        if below.any():
            upper = min(np.min(t[below] + 1 - p[below]), np.min(t[below] + 1 - exact[below]))
        else:
            upper = _AFFINE_LIMIT / 2
        if not (np.isfinite(lower) and np.isfinite(upper) and lower < upper):
            return None
        b = np.float32((lower + upper) / 2)
        # the kernel also bounds |a| * max|d| + |b| before converting to int32
        bound = abs(float(a)) * float(np.abs(d).max()) + abs(float(b))
        if not bound < _AFFINE_LIMIT:
            return None
        for y in (p + b, _fma_float32(exact, b)):
            if not np.all(np.abs(y) < _AFFINE_LIMIT):
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


def _prove_affine(fmt: StoredFormat, modality: Modality, vois: Sequence[VOI], invert: bool,
                  tables: np.ndarray) -> Optional[np.ndarray]:
    """The (k, 3) parameters of the affine path when it is proven exact for every channel."""
    if not _kernel.HAVE_AFFINE or fmt.bits_allocated > 16 or not isinstance(modality, Rescale) \
            or not all(isinstance(v, Window) for v in vois):
        return None
    pivots = [_preferred_pivot(fmt, modality, v) for v in vois]
    # Several windows first try one shared pivot (the kernel then computes s - pivot once).
    candidates = ([[int(np.median(pivots))] * len(vois)] if len(vois) > 1 else []) + [pivots]
    for candidate in candidates:
        rows = [_affine_channel(fmt, modality, voi, invert, table, pivot)
                for voi, table, pivot in zip(vois, tables, candidate)]
        if all(row is not None for row in rows):
            break
    else:
        return None
    params = np.array(rows, dtype=np.float64)
    params.setflags(write=False)
    return params


#: Longest run of stored values over which a table may change for the narrow path (one byte index).
_NARROW_MAX_RANGE = 255


def _narrow(fmt: StoredFormat, table: np.ndarray) -> Optional[tuple]:
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
        tail = by_value[start + _NARROW_MAX_RANGE:]
        if tail.size and (tail[0] != by_value[-1] or np.any(tail != by_value[-1])):
            return None
        stop = size - 1 - int(np.argmax(by_value[::-1] != by_value[-1])) + 1
    small = np.zeros(256, dtype=np.uint8)
    small[: stop - start + 1] = by_value[start: stop + 1]
    small.setflags(write=False)
    low = start - size // 2 + 32768 if fmt.signed else start
    return small, low, stop - start


def _run_compiled(compiled: _Compiled, words: np.ndarray, out: np.ndarray, fmt: StoredFormat, nthreads: int,
                  path: str = "table") -> None:
    """Run the kernel loop for integer words: ``path`` "table" picks the fastest exact one (the narrow
    table where the CPU has byte permutes, else the proven affine loop, else the table gather);
    "narrow", "affine" and "lut" force one."""
    narrow = compiled.narrow
    if narrow is not None and (path == "narrow" or (path == "table" and _kernel.narrow_fast())):
        _kernel.narrow(words, narrow[0], narrow[1], narrow[2], out, fmt.shift, fmt.bits_stored, fmt.signed, nthreads)
    elif compiled.affine is not None and path in ("table", "affine"):
        _kernel.affine(words, compiled.affine, out, fmt.shift, fmt.bits_stored, fmt.signed, nthreads)
    else:
        _kernel.gather(words, compiled.tables, out, fmt.shift, (1 << fmt.bits_stored) - 1, nthreads)


def _params(modality: Rescale, vois: Sequence[Window], invert: bool) -> np.ndarray:
    return np.array(
        [[modality.slope, modality.intercept, v.center, v.width, _FUNCTION_CODE[v.function], int(invert)] for v in vois],
        dtype=np.float64,
    )


_UINT8 = np.dtype(np.uint8)


def _prepare_out(out: Optional[np.ndarray], shape: tuple) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=_UINT8)
    if not isinstance(out, np.ndarray) or out.dtype != _UINT8 or out.shape != shape or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError(f"out must be a writeable C-contiguous uint8 array of shape {shape}")
    return out


def render_stored(raw: np.ndarray, fmt: Optional[StoredFormat], modality: Modality, vois: Sequence[VOI], *,
                  invert: bool = False, out: Optional[np.ndarray] = None, threads: Optional[int] = None,
                  path: str = "auto") -> np.ndarray:
    """Render allocated words ``raw`` (any shape) to uint8.

    Returns ``raw.shape`` for one VOI, ``raw.shape + (len(vois),)`` for several.
    ``fmt`` is ``None`` for float data.  ``path`` forces ``"lut"`` (table
    gather), ``"affine"`` (the float32 affine loop, only where it is proven
    exact), ``"narrow"`` (byte-permute lookup of a table that changes over at
    most 256 stored values, one window), ``"arithmetic"`` (fused float64) or
    ``"reference"`` (for tests and benchmarks); ``"auto"`` takes, for integer
    data with at most 16 stored bits, the narrow lookup where it applies and the
    CPU has byte permutes, else the affine loop where proven, else the gather.
    """
    k = len(vois)
    if not 1 <= k <= _kernel.MAX_WINDOWS:
        raise InvalidWindowError(f"between 1 and {_kernel.MAX_WINDOWS} windows are needed, got {k}",
                                 attribute="WindowCenter")
    if type(raw) is not np.ndarray:
        raw = np.asarray(raw)
    dtype = raw.dtype
    if not dtype.isnative:
        # the table and integer paths reinterpret the words' bytes, so they must be in native order
        raw = raw.astype(dtype.newbyteorder("="))
        dtype = raw.dtype
    shape = raw.shape if k == 1 else raw.shape + (k,)
    result = _prepare_out(out, shape)
    nthreads = _threads if threads is None else max(1, int(threads))
    kind = dtype.kind
    is_float = kind == "f"
    if is_float != (fmt is None) or kind not in "fiu" or dtype.itemsize not in (1, 2, 4, 8) \
            or (not is_float and dtype.itemsize * 8 != fmt.bits_allocated):
        raise PixelDataError(f"pixel array of dtype {dtype} does not match the declared format {fmt}",
                             attribute="BitsAllocated")
    if path == "auto":
        if not is_float and fmt.bits_stored <= LUT_MAX_BITS:
            path = "table"
        elif isinstance(modality, Rescale) and all(isinstance(v, Window) for v in vois):
            path = "arithmetic"
        else:
            path = "reference"
    flat_out = result.reshape(-1)
    if path == "reference":
        x = modality.values(raw.astype(np.float64) if is_float else fmt.stored(raw))
        for j, voi in enumerate(vois):
            channel = _reference.to_uint8(voi.values(x), invert, voi.snap)
            if k == 1:
                result[...] = channel
            else:
                result[..., j] = channel
        return result
    if path in ("table", "lut", "affine", "narrow"):
        if is_float or fmt.bits_stored > LUT_MAX_BITS:
            raise ValueError(f"the {path} path needs integer data with at most 16 stored bits")
        compiled = _compile(fmt, modality, vois, invert)
        words = (raw if raw.flags.c_contiguous else np.ascontiguousarray(raw)).view(fmt.unsigned_dtype).reshape(-1)
        if path == "affine" and compiled.affine is None:
            raise ValueError("the affine path is not proven exact for these parameters")
        if path == "narrow" and compiled.narrow is None:
            raise ValueError("the narrow path needs one window whose table changes over at most 256 stored values")
        _run_compiled(compiled, words, flat_out, fmt, nthreads, path)
        return result
    if path != "arithmetic":
        raise ValueError(f"unknown path {path!r}")
    if not isinstance(modality, Rescale) or not all(isinstance(v, Window) for v in vois):
        raise ValueError("the arithmetic path takes a rescale and centre/width windows only")
    params = _params(modality, vois, invert)
    if is_float:
        data = np.ascontiguousarray(raw).reshape(-1)  # native order already (above)
        _kernel.arithmetic(data, params, flat_out, 0, 32, False, nthreads)
    else:
        words = np.ascontiguousarray(raw).view(fmt.unsigned_dtype).reshape(-1)
        _kernel.arithmetic(words, params, flat_out, fmt.shift, fmt.bits_stored, fmt.signed, nthreads)
    return result


def _as_windows(center, width, function) -> list:
    centers = np.atleast_1d(np.asarray(center, dtype=object))
    widths = np.atleast_1d(np.asarray(width, dtype=object))
    functions = [function] * len(centers) if isinstance(function, (str, type(None))) else list(function)
    if not (len(centers) == len(widths) == len(functions)):
        raise InvalidWindowError("center, width and function must have the same number of values",
                                 attribute="WindowWidth")
    return [Window(c, w, f or "LINEAR") for c, w, f in zip(centers, widths, functions)]


#: Parsed window() arguments, so repeated calls skip validation (a few microseconds per call).
_WINDOW_PLANS: dict = {}


def _integer(value, attribute: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidDatasetError(f"{attribute} must be an integer, got {value!r}", attribute=attribute) from None


def _window_plan(dtype: np.dtype, center, width, function, slope, intercept, bits_stored, high_bit, signed) -> tuple:
    """Validate window() arguments once: (StoredFormat or None, Rescale, [Window, ...])."""
    if dtype.kind not in "iuf" or dtype.itemsize not in (1, 2, 4, 8) \
            or (dtype.kind in "iu" and dtype.itemsize == 8) \
            or (dtype.kind == "f" and dtype.itemsize < 4):
        raise TypeError(f"window() takes 8/16/32-bit integer or float32/float64 arrays, got {dtype}")
    vois = _as_windows(center, width, function)
    if not 1 <= len(vois) <= _kernel.MAX_WINDOWS:  # checked here too: cached plans skip render_stored
        raise InvalidWindowError(f"between 1 and {_kernel.MAX_WINDOWS} windows are needed, got {len(vois)}",
                                 attribute="WindowCenter")
    modality = Rescale(slope, intercept)
    if dtype.kind == "f":
        fmt = None
    else:
        allocated = dtype.itemsize * 8
        bits = allocated if bits_stored is None else _integer(bits_stored, "BitsStored")
        fmt = StoredFormat(allocated, bits, bits - 1 if high_bit is None else _integer(high_bit, "HighBit"),
                           dtype.kind == "i" if signed is None else bool(signed))
    return fmt, modality, tuple(vois)


def window(array: np.ndarray, center, width, *, slope: float = 1.0, intercept: float = 0.0,
           function: Union[str, Sequence[str]] = "LINEAR", invert: bool = False,
           bits_stored: Optional[int] = None, high_bit: Optional[int] = None, signed: Optional[bool] = None,
           out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """Window an array of stored values to uint8 in one fused pass.

    Parameters
    ----------
    array : numpy.ndarray
        Stored values: uint8, int8, uint16, int16, uint32, int32, float32 or
        float64, any shape.  Non-contiguous input is copied first.
    center, width : float or sequence of float
        The window.  Sequences of equal length (up to 4) give one output
        channel per window, stacked on a new last axis, from one pass.
    slope, intercept : float
        Rescale Slope and Intercept applied to the stored values first.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        VOI LUT Function (one, or one per window).
    invert : bool
        Invert the output (MONOCHROME1 presentation).
    bits_stored, high_bit, signed : int, int, bool, optional
        Which bits of each integer word hold the stored value and whether it
        is two's complement.  Default: every bit of the dtype, and the dtype's
        signedness.  Bits above ``high_bit`` are ignored.
    out : numpy.ndarray, optional
        A C-contiguous uint8 array of the output shape to write into.
    threads : int, optional
        Kernel threads; default :func:`get_threads`.

    Returns
    -------
    numpy.ndarray
        uint8, ``array.shape`` (one window) or ``array.shape + (n,)``.
    """
    if type(array) is not np.ndarray:
        array = np.asarray(array)
    dtype = array.dtype
    try:
        key = (dtype, tuple(center) if type(center) is list else center, tuple(width) if type(width) is list else width,
               tuple(function) if type(function) is list else function, slope, intercept, bits_stored, high_bit,
               signed, invert)
        plan = _WINDOW_PLANS.get(key)
    except TypeError:  # windows given as arrays (or lists of unhashable items): parse every time
        key = plan = None
    if plan is None:
        fmt, modality, vois = _window_plan(dtype, center, width, function, slope, intercept, bits_stored, high_bit,
                                           signed)
        compiled = None
        if fmt is not None and fmt.bits_stored <= LUT_MAX_BITS and dtype.isnative \
                and 1 <= len(vois) <= _kernel.MAX_WINDOWS:  # otherwise render_stored raises the error
            compiled = _compile(fmt, modality, vois, bool(invert))
        plan = (fmt, modality, vois, compiled)
        if key is not None:
            with _TABLE_LOCK:
                if len(_WINDOW_PLANS) >= _TABLE_CACHE_SIZE:
                    _WINDOW_PLANS.clear()
                _WINDOW_PLANS[key] = plan
    fmt, modality, vois, compiled = plan
    if compiled is not None and array.flags.c_contiguous:
        # the common case, straight to the kernel: what render_stored would do, minus its checks
        k = len(vois)
        result = _prepare_out(out, array.shape if k == 1 else array.shape + (k,))
        words = array  # the kernel reads integer words as bit patterns, signed or not
        nthreads = _threads if threads is None else max(1, int(threads))
        _run_compiled(compiled, words, result, fmt, nthreads)
        return result
    return render_stored(array, fmt, modality, vois, invert=invert, out=out, threads=threads)
