"""WADO-RS resources of indexed files (PS3.18 10.4): rendered images, thumbnails and metadata.

Everything here is synchronous and runs in a worker thread (``app`` bounds how many at once); each
render uses one kernel thread, so concurrent requests share the cores instead of oversubscribing
them.  Rows come from the index: the only paths ever opened are indexed ones.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..dicom.icc import icc_profile
from ..dicom.source import read_file
from ..dicom.timing import frame_durations
from ..display.icc import apply_iccprofile
from ..display.viewport import Viewport
from ..rendering import render
from .cache import DatasetCache
from .encode import encode, encode_frames, multipart
from .params import ANIMATED_TYPES, IMAGE_TYPES, RenderRequest

__all__ = ["THUMBNAIL_SIZE", "render_pixels", "offered_types", "instance_image", "group_image", "thumbnail", "metadata",
           "representative", "frame_total"]

#: A thumbnail fits in this box (PS3.18 leaves its size to the server).
THUMBNAIL_SIZE = (128, 128)
_GREY = ("MONOCHROME1", "MONOCHROME2", "")
#: Binary elements longer than this are left out of metadata (the bulk data of PS3.18 F.2.6).
_BULK_THRESHOLD = 1024
_BINARY_VRS = ("OB", "OD", "OF", "OL", "OV", "OW", "UN")


def frame_total(row) -> int:
    try:
        return max(1, int(row["frames"] or 1))
    except ValueError:
        return 1


def render_pixels(row, request: RenderRequest, frame: Optional[int],
                  datasets: Optional[DatasetCache] = None) -> np.ndarray:
    """The rendered pixels of one frame (0-based; None: the whole instance) of an indexed file, as
    :func:`dicomrender.render` gives them for the same parameters (the viewport included); the file's
    data set from ``datasets`` when given."""
    colour = request.window is not None and row["photometric"] not in _GREY
    options: Dict[str, Any] = {"colour_window": True} if colour else {}
    source = row["path"] if datasets is None else datasets.get(row["path"])
    return render(source, request.preset, window=request.window, function=request.function, frame=frame,
                  viewport=request.viewport, threads=1, **options)


def _header(row, datasets: Optional[DatasetCache]):
    """The file's data set: the one the render just used when there is a cache, else its header read again."""
    return datasets.get(row["path"]) if datasets is not None else read_file(row["path"], whole=False)[0]


def _profiled(row, request: RenderRequest, pixels: np.ndarray, frames: bool,
              datasets: Optional[DatasetCache] = None) -> Tuple[np.ndarray, Optional[bytes]]:
    """``pixels`` for ``iccprofile`` (converted to sRGB for ``srgb``) and the profile to embed."""
    if request.iccprofile == "no":
        return pixels, None
    ds = _header(row, datasets)
    return apply_iccprofile(pixels, request.iccprofile, icc_profile(ds), rgb=pixels.ndim == (4 if frames else 3))


def _still(row, request: RenderRequest, frame: Optional[int], fmt: str, datasets=None) -> bytes:
    pixels, profile = _profiled(row, request, render_pixels(row, request, frame, datasets), False, datasets)
    return encode(pixels, fmt, request.quality, profile)


def offered_types(frames: int, several: bool) -> List[str]:
    """The media types a resource is offered as, preferred first: an animation for several frames, else
    one image."""
    single = list(IMAGE_TYPES)
    if frames > 1 and several:
        return list(ANIMATED_TYPES) + [t for t in single if t not in ANIMATED_TYPES]
    return single


def _durations(row, indices: Sequence[int], datasets: Optional[DatasetCache] = None) -> List[float]:
    return frame_durations(_header(row, datasets), list(indices))


def instance_image(row, request: RenderRequest, media: str, frames: Optional[List[int]],
                   datasets: Optional[DatasetCache] = None) -> Tuple[bytes, str]:
    """An instance (``frames`` None) or some of its frames (0-based) as ``media``: one image, an animation
    of several frames (animated types), or a multipart body of one image per frame."""
    fmt = IMAGE_TYPES[media]
    total = frame_total(row)
    if frames is None:
        frames = list(range(total)) if total > 1 and media in ANIMATED_TYPES else [0]
    if total == 1:
        return _still(row, request, None, fmt, datasets), media
    if len(frames) == 1:
        return _still(row, request, frames[0], fmt, datasets), media
    if media in ANIMATED_TYPES:
        pixels, profile = _profiled(row, request, render_pixels(row, request, None, datasets), True, datasets)
        return encode_frames(pixels[frames], fmt, _durations(row, frames, datasets), request.quality, profile), media
    return multipart([_still(row, request, i, fmt, datasets) for i in frames], media)


def group_image(rows: Sequence, request: RenderRequest, media: str,
                datasets: Optional[DatasetCache] = None) -> Tuple[bytes, str]:
    """A study or series: a multipart body of each instance rendered (the first frame of multi-frame ones)."""
    fmt = IMAGE_TYPES[media]
    parts = [_still(row, request, 0 if frame_total(row) > 1 else None, fmt, datasets) for row in rows]
    return multipart(parts, media)


def representative(rows: Sequence):
    """The instance that stands for a series or study: the middle one in slice order."""
    return rows[(len(rows) - 1) // 2]


def thumbnail(row, request: RenderRequest, media: str, datasets: Optional[DatasetCache] = None) -> Tuple[bytes, str]:
    """A small rendered image of ``row`` (its middle frame): the viewport ``THUMBNAIL_SIZE`` unless the
    request gives one."""
    total = frame_total(row)
    if request.viewport is None:
        request = replace(request, viewport=Viewport(*THUMBNAIL_SIZE))
    return _still(row, request, (total - 1) // 2 if total > 1 else None, IMAGE_TYPES[media], datasets), media


def metadata(row) -> dict:
    """The DICOM JSON (PS3.18 F.2) of an indexed file's header, Pixel Data and other bulk data left out."""
    ds, _ = read_file(row["path"], whole=False)
    for tag in list(ds.keys()):
        element = ds.get_item(tag, keep_deferred=True)
        length = getattr(element, "length", None)
        if length is None:
            value = getattr(element, "value", None)
            length = len(value) if isinstance(value, (bytes, bytearray)) else 0
        if element.VR in _BINARY_VRS and (length == 0xFFFFFFFF or length > _BULK_THRESHOLD):
            del ds[tag]
    return ds.to_json_dict()
