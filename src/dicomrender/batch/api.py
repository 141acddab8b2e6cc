"""``convert``: DICOM files and folder trees to JPEG or PNG, or to animations, in parallel and resumable.

``convert(sources, outdir)`` walks files and folders, recognises DICOM files by
their content (the ``DICM`` marker at byte 128, else a parse of the header),
renders every frame with :func:`dicomrender.render` and writes one image per
frame under ``outdir`` (one animation per file for GIF, WebP, APNG and MP4),
mirroring the relative layout of each source folder.

Guarantees, in the order users care about them:

* Loss-free: every input file ends as output image(s) or as a ``skipped`` /
  ``failed`` record of the report, with the error class and message.
* Safe: inputs are only opened for reading; outputs appear atomically (written
  to an unnamed temporary file in the target folder, then linked into place),
  so a killed run never leaves a truncated image under an output name; output
  paths never leave ``outdir`` (no ``..``, absolute names or symlinked folders).
* Resumable: a rerun keeps outputs that are complete (a whole JPEG or PNG
  stream, a whole animation of the expected number of frames) and converts
  the rest; ``overwrite=True`` rewrites everything.
* Parallel: a pool of worker processes (all cores by default) with an optional
  per-file timeout; a worker that hangs or dies costs one ``failed`` record,
  the rest of the batch finishes.  ``scheduler=`` runs the same work on a
  dask.distributed cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import math
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .._types import Window
from ..dicom.header import DEFAULT_MAX_MEMORY, check_max_memory
from ..display.icc import check_iccprofile
from ..display.viewport import parse_viewport
from ..engine.threads import usable_cpus
from ..errors import InvalidArgumentError
from ..io import FORMAT_SUFFIXES, check_channels, remove_stale_temporaries
from ..io.animated import has_video
from ..presets import get_preset
from .distributed import dask_client, run_dask
from .model import (
    FAILED,
    INTERRUPTED,
    REPORT_COLUMNS,
    ConvertOptions,
    ConvertRecord,
    ConvertReport,
    ConvertTask,
    Done,
    Work,
)
from .pool import run_pool
from .walk import collect_tasks, frame_name_candidates, settle_frame_names
from .worker import convert_file, plan_file

__all__ = ["convert"]


def _check_options(preset, window, format, quality, compress_level, frames, jobs, timeout, scheduler
                   ) -> Tuple[Union[str, Tuple[str, ...], None], Optional[Tuple[float, float]], Union[str, int]]:
    """Check every argument before any file is touched; returns the preset name(s), the window as
    floats and the frame selection, normalised."""
    if not isinstance(format, str) or format.lower() not in FORMAT_SUFFIXES:
        raise InvalidArgumentError(f"format must be one of jpeg, png, gif, webp, apng, mp4, got {format!r}",
                                   attribute="format")
    if format.lower() == "mp4" and not has_video():
        raise InvalidArgumentError("format mp4 needs PyAV: pip install 'dicomrender[video]'", attribute="format")
    if preset is not None and window is not None:
        raise ValueError("give either preset or window, not both")
    names: Union[str, Tuple[str, ...], None] = None
    if preset is not None:
        names = (preset,) if isinstance(preset, str) else tuple(preset)
        check_channels(len(names))
        for name in names:
            get_preset(name)
        names = names[0] if len(names) == 1 else names
    center_width = None
    if window is not None:
        center, width = window
        Window(center, width)  # validates
        center_width = (float(center), float(width))
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    if not 0 <= int(compress_level) <= 9:
        raise ValueError(f"compress_level must be 0..9, got {compress_level}")
    if frames not in ("all", "first"):
        try:
            frames = int(frames)
        except (TypeError, ValueError):
            raise ValueError(f"frames must be 'all', 'first' or a 0-based frame index, got {frames!r}") from None
        if frames < 0:
            raise ValueError(f"frames must be 'all', 'first' or a 0-based frame index, got {frames}")
    if jobs is not None and int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if timeout is not None and not 0 < float(timeout) < math.inf:
        raise ValueError(f"timeout must be a number of seconds > 0 (leave it out for no limit), got {timeout}")
    if timeout is not None and scheduler is not None:
        raise ValueError("timeout applies to the local process pool; it cannot be combined with a scheduler")
    if scheduler is not None and not hasattr(scheduler, "submit") and importlib.util.find_spec("distributed") is None:
        raise ImportError("scheduler= needs dask.distributed: pip install 'dicomrender[dask]'")
    return names, center_width, frames


def convert(sources, outdir, *, preset=None, window: Optional[Sequence[float]] = None, format: str = "jpeg",
            quality: int = 95, compress_level: int = 6, frames: Union[str, int] = "all", jobs: Optional[int] = None,
            scheduler=None, overwrite: bool = False, report=None, progress: Optional[bool] = None,
            timeout: Optional[float] = None, fsync: bool = False, strict: bool = True,
            max_memory: Optional[int] = DEFAULT_MAX_MEMORY, viewport=None, iccprofile: str = "no",
            lossless: bool = False) -> ConvertReport:
    """Convert DICOM files and folder trees to JPEG or PNG images, or animations, under ``outdir``.

    Parameters
    ----------
    sources : path or sequence of paths
        Files and folders.  Files are recognised as DICOM by content, whatever
        their name; the others are recorded as ``skipped``.
    outdir : path
        The output folder (created).  A folder source's files go to the same
        relative place; a file source's image goes to the top.  ``name.dcm``
        becomes ``name.jpg`` and a multi-frame file ``name_0001.jpg``, ... (the
        1-based frame number).  Other suffixes are kept (``1.2.3.4.jpg``).
    preset : str or sequence of 3 str, optional
        Preset name, or three names for an RGB image; default the file's window.
    window : (center, width), optional
        An explicit window instead of a preset.
    format : {"jpeg", "png", "gif", "webp", "apng", "mp4"}
        ``gif``, ``webp``, ``apng`` and ``mp4`` (needs ``dicomrender[video]``)
        write one animation per file, ``name.gif``, holding its selected
        frames, each shown for its duration from the header
        (:func:`dicomrender.save`); a single-frame file gives a one-frame
        animation.
    quality : int
        JPEG, lossy WebP and MP4 quality (1-100).
    compress_level : int
        PNG and APNG compression level (0-9).
    frames : "all", "first" or int
        Which frames of multi-frame files: all, the first, or one 0-based index
        (a file without that frame fails).  Single-frame files give their image.
        Windows computed from the pixels (min-max, when the file has none)
        cover the frames rendered: all of them, or the one selected.
    jobs : int, optional
        Worker processes (default: all cores this process may use).  ``1``
        converts in this process (unless ``timeout`` is given: then in one
        worker process).
    scheduler : str or distributed.Client, optional
        Run on a dask.distributed cluster: a scheduler address, ``"local"``
        for a new ``LocalCluster`` of ``jobs`` worker processes, or a Client.
        The output folder must be reachable from the workers at the same path.
    overwrite : bool
        Rewrite outputs that exist; by default complete outputs are kept (resume).
    report : path, optional
        Write the report as CSV there (one row per output image and per
        skipped or failed file).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    timeout : float, optional
        Seconds one file may take in a worker process before the worker is
        stopped and the file recorded as failed (process pool only, not with
        ``scheduler``).
    fsync : bool
        Flush each image to the disk before it gets its name (durable against
        power loss; slower).
    strict : bool
        Refuse HU presets on images without Hounsfield units.
    max_memory : int, optional
        The memory budget of each file's render, in bytes (see
        :func:`dicomrender.render`): a file whose render would need more
        fails with ``PixelLimitError`` before it is decoded.  Default 4 GiB;
        ``None``: no limit.
    viewport : (vw, vh) or (vw, vh, sx, sy, sw, sh) or str, optional
        Scale a region of every image to fit a viewport (:func:`dicomrender.render`).
    iccprofile : {"no", "yes", "srgb"}
        Colour images: embed the file's ICC profile, or convert to sRGB
        (:func:`dicomrender.save`).
    lossless : bool
        WebP: lossless instead of ``quality``.

    Returns
    -------
    ConvertReport
        One record per input file; ``report.exit_status`` is 1 when any failed.

    Raises
    ------
    FileNotFoundError
        A source does not exist.
    ValueError, DicomRenderError
        Bad arguments (unknown preset, invalid window, an output folder that is
        a file, a report that is a folder...), before any file is touched.
    KeyboardInterrupt, SystemExit
        Passed on once the workers are stopped, with the report of what
        finished as the exception's ``report`` attribute (the files whose
        record did not come back are ``failed``, error ``Interrupted``: their
        images may be written or not); with ``report=``, that report is written.

    Notes
    -----
    This process reads no input file unless ``jobs=1`` without ``timeout``:
    the names of the outputs are planned from file names, and the few files
    whose frame names another file's name could take have their headers
    read by workers first (see ``dicomrender.batch.walk``).  Inputs that get no
    output have a record: non-DICOM files, symlinked folders inside a source
    folder (``skipped``, not followed), name clashes, folders that cannot be
    read (``failed``).
    """
    started = time.monotonic()
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    names, center_width, frames = _check_options(preset, window, format, quality, compress_level, frames, jobs,
                                                 timeout, scheduler)
    _check_paths(outdir, report)
    max_memory = check_max_memory(max_memory)
    checked_viewport = parse_viewport(viewport)
    icc = check_iccprofile(iccprofile)
    jobs = int(jobs) if jobs is not None else usable_cpus()
    tasks, planned, protected = collect_tasks(sources, outdir)
    os.makedirs(outdir, exist_ok=True)
    outdir_real = os.path.realpath(outdir)
    remove_stale_temporaries(outdir_real)
    options = ConvertOptions(outdir_real, names, center_width, format.lower(), int(quality), int(compress_level),
                             frames, bool(overwrite), bool(fsync), bool(strict), threads=1, protected=protected,
                             max_memory=max_memory, iccprofile=icc, lossless=bool(lossless),
                             viewport=None if checked_viewport is None else str(checked_viewport))
    records: List[Optional[ConvertRecord]] = [None] * len(tasks)
    bar = _progress_bar(len(tasks), progress)
    failures = [0]

    def done(index: int, record: ConvertRecord) -> None:
        records[index] = record
        if bar is not None:
            if record.status == FAILED:
                failures[0] += 1
                bar.set_postfix(failed=failures[0], refresh=False)
            bar.update(1)

    def run(indices: List[int], work: Work, done_with: Done) -> None:
        """``work`` for ``tasks[i]`` of ``indices``, calling ``done_with(i, record)``: this process converts
        only when asked to (``jobs=1`` without a timeout); else its workers read the files."""
        subset = [tasks[i] for i in indices]
        back: Done = lambda k, record: done_with(indices[k], record)  # noqa: E731
        if client is not None:
            run_dask(subset, options, client, back, work)
        elif jobs == 1 and timeout is None:
            for k, task in enumerate(subset):
                back(k, work(task, options))
        else:
            run_pool(subset, options, jobs, timeout, back, work)

    client = None
    try:
        with dask_client(scheduler, jobs) if scheduler is not None else contextlib.nullcontext() as client:
            # an animation is named after its file alone: no frame name to clash with another file's
            candidates = {} if options.animated else frame_name_candidates(tasks)
            if candidates:  # see walk: the bases' headers, read by workers, settle who writes which name
                plans: Dict[int, ConvertRecord] = {}
                run(sorted(candidates), plan_file, plans.__setitem__)
                final, reserved = settle_frame_names(tasks, candidates, plans)
                for index, record in sorted(final.items()):
                    done(index, record)
                for index, stems in reserved.items():
                    tasks[index] = dataclasses.replace(tasks[index], reserved=stems)
            run([i for i, r in enumerate(records) if r is None], convert_file, done)
    except (KeyboardInterrupt, SystemExit) as exc:
        # Stopped (Ctrl-C, or SIGTERM turned into an exception by the command): the workers are gone
        # (the executors' own cleanup); report what finished, and the rest as not converted.
        result = _report(tasks, records, planned, outdir_real, started, interrupted=True)
        setattr(exc, "report", result)  # noqa: B010 (an attribute of a built-in exception)
        if report is not None:
            result.write_csv(report)
        raise
    finally:
        if bar is not None:
            bar.close()
    result = _report(tasks, records, planned, outdir_real, started)
    if report is not None:
        result.write_csv(report)
    return result


def _report(tasks: List[ConvertTask], records: List[Optional[ConvertRecord]], planned: List[ConvertRecord],
            outdir: str, started: float, interrupted: bool = False) -> ConvertReport:
    rows = [r if r is not None else
            ConvertRecord(task.source, FAILED, error=INTERRUPTED,
                          message="the run was interrupted before this file's record came back (its images may be "
                                  "written or not); rerun the same command to finish")
            for task, r in zip(tasks, records) if r is not None or interrupted]
    result = ConvertReport(rows + planned, outdir, time.monotonic() - started)
    result.records.sort(key=lambda r: r.source)
    return result


def _check_paths(outdir, report) -> None:
    """Refuse an output folder or a report that cannot be written, before any file is touched."""
    outdir = os.fspath(outdir)
    if os.path.lexists(outdir) and not os.path.isdir(outdir):
        raise ValueError(f"the output folder {outdir!r} exists and is not a folder")
    _check_creatable(outdir, "the output folder")
    if report is None:
        return
    report = os.fspath(report)
    if os.path.isdir(report) or report.endswith(os.sep):
        raise ValueError(f"the report {report!r} is a folder: give the name of a CSV file")
    _check_creatable(os.path.dirname(os.path.abspath(report)), "the report's folder")
    if os.path.lexists(report):
        try:
            with open(report, "rb") as f:
                head = f.read(len(_REPORT_HEADER))
        except OSError as exc:
            raise ValueError(f"the report {report!r} cannot be replaced: {exc.strerror or exc}") from None
        if head != _REPORT_HEADER:  # e.g. an input named by mistake: never replace it
            raise ValueError(f"the report {report!r} exists and is not a report of convert: it is not replaced")


#: The first line of every report: an existing file without it is not replaced by one.
_REPORT_HEADER = (",".join(REPORT_COLUMNS) + "\n").encode()


def _check_creatable(folder: str, what: str) -> None:
    """The nearest existing folder of ``folder`` (itself or a parent) must be a folder."""
    path = os.path.abspath(folder)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent
    if not os.path.isdir(path):
        raise ValueError(f"{what} {folder!r} cannot be created: {path!r} is not a folder")


def _progress_bar(total: int, progress: Optional[bool]):
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is optional
        return None

    class Bar(tqdm):
        monitor_interval = 0  # no monitor thread: worker processes can then be forked safely

    return Bar(total=total, unit="file", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
