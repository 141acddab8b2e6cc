"""``render`` and ``save``: from a DICOM source to uint8 pixels or an image file."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from . import windowing
from .errors import DicomRenderError, InvalidWindowError, UnsupportedImageError
from .image import DEFAULT_MAX_PIXELS, FrameParameters, ImageInfo, read_dataset
from .windowing import Window

__all__ = ["render", "save", "RenderContext"]


@dataclass
class RenderContext:
    """What a preset sees when it chooses a window for a group of frames.

    Attributes
    ----------
    info : ImageInfo
        The pixel description and the dataset (``info.dataset``).
    parameters : FrameParameters
        Modality transform, header windows and VOI LUTs of these frames.
    words : numpy.ndarray
        The allocated words of the frames being rendered.
    strict : bool
        Whether presets must refuse images they are not meant for.
    options : dict
        Extra keyword arguments given to :func:`render` (``voi_index``, ...).
    """

    info: ImageInfo
    parameters: FrameParameters
    words: np.ndarray = field(repr=False)
    strict: bool = True
    options: dict = field(default_factory=dict)

    @property
    def dataset(self):
        return self.info.dataset

    @property
    def hounsfield(self) -> bool:
        """True when the modality values are Hounsfield units."""
        return self.parameters.hounsfield

    def stored_values(self) -> np.ndarray:
        """Stored values (masked, sign-extended; float data as float64)."""
        if self.info.format is None:
            return self.words.astype(np.float64)
        return self.info.format.stored(self.words)

    def modality_values(self, exclude_padding: bool = True) -> np.ndarray:
        """Flat float64 modality values, without Pixel Padding Value/Range and NaN."""
        stored = self.stored_values().reshape(-1)
        if exclude_padding and self.info.pixel_padding is not None and self.info.format is not None:
            low, high = self.info.pixel_padding
            stored = stored[(stored < low) | (stored > high)]
        values = self.parameters.modality.values(stored)
        return values[~np.isnan(values)] if values.dtype.kind == "f" else values


def _resolve(preset, window, function, ctx: RenderContext) -> list:
    from . import presets

    if window is not None:
        if preset is not None:
            raise ValueError("give either preset= or window=, not both")
        try:
            center, width = window
        except (TypeError, ValueError):
            raise InvalidWindowError(f"window must be (center, width), got {window!r}", attribute="window") from None
        return [Window(center, width, function or "LINEAR")]
    vois = presets.resolve(preset, ctx)
    if function is not None:
        vois = [Window(v.center, v.width, function, v.explanation) if isinstance(v, Window) else v for v in vois]
    return vois


def render(src, preset: Union[str, Sequence[str], None] = None, *, window: Optional[Sequence[float]] = None,
           function: Optional[str] = None, invert: Optional[bool] = None, frame: Optional[int] = None,
           out: Optional[np.ndarray] = None, strict: bool = True, threads: Optional[int] = None,
           max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, **options) -> np.ndarray:
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
        than this, before decoding anything (decompression bombs).  Default
        ``2**31`` (``dicomrender.image.DEFAULT_MAX_PIXELS``); ``None``: no limit.
    **options
        Passed to presets, e.g. ``voi_index=1`` or ``voi_explanation="BONE"``
        for the header window; ``colour_window=True`` lets ``window=`` window
        each channel of a colour image.

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
    """
    ds, filename = read_dataset(src)
    try:
        return _render(ds, filename, preset, window, function, invert, frame, out, strict, threads, max_pixels,
                       options)
    except DicomRenderError as exc:
        raise exc.with_filename(filename) from exc.__cause__


def _render(ds, filename, preset, window, function, invert, frame, out, strict, threads, max_pixels, options):
    info = ImageInfo.from_dataset(ds, filename, max_pixels=max_pixels)
    if not info.is_grayscale:
        return _render_colour(info, preset, window, function, invert, frame, out, options)
    indices = info.frame_indices(frame)
    words = info.words(indices)
    do_invert = info.inverse if invert is None else bool(invert)
    groups = _frame_groups(info, indices)
    results = []
    for start, stop, parameters in groups:
        ctx = RenderContext(info, parameters, words[start:stop], strict, options)
        vois = _resolve(preset, window, function, ctx)
        results.append((start, stop, parameters, vois))
    k = len(results[0][3])
    if any(len(r[3]) != k for r in results):
        raise DicomRenderError("presets gave different numbers of channels for different frames")
    shape = words.shape if k == 1 else words.shape + (k,)
    if out is not None:  # render straight into the caller's buffer: no second copy
        windowing._prepare_out(out, shape[1:] if _one_frame(info, frame) else shape)
        result = out.reshape(shape)
    else:
        result = windowing._prepare_out(None, shape)
    for start, stop, parameters, vois in results:
        windowing.render_stored(words[start:stop], info.format, parameters.modality, vois, invert=do_invert,
                                out=result[start:stop], threads=threads)
    return out if out is not None else _deliver(result, info, frame, None)


def _render_colour(info: ImageInfo, preset, window, function, invert, frame, out, options):
    """Colour images: RGB ``(rows, cols, 3)`` per frame.

    Windowing colour data is almost always a mistake (a grayscale preset on an
    ultrasound clip), so it needs both ``window=`` and ``colour_window=True``.
    """
    from . import colour

    if preset is not None and not (isinstance(preset, str) and preset.strip().lower() == "header"):
        raise UnsupportedImageError(
            f"PhotometricInterpretation {info.photometric} is a colour image: presets do not apply",
            attribute="PhotometricInterpretation")
    if window is not None and not options.get("colour_window", False):
        raise UnsupportedImageError(
            f"PhotometricInterpretation {info.photometric} is a colour image: pass colour_window=True with "
            f"window= to window each channel", attribute="PhotometricInterpretation")
    indices = info.frame_indices(frame)
    result = colour.render_colour(info, indices, window=window, function=function, invert=invert)
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
    target = windowing._prepare_out(out, result.shape)
    target[...] = result
    return target


def _frame_groups(info: ImageInfo, indices) -> list:
    """Runs of consecutive selected frames that share modality and VOI parameters."""
    groups = []
    for position, index in enumerate(indices):
        parameters = info.frame_parameters(index)
        if groups and groups[-1][2].key() == parameters.key():
            groups[-1][1] = position + 1
        else:
            groups.append([position, position + 1, parameters])
    return [tuple(g) for g in groups]


def save(src, path: Union[str, os.PathLike], preset: Union[str, Sequence[str], None] = None, *, quality: int = 95,
         compress_level: int = 6, **render_kwargs) -> str:
    """Render ``src`` and write it as JPEG or PNG (chosen by the suffix of ``path``).

    Multi-frame images need ``frame=``; the file is written atomically
    (temporary file in the target folder, then renamed).

    Returns
    -------
    str
        The path written.
    """
    pixels = render(src, preset, **render_kwargs)
    if pixels.ndim == 3 and pixels.shape[-1] != 3 or pixels.ndim == 4:
        raise ValueError(f"a multi-frame image renders to {pixels.shape}; pass frame= to save one frame")
    write_image(pixels, path, quality=quality, compress_level=compress_level)
    return os.fspath(path)


def image_format(path) -> str:
    """``"JPEG"`` or ``"PNG"`` from the file suffix."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
    if suffix not in formats:
        raise ValueError(f"cannot tell the image format from {os.fspath(path)!r}: use .jpg, .jpeg or .png")
    return formats[suffix]


def encode_image(pixels: np.ndarray, fmt: str, *, quality: int = 95, compress_level: int = 6) -> bytes:
    """Encode a uint8 ``(rows, cols)`` or ``(rows, cols, 3)`` array as JPEG or PNG bytes."""
    import io

    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels))
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=int(quality))
    else:
        image.save(buffer, format="PNG", compress_level=int(compress_level))
    return buffer.getvalue()


def write_image(pixels: np.ndarray, path, *, quality: int = 95, compress_level: int = 6) -> None:
    """Encode and write atomically: a temporary file beside ``path``, then ``os.replace``."""
    data = encode_image(pixels, image_format(path), quality=quality, compress_level=compress_level)
    write_atomic(path, data)


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".dicomrender-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
