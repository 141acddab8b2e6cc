"""Batch conversion throughput (files/s) on a tree of synthetic 512x512 12-bit CT slices.

Compared, all writing JPEG quality 95 into a mirrored tree:

* ``convert`` serial (``jobs=1``) and on the process pool (all cores);
* the plain script users write today: pydicom read, ``pixel_array``, numpy
  rescale + LINEAR window, Pillow save;
* the floor: pydicom read + Pillow save of a pre-computed uint8 image (what is
  left when windowing costs nothing).

Run under pytest-benchmark (one group, side by side)::

    python -m pytest benchmarks/bench_convert.py --benchmark-only

or as a script that prints (and optionally writes) a Markdown table::

    python benchmarks/bench_convert.py --files 200 --markdown convert_bench.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

import dicomrender
from bench_series import ct_dataset, phantom
from dicomrender.batch import convert

CENTER, WIDTH, INTERCEPT = 40.0, 400.0, -1024.0
QUALITY = 95


def make_tree(root: Path, count: int) -> list:
    """``count`` CT files in 4 series folders (every other one without a .dcm suffix); returns the paths."""
    paths = []
    for i in range(count):
        folder = root / f"series{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        ds = ct_dataset(phantom(i % 16), INTERCEPT, CENTER, WIDTH)
        path = folder / (f"IM{i:04d}.dcm" if i % 2 else f"IM{i:04d}")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _target(src_root: Path, path: Path, out: Path) -> Path:
    relative = path.relative_to(src_root)
    target = out / relative.parent / (relative.stem if relative.suffix == ".dcm" else relative.name)
    target = target.with_name(target.name + ".jpg")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def plain_script(src_root: Path, paths: list, out: Path) -> None:
    """What users write today: pydicom + numpy windowing + Pillow."""
    for path in paths:
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        c, w = float(ds.WindowCenter), float(ds.WindowWidth)
        y = ((hu - (c - 0.5)) / (w - 1) + 0.5) * 255
        image = np.clip(y, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(_target(src_root, path, out), quality=QUALITY)


def read_save_floor(src_root: Path, paths: list, out: Path, image: np.ndarray) -> None:
    """The floor: read each file (pixel bytes included), save a pre-computed uint8 image."""
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.PixelData  # noqa: B018 - the bytes are read, not decoded
        Image.fromarray(image).save(_target(src_root, path, out), quality=QUALITY)


def run_convert(src_root: Path, out: Path, jobs: int, fsync: bool = False) -> None:
    report = convert(src_root, out, jobs=jobs, overwrite=True, progress=False, quality=QUALITY, fsync=fsync)
    assert report.exit_status == 0 and len(report.ok) == len(report), report.summary()


def run_cli(src_root: Path, out: Path) -> None:
    command = [sys.executable, "-m", "dicomrender.cli", "convert", str(src_root), "-o", str(out), "--overwrite",
               "-q", "--quality", str(QUALITY)]
    subprocess.run(command, check=True)


# ---- pytest-benchmark ------------------------------------------------------------------

try:
    import pytest
except ImportError:  # the script mode needs no pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="module")
    def ct_tree(tmp_path_factory):
        root = tmp_path_factory.mktemp("ct_tree")
        paths = make_tree(root / "src", int(os.environ.get("BENCH_CONVERT_FILES", "200")))
        return root / "src", paths, root / "out"

    def _bench(benchmark, fn, *args):
        out = args[2] if fn in (plain_script, read_save_floor) else args[1]
        benchmark.pedantic(fn, args=args, setup=lambda: shutil.rmtree(out, ignore_errors=True), rounds=3,
                           iterations=1, warmup_rounds=1)

    @pytest.mark.benchmark(group="convert")
    def test_convert_serial(benchmark, ct_tree):
        src, paths, out = ct_tree
        _bench(benchmark, run_convert, src, out / "serial", 1)

    @pytest.mark.benchmark(group="convert")
    def test_convert_pool(benchmark, ct_tree):
        src, paths, out = ct_tree
        _bench(benchmark, run_convert, src, out / "pool", os.cpu_count() or 1)

    @pytest.mark.benchmark(group="convert")
    def test_plain_pydicom_numpy_pillow(benchmark, ct_tree):
        src, paths, out = ct_tree
        _bench(benchmark, plain_script, src, paths, out / "plain")

    @pytest.mark.benchmark(group="convert")
    def test_read_save_floor(benchmark, ct_tree):
        src, paths, out = ct_tree
        image = dicomrender.render(paths[0])
        _bench(benchmark, read_save_floor, src, paths, out / "floor", image)


# ---- the script: a Markdown table ------------------------------------------------------


def measure(count: int, repeat: int, workdir: Path) -> list:
    """``(name, best wall seconds, best CPU seconds or None)`` per method.

    The methods take turns, ``repeat`` rounds, each run into an empty output
    folder (a first conversion), so that load from other processes hits them
    alike; the best round counts.  CPU time includes finished child processes.
    """
    src = workdir / "src"
    paths = make_tree(src, count)
    out = workdir / "out"
    image = dicomrender.render(paths[0])
    jobs = os.cpu_count() or 1
    cases = [
        ("read + save floor (pydicom read, Pillow save of a ready uint8 image)", True,
         lambda: read_save_floor(src, paths, out, image)),
        ("plain script (pydicom `pixel_array` + numpy window + Pillow)", True, lambda: plain_script(src, paths, out)),
        ("`dicomrender.convert(jobs=1)` (serial)", True, lambda: run_convert(src, out, 1)),
        ("`dicomrender.convert(jobs=1, fsync=True)` (serial, each image flushed to disk)", True,
         lambda: run_convert(src, out, 1, fsync=True)),
        (f"`dicomrender.convert()` (process pool, {jobs} workers)", False, lambda: run_convert(src, out, jobs)),
        (f"`dicomrender convert SRC -o OUT` (command line, {jobs} workers, interpreter start included)", False,
         lambda: run_cli(src, out)),
    ]
    wall = {name: float("inf") for name, _, _ in cases}
    cpu = {name: float("inf") for name, _, _ in cases}
    for round_ in range(repeat + 1):  # round 0 warms the page cache, the imports and the fork server
        for name, _, fn in cases:
            shutil.rmtree(out, ignore_errors=True)
            start, start_cpu, start_children = time.perf_counter(), time.process_time(), _children_cpu()
            fn()
            if round_:
                seconds = time.perf_counter() - start
                if seconds < wall[name]:
                    # CPU of this process, plus that of its finished child processes (pool workers, the
                    # command line and the workers it forked); workers forked by a forkserver are not counted.
                    wall[name] = seconds
                    cpu[name] = time.process_time() - start_cpu + _children_cpu() - start_children
    return [(name, wall[name], cpu[name]) for name, _, _ in cases]


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def table(results: list, count: int, repeat: int, load: tuple) -> str:
    floor, floor_cpu = results[0][1], results[0][2]
    serial = next(s for n, s, _ in results if n.startswith("`dicomrender.convert(jobs=1)`"))
    lines = [f"Files/s converting {count} synthetic 512x512 12-bit CT files (4 folders, JPEG quality {QUALITY}); "
             f"best of {repeat} rounds; {os.cpu_count()} cores, {platform.machine()}, "
             f"Python {platform.python_version()}, dicomrender {dicomrender.__version__}; "
             f"load average {load[0]:.1f} before, {load[1]:.1f} after.", "",
             "| method | files/s | ms/file | vs floor | vs serial convert | CPU ms/file | CPU vs floor | cores busy |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, seconds, cpu in results:
        cpu_cells = (f"{cpu / count * 1e3:.2f} | {floor_cpu / cpu:.2f}x | {cpu / seconds:.2f}" if cpu is not None
                     else "- | - | -")
        lines.append(f"| {name} | {count / seconds:.0f} | {seconds / count * 1e3:.2f} | {floor / seconds:.2f}x | "
                     f"{serial / seconds:.2f}x | {cpu_cells} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-convert-"))
    before = os.getloadavg()[0]
    try:
        results = measure(args.files, args.repeat, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = table(results, args.files, args.repeat, (before, os.getloadavg()[0]))
    command = "python benchmarks/bench_convert.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text += f"\nCommand: `{command.strip()}`\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
