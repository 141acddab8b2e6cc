"""The slices a source holds: folders walked, files recognised by content, one header record per frame.

Reading a header is what finding and sorting series costs, so it reads as little as it can: pydicom
parses the file up to Pixel Data and leaves the pixels on disk (deferred), and the record keeps where
each frame's words lie in the file.  Rendering then reads exactly those bytes into one reused buffer
(native little-endian data), without parsing the file a second time; anything else (compressed,
big endian, in-memory datasets) goes through the reading layer's :func:`~dicomrender.dicom.pixels.read_frames`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pydicom.uid
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from .._types import StoredFormat
from ..dicom.elements import first_item, get, has, parse_elements, tag_of, transfer_syntax, values
from ..dicom.header import FrameParameters, ImageInfo, has_pixel_data
from ..dicom.source import parsed_to_end, read_dataset, read_file
from ..errors import DicomRenderError, InvalidDatasetError, NotDicomError, PixelDataError

__all__ = ["SliceHeader", "Skipped", "Scan", "expand", "read_one", "source_name", "split_text", "NOT_DICOM",
           "NO_IMAGE", "BROKEN", "INTERPRETED_GROUPS", "INTERPRETED_TAGS"]

#: Why a source gave no slice.
NOT_DICOM, NO_IMAGE, BROKEN = "not DICOM", "no image", "broken"

#: Groups and single tags whose raw bytes key the interpretation of a header (see _interpretation_key;
#: also .quick's key): Specific Character Set (the text of LUT explanations), SOP Class, Modality.
INTERPRETED_GROUPS = frozenset((0x0028, 0x2050, 0x7FE0))
INTERPRETED_TAGS = frozenset((0x00080005, 0x00080016, 0x00080060))
#: Tags of the keywords read here, looked up once (BaseTag hashes as its int).
_TAG_NUMBERS: Dict[str, Any] = {}
#: Text attributes whose value depends on the Specific Character Set: read through pydicom.
_CHARACTER_SET_KEYWORDS = frozenset(("SeriesDescription",))
#: Transfer syntaxes whose Pixel Data is the words as stored, in little-endian order, at a file offset.
_NATIVE_LE = frozenset((pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.ExplicitVRLittleEndian))


@dataclass(frozen=True)
class SliceHeader:
    """One frame of one object, as its header describes it (small and picklable: no dataset, no pixels).

    ``source`` is a path, or the index of a dataset in the caller's list.  ``location`` is
    ``(offset, nbytes)`` of the frame's words in the file when they can be read straight from it,
    else None (read through pydicom).
    """

    source: Union[str, int]
    name: str
    frame: int
    frames: int
    series_uid: str
    study_uid: str
    series_number: Optional[int]
    modality: str
    description: str
    sop_uid: str
    instance: Optional[int]
    rows: int
    columns: int
    position: Optional[Tuple[float, float, float]]
    orientation: Optional[Tuple[float, ...]]
    pixel_spacing: Optional[Tuple[float, float]]
    slice_thickness: Optional[float]
    slice_spacing: Optional[float]
    grayscale: bool
    photometric: str
    format: Optional[StoredFormat]
    word_dtype: str
    inverse: bool
    padding: Optional[Tuple[int, int]]
    parameters: FrameParameters
    location: Optional[Tuple[int, int]]


@dataclass(frozen=True)
class Skipped:
    """A source that gave no slice: ``reason`` is NOT_DICOM, NO_IMAGE or BROKEN (``error`` says why)."""

    source: Union[str, int]
    name: str
    reason: str
    message: str
    series_uid: str = ""
    error: Optional[BaseException] = None


@dataclass
class Scan:
    """What a source holds: a header per frame, the sources that gave none, and the datasets given."""

    headers: List[SliceHeader]
    skipped: List[Skipped]
    datasets: Optional[Sequence[Dataset]] = None


def source_name(item, index: int) -> str:
    """How messages name a source: its path, a dataset's filename, else ``<dataset N>``."""
    if isinstance(item, Dataset):
        filename = getattr(item, "filename", None)
        return filename if isinstance(filename, str) and filename else f"<dataset {index}>"
    return os.fspath(item)


def expand(src) -> Tuple[List[Union[str, int]], Optional[List[Dataset]]]:
    """The items to read: paths (folders walked recursively in name order, symlinked folders not
    followed), or dataset indices with the list of datasets.

    Raises
    ------
    FileNotFoundError
        A path that does not exist.
    """
    if isinstance(src, Dataset):
        return [0], [src]
    if isinstance(src, (str, os.PathLike)):
        src = [src]
    items = list(src)
    if items and all(isinstance(item, Dataset) for item in items):
        return list(range(len(items))), items
    if any(isinstance(item, Dataset) for item in items):
        raise TypeError("give paths or pydicom Datasets, not a mix of both")
    paths: List[Union[str, int]] = []
    for item in items:
        path = os.fspath(item)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file or folder: {path!r}")
        if not os.path.isdir(path):
            paths.append(path)
            continue
        for folder, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(folder, d)))
            paths.extend(os.path.join(folder, name) for name in sorted(filenames))
    return paths, None


def read_one(item, datasets, max_pixels, memo: Dict[tuple, tuple]):
    """The slice headers of one item (a path, or an index into ``datasets``), or why it gave none.

    ``memo`` keeps what the interpretation of a header derives from, by its raw bytes (see
    ``_interpretation_key``), across the items of one call."""
    if isinstance(item, int):
        assert datasets is not None
        ds = datasets[item]
        name = source_name(ds, item)
        try:
            read_dataset(ds)  # decodes the rendering groups: a corrupt element is an error now
            return _headers(ds, item, name, None, max_pixels, {})
        except DicomRenderError as exc:
            return Skipped(item, name, BROKEN, exc.detail, _text(ds, "SeriesInstanceUID"), exc.with_filename(name))
    try:
        ds, size = read_file(item, whole=False)  # Pixel Data (over 64 KiB) stays on disk
    except NotDicomError as exc:
        return Skipped(item, item, NOT_DICOM, exc.detail)
    except OSError as exc:
        return Skipped(item, item, BROKEN, str(exc), error=exc)
    except Exception as exc:  # the DICM marker is there and pydicom cannot parse the rest
        error = InvalidDatasetError(f"cannot parse: {type(exc).__name__}: {exc}", filename=item)
        return Skipped(item, item, BROKEN, error.detail, error=error)
    try:
        return _headers(ds, item, item, size, max_pixels, memo)
    except DicomRenderError as exc:
        return Skipped(item, item, BROKEN, exc.detail, _text(ds, "SeriesInstanceUID"), exc.with_filename(item))
    except Exception as exc:  # pydicom decoding a broken element of the header
        error = InvalidDatasetError(f"cannot read the header: {type(exc).__name__}: {exc}", filename=item)
        return Skipped(item, item, BROKEN, error.detail, _text(ds, "SeriesInstanceUID"), error)


def _strings(ds, keyword: str) -> Optional[List[str]]:
    """The values of a text-encoded number or UID attribute (DS, IS, UI, CS), None when absent.

    Decoded from the raw bytes directly: pydicom's generic conversion of an element costs more
    than the rest of a slice's header work; anything unusual goes through pydicom.
    """
    if ds is None:
        return None
    elements = getattr(ds, "_dict", None)
    tag = _TAG_NUMBERS.get(keyword)
    if tag is None:
        tag = _TAG_NUMBERS[keyword] = tag_of(keyword)
    element = elements.get(tag) if isinstance(elements, dict) else None
    if type(element) is RawDataElement and isinstance(element.value, bytes):
        try:
            return split_text(element.value)
        except UnicodeDecodeError:
            pass
    value = values(get(ds, keyword))
    return [str(v) for v in value] if value else None


def split_text(raw: bytes) -> Optional[List[str]]:
    """The values of a text-encoded number or UID (DS, IS, UI, CS) from its raw ASCII bytes, None when
    empty; UnicodeDecodeError when not ASCII."""
    parts = [p.strip(" \x00") for p in raw.decode("ascii").split("\\")]
    return None if parts == [""] else parts


def _text(ds, keyword: str) -> str:
    try:
        if keyword in _CHARACTER_SET_KEYWORDS:
            value = get(ds, keyword)
            return "" if value is None else str(value).strip()
        parts = _strings(ds, keyword)
        return "\\".join(parts) if parts else ""
    except Exception:
        return ""


def _int(ds, keyword: str) -> Optional[int]:
    try:
        parts = _strings(ds, keyword)
        return int(parts[0]) if parts else None
    except (TypeError, ValueError):
        return None


def _floats(ds, keyword: str, count: int) -> Optional[Tuple[float, ...]]:
    """A multi-valued number attribute as floats; None when absent; an error when malformed."""
    value = _strings(ds, keyword)
    if not value:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"{keyword} must be {count} numbers, got {value!r}", attribute=keyword) from None
    if len(numbers) != count or not all(np.isfinite(numbers)):
        raise InvalidDatasetError(f"{keyword} must be {count} finite numbers, got {value!r}", attribute=keyword)
    return numbers


def _float(ds, keyword: str) -> Optional[float]:
    number = _floats(ds, keyword, 1)
    return None if number is None else number[0]


def _no_image(ds: Dataset, name: str, source, size: Optional[int]):
    complete = parsed_to_end(ds, name, size) if size is not None else None
    meta = getattr(ds, "file_meta", None)
    sop = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta is not None else None)
    if complete is not False and sop and "Rows" not in ds:  # a structured report, a presentation state...
        label = getattr(sop, "name", "") or str(sop)
        return Skipped(source, name, NO_IMAGE, f"DICOM object without Pixel Data (SOP Class {label})",
                       _text(ds, "SeriesInstanceUID"))
    raise PixelDataError("no Pixel Data (7FE0,0010): the file is truncated or holds no image", attribute="PixelData")


def _interpretation_key(ds: Dataset) -> Optional[tuple]:
    """The raw bytes everything :class:`ImageInfo` and the frame parameters derive from (groups 0028:
    image pixel, modality LUT and VOI; 2050: presentation LUT; Specific Character Set, Modality, SOP
    Class, the transfer syntax and the pixel element's length), or None when the header holds
    functional groups (enhanced objects: per-frame values).  It must cover every attribute ``dicom/header.py`` reads.

    The slices of a series mostly share them byte for byte, so decoding and checking them once per
    distinct key gives the same result as doing it for every file, for a fraction of the cost.
    """
    elements = getattr(ds, "_dict", None)
    if not isinstance(elements, dict):
        return None
    parts = []
    for tag, element in elements.items():
        group = tag >> 16
        if group in INTERPRETED_GROUPS or tag in INTERPRETED_TAGS:
            if type(element) is not RawDataElement:
                return None
            parts.append((int(tag), element.VR, element.length, element.is_implicit_VR, element.is_little_endian,
                          None if group == 0x7FE0 else element.value))
        elif group == 0x5200:
            return None
    return (str(transfer_syntax(ds)), tuple(parts))


def _headers(ds: Dataset, source, name: str, size: Optional[int], max_pixels, memo: Dict[tuple, tuple]) -> object:
    if not has_pixel_data(ds):
        return _no_image(ds, name, source, size)
    if size is not None:
        parsed_to_end(ds, name, size)  # a last element running past the end of the file is an error
    key = _interpretation_key(ds) if size is not None else None
    known = memo.get(key) if key is not None else None
    if known is None:
        info = _image_info(ds, name, max_pixels)
        known = (info, [info.frame_parameters(i) for i in range(info.frames)])
        if key is not None:
            memo[key] = known
    info, parameters = known
    location = _location(ds, info, size)
    common: Dict[str, Any] = dict(
        series_uid=_text(ds, "SeriesInstanceUID"), study_uid=_text(ds, "StudyInstanceUID"),
        series_number=_int(ds, "SeriesNumber"), modality=info.modality_name,
        description=_text(ds, "SeriesDescription"), sop_uid=_text(ds, "SOPInstanceUID"),
        instance=_int(ds, "InstanceNumber"), rows=info.rows, columns=info.columns, grayscale=info.is_grayscale,
        photometric=info.photometric, format=info.format, word_dtype=info.word_dtype.str, inverse=info.inverse,
        padding=info.pixel_padding)
    per_frame = get(ds, "PerFrameFunctionalGroupsSequence")
    shared = first_item(ds, "SharedFunctionalGroupsSequence")
    headers = []
    for index in range(info.frames):
        item = per_frame[index] if per_frame is not None and index < len(per_frame) else None
        position, orientation, spacing, thickness = _plane(ds, item, shared, info.frames)
        frame_location = None
        if location is not None:
            offset, nbytes = location
            frame_location = (offset + index * nbytes, nbytes)
        headers.append(SliceHeader(
            source=source, name=name, frame=index, frames=info.frames, position=position, orientation=orientation,
            pixel_spacing=spacing, slice_thickness=thickness, slice_spacing=_float(ds, "SpacingBetweenSlices"),
            parameters=parameters[index], location=frame_location, **common))
    return headers


def _image_info(ds: Dataset, name: str, max_pixels) -> ImageInfo:
    """ImageInfo of a header whose Pixel Data may still be on disk: the rendering groups are decoded
    now, Pixel Data itself is left where it is."""
    elements = getattr(ds, "_dict", None)
    keyword = next(k for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if has(ds, k))
    tag = tag_of(keyword)
    pixel = elements.pop(tag) if isinstance(elements, dict) else None
    try:
        parse_elements(ds, name)
    finally:
        if pixel is not None:
            assert isinstance(elements, dict)
            elements[tag] = pixel
    return ImageInfo.from_dataset(ds, name, max_pixels=max_pixels)


def _location(ds: Dataset, info: ImageInfo, size: Optional[int]) -> Optional[Tuple[int, int]]:
    """``(offset, bytes per frame)`` of native little-endian words in the file, else None.

    Pixel Data shorter than Rows x Columns x frames is an error here, before any volume is made.
    """
    if size is None or info.compressed or info.packed_bits or info.samples_per_pixel != 1:
        return None
    element = ds.get_item(tag_of(info.pixel_keyword), keep_deferred=True)
    offset, length = getattr(element, "value_tell", None), getattr(element, "length", None)
    if offset is None or length is None or length == 0xFFFFFFFF:
        return None
    frame_bytes = info.rows * info.columns * info.word_dtype.itemsize
    needed = frame_bytes * info.frames
    if length < needed:
        raise PixelDataError(f"{info.pixel_keyword} is truncated: {length} bytes, {needed} needed for "
                             f"{info.frames} frame(s) of {info.rows}x{info.columns} at "
                             f"{info.word_dtype.itemsize * 8} bits", attribute=info.pixel_keyword)
    if info.transfer_syntax not in _NATIVE_LE or sys.byteorder != "little" or offset + needed > size:
        return None
    return (int(offset), frame_bytes)


def _plane(ds: Dataset, per_frame: Optional[Dataset], shared: Optional[Dataset], frames: int):
    """Position, orientation, pixel spacing and thickness of one frame: the per-frame functional groups,
    then the shared ones, then the top level (whose position describes a single-frame image only)."""

    def group(keyword):
        for source in (per_frame, shared):
            item = first_item(source, keyword)
            if item is not None:
                return item
        return None

    plane_position = group("PlanePositionSequence")
    position = _floats(plane_position, "ImagePositionPatient", 3) if plane_position is not None else \
        _floats(ds, "ImagePositionPatient", 3) if frames == 1 else None
    orientation = _floats(group("PlaneOrientationSequence") or ds, "ImageOrientationPatient", 6)
    measures = group("PixelMeasuresSequence") or ds
    spacing = _floats(measures, "PixelSpacing", 2) or _floats(ds, "PixelSpacing", 2)
    thickness = _float(measures, "SliceThickness")
    return position, orientation, spacing, thickness
