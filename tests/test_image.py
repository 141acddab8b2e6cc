"""Reading DICOM pixel data: LUT descriptors, enhanced multi-frame groups, 1-bit and float data, codecs,
and the errors bad headers raise.  Expected pixels are computed by hand or with ``_reference``."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import dicomrender
from dicomrender import _reference, errors
from dicomrender.dicom import elements
from dicomrender.dicom.header import ImageInfo

from .data import data_file
from .synthetic import make_dataset

# ---- helpers ------------------------------------------------------------------------------


def _lut_item(descriptor, data, *, descriptor_vr="US", data_vr="US", explanation=None) -> Dataset:
    item = Dataset()
    item.add_new((0x0028, 0x3002), descriptor_vr, list(descriptor))
    if data is not None:
        if data_vr == "OW":
            item.add_new((0x0028, 0x3006), "OW", bytes(data))
        else:
            item.add_new((0x0028, 0x3006), data_vr, [int(v) for v in data])
    if explanation:
        item.LUTExplanation = explanation
    return item


def _with_modality_lut(ds, item):
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        ds.pop(keyword, None)
    ds.ModalityLUTSequence = Sequence([item])
    return ds


def _window(values, center, width, invert=False):
    return _reference.to_uint8(_reference.voi_values(np.asarray(values, dtype=np.float64), center, width), invert)


# ---- Modality LUT Sequence ------------------------------------------------------------------


def test_modality_lut_maps_and_clamps_below_and_above_the_table():
    stored = np.array([[0, 9, 10, 11], [12, 13, 14, 4095]], dtype=np.uint16)
    table = [100, 200, 300, 400]  # maps 10..13
    ds = _with_modality_lut(make_dataset(stored, bits_stored=12), _lut_item((4, 10, 16), table))
    got = dicomrender.render(ds, window=(250, 301))
    m = np.array([[100, 100, 100, 200], [300, 400, 400, 400]])
    np.testing.assert_array_equal(got, _window(m, 250, 301))
    # hand-computed: LINEAR c=250 w=301: y = ((m - 249.5) / 300 + 0.5) * 255
    assert got[0, 0] == 0 and got[1, 0] == 170 and got[1, 3] == 255


def test_modality_lut_zero_entries_means_65536():
    stored = np.array([[0, 1, 32768, 65535]], dtype=np.uint16)
    table = np.arange(65536)[::-1]  # inverts the stored values
    item = _lut_item((0, 0, 16), table.astype("<u2").tobytes(), data_vr="OW")
    ds = _with_modality_lut(make_dataset(stored), item)
    info = ImageInfo.from_dataset(ds)
    modality = info.frame_parameters(0).modality
    assert modality.data.size == 65536 and modality.first_mapped == 0
    got = dicomrender.render(ds, window=(32768, 65536))
    np.testing.assert_array_equal(got, _window([[65535, 65534, 32767, 0]], 32768, 65536))


def test_modality_lut_first_mapped_value_is_signed_for_signed_pixels():
    stored = np.array([[-2048, -101, -100, -99, 0, 2047]], dtype=np.int16)
    # descriptor read as US: 65436 means -100 when Pixel Representation is 1
    ds = _with_modality_lut(make_dataset(stored, bits_stored=12), _lut_item((3, 65436, 16), [10, 20, 30]))
    assert ImageInfo.from_dataset(ds).frame_parameters(0).modality.first_mapped == -100
    got = dicomrender.render(ds, window=(20, 21))
    np.testing.assert_array_equal(got, _window([[10, 10, 10, 20, 30, 30]], 20, 21))


def test_modality_lut_with_ss_descriptor_keeps_its_sign():
    stored = np.array([[-5, -4, -3, 0]], dtype=np.int16)
    ds = _with_modality_lut(make_dataset(stored, bits_stored=8), _lut_item((2, -4, 16), [1000, 2000],
                                                                           descriptor_vr="SS"))
    got = dicomrender.render(ds, window=(1500, 1001))
    np.testing.assert_array_equal(got, _window([[1000, 1000, 2000, 2000]], 1500, 1001))


def test_eight_bit_lut_entries_packed_in_ow():
    stored = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    item = _lut_item((4, 0, 8), bytes([0, 64, 128, 255]), data_vr="OW")
    ds = _with_modality_lut(make_dataset(stored), item)
    np.testing.assert_array_equal(dicomrender.render(ds, window=(128, 256)),
                                  _window([[0, 64, 128, 255]], 128, 256))


# ---- VOI LUT Sequence -----------------------------------------------------------------------


def test_voi_lut_sequence_scales_its_entry_range_and_clamps():
    stored = np.array([[0, 99, 100, 101, 102, 500]], dtype=np.uint16)
    ds = make_dataset(stored, bits_stored=12)
    ds.VOILUTSequence = Sequence([_lut_item((3, 100, 12), [0, 2048, 4095], explanation="ramp")])
    got = dicomrender.render(ds)  # no window in the header: the VOI LUT
    # entries scaled by 255 / 4095: 0 -> 0, 2048 -> 127.53 -> 127, 4095 -> 255
    np.testing.assert_array_equal(got, [[0, 0, 0, 127, 255, 255]])


def test_voi_lut_after_a_negative_rescale_has_a_signed_first_mapped_value():
    stored = np.array([[0, 1023, 1024, 1025, 4095]], dtype=np.uint16)
    ds = make_dataset(stored, bits_stored=12, RescaleIntercept=-1024, RescaleSlope=1)
    # first mapped value -1 written as US 65535: the modality values reach below 0
    ds.VOILUTSequence = Sequence([_lut_item((3, 65535, 8), [0, 100, 200])])
    info = ImageInfo.from_dataset(ds)
    assert info.frame_parameters(0).voi_luts[0].first_mapped == -1
    got = dicomrender.render(ds)
    expected = np.floor(np.array([0, 0, 100, 200, 200]) * 255.0 / 255.0).astype(np.uint8)
    np.testing.assert_array_equal(got[0], expected)


def test_vlut_04_real_file_matches_hand_mapping():
    path = data_file("vlut_04.dcm")
    if path is None:
        pytest.skip("pydicom-data is not installed")
    ds = pydicom.dcmread(path)
    lut = np.asarray(ds.VOILUTSequence[0].LUTData, dtype=np.int64)
    first, bits = int(ds.VOILUTSequence[0].LUTDescriptor[1]), int(ds.VOILUTSequence[0].LUTDescriptor[2])
    index = np.clip(ds.pixel_array.astype(np.int64) - first, 0, lut.size - 1)
    expected = (lut[index] * 255 // ((1 << bits) - 1)).astype(np.uint8)
    np.testing.assert_array_equal(dicomrender.render(ds), expected)


# ---- bad LUTs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("descriptor,data,attribute,match", [
    ((4, 0, 16), [1, 2, 3], "LUTData", "3 entries"),
    ((3, 0, 7), [1, 2, 3], "LUTDescriptor", "bits"),
    ((3, 0, 17), [1, 2, 3], "LUTDescriptor", "bits"),
    ((3, 0), [1, 2, 3], "LUTDescriptor", "3 values"),
    ((3, 0, 8), [1, 2, 300], "LUTData", "outside"),
    ((3, 0, 16), None, "LUTData", "no LUTData"),
    ((3, 5000, 16), [1, 2, 3], "LUTDescriptor", "first mapped value 5000 is outside"),
])
def test_inconsistent_modality_lut_names_the_attribute(descriptor, data, attribute, match):
    ds = _with_modality_lut(make_dataset(np.zeros((2, 2), np.uint16), bits_stored=12),
                            _lut_item(descriptor, data))
    with pytest.raises(errors.InvalidDatasetError, match=match) as info:
        dicomrender.render(ds, window=(1, 2))
    assert info.value.attribute == attribute


def test_inconsistent_voi_lut_names_the_attribute():
    ds = make_dataset(np.zeros((2, 2), np.uint16), bits_stored=12)
    ds.VOILUTSequence = Sequence([_lut_item((10, 0, 16), [1, 2, 3])])
    with pytest.raises(errors.InvalidDatasetError, match="VOILUTSequence LUTData has 3 entries") as info:
        dicomrender.render(ds)
    assert info.value.attribute == "LUTData"


# ---- header errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("photometric,samples,match", [
    ("MONOCHROME3", 1, "is unknown"),
    ("HSV", 3, "is unknown"),
    ("RGB", 1, "does not fit SamplesPerPixel 1"),
    ("MONOCHROME2", 3, "does not fit SamplesPerPixel 3"),
])
def test_unknown_or_mismatched_photometric_interpretation(photometric, samples, match):
    ds = make_dataset(np.zeros((2, 2), np.uint8))
    ds.SamplesPerPixel = samples
    ds.PixelData = bytes(2 * 2 * samples)
    ds.PhotometricInterpretation = photometric
    with pytest.raises(errors.InvalidDatasetError, match=match) as info:
        dicomrender.render(ds)
    assert info.value.attribute == "PhotometricInterpretation"


@pytest.mark.parametrize("allocated,stored", [(8, 9), (16, 17), (1, 8)])
def test_bits_stored_above_bits_allocated(allocated, stored):
    ds = make_dataset(np.zeros((2, 8), np.uint16 if allocated == 16 else np.uint8))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, stored, stored - 1
    with pytest.raises(errors.InvalidDatasetError, match="BitsStored") as info:
        dicomrender.render(ds, window=(0, 10))
    assert info.value.attribute == "BitsStored"


# ---- 1-bit and float pixel data -------------------------------------------------------------------


def test_one_bit_frames_that_do_not_start_on_a_byte_boundary():
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, size=(3, 3, 5), dtype=np.uint8)  # 15 pixels per frame: frames 2 and 3 unaligned
    ds = make_dataset(np.zeros((3, 3, 5), np.uint8))
    ds.BitsAllocated = ds.BitsStored = 1
    ds.HighBit = 0
    ds.PixelData = np.packbits(bits.reshape(-1), bitorder="little").tobytes()
    got = dicomrender.render(ds, window=(0.5, 1))  # width 1: 0 -> 0, 1 -> 255
    np.testing.assert_array_equal(got, bits * 255)
    np.testing.assert_array_equal(dicomrender.render(ds, window=(0.5, 1), frame=2), bits[2] * 255)


def test_one_bit_real_file_equals_pydicom_unpacking():
    path = data_file("liver.dcm")
    if path is None:
        pytest.skip("pydicom-data is not installed")
    expected = pydicom.dcmread(path).pixel_array.astype(np.uint8) * 255
    np.testing.assert_array_equal(dicomrender.render(path, window=(0.5, 1)), expected)


@pytest.mark.parametrize("keyword,dtype", [("FloatPixelData", np.float32), ("DoubleFloatPixelData", np.float64)])
def test_float_pixel_data_through_the_float_path(keyword, dtype):
    values = np.array([[-1.5, 0.0, 0.25, 0.5], [0.75, 1.0, 2.0, np.nan]], dtype=dtype)
    ds = make_dataset(np.zeros((2, 4), np.uint16))
    del ds.PixelData
    del ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = np.dtype(dtype).itemsize * 8
    ds.add_new(pydicom.datadict.tag_for_keyword(keyword), "OF" if dtype == np.float32 else "OD",
               values.astype(np.dtype(dtype).newbyteorder("<")).tobytes())
    got = dicomrender.render(ds, window=(0.5, 1.0), function="LINEAR_EXACT")
    expected = _reference.to_uint8(_reference.voi_values(values.astype(np.float64), 0.5, 1.0, "LINEAR_EXACT"))
    # PIPELINE.md section 5: float pixel data may differ by 1 level; NaN renders as 0
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert got[1, 3] == 0 and got[0, 0] == 0 and got[1, 2] == 255
    assert got[0, 3] in (127, 128)  # y = 127.5 exactly


# ---- enhanced multi-frame functional groups -------------------------------------------------------------


def _frame_group(intercept=None, window=None):
    group = Dataset()
    if intercept is not None:
        transform = Dataset()
        transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = intercept, 1, "HU"
        group.PixelValueTransformationSequence = Sequence([transform])
    if window is not None:
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = window
        group.FrameVOILUTSequence = Sequence([voi])
    return group


def test_enhanced_per_frame_groups_override_shared_and_top_level():
    stored = np.tile(np.arange(0, 4096, 256, dtype=np.uint16), (3, 4, 1))  # 3 frames of 4x16
    ds = make_dataset(stored, bits_stored=12, RescaleIntercept=0, WindowCenter=9999, WindowWidth=2)
    ds.SharedFunctionalGroupsSequence = Sequence([_frame_group(intercept=-1024, window=(40, 400))])
    ds.PerFrameFunctionalGroupsSequence = Sequence([
        _frame_group(),                               # shared rescale and window
        _frame_group(window=(1000, 2000)),            # own window, shared rescale
        _frame_group(intercept=0, window=(2048, 4096)),  # own rescale and window
    ])
    got = dicomrender.render(ds, "header")
    expected = [
        _window(stored[0].astype(float) - 1024, 40, 400),
        _window(stored[1].astype(float) - 1024, 1000, 2000),
        _window(stored[2].astype(float), 2048, 4096),
    ]
    np.testing.assert_array_equal(got, np.stack(expected))
    np.testing.assert_array_equal(dicomrender.render(ds, "header", frame=1), expected[1])


# ---- compressed transfer syntaxes ---------------------------------------------------------------------------


def test_missing_codec_names_the_transfer_syntax_and_the_extra(monkeypatch):
    from pydicom.pixels.decoders.base import Decoder

    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    path = data_file("MR_small_jpeg_ls_lossless.dcm")
    with pytest.raises(errors.MissingCodecError) as info:
        dicomrender.render(path)
    message = str(info.value)
    assert "JPEG-LS Lossless" in message and "1.2.840.10008.1.2.4.80" in message
    assert "dicomrender[codecs]" in message and "MR_small_jpeg_ls_lossless.dcm" in message
    assert info.value.attribute == "TransferSyntaxUID"


def test_one_frame_of_a_compressed_file_decodes_only_that_frame(monkeypatch):
    from pydicom.pixels.decoders.base import Decoder

    path = data_file("emri_small_RLE.dcm")
    if path is None:
        pytest.skip("pydicom-data is not installed")
    calls = []
    original = Decoder.as_array

    def spy(self, src, *, index=None, **kwargs):
        calls.append((type(src).__name__, index, kwargs.get("number_of_frames")))
        return original(self, src, index=index, **kwargs)

    monkeypatch.setattr(Decoder, "as_array", spy)
    got = dicomrender.render(path, window=(200, 400), frame=3)
    assert calls == [("bytes", None, 1)]  # the decoder is handed that frame's codestream alone
    stored = pydicom.dcmread(data_file("emri_small.dcm")).pixel_array[3]
    np.testing.assert_array_equal(got, _window(stored, 200, 400))


def test_undecodable_stream_is_a_pixel_data_error():
    path = data_file("JPEG-lossy.dcm")
    with pytest.raises(errors.PixelDataError) as info:
        dicomrender.render(path, window=(100, 200))
    assert info.value.attribute == "PixelData" and "JPEG Extended" in str(info.value)


@pytest.mark.parametrize("name,twin", [("MR_small_RLE.dcm", "MR_small.dcm"),
                                       ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
                                       ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
                                       ("image_dfl.dcm", None)])
def test_compressed_files_equal_their_uncompressed_stored_values(name, twin):
    path = data_file(name)
    stored = pydicom.dcmread(data_file(twin) if twin else path).pixel_array
    np.testing.assert_array_equal(dicomrender.render(path, window=(500, 1000)),
                                  _window(stored, 500, 1000))


def test_eight_bit_lut_entries_packed_two_per_us_value():
    stored = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    packed = np.array([0, 64, 128, 255], dtype=np.uint8).view("<u2")  # [64 << 8 | 0, 255 << 8 | 128]
    ds = _with_modality_lut(make_dataset(stored), _lut_item((4, 0, 8), packed.tolist()))
    np.testing.assert_array_equal(dicomrender.render(ds, window=(128, 256)),
                                  _window([[0, 64, 128, 255]], 128, 256))


def _all_testdata_files() -> list:
    """Every .dcm file shipped inside pydicom and pydicom-data (when installed), below 8 MiB; found
    on disk (pydicom's own search would try to download the files it lacks)."""
    import glob
    import importlib.util
    import os

    folders = [os.path.join(os.path.dirname(pydicom.__file__), "data")]
    spec = importlib.util.find_spec("data_store")
    if spec is not None and spec.submodule_search_locations:
        folders += list(spec.submodule_search_locations)
    paths = {path for folder in folders for path in glob.glob(os.path.join(folder, "**", "*.dcm"), recursive=True)}
    return sorted(path for path in paths if os.path.getsize(path) < (8 << 20))


def test_header_fast_path_decodes_exactly_like_pydicom():
    """Rendering decodes the elements it reads with pydicom's value converters directly (the generic
    path costs more than the windowing).  On every pydicom test file (both byte orders, implicit and
    explicit VR, odd and broken headers), each element decoded that way must equal pydicom's own
    decoding of a fresh copy: same VR, same value, same type, same position in the file."""
    import warnings

    from pydicom.dataelem import DataElement


    checked = 0
    for path in _all_testdata_files():
        try:
            ours = pydicom.dcmread(path, force=True)
            theirs = pydicom.dcmread(path, force=True)
        except Exception:
            continue
        raw_before = {tag for tag, element in ours._dict.items() if type(element) is not DataElement}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                elements.parse_elements(ours, path)
        except errors.DicomRenderError:
            continue  # a broken element: raised through pydicom's own path, as before
        for tag in raw_before:
            element = ours._dict[tag]
            if type(element) is not DataElement or elements._plain_vr(tag) is None:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = theirs[tag]
            assert element.VR == expected.VR, (path, tag)
            assert type(element.value) is type(expected.value), (path, tag, element.value, expected.value)
            assert element.value == expected.value, (path, tag, element.value, expected.value)
            assert element.file_tell == expected.file_tell and element.is_undefined_length == expected.is_undefined_length
            checked += 1
    assert checked > 500, checked


def test_header_fast_path_steps_aside_for_customised_pydicom(monkeypatch):
    """A data element callback or a replaced hook changes what pydicom makes of raw elements: then
    rendering goes through pydicom's own path, so the customisation applies."""
    from pydicom import config


    seen = []

    def callback(raw, **kwargs):
        seen.append(raw.tag)
        return raw

    monkeypatch.setattr(config, "data_element_callback", callback)
    ds = pydicom.dcmread(data_file("CT_small.dcm"))
    elements.parse_elements(ds, None)
    assert 0x00280010 in seen and 0x00281052 in seen
