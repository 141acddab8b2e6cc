"""The ``iccprofile`` rendered parameter (PS3.18): embedding the image's profile, converting to sRGB.

The expected sRGB pixels come from Pillow's ImageCms.profileToProfile applied directly to the
stored pixels; the profile is pydicom's test profile ``crayons.icc`` (a real RGB display profile).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

import dicomrender
from dicomrender.display.icc import INTENT, check_iccprofile

from .data import data_file
from .rgb_synthetic import make_rgb_dataset


@pytest.fixture(scope="module")
def crayons() -> bytes:
    path = get_testdata_file("crayons.icc", download=False)
    if path is None:
        pytest.skip("pydicom's crayons.icc is not installed")
    with open(path, "rb") as f:
        return f.read()


def _pixels(frames: int = 0) -> np.ndarray:
    rng = np.random.default_rng(11)
    shape = (frames, 16, 24, 3) if frames else (16, 24, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _to_srgb(pixels: np.ndarray, profile: bytes) -> np.ndarray:
    srgb = ImageCms.createProfile("sRGB")
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    out = ImageCms.profileToProfile(Image.fromarray(pixels), source, srgb, renderingIntent=ImageCms.Intent(INTENT),
                                    outputMode="RGB")
    assert out is not None
    return np.asarray(out)


def _description(profile: bytes) -> str:
    return ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile.profile_description


def test_srgb_converts_the_pixels_and_embeds_srgb(tmp_path, crayons):
    pixels = _pixels()
    ds = make_rgb_dataset(pixels, ICCProfile=crayons)
    path = dicomrender.save(ds, tmp_path / "out.png", iccprofile="srgb")
    with Image.open(path) as image:
        written, embedded = np.asarray(image), image.info["icc_profile"]
    expected = _to_srgb(pixels, crayons)
    assert not np.array_equal(expected, pixels)  # the profile does change colours
    assert np.array_equal(written, expected)
    assert "sRGB" in _description(embedded)


def test_yes_embeds_the_files_profile_and_keeps_the_pixels(tmp_path, crayons):
    pixels = _pixels()
    ds = make_rgb_dataset(pixels, ICCProfile=crayons)
    for name in ("out.png", "out.jpg", "out.webp"):
        path = dicomrender.save(ds, tmp_path / name, iccprofile="yes", lossless=True, quality=100)
        with Image.open(path) as image:
            assert image.info["icc_profile"] == crayons, name
            if name != "out.jpg":
                assert np.array_equal(np.asarray(image.convert("RGB")), pixels), name


def test_no_is_the_default_and_embeds_nothing(tmp_path, crayons):
    ds = make_rgb_dataset(_pixels(), ICCProfile=crayons)
    with Image.open(dicomrender.save(ds, tmp_path / "out.png")) as image:
        assert "icc_profile" not in image.info


def test_without_a_profile_srgb_leaves_the_pixels(tmp_path):
    pixels = _pixels()
    with Image.open(dicomrender.save(make_rgb_dataset(pixels), tmp_path / "out.png", iccprofile="srgb")) as image:
        assert np.array_equal(np.asarray(image), pixels)
        assert "sRGB" in _description(image.info["icc_profile"])


def test_whole_slide_profile_in_the_optical_path_sequence(tmp_path, crayons):
    pixels = _pixels()
    ds = make_rgb_dataset(pixels)
    item = Dataset()
    item.OpticalPathIdentifier = "1"
    item.ICCProfile = crayons
    ds.OpticalPathSequence = [item]
    with Image.open(dicomrender.save(ds, tmp_path / "out.png", iccprofile="srgb")) as image:
        assert np.array_equal(np.asarray(image), _to_srgb(pixels, crayons))


def test_every_frame_of_an_animation_is_converted(tmp_path, crayons):
    pixels = _pixels(frames=3)
    ds = make_rgb_dataset(pixels, ICCProfile=crayons, FrameTime=50)
    with Image.open(dicomrender.save(ds, tmp_path / "out.apng", iccprofile="srgb")) as image:
        assert image.n_frames == 3
        for k in range(3):
            image.seek(k)
            assert np.array_equal(np.asarray(image.convert("RGB")), _to_srgb(pixels[k], crayons))


@pytest.mark.parametrize("value", ["yes", "srgb"])
def test_garbage_profile_is_an_error_naming_icc_profile(tmp_path, value):
    ds = make_rgb_dataset(_pixels(), ICCProfile=b"not a profile" * 20)
    target = tmp_path / "out.png"
    with pytest.raises(dicomrender.InvalidDatasetError) as info:
        dicomrender.save(ds, target, iccprofile=value)
    assert info.value.attribute == "ICCProfile"
    assert not target.exists()


def test_grey_images_ignore_the_parameter(tmp_path):
    path = data_file("CT_small.dcm")
    with Image.open(dicomrender.save(path, tmp_path / "out.png", iccprofile="srgb")) as image:
        assert "icc_profile" not in image.info
        assert np.array_equal(np.asarray(image), dicomrender.render(path))


@pytest.mark.parametrize("value, closest", [("srbg", "srgb"), ("yess", "yes"), (1, None), ("adobergb", None),
                                            ("rommrgb", None)])
def test_bad_values_are_refused_before_reading(tmp_path, value, closest):
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        dicomrender.save(tmp_path / "missing.dcm", tmp_path / "out.png", iccprofile=value)
    assert info.value.attribute == "iccprofile"
    if closest:
        assert repr(closest) in str(info.value)


def test_values_are_case_insensitive():
    assert check_iccprofile("SRGB") == "srgb" and check_iccprofile(None) == "no"
