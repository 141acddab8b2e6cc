"""Readable float64 reference of the grayscale pipeline (PS3.3 C.11, PS3.4 N.2).

This module is the twin the tests trust: every compiled path must equal it bit
for bit on integer stored data.  It is written for clarity, not speed: each
step of the pipeline is one function, evaluated in float64 with numpy.

The 8-bit value is ``floor(y')`` clipped to 0..255, where ``y'`` is the
display value after inversion; a ``y'`` within ``SNAP`` of an integer counts
as that integer (see ``PIPELINE.md`` section 5), so ``floor(y' + SNAP)``;
SIGMOID, whose exact value is never an integer, is floored without the snap.
NaN modality values render as 0.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SNAP",
    "stored_values",
    "modality_values",
    "apply_lut",
    "voi_values",
    "voi_lut_values",
    "to_uint8",
    "render_reference",
]

#: A display value within this distance of an integer counts as that integer.
SNAP = 1e-9

FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def stored_values(raw: np.ndarray, bits_stored: int, high_bit: int | None = None,
                  signed: bool = False) -> np.ndarray:
    """Extract the stored values from allocated words (PS3.3 C.7.6.3.1.1).

    Takes bits ``high_bit - bits_stored + 1 .. high_bit`` of each word and
    sign-extends them from ``bits_stored`` when ``signed``.  Float arrays are
    returned as float64 unchanged.
    """
    raw = np.asarray(raw)
    if raw.dtype.kind == "f":
        return raw.astype(np.float64)
    if high_bit is None:
        high_bit = bits_stored - 1
    shift = high_bit - bits_stored + 1
    unsigned = raw.astype(np.int64)
    if raw.dtype.itemsize < 8:  # the word's bit pattern, whatever its signedness
        unsigned &= (1 << (raw.dtype.itemsize * 8)) - 1
    value = (unsigned >> shift) & ((1 << bits_stored) - 1)
    if signed:
        sign = 1 << (bits_stored - 1)
        value = np.where(value & sign, value - (1 << bits_stored), value)
    return value


def modality_values(stored: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Rescale: ``m = s * slope + intercept`` in float64 (PS3.3 C.11.1.1.2).

    Products beyond the float64 range become +-inf (and render as 0 or 255) without a warning.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(stored, dtype=np.float64) * float(slope) + float(intercept)


def apply_lut(values: np.ndarray, lut: np.ndarray, first_mapped: int) -> np.ndarray:
    """Map values through a LUT with the clamping of PS3.3 C.11.1.1.

    ``lut[0]`` for values below ``first_mapped``, ``lut[-1]`` for values at or
    above ``first_mapped + len(lut) - 1``, ``lut[v - first_mapped]`` between.
    Non-integer values are truncated towards minus infinity first.
    """
    lut = np.asarray(lut)
    values = np.asarray(values)
    with np.errstate(invalid="ignore"):
        index = np.floor(values.astype(np.float64)) - first_mapped
        index = np.clip(np.nan_to_num(index, nan=0.0), 0, len(lut) - 1).astype(np.int64)
    return lut[index]


def voi_values(x: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """The VOI LUT function (PS3.3 C.11.2.1.2-3), continuous output in [0, 255]."""
    x = np.asarray(x, dtype=np.float64)
    c = float(center)
    w = float(width)
    function = function.upper()
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if function == "LINEAR":
            lo = c - 0.5 - (w - 1) / 2
            hi = c - 0.5 + (w - 1) / 2
            y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0
            y = np.where(x <= lo, 0.0, np.where(x > hi, 255.0, y))
        elif function == "LINEAR_EXACT":
            lo = c - w / 2
            hi = c + w / 2
            y = ((x - c) / w + 0.5) * 255.0
            y = np.where(x <= lo, 0.0, np.where(x > hi, 255.0, y))
        elif function == "SIGMOID":
            y = 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        else:
            raise ValueError(f"unknown VOI LUT Function {function!r}")
    return y


def voi_lut_values(x: np.ndarray, lut: np.ndarray, first_mapped: int, bits: int) -> np.ndarray:
    """A VOI LUT Sequence item: map through the LUT and scale its entry range to [0, 255]."""
    entries = apply_lut(x, lut, first_mapped).astype(np.float64)
    return entries * (255.0 / ((1 << bits) - 1))


def to_uint8(y: np.ndarray, invert: bool = False, snap: bool = True) -> np.ndarray:
    """Presentation and the rounding rule: ``floor(y' + SNAP)`` clipped, NaN -> 0.

    ``snap=False`` for SIGMOID: its exact value is transcendental, never an
    integer for finite input, so a float64 result within 1e-9 below an integer
    is a true value just below it (a tail approaching 255), and floors down.
    """
    y = np.asarray(y, dtype=np.float64)
    if invert:
        y = 255.0 - y
    with np.errstate(invalid="ignore"):
        out = np.floor(y + SNAP) if snap else np.floor(y)
        out = np.where(np.isnan(out), 0.0, np.clip(out, 0.0, 255.0))
    return out.astype(np.uint8)


def render_reference(raw: np.ndarray, center: float, width: float, *, function: str = "LINEAR",
                     slope: float = 1.0, intercept: float = 0.0, invert: bool = False,
                     bits_stored: int | None = None, high_bit: int | None = None,
                     signed: bool | None = None) -> np.ndarray:
    """The whole pipeline from allocated words to uint8, one window."""
    raw = np.asarray(raw)
    if raw.dtype.kind in "iu":
        if bits_stored is None:
            bits_stored = raw.dtype.itemsize * 8
        if signed is None:
            signed = raw.dtype.kind == "i"
    s = stored_values(raw, bits_stored or 0, high_bit, bool(signed))
    m = modality_values(s, slope, intercept)
    return to_uint8(voi_values(m, center, width, function), invert, snap=function.upper() != "SIGMOID")
