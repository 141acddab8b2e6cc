"""The ``viewport`` rendered parameter (PS3.18 §8.3.5.1.3): region, flips, scale to fit, area averaging.

Expected values are hand-computed (block means, area weights, sizes) on the reference-rendered array
cropped and flipped by Pillow (an independent path from dicomrender's numpy slicing), or made by
Pillow's BICUBIC resize for enlargements.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import dicomrender
from dicomrender.display.viewport import Viewport, apply_viewport, parse_viewport

from .data import data_file
from .rgb_synthetic import make_rgb_dataset
from .synthetic import make_dataset

BICUBIC = Image.Resampling.BICUBIC


def _grey(rows: int, cols: int, frames: int = 0) -> np.ndarray:
    rng = np.random.default_rng(rows * 1000 + cols + frames)
    return rng.integers(0, 256, (frames, rows, cols) if frames else (rows, cols), dtype=np.uint8)


def _block_means(image: np.ndarray, n: int) -> np.ndarray:
    """The mean of each n x n block, rounded half up: area averaging by an integer factor, by hand."""
    rows, cols = image.shape[0] // n, image.shape[1] // n
    return np.floor(image.reshape(rows, n, cols, n).astype(np.float64).mean(axis=(1, 3)) + 0.5).astype(np.uint8)


def test_four_by_four_shrunk_by_two_is_the_mean_of_each_block():
    image = np.array([[0, 100, 10, 30],
                      [200, 40, 50, 70],
                      [1, 3, 255, 255],
                      [5, 7, 255, 251]], np.uint8)
    expected = np.array([[(0 + 100 + 200 + 40) // 4, (10 + 30 + 50 + 70) // 4],
                         [(1 + 3 + 5 + 7) // 4, (255 + 255 + 255 + 251) // 4]], np.uint8)
    assert np.array_equal(apply_viewport(image, (2, 2)), expected)


def test_checkerboard_of_blocks_shrinks_exactly():
    board = np.kron(np.indices((4, 4)).sum(axis=0) % 2 * 255, np.ones((2, 2))).astype(np.uint8)  # 8x8
    assert np.array_equal(apply_viewport(board, (4, 4)), (np.indices((4, 4)).sum(axis=0) % 2 * 255).astype(np.uint8))


def test_region_offsets_and_flips_at_scale_one():
    image = _grey(6, 9)
    assert np.array_equal(apply_viewport(image, (4, 3, 2, 1, 4, 3)), image[1:4, 2:6])
    assert np.array_equal(apply_viewport(image, (4, 3, 2, 1, -4, 3)), image[1:4, 2:6][:, ::-1])
    assert np.array_equal(apply_viewport(image, (4, 3, 2, 1, 4, -3)), image[1:4, 2:6][::-1])
    assert np.array_equal(apply_viewport(image, "4,3,2,1,-4,-3"), image[1:4, 2:6][::-1, ::-1])
    # sx, sy left out: 0; sw, sh left out: the rest of the image
    assert np.array_equal(apply_viewport(image, "7,5,2,1"), image[1:, 2:])
    assert np.array_equal(apply_viewport(image, "3,2,,,3,2"), image[:2, :3])
    assert np.array_equal(apply_viewport(image, (9, 6)), image)


@pytest.mark.parametrize("rows, cols, viewport, size", [
    (10, 20, (5, 5), (3, 5)),        # scale 1/4: 2.5 rows round half up
    (20, 10, (5, 5), (5, 3)),
    (10, 20, (100, 5), (5, 10)),     # the tighter dimension decides
    (10, 20, (40, 40), (20, 40)),    # enlarging keeps the aspect ratio, no padding
    (7, 3, (1, 1), (1, 1)),          # at least one pixel
])
def test_output_size_keeps_the_aspect_ratio_inside_the_viewport(rows, cols, viewport, size):
    out = apply_viewport(_grey(rows, cols), viewport)
    assert out.shape == size
    assert out.shape[0] <= viewport[1] and out.shape[1] <= viewport[0]


def test_shrinking_a_flipped_region_averages_blocks_of_the_rendered_image():
    path = data_file("CT_small.dcm")
    reference = dicomrender.render(path)
    got = dicomrender.render(path, viewport=(50, 40, 10, 20, -100, 80))
    # the region is 100x80 from (10, 20), flipped horizontally; scale min(50/100, 40/80) = 1/2
    expected = Image.fromarray(reference).crop((10, 20, 110, 100)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert np.array_equal(got, _block_means(np.asarray(expected), 2))


def test_enlarging_is_bicubic():
    path = data_file("CT_small.dcm")
    reference = dicomrender.render(path)
    got = dicomrender.render(path, viewport=(200, 300, 0, 0, 32, 16))
    expected = np.asarray(Image.fromarray(reference).crop((0, 0, 32, 16)).resize((200, 100), BICUBIC))
    assert got.shape == (100, 200)
    assert np.array_equal(got, expected)


def test_multi_frame_scales_every_frame():
    path = data_file("emri_small.dcm")
    reference = dicomrender.render(path)
    got = dicomrender.render(path, viewport=(24, 24, 8, 4, 48, -48))
    assert got.shape == (reference.shape[0], 24, 24)
    for k in range(reference.shape[0]):
        frame = Image.fromarray(reference[k]).crop((8, 4, 56, 52)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        assert np.array_equal(got[k], _block_means(np.asarray(frame), 2))





def test_rgb_one_frame_and_all_frames(tmp_path):
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (3, 12, 18, 3), dtype=np.uint8)
    ds = make_rgb_dataset(pixels)
    got = dicomrender.render(ds, viewport=(9, 9))
    assert got.shape == (3, 6, 9, 3)
    for k in range(3):  # 18x12 -> 9x6: 2x2 block means, channel by channel
        expected = np.stack([_block_means(pixels[k, :, :, c], 2) for c in range(3)], axis=-1)
        assert np.array_equal(got[k], expected)

    one = dicomrender.render(ds, frame=1, viewport=(9, 9))
    assert np.array_equal(one, got[1])


def test_several_presets_scale_each_channel():
    words = (np.arange(16 * 16, dtype=np.int16).reshape(16, 16) * 7 - 800)
    ds = make_dataset(words, RescaleSlope=1, RescaleIntercept=0)
    stack = dicomrender.render(ds, ["brain", "bone", "lung"], strict=False)
    got = dicomrender.render(ds, ["brain", "bone", "lung"], strict=False, viewport=(4, 4))
    expected = np.floor(stack.reshape(4, 4, 4, 4, 3).astype(np.float64).mean(axis=(1, 3)) + 0.5)  # block means
    assert got.shape == (4, 4, 3)
    assert np.array_equal(got, expected)


def test_non_integer_shrink_is_within_one_of_the_exact_area_mean():
    image = _grey(9, 9)
    got = apply_viewport(image, (6, 6)).astype(np.float64)  # each output pixel covers 1.5 x 1.5 source pixels
    weights = np.zeros((6, 9))
    for i in range(6):  # the share of source pixel j in output pixel i, by hand: [1.5 i, 1.5 (i + 1))
        for j in range(9):
            weights[i, j] = max(0.0, min(j + 1, 1.5 * (i + 1)) - max(j, 1.5 * i)) / 1.5
    exact = weights @ image.astype(np.float64) @ weights.T
    assert np.abs(got - exact).max() <= 0.5 + 1e-9


def test_out_buffer_takes_the_viewport_shape():
    path = data_file("CT_small.dcm")
    out = np.zeros((32, 32), np.uint8)
    result = dicomrender.render(path, viewport=(32, 32), out=out)
    assert result is out or np.shares_memory(result, out)
    assert np.array_equal(out, dicomrender.render(path, viewport=(32, 32)))


@pytest.mark.parametrize("viewport", [
    (0, 10), (10, -1), (math.nan, 10), (10.5, 10), ("a", 10), (10,), (1, 2, 3, 4, 5, 6, 7), (True, 10),
    (10, 10, -1, 0), (10, 10, 0, 0, 0, 5), "10,x", "", 12,
])
def test_bad_viewport_values_name_the_parameter(viewport):
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        parse_viewport(viewport)
    assert info.value.attribute == "viewport"


@pytest.mark.parametrize("viewport", [(10, 10, 128, 0), (10, 10, 0, 0, 129, 10), (10, 10, 100, 0, -29, 10)])
def test_region_outside_the_image_is_refused(viewport):
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        dicomrender.render(data_file("CT_small.dcm"), viewport=viewport)
    assert info.value.attribute == "viewport" and "CT_small.dcm" in str(info.value)


def test_huge_viewport_is_bounded_by_max_memory():
    with pytest.raises(dicomrender.PixelLimitError) as info:
        dicomrender.render(data_file("CT_small.dcm"), viewport=(100_000, 100_000), max_memory=2**26)
    assert info.value.attribute == "viewport"


def test_parse_keeps_omitted_parts_and_prints_back():
    vp = parse_viewport("512, 256,,,-100,80")
    assert vp == Viewport(512, 256, None, None, -100, 80)
    assert str(vp) == "512,256,,,-100,80"
    assert parse_viewport([64.0, 32]) == Viewport(64, 32)
    assert parse_viewport(None) is None
