"""``convert``: DICOM files and folder trees to JPEG or PNG, in parallel and resumable.

``convert(sources, outdir)`` walks files and folders, recognises DICOM files by
their content (the ``DICM`` marker at byte 128, else a parse of the header),
renders every frame with :func:`dicomrender.render` and writes one image per
frame under ``outdir``, mirroring the relative layout of each source folder.

Guarantees, in the order users care about them:

* Loss-free: every input file ends as output image(s) or as a ``skipped`` /
  ``failed`` record of the report, with the error class and message.
* Safe: inputs are only opened for reading; outputs appear atomically (written
  to an unnamed temporary file in the target folder, then linked into place),
  so a killed run never leaves a truncated image under an output name; output
  paths never leave ``outdir`` (no ``..``, absolute names or symlinked folders).
* Resumable: a rerun keeps outputs that are complete (a whole JPEG or PNG
  stream) and converts the rest; ``overwrite=True`` rewrites everything.
* Parallel: a pool of worker processes (all cores by default) with an optional
  per-file timeout; a worker that hangs or dies costs one ``failed`` record,
  the rest of the batch finishes.  ``scheduler=`` runs the same work on a
  dask.distributed cluster.
"""

from __future__ import annotations

import os
import sys
import time
from typing import List, Optional, Sequence, Tuple, Union

from .._types import Window
from ..engine.threads import usable_cpus
from ..io import FORMAT_SUFFIXES, check_channels, remove_stale_temporaries
from ..presets import get_preset
from .distributed import run_dask
from .model import FAILED, ConvertOptions, ConvertRecord, ConvertReport, ConvertTask, Done
from .pool import run_pool
from .walk import collect_tasks, frame_name_clashes
from .worker import convert_file

__all__ = ["convert"]


def _check_options(preset, window, format, quality, compress_level, frames, jobs, timeout, scheduler
                   ) -> Tuple[Union[str, Tuple[str, ...], None], Optional[Tuple[float, float]], Union[str, int]]:
    """Check every argument before any file is touched; returns the preset name(s), the window as
    floats and the frame selection, normalised."""
    if format.lower() not in FORMAT_SUFFIXES:
        raise ValueError(f"format must be jpeg or png, got {format!r}")
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
    if timeout is not None and not float(timeout) > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if timeout is not None and scheduler is not None:
        raise ValueError("timeout applies to the local process pool; it cannot be combined with a scheduler")
    return names, center_width, frames


def convert(sources, outdir, *, preset=None, window: Optional[Sequence[float]] = None, format: str = "jpeg",
            quality: int = 95, compress_level: int = 6, frames: Union[str, int] = "all", jobs: Optional[int] = None,
            scheduler=None, overwrite: bool = False, report=None, progress: Optional[bool] = None,
            timeout: Optional[float] = None, fsync: bool = False, strict: bool = True) -> ConvertReport:
    """Convert DICOM files and folder trees to JPEG or PNG images under ``outdir``.

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
    format : {"jpeg", "png"}
    quality : int
        JPEG quality (1-100).
    compress_level : int
        PNG compression level (0-9).
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

    Returns
    -------
    ConvertReport
        One record per input file; ``report.exit_status`` is 1 when any failed.

    Raises
    ------
    FileNotFoundError
        A source does not exist.
    ValueError, DicomRenderError
        Bad arguments (unknown preset, invalid window, ...), before any file is touched.
    """
    started = time.monotonic()
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    names, center_width, frames = _check_options(preset, window, format, quality, compress_level, frames, jobs,
                                                 timeout, scheduler)
    jobs = int(jobs) if jobs is not None else usable_cpus()
    tasks, collisions, protected = collect_tasks(sources, outdir)
    tasks, clashes = frame_name_clashes(tasks, frames)
    collisions += clashes
    os.makedirs(outdir, exist_ok=True)
    outdir_real = os.path.realpath(outdir)
    remove_stale_temporaries(outdir_real)
    options = ConvertOptions(outdir_real, names, center_width, format.lower(), int(quality), int(compress_level),
                             frames, bool(overwrite), bool(fsync), bool(strict), threads=1, protected=protected)
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

    try:
        if scheduler is not None:
            run_dask(tasks, options, scheduler, jobs, done)
        elif jobs == 1 and timeout is None:
            _run_serial(tasks, options, done)
        else:
            run_pool(tasks, options, jobs, timeout, done)
    finally:
        if bar is not None:
            bar.close()
    result = ConvertReport([r for r in records if r is not None] + collisions, outdir_real,
                           time.monotonic() - started)
    result.records.sort(key=lambda r: r.source)
    if report is not None:
        result.write_csv(report)
    return result


def _run_serial(tasks: List[ConvertTask], options: ConvertOptions, done: Done) -> None:
    for index, task in enumerate(tasks):
        done(index, convert_file(task, options))


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
