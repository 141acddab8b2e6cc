"""``dicomrender convert SRC... -o OUTDIR``: batch conversion, parallel and resumable."""

from __future__ import annotations

import signal
import sys
import threading

from ..batch import convert
from ..errors import UnknownPresetError
from .args import (
    COMPRESS_LEVEL,
    QUALITY,
    add_rendered_options,
    add_strict,
    add_window_choice,
    positive_seconds,
    preset_arg,
)

#: Exit status when stopped by Ctrl-C (SIGINT) or SIGTERM: 128 + the signal number, as a shell reports it.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``systemctl stop``, ``docker stop``), raised in the main thread so that the batch
    stops its workers and reports what finished, as on Ctrl-C."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="convert DICOM files and folder trees to JPEG/PNG or animations (parallel, resumable)",
        description="Convert DICOM files and folder trees to JPEG or PNG (one image per frame), or GIF, WebP, "
                    "APNG or MP4 (one animation per file), under OUTDIR, mirroring the layout. "
                    "Exit status: 0 all converted (non-DICOM files are skipped), 1 some failed, 2 bad usage, "
                    "130 / 143 stopped by Ctrl-C / SIGTERM (rerun the same command to finish).")
    p.add_argument("sources", nargs="+", metavar="SRC", help="DICOM files and folders (recognised by content)")
    p.add_argument("-o", "--outdir", required=True, help="output folder")
    add_window_choice(p, "preset name, or NAME,NAME,NAME for an RGB image")
    p.add_argument("--format", choices=("jpeg", "png", "gif", "webp", "apng", "mp4"), type=str.lower,
                   default="jpeg", help="default: jpeg; gif, webp, apng, mp4: one animation per file")
    p.add_argument("--quality", type=QUALITY, default=95, help="JPEG, lossy WebP and MP4 quality 1-100 (default 95)")
    p.add_argument("--compress-level", type=COMPRESS_LEVEL, default=6,
                   help="PNG and APNG compression level 0-9 (default 6)")
    p.add_argument("--lossless", action="store_true", help="lossless WebP")
    p.add_argument("--frames", default="all", metavar="all|first|N",
                   help="frames of multi-frame files: all (default), first, or one 0-based index")
    p.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: all cores; 1: serial)")
    p.add_argument("--scheduler", metavar="ADDRESS|local",
                   help="run on a dask.distributed cluster (needs dicomrender[dask])")
    p.add_argument("--timeout", type=positive_seconds, default=None,
                   help="seconds one file may take in a worker before it is recorded as failed")
    p.add_argument("--overwrite", action="store_true", help="rewrite existing outputs (default: keep complete ones)")
    p.add_argument("--fsync", action="store_true", help="flush each image to disk before naming it (slower)")
    p.add_argument("--report", metavar="CSV", help="write the per-file report as CSV")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    add_strict(p)
    add_rendered_options(p)
    p.set_defaults(handler=run)


def _terminate(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: the batch is stopping
    raise Terminated()


def run(args) -> int:
    """Exit status 0 all converted, 1 some failed, 2 bad usage, 130 interrupted, 143 terminated."""
    if args.annotation:
        print("dicomrender convert: error: annotation (burned-in patient / technique text) is not supported",
              file=sys.stderr)
        return 2
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = convert(args.sources, args.outdir, preset=preset_arg(args.preset), window=args.window,
                         format=args.format, quality=args.quality, compress_level=args.compress_level,
                         frames=args.frames, jobs=args.jobs, scheduler=args.scheduler, overwrite=args.overwrite,
                         report=args.report, progress=False if args.quiet else None, timeout=args.timeout,
                         fsync=args.fsync, strict=args.strict, viewport=args.viewport, iccprofile=args.iccprofile,
                         lossless=args.lossless)
    except (FileNotFoundError, UnknownPresetError, ValueError, ImportError) as exc:
        print(f"dicomrender convert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        partial = getattr(exc, "report", None)
        if partial is not None and not args.quiet:
            print(partial.summary(), file=sys.stderr)
        print(f"dicomrender convert: {'terminated (SIGTERM)' if terminated else 'interrupted'}; rerun the same "
              f"command to finish", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    for record in result.failed:
        print(f"failed: {record.source}: {record.error}: {record.message}", file=sys.stderr)
    if not args.quiet:
        print(result.summary(), file=sys.stderr)
    return result.exit_status
