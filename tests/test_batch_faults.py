"""Batch faults (issue 13, cases 9-14 and 17): nothing lost, nothing written twice, no process left behind.

Processes killed from outside, hanging decoders and dying workers; the batch's own process never reading
an input; output names only one file may have; dask per-file isolation; file names that are not UTF-8;
symlinked folders; paths and options refused before any file is touched.  Every input is generated here.
"""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from dicomrender import cli
from dicomrender.batch import TEMP_PREFIX, ConvertTask, convert, convert_file
from dicomrender.batch.model import ConvertOptions
from dicomrender.batch.walk import frame_name_candidates

from .hostile import MB, run_capped
from .synthetic import make_dataset, write_dataset


def _ct(seed: int, shape=(24, 32), **attributes):
    """12-bit CT words with a header window; returns (dataset, words)."""
    words = np.random.default_rng(seed).integers(0, 4096, size=shape, dtype=np.uint16)
    attributes = dict(dict(RescaleIntercept=-1024, RescaleSlope=1, WindowCenter=40, WindowWidth=400), **attributes)
    return make_dataset(words, bits_stored=12, **attributes), words


def _hashes(root) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _outputs(root) -> dict:
    """Relative path -> bytes of every file under ``root``."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _report(path) -> list:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


def _main(*argv) -> int:
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code or 0)


# ---- 9 and 11: one source per output name, planned without reading a file in this process -------------


def test_a_name_ending_like_a_frame_number_fails_instead_of_sharing_an_output(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_dataset(_ct(1, shape=(3, 8, 8))[0], src / "x.dcm")  # gives x_0001.jpg .. x_0003.jpg
    write_dataset(_ct(2)[0], src / "x_0002.dcm")  # would give x_0002.jpg too
    write_dataset(_ct(3)[0], src / "x_0004.dcm")  # no frame 4: its own output
    result = convert(src, tmp_path / "out", jobs=1)
    assert [(os.path.basename(r.source), r.status, r.error, r.outputs) for r in result] == [
        ("x.dcm", "ok", "", ("x_0001.jpg", "x_0002.jpg", "x_0003.jpg")),
        ("x_0002.dcm", "failed", "OutputPathError", ()), ("x_0004.dcm", "ok", "", ("x_0004.jpg",))]
    assert result.failed[0].message == f"output name 'x_0002' is also frame 2 of {src}/x.dcm"
    result = convert(src, tmp_path / "first", jobs=1, frames="first")  # only x_0001.jpg from x.dcm
    assert result.exit_status == 0

def test_a_frame_name_clash_is_settled_by_workers_before_anything_is_written(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_dataset(_ct(1, shape=(3, 8, 8))[0], src / "x.dcm")
    write_dataset(_ct(2)[0], src / "x_0002.dcm")  # frame 2 of x.dcm: fails
    write_dataset(_ct(3, shape=(2, 8, 8))[0], src / "x_0003.dcm")  # frame 3 too, although multi-frame
    write_dataset(_ct(4)[0], src / "x_0003_0001.dcm")  # frame 1 of x_0003, which converts nothing: its own
    (src / "y.dcm").write_bytes(b"not DICOM")  # a base without frames...
    write_dataset(_ct(5)[0], src / "y_0001.dcm")  # ... takes no name
    result = convert(src, tmp_path / "out", jobs=2)
    assert {os.path.basename(r.source): (r.status, r.error, r.outputs) for r in result} == {
        "x.dcm": ("ok", "", ("x_0001.jpg", "x_0002.jpg", "x_0003.jpg")),
        "x_0002.dcm": ("failed", "OutputPathError", ()), "x_0003.dcm": ("failed", "OutputPathError", ()),
        "x_0003_0001.dcm": ("ok", "", ("x_0003_0001.jpg",)), "y.dcm": ("skipped", "NotDicomError", ()),
        "y_0001.dcm": ("ok", "", ("y_0001.jpg",))}
    assert sorted(_outputs(tmp_path / "out")) == ["x_0001.jpg", "x_0002.jpg", "x_0003.jpg", "x_0003_0001.jpg",
                                                 "y_0001.jpg"]


def test_a_base_that_would_write_a_reserved_name_fails_and_writes_nothing(tmp_path):
    """The file changed between the header read that planned its names and its conversion."""
    path = write_dataset(_ct(1, shape=(3, 8, 8))[0], tmp_path / "x.dcm")
    out = tmp_path / "out"
    out.mkdir()
    options = ConvertOptions(str(out))
    record = convert_file(ConvertTask(path, path, "x", reserved=frozenset({"x_0003"})), options)
    assert (record.status, record.error) == ("failed", "OutputPathError")
    assert "'x_0003.jpg' belongs to another input file" in record.message
    assert list(out.iterdir()) == []


def test_frame_name_candidates_match_frame_numbers_of_four_digits_or_more():
    stems = ["x", "x_0002", "x_2", "x_00002", "x_10000", "x_010000", "x_0002_0001", "y_0001", "x_0002.jpg"]
    tasks = [ConvertTask(f"/src/{s}.dcm", f"/src/{s}.dcm", s) for s in stems]
    assert frame_name_candidates(tasks) == {0: [(1, 2), (4, 10000)], 1: [(6, 1)]}


def test_frame_numbers_past_9999_cannot_share_a_name(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_dataset(_ct(1, shape=(10_001, 1, 1))[0], src / "y.dcm")  # y_0001.jpg ... y_10001.jpg
    for name, seed in (("y_10000.dcm", 2), ("y_010000.dcm", 3), ("y_10002.dcm", 4)):
        write_dataset(_ct(seed)[0], src / name)
    result = convert(src, tmp_path / "out", jobs=2, frames=9999)  # frame 10,000 only: y_10000.jpg
    rows = {os.path.basename(r.source): (r.status, r.error, r.outputs) for r in result}
    assert rows == {"y.dcm": ("ok", "", ("y_10000.jpg",)), "y_10000.dcm": ("failed", "OutputPathError", ()),
                    "y_010000.dcm": ("ok", "", ("y_010000.jpg",)), "y_10002.dcm": ("ok", "", ("y_10002.jpg",))}
    assert result.failed[0].message == f"output name 'y_10000' is also frame 10000 of {src}/y.dcm"
    assert sorted(_outputs(tmp_path / "out")) == ["y_010000.jpg", "y_10000.jpg", "y_10002.jpg"]


def test_the_batch_process_opens_no_input(tmp_path, monkeypatch):
    import builtins
    import io

    src = tmp_path / "src"
    src.mkdir()
    write_dataset(_ct(1, shape=(3, 8, 8))[0], src / "x.dcm")
    write_dataset(_ct(2)[0], src / "x_0001.dcm")
    write_dataset(_ct(3)[0], src / "z.dcm")
    me, opened = os.getpid(), []

    def spy(function):
        def wrapper(path, *args, **kwargs):
            if os.getpid() == me and str(path).startswith(str(src)):
                opened.append(path)
            return function(path, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(builtins, "open", spy(builtins.open))
    monkeypatch.setattr(io, "open", spy(io.open))
    monkeypatch.setattr(os, "open", spy(os.open))
    result = convert(src, tmp_path / "out", jobs=2)
    assert [(os.path.basename(r.source), r.status) for r in result] == [
        ("x.dcm", "ok"), ("x_0001.dcm", "failed"), ("z.dcm", "ok")]
    assert opened == []


def _deflate_bomb(path: Path, zeros: int) -> int:
    """An 8x8 image in the Deflated Explicit VR Little Endian syntax whose data set holds a private OB
    element of ``zeros`` zero bytes before Pixel Data; the deflate stream is built piecewise, so this
    process never holds the inflated data set.  Returns the file size."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset as encode
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds, _ = _ct(9, shape=(8, 8))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.private_block(0x0009, "issue 13 bomb", create=True).add_new(0x10, "OB", b"\x00\x00")
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    encode(body, ds)
    placeholder = b"\x09\x00\x10\x10OB\x00\x00\x02\x00\x00\x00\x00\x00"
    before, after = body.getvalue().split(placeholder)
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    # A full flush ends on a byte boundary with nothing referring back past it: the deflated zeros are one
    # block of 16 MiB, compressed once and repeated.
    deflate, zeros_deflate = (zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS) for _ in range(2))
    block = zeros_deflate.compress(bytes(16 * MB)) + zeros_deflate.flush(zlib.Z_FULL_FLUSH)
    assert zeros % (16 * MB) == 0
    with open(path, "wb") as f:
        f.write(b"\x00" * 128 + b"DICM" + meta.getvalue())
        f.write(deflate.compress(before + placeholder[:8] + zeros.to_bytes(4, "little")))
        f.write(deflate.flush(zlib.Z_FULL_FLUSH))
        f.write(block * (zeros // (16 * MB)))
        f.write(deflate.compress(after) + deflate.flush())
    return path.stat().st_size


def test_a_deflate_bomb_beside_a_frame_named_sibling_costs_the_batch_process_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    size = _deflate_bomb(src / "name.dcm", 512 * MB)
    assert size < 2 * MB
    write_dataset(_ct(1)[0], src / "name_0001.dcm")  # frame 1 of name.dcm, if it had frames: a header to read
    result = run_capped("""
        import dicomrender
        report = dicomrender.convert(SRC, OUT, jobs=2, timeout=60)
        assert sorted(r.source.rsplit("/", 1)[1] for r in report) == ["name.dcm", "name_0001.dcm"], report.records
        assert report[1].status == "ok", report.records
    """, SRC=str(src), OUT=str(tmp_path / "out"))
    assert result.outcome == "ok", result.detail
    assert result.peak_bytes < 50 * MB, result.peak_bytes  # the bomb inflates in a worker, if anywhere


# ---- faults: processes killed from outside, hanging decoders, dying workers --------

# Loaded at interpreter start (sitecustomize) by the command and its worker processes only: makes
# reading the pixels of files named hang* block forever, die* kill their process (each attempt noted in
# $CONVERT_TEST_RUNS), and all slow; the worker writing the image of a file named halfwrite* is killed
# with the image half-written; $CONVERT_TEST_NO_PDEATHSIG leaves workers only end-of-file on their pipe.
HOOK = textwrap.dedent('''
    import importlib, os, signal, time

    def _install():
        from dicomrender import rendering
        convert = importlib.import_module("dicomrender.io")
        write_all, write_output = convert._write_all, convert.write_atomic
        half = []

        def _write_all(fd, data, fsync):
            if half:
                os.write(fd, data[:len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            return write_all(fd, data, fsync)

        def _write_output(path, data, fsync):
            if os.path.basename(path).startswith("halfwrite"):
                half.append(path)
            return write_output(path, data, fsync)

        convert._write_all, convert.write_atomic = _write_all, _write_output
        original = rendering.read_frames
        delay = float(os.environ.get("CONVERT_TEST_DELAY", "0"))

        def read_frames(self, indices):
            name = os.path.basename(self.filename or "")
            if name.startswith("hang"):
                time.sleep(3600)
            if name.startswith("die"):
                if os.environ.get("CONVERT_TEST_RUNS"):
                    with open(os.environ["CONVERT_TEST_RUNS"], "a") as f:
                        f.write(name + "\\n")
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(delay)
            return original(self, indices)

        rendering.read_frames = read_frames
        if os.environ.get("CONVERT_TEST_NO_PDEATHSIG"):
            from dicomrender.batch import pool
            pool._die_with_parent = lambda *args: None

    _install()
''')


def _hooked_env(tmp_path, delay=0.0, **variables) -> dict:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    env = dict(os.environ, CONVERT_TEST_DELAY=str(delay), **variables)
    env["PYTHONPATH"] = os.pathsep.join([str(hook)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _many(src: Path, count: int) -> None:
    for i in range(count):
        folder = src / f"s{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        ds, _ = _ct(100 + i, shape=(2, 16, 16) if i % 5 == 0 else (16, 16))
        write_dataset(ds, folder / f"im{i:03d}.dcm")


def test_sigkill_mid_run_leaves_no_partial_outputs_and_rerun_completes(tmp_path):
    src, out, reference = tmp_path / "src", tmp_path / "out", tmp_path / "reference"
    _many(src, 40)
    before = _hashes(src)
    convert(src, reference, jobs=1)
    expected = _outputs(reference)
    command = [sys.executable, "-m", "dicomrender.cli", "convert", str(src), "-o", str(out), "--jobs", "2", "-q"]
    process = subprocess.Popen(command, env=_hooked_env(tmp_path, delay=0.05), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len([p for p in out.rglob("*.jpg")]) < 8 and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.01)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the command, its fork server and its workers
        except ProcessLookupError:
            pass
        process.wait()
    time.sleep(0.2)
    left = {name: data for name, data in _outputs(out).items() if not os.path.basename(name).startswith(TEMP_PREFIX)}
    assert 8 <= len(left) < len(expected)
    for name, data in left.items():
        assert data == expected[name], f"{name} is not the complete image"

    result = convert(src, out, jobs=2)
    assert result.exit_status == 0
    assert _outputs(out) == expected  # complete set, no temporary files left
    assert result.written == len(expected) - len(left)
    assert _hashes(src) == before


def test_ctrl_c_stops_the_run_cleanly_and_rerun_completes(tmp_path):
    src, out, reference = tmp_path / "src", tmp_path / "out", tmp_path / "reference"
    _many(src, 30)
    convert(src, reference, jobs=1)
    command = [sys.executable, "-m", "dicomrender.cli", "convert", str(src), "-o", str(out), "--jobs", "2", "-q"]
    # A shell that runs a job in the background (as CI may) starts it with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: give the child the default disposition a terminal gives.
    process = subprocess.Popen(command, env=_hooked_env(tmp_path, delay=0.05), start_new_session=True,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while len(list(out.rglob("*.jpg"))) < 4 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal sends to the whole group on Ctrl-C
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted; rerun the same command to finish" in err
    expected = _outputs(reference)
    left = _outputs(out)
    assert 4 <= len(left) < len(expected)
    assert all(left[name] == expected[name] for name in left)  # complete images only, no temporary files
    assert cli.main(["convert", str(src), "-o", str(out), "-q"]) == 0
    assert _outputs(out) == expected


def test_hanging_file_times_out_and_dead_worker_is_reported(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _many(src, 12)
    for name in ("hang.dcm", "die.dcm", "halfwrite.dcm"):
        write_dataset(_ct(7)[0], src / "s1" / name)
    report = tmp_path / "report.csv"
    command = [sys.executable, "-m", "dicomrender.cli", "convert", str(src), "-o", str(out), "--jobs", "2",
               "--timeout", "3", "-q", "--report", str(report)]
    run = subprocess.run(command, env=_hooked_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and report.exists(), run.stderr
    rows = {os.path.basename(r["source"]): r for r in _report(report)}
    assert len(rows) == 15
    assert (rows["hang.dcm"]["status"], rows["hang.dcm"]["error"]) == ("failed", "TimeoutError")
    assert rows["hang.dcm"]["message"] == "no result after 3 s; the worker was stopped"
    assert (rows["die.dcm"]["status"], rows["die.dcm"]["error"]) == ("failed", "WorkerDiedError")
    assert rows["die.dcm"]["message"] == "the worker process was killed by SIGKILL while converting this file"
    assert rows["halfwrite.dcm"]["error"] == "WorkerDiedError"  # killed in the middle of writing its image...
    assert all(r["status"] == "ok" for name, r in rows.items() if name.startswith("im"))
    reference = tmp_path / "reference"
    convert(src, reference, jobs=1, timeout=None)  # no hook in this process: every file converts
    expected = _outputs(reference)
    # ... which left nothing behind: no output, no temporary file
    failed = ("s1/hang", "s1/die", "s1/halfwrite")
    assert _outputs(out) == {k: v for k, v in expected.items() if not k.startswith(failed)}
    assert f"failed: {src}/s1/hang.dcm: TimeoutError" in run.stderr


def test_a_worker_gone_before_a_file_reaches_it_loses_nothing(tmp_path, monkeypatch):
    """A worker that dies between two looks at it (its end of the pipe closed when a file is sent) is
    replaced; the file goes to a worker, nothing is blamed on it, the batch goes on."""
    from dicomrender.batch import pool

    src = tmp_path / "src"
    _many(src, 8)
    ready, killed = pool._Worker.wait_ready, []

    def ready_then_gone(self, timeout=120.0):
        ready(self, timeout)
        if not killed:  # the first worker dies idle, before the batch sends it anything
            killed.append(self.process.pid)
            self.process.kill()
            self.process.join()

    monkeypatch.setattr(pool._Worker, "wait_ready", ready_then_gone)
    result = convert(src, tmp_path / "out", jobs=2)
    assert killed and [(r.status, r.error) for r in result] == [("ok", "")] * 8
    assert _outputs(tmp_path / "out") == _outputs(_reference_run(tmp_path, src))


def test_a_send_to_a_dead_worker_says_so(tmp_path):
    from dicomrender.batch import pool

    worker = pool._Worker(pool._pool_context(), ConvertOptions(str(tmp_path / "out")), convert_file)
    try:
        worker.wait_ready()
        worker.process.kill()
        worker.process.join()
        task = ConvertTask(str(tmp_path / "a.dcm"), "a.dcm", "a")
        assert worker.send(0, task) is False and worker.broken and not worker.queue
    finally:
        worker.kill()


def _reference_run(tmp_path, src) -> Path:
    """The outputs of an undisturbed run (in this process: no hook)."""
    convert(src, tmp_path / "reference", jobs=1)
    return tmp_path / "reference"


def _children(pid: int) -> set:
    """The live (not zombie) processes whose parent is ``pid``, from /proc."""
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
            except OSError:
                continue
            if int(ppid) == pid and state != "Z":
                children.add(int(entry))
    return children


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGKILL, end-of-file only", "SIGTERM"])
def test_workers_die_with_their_parent(tmp_path, how):
    src, out, report = tmp_path / "src", tmp_path / "out", tmp_path / "report.csv"
    _many(src, 40)
    variables = {"CONVERT_TEST_NO_PDEATHSIG": "1"} if "end-of-file" in how else {}
    command = [sys.executable, "-m", "dicomrender.cli", "convert", str(src), "-o", str(out), "--jobs", "2",
               "--report", str(report)]
    process = subprocess.Popen(command, env=_hooked_env(tmp_path, delay=0.2, **variables), start_new_session=True,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        workers: set = set()
        while (len(workers) < 2 or len(list(out.rglob("*.jpg"))) < 4) and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before it could be stopped"
            workers = _children(process.pid)
            time.sleep(0.01)
        assert len(workers) == 2
        os.kill(process.pid, signal.SIGTERM if how == "SIGTERM" else signal.SIGKILL)  # the parent alone
        stopped = time.monotonic()
        while any(_alive(w) for w in workers) and time.monotonic() - stopped < 10:
            time.sleep(0.01)
        assert not [w for w in workers if _alive(w)], "workers outlived their parent"
        assert time.monotonic() - stopped < (2 if how == "SIGKILL" else 5)
        _, err = process.communicate(timeout=30)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    if how != "SIGTERM":
        assert not report.exists()
        return
    assert process.returncode == 143
    assert "terminated (SIGTERM); rerun the same command to finish" in err
    rows = _report(report)  # what finished, and the rest as not converted: every input has a row
    assert {r["source"] for r in rows} == {str(p) for p in src.rglob("*.dcm")}
    assert {(r["status"], r["error"]) for r in rows} == {("ok", ""), ("failed", "Interrupted")}
    reported = {r["output"] for r in rows if r["status"] == "ok"}
    # A file whose worker was stopped after writing its image and before reporting it is "Interrupted": the
    # image is complete (written atomically) and the rerun keeps it.
    interrupted = {os.path.relpath(r["source"], src)[:-len(".dcm")] for r in rows if r["error"] == "Interrupted"}
    expected = _outputs(_reference_run(tmp_path, src))
    outputs = _outputs(out)
    assert reported <= set(outputs)
    assert all(name.rsplit("_0", 1)[0].removesuffix(".jpg") in interrupted for name in set(outputs) - reported)
    assert all(outputs[name] == expected[name] for name in outputs)
    assert _main("convert", src, "-o", out, "-q") == 0
    assert _outputs(out) == expected


def test_dask_local_a_file_that_kills_its_worker_fails_alone(tmp_path):
    pytest.importorskip("distributed")
    src, out, report, runs = tmp_path / "src", tmp_path / "out", tmp_path / "report.csv", tmp_path / "runs"
    _many(src, 15)
    write_dataset(_ct(7)[0], src / "s1" / "die.dcm")
    command = [sys.executable, "-m", "dicomrender.cli", "convert", str(src), "-o", str(out), "--jobs", "2", "-q",
               "--scheduler", "local", "--report", str(report)]
    run = subprocess.run(command, env=_hooked_env(tmp_path, CONVERT_TEST_RUNS=str(runs)), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    rows = _report(report)
    failed = [r for r in rows if r["status"] != "ok"]
    assert [(os.path.basename(r["source"]), r["status"], r["error"]) for r in failed] == [
        ("die.dcm", "failed", "KilledWorker")]
    assert len({r["source"] for r in rows}) == 16  # the other 15 converted
    assert 1 <= len(runs.read_text().split()) <= 2  # not 4 times


# ---- 13, 14, 17: names, symlinked folders, same source twice, paths refused up front ----------------


def test_a_file_name_that_is_not_utf8_is_reported_exactly(tmp_path):
    src, out, report = tmp_path / "src", tmp_path / "out", tmp_path / "report.csv"
    src.mkdir()
    name = os.fsdecode(b"caf\xe9 \xff.dcm")  # Latin-1 bytes, as an old PACS export may name files
    write_dataset(_ct(1)[0], src / name)
    assert _main("convert", src, "-o", out, "-q", "--report", report) == 0
    data = report.read_bytes()
    assert os.fsencode(src) + b"/caf\xe9 \xff.dcm" in data and b",caf\xe9 \xff.jpg," in data
    [row] = _report(report)
    assert os.path.exists(row["source"]) and (out / row["output"]).is_file()


def test_symlinked_and_unreadable_folders_are_rows(tmp_path, monkeypatch):
    src, elsewhere = tmp_path / "src", tmp_path / "elsewhere"
    (src / "real").mkdir(parents=True)
    elsewhere.mkdir()
    write_dataset(_ct(1)[0], src / "real" / "a.dcm")
    write_dataset(_ct(2)[0], elsewhere / "b.dcm")
    (src / "linked").symlink_to(elsewhere, target_is_directory=True)
    (src / "real" / "loop").symlink_to(src, target_is_directory=True)
    result = convert(src, tmp_path / "out", jobs=1)
    assert [(r.source, r.status, r.error) for r in result] == [
        (f"{src}/linked", "skipped", "SymlinkedFolder"), (f"{src}/real/a.dcm", "ok", ""),
        (f"{src}/real/loop", "skipped", "SymlinkedFolder")]
    assert result[0].message.startswith(f"symlinked folder not followed (-> {elsewhere})")
    assert convert(src / "linked", tmp_path / "linked", jobs=1).ok  # as a source it is followed
    scandir = os.scandir

    def unreadable(path="."):  # what a folder without read permission gives (root would read it)
        if os.fspath(path) == f"{src}/real":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", unreadable)
    result = convert(src, tmp_path / "out2", jobs=1)
    assert [(r.source, r.status, r.error, r.message) for r in result if r.status != "skipped"] == [
        (f"{src}/real", "failed", "PermissionError", "folder not read: Permission denied")]


def test_the_same_source_twice_is_one_input(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    a = write_dataset(_ct(1)[0], src / "a.dcm")
    write_dataset(_ct(2)[0], src / "b.dcm")
    result = convert([a, a, Path(src / ".." / "src" / "a.dcm")], tmp_path / "one", jobs=1)
    assert [(r.source, r.status) for r in result] == [(a, "ok")]
    result = convert([src, src, f"{src}/"], tmp_path / "two", jobs=1)
    assert [(r.source, r.status) for r in result] == [(f"{src}/a.dcm", "ok"), (f"{src}/b.dcm", "ok")]
    result = convert([src, a], tmp_path / "three", jobs=1)  # a file source inside a folder source
    assert [(r.source, r.status, r.error) for r in result] == [
        (f"{src}/a.dcm", "ok", ""), (f"{src}/a.dcm", "skipped", "DuplicateInput"), (f"{src}/b.dcm", "ok", "")]


@pytest.mark.parametrize("case", ["outdir is a file", "outdir below a file", "report is a folder",
                                  "report below a file", "report replaces an input"])
def test_paths_that_cannot_be_written_are_refused_before_any_file_is_touched(tmp_path, capsys, case):
    src, out, report = tmp_path / "src", tmp_path / "out", tmp_path / "report.csv"
    src.mkdir()
    write_dataset(_ct(1)[0], src / "a.dcm")
    plain = tmp_path / "plain"
    plain.write_text("a regular file")
    if case == "outdir is a file":
        out = plain
    elif case == "outdir below a file":
        out = plain / "out"
    elif case == "report is a folder":
        report.mkdir()
    elif case == "report below a file":
        report = plain / "report.csv"
    else:
        report = src / "a.dcm"
    before = _hashes(tmp_path)
    assert _main("convert", src, "-o", out, "--report", report, "--jobs", "2") == 2
    err = capsys.readouterr().err
    assert err.startswith("dicomrender convert: error: ") and "Traceback" not in err
    assert _hashes(tmp_path) == before and not (tmp_path / "out").exists()


def test_a_report_is_replaced_by_the_next_run(tmp_path):
    src, report = tmp_path / "src", tmp_path / "report.csv"
    src.mkdir()
    write_dataset(_ct(1)[0], src / "a.dcm")
    for out in ("one", "two"):
        assert _main("convert", src, "-o", tmp_path / out, "--report", report, "-q") == 0
    assert [r["output"] for r in _report(report)] == ["a.jpg"]
