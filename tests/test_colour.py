"""Colour images: PALETTE COLOR (normal and segmented), RGB, YBR_* to RGB uint8, against hand-computed
pixels, the PS3.3 formulas and pydicom's own conversions."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import dicomrender
from dicomrender import _reference, errors
from dicomrender.dicom import color as colour

from .data import data_file
from .synthetic import colour_dataset, make_dataset


def _palette_dataset(indices: np.ndarray, tables, first=0, bits=16) -> pydicom.Dataset:
    ds = make_dataset(indices, photometric="PALETTE COLOR", modality="US")
    n = len(tables[0])
    for name, table in zip(("Red", "Green", "Blue"), tables):
        ds.add_new(pydicom.datadict.tag_for_keyword(f"{name}PaletteColorLookupTableDescriptor"), "US",
                   [n % 65536, first, bits])
        data = np.asarray(table, dtype="<u2" if bits == 16 else "u1").tobytes()
        ds.add_new(pydicom.datadict.tag_for_keyword(f"{name}PaletteColorLookupTableData"), "OW", data)
    return ds


# ---- RGB ----------------------------------------------------------------------------------------------


def test_rgb_eight_bit_is_passed_through_and_planar_configuration_is_honoured():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    for planar in (0, 1):
        got = dicomrender.render(colour_dataset(rgb, planar=planar))
        assert got.shape == (5, 7, 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, rgb)


def test_rgb_sixteen_bit_drops_the_low_byte():
    rgb = np.array([[[0, 255, 256], [65535, 32768, 511]]], dtype=np.uint16)
    got = dicomrender.render(colour_dataset(rgb))
    np.testing.assert_array_equal(got, [[[0, 0, 1], [255, 128, 1]]])


def test_rgb_twelve_bits_stored_in_sixteen():
    rgb = np.array([[[4095, 16, 15]]], dtype=np.uint16)
    ds = colour_dataset(rgb)
    ds.BitsStored, ds.HighBit = 12, 11
    np.testing.assert_array_equal(dicomrender.render(ds), [[[255, 1, 0]]])


def test_multiframe_colour_shapes():
    rgb = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    ds = colour_dataset(rgb)
    ds.NumberOfFrames = 2
    np.testing.assert_array_equal(dicomrender.render(ds), rgb)
    np.testing.assert_array_equal(dicomrender.render(ds, frame=1), rgb[1])


# ---- YBR ------------------------------------------------------------------------------------------------


def test_ybr_full_formula_hand_computed():
    # Y=128, Cb=128, Cr=255: R = 128 + 1.402 * 127 = 306.05 -> 255; G = 128 - 0.714136 * 127 = 37.30 -> 37
    # B = 128 -> 128.  Y=16, Cb=200, Cr=50: R = 16 - 109.36 = -93 -> 0; G = 16 - 24.78 + 55.70 = 46.92 -> 47;
    # B = 16 + 127.58 = 143.58 -> 144
    ybr = np.array([[[128, 128, 255], [16, 200, 50]]], dtype=np.uint8)
    np.testing.assert_array_equal(dicomrender.render(colour_dataset(ybr, "YBR_FULL")),
                                  [[[255, 37, 128], [0, 47, 144]]])


def test_ybr_full_equals_pydicom_convert_color_space_on_a_grid():
    grid = np.stack(np.meshgrid(*[np.arange(0, 256, 5)] * 3, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    grid = grid.astype(np.uint8)
    expected = pydicom.pixels.convert_color_space(grid, "YBR_FULL", "RGB")
    np.testing.assert_array_equal(colour.ybr_full_to_rgb(grid).astype(np.uint8), expected)


def test_native_ybr_full_422_is_upsampled_pairwise():
    # two pixels share Cb and Cr: stored as Y1 Y2 Cb Cr
    ds = make_dataset(np.zeros((1, 4), np.uint8), modality="OT")
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.PixelData = bytes([10, 20, 128, 128, 200, 100, 128, 128])
    np.testing.assert_array_equal(dicomrender.render(ds), [[[10] * 3, [20] * 3, [200] * 3, [100] * 3]])


def test_ybr_rct_inverts_the_jpeg2000_reversible_transform():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(50, 3), dtype=np.int64)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = np.floor_divide(r + 2 * g + b, 4)
    ybr = np.stack([y, b - g + 128, r - g + 128], axis=-1)
    np.testing.assert_array_equal(colour.ybr_rct_to_rgb(ybr), rgb)


@pytest.mark.parametrize("name", ["SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_ybr_full_422_uncompressed.dcm",
                                  "examples_ybr_color.dcm", "US1_J2KR.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_real_ybr_files_equal_pydicom_rgb(name):
    path = data_file(name)
    if path is None:
        pytest.skip("pydicom-data is not installed")
    ds = pydicom.dcmread(path)
    frame = 0 if int(ds.get("NumberOfFrames", 1) or 1) > 1 else None
    # pydicom converts YBR to RGB by default; colour JPEG Baseline through Pillow, the decoder that agrees with
    # dcmtk (tests/conformance/test_dcmtk_colour.py), as render decodes it
    plugin = "pillow" if ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit else ""
    expected = pydicom.pixels.pixel_array(path, index=frame, decoding_plugin=plugin)
    np.testing.assert_array_equal(dicomrender.render(path, frame=frame), expected)


# ---- PALETTE COLOR ----------------------------------------------------------------------------------------


def test_palette_maps_through_the_tables_with_clamping():
    indices = np.array([[0, 9, 10, 11], [12, 13, 200, 255]], dtype=np.uint8)
    red = [0x0000, 0x1000, 0x8000, 0xFFFF]      # 16-bit entries, 8 bits kept
    green = [0xFFFF, 0x8000, 0x1000, 0x0000]
    blue = [0x0100, 0x0200, 0x0300, 0x0400]
    got = dicomrender.render(_palette_dataset(indices, (red, green, blue), first=10))
    assert got.shape == (2, 4, 3)
    # index - 10 clamped to 0..3
    expected_index = np.array([[0, 0, 0, 1], [2, 3, 3, 3]])
    for channel, table in enumerate((red, green, blue)):
        np.testing.assert_array_equal(got[..., channel], np.asarray(table)[expected_index] >> 8)


def test_eight_bit_palette():
    indices = np.array([[0, 1, 2]], dtype=np.uint8)
    tables = ([10, 20, 30], [40, 50, 60], [70, 80, 90])
    got = dicomrender.render(_palette_dataset(indices, tables, bits=8))
    np.testing.assert_array_equal(got, [[[10, 40, 70], [20, 50, 80], [30, 60, 90]]])


def test_segmented_palette_is_expanded():
    indices = np.arange(8, dtype=np.uint8).reshape(1, 8)
    ds = make_dataset(indices, photometric="PALETTE COLOR", modality="US")
    # discrete segment (opcode 0): 2 values; linear segment (opcode 1): 6 steps up to 0xFFFF
    segments = np.array([0, 2, 0x0000, 0x1000, 1, 6, 0xFFFF], dtype="<u2").tobytes()
    for name in ("Red", "Green", "Blue"):
        ds.add_new(pydicom.datadict.tag_for_keyword(f"{name}PaletteColorLookupTableDescriptor"), "US", [8, 0, 16])
        ds.add_new(pydicom.datadict.tag_for_keyword(f"Segmented{name}PaletteColorLookupTableData"), "OW", segments)
    got = dicomrender.render(ds)
    # linear from 0x1000 to 0xFFFF over 6 steps: 0x1000 + k * (0xFFFF - 0x1000) / 6, rounded by pydicom
    table = np.array([0x0000, 0x1000] + [round(0x1000 + k * (0xFFFF - 0x1000) / 6) for k in range(1, 7)])
    np.testing.assert_array_equal(got[0, :, 0], table >> 8)
    np.testing.assert_array_equal(got[..., 0], got[..., 2])


@pytest.mark.parametrize("missing,attribute", [
    ("GreenPaletteColorLookupTableData", "GreenPaletteColorLookupTableData"),
    ("BluePaletteColorLookupTableDescriptor", "BluePaletteColorLookupTableDescriptor"),
])
def test_missing_palette_data_names_the_attribute(missing, attribute):
    ds = _palette_dataset(np.zeros((2, 2), np.uint8), ([0, 1], [0, 1], [0, 1]))
    del ds[missing]
    with pytest.raises(errors.InvalidDatasetError) as info:
        dicomrender.render(ds)
    assert info.value.attribute == attribute and missing in str(info.value)


def test_palette_data_shorter_than_its_descriptor():
    ds = _palette_dataset(np.zeros((2, 2), np.uint8), ([0, 1, 2], [0, 1, 2], [0, 1, 2]))
    ds.RedPaletteColorLookupTableDescriptor = [4, 0, 16]
    with pytest.raises(errors.InvalidDatasetError, match="3 entries") as info:
        dicomrender.render(ds)
    assert info.value.attribute == "RedPaletteColorLookupTableData"


@pytest.mark.parametrize("name", ["OBXXXX1A.dcm", "OBXXXX1A_expb.dcm", "gdcm-US-ALOKA-16.dcm",
                                  "gdcm-US-ALOKA-16_big.dcm", "examples_palette.dcm"])
def test_real_palette_files_equal_the_little_endian_pydicom_mapping(name):
    path = data_file(name)
    if path is None:
        pytest.skip("pydicom-data is not installed")
    # pydicom's apply_color_lut reads big-endian LUT data as little endian, so the expected
    # pixels come from the little-endian twin
    twin = data_file(name.replace("_expb", "").replace("_big", ""))
    ds = pydicom.dcmread(twin)
    expected = pydicom.pixels.apply_color_lut(ds.pixel_array, ds)
    if expected.dtype == np.uint16:
        expected = (expected >> 8).astype(np.uint8)
    np.testing.assert_array_equal(dicomrender.render(path), expected)


# ---- windowing colour ------------------------------------------------------------------------------------


def test_colour_refuses_presets_and_implicit_windowing():
    ds = colour_dataset(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(errors.UnsupportedImageError) as info:
        dicomrender.render(ds, "auto")
    assert info.value.attribute == "PhotometricInterpretation"
    with pytest.raises(errors.UnsupportedImageError, match="colour_window=True"):
        dicomrender.render(ds, window=(128, 64))


def test_colour_window_when_asked_for_explicitly():
    rgb = np.array([[[0, 100, 127], [128, 160, 255]]], dtype=np.uint8)
    got = dicomrender.render(colour_dataset(rgb), window=(128, 64), colour_window=True)
    expected = _reference.to_uint8(_reference.voi_values(rgb.astype(np.float64), 128, 64))
    np.testing.assert_array_equal(got, expected)
    # hand-computed: 128 -> ((128 - 127.5) / 63 + 0.5) * 255 = 129.52 -> 129; 0 -> 0; 255 -> 255
    assert got[0, 1, 0] == 129 and got[0, 0, 0] == 0 and got[0, 1, 2] == 255
