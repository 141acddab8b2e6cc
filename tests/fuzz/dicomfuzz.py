"""Mutation fuzzer for dicomrender: broken and hostile DICOM files from a real corpus.

Each case is a deterministic function of ``(seed, index)``: pick a corpus file
(pydicom's test files and pydicom-data when installed), apply one to four
mutations (header values, LUTs, windows, Pixel Data length and content, the
transfer syntax, raw bytes of the file), serialise it and render it with random
options.  The only acceptable outcomes are a uint8 ndarray or a
:class:`dicomrender.errors.DicomRenderError`; anything else (another
exception, a numpy warning, a crash, a sanitizer report, a hang) is a bug.
A small share of the cases calls :func:`dicomrender.window` and the private
kernel directly with random arrays and arguments instead.

Command line (from the repository root)::

    python tests/fuzz/dicomfuzz.py --count 5000 --seed 1 --time-limit 480 --crash-dir fuzz-crashes

runs the cases in worker processes (one per core) watched by this process:
a worker that dies (segfault, AddressSanitizer/UBSan abort) or stops
answering within ``--case-timeout`` seconds marks the case as a crash or a
hang; the input is saved to ``--crash-dir`` (``.dcm`` plus a ``.json`` with
the mutations, render options and the sanitizer output) and a fresh worker
continues with the next case.  The exit status is 1 when any bug was seen
or fewer than ``--min-count`` cases ran.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import random
import re
import selectors
import struct
import subprocess
import sys
import time
import traceback
import warnings
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

#: Corpus files above this size are skipped: they add time, not new code paths.
MAX_CORPUS_BYTES = 1_200_000

INTERESTING_US = (0, 1, 2, 3, 7, 8, 9, 11, 12, 15, 16, 17, 24, 31, 32, 33, 63, 64, 127, 128, 255, 256,
                  4095, 4096, 32767, 32768, 65534, 65535)
INTERESTING_NUMBERS = ("0", "-0", "1", "-1", "0.5", "-0.5", "1e-300", "-1e-300", "1e308", "-1e308", "1.7976931348623157e308",
                       "nan", "NaN", "inf", "-inf", "1e400", "65535", "-32768", "4095", "2147483648", "40.5",
                       "", " ", "abc", "1\\2", "\\", "0x10", "1e", "+5", "9" * 30)
PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT",
                "", "monochrome2", " MONOCHROME1 ", "XYZ", "MONOCHROME3")
FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID", "", "linear", "sigmoid ", "LINEAR EXACT", "BOGUS")
TRANSFER_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5",
                     "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
                     "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.1.99", "1.2.3.4")

# (keyword, tag, VR) of the integer attributes the pixel description depends on.
INTEGER_ATTRIBUTES = (
    ("Rows", 0x00280010, "US"), ("Columns", 0x00280011, "US"), ("BitsAllocated", 0x00280100, "US"),
    ("BitsStored", 0x00280101, "US"), ("HighBit", 0x00280102, "US"), ("SamplesPerPixel", 0x00280002, "US"),
    ("PixelRepresentation", 0x00280103, "US"), ("PlanarConfiguration", 0x00280006, "US"),
    ("NumberOfFrames", 0x00280008, "IS"), ("PixelPaddingValue", 0x00280120, "US"),
)
NUMBER_ATTRIBUTES = (
    ("WindowCenter", 0x00281050), ("WindowWidth", 0x00281051), ("RescaleSlope", 0x00281053),
    ("RescaleIntercept", 0x00281052),
)


# ---- corpus ------------------------------------------------------------------

def corpus_paths() -> List[str]:
    """DICOM files of pydicom's test data and of pydicom-data (when installed), sorted."""
    import pydicom

    folders = [os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")]
    try:
        import data_store  # the pydicom-data package

        folders.append(os.path.join(os.path.dirname(data_store.__file__), "data"))
    except ImportError:
        pass
    paths = []
    for folder in folders:
        for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True):
            if os.path.isfile(path) and 0 < os.path.getsize(path) <= MAX_CORPUS_BYTES:
                paths.append(path)
    return sorted(set(paths), key=lambda p: (os.path.basename(p), p))


def load_corpus() -> List[Tuple[str, bytes]]:
    """(name, bytes) of every corpus file pydicom parses and that has pixel data."""
    import pydicom

    corpus = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in corpus_paths():
            try:
                ds = pydicom.dcmread(path)
                if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
                    continue
                if "Rows" not in ds:
                    continue
            except Exception:
                continue
            with open(path, "rb") as f:
                corpus.append((os.path.basename(path), f.read()))
    return corpus


# ---- mutations ---------------------------------------------------------------

def _configure_pydicom_writing() -> None:
    from pydicom import config

    # The generator writes invalid values on purpose; reading keeps pydicom's defaults.
    config.settings.writing_validation_mode = config.IGNORE


def _set_raw(ds, tag: int, vr: str, value: bytes) -> None:
    """Store ``value`` as the element's encoded bytes, whatever they mean."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    if len(value) % 2:
        value += b"\0" if vr in ("US", "SS", "UL", "SL", "OB", "OW", "FL", "FD", "UI") else b" "
    tag = Tag(tag)
    ds._dict[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


def _number_text(rng: random.Random, original=None) -> str:
    choice = rng.random()
    if choice < 0.5:
        return rng.choice(INTERESTING_NUMBERS)
    if choice < 0.7 and original is not None:
        try:
            return repr(float(original) * rng.choice((-1, 0.5, 2, 1e6, 1e-6)) + rng.choice((0, 0.5, -1)))
        except (TypeError, ValueError):
            pass
    values = [repr(rng.uniform(-1e5, 1e5)) if rng.random() < 0.5 else str(rng.randint(-70000, 70000))
              for _ in range(rng.choice((1, 1, 2, 3)))]
    return "\\".join(values)


def _us_value(rng: random.Random, original) -> int:
    choice = rng.random()
    if choice < 0.6 or original is None:
        return rng.choice(INTERESTING_US)
    try:
        original = int(original)
    except (TypeError, ValueError):
        return rng.randrange(65536)
    return max(0, min(65535, original + rng.choice((-2, -1, 1, 2, original, -original, 8, -8))))


def _lut_item(rng: random.Random, pixel_bits: int):
    """A LUT item with a random (often inconsistent) descriptor and data."""
    from pydicom.dataset import Dataset

    entries = rng.choice((0, 1, 2, 3, 255, 256, 257, 1024, 4096, 65535, 1 << min(pixel_bits, 16)))
    first = rng.choice((0, 1, 32768, 65535, 1024, 2000, rng.randrange(65536)))
    bits = rng.choice((0, 1, 7, 8, 10, 12, 16, 16, 17, 32))
    count = (65536 if entries == 0 else entries) + rng.choice((0, 0, 0, -1, 1, 5))
    count = rng.choice((count, count, 0, 2 * count))
    count = max(0, min(count, 70000))
    top = (1 << min(bits, 16)) - 1 if bits else 255
    if rng.random() < 0.1:
        top = 65535
    data = [rng.randint(0, top) for _ in range(min(count, 64))] * (count // 64 + 1)
    data = data[:count]
    item = Dataset()
    vr = rng.choice(("US", "SS"))
    descriptor = (entries, first if vr == "US" else first - 65536 if first >= 32768 else first, bits)
    _set_raw(item, 0x00283002, vr, np.array([v & 0xFFFF for v in descriptor], dtype="<u2").tobytes())
    if rng.random() < 0.9:
        if bits <= 8 and rng.random() < 0.5:
            _set_raw(item, 0x00283006, "OW", np.array(data, dtype="<u1").tobytes())
        else:
            _set_raw(item, 0x00283006, rng.choice(("OW", "US")), np.array(data, dtype="<u2").tobytes())
    if rng.random() < 0.3:
        item.LUTExplanation = rng.choice(("X", "", "BONE"))
    return item


def _sequence(items):
    from pydicom.sequence import Sequence

    return Sequence(items)


def mutate(ds, rng: random.Random, log: List[str], post: Optional[list] = None) -> None:
    """Apply one random mutation to ``ds`` in place and describe it in ``log``; a hostile family that
    rewrites the serialised file appends the rewriting to ``post``."""
    kind = rng.choices(
        ("integer", "number", "photometric", "function", "voilut", "modlut", "pixels", "encapsulated",
         "delete", "syntax", "perframe", "palette", "explanation") + tuple(HOSTILE_KINDS),
        weights=(30, 16, 6, 4, 6, 5, 14, 4, 5, 4, 4, 2, 2) + tuple(HOSTILE_KINDS.values()))[0]
    if kind in HOSTILE_KINDS:
        hostile_mutation(kind, ds, rng, log, post if post is not None else [])
    elif kind == "integer":
        keyword, tag, vr = rng.choice(INTEGER_ATTRIBUTES)
        original = ds.get(keyword)
        if vr == "US":
            value = _us_value(rng, original)
            _set_raw(ds, tag, "US", int(value).to_bytes(2, "little"))
        else:
            value = rng.choice(("0", "-1", "1", "2", "3", "1000", "65535", "2147483647", "99999999999",
                                "1.5", "", "abc", "1e3", str(_us_value(rng, original))))
            _set_raw(ds, tag, "IS", value.encode())
        log.append(f"{keyword}={value!r}")
    elif kind == "number":
        keyword, tag = rng.choice(NUMBER_ATTRIBUTES)
        value = _number_text(rng, ds.get(keyword) if not isinstance(ds.get(keyword), (list, tuple)) else None)
        _set_raw(ds, tag, "DS", value.encode())
        log.append(f"{keyword}={value!r}")
    elif kind == "photometric":
        value = rng.choice(PHOTOMETRICS)
        _set_raw(ds, 0x00280004, "CS", value.encode())
        log.append(f"PhotometricInterpretation={value!r}")
    elif kind == "function":
        value = rng.choice(FUNCTIONS)
        _set_raw(ds, 0x00281056, "CS", value.encode())
        log.append(f"VOILUTFunction={value!r}")
    elif kind == "voilut":
        items = [_lut_item(rng, int(ds.get("BitsStored", 16) or 16)) for _ in range(rng.choice((0, 1, 1, 2)))]
        ds.VOILUTSequence = _sequence(items)
        if rng.random() < 0.5:
            for keyword in ("WindowCenter", "WindowWidth"):
                if keyword in ds:
                    del ds[keyword]
        log.append(f"VOILUTSequence[{len(items)}]")
    elif kind == "modlut":
        items = [_lut_item(rng, int(ds.get("BitsStored", 16) or 16)) for _ in range(rng.choice((0, 1, 1, 2)))]
        ds.ModalityLUTSequence = _sequence(items)
        log.append(f"ModalityLUTSequence[{len(items)}]")
    elif kind == "pixels":
        keyword = next((k for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if k in ds), "PixelData")
        element = ds[keyword] if keyword in ds else None
        value = bytes(element.value) if element is not None and isinstance(element.value, (bytes, bytearray)) else b""
        n = len(value)
        how = rng.choice(("truncate", "truncate", "half", "empty", "one", "odd", "extend", "double", "random",
                          "flip"))
        if how == "truncate":
            value = value[:rng.randrange(max(1, n))]
        elif how == "half":
            value = value[: n // 2]
        elif how == "empty":
            value = b""
        elif how == "one":
            value = value[:1] or b"\0"
        elif how == "odd":
            value = value[:-1] if n % 2 == 0 and n else value + b"\0"
        elif how == "extend":
            value = value + bytes(rng.randrange(1, 4096))
        elif how == "double":
            value = value * 2
        elif how == "random":
            value = rng.randbytes(n)
        else:
            value = bytearray(value)
            for _ in range(rng.randint(1, 16)):
                if value:
                    value[rng.randrange(len(value))] ^= 1 << rng.randrange(8)
            value = bytes(value)
        if element is not None:
            element.value = value
        log.append(f"{keyword}:{how}->{len(value)}B")
    elif kind == "encapsulated":
        # A native file claiming a compressed syntax, or compressed data with broken fragments.
        value = ds.get("PixelData", b"") or b""
        if not isinstance(value, (bytes, bytearray)):
            value = b""
        from pydicom.encaps import encapsulate

        chunk = value[: rng.choice((0, 2, 16, 256, len(value)))]
        how = rng.choice(("rewrap", "garbage", "bot"))
        if how == "rewrap":
            data = encapsulate([chunk or b"\0\0"])
        elif how == "garbage":
            data = b"\xfe\xff\x00\xe0" + rng.randbytes(rng.choice((0, 4, 8, 64)))
        else:
            data = encapsulate([chunk or b"\0\0", chunk[:8] or b"\0\0"], has_bot=True)
        ds.PixelData = data
        ds["PixelData"].is_undefined_length = True
        if ds.file_meta.get("TransferSyntaxUID") in (None, "1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                                     "1.2.840.10008.1.2.2"):
            ds.file_meta.TransferSyntaxUID = rng.choice(TRANSFER_SYNTAXES[3:9])
        log.append(f"encapsulated:{how}")
    elif kind == "delete":
        keyword = rng.choice(("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel",
                              "PixelRepresentation", "PhotometricInterpretation", "PixelData", "WindowWidth",
                              "WindowCenter", "RescaleSlope", "NumberOfFrames", "PlanarConfiguration"))
        if keyword in ds:
            del ds[keyword]
        log.append(f"delete {keyword}")
    elif kind == "syntax":
        value = rng.choice(TRANSFER_SYNTAXES)
        ds.file_meta.TransferSyntaxUID = value
        log.append(f"TransferSyntaxUID={value}")
    elif kind == "perframe":
        from pydicom.dataset import Dataset

        frames = rng.choice((1, 2, 3))
        items = []
        for _ in range(frames):
            item = Dataset()
            transform = Dataset()
            _set_raw(transform, 0x00281053, "DS", _number_text(rng).encode())
            _set_raw(transform, 0x00281052, "DS", _number_text(rng).encode())
            voi = Dataset()
            _set_raw(voi, 0x00281050, "DS", _number_text(rng).encode())
            _set_raw(voi, 0x00281051, "DS", _number_text(rng).encode())
            if rng.random() < 0.5:
                item.PixelValueTransformationSequence = _sequence([transform])
            if rng.random() < 0.5:
                item.FrameVOILUTSequence = _sequence([voi] if rng.random() < 0.8 else [])
            items.append(item)
        ds.PerFrameFunctionalGroupsSequence = _sequence(items)
        if rng.random() < 0.5:
            ds.SharedFunctionalGroupsSequence = _sequence([items[0]])
        log.append(f"PerFrameFunctionalGroups[{frames}]")
    elif kind == "palette":
        for _colour, (desc_tag, data_tag) in zip("RGB", ((0x00281101, 0x00281201), (0x00281102, 0x00281202),
                                                        (0x00281103, 0x00281203))):
            if rng.random() < 0.7:
                _set_raw(ds, desc_tag, "US", np.array([rng.choice((0, 1, 256, 4096)), rng.choice((0, 16)),
                                                       rng.choice((8, 16, 0))], "<u2").tobytes())
            if rng.random() < 0.7:
                _set_raw(ds, data_tag, "OW", rng.randbytes(rng.choice((0, 2, 256, 512))))
            elif rng.random() < 0.5:
                # Segmented data: discrete (0), linear (1) and indirect (2) segments of random lengths
                words = [0, 1, rng.randrange(65536)]
                for _ in range(rng.choice((1, 3, 50, 2000))):
                    opcode = rng.choice((0, 1, 1, 2, 7))
                    length = rng.choice((0, 1, 255, 65535, rng.randrange(65536)))
                    if opcode == 0:
                        words += [0, min(length, 8)] + [rng.randrange(65536) for _ in range(min(length, 8))]
                    elif opcode == 2:
                        words += [2, length % 4, rng.randrange(8), 0]
                    else:
                        words += [opcode, length, rng.randrange(65536)]
                if rng.random() < 0.2:  # indirect segments copying everything before them: doubling
                    words = [0, 1, rng.randrange(65536)]
                    for k in range(1, rng.choice((4, 8, 20, 40)) + 1):
                        words += [2, k, 0, 0]
                _set_raw(ds, data_tag + 0x20, "OW", np.array(words, dtype="<u2").tobytes())
        log.append("palette")
    else:
        _set_raw(ds, 0x00281055, "LO", rng.choice((b"A\\B", b"", b"BONE", b"X\\Y\\Z\\W")))
        log.append("WindowCenterWidthExplanation")


# ---- hostile families (issue 13): each class of the round-two cases, kept small ------------------

#: Kinds of :func:`mutate` that build the hostile classes of issue 13, with their weights.
HOSTILE_KINDS = {"codestream": 5, "fragments": 3, "deflate": 4, "nested": 3, "tinyframes": 2, "float": 2,
                 "wide": 2, "undefined": 2, "overlay": 3, "pstate": 3}
_NATIVE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"


class _NotApplicable(Exception):
    """The family does not apply to this corpus file (logged as skipped)."""


def _frames_of(ds) -> List[bytes]:
    from pydicom.encaps import generate_frames

    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None or not syntax.is_compressed or not isinstance(ds.get("PixelData"), bytes):
        raise _NotApplicable("not compressed")
    count = int(ds.get("NumberOfFrames", 1) or 1)
    frames = []
    for frame in generate_frames(ds.PixelData, number_of_frames=count):
        frames.append(frame)
        if len(frames) >= count:
            break
    if not frames:
        raise _NotApplicable("no frames")
    return frames


def _set_encapsulated(ds, frames: List[bytes], rng: random.Random, fragments_per_frame: int = 1) -> None:
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate(frames, fragments_per_frame=fragments_per_frame, has_bot=rng.random() < 0.3)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def _jpeg_sof_at(frame: bytes) -> Optional[int]:
    """Where the first frame header (SOF, SOF55) of a JPEG codestream is, walking its segments."""
    at = 2
    while at + 4 <= len(frame) and frame[at] == 0xFF:
        marker = frame[at + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7):
            return at
        if marker == 0xDA:
            return None
        at += 2 + int.from_bytes(frame[at + 2:at + 4], "big")
    return None


def _codestream_family(ds, rng: random.Random, log: List[str]) -> None:
    """Case 1-2: one frame's codestream header declares height or width 0, a huge or an off-by-one size,
    or loses its header (JPEG / JPEG-LS SOF, JPEG 2000 SIZ, RLE segment table)."""
    frames = _frames_of(ds)
    k = rng.randrange(len(frames))
    frame = bytearray(frames[k])
    how = rng.choice(("height0", "height0", "width0", "huge", "off-by-one", "strip", "segments"))
    rows, columns = int(ds.get("Rows", 1) or 1), int(ds.get("Columns", 1) or 1)
    sizes = {"height0": (0, columns), "width0": (rows, 0), "huge": rng.choice(((65535, 65535), (32768, 32768),
             (8, 65535), (1 << 20, 1 << 20))), "off-by-one": (rows + rng.choice((-1, 1)), columns)}
    if how == "strip":
        cut = rng.choice((2, 4, 16, 64))
        frame = frame[cut:]
    elif frame[:2] == b"\xff\xd8":
        at = _jpeg_sof_at(bytes(frame))
        if at is None or how == "segments":
            frame[2:2] = b"\xff\xda\x00\x02"  # a scan before any frame header
        else:
            height, width = sizes[how]
            frame[at + 5:at + 9] = struct.pack(">HH", min(height, 65535), min(width, 65535))
    elif b"\xff\x4f\xff\x51" in frame[:4096]:
        at = frame.find(b"\xff\x4f\xff\x51")
        if how == "segments":
            frame[at + 40:at + 42] = struct.pack(">H", rng.choice((0, 3, 16384)))  # Csiz
        elif at + 24 <= len(frame):
            height, width = sizes[how]
            xo, yo = struct.unpack_from(">II", frame, at + 16)
            frame[at + 8:at + 16] = struct.pack(">II", (width + xo) & 0xFFFFFFFF, (height + yo) & 0xFFFFFFFF)
    elif len(frame) >= 64:  # RLE: the segment count or the offsets
        if how == "segments":
            frame[0:4] = struct.pack("<I", rng.choice((0, 2, 3, 15, 16)))
        else:
            frame[4 + 4 * rng.randrange(3):8 + 4 * rng.randrange(3)] = struct.pack("<I", rng.choice((0, 63, 1 << 30)))
            frame = frame[:64 + rng.choice((0, 2, 32))] if how == "height0" else frame
    frames[k] = bytes(frame)
    _set_encapsulated(ds, frames, rng)
    log.append(f"codestream:{how}@{k}")


def _fragments_family(ds, rng: random.Random, log: List[str]) -> None:
    """Case 4: many frames of one codestream, without (or with) an offset table, one or several fragments
    each; the frame count is bounded so that a case stays fast."""
    frame = rng.choice(_frames_of(ds))
    pixels = max(1, int(ds.get("Rows", 1) or 1) * int(ds.get("Columns", 1) or 1) *
                 int(ds.get("SamplesPerPixel", 1) or 1))
    rle = str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.5"
    count = rng.choice((2, 3, 64, 300, 2000))
    count = max(2, min(count, (2 << 20) // max(1, len(frame)), (8 << 20) // pixels, 2000 if rle else 200))
    per_frame = rng.choice((1, 1, 1, 2, 3))
    _set_encapsulated(ds, [frame] * count, rng, per_frame if len(frame) >= 2 * per_frame else 1)
    declared = count + rng.choice((0, 0, 0, -1, 1))
    ds.NumberOfFrames = max(1, declared)
    for keyword in ("PerFrameFunctionalGroupsSequence", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:
            del ds[keyword]
    log.append(f"fragments:{count}x{per_frame}")


def _native_image(ds, rows: int, columns: int, frames: int, bits: int, data: bytes, signed: bool = False) -> None:
    """Make ``ds`` a native MONOCHROME2 image of ``data``."""
    from pydicom.uid import ExplicitVRLittleEndian

    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData", "PerFrameFunctionalGroupsSequence",
                    "SharedFunctionalGroupsSequence", "PlanarConfiguration", "ExtendedOffsetTable",
                    "ExtendedOffsetTableLengths", "ModalityLUTSequence", "PixelPaddingValue"):
        if keyword in ds:
            del ds[keyword]
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = int(signed)
    if frames > 1:
        ds.NumberOfFrames = frames
    elif "NumberOfFrames" in ds:
        del ds["NumberOfFrames"]
    ds.PixelData = data
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"


def _tiny_frames_family(ds, rng: random.Random, log: List[str]) -> None:
    """Cases 6-7: thousands of 1x1 frames, often with one 65,536-entry VOI LUT or hundreds of VOI LUT items."""
    frames = rng.choice((100, 1000, 5000, 20000))
    bits = rng.choice((8, 16))
    _native_image(ds, 1, 1, frames, bits, rng.randbytes(frames * bits // 8))
    luts = rng.choice(("none", "big", "many"))
    if luts == "big":
        item = _lut_dataset((0, 0, 16), np.arange(65536, dtype="<u2")[::-1].tobytes())
        ds.VOILUTSequence = _sequence([item])
    elif luts == "many":
        ds.VOILUTSequence = _sequence([_lut_dataset((256, 0, 8), bytes(range(256)) * 2)
                                       for _ in range(rng.choice((50, 500)))])
    log.append(f"tinyframes:{frames}x{bits}:{luts}")


def _lut_dataset(descriptor, data: bytes):
    from pydicom.dataset import Dataset

    item = Dataset()
    _set_raw(item, 0x00283002, "US", np.array(descriptor, dtype="<u2").tobytes())
    _set_raw(item, 0x00283006, "OW", data)
    return item


def _float_family(ds, rng: random.Random, log: List[str]) -> None:
    """Case 19b: float pixel data with +-inf and NaN pixels, under the default and data-driven windows."""
    shape = (rng.choice((1, 4, 33)), rng.choice((1, 5, 64)))
    values = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 1000, size=shape)
    special = rng.choice(((np.inf,), (-np.inf,), (np.inf, -np.inf), (np.nan,), (np.inf, np.nan), (1e308,)))
    for k in range(rng.choice((1, 1, 3))):
        values.flat[rng.randrange(values.size)] = special[k % len(special)]
    double = rng.random() < 0.3
    _native_image(ds, shape[0], shape[1], 1, 8, b"")
    del ds["PixelData"], ds["BitsStored"], ds["HighBit"], ds["PixelRepresentation"]
    ds.BitsAllocated = 64 if double else 32
    with np.errstate(over="ignore"):
        data = values.astype("<f8" if double else "<f4").tobytes()
    if double:
        ds.DoubleFloatPixelData = data
    else:
        ds.FloatPixelData = data
    if rng.random() < 0.5:
        for keyword in ("WindowCenter", "WindowWidth"):
            if keyword in ds:
                del ds[keyword]
    log.append(f"float:{'64' if double else '32'}:{'/'.join(map(str, special))}")


def _wide_family(ds, rng: random.Random, log: List[str]) -> None:
    """Case 7: 32-bit stored values (signed or not, all 32 bits or 24), for the default and data-driven windows."""
    rows, columns = rng.choice((1, 7, 64)), rng.choice((1, 9, 64))
    signed = rng.random() < 0.5
    stored = rng.choice((32, 24, 17))
    values = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 1 << stored, size=rows * columns)
    if signed:
        values -= 1 << (stored - 1)
    _native_image(ds, rows, columns, 1, 32, values.astype("<i4" if signed else "<u4").tobytes(), signed)
    ds.BitsStored, ds.HighBit = stored, stored - 1
    log.append(f"wide:{stored}{'s' if signed else 'u'}")


def _nested_bytes(tag: int, depth: int, blob: int, undefined: bool, explicit: bool) -> bytes:
    """``depth`` sequences ``tag``, each the one item of the one above, around a private blob (little endian)."""
    def header(tag_: int, vr: bytes, length: int) -> bytes:
        start = struct.pack("<HH", tag_ >> 16, tag_ & 0xFFFF)
        if not explicit:
            return start + struct.pack("<I", length)
        if vr in (b"OB", b"SQ"):
            return start + vr + b"\0\0" + struct.pack("<I", length)
        return start + vr + struct.pack("<H", length)

    inner = header(0x00290010, b"LO", 4) + b"TEST" + header(0x00291010, b"OB", blob) + bytes(blob)
    item_end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    sequence_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    for _ in range(depth):
        if undefined:
            item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + inner + item_end
            inner = header(tag, b"SQ", 0xFFFFFFFF) + item + sequence_end
        else:
            item = b"\xfe\xff\x00\xe0" + struct.pack("<I", len(inner)) + inner
            inner = header(tag, b"SQ", len(item)) + item
    return inner


def _syntax_of(data: bytes) -> Optional[str]:
    """The transfer syntax UID written in the file meta of a serialised file (None without one)."""
    at = data.find(b"\x02\x00\x10\x00UI")
    if at < 0 or at > 4096:
        return None
    length = struct.unpack_from("<H", data, at + 6)[0]
    return data[at + 8:at + 8 + length].rstrip(b"\0 ").decode("ascii", "replace")


def _little_endian(syntax: Optional[str]) -> bool:
    """Whether a data set of transfer syntax ``syntax`` is plain little endian (not big endian, not deflated)."""
    return bool(syntax) and syntax.startswith("1.2.840.10008.1.2") and syntax not in (
        "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")


def _nested_family(ds, rng: random.Random, log: List[str], post: list) -> None:
    """Case 5: a sequence of the rendering groups nested up to hundreds deep, defined or undefined lengths."""
    tag = rng.choice((0x52009229, 0x52009230, 0x00289145, 0x00283010))
    depth = rng.choice((2, 15, 16, 17, 40, 300))
    undefined = rng.random() < 0.4
    blob = rng.choice((0, 16, 4096, 200_000))

    def splice(data: bytes) -> bytes:
        syntax = _syntax_of(data)
        at = data.find(_PIXEL_TAG_LE, 132)
        if not _little_endian(syntax) or at < 0:
            return data
        sequence = _nested_bytes(tag, depth, blob, undefined, syntax != "1.2.840.10008.1.2")
        return data[:at] + sequence + data[at:]

    if not _little_endian(str(ds.file_meta.get("TransferSyntaxUID", ""))):
        raise _NotApplicable("not little endian")
    for keyword in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence",
                    "PixelValueTransformationSequence", "VOILUTSequence"):
        if keyword in ds:
            del ds[keyword]
    post.append(splice)
    log.append(f"nested:{tag:08X}x{depth}{'u' if undefined else 'd'}+{blob}")


def _undefined_family(ds, rng: random.Random, log: List[str], post: list) -> None:
    """Case 19a: Pixel Data of undefined length (fragment items) in a native transfer syntax."""
    from pydicom.encaps import encapsulate

    pieces = rng.choice((1, 2, 3))
    has_bot = rng.random() < 0.5

    def rewrap(data: bytes) -> bytes:
        syntax = _syntax_of(data)
        if syntax not in _NATIVE_SYNTAXES:
            return data
        at = data.find(_PIXEL_TAG_LE, 132)
        if at < 0:
            return data
        explicit = syntax != "1.2.840.10008.1.2"
        start = at + (12 if explicit else 8)
        value = data[start:]
        cuts = sorted({0, len(value)} | {len(value) * k // pieces & ~1 for k in range(1, pieces)})
        parts = [value[a:b] or b"\0\0" for a, b in zip(cuts, cuts[1:])] or [b"\0\0"]
        items = encapsulate(parts, fragments_per_frame=1, has_bot=has_bot) if len(parts) > 1 or has_bot else \
            encapsulate(parts)
        return data[:start - 4] + b"\xff\xff\xff\xff" + items + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

    if str(ds.file_meta.get("TransferSyntaxUID", "")) not in _NATIVE_SYNTAXES:
        raise _NotApplicable("not native")
    post.append(rewrap)
    log.append(f"undefined:{pieces}{'+bot' if has_bot else ''}")


def _deflate_stream(parts: List[Tuple[bytes, int]]) -> bytes:
    """A raw deflate stream of ``parts`` (bytes, times), each compressed once and closed by a full flush:
    repeating its bytes repeats the data, so a zero bomb costs milliseconds to build."""
    out = []
    for data, times in parts:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        out.append((compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)) * times)
    out.append(zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS).flush())
    return b"".join(out)


def _deflate_family(ds, rng: random.Random, log: List[str], post: list) -> None:
    """Cases 3 and 8: the data set deflated, with a zero bomb before or after Pixel Data (up to 64 MiB of
    zeros in ~70 kB), junk after the stream, a cut or flipped stream, or nothing wrong at all."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import ExplicitVRLittleEndian

    if str(ds.file_meta.get("TransferSyntaxUID", "")) not in _NATIVE_SYNTAXES + ("1.2.840.10008.1.2.1.99",):
        raise _NotApplicable("not native")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    how = rng.choice(("plain", "plain", "junk", "bomb-before", "bomb-after", "truncate", "flip"))
    mib = rng.choice((1, 20, 64))
    junk = rng.randbytes(rng.choice((1, 7, 4096)))
    cut, flips = rng.random(), [(rng.random(), 1 << rng.randrange(8)) for _ in range(rng.randint(1, 4))]

    def deflate(data: bytes) -> bytes:
        if data[128:132] != b"DICM" or _syntax_of(data) != ExplicitVRLittleEndian:
            return data
        meta_end = 132 + 12 + struct.unpack_from("<I", data, 140)[0]
        body = data[meta_end:]
        meta = ds.file_meta.copy()
        meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
        written = DicomBytesIO()
        write_file_meta_info(written, meta, enforce_standard=True)
        zeros = [(bytes(1 << 20), mib)]
        bomb = struct.pack("<I", mib << 20)
        if how == "bomb-before":
            parts = [(b"\x09\x00\x10\x00LO\x04\x00BOMB\x09\x00\x00\x10OB\x00\x00" + bomb, 1)] + zeros + [(body, 1)]
        elif how == "bomb-after":
            parts = [(body + b"\xfc\xff\xfc\xffOB\x00\x00" + bomb, 1)] + zeros
        else:
            parts = [(body, 1)]
        stream = bytearray(_deflate_stream(parts))
        if how == "junk":
            stream += junk
        elif how == "truncate":
            stream = stream[:int(len(stream) * cut)]
        elif how == "flip":
            for where, bit in flips:
                stream[int(len(stream) * where) % max(1, len(stream))] ^= bit
        return data[:132] + written.getvalue() + bytes(stream)

    post.append(deflate)
    log.append(f"deflate:{how}" + (f":{mib}MiB" if how.startswith("bomb") else ""))


def _overlay_family(ds, rng: random.Random, log: List[str]) -> None:
    """An overlay plane (rendered with ``overlays=True``, see :func:`run_case`) declaring sizes its Overlay Data
    does not hold, a huge, negative or text Number of Frames in Overlay, an origin far away or with one value,
    no Overlay Rows, an unknown type, or bits embedded on the stored value's bits; or a valid plane."""
    group = rng.choice((0x6000, 0x6002, 0x601E))
    rows, columns = int(ds.get("Rows", 1) or 1), int(ds.get("Columns", 1) or 1)
    how = rng.choice(("huge", "short", "frames", "origin", "norows", "type", "embedded", "valid"))
    plane_rows, plane_columns = (65535, 65535) if how == "huge" else (max(rows // 2, 1), max(columns // 2, 1))
    ds.add_new((group, 0x0010), "US", plane_rows)
    ds.add_new((group, 0x0011), "US", plane_columns)
    ds.add_new((group, 0x0040), "CS", "X" if how == "type" else rng.choice(("G", "R")))
    origin = rng.choice(([1, 1], [-32768, 5], [32767, 32767], [rows, columns], [-3, -7]))
    ds.add_new((group, 0x0050), "SS", origin[:1] if how == "origin" and rng.random() < 0.5 else origin)
    ds.add_new((group, 0x0100), "US", 16 if how == "embedded" else 1)
    ds.add_new((group, 0x0102), "US", rng.choice((0, 15, 31)) if how == "embedded" else 0)
    if how == "frames":
        ds.add_new((group, 0x0015), "IS", rng.choice(("2147483647", "-1", "0", "3", "99999")))
        ds.add_new((group, 0x0051), "US", rng.choice((0, 1, 65535)))
    if how != "embedded":
        bits = plane_rows * plane_columns
        size = (bits + 7) // 8 if how in ("valid", "origin", "type", "frames", "norows") else rng.choice((0, 2, 64))
        ds.add_new((group, 0x3000), "OW", bytes(rng.getrandbits(8) for _ in range(min(size, 1 << 16))) +
                   bytes(max(size - (1 << 16), 0)) + b"\0" * (size % 2))
    if how == "norows":
        del ds[(group << 16) | 0x0010]
    log.append(f"overlay:{how}:{group:04x}")


def _pstate_family(ds, rng: random.Random, log: List[str]) -> None:
    """A Grayscale Softcopy Presentation State for the image (rendered with ``presentation_state=``, see
    :func:`run_case`), with one hostile part: a million polygon vertices, a nonsense rotation, a huge
    displayed area or magnification, a negative or NaN radius, shutters far outside, thousands of referenced
    images or none that match, annotations with huge coordinates, a bad Presentation LUT; or a valid state."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    gsps = "1.2.840.10008.5.1.4.1.1.11.1"
    ds.SOPInstanceUID = ds.get("SOPInstanceUID") or generate_uid()
    ds.SeriesInstanceUID = ds.get("SeriesInstanceUID") or generate_uid()
    state = Dataset()
    state.file_meta = FileMetaDataset()
    state.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    state.file_meta.MediaStorageSOPClassUID = state.SOPClassUID = gsps
    state.file_meta.MediaStorageSOPInstanceUID = state.SOPInstanceUID = generate_uid()
    how = rng.choice(("vertices", "rotation", "area", "magnify", "radius", "outside", "references", "unreferenced",
                      "annotations", "plut", "valid"))
    refs = []
    for i in range(20_000 if how == "references" else 0):
        ref = Dataset()
        ref.ReferencedSOPInstanceUID = f"1.2.3.{i}"
        refs.append(ref)
    mine = Dataset()
    mine.ReferencedSOPInstanceUID = "9.9.9" if how == "unreferenced" else ds.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = ds.SeriesInstanceUID
    series.ReferencedImageSequence = Sequence(refs + [mine])
    state.ReferencedSeriesSequence = Sequence([series])
    state.PresentationLUTShape = rng.choice(("IDENTITY", "INVERSE"))
    if how == "vertices":
        state.ShutterShape = "POLYGONAL"
        state.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"  # implicit VR: no 64 KiB limit on IS
        _set_raw(state, 0x00181620, "IS", b"\\".join([b"1", b"2", b"70000", b"3"] * 500_000))
        # written as it is: without its original encoding pydicom would decode the million values to
        # re-encode them (tens of seconds, the fuzzer's time, not the renderer's)
        state.set_original_encoding(True, True, state._character_set)
    elif how == "rotation":
        _set_raw(state, 0x00700042, "US", struct.pack("<H", rng.choice((45, 65535, 1))))
    elif how in ("area", "magnify"):
        area = Dataset()
        big = rng.choice((2**31 - 1, 1 << 20))
        area.DisplayedAreaTopLeftHandCorner = [-big, -big] if how == "area" else [1, 1]
        area.DisplayedAreaBottomRightHandCorner = [big, big] if how == "area" else [4, 4]
        area.PresentationSizeMode = "MAGNIFY" if how == "magnify" else "TRUE SIZE"
        if how == "magnify":
            _set_raw(area, 0x00700103, "FL", struct.pack("<f", rng.choice((1e30, float("nan"), -2.0, 1e-30))))
        state.DisplayedAreaSelectionSequence = Sequence([area])
    elif how in ("radius", "outside"):
        state.ShutterShape = "CIRCULAR\\RECTANGULAR"
        state.CenterOfCircularShutter = [-(10**9), 10**9] if how == "outside" else [1, 1]
        _set_raw(state, 0x00181612, "IS", rng.choice((b"-5", b"NaN", b"1e300", b"99999999999")))
        for tag, value in ((0x00181602, 10**9), (0x00181604, -(10**9)), (0x00181606, 3), (0x00181608, 2)):
            _set_raw(state, tag, "IS", str(value).encode())
        state.ShutterPresentationValue = rng.choice((0, 65535))
    elif how == "annotations":
        item, graphic = Dataset(), Dataset()
        graphic.GraphicAnnotationUnits = rng.choice(("PIXEL", "DISPLAY", "MATRIX"))
        graphic.GraphicDimensions, graphic.NumberOfGraphicPoints = 2, 2
        graphic.GraphicType = rng.choice(("POLYLINE", "CIRCLE", "ELLIPSE", "INTERPOLATED", "POINT"))
        graphic.GraphicData = [-1e30, -1e9, 1e30, 1e9]
        item.GraphicLayer = "L"
        item.GraphicObjectSequence = Sequence([graphic])
        state.GraphicAnnotationSequence = Sequence([item])
    elif how == "plut":
        lut = Dataset()
        _set_raw(lut, 0x00283002, "US", struct.pack("<3H", rng.choice((0, 1, 5)), 0, rng.choice((8, 16, 40))))
        _set_raw(lut, 0x00283006, "US", b"\xff\xff" * 3)
        state.PresentationLUTSequence = Sequence([lut])
    ds.fuzz_state = state
    log.append(f"pstate:{how}")


def hostile_mutation(kind: str, ds, rng: random.Random, log: List[str], post: list) -> None:
    """Apply the hostile family ``kind`` (see :data:`HOSTILE_KINDS`); byte-level ones add to ``post``
    the rewriting of the serialised file they need."""
    if kind == "codestream":
        _codestream_family(ds, rng, log)
    elif kind == "fragments":
        _fragments_family(ds, rng, log)
    elif kind == "tinyframes":
        _tiny_frames_family(ds, rng, log)
    elif kind == "float":
        _float_family(ds, rng, log)
    elif kind == "wide":
        _wide_family(ds, rng, log)
    elif kind == "nested":
        _nested_family(ds, rng, log, post)
    elif kind == "undefined":
        _undefined_family(ds, rng, log, post)
    elif kind == "overlay":
        _overlay_family(ds, rng, log)
    elif kind == "pstate":
        _pstate_family(ds, rng, log)
    else:
        _deflate_family(ds, rng, log, post)


def _byte_mutation(data: bytes, rng: random.Random, log: List[str]) -> bytes:
    """Flip, overwrite or cut raw bytes of the serialised file (mostly in the header)."""
    how = rng.choice(("flip", "flip", "cut", "overwrite", "insert"))
    buf = bytearray(data)
    header_end = min(len(buf), 132 + 2048)
    if how == "flip":
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(header_end)] ^= 1 << rng.randrange(8)
    elif how == "cut":
        buf = buf[: rng.randrange(len(buf))]
    elif how == "overwrite":
        at = rng.randrange(header_end)
        buf[at: at + 4] = rng.choice((b"\xff\xff\xff\xff", b"\0\0\0\0", b"\xfe\xff\xdd\xe0", rng.randbytes(4)))
    else:
        at = rng.randrange(header_end)
        buf[at:at] = rng.randbytes(rng.choice((1, 2, 4, 8)))
    log.append(f"bytes:{how}")
    return bytes(buf)


def render_options(rng: random.Random) -> Dict[str, Any]:
    """Random keyword arguments for :func:`dicomrender.render`."""
    options: Dict[str, Any] = {}
    choice = rng.random()
    if choice < 0.35:
        pass
    elif choice < 0.55:
        options["preset"] = rng.choice(("header", "auto", "brain", "lung", "bone", "percentile", "histogram",
                                        "ich_rgb", "minmax", "no-such-preset"))
        if rng.random() < 0.3:
            options["strict"] = False
    elif choice < 0.65:
        options["preset"] = ["header", "auto", rng.choice(("header", "brain", "histogram"))]
    else:
        options["window"] = (rng.choice((40.0, 0.0, -1024.5, 1e308, 2048.0, -0.5)),
                             rng.choice((1.0, 80.0, 0.5, 4096.0, 1e-300, 1e308, 0.0, -5.0)))
    if rng.random() < 0.3:
        options["function"] = rng.choice(("LINEAR", "LINEAR_EXACT", "SIGMOID"))
    if rng.random() < 0.2:
        options["invert"] = rng.random() < 0.5
    if rng.random() < 0.3:
        options["frame"] = rng.choice((0, 1, -1, 2, 1000))
    if rng.random() < 0.2:
        index = rng.choice((0, 1, 2, -1))
        preset = options.get("preset")
        # only the header preset reads voi_index: render() refuses it with the others and with window=
        if "window" not in options and (preset is None or preset == "header" or isinstance(preset, list)
                                        and "header" in preset):
            options["voi_index"] = index
    if rng.random() < 0.3:
        options["threads"] = rng.choice((1, 2))
    if rng.random() < 0.05:
        options["max_pixels"] = rng.choice((0, 1, 4096, None))
    if rng.random() < 0.05:
        options["colour_window"] = True
    return options


def make_case(corpus: List[Tuple[str, bytes]], seed: int, index: int) -> Dict[str, Any]:
    """The mutated file and render options of case ``index`` (deterministic)."""
    import pydicom

    _configure_pydicom_writing()
    rng = random.Random(f"{seed}:{index}")
    name, original = corpus[rng.randrange(len(corpus))]
    log: List[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(original))
        post: list = []
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            try:
                mutate(ds, rng, log, post)
            except Exception as exc:  # the mutation does not apply to this file
                log.append(f"skipped:{type(exc).__name__}")
        buffer = io.BytesIO()
        try:
            ds.save_as(buffer, enforce_file_format=False)
            data = buffer.getvalue()
            for rewrite in post:  # the hostile families that work on the serialised bytes
                data = rewrite(data)
        except Exception as exc:  # an unwritable mutation: keep the original bytes
            log.append(f"unwritable:{type(exc).__name__}")
            data = original
    if rng.random() < 0.12:
        data = _byte_mutation(data, rng, log)
    case = {"seed": seed, "index": index, "source": name, "mutations": log, "options": render_options(rng),
            "data": data}
    state = getattr(ds, "fuzz_state", None)
    if state is not None:  # the presentation state family: the state's bytes go with the image's
        state_buffer = io.BytesIO()
        try:
            state.save_as(state_buffer, enforce_file_format=True)
            case["state"] = state_buffer.getvalue()
        except Exception as exc:  # an unwritable value: the case runs without a state
            log.append(f"unwritable-state:{type(exc).__name__}")
    return case


# ---- running a case ------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?|0x[0-9a-f]+|'[^']*'|\"[^\"]*\"|\[[^\]]*\]|\([^)]*\)",
                     re.IGNORECASE)


def message_shape(exc: BaseException) -> str:
    """The error's class and message with numbers and quoted values blanked (for counting distinct messages)."""
    detail = getattr(exc, "detail", None) or str(exc)
    detail = detail.split("\n")[0][:200]
    return f"{type(exc).__name__}: {_NUMBER.sub('#', detail)}"


def _is_leaked_warning(w: warnings.WarningMessage) -> bool:
    """Warnings dicomrender must not let through: numpy's and its own floating-point ones."""
    filename = (w.filename or "").replace("\\", "/")
    return issubclass(w.category, RuntimeWarning) or "/dicomrender/" in filename or "/numpy/" in filename


def run_case(case: Dict[str, Any]) -> Dict[str, Any]:
    """Render one case; ``{"outcome": "ok" | "error" | "bug", ...}``."""
    import dicomrender
    from dicomrender.errors import DicomRenderError

    options = dict(case["options"])
    if any(m.startswith("overlay:") for m in case["mutations"]):
        options.setdefault("overlays", True)  # the overlay family's planes are read only when burnt in
    if case.get("state") is not None:
        options.pop("preset", None)  # a state sets the VOI: presets are refused with it
        options.update(presentation_state=io.BytesIO(case["state"]), annotations=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = dicomrender.render(io.BytesIO(case["data"]), **options)
        except DicomRenderError as exc:
            outcome = {"outcome": "error", "message": message_shape(exc)}
        except TypeError as exc:
            # an option the presets in use do not read (voi_index without the header preset...) is refused
            refused = "unexpected keyword argument" in str(exc)
            outcome = {"outcome": "error" if refused else "bug", "message": message_shape(exc)}
            if not refused:
                outcome["traceback"] = traceback.format_exc()
        except Exception as exc:
            outcome = {"outcome": "bug", "message": message_shape(exc), "traceback": traceback.format_exc()}
        else:
            if not isinstance(result, np.ndarray) or result.dtype != np.uint8:
                outcome = {"outcome": "bug", "message": f"render returned {type(result).__name__} "
                                                        f"{getattr(result, 'dtype', '')}"}
            else:
                outcome = {"outcome": "ok", "shape": list(result.shape)}
    leaked = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
              if _is_leaked_warning(w)]
    if leaked and outcome["outcome"] != "bug":
        outcome = {"outcome": "bug", "message": f"warning leaked: {leaked[0]}"}
    return outcome


# ---- API cases: window() and the kernel with random arrays ----------------------

def make_api_case(seed: int, index: int) -> Dict[str, Any]:
    """Random arguments for window() or the private kernel (deterministic)."""
    rng = random.Random(f"api:{seed}:{index}")
    dtype = rng.choice(("u1", "i1", "u2", "i2", "<u2", ">u2", ">i2", "u4", "i4", "f4", "f8", ">f8", "i8", "u8",
                        "f2", "?"))
    shape = rng.choice(((0,), (1,), (1, 1), (7,), (3, 5), (0, 4), (2, 3, 4), (300, 301), ()))
    layout = rng.choice(("c", "f", "strided", "reversed"))
    values = rng.choice(("full", "small", "special"))
    windows = rng.choice((1, 1, 1, 2, 3, 4, 5, 0))
    centers = [rng.choice((40.0, 0.0, -1e308, 1e308, float("nan"), 2048.5, 1e-300)) for _ in range(windows)]
    widths = [rng.choice((1.0, 0.5, 80.0, 1e308, 1e-300, 0.0, -1.0, float("inf"), 4096.0)) for _ in range(windows)]
    kwargs = {
        "slope": rng.choice((1.0, 0.0, -1.0, 1e308, -1e308, 1e-308, 2.5, float("nan"), float("inf"))),
        "intercept": rng.choice((0.0, -1024.0, 1e308, -1e308, float("-inf"), 0.5)),
        "function": rng.choice(("LINEAR", "LINEAR_EXACT", "SIGMOID")),
        "invert": rng.random() < 0.3,
        "threads": rng.choice((1, 2)),
    }
    if rng.random() < 0.5:
        kwargs["bits_stored"] = rng.choice((1, 2, 7, 8, 12, 15, 16, 17, 24, 31, 32, 0, 33, -1))
    if rng.random() < 0.3:
        kwargs["high_bit"] = rng.choice((0, 7, 11, 15, 16, 31, 32, -1))
    if rng.random() < 0.3:
        kwargs["signed"] = rng.random() < 0.5
    return {"kind": "api", "seed": seed, "index": index, "dtype": dtype, "shape": list(shape), "layout": layout,
            "values": values, "center": centers if windows != 1 else centers[0],
            "width": widths if windows != 1 else widths[0], "kwargs": kwargs}


def _api_array(case: Dict[str, Any]) -> np.ndarray:
    rng = np.random.default_rng(case["index"])
    dtype = np.dtype(case["dtype"])
    shape = tuple(case["shape"])
    if dtype.kind == "f":
        base = rng.normal(0, 2000, size=shape)
        if case["values"] == "special" and base.size:
            base.flat[:: max(1, base.size // 4)] = rng.choice([np.nan, np.inf, -np.inf, 1e308])
        with np.errstate(over="ignore"):  # 1e308 -> inf in float32 on purpose
            array = base.astype(dtype)
    elif dtype.kind == "b":
        array = rng.integers(0, 2, size=shape).astype(bool)
    else:
        info = np.iinfo(dtype)
        high = info.max if case["values"] == "full" else min(info.max, 4095)
        array = rng.integers(info.min if case["values"] == "full" else 0, high, size=shape, endpoint=True,
                             dtype=np.int64 if dtype.itemsize < 8 else dtype.newbyteorder("=")).astype(dtype)
    layout = case["layout"]
    if layout == "f":
        array = np.asfortranarray(array)
    elif layout == "strided" and array.ndim:
        array = np.repeat(array, 2, axis=-1)[..., ::2]
    elif layout == "reversed" and array.ndim:
        array = array[..., ::-1]
    return array


def run_api_case(case: Dict[str, Any]) -> Dict[str, Any]:
    """Call window() and compare with the reference; also poke the kernel's argument checks."""
    import dicomrender
    from dicomrender import _kernel, _reference
    from dicomrender.errors import DicomRenderError

    array = _api_array(case)
    kwargs = dict(case["kwargs"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = dicomrender.window(array, case["center"], case["width"], **kwargs)
        except DicomRenderError as exc:
            outcome = {"outcome": "error", "message": message_shape(exc)}
        except TypeError as exc:
            # documented: 8/16/32-bit integers, float32, float64
            supported = array.dtype.kind in "iu" and array.dtype.itemsize in (1, 2, 4) or \
                array.dtype.kind == "f" and array.dtype.itemsize in (4, 8)
            outcome = {"outcome": "error" if not supported else "bug", "message": message_shape(exc)}
        except Exception as exc:
            outcome = {"outcome": "bug", "message": message_shape(exc), "traceback": traceback.format_exc()}
        else:
            outcome = {"outcome": "ok"}
            centers = np.atleast_1d(case["center"])
            widths = np.atleast_1d(case["width"])
            for j, (c, w) in enumerate(zip(centers, widths)):
                expected = _reference.render_reference(
                    array, c, w, function=kwargs["function"], slope=kwargs["slope"], intercept=kwargs["intercept"],
                    invert=kwargs["invert"], bits_stored=kwargs.get("bits_stored"), high_bit=kwargs.get("high_bit"),
                    signed=kwargs.get("signed"))
                got = result if len(centers) == 1 and np.ndim(case["center"]) == 0 else result[..., j]
                if got.shape != expected.shape or not np.array_equal(got, expected):
                    tolerance = 1 if array.dtype.kind == "f" else 0
                    diff = np.abs(got.astype(int) - expected.astype(int)) if got.shape == expected.shape else None
                    if diff is None or diff.max(initial=0) > tolerance:
                        outcome = {"outcome": "bug", "message": f"window() differs from the reference "
                                                                f"(channel {j}, dtype {array.dtype})"}
                        break
    leaked = [f"{w.category.__name__}: {w.message}" for w in caught if _is_leaked_warning(w)]
    if leaked and outcome["outcome"] != "bug":
        outcome = {"outcome": "bug", "message": f"warning leaked: {leaked[0]}"}
    # The kernel's own argument checks: any combination must raise or run, never touch memory it does not own.
    rng = random.Random(f"kernel:{case['seed']}:{case['index']}")
    n = rng.choice((0, 1, 5, 70000))
    words = np.random.default_rng(case["index"]).integers(0, 1 << 32, size=n, dtype=np.uint64)
    src = words.astype(rng.choice((np.uint8, np.uint16, np.uint32, np.int16, np.float32, np.float64)))
    k = rng.choice((1, 3, 4, 5, 0))
    table_size = rng.choice((1, 2, 255, 256, 4096, 65536))
    tables = np.zeros((k, table_size), dtype=np.uint8)
    out = np.zeros(max(0, rng.choice((n * max(k, 1), n * max(k, 1) - 1, n, 0))), dtype=np.uint8)
    try:
        _kernel.gather(src, tables, out, rng.choice((0, 1, 4, 15, 16, 31, 32, -1)),
                       rng.choice((0, 1, 255, 4095, 65535, 65536, 0xFFFFFFFF)), rng.choice((1, 2, 64)))
    except (ValueError, TypeError):
        pass
    params = np.array([[1.0, 0.0, 40.0, 80.0, rng.choice((0, 1, 2, 3, -1, float("nan"), 1e10)), 0]] * max(k, 1),
                      dtype=np.float64)
    try:
        _kernel.arithmetic(src, params[: rng.choice((0, 1, 4, 5))] if rng.random() < 0.2 else params, out,
                           rng.choice((0, 4, 16, 31, 32, -1)), rng.choice((0, 1, 16, 32, 33)),
                           rng.random() < 0.5, rng.choice((1, 2)))
    except (ValueError, TypeError):
        pass
    affine = np.array([[rng.choice((1.0, 0.5, -2.0, 1e30, float("nan"), float("inf"))),
                        rng.choice((0.0, 127.5, -1e30, float("nan"))),
                        rng.choice((0.0, 100.0, -32768.0, 65535.0, 70000.0, float("nan"), 0.5))]] * max(k, 1),
                      dtype=np.float64)
    try:
        _kernel.affine(src, affine[: rng.choice((0, 1, 4, 5))] if rng.random() < 0.2 else affine, out,
                       rng.choice((0, 4, 15, 16, -1)), rng.choice((0, 1, 8, 12, 16, 17)), rng.random() < 0.5,
                       rng.choice((1, 2)))
    except (ValueError, TypeError, RuntimeError):
        pass
    return outcome


# ---- worker and supervisor -----------------------------------------------------

API_SHARE = 0.1


def is_api_case(seed: int, index: int) -> bool:
    return random.Random(f"kind:{seed}:{index}").random() < API_SHARE


def case_for(corpus, seed: int, index: int) -> Dict[str, Any]:
    return make_api_case(seed, index) if is_api_case(seed, index) else make_case(corpus, seed, index)


def run_any(case: Dict[str, Any]) -> Dict[str, Any]:
    return run_api_case(case) if case.get("kind") == "api" else run_case(case)


def worker(seed: int, indices: List[int]) -> None:
    """Run cases, announcing each on stdout before and after (the supervisor watches the gaps)."""
    corpus = load_corpus()
    out = sys.stdout
    # Test hooks: prove that the supervisor notices a dying or silent worker.
    abort_at = int(os.environ.get("DICOMFUZZ_ABORT_AT", -1))
    hang_at = int(os.environ.get("DICOMFUZZ_HANG_AT", -1))
    for index in indices:
        out.write(json.dumps({"start": index}) + "\n")
        out.flush()
        if index == abort_at:
            os.abort()
        if index == hang_at:
            time.sleep(3600)
        case = case_for(corpus, seed, index)
        started = time.perf_counter()
        outcome = run_any(case)
        outcome.update(index=index, seconds=round(time.perf_counter() - started, 4),
                       source=case.get("source", "api"), mutations=case.get("mutations", []))
        out.write(json.dumps(outcome) + "\n")
        out.flush()


SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer", "ERROR: UndefinedBehavior",
                      "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def save_input(crash_dir: str, case: Dict[str, Any], kind: str, details: Dict[str, Any]) -> str:
    """Write a failing case as ``<kind>-<seed>-<index>.dcm`` (or ``.json`` only for API cases)."""
    os.makedirs(crash_dir, exist_ok=True)
    stem = os.path.join(crash_dir, f"{kind}-{case['seed']}-{case['index']}")
    meta = {k: v for k, v in case.items() if k not in ("data", "state")}
    if case.get("state") is not None:
        with open(stem + ".pstate.dcm", "wb") as f:
            f.write(case["state"])
    meta.update(details)
    if "data" in case:
        with open(stem + ".dcm", "wb") as f:
            f.write(case["data"])
    with open(stem + ".json", "w") as f:
        json.dump(meta, f, indent=1, default=str)
    return stem


class Supervisor:
    """Runs cases in watched worker processes and keeps the figures."""

    def __init__(self, args):
        self.args = args
        self.corpus = load_corpus()
        self.counts = {"ok": 0, "error": 0, "bug": 0, "crash": 0, "hang": 0, "sanitizer": 0}
        self.messages: Dict[str, int] = {}
        self.bugs: List[str] = []
        self.ran = 0
        self.api_cases = 0
        self.slowest = (0.0, None)

    def _spawn(self, indices: List[int], log_path: str):
        env = dict(os.environ)
        command = [sys.executable, os.path.abspath(__file__), "--worker", "--seed", str(self.args.seed),
                   "--indices", ",".join(map(str, indices))]
        log = open(log_path, "ab")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env, bufsize=0)
        return process, log

    def _sanitizer_text(self, log_path: str, offset: int) -> str:
        with open(log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
        return text if any(p in text for p in SANITIZER_PATTERNS) else ""

    def _record(self, result: Dict[str, Any]) -> None:
        self.ran += 1
        outcome = result["outcome"]
        self.counts[outcome] += 1
        if result.get("source") == "api":
            self.api_cases += 1
        if "message" in result:
            self.messages[result["message"]] = self.messages.get(result["message"], 0) + 1
        if result.get("seconds", 0) > self.slowest[0]:
            self.slowest = (result["seconds"], result["index"])
        if outcome == "bug":
            case = case_for(self.corpus, self.args.seed, result["index"])
            stem = save_input(self.args.crash_dir, case, "bug", result)
            self.bugs.append(f"bug at case {result['index']} ({result.get('source')}, "
                             f"{result.get('mutations')}): {result['message']} -> {stem}")

    def _lost(self, index: int, kind: str, log_path: str, offset: int, detail: str) -> None:
        report = self._sanitizer_text(log_path, offset)
        if report:
            self.counts["sanitizer"] += 1
        self.counts[kind] += 1
        self.ran += 1
        case = case_for(self.corpus, self.args.seed, index)
        with open(log_path, "rb") as f:
            f.seek(offset)
            tail = f.read().decode("utf-8", "replace")[-20000:]
        stem = save_input(self.args.crash_dir, case, kind, {"detail": detail, "stderr": tail})
        self.bugs.append(f"{kind} at case {index} ({case.get('source', 'api')}, {case.get('mutations')}): "
                         f"{detail} -> {stem}")

    def run(self) -> int:
        args = self.args
        os.makedirs(args.crash_dir, exist_ok=True)
        started = time.monotonic()
        deadline = started + args.time_limit
        pending = list(range(args.start, args.start + args.count))
        lanes = max(1, args.jobs)
        queues = [pending[i::lanes] for i in range(lanes)]
        selector = selectors.DefaultSelector()
        state = {}

        def launch(lane):
            queue = queues[lane]
            if not queue or time.monotonic() > deadline:
                return
            log_path = os.path.join(args.crash_dir, f"worker-{lane}.log")
            offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
            process, log = self._spawn(queue, log_path)
            os.set_blocking(process.stdout.fileno(), False)
            state[lane] = {"process": process, "log": log, "log_path": log_path, "offset": offset,
                           "current": None, "since": time.monotonic(), "buffer": b""}
            selector.register(process.stdout, selectors.EVENT_READ, lane)

        def finish(lane):
            s = state.pop(lane)
            selector.unregister(s["process"].stdout)
            s["process"].stdout.close()
            s["log"].close()
            return s

        for lane in range(lanes):
            launch(lane)
        while state:
            events = selector.select(timeout=1.0)
            now = time.monotonic()
            for key, _ in events:
                lane = key.data
                s = state[lane]
                chunk = s["process"].stdout.read()
                if chunk:
                    s["buffer"] += chunk
                    *lines, s["buffer"] = s["buffer"].split(b"\n")
                    for line in lines:
                        message = json.loads(line)
                        if "start" in message:
                            s["current"] = message["start"]
                            s["since"] = time.monotonic()
                        else:
                            self._record(message)
                            queues[lane].remove(message["index"])
                            s["current"] = None
                    if time.monotonic() > deadline and s["current"] is None:
                        s["process"].kill()
                    continue
                # EOF: the worker ended (all done, killed at the deadline, or crashed).
                code = s["process"].wait()
                s = finish(lane)
                if s["current"] is not None and now <= deadline + args.case_timeout:
                    self._lost(s["current"], "crash", s["log_path"], s["offset"], f"worker exited with status {code}")
                    queues[lane].remove(s["current"])
                elif code not in (0, -9) and s["current"] is None and queues[lane]:
                    self._lost(queues[lane][0], "crash", s["log_path"], s["offset"],
                               f"worker exited with status {code} between cases")
                    queues[lane].pop(0)
                if time.monotonic() <= deadline:
                    launch(lane)
            for lane, s in list(state.items()):
                if s["current"] is not None and now - s["since"] > args.case_timeout:
                    s["process"].kill()
                    s["process"].wait()
                    current = s["current"]
                    s = finish(lane)
                    self._lost(current, "hang", s["log_path"], s["offset"],
                               f"no answer within {args.case_timeout} s")
                    queues[lane].remove(current)
                    launch(lane)
        # Sanitizer reports that did not stop a worker (UBSan without halt_on_error) still count.
        for lane in range(lanes):
            log_path = os.path.join(args.crash_dir, f"worker-{lane}.log")
            if os.path.exists(log_path):
                with open(log_path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                reports = sum(text.count(p) for p in ("ERROR: AddressSanitizer", "runtime error:"))
                if reports > self.counts["sanitizer"]:
                    self.bugs.append(f"{reports - self.counts['sanitizer']} sanitizer report(s) in {log_path}")
                    self.counts["sanitizer"] = reports
        return self.report(time.monotonic() - started)

    def report(self, seconds: float) -> int:
        args = self.args
        figures = {
            "cases": self.ran,
            "mutated_files": self.ran - self.api_cases,
            "api_cases": self.api_cases,
            "seconds": round(seconds, 1),
            "corpus_files": len(self.corpus),
            "rendered": self.counts["ok"],
            "refused_with_dicomrender_error": self.counts["error"],
            "bugs": self.counts["bug"],
            "crashes": self.counts["crash"],
            "hangs": self.counts["hang"],
            "sanitizer_reports": self.counts["sanitizer"],
            "distinct_error_messages": len(self.messages),
            "slowest_case": {"seconds": self.slowest[0], "index": self.slowest[1]},
            "seed": args.seed,
        }
        print(json.dumps(figures, indent=1))
        if args.messages:
            for message, count in sorted(self.messages.items(), key=lambda kv: -kv[1]):
                print(f"{count:6d}  {message}")
        with open(os.path.join(args.crash_dir, "figures.json"), "w") as f:
            json.dump({"figures": figures, "messages": self.messages}, f, indent=1)
        for line in self.bugs:
            print("FAIL:", line, file=sys.stderr)
        failed = bool(self.bugs) or self.counts["crash"] or self.counts["hang"] or self.counts["sanitizer"]
        if self.ran < args.min_count:
            print(f"FAIL: only {self.ran} cases ran within {args.time_limit} s (at least {args.min_count} needed)",
                  file=sys.stderr)
            failed = True
        return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="cases to run (default 5000)")
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=480.0, help="seconds before no new case starts")
    parser.add_argument("--case-timeout", type=float, default=60.0, help="seconds one case may take (hang)")
    parser.add_argument("--min-count", type=int, default=0, help="fail when fewer cases ran")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--crash-dir", default="fuzz-crashes", help="where failing inputs and logs go")
    parser.add_argument("--messages", action="store_true", help="print every distinct error message")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--indices", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.seed, [int(i) for i in args.indices.split(",") if i])
        return 0
    return Supervisor(args).run()


if __name__ == "__main__":
    sys.exit(main())
