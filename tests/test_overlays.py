"""Overlay planes: parsing (dicom/overlays.py), burning (display/overlay.py) and render(overlays=...).

Expected images are built by hand from the masks the tests pack themselves (or from pydicom's own
``overlay_array`` for the test files): the render without overlays, with the plane's pixels placed by
an explicit per-pixel loop (origin, clipping, frames) set to 255, or divided by 16 for ROI planes.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

import dicomrender
from dicomrender import cli
from dicomrender.dicom.overlays import overlay_planes, plane_mask, select_planes
from dicomrender.display.overlay import burn, burn_layers, darken
from dicomrender.errors import InvalidArgumentError, InvalidDatasetError, UnsupportedImageError

from .data import data_file
from .hostile import MB, run_capped
from .overlay_data import add_embedded, add_overlay, pack, ramp
from .synthetic import make_dataset, write_dataset

WINDOW = (1000, 2000)


def _shape():
    mask = np.zeros((6, 5), dtype=bool)
    mask[1:5, 1:4] = True
    mask[0, 0] = True
    mask[5, 4] = True
    return mask


def _placed(mask: np.ndarray, origin, rows: int, cols: int) -> np.ndarray:
    """The plane's set bits in image coordinates, one pixel at a time (the independent placement)."""
    out = np.zeros((rows, cols), dtype=bool)
    for r in range(mask.shape[0]):
        for c in range(mask.shape[1]):
            y, x = origin[0] - 1 + r, origin[1] - 1 + c
            if mask[r, c] and 0 <= y < rows and 0 <= x < cols:
                out[y, x] = True
    return out


def _rectangle(shape, origin, rows: int, cols: int) -> np.ndarray:
    return _placed(np.ones(shape, dtype=bool), origin, rows, cols)


def _write(tmp_path, ds, name="overlay.dcm") -> str:
    return write_dataset(ds, tmp_path / name)


@pytest.mark.parametrize("origin", [(3, 4), (1, 1), (-1, -2), (14, 18), (-5, 30), (17, 1)])
def test_graphic_plane_is_white_at_its_set_bits_clipped_to_the_image(tmp_path, origin):
    pixels = ramp()
    plain = dicomrender.render(_write(tmp_path, make_dataset(pixels, bits_stored=12), "plain.dcm"), window=WINDOW)
    path = _write(tmp_path, add_overlay(make_dataset(pixels, bits_stored=12), _shape(), origin=origin))
    expected = plain.copy()
    expected[_placed(_shape(), origin, 16, 20)] = 255
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=True), expected)
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW), plain)  # default: no overlays


def test_roi_plane_divides_the_rest_of_its_rectangle_by_16(tmp_path):
    pixels = ramp()
    path = _write(tmp_path, add_overlay(make_dataset(pixels, bits_stored=12), _shape(), origin=(3, 4), kind="R"))
    plain = dicomrender.render(path, window=WINDOW)
    outside = _rectangle((6, 5), (3, 4), 16, 20) & ~_placed(_shape(), (3, 4), 16, 20)
    expected = plain.copy()
    expected[outside] = plain[outside] // 16
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=True), expected)


def test_monochrome1_overlay_is_still_white(tmp_path):
    """dcm2pnm burns after the inversion: a MONOCHROME1 plane is 255 too (checked against dcmtk in
    tests/conformance/test_dcmtk_overlays.py)."""
    ds = add_overlay(make_dataset(ramp(), bits_stored=12, photometric="MONOCHROME1"), _shape(), origin=(2, 2))
    path = _write(tmp_path, ds)
    plain = dicomrender.render(path, window=WINDOW)
    assert plain[0, 0] == 255 and plain[-1, -1] == 0  # inverted
    expected = plain.copy()
    expected[_placed(_shape(), (2, 2), 16, 20)] = 255
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=True), expected)


def test_multi_frame_plane_applies_from_image_frame_origin(tmp_path):
    pixels = ramp(frames=5)
    masks = np.zeros((2, 6, 5), dtype=bool)
    masks[0, 0, :] = True
    masks[1, :, 0] = True
    path = _write(tmp_path, add_overlay(make_dataset(pixels, bits_stored=12), masks, origin=(3, 4), frames=2,
                                        frame_origin=3))
    plain = dicomrender.render(path, window=WINDOW)
    ours = dicomrender.render(path, window=WINDOW, overlays=True)
    for f in range(5):
        expected = plain[f].copy()
        if f in (2, 3):  # overlay frame k on image frame origin - 1 + k
            expected[_placed(masks[f - 2], (3, 4), 16, 20)] = 255
        np.testing.assert_array_equal(ours[f], expected)
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=True, frame=3), ours[3])


def test_single_frame_plane_applies_to_every_frame(tmp_path):
    path = _write(tmp_path, add_overlay(make_dataset(ramp(frames=3), bits_stored=12), _shape(), origin=(3, 4)))
    plain = dicomrender.render(path, window=WINDOW)
    ours = dicomrender.render(path, window=WINDOW, overlays=True)
    for f in range(3):
        expected = plain[f].copy()
        expected[_placed(_shape(), (3, 4), 16, 20)] = 255
        np.testing.assert_array_equal(ours[f], expected)


def test_embedded_overlay_bits_never_leak_into_pixel_values(tmp_path):
    pixels = ramp()
    marked = pixels.copy()
    bits = np.zeros(pixels.shape, dtype=bool)
    bits[2:6, 3:9] = True
    bits[10, :] = True
    marked[bits] |= 0x8000
    clean = dicomrender.render(_write(tmp_path, make_dataset(pixels, bits_stored=12), "clean.dcm"), window=WINDOW)
    path = _write(tmp_path, add_embedded(make_dataset(marked, bits_stored=12), bit=15))
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW), clean)
    np.testing.assert_array_equal(dicomrender.render(path), dicomrender.render(
        _write(tmp_path, make_dataset(pixels, bits_stored=12), "clean2.dcm")))
    expected = clean.copy()
    expected[bits] = 255
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=True), expected)


def test_embedded_planes_come_from_each_frames_own_words(tmp_path):
    pixels = ramp(frames=3)
    bits = np.zeros(pixels.shape, dtype=bool)
    bits[1, 2:6, 3:9] = True
    bits[2, 0, :] = True
    marked = pixels.copy()
    marked[bits] |= 0x4000
    path = _write(tmp_path, add_embedded(make_dataset(marked, bits_stored=12), bit=14))
    plain = dicomrender.render(path, window=WINDOW)
    expected = plain.copy()
    expected[bits] = 255
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=True), expected)


def test_selection_by_index_and_unknown_index(tmp_path):
    ds = make_dataset(ramp(), bits_stored=12)
    first, third = _shape(), np.ones((2, 2), dtype=bool)
    add_overlay(ds, first, group=0x6000, origin=(1, 1))
    add_overlay(ds, third, group=0x6004, origin=(10, 10))
    path = _write(tmp_path, ds)
    plain = dicomrender.render(path, window=WINDOW)
    only_third = plain.copy()
    only_third[_placed(third, (10, 10), 16, 20)] = 255
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=[2]), only_third)
    both = only_third.copy()
    both[_placed(first, (1, 1), 16, 20)] = 255
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=[0, 2]), both)
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=True), both)
    np.testing.assert_array_equal(dicomrender.render(path, window=WINDOW, overlays=[]), plain)
    with pytest.raises(InvalidArgumentError) as info:
        dicomrender.render(path, window=WINDOW, overlays=[1])
    assert info.value.attribute == "overlays" and "planes present: 0, 2" in str(info.value)
    assert path in str(info.value)
    for bad in ("all", 1, [True], [0.5]):
        with pytest.raises(TypeError, match="overlays"):
            dicomrender.render(path, window=WINDOW, overlays=bad)


def test_several_presets_burn_every_channel(tmp_path):
    path = _write(tmp_path, add_overlay(make_dataset(ramp(), bits_stored=12, RescaleIntercept=-1024,
                                                     RescaleSlope=1), _shape(), origin=(5, 5), kind="G"))
    plain = dicomrender.render(path, ["brain", "bone"])
    ours = dicomrender.render(path, ["brain", "bone"], overlays=True)
    assert ours.shape == (16, 20, 2)
    expected = plain.copy()
    expected[_placed(_shape(), (5, 5), 16, 20)] = 255
    np.testing.assert_array_equal(ours, expected)


def test_colour_image_is_burnt_white_in_every_channel(tmp_path):
    rgb = np.zeros((16, 20, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 50, 7
    ds = make_dataset(rgb[..., 0], modality="OT")
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = rgb.tobytes()
    path = _write(tmp_path, add_overlay(ds, _shape(), origin=(3, 4)))
    expected = rgb.copy()
    expected[_placed(_shape(), (3, 4), 16, 20)] = 255
    np.testing.assert_array_equal(dicomrender.render(path, overlays=True), expected)
    np.testing.assert_array_equal(dicomrender.render(path), rgb)


@pytest.mark.parametrize("name", ["examples_overlay.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm"])
def test_test_files_match_pydicoms_overlay_array(name):
    path = data_file(name)
    expected = dicomrender.render(path, window=(500, 1000))
    bits = pydicom.dcmread(path).overlay_array(0x6000).astype(bool)
    assert bits.any()
    expected[bits] = 255
    np.testing.assert_array_equal(dicomrender.render(path, window=(500, 1000), overlays=True), expected)


def test_big_endian_overlay_data_is_read_in_word_order(tmp_path):
    """OW Overlay Data of an Explicit VR Big Endian file has its bytes swapped in each 16-bit word."""
    little = _write(tmp_path, add_overlay(make_dataset(ramp(), bits_stored=12), _shape(), origin=(3, 4)), "le.dcm")
    ds = add_overlay(make_dataset(ramp(), bits_stored=12), _shape(), origin=(3, 4))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    ds.PixelData = ramp().astype(">u2").tobytes()
    ds[0x60003000].value = np.frombuffer(ds[0x60003000].value, dtype="<u2").astype(">u2").tobytes()
    big = _write(tmp_path, ds, "be.dcm")
    assert pydicom.dcmread(big).file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRBigEndian
    np.testing.assert_array_equal(dicomrender.render(big, window=WINDOW, overlays=True),
                                  dicomrender.render(little, window=WINDOW, overlays=True))


# ---- the contract for presentation states: planes from any data set -------------------------------------


def test_planes_read_from_a_dataset_without_pixels():
    state = Dataset()
    mask = np.zeros((3, 9), dtype=bool)
    mask[0, 0] = mask[1, 8] = mask[2, 4] = True
    add_overlay(state, mask, group=0x6006, origin=(0, -3), kind="R", label="arrow")
    state.add_new((0x6008, 0x1001), "CS", "LAYER")  # an activation alone is not a plane
    planes = overlay_planes(state, "state.dcm")
    assert [(p.index, p.rows, p.columns, p.origin, p.roi, p.label, p.embedded) for p in planes] == \
        [(3, 3, 9, (0, -3), True, "arrow", False)]
    got = plane_mask(planes[0], 0, 4, 6)
    np.testing.assert_array_equal(got, _placed(mask, (0, -3), 4, 6))
    assert got.sum() == 2 and got[0, 4] and got[1, 0]  # plane (1, 8) and (2, 4); (0, 0) falls outside
    assert select_planes(planes, [3]) == planes


def test_plane_mask_reads_across_byte_boundaries():
    rng = np.random.default_rng(7)
    mask = rng.random((2, 13, 11)) < 0.4  # 143 bits a frame: frames and rows start mid-byte
    ds = add_overlay(Dataset(), mask, origin=(2, -1), frames=2, frame_origin=1)
    plane = overlay_planes(ds)[0]
    for frame in range(2):
        np.testing.assert_array_equal(plane_mask(plane, frame, 12, 12), _placed(mask[frame], (2, -1), 12, 12))
    assert not plane_mask(plane, 2, 12, 12).any()


def test_burn_and_darken_are_pure_numpy():
    image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10
    mask = np.array([[True, False, False, True], [False, False, True, False]])
    burnt = burn(image.copy(), mask, 255)
    assert (burnt[mask] == 255).all() and (burnt[~mask] == image[~mask]).all()
    dark = darken(image.copy(), mask)
    assert (dark[mask] == image[mask] // 16).all() and (dark[~mask] == image[~mask]).all()
    both = burn_layers(image.copy(), [(mask, "darken"), (~mask, "replace")])
    assert (both[mask] == image[mask] // 16).all() and (both[~mask] == 255).all()
    with pytest.raises(ValueError, match="mode"):
        burn_layers(image.copy(), [(mask, "blend")])
    with pytest.raises(ValueError, match="mask"):
        burn(image.copy(), mask[:1], 255)


# ---- bad headers: a clear error naming the file and the attribute, in bounded time and memory --------------


def _bad(tmp_path, change, **kwargs):
    ds = add_overlay(make_dataset(ramp(), bits_stored=12), _shape(), origin=(3, 4), **kwargs)
    change(ds)
    return _write(tmp_path, ds)


@pytest.mark.parametrize("change, error, attribute", [
    (lambda ds: ds.__delitem__(0x60000010), InvalidDatasetError, "OverlayRows"),
    (lambda ds: ds.__setitem__(0x60000011, pydicom.DataElement(0x60000011, "US", 0)), InvalidDatasetError,
     "OverlayColumns"),
    (lambda ds: ds.__setitem__(0x60000050, pydicom.DataElement(0x60000050, "SS", [3])), InvalidDatasetError,
     "OverlayOrigin"),
    (lambda ds: ds.__setitem__(0x60003000, pydicom.DataElement(0x60003000, "OW", b"\0\0")), InvalidDatasetError,
     "OverlayData"),
    (lambda ds: ds.__setitem__(0x60000040, pydicom.DataElement(0x60000040, "CS", "X")), InvalidDatasetError,
     "OverlayType"),
    (lambda ds: ds.add_new(0x60000015, "IS", 2_000_000_000), InvalidDatasetError, "OverlayData"),
    (lambda ds: ds.add_new(0x60000015, "IS", -4), InvalidDatasetError, "NumberOfFramesInOverlay"),
    (lambda ds: ds.add_new(0x60000051, "US", 0), InvalidDatasetError, "ImageFrameOrigin"),
    (lambda ds: ds.__delitem__(0x60003000), InvalidDatasetError, "OverlayData"),
])
def test_bad_planes_raise_naming_file_and_attribute(tmp_path, change, error, attribute):
    path = _bad(tmp_path, change)
    dicomrender.render(path, window=WINDOW)  # without overlays the planes are never read
    with pytest.raises(error) as info:
        dicomrender.render(path, window=WINDOW, overlays=True)
    assert info.value.attribute == attribute and path in str(info.value)


def test_embedded_plane_on_stored_bits_or_compressed_data_is_refused(tmp_path):
    path = _write(tmp_path, add_embedded(make_dataset(ramp(), bits_stored=12), bit=11))
    with pytest.raises(InvalidDatasetError, match="stored pixel values") as info:
        dicomrender.render(path, overlays=True)
    assert info.value.attribute == "OverlayBitPosition"
    ds = add_embedded(make_dataset(ramp(), bits_stored=12), bit=15)
    ds.compress(pydicom.uid.RLELossless, encoding_plugin="pydicom")
    with pytest.raises(UnsupportedImageError, match="compressed") as info:
        dicomrender.render(ds, overlays=True)
    assert info.value.attribute == "OverlayBitPosition"


def test_hostile_plane_sizes_fail_fast_in_a_capped_process(tmp_path):
    huge = make_dataset(ramp(), bits_stored=12)
    add_overlay(huge, np.ones((4, 4), dtype=bool), data=b"\xff" * 64)
    huge[0x60000010].value = huge[0x60000011].value = 65535  # declares 512 MiB of bits, holds 64 bytes
    frames = add_overlay(make_dataset(ramp(), bits_stored=12), _shape(), frames=2**31 - 1)
    wide = make_dataset(ramp(), bits_stored=12)  # valid, but 65535 columns wide: only the image's part is read
    add_overlay(wide, np.ones((16, 65535), dtype=bool), origin=(1, -32000))
    for name, ds, outcome in (("huge", huge, "error"), ("frames", frames, "error"), ("wide", wide, "ok")):
        path = _write(tmp_path, ds, name + ".dcm")
        result = run_capped("""
            import dicomrender
            return dicomrender.render(PATH, overlays=True)
        """, cap=1 << 30, PATH=path)
        assert result.outcome == outcome, (name, result)
        if outcome == "error":
            assert result.error == "InvalidDatasetError" and result.attribute == "OverlayData"
            assert path in result.message
        assert result.within(seconds=5.0, slack=64 * MB), (name, result)


def test_cli_overlays_flag(tmp_path):
    path = _write(tmp_path, add_overlay(make_dataset(ramp(), bits_stored=12), _shape(), origin=(3, 4)))
    out = tmp_path / "o.png"
    assert cli.main(["render", path, str(out), "--window", "1000", "2000", "--overlays"]) == 0
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(out)), dicomrender.render(path, window=WINDOW,
                                                                                  overlays=True))
    assert cli.main(["render", path, str(out), "--window", "1000", "2000", "--overlays", "0"]) == 0
    assert cli.main(["render", path, str(out), "--overlays", "4"]) != 0


def test_pack_helper_matches_pydicom_overlay_array(tmp_path):
    """The helper that writes the synthetic planes agrees with pydicom's reader (a check of the tests)."""
    mask = np.random.default_rng(1).random((7, 9)) < 0.5
    ds = add_overlay(make_dataset(ramp(), bits_stored=12), mask)
    assert len(pack(mask)) == 8
    np.testing.assert_array_equal(pydicom.dcmread(_write(tmp_path, ds)).overlay_array(0x6000), mask)
