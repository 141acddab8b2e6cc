"""Synthetic RGB (colour) data sets for the rendered-parameter and animation tests."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from .synthetic import new_dataset

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def make_rgb_dataset(pixels: np.ndarray, **attributes) -> Dataset:
    """An RGB data set holding uint8 ``pixels`` (rows, cols, 3) or (frames, rows, cols, 3), interleaved.

    Keyword attributes are set as DICOM keywords (e.g. ``ICCProfile=b"..."``, ``FrameTime=40``).
    """
    pixels = np.asarray(pixels, np.uint8)
    frames = pixels.shape[0] if pixels.ndim == 4 else None
    rows, cols = pixels.shape[-3:-1]
    ds = new_dataset(SECONDARY_CAPTURE, "OT")
    ds.Rows, ds.Columns = rows, cols
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds
