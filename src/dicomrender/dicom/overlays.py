"""Overlay planes (PS3.3 C.9.2): parsed from any data set into plain values, and one plane's bits for
one image frame as a boolean mask clipped to the image.

A plane lives in an even group 6000-601E (plane index ``(group - 0x6000) // 2``).  Its bits are
either in Overlay Data (60xx,3000), one bit per overlay pixel, packed from the least significant
bit of each 16-bit word, or, in older files, *embedded* in unused high bits of Pixel Data (Overlay
Bits Allocated > 1, Overlay Bit Position naming the bit): those bits are read from the words of the
frame being rendered.  The same functions read the planes of an image and of a presentation state.

Every size is checked against the bytes that are actually there before anything is allocated, and
masks are built a band of rows at a time, so a plane declared 65535 x 65535 with a short Overlay
Data is an error naming OverlayData, and a valid but huge plane costs at most the image's size.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..errors import InvalidArgumentError, InvalidDatasetError, UnsupportedImageError
from .elements import transfer_syntax

__all__ = ["OverlayPlane", "overlay_planes", "plane_mask", "plane_region", "frame_layers", "select_planes",
           "check_selection", "OVERLAY_GROUPS"]

#: The groups that can hold an overlay plane: 6000, 6002, ... 601E.
OVERLAY_GROUPS = tuple(range(0x6000, 0x6020, 2))

_ROWS, _COLUMNS, _FRAMES, _TYPE, _ORIGIN, _FRAME_ORIGIN = 0x0010, 0x0011, 0x0015, 0x0040, 0x0050, 0x0051
_BITS_ALLOCATED, _BIT_POSITION, _DATA, _LABEL, _DESCRIPTION = 0x0100, 0x0102, 0x3000, 0x1500, 0x0022
#: Elements whose presence makes a group an overlay plane (a presentation state's Overlay Activation
#: Layer alone (60xx,1001) refers to a plane of the image, it is not one).
_PLANE_ELEMENTS = (_ROWS, _COLUMNS, _ORIGIN, _BITS_ALLOCATED, _BIT_POSITION, _DATA, _TYPE)
_KEYWORDS = {_ROWS: "OverlayRows", _COLUMNS: "OverlayColumns", _FRAMES: "NumberOfFramesInOverlay",
             _TYPE: "OverlayType", _ORIGIN: "OverlayOrigin", _FRAME_ORIGIN: "ImageFrameOrigin",
             _BITS_ALLOCATED: "OverlayBitsAllocated", _BIT_POSITION: "OverlayBitPosition", _DATA: "OverlayData",
             _LABEL: "OverlayLabel", _DESCRIPTION: "OverlayDescription"}

#: Overlay bits unpacked at once while building a mask (bounds the temporary whatever the plane's width).
_BAND_BITS = 1 << 22


@dataclass(frozen=True, eq=False)
class OverlayPlane:
    """One overlay plane, as plain values.

    Attributes
    ----------
    group : int
        0x6000 ... 0x601E.
    rows, columns : int
        Overlay Rows and Overlay Columns.
    origin : (int, int)
        Overlay Origin, 1-based (row, column) of the plane's first pixel in the image; may be
        negative or beyond the image (the plane is clipped).
    roi : bool
        Overlay Type "R" (region of interest) rather than "G" (graphics).
    frames : int
        Number of Frames in Overlay (1 when absent).
    frame_origin : int
        Image Frame Origin, 1-based: overlay frame ``k`` applies to image frame ``frame_origin - 1 + k``.
    multi_frame : bool
        Number of Frames in Overlay is present: the plane applies to its frames only.  Without it a
        plane applies to every frame of the image.
    bit_position : int or None
        The bit of each Pixel Data word that holds the plane (embedded overlay), or None for a plane
        in Overlay Data.
    data : numpy.ndarray or None
        Overlay Data as uint8 bytes in little-endian bit order (bit ``i`` of the plane is bit
        ``i % 8`` of byte ``i // 8``); None for an embedded plane.
    label, description : str
        Overlay Label and Overlay Description ("" when absent).
    """

    group: int
    rows: int
    columns: int
    origin: Tuple[int, int]
    roi: bool = False
    frames: int = 1
    frame_origin: int = 1
    multi_frame: bool = False
    bit_position: Optional[int] = None
    data: Optional[np.ndarray] = field(default=None, repr=False)
    label: str = ""
    description: str = ""

    @property
    def index(self) -> int:
        """The plane's index, ``(group - 0x6000) // 2`` (0 ... 15)."""
        return (self.group - 0x6000) // 2

    @property
    def embedded(self) -> bool:
        """Whether the bits are in Pixel Data rather than in Overlay Data."""
        return self.bit_position is not None

    def overlay_frame(self, frame_index: int) -> Optional[int]:
        """The overlay frame (0-based) that applies to image frame ``frame_index`` (0-based), or None."""
        if self.embedded or not self.multi_frame:
            return 0
        k = frame_index - (self.frame_origin - 1)
        return k if 0 <= k < self.frames else None


def _value(ds: Dataset, filename: Optional[str], group: int, element: int):
    """The value of (group, element), None when absent or empty; an element pydicom cannot decode is an
    InvalidDatasetError naming it."""
    tag = (group << 16) | element
    if tag not in ds:
        return None
    try:
        value = ds[tag].value
    except Exception as exc:
        raise _invalid(f"cannot be decoded: {type(exc).__name__}: {exc}", filename, group, element) from None
    return None if value is None or value == "" else value


def _name(group: int, element: int) -> str:
    return f"{_KEYWORDS[element]} ({group:04X},{element:04X})"


def _invalid(message: str, filename: Optional[str], group: int, element: int) -> InvalidDatasetError:
    return InvalidDatasetError(f"{_name(group, element)} {message}", filename=filename, attribute=_KEYWORDS[element])


def _integers(ds, filename, group: int, element: int, count: int, low: int, high: int,
              default: Optional[int] = None) -> Optional[List[int]]:
    """``count`` integers from ``low`` to ``high``; ``[default]`` (or None) when absent."""
    value = _value(ds, filename, group, element)
    if value is None:
        if default is None:
            return None
        return [default]
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    if len(items) != count:
        raise _invalid(f"must have {count} value{'s' if count > 1 else ''}, got {value!r}", filename, group, element)
    numbers = []
    for item in items:
        try:
            number = operator.index(item) if not isinstance(item, str) else int(item)
        except (TypeError, ValueError):
            try:
                as_float = float(item)
            except (TypeError, ValueError):
                as_float = float("nan")
            if not as_float.is_integer():
                raise _invalid(f"must be an integer, got {item!r}", filename, group, element) from None
            number = int(as_float)
        if not low <= number <= high:
            raise _invalid(f"must be from {low} to {high}, got {number}", filename, group, element)
        numbers.append(number)
    return numbers


def _required(ds, filename, group: int, element: int, count: int, low: int, high: int) -> List[int]:
    numbers = _integers(ds, filename, group, element, count, low, high)
    if numbers is None:
        raise _invalid("is missing", filename, group, element)
    return numbers


def _text(ds, filename, group: int, element: int) -> str:
    value = _value(ds, filename, group, element)
    return str(value).strip() if value is not None else ""


def _overlay_bytes(ds: Dataset, filename, group: int, value) -> np.ndarray:
    """Overlay Data as bytes in little-endian bit order (OW words of a big-endian file swapped)."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise _invalid(f"must be bytes, got {type(value).__name__}", filename, group, _DATA)
    data = np.frombuffer(value, dtype=np.uint8)
    element = ds[(group << 16) | _DATA]
    if transfer_syntax(ds) == pydicom.uid.ExplicitVRBigEndian and element.VR == "OW":
        even = data[: data.size & ~1]
        data = np.concatenate([even.reshape(-1, 2)[:, ::-1].reshape(-1), data[even.size:]])
    return data


def _plane(ds: Dataset, filename: Optional[str], group: int) -> OverlayPlane:
    rows = _required(ds, filename, group, _ROWS, 1, 1, 0xFFFF)[0]
    columns = _required(ds, filename, group, _COLUMNS, 1, 1, 0xFFFF)[0]
    origin = _required(ds, filename, group, _ORIGIN, 2, -0x8000, 0x7FFF)
    kind = _text(ds, filename, group, _TYPE).upper() or "G"
    if kind not in ("G", "R"):
        raise _invalid(f"must be G or R, got {kind!r}", filename, group, _TYPE)
    data_value = _value(ds, filename, group, _DATA)
    allocated = _integers(ds, filename, group, _BITS_ALLOCATED, 1, 1, 0xFFFF, default=1)[0]  # type: ignore[index]
    common = dict(group=group, rows=rows, columns=columns, origin=(origin[0], origin[1]), roi=kind == "R",
                  label=_text(ds, filename, group, _LABEL), description=_text(ds, filename, group, _DESCRIPTION))
    if data_value is None:
        if allocated == 1:
            raise _invalid("is missing (and Overlay Bits Allocated is 1: the plane has no bits)", filename, group,
                           _DATA)
        return _embedded(ds, filename, group, allocated, common)
    # Overlay Data always holds one bit per pixel, whatever Overlay Bits Allocated says (as dcmtk, CP 87)
    multi_frame = (group << 16 | _FRAMES) in ds
    frames = _integers(ds, filename, group, _FRAMES, 1, 1, 0x7FFFFFFF, default=1)[0]  # type: ignore[index]
    frame_origin = _integers(ds, filename, group, _FRAME_ORIGIN, 1, 1, 0xFFFF, default=1)[0]  # type: ignore[index]
    data = _overlay_bytes(ds, filename, group, data_value)
    needed = (rows * columns * frames + 7) // 8
    if data.size < needed:
        raise _invalid(f"holds {data.size} bytes, but Overlay Rows x Columns x Number of Frames in Overlay = "
                       f"{rows} x {columns} x {frames} bits need {needed}", filename, group, _DATA)
    return OverlayPlane(frames=frames, frame_origin=frame_origin, multi_frame=multi_frame, data=data,
                        **common)  # type: ignore[arg-type]


def _embedded(ds: Dataset, filename: Optional[str], group: int, allocated: int, common: dict) -> OverlayPlane:
    """A plane in unused high bits of Pixel Data (retired, still in real files)."""
    position = _required(ds, filename, group, _BIT_POSITION, 1, 0, 0xFFFF)[0]
    image_allocated = ds.get("BitsAllocated")
    stored = ds.get("BitsStored")
    high = ds.get("HighBit")
    if "PixelData" not in ds or image_allocated is None or stored is None:
        raise _invalid("is missing, and there is no Pixel Data to hold the plane's bits", filename, group, _DATA)
    image_allocated, stored = int(image_allocated), int(stored)
    high = stored - 1 if high is None else int(high)
    if position >= image_allocated:
        raise _invalid(f"is {position}: beyond Bits Allocated ({image_allocated}) of the Pixel Data", filename,
                       group, _BIT_POSITION)
    if high - stored + 1 <= position <= high:
        raise _invalid(f"is {position}: a bit of the stored pixel values (bits {high - stored + 1}..{high})",
                       filename, group, _BIT_POSITION)
    syntax = transfer_syntax(ds)
    if syntax is not None and pydicom.uid.UID(str(syntax)).is_compressed:
        raise UnsupportedImageError(f"{_name(group, _BIT_POSITION)}: an overlay embedded in compressed Pixel Data "
                                    f"is not supported (decoders drop the bits above the stored value)",
                                    filename=filename, attribute="OverlayBitPosition")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise UnsupportedImageError(f"{_name(group, _BIT_POSITION)}: an overlay embedded in colour Pixel Data is "
                                    f"not supported", filename=filename, attribute="OverlayBitPosition")
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if common["rows"] * common["columns"] > rows * columns:
        raise _invalid(f"x Overlay Columns ({common['rows']} x {common['columns']}) exceed the image "
                       f"({rows} x {columns}) that holds the embedded plane", filename, group, _ROWS)
    return OverlayPlane(bit_position=position, **common)


def overlay_planes(ds: Dataset, filename: Optional[str] = None) -> List[OverlayPlane]:
    """The overlay planes of ``ds`` (an image or a presentation state), in group order.

    Raises
    ------
    InvalidDatasetError
        A plane with a missing or impossible attribute (Overlay Rows or Columns missing or 0, Overlay
        Origin without two values, Overlay Data shorter than the plane declares...), naming it.
    UnsupportedImageError
        A plane embedded in compressed or colour Pixel Data.
    """
    planes = []
    for group in OVERLAY_GROUPS:
        if any((group << 16 | element) in ds for element in _PLANE_ELEMENTS):
            planes.append(_plane(ds, filename, group))
    return planes


def check_selection(selection) -> None:
    """Refuse an ``overlays=`` argument of the wrong type (before any file is read)."""
    if selection is None or isinstance(selection, bool):
        return
    if isinstance(selection, (str, bytes)) or not hasattr(selection, "__iter__"):
        raise TypeError(f"overlays must be True, False or a sequence of plane indices, got {selection!r}")
    for item in selection:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise TypeError(f"overlays must hold plane indices (integers 0-15), got {item!r}")


def select_planes(planes: Sequence[OverlayPlane], selection: Union[bool, Sequence[int], None],
                  filename: Optional[str] = None) -> List[OverlayPlane]:
    """The planes ``selection`` asks for: all for True, none for False / None, else those of the indices.

    Raises
    ------
    InvalidArgumentError
        An index with no plane (``attribute="overlays"``).
    TypeError
        A selection that is neither a bool nor a sequence of integers.
    """
    check_selection(selection)
    if selection is None or selection is False:
        return []
    if selection is True:
        return list(planes)
    by_index = {plane.index: plane for plane in planes}
    chosen = []
    for index in selection:
        plane = by_index.get(int(index))
        if plane is None:
            have = ", ".join(str(i) for i in by_index) or "none"
            raise InvalidArgumentError(f"overlays: there is no overlay plane {int(index)} (planes present: {have})",
                                       filename=filename, attribute="overlays")
        if plane not in chosen:
            chosen.append(plane)
    return chosen


def _clip(plane: OverlayPlane, rows: int, columns: int) -> Optional[Tuple[int, int, int, int]]:
    """The image rows and columns ``[r0, r1) x [c0, c1)`` the plane covers, or None when none."""
    top, left = plane.origin[0] - 1, plane.origin[1] - 1
    r0, r1 = max(top, 0), min(top + plane.rows, rows)
    c0, c1 = max(left, 0), min(left + plane.columns, columns)
    return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None


def plane_region(plane: OverlayPlane, frame_index: int, rows: int, columns: int) -> np.ndarray:
    """The image pixels the plane covers in frame ``frame_index`` (its rectangle, clipped), as a mask."""
    region = np.zeros((rows, columns), dtype=bool)
    box = _clip(plane, rows, columns)
    if box is not None and plane.overlay_frame(frame_index) is not None:
        region[box[0]:box[1], box[2]:box[3]] = True
    return region


def plane_mask(plane: OverlayPlane, frame_index: int, rows: int, columns: int,
               words: Optional[np.ndarray] = None) -> np.ndarray:
    """The set bits of ``plane`` over image frame ``frame_index`` (0-based), clipped to ``rows x columns``.

    Parameters
    ----------
    plane : OverlayPlane
    frame_index : int
        The image frame, 0-based (a multi-frame plane applies to some frames only).
    rows, columns : int
        The image's size.
    words : numpy.ndarray, optional
        The Pixel Data words of that frame ``(rows, columns)``: needed for an embedded plane.

    Returns
    -------
    numpy.ndarray
        bool ``(rows, columns)``; all False where the plane does not reach or does not apply.
    """
    mask = np.zeros((rows, columns), dtype=bool)
    k = plane.overlay_frame(frame_index)
    box = _clip(plane, rows, columns)
    if k is None or box is None:
        return mask
    r0, r1, c0, c1 = box
    top, left = plane.origin[0] - 1, plane.origin[1] - 1
    if plane.bit_position is not None:
        if words is None:
            raise ValueError(f"overlay plane {plane.index} is embedded in Pixel Data: pass the frame's words")
        cells = np.asarray(words).reshape(-1)[: plane.rows * plane.columns].reshape(plane.rows, plane.columns)
        bits = cells[r0 - top:r1 - top, c0 - left:c1 - left] >> plane.bit_position
        mask[r0:r1, c0:c1] = (bits & 1).astype(bool)
        return mask
    assert plane.data is not None
    step = max(1, _BAND_BITS // plane.columns)
    base = k * plane.rows * plane.columns
    for start in range(r0, r1, step):
        stop = min(start + step, r1)
        first = base + (start - top) * plane.columns
        count = (stop - start) * plane.columns
        packed = plane.data[first >> 3:(first + count + 7) >> 3]
        band = np.unpackbits(packed, bitorder="little")[first & 7:(first & 7) + count]
        mask[start:stop, c0:c1] = band.reshape(stop - start, plane.columns)[:, c0 - left:c1 - left]
    return mask


def frame_layers(planes: Sequence[OverlayPlane], frame_index: int, rows: int, columns: int,
                 words: Optional[np.ndarray] = None) -> Iterator[Tuple[np.ndarray, str]]:
    """Per plane, what to burn into frame ``frame_index`` and how, as dcmtk does by default:
    ``(mask, "replace")`` for a graphics plane (its set bits), ``(mask, "darken")`` for a region of
    interest plane (the pixels of its clipped rectangle whose bit is not set).  The input of
    :func:`dicomrender.display.overlay.burn_layers`."""
    for plane in planes:
        mask = plane_mask(plane, frame_index, rows, columns, words)
        if plane.roi:
            yield plane_region(plane, frame_index, rows, columns) & ~mask, "darken"
        else:
            yield mask, "replace"
