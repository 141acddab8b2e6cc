"""Grayscale Softcopy Presentation States (PS3.3 A.33.1, PS3.4 N.2) resolved for one image and frame.

:func:`resolve_state` reads a state once and answers with a :class:`ResolvedState`: plain values
(the modality transform, the VOI, inversion and its reason, the presentation LUT as an 8-bit table,
rotation, flip, displayed area, shutters, activated overlays, annotations) that the rendering
applies in the order of PS3.4 N.2.  Every part of the state that names images (Softcopy VOI LUT,
Displayed Area Selection, Graphic Annotation) is matched against this image and frame: an item
without a Referenced Image Sequence applies to every image the state references.

The state replaces the image's own display attributes: its Modality LUT module (none: identity),
its VOI (none: the whole range of modality values, linearly, as dcmtk does: their top 8 bits), and
the inversion:
only the Presentation LUT Shape decides it, never the image's MONOCHROME1 (PS3.4 N.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from pydicom.dataset import Dataset

from .. import _reference
from .._types import VOI, Modality, ModalityLut, Rescale, StoredFormat, VOILut, Window
from ..errors import DicomRenderError, InvalidDatasetError, PresentationStateError
from .annotations import GraphicObject, Layer, TextObject, read_annotations, read_layers
from .elements import first_item, get, number, values
from .header import ImageInfo
from .luts import lut_table
from .overlays import overlay_planes, plane_mask
from .shutters import Shutters, read_shutters

__all__ = ["ResolvedState", "DisplayedArea", "ActivatedOverlay", "resolve_state", "GSPS_SOP_CLASS",
           "presentation_values", "MAX_REFERENCES", "state_steps", "image_shutter_steps"]

#: Grayscale Softcopy Presentation State Storage.
GSPS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"
#: Referenced images (all series together) read from one state, at most.
MAX_REFERENCES = 1_000_000
_SIZE_MODES = ("SCALE TO FIT", "TRUE SIZE", "MAGNIFY")


@dataclass(frozen=True)
class DisplayedArea:
    """The Displayed Area Selection item that applies: the area's corners in the image before the spatial
    transformation (1-based column, row; the second may lie left of or above the first), the size mode
    and the magnification (1.0 unless MAGNIFY)."""

    top_left: Tuple[int, int]
    bottom_right: Tuple[int, int]
    size_mode: str
    magnification: float = 1.0

    @property
    def bounds(self) -> Tuple[int, int, int, int]:
        """``(top, left, bottom, right)``: 0-based inclusive rows and columns of the area in the image."""
        (c0, r0), (c1, r1) = self.top_left, self.bottom_right
        return min(r0, r1) - 1, min(c0, c1) - 1, max(r0, r1) - 1, max(c0, c1) - 1

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, columns)`` of the area, before magnification and rotation."""
        top, left, bottom, right = self.bounds
        return bottom - top + 1, right - left + 1


@dataclass(frozen=True)
class ActivatedOverlay:
    """An overlay plane the state activates (Overlay Activation Layer, 60xx,1001): in the state itself
    (``in_state``) or in the image; drawn in its layer's grey level ``value`` (8 bits)."""

    group: int
    in_state: bool
    layer: str
    value: int


@dataclass(frozen=True, eq=False)
class ResolvedState:
    """What a presentation state asks for one image and frame, as plain values.

    Attributes
    ----------
    filename : str or None
        The state file.
    modality, modality_source
        The modality transform (:class:`Rescale` or :class:`ModalityLut`) and where it comes from.
    voi, voi_source
        The VOI (:class:`Window` or :class:`VOILut`) and where it comes from.
    presentation_lut : (numpy.ndarray, int) or None
        The Presentation LUT Sequence's entries and bits (see :func:`presentation_values`), or None
        (Presentation LUT Shape).
    invert, invert_reason
        Whether the output is inverted (Presentation LUT Shape INVERSE only) and why.
    rotation, flip
        Image Rotation (clockwise degrees) and Image Horizontal Flip, applied in that order.
    displayed_area : DisplayedArea or None
        The area to show (None: the whole image).
    shutters : Shutters or None
        The state's display shutters.
    overlays : tuple of ActivatedOverlay
        The overlay planes the state activates.
    layers : dict
        The Graphic Layer Sequence by name.
    graphics, texts : tuple
        The graphic and text objects that apply to the image and frame.
    """

    filename: Optional[str]
    modality: Modality
    modality_source: str
    voi: VOI
    voi_source: str
    presentation_lut: Optional[Tuple[np.ndarray, int]]
    invert: bool
    invert_reason: str
    rotation: int = 0
    flip: bool = False
    displayed_area: Optional[DisplayedArea] = None
    shutters: Optional[Shutters] = None
    overlays: Tuple[ActivatedOverlay, ...] = ()
    layers: Dict[str, Layer] = field(default_factory=dict)
    graphics: Tuple[GraphicObject, ...] = ()
    texts: Tuple[TextObject, ...] = ()

    def layer_value(self, name: str) -> int:
        """The 8-bit grey level of layer ``name`` (white when the layer recommends none)."""
        layer = self.layers.get(name)
        return 255 if layer is None else layer.value


def resolve_state(state: Dataset, filename: Optional[str], info: ImageInfo, frame_index: int) -> ResolvedState:
    """Resolve ``state`` (a Grayscale Softcopy Presentation State) for frame ``frame_index`` (0-based) of
    the image ``info``.

    Raises
    ------
    PresentationStateError
        The state is not a GSPS, or does not reference the image (Referenced Series Sequence,
        Referenced Image Sequence) or frame (Referenced Frame Number); names the state file.
    InvalidDatasetError
        An attribute of the state with an unusable value (naming it and the state file).
    """
    try:
        return _resolve(state, filename, info, frame_index)
    except DicomRenderError as exc:
        raise exc.with_filename(filename) from exc.__cause__
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # pydicom decodes the state's elements lazily: a corrupt one surfaces here
        raise PresentationStateError(f"the presentation state cannot be read: {type(exc).__name__}: {exc}",
                                     filename=filename) from exc


def _resolve(state: Dataset, filename: Optional[str], info: ImageInfo, frame_index: int) -> ResolvedState:
    sop_class = str(get(state, "SOPClassUID", "") or "").strip()
    if sop_class != GSPS_SOP_CLASS:
        raise PresentationStateError(f"SOPClassUID {sop_class or '(missing)'} is not a Grayscale Softcopy "
                                     f"Presentation State ({GSPS_SOP_CLASS})", filename=filename,
                                     attribute="SOPClassUID")
    image = info.dataset
    instance = str(get(image, "SOPInstanceUID", "") or "").strip()
    series = str(get(image, "SeriesInstanceUID", "") or "").strip()
    frame_number = frame_index + 1
    _check_referenced(state, filename, instance, series, frame_number, info.filename)

    def applies(item: Optional[Dataset]) -> bool:
        return item is not None and _references(get(item, "ReferencedImageSequence"), instance, frame_number)

    modality, modality_source, modality_bits = _modality(state, info)
    voi, voi_source = _voi(state, info, modality, modality_bits, applies)
    plut, invert, reason = _presentation(state)
    rotation, flip = _spatial(state)
    graphics, texts = read_annotations(state, applies)
    layers = read_layers(state)
    shutters = read_shutters(state)
    overlays = _overlays(state, layers)
    if shutters is not None and shutters.bitmap_group is not None and \
            (shutters.bitmap_group << 16 | 0x3000) not in state:
        raise InvalidDatasetError(f"ShutterOverlayGroup {shutters.bitmap_group:04X} has no overlay plane (Overlay "
                                  f"Data) in the presentation state", attribute="ShutterOverlayGroup")
    return ResolvedState(filename, modality, modality_source, voi, voi_source, plut, invert, reason, rotation, flip,
                         _displayed_area(state, applies), shutters, overlays, layers, tuple(graphics), tuple(texts))


def _references(seq, instance: str, frame_number: int) -> bool:
    """Whether a Referenced Image Sequence names ``instance`` (and ``frame_number``); an absent or empty
    sequence names every image."""
    if not seq:
        return True
    for item in seq:
        if str(get(item, "ReferencedSOPInstanceUID", "") or "").strip() == instance:
            return _frame_listed(item, frame_number)
    return False


def _frame_listed(item: Dataset, frame_number: int) -> bool:
    frames = values(get(item, "ReferencedFrameNumber"))
    if not frames:
        return True
    try:
        return frame_number in {int(f) for f in frames}
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"ReferencedFrameNumber must be integers, got {frames[:5]!r}",
                                  attribute="ReferencedFrameNumber") from None


def _check_referenced(state: Dataset, filename, instance: str, series: str, frame_number: int, image_file) -> None:
    """Refuse a state that does not reference the image: its series, then the instance in that series
    (one dict of instance UIDs: states may list thousands of images), then the frame."""
    image_name = image_file or "the image"
    if not instance:
        raise PresentationStateError(f"{image_name} has no SOPInstanceUID: the state cannot reference it",
                                     filename=filename, attribute="SOPInstanceUID")
    seq = get(state, "ReferencedSeriesSequence") or ()
    if not seq:
        raise PresentationStateError("the presentation state has no ReferencedSeriesSequence",
                                     filename=filename, attribute="ReferencedSeriesSequence")
    images: Dict[str, Dataset] = {}
    series_seen = False
    count = 0
    for item in seq:
        if str(get(item, "SeriesInstanceUID", "") or "").strip() != series:
            continue
        series_seen = True
        for ref in get(item, "ReferencedImageSequence") or ():
            count += 1
            if count > MAX_REFERENCES:
                raise PresentationStateError(f"ReferencedImageSequence lists more than {MAX_REFERENCES} images: "
                                             f"refused", filename=filename, attribute="ReferencedImageSequence")
            images.setdefault(str(get(ref, "ReferencedSOPInstanceUID", "") or "").strip(), ref)
    if not series_seen:
        raise PresentationStateError(f"the presentation state does not reference the series of {image_name} "
                                     f"(SeriesInstanceUID {series or '(missing)'} is not in ReferencedSeriesSequence)",
                                     filename=filename, attribute="ReferencedSeriesSequence")
    ref = images.get(instance)
    if ref is None:
        raise PresentationStateError(f"the presentation state does not reference {image_name} (SOPInstanceUID "
                                     f"{instance} is not in ReferencedImageSequence)", filename=filename,
                                     attribute="ReferencedImageSequence")
    if not _frame_listed(ref, frame_number):
        raise PresentationStateError(f"the presentation state does not reference frame {frame_number} of "
                                     f"{image_name} (ReferencedFrameNumber)", filename=filename,
                                     attribute="ReferencedFrameNumber")


def _modality(state: Dataset, info: ImageInfo) -> Tuple[Modality, str, Optional[int]]:
    """The state's Modality LUT module; identity when the state has none (it replaces the image's)."""
    item = first_item(state, "ModalityLUTSequence")
    if item is not None:
        data, first, bits = lut_table(item, info.signed, "ModalityLUTSequence", info.stored_range)
        return ModalityLut(data, first), "presentation state ModalityLUTSequence", bits
    if get(state, "RescaleSlope") not in (None, "") or get(state, "RescaleIntercept") not in (None, ""):
        rescale = Rescale(number(state, "RescaleSlope", 1.0), number(state, "RescaleIntercept", 0.0))
        return rescale, f"presentation state rescale (slope {rescale.slope:g}, intercept {rescale.intercept:g})", None
    return Rescale(), "identity (the presentation state has no Modality LUT module)", None


def _modality_range(info: ImageInfo, modality: Modality, bits: Optional[int]) -> Tuple[float, float]:
    if isinstance(modality, ModalityLut):
        return 0.0, float((1 << (bits or 16)) - 1)
    low, high = info.stored_range
    ends = (low * modality.slope + modality.intercept, high * modality.slope + modality.intercept)
    return min(ends), max(ends)


def _voi(state: Dataset, info: ImageInfo, modality: Modality, bits: Optional[int],
         applies: Callable[[Optional[Dataset]], bool]) -> Tuple[VOI, str]:
    low, high = _modality_range(info, modality, bits)
    for position, item in enumerate(get(state, "SoftcopyVOILUTSequence") or ()):
        if not applies(item):
            continue
        where = f"presentation state SoftcopyVOILUTSequence item {position + 1}"
        lut = first_item(item, "VOILUTSequence")
        if lut is not None:
            data, first, lut_bits = lut_table(lut, low < 0, "VOILUTSequence")
            return VOILut(data, first, lut_bits, str(get(lut, "LUTExplanation", "") or "") or None), \
                f"{where} VOI LUT"
        centers, widths = values(get(item, "WindowCenter")), values(get(item, "WindowWidth"))
        if centers and widths:
            explanations = values(get(item, "WindowCenterWidthExplanation"))
            window = Window(centers[0], widths[0], str(get(item, "VOILUTFunction", "") or "LINEAR"),
                            str(explanations[0]) if explanations else None)
            return window, f"{where} window {window.center:g}/{window.width:g} {window.function}"
        raise InvalidDatasetError(f"SoftcopyVOILUTSequence item {position + 1} has neither a window nor a VOI LUT",
                                  attribute="SoftcopyVOILUTSequence")
    # no VOI: the modality range's top 8 bits, floor((m - low) * 256 / (high - low + 1)), as dcmtk: the
    # LINEAR_EXACT window of width (high - low + 1) * 255 / 256 from ``low`` gives exactly that
    width = (high - low + 1) * 255 / 256
    window = Window(low + width / 2, width, "LINEAR_EXACT")
    return window, f"no VOI for this image in the state: modality values {low:g}..{high:g} mapped linearly " \
                   f"to 0..255 (their top 8 bits)"


def presentation_values(words: np.ndarray, fmt: Optional[StoredFormat], modality: Modality, voi: VOI,
                        lut: Tuple[np.ndarray, int]) -> np.ndarray:
    """uint8 output of ``words`` (allocated words, or float values when ``fmt`` is None) through the
    modality transform, the VOI and a Presentation LUT Sequence ``lut = (entries, bits)``.

    The table's input range is the VOI output range (PS3.3 C.11.6): entry ``floor(y * (n - 1) / 255)``
    of the continuous VOI output ``y`` (0..255, before any rounding; the project's snap at exact
    integers), scaled to 8 bits as ``floor(entry * 255 / (2**bits - 1))``: dcmtk's dcmp2pgm gives the
    same pixels.  Integer data up to 16 bits goes through one table over every stored value.
    """
    entries, bits = lut
    n = len(entries)
    out_table = (np.asarray(entries, dtype=np.int64) * 255) // ((1 << bits) - 1)

    def through(modality_values: np.ndarray) -> np.ndarray:
        t = voi.values(modality_values) * (n - 1) / 255.0
        with np.errstate(invalid="ignore"):
            index = np.floor(t + _reference.SNAP) if voi.snap else np.floor(t)
            index = np.where(np.isnan(index), 0, np.clip(index, 0, n - 1)).astype(np.intp)
        return out_table[index].astype(np.uint8)

    if fmt is None:
        return through(np.asarray(words, dtype=np.float64))
    if fmt.bits_stored <= 16:
        table = through(modality.values(fmt.domain()))
        patterns = (np.asarray(words).astype(np.int64) >> fmt.shift) & ((1 << fmt.bits_stored) - 1)
        return table[patterns]
    return through(modality.values(fmt.stored(np.asarray(words))))


def _presentation(state: Dataset) -> Tuple[Optional[Tuple[np.ndarray, int]], bool, str]:
    item = first_item(state, "PresentationLUTSequence")
    if item is not None:
        data, _, bits = lut_table(item, False, "PresentationLUTSequence")
        return (data, bits), False, \
            "not inverted: the presentation state's Presentation LUT Sequence maps to P-values"
    shape = str(get(state, "PresentationLUTShape", "") or "IDENTITY").strip().upper()
    if shape == "INVERSE":
        return None, True, "inverted: the presentation state's Presentation LUT Shape is INVERSE"
    if shape != "IDENTITY":
        raise InvalidDatasetError(f"PresentationLUTShape must be IDENTITY or INVERSE, got {shape!r}",
                                  attribute="PresentationLUTShape")
    return None, False, "not inverted: the presentation state's Presentation LUT Shape is IDENTITY " \
                        "(the image's own photometric interpretation does not decide in a state)"


def _spatial(state: Dataset) -> Tuple[int, bool]:
    raw = get(state, "ImageRotation")
    rotation = 0
    if raw not in (None, ""):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if value not in (0, 90, 180, 270):
            raise InvalidDatasetError(f"ImageRotation must be 0, 90, 180 or 270, got {raw!r}",
                                      attribute="ImageRotation")
        rotation = int(value)
    flip = str(get(state, "ImageHorizontalFlip", "N") or "N").strip().upper()
    if flip not in ("Y", "N"):
        raise InvalidDatasetError(f"ImageHorizontalFlip must be Y or N, got {flip!r}", attribute="ImageHorizontalFlip")
    return rotation, flip == "Y"


def _pair(item: Dataset, keyword: str) -> Tuple[int, int]:
    items = values(get(item, keyword))
    if len(items) != 2:
        raise InvalidDatasetError(f"{keyword} must be (column, row), got {items!r}", attribute=keyword)
    try:
        column, row = (int(v) for v in items)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"{keyword} must be integers, got {items!r}", attribute=keyword) from None
    return column, row


def _displayed_area(state: Dataset, applies: Callable[[Optional[Dataset]], bool]) -> Optional[DisplayedArea]:
    for item in get(state, "DisplayedAreaSelectionSequence") or ():
        if not applies(item):
            continue
        top_left = _pair(item, "DisplayedAreaTopLeftHandCorner")
        bottom_right = _pair(item, "DisplayedAreaBottomRightHandCorner")
        mode = str(get(item, "PresentationSizeMode", "") or "SCALE TO FIT").strip().upper()
        if mode not in _SIZE_MODES:
            raise InvalidDatasetError(f"PresentationSizeMode must be one of {', '.join(_SIZE_MODES)}, got {mode!r}",
                                      attribute="PresentationSizeMode")
        ratio = 1.0
        if mode == "MAGNIFY":
            ratio = number(item, "PresentationPixelMagnificationRatio", math.nan)
            if not (math.isfinite(ratio) and ratio > 0):
                raise InvalidDatasetError(f"PresentationPixelMagnificationRatio must be a positive number for "
                                          f"MAGNIFY, got {get(item, 'PresentationPixelMagnificationRatio')!r}",
                                          attribute="PresentationPixelMagnificationRatio")
        return DisplayedArea(top_left, bottom_right, mode, ratio)
    return None


def _overlays(state: Dataset, layers: Dict[str, Layer]) -> Tuple[ActivatedOverlay, ...]:
    activated: List[ActivatedOverlay] = []
    for group in range(0x6000, 0x6020, 2):
        tag = group << 16 | 0x1001
        if tag not in state:
            continue
        layer = str(state[tag].value or "").strip()
        if not layer:
            continue
        layer_info = layers.get(layer)
        activated.append(ActivatedOverlay(group, (group << 16 | 0x3000) in state, layer,
                                          255 if layer_info is None else layer_info.value))
    order = {name: layer.order for name, layer in layers.items()}
    return tuple(sorted(activated, key=lambda o: (order.get(o.layer, 0), o.group)))


def _shutter_steps(shutters: Optional[Shutters], planes_of: Callable[[], list], info: ImageInfo, frame_index: int,
                   words: Optional[np.ndarray]) -> dict:
    if shutters is None:
        return {}
    steps: dict = dict(rectangle=shutters.rectangle, circle=shutters.circle, polygon=shutters.polygon,
                       shutter_value=shutters.value)
    if shutters.bitmap_group is not None:
        plane = next((p for p in planes_of() if p.group == shutters.bitmap_group), None)
        if plane is None:
            raise InvalidDatasetError(f"ShutterOverlayGroup {shutters.bitmap_group:04X} names no overlay plane",
                                      attribute="ShutterOverlayGroup")
        steps["bitmap"] = plane_mask(plane, frame_index, info.rows, info.columns, words)
    return steps


def state_steps(resolved: ResolvedState, state: Dataset, info: ImageInfo, frame_index: int,
                words: Optional[np.ndarray], annotations: bool) -> dict:
    """The display steps of ``resolved`` for frame ``frame_index`` as the plain keyword values of
    :class:`dicomrender.display.present.Presentation`: the presentation LUT table, the shutters (the
    bitmap one as a mask), the activated overlays as ``(mask, value)``, the annotations when
    ``annotations`` (in their layers' order and grey levels), the spatial transformation and the
    displayed area.  ``words``: the frame's stored words (for overlays embedded in Pixel Data)."""
    try:
        state_planes = {p.group: p for p in overlay_planes(state, resolved.filename)}
        steps = _shutter_steps(resolved.shutters, lambda: list(state_planes.values()), info, frame_index, words)
        image_planes: Optional[dict] = None
        overlays = []
        for activated in resolved.overlays:
            if activated.in_state:
                plane = state_planes.get(activated.group)
            else:
                if image_planes is None:
                    image_planes = {p.group: p for p in overlay_planes(info.dataset, info.filename)}
                plane = image_planes.get(activated.group)
            if plane is not None:  # activating a plane that is not there shows nothing (PS3.4 N.2.4)
                overlays.append((plane_mask(plane, frame_index, info.rows, info.columns, words), activated.value))
    except DicomRenderError as exc:
        raise exc.with_filename(resolved.filename) from exc.__cause__
    steps.update(overlays=overlays, rotation=resolved.rotation, flip=resolved.flip)
    area = resolved.displayed_area
    if area is not None:
        steps.update(area=area.bounds, magnification=area.magnification)
    if annotations:
        order = {name: layer.order for name, layer in resolved.layers.items()}
        steps["graphics"] = [(g.kind, g.units, g.points, g.filled, resolved.layer_value(g.layer))
                             for g in sorted(resolved.graphics, key=lambda g: order.get(g.layer, 0))]
        steps["texts"] = [(t.text, t.units, t.position, resolved.layer_value(t.layer))
                          for t in sorted(resolved.texts, key=lambda t: order.get(t.layer, 0))]
    return steps


def image_shutter_steps(info: ImageInfo, frame_index: int, words: Optional[np.ndarray]) -> dict:
    """The image's own Display Shutter module (CR, DX, XA, RF...) as :class:`Presentation` keyword values
    (empty when it has none); its Shutter Presentation Value is a P-value, as in a state."""
    shutters = read_shutters(info.dataset)
    return _shutter_steps(shutters, lambda: overlay_planes(info.dataset, info.filename), info, frame_index, words)
