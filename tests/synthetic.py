"""Synthetic DICOM datasets built with pydicom, shared by the test suites."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def new_dataset(sop_class: str, modality: str) -> Dataset:
    """An empty data set of ``sop_class`` with its file meta (Explicit VR Little Endian) and a new SOP
    Instance UID."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    return ds



def make_dataset(pixels: np.ndarray, *, bits_stored: int | None = None, high_bit: int | None = None,
                 signed: bool | None = None, photometric: str = "MONOCHROME2", modality: str = "CT",
                 **attributes) -> Dataset:
    """A minimal valid image dataset holding ``pixels`` (frames, rows, cols) or (rows, cols) as native data.

    Keyword attributes are set as DICOM keywords (e.g. ``RescaleIntercept=-1024``).
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        frames, (rows, cols) = None, pixels.shape
    else:
        frames, rows, cols = pixels.shape
    allocated = pixels.dtype.itemsize * 8
    ds = new_dataset(CT_IMAGE_STORAGE, modality)
    ds.Rows, ds.Columns = rows, cols
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = allocated
    ds.BitsStored = allocated if bits_stored is None else bits_stored
    ds.HighBit = ds.BitsStored - 1 if high_bit is None else high_bit
    ds.PixelRepresentation = int(pixels.dtype.kind == "i" if signed is None else signed)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    return ds


def write_dataset(ds: Dataset, path) -> str:
    """Write ``ds`` as a DICOM file with preamble and return the path."""
    ds.save_as(str(path), enforce_file_format=True)
    return str(path)


def colour_dataset(samples: np.ndarray, photometric: str = "RGB", planar: int = 0) -> Dataset:
    """A colour image of ``samples`` (rows, cols, 3) or (frames, rows, cols, 3), interleaved or planar
    (``planar=1``), little-endian words of the samples' dtype."""
    ds = make_dataset(samples[..., 0], modality="OT")
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = photometric
    ds.PlanarConfiguration = planar
    data = np.moveaxis(samples, -1, -3) if planar else samples
    ds.PixelData = np.ascontiguousarray(data).astype(samples.dtype.newbyteorder("<")).tobytes()
    return ds
