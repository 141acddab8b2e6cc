"""The ``viewport`` rendered parameter of PS3.18 (§8.3.5.1.3): a region of the rendered image scaled to fit
a viewport.

``viewport=(vw, vh)`` or ``(vw, vh, sx, sy, sw, sh)``, in pixels:

* ``vw``, ``vh``: the viewport's width and height, positive integers.
* ``sx``, ``sy``: the top-left corner of the source region, non-negative integers; default 0.
* ``sw``, ``sh``: the region's width and height; default the rest of the image (columns - sx,
  rows - sy).  A negative ``sw`` takes the ``|sw|`` columns from ``sx`` rightwards and flips them
  horizontally; a negative ``sh`` likewise flips vertically.  Zero is refused.

Any of ``sx, sy, sw, sh`` may be None (``"512,512,,,100,100"`` in text) for its default.  A region that
does not lie inside the image is refused (:class:`~dicomrender.errors.InvalidArgumentError`): there are
no pixels to show outside the image, and PS3.18 answers such a request with 400 Bad Request.

The region is scaled by one factor in both directions, the largest that keeps it inside the viewport:
the result is no larger than the viewport, and smaller in one dimension when the aspect ratios differ
(no padding).  Its size is the region's size times the factor, rounded to the nearest pixel (halves
up) and at least 1.  Shrinking is area averaging: each output pixel is the mean of the source area
it covers, source pixels weighted by the part of them inside it (float64, rounded half up once at the
end; by an integer factor, the mean of each block).  Pillow's ``BOX`` filter is not used for this: it
weights whole pixels whose centres fall inside, not areas.  Enlarging uses Pillow's ``BICUBIC``
filter; a factor of exactly 1 copies the pixels.  Every channel and frame is scaled on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["Viewport", "parse_viewport", "viewport_region", "viewport_size", "apply_viewport"]


@dataclass(frozen=True)
class Viewport:
    """A checked ``viewport`` value (see the module docs); parts left out are None."""

    vw: int
    vh: int
    sx: Optional[int] = None
    sy: Optional[int] = None
    sw: Optional[int] = None
    sh: Optional[int] = None

    def __str__(self) -> str:
        parts = [self.vw, self.vh, self.sx, self.sy, self.sw, self.sh]
        while parts[-1] is None and len(parts) > 2:
            parts.pop()
        return ",".join("" if p is None else str(p) for p in parts)


def _error(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"viewport: {message}", attribute="viewport")


def _integer(value, name: str) -> Optional[int]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _error(f"{name} must be an integer, got {value!r}")
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            raise _error(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise _error(f"{name} must be an integer, got {value!r}")


def parse_viewport(value) -> Optional[Viewport]:
    """A :class:`Viewport` from ``"vw,vh[,sx,sy,sw,sh]"``, a sequence of 2 to 6 values, or a Viewport;
    None stays None.

    Raises
    ------
    InvalidArgumentError
        ``attribute="viewport"``: a wrong number of values, a non-integer, ``vw``/``vh`` below 1,
        a negative ``sx``/``sy``, a zero ``sw``/``sh``.
    """
    if value is None or isinstance(value, Viewport):
        if isinstance(value, Viewport):
            parse_viewport(tuple(getattr(value, f) for f in ("vw", "vh", "sx", "sy", "sw", "sh")))
        return value
    parts = value.split(",") if isinstance(value, str) else value
    try:
        parts = list(parts)
    except TypeError:
        raise _error(f"must be (vw, vh) or (vw, vh, sx, sy, sw, sh), got {value!r}") from None
    if not 2 <= len(parts) <= 6:
        raise _error(f"must have 2 to 6 values (vw, vh, sx, sy, sw, sh), got {len(parts)}: {value!r}")
    names = ("vw", "vh", "sx", "sy", "sw", "sh")
    numbers = [_integer(p, n) for p, n in zip(parts, names)] + [None] * (6 - len(parts))
    vw, vh, sx, sy, sw, sh = numbers
    for name, v in (("vw", vw), ("vh", vh)):
        if v is None or v < 1:
            raise _error(f"{name} must be a positive integer, got {v!r}")
    for name, v in (("sx", sx), ("sy", sy)):
        if v is not None and v < 0:
            raise _error(f"{name} must be a non-negative integer, got {v}")
    for name, v in (("sw", sw), ("sh", sh)):
        if v == 0:
            raise _error(f"{name} must not be 0")
    assert vw is not None and vh is not None
    return Viewport(vw, vh, sx, sy, sw, sh)


def viewport_region(viewport: Viewport, rows: int, cols: int) -> Tuple[int, int, int, int, bool, bool]:
    """``(x, y, width, height, flip_horizontal, flip_vertical)`` of the source region in an image of
    ``rows`` x ``cols``; :class:`~dicomrender.errors.InvalidArgumentError` when it leaves the image."""
    x = viewport.sx or 0
    y = viewport.sy or 0
    if x >= cols or y >= rows:
        raise _error(f"the region's corner ({x}, {y}) is outside the {cols}x{rows} image")
    width = cols - x if viewport.sw is None else abs(viewport.sw)
    height = rows - y if viewport.sh is None else abs(viewport.sh)
    if x + width > cols or y + height > rows:
        raise _error(f"the region {width}x{height} at ({x}, {y}) does not fit in the {cols}x{rows} image")
    return x, y, width, height, viewport.sw is not None and viewport.sw < 0, viewport.sh is not None and viewport.sh < 0


def viewport_size(viewport: Viewport, rows: int, cols: int) -> Tuple[int, int]:
    """``(rows, cols)`` of the result of :func:`apply_viewport` on an image of ``rows`` x ``cols``."""
    _, _, width, height, _, _ = viewport_region(viewport, rows, cols)
    scale = min(viewport.vw / width, viewport.vh / height)
    out_cols = min(viewport.vw, max(1, math.floor(width * scale + 0.5)))
    out_rows = min(viewport.vh, max(1, math.floor(height * scale + 0.5)))
    return out_rows, out_cols


def apply_viewport(pixels: np.ndarray, viewport, *, frames: Optional[bool] = None) -> np.ndarray:
    """Crop, flip and scale rendered uint8 pixels to ``viewport`` (see the module docs).

    Parameters
    ----------
    pixels : numpy.ndarray
        uint8 ``(rows, cols)``, ``(rows, cols, channels)``, ``(frames, rows, cols)`` or
        ``(frames, rows, cols, channels)``.
    viewport : Viewport, str or sequence
        Anything :func:`parse_viewport` accepts; None returns ``pixels`` unchanged.
    frames : bool, optional
        Whether the first axis is frames.  Default: 4-D arrays, and 3-D ones whose last axis is
        longer than 4 (a 3-D array with at most 4 on its last axis is one image with channels).

    Returns
    -------
    numpy.ndarray
        A new uint8 array with the same axes.
    """
    vp = parse_viewport(viewport)
    if vp is None:
        return pixels
    if pixels.dtype != np.uint8 or not 2 <= pixels.ndim <= 4:
        raise InvalidArgumentError(f"apply_viewport needs uint8 pixels of 2 to 4 axes, got {pixels.dtype} "
                                   f"{pixels.shape}", attribute="pixels")
    if frames is None:
        frames = pixels.ndim == 4 or (pixels.ndim == 3 and pixels.shape[-1] > 4)
    stack = pixels if frames else pixels[np.newaxis]
    if stack.ndim == 3:
        stack = stack[..., np.newaxis]
    rows, cols = stack.shape[1:3]
    x, y, width, height, flip_h, flip_v = viewport_region(vp, rows, cols)
    out_rows, out_cols = viewport_size(vp, rows, cols)
    region = stack[:, y:y + height, x:x + width]
    if flip_h:
        region = region[:, :, ::-1]
    if flip_v:
        region = region[:, ::-1]
    if (out_rows, out_cols) == (height, width):
        out = np.ascontiguousarray(region)
    else:
        out = np.empty((stack.shape[0], out_rows, out_cols, stack.shape[3]), np.uint8)
        _resize(region, out, shrink=out_cols <= width and out_rows <= height)
    if pixels.ndim == 2 or (pixels.ndim == 3 and frames):
        out = out[..., 0]
    return out if frames else out[0]


def _resize(region: np.ndarray, out: np.ndarray, shrink: bool) -> None:
    """Scale each frame and channel of ``region`` ``(frames, h, w, channels)`` into ``out``."""
    if shrink:
        for f in range(region.shape[0]):
            mean = _area_mean(_area_mean(region[f].astype(np.float64), out.shape[1], 0), out.shape[2], 1)
            out[f] = np.clip(np.floor(mean + 0.5), 0, 255)
        return
    from PIL import Image  # only when enlarging

    size = (out.shape[2], out.shape[1])
    for f in range(region.shape[0]):
        for c in range(region.shape[3]):
            image = Image.fromarray(np.ascontiguousarray(region[f, :, :, c]))
            out[f, :, :, c] = np.asarray(image.resize(size, Image.Resampling.BICUBIC))


def _area_mean(a: np.ndarray, count: int, axis: int) -> np.ndarray:
    """The mean of ``a`` over ``count`` equal intervals along ``axis``, each source pixel weighted by the
    part of it an interval covers: differences of the running sum at the interval edges."""
    n = a.shape[axis]
    edges = np.arange(count + 1) * (n / count)
    index = np.minimum(np.floor(edges).astype(np.intp), n - 1)
    fraction = edges - index  # 1 at the last edge: the whole last pixel
    total = np.concatenate([np.zeros_like(np.take(a, [0], axis)), np.cumsum(a, axis=axis)], axis=axis)
    shape = [1] * a.ndim
    shape[axis] = count + 1
    running = np.take(total, index, axis) + fraction.reshape(shape) * np.take(a, index, axis)
    return np.diff(running, axis=axis) * (count / n)
