"""Display shutters (PS3.3 C.7.6.11 Display Shutter, C.7.6.15 Bitmap Display Shutter), as plain values.

The same attributes describe the shutters of a presentation state and those an image (CR, DX, XA, RF)
carries itself.  Coordinates stay as the standard gives them: 1-based rows and columns of the image
pixel matrix.  The shutter values are read and checked here; painting them is
:mod:`dicomrender.display.shutter`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from ..errors import InvalidDatasetError
from .elements import get as _element
from .elements import tag_of, values

__all__ = ["Shutters", "read_shutters", "MAX_POLYGON_VERTICES", "shutter_value"]

#: Most vertices a polygonal shutter may have: real ones have a handful; each costs time per image row.
MAX_POLYGON_VERTICES = 10_000

_SHAPES = frozenset(("RECTANGULAR", "CIRCULAR", "POLYGONAL", "BITMAP"))
#: Coordinates beyond this many pixels from the image are as good as infinitely far: clipped to it, so
#: that nonsense values (2**31) never meet float rounding or huge integer arithmetic.
_FAR = 1 << 24


@dataclass(frozen=True)
class Shutters:
    """The shutters of an image or a presentation state.

    A pixel is shown only if it lies inside every geometric shape given and outside the bitmap
    shutter's set bits; the others are painted with ``value``.

    Attributes
    ----------
    rectangle : (left, right, upper, lower) or None
        Shown: columns ``left..right`` and rows ``upper..lower`` (1-based, inclusive).
    circle : (row, column, radius) or None
        Shown: pixel centres at most ``radius`` from the centre (1-based row and column).
    polygon : numpy.ndarray or None
        ``(n, 2)`` float64 vertices, (row, column), 1-based: shown where the pixel centre lies
        inside (even-odd rule) or on the boundary.
    bitmap_group : int or None
        The overlay group (0x6000..0x601E) whose set bits are shuttered (BITMAP shape).
    value : int
        The 8-bit value of shuttered pixels: ``floor(255 * P / 65535)`` of the Shutter Presentation
        Value ``P`` (0 when absent).  It is a P-value: never inverted.
    """

    rectangle: Optional[Tuple[int, int, int, int]] = None
    circle: Optional[Tuple[float, float, float]] = None
    polygon: Optional[np.ndarray] = None
    bitmap_group: Optional[int] = None
    value: int = 0

    @property
    def shapes(self) -> Tuple[str, ...]:
        """The shapes present, by their Shutter Shape names."""
        return tuple(name for name, shape in (("RECTANGULAR", self.rectangle), ("CIRCULAR", self.circle),
                                              ("POLYGONAL", self.polygon), ("BITMAP", self.bitmap_group))
                     if shape is not None)


def get(ds: Dataset, keyword: str):
    """The value of ``keyword``; an element pydicom cannot decode (a radius of "NaN" in an IS) is an
    :class:`InvalidDatasetError` naming it."""
    try:
        return _element(ds, keyword)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidDatasetError(f"{keyword} cannot be decoded: {exc}", attribute=keyword) from None


def shutter_value(ds: Dataset, default: int = 0) -> int:
    """The 8-bit value ``floor(255 * P / 65535)`` of Shutter Presentation Value ``P`` (``default`` if absent)."""
    raw = get(ds, "ShutterPresentationValue")
    if raw is None or raw == "":
        return default
    p = _integer(raw, "ShutterPresentationValue")
    if not 0 <= p <= 65535:
        raise InvalidDatasetError(f"ShutterPresentationValue must be 0..65535, got {p}",
                                  attribute="ShutterPresentationValue")
    return 255 * p // 65535


def read_shutters(ds: Dataset) -> Optional[Shutters]:
    """The shutters ``ds`` describes (Shutter Shape and the attributes of each shape), or None.

    Raises
    ------
    InvalidDatasetError
        Naming the attribute: an unknown shape, a missing or non-numeric coordinate, a negative or
        non-finite radius, a polygon with fewer than 3 or more than :data:`MAX_POLYGON_VERTICES`
        vertices, BITMAP combined with a geometric shape.
    """
    shapes = [str(v).strip().upper() for v in values(get(ds, "ShutterShape"))]
    if not shapes:
        return None
    unknown = [s for s in shapes if s not in _SHAPES]
    if unknown:
        raise InvalidDatasetError(f"ShutterShape {unknown[0]!r} is not one of {', '.join(sorted(_SHAPES))}",
                                  attribute="ShutterShape")
    if "BITMAP" in shapes and len(set(shapes)) > 1:
        raise InvalidDatasetError("ShutterShape BITMAP cannot be combined with geometric shapes",
                                  attribute="ShutterShape")
    rectangle = circle = polygon = group = None
    if "RECTANGULAR" in shapes:
        rectangle = tuple(_clip(_integer(get(ds, k), k)) for k in (
            "ShutterLeftVerticalEdge", "ShutterRightVerticalEdge", "ShutterUpperHorizontalEdge",
            "ShutterLowerHorizontalEdge"))
    if "CIRCULAR" in shapes:
        center = _numbers(get(ds, "CenterOfCircularShutter"), "CenterOfCircularShutter", 2)
        radius = _number(get(ds, "RadiusOfCircularShutter"), "RadiusOfCircularShutter")
        if radius < 0:
            raise InvalidDatasetError(f"RadiusOfCircularShutter must be >= 0, got {radius:g}",
                                      attribute="RadiusOfCircularShutter")
        circle = (_clip(center[0]), _clip(center[1]), min(radius, 4.0 * _FAR))
    if "POLYGONAL" in shapes:
        _check_count(ds, "VerticesOfThePolygonalShutter")
        polygon = _polygon(get(ds, "VerticesOfThePolygonalShutter"))
    if "BITMAP" in shapes:
        group = _integer(get(ds, "ShutterOverlayGroup"), "ShutterOverlayGroup")
        if not (0x6000 <= group <= 0x601E and group % 2 == 0):
            raise InvalidDatasetError(f"ShutterOverlayGroup must be an even group 6000..601E, got {group:#06x}",
                                      attribute="ShutterOverlayGroup")
    return Shutters(rectangle, circle, polygon, group, shutter_value(ds))


def _check_count(ds: Dataset, keyword: str) -> None:
    """Refuse too many vertices from the raw bytes, before pydicom decodes each of millions of IS strings."""
    element = ds.get_item(tag_of(keyword)) if tag_of(keyword) in ds else None
    if isinstance(element, RawDataElement) and isinstance(element.value, bytes):
        count = (element.value.count(b"\\") + 1) // 2
        if count > MAX_POLYGON_VERTICES:
            raise InvalidDatasetError(f"{keyword} has {count} vertices, more than {MAX_POLYGON_VERTICES}: refused",
                                      attribute=keyword)


def _polygon(raw) -> np.ndarray:
    keyword = "VerticesOfThePolygonalShutter"
    # the count first: a hostile state may list millions of vertices, and converting them costs time
    count = len(raw) if isinstance(raw, (list, tuple)) or hasattr(raw, "__len__") and not isinstance(raw, str) \
        else len(values(raw))
    if count > 2 * MAX_POLYGON_VERTICES:
        raise InvalidDatasetError(f"{keyword} has {count // 2} vertices, more than {MAX_POLYGON_VERTICES}: refused",
                                  attribute=keyword)
    numbers = _numbers(raw, keyword, None)
    if len(numbers) % 2 or len(numbers) < 6:
        raise InvalidDatasetError(f"{keyword} must hold at least 3 (row, column) pairs, got {len(numbers)} values",
                                  attribute=keyword)
    vertices = np.clip(np.asarray(numbers, dtype=np.float64).reshape(-1, 2), -_FAR, _FAR)
    vertices.setflags(write=False)
    return vertices


def _clip(number):
    return min(max(number, -_FAR), _FAR)


def _integer(raw, keyword: str) -> int:
    if raw is None or raw == "":
        raise InvalidDatasetError(f"{keyword} is missing", attribute=keyword)
    number = _number(raw, keyword)
    if not number.is_integer():
        raise InvalidDatasetError(f"{keyword} must be an integer, got {raw!r}", attribute=keyword)
    return int(number)


def _number(raw, keyword: str) -> float:
    if raw is None or raw == "":
        raise InvalidDatasetError(f"{keyword} is missing", attribute=keyword)
    if isinstance(raw, (list, tuple)) or hasattr(raw, "__iter__") and not isinstance(raw, (str, bytes)):
        items = list(raw)
        if len(items) != 1:
            raise InvalidDatasetError(f"{keyword} must be one number, got {len(items)} values", attribute=keyword)
        raw = items[0]
    try:
        number = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise InvalidDatasetError(f"{keyword} must be a number, got {raw!r}", attribute=keyword) from None
    if not math.isfinite(number):
        raise InvalidDatasetError(f"{keyword} must be finite, got {raw!r}", attribute=keyword)
    return number


def _numbers(raw, keyword: str, count: Optional[int]) -> list:
    items = values(raw)
    if count is not None and len(items) != count:
        raise InvalidDatasetError(f"{keyword} must have {count} values, got {len(items)}", attribute=keyword)
    return [_number(v, keyword) for v in items]
