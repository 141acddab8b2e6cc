# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled loops of dicomrender: table gather, proven float32 affine and fused float64 arithmetic.

This module only checks shapes/dtypes and runs the loops of ``kernel.h`` without the GIL.
Choosing the path, building tables and allocating outputs is done by the engine.  Arrays are
taken through the numpy C API (any shape, C-contiguous, native byte order): a call costs well
under a microsecond, which matters for single small images.

The constants and names below come from ``constants.h``, which the C loops read too.  The
environment variable ``DICOMRENDER_TARGET`` (baseline, avx2, avx512 or avx512vbmi), read once
at import, forces the instruction-set target; a name that is unknown or that this CPU cannot
run gives a RuntimeWarning and the best target.
"""

import os
import warnings

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.math cimport fabs, fmax
from libc.string cimport memcpy

cimport numpy as cnp

import numpy as np

cnp.import_array()

cdef extern from "constants.h" nogil:
    enum:
        DR_N_FUNCTIONS
        DR_MAX_WINDOWS
        DR_N_TARGETS
        DR_CHUNK
        DR_MIN_CHUNKS_PER_THREAD
    const double DR_SNAP
    const char *const dr_function_names[DR_N_FUNCTIONS]
    const char *const dr_target_names[DR_N_TARGETS]

cdef extern from "kernel.h" nogil:
    ctypedef struct dr_affine:
        float a, b
        int pivot
    ctypedef struct dr_narrow:
        uint8_t table[256]
        uint16_t low, range
    ctypedef struct dr_window:
        double slope, intercept, center, width
        int function
        int invert
    int dr_target_supported(int target)
    int dr_best_target()
    int dr_have_threads()
    int dr_have_affine()
    void dr_init()
    int dr_threads_for(size_t n, int nthreads)
    void dr_set_budget(int budget)
    int dr_get_budget()
    int dr_helpers_started()
    void dr_pause_helpers(int paused)
    unsigned long long dr_chunks_helped()
    void dr_affine_render(int target, int itemsize, const void *src, size_t n, const dr_affine *w, int k, uint8_t *out,
                          int shift, int bits, int is_signed, int nthreads)
    void dr_gather(int target, int itemsize, const void *src, size_t n, const uint8_t *tables,
                   size_t table_size, int k, uint8_t *out, int shift, uint32_t mask, int nthreads)
    void dr_arith(int target, int kind, int itemsize, const void *src, size_t n, const dr_window *w, int k,
                  uint8_t *out, int shift, int bits, int is_signed, int nthreads)
    int dr_narrow_fast(int target, int range)
    void dr_narrow_render(int target, int itemsize, const void *src, size_t n, const dr_narrow *t, uint8_t *out,
                          int shift, int bits, int is_signed, int nthreads)


cdef tuple _names(const char *const *names, int count):
    return tuple([names[i].decode("ascii") for i in range(count)])


#: VOI LUT Function names, indexed by the function code the arithmetic path takes.
FUNCTIONS = _names(dr_function_names, DR_N_FUNCTIONS)
#: A float64 value within this of an integer counts as that integer (PIPELINE.md, section 5).
SNAP = DR_SNAP
#: Instruction-set targets, baseline first, best last.
TARGETS = _names(dr_target_names, DR_N_TARGETS)
MAX_WINDOWS = DR_MAX_WINDOWS
CHUNK = DR_CHUNK
#: Inputs below this many pixels per thread use fewer threads.
MIN_PIXELS_PER_THREAD = DR_CHUNK * DR_MIN_CHUNKS_PER_THREAD
#: Whether this build has the helper-thread pool (else every loop runs on the calling thread).
HAVE_THREADS = bool(dr_have_threads())
#: Whether float arithmetic is plain IEEE single precision, so the affine path may be used.
HAVE_AFFINE = bool(dr_have_affine())

dr_init()


def threads_for(Py_ssize_t n, int nthreads):
    """How many threads a loop over ``n`` pixels runs on at most when ``nthreads`` are asked for (the
    calling thread plus helpers, when they join in time and other calls leave room in the budget)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return dr_threads_for(n, nthreads)


def set_thread_budget(int budget):
    """How many threads may run kernel loops at once, process-wide (the engine sets the usable cores):
    the calling threads of the calls running at once plus their helpers.  The pool starts at most
    ``budget - 1`` helpers, lazily."""
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    dr_set_budget(budget)


def get_thread_budget():
    """The process-wide thread budget (1 in a build without the pool)."""
    return dr_get_budget()


def pool_stats():
    """``(helpers started in this process, chunks helpers have run)``: for tests and benchmarks."""
    return dr_helpers_started(), dr_chunks_helped()


def pause_helpers(bint paused):
    """Tests only: while paused, helpers take no part in any call, as if the operating system never
    scheduled them; calls must still finish (on the calling thread) with the same bytes."""
    dr_pause_helpers(paused)


def supported_targets():
    """The instruction-set targets this CPU can run, baseline first."""
    return tuple(name for i, name in enumerate(TARGETS) if dr_target_supported(i))


cdef int _default_target():
    """The target DICOMRENDER_TARGET names, or the best one (with a warning when the name is not usable)."""
    name = os.environ.get("DICOMRENDER_TARGET", "").strip().lower()
    cdef int best = dr_best_target()
    if not name:
        return best
    if name in TARGETS and dr_target_supported(TARGETS.index(name)):
        return TARGETS.index(name)
    problem = "is not a target" if name not in TARGETS else "is not supported by this CPU"
    warnings.warn(f"DICOMRENDER_TARGET={name!r} {problem}; this CPU supports {', '.join(supported_targets())}; "
                  f"using {TARGETS[best]}", RuntimeWarning, stacklevel=2)
    return best


cdef int _default = _default_target()
cdef int _target = _default


def get_target():
    """The target the loops currently run on."""
    return TARGETS[_target]


def set_target(name):
    """Force a target (for tests and benchmarks); ``None`` restores the default: the target
    ``DICOMRENDER_TARGET`` names at import, else the best one."""
    global _target
    if name is None:
        _target = _default
        return
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    index = TARGETS.index(name)
    if not dr_target_supported(index):
        raise ValueError(f"this CPU does not support the {name} target")
    _target = index


cdef inline cnp.ndarray _array(object a, str name, bint writable=False):
    """``a`` as a C-contiguous, native-order ndarray (any shape), or an error."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{name} must be C-contiguous")
    if not cnp.PyArray_ISNOTSWAPPED(arr):
        raise ValueError(f"{name} must be in native byte order")
    if writable and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} must be writeable")
    return arr


cdef inline uint8_t *_out(object out, Py_ssize_t n, int k) except NULL:
    cdef cnp.ndarray arr = _array(out, "out", True)
    if not cnp.PyArray_ISUNSIGNED(arr) or cnp.PyArray_ITEMSIZE(arr) != 1:
        raise TypeError(f"out must be uint8, got {arr.dtype}")
    if cnp.PyArray_SIZE(arr) != n * k:
        raise ValueError(f"out has {cnp.PyArray_SIZE(arr)} bytes, expected {n * k}")
    return <uint8_t *>cnp.PyArray_DATA(arr)


cdef inline int _words(cnp.ndarray arr, str what) except -1:
    """Item size of an unsigned integer word array."""
    # by kind and size, not type number: uint32 is NPY_UINT or NPY_ULONG depending on the platform;
    # signed words are read as their bit patterns (the stored bits are extracted from them)
    cdef int size = <int>cnp.PyArray_ITEMSIZE(arr)
    if cnp.PyArray_ISINTEGER(arr) and (size == 1 or size == 2 or (size == 4 and what == "gather")):
        return size
    raise TypeError(f"{what} needs {'8/16/32' if what == 'gather' else '8/16'}-bit integer input, "
                    f"got {arr.dtype}")


cdef int _bits_fit(int bits, int shift, int itemsize) except -1:
    """Check that ``bits`` stored bits from ``shift`` on fit words of ``itemsize`` bytes."""
    if bits < 1 or shift < 0 or shift + bits > itemsize * 8:
        raise ValueError(f"bits {bits} from shift {shift} do not fit {itemsize * 8}-bit words")
    return 0


cdef const double *_rows(object params, int columns, int *k) except NULL:
    """The rows of a (1..MAX_WINDOWS, columns) float64 parameter array; their count in ``k``."""
    cdef cnp.ndarray p = _array(params, "params")
    if cnp.PyArray_TYPE(p) != cnp.NPY_FLOAT64 or cnp.PyArray_NDIM(p) != 2:
        raise TypeError("params must be a 2-D float64 array")
    k[0] = <int>cnp.PyArray_DIM(p, 0)
    if k[0] < 1 or k[0] > DR_MAX_WINDOWS or cnp.PyArray_DIM(p, 1) != columns:
        raise ValueError(f"params must be (1..{DR_MAX_WINDOWS}, {columns}), got ({k[0]}, {cnp.PyArray_DIM(p, 1)})")
    return <const double *>cnp.PyArray_DATA(p)


def gather(src, tables, out, int shift, uint32_t mask, int nthreads=1):
    """``out[i*k + j] = tables[j, (src[i] >> shift) & mask]`` for integer words ``src`` (any shape,
    read as unsigned bit patterns)."""
    cdef cnp.ndarray words = _array(src, "src")
    cdef cnp.ndarray tab = _array(tables, "tables")
    if cnp.PyArray_TYPE(tab) != cnp.NPY_UINT8 or cnp.PyArray_NDIM(tab) != 2:
        raise TypeError("tables must be a 2-D uint8 array")
    cdef int k = <int>cnp.PyArray_DIM(tab, 0)
    cdef size_t table_size = <size_t>cnp.PyArray_DIM(tab, 1)
    if k < 1 or k > DR_MAX_WINDOWS:
        raise ValueError(f"tables must have 1..{DR_MAX_WINDOWS} rows, got {k}")
    if <size_t>mask >= table_size:
        raise ValueError(f"mask {mask:#x} does not fit a table of {table_size} entries")
    cdef int itemsize = _words(words, "gather")
    if shift < 0 or shift >= itemsize * 8:
        raise ValueError(f"shift {shift} out of range for {itemsize * 8}-bit words")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(words)
    cdef uint8_t *o = _out(out, n, k)
    cdef const void *ptr = cnp.PyArray_DATA(words)
    cdef const uint8_t *t = <const uint8_t *>cnp.PyArray_DATA(tab)
    if n == 0:
        return
    with nogil:
        dr_gather(_target, itemsize, ptr, n, t, table_size, k, o, shift, mask, nthreads)


def affine(src, params, out, int shift, int bits, bint is_signed, int nthreads=1):
    """Proven float32 affine path, one row of ``params`` (a, b, pivot) per channel:
    ``d = stored - pivot`` (the ``bits`` bits from ``shift`` on, two's complement
    when ``is_signed``), ``out = clip(trunc(float32(d) * a + b), 0, 255)`` in float32,
    rounded twice (multiply, then add) by the portable loops and once (fused
    multiply-add) by the SIMD loops.  ``a`` and ``b`` must be float32 values,
    ``|pivot| < 2**16``; the caller proves both forms exact."""
    cdef dr_affine w[DR_MAX_WINDOWS]
    cdef int j, k
    cdef const double *row = _rows(params, 3, &k)
    if not dr_have_affine():
        raise RuntimeError("the affine path needs IEEE single-precision float arithmetic")
    for j in range(k):
        if not -65536.0 < row[3 * j + 2] < 65536.0:
            raise ValueError(f"pivot {row[3 * j + 2]} out of range")
        w[j].a = <float>row[3 * j]
        w[j].b = <float>row[3 * j + 1]
        w[j].pivot = <int>row[3 * j + 2]
        if <double>w[j].a != row[3 * j] or <double>w[j].b != row[3 * j + 1] or <double>w[j].pivot != row[3 * j + 2]:
            raise ValueError("a and b must be float32 values and pivot an integer")
    cdef cnp.ndarray words = _array(src, "src")
    cdef int itemsize = _words(words, "affine")
    _bits_fit(bits, shift, itemsize)
    # The loop converts float32(d) * a + b to int32: out of range (or inf/NaN) that is undefined
    # behaviour, so bound it over the stored values the words can hold.
    cdef double low = -<double>(1 << (bits - 1)) if is_signed else 0.0
    cdef double high = low + <double>(1 << bits) - 1.0
    for j in range(k):
        if not (fabs(row[3 * j]) * fmax(fabs(low - w[j].pivot), fabs(high - w[j].pivot)) + fabs(row[3 * j + 1])
                < 2147483520.0):
            raise ValueError(f"a {row[3 * j]} and b {row[3 * j + 1]} can overflow the conversion to integer")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(words)
    cdef uint8_t *o = _out(out, n, k)
    cdef const void *ptr = cnp.PyArray_DATA(words)
    if n == 0:
        return
    with nogil:
        dr_affine_render(_target, itemsize, ptr, n, w, k, o, shift, bits, is_signed, nthreads)


cdef int _windows(params, dr_window *w) except -1:
    cdef int j, k
    cdef const double *row = _rows(params, 6, &k)
    for j in range(k):
        w[j].slope = row[6 * j]
        w[j].intercept = row[6 * j + 1]
        w[j].center = row[6 * j + 2]
        w[j].width = row[6 * j + 3]
        # checked as a double: casting NaN or a huge value to int is undefined behaviour
        if not (0 <= row[6 * j + 4] < DR_N_FUNCTIONS and row[6 * j + 4] == <int>row[6 * j + 4]):
            raise ValueError(f"unknown function code {row[6 * j + 4]}")
        w[j].function = <int>row[6 * j + 4]
        w[j].invert = row[6 * j + 5] != 0
    return k


def arithmetic(src, params, out, int shift=0, int bits=32, bint is_signed=False, int nthreads=1):
    """Fused float64 path: one row of ``params`` (slope, intercept, center, width,
    function code, invert) per output channel.  ``src`` is float32/float64, or
    8/16/32-bit integer words holding ``bits`` stored bits from ``shift`` on."""
    cdef dr_window w[DR_MAX_WINDOWS]
    cdef int k = _windows(params, w)
    cdef cnp.ndarray data = _array(src, "src")
    cdef int itemsize = <int>cnp.PyArray_ITEMSIZE(data)
    cdef int kind = 117  # 'u'
    if cnp.PyArray_TYPE(data) == cnp.NPY_FLOAT32 or cnp.PyArray_TYPE(data) == cnp.NPY_FLOAT64:
        kind = 102  # 'f'
    elif not (cnp.PyArray_ISINTEGER(data) and (itemsize == 1 or itemsize == 2 or itemsize == 4)):
        raise TypeError(f"arithmetic needs float32/float64 or 8/16/32-bit integer input, got {data.dtype}")
    if kind == 117:
        _bits_fit(bits, shift, itemsize)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(data)
    cdef uint8_t *o = _out(out, n, k)
    cdef const void *ptr = cnp.PyArray_DATA(data)
    if n == 0:
        return
    with nogil:
        dr_arith(_target, kind, itemsize, ptr, n, w, k, o, shift, bits, is_signed, nthreads)


def narrow_fast(int range_=255):
    """Whether :func:`narrow` over a table of ``range_ + 1`` entries is faster than the affine loop of one
    window on the current target: always with AVX-512 VBMI (byte permutes), for short ranges with AVX2
    (one byte shuffle per 16 entries) and NEON; never where the lookup runs one pixel at a time."""
    return bool(dr_narrow_fast(_target, range_))


def narrow(src, table, int low, int range_, out, int shift, int bits, bint is_signed, int nthreads=1):
    """Narrow-table path: ``out = table[min(max(lane - low, 0), range_)]`` where ``lane`` is the stored
    value of each word (the ``bits`` bits from ``shift`` on, two's complement when ``is_signed``) plus
    32768 when signed.  ``table`` holds 256 uint8 entries, ``0 <= range_ < 256``."""
    cdef dr_narrow t
    cdef cnp.ndarray tab = _array(table, "table")
    if cnp.PyArray_TYPE(tab) != cnp.NPY_UINT8 or cnp.PyArray_SIZE(tab) != 256:
        raise TypeError("table must hold 256 uint8 entries")
    if not 0 <= low <= 65535 or not 0 <= range_ <= 255:
        raise ValueError(f"low {low} or range {range_} out of bounds")
    memcpy(t.table, cnp.PyArray_DATA(tab), 256)
    t.low = <uint16_t>low
    t.range = <uint16_t>range_
    cdef cnp.ndarray words = _array(src, "src")
    cdef int itemsize = _words(words, "narrow")
    _bits_fit(bits, shift, itemsize)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(words)
    cdef uint8_t *o = _out(out, n, 1)
    cdef const void *ptr = cnp.PyArray_DATA(words)
    if n == 0:
        return
    with nogil:
        dr_narrow_render(_target, itemsize, ptr, n, &t, o, shift, bits, is_signed, nthreads)
