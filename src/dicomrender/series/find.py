"""Finding the series a source holds: ``find_series`` and choosing one series to render.

Headers only: each file is read up to its Pixel Data (:mod:`.quick` from the raw elements, else
:mod:`.sources` through pydicom), in parallel where that pays (:mod:`.parallel`: forked processes,
since parsing holds the GIL; timed on the first files, see ``FORK_PAYS_AFTER``).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..dicom.header import DEFAULT_MAX_PIXELS
from ..errors import DicomRenderError, SeriesError, SeriesSelectionError, SeriesWarning
from .geometry import Geometry, describe_files, sort_slices
from .parallel import choose_executor, map_chunks, split, worker_count
from .quick import HeaderReader
from .sources import BROKEN, NO_IMAGE, NOT_DICOM, Scan, Skipped, SliceHeader, expand

__all__ = ["SeriesInfo", "find_series", "scan", "select_series", "series_table"]

#: Files per header-reading worker below which another worker does not pay for its fork.
FILES_PER_WORKER = 24
#: Files read first, in the caller, timing a header read before other workers are started.
PROBE_FILES = 32
#: Seconds of serial header reading left below which other workers do not pay: a forked reader costs
#: its fork and the copy-on-write faults of both processes, ~15 ms on a 2-core machine, so headers
#: read from their raw elements (~70 us a file, :mod:`.quick`) stay serial up to about a thousand
#: files, pydicom parses (~0.5 ms a file: compressed or unusual files) go parallel from about a hundred
#: (measured: benchmarks/bench_series.py, and scan() of 300 to 1200 files).
FORK_PAYS_AFTER = 0.06


@dataclass(frozen=True)
class SeriesInfo:
    """One series of a source, from its headers.

    Attributes
    ----------
    series_uid, study_uid, modality, description : str
    number : int or None
        Series Number.
    files : tuple of str
        The files (or ``<dataset N>``) holding its images, in slice order when the slices can be
        sorted (see :func:`dicomrender.render_series`), else by name.
    shape : (int, int, int)
        ``(slices, rows, columns)``: slices counts every frame of multi-frame objects.
    spacing : (float or None, float or None, float or None) or None
        ``(slice, row, column)`` spacing in mm (None when the slices do not form one volume).
    orientation : numpy.ndarray or None
        ``(3, 3)`` direction matrix (columns: row direction, column direction, normal).
    geometry : Geometry or None
        Everything :func:`~dicomrender.series.geometry.sort_slices` found.
    problems : tuple of str
        Why the series would not render as one volume (mixed sizes, duplicates...), and its unreadable
        files.
    skipped : tuple of str
        Its objects without pixel data.
    """

    series_uid: str
    study_uid: str
    modality: str
    description: str
    number: Optional[int]
    files: Tuple[str, ...]
    shape: Tuple[int, int, int]
    spacing: Optional[Tuple[Optional[float], Optional[float], Optional[float]]]
    orientation: Optional[np.ndarray]
    geometry: Optional[Geometry]
    problems: Tuple[str, ...] = ()
    skipped: Tuple[str, ...] = ()

    @property
    def plane(self) -> str:
        """AXIAL, CORONAL, SAGITTAL or OBLIQUE (by the largest component of the normal), or "" if unknown."""
        if self.orientation is None:
            return ""
        normal = np.abs(self.orientation[:, 2])
        if normal.max() < 0.9:
            return "OBLIQUE"
        return ("SAGITTAL", "CORONAL", "AXIAL")[int(np.argmax(normal))]


def scan(src, *, jobs: Optional[int] = None, executor: str = "auto",
         max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> Scan:
    """The slice headers of every item of ``src`` and the items that gave none."""
    items, datasets = expand(src)
    workers = worker_count(jobs, len(items), FILES_PER_WORKER) if datasets is None else 1
    mode = choose_executor(executor)
    reader = HeaderReader(datasets, max_pixels)
    headers: List[SliceHeader] = []
    skipped: List[Skipped] = []
    if workers > 1:  # time the first files, then decide whether the rest is worth other workers
        probe = min(PROBE_FILES, len(items))
        started = time.perf_counter()
        headers, skipped = reader.read(items[:probe])
        per_file = (time.perf_counter() - started) / max(1, probe)
        items = items[probe:]
        if per_file * len(items) < FORK_PAYS_AFTER:
            workers = 1
        workers = min(workers, max(1, len(items)))
    parts = [items[r.start:r.stop] for r in split(len(items), workers)] or [[]]
    for part_headers, part_skipped in map_chunks(reader.read, parts, mode):
        headers.extend(part_headers)
        skipped.extend(part_skipped)
    return Scan(headers, skipped, datasets)


def _groups(headers: Sequence[SliceHeader]) -> Dict[str, List[SliceHeader]]:
    groups: Dict[str, List[SliceHeader]] = {}
    for header in headers:
        groups.setdefault(header.series_uid, []).append(header)
    return groups


def _files(headers: Sequence[SliceHeader]) -> Tuple[str, ...]:
    return tuple(dict.fromkeys(h.name for h in headers))


def _info(uid: str, headers: List[SliceHeader], skipped: Sequence[Skipped]) -> SeriesInfo:
    first = headers[0]
    problems = [f"{s.name}: {s.message}" for s in skipped if s.reason == BROKEN and s.series_uid == uid]
    geometry = None
    try:
        ordered, geometry = sort_slices(headers)
        files = _files(ordered)
    except DicomRenderError as exc:
        problems.insert(0, exc.detail)
        files = tuple(sorted(_files(headers)))
    spacing = geometry.spacing if geometry is not None else None
    orientation = geometry.orientation if geometry is not None else None
    return SeriesInfo(uid, first.study_uid, first.modality, first.description, first.series_number, files,
                      (len(headers), first.rows, first.columns), spacing, orientation, geometry, tuple(problems),
                      tuple(s.name for s in skipped if s.reason == NO_IMAGE and s.series_uid == uid))


def find_series(src, *, jobs: Optional[int] = None, executor: str = "auto") -> List[SeriesInfo]:
    """The image series in ``src``: a folder (walked recursively, files recognised by content whatever
    their names), a file, a list of paths, or pydicom Datasets.

    Reads headers only, in parallel (``jobs`` processes, default the idle usable cores, one per 24
    files at most, so that each fork pays for itself).  Objects without pixel data (structured reports...) give no
    series; files that are not DICOM are ignored.

    Returns
    -------
    list of SeriesInfo
        One per Series Instance UID, in the order their first file was found.
    """
    found = scan(src, jobs=jobs, executor=executor)
    return [_info(uid, group, found.skipped) for uid, group in _groups(found.headers).items()]


def _summary(uid: str, headers: Sequence[SliceHeader]) -> str:
    first = headers[0]
    number = f" #{first.series_number}" if first.series_number is not None else ""
    description = f" {first.description!r}" if first.description else ""
    return f"{uid or '(no SeriesInstanceUID)'} ({first.modality or '?'}{number}{description}, {len(headers)} slices)"


def select_series(found: Scan, series_uid: Optional[str], source_label: str = "the source"
                  ) -> Tuple[str, List[SliceHeader], List[Skipped]]:
    """The headers of the one series to render, and that series' skipped objects.

    Raises
    ------
    SeriesSelectionError
        No image series, several and no ``series_uid`` (the message lists them), or no such series.
    SeriesError
        A file of the series (or a DICOM file whose series cannot be read) is broken: truncated,
        unparseable; the message names each.
    """
    groups = _groups(found.headers)
    if not groups:
        counts = {reason: sum(s.reason == reason for s in found.skipped) for reason in (NOT_DICOM, NO_IMAGE, BROKEN)}
        detail = ", ".join(f"{n} {reason}" for reason, n in counts.items() if n)
        broken = [s for s in found.skipped if s.reason == BROKEN]
        if broken:
            _raise_broken(broken)
        raise SeriesSelectionError(f"no image series in {source_label}" + (f" ({detail})" if detail else ""))
    if series_uid is None:
        if len(groups) > 1:
            listing = "; ".join(_summary(uid, g) for uid, g in groups.items())
            raise SeriesSelectionError(f"{source_label} holds {len(groups)} image series; choose one with "
                                       f"series_uid=: {listing}", attribute="SeriesInstanceUID")
        series_uid = next(iter(groups))
    elif series_uid not in groups:
        listing = "; ".join(_summary(uid, g) for uid, g in groups.items())
        raise SeriesSelectionError(f"no image series with SeriesInstanceUID {series_uid!r} in {source_label}; "
                                   f"it holds: {listing}", attribute="SeriesInstanceUID")
    broken = [s for s in found.skipped if s.reason == BROKEN and s.series_uid in (series_uid, "")]
    if broken:
        _raise_broken(broken)
    skipped = [s for s in found.skipped if s.reason == NO_IMAGE and s.series_uid == series_uid]
    if skipped:
        warnings.warn(f"skipped {len(skipped)} object(s) of the series without pixel data: "
                      f"{describe_files([s.name for s in skipped])}", SeriesWarning, stacklevel=5)
    return series_uid, groups[series_uid], skipped


def _raise_broken(broken: Sequence[Skipped]) -> None:
    listing = "; ".join(f"{s.name}: {s.message}" for s in broken[:5])
    more = f"; and {len(broken) - 5} more" if len(broken) > 5 else ""
    error = SeriesError(f"{len(broken)} file(s) of the series cannot be read: {listing}{more}",
                        files=[s.name for s in broken])
    cause = broken[0].error
    raise error from cause if isinstance(cause, BaseException) else None


def series_table(series: Sequence[SeriesInfo]) -> str:
    """A plain-text table of :func:`find_series` records (``dicomrender series --list``)."""
    rows = [("series_uid", "modality", "number", "description", "slices", "size", "spacing (mm)", "plane", "files",
             "problems")]
    for s in series:
        spacing = "x".join("?" if v is None else f"{v:g}" for v in s.spacing) if s.spacing else "-"
        rows.append((s.series_uid or "-", s.modality or "-", "" if s.number is None else str(s.number),
                     s.description, str(s.shape[0]), f"{s.shape[1]}x{s.shape[2]}", spacing, s.plane or "-",
                     str(len(s.files)), "; ".join(s.problems) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join([cell.ljust(w) for cell, w in zip(r[:-1], widths)] + [r[-1]]).rstrip() for r in rows]
    lines.insert(1, "  ".join(["-" * w for w in widths] + ["-" * 8]))
    return "\n".join(lines)
