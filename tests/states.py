"""Synthetic presentation states for the tests: a GSPS referencing an image made by tests/synthetic.py."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from .synthetic import make_dataset, new_dataset

GSPS = "1.2.840.10008.5.1.4.1.1.11.1"


def make_image(pixels: np.ndarray, **attributes) -> Dataset:
    """An image with SOP Instance and Series Instance UIDs (a state must be able to name it)."""
    ds = make_dataset(pixels, **attributes)
    ds.SeriesInstanceUID = generate_uid()
    return ds


def reference(image: Dataset, frames=None) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = image.SOPClassUID
    ref.ReferencedSOPInstanceUID = image.SOPInstanceUID
    if frames is not None:
        ref.ReferencedFrameNumber = list(frames)
    return ref


def make_state(image: Dataset, *, window=None, frames=None, **attributes) -> Dataset:
    """A Grayscale Softcopy Presentation State referencing ``image`` (``frames``: 1-based Referenced Frame
    Numbers), with ``window = (center, width)`` as its Softcopy VOI LUT; other keywords set as attributes."""
    ds = new_dataset(GSPS, "PR")
    series = Dataset()
    series.SeriesInstanceUID = image.SeriesInstanceUID
    series.ReferencedImageSequence = Sequence([reference(image, frames)])
    ds.ReferencedSeriesSequence = Sequence([series])
    ds.PresentationLUTShape = "IDENTITY"
    if window is not None:
        item = Dataset()
        item.WindowCenter, item.WindowWidth = str(window[0]), str(window[1])
        ds.SoftcopyVOILUTSequence = Sequence([item])
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def add_overlay(ds: Dataset, group: int, bits: np.ndarray, origin=(1, 1)) -> None:
    """An overlay plane of ``bits`` (bool rows x columns) in Overlay Data of ``ds``."""
    packed = np.packbits(bits.astype(np.uint8).ravel(), bitorder="little").tobytes()
    packed += b"\0" * (len(packed) % 2)
    for element, vr, value in ((0x0010, "US", bits.shape[0]), (0x0011, "US", bits.shape[1]), (0x0040, "CS", "G"),
                               (0x0050, "SS", list(origin)), (0x0100, "US", 1), (0x0102, "US", 0),
                               (0x3000, "OW", packed)):
        ds.add_new(group << 16 | element, vr, value)
