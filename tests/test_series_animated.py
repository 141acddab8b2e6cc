"""A series as an animation: ``Volume.save`` and ``dicomrender series SRC -o scroll.gif``; ``save(fps=)``.

The slices are made here with pydicom (shuffled names, InstanceNumber against position, the intercept
varying); each decoded frame is compared with the float64 reference chain of its slice, in position
order, and the durations with the default rate, ``fps`` or the clip's Frame Time Vector.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np
import pydicom
import pytest

import dicomrender
from dicomrender import _reference, cli
from dicomrender.errors import SeriesWarning
from dicomrender.series import render_series

from .animation import decode_animation
from .synthetic import make_dataset, write_dataset

SLICES, ROWS, COLS = 7, 10, 13
INTERCEPTS = (-1024, -1000)
#: The order of the files' names against position: names say nothing about it.
NAMES = (4, 0, 6, 2, 5, 1, 3)


@pytest.fixture
def series(tmp_path):
    """Axial CT slices ``z = 10 + 3k``, written under shuffled names, InstanceNumber reversed; slices 2 and 3
    are identical (an animation keeps both).  Returns the folder and the files in position order."""
    folder = tmp_path / "series"
    folder.mkdir()
    files = []
    for k in range(SLICES):
        stored = np.random.default_rng(k if k != 3 else 2).integers(900, 1300, (ROWS, COLS), dtype=np.uint16)
        intercept = INTERCEPTS[k % 2] if k not in (2, 3) else -1024
        ds = make_dataset(stored, bits_stored=12, SeriesInstanceUID="1.2.3.4", StudyInstanceUID="1.2.3",
                          InstanceNumber=SLICES - k, ImagePositionPatient=[0.0, 0.0, 10.0 + 3 * k],
                          ImageOrientationPatient=[1, 0, 0, 0, 1, 0], PixelSpacing=[0.5, 0.5],
                          RescaleIntercept=intercept, RescaleSlope=1, WindowCenter=40, WindowWidth=80)
        files.append(write_dataset(ds, folder / f"IM{NAMES[k]}"))
    return folder, files


def _exact(path, center=40.0, width=80.0) -> np.ndarray:
    """A slice through the float64 reference chain: modality values, then the window."""
    ds = pydicom.dcmread(path)
    m = _reference.modality_values(ds.pixel_array, float(ds.RescaleSlope), float(ds.RescaleIntercept))
    return _reference.to_uint8(_reference.voi_values(m, center, width))


@pytest.mark.parametrize("suffix, options", [(".gif", {}), (".webp", {"lossless": True}), (".apng", {})])
def test_volume_save_writes_every_slice_in_position_order(series, tmp_path, suffix, options):
    folder, files = series
    volume = render_series(str(folder))
    path = volume.save(tmp_path / f"scroll{suffix}", **options)
    frames, durations = decode_animation(path)
    assert len(frames) == SLICES  # identical neighbours (slices 2 and 3) are two frames
    for k, f in enumerate(files):
        assert np.array_equal(frames[k][..., 1], _exact(f)), k
    assert durations == [100] * SLICES  # no time between the files of a series: 10 frames per second
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("suffix, fps, expected", [(".gif", 4, 250), (".gif", 30, 30), (".webp", 25, 40),
                                                   (".apng", 3, 1000 / 3)])
def test_fps_sets_every_duration(series, tmp_path, suffix, fps, expected):
    volume = render_series(str(series[0]))
    _, durations = decode_animation(volume.save(tmp_path / f"s{suffix}", fps=fps, lossless=True))
    assert durations == [expected] * SLICES  # GIF: 1000/30 ms rounds to 3 hundredths; APNG: the fraction 1/3 s


def test_three_presets_are_an_rgb_animation_and_two_are_refused(series, tmp_path):
    folder, files = series
    volume = render_series(str(folder), ["brain", "subdural", "bone"])
    frames, _ = decode_animation(volume.save(tmp_path / "rgb.apng"))
    windows = [(40, 80), (75, 215), (400, 1800)]  # README preset table: brain, subdural, bone
    for k, f in enumerate(files):
        expected = np.stack([_exact(f, c, w) for c, w in windows], axis=-1)
        assert np.array_equal(frames[k], expected), k
    two = render_series(str(folder), ["brain", "bone"])
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        two.save(tmp_path / "two.gif")
    assert info.value.attribute == "preset" and "(7, 10, 13, 2)" in str(info.value)
    assert not (tmp_path / "two.gif").exists()


def test_a_clip_keeps_its_frame_timing(tmp_path):
    """A multi-frame object as a series: its Frame Time Vector times the frames, unless ``fps`` is given."""
    words = np.stack([np.full((6, 7), v, np.uint16) for v in (0, 500, 500, 1000)])
    words[:, 0, 0], words[:, 0, 1] = 0, 1000
    clip = write_dataset(make_dataset(words, modality="US", FrameTimeVector=[0, 40, 50, 60],
                                      FrameIncrementPointer=0x00181065, WindowCenter=500, WindowWidth=1000),
                         tmp_path / "clip.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeriesWarning)  # no positions: file order
        volume = render_series(clip)
        in_memory = render_series(pydicom.dcmread(clip))
    assert volume.frame_durations() == [40, 50, 60, 50]  # increments to the next frame, the last their mean
    assert in_memory.frame_durations() == [40, 50, 60, 50]
    frames, durations = decode_animation(volume.save(tmp_path / "clip.webp", lossless=True))
    assert durations == [40, 50, 60, 50]
    ramp = [0, 127, 127, 255]  # 500 at the centre: floor(((500 - 499.5) / 999 + 0.5) * 255) = floor(127.63)
    assert [int(f[3, 3, 0]) for f in frames] == ramp
    assert decode_animation(volume.save(tmp_path / "fast.gif", fps=50))[1] == [20] * 4


@pytest.mark.parametrize("fps", [0, -5, math.nan, math.inf, 1e-6])
def test_bad_fps_is_refused_naming_it(series, tmp_path, fps):
    volume = render_series(str(series[0]))
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        volume.save(tmp_path / "x.gif", fps=fps)
    assert info.value.attribute == "fps"
    ds = make_dataset(np.zeros((3, 4, 4), np.uint16), modality="US")
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        dicomrender.save(ds, tmp_path / "x.gif", fps=fps)
    assert info.value.attribute == "fps"
    assert not (tmp_path / "x.gif").exists()


@pytest.mark.parametrize("fps", ["10", True, None.__class__])
def test_fps_that_is_not_a_number_is_a_type_error(tmp_path, fps):
    with pytest.raises(TypeError, match="fps"):
        dicomrender.save(make_dataset(np.zeros((3, 4, 4), np.uint16)), tmp_path / "x.gif", fps=fps)


def test_save_fps_overrides_the_header(tmp_path):
    words = np.random.default_rng(5).integers(0, 4096, (3, 5, 6), dtype=np.uint16)
    ds = make_dataset(words, bits_stored=12, modality="US", FrameTime=40, WindowCenter=2048, WindowWidth=4096)
    assert decode_animation(dicomrender.save(ds, tmp_path / "h.gif"))[1] == [40] * 3
    frames, durations = decode_animation(dicomrender.save(ds, tmp_path / "f.gif", fps=8))
    assert durations == [130] * 3  # 125 ms rounds half up to 13 hundredths
    assert [f[..., 0].tolist() for f in frames] == [r.tolist() for r in dicomrender.render(ds)]


def test_volume_save_refuses_other_suffixes(series, tmp_path):
    volume = render_series(str(series[0]))
    for name in ("v.npy", "v.png", "v"):
        with pytest.raises(dicomrender.InvalidArgumentError) as info:
            volume.save(tmp_path / name)
        assert info.value.attribute == "path"


def test_mp4(series, tmp_path, monkeypatch):
    av = pytest.importorskip("av", reason="MP4 output needs PyAV (the video extra)")
    folder, files = series
    volume = render_series(str(folder))
    with av.open(volume.save(tmp_path / "s.mp4", fps=20, quality=100)) as container:
        decoded = [(float(f.pts * f.time_base * 1000), f.to_ndarray(format="gray"))
                   for f in container.decode(container.streams.video[0])]
    assert [t for t, _ in decoded] == [50.0 * k for k in range(SLICES)]
    for k, (_, image) in enumerate(decoded):  # 13 columns: padded to 14
        assert image.shape == (ROWS, COLS + 1) and np.abs(image[:, :COLS].astype(int) - _exact(files[k])).max() <= 2
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        volume.save(tmp_path / "t.mp4")
    assert info.value.attribute == "format" and "dicomrender[video]" in str(info.value)


def test_series_command_writes_an_animation(series, tmp_path, capsys):
    folder, files = series
    assert cli.main(["series", str(folder), "-o", str(tmp_path / "scroll.gif")]) == 0
    frames, durations = decode_animation(tmp_path / "scroll.gif")
    assert [f[..., 0].tolist() for f in frames] == [_exact(f).tolist() for f in files]
    assert durations == [100] * SLICES
    assert cli.main(["series", *files, "-o", str(tmp_path / "s.webp"), "--fps", "5", "--lossless",
                     "--window", "1000", "400"]) == 0
    frames, durations = decode_animation(tmp_path / "s.webp")
    assert durations == [200] * SLICES
    assert all(np.array_equal(frames[k][..., 2], _exact(f, 1000, 400)) for k, f in enumerate(files))
    capsys.readouterr()
    for bad in (["--fps", "0"], ["--fps", "nan"], ["--preset", "brain,bone"], ["--neighbours", "2"]):
        assert cli.main(["series", str(folder), "-o", str(tmp_path / "bad.gif"), *bad]) == 2, bad
        assert "error" in capsys.readouterr().err
    assert cli.main(["series", str(folder), "-o", str(tmp_path / "v.npy"), "--fps", "5"]) == 2
    assert not (tmp_path / "bad.gif").exists() and not (tmp_path / "v.npy").exists()
