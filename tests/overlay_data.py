"""Overlay planes for synthetic data sets: Overlay Data packed from a boolean mask, or bits embedded in
Pixel Data words.  Shared by the overlay unit tests and the dcmtk overlay conformance suite."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from pydicom.dataset import Dataset


def pack(mask: np.ndarray) -> bytes:
    """``mask`` (any shape, C order) as Overlay Data: bit i is bit i % 8 of byte i // 8, padded to even."""
    data = np.packbits(np.asarray(mask, dtype=bool).reshape(-1), bitorder="little").tobytes()
    return data + b"\0" * (len(data) % 2)


def add_overlay(ds: Dataset, mask: np.ndarray, *, group: int = 0x6000, origin: Sequence[int] = (1, 1),
                kind: str = "G", frames: Optional[int] = None, frame_origin: Optional[int] = None,
                data: Optional[bytes] = None, label: Optional[str] = None) -> Dataset:
    """Add a plane in Overlay Data: ``mask`` is ``(rows, cols)`` or ``(frames, rows, cols)``."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = mask.shape[-2:]
    ds.add_new((group, 0x0010), "US", rows)
    ds.add_new((group, 0x0011), "US", cols)
    ds.add_new((group, 0x0040), "CS", kind)
    ds.add_new((group, 0x0050), "SS", list(origin))
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    if frames is not None:
        ds.add_new((group, 0x0015), "IS", frames)
    if frame_origin is not None:
        ds.add_new((group, 0x0051), "US", frame_origin)
    if label is not None:
        ds.add_new((group, 0x1500), "LO", label)
    ds.add_new((group, 0x3000), "OW", pack(mask) if data is None else data)
    return ds


def add_embedded(ds: Dataset, *, group: int = 0x6000, bit: int = 15, kind: str = "G") -> Dataset:
    """Declare a plane embedded in bit ``bit`` of the Pixel Data words (the bits must be set by the caller)."""
    ds.add_new((group, 0x0010), "US", int(ds.Rows))
    ds.add_new((group, 0x0011), "US", int(ds.Columns))
    ds.add_new((group, 0x0040), "CS", kind)
    ds.add_new((group, 0x0050), "SS", [1, 1])
    ds.add_new((group, 0x0100), "US", int(ds.BitsAllocated))
    ds.add_new((group, 0x0102), "US", bit)
    return ds


def ramp(rows: int = 16, cols: int = 20, step: int = 12, frames: Optional[int] = None) -> np.ndarray:
    """12-bit stored values rising along the rows: every display level differs from its neighbours."""
    image = (np.arange(rows * cols).reshape(rows, cols) * step % 4096).astype(np.uint16)
    return image if frames is None else np.stack([(image + 37 * k) % 4096 for k in range(frames)]).astype(np.uint16)
