"""Orchestration of one render: read the header, choose the windows, run the engine, deliver.

``render(src, ...)`` is the whole path from a DICOM source to uint8 pixels: the reading layer
(:mod:`dicomrender.dicom`) describes the image and its frames, the presets
(:mod:`dicomrender.presets`) choose one VOI per output channel for each run of frames that share
their header parameters, and the engine (:mod:`dicomrender.engine`) renders the stored words in
one fused pass per run.  ``save`` adds the file writer (:mod:`dicomrender.io`).
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ._types import VOI, Rescale, Window
from .dicom.color import render_colour
from .dicom.header import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS, FrameParameters, ImageInfo, frame_count
from .dicom.pixels import read_frames
from .dicom.source import read_dataset
from .engine import MAX_WINDOWS, prepare_out, render_stored
from .engine.dispatch import overlaps
from .engine.threads import check_threads
from .errors import DicomRenderError, InvalidArgumentError, UnsupportedImageError
from .io import check_channels, check_encoding, image_format, write_image
from .presets import RenderContext, resolve
from .presets.lookup import check_options, explicit_window

__all__ = ["render", "save", "context_for", "RENDER_OPTIONS"]

#: The ``render(**options)`` the renderer reads itself; the others must be read by a preset in use.
RENDER_OPTIONS = frozenset({"colour_window"})


@functools.lru_cache(maxsize=None)
def _parameters(function) -> Tuple[str, ...]:
    """The named parameters of ``function`` (for the closest match to a misspelled keyword)."""
    return tuple(name for name, p in inspect.signature(function).parameters.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _check_options(function, preset, window, options) -> None:
    """Refuse ``**options`` no preset in use reads: ``window=`` uses none, ``preset=None`` the header's."""
    check_options(function.__name__, preset if window is None else (), options, RENDER_OPTIONS,
                  _parameters(function) + (_parameters(render) if function is not render else ()))


def context_for(info: ImageInfo, parameters: FrameParameters, words: np.ndarray, strict: bool = True,
                options: Optional[dict] = None) -> RenderContext:
    """The :class:`RenderContext` a preset sees for frames ``words`` of the image ``info``."""
    return RenderContext(info.dataset, words, info.format, parameters.modality, parameters.windows,
                         parameters.voi_luts, info.modality_name, parameters.hounsfield, info.pixel_padding,
                         strict, dict(options or {}))


def _resolve(preset, window, function, ctx: RenderContext) -> List[VOI]:
    explicit = explicit_window(preset, window, function)
    if explicit is not None:
        return [explicit]
    vois = resolve(preset, ctx, MAX_WINDOWS)
    if function is not None:
        vois = [Window(v.center, v.width, function, v.explanation) if isinstance(v, Window) else v for v in vois]
    return vois


def render(src, preset: Union[str, Sequence[str], None] = None, *, window: Optional[Sequence[float]] = None,
           function: Optional[str] = None, invert: Optional[bool] = None, frame: Optional[int] = None,
           out: Optional[np.ndarray] = None, strict: bool = True, threads: Optional[int] = None,
           max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, max_memory: Optional[int] = DEFAULT_MAX_MEMORY,
           **options) -> np.ndarray:
    """Render DICOM pixel data to a uint8 display image.

    Parameters
    ----------
    src : pydicom.Dataset, str, os.PathLike or binary file-like
        The image.
    preset : str or sequence of str, optional
        A registered preset name (``"brain"``, ``"lung"``, ``"header"``,
        ``"auto"``...), or several for one output channel each.  Default: the
        file's own window (first value), else a min-max window.
    window : (center, width), optional
        An explicit window; overrides presets.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}, optional
        VOI LUT Function; default the header's, else LINEAR.
    invert : bool, optional
        Force or suppress inversion; default MONOCHROME1 / Presentation LUT
        Shape INVERSE.
    frame : int, optional
        One frame (0-based) of a multi-frame image; default all frames.
    out : numpy.ndarray, optional
        A uint8 buffer of the output shape to write into.
    strict : bool
        Refuse presets on images they are not meant for (HU presets on non-CT).
    threads : int, optional
        Kernel threads (default :func:`dicomrender.get_threads`).
    max_pixels : int, optional
        Refuse images with more pixels (rows x columns x frames x samples)
        than this, before decoding anything (decompression bombs), with
        :class:`dicomrender.PixelLimitError`.  Default ``2**31``
        (``dicomrender.DEFAULT_MAX_PIXELS``); ``None``: no limit.
    max_memory : int, optional
        Refuse renders whose peak memory, estimated from the header (output,
        decoded pixels held, working blocks; not the data set itself), exceeds
        this many bytes, before decoding or allocating them, with
        :class:`dicomrender.PixelLimitError` (``attribute="max_memory"``).
        Default ``4 * 2**30`` (4 GiB); ``None``: no limit.
    **options
        Passed to presets, e.g. ``voi_index=1`` or ``voi_explanation="BONE"``
        for the header window; ``colour_window=True`` lets ``window=`` window
        each channel of a colour image.  An option that no preset in use
        reads (:attr:`Preset.options`) raises :class:`TypeError`, as a
        misspelled keyword does.

    Returns
    -------
    numpy.ndarray
        uint8 ``(rows, cols)`` for one frame, ``(frames, rows, cols)`` for all
        frames of a multi-frame image; a trailing axis of 3 for several presets
        and for colour images (RGB).

    Raises
    ------
    DicomRenderError
        Subclasses name the file and the attribute at fault.
    TypeError
        An unknown keyword option (naming the closest valid one), or a
        ``threads`` that is not an integer.
    """
    if options:
        _check_options(render, preset, window, options)
    if threads is not None:
        check_threads(threads)
    ds, filename = read_dataset(src)
    try:
        return _render(ds, filename, preset, window, function, invert, frame, out, strict, threads, max_pixels,
                       max_memory, options)
    except DicomRenderError as exc:
        raise exc.with_filename(filename) from exc.__cause__


def _render(ds, filename, preset, window, function, invert, frame, out, strict, threads, max_pixels, max_memory,
            options):
    info = ImageInfo.from_dataset(ds, filename, max_pixels=max_pixels, max_memory=max_memory)
    if not info.is_grayscale:
        return _render_colour(info, preset, window, function, invert, frame, out, options)
    indices = info.frame_indices(frame)
    words = read_frames(info, indices).words
    do_invert = info.inverse if invert is None else bool(invert)
    runs = []
    for start, stop, parameters in _frame_groups(info, indices):
        ctx = context_for(info, parameters, words[start:stop], strict, options)
        runs.append((start, stop, parameters, _resolve(preset, window, function, ctx)))
    k = len(runs[0][3])
    if any(len(r[3]) != k for r in runs):
        raise DicomRenderError("presets gave different numbers of channels for different frames")
    shape = words.shape if k == 1 else words.shape + (k,)
    if k > 1:  # read_frames checked the budget for one channel
        info.check_memory(len(indices), k)
    # straight into the caller's buffer (no second copy), unless it lies over the words themselves:
    # a later run of frames would read what an earlier one wrote
    direct = out is not None and not overlaps(out, words)
    if direct:
        prepare_out(out, shape[1:] if _one_frame(info, frame) else shape)
        result = out.reshape(shape)
    else:
        result = prepare_out(None, shape)
    for start, stop, parameters, vois in runs:
        _render_run(words[start:stop], info.format, parameters.modality, vois, do_invert, result[start:stop], threads)
    return out if direct else _deliver(result, info, frame, out)


#: Pixels per engine call on its float64 reference path, whose temporaries take ~100 bytes a pixel.
_REFERENCE_BLOCK = 1 << 18


def _render_run(words: np.ndarray, fmt, modality, vois: List[VOI], invert: bool, out: np.ndarray, threads) -> None:
    """One run of frames through the engine; block by block where the engine has neither a table nor
    a kernel loop for the parameters (a LUT over data wider than 16 bits or float: the reference)."""
    compiled = (fmt is not None and fmt.bits_stored <= 16) or \
        (isinstance(modality, Rescale) and all(isinstance(v, Window) for v in vois))
    if compiled or words.size <= _REFERENCE_BLOCK:
        render_stored(words, fmt, modality, vois, invert=invert, out=out, threads=threads)
        return
    flat = words.reshape(-1)
    flat_out = out.reshape(flat.size, -1) if len(vois) > 1 else out.reshape(-1)
    for start in range(0, flat.size, _REFERENCE_BLOCK):
        render_stored(flat[start:start + _REFERENCE_BLOCK], fmt, modality, vois, invert=invert,
                      out=flat_out[start:start + _REFERENCE_BLOCK], threads=threads)


def _render_colour(info: ImageInfo, preset, window, function, invert, frame, out, options):
    """Colour images: RGB ``(rows, cols, 3)`` per frame.

    Windowing colour data is almost always a mistake (a grayscale preset on an
    ultrasound clip), so it needs both ``window=`` and ``colour_window=True``.
    """
    if preset is not None and not (isinstance(preset, str) and preset.strip().lower() == "header"):
        raise UnsupportedImageError(
            f"PhotometricInterpretation {info.photometric} is a colour image: presets do not apply",
            attribute="PhotometricInterpretation")
    if window is not None and not options.get("colour_window", False):
        raise UnsupportedImageError(
            f"PhotometricInterpretation {info.photometric} is a colour image: pass colour_window=True with "
            f"window= to window each channel", attribute="PhotometricInterpretation")
    indices = info.frame_indices(frame)
    result = render_colour(info, indices, window=window, function=function, invert=invert)
    return _deliver(result, info, frame, out)


def _one_frame(info: ImageInfo, frame) -> bool:
    """Whether the result is one frame, returned without the frame axis."""
    return frame is not None or info.frames == 1


def _deliver(result: np.ndarray, info: ImageInfo, frame, out: Optional[np.ndarray]) -> np.ndarray:
    """Drop the frame axis for one frame, and copy into the caller's ``out`` buffer when given."""
    if _one_frame(info, frame):
        result = result[0]
    if out is None:
        return result
    target = prepare_out(out, result.shape)
    target[...] = result
    return target


def _frame_groups(info: ImageInfo, indices) -> List[Tuple[int, int, FrameParameters]]:
    """Runs of consecutive selected frames that share modality and VOI parameters."""
    if not info.per_frame_parameters:  # one set for every frame: nothing to do per frame
        return [(0, len(indices), info.frame_parameters(indices[0]))]
    groups: List[list] = []
    for position, index in enumerate(indices):
        parameters = info.frame_parameters(index)
        if groups and (groups[-1][2] is parameters or groups[-1][2].key() == parameters.key()):
            groups[-1][1] = position + 1
        else:
            groups.append([position, position + 1, parameters])
    return [(g[0], g[1], g[2]) for g in groups]


def save(src, path: Union[str, os.PathLike], preset: Union[str, Sequence[str], None] = None, *, quality: int = 95,
         compress_level: int = 6, **render_kwargs) -> str:
    """Render ``src`` and write it as JPEG or PNG (chosen by the suffix of ``path``).

    Multi-frame images need ``frame=``; the file is written atomically
    (temporary file in the target folder, then renamed).  ``quality`` (JPEG,
    1-100) and ``compress_level`` (PNG, 0-9) are checked before anything is
    read; ``render_kwargs`` are :func:`render`'s.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    InvalidArgumentError
        An unknown suffix, ``quality`` or ``compress_level`` out of range, a
        multi-frame result, or a number of windows other than 1 or 3 (a JPEG
        or PNG file holds grey or RGB).
    """
    fmt = image_format(path)
    check_encoding(quality, compress_level)
    options = {k: v for k, v in render_kwargs.items() if k not in _parameters(render)}
    if options:
        _check_options(save, preset, render_kwargs.get("window"), options)
    ds, filename = read_dataset(src)  # once: render reuses the data set, and save needs its frame count
    pixels = render(ds, preset, **render_kwargs)
    if render_kwargs.get("frame") is None and frame_count(ds, filename) > 1:
        raise InvalidArgumentError(f"a multi-frame image renders to {pixels.shape}; pass frame= to save one frame",
                                   filename=filename, attribute="frame")
    try:
        check_channels(1 if pixels.ndim == 2 else pixels.shape[-1])
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"cannot write {pixels.shape} to {fmt}: {exc}", filename=filename,
                                   attribute=exc.attribute) from None
    write_image(pixels, path, quality=quality, compress_level=compress_level, fsync=True)
    return os.fspath(path)
