"""Choosing and running the kernel loop for a parameter set: :func:`render_stored`.

Integer data with at most 16 stored bits goes through a compiled table (:mod:`.compile`): the
narrow byte-permute lookup where it applies and the CPU has it, else the float32 affine loop
where it is proven exact, else the table gather.  Wider integers and float data go through the
kernel's fused float64 arithmetic, which evaluates the reference's expressions in the same order;
anything else (LUTs over float data) through the reference itself.
"""

from __future__ import annotations

import enum
from typing import Callable, Optional, Sequence, Union

import numpy as np

from .. import _kernel, _reference
from .._types import VOI, Modality, Rescale, StoredFormat, Window
from ..errors import InvalidWindowError, PixelDataError
from .compile import LUT_MAX_BITS, Compiled, compile_tables
from .threads import resolve_threads

__all__ = ["Path", "render_stored", "chosen_path", "run_table", "table_runner", "prepare_out", "overlaps",
           "check_window_count", "MAX_WINDOWS"]

#: Most windows (output channels) rendered in one pass.
MAX_WINDOWS = _kernel.MAX_WINDOWS

#: VOI LUT Function name -> the kernel's function code (the names in code order come from the kernel's header).
_FUNCTION_CODE = {name: code for code, name in enumerate(_kernel.FUNCTIONS)}
_UINT8 = np.dtype(np.uint8)


class Path(str, enum.Enum):
    """Which loop renders: ``AUTO`` chooses; the others force one (tests and benchmarks)."""

    AUTO = "auto"
    #: the fastest exact table path (narrow where the CPU has byte permutes, else affine if proven, else gather)
    TABLE = "table"
    LUT = "lut"
    AFFINE = "affine"
    NARROW = "narrow"
    ARITHMETIC = "arithmetic"
    REFERENCE = "reference"


_TABLE_PATHS = (Path.TABLE, Path.LUT, Path.AFFINE, Path.NARROW)


def check_window_count(k: int) -> None:
    """Refuse a number of windows the kernel cannot render in one pass."""
    if not 1 <= k <= MAX_WINDOWS:
        raise InvalidWindowError(f"between 1 and {MAX_WINDOWS} windows are needed, got {k}",
                                 attribute="WindowCenter")


def prepare_out(out: Optional[np.ndarray], shape: tuple) -> np.ndarray:
    """``out`` checked against ``shape``, or a new uint8 array of that shape."""
    if out is None:
        return np.empty(shape, dtype=_UINT8)
    if type(out) is np.ndarray and out.dtype == _UINT8 and out.shape == shape:
        flags = out.flags
        if flags.c_contiguous and flags.writeable:
            return out
    elif isinstance(out, np.ndarray) and out.dtype == _UINT8 and out.shape == shape \
            and out.flags.c_contiguous and out.flags.writeable:  # an ndarray subclass
        return out
    raise ValueError(f"out must be a writeable C-contiguous uint8 array of shape {shape}")


#: Work bound of the exact overlap test (strided views); beyond it the arrays count as overlapping.
_OVERLAP_WORK = 1 << 16


def _root(array: np.ndarray) -> np.ndarray:
    """The array whose memory ``array`` views (itself when it owns its memory or views another object)."""
    base = array.base
    while type(base) is np.ndarray:
        array, base = base, base.base
    return array


def overlaps(out: np.ndarray, words: np.ndarray) -> bool:
    """Whether writing ``out`` may change ``words`` (the caller's ``out=`` over its own input).

    The kernel's threads read and write different chunks at once, so such an ``out`` is rendered
    into a temporary and copied, as numpy does with ufuncs: one output's worth of memory, only then.
    """
    out_root, words_root = _root(out), _root(words)
    if out_root is not words_root and out_root.base is None and words_root.base is None:
        return False  # views of two arrays that each own their memory: the usual case, decided in ~0.2 us
    if not np.may_share_memory(out, words):  # compares the memory bounds
        return False
    try:
        return bool(np.shares_memory(out, words, max_work=_OVERLAP_WORK))  # type: ignore[arg-type]  # stubs: -1/0
    except np.exceptions.TooHardError:
        return True


def run_table(compiled: Compiled, words: np.ndarray, out: np.ndarray, fmt: StoredFormat, nthreads: int,
              path: Path = Path.TABLE) -> None:
    """Run a table path for integer words (read as bit patterns): ``TABLE`` picks the fastest exact
    one; ``NARROW``, ``AFFINE`` and ``LUT`` force one."""
    table_runner(compiled, fmt, path)(words, out, nthreads)


def table_runner(compiled: Compiled, fmt: StoredFormat, path: Path = Path.TABLE) -> Callable[..., None]:
    """``run(words, out, nthreads)``: :func:`run_table` with everything but the arrays decided now
    (``window()`` keeps one per parameter set, so a repeated call goes straight to the kernel).  Whether
    the narrow lookup is the fastest is asked at each call: the kernel's target can be changed."""
    shift, bits, signed = fmt.shift, fmt.bits_stored, fmt.signed
    narrow, affine, tables, mask = compiled.narrow, compiled.affine, compiled.tables, (1 << fmt.bits_stored) - 1
    kernel_narrow, kernel_affine, kernel_gather, narrow_fast = _kernel.narrow, _kernel.affine, _kernel.gather, \
        _kernel.narrow_fast
    always_narrow = narrow is not None and path is Path.NARROW
    narrow_when_fast = narrow is not None and path is Path.TABLE
    use_affine = affine is not None and (path is Path.TABLE or path is Path.AFFINE)

    def run(words: np.ndarray, out: np.ndarray, nthreads: int) -> None:
        if narrow is not None and (always_narrow or (narrow_when_fast and narrow_fast(narrow[2]))):
            kernel_narrow(words, narrow[0], narrow[1], narrow[2], out, shift, bits, signed, nthreads)
        elif affine is not None and use_affine:
            kernel_affine(words, affine, out, shift, bits, signed, nthreads)
        else:
            kernel_gather(words, tables, out, shift, mask, nthreads)

    return run


def chosen_path(dtype, fmt: Optional[StoredFormat], modality: Modality, vois: Sequence[VOI],
                invert: bool = False) -> Path:
    """The loop :func:`render_stored` with ``path="auto"`` runs now for words of ``dtype`` and these
    parameters: ``NARROW``, ``AFFINE`` (proven exact) or ``LUT`` (the table gather) for integer data with
    at most 16 stored bits, as :func:`table_runner` chooses, else ``ARITHMETIC`` or ``REFERENCE``."""
    path = _auto(np.dtype(dtype).kind == "f", fmt, modality, vois)
    if path is not Path.TABLE:
        return path
    assert fmt is not None  # a table: integer data
    compiled = compile_tables(fmt, modality, vois, invert)
    if compiled.narrow is not None and _kernel.narrow_fast(compiled.narrow[2]):
        return Path.NARROW
    return Path.AFFINE if compiled.affine is not None else Path.LUT


def _params(modality: Rescale, vois: Sequence[Window], invert: bool) -> np.ndarray:
    rows = [[modality.slope, modality.intercept, v.center, v.width, _FUNCTION_CODE[v.function], int(invert)]
            for v in vois]
    return np.array(rows, dtype=np.float64)


def _auto(is_float: bool, fmt: Optional[StoredFormat], modality: Modality, vois: Sequence[VOI]) -> Path:
    if not is_float and fmt is not None and fmt.bits_stored <= LUT_MAX_BITS:
        return Path.TABLE
    if isinstance(modality, Rescale) and all(isinstance(v, Window) for v in vois):
        return Path.ARITHMETIC
    return Path.REFERENCE


def render_stored(raw: np.ndarray, fmt: Optional[StoredFormat], modality: Modality, vois: Sequence[VOI], *,
                  invert: bool = False, out: Optional[np.ndarray] = None, threads: Optional[int] = None,
                  path: Union[Path, str] = Path.AUTO) -> np.ndarray:
    """Render allocated words ``raw`` (any shape) to uint8.

    Returns ``raw.shape`` for one VOI, ``raw.shape + (len(vois),)`` for several.
    ``fmt`` is ``None`` for float data.  ``path`` (a :class:`Path` or its value) forces
    ``"lut"`` (table gather), ``"affine"`` (the float32 affine loop, only where it is proven
    exact), ``"narrow"`` (byte-permute lookup of a table that changes over at most 256 stored
    values, one window), ``"arithmetic"`` (fused float64) or ``"reference"`` (for tests and
    benchmarks); ``"auto"`` takes, for integer data with at most 16 stored bits, the narrow
    lookup where it applies and the CPU has byte permutes, else the affine loop where proven,
    else the gather.
    """
    k = len(vois)
    check_window_count(k)
    path = Path(path)
    if type(raw) is not np.ndarray:
        raw = np.asarray(raw)
    dtype = raw.dtype
    if not dtype.isnative:
        # the table and integer paths reinterpret the words' bytes, so they must be in native order
        raw = raw.astype(dtype.newbyteorder("="))
        dtype = raw.dtype
    shape = raw.shape if k == 1 else raw.shape + (k,)
    target = result = prepare_out(out, shape)
    if out is not None and overlaps(result, raw):
        result = np.empty(shape, dtype=_UINT8)
    nthreads = resolve_threads(threads)
    kind = dtype.kind
    is_float = kind == "f"
    if is_float != (fmt is None) or kind not in "fiu" or dtype.itemsize not in (1, 2, 4, 8) \
            or (fmt is not None and dtype.itemsize * 8 != fmt.bits_allocated):
        raise PixelDataError(f"pixel array of dtype {dtype} does not match the declared format {fmt}",
                             attribute="BitsAllocated")
    if path is Path.AUTO:
        path = _auto(is_float, fmt, modality, vois)
    flat_out = result.reshape(-1)
    if path is Path.REFERENCE:
        _render_reference(raw, fmt, modality, vois, invert, result)
    elif path in _TABLE_PATHS:
        if fmt is None or fmt.bits_stored > LUT_MAX_BITS:
            raise ValueError(f"the {path.value} path needs integer data with at most 16 stored bits")
        compiled = compile_tables(fmt, modality, vois, invert)
        if path is Path.AFFINE and compiled.affine is None:
            raise ValueError("the affine path is not proven exact for these parameters")
        if path is Path.NARROW and compiled.narrow is None:
            raise ValueError("the narrow path needs one window whose table changes over at most 256 stored values")
        words = (raw if raw.flags.c_contiguous else np.ascontiguousarray(raw)).view(fmt.unsigned_dtype).reshape(-1)
        run_table(compiled, words, flat_out, fmt, nthreads, path)
    else:
        _render_arithmetic(raw, fmt, modality, vois, invert, flat_out, nthreads)
    if target is not result:
        target[...] = result
    return target


def _render_reference(raw, fmt, modality, vois, invert, result) -> None:
    x = modality.values(raw.astype(np.float64) if fmt is None else fmt.stored(raw))
    for j, voi in enumerate(vois):
        channel = _reference.to_uint8(voi.values(x), invert, voi.snap)
        if len(vois) == 1:
            result[...] = channel
        else:
            result[..., j] = channel


def _render_arithmetic(raw, fmt, modality, vois, invert, flat_out, nthreads) -> None:
    if not isinstance(modality, Rescale) or not all(isinstance(v, Window) for v in vois):
        raise ValueError("the arithmetic path takes a rescale and centre/width windows only")
    params = _params(modality, vois, invert)
    if fmt is None:
        data = np.ascontiguousarray(raw).reshape(-1)  # native order already
        _kernel.arithmetic(data, params, flat_out, 0, 32, False, nthreads)
    else:
        words = np.ascontiguousarray(raw).view(fmt.unsigned_dtype).reshape(-1)
        _kernel.arithmetic(words, params, flat_out, fmt.shift, fmt.bits_stored, fmt.signed, nthreads)
