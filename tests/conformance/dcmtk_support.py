"""Running dcmtk's dcm2pnm and judging its output against dicomrender.

The acceptance rule (PIPELINE.md section 7): dcmtk's 8-bit output must equal
the project's rounding rule everywhere, except at stored values whose exact
display value ``y'`` is an integer, where dcmtk's float evaluation may land
exactly one level low.  Whether ``y'`` is an integer is decided in exact
rational arithmetic (``fractions.Fraction`` on the decimal strings of the
header and of the windows passed to dcm2pnm), never in floating point.

With a non-integer Rescale Slope or Intercept dcmtk truncates the modality
value to an integer before the VOI step; the model then applies the same rule
to ``floor(m)``.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from typing import List, Optional, Tuple

import numpy as np
import pydicom

from dicomrender import _reference
from dicomrender._types import ModalityLut
from dicomrender.dicom.header import ImageInfo

# ---------------------------------------------------------------------------
# The files

#: Grayscale files of pydicom's own test data and of pydicom-data, by name.
PYDICOM_FILES = [
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
    "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_padded.dcm",
    "JPEG2000.dcm", "J2K_pixelrep_mismatch.dcm", "693_J2KI.dcm",
    "JPGExtended.dcm", "JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm", "examples_overlay.dcm",
    "image_dfl.dcm", "liver_1frame.dcm", "liver_expb_1frame.dcm", "rtdose.dcm", "rtdose_1frame.dcm",
    "rtdose_expb.dcm", "rtdose_expb_1frame.dcm", "rtdose_rle.dcm", "rtdose_rle_1frame.dcm",
]
PYDICOM_DATA_FILES = [
    "693_J2KR.dcm", "693_UNCI.dcm", "693_UNCR.dcm", "JPEG-LL.dcm", "JPEG2000_UNC.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR2_J2KI.dcm", "MR2_J2KR.dcm",
    "MR2_UNCI.dcm", "MR2_UNCR.dcm", "RG1_J2KI.dcm", "RG1_J2KR.dcm", "RG1_UNCI.dcm", "RG1_UNCR.dcm", "RG3_J2KI.dcm",
    "RG3_J2KR.dcm", "RG3_UNCI.dcm", "RG3_UNCR.dcm", "bad_sequence.dcm", "eCT_Supplemental.dcm", "emri_small.dcm",
    "emri_small_RLE.dcm", "emri_small_big_endian.dcm", "emri_small_jpeg_2k_lossless.dcm",
    "emri_small_jpeg_ls_lossless.dcm", "explicit_VR-UN.dcm", "liver.dcm", "liver_expb.dcm", "mlut_18.dcm",
    "vlut_04.dcm",
]

#: Grayscale test files not compared, and why.  Each is still checked to fail cleanly.
EXCLUDED = {
    "JPEG-lossy.dcm": "pydicom's decoders reject the JPEG stream (libjpeg: misplaced marker, Pillow: no 12-bit); "
                      "render raises PixelDataError naming PixelData",
    "JPEG2000-embedded-sequence-delimiter.dcm": "the JPEG 2000 stream is damaged (an embedded sequence "
                                                "delimiter); no decoder reads it, render raises PixelDataError",
    "MR_truncated.dcm": "Pixel Data is truncated; dcmtk refuses it too, render raises PixelDataError",
    "badVR.dcm": "NumberOfFrames is '1A' (not an IS value); render raises InvalidDatasetError naming NumberOfFrames",
    "emri_small_jpeg_2k_lossless_too_short.dcm": "the JPEG 2000 stream is cut short; render raises PixelDataError",
}

#: Files for which dcm2pnm reads a pixel-data copy decoded by pydicom (written as Explicit VR Little
#: Endian), while render reads the original file.  The rendering is compared; the decoding is not dcmtk's.
DECODED_COPY = {
    "JPEG 2000": "dcmtk has no JPEG 2000 decoder",
    "JPGExtended.dcm": "dcmtk's and pydicom's 12-bit lossy JPEG decoders differ by 1 stored level on 1.4 % of "
                       "pixels (measured in test_lossy_jpeg_decoders_agree_closely)",
    "rtdose_expb.dcm": "dcmtk 3.6.7 misreads 32-bit big-endian pixel data (its output differs from the "
                       "little-endian twin rtdose.dcm, which it reads right)",
    "rtdose_expb_1frame.dcm": "as rtdose_expb.dcm",
}

#: Lossless compressed files and the uncompressed file holding the same stored values.
LOSSLESS_TWINS = {
    "693_J2KR.dcm": "693_UNCR.dcm", "MR2_J2KR.dcm": "MR2_UNCR.dcm", "RG1_J2KR.dcm": "RG1_UNCR.dcm",
    "RG3_J2KR.dcm": "RG3_UNCR.dcm", "emri_small_jpeg_2k_lossless.dcm": "emri_small.dcm",
    "emri_small_RLE.dcm": "emri_small.dcm", "emri_small_jpeg_ls_lossless.dcm": "emri_small.dcm",
    "emri_small_big_endian.dcm": "emri_small.dcm", "MR_small_jp2klossless.dcm": "MR_small.dcm",
    "MR_small_jpeg_ls_lossless.dcm": "MR_small.dcm", "MR_small_RLE.dcm": "MR_small.dcm",
    "rtdose_rle.dcm": "rtdose.dcm", "rtdose_expb.dcm": "rtdose.dcm", "liver_expb.dcm": "liver.dcm",
}

#: Files above this many pixels per frame get fewer windows (dcm2pnm writes ASCII: ~0.3 s per megapixel).
BIG = 1_500_000


def test_file(name: str) -> str:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, read=False)
    if path is None:
        raise FileNotFoundError(f"test file {name} not found (is pydicom-data installed?)")
    return path


def all_files() -> List[str]:
    return PYDICOM_FILES + PYDICOM_DATA_FILES


#: Colour files compared with dcmtk: native and lossless ones must be identical.
COLOUR_IDENTICAL = [
    "OBXXXX1A.dcm", "OBXXXX1A_2frame.dcm", "OBXXXX1A_expb.dcm", "OBXXXX1A_expb_2frame.dcm", "OBXXXX1A_rle.dcm",
    "OBXXXX1A_rle_2frame.dcm", "OT-PAL-8-face.dcm", "examples_palette.dcm", "SC_rgb.dcm", "SC_rgb_2frame.dcm",
    "SC_rgb_16bit.dcm", "SC_rgb_16bit_2frame.dcm", "SC_rgb_expb.dcm", "SC_rgb_expb_2frame.dcm",
    "SC_rgb_expb_16bit.dcm", "SC_rgb_expb_16bit_2frame.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_rle_32bit.dcm", "SC_rgb_rle_32bit_2frame.dcm",
    "SC_rgb_small_odd.dcm", "SC_rgb_small_odd_big_endian.dcm", "SC_rgb_gdcm2k_uncompressed.dcm",
    "SC_rgb_jpeg_dcmd.dcm", "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_jls_lossy_line.dcm", "SC_rgb_jls_lossy_sample.dcm",
    "US1_UNCI.dcm", "US1_UNCR.dcm", "color-pl.dcm", "color-px.dcm", "ExplVR_BigEnd.dcm", "examples_rgb_color.dcm",
    "SC_rgb_dcmtk_ebcr_dcmd.dcm", "SC_rgb_dcmtk_ebcyn1_dcmd.dcm", "SC_rgb_dcmtk_ebcyn2_dcmd.dcm",
    "SC_rgb_dcmtk_ebcynp_dcmd.dcm", "SC_rgb_dcmtk_ebcys2_dcmd.dcm", "SC_rgb_dcmtk_ebcys4_dcmd.dcm",
]
#: Native YBR files: dcmtk converts with truncated integer tables, dicomrender with the exact formula
#: rounded to nearest (as pydicom's convert_color_space), so they may differ by up to 2 levels.
COLOUR_YBR = ["SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm"]

# ---------------------------------------------------------------------------
# dcmtk

TOOLS = ("dcm2pnm", "dcmj2pnm", "dcml2pnm")


def dcmtk_available() -> bool:
    return all(shutil.which(t) for t in TOOLS)


def tool_for(tsyntax) -> str:
    """dcm2pnm decodes native, deflated and RLE data; dcmj2pnm JPEG; dcml2pnm JPEG-LS."""
    name = pydicom.uid.UID(tsyntax).name if tsyntax else ""
    if "JPEG-LS" in name:
        return "dcml2pnm"
    if "JPEG" in name and "2000" not in name:
        return "dcmj2pnm"
    return "dcm2pnm"


_WORKDIR = None
_COUNTER = itertools.count()


def workdir() -> str:
    global _WORKDIR
    if _WORKDIR is None:
        _WORKDIR = tempfile.mkdtemp(prefix="dicomrender-conformance-")
    return _WORKDIR


def read_pgm(path: str) -> np.ndarray:
    """An ASCII PGM (P2) as uint8 ``(rows, cols)`` or PPM (P3) as ``(rows, cols, 3)``."""
    with open(path, "rb") as f:
        data = f.read()
    header = data.split(None, 4)
    if header[0] not in (b"P2", b"P3"):
        raise ValueError(f"{path}: not an ASCII PGM/PPM ({header[0]!r})")
    samples = 3 if header[0] == b"P3" else 1
    width, height, maxval = int(header[1]), int(header[2]), int(header[3])
    if maxval != 255:
        raise ValueError(f"{path}: maxval {maxval}, expected 255")
    values = np.fromstring(header[4], dtype=np.int64, sep=" ")  # text mode: not deprecated
    if values.size != width * height * samples:
        raise ValueError(f"{path}: {values.size} values for {width}x{height}x{samples}")
    shape = (height, width, 3) if samples == 3 else (height, width)
    return values.astype(np.uint8).reshape(shape)


class DcmtkError(RuntimeError):
    pass


@functools.lru_cache(maxsize=None)
def dcm2pnm(path: str, args: Tuple[str, ...], frames: int, frame: Optional[int] = None) -> np.ndarray:
    """dcmtk's 8-bit output ``(frames, rows, cols)``: all frames (``+Fa``), or one 1-based ``frame`` (``+F n``).

    Overlays are off (``-O``); dcmtk burns them in otherwise.
    """
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    tool = tool_for(getattr(ds.file_meta, "TransferSyntaxUID", None))
    out = os.path.join(workdir(), f"out{next(_COUNTER)}.pnm")
    frame_args = ["+F", str(frame)] if frame is not None else (["+Fa"] if frames > 1 else [])
    cmd = [tool, "-O", "--write-8-bit-pnm", *args, *frame_args, path, out]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise DcmtkError(f"{' '.join(cmd)} failed ({run.returncode}): {run.stderr.strip()[-500:]}")
    if frame_args[:1] == ["+Fa"]:
        names = [f"{out}.{i}.pgm" if os.path.exists(f"{out}.{i}.pgm") else f"{out}.{i}.ppm" for i in range(frames)]
    else:
        names = [out]
    images = np.stack([read_pgm(n) for n in names])
    for n in names:
        os.unlink(n)
    return images


@functools.lru_cache(maxsize=None)
def decoded_copy(path: str) -> str:
    """``path`` with its Pixel Data decoded by pydicom, written as Explicit VR Little Endian."""
    ds = pydicom.dcmread(path)
    tsyntax = ds.file_meta.TransferSyntaxUID
    if tsyntax.is_compressed:
        ds.decompress(generate_instance_uid=False)
    else:
        stored = ds.pixel_array
        ds.PixelData = np.ascontiguousarray(stored).astype(stored.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    out = os.path.join(workdir(), "copy-" + os.path.basename(path))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return out


# ---------------------------------------------------------------------------
# Exact arithmetic


def exact(value) -> Fraction:
    """The exact value of a decimal string (or of a float, bit for bit)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        return Fraction(value.strip())
    original = getattr(value, "original_string", None)
    if original:
        return Fraction(str(original).strip())
    return Fraction(value)


@dataclass
class ExactModality:
    """The modality transform in exact arithmetic; ``truncate`` models dcmtk's integer modality values."""

    slope: Fraction = Fraction(1)
    intercept: Fraction = Fraction(0)
    lut: Optional[np.ndarray] = None
    first: int = 0
    truncate: bool = False

    @property
    def is_integer(self) -> bool:
        return self.lut is not None or (self.slope.denominator == 1 and self.intercept.denominator == 1)

    def __call__(self, s: int) -> Fraction:
        if self.lut is not None:
            return Fraction(int(self.lut[min(max(s - self.first, 0), len(self.lut) - 1)]))
        m = self.slope * s + self.intercept
        return Fraction(math.floor(m)) if self.truncate else m

    def float_values(self, stored: np.ndarray) -> np.ndarray:
        """float64 modality values of integer ``stored`` (exact floor when truncating)."""
        if not self.truncate or self.is_integer:
            if self.lut is not None:
                return _reference.apply_lut(stored, self.lut, self.first).astype(np.float64)
            return _reference.modality_values(stored, float(self.slope), float(self.intercept))
        return np.array([float(self(int(s))) for s in stored], dtype=np.float64)


def exact_modality(info: ImageInfo, frame: int, truncate: bool) -> ExactModality:
    """The exact modality transform of ``frame`` from the header strings."""
    parameters = info.frame_parameters(frame)
    modality = parameters.modality
    if isinstance(modality, ModalityLut):
        return ExactModality(lut=np.asarray(modality.data), first=int(modality.first_mapped))
    source = _transform_source(info, frame)
    slope = exact(source.get("RescaleSlope", "1") or "1")
    intercept = exact(source.get("RescaleIntercept", "0") or "0")
    assert float(slope) == modality.slope and float(intercept) == modality.intercept
    return ExactModality(slope, intercept, truncate=truncate)


def _transform_source(info: ImageInfo, frame: int):
    ds = info.dataset
    for keyword in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        seq = ds.get(keyword)
        if not seq:
            continue
        item = seq[frame] if keyword.startswith("Per") and frame < len(seq) else seq[0]
        inner = item.get("PixelValueTransformationSequence")
        if inner:
            return inner[0]
    return ds


@dataclass(frozen=True)
class ExactWindow:
    """A LINEAR window (c, w) in exact arithmetic."""

    center: Fraction
    width: Fraction

    def y(self, m: Fraction) -> Fraction:
        c, w = self.center, self.width
        if m <= c - Fraction(1, 2) - (w - 1) / 2:
            return Fraction(0)
        if m > c - Fraction(1, 2) + (w - 1) / 2:
            return Fraction(255)
        return ((m - (c - Fraction(1, 2))) / (w - 1) + Fraction(1, 2)) * 255


@dataclass(frozen=True, eq=False)
class ExactVOILut:
    lut: np.ndarray
    first: int
    bits: int

    def y(self, m: Fraction) -> Fraction:
        index = min(max(math.floor(m) - self.first, 0), len(self.lut) - 1)
        return Fraction(int(self.lut[index]) * 255, (1 << self.bits) - 1)


def exact_y(voi, modality: ExactModality, s: int, invert: bool) -> Fraction:
    y = voi.y(modality(s))
    return 255 - y if invert else y


# ---------------------------------------------------------------------------
# One comparison


@dataclass
class Comparison:
    """The outcome of comparing one dcm2pnm run with dicomrender over some frames."""

    file: str
    label: str
    frames: int
    pixels: int = 0
    identical: int = 0            # dcmtk == render
    at_integer_points: int = 0    # mismatches at exact-integer y', dcmtk exactly 1 lower
    model_identical: int = 0      # dcmtk == the rule applied to dcmtk's modality values
    failures: List[str] = field(default_factory=list)
    note: str = ""

    @property
    def identical_percent(self) -> float:
        return 100.0 * self.identical / self.pixels if self.pixels else 100.0

    @property
    def ok(self) -> bool:
        return not self.failures


def compare(comparison: Comparison, dcmtk: np.ndarray, ours: np.ndarray, stored: np.ndarray,
            modality: ExactModality, voi, float_voi, invert: bool, unique: Optional[tuple] = None) -> None:
    """Judge ``dcmtk`` against the rule, given our render ``ours`` of the same frames with ``float_voi``.

    ``stored`` are the stored values (same shape; ``unique`` their
    ``np.unique(stored, return_inverse=True)`` if known), ``modality`` the exact
    modality transform as dcmtk applies it, ``voi`` the exact VOI and
    ``float_voi`` dicomrender's (``Window`` or ``VOILut``).  Checks, for every
    pixel:

    1. ``ours`` equals the float64 reference twin on the exact modality values;
    2. dcmtk equals the rule applied to dcmtk's modality values (``floor(m)``
       when the rescale is not integer), except at stored values whose exact
       ``y'`` is an integer, where it may be exactly one lower.

    With an integer rescale the rule in (2) is ``ours`` itself.
    """
    if dcmtk.shape != ours.shape:
        comparison.failures.append(f"{comparison.label}: shape {dcmtk.shape} (dcmtk) != {ours.shape}")
        return
    if unique is None:
        unique = np.unique(stored, return_inverse=True)
    uniq, inverse = unique[0], unique[1].reshape(stored.shape)
    exact_m = ExactModality(modality.slope, modality.intercept, modality.lut, modality.first, truncate=False)
    reference = _reference.to_uint8(float_voi.values(exact_m.float_values(uniq)), invert)
    bad = ours != reference[inverse]
    if bad.any():
        comparison.failures.append(f"{comparison.label}: render differs from the reference twin on "
                                   f"{int(bad.sum())} pixels")
    model = _reference.to_uint8(float_voi.values(modality.float_values(uniq)), invert)
    expected = model[inverse]
    comparison.pixels += dcmtk.size
    comparison.identical += int(np.count_nonzero(dcmtk == ours))
    comparison.model_identical += int(np.count_nonzero(dcmtk == expected))
    mismatch = dcmtk != expected
    if not mismatch.any():
        return
    low_by_one = dcmtk[mismatch].astype(np.int64) == expected[mismatch].astype(np.int64) - 1
    if not low_by_one.all():
        worst = int(np.abs(dcmtk[mismatch].astype(np.int64) - expected[mismatch]).max())
        comparison.failures.append(f"{comparison.label}: dcmtk differs from the rule by up to {worst} on "
                                   f"{int(mismatch.sum())} pixels")
        return
    for index in np.unique(inverse[mismatch]):
        s = int(uniq[index])
        y = exact_y(voi, modality, s, invert)
        if y.denominator != 1:
            comparison.failures.append(f"{comparison.label}: dcmtk is 1 lower at stored value {s} where "
                                       f"y' = {float(y)!r} is not an integer")
            return
    comparison.at_integer_points += int(mismatch.sum())


def number(value: float) -> str:
    """A short decimal string: what dcm2pnm gets and what Fraction reads exactly."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def explicit_windows(low: float, high: float, big: bool, fewer: bool = False) -> list:
    """Windows from the data range; ``big`` drops the extra ones, ``fewer`` keeps one (big compressed files,
    whose every render decodes megapixels again; their uncompressed twins get the full set)."""
    span = max(high - low, 1.0)
    windows = [
        ("narrow", low + span * 0.5, max(round(span / 8), 2)),
        ("wide .5", int(low + span * 0.3) + 0.5, int(span) + 1),
        ("far above", high + 10 * span + 1000, 11),
    ]
    if fewer:
        windows = windows[1:2]
    elif not big:
        windows += [
            ("far below", low - 10 * span - 1000, 101),
            ("width 1", int(low + span * 0.7), 1),
            ("x.5 / odd", int(low + span * 0.4) + 0.5, int(span / 3) | 1),
        ]
    return [(label, number(c), number(w)) for label, c, w in windows]
