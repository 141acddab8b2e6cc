"""The ``dicomrender`` console script."""

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
from dicomrender import cli
from dicomrender.cli.args import default_frame
from dicomrender.cli.demo import DEMO_FILES

from .data import data_file
from .synthetic import make_dataset, write_dataset


def run_cli(*args):
    """The installed console script when present, else the module, in a fresh process."""
    exe = shutil.which("dicomrender")
    command = [exe, *args] if exe else [sys.executable, "-m", "dicomrender.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_render_command_writes_windowed_png(tmp_path):
    source = data_file("CT_small.dcm")
    target = tmp_path / "ct.png"
    result = run_cli("render", source, str(target), "--window", "40", "80")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(target)), dicomrender.render(source, window=(40, 80)))


def test_render_command_frame_and_function(tmp_path):
    frames = np.arange(2 * 6 * 6, dtype=np.uint16).reshape(2, 6, 6) * 50
    source = write_dataset(make_dataset(frames, bits_stored=12), tmp_path / "mf.dcm")
    assert cli.main(["render", source, str(tmp_path / "f1.png"), "--window", "1000", "2000", "--frame", "1",
                     "--function", "sigmoid"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f1.png")),
                                  dicomrender.render(source, window=(1000, 2000), function="SIGMOID", frame=1))
    # without --frame a multi-frame file gives its first frame
    assert cli.main(["render", source, str(tmp_path / "f0.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f0.png")), dicomrender.render(source, frame=0))


def test_render_command_reports_bad_input(tmp_path, capsys):
    junk = tmp_path / "junk.dcm"
    junk.write_text("hello")
    assert cli.main(["render", str(junk), str(tmp_path / "x.png")]) == 1
    assert "junk.dcm" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    source = data_file("CT_small.dcm")
    assert cli.main(["render", source, str(tmp_path / "x.png"), "--preset", "lung"]) == 0
    capsys.readouterr()
    mr = data_file("MR_small.dcm")  # a rendering failure of this file: an HU preset on MR
    assert cli.main(["render", mr, str(tmp_path / "y.png"), "--preset", "lung"]) == 1
    assert capsys.readouterr().err.startswith(f"dicomrender render: error: {mr}: preset 'lung'")
    assert not (tmp_path / "y.png").exists()


# issue 13, case 17: usage errors exit 2 with "dicomrender render: error: ...", before the file is read
@pytest.mark.parametrize("arguments,message", [
    (["--window", "40", "0"], "WindowWidth"),
    (["--window", "nan", "80"], "finite"),
    (["--window", "40", "inf"], "finite"),
    (["--preset", "brian"], "unknown preset 'brian'; did you mean 'brain'"),
    (["--preset", "brain,lung,bone,liver,abdomen"], "not 5"),
    (["--preset", "brain,lung"], "a JPEG or PNG file holds 1 (grey) or 3 (RGB) channels, not 2"),
])
def test_render_command_usage_errors_exit_2(tmp_path, capsys, arguments, message):
    source = data_file("CT_small.dcm")
    assert cli.main(["render", source, str(tmp_path / "x.png"), *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dicomrender render: error: ") and message in err, err
    assert not list(tmp_path.iterdir())


def test_render_command_bad_paths_exit_2(tmp_path, capsys):
    source = data_file("CT_small.dcm")
    assert cli.main(["render", source, str(tmp_path / "x.bmp")]) == 2
    assert "dicomrender render: error: cannot tell the image format" in capsys.readouterr().err
    assert cli.main(["render", str(tmp_path / "missing.dcm"), str(tmp_path / "x.png")]) == 2
    assert "dicomrender render: error: no such file" in capsys.readouterr().err
    assert cli.main(["render", source, str(tmp_path / "no" / "x.png")]) == 2
    assert "dicomrender render: error: output folder" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("quality", ["1000", "-5", "0", "high"])
def test_render_command_quality_out_of_range_exits_2(tmp_path, capsys, quality):
    with pytest.raises(SystemExit) as caught:
        cli.main(["render", data_file("CT_small.dcm"), str(tmp_path / "x.jpg"), "--quality", quality])
    assert caught.value.code == 2
    assert "dicomrender render: error: argument --quality" in capsys.readouterr().err


def test_render_command_quality_in_range(tmp_path):
    source = data_file("CT_small.dcm")
    for quality in ("1", "100"):
        assert cli.main(["render", source, str(tmp_path / f"q{quality}.jpg"), "--quality", quality]) == 0
    assert (tmp_path / "q1.jpg").stat().st_size < (tmp_path / "q100.jpg").stat().st_size


def test_bad_usage_exits_2():
    result = run_cli("render", "only-one-argument")
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_demo_renders_bundled_samples(tmp_path):
    result = run_cli("demo", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name, preset, output in DEMO_FILES:
        pixels = np.asarray(Image.open(tmp_path / output))
        path = data_file(name)
        bundled = os.path.join(os.path.dirname(pydicom.__file__), "data")
        assert path is not None and path.startswith(bundled), f"{name} is not bundled with pydicom: {path}"
        expected = dicomrender.render(path, preset, frame=default_frame(path))
        assert pixels.shape == expected.shape
        if output.endswith(".png"):
            np.testing.assert_array_equal(pixels, expected)
        else:
            assert np.abs(pixels.astype(int) - expected).mean() < 3.0  # JPEG at quality 95


@pytest.mark.parametrize("command", ["presets"])
def test_presets_command_lists_header(command):
    result = run_cli(command)
    assert result.returncode == 0, result.stderr
    assert "header" in result.stdout and "auto" in result.stdout
