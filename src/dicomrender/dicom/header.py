"""The pixel description of a DICOM image, read from its header and checked for consistency.

:class:`ImageInfo` says how the pixels are stored (size, frames, samples, photometric
interpretation, stored format); :meth:`ImageInfo.frame_parameters` says how one frame is
displayed (modality transform, header windows, VOI LUTs), from the per-frame and shared
functional groups of enhanced objects or the top level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np
from pydicom.dataset import Dataset

from .._types import HeaderWindow, Modality, ModalityLut, Rescale, StoredFormat, VOILut
from ..errors import InvalidDatasetError, PixelDataError, PixelLimitError, UnsupportedImageError
from .elements import first_item, get, has, integer, is_transfer_syntax, number, transfer_syntax, values
from .luts import lut_table

__all__ = ["ImageInfo", "FrameParameters", "frame_count", "has_pixel_data", "header_windows", "DEFAULT_MAX_PIXELS",
           "PIXEL_KEYWORDS", "GRAYSCALE", "PHOTOMETRIC"]

#: Largest number of pixels (rows x columns x frames x samples) rendered unless ``max_pixels`` says otherwise.
DEFAULT_MAX_PIXELS = 1 << 31

#: The pixel data elements, with the dtype of the float ones.
PIXEL_KEYWORDS = (("PixelData", None), ("FloatPixelData", np.float32), ("DoubleFloatPixelData", np.float64))
GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
#: Photometric interpretations by Samples per Pixel (PS3.3 C.7.6.3.1.2).
PHOTOMETRIC = {1: GRAYSCALE + ("PALETTE COLOR",),
               3: ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_422", "YBR_PARTIAL_420")}


def frame_count(ds: Dataset, filename: Optional[str] = None) -> int:
    """Number of Frames (1 when absent); :class:`InvalidDatasetError` when not a positive integer."""
    value = get(ds, "NumberOfFrames", 1)
    try:
        frames = int(value if value not in (None, "") else 1)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"NumberOfFrames must be an integer, got {value!r}", filename=filename,
                                  attribute="NumberOfFrames") from None
    if frames < 1:
        raise InvalidDatasetError(f"NumberOfFrames must be >= 1, got {frames}", filename=filename,
                                  attribute="NumberOfFrames")
    return frames


def has_pixel_data(ds: Dataset) -> bool:
    """Whether the data set holds one of the pixel data elements."""
    return any(has(ds, keyword) for keyword, _ in PIXEL_KEYWORDS)

@dataclass
class FrameParameters:
    """What the header says about one frame: modality transform and VOI."""

    modality: Modality
    windows: List[HeaderWindow]
    voi_luts: List[VOILut]
    hounsfield: bool

    def key(self) -> tuple:
        modality_key = self.modality.key() if hasattr(self.modality, "key") else self.modality
        return (modality_key, tuple(self.windows), tuple(v.key() for v in self.voi_luts))


@dataclass(frozen=True)
class ImageInfo:
    """The pixel description of a DICOM image, checked for consistency (immutable)."""

    dataset: Dataset = field(repr=False)
    filename: Optional[str]
    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    photometric: str
    format: Optional[StoredFormat]
    float_dtype: Optional[np.dtype]
    pixel_keyword: str
    modality_name: str
    inverse: bool
    pixel_padding: Optional[tuple] = None
    #: BitsAllocated 1: eight pixels per byte, unpacked to one uint8 word each.
    packed_bits: bool = False

    @classmethod
    def from_dataset(cls, ds: Dataset, filename: Optional[str] = None,
                     max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> "ImageInfo":
        keyword, float_dtype = next(((k, t) for k, t in PIXEL_KEYWORDS if has(ds, k)), (None, None))
        if keyword is None:
            raise PixelDataError("the data set has no Pixel Data (7FE0,0010)", attribute="PixelData")
        tsyntax = transfer_syntax(ds)
        if tsyntax is not None and not is_transfer_syntax(str(tsyntax)):
            raise UnsupportedImageError(f"TransferSyntaxUID {str(tsyntax)!r} is not a known transfer syntax",
                                        attribute="TransferSyntaxUID")
        rows, columns = integer(ds, "Rows"), integer(ds, "Columns")
        frames = frame_count(ds)
        spp = integer(ds, "SamplesPerPixel", 1)
        for name, value in (("Rows", rows), ("Columns", columns), ("NumberOfFrames", frames), ("SamplesPerPixel", spp)):
            if value < 1:
                raise InvalidDatasetError(f"{name} must be >= 1, got {value}", attribute=name)
        if spp not in (1, 3):
            raise InvalidDatasetError(f"SamplesPerPixel must be 1 or 3, got {spp}", attribute="SamplesPerPixel")
        total = rows * columns * frames * spp
        if max_pixels is not None and total > max_pixels:
            raise PixelLimitError(f"{rows}x{columns}x{frames}x{spp} = {total} pixels exceeds max_pixels={max_pixels}",
                                  attribute="max_pixels")
        photometric = str(get(ds, "PhotometricInterpretation", "MONOCHROME2" if spp == 1 else "RGB") or
                          "").strip().upper()
        if photometric not in PHOTOMETRIC[spp]:
            known = PHOTOMETRIC[1] + PHOTOMETRIC[3]
            reason = "is unknown" if photometric not in known else f"does not fit SamplesPerPixel {spp}"
            raise InvalidDatasetError(f"PhotometricInterpretation {photometric!r} {reason} (expected one of "
                                      f"{', '.join(PHOTOMETRIC[spp])})", attribute="PhotometricInterpretation")
        bits_allocated = integer(ds, "BitsAllocated", 32 if float_dtype == np.float32 else 64 if float_dtype else None)
        packed_bits = False
        if float_dtype is not None:
            fmt = None
            if bits_allocated != np.dtype(float_dtype).itemsize * 8:
                raise InvalidDatasetError(f"BitsAllocated must be {np.dtype(float_dtype).itemsize * 8} for {keyword}, "
                                          f"got {bits_allocated}", attribute="BitsAllocated")
        else:
            if bits_allocated not in (1, 8, 16, 32):
                raise UnsupportedImageError(f"BitsAllocated {bits_allocated} is not supported (1, 8, 16 or 32)",
                                            attribute="BitsAllocated")
            bits_stored = integer(ds, "BitsStored", bits_allocated)
            high_bit = integer(ds, "HighBit", bits_stored - 1)
            representation = integer(ds, "PixelRepresentation", 0)
            if representation not in (0, 1):
                raise InvalidDatasetError(f"PixelRepresentation must be 0 or 1, got {representation}",
                                          attribute="PixelRepresentation")
            if bits_stored > bits_allocated:
                raise InvalidDatasetError(f"BitsStored ({bits_stored}) exceeds BitsAllocated ({bits_allocated})",
                                          attribute="BitsStored")
            if bits_allocated == 1:
                if spp != 1 or high_bit != 0 or representation:
                    raise InvalidDatasetError("BitsAllocated 1 needs one unsigned sample with HighBit 0",
                                              attribute="BitsAllocated")
                packed_bits, bits_allocated = True, 8
            fmt = StoredFormat(bits_allocated, bits_stored, high_bit, bool(representation))
        inverse = photometric == "MONOCHROME1" or str(get(ds, "PresentationLUTShape", "")).strip().upper() == "INVERSE"
        padding = None
        if has(ds, "PixelPaddingValue"):
            try:
                first = int(ds.PixelPaddingValue)
                last = int(ds.get("PixelPaddingRangeLimit", first))
                padding = (min(first, last), max(first, last))
            except (TypeError, ValueError):
                raise InvalidDatasetError("PixelPaddingValue must be an integer",
                                          attribute="PixelPaddingValue") from None
        return cls(ds, filename, rows, columns, frames, spp, photometric, fmt,
                   np.dtype(float_dtype) if float_dtype else None, keyword,
                   str(get(ds, "Modality", "")).strip().upper(), inverse, padding, packed_bits)

    # ---- header parameters ------------------------------------------------

    @property
    def is_grayscale(self) -> bool:
        return self.samples_per_pixel == 1 and self.photometric in GRAYSCALE

    @property
    def signed(self) -> bool:
        return bool(self.format and self.format.signed)

    @property
    def stored_range(self) -> tuple:
        """Smallest and largest stored value the format can hold (float data: +-inf)."""
        fmt = self.format
        if fmt is None:
            return (-np.inf, np.inf)
        if fmt.signed:
            return (-(1 << (fmt.bits_stored - 1)), (1 << (fmt.bits_stored - 1)) - 1)
        return (0, (1 << fmt.bits_stored) - 1)

    def frame_parameters(self, index: int) -> FrameParameters:
        """Modality and VOI of frame ``index``: per-frame groups, then shared groups, then the top level."""
        ds = self.dataset
        per_frame = None
        seq = get(ds, "PerFrameFunctionalGroupsSequence")
        if seq is not None and index < len(seq):
            per_frame = seq[index]
        shared = first_item(ds, "SharedFunctionalGroupsSequence")
        sources = [s for s in (per_frame, shared) if s is not None]

        def group(keyword):
            for source in sources:
                item = first_item(source, keyword)
                if item is not None:
                    return item
            return None

        transform = group("PixelValueTransformationSequence") or ds
        modality_lut = first_item(ds, "ModalityLUTSequence")
        if modality_lut is not None and transform is ds:
            data, first, _ = lut_table(modality_lut, self.signed, "ModalityLUTSequence", self.stored_range)
            modality: Modality = ModalityLut(data, first)
        else:
            modality = Rescale(number(transform, "RescaleSlope", 1.0), number(transform, "RescaleIntercept", 0.0))
        rescale_type = str(get(transform, "RescaleType", "") or "").strip().upper()
        hounsfield = rescale_type == "HU" or (self.modality_name == "CT" and rescale_type in ("", "HU")
                                               and isinstance(modality, Rescale))
        voi_source = group("FrameVOILUTSequence") or ds
        windows = header_windows(voi_source)
        voi_luts = []
        # The VOI LUT maps modality values: its first mapped value is signed when they can be negative.
        low, high = self.stored_range
        if isinstance(modality, Rescale):
            signed_modality = min(low * modality.slope, high * modality.slope) + modality.intercept < 0
        else:
            signed_modality = False  # Modality LUT entries are unsigned
        for item in get(voi_source, "VOILUTSequence") or get(ds, "VOILUTSequence") or []:
            data, first, bits = lut_table(item, signed_modality, "VOILUTSequence")
            voi_luts.append(VOILut(data, first, bits, str(item.get("LUTExplanation", "") or "") or None))
        return FrameParameters(modality, windows, voi_luts, hounsfield)

    # ---- pixels -------------------------------------------------------------

    def frame_indices(self, frame) -> Sequence[int]:
        """The 0-based frames selected by ``frame`` (None: all)."""
        if frame is None:
            # a range, not a list: NumberOfFrames is not yet checked against the Pixel Data length
            return range(self.frames)
        try:
            index = int(frame)
        except (TypeError, ValueError):
            raise ValueError(f"frame must be an integer, got {frame!r}") from None
        if index < 0:
            index += self.frames
        if not 0 <= index < self.frames:
            raise InvalidDatasetError(f"frame {frame} out of range: NumberOfFrames is {self.frames}",
                                      attribute="NumberOfFrames")
        return [index]

    @property
    def word_dtype(self) -> np.dtype:
        """The dtype of one allocated word (float data: its float dtype)."""
        if self.format is None:
            assert self.float_dtype is not None
            return self.float_dtype
        return np.dtype(f"{'i' if self.format.signed else 'u'}{self.format.bits_allocated // 8}")

    @property
    def transfer_syntax(self):
        """The Transfer Syntax UID of the file, or None."""
        return transfer_syntax(self.dataset)

    @property
    def compressed(self) -> bool:
        """Whether Pixel Data is encapsulated (compressed)."""
        tsyntax = self.transfer_syntax
        return bool(tsyntax is not None and tsyntax.is_compressed and self.pixel_keyword == "PixelData")

def header_windows(ds: Dataset) -> List[HeaderWindow]:
    centers = values(get(ds, "WindowCenter"))
    widths = values(get(ds, "WindowWidth"))
    if not centers or not widths:
        return []
    function = str(get(ds, "VOILUTFunction", "") or "LINEAR")
    explanations = [str(e) for e in values(get(ds, "WindowCenterWidthExplanation"))]
    windows = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        explanation = explanations[i] if i < len(explanations) else None
        windows.append(HeaderWindow(str(c), str(w), function, explanation))
    return windows
