"""Animated images and video from rendered frames: GIF, WebP, APNG through Pillow, MP4 (H.264) through PyAV.

Every encoder takes uint8 frames ``(frames, rows, cols)`` (grey) or ``(frames, rows, cols, 3)`` (RGB)
and one duration in milliseconds per frame, encodes them one at a time, and returns the file's bytes.
The animations loop forever.  An animation of ``n`` frames holds ``n`` frames, identical neighbours
included (frame ``i`` of the file is frame ``i`` given): :func:`is_complete_animation` checks that count.

* **GIF**: durations are stored in hundredths of a second: each is rounded to the nearest 10 ms, and
  at least 20 ms (browsers show delays of 0 and 10 ms at 100 ms).  Grey frames are written with a
  grey palette of 256 levels: lossless.  RGB frames are quantised to 256 colours per frame (Pillow's
  adaptive palette, one local colour table per frame): lossy.
* **WebP**: ``lossless=True`` stores the pixels exactly; else lossy at ``quality`` (1-100).  Grey frames
  are stored as RGB (WebP has no grey mode).  Each frame is a still WebP bitstream of Pillow's,
  in an ``ANMF`` chunk of its own (libwebp's animation encoder would merge identical frames).
* **APNG**: lossless, at ``compress_level``.  One frame is written as a plain PNG (nothing to time).
* **MP4**: H.264 (libx264) in yuv420p, which needs even dimensions: an odd width or height is padded by
  repeating the last column or row.  ``quality`` maps to the constant rate factor
  ``crf = round((100 - quality) * 51 / 100)`` (100 is crf 0, 95 crf 3, 50 crf 26 near x264's default 23).
  Frames are timed at their durations (millisecond time base).  Needs PyAV:
  ``pip install 'dicomrender[video]'``.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import stat
import struct
from typing import Optional, Sequence

import numpy as np

from ..errors import InvalidArgumentError, integer_argument

__all__ = ["ANIMATED_FORMATS", "MAX_FRAME_DURATION_MS", "encode_animation", "gif_durations", "mp4_crf",
           "fps_durations", "check_fps", "has_video", "is_complete_animation"]

#: Animated format (the name ``encode_animation`` takes) by file suffix.
ANIMATED_FORMATS = {".gif": "GIF", ".webp": "WEBP", ".apng": "APNG", ".mp4": "MP4"}
#: The longest frame duration an animation holds: GIF's 65,535 hundredths of a second (~11 minutes).
MAX_FRAME_DURATION_MS = 655_350.0


def gif_durations(durations_ms: Sequence[float]) -> list:
    """The GIF frame delays (ms, multiples of 10, at least 20) for ``durations_ms``."""
    return [max(20, 10 * int(math.floor(d / 10 + 0.5))) for d in durations_ms]


def mp4_crf(quality: int) -> int:
    """The x264 constant rate factor for a ``quality`` of 1-100."""
    return int(math.floor((100 - quality) * 51 / 100 + 0.5))


def check_fps(fps) -> float:
    """``fps`` (frames per second) as a float: a positive finite number whose frame duration an animation
    can hold (at most :data:`MAX_FRAME_DURATION_MS`).  :class:`TypeError` for a non-number (bool
    included), :class:`~dicomrender.errors.InvalidArgumentError` naming ``fps`` for a bad value."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real):
        raise TypeError(f"fps must be a number of frames per second, got {type(fps).__name__} {fps!r}")
    value = float(fps)
    if not (0 < value < math.inf and 1000.0 / value <= MAX_FRAME_DURATION_MS):
        raise InvalidArgumentError(f"fps must be a finite number of frames per second > "
                                   f"{1000.0 / MAX_FRAME_DURATION_MS:g}, got {fps!r}", attribute="fps")
    return value


def fps_durations(fps, count: int) -> list:
    """``count`` frame durations (ms) of ``fps`` frames per second (checked by :func:`check_fps`)."""
    return [1000.0 / check_fps(fps)] * int(count)


def has_video() -> bool:
    """Whether MP4 can be written (PyAV, the ``video`` extra, is installed)."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


def _check(frames: np.ndarray, fmt: str, durations_ms: Sequence[float]) -> list:
    if fmt not in ANIMATED_FORMATS.values():
        raise InvalidArgumentError(f"animated format must be one of {', '.join(ANIMATED_FORMATS.values())}, "
                                   f"got {fmt!r}", attribute="format")
    if frames.dtype != np.uint8 or not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] == 3)):
        raise InvalidArgumentError(f"an animation takes uint8 grey (frames, rows, cols) or RGB (frames, rows, "
                                   f"cols, 3) frames, got {frames.dtype} {frames.shape}", attribute="pixels")
    if len(frames) == 0:
        raise InvalidArgumentError("an animation needs at least one frame", attribute="pixels")
    if fmt in ("GIF", "WEBP") and max(frames.shape[1:3]) > _MAX_SIDE[fmt]:
        raise InvalidArgumentError(f"{fmt} holds at most {_MAX_SIDE[fmt]} pixels a side, got {frames.shape[1:3]}",
                                   attribute="pixels")
    durations = [float(d) for d in durations_ms]
    if len(durations) != len(frames):
        raise InvalidArgumentError(f"{len(durations)} durations for {len(frames)} frames", attribute="durations")
    if not all(0 < d <= MAX_FRAME_DURATION_MS for d in durations):
        raise InvalidArgumentError(f"frame durations must be > 0 and at most {MAX_FRAME_DURATION_MS:g} ms",
                                   attribute="durations")
    return durations


#: Largest width or height: GIF's 16-bit and WebP's 14-bit sizes.
_MAX_SIDE = {"GIF": 65535, "WEBP": 16383}


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
        How long each frame is shown, in milliseconds (> 0, at most :data:`MAX_FRAME_DURATION_MS`).
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
    if fmt == "GIF":
        return _encode_gif(frames, durations)
    if fmt == "WEBP":
        return _encode_webp(frames, durations, quality, bool(lossless), icc_profile)
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(frames[k])) for k in range(len(frames))]
    buffer = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    # Pillow's APNG writer merges a frame into the previous one when nothing changed and both have the same
    # blend operation: alternating SOURCE and OVER keeps every frame, and OVER of an opaque frame (grey or
    # RGB: no alpha) is SOURCE.  It reads the frames twice (modes, then data): a list; grey images share
    # the arrays' memory.
    images[0].save(buffer, format="PNG", save_all=True, append_images=images[1:],
                   duration=[round(d, 3) for d in durations], loop=0, compress_level=int(compress_level),
                   default_image=False, disposal=0, blend=[k % 2 for k in range(len(images))], **extra)
    return buffer.getvalue()


def _encode_gif(frames: np.ndarray, durations: list) -> bytes:
    """One frame at a time through Pillow's GIF frame writer (its ``save_all`` merges identical frames)."""
    from PIL import GifImagePlugin, Image

    buffer = io.BytesIO()
    delays = gif_durations(durations)
    rgb = frames.ndim == 4
    for k in range(len(frames)):
        image = Image.fromarray(np.ascontiguousarray(frames[k]))
        if rgb:
            image = image.convert("P", palette=Image.Palette.ADAPTIVE)
        if k == 0:  # the logical screen, the first frame's palette (grey: 256 levels) as the global one, loop
            header, _ = GifImagePlugin.getheader(image, info={"loop": 0})
            buffer.writelines(header)
        buffer.writelines(GifImagePlugin.getdata(image, (0, 0), duration=delays[k], disposal=1,
                                                 include_color_table=rgb and k > 0))
    buffer.write(b";")
    return buffer.getvalue()


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _uint24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def _webp_bitstream(data: bytes) -> bytes:
    """The image chunks (``ALPH``, ``VP8 ``, ``VP8L``) of a still WebP file, as they follow an ``ANMF`` header."""
    parts, offset = [], 12
    while offset + 8 <= len(data):
        size = struct.unpack_from("<I", data, offset + 4)[0]
        end = offset + 8 + size + (size & 1)
        if data[offset:offset + 4] in (b"ALPH", b"VP8 ", b"VP8L"):
            parts.append(data[offset:end])
        offset = end
    return b"".join(parts)


def _encode_webp(frames: np.ndarray, durations: list, quality: int, lossless: bool,
                 icc_profile: Optional[bytes]) -> bytes:
    """An animated WebP assembled from one still bitstream per frame (container: RFC 9649 section 2.7)."""
    from PIL import Image

    rows, cols = frames.shape[1:3]
    chunks = [_chunk(b"VP8X", bytes([0x02 | (0x20 if icc_profile else 0), 0, 0, 0]) + _uint24(cols - 1)
                     + _uint24(rows - 1))]
    if icc_profile:
        chunks.append(_chunk(b"ICCP", icc_profile))
    chunks.append(_chunk(b"ANIM", struct.pack("<IH", 0, 0)))  # background (unused: frames are opaque), loop
    for k in range(len(frames)):
        still = io.BytesIO()
        image = Image.fromarray(np.ascontiguousarray(frames[k]))
        image.convert("RGB").save(still, format="WEBP", quality=100 if lossless else int(quality),
                                  lossless=lossless, method=4)
        # position 0, 0; the canvas size; the duration; no blending, no disposal (every frame is whole)
        header = _uint24(0) + _uint24(0) + _uint24(cols - 1) + _uint24(rows - 1) + \
            _uint24(max(1, round(durations[k]))) + b"\x02"
        chunks.append(_chunk(b"ANMF", header + _webp_bitstream(still.getvalue())))
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


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


# ---- existing outputs --------------------------------------------------------------------------


def is_complete_animation(path: str, fmt: str, frames: int) -> bool:
    """True when ``path`` is a regular file (not a symlink) holding a whole ``fmt`` animation of ``frames``
    frames, as :func:`encode_animation` writes it.

    The container must be whole (GIF: its trailer; APNG: ``IEND`` last; WebP: the RIFF size is the file's;
    MP4: top-level boxes that end exactly at the end of the file, ``moov`` among them), and the decoder
    (Pillow; PyAV for MP4) must count ``frames`` frames.  Never raises for a broken file.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size < 16:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            f.seek(-12, os.SEEK_END)
            tail = f.read(12)
        if not _whole(path, fmt, head, tail, st.st_size):
            return False
        return _frame_count(path, fmt) == frames
    except Exception:  # a decoder's error on a damaged file: not complete
        return False


def _whole(path: str, fmt: str, head: bytes, tail: bytes, size: int) -> bool:
    if fmt == "GIF":
        return head[:6] in (b"GIF87a", b"GIF89a") and tail[-1:] == b";"
    if fmt == "APNG":
        return head[:8] == b"\x89PNG\r\n\x1a\n" and tail[4:] == b"IEND\xaeB`\x82"
    if fmt == "WEBP":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP" and struct.unpack("<I", head[4:8])[0] + 8 == size
    if fmt == "MP4":
        return _mp4_boxes_whole(path, size)
    return False


def _mp4_boxes_whole(path: str, size: int) -> bool:
    """The top-level boxes of an MP4 file tile it exactly, and one of them is ``moov``."""
    boxes, offset = set(), 0
    with open(path, "rb") as f:
        while offset < size:
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                return False
            length, kind = struct.unpack(">I", header[:4])[0], header[4:8]
            if length == 1:  # 64-bit size
                if len(header) < 16:
                    return False
                length = struct.unpack(">Q", header[8:16])[0]
            elif length == 0:  # to the end of the file
                length = size - offset
            if length < 8:
                return False
            boxes.add(kind)
            offset += length
    return offset == size and b"moov" in boxes and b"ftyp" in boxes


def _frame_count(path: str, fmt: str) -> int:
    if fmt == "MP4":
        import av

        with av.open(path) as container:
            return int(container.streams.video[0].frames)
    from PIL import Image

    with Image.open(path) as image:
        return int(getattr(image, "n_frames", 1))

