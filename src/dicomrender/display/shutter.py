"""Display shutters painted on a rendered uint8 image (PS3.3 C.7.6.11).

Geometry is in 1-based pixel coordinates, as the Display Shutter module gives it: the pixel in row
``r`` and column ``c`` has its centre at ``(r, c)``.  A pixel is shown when its centre lies inside
every shape given (on the boundary counts as inside); every other pixel takes the shutter value.
Each mask is built in time proportional to the pixels (and, for a polygon, rows x vertices), never
pixels x vertices.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = ["rectangle_mask", "circle_mask", "polygon_mask", "visible_mask", "paint"]

#: Pixel centres closer than this to a polygon edge count as on it (coordinates are decimal strings).
_ON_EDGE = 1e-9


def rectangle_mask(rows: int, columns: int, left: int, right: int, upper: int, lower: int) -> np.ndarray:
    """Shown pixels of a rectangular shutter: columns ``left..right``, rows ``upper..lower`` (1-based,
    inclusive); empty when the rectangle misses the image or is inverted."""
    mask = np.zeros((rows, columns), dtype=bool)
    r0, r1 = max(upper, 1), min(lower, rows)
    c0, c1 = max(left, 1), min(right, columns)
    if r0 <= r1 and c0 <= c1:
        mask[r0 - 1:r1, c0 - 1:c1] = True
    return mask


def circle_mask(rows: int, columns: int, row: float, column: float, radius: float) -> np.ndarray:
    """Shown pixels of a circular shutter: centres at most ``radius`` from ``(row, column)``."""
    r = np.arange(1, rows + 1, dtype=np.float64)[:, None] - row
    c = np.arange(1, columns + 1, dtype=np.float64)[None, :] - column
    return r * r + c * c <= radius * radius


def polygon_mask(rows: int, columns: int, vertices: np.ndarray) -> np.ndarray:
    """Shown pixels of a polygonal shutter: centres inside (even-odd rule) or on the boundary.

    ``vertices`` is ``(n, 2)``: (row, column), 1-based; the polygon closes itself.  Row by row over
    the polygon's rows in the image: the crossings of that row's centre line with the edges, then
    spans between pairs of crossings.
    """
    mask = np.zeros((rows, columns), dtype=bool)
    v = np.asarray(vertices, dtype=np.float64)
    y0, x0 = v[:, 0], v[:, 1]
    y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    sloped = y0 != y1
    first = max(int(np.ceil(low.min() - _ON_EDGE)), 1)
    last = min(int(np.floor(high.max() + _ON_EDGE)), rows)
    centres = np.arange(1, columns + 1, dtype=np.float64)
    for y in range(first, last + 1):
        row = mask[y - 1]
        # even-odd: half-open in y, so a vertex on the centre line is crossed once
        crossing = sloped & (low <= y) & (y < high)
        if crossing.any():
            xs = np.sort(x0[crossing] + (y - y0[crossing]) * (x1[crossing] - x0[crossing]) /
                         (y1[crossing] - y0[crossing]))
            _spans(row, centres, xs[0::2], xs[1::2])
        # the boundary: sloped edges through a centre of this row, horizontal edges on it
        touching = sloped & (low - _ON_EDGE <= y) & (y <= high + _ON_EDGE)
        if touching.any():
            xs = x0[touching] + (y - y0[touching]) * (x1[touching] - x0[touching]) / (y1[touching] - y0[touching])
            near = np.round(xs)
            hit = near[(np.abs(xs - near) <= _ON_EDGE) & (near >= 1) & (near <= columns)]
            row[hit.astype(np.intp) - 1] = True
        flat = ~sloped & (np.abs(y0 - y) <= _ON_EDGE)
        if flat.any():
            _spans(row, centres, np.minimum(x0[flat], x1[flat]), np.maximum(x0[flat], x1[flat]))
    return mask


def _spans(row: np.ndarray, centres: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> None:
    """Set the pixels of ``row`` whose centre lies in any ``[starts[i], stops[i]]`` (one pass, however
    many spans)."""
    first = np.searchsorted(centres, starts - _ON_EDGE, side="left")
    after = np.searchsorted(centres, stops + _ON_EDGE, side="right")
    keep = first < after
    if not keep.any():
        return
    edges = np.zeros(row.size + 1, dtype=np.int64)
    np.add.at(edges, first[keep], 1)
    np.add.at(edges, after[keep], -1)
    row |= np.cumsum(edges[:-1]) > 0


def visible_mask(rows: int, columns: int, rectangle: Optional[Sequence[int]] = None,
                 circle: Optional[Sequence[float]] = None, polygon: Optional[np.ndarray] = None,
                 bitmap: Optional[np.ndarray] = None) -> np.ndarray:
    """Pixels shown through every shutter given: inside each geometric shape, outside the bitmap's
    set bits (``bitmap``: bool ``(rows, columns)``, True where the shutter covers)."""
    shown = np.ones((rows, columns), dtype=bool)
    if rectangle is not None:
        left, right, upper, lower = rectangle
        shown &= rectangle_mask(rows, columns, left, right, upper, lower)
    if circle is not None:
        shown &= circle_mask(rows, columns, *circle)
    if polygon is not None:
        shown &= polygon_mask(rows, columns, polygon)
    if bitmap is not None:
        shown &= ~bitmap
    return shown


def paint(image: np.ndarray, shown: np.ndarray, value: int) -> np.ndarray:
    """Set the pixels of ``image`` (uint8, in place) not ``shown`` to ``value``; returns ``image``."""
    image[~shown] = value
    return image
