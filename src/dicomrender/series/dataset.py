"""``SeriesDataset``: the slices (or series) of a source as a map-style dataset for training pipelines.

It is what a PyTorch ``DataLoader`` takes as it is (``__len__`` and ``__getitem__`` returning numpy
arrays, which the default collate turns into tensors) without dicomrender importing torch, and it
pickles into worker processes: it holds the sorted slice headers and the windows decided once for
the series, never an open file or a dataset.  Each item reads only the files it shows.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..dicom.header import DEFAULT_MAX_PIXELS
from .find import scan
from .volume import Prepared, plan_from_scan, prepare, render_prepared

__all__ = ["SeriesDataset", "LAYOUTS", "ITEMS"]

LAYOUTS = ("hwc", "chw")
ITEMS = ("slice", "series")


class SeriesDataset:
    """A map-style dataset: one rendered slice (or one series) per item.

    Parameters
    ----------
    src
        As :func:`dicomrender.render_series`: a folder, a file, a list of paths or of Datasets.
    preset, window, function, invert, strict, per_slice, **options
        As :func:`dicomrender.render_series`; windows computed from the data are computed once, over
        the whole series, when the dataset is made.
    series_uid : str, optional
        The series (``item="slice"``: required when ``src`` holds several; ``item="series"``: only it).
    neighbours : int
        ``k``: each slice item holds slices ``i-k .. i+k`` as channels (edges clamped; channel order
        as in :func:`~dicomrender.render_series`).
    layout : {"hwc", "chw"}
        Slice items as ``(rows, columns, channels)`` or ``(channels, rows, columns)``; channels is
        there even when it is 1.  Series items: ``(slices, rows, columns, channels)`` or
        ``(channels, slices, rows, columns)``.
    item : {"slice", "series"}
        One slice per item (of one series), or one whole series per item (every image series of
        ``src``).
    jobs : int, optional
        Workers for reading the headers when the dataset is made (items render on one thread).

    Examples
    --------
    >>> ds = SeriesDataset("data/NECT", preset=["brain", "subdural", "head_soft_tissue"], layout="chw")
    >>> loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2)   # uint8 (16, 3, 512, 512)
    """

    def __init__(self, src, preset: Union[str, Sequence[str], None] = None, *, window=None,
                 series_uid: Optional[str] = None, neighbours: int = 0, layout: str = "hwc", item: str = "slice",
                 function: Optional[str] = None, invert: Optional[bool] = None, strict: bool = True,
                 per_slice: bool = False, jobs: Optional[int] = None, executor: str = "auto",
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, **options):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        if item not in ITEMS:
            raise ValueError(f"item must be one of {', '.join(ITEMS)}, got {item!r}")
        if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 0:
            raise ValueError(f"neighbours must be an integer >= 0, got {neighbours!r}")
        found = scan(src, jobs=jobs, executor=executor, max_pixels=max_pixels)
        label = repr(src) if isinstance(src, str) else "the source"
        if item == "slice" or series_uid is not None:
            uids: List[Optional[str]] = [series_uid]
        else:
            uids = list(dict.fromkeys(h.series_uid for h in found.headers)) or [None]
        self.series: List[Prepared] = []
        for uid in uids:
            plan = plan_from_scan(found, uid, label)
            self.series.append(prepare(plan, preset, window=window, function=function, invert=invert,
                                       strict=strict, per_slice=per_slice, jobs=jobs, executor=executor,
                                       options=options))
        self.neighbours = neighbours
        self.layout = layout
        self.item = item
        self._index: List[Tuple[int, int]] = [(p, i) for p, prepared in enumerate(self.series)
                                              for i in range(len(prepared.plan.headers))] if item == "slice" else \
            [(p, -1) for p in range(len(self.series))]

    def __len__(self) -> int:
        return len(self._index)

    def _locate(self, index) -> Tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"SeriesDataset indices are integers, got {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return self._index[int(index)]

    def __getitem__(self, index) -> np.ndarray:
        p, i = self._locate(index)
        prepared = self.series[p]
        frames = None if i < 0 else [i]
        pixels = render_prepared(prepared, frames, neighbours=self.neighbours, jobs=1, executor="threads").pixels
        if pixels.ndim == 3:
            pixels = pixels[..., np.newaxis]
        if i >= 0:
            pixels = pixels[0]
        if self.layout == "chw":
            pixels = np.ascontiguousarray(np.moveaxis(pixels, -1, 0))
        return pixels

    def info(self, index) -> Dict[str, Any]:
        """What item ``index`` shows: series UID, file(s), frame, SOP Instance UID and position."""
        p, i = self._locate(index)
        plan = self.series[p].plan
        if i < 0:
            return {"series_uid": plan.series_uid, "files": tuple(dict.fromkeys(h.name for h in plan.headers)),
                    "shape": (len(plan.headers), plan.headers[0].rows, plan.headers[0].columns),
                    "affine": plan.geometry.affine}
        header = plan.headers[i]
        position = None if plan.geometry.positions is None else plan.geometry.positions[i]
        return {"series_uid": plan.series_uid, "index": i, "file": header.name, "frame": header.frame,
                "sop_instance_uid": header.sop_uid, "position": position}

    def __repr__(self) -> str:
        return (f"<SeriesDataset {len(self)} {self.item}s, neighbours={self.neighbours}, layout={self.layout!r}, "
                f"channels={self.series[0].channels * (2 * self.neighbours + 1)}>")
