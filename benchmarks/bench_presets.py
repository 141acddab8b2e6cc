"""Multi-window RGB in one pass vs three separate renders stacked.

Run::

    python -m pytest benchmarks/bench_presets.py --benchmark-group-by=group \
        --benchmark-columns=min,median,mean,ops --benchmark-sort=name

Each group renders the same three windows (``ich_rgb``: brain 40/80, subdural
75/215, head soft tissue 50/380):

- ``one_pass``: the kernel reads every stored word once and writes three
  bytes (three lookup tables gathered per pixel);
- ``three_pass``: three single-window renders, stacked with numpy
  (``np.stack(..., axis=-1)``), which is what users do without multi-window.

Groups: ``engine-<shape>-<threads>`` calls :func:`dicomrender.engine.render_stored`
on stored words already in memory (a 512 x 512 slice and a 64-slice
512 x 512 volume); ``render-<file>`` calls :func:`dicomrender.render` on a
parsed pydicom dataset (real CT, 693_UNCI).  Every benchmark first checks that
both ways give identical bytes.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import dicomrender
from dicomrender._types import Rescale, StoredFormat, Window
from dicomrender.engine import render_stored

ICH = ("brain", "subdural", "head_soft_tissue")
WINDOWS = [Window(40, 80), Window(75, 215), Window(50, 380)]
FORMAT = StoredFormat(16, 12, 11, False)  # 12-bit CT, stored = HU + 1024
RESCALE = Rescale(1.0, -1024.0)


def _volume(frames: int) -> np.ndarray:
    """Stored words of a CT-like volume: a head phantom of air, soft tissue, blood and bone."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[-1:1:512j, -1:1:512j]
    r = np.hypot(x, y)
    hu = np.where(r < 0.8, 35.0, -1000.0)
    hu = np.where((r >= 0.8) & (r < 0.88), 900.0, hu)
    hu = np.where((np.abs(x - 0.3) < 0.1) & (np.abs(y) < 0.2), 70.0, hu)
    stack = hu[None] + rng.normal(0, 15, (frames, 512, 512))
    return np.clip(np.round(stack + 1024), 0, 4095).astype(np.uint16)


def _three_pass(words, threads=None):
    return np.stack([render_stored(words, FORMAT, RESCALE, [w], threads=threads) for w in WINDOWS], axis=-1)


def _one_pass(words, threads=None):
    return render_stored(words, FORMAT, RESCALE, WINDOWS, threads=threads)


@pytest.fixture(scope="module", params=[1, 64], ids=["512x512", "64x512x512"])
def volume(request):
    words = _volume(request.param)
    return words[0] if request.param == 1 else words


@pytest.mark.parametrize("threads", [1, None], ids=["1thread", "allthreads"])
@pytest.mark.parametrize("way", ["one_pass", "three_pass"])
def test_engine(benchmark, volume, way, threads):
    benchmark.group = f"engine-{'x'.join(map(str, volume.shape))}-{'1thread' if threads else 'allthreads'}"
    benchmark.extra_info["pixels"] = int(volume.size)
    np.testing.assert_array_equal(_one_pass(volume), _three_pass(volume))
    func = _one_pass if way == "one_pass" else _three_pass
    result = benchmark(func, volume, threads)
    assert result.shape == volume.shape + (3,)


@pytest.fixture(scope="module")
def ct_dataset():
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("693_UNCI.dcm"))
    _ = ds.PixelData  # parsed once, outside the timing
    return ds


@pytest.mark.parametrize("way", ["one_pass", "three_pass"])
def test_render(benchmark, ct_dataset, way):
    benchmark.group = "render-693_UNCI-512x512"
    one = lambda: dicomrender.render(ct_dataset, list(ICH))  # noqa: E731
    three = lambda: np.stack([dicomrender.render(ct_dataset, p) for p in ICH], axis=-1)  # noqa: E731
    np.testing.assert_array_equal(one(), three())
    np.testing.assert_array_equal(dicomrender.render(ct_dataset, "ich_rgb"), one())
    benchmark(one if way == "one_pass" else three)
