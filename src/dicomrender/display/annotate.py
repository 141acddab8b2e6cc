"""Graphic and text annotations drawn on a rendered uint8 image with Pillow (PS3.3 C.10.5).

Coordinates are image pixel coordinates as the Graphic Annotation module gives them in PIXEL
units: (column, row) with 0.0 at the top left corner of the top left pixel, so the centre of the
pixel in row r, column c (0-based) is (c + 0.5, r + 0.5).  Pillow puts pixel centres on integers,
hence the half-pixel shift below.

Every shape becomes line segments clipped to the image before Pillow draws them (Pillow walks a
line along its whole length: a segment from -1e9 to 1e9 would take seconds); curves become at
most :data:`MAX_CURVE_POINTS` points.  Fills use Pillow's polygon fill, whose cost is bounded by the
image.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["draw", "Shape", "Label", "outline_points", "clip_segment", "MAX_CURVE_POINTS"]

#: Points a circle or ellipse is drawn with, at most.
MAX_CURVE_POINTS = 720

#: One shape: (kind, points (n, 2) as column, row; filled).  Kinds: POLYLINE, INTERPOLATED, CIRCLE,
#: ELLIPSE, POINT.
Shape = Tuple[str, np.ndarray, bool]
#: One text: (text, top left corner (column, row) where it starts).
Label = Tuple[str, Tuple[float, float]]


def outline_points(kind: str, points: np.ndarray) -> np.ndarray:
    """The closed or open point list drawn for a shape (column, row): a polyline is itself, a circle
    (centre, a point on it) and an ellipse (major axis ends, minor axis ends) are sampled."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if kind == "CIRCLE":
        centre = p[0]
        radius = float(np.hypot(*(p[1] - p[0])))
        return _ellipse(centre, radius, radius, 0.0)
    if kind == "ELLIPSE":
        centre = (p[0] + p[1]) / 2
        major = p[1] - p[0]
        a = float(np.hypot(*major)) / 2
        b = float(np.hypot(*(p[3] - p[2]))) / 2
        return _ellipse(centre, a, b, math.atan2(major[1], major[0]))
    return p


def _ellipse(centre: np.ndarray, a: float, b: float, angle: float) -> np.ndarray:
    # about one point per pixel of circumference, bounded both ways
    count = int(min(max(2 * math.pi * max(a, b), 16), MAX_CURVE_POINTS))
    t = np.linspace(0.0, 2 * math.pi, count + 1)
    x, y = a * np.cos(t), b * np.sin(t)
    cos, sin = math.cos(angle), math.sin(angle)
    return np.stack([centre[0] + x * cos - y * sin, centre[1] + x * sin + y * cos], axis=1)


def clip_segment(x0: float, y0: float, x1: float, y1: float, width: float, height: float
                 ) -> Optional[Tuple[float, float, float, float]]:
    """The part of segment (x0, y0)-(x1, y1) inside ``[-1, width] x [-1, height]`` (Liang-Barsky), or None."""
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 + 1), (dx, width - x0), (-dy, y0 + 1), (dy, height - y0)):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy


def draw(image: np.ndarray, shapes: Iterable[Shape] = (), labels: Iterable[Label] = (), value: int = 255) -> np.ndarray:
    """Draw ``shapes`` and ``labels`` on ``image`` (uint8 ``(rows, columns)``, in place) in grey level
    ``value``; returns ``image``.

    Lines are one pixel wide; a filled shape is filled and outlined; POINT is one pixel; text uses
    Pillow's built-in bitmap font with its top left corner at the label's position.
    """
    height, width = image.shape[:2]
    canvas = Image.fromarray(image)
    pen = ImageDraw.Draw(canvas)
    for kind, points, filled in shapes:
        outline = outline_points(kind, points) - 0.5  # DICOM pixel edges -> Pillow pixel centres
        if kind == "POINT":
            for x, y in outline:
                if -0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5:
                    pen.point((int(round(x)), int(round(y))), fill=value)
            continue
        closed = filled or kind in ("CIRCLE", "ELLIPSE")
        if filled and len(outline) >= 3:
            pen.polygon([(float(x), float(y)) for x, y in outline], fill=value)
        _polyline(pen, outline, closed, width, height, value)
    font = ImageFont.load_default()
    for text, (x, y) in labels:
        if -1e6 < x < width and -1e6 < y < height and text:
            pen.text((float(x), float(y)), text, fill=value, font=font)
    image[...] = np.asarray(canvas)
    return image


def _polyline(pen: ImageDraw.ImageDraw, points: np.ndarray, closed: bool, width: int, height: int,
              value: int) -> None:
    pairs: Sequence = list(zip(points[:-1], points[1:]))
    if closed and len(points) > 2:
        pairs = list(pairs) + [(points[-1], points[0])]
    if len(points) == 1:
        pairs = [(points[0], points[0])]
    for (x0, y0), (x1, y1) in pairs:
        part = clip_segment(float(x0), float(y0), float(x1), float(y1), width, height)
        if part is not None:
            pen.line([(part[0], part[1]), (part[2], part[3])], fill=value, width=1)
