"""The unit of work of every executor: one input file to its output images (or one animation) and one record."""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Dict

from .. import rendering
from ..dicom.header import frame_count, has_pixel_data
from ..dicom.icc import icc_profile
from ..dicom.source import parsed_to_end, read_file
from ..dicom.timing import frame_durations
from ..display.icc import apply_iccprofile
from ..errors import DicomRenderError, NotDicomError, OutputPathError, PixelDataError
from ..io import is_complete_image, output_target, write_animation, write_image
from .model import FAILED, OK, SKIPPED, ConvertOptions, ConvertRecord, ConvertTask
from .walk import output_names, selected_frames

__all__ = ["convert_file", "plan_file"]


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
    return _guarded(_convert_file, task, options)


def plan_file(task: ConvertTask, options: ConvertOptions) -> ConvertRecord:
    """The record :func:`convert_file` would give, from the header alone and writing nothing.

    ``ok`` with the output names and frame numbers the file would have, or
    the ``skipped`` / ``failed`` record of a file that gives no image (which is
    then final: the file is not read again).  Run by workers, never by the
    batch's own process, for the files whose frame names another file's name
    could take (``walk.settle_frame_names``).
    """
    return _guarded(_plan_file, task, options)


def _guarded(function, task: ConvertTask, options: ConvertOptions) -> ConvertRecord:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            record = function(task, options)
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


def _read(task: ConvertTask, options: ConvertOptions, whole: bool):
    """``(dataset, frame count, selected 0-based frames, output names)``, or the record of a file without
    an image."""
    ds, size = read_file(task.path, whole=whole)
    complete = parsed_to_end(ds, task.path, size)
    if not has_pixel_data(ds):
        meta = getattr(ds, "file_meta", None)
        sop = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta is not None else None)
        if complete is not False and sop and "Rows" not in ds:  # e.g. a structured report, a DICOMDIR
            name = getattr(sop, "name", "") or str(sop)
            return ConvertRecord(task.source, SKIPPED, error="NoImage",
                                 message=f"DICOM object without Pixel Data (SOP Class {name})")
        raise PixelDataError("no Pixel Data (7FE0,0010): the file is truncated or holds no image",
                             filename=task.path, attribute="PixelData")
    count = frame_count(ds, task.path)
    indices = selected_frames(count, options.frames, task.path)
    names = output_names(task.stem, count, indices, options.suffix, options.animated)
    for name in names:
        stem = os.path.normcase(name[:-len(options.suffix)])
        if stem in task.reserved:
            raise OutputPathError(f"output {name!r} belongs to another input file of the batch (this file "
                                  f"changed since its frame names were planned)", attribute="output")
    return ds, count, indices, names


def _plan_file(task: ConvertTask, options: ConvertOptions) -> ConvertRecord:
    read = _read(task, options, whole=False)
    if isinstance(read, ConvertRecord):
        return read
    _, count, indices, names = read
    return ConvertRecord(task.source, OK, tuple(names), _frame_numbers(count, indices, options))


def _frame_numbers(count: int, indices, options: ConvertOptions) -> tuple:
    """The 1-based frame number of each output: one per image of a multi-frame file, none for an animation."""
    return tuple(i + 1 for i in indices) if count > 1 and not options.animated else ()


def _convert_file(task: ConvertTask, options: ConvertOptions) -> ConvertRecord:
    # Unless an output of this file exists already, it is going to be rendered: read it in one go.
    first = os.path.join(options.outdir, task.stem)
    new = options.overwrite or not any(os.path.lexists(first + end + options.suffix) for end in ("", "_0001"))
    read = _read(task, options, whole=new)
    if isinstance(read, ConvertRecord):
        return read
    ds, count, indices, names = read
    suffix = options.suffix
    targets = [output_target(options.outdir, name) for name in names]
    for target in targets:
        if options.protected and os.path.realpath(target) in options.protected:
            raise OutputPathError(f"output {target!r} would replace an input file", attribute="output")
    animated = options.animated
    expected = len(indices) if animated else None  # the frames an animation must hold to be complete
    todo = [k for k, target in enumerate(targets)
            if options.overwrite or not is_complete_image(target, suffix, expected)]
    record = ConvertRecord(task.source, OK, tuple(names), _frame_numbers(count, indices, options),
                           written=tuple(names[k] for k in todo))
    if not todo:
        return record
    # rendering.render, looked up per call: a wrapper installed on the module (tests, profilers) is used.
    render = rendering.render
    kwargs: Dict[str, Any] = dict(window=options.window, strict=options.strict, threads=options.threads,
                                  max_memory=options.max_memory, viewport=options.viewport)
    preset = list(options.preset) if isinstance(options.preset, tuple) else options.preset
    if count == 1:
        images = {0: render(ds, preset, **kwargs)}
    elif options.frames == "all":
        # All frames in one call, even when a rerun misses only some: windows computed from the
        # pixels (min-max...) then cover the whole file, the same in every run.
        stack = render(ds, preset, **kwargs)
        images = {0: stack} if animated else {k: stack[indices[k]] for k in todo}
    else:
        images = {0: render(ds, preset, frame=indices[0], **kwargs)}
    profile = icc_profile(ds) if options.iccprofile != "no" else None
    if animated:  # one file: every selected frame, each shown for its duration from the header
        frames = images[0] if len(indices) > 1 else images[0][None]
        pixels, embed = apply_iccprofile(frames, options.iccprofile, profile, rgb=frames.ndim == 4)
        write_animation(pixels, targets[0], frame_durations(ds, indices), quality=options.quality,
                        compress_level=options.compress_level, icc_profile=embed, fsync=options.fsync,
                        lossless=options.lossless)
        return record
    for k in todo:
        image, embed = apply_iccprofile(images[k], options.iccprofile, profile)
        write_image(image, targets[k], quality=options.quality, compress_level=options.compress_level,
                    icc_profile=embed, fsync=options.fsync)
    return record
