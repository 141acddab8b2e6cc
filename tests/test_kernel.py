"""The fused kernel (through ``window``) against the float64 reference, bit for bit."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from dicomrender import _reference, window
from dicomrender._types import Rescale, StoredFormat, Window
from dicomrender.engine import render_stored
from dicomrender.errors import InvalidWindowError

BITS = (8, 10, 12, 14, 16)
FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def _domain(bits: int, signed: bool, allocated: int) -> np.ndarray:
    """Every stored bit pattern, with garbage in the bits above the stored ones."""
    patterns = np.arange(1 << bits, dtype=np.uint32)
    garbage = np.uint32(((1 << allocated) - 1) ^ ((1 << bits) - 1))
    words = np.concatenate([patterns, patterns | garbage, patterns | (garbage & np.uint32(0x5555_5555))])
    dtype = np.dtype(f"{'i' if signed else 'u'}{allocated // 8}")
    return words.astype(f"u{allocated // 8}").view(dtype)


def _parameter_grid(bits: int, signed: bool, seed: int):
    """(slope, intercept, center, width, function, invert): hand-picked edge cases plus random ones."""
    rng = np.random.default_rng(seed)
    low = -(1 << (bits - 1)) if signed else 0
    high = low + (1 << bits) - 1
    fixed = [
        (1.0, 0.0, (low + high) / 2, 1.0, "LINEAR", False),          # width 1: a threshold
        (1.0, 0.0, (low + high) / 2, 1e-6, "LINEAR_EXACT", False),     # tiny width
        (1.0, 0.0, (low + high) / 2, 1e9, "LINEAR", True),             # huge width
        (1.0, 0.0, high + 1e6, 100.0, "LINEAR", False),               # entirely below the window
        (1.0, 0.0, low - 1e6, 100.0, "SIGMOID", True),                # entirely above
        (1.0, -1024.0, 40.0, 80.0, "LINEAR", False),                  # brain
        (1.0, -1024.0, 40.5, 101.0, "LINEAR", False),                 # non-integer centre
        (2.5, -3.25, 550.0, 1024.0, "LINEAR_EXACT", True),
        (-1.0, 100.0, 0.0, 50.0, "SIGMOID", False),                   # negative slope
        (0.0, 7.0, 7.0, 2.0, "LINEAR", False),                        # zero slope
    ]
    for _ in range(14):
        slope = float(rng.choice([1.0, 0.5, 2.0, rng.uniform(-4, 4), 3.774]))
        intercept = float(rng.choice([0.0, -1024.0, rng.uniform(-5000, 5000)]))
        center = float(rng.uniform(low, high) * slope + intercept) + float(rng.choice([0.0, 0.5, rng.uniform(-1, 1)]))
        width = float(rng.choice([1.0, 2.0, rng.uniform(1, 4000), rng.uniform(1, 200)]))
        fixed.append((slope, intercept, center, width, str(rng.choice(FUNCTIONS)), bool(rng.integers(2))))
    return fixed


@pytest.mark.parametrize("bits,signed", list(itertools.product(BITS, (False, True))))
def test_window_equals_reference_on_every_stored_value(bits, signed, target):
    allocated = 8 if bits == 8 else 16
    words = _domain(bits, signed, allocated)
    for slope, intercept, center, width, function, invert in _parameter_grid(bits, signed, seed=bits * 2 + signed):
        got = window(words, center, width, slope=slope, intercept=intercept, function=function, invert=invert,
                     bits_stored=bits, signed=signed)
        expected = _reference.render_reference(words, center, width, function=function, slope=slope,
                                               intercept=intercept, invert=invert, bits_stored=bits, signed=signed)
        assert got.dtype == np.uint8 and got.shape == words.shape
        mismatch = np.flatnonzero(got != expected)
        assert mismatch.size == 0, (slope, intercept, center, width, function, invert, words[mismatch[:5]])


def test_high_bit_and_garbage_bits_never_leak(target):
    # 12 stored bits at bits 2..13 (HighBit 13), overlay-like garbage in bits 0-1 and 14-15
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 4096, size=5000).astype(np.uint16)
    words = (stored << 2) | rng.integers(0, 4, size=5000).astype(np.uint16) | np.uint16(0xC000)
    got = window(words, 2048, 4096, bits_stored=12, high_bit=13, signed=False)
    clean = window(stored, 2048, 4096, bits_stored=12, signed=False)
    np.testing.assert_array_equal(got, clean)
    np.testing.assert_array_equal(got, _reference.render_reference(stored, 2048, 4096, bits_stored=12))


@pytest.mark.parametrize("dtype", ["int32", "uint32", "float32", "float64"])
def test_arithmetic_path_equals_reference(dtype, target):
    rng = np.random.default_rng(7)
    if dtype.startswith("float"):
        data = rng.normal(0, 2000, size=20000).astype(dtype)
        data[:4] = [np.nan, np.inf, -np.inf, 0.0]
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, size=20000, dtype=dtype, endpoint=True)
    for center, width, function, slope, intercept, invert in [
        (0.0, 4000.0, "LINEAR", 1.0, 0.0, False),
        (40.5, 101.0, "LINEAR_EXACT", 1e-5, -3.0, True),
        (-200.0, 1e9, "SIGMOID", 0.5, 100.0, False),
        (1e6, 1.0, "LINEAR", 1.0, 0.0, True),
    ]:
        got = window(data, center, width, function=function, slope=slope, intercept=intercept, invert=invert)
        expected = _reference.render_reference(data, center, width, function=function, slope=slope,
                                               intercept=intercept, invert=invert)
        np.testing.assert_array_equal(got, expected)


def test_nan_renders_black_and_infinities_saturate(target):
    data = np.array([np.nan, -np.inf, np.inf, 40.0], dtype=np.float32)
    np.testing.assert_array_equal(window(data, 40, 80), [0, 0, 255, 129])
    np.testing.assert_array_equal(window(data, 40, 80, invert=True), [0, 255, 0, 125])  # 255 - 129.11


def test_paths_agree_on_integer_data(target):
    words = _domain(12, True, 16)
    fmt = StoredFormat(16, 12, 11, True)
    vois = [Window(100, 700, "LINEAR"), Window(-50.25, 33, "LINEAR_EXACT"), Window(0, 900, "SIGMOID")]
    results = {path: render_stored(words, fmt, Rescale(1.5, -20), vois, invert=True, path=path)
               for path in ("lut", "arithmetic", "reference")}
    np.testing.assert_array_equal(results["lut"], results["reference"])
    np.testing.assert_array_equal(results["arithmetic"], results["reference"])
    assert results["lut"].shape == words.shape + (3,)


def test_multi_window_equals_single_windows_stacked(target):
    words = _domain(16, True, 16)
    centers, widths = [40, 75, 50], [80, 215, 380]
    stacked = window(words, centers, widths, intercept=-1024)
    for j in range(3):
        np.testing.assert_array_equal(stacked[..., j], window(words, centers[j], widths[j], intercept=-1024))


def test_shapes_and_out_buffer(target):
    volume = (np.arange(3 * 5 * 7, dtype=np.uint16) * 97 % 4096).reshape(3, 5, 7)
    out = np.empty(volume.shape, dtype=np.uint8)
    result = window(volume, 2000, 1000, bits_stored=12, out=out)
    assert result is out
    np.testing.assert_array_equal(out, _reference.render_reference(volume, 2000, 1000, bits_stored=12))
    transposed = volume.transpose(2, 1, 0)  # not contiguous: copied first, same values
    np.testing.assert_array_equal(window(transposed, 2000, 1000, bits_stored=12),
                                  _reference.render_reference(transposed, 2000, 1000, bits_stored=12))
    with pytest.raises(ValueError, match="out must be"):
        window(volume, 2000, 1000, out=np.empty((3, 5), dtype=np.uint8))
    assert window(np.empty((0, 4), dtype=np.int16), 0, 10).shape == (0, 4)


def test_brain_window_hand_computed_points(target):
    # c=40 w=80 LINEAR: 0 up to x=0, 255 above x=79, else floor(((x-39.5)/79 + 0.5) * 255)
    hu = np.array([-1024, -1, 0, 39, 40, 79, 80, 3071])
    stored = (hu + 1024).astype(np.uint16)
    got = window(stored, 40, 80, intercept=-1024, bits_stored=12)
    np.testing.assert_array_equal(got, [0, 0, 0, 125, 129, 255, 255, 255])


@pytest.mark.parametrize("center,width,slope,intercept", [
    (550, 1024, 1, 0), (40.5, 101, 1, -1024), ("40.5", "101", 1, -1024), (127, 256, 1, 0), (1000, 2001, 2, -3),
])
def test_linear_equals_exact_rational_arithmetic(center, width, slope, intercept):
    """floor of the exact rational y (fractions) on a 12-bit domain: the rule of PIPELINE section 5."""
    stored = np.arange(4096, dtype=np.uint16)
    got = window(stored, float(center), float(width), slope=slope, intercept=intercept, bits_stored=12)
    c, w = Fraction(str(center)), Fraction(str(width))
    expected = []
    for s in range(4096):
        x = Fraction(s) * slope + intercept
        if x <= c - Fraction(1, 2) - (w - 1) / 2:
            y = Fraction(0)
        elif x > c - Fraction(1, 2) + (w - 1) / 2:
            y = Fraction(255)
        else:
            y = ((x - (c - Fraction(1, 2))) / (w - 1) + Fraction(1, 2)) * 255
        expected.append(math.floor(y))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("center,width,function,match", [
    (40, 0, "LINEAR", "WindowWidth"),
    (40, 0.5, "LINEAR", "WindowWidth"),
    (40, -10, "SIGMOID", "WindowWidth"),
    (40, 0, "LINEAR_EXACT", "WindowWidth"),
    (float("nan"), 80, "LINEAR", "WindowCenter"),
    (40, float("inf"), "LINEAR", "WindowWidth"),
    (40, 80, "GAMMA", "VOILUTFunction"),
])
def test_invalid_windows_raise(center, width, function, match):
    with pytest.raises(InvalidWindowError, match=match):
        window(np.zeros(4, np.uint16), center, width, function=function)


def test_width_between_zero_and_one_is_valid_for_linear_exact():
    got = window(np.array([39, 40, 41], np.int16), 40, 0.5, function="LINEAR_EXACT")
    np.testing.assert_array_equal(got, _reference.render_reference(np.array([39, 40, 41], np.int16), 40, 0.5,
                                                                   function="LINEAR_EXACT"))
    np.testing.assert_array_equal(got, [0, 127, 255])
