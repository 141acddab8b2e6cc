"""Benchmark data: CT-like volumes, not uniform noise.

A windowing kernel's speed can depend on the data (branches, table locality), so the
volumes look like CT: air around an elliptical body of soft tissue and fat, two lungs,
a spine and ribs of bone, a few bright calcifications, and Gaussian noise; every slice
differs a little.  Two encodings, as scanners write them:

* ``ct12``: 12-bit unsigned stored values in uint16 words, Rescale Intercept -1024;
* ``ct16s``: 16-bit signed values (int16, intercept 0), with metal up to 12000 HU.

``pytest benchmarks/ --benchmark-only`` collects the ``bench_*.py`` files here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest

#: Slice counts of the benchmark volumes (512 x 512 each).
SIZES = (1, 64, 400)
KINDS = ("ct12", "ct16s")


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` (pytest only looks for ``test_*.py`` by default)."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@dataclass(frozen=True)
class Volume:
    """Stored values plus what is needed to window them."""

    kind: str
    stored: np.ndarray          # (slices, 512, 512) uint16 or int16
    bits_stored: int
    intercept: float

    @property
    def pixels(self) -> int:
        return self.stored.size


def _phantom_hu(size: int = 512) -> np.ndarray:
    """One axial slice of a body phantom in Hounsfield units (float64, no noise)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    y = (y - size / 2) / (size / 2)
    x = (x - size / 2) / (size / 2)
    hu = np.full((size, size), -1000.0)                                    # air
    body = (x / 0.85) ** 2 + (y / 0.65) ** 2 <= 1
    hu[body] = -100.0                                                       # fat
    hu[(x / 0.78) ** 2 + (y / 0.58) ** 2 <= 1] = 40.0                       # soft tissue
    for cx in (-0.38, 0.38):                                                # lungs
        hu[((x - cx) / 0.28) ** 2 + ((y + 0.05) / 0.38) ** 2 <= 1] = -850.0
    hu[(x / 0.09) ** 2 + ((y - 0.4) / 0.09) ** 2 <= 1] = 1100.0             # vertebra
    hu[(x / 0.05) ** 2 + ((y - 0.4) / 0.05) ** 2 <= 1] = 300.0              # marrow
    ring = np.abs(np.hypot(x / 0.74, y / 0.55) - 1) < 0.025
    hu[ring & (np.sin(np.arctan2(y, x) * 9) > 0.2)] = 700.0                 # ribs
    hu[(x / 0.12) ** 2 + ((y + 0.1) / 0.1) ** 2 <= 1] = 60.0                # liver-ish organ
    for cx, cy in ((0.1, 0.2), (-0.2, -0.3), (0.3, -0.2)):                  # calcifications
        hu[(x - cx) ** 2 + (y - cy) ** 2 <= 0.0004] = 1600.0
    return hu


@lru_cache(maxsize=None)
def volume(kind: str, slices: int) -> Volume:
    """A CT-like volume of ``slices`` x 512 x 512 (built once per session)."""
    rng = np.random.default_rng(20240 + slices)
    base = _phantom_hu()
    noise_pool = rng.normal(0.0, 18.0, size=(8, 512, 512))
    if kind == "ct16s":
        # a metal implant: the reason to store 16 signed bits
        yy, xx = np.mgrid[0:512, 0:512]
        base = base.copy()
        base[(yy - 330) ** 2 + (xx - 200) ** 2 <= 36] = 12000.0
    dtype, offset, low, high = ((np.uint16, 1024.0, 0, 4095) if kind == "ct12" else (np.int16, 0.0, -32768, 32767))
    stored = np.empty((slices, 512, 512), dtype=dtype)
    for i in range(slices):
        # slices drift a little (anatomy shifts by up to a few pixels) and get their own noise
        shifted = np.roll(base, (i % 7) - 3, axis=0)
        hu = shifted + noise_pool[i % 8] * (1.0 + 0.1 * (i % 3))
        stored[i] = np.clip(np.rint(hu + offset), low, high)
    stored.setflags(write=False)
    return Volume(kind, stored, 12 if kind == "ct12" else 16, -1024.0 if kind == "ct12" else 0.0)


@pytest.fixture(params=[(k, s) for k in KINDS for s in SIZES], ids=lambda p: f"{p[0]}-{p[1]}x512x512")
def ct_volume(request) -> Volume:
    return volume(*request.param)
