"""Every compiled loop, on every instruction-set target this CPU runs, against the float64 reference.

The kernel picks its loops at run time (baseline / AVX2 / AVX-512); ``_kernel.set_target``
forces one, so each test here runs on all of them, on every path (lookup-table gather,
the proven float32 affine loop, fused float64 arithmetic), with one and two threads and
with several windows in one pass.
"""

from __future__ import annotations

import gc
import itertools
import os
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomrender import _kernel, _reference, engine, window
from dicomrender._types import Rescale, StoredFormat, Window
from dicomrender.engine import render_stored
from dicomrender.engine.compile import compile_tables
from dicomrender.engine.proof import _fma_float32

TARGETS = _kernel.supported_targets()


#: Long enough that two threads really split the work (the kernel keeps small inputs on one thread).
THREADED = 2 * _kernel.MIN_PIXELS_PER_THREAD + 1000


def _words(bits: int, signed: bool, allocated: int, length: int = 0) -> np.ndarray:
    """Every stored bit pattern (clean and with garbage above HighBit), repeated up to ``length``,
    plus an odd tail, so the length is no multiple of any vector width and the scalar tails run too.
    """
    patterns = np.arange(1 << bits, dtype=np.uint32)
    garbage = np.uint32(((1 << allocated) - 1) ^ ((1 << bits) - 1))
    base = np.concatenate([patterns, patterns | garbage])
    rng = np.random.default_rng(bits)
    tail = rng.integers(0, 1 << allocated, size=37, dtype=np.uint64).astype(np.uint32)
    words = np.concatenate([np.tile(base, max(1, -(-length // base.size))), tail]).astype(f"u{allocated // 8}")
    return words.view(f"{'i' if signed else 'u'}{allocated // 8}")


# (slope, intercept, centre, width, function): CT windows, an exact-integer case (c=550 w=1024
# gives exactly 170 at x=720), non-integer centres, negative slope, width 1, tiny and huge widths.
WINDOWS = [
    (1.0, -1024.0, 40.0, 80.0, "LINEAR"),
    (1.0, -1024.0, 400.0, 1800.0, "LINEAR"),
    (1.0, -1024.0, -600.0, 1500.0, "LINEAR_EXACT"),
    (1.0, 0.0, 550.0, 1024.0, "LINEAR"),
    (1.0, -1024.0, 40.5, 101.0, "LINEAR"),
    (3.774, -10.25, 300.0, 77.0, "LINEAR_EXACT"),
    (-0.5, 100.0, 20.0, 300.0, "LINEAR"),
    (1.0, 0.0, 100.0, 1.0, "LINEAR"),
    (1.0, 0.0, 100.0, 1e-6, "LINEAR_EXACT"),
    (1.0, 0.0, 0.0, 1e9, "LINEAR"),
    (2.0, -3.0, 0.0, 500.0, "SIGMOID"),
]

FORMATS = [
    StoredFormat(8, 8, 7, False),
    StoredFormat(8, 6, 6, True),       # stored bits 1..6 of a byte, signed
    StoredFormat(16, 12, 11, False),
    StoredFormat(16, 12, 13, True),    # stored bits 2..13, garbage on both sides
    StoredFormat(16, 12, 13, False),
    StoredFormat(16, 16, 15, True),
    StoredFormat(16, 16, 15, False),
]


def _reference_render(words, fmt, modality, vois, invert):
    return render_stored(words, fmt, modality, vois, invert=invert, path="reference")


_EXPECTED: dict = {}


def _expected(words, fmt, modality, vois, invert):
    """The reference result, computed once per case and shared by every target's run."""
    key = (words.size, words.dtype.str, fmt, modality, tuple(vois), invert)
    if key not in _EXPECTED:
        _EXPECTED[key] = _reference_render(words, fmt, modality, vois, invert)
    return _EXPECTED[key]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.bits_allocated}a{f.bits_stored}s{f.high_bit}h{'S' if f.signed else 'U'}")
def test_every_path_equals_reference_on_every_stored_value(target, fmt):
    words = _words(fmt.bits_stored if fmt.high_bit == fmt.bits_stored - 1 else fmt.bits_allocated, fmt.signed,
                   fmt.bits_allocated, THREADED)
    affine_used = 0
    for slope, intercept, center, width, function in WINDOWS:
        modality = Rescale(slope, intercept)
        vois = [Window(center, width, function)]
        for invert in (False, True):
            expected = _expected(words, fmt, modality, vois, invert)
            compiled = compile_tables(fmt, modality, vois, invert)
            paths = ["lut", "arithmetic", "auto"] + (["affine"] if compiled.affine is not None else []) \
                + (["narrow"] if compiled.narrow is not None else [])
            affine_used += compiled.affine is not None
            threads = 2 if invert else 1  # both thread counts on every path, half the time
            for path in paths:
                got = render_stored(words, fmt, modality, vois, invert=invert, path=path, threads=threads)
                mismatch = np.flatnonzero(got != expected)
                assert mismatch.size == 0, (target, path, threads, slope, intercept, center, width, function,
                                            invert, words[mismatch[:5]], got[mismatch[:5]], expected[mismatch[:5]])
    # the fast loop must really be exercised, not silently replaced by the table everywhere
    assert affine_used >= 8


@pytest.mark.parametrize("k", [2, 3, 4])
def test_multi_window_one_pass_equals_reference(target, k):
    fmt = StoredFormat(16, 12, 11, False)
    words = _words(12, False, 16, THREADED)
    all_vois = [Window(40, 80), Window(400, 1800), Window(-600, 1500, "LINEAR_EXACT"), Window(50, 350)]
    vois = all_vois[:k]
    modality = Rescale(1.0, -1024.0)
    for invert in (False, True):
        expected = np.stack([_expected(words, fmt, modality, [v], invert) for v in vois], axis=-1)
        assert compile_tables(fmt, modality, vois, invert).affine is not None
        for path in ("auto", "lut", "affine", "arithmetic"):
            for threads in (1, 2):
                got = render_stored(words, fmt, modality, vois, invert=invert, path=path, threads=threads)
                assert got.shape == words.shape + (k,)
                np.testing.assert_array_equal(got, expected, err_msg=f"{target} {path} threads={threads}")


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.bits_allocated}a{f.bits_stored}s{f.high_bit}h{'S' if f.signed else 'U'}")
def test_three_windows_to_rgb_on_every_word_format(target, fmt):
    """The one-pass RGB loops have one specialisation per way of extracting the stored bits (all
    bits, low bits, shifted bits, signed or not, 8- or 16-bit words): each against the reference,
    with windows that share a pivot and windows that do not."""
    words = _words(fmt.bits_stored if fmt.high_bit == fmt.bits_stored - 1 else fmt.bits_allocated, fmt.signed,
                   fmt.bits_allocated, THREADED)
    low = -(1 << (fmt.bits_stored - 1)) if fmt.signed else 0
    span = 1 << fmt.bits_stored
    modality = Rescale(1.0, 0.0)
    # windows placed inside this format's range: narrow, wide and LINEAR_EXACT; then three far apart
    sets = [[Window(low + span / 2, span / 8), Window(low + span / 3, span / 2), Window(low + span / 4, span, "LINEAR_EXACT")],
            [Window(low + 3, 5), Window(low + span / 2, 40), Window(low + span - 4, 7)]]
    proven = 0
    for vois in sets:
        for invert in (False, True):
            expected = np.stack([_expected(words, fmt, modality, [v], invert) for v in vois], axis=-1)
            proven += compile_tables(fmt, modality, vois, invert).affine is not None
            for threads in (1, 2):
                got = render_stored(words, fmt, modality, vois, invert=invert, threads=threads)
                np.testing.assert_array_equal(got, expected, err_msg=f"{target} {vois} threads={threads}")
    assert proven >= 2


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.bits_allocated}a{f.bits_stored}s{f.high_bit}h{'S' if f.signed else 'U'}")
def test_narrow_path_equals_reference_on_every_stored_value(target, fmt):
    """The byte-permute lookup of narrow tables (a vector loop with AVX-512 VBMI, one pixel at a time
    elsewhere): windows at both ends of each format's range, a one-value step, a sigmoid, constant
    tables, inverted ones, against the reference on every stored value with garbage bits."""
    words = _words(fmt.bits_stored if fmt.high_bit == fmt.bits_stored - 1 else fmt.bits_allocated, fmt.signed,
                   fmt.bits_allocated, THREADED)
    low = -(1 << (fmt.bits_stored - 1)) if fmt.signed else 0
    high = low + (1 << fmt.bits_stored) - 1
    windows = [Window(low + 3, 5), Window(high - 2, 9), Window((low + high) / 2, 40), Window(low + 0.5, 1.0),
               Window((low + high) / 2, 12, "LINEAR_EXACT"), Window((low + high) / 2, 2, "SIGMOID"),
               Window(low - 10000, 10), Window(high + 10000, 10), Window((low + high) / 2, 200)]
    narrow = 0
    for voi in windows:
        for invert in (False, True):
            compiled = compile_tables(fmt, Rescale(1.0, 0.0), [voi], invert)
            if compiled.narrow is None:
                continue
            narrow += 1
            expected = _expected(words, fmt, Rescale(1.0, 0.0), [voi], invert)
            for threads in (1, 2):
                for path in ("narrow", "auto"):
                    got = render_stored(words, fmt, Rescale(1.0, 0.0), [voi], invert=invert, path=path,
                                        threads=threads)
                    np.testing.assert_array_equal(got, expected, err_msg=f"{target} {path} {voi} invert={invert}")
    assert narrow >= 12


def test_narrow_path_covers_runs_of_up_to_256_values(target):
    """A 16-bit window whose table changes over exactly 256 stored values uses the narrow path (two
    byte permutes and a blend), one value more does not; runs of 128 and 129 values sit on either side
    of the one-permute loop.  All equal the reference."""
    fmt = StoredFormat(16, 16, 15, False)
    words = np.arange(1 << 16, dtype=np.uint16)
    runs = {}
    for width in list(range(122, 134)) + list(range(250, 262)):
        vois = [Window(30000.0, float(width))]
        compiled = compile_tables(fmt, Rescale(1.0, 0.0), vois, False)
        runs[width] = None if compiled.narrow is None else compiled.narrow[2]
        expected = _reference_render(words, fmt, Rescale(1.0, 0.0), vois, False)
        path = "narrow" if compiled.narrow is not None else "auto"
        np.testing.assert_array_equal(render_stored(words, fmt, Rescale(1.0, 0.0), vois, path=path), expected)
    assert {127, 128, 255} <= set(runs.values())
    widest = max(w for w, r in runs.items() if r is not None)
    assert runs[widest] == 255 and runs[widest + 1] is None
    with pytest.raises(ValueError, match="narrow path"):
        render_stored(words, fmt, Rescale(1.0, 0.0), [Window(30000.0, float(widest + 1))], path="narrow")


def test_narrow_kernel_checks_its_arguments():
    words = np.arange(10, dtype=np.uint16)
    out = np.empty(10, dtype=np.uint8)
    table = np.arange(256, dtype=np.uint8)
    with pytest.raises(TypeError, match="256"):
        _kernel.narrow(words, table[:100], 0, 10, out, 0, 16, False)
    with pytest.raises(ValueError, match="range"):
        _kernel.narrow(words, table, 0, 256, out, 0, 16, False)
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.narrow(words, table, 0, 10, out, 8, 16, False)
    with pytest.raises(TypeError):
        _kernel.narrow(words.astype(np.uint32), table, 0, 10, out, 0, 16, False)
    # low 3, range 4: words 0..9 -> table[0, 0, 0, 0, 1, 2, 3, 4, 4, 4]
    _kernel.narrow(words, table, 3, 4, out, 0, 16, False)
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 1, 2, 3, 4, 4, 4])


def test_fused_rounding_of_the_proof_decides_float64_midpoints():
    """The proof emulates a float32 fused multiply-add with float64 arithmetic.  Here the float64
    sum lands exactly on a midpoint between two float32 values and only the discarded bits know
    which way the single rounding goes; the expected values are worked out by hand:
    d * a = (2**32 - 1) * 2**-56 = 2**-24 - 2**-56, b = 1 + 2**-23."""
    d, a, b = 65537.0, np.float32(65535 * 2.0 ** -56), np.float32(1 + 2.0 ** -23)
    product = np.array([d * float(a), -d * float(a)])
    assert product[0] == 2.0 ** -24 - 2.0 ** -56
    got = _fma_float32(product, b)
    # b + 2**-24 - 2**-56 lies just below the midpoint b + 2**-24: rounds down to b
    assert got[0] == b
    # b - 2**-24 + 2**-56 lies just above the midpoint b - 2**-24: rounds up to b, not to 1.0 (even)
    assert got[1] == b
    # rounding the float64 sum again (double rounding) gets both wrong
    assert np.float32(product[0] + float(b)) != b and np.float32(product[1] + float(b)) != b


@settings(max_examples=300, deadline=None)
@given(d=st.integers(-(1 << 17), 1 << 17), a=st.floats(-1e4, 1e4, width=32), b=st.floats(-1e6, 1e6, width=32))
def test_fused_rounding_of_the_proof_equals_exact_rational_rounding(d, a, b):
    """Against exact rational arithmetic: the float32 nearest to d * a + b (ties to even)."""
    from fractions import Fraction

    got = _fma_float32(np.array([d * float(a)]), np.float32(b))[0]
    exact = Fraction(d) * Fraction(a) + Fraction(b)
    r = np.float32(float(exact))
    candidates = [np.nextafter(r, np.float32(-np.inf)), r, np.nextafter(r, np.float32(np.inf))]
    best = min(candidates, key=lambda c: (abs(Fraction(float(c)) - exact), int(np.array(c).view(np.uint32)) & 1))
    assert got == best


def test_multi_window_falls_back_to_the_table_when_one_window_is_not_affine(target):
    fmt = StoredFormat(16, 16, 15, True)
    words = _words(16, True, 16, THREADED)
    vois = [Window(40, 80), Window(0, 900, "SIGMOID"), Window(-600, 1500)]
    modality = Rescale(1.0, -1024.0)
    assert compile_tables(fmt, modality, vois, False).affine is None
    expected = np.stack([_reference_render(words, fmt, modality, [v], False) for v in vois], axis=-1)
    for threads in (1, 2):
        np.testing.assert_array_equal(render_stored(words, fmt, modality, vois, threads=threads), expected)
    with pytest.raises(ValueError, match="affine path is not proven"):
        render_stored(words, fmt, modality, vois, path="affine")


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint32", "int32"])
def test_arithmetic_loops_equal_reference(target, dtype):
    rng = np.random.default_rng(11)
    if dtype.startswith("float"):
        data = rng.normal(0, 1500, size=THREADED).astype(dtype)
        data[:6] = [np.nan, np.inf, -np.inf, 0.0, 39.5, 80.0]
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, size=THREADED, dtype=dtype, endpoint=True)
    for slope, intercept, center, width, function in WINDOWS:
        for invert in (False, True):
            expected = _reference.render_reference(data, center, width, function=function, slope=slope,
                                                   intercept=intercept, invert=invert)
            for threads in (1, 2):
                got = window(data, center, width, function=function, slope=slope, intercept=intercept,
                             invert=invert, threads=threads)
                np.testing.assert_array_equal(got, expected, err_msg=f"{target} {function} {center} {width}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bits=st.sampled_from([8, 10, 12, 14, 16]),
    signed=st.booleans(),
    slope=st.sampled_from([1.0, 0.5, 2.0, -1.0, 3.774, 1e-3]),
    intercept=st.sampled_from([0.0, -1024.0, 1000.25, -32768.0]),
    center=st.floats(-40000, 70000, allow_nan=False),
    width=st.one_of(st.floats(1.0, 5000.0), st.sampled_from([1.0, 2.0, 80.0, 1024.0])),
    function=st.sampled_from(["LINEAR", "LINEAR_EXACT"]),
    invert=st.booleans(),
    data=st.data(),
)
def test_affine_proof_never_changes_a_pixel(bits, signed, slope, intercept, center, width, function, invert, data):
    """Random parameters on a random target: whatever path is chosen equals the reference."""
    chosen = data.draw(st.sampled_from(TARGETS))
    allocated = 8 if bits == 8 else 16
    fmt = StoredFormat(allocated, bits, bits - 1, signed)
    words = _words(bits, signed, allocated)
    modality, vois = Rescale(slope, intercept), [Window(center, width, function)]
    expected = _reference_render(words, fmt, modality, vois, invert)
    _kernel.set_target(chosen)
    try:
        got = render_stored(words, fmt, modality, vois, invert=invert)
    finally:
        _kernel.set_target(None)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.uint32])
def test_gather_reads_only_each_words_own_bits(target, dtype):
    """Shifts with masks wider than what is left of the word: the eight-words-at-a-time loop must not
    pick up bits of the neighbouring word."""
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    words = rng.integers(info.min, info.max, size=1003, dtype=dtype, endpoint=True)
    bits = np.dtype(dtype).itemsize * 8
    tables = rng.integers(0, 256, size=(1, 1 << 16), dtype=np.uint8)
    unsigned = words.view(f"u{bits // 8}").astype(np.uint64)
    for shift in sorted({0, 1, 4, 7, bits - 1}):
        for mask in (0xFF, 0xFFF, 0xFFFF):
            out = np.empty(words.size, dtype=np.uint8)
            _kernel.gather(words, tables, out, shift, mask)
            np.testing.assert_array_equal(out, tables[0, ((unsigned >> np.uint64(shift)) & np.uint64(mask)).astype(np.int64)],
                                          err_msg=f"shift {shift} mask {mask:#x}")


def test_affine_parameters_are_checked(target):
    words = np.arange(100, dtype=np.uint16)
    out = np.empty(100, dtype=np.uint8)
    with pytest.raises(ValueError, match="float32"):
        _kernel.affine(words, np.array([[0.1, 0.0, 0.0]]), out, 0, 16, False)
    with pytest.raises(ValueError, match="pivot"):
        _kernel.affine(words, np.array([[1.0, 0.0, 1e6]]), out, 0, 16, False)
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.affine(words, np.array([[1.0, 0.0, 0.0]]), out, 4, 16, False)
    with pytest.raises(TypeError):
        _kernel.affine(words.astype(np.uint32), np.array([[1.0, 0.0, 0.0]]), out, 0, 16, False)
    # a = 1, b = 0.5, pivot 0: out = clip(trunc(s + 0.5), 0, 255) on every loop of this target
    _kernel.affine(words, np.array([[1.0, 0.5, 0.0]]), out, 0, 16, False)
    np.testing.assert_array_equal(out, np.arange(100))


def test_small_inputs_stay_on_one_thread_and_volumes_split():
    if not _kernel.HAVE_THREADS:
        assert _kernel.threads_for(THREADED, 2) == 1
        pytest.skip("built without the thread pool: every loop runs on the calling thread")
    assert _kernel.get_thread_budget() >= 2 or engine.usable_cpus() == 1
    budget = _kernel.get_thread_budget()
    _kernel.set_thread_budget(max(budget, 2))
    try:
        assert _kernel.threads_for(512 * 512, 2) == 1           # one slice: waking a helper costs more
        assert _kernel.threads_for(_kernel.MIN_PIXELS_PER_THREAD * 2 - 1, 2) == 1
        assert _kernel.threads_for(_kernel.MIN_PIXELS_PER_THREAD * 2, 2) == 2
        assert _kernel.threads_for(THREADED, 2) == 2            # what the tests above run with threads=2
        assert _kernel.threads_for(64 * 512 * 512, 2) == 2
        assert _kernel.threads_for(64 * 512 * 512, 0) == 1
        assert _kernel.threads_for(0, 8) == 1
        _kernel.set_thread_budget(1)                            # the budget bounds every call
        assert _kernel.threads_for(64 * 512 * 512, 2) == 1
    finally:
        _kernel.set_thread_budget(budget)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_process_forked_after_threaded_work_renders_without_hanging():
    """Helper threads do not survive fork(): the child of a process whose pool had started helpers
    must not wait for them.  Its pool starts empty and its first threaded call starts new helpers."""
    words = _words(12, False, 16, 4 * THREADED)
    fmt, modality, vois = StoredFormat(16, 12, 11, False), Rescale(1.0, -1024.0), [Window(40, 80)]
    expected = render_stored(words, fmt, modality, vois, threads=1)
    for _ in range(50):  # the parent's pool starts its helpers (and they take part, on an idle core)
        assert np.array_equal(render_stored(words, fmt, modality, vois, threads=2), expected)
    helpers, _ = _kernel.pool_stats()
    assert helpers >= (1 if _kernel.HAVE_THREADS and _kernel.get_thread_budget() > 1 else 0)
    pid = os.fork()
    if pid == 0:  # child: render on two threads, report through the exit status
        ok = False
        try:
            ok = _kernel.pool_stats() == (0, 0)  # no helper was copied
            for _ in range(20):
                ok = ok and np.array_equal(render_stored(words, fmt, modality, vois, threads=2), expected)
            ok = ok and _kernel.pool_stats()[0] == helpers  # started again, lazily
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in the kernel")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert np.array_equal(render_stored(words, fmt, modality, vois, threads=2), expected)  # parent still fine


def test_set_target_rejects_unknown_and_restores_the_default():
    with pytest.raises(ValueError, match="unknown target"):
        _kernel.set_target("sse9")
    _kernel.set_target(None)
    # the default: the target DICOMRENDER_TARGET names (when this CPU runs it), else the best one
    forced = os.environ.get("DICOMRENDER_TARGET", "").strip().lower()
    assert _kernel.get_target() == (forced if forced in TARGETS else TARGETS[-1])


def test_concurrent_python_threads_get_exact_results():
    """The loops release the GIL; calls from several Python threads at once stay exact."""
    fmt = StoredFormat(16, 16, 15, True)
    words = _words(16, True, 16, THREADED)
    cases = [(Rescale(1.0, -1024.0), [Window(40, 80)]), (Rescale(1.0, -1024.0), [Window(0, 900, "SIGMOID")]),
             (Rescale(2.0, 3.0), [Window(400, 1800), Window(40, 80), Window(-600, 1500)])]
    expected = [render_stored(words, fmt, m, v, path="reference") for m, v in cases]
    failures = []

    def worker(index):
        modality, vois = cases[index % len(cases)]
        for _ in range(5):
            got = render_stored(words, fmt, modality, vois, threads=2)
            if not np.array_equal(got, expected[index % len(cases)]):
                failures.append(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def _peak_allocated(function) -> int:
    """Peak bytes traced during ``function()`` (numpy reports its data buffers to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak - before


@pytest.fixture(scope="module")
def streaming_words():
    """Every 12-bit pattern (with garbage above HighBit) tiled to 26 M pixels, plus an odd tail:
    outputs this large are written with streaming stores, which need their own alignment head."""
    base = _words(12, False, 16)
    return np.concatenate([np.tile(base, 26_000_000 // base.size + 1), base[:45]]), base


@pytest.mark.parametrize("k, path, threads", [(1, "auto", 1), (1, "narrow", 1), (1, "auto", 2), (3, "auto", 1),
                                              (3, "auto", 2)])
def test_streaming_stores_on_every_target(target, streaming_words, k, path, threads):
    """Outputs this large are streamed whichever thread writes a chunk (the decision is the call's)."""
    words, base = streaming_words
    fmt, modality = StoredFormat(16, 12, 11, False), Rescale(1.0, -1024.0)
    vois = [Window(40, 80), Window(400, 1800), Window(-600, 1500)][:k]
    row = np.stack([_reference_render(base, fmt, modality, [v], False) for v in vois], axis=-1)
    reps = (words.size - 45) // base.size
    shape = words.shape + ((k,) if k > 1 else ())
    for offset in (0, 1, 13):  # aligned and misaligned outputs
        buffer = np.empty(words.size * k + offset, dtype=np.uint8)
        out = buffer[offset:].reshape(shape)
        render_stored(words, fmt, modality, vois, out=out, threads=threads, path=path)
        got = out.reshape(words.size, k)
        assert np.array_equal(got[: reps * base.size].reshape(reps, base.size, k), np.broadcast_to(row, (reps,) + row.shape))
        assert np.array_equal(got[reps * base.size:], row[:45])


@pytest.mark.parametrize("path", ["auto", "lut", "arithmetic"])
def test_volume_render_allocates_only_the_output(path):
    """400 x 512 x 512 slices of 12-bit data: the only large allocation is the uint8 result."""
    volume = np.empty((400, 512, 512), dtype=np.uint16)
    volume[...] = np.arange(512, dtype=np.uint16) * 7 % 4096
    fmt = StoredFormat(16, 12, 11, False)
    output_bytes = volume.size
    vois = [Window(40, 80)]
    render_stored(volume[:1], fmt, Rescale(1.0, -1024.0), vois, path=path)  # warm the table cache
    peak = _peak_allocated(lambda: render_stored(volume, fmt, Rescale(1.0, -1024.0), vois, path=path))
    assert output_bytes <= peak < output_bytes + (1 << 20), peak
    # a cold cache adds only the tables' own temporaries (bounded by the 12-bit domain, not the image)
    engine.clear_caches()
    peak = _peak_allocated(lambda: window(volume, 40, 80, intercept=-1024, bits_stored=12))
    assert output_bytes <= peak < output_bytes + (4 << 20), peak
    # with out= nothing large is allocated at all
    out = np.empty(volume.shape, dtype=np.uint8)
    peak = _peak_allocated(lambda: window(volume, 40, 80, intercept=-1024, bits_stored=12, out=out))
    assert peak < (4 << 20), peak
    row = _reference.render_reference(volume[0, 0], 40, 80, intercept=-1024, bits_stored=12)
    assert np.array_equal(out, np.broadcast_to(row, out.shape))


_PORTABLE_DRIVER = r"""
#include "kernel.h"
#include <stdio.h>
#include <stdlib.h>
/* argv: n, then k rows of (a, b, pivot); stdin: n little-endian uint16 words (12 stored bits);
 * stdout: the affine loop's n * k bytes, then the table gather's n bytes through a table t[v] = v >> 4. */
int main(int argc, char **argv)
{
    size_t n = (size_t)atol(argv[1]);
    int k = (argc - 2) / 3;
    dr_affine w[DR_MAX_WINDOWS];
    for (int j = 0; j < k; j++) {
        w[j].a = (float)atof(argv[2 + 3 * j]);
        w[j].b = (float)atof(argv[3 + 3 * j]);
        w[j].pivot = atoi(argv[4 + 3 * j]);
    }
    uint16_t *src = malloc(2 * n);
    uint8_t *out = malloc(n * k), table[4096];
    for (int v = 0; v < 4096; v++) table[v] = (uint8_t)(v >> 4);
    if (fread(src, 2, n, stdin) != n) return 2;
    dr_init();
    dr_set_budget(2);
    dr_affine_render(dr_best_target(), 2, src, n, w, k, out, 0, 12, 0, 2);
    fwrite(out, 1, n * k, stdout);
    dr_gather(dr_best_target(), 2, src, n, table, 4096, 1, out, 0, 0xFFF, 2);
    fwrite(out, 1, n, stdout);
    return 0;
}
"""


def test_portable_build_without_x86_intrinsics_equals_reference(tmp_path):
    """The loops other CPUs (aarch64, other compilers) get: the kernel headers built with
    DR_PORTABLE_ONLY, so no x86 code at all, with the thread pool (futex, and the condition variables
    other systems get) and without (DR_NO_THREADS: the build must work without pthreads), strict C99, run on every 12-bit value with one and three
    proven windows and through a table, on two threads where there are, against the reference."""
    import shutil
    import subprocess
    import sysconfig

    compiler = shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc") \
        or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler")
    header_dir = os.path.dirname(_kernel.__file__)  # the headers sit beside the compiled module
    (tmp_path / "driver.c").write_text(_PORTABLE_DRIVER)
    fmt = StoredFormat(16, 12, 11, False)
    words = _words(12, False, 16, THREADED)
    modality = Rescale(1.0, -1024.0)
    builds = []
    for name, flags in (("pool", ["-pthread"]), ("condvar", ["-pthread", "-DDR_NO_FUTEX"]),
                        ("single", ["-DDR_NO_THREADS"])):
        exe = tmp_path / f"driver_{name}"
        subprocess.run([compiler, "-O2", "-std=c99", "-Wall", "-Werror", "-Wno-unused-function", "-ffp-contract=off",
                        "-DDR_PORTABLE_ONLY", *flags, "-I", header_dir, str(tmp_path / "driver.c"), "-o", str(exe),
                        "-lm"], check=True, capture_output=True)
        builds.append(exe)
    for exe, vois in itertools.product(builds, ([Window(40, 80)], [Window(40, 80), Window(400, 1800),
                                                                     Window(-600, 1500, "LINEAR_EXACT")])):
        params = compile_tables(fmt, modality, vois, False).affine
        assert params is not None
        args = [str(exe), str(words.size)] + [repr(float(x)) if i % 3 < 2 else str(int(x))
                                             for i, x in enumerate(params.reshape(-1))]
        result = subprocess.run(args, input=words.astype("<u2").tobytes(), capture_output=True, check=True).stdout
        k = len(vois)
        got = np.frombuffer(result[: words.size * k], dtype=np.uint8).reshape(words.size, k)
        expected = np.stack([_reference_render(words, fmt, modality, [v], False) for v in vois], axis=-1)
        np.testing.assert_array_equal(got, expected)
        gathered = np.frombuffer(result[words.size * k:], dtype=np.uint8)
        np.testing.assert_array_equal(gathered, (words.astype(np.int64) & 0xFFF) >> 4)
