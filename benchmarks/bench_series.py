"""Series to volume: slices/s turning a folder of CT files into one sorted uint8 brain-window volume.

The folder holds a 200-slice 512x512 12-bit CT series (body-like phantom) and a second, 20-slice series,
in one flat folder of files without suffix in shuffled order; InstanceNumber runs against the position,
the Rescale Intercept varies from slice to slice and the gantry is tilted (10 degrees).  Compared:

* the floor: pydicom ``dcmread`` + ``pixel_array`` of every file of the series, nothing else;
* a plain pydicom loop: read, keep the series, sort by position along the normal, rescale, numpy window;
* SimpleITK ``ImageSeriesReader`` (GDCM's file names and sorting) + ``IntensityWindowing``;
* dicom-numpy ``combine_slices`` (after reading with pydicom) + numpy window;
* ``dicomrender.render_series``: serial (``jobs=1``), default (the idle cores), all cores with forked
  header readers, all cores with threads only.

Not run in CI (SimpleITK and dicom-numpy: ``pip install ".[bench]"``)::

    python benchmarks/bench_series.py --repeat 5

prints a Markdown table (the README's), with the peak memory of each dicomrender run measured in a
fresh child process (its resident high-water mark over the level before the call, and the peak of
Python/numpy allocations under tracemalloc).
"""

from __future__ import annotations

import argparse
import json
import math
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
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import dicomrender
from dicomrender.engine import usable_cpus
from dicomrender.series.parallel import idle_cpus

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SIZE = 512
CENTER, WIDTH = 40.0, 80.0  # brain
TILT = 10.0
STEP = 1.25  # table step, mm
INTERCEPTS = (-1024.0, -1023.0, -1025.0)
MIB = 1 << 20


def phantom(seed: int) -> np.ndarray:
    """Stored values (HU + 1024, 12 bits) of a body-like slice: air, soft tissue, lungs, a bone ring, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIZE, :SIZE] - SIZE / 2
    r = np.hypot(x / 1.15, y)
    hu = np.full((SIZE, SIZE), -1000.0)
    hu[r < 220] = 40.0
    hu[(r > 195) & (r < 210)] = 700.0
    for side in (-1, 1):
        hu[np.hypot(x - side * 90, y + 10) < 70] = -820.0
    hu += rng.normal(0, 25, hu.shape)
    return np.clip(np.round(hu + 1024), 0, 4095).astype(np.uint16)


def ct_dataset(stored: np.ndarray, intercept: float, center: float, width: float) -> Dataset:
    """A 12-bit CT image of ``stored`` (uint16, SIZE x SIZE) with its rescale and one window, file meta
    included (also the files of bench_convert.py)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows = ds.Columns = SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = intercept, 1
    ds.WindowCenter, ds.WindowWidth = center, width
    ds.PixelData = stored.tobytes()
    return ds


def make_folder(root: Path, slices: int = 200, other: int = 20) -> tuple:
    """The folder described above; returns (main series UID, its files in position order)."""
    root.mkdir(parents=True, exist_ok=True)
    t = math.radians(TILT)
    rng = np.random.default_rng(0)
    names = iter(f"{n:08x}" for n in rng.permutation(1 << 24)[:slices + other])
    images = [phantom(seed) for seed in range(16)]
    main_uid, files = generate_uid(), []
    for uid, count in ((main_uid, slices), (generate_uid(), other)):
        for k in range(count):
            intercept = INTERCEPTS[k % 3]
            stored = images[k % 16].astype(np.int32) - int(intercept + 1024)
            ds = ct_dataset(np.clip(stored, 0, 4095).astype(np.uint16), intercept, CENTER, WIDTH)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", uid
            ds.SeriesNumber, ds.InstanceNumber = (2 if uid == main_uid else 1), count - k
            ds.ImagePositionPatient = [-180.0, -180.0, -100.0 + STEP * k]
            ds.ImageOrientationPatient = [1, 0, 0, 0, math.cos(t), -math.sin(t)]
            ds.PixelSpacing, ds.SliceThickness, ds.GantryDetectorTilt = [0.7, 0.7], STEP, TILT
            path = root / next(names)
            ds.save_as(path, enforce_file_format=True)
            if uid == main_uid:
                files.append(str(path))
    return main_uid, files


def numpy_window(hu: np.ndarray) -> np.ndarray:
    """The LINEAR window of PS3.3 C.11.2.1.2 in numpy, as scripts write it."""
    y = ((hu - (CENTER - 0.5)) / (WIDTH - 1) + 0.5) * 255
    return np.clip(y, 0, 255).astype(np.uint8)


def floor(folder: Path, uid: str, files: list) -> None:
    for path in files:
        pydicom.dcmread(path).pixel_array  # noqa: B018


def plain_pydicom(folder: Path, uid: str, files: list) -> np.ndarray:
    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    datasets = [d for d in datasets if d.SeriesInstanceUID == uid]
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
    out = np.empty((len(datasets), SIZE, SIZE), np.uint8)
    for k, d in enumerate(datasets):
        out[k] = numpy_window(d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept))
    return out


def simpleitk(folder: Path, uid: str, files: list) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), uid))
    image = reader.Execute()
    windowed = sitk.IntensityWindowing(image, CENTER - WIDTH / 2, CENTER + WIDTH / 2, 0.0, 255.0)
    return sitk.GetArrayFromImage(sitk.Cast(windowed, sitk.sitkUInt8))


def dicom_numpy(folder: Path, uid: str, files: list) -> np.ndarray:
    import dicom_numpy as dn

    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    voxels, _ = dn.combine_slices([d for d in datasets if d.SeriesInstanceUID == uid], rescale=True)
    return numpy_window(voxels).transpose(2, 1, 0)


def dicomrender_series(jobs, executor="auto"):
    def run(folder: Path, uid: str, files: list) -> np.ndarray:
        return np.asarray(dicomrender.render_series(folder, "brain", series_uid=uid, jobs=jobs, executor=executor))
    return run


_MEMORY = r"""
import json, resource, sys, tracemalloc
import numpy as np
import dicomrender
folder, uid, jobs, executor = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

dicomrender.render_series(folder, "brain", series_uid=uid, jobs=1, frames=[0])  # imports, tables
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the resident high-water mark restarts from the current level
base = status("VmRSS")
tracemalloc.start()
volume = dicomrender.render_series(folder, "brain", series_uid=uid, jobs=jobs, executor=executor)
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"output": volume.pixels.nbytes, "rss": status("VmHWM") - base, "traced": traced}))
"""


def memory(folder: Path, uid: str, jobs, executor: str) -> dict:
    """Peak memory of one render_series call in a fresh child process."""
    result = subprocess.run([sys.executable, "-c", _MEMORY, str(folder), uid, json.dumps(jobs), executor],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(folder: Path, uid: str, files: list, repeat: int) -> list:
    cores = usable_cpus()
    cases = [
        ("floor: pydicom `dcmread` + `pixel_array` of each file, nothing else", floor, None),
        ("plain pydicom loop, sort by position, rescale, numpy window", plain_pydicom, None),
        ("SimpleITK `ImageSeriesReader` (GDCM sorting) + `IntensityWindowing`", simpleitk, None),
        ("dicom-numpy `combine_slices` + numpy window", dicom_numpy, None),
        ("`dicomrender.render_series(jobs=1)`", dicomrender_series(1), (1, "auto")),
        (f"`dicomrender.render_series()` (default: the idle cores of {cores}, {idle_cpus()} at the start)",
         dicomrender_series(None), (None, "auto")),
        (f"`dicomrender.render_series(jobs={cores})` (headers: forked readers where they pay; slices: threads)",
         dicomrender_series(cores), (cores, "auto")),
        (f"`dicomrender.render_series(jobs={cores}, executor=\"threads\")`", dicomrender_series(cores, "threads"),
         (cores, "threads")),
    ]
    available = []
    for name, fn, mem in cases:
        try:
            fn(folder, uid, files)  # warms the page cache and the imports; checks the method runs
        except ImportError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        available.append((name, fn, mem))
    reference = np.asarray(dicomrender.render_series(folder, "brain", series_uid=uid))
    agreement = {}
    for name, fn, _ in available[1:]:
        got = fn(folder, uid, files)
        diff = np.abs(got.astype(np.int16) - reference)
        agreement[name] = (got.shape == reference.shape, int(diff.max()), float((diff > 0).mean()))
    best = {name: math.inf for name, _, _ in available}
    cpu = {name: math.inf for name, _, _ in available}
    for _ in range(repeat):
        for name, fn, _ in available:
            start, start_cpu, start_children = time.perf_counter(), time.process_time(), _children_cpu()
            fn(folder, uid, files)
            seconds = time.perf_counter() - start
            if seconds < best[name]:
                best[name] = seconds
                cpu[name] = time.process_time() - start_cpu + _children_cpu() - start_children
    rows = []
    for name, _, mem in available:
        rows.append((name, best[name], cpu[name], agreement.get(name),
                     memory(folder, uid, *mem) if mem is not None else None))
    return rows


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def table(rows: list, slices: int, repeat: int, load: tuple) -> str:
    floor_seconds = rows[0][1]
    simpleitk_seconds = next((s for n, s, *_ in rows if n.startswith("SimpleITK")), None)
    lines = [f"Slices/s turning a folder (a {slices}-slice 512x512 12-bit CT series and a second series, shuffled "
             f"names without suffix, InstanceNumber reversed, intercept varying, gantry tilt {TILT:g} deg) into a "
             f"sorted uint8 brain-window volume; page cache warm; best of {repeat} rounds; {os.cpu_count()} cores, "
             f"{platform.machine()}, Python {platform.python_version()}, dicomrender {dicomrender.__version__}; "
             f"load average {load[0]:.1f} before, {load[1]:.1f} after.", "",
             "| method | slices/s | vs floor | vs SimpleITK | CPU ms/slice | same pixels as render_series | "
             "peak memory over the output |",
             "|---|---:|---:|---:|---:|---|---|"]
    for name, seconds, cpu, agreement, mem in rows:
        vs_sitk = f"{simpleitk_seconds / seconds:.1f}x" if simpleitk_seconds else "-"
        if agreement is None:
            same = "-"
        elif not agreement[0]:
            same = "different shape"
        else:
            same = "identical" if agreement[1] == 0 else f"max diff {agreement[1]} on {agreement[2]:.2%} of pixels"
        if mem is None:
            peak = "-"
        else:
            peak = f"{(mem['rss'] - mem['output']) / MIB:+.1f} MiB RSS, {(mem['traced'] - mem['output']) / MIB:+.1f} " \
                   f"MiB traced"
        lines.append(f"| {name} | {slices / seconds:.0f} | {floor_seconds / seconds:.2f}x | {vs_sitk} | "
                     f"{cpu / slices * 1e3:.2f} | {same} | {peak} |")
    output = SIZE * SIZE * slices / MIB
    lines.append("")
    lines.append(f"Output: {output:.0f} MiB. Peak memory, in a fresh process after a warm-up call: the resident "
                 f"high-water mark (VmHWM, reset before the call) over the resident size before it, minus the "
                 f"output; traced: tracemalloc's peak (numpy and Python allocations) minus the output. Forked "
                 f"header readers exit before the volume is allocated.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-series-"))
    try:
        uid, files = make_folder(workdir / "study", args.slices)
        before = os.getloadavg()[0]
        rows = measure(workdir / "study", uid, files, args.repeat)
        text = table(rows, args.slices, args.repeat, (before, os.getloadavg()[0]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    command = "python benchmarks/bench_series.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text += f"\nCommand: `{command.strip()}`\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
