"""Where each frame of encapsulated Pixel Data lies: the fragments indexed once per data set.

pydicom's ``get_frame`` scans every fragment of the value for each frame it returns when there is
no offset table, so decoding N frames one by one costs N^2 (8,000 one-fragment frames: 26 s).
:func:`frame_index` walks the items once and groups them into frames as pydicom does (PS3.5 A.4):
by the Extended Offset Table, else by the Basic Offset Table, else one frame per fragment when
there are as many fragments as frames, all fragments when there is one frame, else at JPEG EOI /
JPEG 2000 EOC markers.  The index is kept with the element, so rendering the frames of one data
set block by block indexes it once.
"""

from __future__ import annotations

import io
import struct
import weakref
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from pydicom.encaps import parse_basic_offsets

from ..errors import PixelDataError

__all__ = ["FrameIndex", "frame_index", "indexed", "frame_head", "encapsulate_frames", "HEAD_BYTES"]

#: An item header read as one little-endian word pair: (group | element << 16, length).
_ITEM_HEADER = struct.Struct("<II")
_ITEM_TAG = 0xE000FFFE
_EMPTY_OFFSET_TABLE = struct.pack("<HHI", 0xFFFE, 0xE000, 0)
#: Bytes of a frame its codestream header must lie in (a JPEG's APP segments: up to 64 kB each).
HEAD_BYTES = 1 << 20

#: A frame: the (start, stop) byte ranges of its fragments' values in the element's value.
Spans = Tuple[Tuple[int, int], ...]


class FrameIndex(NamedTuple):
    """The fragments of one encapsulated value, grouped into frames."""

    frames: Tuple[Spans, ...]
    fragments: int


def _error(message: str) -> PixelDataError:
    return PixelDataError(f"encapsulated Pixel Data: {message}", attribute="PixelData")


def _fragments(value, start: int) -> List[Tuple[int, int]]:
    """The value ranges of the fragment items from ``start`` to the end (or a sequence delimiter)."""
    spans = []
    at, n = start, len(value)
    unpack = _ITEM_HEADER.unpack_from
    while at + 8 <= n:
        tag, length = unpack(value, at)
        if tag != _ITEM_TAG:
            break
        if length == 0xFFFFFFFF:
            raise _error(f"the fragment item at byte {at} has undefined length")
        begin = at + 8
        spans.append((begin, min(n, begin + length)))  # a truncated last fragment is what pydicom reads too
        at = begin + length
    if at + 4 <= n:
        group, element = struct.unpack_from("<HH", value, at)
        if (group, element) != (0xFFFE, 0xE0DD):
            what = "item header" if (group, element) == (0xFFFE, 0xE000) else "tag"
            raise _error(f"unexpected {what} ({group:04X},{element:04X}) at byte {at} instead of a fragment item")
    return spans


def _extended(value, start: int, extended) -> Optional[List[Spans]]:
    """Frames by the Extended Offset Table (one fragment each), or None when it is unusable."""
    tables = [bytes(t) if isinstance(t, (bytes, bytearray, memoryview)) else b"" for t in extended]
    if len(tables) != 2 or not tables[0] or len(tables[0]) % 8 or len(tables[0]) != len(tables[1]):
        return None
    count = len(tables[0]) // 8
    offsets = struct.unpack(f"<{count}Q", tables[0])
    lengths = struct.unpack(f"<{count}Q", tables[1])
    frames: List[Spans] = []
    for k, (offset, length) in enumerate(zip(offsets, lengths)):
        begin = start + offset + 8
        if begin + length > len(value):
            raise _error(f"the Extended Offset Table puts frame {k} ({length} bytes at offset {offset}) past the "
                         f"end of the {len(value)}-byte value")
        frames.append(((begin, begin + length),))
    return frames


def _by_offsets(fragments: List[Tuple[int, int]], start: int, offsets: Sequence[int]) -> List[Spans]:
    """Frames by the Basic Offset Table: each offset must be where a fragment item starts."""
    position = {begin - 8 - start: k for k, (begin, _) in enumerate(fragments)}
    firsts: List[int] = []
    for k, offset in enumerate(offsets):
        first = position.get(offset)
        if first is None:
            raise _error(f"Basic Offset Table entry {k} ({offset}) is not where a fragment starts")
        if firsts and first < firsts[-1]:
            raise _error(f"Basic Offset Table entry {k} ({offset}) goes backwards")
        firsts.append(first)
    bounds = firsts + [len(fragments)]
    return [tuple(fragments[bounds[k]:bounds[k + 1]]) for k in range(len(firsts))]


def _by_markers(value, fragments: List[Tuple[int, int]]) -> List[Spans]:
    """Frames ending at the fragment whose last 10 bytes hold a JPEG EOI / JPEG 2000 EOC (as pydicom)."""
    frames: List[Spans] = []
    current: List[Tuple[int, int]] = []
    for begin, stop in fragments:
        current.append((begin, stop))
        if b"\xff\xd9" in bytes(value[max(begin, stop - 10):stop]):
            frames.append(tuple(current))
            current = []
    if current:
        frames.append(tuple(current))
    return frames


def frame_index(value, frames: int, extended=None) -> FrameIndex:
    """Index the encapsulated ``value`` (Basic Offset Table item first) declared to hold ``frames`` frames;
    ``extended``: the (Extended Offset Table, its Lengths) values, or None.

    Raises
    ------
    PixelDataError
        When the items are not a valid encapsulation (PS3.5 A.4).
    """
    try:
        offsets = parse_basic_offsets(io.BytesIO(value))  # BytesIO shares the bytes: no copy
    except (ValueError, struct.error) as exc:
        raise _error(f"no valid Basic Offset Table item: {exc}") from None
    start = 8 + 4 * len(offsets)
    if extended is not None:
        by_table = _extended(value, start, extended)
        if by_table is not None:
            return FrameIndex(tuple(by_table), len(by_table))
    fragments = _fragments(value, start)
    if not fragments:
        raise _error("it holds no fragment")
    if offsets:
        grouped = _by_offsets(fragments, start, offsets)
    elif len(fragments) == frames or len(fragments) == 1:
        grouped = [(span,) for span in fragments]
    elif frames == 1:
        grouped = [tuple(fragments)]
    else:
        grouped = _by_markers(value, fragments)
    return FrameIndex(tuple(grouped), len(fragments))


# The index of each element's value, kept while the element lives (keyed by id: elements are unhashable).
_INDEXES: Dict[int, Tuple[object, int, object, FrameIndex]] = {}


def indexed(element, frames: int, extended=None) -> FrameIndex:
    """:func:`frame_index` of a Pixel Data element's value, computed once per element and value."""
    key = id(element)
    value = element.value
    cached = _INDEXES.get(key)
    if cached is not None and cached[0] is value and cached[1] == frames and cached[2] == extended:
        return cached[3]
    index = frame_index(value, frames, extended)
    if cached is None:
        weakref.finalize(element, _INDEXES.pop, key, None)
    _INDEXES[key] = (value, frames, extended, index)
    return index


def frame_head(value, spans: Spans, size: int = HEAD_BYTES):
    """The first bytes of one frame's codestream, where its header is: the first fragment (a view, not a
    copy) when it holds ``size`` bytes, else the first ``size`` bytes of the fragments joined."""
    view = memoryview(value)
    begin, stop = spans[0]
    if stop - begin >= size or len(spans) == 1:
        return view[begin:stop]
    parts, total = [], 0
    for begin, stop in spans:
        parts.append(view[begin:min(stop, begin + size - total)])
        total += len(parts[-1])
        if total >= size:
            break
    return b"".join(parts)


def encapsulate_frames(value, frames: Sequence[Spans]) -> bytes:
    """``frames`` re-encapsulated one fragment per frame after an empty Basic Offset Table: what pydicom's
    decoders split into exactly these frames, without searching."""
    view = memoryview(value)
    parts: List[object] = [_EMPTY_OFFSET_TABLE]
    for spans in frames:
        size = sum(stop - begin for begin, stop in spans)
        parts.append(struct.pack("<HHI", 0xFFFE, 0xE000, size))
        parts.extend(view[begin:stop] for begin, stop in spans)
    return b"".join(parts)  # type: ignore[arg-type]
