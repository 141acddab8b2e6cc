"""The input files of a batch and the names of their outputs.

Sources are walked in a stable order; each input file gets an output stem
(its path relative to its source folder, ``.dcm`` and the like removed) and
one output name per rendered frame (``stem_0001``... for multi-frame files).
Names that two inputs would share are refused up front, as records.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from ..dicom.header import frame_count
from ..dicom.source import read_file
from ..errors import InvalidDatasetError, OutputPathError
from .model import FAILED, ConvertRecord, ConvertTask

__all__ = ["DICOM_SUFFIXES", "collect_tasks", "frame_name_clashes", "output_names", "selected_frames"]

#: Suffixes replaced by the image suffix; any other name keeps its suffix (``1.2.840.113619.2.1`` stays whole).
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
#: A stem that could also be the output name of a frame of a multi-frame file.
_FRAME_NAME = re.compile(r"(.+)_(\d{4})")


def _output_stem(relative: str) -> str:
    root, ext = os.path.splitext(relative)
    return root if ext.lower() in DICOM_SUFFIXES else relative


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


def output_names(stem: str, frames: int, indices: Sequence[int], suffix: str) -> List[str]:
    """The output names of the selected frames (0-based ``indices``) of a file of ``frames`` frames."""
    if frames == 1:
        return [stem + suffix]
    return [f"{stem}_{i + 1:04d}{suffix}" for i in indices]


def collect_tasks(sources: Iterable, outdir: str) -> Tuple[List[ConvertTask], List[ConvertRecord], frozenset]:
    """The input files of ``sources`` in a stable order, records for names that collide, and the
    inputs that lie inside ``outdir`` (which no output may replace).

    A folder contributes every file below it (symlinked folders are not
    followed, the output folder is not entered); a file contributes itself.
    """
    tasks: List[ConvertTask] = []
    collisions: List[ConvertRecord] = []
    seen: Dict[str, str] = {}  # normcase(stem) -> the source using it
    protected: Set[str] = set()
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


def frame_name_clashes(tasks: List[ConvertTask], frames) -> Tuple[List[ConvertTask], List[ConvertRecord]]:
    """Take out files whose output name is also that of a frame of a multi-frame file.

    ``x_0002.dcm`` gives ``x_0002.jpg``, and so does frame 2 of a multi-frame
    ``x.dcm``: the file whose name ends in a frame number fails, so that each
    output has one source.  Only such pairs have their header read here.
    """
    by_stem = {os.path.normcase(t.stem): t for t in tasks}
    clashes = {}
    for task in tasks:
        match = _FRAME_NAME.fullmatch(task.stem)
        base = by_stem.get(os.path.normcase(match.group(1))) if match else None
        if match is None or base is None:
            continue
        try:
            ds, _ = read_file(base.path, whole=False)  # a header read: Pixel Data stays on disk
            count = frame_count(ds, base.path)
            numbers = [i + 1 for i in selected_frames(count, frames, base.path)] if count > 1 else []
        except Exception:  # not DICOM, or broken: it gives no frame names (its own record says why)
            continue
        if int(match.group(2)) in numbers:
            clashes[task.path] = ConvertRecord(task.source, FAILED, error=OutputPathError.__name__,
                                               message=f"output name {task.stem!r} is also frame "
                                                       f"{int(match.group(2))} of {base.source}")
    return [t for t in tasks if t.path not in clashes], list(clashes.values())
