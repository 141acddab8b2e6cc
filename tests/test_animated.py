"""Animated output (GIF, WebP, APNG, MP4) of multi-frame images, and the frame durations from the header.

Written files are decoded with Pillow (and PyAV for MP4) and compared with render()'s frames and with
durations computed by hand from the header values.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import dicomrender
from dicomrender.dicom.timing import frame_durations
from dicomrender.errors import FrameTimingWarning
from dicomrender.io import encode_animation

from .animation import decode_animation
from .rgb_synthetic import make_rgb_dataset
from .synthetic import make_dataset

FRAMES = 5


def _grey_clip(**attributes):
    """A 5-frame grey clip, every frame different, min-max windowed alike (0 and 4095 in each)."""
    rng = np.random.default_rng(3)
    words = rng.integers(0, 4096, (FRAMES, 12, 17), dtype=np.uint16)
    words[:, 0, 0], words[:, 0, 1] = 0, 4095
    return make_dataset(words, bits_stored=12, modality="US", WindowCenter=2048, WindowWidth=4096, **attributes)


def _rgb_clip(frames=FRAMES, rows=16, cols=20, **attributes):
    """Smooth RGB gradients (quantise well to 256 colours), shifted per frame."""
    y, x = np.mgrid[0:rows, 0:cols]
    pixels = np.stack([np.stack([x * 8 + 10 * k, y * 15, np.full_like(x, 40 * k)], axis=-1)
                       for k in range(frames)]).astype(np.uint8)
    return make_rgb_dataset(pixels, **attributes), pixels


# ---- frame durations from the header ---------------------------------------------------------


def test_frame_time_gives_every_frame_the_same_duration():
    assert frame_durations(_grey_clip(FrameTime=33.3), FRAMES) == [33.3] * FRAMES


def test_frame_time_vector_gives_the_increment_to_the_next_frame():
    ds = _grey_clip(FrameTimeVector=[0, 40, 50, 60, 70], FrameIncrementPointer=0x00181065, FrameTime=10)
    assert frame_durations(ds, FRAMES) == [40, 50, 60, 70, (40 + 50 + 60 + 70) / 4]
    assert frame_durations(ds, [3, 1]) == [70, 50]


def test_frame_time_wins_over_a_vector_it_is_not_pointed_at():
    ds = _grey_clip(FrameTimeVector=[0, 40, 50, 60, 70], FrameTime=25)
    assert frame_durations(ds, FRAMES) == [25] * FRAMES


@pytest.mark.parametrize("attributes, expected", [
    (dict(CineRate=25), 40.0),
    (dict(RecommendedDisplayFrameRate=20), 50.0),
    (dict(CineRate=25, RecommendedDisplayFrameRate=20), 40.0),
    ({}, 100.0),  # the default 10 frames per second
])
def test_rates_and_the_default(attributes, expected):
    assert frame_durations(_grey_clip(**attributes), FRAMES) == [expected] * FRAMES


@pytest.mark.parametrize("attributes, expected", [
    (dict(FrameTime=0, CineRate=25), 40.0),
    (dict(FrameTime=-5), 100.0),
    (dict(FrameTime="NaN"), 100.0),
    (dict(FrameTime=1e9, RecommendedDisplayFrameRate=5), 200.0),
    (dict(CineRate=0), 100.0),
    (dict(FrameTimeVector=[0, 40, 50], FrameIncrementPointer=0x00181065, CineRate=50), 20.0),  # too short
    (dict(FrameTimeVector=[0, 40, -1, 60, 70], FrameIncrementPointer=0x00181065), 100.0),
])
def test_unusable_timing_falls_back_with_a_warning(attributes, expected):
    with pytest.warns(FrameTimingWarning):
        assert frame_durations(_grey_clip(**attributes), FRAMES) == [expected] * FRAMES


# ---- animated files --------------------------------------------------------------------------


def test_grey_gif_is_lossless_with_durations_in_10_ms(tmp_path):
    ds = _grey_clip(FrameTime=33.3)
    reference = dicomrender.render(ds)
    frames, durations = decode_animation(dicomrender.save(ds, tmp_path / "cine.gif"))
    assert len(frames) == FRAMES
    for k in range(FRAMES):
        assert np.array_equal(frames[k][..., 0], reference[k]) and np.array_equal(frames[k][..., 2], reference[k])
    assert durations == [30] * FRAMES  # 33.3 ms rounds to 3 hundredths


def test_gif_durations_have_a_20_ms_floor(tmp_path):
    frames, durations = decode_animation(dicomrender.save(_grey_clip(FrameTime=4), tmp_path / "fast.gif"))
    assert durations == [20] * FRAMES


@pytest.mark.parametrize("suffix", [".webp", ".apng"])
def test_lossless_webp_and_apng_are_exact(tmp_path, suffix):
    ds = _grey_clip(FrameTimeVector=[0, 40, 50, 60, 70], FrameIncrementPointer=0x00181065)
    reference = dicomrender.render(ds)
    frames, durations = decode_animation(dicomrender.save(ds, tmp_path / f"cine{suffix}", lossless=True))
    assert [f[..., 1].tolist() for f in frames] == [r.tolist() for r in reference]
    assert durations == [40, 50, 60, 70, 55]


def test_rgb_animations(tmp_path):
    ds, pixels = _rgb_clip(FrameTime=40)
    frames, durations = decode_animation(dicomrender.save(ds, tmp_path / "c.webp", lossless=True))
    assert np.array_equal(np.stack(frames), pixels) and durations == [40] * FRAMES
    frames, durations = decode_animation(dicomrender.save(ds, tmp_path / "c.apng"))
    assert np.array_equal(np.stack(frames), pixels)
    frames, durations = decode_animation(dicomrender.save(ds, tmp_path / "c.gif"))  # 256 colours a frame
    assert len(frames) == FRAMES and durations == [40] * FRAMES
    assert np.abs(np.stack(frames).astype(int) - pixels).mean() < 4
    frames, _ = decode_animation(dicomrender.save(ds, tmp_path / "lossy.webp", quality=90))
    assert np.abs(np.stack(frames).astype(int) - pixels).mean() < 6


def test_viewport_applies_to_every_frame(tmp_path):
    ds = _grey_clip(FrameTime=40)
    expected = dicomrender.render(ds, viewport=(8, 8, 1, 0, 16, -12))
    frames, _ = decode_animation(dicomrender.save(ds, tmp_path / "v.apng", viewport=(8, 8, 1, 0, 16, -12)))
    assert [f[..., 0].tolist() for f in frames] == [e.tolist() for e in expected]


def test_one_frame_is_a_one_frame_animation(tmp_path):
    ds = make_dataset(np.arange(64, dtype=np.uint16).reshape(8, 8), modality="OT")
    frames, _ = decode_animation(dicomrender.save(ds, tmp_path / "still.gif"))
    assert len(frames) == 1 and np.array_equal(frames[0][..., 0], dicomrender.render(ds))


def test_frame_selects_one_frame_of_a_clip(tmp_path):
    ds = _grey_clip(FrameTime=40)
    frames, _ = decode_animation(dicomrender.save(ds, tmp_path / "one.webp", frame=2, lossless=True))
    assert len(frames) == 1 and np.array_equal(frames[0][..., 0], dicomrender.render(ds, frame=2))


def test_still_formats_still_need_frame(tmp_path):
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        dicomrender.save(_grey_clip(), tmp_path / "x.png")
    assert info.value.attribute == "frame" and ".gif" in str(info.value)


def test_encoder_checks_its_arguments():
    frames = np.zeros((2, 4, 4), np.uint8)
    for bad in ([40], [40, math.nan], [40, 0]):
        with pytest.raises(dicomrender.InvalidArgumentError):
            encode_animation(frames, "GIF", bad)
    with pytest.raises(dicomrender.InvalidArgumentError):
        encode_animation(frames, "AVI", [40, 40])
    with pytest.raises(dicomrender.InvalidArgumentError):
        encode_animation(np.zeros((2, 4, 4, 2), np.uint8), "GIF", [40, 40])


# ---- MP4 -------------------------------------------------------------------------------------


def test_mp4_frames_and_timestamps(tmp_path):
    av = pytest.importorskip("av", reason="MP4 output needs PyAV (the video extra)")
    ds, pixels = _rgb_clip(rows=15, cols=21, FrameTimeVector=[0, 40, 50, 60, 70], FrameIncrementPointer=0x00181065)
    path = dicomrender.save(ds, tmp_path / "cine.mp4", quality=100)
    with av.open(path) as container:
        stream = container.streams.video[0]
        decoded = [(frame.pts * frame.time_base * 1000, frame.to_ndarray(format="rgb24"))
                   for frame in container.decode(stream)]
    assert len(decoded) == FRAMES
    assert [float(t) for t, _ in decoded] == [0, 40, 90, 150, 220]  # running sums of the durations
    for k, (_, image) in enumerate(decoded):
        assert image.shape == (16, 22, 3)  # odd sizes padded by one row and one column
        assert np.abs(image[:15, :21].astype(int) - pixels[k]).mean() < 6  # yuv420p: chroma at half resolution


def test_mp4_grey(tmp_path):
    av = pytest.importorskip("av", reason="MP4 output needs PyAV (the video extra)")
    ds = _grey_clip(FrameTime=40)
    reference = dicomrender.render(ds)
    with av.open(dicomrender.save(ds, tmp_path / "grey.mp4", quality=100)) as container:
        images = [f.to_ndarray(format="gray") for f in container.decode(container.streams.video[0])]
    assert len(images) == FRAMES
    for k in range(FRAMES):
        assert np.abs(images[k][:12, :17].astype(int) - reference[k]).max() <= 2


def test_no_warning_for_a_clean_header():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert frame_durations(_grey_clip(FrameTime=40), 2) == [40.0, 40.0]
