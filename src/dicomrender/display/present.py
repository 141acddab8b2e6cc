"""The display steps of a presentation state on one rendered uint8 frame, in the order of PS3.4 N.2.

After the grayscale pipeline (modality, VOI, presentation LUT shape or table): the shutters paint
their value, then overlays and annotations are drawn, all in image pixel space; then the spatial
transformation (rotation, then flip) and the displayed area (the area cut out, black outside the
image, magnified when the state says MAGNIFY).  Plain values in, a new array out: the reading
layer resolves the state, :mod:`dicomrender.rendering` calls :func:`present`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import PixelLimitError
from . import annotate, shutter, spatial

__all__ = ["Presentation", "present", "output_shape"]


@dataclass
class Presentation:
    """What to do to one frame after the grayscale pipeline (every field optional).

    ``rectangle``, ``circle``, ``polygon``: shutter geometry as :func:`shutter.visible_mask` takes it;
    ``bitmap``: bool mask of the bitmap shutter (True: covered); ``shutter_value``: 8-bit value of
    shuttered pixels.  ``overlays``: ``(mask, value)`` pairs burnt in order.  ``graphics``:
    ``(kind, units, points, filled, value)``; ``texts``: ``(text, units, (column, row), value)``; units
    PIXEL (image pixel coordinates) or DISPLAY (0..1 of the displayed area as shown).  ``area``:
    ``(top, left, bottom, right)`` 0-based inclusive in the image, or None for the whole image.
    """

    table: Optional[np.ndarray] = None
    rectangle: Optional[Tuple[int, int, int, int]] = None
    circle: Optional[Tuple[float, float, float]] = None
    polygon: Optional[np.ndarray] = None
    bitmap: Optional[np.ndarray] = None
    shutter_value: int = 0
    overlays: List[Tuple[np.ndarray, int]] = field(default_factory=list)
    graphics: List[tuple] = field(default_factory=list)
    texts: List[tuple] = field(default_factory=list)
    rotation: int = 0
    flip: bool = False
    area: Optional[Tuple[int, int, int, int]] = None
    magnification: float = 1.0

    @property
    def has_shutter(self) -> bool:
        return any(s is not None for s in (self.rectangle, self.circle, self.polygon, self.bitmap))


def output_shape(rows: int, columns: int, p: Presentation, max_pixels: Optional[int],
                 max_memory: Optional[int]) -> Tuple[int, int]:
    """The ``(rows, columns)`` :func:`present` returns; :class:`PixelLimitError` when it exceeds
    ``max_pixels`` or ``max_memory`` bytes (a hostile Displayed Area can be 2**32 pixels wide), checked
    with exact integers before anything is allocated."""
    if p.area is not None:
        top, left, bottom, right = p.area
        rows, columns = bottom - top + 1, right - left + 1
    if p.magnification != 1.0:
        # bound before the float product, which would overflow to inf for absurd ratios
        limit = max_pixels if max_pixels is not None else max_memory
        if limit is not None and rows * columns * p.magnification ** 2 > 4 * limit:
            _refuse(rows * columns, p.magnification, max_pixels, max_memory)
        rows, columns = spatial.magnified_shape(rows, columns, p.magnification)
    pixels = rows * columns
    if (max_pixels is not None and pixels > max_pixels) or (max_memory is not None and 2 * pixels > max_memory):
        _refuse(pixels, p.magnification, max_pixels, max_memory)
    return spatial.transformed_shape(rows, columns, p.rotation)


def _refuse(pixels: int, ratio: float, max_pixels, max_memory):
    attribute = "max_pixels" if max_pixels is not None else "max_memory"
    raise PixelLimitError(f"the displayed area ({pixels} pixels before a magnification of {ratio:g}) exceeds "
                          f"max_pixels={max_pixels} / max_memory={max_memory}", attribute=attribute)


def present(image: np.ndarray, p: Presentation) -> np.ndarray:
    """``image`` (uint8 ``(rows, columns)``, not modified) through the display steps of ``p``: a new array
    of the shape :func:`output_shape` gives (call that first: it checks the size)."""
    out = p.table[image] if p.table is not None else image.copy()
    rows, columns = out.shape
    if p.has_shutter:
        shown = shutter.visible_mask(rows, columns, p.rectangle, p.circle, p.polygon, p.bitmap)
        shutter.paint(out, shown, p.shutter_value)
    for mask, value in p.overlays:
        out[mask] = value
    if p.graphics or p.texts:
        _annotate(out, p)
    if p.area is not None:
        top, left, bottom, right = p.area
        out = spatial.crop(out, top, left, bottom, right)
    out = spatial.transform(out, p.rotation, p.flip)
    return np.ascontiguousarray(spatial.magnify(out, p.magnification))


def _annotate(out: np.ndarray, p: Presentation) -> None:
    rows, columns = out.shape
    top, left, bottom, right = p.area if p.area is not None else (0, 0, rows - 1, columns - 1)

    def pixels(units: str, given: Sequence) -> np.ndarray:
        points = np.asarray(given, dtype=np.float64).reshape(-1, 2)
        if units != "DISPLAY":
            return points
        return spatial.display_to_image(points, top, left, bottom - top + 1, right - left + 1, p.rotation, p.flip)

    # consecutive items of one grey level in one call (each call copies the image through Pillow)
    batches: List[Tuple[int, list, list]] = []
    for kind, units, points, filled, value in p.graphics:
        if not batches or batches[-1][0] != value or batches[-1][2]:
            batches.append((value, [], []))
        batches[-1][1].append((kind, pixels(units, points), filled))
    for text, units, position, value in p.texts:
        if not batches or batches[-1][0] != value:
            batches.append((value, [], []))
        x, y = pixels(units, [position])[0]
        batches[-1][2].append((text, (float(x), float(y))))
    for value, shapes, labels in batches:
        annotate.draw(out, shapes, labels, value)
