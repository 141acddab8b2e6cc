"""Resource bounds: headers that claim huge images fail fast, allocating nothing big.

"Nothing big" is measured with tracemalloc, which sees numpy's and Python's
allocations (pydicom's decoders allocate their output frames through them).
"""

from __future__ import annotations

import inspect
import os
import struct
import tracemalloc

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames, get_frame
from pydicom.uid import RLELossless

import dicomrender
from dicomrender import DEFAULT_MAX_PIXELS
from dicomrender.dicom import codestream as _codestream
from dicomrender.errors import PixelDataError, PixelLimitError

from .data import data_file
from .synthetic import make_dataset

#: The most a refused file may make dicomrender allocate.
SMALL = 16 << 20


def _peak(fn):
    """(exception or result, peak traced bytes) of ``fn()``."""
    tracemalloc.start()
    try:
        try:
            outcome = fn()
        except Exception as exc:  # returned, so the peak is read before pytest formats anything
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _image(pixels: np.ndarray, **attributes):
    """A minimal native MONOCHROME2 dataset of ``pixels`` (rows, cols)."""
    return make_dataset(pixels, modality="OT", **attributes)


def _claiming(name: str, **attributes) -> Dataset:
    ds = pydicom.dcmread(data_file(name))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def test_default_max_pixels_is_documented():
    assert inspect.signature(dicomrender.render).parameters["max_pixels"].default == DEFAULT_MAX_PIXELS == 1 << 31
    doc = " ".join(dicomrender.render.__doc__.split())
    assert "Default ``2**31`` (``dicomrender.DEFAULT_MAX_PIXELS``)" in doc


@pytest.mark.parametrize("max_pixels", [DEFAULT_MAX_PIXELS, None], ids=["default-limit", "no-limit"])
def test_header_claiming_65535x65535x1000_over_tiny_pixel_data_fails_fast(tmp_path, max_pixels):
    ds = _image(np.arange(16, dtype=np.uint16).reshape(4, 4))
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 1000
    path = str(tmp_path / "bomb.dcm")
    ds.save_as(path, enforce_file_format=True)
    error, peak = _peak(lambda: dicomrender.render(path, max_pixels=max_pixels))
    assert isinstance(error, PixelDataError), error
    assert error.filename == path and path in str(error)
    assert peak < SMALL
    if max_pixels is None:  # then the Pixel Data length is what refuses it
        assert error.attribute == "PixelData" and "truncated" in str(error)
        assert "32 bytes" in str(error) and str(65535 * 65535 * 1000 * 2) in str(error)
    else:
        assert isinstance(error, PixelLimitError) and error.attribute == "max_pixels"
        assert str(65535 * 65535 * 1000) in str(error)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "JPEG2000.dcm", "MR_small_jp2klossless.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm", "JPGExtended.dcm", "JPEG-lossy.dcm"])
@pytest.mark.parametrize("max_pixels", [DEFAULT_MAX_PIXELS, None], ids=["default-limit", "no-limit"])
def test_compressed_frame_claiming_46340x46340_fails_before_the_decoder_allocates(name, max_pixels):
    # 46340**2 is just under the default limit: 4 GB of 16-bit output the decoder would allocate first
    ds = _claiming(name, Rows=46340, Columns=46340)
    error, peak = _peak(lambda: dicomrender.render(ds, max_pixels=max_pixels))
    assert isinstance(error, PixelDataError), error
    assert error.attribute == "Rows" and "46340x46340" in str(error)
    assert peak < SMALL


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm"])
def test_two_billion_frames_of_one_pixel_fail_before_the_frames_are_listed(name):
    ds = _claiming(name, Rows=1, Columns=1, NumberOfFrames=2_000_000_000)
    error, peak = _peak(lambda: dicomrender.render(ds))
    assert isinstance(error, PixelDataError), error
    assert "2000000000" in str(error)
    assert peak < SMALL


def test_max_pixels_is_inclusive():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(dicomrender.render(_image(pixels), window=(127.5, 256), max_pixels=256), pixels)
    with pytest.raises(PixelLimitError, match="16x16x1x1 = 256 pixels exceeds max_pixels=255") as info:
        dicomrender.render(_image(pixels), window=(127.5, 256), max_pixels=255)
    assert info.value.attribute == "max_pixels"  # the caller's limit, not a corrupt Rows


def _rle_zero_frame(rows: int, columns: int) -> bytes:
    """A valid one-segment RLE frame of ``rows x columns`` zero bytes: runs of 128 (PS3.5 G.3.1)."""
    runs, rest = divmod(rows * columns, 128)
    segment = b"\x81\x00" * runs + (bytes([257 - rest, 0]) if rest > 1 else b"\x00\x00" if rest else b"")
    header = struct.pack("<16I", 1, 64, *([0] * 14))
    return header + segment + b"\x00" * (len(segment) % 2)


def test_genuine_decompression_bomb_is_refused_by_max_pixels_before_decoding():
    # 4096 x 4096 zeros in 262 kB of RLE: a real codestream, so only max_pixels can refuse it.
    ds = _image(np.zeros((1, 1), np.uint8))
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows = ds.Columns = 4096
    ds.PixelData = encapsulate([_rle_zero_frame(4096, 4096)])
    ds["PixelData"].is_undefined_length = True
    assert _codestream.frame_mismatch(get_frame(ds.PixelData, 0, number_of_frames=1), RLELossless, 4096, 4096) is None
    error, peak = _peak(lambda: dicomrender.render(ds, max_pixels=4096 * 4096 - 1))
    assert isinstance(error, PixelDataError) and "max_pixels" in str(error)
    assert peak < SMALL
    # and within the limit it decodes to exactly what was encoded
    np.testing.assert_array_equal(dicomrender.render(ds, window=(0.5, 1), max_pixels=4096 * 4096),
                                  np.zeros((4096, 4096), np.uint8))


def test_rle_capacity_bounds_what_a_segment_decodes_to():
    frame = _rle_zero_frame(100, 100)  # 78 runs of 128 and one of 16: 158 segment bytes
    assert len(frame) == 64 + 158
    assert _codestream.rle_capacity(frame) == 64 * 158 + 128
    assert _codestream.frame_mismatch(frame, RLELossless, 100, 100) is None
    assert "decode to at most" in _codestream.frame_mismatch(frame, RLELossless, 1000, 1000)


def test_jpeg_and_j2k_sizes_are_read_from_the_codestream_header():
    # hand-built headers: SOI, an APP0 to skip, then SOF0 (precision 8, 300 rows, 200 columns)
    jpeg = b"\xff\xd8" + b"\xff\xe0\x00\x04ab" + b"\xff\xc0\x00\x0b\x08\x01\x2c\x00\xc8\x01\x01\x11\x00"
    assert _codestream.jpeg_size(jpeg) == (300, 200)
    assert _codestream.jpeg_size(b"\xff\xd8\xff\xda\x00\x02") is None  # scan before any frame header
    assert _codestream.jpeg_size(b"not a jpeg") is None
    # SOC, SIZ: Xsiz, Ysiz, XOsiz, YOsiz, tile size and offsets, one component of 12 bits (Ssiz 11)
    siz = b"\xff\x4f\xff\x51\x00\x29\x00\x00" + struct.pack(">IIIIIIIIHBBB", 640, 480, 10, 20, 640, 480, 0, 0, 1,
                                                                 11, 1, 1)
    assert _codestream.j2k_size(siz) == (460, 630)  # (Ysiz - YOsiz, Xsiz - XOsiz)
    assert _codestream.j2k_header(siz) == (460, 630, 1, 12)
    assert _codestream.j2k_size(siz[:40]) is None  # cut before the components: not checkable
    assert _codestream.j2k_size(b"\x00" * 30) is None


def _compressed_corpus():
    folders = [os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")]
    try:
        import data_store

        folders.append(os.path.join(os.path.dirname(data_store.__file__), "data"))
    except ImportError:
        pass
    for folder in folders:
        for name in sorted(os.listdir(folder)):
            if name.endswith(".dcm"):
                yield os.path.join(folder, name)


def test_the_codestream_check_accepts_every_valid_compressed_file_of_the_corpus():
    # every frame, with its components and bits: the check refuses anything it cannot verify
    checked = 0
    for path in _compressed_corpus():
        try:
            ds = pydicom.dcmread(path)
            tsyntax = ds.file_meta.TransferSyntaxUID
            if not tsyntax.is_compressed or "Rows" not in ds:
                continue
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            data = list(generate_frames(ds.PixelData, number_of_frames=frames))[:frames]
        except Exception:
            continue  # not a usable compressed image
        if os.path.basename(path) == "JPEG2000-embedded-sequence-delimiter.dcm":
            continue  # its codestream is corrupt on purpose (a delimiter inside the SIZ segment)
        for frame in data:
            size = _codestream.jpeg_size(frame) or _codestream.j2k_size(frame)
            if size is not None:
                assert size == (ds.Rows, ds.Columns), path
            assert _codestream.frame_mismatch(frame, tsyntax, ds.Rows, ds.Columns, int(ds.get("SamplesPerPixel", 1)),
                                              int(ds.BitsAllocated)) is None, path
        checked += 1
    assert checked >= 35  # pydicom's own test files alone hold 39 compressed images


def test_segmented_palette_that_expands_to_gigabytes_is_refused_before_expansion():
    # 20000 linear segments of 65535 entries: 120 kB that pydicom's expansion turns into 1.3e9 Python ints
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    ds = _image(pixels, PhotometricInterpretation="PALETTE COLOR")
    segments = struct.pack("<%dH" % (3 + 3 * 20000), *((0, 1, 0) + (1, 65535, 65535) * 20000))
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"Segmented{colour}PaletteColorLookupTableData", segments)
        ds[f"Segmented{colour}PaletteColorLookupTableData"].VR = "OW"
    error, peak = _peak(lambda: dicomrender.render(ds))
    assert isinstance(error, dicomrender.InvalidDatasetError), error
    assert error.attribute == "SegmentedRedPaletteColorLookupTableData" and "256 entries" in str(error)
    assert peak < SMALL
    # a well-formed segmented palette of the same image still renders: one linear ramp 0 -> 65535 over 256 entries
    ramp = struct.pack("<6H", 0, 1, 0, 1, 255, 65535)
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"Segmented{colour}PaletteColorLookupTableData", ramp)
    rgb = dicomrender.render(ds)
    assert rgb.shape == (8, 8, 3)
    expected = (np.round(np.linspace(0, 65535, 256)).astype(np.int64) >> 8).astype(np.uint8)[pixels]
    np.testing.assert_array_equal(rgb[..., 0], expected)


@pytest.mark.parametrize("slope", [1e6, 1e12, 1e300])
def test_histogram_preset_over_a_huge_value_range_allocates_nothing_big(slope):
    # 64 stored values 0..63 times the slope: dcmtk's dense histogram would need slope * 64 bins
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8)
    ds = _image(pixels, RescaleSlope=slope, RescaleIntercept=0, Modality="MR")
    got, peak = _peak(lambda: dicomrender.render(ds, preset="histogram"))
    assert peak < SMALL
    # 5 % of 64 pixels = 3: the walk stops at stored value 2 from below (dcmtk then adds one
    # modality unit) and at 61 from above (63, 62, 61)
    low, high = 2 * slope + 1, 61 * slope
    if 63 * slope >= 2.0 ** 62:  # beyond an integer histogram: the min-max window instead
        low, high = 0.0, 63 * slope
    expected = dicomrender.window(pixels, (low + high + 1) / 2, high - low + 1, slope=slope)
    np.testing.assert_array_equal(got, expected)


def test_segmented_palette_with_doubling_indirect_segments_is_refused_before_expansion():
    # each indirect segment copies every segment before it: 40 of them (163 words) expand to 2**40 entries
    words = [0, 1, 5]
    for k in range(1, 41):
        words += [2, k, 0, 0]
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    ds = _image(pixels, PhotometricInterpretation="PALETTE COLOR")
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"Segmented{colour}PaletteColorLookupTableData", struct.pack(f"<{len(words)}H", *words))
        ds[f"Segmented{colour}PaletteColorLookupTableData"].VR = "OW"
    error, peak = _peak(lambda: dicomrender.render(ds))
    assert isinstance(error, dicomrender.InvalidDatasetError), error
    assert "256 entries" in str(error)
    assert peak < SMALL
    # eight doublings of one entry are exactly the 256 entries the descriptor announces: rendered
    words = [0, 1, 0x1234]
    for k in range(1, 9):
        words += [2, k, 0, 0]
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"Segmented{colour}PaletteColorLookupTableData", struct.pack(f"<{len(words)}H", *words))
    np.testing.assert_array_equal(dicomrender.render(ds), np.full((8, 8, 3), 0x12, np.uint8))
