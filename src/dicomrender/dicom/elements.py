"""Element access for rendering: decoding the groups rendering reads up front, and typed look-ups.

pydicom decodes elements lazily and through a generic path (~8 µs per element); rendering needs
a few dozen elements of a few groups, decoded now (so a corrupt one is an error naming it, not a
late arbitrary exception) and looked up by cached tag (a keyword look-up costs 2 µs).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import pydicom
import pydicom.config
import pydicom.datadict
import pydicom.hooks
import pydicom.uid
import pydicom.values
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from ..errors import InvalidDatasetError

__all__ = ["parse_elements", "tag_of", "has", "get", "integer", "number", "values", "first_item", "transfer_syntax",
           "is_transfer_syntax", "keyword_of"]

#: Element groups rendering reads: Image Pixel / LUTs / windows (0028), functional groups (5200),
#: pixel data (7FE0); with Modality and SOP Class (0008,0060 / 0008,0016).
_RENDER_GROUPS = frozenset((0x0028, 0x5200, 0x7FE0))
_RENDER_TAGS = frozenset((0x00080016, 0x00080060))
#: Deepest nesting of sequences parsed in those groups: real functional groups nest two or three deep.
MAX_DEPTH = 16
#: Most elements and items parsed inside those sequences (a 20,000-frame enhanced image has ~400,000).
MAX_NESTED = 2_000_000


#: VRs whose values pydicom decodes without the character set and whose raw VR is the dictionary's.
_PLAIN_VRS = frozenset(("US", "UL", "SS", "SL", "FL", "FD", "DS", "IS", "CS", "UI"))
_PLAIN: dict = {}


def _plain_vr(tag: BaseTag) -> Optional[str]:
    """The dictionary VR of a public element with a plain VR (see _decode_plain), else None."""
    try:
        return _PLAIN[tag]
    except KeyError:
        pass
    vr = None
    if not tag.is_private:
        try:
            vr = pydicom.datadict.dictionary_VR(tag)
        except KeyError:
            pass
    _PLAIN[tag] = vr = vr if vr in _PLAIN_VRS else None
    return vr


def _default_conversion() -> bool:
    """True while nobody has customised how pydicom turns raw elements into values."""
    hooks = pydicom.hooks.hooks
    return (pydicom.config.data_element_callback is None and not hooks.raw_element_kwargs
            and hooks.raw_element_vr is pydicom.hooks.raw_element_vr
            and hooks.raw_element_value is pydicom.hooks.raw_element_value)


def _decode_plain(raw: RawDataElement, vr: str) -> Optional[DataElement]:
    """The DataElement pydicom makes of ``raw`` (a public element of a plain VR), made with pydicom's
    value converter alone: its generic path (hooks, VR lookup, retries) costs ~8 µs per element,
    more than the windowing of a whole slice.  None for anything unusual (empty, deferred, another
    VR in the file, a value the converter refuses): pydicom's own path then decides."""
    if raw.value is None or not raw.length or (raw.VR is not None and raw.VR != vr):
        return None
    converter: Any = pydicom.values.converters[vr]  # type: ignore[index]  # VR is a str enum
    try:
        if isinstance(converter, tuple):
            value = converter[0](raw.value, raw.is_little_endian, converter[1])
        else:
            value = converter(raw.value, raw.is_little_endian, None)
    except Exception:
        return None
    return DataElement(raw.tag, vr, value, raw.value_tell, raw.length == 0xFFFFFFFF, already_converted=True)


def _elements(ds) -> Optional[dict]:
    """The dataset's own tag -> element dict (pydicom keeps it in ``Dataset._dict``), or None."""
    elements = getattr(ds, "_dict", None)
    return elements if isinstance(elements, dict) else None


def _is_sequence(tag: BaseTag, element) -> bool:
    """Whether pydicom makes a sequence of ``element``, read from its raw VR (or, in implicit VR, from the
    dictionary or an undefined length) without converting it."""
    vr = element.VR
    if vr is None:
        try:
            vr = pydicom.datadict.dictionary_VR(tag)
        except KeyError:
            vr = None
    return vr == "SQ" or element.length == 0xFFFFFFFF and vr in (None, "UN")


def parse_elements(ds: Dataset, filename: Optional[str], nested: bool = False) -> None:
    """Decode the elements rendering reads, now: pydicom decodes lazily, and a corrupt element
    (unknown VR, odd length for US...) would otherwise surface later as an arbitrary exception.

    Only those groups, not the whole header: decoding every element of a real CT header costs
    1-3 ms, ten times the windowing.  Inside the sequences of those groups, the same groups again
    (a functional group's Plane Position is never read).  Sequences nest at most :data:`MAX_DEPTH`
    deep and hold at most :data:`MAX_NESTED` elements and items: pydicom parses each nested value
    from a copy of it, so a sequence nested a thousand times in a 1.5 MB file cost 1.5 GB.

    Raises
    ------
    InvalidDatasetError
        Naming the element, when it cannot be decoded or nests too deep or holds too much.
    """
    _parse_level(ds, filename, 0 if not nested else 1, [MAX_NESTED], None)


def _parse_level(ds: Dataset, filename: Optional[str], depth: int, budget: list, outer: Optional[str]) -> None:
    own_elements = _elements(ds)
    own = own_elements is not None
    elements: dict = own_elements if own_elements is not None else dict.fromkeys(ds.keys())
    plain = _default_conversion()
    # tags only: holding the raw elements of a level while its sequences are parsed would keep a copy
    # of every nesting level's value alive at once
    for tag in list(elements):
        if depth:
            budget[0] -= 1
            if budget[0] < 0:
                raise InvalidDatasetError(f"{outer} holds more than {MAX_NESTED} nested elements and items: refused",
                                          filename=filename, attribute=outer)
        if tag >> 16 not in _RENDER_GROUPS and tag not in _RENDER_TAGS:  # >> 16: BaseTag.group is a slow property
            continue
        element = elements[tag] if own else ds.get_item(tag)
        if type(element) is DataElement and element.VR != "SQ":
            continue  # decoded already (a second render of the same dataset)
        raw = type(element) is RawDataElement
        if depth >= MAX_DEPTH and (_is_sequence(tag, element) if raw else element.VR == "SQ"):
            raise InvalidDatasetError(f"{keyword_of(tag)} is nested more than {MAX_DEPTH} sequences deep in {outer}: "
                                      f"refused", filename=filename, attribute=outer)
        if raw:
            if plain:
                vr = _plain_vr(tag)
                decoded = _decode_plain(element, vr) if vr else None
                if decoded is not None:
                    # what Dataset.__setitem__ does for a public element that is neither pixel data nor a sequence
                    if own:
                        elements[tag] = decoded
                    else:
                        ds[tag] = decoded
                    continue
        del element
        try:
            element = ds[tag]
        except Exception as exc:
            keyword = pydicom.datadict.keyword_for_tag(tag) or str(tag)
            raise InvalidDatasetError(f"cannot decode element {tag} {keyword}: {type(exc).__name__}: {exc}",
                                      filename=filename, attribute=keyword) from None
        if element.VR == "SQ":
            items = element.value or ()
            del element
            for item in items:
                budget[0] -= 1
                _parse_level(item, filename, depth + 1, budget, outer or keyword_of(tag))


_TAGS: dict = {}


def tag_of(keyword: str) -> BaseTag:
    """The tag of a DICOM keyword (cached)."""
    tag = _TAGS.get(keyword)
    if tag is None:
        number = pydicom.datadict.tag_for_keyword(keyword)
        if number is None:
            raise KeyError(f"{keyword!r} is not a DICOM keyword")
        tag = _TAGS[keyword] = BaseTag(number)
    return tag


def has(ds: Dataset, keyword: str) -> bool:
    """``keyword in ds``: pydicom maps the keyword to its tag on every call (2 µs, dozens per image)."""
    elements = _elements(ds)
    return tag_of(keyword) in (ds if elements is None else elements)


def get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)`` for a DICOM keyword, without pydicom's keyword lookup on every call.

    An element already decoded (rendering decodes its groups up front, see parse_elements) is
    taken straight from the dataset's element dict; anything else goes through pydicom."""
    tag = tag_of(keyword)
    elements = _elements(ds)
    if elements is not None:
        element = elements.get(tag)
        if element is None:
            return default
        if type(element) is DataElement:
            return element.value
    elif tag not in ds:
        return default
    return ds[tag].value


def transfer_syntax(ds: Dataset):
    """The file meta Transfer Syntax UID, or None."""
    meta = getattr(ds, "file_meta", None)
    if isinstance(meta, Dataset):
        return get(meta, "TransferSyntaxUID")
    return getattr(meta, "TransferSyntaxUID", None)


@functools.lru_cache(maxsize=64)
def is_transfer_syntax(uid: str) -> bool:
    # a pure function of the UID text; building and validating a UID costs µs per image
    return pydicom.uid.UID(uid).is_transfer_syntax


def integer(ds: Dataset, keyword: str, default: Optional[int] = None) -> int:
    """An integer attribute; ``default`` when absent (an error when absent and no default)."""
    value = get(ds, keyword, default)
    if value is None or value == "":
        if default is None:
            raise InvalidDatasetError(f"{keyword} is missing", attribute=keyword)
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"{keyword} must be an integer, got {value!r}", attribute=keyword) from None
    return number


def values(value) -> list:
    """A header value as a list (empty for None or "", one item for a single value)."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


def first_item(ds: Optional[Dataset], keyword: str) -> Optional[Dataset]:
    """The first item of sequence ``keyword`` of ``ds``, or None."""
    if ds is None:
        return None
    seq = get(ds, keyword)
    if seq is None or len(seq) == 0:
        return None
    return seq[0]


def number(ds: Dataset, keyword: str, default: float) -> float:
    """A numeric attribute as float; ``default`` when absent."""
    value = get(ds, keyword)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"{keyword} must be a number, got {value!r}", attribute=keyword) from None


def keyword_of(tag_: Any) -> str:
    """The keyword of a tag, or the tag itself for unknown and private ones."""
    return pydicom.datadict.keyword_for_tag(tag_) or str(tag_)
