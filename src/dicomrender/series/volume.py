"""``render_series``: a series (a folder of slices, a list of files or datasets, a multi-frame object) to
one sorted, windowed uint8 volume with its geometry.

The steps: read the headers (:mod:`.find`, in parallel), choose the series and sort its slices
(:mod:`.geometry`), decide the window of every output channel once for the series (:mod:`.channels`,
with one pass over the pixels when a data-driven window needs it, :mod:`.statistics`), then render
every slice straight into its place in one preallocated output (:mod:`.reader`), the slices split
over ``jobs`` workers with the kernel on one thread each.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from pydicom.dataset import Dataset

from .._types import VOI, Window
from ..dicom.header import DEFAULT_MAX_PIXELS
from ..dicom.source import read_dataset
from ..dicom.timing import DEFAULT_FRAME_RATE, frame_durations
from ..engine import MAX_WINDOWS, prepare_out
from ..engine.compile import LUT_MAX_BITS, compile_tables
from ..errors import InvalidArgumentError, PresetError, SeriesWarning, UnsupportedImageError
from ..io import ANIMATED_FORMATS, check_channels, check_encoding, write_animation
from ..io.animated import fps_durations, has_video
from .channels import caller_window, channels_for, check_presets, series_header_voi, with_function
from .find import scan, select_series
from .geometry import Geometry, describe_files, first_position, ras_of, sort_slices
from .parallel import choose_executor, map_chunks, shared_empty, split, worker_count
from .reader import RenderJob, WindowJob, count_part, render_part
from .sources import Scan, SliceHeader
from .statistics import SeriesCounts, series_window

__all__ = ["SeriesPlan", "Prepared", "Volume", "plan_series", "plan_from_scan", "prepare", "render_prepared",
           "render_series"]

#: Slices per worker below which another worker does not pay for itself (headers, pixel passes).
SLICES_PER_WORKER = 24


@dataclass
class SeriesPlan:
    """One series, its slices sorted, and its geometry (small and picklable: headers only)."""

    series_uid: str
    headers: List[SliceHeader]
    geometry: Geometry
    datasets: Optional[Sequence[Dataset]] = None
    skipped: Tuple[str, ...] = ()


@dataclass
class Prepared:
    """A plan with the VOIs and inversion of every slice decided, and the label of each channel."""

    plan: SeriesPlan
    vois: List[Tuple[VOI, ...]]
    inverts: List[bool]
    labels: Tuple[str, ...]

    @property
    def channels(self) -> int:
        return len(self.vois[0])


def plan_series(src, series_uid: Optional[str] = None, *, jobs: Optional[int] = None, executor: str = "auto",
                max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> SeriesPlan:
    """Read the headers of ``src``, choose the series and sort it (warnings for gaps and irregular spacing)."""
    found = scan(src, jobs=jobs, executor=executor, max_pixels=max_pixels)
    return plan_from_scan(found, series_uid, repr(src) if isinstance(src, str) else "the source")


def plan_from_scan(found: Scan, series_uid: Optional[str], label: str = "the source") -> SeriesPlan:
    """The plan of one series of a scanned source (see :func:`plan_series`)."""
    uid, headers, skipped = select_series(found, series_uid, label)
    colour = [h for h in headers if not h.grayscale]
    if colour:
        raise UnsupportedImageError(f"render_series renders grayscale series; {len(colour)} slice(s) are "
                                    f"{colour[0].photometric}: {describe_files([h.name for h in colour])}",
                                    attribute="PhotometricInterpretation")
    ordered, geometry = sort_slices(headers)
    for note in geometry.warnings:
        warnings.warn(note, SeriesWarning, stacklevel=4)  # the caller of render_series
    return SeriesPlan(uid, ordered, geometry, found.datasets, tuple(s.name for s in skipped))


def prepare(plan: SeriesPlan, preset=None, *, window=None, function: Optional[str] = None,
            invert: Optional[bool] = None, strict: bool = True, per_slice: bool = False,
            live_slices: Optional[Sequence[int]] = None, jobs: Optional[int] = None, executor: str = "auto",
            options: Optional[Dict[str, Any]] = None) -> Prepared:
    """Decide the VOIs of every slice (see :mod:`.channels`): one pass over the pixels when a window is
    data-driven or evaluated per slice (only ``live_slices`` for the latter; default all)."""
    options = dict(options or {})
    headers = plan.headers
    channels, presets = channels_for(preset, window, function, per_slice)
    check_presets(presets, headers, strict)
    fixed: List[Optional[VOI]] = []
    kinds: List[str] = []
    for channel in channels:
        voi: Optional[VOI] = channel.voi
        kind = channel.kind
        if kind == "header":
            voi = series_header_voi(headers, options)
            kind = "fixed" if voi is not None else "series"
        fixed.append(voi)
        kinds.append(channel.stat or "auto" if kind == "series" else kind)
    live = [(j, c) for j, c in enumerate(channels) if c.kind == "slice"]
    need_counts = any(k not in ("fixed", "slice", "window") for k in kinds)
    counts, per_slice_vois = SeriesCounts(), {}
    if need_counts or live:
        wanted = frozenset(range(len(headers)) if live_slices is None else live_slices)
        job = WindowJob(headers, plan.datasets, need_counts, live, wanted, strict, options)
        workers = worker_count(jobs, len(headers), SLICES_PER_WORKER)
        mode = choose_executor(executor)
        for part_counts, part_live in map_chunks(lambda part: count_part(job, part), split(len(headers), workers),
                                                 mode):
            counts.merge(part_counts)
            per_slice_vois.update(part_live)
    series: Dict[str, Window] = {}
    for kind in kinds:
        if kind not in ("fixed", "slice", "window") and kind not in series:
            series[kind] = series_window(kind, counts, options)
    vois: List[Tuple[VOI, ...]] = []
    for i in range(len(headers)):
        row: List[VOI] = []
        computed = iter(per_slice_vois.get(i, ()))
        for voi, kind in zip(fixed, kinds):
            if kind == "window":
                assert isinstance(voi, Window)
                row.append(caller_window(voi, headers[i], function))
            elif kind == "fixed":
                assert voi is not None
                row.append(voi)
            elif kind == "slice":
                row.extend(next(computed, []))
            else:
                row.append(series[kind])
        vois.append(tuple(with_function(row, function)))
    _check_channel_counts(vois, headers, live_slices)
    inverts = [h.inverse if invert is None else bool(invert) for h in headers]
    return Prepared(plan, vois, inverts, tuple(c.label for c in channels))


def _check_channel_counts(vois: List[Tuple[VOI, ...]], headers: Sequence[SliceHeader], live_slices) -> None:
    wanted = range(len(headers)) if live_slices is None else live_slices
    counts = {len(vois[i]) for i in wanted}
    if len(counts) > 1:
        raise PresetError(f"the presets gave different numbers of channels for different slices: {sorted(counts)}",
                          attribute="preset")
    count = counts.pop() if counts else 0
    if not 1 <= count <= MAX_WINDOWS:
        raise PresetError(f"{count} windows requested; at most {MAX_WINDOWS} channels are rendered at once",
                          attribute="preset")


def selection_of(frames, count: int) -> List[int]:
    """The slices (0-based, in position order) ``frames`` selects: None all, an int, a slice or a sequence."""
    if frames is None:
        return list(range(count))
    if isinstance(frames, slice):
        return list(range(count))[frames]
    if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
        frames = [frames]
    try:
        indices = [int(i) for i in frames]
    except (TypeError, ValueError):
        raise ValueError(f"frames must be None, an integer, a slice or a sequence of integers, got {frames!r}"
                         ) from None
    for i in indices:
        if not -count <= i < count:
            raise IndexError(f"frame {i} out of range: the series has {count} slices")
    return [i % count for i in indices]


def _precompile(prepared: Prepared, indices) -> None:
    """Compile each parameter set once before workers fork, so that they inherit the tables."""
    seen = set()
    for i in indices:
        header = prepared.plan.headers[i]
        fmt = header.format
        if fmt is None or fmt.bits_stored > LUT_MAX_BITS:
            continue
        key = (fmt, header.parameters.modality, prepared.vois[i], prepared.inverts[i])
        try:
            if key in seen:
                continue
            seen.add(key)
        except TypeError:  # an unhashable transform: leave it to the worker
            continue
        compile_tables(fmt, header.parameters.modality, list(prepared.vois[i]), prepared.inverts[i])


def render_prepared(prepared: Prepared, frames=None, *, neighbours: int = 0, out: Optional[np.ndarray] = None,
                    jobs: Optional[int] = None, threads: int = 1, executor: str = "auto") -> "Volume":
    """Render the slots ``frames`` selects (with their ``neighbours``) of a prepared series."""
    plan = prepared.plan
    count = len(plan.headers)
    selection = selection_of(frames, count)
    if not selection:
        raise ValueError(f"frames={frames!r} selects no slice")
    if isinstance(neighbours, bool) or not isinstance(neighbours, (int, np.integer)) or neighbours < 0:
        raise ValueError(f"neighbours must be an integer >= 0, got {neighbours!r}")
    k = int(neighbours)
    channels = prepared.channels * (2 * k + 1)
    first = plan.headers[0]
    shape: Tuple[int, ...] = (len(selection), first.rows, first.columns) + ((channels,) if channels > 1 else ())
    workers = worker_count(jobs, len(selection), SLICES_PER_WORKER)
    mode = choose_executor(executor, shared_output=out is None)
    if executor == "auto" and all(h.location is not None for h in plan.headers):
        # words read straight from the files: reading and the kernel release the GIL, so threads
        # run side by side without the fork (measured: benchmarks/bench_series.py)
        mode = "threads"
    processes = workers > 1 and mode == "processes"
    result = prepare_out(out, shape) if out is not None else shared_empty(shape, processes)
    if processes:
        _precompile(prepared, sorted({min(max(s + d, 0), count - 1) for s in selection for d in range(-k, k + 1)}))
    job = RenderJob(plan.headers, plan.datasets, prepared.vois, prepared.inverts, selection, k, result, threads)
    map_chunks(lambda part: render_part(job, part), split(len(selection), workers), mode)
    return Volume(result, prepared, selection, k)


class Volume:
    """A rendered series: ``numpy.asarray(volume)`` is the uint8 ``(slices, rows, columns[, channels])``
    array, in slice order; the attributes say where each voxel is.

    Attributes
    ----------
    pixels : numpy.ndarray
        The uint8 volume (also what ``numpy.asarray`` gives, without a copy).
    series_uid, modality, description : str
    positions : numpy.ndarray or None
        ``(slices, 3)`` Image Position (Patient) of each slice (LPS, mm).
    origin : numpy.ndarray or None
        The position of the first slice.
    orientation : numpy.ndarray or None
        ``(3, 3)`` direction matrix, columns: row direction, column direction, slice normal.
    spacing : tuple
        ``(slice, row, column)`` spacing in mm (see :class:`~dicomrender.series.geometry.Geometry`).
    affine : numpy.ndarray or None
        ``(4, 4)`` LPS affine: ``affine @ [column, row, slice, 1]`` is the voxel's position (None when
        the slices have no position, or ``frames=`` picked slices at irregular steps).
    ras_affine : numpy.ndarray or None
        The same in RAS, for nibabel / NIfTI (with ``pixels.transpose(2, 1, 0)``).
    sop_instance_uids, files : tuple of str
        Per slice: SOP Instance UID and the file (or ``<dataset N>``) it comes from.
    frame_numbers : tuple of int
        Per slice: the 0-based frame of its object (0 for single-frame files).
    windows : tuple of tuple of VOI
        Per slice: the window (or VOI LUT) of each preset channel.
    channels : tuple of (int, str)
        Per output channel: the slice offset it shows (``-k .. k``) and its preset; channel
        ``(d + k) * presets + p`` shows slice ``i + d`` (clamped) with preset ``p``.
    geometry : Geometry
        The geometry of the whole series (spacing report: gaps, irregularity, tilt).

    ``volume.save("scroll.gif")`` writes the slices as an animation (:meth:`save`).
    """

    def __init__(self, pixels: np.ndarray, prepared: Prepared, selection: Sequence[int], neighbours: int):
        plan = prepared.plan
        geometry = plan.geometry
        headers = [plan.headers[i] for i in selection]
        self.pixels = pixels
        self.series_uid = plan.series_uid
        self.modality = headers[0].modality
        self.description = headers[0].description
        self.geometry = geometry
        self.selection = tuple(selection)
        self.positions = None if geometry.positions is None else geometry.positions[list(selection)]
        self.orientation = geometry.orientation
        self.spacing = geometry.spacing
        self.affine = _selection_affine(geometry, list(selection))
        self.sop_instance_uids = tuple(h.sop_uid for h in headers)
        self.files = tuple(h.name for h in headers)
        self.frame_numbers = tuple(h.frame for h in headers)
        self.windows = tuple(prepared.vois[i] for i in selection)
        self.channels = tuple((d, label) for d in range(-neighbours, neighbours + 1) for label in prepared.labels)
        self.skipped = plan.skipped
        # the one multi-frame object every slice is a frame of (a clip: its header times the frames), or None
        first = headers[0]
        self._timed_source: Any = None
        if first.frames > 1 and all(h.source == first.source for h in headers):
            source, datasets = first.source, plan.datasets
            self._timed_source = datasets[source] if isinstance(source, int) and datasets is not None else source

    def frame_durations(self) -> List[float]:
        """How long each slice is shown in an animation (ms): the frame timing of the header
        (:func:`dicomrender.dicom.timing.frame_durations`) when every slice is a frame of one multi-frame
        object, else ``1000 / DEFAULT_FRAME_RATE`` (a series of files has no time between slices)."""
        if self._timed_source is None:
            return [1000.0 / DEFAULT_FRAME_RATE] * len(self)
        ds, _ = read_dataset(self._timed_source, stop_before_pixels=True)
        return frame_durations(ds, list(self.frame_numbers))

    def save(self, path, *, fps: Optional[float] = None, quality: int = 95, compress_level: int = 6,
             lossless: bool = False) -> str:
        """Write the slices, in position order, as an animation: ``.gif``, ``.webp``, ``.apng`` or ``.mp4``
        (needs ``dicomrender[video]``), atomically (README "Animated output").

        Parameters
        ----------
        path : str or os.PathLike
            The file; its suffix gives the format.
        fps : float, optional
            Frames per second; default :meth:`frame_durations` (10 frames per second for a series of
            files).
        quality : int
            Lossy WebP and MP4 quality, 1-100.
        compress_level : int
            APNG compression level, 0-9.
        lossless : bool
            WebP: lossless instead of ``quality``.

        Returns
        -------
        str
            The path written.

        Raises
        ------
        InvalidArgumentError
            Another suffix (``attribute="path"``), a bad ``fps``, ``quality`` or ``compress_level``, MP4
            without PyAV (``attribute="format"``), or a number of channels other than 1 (grey) or 3 (RGB)
            (``attribute="preset"``).
        """
        fmt = ANIMATED_FORMATS.get(os.path.splitext(os.fspath(path))[1].lower())
        if fmt is None:
            raise InvalidArgumentError(f"Volume.save writes an animation (.gif, .webp, .apng, .mp4), not "
                                       f"{os.fspath(path)!r}: numpy.save writes the pixels", attribute="path")
        check_encoding(quality, compress_level)
        if fmt == "MP4" and not has_video():
            raise InvalidArgumentError("MP4 output needs PyAV: pip install 'dicomrender[video]'", attribute="format")
        try:
            check_channels(1 if self.pixels.ndim == 3 else self.pixels.shape[-1])
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"cannot write {self.shape} to {fmt}: {exc}", attribute=exc.attribute) from None
        durations = fps_durations(fps, len(self)) if fps is not None else self.frame_durations()
        write_animation(self.pixels, path, durations, quality=quality, compress_level=compress_level,
                        lossless=lossless, fsync=True)
        return os.fspath(path)

    @property
    def origin(self) -> Optional[np.ndarray]:
        return first_position(self.positions)

    @property
    def ras_affine(self) -> Optional[np.ndarray]:
        return ras_of(self.affine)

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.pixels, dtype=dtype, copy=True)
        return self.pixels if dtype is None else self.pixels.astype(dtype, copy=False)

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.pixels.shape

    @property
    def dtype(self) -> np.dtype:
        return self.pixels.dtype

    @property
    def ndim(self) -> int:
        return self.pixels.ndim

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, key) -> np.ndarray:
        return self.pixels[key]

    def __repr__(self) -> str:
        spacing = "x".join("?" if v is None else f"{v:g}" for v in self.spacing)
        return (f"<Volume {self.series_uid or '(no SeriesInstanceUID)'} {self.modality} shape={self.shape} "
                f"spacing={spacing} mm sorted by {self.geometry.sorted_by}>")


def _selection_affine(geometry: Geometry, selection: List[int]) -> Optional[np.ndarray]:
    if geometry.affine is None or geometry.positions is None:
        return None
    steps = np.diff(selection)
    if len(steps) and np.any(steps != steps[0]):
        return None
    affine = geometry.affine.copy()
    affine[:3, 2] *= int(steps[0]) if len(steps) else 1
    affine[:3, 3] = geometry.positions[selection[0]]
    return affine


def render_series(src, preset: Union[str, Sequence[str], None] = None, *, window: Optional[Sequence[float]] = None,
                  series_uid: Optional[str] = None, neighbours: int = 0, frames=None, out: Optional[np.ndarray] = None,
                  jobs: Optional[int] = None, function: Optional[str] = None, invert: Optional[bool] = None,
                  strict: bool = True, per_slice: bool = False, threads: int = 1,
                  max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, executor: str = "auto", **options) -> Volume:
    """Render a series to one sorted uint8 volume with its geometry.

    Parameters
    ----------
    src : str, os.PathLike, pydicom.Dataset or sequence of them
        A folder (walked recursively; files recognised by content whatever their names), a file (a
        multi-frame or enhanced object is a series of its frames), a list of paths, or Datasets.
    preset : str or sequence of str, optional
        As :func:`dicomrender.render`; several give one channel each.  Data-driven presets
        (``auto``, ``minmax``, ``percentile``, ``histogram``) are computed once over the whole series
        and ``header`` takes one window for the series where the slices disagree (the median
        centre and width): see :mod:`dicomrender.series.channels`.  Default: the header window.
    window : (center, width), optional
        An explicit window, applied to each slice's own modality values.
    series_uid : str, optional
        The series to render when ``src`` holds several image series (required then).
    neighbours : int
        ``k``: each output slice holds slices ``i-k .. i+k`` (clamped at the ends of the series) as
        channels: channel ``(d + k) * P + p`` is slice ``i + d`` with preset ``p`` of ``P`` (slice-major:
        for ``["brain", "subdural", "head_soft_tissue"]`` and ``k=1``: brain, subdural, soft tissue of
        slice i-1, then of slice i, then of i+1).
    frames : int, slice or sequence of int, optional
        Render only these slices (0-based, in position order); default all.  Windows are still those
        of the whole series.
    out : numpy.ndarray, optional
        A C-contiguous uint8 array of the output shape to render into (written by threads).
    jobs : int, optional
        Workers reading and rendering files side by side (1: serial).  Default: the usable cores that
        are idle (the 1-minute load average beyond this process's own is taken as busy cores, as
        ``make -l`` does), one per 24 files at most.
    function, invert, strict, max_pixels, **options
        As :func:`dicomrender.render` (``voi_index=``, ``percentiles=``...).
    per_slice : bool
        Evaluate computed and header windows on each slice alone (each slice as ``render`` of its
        file gives it) instead of once over the series.
    threads : int
        Kernel threads per worker (default 1: the workers are the parallelism).
    executor : {"auto", "processes", "threads"}
        How workers run.  "auto": headers are read by forked processes (parsing holds the GIL) where
        ``os.fork`` exists and no other thread runs, else by threads; slices whose words are read
        straight from their files are rendered by threads (reading and the kernel release the GIL),
        others (compressed, in-memory datasets) by forked processes.

    Returns
    -------
    Volume
        ``numpy.asarray(volume)``: uint8 ``(slices, rows, columns)``, or ``(..., channels)`` for
        several presets or neighbours; with ``spacing``, ``origin``, ``orientation``, ``positions``,
        ``affine``, ``sop_instance_uids`` and ``files``.

    Raises
    ------
    SeriesSelectionError
        Several image series and no ``series_uid`` (the message lists them), or none.
    SeriesGeometryError, DuplicateSliceError
        Slices of different size or orientation; two slices at one position.
    SeriesError
        A file of the series cannot be read (truncated, unparseable): named in the message.

    Warns
    -----
    SeriesWarning
        Missing slices (gaps) or irregular spacing (also on ``volume.geometry``), objects without
        pixels skipped, header windows that differ between slices.
    """
    plan = plan_series(src, series_uid, jobs=jobs, executor=executor, max_pixels=max_pixels)
    count = len(plan.headers)
    selection = selection_of(frames, count)
    k = neighbours if isinstance(neighbours, int) and neighbours > 0 else 0
    wanted = sorted({min(max(s + d, 0), count - 1) for s in selection for d in range(-k, k + 1)})
    prepared = prepare(plan, preset, window=window, function=function, invert=invert, strict=strict,
                       per_slice=per_slice, live_slices=wanted, jobs=jobs, executor=executor, options=options)
    return render_prepared(prepared, selection, neighbours=neighbours, out=out, jobs=jobs, threads=threads,
                           executor=executor)
