"""Spatial transformation and displayed area of a rendered uint8 image (PS3.3 C.10.6, C.10.4).

Rotation is clockwise by 0, 90, 180 or 270 degrees, then the optional horizontal flip (C.10.6:
"before any Image Horizontal Flip is applied").  The displayed area is a rectangle of the image
before transformation (its corners are given in the original pixel matrix, 1-based, column\\row);
:func:`crop` cuts it out, black where it lies outside the image, and :func:`transform` then turns
it: the same pixels as turning the whole image and cutting the turned rectangle, with less work.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

__all__ = ["transform", "transformed_shape", "crop", "magnify", "magnified_shape", "display_to_image"]


def transform(image: np.ndarray, rotation: int, flip: bool) -> np.ndarray:
    """``image`` rotated clockwise by ``rotation`` degrees (0, 90, 180, 270), then flipped left-right
    when ``flip``; a new C-contiguous array (the input itself when nothing changes)."""
    if rotation % 90 or not 0 <= rotation < 360:
        raise ValueError(f"rotation must be 0, 90, 180 or 270, got {rotation}")
    turned = np.rot90(image, -(rotation // 90), axes=(0, 1))
    if flip:
        turned = turned[:, ::-1]
    return turned if turned is image else np.ascontiguousarray(turned)


def transformed_shape(rows: int, columns: int, rotation: int) -> Tuple[int, int]:
    """The ``(rows, columns)`` of a ``rows x columns`` image after :func:`transform`."""
    return (columns, rows) if rotation in (90, 270) else (rows, columns)


def crop(image: np.ndarray, top: int, left: int, bottom: int, right: int, fill: int = 0) -> np.ndarray:
    """Rows ``top..bottom`` and columns ``left..right`` of ``image`` (0-based, inclusive, possibly outside
    the image: those pixels are ``fill``), as a new array."""
    height, width = bottom - top + 1, right - left + 1
    if height < 1 or width < 1:
        raise ValueError(f"empty area: rows {top}..{bottom}, columns {left}..{right}")
    out = np.full((height, width) + image.shape[2:], fill, dtype=image.dtype)
    r0, r1 = max(top, 0), min(bottom, image.shape[0] - 1)
    c0, c1 = max(left, 0), min(right, image.shape[1] - 1)
    if r0 <= r1 and c0 <= c1:
        out[r0 - top:r1 - top + 1, c0 - left:c1 - left + 1] = image[r0:r1 + 1, c0:c1 + 1]
    return out


def magnified_shape(rows: int, columns: int, ratio: float) -> Tuple[int, int]:
    """The shape :func:`magnify` gives: each side times ``ratio``, rounded, at least 1."""
    return max(1, int(math.floor(rows * ratio + 0.5))), max(1, int(math.floor(columns * ratio + 0.5)))


def magnify(image: np.ndarray, ratio: float) -> np.ndarray:
    """``image`` scaled by ``ratio`` (> 0) with nearest-neighbour sampling: output pixel ``i`` takes
    input pixel ``floor((i + 0.5) / ratio)`` (its centre's position in the input)."""
    if not ratio > 0 or not math.isfinite(ratio):
        raise ValueError(f"ratio must be a positive number, got {ratio}")
    if ratio == 1:
        return image
    rows, columns = magnified_shape(image.shape[0], image.shape[1], ratio)
    r = np.minimum(((np.arange(rows) + 0.5) / ratio).astype(np.intp), image.shape[0] - 1)
    c = np.minimum(((np.arange(columns) + 0.5) / ratio).astype(np.intp), image.shape[1] - 1)
    return np.ascontiguousarray(image[r[:, None], c[None, :]])


def display_to_image(points: np.ndarray, top: float, left: float, height: float, width: float, rotation: int,
                     flip: bool) -> np.ndarray:
    """Image pixel coordinates (column, row; 0.0 at the top left corner of the top left pixel) of
    ``points`` given relative to the displayed area as shown (0.0 .. 1.0 across, after rotation and
    flip).  The displayed area is ``height x width`` pixels of the image, from pixel edge ``(top, left)``
    (0-based), before the transformation."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    shown_h, shown_w = (width, height) if rotation in (90, 270) else (height, width)
    x, y = p[:, 0] * shown_w, p[:, 1] * shown_h
    if flip:
        x = shown_w - x
    # undo the clockwise rotation
    if rotation == 90:
        x, y = y, height - x
    elif rotation == 180:
        x, y = width - x, height - y
    elif rotation == 270:
        x, y = width - y, x
    return np.stack([x + left, y + top], axis=1)
