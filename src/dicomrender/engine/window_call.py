"""``window()``: the public low-level call, stored values in, uint8 out, in one fused pass.

Arguments are parsed and checked once per distinct set and cached with the compiled tables, so a
repeated call costs about two microseconds before the loop starts; the loop itself is the one
:mod:`.dispatch` runs for :func:`dicomrender.render`.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from .._types import Rescale, StoredFormat, Window
from ..errors import InvalidDatasetError, InvalidWindowError
from .cache import LRUCache
from .compile import CACHE_SIZE, LUT_MAX_BITS, compile_tables
from .dispatch import check_window_count, overlaps, prepare_out, render_stored, table_runner
from .threads import resolve_threads

__all__ = ["window"]

def _as_windows(center, width, function) -> list:
    centers = np.atleast_1d(np.asarray(center, dtype=object))
    widths = np.atleast_1d(np.asarray(width, dtype=object))
    functions = [function] * len(centers) if isinstance(function, (str, type(None))) else list(function)
    if not (len(centers) == len(widths) == len(functions)):
        raise InvalidWindowError("center, width and function must have the same number of values",
                                 attribute="WindowWidth")
    return [Window(c, w, f or "LINEAR") for c, w, f in zip(centers, widths, functions)]


#: Parsed window() arguments, so repeated calls skip validation (a few microseconds per call).
_PLANS = LRUCache(CACHE_SIZE)


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
    check_window_count(len(vois))
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
        A C-contiguous uint8 array of the output shape to write into.  It
        may share memory with ``array`` (the result is the same; it is then
        rendered into a temporary and copied, as numpy does).
    threads : int, optional
        Kernel threads; default :func:`get_threads`, else an integer from 1
        to ``MAX_THREADS`` (1024 or the usable cores if more).

    Returns
    -------
    numpy.ndarray
        uint8, ``array.shape`` (one window) or ``array.shape + (n,)``.
    """
    if type(array) is not np.ndarray:
        array = np.asarray(array)
    dtype = array.dtype
    key: Optional[tuple]
    plan: Optional[tuple]
    try:
        key = (dtype, tuple(center) if type(center) is list else center, tuple(width) if type(width) is list else width,
               tuple(function) if type(function) is list else function, slope, intercept, bits_stored, high_bit,
               signed, invert)
        plan = _PLANS.get(key)
    except TypeError:  # windows given as arrays (or lists of unhashable items): parse every time
        key = plan = None
    if plan is None:
        fmt, modality, vois = _window_plan(dtype, center, width, function, slope, intercept, bits_stored, high_bit,
                                           signed)
        runner = None
        if fmt is not None and fmt.bits_stored <= LUT_MAX_BITS and dtype.isnative:
            runner = table_runner(compile_tables(fmt, modality, vois, bool(invert)), fmt)
        plan = (fmt, modality, vois, runner)
        if key is not None:
            _PLANS.put(key, plan)
    fmt, modality, vois, runner = plan
    if runner is not None and array.flags.c_contiguous and (out is None or not overlaps(out, array)):
        # the common case, straight to the table loop (the plan holds what render_stored would check)
        k = len(vois)
        result = prepare_out(out, array.shape if k == 1 else array.shape + (k,))
        runner(array, result, resolve_threads(threads))  # words read as bit patterns
        return result
    return render_stored(array, fmt, modality, vois, invert=invert, out=out, threads=threads)
