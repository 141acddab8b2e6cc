"""What a batch is made of: its options, one task per input file, one record per outcome, the report."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

from ..dicom.header import DEFAULT_MAX_MEMORY
from ..io import ANIMATED_FORMATS, FORMAT_SUFFIXES, write_atomic

__all__ = ["ConvertOptions", "ConvertTask", "ConvertRecord", "ConvertReport", "OK", "SKIPPED", "FAILED",
           "INTERRUPTED", "REPORT_COLUMNS", "Work", "Done"]

OK, SKIPPED, FAILED = "ok", "skipped", "failed"

#: The ``error`` of the record of a file the batch did not get to before it was interrupted.
INTERRUPTED = "Interrupted"

REPORT_COLUMNS = ("source", "status", "frame", "output", "written", "error", "message")


@dataclass(frozen=True)
class ConvertOptions:
    """What to render and how to write it; the same for every file of a batch."""

    outdir: str
    preset: Union[str, Tuple[str, ...], None] = None
    window: Optional[Tuple[float, float]] = None
    format: str = "jpeg"
    quality: int = 95
    compress_level: int = 6
    frames: Union[str, int] = "all"
    overwrite: bool = False
    fsync: bool = False
    strict: bool = True
    #: Kernel threads per file: 1, because the batch is parallel across files (one core each).
    threads: Optional[int] = 1
    #: Input files that live inside the output folder: never replaced by an output.
    protected: frozenset = frozenset()
    #: The memory budget of each file's render, in bytes (``render(max_memory=)``; None: none).
    max_memory: Optional[int] = DEFAULT_MAX_MEMORY
    #: PS3.18 rendered parameters: the viewport (text ``vw,vh[,sx,sy,sw,sh]``) and ``iccprofile``.
    viewport: Optional[str] = None
    iccprofile: str = "no"
    #: WebP: lossless instead of ``quality``.
    lossless: bool = False

    @property
    def suffix(self) -> str:
        return FORMAT_SUFFIXES[self.format]

    @property
    def animated(self) -> bool:
        """Whether each input becomes one animated file (GIF, WebP, APNG, MP4) holding its selected frames."""
        return self.suffix in ANIMATED_FORMATS


@dataclass(frozen=True)
class ConvertTask:
    """One input file: where it is, how the report names it, and its output name without suffix.

    ``reserved``: normcased output names (without suffix) that belong to other
    inputs and that this one must fail rather than write (see ``walk``).
    """

    path: str
    source: str
    stem: str
    reserved: frozenset = frozenset()


@dataclass(frozen=True)
class ConvertRecord:
    """The outcome for one input file.

    Attributes
    ----------
    source : str
        The input path (a source folder joined with the file's relative path).
    status : {"ok", "skipped", "failed"}
        ``skipped``: not DICOM, or DICOM without an image (e.g. a structured report).
    outputs : tuple of str
        Output paths relative to the output folder, one per rendered frame (one in all for an animated
        format).
    frames : tuple of int
        The 1-based frame number of each output of a multi-frame file (empty for single-frame files and
        animated formats).
    written : tuple of str
        The outputs this run wrote; the others were complete already.
    error : str
        The exception class name for ``skipped`` / ``failed``.
    message : str
        What went wrong, or why the file was skipped.
    """

    source: str
    status: str
    outputs: Tuple[str, ...] = ()
    frames: Tuple[int, ...] = ()
    written: Tuple[str, ...] = ()
    error: str = ""
    message: str = ""


#: The function an executor runs for each task: ``work(task, options) -> record`` (never raises).
Work = Callable[[ConvertTask, ConvertOptions], ConvertRecord]

#: How an executor hands back the record of task number ``index``: ``done(index, record)``.
Done = Callable[[int, ConvertRecord], None]


class ConvertReport:
    """What :func:`convert` did: one record per input file, sorted by source path.

    Attributes
    ----------
    records : list of ConvertRecord
        Also reachable by iterating over the report and by index.
    outdir : str
        The resolved output folder; record outputs are relative to it.
    elapsed : float
        Seconds the batch took.
    ok, skipped, failed : list of ConvertRecord
        The records with that status.
    written : int
        Number of images written by this run (the others were complete already).
    exit_status : int
        0 when no file failed, else 1 (skipped files are not failures).

    Examples
    --------
    >>> report = dicomrender.convert("study/", "jpeg/")       # doctest: +SKIP
    >>> [(r.source, r.error, r.message) for r in report.failed]  # doctest: +SKIP
    >>> report.write_csv("report.csv")                       # doctest: +SKIP
    """

    def __init__(self, records: Sequence[ConvertRecord], outdir: str, elapsed: float = 0.0):
        self.records: List[ConvertRecord] = list(records)
        self.outdir = outdir
        self.elapsed = elapsed

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, index):
        return self.records[index]

    def _with(self, status: str) -> List[ConvertRecord]:
        return [r for r in self.records if r.status == status]

    @property
    def ok(self) -> List[ConvertRecord]:
        return self._with(OK)

    @property
    def skipped(self) -> List[ConvertRecord]:
        return self._with(SKIPPED)

    @property
    def failed(self) -> List[ConvertRecord]:
        return self._with(FAILED)

    @property
    def written(self) -> int:
        """Number of output images written by this run."""
        return sum(len(r.written) for r in self.records)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0

    def rows(self) -> List[dict]:
        """One row per output image, and one per skipped or failed file (columns :data:`REPORT_COLUMNS`)."""
        rows = []
        for r in self.records:
            base = {"source": r.source, "status": r.status, "error": r.error, "message": r.message}
            if r.status == OK:
                frames = r.frames or ("",) * len(r.outputs)
                written = set(r.written)
                for frame, output in zip(frames, r.outputs):
                    rows.append(dict(base, frame=frame, output=output, written=int(output in written)))
            else:
                rows.append(dict(base, frame="", output="", written=0))
        return rows

    def write_csv(self, path) -> str:
        """Write :meth:`rows` as CSV (atomically) and return the path.

        The file is UTF-8, except that a file name which is not valid UTF-8
        keeps its own bytes (Python's ``surrogateescape``, the way ``os`` gives
        such names): every ``source`` and ``output`` names its file exactly.
        Read it with ``open(path, encoding="utf-8", errors="surrogateescape")``
        to get the names ``os`` functions accept.
        """
        import io  # the standard library's

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_atomic(path, buffer.getvalue().encode("utf-8", "surrogateescape"), fsync=False)
        return path

    def summary(self) -> str:
        outputs = sum(len(r.outputs) for r in self.ok)
        rate = f", {len(self) / self.elapsed:.1f} files/s" if self.elapsed > 0 else ""
        files = f"{len(self)} file{'' if len(self) == 1 else 's'}"
        interrupted = sum(r.error == INTERRUPTED for r in self.failed)
        stopped = f", {interrupted} not finished (interrupted)" if interrupted else ""
        return (f"{files}: {len(self.ok)} ok ({outputs} images, {self.written} written, "
                f"{outputs - self.written} kept), {len(self.skipped)} skipped, "
                f"{len(self.failed) - interrupted} failed{stopped} in {self.elapsed:.1f} s{rate}")

    def __repr__(self) -> str:
        return f"<ConvertReport {self.summary()}>"
