"""Reading DICOM: the source, the pixel description and the stored words of each frame.

Native (uncompressed) Pixel Data is viewed straight from the element's bytes,
one frame at a time if asked, so the kernel sees the allocated words exactly as
stored (overlay or garbage bits above High Bit included: the kernel masks
them).  Compressed Pixel Data goes through pydicom's decoders.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence

import numpy as np
import pydicom
import pydicom.config
import pydicom.datadict
import pydicom.hooks
import pydicom.values
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag

from . import _codestream
from .errors import (DicomRenderError, InvalidDatasetError, MissingCodecError, NotDicomError, PixelDataError,
                     UnsupportedImageError)
from .windowing import Modality, ModalityLut, Rescale, StoredFormat, VOILut, Window

__all__ = ["read_dataset", "ImageInfo", "DEFAULT_MAX_PIXELS"]

#: Largest number of pixels (rows x columns x frames x samples) rendered unless ``max_pixels`` says otherwise.
DEFAULT_MAX_PIXELS = 1 << 31

_PIXEL_KEYWORDS = (("PixelData", None), ("FloatPixelData", np.float32), ("DoubleFloatPixelData", np.float64))
GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
#: Photometric interpretations by Samples per Pixel (PS3.3 C.7.6.3.1.2).
PHOTOMETRIC = {1: GRAYSCALE + ("PALETTE COLOR",),
               3: ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_422", "YBR_PARTIAL_420")}


def read_dataset(src, *, stop_before_pixels: bool = False) -> tuple:
    """Return ``(dataset, filename)`` for a Dataset, a path or a binary file-like object.

    Raises :class:`NotDicomError` naming the file when it is not DICOM.
    """
    if isinstance(src, Dataset):
        filename = src.filename if isinstance(getattr(src, "filename", None), str) else None
        _parse_elements(src, filename)
        return src, filename
    if isinstance(src, (str, os.PathLike)):
        filename = os.fspath(src)
    else:
        filename = getattr(src, "name", None)
        filename = filename if isinstance(filename, str) else None
    try:
        ds = pydicom.dcmread(src, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        # Files without the 128-byte preamble are still DICOM when the data set parses.
        if hasattr(src, "seek"):
            src.seek(0)
        try:
            ds = pydicom.dcmread(src, stop_before_pixels=stop_before_pixels, force=True)
        except Exception as exc:
            raise NotDicomError(f"not a DICOM file ({exc})", filename=filename) from None
        if "SOPClassUID" not in ds and "Rows" not in ds:
            raise NotDicomError("not a DICOM file (no DICM prefix and no image attributes)", filename=filename)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:
        raise NotDicomError(f"cannot parse as DICOM: {type(exc).__name__}: {exc}", filename=filename) from None
    _parse_elements(ds, filename)
    return ds, filename


#: Element groups rendering reads: Image Pixel / LUTs / windows (0028), functional groups (5200),
#: pixel data (7FE0); with Modality and SOP Class (0008,0060 / 0008,0016).
_RENDER_GROUPS = frozenset((0x0028, 0x5200, 0x7FE0))
_RENDER_TAGS = frozenset((0x00080016, 0x00080060))


#: VRs whose values pydicom decodes without the character set and whose raw VR is the dictionary's.
_PLAIN_VRS = frozenset(("US", "UL", "SS", "SL", "FL", "FD", "DS", "IS", "CS", "UI"))
_PLAIN: dict = {}


def _plain_vr(tag: BaseTag) -> Optional[str]:
    """The dictionary VR of a public element with a plain VR (see _decode_plain), else None."""
    try:
        return _PLAIN[tag]
    except KeyError:
        pass
    vr = None
    if not tag.is_private:
        try:
            vr = pydicom.datadict.dictionary_VR(tag)
        except KeyError:
            pass
    _PLAIN[tag] = vr = vr if vr in _PLAIN_VRS else None
    return vr


def _default_conversion() -> bool:
    """True while nobody has customised how pydicom turns raw elements into values."""
    hooks = pydicom.hooks.hooks
    return (pydicom.config.data_element_callback is None and not hooks.raw_element_kwargs
            and hooks.raw_element_vr is pydicom.hooks.raw_element_vr
            and hooks.raw_element_value is pydicom.hooks.raw_element_value)


def _decode_plain(raw: RawDataElement, vr: str) -> Optional[DataElement]:
    """The DataElement pydicom makes of ``raw`` (a public element of a plain VR), made with pydicom's
    value converter alone: its generic path (hooks, VR lookup, retries) costs ~8 µs per element,
    more than the windowing of a whole slice.  None for anything unusual (empty, deferred, another
    VR in the file, a value the converter refuses): pydicom's own path then decides."""
    if raw.value is None or not raw.length or (raw.VR is not None and raw.VR != vr):
        return None
    converter = pydicom.values.converters[vr]
    try:
        if isinstance(converter, tuple):
            value = converter[0](raw.value, raw.is_little_endian, converter[1])
        else:
            value = converter(raw.value, raw.is_little_endian, None)
    except Exception:
        return None
    return DataElement(raw.tag, vr, value, raw.value_tell, raw.length == 0xFFFFFFFF, already_converted=True)


def _elements(ds) -> Optional[dict]:
    """The dataset's own tag -> element dict (pydicom keeps it in ``Dataset._dict``), or None."""
    elements = getattr(ds, "_dict", None)
    return elements if isinstance(elements, dict) else None


def _parse_elements(ds: Dataset, filename: Optional[str], nested: bool = False) -> None:
    """Decode the elements rendering reads, now: pydicom decodes lazily, and a corrupt element
    (unknown VR, odd length for US...) would otherwise surface later as an arbitrary exception.

    Only those groups, not the whole header: decoding every element of a real CT header costs
    1-3 ms, ten times the windowing.  Inside the sequences of those groups everything is decoded.
    """
    elements = _elements(ds)
    own = elements is not None
    if not own:
        elements = dict.fromkeys(ds.keys())
    plain = not nested and _default_conversion()
    for tag, element in list(elements.items()):
        if not nested and tag.group not in _RENDER_GROUPS and tag not in _RENDER_TAGS:
            continue
        if type(element) is DataElement and element.VR != "SQ":
            continue  # decoded already (a second render of the same dataset)
        if plain and type(element) is RawDataElement:
            vr = _plain_vr(tag)
            decoded = _decode_plain(element, vr) if vr else None
            if decoded is not None:
                # what Dataset.__setitem__ does for a public element that is neither pixel data nor a sequence
                if own:
                    elements[tag] = decoded
                else:
                    ds[tag] = decoded
                continue
        try:
            element = ds[tag]
        except Exception as exc:
            keyword = pydicom.datadict.keyword_for_tag(tag) or str(tag)
            raise InvalidDatasetError(f"cannot decode element {tag} {keyword}: {type(exc).__name__}: {exc}",
                                      filename=filename, attribute=keyword) from None
        if element.VR == "SQ":
            for item in element.value or ():
                _parse_elements(item, filename, nested=True)


_TAGS: dict = {}


def _tag(keyword: str) -> BaseTag:
    tag = _TAGS.get(keyword)
    if tag is None:
        tag = _TAGS[keyword] = BaseTag(pydicom.datadict.tag_for_keyword(keyword))
    return tag


def _has(ds: Dataset, keyword: str) -> bool:
    """``keyword in ds``: pydicom maps the keyword to its tag on every call (2 µs, dozens per image)."""
    elements = _elements(ds)
    return _tag(keyword) in (ds if elements is None else elements)


def _get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)`` for a DICOM keyword, without pydicom's keyword lookup on every call.

    An element already decoded (rendering decodes its groups up front, see _parse_elements) is
    taken straight from the dataset's element dict; anything else goes through pydicom."""
    tag = _tag(keyword)
    elements = _elements(ds)
    if elements is not None:
        element = elements.get(tag)
        if element is None:
            return default
        if type(element) is DataElement:
            return element.value
    elif tag not in ds:
        return default
    return ds[tag].value


def _transfer_syntax(ds: Dataset):
    """The file meta Transfer Syntax UID, or None."""
    meta = getattr(ds, "file_meta", None)
    if isinstance(meta, Dataset):
        return _get(meta, "TransferSyntaxUID")
    return getattr(meta, "TransferSyntaxUID", None)


@functools.lru_cache(maxsize=64)
def _is_transfer_syntax(uid: str) -> bool:
    # a pure function of the UID text; building and validating a UID costs µs per image
    return pydicom.uid.UID(uid).is_transfer_syntax


def _int(ds: Dataset, keyword: str, default: Optional[int] = None) -> int:
    value = _get(ds, keyword, default)
    if value is None or value == "":
        if default is None:
            raise InvalidDatasetError(f"{keyword} is missing", attribute=keyword)
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"{keyword} must be an integer, got {value!r}", attribute=keyword) from None
    return number


def _values(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


def _lut_table(item: Dataset, signed_first: bool, attribute: str,
               stored_range: Optional[tuple] = None) -> tuple:
    """(data, first_mapped, bits) of a Modality/VOI LUT item, checked against its descriptor.

    LUT Descriptor semantics (PS3.3 C.11.1.1.1): 0 entries means 65536; the
    first mapped value is signed when the descriptor is SS or ``signed_first``
    says the values it maps are signed; entries have 8..16 bits.  A Modality
    LUT whose first mapped value lies outside ``stored_range`` maps no stored
    value at all and is refused rather than rendered as a flat picture.
    """
    if "LUTDescriptor" not in item:
        raise InvalidDatasetError(f"{attribute} item has no LUTDescriptor", attribute="LUTDescriptor")
    element = item["LUTDescriptor"]
    descriptor = _values(element.value)
    if len(descriptor) != 3:
        raise InvalidDatasetError(f"{attribute} LUTDescriptor must have 3 values, got {descriptor!r}",
                                  attribute="LUTDescriptor")
    try:
        n, first, bits = (int(v) for v in descriptor)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"{attribute} LUTDescriptor must be integers, got {descriptor!r}",
                                  attribute="LUTDescriptor") from None
    if n < 0 or n > 65535:
        raise InvalidDatasetError(f"{attribute} LUTDescriptor number of entries must be 0..65535, got {n}",
                                  attribute="LUTDescriptor")
    n = 65536 if n == 0 else n
    if first >= 32768 and signed_first:
        first -= 65536
    if not 8 <= bits <= 16:
        raise InvalidDatasetError(f"{attribute} LUTDescriptor bits must be 8..16, got {bits}", attribute="LUTDescriptor")
    if stored_range is not None and not stored_range[0] <= first <= stored_range[1]:
        raise InvalidDatasetError(
            f"{attribute} LUTDescriptor first mapped value {first} is outside the stored value range "
            f"{stored_range[0]}..{stored_range[1]}", attribute="LUTDescriptor")
    if "LUTData" not in item or item["LUTData"].value is None:
        raise InvalidDatasetError(f"{attribute} has no LUTData", attribute="LUTData")
    raw = item["LUTData"].value
    if isinstance(raw, (bytes, bytearray)):
        # 8-bit entries may be packed two per 16-bit word (OW); otherwise one entry per word
        packed = bits == 8 and len(raw) in (n, n + 1)
        data = np.frombuffer(raw, dtype="<u1" if packed else "<u2",
                             count=n if packed else len(raw) // 2)
    else:
        data = np.asarray(_values(raw), dtype=np.int64)
        if bits == 8 and data.size == (n + 1) // 2 and n > 1 and data.size and int(data.max()) > 255:
            # 8-bit entries packed two per US value, low byte first (PS3.3 C.11.1.1.1)
            data = data.astype("<u2").view(np.uint8)[:n]
    if data.size == 2 * n and bits == 8 and data.dtype == np.uint8:
        data = data[:n]
    if data.size != n:
        raise InvalidDatasetError(f"{attribute} LUTData has {data.size} entries, LUTDescriptor says {n}",
                                  attribute="LUTData")
    if data.size and (int(data.max()) >= (1 << bits) or int(data.min()) < 0):
        raise InvalidDatasetError(f"{attribute} LUTData has entries outside 0..{(1 << bits) - 1} "
                                  f"({bits} bits per LUTDescriptor)", attribute="LUTData")
    return data.astype(np.int64), first, bits


def _item(ds: Optional[Dataset], keyword: str) -> Optional[Dataset]:
    if ds is None:
        return None
    seq = _get(ds, keyword)
    if seq is None or len(seq) == 0:
        return None
    return seq[0]


@dataclass
class FrameParameters:
    """What the header says about one frame: modality transform and VOI."""

    modality: Modality
    windows: List["HeaderWindow"]
    voi_luts: List[VOILut]
    hounsfield: bool

    def key(self) -> tuple:
        modality_key = self.modality.key() if hasattr(self.modality, "key") else self.modality
        return (modality_key, tuple(self.windows), tuple(v.key() for v in self.voi_luts))


@dataclass
class ImageInfo:
    """The pixel description of a DICOM image, checked for consistency."""

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
    #: Photometric interpretation of the last decoded compressed frames (decoders may convert colour).
    decoded_photometric: Optional[str] = field(default=None, repr=False)

    @classmethod
    def from_dataset(cls, ds: Dataset, filename: Optional[str] = None,
                     max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> "ImageInfo":
        keyword, float_dtype = next(((k, t) for k, t in _PIXEL_KEYWORDS if _has(ds, k)), (None, None))
        if keyword is None:
            raise PixelDataError("the data set has no Pixel Data (7FE0,0010)", attribute="PixelData")
        tsyntax = _transfer_syntax(ds)
        if tsyntax is not None and not _is_transfer_syntax(str(tsyntax)):
            raise UnsupportedImageError(f"TransferSyntaxUID {str(tsyntax)!r} is not a known transfer syntax",
                                        attribute="TransferSyntaxUID")
        rows, columns = _int(ds, "Rows"), _int(ds, "Columns")
        frames = _int(ds, "NumberOfFrames", 1)
        spp = _int(ds, "SamplesPerPixel", 1)
        for name, value in (("Rows", rows), ("Columns", columns), ("NumberOfFrames", frames), ("SamplesPerPixel", spp)):
            if value < 1:
                raise InvalidDatasetError(f"{name} must be >= 1, got {value}", attribute=name)
        if spp not in (1, 3):
            raise InvalidDatasetError(f"SamplesPerPixel must be 1 or 3, got {spp}", attribute="SamplesPerPixel")
        total = rows * columns * frames * spp
        if max_pixels is not None and total > max_pixels:
            raise PixelDataError(f"{rows}x{columns}x{frames}x{spp} = {total} pixels exceeds max_pixels={max_pixels}",
                                 attribute="Rows")
        photometric = str(_get(ds, "PhotometricInterpretation", "MONOCHROME2" if spp == 1 else "RGB") or
                          "").strip().upper()
        if photometric not in PHOTOMETRIC[spp]:
            known = PHOTOMETRIC[1] + PHOTOMETRIC[3]
            reason = "is unknown" if photometric not in known else f"does not fit SamplesPerPixel {spp}"
            raise InvalidDatasetError(f"PhotometricInterpretation {photometric!r} {reason} (expected one of "
                                      f"{', '.join(PHOTOMETRIC[spp])})", attribute="PhotometricInterpretation")
        bits_allocated = _int(ds, "BitsAllocated", 32 if float_dtype == np.float32 else 64 if float_dtype else None)
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
            bits_stored = _int(ds, "BitsStored", bits_allocated)
            high_bit = _int(ds, "HighBit", bits_stored - 1)
            representation = _int(ds, "PixelRepresentation", 0)
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
        inverse = photometric == "MONOCHROME1" or str(_get(ds, "PresentationLUTShape", "")).strip().upper() == "INVERSE"
        padding = None
        if _has(ds, "PixelPaddingValue"):
            try:
                first = int(ds.PixelPaddingValue)
                last = int(ds.get("PixelPaddingRangeLimit", first))
                padding = (min(first, last), max(first, last))
            except (TypeError, ValueError):
                raise InvalidDatasetError("PixelPaddingValue must be an integer", attribute="PixelPaddingValue") from None
        return cls(ds, filename, rows, columns, frames, spp, photometric, fmt,
                   np.dtype(float_dtype) if float_dtype else None, keyword,
                   str(_get(ds, "Modality", "")).strip().upper(), inverse, padding, packed_bits)

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
        seq = _get(ds, "PerFrameFunctionalGroupsSequence")
        if seq is not None and index < len(seq):
            per_frame = seq[index]
        shared = _item(ds, "SharedFunctionalGroupsSequence")
        sources = [s for s in (per_frame, shared) if s is not None]

        def group(keyword):
            for source in sources:
                item = _item(source, keyword)
                if item is not None:
                    return item
            return None

        transform = group("PixelValueTransformationSequence") or ds
        modality_lut = _item(ds, "ModalityLUTSequence")
        if modality_lut is not None and transform is ds:
            data, first, _ = _lut_table(modality_lut, self.signed, "ModalityLUTSequence", self.stored_range)
            modality: Modality = ModalityLut(data, first)
        else:
            modality = Rescale(_float(transform, "RescaleSlope", 1.0), _float(transform, "RescaleIntercept", 0.0))
        rescale_type = str(_get(transform, "RescaleType", "") or "").strip().upper()
        hounsfield = rescale_type == "HU" or (self.modality_name == "CT" and rescale_type in ("", "HU")
                                               and isinstance(modality, Rescale))
        voi_source = group("FrameVOILUTSequence") or ds
        windows = _header_windows(voi_source)
        voi_luts = []
        # The VOI LUT maps modality values: its first mapped value is signed when they can be negative.
        low, high = self.stored_range
        if isinstance(modality, Rescale):
            signed_modality = min(low * modality.slope, high * modality.slope) + modality.intercept < 0
        else:
            signed_modality = False  # Modality LUT entries are unsigned
        for item in _get(voi_source, "VOILUTSequence") or _get(ds, "VOILUTSequence") or []:
            data, first, bits = _lut_table(item, signed_modality, "VOILUTSequence")
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
        if self.format is None:
            return self.float_dtype
        return np.dtype(f"{'i' if self.format.signed else 'u'}{self.format.bits_allocated // 8}")

    def words(self, indices: Sequence[int]) -> np.ndarray:
        """Allocated words of the frames ``indices`` as ``(len(indices), rows, columns[, samples])``."""
        ds = self.dataset
        element = ds[_tag(self.pixel_keyword)]
        shape = (self.rows, self.columns) if self.samples_per_pixel == 1 else (self.rows, self.columns,
                                                                                 self.samples_per_pixel)
        tsyntax = _transfer_syntax(ds)
        compressed = bool(tsyntax is not None and tsyntax.is_compressed and self.pixel_keyword == "PixelData")
        if compressed:
            # every frame needs at least one 8-byte fragment item: refuse impossible frame counts up front
            if isinstance(element.value, (bytes, bytearray)) and self.frames > len(element.value) // 8:
                raise PixelDataError(f"NumberOfFrames {self.frames} cannot fit in {len(element.value)} bytes of "
                                     f"encapsulated Pixel Data", attribute="NumberOfFrames")
            return self._decoded(indices, shape, tsyntax)
        value = element.value
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise PixelDataError(f"{self.pixel_keyword} has no byte value", attribute=self.pixel_keyword)
        dtype = self.word_dtype
        big_endian = tsyntax is not None and tsyntax == pydicom.uid.ExplicitVRBigEndian
        if big_endian:
            dtype = dtype.newbyteorder(">")
            if dtype.itemsize == 1 and element.VR == "OW":
                # OW is a stream of 16-bit words: in big endian, 8-bit samples come swapped in pairs
                value = np.frombuffer(value, dtype=">u2", count=len(value) // 2).astype("<u2").tobytes()
        frame_items = self.rows * self.columns * self.samples_per_pixel
        if self.packed_bits:
            return self._unpacked(value, indices, frame_items, shape)
        frame_bytes = frame_items * dtype.itemsize
        needed = frame_bytes * self.frames
        if len(value) < needed:
            raise PixelDataError(
                f"{self.pixel_keyword} is truncated: {len(value)} bytes, {needed} needed for "
                f"{self.frames} frame(s) of {self.rows}x{self.columns}x{self.samples_per_pixel} at "
                f"{dtype.itemsize * 8} bits", attribute=self.pixel_keyword)
        planar = self.samples_per_pixel > 1 and _int(ds, "PlanarConfiguration", 0) == 1
        frames = []
        for index in indices:
            array = np.frombuffer(value, dtype=dtype, count=frame_items, offset=index * frame_bytes)
            if planar:
                array = array.reshape(self.samples_per_pixel, self.rows, self.columns).transpose(1, 2, 0)
            frames.append(array.reshape(shape))
        if len(frames) == self.frames == len(indices) and not planar and frames:
            stacked = np.frombuffer(value, dtype=dtype, count=frame_items * self.frames).reshape((self.frames,) + shape)
        else:
            stacked = np.stack(frames)
        if big_endian:
            stacked = stacked.astype(stacked.dtype.newbyteorder("="))
        return stacked

    def _unpacked(self, value, indices, frame_items, shape) -> np.ndarray:
        # Frames of 1-bit data need not start on a byte boundary: bit k of the
        # element is pixel k, least significant bit first (PS3.5 8.1.1).
        needed = (frame_items * self.frames + 7) // 8
        if len(value) < needed:
            raise PixelDataError(f"{self.pixel_keyword} is truncated: {len(value)} bytes, {needed} needed for "
                                 f"{self.frames} frame(s) of {self.rows}x{self.columns} at 1 bit",
                                 attribute=self.pixel_keyword)
        frames = []
        for index in indices:
            start = index * frame_items
            first_byte, skip = divmod(start, 8)
            chunk = np.frombuffer(value, dtype=np.uint8, count=(skip + frame_items + 7) // 8, offset=first_byte)
            bits = np.unpackbits(chunk, bitorder="little")[skip:skip + frame_items]
            frames.append(bits.reshape(shape))
        return np.stack(frames)

    def _decoded(self, indices, shape, tsyntax) -> np.ndarray:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            raise UnsupportedImageError(f"Pixel Data uses transfer syntax {tsyntax.name} ({tsyntax}), "
                                        f"which has no decoder", attribute="TransferSyntaxUID") from None
        if not decoder.is_available:
            raise MissingCodecError(
                f"Pixel Data uses {tsyntax.name} ({tsyntax}) and no decoder for it is installed; "
                f"install the codecs extra: pip install 'dicomrender[codecs]'", attribute="TransferSyntaxUID")
        frames = []
        self.decoded_photometric = None
        try:
            bits = self.format.bits_allocated if self.format is not None else 8 * self.float_dtype.itemsize
            frame_bytes = self.rows * self.columns * self.samples_per_pixel * ((bits + 7) // 8)
            for index in indices:
                # decoders allocate Rows x Columns before reading the codestream: check its own size first
                mismatch = _codestream.check_frame(self.dataset, index, self.frames, tsyntax, self.rows,
                                                   self.columns, frame_bytes)
                if mismatch:
                    raise PixelDataError(f"Rows x Columns ({self.rows}x{self.columns}) do not fit frame {index}: "
                                         f"{mismatch}", attribute="Rows")
                array, meta = decoder.as_array(self.dataset, index=index, raw=True)
                self.decoded_photometric = str(meta.get("photometric_interpretation", self.photometric))
                frames.append(np.asarray(array))
        except (DicomRenderError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # BaseException: decoders written in Rust raise pyo3's PanicException
            raise PixelDataError(f"cannot decode Pixel Data ({tsyntax.name}): {type(exc).__name__}: {exc}",
                                 attribute="PixelData") from None
        out = np.stack([f.reshape(shape) for f in frames])
        if self.format is not None:
            out = out.astype(self.word_dtype, copy=False)
        return out


def _float(ds: Dataset, keyword: str, default: float) -> float:
    value = _get(ds, keyword)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"{keyword} must be a number, got {value!r}", attribute=keyword) from None


def _header_windows(ds: Dataset) -> List["HeaderWindow"]:
    centers = _values(_get(ds, "WindowCenter"))
    widths = _values(_get(ds, "WindowWidth"))
    if not centers or not widths:
        return []
    function = str(_get(ds, "VOILUTFunction", "") or "LINEAR")
    explanations = [str(e) for e in _values(_get(ds, "WindowCenterWidthExplanation"))]
    windows = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        explanation = explanations[i] if i < len(explanations) else None
        windows.append(HeaderWindow(str(c), str(w), function, explanation))
    return windows


@dataclass(frozen=True)
class HeaderWindow:
    """A window as the header states it; validated only when used, so one bad value
    does not hide the others."""

    center: Any
    width: Any
    function: str
    explanation: Optional[str]

    def to_window(self) -> Window:
        return Window(self.center, self.width, self.function, self.explanation)
