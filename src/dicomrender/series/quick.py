"""Slice headers from a file's raw elements, without a pydicom parse, for the slices of a series that
look alike.

The slices of a series mostly share, byte for byte, everything that decides how their pixels are
interpreted (the image pixel, modality LUT and VOI groups, Modality, SOP Class, the transfer syntax,
the pixel element's length): only their UIDs, numbers and geometry differ.  So the first file of each
such kind is read the full way (:func:`.sources.read_one`: pydicom, every check), and its slice
headers become the template of every later file whose interpreting bytes are the same; those files
are read with :func:`dicomrender.dicom.flat.read_flat` (where each top-level value lies) and only
their own attributes are decoded from the raw bytes, the way :mod:`.sources` decodes them.

Anything this does not decide exactly like the full read — a file :func:`read_flat` declines,
functional groups (enhanced objects), a sequence among the interpreting elements, text that is not
plain ASCII, a malformed number — is read the full way, whose result or error then stands
(``tests/test_quick.py`` compares both on every test file, on series and on corrupted copies).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from pydicom.dataset import Dataset

from ..dicom.flat import FlatHeader, read_flat
from ..dicom.header import DEFAULT_MAX_PIXELS
from .sources import INTERPRETED_GROUPS, INTERPRETED_TAGS, Skipped, SliceHeader, read_one, split_text

__all__ = ["HeaderReader", "read_headers", "quick_headers"]

_FUNCTIONAL_GROUPS = 0x5200

_SERIES_UID, _STUDY_UID, _SERIES_NUMBER, _DESCRIPTION = 0x0020000E, 0x0020000D, 0x00200011, 0x0008103E
_SOP_UID, _INSTANCE, _POSITION, _ORIENTATION = 0x00080018, 0x00200013, 0x00200032, 0x00200037
_PIXEL_SPACING, _THICKNESS, _SLICE_SPACING = 0x00280030, 0x00180050, 0x00180088


class _Full(Exception):
    """This file is read the full way."""


class HeaderReader:
    """Reads slice headers, keeping what the files read so far teach for the next ones: interpretations
    by their raw bytes (the full read's memo) and templates by kind.  One reader serves a whole scan
    (the files timed first, then the caller's share; forked readers start with a copy of it)."""

    def __init__(self, datasets: Optional[Sequence[Dataset]], max_pixels: Optional[int] = DEFAULT_MAX_PIXELS):
        self.datasets, self.max_pixels = datasets, max_pixels
        self.memo: Dict[tuple, tuple] = {}
        self.templates: Dict[tuple, List[SliceHeader]] = {}

    def read(self, items: Sequence[Union[str, int]]) -> Tuple[List[SliceHeader], List[Skipped]]:
        """The slice headers of ``items`` (paths, or indices into the datasets) and the items that gave none."""
        headers: List[SliceHeader] = []
        skipped: List[Skipped] = []
        for item in items:
            result = None
            if isinstance(item, str):
                result = quick_headers(item, self.max_pixels, self.memo, self.templates)
            if result is None:
                result = read_one(item, self.datasets, self.max_pixels, self.memo)
            if isinstance(result, Skipped):
                skipped.append(result)
            else:
                headers.extend(result)
        return headers, skipped


def read_headers(items: Sequence[Union[str, int]], datasets: Optional[Sequence[Dataset]],
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Tuple[List[SliceHeader], List[Skipped]]:
    """The slice headers of ``items`` (paths, or indices into ``datasets``) and the items that gave none."""
    return HeaderReader(datasets, max_pixels).read(items)


def quick_headers(path: str, max_pixels: Optional[int], memo: Dict[tuple, tuple],
                  templates: Dict[tuple, List[SliceHeader]]) -> Union[None, Skipped, List[SliceHeader]]:
    """The slice headers of the file at ``path``, from a template of ``templates`` when one fits, else
    read the full way (and kept as the template of its kind); None when the caller reads it the full way."""
    flat = read_flat(path)
    if flat is None:
        return None
    key = _key(flat)
    if key is None:
        return None
    template = templates.get(key)
    if template is None:
        result = read_one(path, None, max_pixels, memo)
        if isinstance(result, list) and result and _fits(result, flat):
            templates[key] = result
        return result
    try:
        return _from_template(template, flat)
    except (_Full, UnicodeDecodeError):
        return None


def _key(flat: FlatHeader) -> Optional[tuple]:
    """The bytes the interpretation of ``flat``'s pixels derives from, or None (functional groups, or a
    sequence of undefined length among them)."""
    parts = []
    for tag, (vr, _, length) in flat.elements.items():
        group = tag >> 16
        if group in INTERPRETED_GROUPS or tag in INTERPRETED_TAGS:
            if length < 0:
                return None
            parts.append((tag, vr, flat.value(tag)))
        elif group == _FUNCTIONAL_GROUPS:
            return None
    tag, vr, _, length = flat.pixel
    return (flat.syntax, tag, vr, length, tuple(parts))


def _fits(headers: List[SliceHeader], flat: FlatHeader) -> bool:
    """Whether the full read's headers can serve as a template: one per frame, words read from the
    file at Pixel Data's offset (or through pydicom for every frame)."""
    first = headers[0]
    if len(headers) != first.frames or any(h.frame != i for i, h in enumerate(headers)):
        return False
    if first.location is None:
        return all(h.location is None for h in headers)
    return first.location[0] == flat.pixel[2]


def _from_template(template: List[SliceHeader], flat: FlatHeader) -> List[SliceHeader]:
    first = template[0]
    frames = first.frames
    position = _floats(flat, _POSITION, 3) if frames == 1 else None
    orientation = _floats(flat, _ORIENTATION, 6)
    spacing = _floats(flat, _PIXEL_SPACING, 2)
    thickness = _floats(flat, _THICKNESS, 1)
    slice_spacing = _floats(flat, _SLICE_SPACING, 1)
    common: Dict[str, Any] = dict(
        source=flat.path, name=flat.path, series_uid=_text(flat, _SERIES_UID), study_uid=_text(flat, _STUDY_UID),
        series_number=_int(flat, _SERIES_NUMBER), description=_description(flat), sop_uid=_text(flat, _SOP_UID),
        instance=_int(flat, _INSTANCE), position=position, orientation=orientation, pixel_spacing=spacing,
        slice_thickness=None if thickness is None else thickness[0],
        slice_spacing=None if slice_spacing is None else slice_spacing[0])
    offset = flat.pixel[2]
    headers = []
    for header in template:
        location = header.location
        if location is not None:
            location = (offset + header.frame * location[1], location[1])
        headers.append(SliceHeader(
            frame=header.frame, frames=frames, modality=header.modality, rows=header.rows, columns=header.columns,
            grayscale=header.grayscale, photometric=header.photometric, format=header.format,
            word_dtype=header.word_dtype, inverse=header.inverse, padding=header.padding,
            parameters=header.parameters, location=location, **common))
    return headers


def _strings(flat: FlatHeader, tag: int) -> Optional[List[str]]:
    raw = flat.value(tag)
    return None if raw is None else split_text(raw)


def _text(flat: FlatHeader, tag: int) -> str:
    parts = _strings(flat, tag)
    return "\\".join(parts) if parts else ""


def _int(flat: FlatHeader, tag: int) -> Optional[int]:
    parts = _strings(flat, tag)
    try:
        return int(parts[0]) if parts else None
    except ValueError:
        return None


def _description(flat: FlatHeader) -> str:
    """Series Description: plain printable ASCII reads the same in every character set; else the full way."""
    raw = flat.value(_DESCRIPTION)
    if raw is None:
        return ""
    if not raw.isascii() or any(c < 0x20 or c == 0x5C for c in raw):
        raise _Full
    return raw.decode("ascii").strip()


def _floats(flat: FlatHeader, tag: int, count: int) -> Optional[Tuple[float, ...]]:
    """As .sources reads a multi-valued number; a malformed one is read the full way (which reports it)."""
    parts = _strings(flat, tag)
    if not parts:
        return None
    try:
        numbers = tuple(float(v) for v in parts)
    except ValueError:
        raise _Full from None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        raise _Full
    return numbers
