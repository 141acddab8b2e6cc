"""Shared by the ``dicomrender serve`` tests: a folder of synthetic studies whose attributes the tests
know by construction, and a real server process on a loopback port."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
from pydicom.uid import generate_uid

from .synthetic import make_dataset, write_dataset


@dataclass
class Folder:
    """What :func:`make_folder` wrote: UIDs, paths and the slice order the tests expect."""

    root: Path
    ct_study: str
    mr_study: str
    ct_series: str
    mr_series: str
    cine_series: str
    #: SOP Instance UID -> path
    paths: Dict[str, str] = field(default_factory=dict)
    #: CT instances by position along the normal (z), lowest first
    ct_by_position: List[str] = field(default_factory=list)
    cine: str = ""
    broken: str = ""
    broken_series: str = ""


def _image(seed: int, shape=(48, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4096, size=shape, dtype=np.uint16)


def _phantom(seed: int, shape=(96, 128)) -> np.ndarray:
    """Stored values (HU + 1024) of a body-like CT slice: air, soft tissue, lungs, a bone ring, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:shape[0], :shape[1]] - np.array(shape)[:, None, None] / 2
    r = np.hypot(x / 1.25, y)
    hu = np.full(shape, -1000.0)
    hu[r < 42] = 40.0
    hu[(r > 36) & (r < 40)] = 700.0
    for side in (-1, 1):
        hu[np.hypot(x - side * (20 + seed), y + 3) < 14] = -820.0
    hu += rng.normal(0, 20, shape)
    return np.clip(np.round(hu + 1024), 0, 4095).astype(np.uint16)


def make_folder(root: Path) -> Folder:
    """Two studies (a 5-slice CT, P1, 2020-03-15; an MR and a 6-frame cine, P2, 2021-10-01), a broken
    file, a text file and a symlink to a file outside the tree."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ct").mkdir()
    (root / "mr" / "deeper").mkdir(parents=True)
    f = Folder(root, generate_uid(), generate_uid(), generate_uid(), generate_uid(), generate_uid())
    # InstanceNumber runs against the position: slice order must come from ImagePositionPatient
    z_values = [30.0, -10.0, 50.0, 10.0, -30.0]
    for k, z in enumerate(z_values):
        ds = make_dataset(_phantom(k), bits_stored=12, RescaleIntercept=-1024, RescaleSlope=1,
                          WindowCenter=40, WindowWidth=400, PatientID="P1", PatientName="Doe^Jane",
                          StudyDate="20200315", StudyTime="101500", StudyInstanceUID=f.ct_study,
                          SeriesInstanceUID=f.ct_series, SeriesNumber=1, InstanceNumber=k + 1,
                          StudyDescription="CT HEAD", ImagePositionPatient=[0.0, 0.0, z],
                          ImageOrientationPatient=[1, 0, 0, 0, 1, 0], AccessionNumber="A100")
        f.paths[ds.SOPInstanceUID] = write_dataset(ds, root / "ct" / f"slice{k}.dcm")
    f.ct_by_position = [uid for _, uid in sorted(zip(z_values, list(f.paths)))]
    for k in range(3):
        ds = make_dataset(_image(10 + k, (40, 40)), bits_stored=12, modality="MR", PatientID="P2",
                          PatientName="Roe^Richard", StudyDate="20211001", StudyInstanceUID=f.mr_study,
                          SeriesInstanceUID=f.mr_series, SeriesNumber=3, InstanceNumber=k + 1)
        f.paths[ds.SOPInstanceUID] = write_dataset(ds, root / "mr" / "deeper" / f"mr{k}")
    frames = np.stack([_image(20 + k, (32, 32)) for k in range(6)])
    ds = make_dataset(frames, bits_stored=12, modality="XA", PatientID="P2", PatientName="Roe^Richard",
                      StudyDate="20211001", StudyInstanceUID=f.mr_study, SeriesInstanceUID=f.cine_series,
                      SeriesNumber=4, InstanceNumber=1, FrameTime=40.0)
    f.cine = ds.SOPInstanceUID
    f.paths[f.cine] = write_dataset(ds, root / "mr" / "cine.dcm")
    # DICOM with a sound header but Pixel Data shorter than Rows x Columns needs: indexed, renders to 422
    ds = make_dataset(_image(30, (40, 40)), modality="MR", PatientID="P2", StudyDate="20211001",
                      StudyInstanceUID=f.mr_study, SeriesInstanceUID=generate_uid(), SeriesNumber=9)
    ds.PixelData = ds.PixelData[:100]
    f.broken, f.broken_series = ds.SOPInstanceUID, ds.SeriesInstanceUID
    f.paths[f.broken] = write_dataset(ds, root / "mr" / "broken.dcm")
    (root / "notes.txt").write_text("not DICOM")
    outside = root.parent / f"{root.name}-outside.dcm"
    other = make_dataset(_image(40), PatientID="OUTSIDE", StudyInstanceUID=generate_uid(),
                         SeriesInstanceUID=generate_uid())
    write_dataset(other, outside)
    os.symlink(outside, root / "link.dcm")
    return f


def decode(data: bytes) -> np.ndarray:
    """The pixels of a PNG or JPEG (grey or RGB) as Pillow decodes them."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(folder: Path, cache: Path, timeout: float = 60.0) -> Iterator[str]:
    """``dicomrender serve folder`` in a child process on a free loopback port; yields its base URL and
    kills it (and waits for it) on exit, whatever happened."""
    import httpx

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "dicomrender.cli", "serve", str(folder), "--port", str(port),
                                "--cache-dir", str(cache), "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                raise RuntimeError(f"dicomrender serve exited with {process.returncode}: {output}")
            try:
                if httpx.get(url + "/dicomweb/studies", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dicomrender serve did not answer on {url} within {timeout} s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
