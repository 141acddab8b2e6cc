# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled loops of dicomrender: table gather and fused float64 arithmetic.

This module only checks shapes/dtypes and runs the loops in ``_kernel_impl.h``
without the GIL.  Choosing the path, building tables and allocating outputs is
done by :mod:`dicomrender.windowing`.
"""

from libc.stdint cimport uint8_t, uint32_t

import numpy as np

cdef extern from "_kernel_impl.h" nogil:
    ctypedef struct dr_affine:
        float a, b
        int pivot
    ctypedef struct dr_window:
        double slope, intercept, center, width
        int function
        int invert
    int DR_MAX_WINDOWS
    int DR_N_TARGETS
    int DR_CHUNK
    int DR_MIN_CHUNKS_PER_THREAD
    int dr_target_supported(int target)
    int dr_best_target()
    int dr_have_openmp()
    int dr_have_affine()
    void dr_init()
    int dr_threads_for(size_t n, int nthreads)
    void dr_affine_render(int target, int itemsize, const void *src, size_t n, const dr_affine *w, int k, uint8_t *out,
                   int shift, int bits, int is_signed, int nthreads)
    void dr_gather(int target, int itemsize, const void *src, size_t n, const uint8_t *tables,
                   size_t table_size, int k, uint8_t *out, int shift, uint32_t mask, int nthreads)
    void dr_arith(int target, int kind, int itemsize, const void *src, size_t n, const dr_window *w, int k,
                  uint8_t *out, int shift, int bits, int is_signed, int nthreads)

TARGETS = ("baseline", "avx2", "avx512", "avx512vbmi")
MAX_WINDOWS = DR_MAX_WINDOWS
CHUNK = DR_CHUNK
#: Inputs below this many pixels per thread use fewer threads.
MIN_PIXELS_PER_THREAD = DR_CHUNK * DR_MIN_CHUNKS_PER_THREAD
HAVE_OPENMP = bool(dr_have_openmp())
#: Whether float arithmetic is plain IEEE single precision, so the affine path may be used.
HAVE_AFFINE = bool(dr_have_affine())

dr_init()
cdef int _target = dr_best_target()


def threads_for(Py_ssize_t n, int nthreads):
    """How many threads a loop over ``n`` pixels runs on when ``nthreads`` are asked for."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return dr_threads_for(n, nthreads)


def supported_targets():
    """The instruction-set targets this CPU can run, baseline first."""
    return tuple(name for i, name in enumerate(TARGETS) if dr_target_supported(i))


def get_target():
    """The target the loops currently run on."""
    return TARGETS[_target]


def set_target(name):
    """Force a target (for tests and benchmarks); ``None`` picks the best one."""
    global _target
    if name is None:
        _target = dr_best_target()
        return
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    index = TARGETS.index(name)
    if not dr_target_supported(index):
        raise ValueError(f"this CPU does not support the {name} target")
    _target = index


def _check_out(const uint8_t[::1] out, Py_ssize_t n, int k):
    if out.shape[0] != n * k:
        raise ValueError(f"out has {out.shape[0]} bytes, expected {n * k}")


def gather(src, const uint8_t[:, ::1] tables, uint8_t[::1] out, int shift, uint32_t mask,
           int nthreads=1):
    """``out[i*k + j] = tables[j, (src[i] >> shift) & mask]`` for unsigned 1-D ``src``."""
    cdef const uint8_t[::1] b8
    cdef const unsigned short[::1] b16
    cdef const uint32_t[::1] b32
    cdef const void *ptr
    cdef Py_ssize_t n
    cdef int itemsize
    cdef int k = tables.shape[0]
    cdef size_t table_size = tables.shape[1]
    if k < 1 or k > DR_MAX_WINDOWS:
        raise ValueError(f"tables must have 1..{DR_MAX_WINDOWS} rows, got {k}")
    if <size_t>mask >= table_size:
        raise ValueError(f"mask {mask:#x} does not fit a table of {table_size} entries")
    if src.dtype == np.uint8:
        b8 = src
        n, ptr, itemsize = b8.shape[0], &b8[0] if b8.shape[0] else NULL, 1
    elif src.dtype == np.uint16:
        b16 = src
        n, ptr, itemsize = b16.shape[0], &b16[0] if b16.shape[0] else NULL, 2
    elif src.dtype == np.uint32:
        b32 = src
        n, ptr, itemsize = b32.shape[0], &b32[0] if b32.shape[0] else NULL, 4
    else:
        raise TypeError(f"gather needs uint8/uint16/uint32 input, got {src.dtype}")
    if shift < 0 or shift >= itemsize * 8:
        raise ValueError(f"shift {shift} out of range for {itemsize * 8}-bit words")
    _check_out(out, n, k)
    if n == 0:
        return
    with nogil:
        dr_gather(_target, itemsize, ptr, n, &tables[0, 0], table_size, k, &out[0], shift, mask, nthreads)


def affine(src, const double[:, ::1] params, uint8_t[::1] out, int shift, int bits, bint is_signed,
           int nthreads=1):
    """Proven float32 affine path, one row of ``params`` (a, b, pivot) per channel:
    ``d = stored - pivot`` (the ``bits`` bits from ``shift`` on, two's complement
    when ``is_signed``), ``out = clip(trunc(float32(d) * a + b), 0, 255)`` with two
    float32 roundings.  ``a`` and ``b`` must be float32 values, ``|pivot| < 2**16``;
    the caller proves the result exact."""
    cdef dr_affine w[4]
    cdef const uint8_t[::1] b8
    cdef const unsigned short[::1] b16
    cdef const void *ptr
    cdef Py_ssize_t n
    cdef int itemsize, j
    cdef int k = params.shape[0]
    if not dr_have_affine():
        raise RuntimeError("the affine path needs IEEE single-precision float arithmetic")
    if k < 1 or k > DR_MAX_WINDOWS or params.shape[1] != 3:
        raise ValueError(f"params must be (1..{DR_MAX_WINDOWS}, 3), got ({k}, {params.shape[1]})")
    for j in range(k):
        if not -65536.0 < params[j, 2] < 65536.0:
            raise ValueError(f"pivot {params[j, 2]} out of range")
        w[j].a = <float>params[j, 0]
        w[j].b = <float>params[j, 1]
        w[j].pivot = <int>params[j, 2]
        if <double>w[j].a != params[j, 0] or <double>w[j].b != params[j, 1] or <double>w[j].pivot != params[j, 2]:
            raise ValueError("a and b must be float32 values and pivot an integer")
    if src.dtype == np.uint8:
        b8 = src
        n, ptr, itemsize = b8.shape[0], &b8[0] if b8.shape[0] else NULL, 1
    elif src.dtype == np.uint16:
        b16 = src
        n, ptr, itemsize = b16.shape[0], &b16[0] if b16.shape[0] else NULL, 2
    else:
        raise TypeError(f"affine needs uint8/uint16 input, got {src.dtype}")
    if bits < 1 or shift < 0 or shift + bits > itemsize * 8:
        raise ValueError(f"bits {bits} from shift {shift} do not fit {itemsize * 8}-bit words")
    _check_out(out, n, k)
    if n == 0:
        return
    with nogil:
        dr_affine_render(_target, itemsize, ptr, n, w, k, &out[0], shift, bits, is_signed, nthreads)


cdef int _windows(const double[:, ::1] params, dr_window *w) except -1:
    cdef int k = params.shape[0]
    cdef int j
    if k < 1 or k > DR_MAX_WINDOWS or params.shape[1] != 6:
        raise ValueError(f"params must be (1..{DR_MAX_WINDOWS}, 6), got ({k}, {params.shape[1]})")
    for j in range(k):
        w[j].slope = params[j, 0]
        w[j].intercept = params[j, 1]
        w[j].center = params[j, 2]
        w[j].width = params[j, 3]
        w[j].function = <int>params[j, 4]
        w[j].invert = <int>params[j, 5]
        if w[j].function < 0 or w[j].function > 2:
            raise ValueError(f"unknown function code {w[j].function}")
    return k


def arithmetic(src, const double[:, ::1] params, uint8_t[::1] out, int shift=0, int bits=32,
               bint is_signed=False, int nthreads=1):
    """Fused float64 path: one row of ``params`` (slope, intercept, center, width,
    function code, invert) per output channel.  ``src`` is float32/float64, or
    uint8/uint16/uint32 words holding ``bits`` stored bits from ``shift`` on."""
    cdef dr_window w[4]
    cdef int k = _windows(params, w)
    cdef const uint8_t[::1] b8
    cdef const unsigned short[::1] b16
    cdef const uint32_t[::1] b32
    cdef const float[::1] f32
    cdef const double[::1] f64
    cdef const void *ptr
    cdef Py_ssize_t n
    cdef int itemsize
    cdef int kind = 117  # 'u'
    if src.dtype == np.float32:
        f32 = src
        n, ptr, itemsize, kind = f32.shape[0], &f32[0] if f32.shape[0] else NULL, 4, 102  # 'f'
    elif src.dtype == np.float64:
        f64 = src
        n, ptr, itemsize, kind = f64.shape[0], &f64[0] if f64.shape[0] else NULL, 8, 102
    elif src.dtype == np.uint8:
        b8 = src
        n, ptr, itemsize = b8.shape[0], &b8[0] if b8.shape[0] else NULL, 1
    elif src.dtype == np.uint16:
        b16 = src
        n, ptr, itemsize = b16.shape[0], &b16[0] if b16.shape[0] else NULL, 2
    elif src.dtype == np.uint32:
        b32 = src
        n, ptr, itemsize = b32.shape[0], &b32[0] if b32.shape[0] else NULL, 4
    else:
        raise TypeError(f"arithmetic needs float32/float64/uint8/uint16/uint32 input, got {src.dtype}")
    if kind == 117 and (bits < 1 or shift < 0 or shift + bits > itemsize * 8):
        raise ValueError(f"bits {bits} from shift {shift} do not fit {itemsize * 8}-bit words")
    _check_out(out, n, k)
    if n == 0:
        return
    with nogil:
        dr_arith(_target, kind, itemsize, ptr, n, w, k, &out[0], shift, bits, is_signed, nthreads)
