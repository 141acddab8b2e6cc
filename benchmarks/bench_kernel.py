"""Windowing kernel against numpy, pydicom and the memory floor, side by side.

One pytest-benchmark group per data set (12-bit and 16-bit signed CT-like volumes of
1, 64 and 400 slices of 512 x 512); in each group:

* ``cast_floor`` -- ``np.copyto(out_u8, stored_u16, casting="unsafe")``: read 2 bytes,
  write 1 byte per pixel, nothing else.  No windowing kernel can beat it by much;
* ``astype_uint8`` -- ``stored.astype(np.uint8)``, the same cast into a new array;
* ``dicomrender_*`` -- :func:`dicomrender.window` (brain window, out= reused like the
  floor's) on 1 thread, on the default threads (the usable cores), from two Python threads at
  once (half the volume each), forced onto the lookup-table gather, forced onto the fused float64 arithmetic, and
  three windows (brain / bone / lung) to RGB in one pass;
* ``numpy_float32`` -- the usual float32 expression with ``np.clip``;
* ``numpy_piecewise_float64`` -- the classic ``np.piecewise`` recipe in float64;
* ``pydicom_chain`` -- ``apply_modality_lut`` + ``apply_voi_lut`` + scaling to 8 bits.

Each benchmark also records the peak memory one call allocates (tracemalloc, which
numpy reports its buffers to) in ``extra_info["peak_mib"]``.

    python -m pytest benchmarks/bench_kernel.py --benchmark-only
    python benchmarks/report.py          # runs this and writes benchmarks/RESULTS.md
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

import dicomrender
from dicomrender._types import Rescale, StoredFormat, Window
from dicomrender.engine import render_stored

CENTER, WIDTH = 40.0, 80.0                                  # brain
THREE = ([40.0, 400.0, -600.0], [80.0, 1800.0, 1500.0])     # brain, bone, lung

#: (warm-up + timed) rounds per slice count: fast methods / slow ones (numpy, pydicom).
ROUNDS = {1: (300, 20), 64: (20, 3), 400: (8, 2)}


def _scheduling() -> str:
    """"fifo:<priority>" under chrt -f, else "other" (recorded: report.py refuses real-time runs, which
    hide the scheduler stalls users meet)."""
    try:
        if os.sched_getscheduler(0) == os.SCHED_FIFO:
            return f"fifo:{os.sched_getparam(0).sched_priority}"
    except (AttributeError, OSError):
        pass
    return "other"


def _measure(benchmark, volume, function, slow=False):
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    benchmark.extra_info["peak_mib"] = round((peak - before) / 2**20, 1)
    benchmark.extra_info["pixels"] = volume.pixels
    benchmark.extra_info["kind"] = volume.kind
    benchmark.extra_info["slices"] = volume.stored.shape[0]
    benchmark.extra_info["sched"] = _scheduling()
    benchmark.group = f"{volume.kind} {volume.stored.shape[0]}x512x512"
    rounds = ROUNDS[volume.stored.shape[0]][1 if slow else 0]
    benchmark.pedantic(function, rounds=rounds, iterations=1, warmup_rounds=1)


def _window_kwargs(volume):
    return dict(intercept=volume.intercept, bits_stored=volume.bits_stored)


def test_cast_floor(benchmark, ct_volume):
    out = np.empty(ct_volume.stored.shape, dtype=np.uint8)
    _measure(benchmark, ct_volume, lambda: np.copyto(out, ct_volume.stored, casting="unsafe"))


def test_astype_uint8(benchmark, ct_volume):
    """The cast users reach for first (wrong pictures, but the cost of a plain allocating pass)."""
    _measure(benchmark, ct_volume, lambda: ct_volume.stored.astype(np.uint8))


def test_dicomrender_1_thread(benchmark, ct_volume):
    out = np.empty(ct_volume.stored.shape, dtype=np.uint8)
    _measure(benchmark, ct_volume,
             lambda: dicomrender.window(ct_volume.stored, CENTER, WIDTH, out=out, threads=1, **_window_kwargs(ct_volume)))


def test_dicomrender_all_threads(benchmark, ct_volume):
    out = np.empty(ct_volume.stored.shape, dtype=np.uint8)
    benchmark.extra_info["threads"] = dicomrender.get_threads()
    _measure(benchmark, ct_volume,
             lambda: dicomrender.window(ct_volume.stored, CENTER, WIDTH, out=out, **_window_kwargs(ct_volume)))


def _forced(volume, path, out):
    fmt = StoredFormat(16, volume.bits_stored, volume.bits_stored - 1, volume.stored.dtype.kind == "i")
    modality, vois = Rescale(1.0, volume.intercept), [Window(CENTER, WIDTH)]
    return lambda: render_stored(volume.stored, fmt, modality, vois, out=out, path=path)


def test_dicomrender_lut_path(benchmark, ct_volume):
    out = np.empty(ct_volume.stored.shape, dtype=np.uint8)
    _measure(benchmark, ct_volume, _forced(ct_volume, "lut", out))


def test_dicomrender_arithmetic_path(benchmark, ct_volume):
    out = np.empty(ct_volume.stored.shape, dtype=np.uint8)
    _measure(benchmark, ct_volume, _forced(ct_volume, "arithmetic", out))


def test_dicomrender_three_windows(benchmark, ct_volume):
    out = np.empty(ct_volume.stored.shape + (3,), dtype=np.uint8)
    _measure(benchmark, ct_volume,
             lambda: dicomrender.window(ct_volume.stored, *THREE, out=out, **_window_kwargs(ct_volume)))


def numpy_float32(stored, center, width, intercept):
    """The expression most code bases carry: float32, clip, cast."""
    x = stored.astype(np.float32) + np.float32(intercept)
    y = ((x - np.float32(center - 0.5)) / np.float32(width - 1) + np.float32(0.5)) * np.float32(255)
    return np.clip(y, 0, 255).astype(np.uint8)


def numpy_piecewise(stored, center, width, intercept):
    """The classic recipe: float64 modality values through np.piecewise (PS3.3 C.11.2.1.2.1)."""
    x = stored.astype(np.float64) * 1.0 + intercept
    y = np.piecewise(
        x,
        [x <= center - 0.5 - (width - 1) / 2, x > center - 0.5 + (width - 1) / 2],
        [0, 255, lambda v: ((v - (center - 0.5)) / (width - 1) + 0.5) * 255],
    )
    return y.astype(np.uint8)


def pydicom_chain(stored, ds, y_min, y_max):
    """What pydicom users write: modality LUT, VOI LUT, then scale pydicom's output range to 8 bits."""
    values = apply_voi_lut(apply_modality_lut(stored, ds), ds)
    return ((values - y_min) / (y_max - y_min) * 255).astype(np.uint8)


def test_numpy_float32(benchmark, ct_volume):
    _measure(benchmark, ct_volume, lambda: numpy_float32(ct_volume.stored, CENTER, WIDTH, ct_volume.intercept),
             slow=True)


def test_numpy_piecewise_float64(benchmark, ct_volume):
    _measure(benchmark, ct_volume, lambda: numpy_piecewise(ct_volume.stored, CENTER, WIDTH, ct_volume.intercept),
             slow=True)


def _pydicom_dataset(volume) -> tuple[Dataset, float, float]:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = volume.bits_stored
    ds.PixelRepresentation = int(volume.stored.dtype.kind == "i")
    ds.RescaleSlope = 1
    ds.RescaleIntercept = volume.intercept
    ds.WindowCenter = CENTER
    ds.WindowWidth = WIDTH
    # apply_voi_lut maps the window onto the rescaled range of the stored bits
    low = -(1 << (volume.bits_stored - 1)) if ds.PixelRepresentation else 0
    high = low + (1 << volume.bits_stored) - 1
    return ds, low + volume.intercept, high + volume.intercept


def test_pydicom_chain(benchmark, ct_volume):
    ds, y_min, y_max = _pydicom_dataset(ct_volume)
    _measure(benchmark, ct_volume, lambda: pydicom_chain(ct_volume.stored, ds, y_min, y_max), slow=True)


_POOL = ThreadPoolExecutor(2)


def test_dicomrender_two_python_threads(benchmark, ct_volume):
    """Two Python threads each window half the volume at once (the loops release the GIL; the calls
    share the kernel's one helper pool, and together they stay within the usable cores).

    Defined last, as it was when each Python thread got its own OpenMP team whose spinning perturbed
    later runs; the kernel's pool now parks idle helpers, so the order no longer matters."""
    slices = ct_volume.stored.shape[0]
    if slices < 2:
        pytest.skip("one slice: nothing to split between Python threads")
    out = np.empty(ct_volume.stored.shape, dtype=np.uint8)
    halves = [(ct_volume.stored[: slices // 2], out[: slices // 2]), (ct_volume.stored[slices // 2:], out[slices // 2:])]

    def run():
        futures = [_POOL.submit(dicomrender.window, stored, CENTER, WIDTH, out=part, **_window_kwargs(ct_volume))
                   for stored, part in halves]
        for future in futures:
            future.result()

    _measure(benchmark, ct_volume, run)


@pytest.mark.parametrize("kind", ["ct12", "ct16s"])
def test_methods_agree(kind):
    """Sanity (not timed): every method renders the same picture, up to the rounding rule."""
    from conftest import volume

    vol = volume(kind, 1)
    ours = dicomrender.window(vol.stored, CENTER, WIDTH, **_window_kwargs(vol)).astype(int)
    ds, y_min, y_max = _pydicom_dataset(vol)
    for other in (numpy_float32(vol.stored, CENTER, WIDTH, vol.intercept),
                  numpy_piecewise(vol.stored, CENTER, WIDTH, vol.intercept),
                  pydicom_chain(vol.stored, ds, y_min, y_max)):
        assert np.abs(ours - other.astype(int)).max() <= 1
    three = dicomrender.window(vol.stored, *THREE, **_window_kwargs(vol))
    np.testing.assert_array_equal(three[..., 0], ours)
