"""``convert`` to animated formats: one GIF / WebP / APNG / MP4 per input file, resumable.

Every output is decoded (Pillow, PyAV for MP4) and compared frame by frame with ``render(src, frame=i)``
and with the durations of the header (``frame_durations``); the resume rules are checked on complete,
truncated and missing outputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from PIL import Image

import dicomrender
from dicomrender.dicom.timing import frame_durations
from dicomrender.io import is_complete_image
from dicomrender.io.animated import gif_durations

from .data import data_file
from .synthetic import make_dataset, write_dataset

#: Lossless: every decoded frame must equal render()'s (a grey GIF uses a 256-level grey palette).
LOSSLESS = [("gif", {}), ("webp", {"lossless": True}), ("apng", {})]
SUFFIX = {"gif": ".gif", "webp": ".webp", "apng": ".apng", "mp4": ".mp4"}


def _decode(path):
    """Grey frames (the green channel) and durations (ms) of an animation, by Pillow."""
    frames, durations = [], []
    with Image.open(path) as image:
        for k in range(getattr(image, "n_frames", 1)):
            image.seek(k)
            frames.append(np.asarray(image.convert("RGB"))[..., 1])
            durations.append(image.info.get("duration"))
    return frames, durations


def _expected_durations(fmt, durations):
    if fmt == "gif":
        return gif_durations(durations)
    if fmt == "apng" and len(durations) == 1:
        return [None]  # Pillow writes one frame as a plain PNG: nothing to time
    return [round(d) for d in durations] if fmt == "webp" else [round(d, 3) for d in durations]


@pytest.fixture
def folder(tmp_path):
    """A folder: pydicom's 10-frame emri_small, the single-frame CT_small, a 4-frame clip timed by a
    Frame Time Vector whose middle frames are identical, and a file that is not DICOM."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    shutil.copy(data_file("emri_small.dcm"), src / "emri.dcm")
    shutil.copy(data_file("CT_small.dcm"), src / "sub" / "ct.dcm")
    words = np.stack([np.full((6, 7), v, np.uint16) for v in (0, 500, 500, 1000)])
    words[:, 0, 0] = 0
    words[:, 0, 1] = 1000
    write_dataset(make_dataset(words, modality="US", FrameTimeVector=[0, 40, 50, 60],
                               FrameIncrementPointer=0x00181065), src / "clip.dcm")
    (src / "notes.txt").write_text("not DICOM")
    return src


def _check_outputs(src, out, fmt, report, **render_options):
    """Every DICOM input gave one animation whose frames and durations are the header's.

    The reference of frame ``i`` is ``render(src)[i]``: a file without a window is min-max windowed over
    the frames rendered (all of them), as ``convert`` renders it.  With a window given, it is
    ``render(src, frame=i)`` itself.
    """
    suffix = SUFFIX[fmt]
    assert {r.source: r.status for r in report} == {
        str(src / "emri.dcm"): "ok", str(src / "sub" / "ct.dcm"): "ok", str(src / "clip.dcm"): "ok",
        str(src / "notes.txt"): "skipped"}
    for name in ("emri", "sub/ct", "clip"):
        source = str(src / f"{name}.dcm")
        ds = pydicom.dcmread(source)
        count = int(ds.get("NumberOfFrames", 1))
        frames, durations = _decode(out / f"{name}{suffix}")
        assert len(frames) == count
        reference = dicomrender.render(source, **render_options)
        for i in range(count):
            expected = dicomrender.render(source, frame=i, **render_options) if render_options and count > 1 \
                else reference[i] if count > 1 else reference
            assert np.array_equal(frames[i], expected), (name, i)
        assert durations == _expected_durations(fmt, frame_durations(ds, count))
    assert sorted(os.listdir(out)) == sorted(["emri" + suffix, "clip" + suffix, "sub"])
    assert os.listdir(out / "sub") == ["ct" + suffix]


@pytest.mark.parametrize("fmt, options", LOSSLESS)
def test_a_folder_to_animations(folder, tmp_path, fmt, options):
    out = tmp_path / "out"
    report = dicomrender.convert(folder, out, format=fmt, jobs=1, **options)
    assert report.exit_status == 0 and report.written == 3
    _check_outputs(folder, out, fmt, report)
    assert [r.frames for r in report.ok] == [(), (), ()]  # one animation per file: no frame numbers
    clip_durations = _decode(out / f"clip{SUFFIX[fmt]}")[1]
    assert clip_durations == _expected_durations(fmt, [40, 50, 60, 50])  # the increments, the last their mean


@pytest.mark.parametrize("fmt, options", LOSSLESS)
def test_a_second_run_keeps_complete_animations_and_redoes_a_truncated_one(folder, tmp_path, fmt, options):
    out = tmp_path / "out"
    dicomrender.convert(folder, out, format=fmt, jobs=1, **options)
    suffix = SUFFIX[fmt]
    stats = {name: os.stat(out / f"{name}{suffix}") for name in ("emri", "sub/ct", "clip")}
    again = dicomrender.convert(folder, out, format=fmt, jobs=1, **options)
    assert again.exit_status == 0 and again.written == 0
    for name, st in stats.items():
        now = os.stat(out / f"{name}{suffix}")
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    target = out / f"emri{suffix}"
    whole = target.read_bytes()
    target.write_bytes(whole[:len(whole) * 2 // 3])  # cut: a torn copy, not written by convert
    assert not is_complete_image(str(target), suffix, 10)
    redone = dicomrender.convert(folder, out, format=fmt, jobs=1, **options)
    assert [w for r in redone for w in r.written] == [f"emri{suffix}"]
    assert target.read_bytes() == whole
    _check_outputs(folder, out, fmt, redone)


@pytest.mark.parametrize("cut", [1, 12, 100])
@pytest.mark.parametrize("fmt", ["gif", "webp", "apng"])
def test_a_cut_animation_is_not_complete(folder, tmp_path, fmt, cut):
    path = dicomrender.save(str(folder / "emri.dcm"), tmp_path / f"e{SUFFIX[fmt]}")
    assert is_complete_image(path, SUFFIX[fmt], 10)
    assert not is_complete_image(path, SUFFIX[fmt], 9)  # another frame count: another selection
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-cut])
    assert not is_complete_image(path, SUFFIX[fmt], 10)


def test_a_symlink_or_a_folder_is_not_a_complete_animation(folder, tmp_path):
    path = dicomrender.save(str(folder / "clip.dcm"), tmp_path / "c.gif")
    os.symlink(path, tmp_path / "link.gif")
    (tmp_path / "dir.gif").mkdir()
    assert is_complete_image(path, ".gif", 4)
    assert not is_complete_image(str(tmp_path / "link.gif"), ".gif", 4)
    assert not is_complete_image(str(tmp_path / "dir.gif"), ".gif", 4)
    assert not is_complete_image(str(tmp_path / "missing.gif"), ".gif", 4)


def test_frames_first_gives_a_one_frame_animation(folder, tmp_path):
    out = tmp_path / "out"
    report = dicomrender.convert(folder / "emri.dcm", out, format="apng", frames=3, jobs=1)
    assert report.exit_status == 0 and [r.outputs for r in report] == [("emri.apng",)]
    frames, _ = _decode(out / "emri.apng")  # min-max over the frame rendered, as render(frame=3) does
    assert len(frames) == 1 and np.array_equal(frames[0], dicomrender.render(folder / "emri.dcm", frame=3))
    # a rerun with every frame: the one-frame file is not what is asked for, it is rewritten
    again = dicomrender.convert(folder / "emri.dcm", out, format="apng", jobs=1)
    assert again.written == 1 and len(_decode(out / "emri.apng")[0]) == 10


def test_frame_names_of_other_files_do_not_clash(tmp_path):
    """``x_0002.dcm`` and a multi-frame ``x.dcm``: as images they would share ``x_0002.png``, as
    animations each has its own name."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(data_file("emri_small.dcm"), src / "x.dcm")
    shutil.copy(data_file("CT_small.dcm"), src / "x_0002.dcm")
    report = dicomrender.convert(src, tmp_path / "out", format="gif", jobs=1)
    assert report.exit_status == 0 and sorted(r.outputs[0] for r in report) == ["x.gif", "x_0002.gif"]
    assert np.array_equal(_decode(tmp_path / "out" / "x_0002.gif")[0][0], dicomrender.render(src / "x_0002.dcm"))


def test_process_pool_and_report_rows(folder, tmp_path):
    out = tmp_path / "out"
    report = dicomrender.convert(folder, out, format="webp", lossless=True, jobs=2, report=tmp_path / "r.csv",
                                 window=(400, 600))
    _check_outputs(folder, out, "webp", report, window=(400, 600))
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0] == "source,status,frame,output,written,error,message"
    assert sorted(r.split(",")[3] for r in rows[1:]) == ["", "clip.webp", "emri.webp", "sub/ct.webp"]


def test_lossy_webp_is_close(folder, tmp_path):
    out = tmp_path / "out"
    dicomrender.convert(folder / "emri.dcm", out, format="webp", quality=90, jobs=1)
    frames, _ = _decode(out / "emri.webp")
    reference = dicomrender.render(folder / "emri.dcm")
    assert len(frames) == 10
    assert np.abs(np.stack(frames).astype(int) - reference).mean() < 4


def test_unknown_format_and_mp4_without_pyav(folder, tmp_path, monkeypatch):
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        dicomrender.convert(folder, tmp_path / "out", format="avi")
    assert info.value.attribute == "format" and "gif" in str(info.value)
    monkeypatch.setitem(sys.modules, "av", None)  # import av fails, find_spec finds nothing
    with pytest.raises(dicomrender.InvalidArgumentError) as info:
        dicomrender.convert(folder, tmp_path / "out", format="mp4")
    assert info.value.attribute == "format" and "dicomrender[video]" in str(info.value)
    assert not (tmp_path / "out").exists()  # refused before anything is touched


def test_mp4_frames_and_resume(folder, tmp_path):
    av = pytest.importorskip("av", reason="MP4 output needs PyAV (the video extra)")
    out = tmp_path / "out"
    report = dicomrender.convert(folder / "emri.dcm", out, format="mp4", quality=100, jobs=1)
    assert report.exit_status == 0 and report.written == 1
    reference = dicomrender.render(folder / "emri.dcm")
    with av.open(str(out / "emri.mp4")) as container:
        decoded = [(float(f.pts * f.time_base * 1000), f.to_ndarray(format="gray"))
                   for f in container.decode(container.streams.video[0])]
    assert [t for t, _ in decoded] == [100.0 * k for k in range(10)]  # no timing in the header: 10 fps
    assert max(int(np.abs(image.astype(int) - reference[k]).max()) for k, (_, image) in enumerate(decoded)) <= 2
    assert dicomrender.convert(folder / "emri.dcm", out, format="mp4", jobs=1).written == 0
    whole = (out / "emri.mp4").read_bytes()
    (out / "emri.mp4").write_bytes(whole[:-50])
    assert not is_complete_image(str(out / "emri.mp4"), ".mp4", 10)
    assert dicomrender.convert(folder / "emri.dcm", out, format="mp4", quality=100, jobs=1).written == 1
    assert is_complete_image(str(out / "emri.mp4"), ".mp4", 10)


def test_command_line_format_gif(folder, tmp_path):
    exe = shutil.which("dicomrender")
    command = [exe] if exe else [sys.executable, "-m", "dicomrender.cli"]
    out = tmp_path / "out"
    result = subprocess.run([*command, "convert", str(folder), "-o", str(out), "--format", "GIF", "-j", "1",
                             "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    frames, _ = _decode(out / "emri.gif")
    assert len(frames) == 10
    assert np.array_equal(np.stack(frames), dicomrender.render(folder / "emri.dcm"))
    result = subprocess.run([*command, "convert", str(folder), "-o", str(out), "--format", "webp", "--lossless",
                             "-j", "1", "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(_decode(out / "clip.webp")[0][3], dicomrender.render(folder / "clip.dcm", frame=3))
