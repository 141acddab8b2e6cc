"""The pixel work of a series, one part per worker: counting values for the series windows, rendering.

A worker reads one slice at a time into one reused buffer (:class:`SliceReader`) and renders it
straight into its place in the output volume, so nothing the size of a slice is kept per slice.
With ``neighbours=k`` a slice is rendered once into a reused buffer and copied into each output slot
whose channels show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset

from .._types import VOI
from ..dicom.header import ImageInfo
from ..dicom.pixels import read_frames
from ..dicom.source import parsed_to_end, read_dataset, read_file
from ..engine import render_stored
from ..errors import DicomRenderError, PixelDataError
from ..presets.windows import header_window
from .channels import Channel, context_for
from .sources import SliceHeader
from .statistics import SeriesCounts

__all__ = ["SliceReader", "WindowJob", "RenderJob", "count_part", "render_part"]


class SliceReader:
    """Reads the allocated words of one slice at a time; the array it returns is valid until the next read.

    Native little-endian words are read from the file offset the header gave, into one buffer
    reused for every slice; other slices are read through pydicom (the last object read is kept, so
    the frames of a multi-frame object parse it once).
    """

    def __init__(self, datasets: Optional[Sequence[Dataset]] = None):
        self.datasets = datasets
        self._buffer: Optional[np.ndarray] = None
        self._object: Optional[Tuple[object, Dataset, ImageInfo]] = None

    def words(self, header: SliceHeader) -> np.ndarray:
        try:
            if header.location is not None and isinstance(header.source, str):
                return self._read_native(header)
            _, info = self._load(header)
            return read_frames(info, [header.frame]).words[0]
        except DicomRenderError as exc:
            raise exc.with_filename(header.name) from exc.__cause__

    def dataset(self, header: SliceHeader) -> Dataset:
        """The slice's whole dataset (for presets that read attributes)."""
        return self._load(header)[0]

    def _read_native(self, header: SliceHeader) -> np.ndarray:
        assert header.location is not None and isinstance(header.source, str)
        offset, nbytes = header.location
        if self._buffer is None or self._buffer.size < nbytes:
            self._buffer = np.empty(nbytes, dtype=np.uint8)
        view = memoryview(self._buffer.data)[:nbytes]
        got = 0
        with open(header.source, "rb", buffering=0) as f:
            f.seek(offset)
            while got < nbytes:
                n = f.readinto(view[got:])
                if not n:
                    break
                got += n
        if got < nbytes:
            raise PixelDataError(f"Pixel Data ends after {got} of {nbytes} bytes: the file is shorter than when "
                                 f"its header was read", attribute="PixelData")
        return self._buffer[:nbytes].view(header.word_dtype).reshape(header.rows, header.columns)

    def _load(self, header: SliceHeader) -> Tuple[Dataset, ImageInfo]:
        if self._object is None or self._object[0] != header.source:
            self._object = None  # never two objects held at once
            if isinstance(header.source, int):
                assert self.datasets is not None
                ds, _ = read_dataset(self.datasets[header.source])
            else:
                ds, size = read_file(header.source, whole=True)
                parsed_to_end(ds, header.source, size)
                ds, _ = read_dataset(ds)
            self._object = (header.source, ds, ImageInfo.from_dataset(ds, header.name, max_pixels=None))
        return self._object[1], self._object[2]


def live_vois(channel: Channel, header: SliceHeader, words: np.ndarray, reader: SliceReader, strict: bool,
              options: dict) -> List[VOI]:
    """The VOIs of a channel evaluated on one slice (a plugin's preset, or ``per_slice=True``)."""
    dataset = reader.dataset(header) if channel.needs_dataset else None
    ctx = context_for(header, words, strict, options, dataset)
    try:
        return header_window(ctx) if channel.preset is None else channel.preset.windows(ctx)
    except DicomRenderError as exc:
        raise exc.with_filename(header.name) from exc.__cause__


@dataclass
class WindowJob:
    """The pass over the pixels that data-driven windows need: counts of the whole series for the
    series windows, and the per-slice windows of channels evaluated on each slice."""

    headers: Sequence[SliceHeader]
    datasets: Optional[Sequence[Dataset]]
    count: bool
    live: Sequence[Tuple[int, Channel]]
    live_slices: frozenset
    strict: bool
    options: dict = field(default_factory=dict)


def count_part(job: WindowJob, part: range) -> Tuple[SeriesCounts, Dict[int, List[List[VOI]]]]:
    reader = SliceReader(job.datasets)
    counts = SeriesCounts()
    live: Dict[int, List[List[VOI]]] = {}
    for i in part:
        want_live = bool(job.live) and i in job.live_slices
        if not job.count and not want_live:
            continue
        header = job.headers[i]
        words = reader.words(header)
        if job.count:
            counts.add(words, header.format, header.parameters.modality, header.padding)
        if want_live:
            live[i] = [live_vois(c, header, words, reader, job.strict, job.options) for _, c in job.live]
    return counts, live


@dataclass
class RenderJob:
    """Rendering output slots: slot ``s`` shows slice ``selection[s]`` and, with ``neighbours=k``, the
    slices ``selection[s] - k .. selection[s] + k`` (clamped to the series) as channel blocks."""

    headers: Sequence[SliceHeader]
    datasets: Optional[Sequence[Dataset]]
    vois: Sequence[Tuple[VOI, ...]]
    inverts: Sequence[bool]
    selection: Sequence[int]
    neighbours: int
    out: np.ndarray
    threads: int = 1

    def sources(self, slots: range) -> Dict[int, List[Tuple[int, int]]]:
        """Slice index -> the (slot, channel block) pairs of ``slots`` that show it."""
        last = len(self.headers) - 1
        wanted: Dict[int, List[Tuple[int, int]]] = {}
        for s in slots:
            centre = self.selection[s]
            for block, d in enumerate(range(-self.neighbours, self.neighbours + 1)):
                wanted.setdefault(min(max(centre + d, 0), last), []).append((s, block))
        return dict(sorted(wanted.items()))


def render_part(job: RenderJob, slots: range) -> None:
    reader = SliceReader(job.datasets)
    out = job.out
    channels = len(job.vois[0]) if job.vois else 1
    scratch: Optional[np.ndarray] = None
    for index, targets in job.sources(slots).items():
        header = job.headers[index]
        words = reader.words(header)
        vois = job.vois[index]
        if job.neighbours == 0:
            first = targets[0][0]
            _render(words, header, vois, job.inverts[index], out[first], job.threads)
            for slot, _ in targets[1:]:  # the same slice selected twice
                out[slot] = out[first]
            continue
        if scratch is None:
            scratch = np.empty((header.rows, header.columns, channels) if channels > 1 else
                               (header.rows, header.columns), dtype=np.uint8)
        _render(words, header, vois, job.inverts[index], scratch, job.threads)
        block = scratch.reshape(header.rows, header.columns, channels)
        for slot, b in targets:
            out[slot, :, :, b * channels:(b + 1) * channels] = block


def _render(words: np.ndarray, header: SliceHeader, vois: Sequence[VOI], invert: bool, out: np.ndarray,
            threads: int) -> None:
    try:
        render_stored(words, header.format, header.parameters.modality, vois, invert=invert, out=out,
                      threads=threads)
    except DicomRenderError as exc:
        raise exc.with_filename(header.name) from exc.__cause__
