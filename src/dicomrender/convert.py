"""Batch conversion: DICOM files and folder trees to JPEG or PNG, in parallel and resumable.

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

import csv
import dataclasses
import os
import signal
import stat
import sys
import time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import DicomRenderError, InvalidDatasetError, NotDicomError, PixelDataError

__all__ = ["convert", "convert_file", "ConvertReport", "ConvertRecord", "ConvertOptions", "OutputPathError",
           "is_dicom_header"]

#: Suffixes replaced by the image suffix; any other name keeps its suffix (``1.2.840.113619.2.1`` stays whole).
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
#: Name prefix of the temporary files of the atomic write (removed by the next run if a run was killed).
TEMP_PREFIX = ".dicomrender-"
TEMP_SUFFIX = ".tmp"
#: Pixel Data (and other elements) larger than this are read only when rendering, so the header
#: read that decides whether a file needs converting stays small.
_DEFER_SIZE = 64 * 1024
#: Files up to this size are read in one go when they are going to be rendered.
_WHOLE_READ_LIMIT = 256 * 1024 * 1024
#: Groups a DICOM data set without preamble starts with (command, file meta, identifying), either byte order.
_HEADLESS_STARTS = (b"\x00\x00", b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")
_FORMATS = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}

OK, SKIPPED, FAILED = "ok", "skipped", "failed"


class OutputPathError(DicomRenderError, ValueError):
    """An output path would fall outside the output folder (``..``, absolute name or symlinked folder)."""


# ---- options, records, report ------------------------------------------------


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

    @property
    def suffix(self) -> str:
        return _FORMATS[self.format]


@dataclass(frozen=True)
class ConvertTask:
    """One input file: where it is, how the report names it, and its output name without suffix."""

    path: str
    source: str
    stem: str


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
        Output paths relative to the output folder, one per rendered frame.
    frames : tuple of int
        The 1-based frame number of each output of a multi-frame file (empty for single-frame files).
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


REPORT_COLUMNS = ("source", "status", "frame", "output", "written", "error", "message")


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
        """Write :meth:`rows` as CSV (atomically) and return the path."""
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        _write_output(os.path.abspath(path), buffer.getvalue().encode("utf-8"), fsync=False)
        return path

    def summary(self) -> str:
        outputs = sum(len(r.outputs) for r in self.ok)
        rate = f", {len(self) / self.elapsed:.1f} files/s" if self.elapsed > 0 else ""
        files = f"{len(self)} file{'' if len(self) == 1 else 's'}"
        return (f"{files}: {len(self.ok)} ok ({outputs} images, {self.written} written, "
                f"{outputs - self.written} kept), {len(self.skipped)} skipped, {len(self.failed)} failed"
                f" in {self.elapsed:.1f} s{rate}")

    def __repr__(self) -> str:
        return f"<ConvertReport {self.summary()}>"


# ---- one file ------------------------------------------------------------------


def is_dicom_header(head: bytes) -> bool:
    """True when the first 132 bytes carry the ``DICM`` marker of a DICOM file (PS3.10 7.1)."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def _read(path: str, whole: bool):
    """``(dataset, file size)``; :class:`NotDicomError` for anything that is not DICOM.

    ``whole``: read the file in one go (it is going to be rendered); else
    leave large values (Pixel Data) on disk until used, so that deciding that
    a file needs no work costs a header read.
    """
    import pydicom

    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):  # opening a FIFO or a device could block or never end
        raise NotDicomError("not a regular file", filename=path)
    whole = whole and st.st_size <= _WHOLE_READ_LIMIT
    with open(path, "rb") as f:
        head = f.read(132)
        f.seek(0)
        # Whole: pydicom reads from this open file, Pixel Data included; else it reopens
        # the file by name for the deferred values, if ever needed.
        source = f if whole else path
        options = {} if whole else {"defer_size": _DEFER_SIZE}
        if is_dicom_header(head):
            ds = pydicom.dcmread(source, **options)
        elif head[:2] not in _HEADLESS_STARTS:
            raise NotDicomError("not a DICOM file (no DICM marker at byte 128)", filename=path)
        else:
            # Without the preamble a file is DICOM when its data set parses and looks like one.
            try:
                ds = pydicom.dcmread(source, force=True, **options)
            except Exception as exc:
                raise NotDicomError(f"not a DICOM file (no DICM marker; parse failed: {type(exc).__name__}: "
                                    f"{exc})", filename=path) from None
            if "SOPClassUID" not in ds and "Rows" not in ds:
                raise NotDicomError("not a DICOM file (no DICM marker and no SOP Class or image attributes)",
                                    filename=path)
    ds.filename = path  # error messages name the file
    return ds, st.st_size


def _parsed_to_end(ds, path: str, size: int) -> Optional[bool]:
    """Whether the last element ends exactly at the end of the file (None: cannot tell).

    pydicom returns what it could read of a truncated file without a word; a
    last element whose declared length runs past the end of the file is
    truncated, and is an error.
    """
    tags = list(ds.keys())
    if not tags:
        return False
    try:
        # key=int: the same tag, compared as plain ints instead of through BaseTag's Python __gt__
        last = max(tags, key=int)
        element = ds.get_item(last, keep_deferred=True)  # pydicom >= 3 would read a deferred value
    except TypeError:
        element = ds.get_item(last)
    length, offset = getattr(element, "length", None), getattr(element, "value_tell", None)
    if length is None or offset is None or length == 0xFFFFFFFF:
        return None
    end = offset + length
    if end > size:
        keyword = _keyword(element.tag)
        pixels = keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
        error = PixelDataError if pixels else InvalidDatasetError
        raise error(f"the file is truncated: {keyword} needs {length} bytes at offset {offset}, the file has "
                    f"{size - offset}", filename=path, attribute=keyword)
    return end == size


def _keyword(tag) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or str(tag)


def _frame_count(ds, path: str) -> int:
    from .image import _get

    value = _get(ds, "NumberOfFrames", 1)
    try:
        frames = int(value if value not in (None, "") else 1)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"NumberOfFrames must be an integer, got {value!r}", filename=path,
                                  attribute="NumberOfFrames") from None
    if frames < 1:
        raise InvalidDatasetError(f"NumberOfFrames must be >= 1, got {frames}", filename=path,
                                  attribute="NumberOfFrames")
    return frames


def _selected_frames(frames: int, selection, path: str) -> List[int]:
    if frames == 1:  # the selection is about multi-frame files
        return [0]
    if selection == "all":
        return list(range(frames))
    if selection == "first":
        return [0]
    if not 0 <= int(selection) < frames:
        raise InvalidDatasetError(f"frame {selection} out of range: NumberOfFrames is {frames}", filename=path,
                                  attribute="NumberOfFrames")
    return [int(selection)]


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


def _complete(path: str, suffix: str) -> bool:
    """True when ``path`` is a regular file holding a whole JPEG or PNG stream (not a symlink)."""
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


def _write_output(path: str, data: bytes, fsync: bool) -> None:
    """Make ``path`` hold ``data``, never a part of it, even if the process is killed meanwhile.

    On Linux the bytes go to an unnamed file (``O_TMPFILE``) that gets a name
    only once complete: ``path`` itself when it is new, else a temporary name
    renamed over ``path``.  Elsewhere they go to a named temporary file (which
    the next run removes if this one is killed), renamed over ``path``.
    """
    folder = os.path.dirname(path)
    named = _write_unnamed(folder, path, data, fsync) if _O_TMPFILE_WORKS else None
    if named == path:
        return
    temp = named
    if named is None:
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


def convert_file(task: ConvertTask, options: ConvertOptions) -> ConvertRecord:
    """Convert one file: the unit of work of every executor (serial, process pool, dask).

    Parameters
    ----------
    task : ConvertTask
        The input file and its output name.
    options : ConvertOptions
        The batch's rendering and writing options.

    Returns
    -------
    ConvertRecord
        Never raises for a bad file: the record says what went wrong.

    Notes
    -----
    Warnings raised while reading and rendering (odd header values pydicom
    tolerates) go to the record's message instead of the terminal.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            record = _convert_file(task, options)
        if caught and not record.message:
            texts = list(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
            text = "; ".join(texts[:3]) + (f"; and {len(texts) - 3} more warnings" if len(texts) > 3 else "")
            record = dataclasses.replace(record, message=f"warning: {text}")
        return record
    except NotDicomError as exc:
        return ConvertRecord(task.source, SKIPPED, error=type(exc).__name__, message=exc.detail)
    except Exception as exc:
        message = exc.detail if isinstance(exc, DicomRenderError) and exc.filename == task.path else str(exc)
        return ConvertRecord(task.source, FAILED, error=type(exc).__name__, message=message or repr(exc))


def _convert_file(task: ConvertTask, options: ConvertOptions) -> ConvertRecord:
    from .image import _PIXEL_KEYWORDS, _has
    from .render import encode_image, render

    # Unless an output of this file exists already, it is going to be rendered: read it in one go.
    first = os.path.join(options.outdir, task.stem)
    new = options.overwrite or not any(os.path.lexists(first + end + options.suffix) for end in ("", "_0001"))
    ds, size = _read(task.path, whole=new)
    complete = _parsed_to_end(ds, task.path, size)
    if not any(_has(ds, keyword) for keyword, _ in _PIXEL_KEYWORDS):
        meta = getattr(ds, "file_meta", None)
        sop = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta is not None else None)
        if complete is not False and sop and "Rows" not in ds:  # e.g. a structured report, a DICOMDIR
            name = getattr(sop, "name", "") or str(sop)
            return ConvertRecord(task.source, SKIPPED, error="NoImage",
                                 message=f"DICOM object without Pixel Data (SOP Class {name})")
        raise PixelDataError("no Pixel Data (7FE0,0010): the file is truncated or holds no image",
                             filename=task.path, attribute="PixelData")
    count = _frame_count(ds, task.path)
    indices = _selected_frames(count, options.frames, task.path)
    suffix = options.suffix
    if count == 1:
        names = [task.stem + suffix]
    else:
        names = [f"{task.stem}_{i + 1:04d}{suffix}" for i in indices]
    targets = [output_target(options.outdir, name) for name in names]
    for target in targets:
        if options.protected and os.path.realpath(target) in options.protected:
            raise OutputPathError(f"output {target!r} would replace an input file", attribute="output")
    todo = [k for k, target in enumerate(targets) if options.overwrite or not _complete(target, suffix)]
    frames = tuple(i + 1 for i in indices) if count > 1 else ()
    record = ConvertRecord(task.source, OK, tuple(names), frames, written=tuple(names[k] for k in todo))
    if not todo:
        return record
    kwargs = dict(window=options.window, strict=options.strict, threads=options.threads)
    preset = list(options.preset) if isinstance(options.preset, tuple) else options.preset
    if count == 1:
        images = {0: render(ds, preset, **kwargs)}
    elif options.frames == "all":
        # All frames in one call, even when a rerun misses only some: windows computed from the
        # pixels (min-max...) then cover the whole file, the same in every run.
        stack = render(ds, preset, **kwargs)
        images = {k: stack[indices[k]] for k in todo}
    else:
        images = {0: render(ds, preset, frame=indices[0], **kwargs)}
    fmt = "PNG" if suffix == ".png" else "JPEG"
    for k in todo:
        data = encode_image(images[k], fmt, quality=options.quality, compress_level=options.compress_level)
        _write_output(targets[k], data, options.fsync)
    return record


# ---- walking -------------------------------------------------------------------


def _output_stem(relative: str) -> str:
    root, ext = os.path.splitext(relative)
    return root if ext.lower() in DICOM_SUFFIXES else relative


def collect_tasks(sources: Iterable, outdir: str) -> Tuple[List[ConvertTask], List[ConvertRecord], frozenset]:
    """The input files of ``sources`` in a stable order, records for names that collide, and the
    inputs that lie inside ``outdir`` (which no output may replace).

    A folder contributes every file below it (symlinked folders are not
    followed, the output folder is not entered); a file contributes itself.
    """
    tasks, collisions, seen, protected = [], [], {}, set()
    outdir_real = os.path.realpath(outdir)

    def add(path, source, relative, check, absolute=None):
        if check:  # only a file named on the command line, or a symlink, can be inside outdir
            real = os.path.realpath(path)
            if os.path.commonpath([real, outdir_real]) == outdir_real:
                protected.add(real)
        stem = _output_stem(relative)
        key = os.path.normcase(stem)
        if key in seen:
            collisions.append(ConvertRecord(source, FAILED, error=OutputPathError.__name__,
                                            message=f"output name {stem!r} is already used by {seen[key]}"))
            return
        seen[key] = source
        tasks.append(ConvertTask(absolute or os.path.abspath(path), source, stem))

    for src in sources:
        src = os.fspath(src)
        if not os.path.exists(src):
            raise FileNotFoundError(f"no such file or folder: {src!r}")
        if not os.path.isdir(src):
            add(src, src, os.path.basename(src), True)
            continue
        real = os.path.realpath(src)
        if os.path.commonpath([real, outdir_real]) == outdir_real:
            raise ValueError(f"the output folder {outdir!r} is, or contains, the source folder {src!r}: "
                             f"outputs could replace inputs")
        for folder, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(d for d in dirnames
                                 if os.path.realpath(os.path.join(folder, d)) != outdir_real)
            # Folder-relative and absolute names once per folder, not per file: a file name has no
            # separator, "." or "..", so joining it to them gives what relpath/abspath of the file would.
            relative_folder = os.path.relpath(folder, src)
            absolute_folder = os.path.abspath(folder)
            for name in sorted(filenames):
                path = os.path.join(folder, name)
                relative = name if relative_folder == os.curdir else os.path.join(relative_folder, name)
                add(path, path, relative, os.path.islink(path), os.path.join(absolute_folder, name))
    return tasks, collisions, frozenset(protected)


def _frame_name_clashes(tasks: List[ConvertTask], frames) -> Tuple[List[ConvertTask], List[ConvertRecord]]:
    """Take out files whose output name is also that of a frame of a multi-frame file.

    ``x_0002.dcm`` gives ``x_0002.jpg``, and so does frame 2 of a multi-frame
    ``x.dcm``: the file whose name ends in a frame number fails, so that each
    output has one source.  Only such pairs have their header read here.
    """
    import re

    import pydicom

    by_stem = {os.path.normcase(t.stem): t for t in tasks}
    clashes = {}
    for task in tasks:
        match = re.fullmatch(r"(.+)_(\d{4})", task.stem)
        base = by_stem.get(os.path.normcase(match.group(1))) if match else None
        if base is None or not os.path.isfile(base.path):  # never open a FIFO
            continue
        try:
            count = _frame_count(pydicom.dcmread(base.path, stop_before_pixels=True, force=True), base.path)
            numbers = [i + 1 for i in _selected_frames(count, frames, base.path)] if count > 1 else []
        except Exception:  # not DICOM, or broken: it gives no frame names (its own record says why)
            continue
        if int(match.group(2)) in numbers:
            clashes[task.path] = ConvertRecord(task.source, FAILED, error=OutputPathError.__name__,
                                               message=f"output name {task.stem!r} is also frame "
                                                       f"{int(match.group(2))} of {base.source}")
    return [t for t in tasks if t.path not in clashes], list(clashes.values())


def _remove_stale_temporaries(outdir: str) -> int:
    removed = 0
    for folder, _, filenames in os.walk(outdir):
        for name in filenames:
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                _unlink(os.path.join(folder, name))
                removed += 1
    return removed


# ---- executors -----------------------------------------------------------------

Done = Callable[[int, ConvertRecord], None]


def _run_serial(tasks: List[ConvertTask], options: ConvertOptions, done: Done) -> None:
    for index, task in enumerate(tasks):
        done(index, convert_file(task, options))


def _worker_main(conn, options: ConvertOptions) -> None:
    # Ctrl-C goes to the whole process group: the parent decides, workers just stop with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send(_READY)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if item is None:
            return
        index, task = item
        conn.send((index, convert_file(task, options)))


class _Worker:
    """A worker process and the files sent to it, in the order it converts them."""

    def __init__(self, context, options):
        import multiprocessing

        self.conn, child = multiprocessing.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, options), daemon=True)
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking with native threads; see _pool_context for why it is safe here.
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            self.process.start()
        child.close()
        self.queue: deque = deque()  # (index, task); the first is being converted
        self.started = 0.0  # when the first of the queue started

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait for the worker's first message; a worker that cannot start stops the batch."""
        from multiprocessing.connection import wait

        message = None
        if wait([self.conn], timeout):
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                pass
        if message != _READY:
            self.kill()
            raise RuntimeError(
                f"a worker process could not start (it {_exit_description(self.process.exitcode)}). A script that "
                f"calls convert() must do so under `if __name__ == \"__main__\":`, because worker processes "
                f"import it; jobs=1 converts without worker processes")

    def send(self, index, task):
        if not self.queue:
            self.started = time.monotonic()
        self.queue.append((index, task))
        self.conn.send((index, task))

    def kill(self):
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


_READY = "ready"


_PRELOAD = ["dicomrender.convert", "dicomrender.render", "PIL.Image", "PIL.JpegImagePlugin", "PIL.PngImagePlugin"]


def _pool_context():
    """The multiprocessing context for a new worker.

    A fork is cheapest and, when this process runs no other Python thread,
    safe: no lock can be copied in a locked state.  Native threads (BLAS,
    the kernel's OpenMP pool) do not matter, because workers render with one
    kernel thread and never enter a parallel region.  With other Python
    threads (a dask client, a web server...) workers fork from a forkserver,
    a clean process started once; its workers re-import the main script,
    which cannot work for code read from stdin: fork then anyway.
    """
    import importlib
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    main = sys.modules.get("__main__")
    main_path = getattr(main, "__file__", None)
    unimportable_main = (main_path is not None and getattr(getattr(main, "__spec__", None), "name", None) is None
                         and not os.path.isfile(main_path))
    if "fork" in methods and (threading.active_count() == 1 or unimportable_main):
        for name in _PRELOAD:  # imported once here rather than in every worker
            importlib.import_module(name)
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def _exit_description(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


#: Files queued per worker: the next one waits in the pipe while the worker converts the current
#: one, so a worker never idles for a round trip to this process.
_QUEUE_DEPTH = 2


def _run_pool(tasks: List[ConvertTask], options: ConvertOptions, jobs: int, timeout: Optional[float],
              done: Done) -> None:
    """Run ``tasks`` on ``jobs`` worker processes.

    A worker whose current file takes longer than ``timeout`` seconds is
    killed and replaced; a worker that dies is replaced; either way that file
    gets a ``failed`` record, the files queued behind it go to other workers,
    and the batch goes on.
    """
    from multiprocessing.connection import wait

    context = _pool_context()
    pending = deque(enumerate(tasks))
    workers: List[_Worker] = []
    try:
        workers.extend(_Worker(context, options) for _ in range(min(jobs, len(tasks))))
        for w in workers:
            w.wait_ready()
        while pending or any(w.queue for w in workers):
            for w in workers:
                while pending and len(w.queue) < _QUEUE_DEPTH:
                    w.send(*pending.popleft())
            busy = [w for w in workers if w.queue]
            wait_for = None
            if timeout is not None:
                wait_for = max(0.0, min(w.started + timeout for w in busy) - time.monotonic())
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], wait_for))
            for position, w in enumerate(workers):
                if not w.queue:
                    continue
                died = w.process.sentinel in ready
                try:
                    while w.queue and w.conn.poll():
                        index, record = w.conn.recv()
                        w.queue.popleft()
                        w.started = time.monotonic()
                        done(index, record)
                except (EOFError, OSError):
                    died = True
                if not w.queue:
                    continue
                index, task = w.queue[0]
                if died:
                    w.process.join()
                    failure = ConvertRecord(task.source, FAILED, error="WorkerDiedError",
                                            message=f"the worker process {_exit_description(w.process.exitcode)} "
                                                    f"while converting this file")
                elif timeout is not None and time.monotonic() - w.started >= timeout:
                    failure = ConvertRecord(task.source, FAILED, error="TimeoutError",
                                            message=f"no result after {timeout:g} s; the worker was stopped")
                else:
                    continue
                w.kill()
                w.queue.popleft()
                pending.extendleft(reversed(w.queue))  # the files queued behind it go first
                workers[position] = _Worker(_pool_context(), options)
                done(index, failure)
                workers[position].wait_ready()
    finally:
        for w in workers:
            if not w.queue and w.process.is_alive():
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for w in workers:
            if not w.queue:
                w.process.join(max(0.0, deadline - time.monotonic()))
            w.kill()


#: Most files converted by one dask task.
_DASK_CHUNK = 16


def convert_files(tasks: Sequence[ConvertTask], options: ConvertOptions) -> List[ConvertRecord]:
    """:func:`convert_file` for each task, in order (one cluster task)."""
    return [convert_file(task, options) for task in tasks]


def _run_dask(tasks: List[ConvertTask], options: ConvertOptions, scheduler, jobs: int, done: Done) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError("scheduler= needs dask.distributed: pip install 'dicomrender[dask]'") from None
    cluster = None
    if hasattr(scheduler, "submit"):
        client, own_client = scheduler, False
    else:
        if scheduler == "local":
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(scheduler)
        own_client = True
    try:
        # A few files per cluster task: the scheduler's cost per task is of the order of a file's
        # conversion; at least 4 tasks per worker thread keep the load balanced.
        threads = max(1, sum(client.nthreads().values()))
        size = max(1, min(_DASK_CHUNK, len(tasks) // (4 * threads)))
        futures = {}
        for start in range(0, len(tasks), size):
            indices = range(start, min(start + size, len(tasks)))
            future = client.submit(convert_files, [tasks[i] for i in indices], options, pure=False)
            futures[future] = indices
        for future in as_completed(futures):
            indices = futures[future]
            try:
                records = future.result()
            except Exception as exc:  # convert_files never raises: this is the cluster (KilledWorker...)
                message = str(exc) or repr(exc)
                if len(indices) > 1:
                    message += f" (a cluster task converting {len(indices)} files)"
                records = [ConvertRecord(tasks[i].source, FAILED, error=type(exc).__name__, message=message)
                           for i in indices]
            for index, record in zip(indices, records):
                done(index, record)
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


# ---- the API -------------------------------------------------------------------


def _check_options(preset, window, format, quality, compress_level, frames, jobs, timeout, scheduler):
    from .presets import get_preset
    from .windowing import Window

    if format.lower() not in _FORMATS:
        raise ValueError(f"format must be jpeg or png, got {format!r}")
    if preset is not None and window is not None:
        raise ValueError("give either preset or window, not both")
    names = None
    if preset is not None:
        names = (preset,) if isinstance(preset, str) else tuple(preset)
        if len(names) not in (1, 3):
            raise ValueError(f"give one preset, or three for an RGB image; got {len(names)}")
        for name in names:
            get_preset(name)
        names = names[0] if len(names) == 1 else names
    if window is not None:
        center, width = window
        Window(center, width)  # validates
        window = (float(center), float(width))
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
    return names, window, frames


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
    preset, window, frames = _check_options(preset, window, format, quality, compress_level, frames, jobs, timeout,
                                            scheduler)
    jobs = int(jobs) if jobs is not None else _usable_cores()
    tasks, collisions, protected = collect_tasks(sources, outdir)
    tasks, clashes = _frame_name_clashes(tasks, frames)
    collisions += clashes
    os.makedirs(outdir, exist_ok=True)
    outdir_real = os.path.realpath(outdir)
    _remove_stale_temporaries(outdir_real)
    options = ConvertOptions(outdir_real, preset, window, format.lower(), int(quality), int(compress_level), frames,
                             bool(overwrite), bool(fsync), bool(strict), threads=1, protected=protected)
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
            _run_dask(tasks, options, scheduler, jobs, done)
        elif jobs == 1 and timeout is None:
            _run_serial(tasks, options, done)
        else:
            _run_pool(tasks, options, jobs, timeout, done)
    finally:
        if bar is not None:
            bar.close()
    result = ConvertReport([r for r in records if r is not None] + collisions, outdir_real,
                           time.monotonic() - started)
    result.records.sort(key=lambda r: r.source)
    if report is not None:
        result.write_csv(report)
    return result


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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


# ---- the command line ----------------------------------------------------------


def add_command(subparsers) -> None:
    """Add the ``convert`` subcommand to the ``dicomrender`` command line."""
    import argparse

    p = subparsers.add_parser(
        "convert", help="convert DICOM files and folder trees to JPEG/PNG (parallel, resumable)",
        description="Convert DICOM files and folder trees to JPEG or PNG under OUTDIR, mirroring the layout. "
                    "Exit status: 0 all converted (non-DICOM files are skipped), 1 some failed, 2 bad usage.")
    p.add_argument("sources", nargs="+", metavar="SRC", help="DICOM files and folders (recognised by content)")
    p.add_argument("-o", "--outdir", required=True, help="output folder")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--preset", help="preset name, or NAME,NAME,NAME for an RGB image")
    choice.add_argument("--window", nargs=2, type=float, metavar=("C", "W"), help="window centre and width")
    p.add_argument("--format", choices=("jpeg", "png"), type=str.lower, default="jpeg", help="default: jpeg")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100 (default 95)")
    p.add_argument("--compress-level", type=int, default=6, help="PNG compression level 0-9 (default 6)")
    p.add_argument("--frames", default="all", metavar="all|first|N",
                   help="frames of multi-frame files: all (default), first, or one 0-based index")
    p.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: all cores; 1: serial)")
    p.add_argument("--scheduler", metavar="ADDRESS|local",
                   help="run on a dask.distributed cluster (needs dicomrender[dask])")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds one file may take in a worker before it is recorded as failed")
    p.add_argument("--overwrite", action="store_true", help="rewrite existing outputs (default: keep complete ones)")
    p.add_argument("--fsync", action="store_true", help="flush each image to disk before naming it (slower)")
    p.add_argument("--report", metavar="CSV", help="write the per-file report as CSV")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    p.add_argument("--no-strict", dest="strict", action="store_false",
                   help="allow HU presets on images without Hounsfield units")
    p.set_defaults(handler=_cmd_convert)
    del argparse


def _cmd_convert(args) -> int:
    from .cli import preset_arg
    from .errors import UnknownPresetError

    try:
        result = convert(args.sources, args.outdir, preset=preset_arg(args.preset), window=args.window,
                         format=args.format, quality=args.quality, compress_level=args.compress_level,
                         frames=args.frames, jobs=args.jobs, scheduler=args.scheduler, overwrite=args.overwrite,
                         report=args.report, progress=False if args.quiet else None, timeout=args.timeout,
                         fsync=args.fsync, strict=args.strict)
    except (FileNotFoundError, UnknownPresetError, ValueError, ImportError) as exc:
        print(f"dicomrender convert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dicomrender convert: interrupted; rerun the same command to finish", file=sys.stderr)
        return 130
    for record in result.failed:
        print(f"failed: {record.source}: {record.error}: {record.message}", file=sys.stderr)
    if not args.quiet:
        print(result.summary(), file=sys.stderr)
    return result.exit_status
