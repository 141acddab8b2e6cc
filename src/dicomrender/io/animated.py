"""Animated images and video from rendered frames: GIF, WebP, APNG through Pillow, MP4 (H.264) through PyAV.

Every encoder takes uint8 frames ``(frames, rows, cols)`` (grey) or ``(frames, rows, cols, 3)`` (RGB)
and one duration in milliseconds per frame, and returns the file's bytes.  The animations loop forever.

* **GIF**: durations are stored in hundredths of a second: each is rounded to the nearest 10 ms, and
  at least 20 ms (browsers show delays of 0 and 10 ms at 100 ms).  Grey frames are written with a
  grey palette of 256 levels: lossless.  RGB frames are quantised to 256 colours per frame (Pillow's
  adaptive palette): lossy.
* **WebP**: ``lossless=True`` stores the pixels exactly; else lossy at ``quality`` (1-100).  Grey frames
  are stored as RGB (WebP has no grey mode).
* **APNG**: lossless, at ``compress_level``.
* **MP4**: H.264 (libx264) in yuv420p, which needs even dimensions: an odd width or height is padded by
  repeating the last column or row.  ``quality`` maps to the constant rate factor
  ``crf = round((100 - quality) * 51 / 100)`` (100 is crf 0, 95 crf 3, 50 crf 26 near x264's default 23).
  Frames are timed at their durations (millisecond time base).  Needs PyAV:
  ``pip install 'dicomrender[video]'``.

Pillow and the MP4 muxer skip nothing, but Pillow merges consecutive identical frames of GIF and APNG
into one frame shown for their summed durations (the playback is the same).
"""

from __future__ import annotations

import io
import math
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import InvalidArgumentError, integer_argument

__all__ = ["ANIMATED_FORMATS", "encode_animation", "gif_durations", "mp4_crf"]

#: Animated format (the name ``encode_animation`` takes) by file suffix.
ANIMATED_FORMATS = {".gif": "GIF", ".webp": "WEBP", ".apng": "APNG", ".mp4": "MP4"}


def gif_durations(durations_ms: Sequence[float]) -> list:
    """The GIF frame delays (ms, multiples of 10, at least 20) for ``durations_ms``."""
    return [max(20, 10 * int(math.floor(d / 10 + 0.5))) for d in durations_ms]


def mp4_crf(quality: int) -> int:
    """The x264 constant rate factor for a ``quality`` of 1-100."""
    return int(math.floor((100 - quality) * 51 / 100 + 0.5))


def _check(frames: np.ndarray, fmt: str, durations_ms: Sequence[float]) -> list:
    if fmt not in ANIMATED_FORMATS.values():
        raise InvalidArgumentError(f"animated format must be one of {', '.join(ANIMATED_FORMATS.values())}, "
                                   f"got {fmt!r}", attribute="format")
    if frames.dtype != np.uint8 or not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] == 3)):
        raise InvalidArgumentError(f"an animation takes uint8 grey (frames, rows, cols) or RGB (frames, rows, "
                                   f"cols, 3) frames, got {frames.dtype} {frames.shape}", attribute="pixels")
    if len(frames) == 0:
        raise InvalidArgumentError("an animation needs at least one frame", attribute="pixels")
    durations = [float(d) for d in durations_ms]
    if len(durations) != len(frames):
        raise InvalidArgumentError(f"{len(durations)} durations for {len(frames)} frames", attribute="durations")
    if not all(0 < d < math.inf for d in durations):
        raise InvalidArgumentError("frame durations must be finite and > 0 ms", attribute="durations")
    return durations


def encode_animation(frames: np.ndarray, fmt: str, durations_ms: Sequence[float], *, quality: int = 95,
                     compress_level: int = 6, lossless: bool = False, icc_profile: Optional[bytes] = None) -> bytes:
    """Encode ``frames`` as an animated ``fmt`` (``"GIF"``, ``"WEBP"``, ``"APNG"`` or ``"MP4"``).

    Parameters
    ----------
    frames : numpy.ndarray
        uint8 ``(frames, rows, cols)`` or ``(frames, rows, cols, 3)``.
    fmt : str
        The format (see :data:`ANIMATED_FORMATS`).
    durations_ms : sequence of float
        How long each frame is shown, in milliseconds.
    quality : int
        WebP (lossy) and MP4 quality, 1-100.
    compress_level : int
        APNG compression level, 0-9.
    lossless : bool
        WebP: lossless instead of ``quality``.
    icc_profile : bytes, optional
        An ICC profile to embed (WebP and APNG; GIF and MP4 have no place for one).

    Returns
    -------
    bytes
        The file.
    """
    integer_argument(quality, 1, 100, "quality")
    integer_argument(compress_level, 0, 9, "compress_level")
    durations = _check(frames, fmt, durations_ms)
    if fmt == "MP4":
        return _encode_mp4(frames, durations, quality)
    from PIL import Image

    def images() -> Iterator:
        # One frame at a time: Pillow keeps its own (converted) copy of each, not ours too.
        for k in range(1, len(frames)):
            yield Image.fromarray(np.ascontiguousarray(frames[k]))

    first = Image.fromarray(np.ascontiguousarray(frames[0]))
    buffer = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile and fmt != "GIF" else {}
    if fmt == "GIF":
        first.save(buffer, format="GIF", save_all=True, append_images=images(), duration=gif_durations(durations),
                   loop=0, optimize=False, disposal=1)
    elif fmt == "WEBP":
        first.save(buffer, format="WEBP", save_all=True, append_images=images(),
                   duration=[max(1, round(d)) for d in durations], loop=0, lossless=bool(lossless),
                   quality=100 if lossless else int(quality), method=4, **extra)
    else:
        # Pillow's APNG writer reads the frames twice (modes, then data): a list, sharing grey arrays' memory.
        first.save(buffer, format="PNG", save_all=True, append_images=list(images()),
                   duration=[round(d, 3) for d in durations], loop=0, compress_level=int(compress_level),
                   default_image=False, disposal=0, blend=0, **extra)
    return buffer.getvalue()


def _encode_mp4(frames: np.ndarray, durations: list, quality: int) -> bytes:
    try:
        import av
    except ImportError:
        raise ImportError("MP4 output needs PyAV: pip install 'dicomrender[video]'") from None
    from fractions import Fraction

    rows, cols = frames.shape[1:3]
    pad_rows, pad_cols = rows % 2, cols % 2
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        rate = Fraction(1000, max(1, round(sum(durations) / len(durations))))
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = cols + pad_cols, rows + pad_rows
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": str(mp4_crf(quality))}
        source = "gray" if frames.ndim == 3 else "rgb24"
        pts = 0.0
        for k in range(len(frames)):
            image = frames[k]
            if pad_rows or pad_cols:
                widths = ((0, pad_rows), (0, pad_cols)) + (((0, 0),) if image.ndim == 3 else ())
                image = np.pad(image, widths, mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=source)
            frame.pts = int(round(pts))
            frame.time_base = Fraction(1, 1000)
            pts += durations[k]
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
