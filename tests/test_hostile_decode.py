"""Hostile input, round two (issue 13): the decoding cases, each run in a capped child process.

Case 1-2: a compressed frame whose codestream header says height 0 (a DNL-defined height), or a
size other than Rows x Columns, at any frame size; case 3 and 8: Deflated data sets (bombs, and
valid ones through ``convert``); case 4: encapsulated multi-frame data without an offset table;
case 5: sequences nested a thousand deep in group 5200; case 19a: undefined-length Pixel Data in a
native transfer syntax.  Every input is generated here; each must give a ``DicomRenderError`` or a
correct image within 2 s and with a peak below 8x the output plus 100 MB (``tests/hostile.py``).
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Callable, List, Tuple

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, RLELossless

import dicomrender
from dicomrender.dicom import codestream, fragments

from .data import data_file
from .hostile import MB, CappedResult, run_capped
from .synthetic import make_dataset, write_dataset

RENDER = """
import dicomrender
return dicomrender.render(PATH)
"""
GiB = 1 << 30


def _render_capped(path) -> CappedResult:
    return run_capped(RENDER, PATH=str(path))


def _refused(result: CappedResult, error: str, *words: str) -> None:
    assert result.outcome == "error", (result.outcome, result.error, result.message, result.detail)
    assert result.error == error, (result.error, result.message)
    for word in words:
        assert word in result.message, (word, result.message)
    assert result.within(), (result.seconds, result.peak_bytes)


# ---- compressed frames: codestream headers (cases 1 and 2) ------------------------------------------

def _first_frame(ds: Dataset) -> bytes:
    return next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))


def _with_frame(ds: Dataset, frame: bytes, **attributes) -> Dataset:
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].is_undefined_length = True
    return ds


def _marker(frame: bytes, marker: bytes) -> int:
    """Where the marker segment ``marker`` starts, walking the JPEG segments (not a byte search)."""
    at = 2
    while frame[at:at + 2] != marker:
        assert frame[at] == 0xFF and frame[at + 1] != 0xDA, "no such segment before the scan"
        at += 2 + struct.unpack_from(">H", frame, at + 2)[0]
    return at


def _sof(frame: bytes, marker: bytes, rows: int, columns: int) -> bytes:
    """``frame`` with the height and width of its frame header replaced."""
    at = _marker(frame, marker)
    return frame[:at + 5] + struct.pack(">HH", rows, columns) + frame[at + 9:]


def _siz(frame: bytes, rows: int, columns: int) -> bytes:
    """A bare JPEG 2000 codestream with Xsiz, Ysiz replaced (offsets XOsiz, YOsiz kept)."""
    assert frame[:4] == b"\xff\x4f\xff\x51"
    xo, yo = struct.unpack_from(">II", frame, 16)
    return frame[:8] + struct.pack(">II", columns + xo, rows + yo) + frame[16:]


def test_jpeg_ls_frame_header_of_height_0_is_refused_before_the_decoder_sees_it(tmp_path):
    # case 1: 45x10 JPEG-LS whose SOF55 says height 0; CharLS/libjpeg then allocated until the process aborted
    ds = pydicom.dcmread(data_file("JPEGLSNearLossless_08.dcm"))
    frame = _sof(_first_frame(ds), b"\xff\xf7", 0, ds.Columns)
    path = write_dataset(_with_frame(ds, frame), tmp_path / "jls_height0.dcm")
    _refused(_render_capped(path), "PixelDataError", "height 0", "DNL", "JPEG-LS")


@pytest.mark.parametrize("size", [None, (8, 4096), (32768, 32768)], ids=["100x100", "8x4096", "32768x32768"])
def test_baseline_jpeg_frame_header_of_height_0_is_refused_at_any_size(tmp_path, size):
    # case 2: libjpeg allocated 6 GB in 10 s for these before failing; the check skipped frames <= 16 MiB
    ds = pydicom.dcmread(data_file("SC_rgb_jpeg_dcmtk.dcm"))
    rows, columns = size or (ds.Rows, ds.Columns)
    frame = _sof(_first_frame(ds), b"\xff\xc0", 0, columns)
    path = write_dataset(_with_frame(ds, frame, Rows=rows, Columns=columns), tmp_path / "jpeg_height0.dcm")
    # max_pixels=None: the codestream check alone refuses it (32768 x 32768 x 3 is beyond the default limit)
    result = run_capped("import dicomrender\nreturn dicomrender.render(PATH, max_pixels=None)", PATH=path)
    _refused(result, "PixelDataError", "height 0", "JPEG codestream")
    assert result.attribute == "Rows"


# name, frame patch (None: header Rows + 1), what the message says
_SMALL_MISMATCHES = [
    ("SC_rgb_jpeg_dcmtk.dcm", None, "the JPEG codestream is 100x100"),
    ("JPEGLSNearLossless_08.dcm", None, "the JPEG-LS codestream is 45x10"),
    ("MR_small_jp2klossless.dcm", None, "the JPEG 2000 codestream is 64x64"),
    # two 30-byte segments: at most 64 x 30 + 128 bytes each, not 64 x 64
    ("MR_small_RLE.dcm", lambda f: struct.pack("<16I", 2, 64, 94, *([0] * 13)) + bytes(60), "decode to at most"),
    ("SC_rgb_jpeg_dcmtk.dcm", lambda f: _sof(f, b"\xff\xc0", 100, 0), "codestream is 100x0"),
    ("SC_rgb_jpeg_dcmtk.dcm", lambda f: _sof(f, b"\xff\xc0", 65535, 65535), "codestream is 65535x65535"),
    ("MR_small_jp2klossless.dcm", lambda f: _siz(f, 0, 64), "codestream is 0x64"),
    ("MR_small_jp2klossless.dcm", lambda f: _siz(f, 1 << 30, 1 << 30), "codestream is 1073741824x1073741824"),
]


@pytest.mark.parametrize("name, patch, words", _SMALL_MISMATCHES,
                         ids=["jpeg-rows", "jls-rows", "j2k-rows", "rle-short", "jpeg-width0", "jpeg-huge",
                              "j2k-height0", "j2k-huge"])
def test_every_frame_is_checked_whatever_its_size(tmp_path, name, patch, words):
    # frames of 16 MiB or less went to the decoders unchecked: now a few kB frame is checked too
    ds = pydicom.dcmread(data_file(name))
    frame = _first_frame(ds)
    attributes = {"Rows": ds.Rows + 1} if patch is None else {}
    frame = frame if patch is None else patch(frame)
    path = write_dataset(_with_frame(ds, frame, **attributes), tmp_path / "mismatch.dcm")
    _refused(_render_capped(path), "PixelDataError", words)


@pytest.mark.parametrize("name, patch, words", [
    ("SC_rgb_jpeg_dcmtk.dcm", lambda f: f[2:], "does not start with a JPEG SOI marker"),
    ("SC_rgb_jpeg_dcmtk.dcm", lambda f: f[:2] + b"\xff\xda\x00\x02" + f[2:], "a scan starts before any frame header"),
    ("SC_rgb_jpeg_dcmtk.dcm", lambda f: f[:_marker(f, b"\xff\xc0") + 8], "frame header (SOF) is truncated"),
    ("JPEGLSNearLossless_08.dcm", lambda f: f[:2] + b"\xff\xf8\x00\x0b\x04" + bytes(8) + f[2:], "oversize"),
    ("MR_small_jp2klossless.dcm", lambda f: b"\0\0\0\0" + f, "SIZ) cannot be found"),
    ("MR_small_jp2klossless.dcm", lambda f: f[:30], "SIZ) cannot be found"),
    ("MR_small_RLE.dcm", lambda f: b"\x10" + f[1:], "not a valid segment table"),
], ids=["jpeg-no-soi", "jpeg-scan-first", "jpeg-short-sof", "jls-lse-oversize", "j2k-junk-first", "j2k-cut",
        "rle-16-segments"])
def test_a_frame_whose_header_cannot_be_checked_is_refused(tmp_path, name, patch, words):
    ds = pydicom.dcmread(data_file(name))
    path = write_dataset(_with_frame(ds, patch(_first_frame(ds))), tmp_path / "unchecked.dcm")
    result = _render_capped(path)
    _refused(result, "PixelDataError", "cannot be decoded as", words)
    assert result.attribute == "PixelData"


@pytest.mark.parametrize("name, attributes, words", [
    ("SC_rgb_jpeg_dcmtk.dcm", dict(SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2"), "3 components"),
    ("MR_small_jp2klossless.dcm", dict(BitsAllocated=8, BitsStored=8, HighBit=7), "16-bit samples"),
    ("MR_small_RLE.dcm", dict(BitsAllocated=8, BitsStored=8, HighBit=7), "2 RLE segments, 1 expected"),
])
def test_codestream_components_and_bits_must_fit_the_header(name, attributes, words):
    ds = pydicom.dcmread(data_file(name))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    with pytest.raises(dicomrender.PixelDataError, match=words):
        dicomrender.render(ds)


def test_every_frame_of_a_multiframe_file_is_checked_before_any_is_decoded():
    ds = pydicom.dcmread(data_file("SC_rgb_rle_2frame.dcm"))
    frames = list(generate_frames(ds.PixelData, number_of_frames=2))
    short = struct.pack("<16I", 3, 64, 74, 84, *([0] * 12)) + bytes(30)  # three 10-byte segments: 768 bytes at most
    ds.PixelData = encapsulate([frames[0], short])
    with pytest.raises(dicomrender.PixelDataError, match="frame 1 cannot be decoded") as info:
        dicomrender.render(ds)
    assert info.value.attribute == "Rows"
    np.testing.assert_array_equal(dicomrender.render(ds, frame=0),
                                  dicomrender.render(pydicom.dcmread(data_file("SC_rgb_rle_2frame.dcm")), frame=0))


# ---- Deflated data sets (cases 3 and 8) ------------------------------------------------------------

def _deflated(parts: List[Tuple[bytes, int]]) -> bytes:
    """A raw deflate stream of ``parts`` (bytes, times): each part compressed once and closed with a
    full flush, so repeating its bytes repeats the data (a 1 GiB zero bomb in 1 MB, in milliseconds)."""
    out = []
    for data, times in parts:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        out.append((compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)) * times)
    out.append(zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush())
    return b"".join(out)


def _deflated_file(ds: Dataset, split: Callable[[bytes], List[Tuple[bytes, int]]]) -> bytes:
    """``ds`` as a Deflated Explicit VR Little Endian file whose inflated data set is ``split(data set)``."""
    files = {}
    for syntax in (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        ds.file_meta.TransferSyntaxUID = syntax
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
        files[syntax] = data, 132 + 12 + struct.unpack_from("<I", data, 140)[0]
    (plain, plain_end), (deflated, meta_end) = files.values()
    return deflated[:meta_end] + _deflated(split(plain[plain_end:]))


def _image_8x8() -> Dataset:
    ds = make_dataset(np.arange(64, dtype=np.uint16).reshape(8, 8) * 50, modality="OT", WindowCenter=1600,
                      WindowWidth=3200)
    ds.add_new(0x00090010, "LO", "BOMB")
    ds.add_new(0x00091000, "OB", b"\xab\xcd")  # the placeholder a bomb replaces
    return ds


def _bomb_before_pixels(data: bytes) -> List[Tuple[bytes, int]]:
    placeholder = b"\x09\x00\x00\x10OB\x00\x00" + struct.pack("<I", 2) + b"\xab\xcd"
    at = data.index(placeholder)
    return [(data[:at] + b"\x09\x00\x00\x10OB\x00\x00" + struct.pack("<I", GiB), 1), (bytes(MB), 1024),
            (data[at + len(placeholder):], 1)]


def _bomb_after_pixels(data: bytes) -> List[Tuple[bytes, int]]:
    # Data Set Trailing Padding (FFFC,FFFC): 1 GiB of zeros after the 128 bytes of pixels
    return [(data + b"\xfc\xff\xfc\xffOB\x00\x00" + struct.pack("<I", GiB), 1), (bytes(MB), 1024)]


@pytest.mark.parametrize("split, error, attribute", [(_bomb_before_pixels, "InvalidDatasetError", "TransferSyntaxUID"),
                                                     (_bomb_after_pixels, "PixelDataError", "PixelData")],
                         ids=["private-element", "trailing-padding"])
def test_deflate_bomb_is_refused_without_inflating_it(tmp_path, split, error, attribute):
    # case 3: an 8x8 image and 1 GiB of zeros in 1 MB of file; pydicom inflated all of it (2.1 GB, 7 s)
    data = _deflated_file(_image_8x8(), split)
    assert len(data) < 2 * MB
    path = tmp_path / "bomb.dcm"
    path.write_bytes(data)
    result = _render_capped(path)
    _refused(result, error, "deflated data set inflates to more than", "refused", str(path))
    assert result.attribute == attribute
    assert result.peak_bytes < 100 * MB


def test_deflated_image_within_its_bounds_renders_exactly(tmp_path):
    ds = _image_8x8()
    expected = dicomrender.render(ds)
    path = tmp_path / "small.dcm"
    path.write_bytes(_deflated_file(ds, lambda data: [(data, 1)]))
    np.testing.assert_array_equal(dicomrender.render(str(path)), expected)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(dicomrender.render(f), expected)


@pytest.mark.parametrize("cut", ["truncated", "corrupt"])
def test_truncated_or_corrupt_deflate_stream_is_an_error_naming_the_file(tmp_path, cut):
    data = _deflated_file(_image_8x8(), lambda data: [(data, 1)])
    meta_end = 132 + 12 + struct.unpack_from("<I", data, 140)[0]
    data = data[:-40] if cut == "truncated" else data[:meta_end] + b"\xff" * 16 + data[meta_end + 16:]
    path = tmp_path / f"{cut}.dcm"
    path.write_bytes(data)
    with pytest.raises(dicomrender.InvalidDatasetError, match=cut) as info:
        dicomrender.render(str(path))
    assert str(path) in str(info.value)


def test_pydicoms_deflated_image_renders_and_converts(tmp_path):
    # case 8: convert failed every valid deflated file (inflated offsets against the compressed size)
    path = data_file("image_dfl.dcm")
    expected = dicomrender.window(pydicom.dcmread(path).pixel_array, 127.5, 256)
    np.testing.assert_array_equal(dicomrender.render(path, window=(127.5, 256)), expected)
    report = dicomrender.convert([path], str(tmp_path / "out"), format="png", window=(127.5, 256))
    assert (len(report.ok), len(report.failed)) == (1, 0), report.records
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "image_dfl.png")), expected)


def test_convert_reports_a_deflate_bomb_as_one_failed_file(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bomb.dcm").write_bytes(_deflated_file(_image_8x8(), _bomb_after_pixels))
    write_dataset(_image_8x8(), tmp_path / "in" / "good.dcm")
    report = dicomrender.convert([str(tmp_path / "in")], str(tmp_path / "out"), format="png")
    assert (len(report.ok), len(report.failed)) == (1, 1), report.records
    failed = report.failed
    assert failed[0].error == "PixelDataError" and "inflates to more than" in failed[0].message


# ---- encapsulated multi-frame data without an offset table (case 4) -----------------------------------

def _rle_1x1_frames(count: int) -> Dataset:
    """``count`` frames of one 8-bit pixel (k % 256), one RLE fragment each, no Basic Offset Table."""
    ds = make_dataset(np.zeros((1, 1), np.uint8), modality="OT", NumberOfFrames=count)
    ds.file_meta.TransferSyntaxUID = RLELossless
    header = struct.pack("<16I", 1, 64, *([0] * 14))
    ds.PixelData = encapsulate([header + bytes([0, k % 256]) for k in range(count)])
    ds["PixelData"].is_undefined_length = True
    return ds


@pytest.mark.parametrize("count", [8000, 20000])
def test_multiframe_without_offset_table_is_indexed_once(tmp_path, count):
    # case 4: each frame re-scanned every fragment: 8,000 frames (579 kB) took 26 s, 20,000 took 160 s
    path = write_dataset(_rle_1x1_frames(count), tmp_path / "frames.dcm")
    result = run_capped("""
        import dicomrender
        out = dicomrender.render(PATH, window=(127.5, 256))
        assert (out[:, 0, 0] == np.arange(COUNT) % 256).all()
        return out
    """, PATH=path, COUNT=count)
    assert result.outcome == "ok", (result.error, result.message, result.detail)
    assert result.output_bytes == count
    assert result.within(), (result.seconds, result.peak_bytes)


def _compressed_corpus():
    import os

    folder = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    for name in sorted(os.listdir(folder)):
        try:
            ds = pydicom.dcmread(os.path.join(folder, name))
            if ds.file_meta.TransferSyntaxUID.is_compressed and "PixelData" in ds:
                yield name, ds
        except Exception:
            continue


def test_frame_index_finds_the_frames_pydicom_finds():
    checked = 0
    for name, ds in _compressed_corpus():
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        try:
            expected = list(generate_frames(ds.PixelData, number_of_frames=frames))
        except Exception:
            continue
        index = fragments.frame_index(ds.PixelData, frames)
        got = [bytes(fragments.encapsulate_frames(ds.PixelData, [spans])[16:]) for spans in index.frames]
        assert got == expected, name
        checked += 1
    assert checked >= 30


def test_frame_index_groups_fragments_by_offset_tables_and_markers():
    jpeg = [b"\xff\xd8" + bytes([k]) * 30 + b"\xff\xd9" for k in range(3)]
    pieces = [(f[:10], f[10:]) for f in jpeg]  # two fragments per frame
    flat = [p for pair in pieces for p in pair]
    with_bot = encapsulate(jpeg, fragments_per_frame=2, has_bot=True)
    for value in (with_bot, encapsulate(jpeg, fragments_per_frame=2, has_bot=False)):
        index = fragments.frame_index(value, 3)
        assert index.fragments == 6 and len(index.frames) == 3
        assert [b"".join(bytes(value[a:b]) for a, b in spans) for spans in index.frames] == jpeg
    assert len(flat) == 6
    value, offsets, lengths = encapsulate_extended(jpeg)
    index = fragments.frame_index(value, 3, (offsets, lengths))
    assert [bytes(value[a:b]) for ((a, b),) in index.frames] == jpeg
    bad_bot = bytearray(with_bot)
    bad_bot[12] = 3  # the second offset no longer points at an item
    with pytest.raises(dicomrender.PixelDataError, match="not where a fragment starts"):
        fragments.frame_index(bytes(bad_bot), 3)
    with pytest.raises(dicomrender.PixelDataError, match="unexpected tag"):
        fragments.frame_index(bytes(8) + b"\x08\x00\x10\x00" + bytes(8), 1)


def test_the_index_is_built_once_per_element(monkeypatch):
    ds = _rle_1x1_frames(50)
    calls = []
    original = fragments.frame_index
    monkeypatch.setattr(fragments, "frame_index", lambda *a, **k: calls.append(1) or original(*a, **k))
    for k in range(5):
        assert dicomrender.render(ds, window=(127.5, 256), frame=k)[0, 0] == k
    assert len(calls) == 1


# ---- deeply nested sequences (case 5) --------------------------------------------------------------

def _nested(depth: int, blob: int, undefined: bool = False) -> bytes:
    """``depth`` Shared Functional Groups Sequences, each the one item of the one above, around a private blob."""
    inner = b"\x29\x00\x10\x00LO\x04\x00TEST" + b"\x29\x00\x10\x10OB\x00\x00" + struct.pack("<I", blob) + bytes(blob)
    for _ in range(depth):
        if undefined:
            item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + inner + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
            inner = b"\x00\x52\x29\x92SQ\x00\x00\xff\xff\xff\xff" + item + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        else:
            item = b"\xfe\xff\x00\xe0" + struct.pack("<I", len(inner)) + inner
            inner = b"\x00\x52\x29\x92SQ\x00\x00" + struct.pack("<I", len(item)) + item
    return inner


def _with_sequence(tmp_path, sequence: bytes) -> str:
    path = write_dataset(make_dataset(np.arange(16, dtype=np.uint8).reshape(4, 4), modality="OT"),
                         tmp_path / "nested.dcm")
    data = open(path, "rb").read()
    at = data.index(b"\xe0\x7f\x10\x00")  # Pixel Data: group 5200 comes just before it
    with open(path, "wb") as f:
        f.write(data[:at] + sequence + data[at:])
    return path


@pytest.mark.parametrize("undefined", [False, True], ids=["defined-lengths", "undefined-lengths"])
def test_sequences_nested_a_thousand_deep_are_refused_before_they_are_copied(tmp_path, undefined):
    # case 5: a 1.56 MB file used 1.55 GB: each nesting level was parsed from a copy of the rest
    path = _with_sequence(tmp_path, _nested(1000, 1_500_000, undefined))
    result = _render_capped(path)
    assert result.outcome == "error", (result.outcome, result.error, result.message, result.detail)
    assert result.error == "InvalidDatasetError", result.message
    if undefined:  # pydicom parses these as it reads the file: it runs out of Python stack first
        assert "nest too deep to be parsed" in result.message
    else:
        assert result.attribute == "SharedFunctionalGroupsSequence"
        assert "nested more than 16 sequences deep" in result.message
    assert result.within(), (result.seconds, result.peak_bytes)


def test_sequences_of_undefined_length_nested_within_the_parser_stack_are_refused_by_depth(tmp_path):
    path = _with_sequence(tmp_path, _nested(100, 16, undefined=True))
    with pytest.raises(dicomrender.InvalidDatasetError, match="nested more than 16") as info:
        dicomrender.render(path)
    assert info.value.attribute == "SharedFunctionalGroupsSequence"


def test_sixteen_levels_render_and_seventeen_are_refused(tmp_path):
    path = _with_sequence(tmp_path, _nested(16, 16))
    assert dicomrender.render(path).shape == (4, 4)
    path = _with_sequence(tmp_path, _nested(17, 16))
    with pytest.raises(dicomrender.InvalidDatasetError, match="nested more than 16") as info:
        dicomrender.render(path)
    assert info.value.attribute == "SharedFunctionalGroupsSequence" and path in str(info.value)


# ---- undefined-length native Pixel Data (case 19a) ---------------------------------------------------

def test_undefined_length_pixel_data_in_a_native_syntax_is_refused(tmp_path):
    # case 19a: the item tags and lengths were rendered as pixels
    ds = make_dataset(np.arange(64, dtype=np.uint8).reshape(8, 8), modality="OT")
    native = write_dataset(ds, tmp_path / "native.dcm")
    data = open(native, "rb").read()
    at = data.index(b"\xe0\x7f\x10\x00OB\x00\x00")
    items = encapsulate([bytes(range(64))])
    path = tmp_path / "undefined.dcm"
    path.write_bytes(data[:at + 8] + b"\xff\xff\xff\xff" + items + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    assert pydicom.dcmread(path)["PixelData"].is_undefined_length
    _refused(_render_capped(path), "PixelDataError", "undefined length", "natively")


def test_codestream_check_is_cheap_and_reads_only_the_header():
    # a 64 MiB frame is checked from its first bytes: the check never walks the entropy-coded data
    ds = pydicom.dcmread(data_file("SC_rgb_jpeg_dcmtk.dcm"))
    frame = _first_frame(ds)
    big = memoryview(frame[:-2] + bytes(64 * MB) + b"\xff\xd9")
    assert codestream.frame_problem(big, ds.file_meta.TransferSyntaxUID, 100, 100, 3, 8) is None
