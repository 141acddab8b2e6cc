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
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._types import VOI, Rescale, Window
from .dicom.color import render_colour
from .dicom.header import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS, FrameParameters, ImageInfo, frame_count
from .dicom.icc import icc_profile
from .dicom.overlays import check_selection, frame_layers, overlay_planes, select_planes
from .dicom.pixels import read_frames
from .dicom.pstate import image_shutter_steps, presentation_values, resolve_state, state_steps
from .dicom.source import read_dataset
from .dicom.timing import frame_durations
from .display.icc import apply_iccprofile, check_iccprofile
from .display.overlay import burn_layers
from .display.present import Presentation, output_shape, present
from .display.viewport import Viewport, apply_viewport, parse_viewport, viewport_size
from .engine import MAX_WINDOWS, prepare_out, render_stored
from .engine.dispatch import overlaps
from .engine.threads import check_threads
from .errors import DicomRenderError, InvalidArgumentError, PixelLimitError, UnsupportedImageError
from .io import check_channels, check_encoding, image_format, is_animated, write_animation, write_image
from .io.animated import check_fps, fps_durations
from .presets import RenderContext
from .presets.lookup import Choice, check_options, resolve_runs

__all__ = ["render", "save", "context_for", "plan", "Plan", "Run", "inversion", "check_colour", "colour_shape",
           "RENDER_OPTIONS"]

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


@dataclass(frozen=True)
class Run:
    """Frames ``start:stop`` (positions among the frames rendered) that share their header parameters,
    and what each output channel shows for them."""

    start: int
    stop: int
    parameters: FrameParameters
    choices: Tuple[Choice, ...]

    @property
    def vois(self) -> List[VOI]:
        return [c.voi for c in self.choices]


@dataclass(frozen=True)
class Plan:
    """Every decision of a grayscale render, before the engine runs: the frames and their words, the runs
    of frames with their VOIs, the inversion and why, the shape of the result (with the frame axis)."""

    info: ImageInfo
    indices: Sequence[int]
    words: np.ndarray
    runs: Tuple[Run, ...]
    invert: bool
    invert_reason: str
    #: the result's shape with the frame axis (what the engine writes), and as render returns it
    shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]

    @property
    def warnings(self) -> list:
        """The header items skipped (one warning each, naming the file)."""
        return [w.with_filename(self.info.filename) for run in self.runs for c in run.choices for w in c.warnings]


def inversion(info: ImageInfo, invert: Optional[bool]) -> Tuple[bool, str]:
    """Whether the output is inverted, and why."""
    if invert is not None:
        return bool(invert), f"invert={bool(invert)} argument"
    if info.photometric == "MONOCHROME1":
        return True, "PhotometricInterpretation MONOCHROME1"
    if info.inverse:
        return True, "PresentationLUTShape INVERSE"
    return False, f"PhotometricInterpretation {info.photometric}"


def plan(info: ImageInfo, frame, preset, window, function, invert, strict: bool, options: dict) -> Plan:
    """The decisions of a grayscale render of ``info`` (see :func:`render` for the arguments): the one place
    they are made, for :func:`render` and :func:`dicomrender.explain` alike.  Reads the frames' words
    (data-driven windows need them)."""
    indices = info.frame_indices(frame)
    words = read_frames(info, indices).words
    groups = _frame_groups(info, indices)
    contexts = [context_for(info, parameters, words[start:stop], strict, options) for start, stop, parameters in groups]
    choices = resolve_runs(preset, window, function, contexts, MAX_WINDOWS)
    runs = tuple(Run(start, stop, parameters, tuple(c)) for (start, stop, parameters), c in zip(groups, choices))
    k = len(runs[0].choices)
    if any(len(r.choices) != k for r in runs):
        raise DicomRenderError("presets gave different numbers of channels for different frames")
    if k > 1:  # read_frames checked the budget for one channel
        info.check_memory(len(indices), k)
    do_invert, reason = inversion(info, invert)
    shape = words.shape if k == 1 else words.shape + (k,)
    return Plan(info, indices, words, runs, do_invert, reason, shape, shape[1:] if _one_frame(info, frame) else shape)


def render(src, preset: Union[str, Sequence[str], None] = None, *, window: Optional[Sequence[float]] = None,
           function: Optional[str] = None, invert: Optional[bool] = None, frame: Optional[int] = None,
           out: Optional[np.ndarray] = None, strict: bool = True, threads: Optional[int] = None,
           max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, max_memory: Optional[int] = DEFAULT_MAX_MEMORY,
           overlays: Union[bool, Sequence[int]] = False, viewport=None, presentation_state=None,
           shutters: bool = False, annotations: bool = False, **options) -> np.ndarray:
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
        An explicit window; overrides presets.  Its VOI LUT Function is
        ``function``, else the header's (that of its first window, as
        ``dcm2pnm +Ww`` applies it), else LINEAR.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}, optional
        VOI LUT Function of every centre/width window; default the header's
        (for header windows and ``window=``), else LINEAR (presets).
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
    overlays : bool or sequence of int
        Burn in the overlay planes (groups 6000-601E, Overlay Data or bits
        embedded in Pixel Data) after the grayscale pipeline, as ``dcm2pnm``
        does: True for all, or plane indices (``(group - 0x6000) // 2``);
        graphics in white (255), regions of interest by darkening the
        rest of their rectangle.  Default False.  An index with no plane
        raises :class:`dicomrender.InvalidArgumentError`.
    presentation_state : pydicom.Dataset, str, os.PathLike or binary file-like, optional
        A Grayscale Softcopy Presentation State that references the image
        (and ``frame``, needed for a multi-frame image): its modality
        transform, VOI, Presentation LUT, shutters, activated overlays,
        rotation / flip and displayed area replace the image's own (see
        README "Presentation states and shutters").  ``window=`` and
        ``invert=`` still override; presets cannot be combined with it.
        :class:`dicomrender.PresentationStateError` when the state does not
        reference the image.
    shutters : bool
        Paint the image's own Display Shutter module (CR, DX, XA, RF...).
        Default False: existing renders stay as they were.
    annotations : bool
        Draw the state's graphic and text annotations (Pillow, in their
        layers' grey levels, white by default).  Default False, as dcmtk.
    viewport : (vw, vh) or (vw, vh, sx, sy, sw, sh) or str, optional
        PS3.18's rendered ``viewport``, applied last: the region ``sx, sy,
        |sw|, |sh|`` of the rendered image (default the whole image; a
        negative ``sw`` / ``sh`` flips it), scaled by one factor to fit
        inside ``vw`` x ``vh`` (area averaging when shrinking, bicubic when
        enlarging; no padding).  ``out`` must then have the scaled shape.
        See README "Rendered parameters (DICOMweb)".
    **options
        Passed to presets, e.g. ``voi_index=1`` or ``voi_explanation="BONE"``
        for the header window, ``voi="lut"`` (or ``"window"``) to choose the
        header's VOI LUT (or window) when it has both; ``colour_window=True`` lets ``window=`` window
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
    check_selection(overlays)
    vp = parse_viewport(viewport)
    ds, filename = read_dataset(src)
    try:
        if presentation_state is not None or shutters:
            pixels = _render_presented(ds, filename, presentation_state, shutters, annotations, preset, window,
                                       function, invert, frame, strict, threads, max_pixels, max_memory, options,
                                       overlays)
            if vp is not None:
                return _viewport(pixels, vp, frame is None and frame_count(ds, filename) > 1, out, max_memory)
            return pixels if out is None else _copy_into(out, pixels)
        if vp is not None:
            pixels = _render(ds, filename, preset, window, function, invert, frame, None, strict, threads,
                             max_pixels, max_memory, options, overlays)
            return _viewport(pixels, vp, frame is None and frame_count(ds, filename) > 1, out, max_memory)
        return _render(ds, filename, preset, window, function, invert, frame, out, strict, threads, max_pixels,
                       max_memory, options, overlays)
    except DicomRenderError as exc:
        raise exc.with_filename(filename) from exc.__cause__


def _render(ds, filename, preset, window, function, invert, frame, out, strict, threads, max_pixels, max_memory,
            options, overlays=False):
    info = ImageInfo.from_dataset(ds, filename, max_pixels=max_pixels, max_memory=max_memory)
    if not info.is_grayscale:
        return _render_colour(info, preset, window, function, invert, frame, out, options, overlays)
    decided = plan(info, frame, preset, window, function, invert, strict, options)
    for warning in decided.warnings:
        warnings.warn(warning, stacklevel=3)
    words, shape, do_invert = decided.words, decided.shape, decided.invert
    # straight into the caller's buffer (no second copy), unless it lies over the words themselves:
    # a later run of frames would read what an earlier one wrote
    direct = out is not None and not overlaps(out, words)
    if direct:
        prepare_out(out, shape[1:] if _one_frame(info, frame) else shape)
        result = out.reshape(shape)
    else:
        result = prepare_out(None, shape)
    for run in decided.runs:
        _render_run(words[run.start:run.stop], info.format, run.parameters.modality, run.vois, do_invert,
                    result[run.start:run.stop], threads)
    if overlays:
        _burn_overlays(info, overlays, decided.indices, result, words)
    return out if direct else _deliver(result, info, frame, out)


def _viewport(pixels: np.ndarray, vp: Viewport, frames: bool, out: Optional[np.ndarray], max_memory) -> np.ndarray:
    """``pixels`` through the viewport (last step of the pipeline), within ``max_memory`` with the rendered
    pixels, into ``out`` when given."""
    axis = 1 if frames else 0
    rows, cols = viewport_size(vp, pixels.shape[axis], pixels.shape[axis + 1])
    size = pixels.size // (pixels.shape[axis] * pixels.shape[axis + 1]) * rows * cols
    if max_memory is not None and pixels.nbytes + size > max_memory:
        raise PixelLimitError(f"viewport {vp} makes {size} bytes of output, over max_memory={max_memory} with the "
                              f"{pixels.nbytes} bytes rendered", attribute="viewport")
    result = apply_viewport(pixels, vp, frames=frames)
    if out is None:
        return result
    target = prepare_out(out, result.shape)
    target[...] = result
    return target


def _render_presented(ds, filename, state_src, shutters, annotations, preset, window, function, invert, frame, strict,
                      threads, max_pixels, max_memory, options, overlays) -> np.ndarray:
    """A render through a presentation state (one frame) or with the image's own shutters: the grayscale
    pipeline (the state's modality, VOI and inversion), then the display steps of PS3.4 N.2 per frame."""
    info = ImageInfo.from_dataset(ds, filename, max_pixels=max_pixels, max_memory=max_memory)
    if not info.is_grayscale:
        raise UnsupportedImageError(f"PhotometricInterpretation {info.photometric}: presentation states and "
                                    f"shutters apply to grayscale images", attribute="PhotometricInterpretation")
    indices = info.frame_indices(frame)
    if state_src is None:
        result = _render(ds, filename, preset, window, function, invert, frame, None, strict, threads, max_pixels,
                         max_memory, options, overlays)
        result = result[None] if _one_frame(info, frame) else result
        steps = [image_shutter_steps(info, index, None) for index in indices]
    else:
        if preset is not None:
            raise InvalidArgumentError("presentation_state sets the VOI: it cannot be combined with preset= "
                                       "(window= overrides the state's VOI)", attribute="preset")
        if len(indices) != 1:
            raise InvalidArgumentError(f"a presentation state applies to one frame: pass frame= for this "
                                       f"{info.frames}-frame image", attribute="frame")
        state, state_file = read_dataset(state_src)
        resolved = resolve_state(state, state_file, info, indices[0])
        words = read_frames(info, indices).words
        vois: List[VOI] = [Window(window[0], window[1], function or "LINEAR") if window is not None else resolved.voi]
        if resolved.presentation_lut is not None and invert is None:
            result = presentation_values(words, info.format, resolved.modality, vois[0], resolved.presentation_lut)
        else:
            result = prepare_out(None, words.shape)
            _render_run(words, info.format, resolved.modality, vois, resolved.invert if invert is None else
                        bool(invert), result, threads)
        if overlays:
            _burn_overlays(info, overlays, indices, result, words)
        steps = [state_steps(resolved, state, info, indices[0], words[0], annotations)]
    plans = [Presentation(**s) for s in steps]
    for p in plans:  # the output size first: a Displayed Area may be 2**32 pixels wide
        output_shape(info.rows, info.columns, p, max_pixels, max_memory)
    frames = [present(image, p) for image, p in zip(result, plans)]
    return frames[0] if _one_frame(info, frame) else np.stack(frames)


def _copy_into(out: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    target = prepare_out(out, pixels.shape)
    target[...] = pixels
    return target


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


def _render_colour(info: ImageInfo, preset, window, function, invert, frame, out, options, overlays=False):
    """Colour images: RGB ``(rows, cols, 3)`` per frame.

    Windowing colour data is almost always a mistake (a grayscale preset on an
    ultrasound clip), so it needs both ``window=`` and ``colour_window=True``.
    """
    check_colour(info, preset, window, options)
    indices = info.frame_indices(frame)
    result = render_colour(info, indices, window=window, function=function, invert=invert)
    if overlays:
        _burn_overlays(info, overlays, indices, result, None)
    return _deliver(result, info, frame, out)


def _burn_overlays(info: ImageInfo, selection, indices, result: np.ndarray, words) -> None:
    """The selected overlay planes burnt into each rendered frame, after the grayscale pipeline (as dcm2pnm)."""
    planes = select_planes(overlay_planes(info.dataset, info.filename), selection, info.filename)
    for position, index in enumerate(indices):
        burn_layers(result[position], frame_layers(planes, index, info.rows, info.columns,
                                                   None if words is None else words[position]))


def check_colour(info: ImageInfo, preset, window, options) -> None:
    """Refuse presets on a colour image, and ``window=`` without ``colour_window=True``."""
    if preset is not None and not (isinstance(preset, str) and preset.strip().lower() == "header"):
        raise UnsupportedImageError(
            f"PhotometricInterpretation {info.photometric} is a colour image: presets do not apply",
            attribute="PhotometricInterpretation")
    if window is not None and not options.get("colour_window", False):
        raise UnsupportedImageError(
            f"PhotometricInterpretation {info.photometric} is a colour image: pass colour_window=True with "
            f"window= to window each channel", attribute="PhotometricInterpretation")


def colour_shape(info: ImageInfo, frame) -> Tuple[int, ...]:
    """The shape :func:`render` returns for a colour image (RGB)."""
    shape = (len(info.frame_indices(frame)), info.rows, info.columns, 3)
    return shape[1:] if _one_frame(info, frame) else shape


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
         compress_level: int = 6, iccprofile: str = "no", lossless: bool = False, fps: Optional[float] = None,
         **render_kwargs) -> str:
    """Render ``src`` and write it in the format of the suffix of ``path``.

    ``.jpg``/``.jpeg``, ``.png`` and ``.webp`` hold one image: multi-frame images
    need ``frame=`` (except ``.webp``, which animates them).  ``.gif``, ``.webp``,
    ``.apng`` and ``.mp4`` (needs ``dicomrender[video]``) hold all the frames of a
    multi-frame image when ``frame=`` is not given, each shown for its duration
    from the header (:func:`dicomrender.dicom.timing.frame_durations`; README
    "Animated output"); a single image in them is a one-frame animation.  The
    file is written atomically (temporary file in the target folder, then
    renamed).  ``quality`` (JPEG, lossy WebP, MP4; 1-100), ``compress_level``
    (PNG and APNG, 0-9), ``iccprofile`` and ``lossless`` are checked before
    anything is read; ``render_kwargs`` are :func:`render`'s.

    Parameters
    ----------
    iccprofile : {"no", "yes", "srgb"}
        PS3.18's rendered ``iccprofile`` for colour images: ``"yes"`` embeds
        the image's ICC profile, ``"srgb"`` converts the pixels to sRGB and
        embeds the sRGB profile (README "Rendered parameters (DICOMweb)").
    lossless : bool
        WebP only: lossless instead of ``quality``.
    fps : float, optional
        Animations: frames per second instead of the header's frame timing.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    InvalidArgumentError
        An unknown suffix, ``quality`` or ``compress_level`` out of range, an
        unknown ``iccprofile``, an ``fps`` that is not a positive finite number,
        a multi-frame result for a still format, or a number of windows other
        than 1 or 3 (a file holds grey or RGB).
    """
    fmt = image_format(path)
    check_encoding(quality, compress_level)
    icc = check_iccprofile(iccprofile)
    if fps is not None:
        check_fps(fps)
    options = {k: v for k, v in render_kwargs.items() if k not in _parameters(render)}
    if options:
        _check_options(save, preset, render_kwargs.get("window"), options)
    ds, filename = read_dataset(src)  # once: render reuses the data set, and save needs its frame count
    pixels = render(ds, preset, **render_kwargs)
    count = frame_count(ds, filename)
    animated = render_kwargs.get("frame") is None and count > 1
    if animated and not is_animated(fmt):
        raise InvalidArgumentError(f"a multi-frame image renders to {pixels.shape}; pass frame= to save one frame, "
                                   f"or write .gif, .webp, .apng or .mp4", filename=filename, attribute="frame")
    try:
        check_channels(1 if pixels.ndim == (3 if animated else 2) else pixels.shape[-1])
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"cannot write {pixels.shape} to {fmt}: {exc}", filename=filename,
                                   attribute=exc.attribute) from None
    try:
        pixels, profile = apply_iccprofile(pixels, icc, icc_profile(ds) if icc != "no" else None,
                                           rgb=pixels.ndim == (4 if animated else 3))
    except DicomRenderError as exc:
        raise exc.with_filename(filename) from None
    encoding: Dict[str, Any] = dict(quality=quality, compress_level=compress_level, icc_profile=profile,
                                    lossless=lossless, fsync=True)
    if animated:
        durations = frame_durations(ds, count) if fps is None else fps_durations(fps, count)
        write_animation(pixels, path, durations, **encoding)
    else:
        write_image(pixels, path, **encoding)
    return os.fspath(path)
