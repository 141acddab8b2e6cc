"""The input files of a batch and the names of their outputs, planned from file names alone.

Sources are walked in a stable order; each input file gets an output stem
(its path relative to its source folder, ``.dcm`` and the like removed) and
one output name per rendered frame (``stem_0001``... for multi-frame files).
This process never opens an input: a file's content (a deflate bomb, a
decoder that hangs) is only ever read by a worker, under its timeout.

One output name, one source:

* two inputs with the same stem: the second fails (:func:`collect_tasks`);
* the same file given twice (directly, or through a symlink) is one input;
* a file whose stem is a frame name of another file's (``x_0002.dcm`` and a
  multi-frame ``x.dcm``) may share an output only if ``x.dcm`` has that frame,
  which only its header tells: :func:`frame_name_candidates` finds such pairs
  by name, workers read the headers of the bases (:func:`~.worker.plan_file`),
  and :func:`settle_frame_names` decides before anything is written.  The
  base keeps its frame and the other file fails; the base is converted with
  the names it must not use, and fails rather than write one of them.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from ..errors import InvalidDatasetError, OutputPathError
from .model import FAILED, OK, SKIPPED, ConvertRecord, ConvertTask

__all__ = ["DICOM_SUFFIXES", "SYMLINKED_FOLDER", "collect_tasks", "frame_name_candidates", "settle_frame_names",
           "output_names", "selected_frames"]

#: Suffixes replaced by the image suffix; any other name keeps its suffix (``1.2.840.113619.2.1`` stays whole).
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
#: A stem that could also be the output name of a frame of a multi-frame file: frame numbers have at
#: least four digits, and more past 9,999 (``x_10000``).
_FRAME_NAME = re.compile(r"(.+)_(\d{4,})")
#: The ``error`` of the record of a symlinked folder met in a source tree.
SYMLINKED_FOLDER = "SymlinkedFolder"


def _output_stem(relative: str) -> str:
    root, ext = os.path.splitext(relative)
    return root if ext.lower() in DICOM_SUFFIXES else relative


def _frame_suffix(number: int) -> str:
    return f"_{number:04d}"


def selected_frames(frames: int, selection, path: str) -> List[int]:
    """The 0-based frames of a file of ``frames`` frames that ``selection`` ("all", "first", index) picks."""
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


def output_names(stem: str, frames: int, indices: Sequence[int], suffix: str, animated: bool = False) -> List[str]:
    """The output names of the selected frames (0-based ``indices``) of a file of ``frames`` frames
    (``animated``: one file holds them all)."""
    if frames == 1 or animated:
        return [stem + suffix]
    return [stem + _frame_suffix(i + 1) + suffix for i in indices]


def collect_tasks(sources: Iterable, outdir: str) -> Tuple[List[ConvertTask], List[ConvertRecord], frozenset]:
    """The input files of ``sources`` in a stable order, the records of inputs that get no task, and the
    inputs that lie inside ``outdir`` (which no output may replace).

    A folder contributes every file below it; a file contributes itself.
    Inputs that get a record instead of a task: a file whose output name
    another file has (``failed``; ``skipped`` when it is that same file met
    again, e.g. a file source inside a folder source), a symlinked folder inside a source folder
    (``skipped``: not followed, so that a link cannot loop or lead outside the
    source; give its target as a source to convert it), a folder that cannot
    be listed (``failed``).  A source given twice (same real path) counts once;
    the output folder is not entered.  Reads names only, never a file.
    """
    tasks: List[ConvertTask] = []
    records: List[ConvertRecord] = []
    seen: Dict[str, Tuple[str, str]] = {}  # normcase(stem) -> (source, path) of the file using it
    protected: Set[str] = set()
    outdir_real = os.path.realpath(outdir)
    sources_seen: Set[str] = set()

    def add(path, source, relative, check, absolute=None):
        if check:  # only a file named on the command line, or a symlink, can be inside outdir
            real = os.path.realpath(path)
            if os.path.commonpath([real, outdir_real]) == outdir_real:
                protected.add(real)
        stem = _output_stem(relative)
        key = os.path.normcase(stem)
        if key in seen:
            first_source, first_path = seen[key]
            if _same_file(path, first_path):  # one file met twice (a file source inside a folder source...)
                records.append(ConvertRecord(source, SKIPPED, error="DuplicateInput",
                                             message=f"the same file as {first_source}, converted once"))
                return
            records.append(ConvertRecord(source, FAILED, error=OutputPathError.__name__,
                                         message=f"output name {stem!r} is already used by {first_source}"))
            return
        seen[key] = (source, path)
        tasks.append(ConvertTask(absolute or os.path.abspath(path), source, stem))

    for src in sources:
        src = os.fspath(src)
        if not os.path.exists(src):
            raise FileNotFoundError(f"no such file or folder: {src!r}")
        real = os.path.realpath(src)
        if real in sources_seen:  # the same source twice: one row, not "ok" and "already used"
            continue
        sources_seen.add(real)
        if not os.path.isdir(src):
            add(src, src, os.path.basename(src), True)
            continue
        if os.path.commonpath([real, outdir_real]) == outdir_real:
            raise ValueError(f"the output folder {outdir!r} is, or contains, the source folder {src!r}: "
                             f"outputs could replace inputs")

        def unlisted(error: OSError, top: str = src) -> None:
            folder = error.filename if isinstance(error.filename, str) else top
            records.append(ConvertRecord(folder, FAILED, error=type(error).__name__,
                                         message=f"folder not read: {error.strerror or error}"))

        for folder, dirnames, filenames in os.walk(src, onerror=unlisted):
            kept = []
            for d in sorted(dirnames):
                path = os.path.join(folder, d)
                if os.path.islink(path):
                    records.append(ConvertRecord(
                        path, SKIPPED, error=SYMLINKED_FOLDER,
                        message=f"symlinked folder not followed (-> {os.readlink(path)}): a link could loop or "
                                f"lead outside the source; give its target as a source to convert it"))
                elif os.path.realpath(path) != outdir_real:
                    kept.append(d)
            dirnames[:] = kept
            # Folder-relative and absolute names once per folder, not per file: a file name has no
            # separator, "." or "..", so joining it to them gives what relpath/abspath of the file would.
            relative_folder = os.path.relpath(folder, src)
            absolute_folder = os.path.abspath(folder)
            for name in sorted(filenames):
                path = os.path.join(folder, name)
                relative = name if relative_folder == os.curdir else os.path.join(relative_folder, name)
                add(path, path, relative, os.path.islink(path), os.path.join(absolute_folder, name))
    return tasks, records, frozenset(protected)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def frame_name_candidates(tasks: Sequence[ConvertTask]) -> Dict[int, List[Tuple[int, int]]]:
    """Pairs of files that could share an output name, from their names alone.

    Returns ``{base: [(other, frame number), ...]}`` (indices into ``tasks``):
    frame ``number`` of ``tasks[base]``, if it is a multi-frame file, would
    have the output name of the single-frame ``tasks[other]``.  ``x_0002`` and
    ``x_10000`` match frames 2 and 10,000 of ``x``; ``x_2`` and ``x_00002`` match
    nothing (frame numbers have four digits, or as many as they need).
    """
    by_stem = {os.path.normcase(t.stem): i for i, t in enumerate(tasks)}
    candidates: Dict[int, List[Tuple[int, int]]] = {}
    for i, task in enumerate(tasks):
        match = _FRAME_NAME.fullmatch(task.stem)
        if match is None:
            continue
        number = int(match.group(2))
        base = by_stem.get(os.path.normcase(match.group(1)))
        if base is not None and _frame_suffix(number) == "_" + match.group(2):
            candidates.setdefault(base, []).append((i, number))
    return candidates


def settle_frame_names(tasks: Sequence[ConvertTask], candidates: Dict[int, List[Tuple[int, int]]],
                       plans: Dict[int, ConvertRecord]) -> Tuple[Dict[int, ConvertRecord], Dict[int, frozenset]]:
    """Decide who writes each name of :func:`frame_name_candidates`, before anything is written.

    ``plans``: the record :func:`~.worker.plan_file` gave for each base (its
    frame numbers, or why it gives no image).  Returns the final records of
    tasks that are not to be converted (a base whose plan failed or was
    skipped: it ran once; a file whose name is a frame of its base) and, for
    each base to convert, the normcased stems it must not write (its other
    files' names, in case it changed since its plan).
    """
    final: Dict[int, ConvertRecord] = {}
    reserved: Dict[int, frozenset] = {}
    # Shorter stems first: "x" decides about "x_0002" before "x_0002" decides about "x_0002_0001".
    for base in sorted(candidates, key=lambda i: len(tasks[i].stem)):
        if base in final:  # it lost its own name to its base: it writes nothing, frees its frame names
            continue
        plan = plans[base]
        if plan.status != OK:
            final[base] = plan
            continue
        frames = set(plan.frames)
        kept = []
        for other, number in candidates[base]:
            if number in frames:
                final[other] = ConvertRecord(tasks[other].source, FAILED, error=OutputPathError.__name__,
                                             message=f"output name {tasks[other].stem!r} is also frame {number} "
                                                     f"of {tasks[base].source}")
            else:
                kept.append(os.path.normcase(tasks[other].stem))
        reserved[base] = frozenset(kept)
    return final, reserved
