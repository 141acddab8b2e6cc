"""Image files: formats, encoding, the atomic writer, and safe output paths.

Every image dicomrender writes (``save``, the demo, batch conversion, the
CSV report) goes through :func:`write_atomic`: readers see either no file or
the whole file, even when the process is killed mid-write.
"""

from __future__ import annotations

import os
import stat
import sys
import uuid
from typing import Optional

import numpy as np

from ..errors import InvalidArgumentError, OutputPathError, integer_argument
from .animated import ANIMATED_FORMATS, encode_animation, is_complete_animation

__all__ = ["IMAGE_FORMATS", "ANIMATED_FORMATS", "FORMAT_SUFFIXES", "FILE_CHANNELS", "TEMP_PREFIX", "TEMP_SUFFIX",
           "image_format", "is_animated", "check_channels", "check_encoding", "encode_image", "encode_animation",
           "write_image", "write_animation", "write_atomic", "is_complete_image", "output_target",
           "remove_stale_temporaries"]

#: Still image format (Pillow's name) by file suffix.
IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
#: Frame duration (ms) of a single image written in an animated format (a one-frame animation).
STILL_DURATION_MS = 100.0
#: File suffix by format name, as ``convert(format=...)`` accepts it (the last four: one animation a file).
FORMAT_SUFFIXES = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png", "gif": ".gif", "webp": ".webp", "apng": ".apng",
                   "mp4": ".mp4"}
#: Channels a JPEG or PNG file holds: grey or RGB (one rendered window each).
FILE_CHANNELS = (1, 3)
#: Name of the temporary files of the atomic write (the next batch run removes those a killed run left).
TEMP_PREFIX = ".dicomrender-"
TEMP_SUFFIX = ".tmp"


def image_format(path) -> str:
    """The format of the file suffix: ``"JPEG"``, ``"PNG"``, ``"WEBP"`` (a still or an animation),
    ``"GIF"``, ``"APNG"`` or ``"MP4"``."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    fmt = IMAGE_FORMATS.get(suffix) or ANIMATED_FORMATS.get(suffix)
    if fmt is None:
        raise InvalidArgumentError(f"cannot tell the image format from {os.fspath(path)!r}: use .jpg, .jpeg, "
                                   f".png, .webp, .gif, .apng or .mp4", attribute="path")
    return fmt


def is_animated(fmt: str) -> bool:
    """Whether ``fmt`` holds all the frames of a multi-frame image (GIF, WebP, APNG, MP4)."""
    return fmt in ANIMATED_FORMATS.values()


def check_channels(count: int) -> None:
    """Refuse a number of windows (presets) that no image file can hold.

    :func:`dicomrender.render` gives one channel per window (1-4); a JPEG or
    PNG file holds grey or RGB.
    """
    if count not in FILE_CHANNELS:
        raise InvalidArgumentError(f"a JPEG or PNG file holds 1 (grey) or 3 (RGB) channels, not {count}: give one "
                                   f"preset, or three for an RGB image", attribute="preset")


def check_encoding(quality: int = 95, compress_level: int = 6) -> None:
    """Refuse a JPEG ``quality`` outside 1..100 or a PNG ``compress_level`` outside 0..9
    (:class:`~dicomrender.errors.InvalidArgumentError`; :class:`TypeError` for non-integers)."""
    integer_argument(quality, 1, 100, "quality")
    integer_argument(compress_level, 0, 9, "compress_level")


def encode_image(pixels: np.ndarray, fmt: str, *, quality: int = 95, compress_level: int = 6,
                 icc_profile: Optional[bytes] = None, lossless: bool = False) -> bytes:
    """Encode a uint8 ``(rows, cols)`` or ``(rows, cols, 3)`` array as one image of format ``fmt``.

    Parameters
    ----------
    pixels : numpy.ndarray
        Grey or RGB uint8 pixels.
    fmt : str
        ``"JPEG"``, ``"PNG"`` or ``"WEBP"``; an animated format (``"GIF"``, ``"APNG"``, ``"MP4"``) gives
        a one-frame animation (:func:`encode_animation`).
    quality : int
        JPEG and lossy WebP quality, 1-100.
    compress_level : int
        PNG compression level, 0-9.
    icc_profile : bytes, optional
        An ICC profile to embed (JPEG, PNG, WebP).
    lossless : bool
        WebP: lossless instead of ``quality``.
    """
    check_encoding(quality, compress_level)
    if fmt not in ("JPEG", "PNG", "WEBP"):
        return encode_animation(pixels[np.newaxis], fmt, [STILL_DURATION_MS], quality=quality,
                                compress_level=compress_level, lossless=lossless, icc_profile=icc_profile)
    import io  # the standard library's: this module is dicomrender.io

    from PIL import Image  # ~30 ms: only when writing

    image = Image.fromarray(np.ascontiguousarray(pixels))
    buffer = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=int(quality), **extra)
    elif fmt == "WEBP":
        image.save(buffer, format="WEBP", quality=100 if lossless else int(quality), lossless=bool(lossless),
                   **extra)
    else:
        image.save(buffer, format="PNG", compress_level=int(compress_level), **extra)
    return buffer.getvalue()


def write_image(pixels: np.ndarray, path, *, quality: int = 95, compress_level: int = 6, fsync: bool = False,
                icc_profile: Optional[bytes] = None, lossless: bool = False) -> None:
    """Encode ``pixels`` in the format of ``path``'s suffix and write it with :func:`write_atomic`."""
    data = encode_image(pixels, image_format(path), quality=quality, compress_level=compress_level,
                        icc_profile=icc_profile, lossless=lossless)
    write_atomic(path, data, fsync)


def write_animation(frames: np.ndarray, path, durations_ms, *, quality: int = 95, compress_level: int = 6,
                    fsync: bool = False, icc_profile: Optional[bytes] = None, lossless: bool = False) -> None:
    """Encode ``frames`` as an animation in the format of ``path``'s suffix and write it with
    :func:`write_atomic`."""
    data = encode_animation(frames, image_format(path), durations_ms, quality=quality,
                            compress_level=compress_level, icc_profile=icc_profile, lossless=lossless)
    write_atomic(path, data, fsync)


# ---- the atomic writer -----------------------------------------------------------


def write_atomic(path, data: bytes, fsync: bool = False) -> None:
    """Make ``path`` hold ``data``, never a part of it, even if the process is killed meanwhile.

    On Linux the bytes go to an unnamed file (``O_TMPFILE``) that gets a name
    only once complete: ``path`` itself when it is new, else a temporary name
    renamed over ``path``.  Elsewhere they go to a named temporary file (which
    the next batch run removes if this one is killed), renamed over ``path``.
    ``fsync``: flush the bytes to the disk before the file gets its name
    (durable against power loss; slower).
    """
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    named = _write_unnamed(folder, path, data, fsync) if _O_TMPFILE_WORKS else None
    if named == path:
        return
    if named is not None:
        temp = named
    else:
        temp = _temp_name(folder)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, data, fsync)
        except BaseException:
            os.close(fd)
            _unlink(temp)
            raise
        os.close(fd)
    try:
        os.replace(temp, path)
    except BaseException:
        _unlink(temp)
        raise


_O_TMPFILE_WORKS = hasattr(os, "O_TMPFILE") and sys.platform.startswith("linux")


def _temp_name(folder: str) -> str:
    # Made only when needed: uuid4 costs a getrandom call, ~10 µs per output.
    return os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}{TEMP_SUFFIX}")


def _write_unnamed(folder: str, path: str, data: bytes, fsync: bool) -> Optional[str]:
    """Write ``data`` to an ``O_TMPFILE`` file and give it the name ``path`` if free, else a temporary name.

    Returns the name given, or None where unnamed files are not supported.
    """
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        try:
            fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o644, dir_fd=folder_fd)
        except OSError:  # file system without O_TMPFILE
            return None
        try:
            _write_all(fd, data, fsync)
            for name in (path, None):
                name = name or _temp_name(folder)
                try:
                    # dst_dir_fd makes this linkat(..., AT_SYMLINK_FOLLOW): it names the open file itself.
                    os.link(f"/proc/self/fd/{fd}", os.path.basename(name), dst_dir_fd=folder_fd,
                            follow_symlinks=True)
                    return name
                except FileExistsError:
                    continue
                except OSError:  # no /proc, or a kernel that refuses: use a named temporary file
                    return None
            return None
        finally:
            os.close(fd)
    finally:
        os.close(folder_fd)


def _write_all(fd: int, data: bytes, fsync: bool) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    if fsync:
        os.fsync(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_stale_temporaries(folder: str) -> int:
    """Remove the temporary files a killed run left below ``folder``; returns how many."""
    removed = 0
    for parent, _, filenames in os.walk(folder):
        for name in filenames:
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                _unlink(os.path.join(parent, name))
                removed += 1
    return removed


# ---- existing outputs and safe paths -----------------------------------------------


def is_complete_image(path: str, suffix: str, frames: Optional[int] = None) -> bool:
    """True when ``path`` is a regular file holding a whole JPEG or PNG stream (not a symlink).

    ``suffix``: ``".png"`` for PNG, anything else for JPEG.  With ``frames``: a whole animation of
    that many frames in the format of ``suffix`` (``.gif``, ``.webp``, ``.apng``, ``.mp4``; see
    :func:`~dicomrender.io.animated.is_complete_animation`).
    """
    if frames is not None:
        return is_complete_animation(path, ANIMATED_FORMATS[suffix], frames)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size < 16:
        return False
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(-12, os.SEEK_END)
        tail = f.read(12)
    if suffix == ".png":
        return head == b"\x89PNG\r\n\x1a\n" and tail[4:] == b"IEND\xaeB`\x82"
    return head[:2] == b"\xff\xd8" and tail[-2:] == b"\xff\xd9"


def output_target(outdir: str, relative: str) -> str:
    """``outdir/relative``, refusing any name that would land outside ``outdir``.

    ``outdir`` must be an absolute, resolved path.  The parent folders are
    created; a symlinked folder pointing elsewhere is refused.
    """
    if os.path.isabs(relative) or not relative or any(part in ("..", "") for part in relative.split(os.sep)):
        raise OutputPathError(f"output name {relative!r} is not a plain relative path", attribute="output")
    parts = relative.split(os.sep)
    folder = outdir
    for part in parts[:-1]:
        # One level at a time, checked before the next is created: a symlink must not make us
        # create folders elsewhere.  A real folder inside a checked one is inside; a symlink is
        # resolved.
        folder = os.path.join(folder, part)
        try:
            mode = os.lstat(folder).st_mode  # the folder usually exists: one syscall, no exception
        except FileNotFoundError:
            try:
                os.mkdir(folder)
            except FileExistsError:
                pass
            mode = os.lstat(folder).st_mode
        if stat.S_ISDIR(mode):
            continue
        real = os.path.realpath(folder)
        if os.path.commonpath([real, outdir]) != outdir or not os.path.isdir(real):
            raise OutputPathError(f"output folder {folder!r} is not a folder inside {outdir!r} "
                                  f"(it resolves to {real!r})", attribute="output")
    return os.path.join(folder, parts[-1])
