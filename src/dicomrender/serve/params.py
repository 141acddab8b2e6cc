"""The query parameters of WADO-RS rendered resources (PS3.18 8.3.5.1) and the media type negotiated.

``window=center,width[,function]``, ``viewport=vw,vh[,sx,sy,sw,sh]``, ``quality``, ``iccprofile``,
``accept`` (the query form; else the ``Accept`` header with its q-values) and the ``preset=``
extension (any registered preset, plugins included).  Every value is checked here, before any file is
read: a malformed one is an :class:`~dicomrender.errors.InvalidArgumentError` (HTTP 400) naming the
parameter, an unacceptable media type a :class:`NotAcceptable` (HTTP 406).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

from ..display.icc import check_iccprofile
from ..display.viewport import Viewport, parse_viewport
from ..errors import InvalidArgumentError
from ..presets import get_preset

__all__ = ["RenderRequest", "NotAcceptable", "parse_request", "negotiate", "IMAGE_TYPES", "ANIMATED_TYPES",
           "parse_frames"]

#: Single-image media types and the Pillow format of each.
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
#: Media types that hold several frames as an animation (a multi-frame instance, a frame list).
ANIMATED_TYPES = ("image/gif", "image/webp")
_FUNCTIONS = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}
PARAMETERS = ("window", "viewport", "quality", "iccprofile", "accept", "preset", "annotation", "charset")
#: Default JPEG / WebP quality (PS3.18 leaves it to the server).
DEFAULT_QUALITY = 90
#: Largest viewport side: a rendered image bigger than this is a request for a lot of memory.
MAX_VIEWPORT = 8192
MAX_FRAMES_LISTED = 4096


class NotAcceptable(Exception):
    """No media type the resource can be rendered as is acceptable to the client (HTTP 406)."""


@dataclass(frozen=True)
class RenderRequest:
    """The rendering a request asks for (every field checked)."""

    preset: Optional[str] = None
    window: Optional[Tuple[float, float]] = None
    function: Optional[str] = None
    viewport: Optional[Viewport] = None
    quality: int = DEFAULT_QUALITY
    iccprofile: str = "no"

    def key(self) -> str:
        """A canonical text of the request, for the ETag."""
        return repr((self.preset, self.window, self.function, self.viewport, self.quality, self.iccprofile))


def _one(params: Mapping[str, Sequence[str]], name: str) -> Optional[str]:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidArgumentError(f"{name} is given {len(values)} times", attribute=name)
    return values[0]


def _numbers(text: str, name: str) -> List[float]:
    try:
        numbers = [float(v) for v in text.split(",")]
    except ValueError:
        raise InvalidArgumentError(f"{name} {text[:60]!r} is not a list of numbers", attribute=name) from None
    if not all(math.isfinite(n) for n in numbers):
        raise InvalidArgumentError(f"{name} {text[:60]!r} holds a value that is not finite", attribute=name)
    return numbers


def _window(text: str) -> Tuple[Tuple[float, float], Optional[str]]:
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise InvalidArgumentError(f"window must be center,width[,function], got {text[:60]!r}", attribute="window")
    center, width = _numbers(",".join(parts[:2]), "window")
    if width <= 0:
        raise InvalidArgumentError(f"window width must be > 0, got {width:g}", attribute="window")
    function = None
    if len(parts) == 3:
        function = _FUNCTIONS.get(parts[2].strip().lower())
        if function is None:
            raise InvalidArgumentError(f"window function must be one of {', '.join(_FUNCTIONS)}, got "
                                       f"{parts[2][:40]!r}", attribute="window")
    return (center, width), function


def _viewport(text: str) -> Viewport:
    viewport = parse_viewport(text)
    assert viewport is not None
    if not (viewport.vw <= MAX_VIEWPORT and viewport.vh <= MAX_VIEWPORT):
        raise InvalidArgumentError(f"viewport size must be at most {MAX_VIEWPORT} pixels a side, got "
                                   f"{viewport.vw}x{viewport.vh}", attribute="viewport")
    return viewport


def parse_request(params: Mapping[str, Sequence[str]]) -> RenderRequest:
    """The :class:`RenderRequest` of a rendered resource's query parameters."""
    for name in params:
        if name not in PARAMETERS:
            close = difflib.get_close_matches(name, PARAMETERS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidArgumentError(f"unknown parameter {name[:60]!r}{hint}; rendered resources take "
                                       f"{', '.join(PARAMETERS)}", attribute=name[:60])
    if _one(params, "annotation"):
        raise InvalidArgumentError("annotation is not supported: images are rendered without burnt-in text",
                                   attribute="annotation")
    window = function = None
    text = _one(params, "window")
    if text is not None:
        window, function = _window(text)
    preset = _one(params, "preset")
    if preset is not None:
        if window is not None:
            raise InvalidArgumentError("give window= or preset=, not both", attribute="preset")
        preset = get_preset(preset).name  # an unknown name: UnknownPresetError, listing the closest
    viewport = None
    text = _one(params, "viewport")
    if text is not None:
        viewport = _viewport(text)
    quality = DEFAULT_QUALITY
    text = _one(params, "quality")
    if text is not None:
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise InvalidArgumentError(f"quality must be an integer from 1 to 100, got {text[:40]!r}",
                                       attribute="quality")
        quality = int(text)
    icc = check_iccprofile(_one(params, "iccprofile"))
    return RenderRequest(preset, window, function, viewport, quality, icc)


def _ranges(text: str) -> List[Tuple[str, float]]:
    """``(media range, q)`` of an Accept value, best first (stable among equal q)."""
    ranges = []
    for position, item in enumerate(text.split(",")):
        fields = [f.strip() for f in item.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for field in fields[1:]:
            name, _, value = field.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            elif name.strip().lower() == "type" and media == "multipart/related":
                media = value.strip().strip('"').lower()  # multipart/related; type="image/png": the part type
        if q > 0 and math.isfinite(q):
            ranges.append((position, media, q))
    ranges.sort(key=lambda r: (-r[2], r[0]))
    return [(media, q) for _, media, q in ranges]


def negotiate(accept_query: Optional[str], accept_header: Optional[str], offered: Sequence[str]) -> str:
    """The media type to answer with: the first of ``offered`` (the server's order of preference) that the
    ``accept`` query parameter, else the ``Accept`` header, allows best.

    Raises
    ------
    NotAcceptable
        None of ``offered`` is acceptable.
    """
    text = accept_query if accept_query else accept_header
    if not text:
        return offered[0]
    for media, _ in _ranges(text):
        if media == "*/*":
            return offered[0]
        if media.endswith("/*"):
            match = [t for t in offered if t.startswith(media[:-1])]
            if match:
                return match[0]
        if media in offered:
            return media
    raise NotAcceptable(f"cannot answer with {text[:200]!r}: this resource is available as {', '.join(offered)}")


def parse_frames(text: str, frames: int) -> List[int]:
    """0-based indices of a 1-based frame list (``1``, ``1,3``) of an instance of ``frames`` frames.

    Raises
    ------
    InvalidArgumentError
        Not a list of positive integers.
    IndexError
        A frame the instance does not have (HTTP 404).
    """
    parts = text.split(",")
    if len(parts) > MAX_FRAMES_LISTED or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise InvalidArgumentError(f"frames must be a list of 1-based frame numbers (1 or 1,3), got {text[:60]!r}",
                                   attribute="frames")
    numbers = [int(p) for p in parts]
    missing = [n for n in numbers if n > frames]
    if missing:
        raise IndexError(f"frame {missing[0]} does not exist: the instance has {frames} frame(s)")
    return [n - 1 for n in numbers]
