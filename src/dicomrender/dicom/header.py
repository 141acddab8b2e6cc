"""The pixel description of a DICOM image, read from its header and checked for consistency.

:class:`ImageInfo` says how the pixels are stored (size, frames, samples, photometric
interpretation, stored format); :meth:`ImageInfo.frame_parameters` says how one frame is
displayed (modality transform, header windows, VOI LUTs), from the per-frame and shared
functional groups of enhanced objects or the top level.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, overload

import numpy as np
import pydicom.uid
from pydicom.dataset import Dataset

from .._types import HeaderWindow, Modality, ModalityLut, Rescale, StoredFormat, VOILut
from ..errors import InvalidArgumentError, InvalidDatasetError, PixelDataError, PixelLimitError, UnsupportedImageError
from .elements import first_item, get, has, integer, is_transfer_syntax, number, transfer_syntax, values
from .luts import lut_table

__all__ = ["ImageInfo", "FrameParameters", "VOILuts", "frame_count", "has_pixel_data", "header_windows",
           "check_max_memory", "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_MEMORY", "WORKING_MEMORY", "PIXEL_KEYWORDS",
           "GRAYSCALE", "PHOTOMETRIC"]

#: Largest number of pixels (rows x columns x frames x samples) rendered unless ``max_pixels`` says otherwise.
DEFAULT_MAX_PIXELS = 1 << 31

#: Largest estimated peak memory of one render (bytes) unless ``max_memory`` says otherwise: 4 GiB.
DEFAULT_MAX_MEMORY = 4 << 30

#: What the steps that work block by block hold at once, at most (data-driven windows over wide or float
#: data, colour conversion, LUTs over wide data); an image with few pixels needs less (~160 bytes each).
WORKING_MEMORY = 64 << 20
_WORKING_PER_PIXEL = 160

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


def check_max_memory(max_memory) -> Optional[int]:
    """``max_memory`` as an int, checked: None, or a whole number of bytes >= 1."""
    if max_memory is None:
        return None
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, np.integer)):
        raise TypeError(f"max_memory must be an integer number of bytes or None, got {max_memory!r}")
    if max_memory < 1:
        raise InvalidArgumentError(f"max_memory must be >= 1 byte, got {max_memory}", attribute="max_memory")
    return int(max_memory)


def has_pixel_data(ds: Dataset) -> bool:
    """Whether the data set holds one of the pixel data elements."""
    return any(has(ds, keyword) for keyword, _ in PIXEL_KEYWORDS)

class _Parsed:
    """What one image's header items parse to, each distinct item once: keyed by the identity of the
    pydicom items, which the entry holds (so an id can never be reused by another item meanwhile)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: Dict[tuple, Tuple[tuple, Any]] = {}

    def get(self, kind: str, items: tuple, make: Callable[[], Any]) -> Any:
        key = (kind,) + tuple(map(id, items))
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = (items, make())
        return entry[1]


class VOILuts(SequenceABC):
    """The VOI LUT items of a frame as a read-only sequence of :class:`VOILut`, each parsed when first
    read and once per image: a header may list thousands of items, and a render uses one."""

    __slots__ = ("_items", "_signed", "_parsed")

    def __init__(self, items, signed: bool, parsed: _Parsed):
        self._items = items
        self._signed = signed
        self._parsed = parsed

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> VOILut: ...

    @overload
    def __getitem__(self, index: slice) -> List[VOILut]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[VOILut, List[VOILut]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        item = self._items[index]
        return self._parsed.get("voilut-" if self._signed else "voilut+", (item,), lambda: self._parse(item))

    def _parse(self, item: Dataset) -> VOILut:
        data, first, bits = lut_table(item, self._signed, "VOILUTSequence")
        return VOILut(data, first, bits, str(item.get("LUTExplanation", "") or "") or None)

    def key(self) -> tuple:
        """The value of every item (all parsed), as :meth:`VOILut.key` gives it, each computed once."""
        return self._parsed.get("keys-" if self._signed else "keys+", (self._items,),
                                lambda: tuple(self._parsed.get("key", (lut,), lut.key) for lut in self))

    def __repr__(self) -> str:
        return f"<VOILuts: {len(self)} item(s)>"


@dataclass
class FrameParameters:
    """What the header says about one frame: modality transform and VOI."""

    modality: Modality
    windows: List[HeaderWindow]
    voi_luts: Sequence[VOILut]
    hounsfield: bool
    #: The image's parsed items, where LUT keys are kept: each computed once, not once per frame.
    _parsed: Optional[_Parsed] = field(default=None, repr=False, compare=False)
    #: :meth:`key`, once computed (frames sharing their header items share one FrameParameters).
    _key: Optional[tuple] = field(default=None, init=False, repr=False, compare=False)

    def key(self) -> tuple:
        """What tells the parameters of two frames apart (the values, not the header items)."""
        if self._key is None:
            modality = self.modality
            modality_key = modality if isinstance(modality, Rescale) else \
                modality.key() if self._parsed is None else self._parsed.get("key", (modality,), modality.key)
            luts = self.voi_luts
            self._key = (modality_key, tuple(self.windows),
                         luts.key() if isinstance(luts, VOILuts) else tuple(v.key() for v in luts))
        return self._key


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
    #: The memory budget of a render (bytes; None: none): see :meth:`check_memory`.
    max_memory: Optional[int] = DEFAULT_MAX_MEMORY
    #: Header items parsed so far (LUTs, frame parameters): each distinct item once per image.
    _parsed: _Parsed = field(default_factory=_Parsed, repr=False, compare=False)

    @classmethod
    def from_dataset(cls, ds: Dataset, filename: Optional[str] = None, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                     max_memory: Optional[int] = DEFAULT_MAX_MEMORY) -> "ImageInfo":
        max_memory = check_max_memory(max_memory)
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
                   str(get(ds, "Modality", "")).strip().upper(), inverse, padding, packed_bits,
                   max_memory)

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

    @property
    def per_frame_parameters(self) -> bool:
        """Whether frames may differ in modality or VOI (Per-Frame Functional Groups): else every frame
        has the :meth:`frame_parameters` of frame 0."""
        return bool(get(self.dataset, "PerFrameFunctionalGroupsSequence"))

    def frame_parameters(self, index: int) -> FrameParameters:
        """Modality and VOI of frame ``index``: per-frame groups, then shared groups, then the top level.

        Frames whose groups are the same header items get the same object, and each LUT item is
        parsed once per image (VOI LUTs when first read: see :class:`VOILuts`).
        """
        ds = self.dataset
        per_frame = None
        seq, shared = self._parsed.get("groups", (), lambda: (get(ds, "PerFrameFunctionalGroupsSequence"),
                                                              first_item(ds, "SharedFunctionalGroupsSequence")))
        if seq is not None and index < len(seq):
            per_frame = seq[index]
        sources = [s for s in (per_frame, shared) if s is not None]

        def group(keyword):
            for source in sources:
                item = first_item(source, keyword)
                if item is not None:
                    return item
            return None

        transform = group("PixelValueTransformationSequence") or ds
        voi_source = group("FrameVOILUTSequence") or ds
        return self._parsed.get("frame", (transform, voi_source), lambda: self._frame_parameters(transform, voi_source))

    def _frame_parameters(self, transform: Dataset, voi_source: Dataset) -> FrameParameters:
        # each part once per header item: enhanced files give every frame its own items, mostly equal
        modality, hounsfield = self._parsed.get("modality", (transform,), lambda: self._modality(transform))
        windows, items = self._parsed.get("voi", (voi_source,), lambda: (
            header_windows(voi_source),
            get(voi_source, "VOILUTSequence") or get(self.dataset, "VOILUTSequence") or ()))
        # The VOI LUT maps modality values: its first mapped value is signed when they can be negative.
        low, high = self.stored_range
        if isinstance(modality, Rescale):
            signed_modality = min(low * modality.slope, high * modality.slope) + modality.intercept < 0
        else:
            signed_modality = False  # Modality LUT entries are unsigned
        return FrameParameters(modality, windows, VOILuts(items, signed_modality, self._parsed), hounsfield,
                               self._parsed)

    def _modality(self, transform: Dataset) -> Tuple[Modality, bool]:
        """The modality transform a Pixel Value Transformation item (or the top level) gives, and whether
        its values are Hounsfield units."""
        ds = self.dataset
        modality_lut = first_item(ds, "ModalityLUTSequence")
        if modality_lut is not None and transform is ds:
            modality: Modality = self._parsed.get("modlut", (modality_lut,), lambda: ModalityLut(
                *lut_table(modality_lut, self.signed, "ModalityLUTSequence", self.stored_range)[:2]))
        else:
            modality = Rescale(number(transform, "RescaleSlope", 1.0), number(transform, "RescaleIntercept", 0.0))
        rescale_type = str(get(transform, "RescaleType", "") or "").strip().upper()
        hounsfield = rescale_type == "HU" or (self.modality_name == "CT" and rescale_type in ("", "HU")
                                               and isinstance(modality, Rescale))
        return modality, hounsfield

    # ---- memory -------------------------------------------------------------

    def memory_needed(self, frames: int, channels: int) -> Tuple[int, int, int]:
        """``(output, decoded, working)``: the bytes a render of ``frames`` of the frames to ``channels``
        uint8 channels holds at its peak beyond the data set, estimated from the header.

        ``decoded``: the pixel words held while rendering (none for native little-endian data, which
        is read in place; compressed data is decoded whole, plus one frame of the decoder's);
        ``working``: what the block-by-block steps hold (:data:`WORKING_MEMORY` at most).
        """
        pixels = self.rows * self.columns * frames
        frame_words = self.rows * self.columns * self.samples_per_pixel * self.word_dtype.itemsize
        if self.compressed:
            decoded = frame_words * (frames + 1)
        elif self.packed_bits or self.transfer_syntax == pydicom.uid.ExplicitVRBigEndian:
            decoded = frame_words * frames
        elif self.photometric == "YBR_FULL_422":  # expanded a frame at a time
            decoded = 2 * frame_words
        else:
            decoded = 0
        working = min(WORKING_MEMORY, _WORKING_PER_PIXEL * pixels * self.samples_per_pixel)
        return pixels * channels, decoded, working

    def check_memory(self, frames: int, channels: int) -> None:
        """Refuse, with :class:`PixelLimitError` naming ``max_memory``, a render whose estimated peak
        (:meth:`memory_needed`) exceeds the budget: called before the pixels are decoded or the output
        allocated."""
        if self.max_memory is None:
            return
        output, decoded, working = self.memory_needed(frames, channels)
        if output + decoded + working > self.max_memory:
            raise PixelLimitError(
                f"rendering {frames} frame(s) of {self.rows}x{self.columns}x{self.samples_per_pixel} to {channels} "
                f"channel(s) needs about {output + decoded + working} bytes ({output} of output, {decoded} of "
                f"decoded pixels, {working} working), more than max_memory={self.max_memory}",
                attribute="max_memory")

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
