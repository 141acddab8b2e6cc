"""Graphic annotations and graphic layers of a presentation state (PS3.3 C.10.5, C.10.7), as plain values.

Only the items that apply to one image (and frame) are kept: an item without a Referenced Image
Sequence applies to every image of the state.  Points stay in the units the state gives (PIXEL:
image pixel coordinates, DISPLAY: 0..1 of the displayed area); the caller maps DISPLAY units to the
image before drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from pydicom.dataset import Dataset

from ..errors import InvalidDatasetError
from .elements import get, values

__all__ = ["GraphicObject", "TextObject", "Layer", "read_layers", "read_annotations", "MAX_GRAPHIC_POINTS",
           "GRAPHIC_TYPES"]

#: Graphic points (all objects together) read from one state, at most.
MAX_GRAPHIC_POINTS = 100_000
GRAPHIC_TYPES = {"POINT": 1, "POLYLINE": 2, "INTERPOLATED": 2, "CIRCLE": 2, "ELLIPSE": 4}
_UNITS = ("PIXEL", "DISPLAY")
#: Coordinates are clipped to this magnitude (far outside any image, far inside float range).
_FAR = float(1 << 24)


@dataclass(frozen=True)
class Layer:
    """A graphic layer: its name, drawing order and 8-bit grey level (Recommended Display Grayscale
    Value ``P`` as ``floor(255 * P / 65535)``; white, 255, when the layer does not recommend one)."""

    name: str
    order: int
    value: int = 255


@dataclass(frozen=True, eq=False)
class GraphicObject:
    """One Graphic Object Sequence item: ``points`` is ``(n, 2)`` float64 (column, row) in ``units``."""

    layer: str
    kind: str
    units: str
    points: np.ndarray
    filled: bool


@dataclass(frozen=True)
class TextObject:
    """One Text Object Sequence item, placed at the top left corner of its bounding box, else at its
    anchor point (column, row) in ``units``."""

    layer: str
    text: str
    units: str
    position: Tuple[float, float]


def read_layers(state: Dataset) -> Dict[str, Layer]:
    """The Graphic Layer Sequence of ``state`` by layer name."""
    layers: Dict[str, Layer] = {}
    for item in get(state, "GraphicLayerSequence") or ():
        name = str(get(item, "GraphicLayer", "") or "").strip()
        order = _int(get(item, "GraphicLayerOrder", 0), "GraphicLayerOrder")
        grey = get(item, "GraphicLayerRecommendedDisplayGrayscaleValue")
        value = 255
        if grey not in (None, ""):
            p = _int(grey, "GraphicLayerRecommendedDisplayGrayscaleValue")
            if not 0 <= p <= 65535:
                raise InvalidDatasetError(f"GraphicLayerRecommendedDisplayGrayscaleValue must be 0..65535, got {p}",
                                          attribute="GraphicLayerRecommendedDisplayGrayscaleValue")
            value = 255 * p // 65535
        layers[name] = Layer(name, order, value)
    return layers


def read_annotations(state: Dataset, applies: Callable[[Optional[Dataset]], bool]
                     ) -> Tuple[List[GraphicObject], List[TextObject]]:
    """The graphic and text objects of the Graphic Annotation Sequence items that apply to the image
    (``applies(item)``: the item's references name it, or it has none).

    Raises
    ------
    InvalidDatasetError
        Naming the attribute: an unknown Graphic Type or units, Graphic Data whose size disagrees with
        Number of Graphic Points or the type, non-finite coordinates, more than
        :data:`MAX_GRAPHIC_POINTS` points in all.
    """
    graphics: List[GraphicObject] = []
    texts: List[TextObject] = []
    budget = [MAX_GRAPHIC_POINTS]
    for item in get(state, "GraphicAnnotationSequence") or ():
        if not applies(item):
            continue
        layer = str(get(item, "GraphicLayer", "") or "").strip()
        for obj in get(item, "GraphicObjectSequence") or ():
            graphics.append(_graphic(obj, layer, budget))
        for obj in get(item, "TextObjectSequence") or ():
            text = _text(obj, layer)
            if text is not None:
                texts.append(text)
    return graphics, texts


def _graphic(obj: Dataset, layer: str, budget: list) -> GraphicObject:
    kind = str(get(obj, "GraphicType", "") or "").strip().upper()
    if kind not in GRAPHIC_TYPES:
        raise InvalidDatasetError(f"GraphicType must be one of {', '.join(GRAPHIC_TYPES)}, got {kind!r}",
                                  attribute="GraphicType")
    units = _units(obj, "GraphicAnnotationUnits")
    raw = get(obj, "GraphicData")
    size = len(raw) if raw is not None and hasattr(raw, "__len__") and not isinstance(raw, str) else 1
    budget[0] -= size // 2
    if budget[0] < 0:
        raise InvalidDatasetError(f"GraphicData: more than {MAX_GRAPHIC_POINTS} graphic points in the state: refused",
                                  attribute="GraphicData")
    points = _points(raw, "GraphicData")
    declared = get(obj, "NumberOfGraphicPoints")
    if declared not in (None, "") and _int(declared, "NumberOfGraphicPoints") != len(points):
        raise InvalidDatasetError(f"GraphicData has {len(points)} points, NumberOfGraphicPoints says {declared}",
                                  attribute="NumberOfGraphicPoints")
    needed = GRAPHIC_TYPES[kind]
    if (kind in ("CIRCLE", "ELLIPSE", "POINT") and len(points) != needed) or len(points) < needed:
        raise InvalidDatasetError(f"GraphicType {kind} needs {'exactly' if kind != 'POLYLINE' else 'at least'} "
                                  f"{needed} points, GraphicData has {len(points)}", attribute="GraphicData")
    filled = str(get(obj, "GraphicFilled", "N") or "N").strip().upper() == "Y"
    return GraphicObject(layer, kind, units, points, filled)


def _text(obj: Dataset, layer: str) -> Optional[TextObject]:
    text = str(get(obj, "UnformattedTextValue", "") or "")[:1024]
    corner = get(obj, "BoundingBoxTopLeftHandCorner")
    if corner not in (None, ""):
        position = _points(corner, "BoundingBoxTopLeftHandCorner")
        units = _units(obj, "BoundingBoxAnnotationUnits")
    else:
        anchor = get(obj, "AnchorPoint")
        if anchor in (None, ""):
            raise InvalidDatasetError("a Text Object has neither BoundingBoxTopLeftHandCorner nor AnchorPoint",
                                      attribute="AnchorPoint")
        position = _points(anchor, "AnchorPoint")
        units = _units(obj, "AnchorPointAnnotationUnits")
    if len(position) != 1:
        raise InvalidDatasetError("a Text Object position must be one (column, row) pair",
                                  attribute="BoundingBoxTopLeftHandCorner" if corner else "AnchorPoint")
    return TextObject(layer, text, units, (float(position[0, 0]), float(position[0, 1])))


def _units(obj: Dataset, keyword: str) -> str:
    units = str(get(obj, keyword, "") or "").strip().upper()
    if units not in _UNITS:
        raise InvalidDatasetError(f"{keyword} must be PIXEL or DISPLAY, got {units!r}", attribute=keyword)
    return units


def _points(raw, keyword: str) -> np.ndarray:
    items = values(raw)
    if not items or len(items) % 2:
        raise InvalidDatasetError(f"{keyword} must hold (column, row) pairs, got {len(items)} values",
                                  attribute=keyword)
    try:
        array = np.asarray([float(v) for v in items], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InvalidDatasetError(f"{keyword} must be numbers", attribute=keyword) from None
    if not np.isfinite(array).all():
        raise InvalidDatasetError(f"{keyword} must be finite numbers", attribute=keyword)
    return np.clip(array, -_FAR, _FAR).reshape(-1, 2)


def _int(raw, keyword: str) -> int:
    try:
        number = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise InvalidDatasetError(f"{keyword} must be an integer, got {raw!r}", attribute=keyword) from None
    if not math.isfinite(number) or not number.is_integer():
        raise InvalidDatasetError(f"{keyword} must be an integer, got {raw!r}", attribute=keyword)
    return int(number)
