"""Batch conversion: outputs, report, resume, atomicity under SIGKILL, timeouts, dead workers, Dask."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dicomrender import _reference, cli
from dicomrender.batch import TEMP_PREFIX, ConvertRecord, convert, is_dicom_header

from .data import data_file
from .synthetic import make_dataset, write_dataset

CENTER, WIDTH = 40, 400


def _ct(seed: int, shape=(24, 32), **attributes):
    """12-bit CT words (stored = HU + 1024) with a header window; returns (dataset, words)."""
    words = np.random.default_rng(seed).integers(0, 4096, size=shape, dtype=np.uint16)
    attributes = dict(dict(RescaleIntercept=-1024, RescaleSlope=1, WindowCenter=CENTER, WindowWidth=WIDTH),
                      **attributes)
    return make_dataset(words, bits_stored=12, **attributes), words


def _expected(words, invert=False):
    return _reference.render_reference(words, CENTER, WIDTH, intercept=-1024, bits_stored=12, invert=invert)


@pytest.fixture
def tree(tmp_path):
    """A source tree: nested folders, a multi-frame file, MONOCHROME1, names without .dcm, a DICOM file
    without preamble, a non-DICOM file and a truncated DICOM file.  Returns (src, expected images)."""
    src = tmp_path / "src"
    for folder in ("series1/sub", "series2"):
        (src / folder).mkdir(parents=True)
    expected = {}
    ds, words = _ct(1)
    write_dataset(ds, src / "series1" / "ct_0.dcm")
    expected["series1/ct_0.png"] = _expected(words)
    ds, words = _ct(2, shape=(16, 20))
    write_dataset(ds, src / "series1" / "ct_1.DCM")
    expected["series1/ct_1.png"] = _expected(words)
    ds, words = _ct(3, shape=(3, 20, 16))
    write_dataset(ds, src / "series1" / "sub" / "cine.dcm")
    for i in range(3):
        expected[f"series1/sub/cine_{i + 1:04d}.png"] = _expected(words[i])
    ds, words = _ct(4, photometric="MONOCHROME1")
    write_dataset(ds, src / "series2" / "IM0001")
    expected["series2/IM0001.png"] = _expected(words, invert=True)
    ds, words = _ct(5)
    del ds.file_meta  # a bare data set: no preamble, no DICM marker, implicit VR
    ds.save_as(src / "series2" / "1.2.840.99.7", enforce_file_format=False, implicit_vr=True, little_endian=True)
    expected["series2/1.2.840.99.7.png"] = _expected(words)
    (src / "README.txt").write_text("scanned on the old PACS\n")
    ds, _ = _ct(6)
    data = Path(write_dataset(ds, src / "series2" / "broken.dcm")).read_bytes()
    (src / "series2" / "broken.dcm").write_bytes(data[:-100])
    return src, expected


def _hashes(root) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _outputs(root) -> dict:
    """Relative path -> bytes of every file under ``root``."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _report(path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _expected_rows(src, written=True) -> list:
    w = "1" if written else "0"
    s = str(src)
    ok = dict(status="ok", error="", message="")
    return [
        dict(source=f"{s}/README.txt", status="skipped", frame="", output="", written="0", error="NotDicomError",
             message="not a DICOM file (no DICM marker at byte 128)"),
        dict(source=f"{s}/series1/ct_0.dcm", frame="", output="series1/ct_0.png", written=w, **ok),
        dict(source=f"{s}/series1/ct_1.DCM", frame="", output="series1/ct_1.png", written=w, **ok),
        *(dict(source=f"{s}/series1/sub/cine.dcm", frame=str(i), output=f"series1/sub/cine_{i:04d}.png", written=w,
               **ok) for i in (1, 2, 3)),
        dict(source=f"{s}/series2/1.2.840.99.7", frame="", output="series2/1.2.840.99.7.png", written=w, **ok),
        dict(source=f"{s}/series2/IM0001", frame="", output="series2/IM0001.png", written=w, **ok),
        dict(source=f"{s}/series2/broken.dcm", status="failed", frame="", output="", written="0",
             error="PixelDataError",
             message=f"the file is truncated: PixelData needs {24 * 32 * 2} bytes at offset "
                     f"{(src / 'series2' / 'broken.dcm').stat().st_size + 100 - 24 * 32 * 2}, the file has "
                     f"{24 * 32 * 2 - 100}"),
    ]


def test_tree_outputs_report_and_exit_status(tree, tmp_path, capsys):
    src, expected = tree
    before = _hashes(src)
    out, report = tmp_path / "out", tmp_path / "report.csv"
    status = cli.main(["convert", str(src), "-o", str(out), "--format", "png", "--jobs", "2",
                       "--report", str(report)])
    assert status == 1  # the truncated file failed; everything else was converted
    outputs = _outputs(out)
    assert sorted(outputs) == sorted(expected)
    for name, pixels in expected.items():
        np.testing.assert_array_equal(_pixels(outputs[name]), pixels, err_msg=name)
    assert _report(report) == _expected_rows(src)
    err = capsys.readouterr().err
    assert f"failed: {src}/series2/broken.dcm: PixelDataError" in err
    assert "7 files: 5 ok (7 images, 7 written, 0 kept), 1 skipped, 1 failed" in err
    assert _hashes(src) == before


def test_python_api_returns_the_report(tree, tmp_path):
    src, expected = tree
    result = convert(src, tmp_path / "out", format="png", jobs=1)
    assert result.exit_status == 1
    assert [r.source for r in result.failed] == [f"{src}/series2/broken.dcm"]
    assert [(r.source, r.error) for r in result.skipped] == [(f"{src}/README.txt", "NotDicomError")]
    cine = next(r for r in result.ok if r.source.endswith("cine.dcm"))
    assert cine == ConvertRecord(f"{src}/series1/sub/cine.dcm", "ok",
                                 tuple(f"series1/sub/cine_{i:04d}.png" for i in (1, 2, 3)), (1, 2, 3),
                                 tuple(f"series1/sub/cine_{i:04d}.png" for i in (1, 2, 3)))
    assert result.written == len(expected)
    assert [row for row in result.rows()] == [
        {k: (int(v) if k == "written" else int(v) if k == "frame" and v else v) for k, v in row.items()}
        for row in _expected_rows(src)]


def test_rerun_resumes_and_overwrite_rewrites(tree, tmp_path):
    src, expected = tree
    before = _hashes(src)
    out = tmp_path / "out"
    args = ["convert", str(src), "-o", str(out), "--format", "png", "-q"]
    assert cli.main(args + ["--report", str(tmp_path / "r1.csv")]) == 1
    first = _outputs(out)
    past = 1_000_000_000 * 10**9  # 2001: any rewrite would move the mtime to now
    for name in first:
        os.utime(out / name, ns=(past, past))
    (out / "series1/sub/cine_0002.png").unlink()

    assert cli.main(args + ["--report", str(tmp_path / "r2.csv")]) == 1
    assert _outputs(out) == first
    for name in first:
        if name != "series1/sub/cine_0002.png":
            assert (out / name).stat().st_mtime_ns == past, name
    rows = _report(tmp_path / "r2.csv")
    assert [(r["output"], r["written"]) for r in rows if r["written"] == "1"] == [("series1/sub/cine_0002.png", "1")]
    assert rows == [dict(r, written="1" if r["output"] == "series1/sub/cine_0002.png" else "0")
                    for r in _expected_rows(src)]

    assert cli.main(args + ["--overwrite", "--report", str(tmp_path / "r3.csv")]) == 1
    assert _outputs(out) == first
    assert all((out / name).stat().st_mtime_ns != past for name in first)
    assert _report(tmp_path / "r3.csv") == _expected_rows(src)
    assert _hashes(src) == before


def test_incomplete_or_foreign_outputs_are_redone_and_stale_temporaries_removed(tree, tmp_path):
    src, expected = tree
    out = tmp_path / "out"
    convert(src, out, format="png", jobs=1)
    good = _outputs(out)
    (out / "series1/ct_0.png").write_bytes(good["series1/ct_0.png"][:-20])  # cut short (e.g. a power cut)
    (out / "series2/IM0001.png").unlink()
    (out / "series2/IM0001.png").symlink_to(out / "series1/ct_1.png")  # a symlink is never "complete"
    (out / "series1" / f"{TEMP_PREFIX}0123.tmp").write_bytes(b"left by a killed run")
    result = convert(src, out, format="png", jobs=1)
    assert sorted(sum((r.written for r in result.ok), ())) == ["series1/ct_0.png", "series2/IM0001.png"]
    assert _outputs(out) == good
    assert not (out / "series2/IM0001.png").is_symlink()


def test_frames_selection_and_jpeg_quality(tree, tmp_path):
    src, expected = tree
    cine = src / "series1" / "sub" / "cine.dcm"
    assert cli.main(["convert", str(cine), "-o", str(tmp_path / "first"), "--frames", "first", "-q",
                     "--format", "png"]) == 0
    assert list(_outputs(tmp_path / "first")) == ["cine_0001.png"]
    assert cli.main(["convert", str(cine), "-o", str(tmp_path / "third"), "--frames", "2", "-q",
                     "--format", "png"]) == 0
    third = _outputs(tmp_path / "third")
    assert list(third) == ["cine_0003.png"]
    np.testing.assert_array_equal(_pixels(third["cine_0003.png"]), expected["series1/sub/cine_0003.png"])
    assert cli.main(["convert", str(cine), "-o", str(tmp_path / "bad"), "--frames", "3", "-q"]) == 1
    # a frame index selects among the frames of multi-frame files; single-frame files give their image
    assert cli.main(["convert", str(src / "series1"), "-o", str(tmp_path / "mixed"), "--frames", "1", "-q"]) == 0
    assert sorted(_outputs(tmp_path / "mixed")) == ["ct_0.jpg", "ct_1.jpg", "sub/cine_0002.jpg"]
    sizes = []
    for quality in (30, 95):
        out = tmp_path / f"q{quality}"
        assert cli.main(["convert", str(cine), "-o", str(out), "--quality", str(quality), "-q", "-j", "1"]) == 0
        data = (out / "cine_0001.jpg").read_bytes()
        assert data[:2] == b"\xff\xd8"
        image = _pixels(data).astype(int)
        # JPEG is lossy: the error shrinks as the quality rises.
        sizes.append(np.abs(image - expected["series1/sub/cine_0001.png"]).mean())
    assert sizes[1] < sizes[0]


def test_outputs_never_leave_outdir(tree, tmp_path):
    src, expected = tree
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "series1").symlink_to(outside, target_is_directory=True)
    result = convert(src, out, format="png", jobs=1)
    failed = {r.source: r.error for r in result.failed}
    assert failed == {f"{src}/series1/ct_0.dcm": "OutputPathError", f"{src}/series1/ct_1.DCM": "OutputPathError",
                      f"{src}/series1/sub/cine.dcm": "OutputPathError",
                      f"{src}/series2/broken.dcm": "PixelDataError"}
    assert list(outside.iterdir()) == []
    assert sorted(_outputs(out / "series2")) == ["1.2.840.99.7.png", "IM0001.png"]


def test_output_folder_inside_the_source_is_not_walked(tree):
    src, expected = tree
    result = convert(src, src / "png", format="png", jobs=1)
    assert not [r for r in result if "/png/" in r.source]
    again = convert(src, src / "png", format="png", jobs=1)
    assert len(again) == len(result) and again.written == 0


def test_colliding_output_names_fail_the_second_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ds, _ = _ct(1)
    write_dataset(ds, src / "a.dcm")
    write_dataset(ds, src / "a")
    result = convert(src, tmp_path / "out", jobs=1)
    assert [(r.source, r.status, r.error) for r in result] == [
        (f"{src}/a", "ok", ""), (f"{src}/a.dcm", "failed", "OutputPathError")]


@pytest.mark.parametrize("args", [
    ["{src}/missing"],
    ["{src}", "--preset", "no-such-preset"],
    ["{src}", "--window", "40", "0"],
    ["{src}", "--frames", "last"],
    ["{src}", "--jobs", "0"],
    ["{src}", "--quality", "0"],
    ["{src}", "--quality", "1000"],
    ["{src}", "--quality", "-5"],
    ["{src}", "--compress-level", "10"],
    ["{src}", "--timeout", "inf"],
    ["{src}", "--timeout", "nan"],
    ["{src}", "--timeout", "0"],
    ["{src}", "--preset", "header", "--window", "40", "80"],
    ["{src}", "--format", "tiff"],
    ["{src}", "--timeout", "5", "--scheduler", "tcp://127.0.0.1:1"],
])
def test_bad_usage_exits_2_and_writes_nothing(tree, tmp_path, capsys, args):
    src, _ = tree
    out = tmp_path / "out"
    argv = ["convert", *[a.format(src=src) for a in args], "-o", str(out)]
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    assert status == 2
    assert not out.exists()
    assert "Traceback" not in capsys.readouterr().err


def test_progress_bar_only_when_asked_or_on_a_terminal(tree, tmp_path, capsys):
    src, _ = tree
    convert(src, tmp_path / "a", jobs=1)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
    convert(src, tmp_path / "b", jobs=1, progress=True)
    err = capsys.readouterr().err
    assert "7/7" in err and "file/s" in err and "failed=1" in err


def test_dicom_detection_by_content(tmp_path):
    ds, _ = _ct(1)
    data = Path(write_dataset(ds, tmp_path / "x.dcm")).read_bytes()
    assert is_dicom_header(data[:132]) and not is_dicom_header(data[:131])
    (tmp_path / "garbage").write_bytes(b"\x08\x00" + os.urandom(300))  # starts like a bare data set
    (tmp_path / "empty").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo")  # opening it would block: never opened
    result = convert(tmp_path, tmp_path / "out", jobs=1)
    assert {os.path.basename(r.source): (r.status, r.error) for r in result} == {
        "empty": ("skipped", "NotDicomError"), "fifo": ("skipped", "NotDicomError"),
        "garbage": ("skipped", "NotDicomError"), "x.dcm": ("ok", "")}


def test_real_files_native_compressed_colour_and_non_images(tmp_path):
    import shutil

    import dicomrender

    src = tmp_path / "src"
    names = {"CT_small.dcm": "ct/CT_small", "emri_small.dcm": "mr/emri", "MR_small_RLE.dcm": "mr/rle.dcm",
             "JPEG2000.dcm": "ct/j2k.dcm", "SC_rgb.dcm": "sc/rgb.dcm", "rtplan.dcm": "rt/plan.dcm",
             "DICOMDIR": "DICOMDIR"}
    for name, target in names.items():
        (src / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_file(name), src / target)
    before = _hashes(src)
    result = convert(src, tmp_path / "out", format="png", jobs=2)
    assert result.exit_status == 0
    assert {r.source[len(str(src)) + 1:]: (r.status, r.message) for r in result if r.status != "ok"} == {
        "DICOMDIR": ("skipped", "DICOM object without Pixel Data (SOP Class Media Storage Directory Storage)"),
        "rt/plan.dcm": ("skipped", "DICOM object without Pixel Data (SOP Class RT Plan Storage)")}
    outputs = _outputs(tmp_path / "out")
    expected = {"ct/CT_small.png": ("ct/CT_small", None), "ct/j2k.png": ("ct/j2k.dcm", None),
                "mr/rle.png": ("mr/rle.dcm", None), "sc/rgb.png": ("sc/rgb.dcm", None),
                **{f"mr/emri_{i + 1:04d}.png": ("mr/emri", i) for i in range(10)}}
    assert sorted(outputs) == sorted(expected)
    for name, (source, frame) in expected.items():
        # emri has no window: min-max over all frames of the file
        image = dicomrender.render(src / source)
        np.testing.assert_array_equal(_pixels(outputs[name]), image if frame is None else image[frame],
                                      err_msg=name)
    assert _pixels(outputs["sc/rgb.png"]).shape == (100, 100, 3)
    (tmp_path / "out" / "mr" / "emri_0003.png").unlink()
    again = convert(src, tmp_path / "out", format="png", jobs=1)
    assert again.written == 1 and _outputs(tmp_path / "out") == outputs  # the same window as the first run
    convert(src / "mr" / "emri", tmp_path / "first", format="png", frames="first")
    np.testing.assert_array_equal(_pixels((tmp_path / "first" / "emri_0001.png").read_bytes()),
                                  dicomrender.render(src / "mr" / "emri", frame=0))  # min-max of that frame
    assert _hashes(src) == before


def test_pool_with_other_threads_running_uses_a_forkserver(tree, tmp_path, monkeypatch):
    import multiprocessing
    import threading

    src, _ = tree
    reference = convert(src, tmp_path / "ref", jobs=1)
    methods = []
    get_context = multiprocessing.get_context
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: methods.append(method) or
                        get_context(method))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        result = convert(src, tmp_path / "pool", jobs=2)
    finally:
        stop.set()
        thread.join()
    assert methods == ["forkserver"]
    assert result.records == reference.records
    assert _outputs(tmp_path / "pool") == _outputs(tmp_path / "ref")
    methods.clear()
    assert convert(src, tmp_path / "fork", jobs=2).records == reference.records
    assert methods == ["fork" if threading.active_count() == 1 else "forkserver"]


def test_rerun_reads_headers_only(tmp_path, monkeypatch):
    import pydicom.filereader

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for i in range(2):
        write_dataset(_ct(i, shape=(2, 128, 160))[0], src / f"big{i}.dcm")  # Pixel Data > 64 KiB: read on demand
    convert(src, out, jobs=1)
    reads = []
    original = pydicom.filereader.read_deferred_data_element
    monkeypatch.setattr(pydicom.filereader, "read_deferred_data_element",
                        lambda *args, **kwargs: reads.append(args) or original(*args, **kwargs))
    result = convert(src, out, jobs=1)
    assert result.written == 0 and len(result.ok) == 2
    assert reads == []  # complete outputs: Pixel Data never read
    (out / "big0_0002.jpg").unlink()
    result = convert(src, out, jobs=1)
    assert result.written == 1 and len(reads) == 1  # the header, then Pixel Data of big0 only


def test_package_exports_convert():
    import dicomrender

    assert dicomrender.convert is convert


def test_scripts_without_main_guard(tree, tmp_path):
    src, _ = tree
    call = f"dicomrender.convert({str(src)!r}, {str(tmp_path / 'out')!r}, jobs=2)"
    script = tmp_path / "unguarded.py"
    script.write_text(f"import dicomrender\nprint({call}.summary())\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "7 files: 5 ok" in run.stdout  # workers are forked: no re-import
    # With another thread running, workers come from a forkserver and re-import the script.
    script.write_text("import threading, dicomrender\nthreading.Thread(target=threading.Event().wait, "
                      f"daemon=True).start()\n{call}\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "RuntimeError: a worker process could not start" in run.stderr
    assert 'if __name__ == "__main__":' in run.stderr


def test_output_folder_holding_the_sources_is_bad_usage(tree):
    src, _ = tree
    before = _hashes(src)
    assert cli.main(["convert", str(src), "-o", str(src), "-q"]) == 2
    assert cli.main(["convert", str(src / "series1"), "-o", str(src), "-q"]) == 2
    assert _hashes(src) == before


def test_an_input_inside_the_output_folder_is_never_replaced(tree, tmp_path):
    src, _ = tree
    out = tmp_path / "out"
    (out / "series1").mkdir(parents=True)
    keep = out / "series1" / "ct_0.png"
    keep.write_bytes(b"an input that happens to live in the output folder")
    result = convert([src, keep], out, format="png", jobs=1, overwrite=True)
    assert {r.source: (r.status, r.error) for r in result if r.status != "ok"} == {
        f"{src}/series1/ct_0.dcm": ("failed", "OutputPathError"), str(keep): ("skipped", "NotDicomError"),
        f"{src}/README.txt": ("skipped", "NotDicomError"), f"{src}/series2/broken.dcm": ("failed", "PixelDataError")}
    assert keep.read_bytes() == b"an input that happens to live in the output folder"
    # the same through a symlink met while walking a source folder
    (src / "series1" / "link").symlink_to(keep)
    result = convert(src, out, format="png", jobs=1, overwrite=True)
    assert {r.source: r.error for r in result.failed}[f"{src}/series1/ct_0.dcm"] == "OutputPathError"
    assert keep.read_bytes() == b"an input that happens to live in the output folder"


def test_warnings_go_to_the_report_not_the_terminal(tree, tmp_path, monkeypatch, recwarn):
    import importlib
    import warnings

    render_module = importlib.import_module("dicomrender.rendering")
    original = render_module.render

    def render(ds, *args, **kwargs):
        warnings.warn(f"odd header in {os.path.basename(ds.filename)}", UserWarning, stacklevel=2)
        return original(ds, *args, **kwargs)

    monkeypatch.setattr(render_module, "render", render)
    src, _ = tree
    result = convert(src / "series1", tmp_path / "out", jobs=1)
    assert [(os.path.basename(r.source), r.message) for r in result] == [
        ("ct_0.dcm", "warning: odd header in ct_0.dcm"), ("ct_1.DCM", "warning: odd header in ct_1.DCM"),
        ("cine.dcm", "warning: odd header in cine.dcm")]
    assert len(recwarn) == 0


# ---- Dask -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield cluster
    cluster.close()


def test_dask_local_cluster_equals_the_local_run(tree, tmp_path, dask_cluster):
    src, expected = tree
    before = _hashes(src)
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert cli.main(["convert", str(src), "-o", str(local), "-j", "1", "-q", "--report", str(tmp_path / "l.csv")]) == 1
    assert cli.main(["convert", str(src), "-o", str(remote), "-q", "--scheduler", dask_cluster.scheduler_address,
                     "--report", str(tmp_path / "d.csv")]) == 1
    assert _outputs(remote) == _outputs(local)
    assert len(_outputs(local)) == len(expected)
    assert _report(tmp_path / "d.csv") == _report(tmp_path / "l.csv")
    assert _hashes(src) == before


def test_dask_many_files_equal_the_local_run(tmp_path, dask_cluster):
    src = tmp_path / "src"
    for i in range(40):  # one cluster task per file
        (src / f"s{i % 4}").mkdir(parents=True, exist_ok=True)
        write_dataset(_ct(100 + i, shape=(2, 16, 16) if i % 5 == 0 else (16, 16))[0], src / f"s{i % 4}/im{i:03d}.dcm")
    write_dataset(_ct(1)[0], src / "s0/im000_0002.dcm")  # frame 2 of im000.dcm: its header is read on the cluster
    before = _hashes(src)
    local = convert(src, tmp_path / "local", jobs=1)
    remote = convert(src, tmp_path / "dask", scheduler=dask_cluster.scheduler_address)
    assert remote.records == local.records and len(local.ok) == 40
    assert [(r.source, r.error) for r in remote.failed] == [(f"{src}/s0/im000_0002.dcm", "OutputPathError")]
    assert _outputs(tmp_path / "dask") == _outputs(tmp_path / "local")
    assert _hashes(src) == before


def test_dask_client_and_local_scheduler_paths(tree, tmp_path, dask_cluster, monkeypatch):
    import dask.distributed

    src, _ = tree
    reference = convert(src, tmp_path / "ref", jobs=1)
    with dask.distributed.Client(dask_cluster) as client:
        result = convert(src, tmp_path / "client", scheduler=client)
        assert client.status == "running"  # a Client given by the caller stays open
    assert _outputs(tmp_path / "client") == _outputs(tmp_path / "ref")
    assert result.records == reference.records

    started = []

    class Reused:  # "local" starts a LocalCluster: reuse the running one instead of starting another
        def __init__(self, **kwargs):
            started.append(kwargs)
            self.scheduler_address = dask_cluster.scheduler_address

        def close(self):
            started.append("closed")

    monkeypatch.setattr(dask.distributed, "LocalCluster", Reused)
    monkeypatch.setattr(dask.distributed, "Client", lambda cluster: dask.distributed.client.Client(
        cluster.scheduler_address))
    result = convert(src, tmp_path / "local", scheduler="local", jobs=2)
    assert started == [dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None), "closed"]
    assert _outputs(tmp_path / "local") == _outputs(tmp_path / "ref")
