"""``dicomrender series SRC -o OUT``: a series to a volume file (.npy, .npz with its geometry), a PNG
contact sheet or an animation of its slices (.gif, .webp, .apng, .mp4); ``--list`` prints the series of SRC.

Exit status 0 written (or listed), 1 the series could not be rendered (several series and no
``--series``, mixed sizes, a broken file...), 2 bad usage.
"""

from __future__ import annotations

import io
import math
import os
import sys

import numpy as np

from .._types import Window
from ..errors import DicomRenderError
from ..io import ANIMATED_FORMATS, write_atomic, write_image
from ..io.animated import check_fps, has_video
from ..presets import get_preset
from ..series import find_series, render_series
from ..series.find import series_table
from .args import QUALITY, add_window_options, preset_arg

__all__ = ["add_parser", "run", "montage"]

_SUFFIXES = (".npy", ".npz", ".png") + tuple(ANIMATED_FORMATS)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "series", help="render a series (folder of slices, multi-frame file) to .npy/.npz, a PNG contact sheet "
                       "or an animation",
        description="Render one series of SRC (a folder walked recursively, files recognised by content, or "
                    "files) to one sorted, windowed uint8 volume: OUT.npy (the pixels), OUT.npz (pixels, "
                    "spacing, origin, orientation, positions, affine, sop_instance_uids, files), with "
                    "--montage or a .png OUT a contact sheet, or OUT.gif/.webp/.apng/.mp4 an animation of the "
                    "slices in position order (--fps; default the frame timing of a multi-frame object, else "
                    "10 frames per second). --list prints the series of SRC. Exit status: 0 done, 1 the "
                    "series could not be rendered, 2 bad usage.")
    p.add_argument("sources", nargs="+", metavar="SRC", help="a folder, files, or a multi-frame file")
    p.add_argument("-o", "--output", help="output .npy, .npz, .png, or an animation .gif, .webp, .apng, .mp4")
    p.add_argument("--list", action="store_true", help="print the series of SRC as a table and stop")
    p.add_argument("--series", dest="series_uid", metavar="UID", help="SeriesInstanceUID (when SRC holds several)")
    p.add_argument("--neighbours", type=int, default=0, metavar="K",
                   help="stack slices i-K..i+K as channels (default 0)")
    p.add_argument("--montage", action="store_true", help="write a PNG contact sheet of the slices")
    p.add_argument("--every", type=int, default=None, metavar="N",
                   help="contact sheet: every Nth slice (default: at most 64 tiles)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: all cores; 1: serial)")
    p.add_argument("--fps", type=float, default=None,
                   help="animation: frames per second (default: the header's timing of a multi-frame object, "
                        "else 10)")
    p.add_argument("--quality", type=QUALITY, default=95, help="animation: lossy WebP and MP4 quality 1-100 "
                                                              "(default 95)")
    p.add_argument("--lossless", action="store_true", help="animation: lossless WebP")
    add_window_options(p)
    p.set_defaults(handler=run)


def _usage(args):
    for source in args.sources:
        if not os.path.exists(source):
            raise FileNotFoundError(f"no such file or folder: {source!r}")
    if args.list:
        return None
    if not args.output:
        raise ValueError("-o OUT is required (or --list)")
    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"OUT must end in {', '.join(_SUFFIXES)}, got {args.output!r}")
    if args.montage and suffix != ".png":
        raise ValueError("--montage writes a PNG: OUT must end in .png")
    if suffix in ANIMATED_FORMATS:
        if args.fps is not None:
            check_fps(args.fps)
        if suffix == ".mp4" and not has_video():
            raise ValueError("MP4 output needs PyAV: pip install 'dicomrender[video]'")
    elif args.fps is not None or args.lossless:
        raise ValueError("--fps and --lossless apply to an animation (.gif, .webp, .apng, .mp4)")
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder {folder!r} does not exist")
    if args.neighbours < 0 or (args.every is not None and args.every < 1) or (args.jobs is not None and args.jobs < 1):
        raise ValueError("--neighbours must be >= 0, --every and --jobs >= 1")
    if args.window is not None:
        Window(*args.window)
    preset = preset_arg(args.preset)
    for name in [preset] if isinstance(preset, str) else preset or []:
        get_preset(name)
    channels = (1 if preset is None or isinstance(preset, str) else len(preset)) * (2 * args.neighbours + 1)
    if suffix in ANIMATED_FORMATS and channels not in (1, 3):
        raise ValueError(f"an animation holds 1 (grey) or 3 (RGB) channels, not {channels} (presets x "
                         f"(2 x neighbours + 1))")
    return preset


def montage(pixels: np.ndarray, every: int = 1, columns: int = 0) -> np.ndarray:
    """A contact sheet of every ``every``-th slice of a ``(slices, rows, cols[, channels])`` volume:
    grey tiles, or RGB for three channels (other channel counts: the first)."""
    if pixels.ndim == 4 and pixels.shape[-1] != 3:
        pixels = pixels[..., 0]
    tiles = pixels[::every]
    n = len(tiles)
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    sheet = np.zeros((rows * tiles.shape[1], columns * tiles.shape[2]) + tiles.shape[3:], dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * tile.shape[0]:(r + 1) * tile.shape[0], c * tile.shape[1]:(c + 1) * tile.shape[1]] = tile
    return sheet


def _write(volume, path: str, args) -> None:
    suffix = os.path.splitext(path)[1].lower()
    pixels = volume.pixels
    if suffix in ANIMATED_FORMATS:
        volume.save(path, fps=args.fps, quality=args.quality, lossless=args.lossless)
        return
    if suffix == ".png":
        every = args.every or max(1, math.ceil(len(pixels) / 64))
        write_image(montage(pixels, every), path)
        return
    buffer = io.BytesIO()
    if suffix == ".npy":
        np.save(buffer, pixels)
    else:
        def array(value):  # absent geometry (slices without positions) is an empty array
            return np.array([]) if value is None else np.asarray(value)

        spacing = np.array([np.nan if v is None else v for v in volume.spacing], dtype=np.float64)
        np.savez(buffer, pixels=pixels, spacing=spacing, origin=array(volume.origin),
                 orientation=array(volume.orientation), positions=array(volume.positions),
                 affine=array(volume.affine), sop_instance_uids=np.array(volume.sop_instance_uids),
                 files=np.array(volume.files), series_uid=np.array(volume.series_uid))
    write_atomic(path, buffer.getvalue())


def run(args) -> int:
    try:
        preset = _usage(args)
    except (DicomRenderError, FileNotFoundError, ValueError) as exc:
        print(f"dicomrender series: error: {exc}", file=sys.stderr)
        return 2
    sources = args.sources[0] if len(args.sources) == 1 else args.sources
    if args.list:
        print(series_table(find_series(sources, jobs=args.jobs)))
        return 0
    volume = render_series(sources, preset, window=args.window, function=args.function, invert=args.invert,
                           strict=args.strict, series_uid=args.series_uid, neighbours=args.neighbours,
                           jobs=args.jobs)
    _write(volume, args.output, args)
    print(f"{args.output}: {volume.shape} uint8, spacing {volume.spacing} mm, sorted by "
          f"{volume.geometry.sorted_by}")
    return 0
