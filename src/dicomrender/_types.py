"""Pure value types of the grayscale pipeline: stored format, modality and VOI transforms.

No module here loads the compiled kernel: reading a header needs these types, not the loops.
Each type validates its values on construction and evaluates itself in float64 through
:mod:`dicomrender._reference`, so a table built from these types is exact by construction.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from . import _reference
from .errors import InvalidDatasetError, InvalidWindowError

__all__ = ["FUNCTIONS", "Window", "HeaderWindow", "VOILut", "Rescale", "ModalityLut", "StoredFormat", "Modality", "VOI"]

#: VOI LUT Functions (PS3.3 C.11.2.1.3), in the order of the kernel's function codes.
FUNCTIONS = _reference.FUNCTIONS

@functools.lru_cache(maxsize=64)
def _domain(bits_stored: int, signed: bool) -> np.ndarray:
    # cached: 16-bit domains take ~2 ms to build and every data-driven window asks for one
    patterns = np.arange(1 << bits_stored, dtype=np.int64)
    values = _reference.stored_values(patterns, bits_stored, bits_stored - 1, signed)
    values.setflags(write=False)
    return values


def _finite(value, attribute: str, error=InvalidWindowError) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float64 range
        number = math.inf
    except (TypeError, ValueError):
        raise error(f"{attribute} must be a number, got {value!r}", attribute=attribute) from None
    if not math.isfinite(number):
        raise error(f"{attribute} must be finite, got {number!r}", attribute=attribute)
    return number


@dataclass(frozen=True)
class Window:
    """A VOI window: centre, width and VOI LUT Function (PS3.3 C.11.2.1.2).

    Raises :class:`InvalidWindowError` for NaN/inf values, width < 1 with
    LINEAR and width <= 0 with LINEAR_EXACT or SIGMOID.
    """

    center: float
    width: float
    function: str = "LINEAR"
    explanation: Optional[str] = field(default=None, compare=False)

    def __post_init__(self):
        center = _finite(self.center, "WindowCenter")
        width = _finite(self.width, "WindowWidth")
        function = str(self.function or "LINEAR").strip().upper().replace(" ", "_")
        if function not in FUNCTIONS:
            raise InvalidWindowError(
                f"VOILUTFunction must be one of {', '.join(FUNCTIONS)}, got {self.function!r}",
                attribute="VOILUTFunction",
            )
        if function == "LINEAR" and width < 1:
            raise InvalidWindowError(f"WindowWidth must be >= 1 for LINEAR, got {width:g}", attribute="WindowWidth")
        if function != "LINEAR" and width <= 0:
            raise InvalidWindowError(f"WindowWidth must be > 0 for {function}, got {width:g}", attribute="WindowWidth")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "function", function)

    @property
    def snap(self) -> bool:
        """Whether the rounding rule snaps near-integers (not for SIGMOID: see ``_reference.to_uint8``)."""
        return self.function != "SIGMOID"

    def values(self, x: np.ndarray) -> np.ndarray:
        """Continuous display values in [0, 255] for modality values ``x``."""
        return _reference.voi_values(x, self.center, self.width, self.function)


def _lut_array(data, attribute: str) -> np.ndarray:
    array = np.asarray(data)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        raise InvalidDatasetError(f"{attribute} must be a non-empty 1-D integer table", attribute=attribute)
    array = array.astype(np.int64)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class VOILut:
    """A VOI LUT Sequence item: table, first mapped value and entry bit depth."""

    data: np.ndarray
    first_mapped: int
    bits: int
    explanation: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "data", _lut_array(self.data, "LUTData"))
        if not 1 <= int(self.bits) <= 16:
            raise InvalidDatasetError(f"LUTDescriptor bits must be 8..16, got {self.bits}", attribute="LUTDescriptor")

    #: entry * 255 / (2**bits - 1) is rational: the snap applies.
    snap = True

    def values(self, x: np.ndarray) -> np.ndarray:
        return _reference.voi_lut_values(x, self.data, self.first_mapped, self.bits)

    def key(self):
        return ("voilut", self.data.tobytes(), self.first_mapped, self.bits)


@dataclass(frozen=True)
class Rescale:
    """Modality transform by Rescale Slope and Intercept."""

    slope: float = 1.0
    intercept: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "slope", _finite(self.slope, "RescaleSlope", InvalidDatasetError))
        object.__setattr__(self, "intercept", _finite(self.intercept, "RescaleIntercept", InvalidDatasetError))

    def values(self, stored: np.ndarray) -> np.ndarray:
        return _reference.modality_values(stored, self.slope, self.intercept)

    @property
    def is_integer(self) -> bool:
        return self.slope.is_integer() and self.intercept.is_integer()


@dataclass(frozen=True, eq=False)
class ModalityLut:
    """A Modality LUT Sequence item."""

    data: np.ndarray
    first_mapped: int

    def __post_init__(self):
        object.__setattr__(self, "data", _lut_array(self.data, "LUTData"))

    def values(self, stored: np.ndarray) -> np.ndarray:
        return _reference.apply_lut(stored, self.data, self.first_mapped).astype(np.float64)

    def key(self):
        return ("modlut", self.data.tobytes(), self.first_mapped)

    is_integer = True


@dataclass(frozen=True)
class StoredFormat:
    """How stored values sit in their allocated words (PS3.3 C.7.6.3.1)."""

    bits_allocated: int
    bits_stored: int
    high_bit: int
    signed: bool

    def __post_init__(self):
        if self.bits_allocated not in (8, 16, 32):
            raise InvalidDatasetError(f"BitsAllocated must be 8, 16 or 32, got {self.bits_allocated}",
                                      attribute="BitsAllocated")
        if not 1 <= self.bits_stored <= self.bits_allocated:
            raise InvalidDatasetError(
                f"BitsStored must be 1..BitsAllocated ({self.bits_allocated}), got {self.bits_stored}",
                attribute="BitsStored")
        if not self.bits_stored - 1 <= self.high_bit < self.bits_allocated:
            raise InvalidDatasetError(
                f"HighBit must be {self.bits_stored - 1}..{self.bits_allocated - 1}, got {self.high_bit}",
                attribute="HighBit")

    @property
    def shift(self) -> int:
        return self.high_bit - self.bits_stored + 1

    @property
    def unsigned_dtype(self) -> np.dtype:
        return _UNSIGNED[self.bits_allocated]

    def domain(self) -> np.ndarray:
        """Stored value of every bit pattern ``0 .. 2**bits_stored - 1``, in pattern order (read-only)."""
        return _domain(self.bits_stored, self.signed)

    def stored(self, raw: np.ndarray) -> np.ndarray:
        return _reference.stored_values(raw, self.bits_stored, self.high_bit, self.signed)


_UNSIGNED: "dict[int, np.dtype]" = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.uint32)}

Modality = Union[Rescale, ModalityLut]
VOI = Union[Window, VOILut]


@dataclass(frozen=True)
class HeaderWindow:
    """A window as the header states it; validated only when used, so one bad value
    does not hide the others."""

    center: Any
    width: Any
    function: str
    explanation: Optional[str]

    def to_window(self) -> Window:
        return Window(self.center, self.width, self.function, self.explanation)
