"""How long each frame of a multi-frame image is shown: the frame durations from the header.

The sources, in this order of precedence (PS3.3 C.7.6.5 Cine Module, C.7.6.6 Multi-frame Module):

1. **Frame Time Vector (0018,1065)** when Frame Increment Pointer (0028,0009) points to it: the
   time increments in ms between each frame and the previous one (the first value, the increment
   of the first frame, is 0).  Frame ``i`` is shown for the increment to frame ``i + 1``; the last
   frame, which has no successor, for the mean of the others.
2. **Frame Time (0018,1063)**: the nominal time between frames in ms, the same for every frame.
3. **Frame Time Vector** without the pointer.
4. **Cine Rate (0018,0040)**: frames per second.
5. **Recommended Display Frame Rate (0008,2144)**: frames per second.
6. :data:`DEFAULT_FRAME_RATE` (10 frames per second).

Frame Time and Frame Time Vector describe the acquisition, so playing at them replays the clip in
real time; the two rates come after them because they describe playback choices, not the clip.  A
value that is absent, empty, not a number, zero, negative, NaN or outside
:data:`MIN_FRAME_MS` .. :data:`MAX_FRAME_MS` (or a vector of the wrong length) is skipped with a
:class:`~dicomrender.errors.FrameTimingWarning` (absent ones silently) and the next source is used.
"""

from __future__ import annotations

import math
import warnings
from typing import List, Optional, Sequence, Union

from pydicom.dataset import Dataset

from ..errors import FrameTimingWarning
from .elements import get, values

__all__ = ["frame_durations", "DEFAULT_FRAME_RATE", "MIN_FRAME_MS", "MAX_FRAME_MS"]

#: Frames per second when the header gives no usable timing.
DEFAULT_FRAME_RATE = 10.0
#: Shortest and longest frame durations taken from a header (ms): 1000 fps to one frame a minute.
MIN_FRAME_MS = 1.0
MAX_FRAME_MS = 60_000.0
#: The Frame Increment Pointer value naming Frame Time Vector (0018,1065).
_FRAME_TIME_VECTOR_TAG = 0x00181065


def frame_durations(ds: Dataset, frames: Union[int, Sequence[int]]) -> List[float]:
    """The display duration in milliseconds of each frame, from the header (see the module docs).

    Parameters
    ----------
    ds : pydicom.Dataset
        The image's data set.
    frames : int or sequence of int
        The number of frames (all of them, in order), or the 0-based indices of the frames shown.

    Returns
    -------
    list of float
        One duration (ms, > 0) per frame.
    """
    indices = list(range(int(frames))) if isinstance(frames, int) else [int(i) for i in frames]
    if not indices:
        return []
    vector_first = _points_to_vector(ds)
    if vector_first:
        durations = _from_vector(ds, indices)
        if durations is not None:
            return durations
    frame_time = _number(ds, "FrameTime", "ms", lambda v: v)
    if frame_time is not None:
        return [frame_time] * len(indices)
    if not vector_first:
        durations = _from_vector(ds, indices)
        if durations is not None:
            return durations
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        duration = _number(ds, keyword, "frames per second", lambda v: 1000.0 / v if v > 0 else math.nan)
        if duration is not None:
            return [duration] * len(indices)
    return [1000.0 / DEFAULT_FRAME_RATE] * len(indices)


def _points_to_vector(ds: Dataset) -> bool:
    try:
        pointers = values(get(ds, "FrameIncrementPointer"))
    except Exception:  # an undecodable pointer only loses the tie-break
        return False
    return any(int(p) == _FRAME_TIME_VECTOR_TAG for p in pointers if isinstance(p, int))


def _warn(keyword: str, text: str) -> None:
    warnings.warn(f"{keyword} {text}: ignored for the frame durations", FrameTimingWarning, stacklevel=4)


def _valid(ms: float) -> bool:
    return MIN_FRAME_MS <= ms <= MAX_FRAME_MS  # False for NaN


def _number(ds: Dataset, keyword: str, unit: str, to_ms) -> Optional[float]:
    """The single value of ``keyword`` as a duration in ms, or None (with a warning if present but unusable)."""
    try:
        raw = get(ds, keyword)
    except Exception as exc:  # a value pydicom cannot decode
        _warn(keyword, f"cannot be read ({exc})")
        return None
    if raw is None or raw == "":
        return None
    try:
        value = float(values(raw)[0])
    except (TypeError, ValueError, IndexError):
        _warn(keyword, f"is not a number ({raw!r})")
        return None
    ms = to_ms(value)
    if not _valid(ms):
        _warn(keyword, f"{value!r} {unit} gives {ms!r} ms a frame, outside {MIN_FRAME_MS:g}..{MAX_FRAME_MS:g}")
        return None
    return float(ms)


def _from_vector(ds: Dataset, indices: List[int]) -> Optional[List[float]]:
    """Per-frame durations from Frame Time Vector, or None."""
    try:
        raw = get(ds, "FrameTimeVector")
    except Exception as exc:
        _warn("FrameTimeVector", f"cannot be read ({exc})")
        return None
    if raw is None or raw == "":
        return None
    try:
        vector = [float(v) for v in values(raw)]
    except (TypeError, ValueError):
        _warn("FrameTimeVector", "holds a value that is not a number")
        return None
    needed = max(indices) + 1
    if len(vector) < needed:
        _warn("FrameTimeVector", f"has {len(vector)} values for frame {needed}")
        return None
    increments = vector[1:]  # increments[i]: from frame i to frame i + 1
    usable = increments[:max(len(vector), needed) - 1]
    if not usable:  # a single frame: no increment to show it for
        return None
    bad = [v for v in usable if not _valid(v)]
    if bad:
        _warn("FrameTimeVector", f"holds {bad[0]!r} ms, outside {MIN_FRAME_MS:g}..{MAX_FRAME_MS:g}")
        return None
    last = math.fsum(usable) / len(usable)
    return [usable[i] if i < len(usable) else last for i in indices]
