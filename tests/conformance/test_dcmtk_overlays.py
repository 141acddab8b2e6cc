"""Overlay planes against dcmtk: ``render(..., overlays=True)`` and ``dcm2pnm --write-8-bit-pnm`` with its
default overlay display (``+O 0``: every plane; Graphic planes in mode "Replace" with foreground density 1,
ROI planes in mode "Region of Interest").

Each case runs dcm2pnm twice, with overlays and without (``-O``).  The render without overlays is judged
by the acceptance rule (:func:`dcmtk_support.compare`: identical except where dcmtk is 1 lower at an
exact-integer y'); the render with overlays must then equal dcmtk's with overlays everywhere, except at
those same pixels, where dcmtk's may again be 1 lower (the overlay step carries the difference: 32 >> 4
= 2 but 31 >> 4 = 1).  Every case must change pixels, in both.
"""

from __future__ import annotations

import os
import subprocess
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import pydicom
import pytest

import dicomrender
from dicomrender._types import Window
from dicomrender.dicom.header import ImageInfo
from dicomrender.dicom.overlays import overlay_planes
from dicomrender.dicom.pixels import read_frames

from ..overlay_data import add_embedded, add_overlay, ramp
from ..synthetic import make_dataset
from . import dcmtk_support as support

ROWS, COLS = 48, 64


def _mark(rows: int = 12, cols: int = 17, seed: int = 3) -> np.ndarray:
    """A plane with lines, a filled block and noise: odd sizes, so rows start mid-byte."""
    rng = np.random.default_rng(seed)
    mask = rng.random((rows, cols)) < 0.2
    mask[0, :] = mask[:, 0] = True
    mask[rows // 3:rows // 2, cols // 3:cols // 2] = True
    return mask


def _base(frames: Optional[int] = None, photometric: str = "MONOCHROME2"):
    return make_dataset(ramp(ROWS, COLS, 3, frames), bits_stored=12, photometric=photometric)


def _graphic():
    return add_overlay(_base(), _mark(), origin=(5, 9))


def _roi():
    return add_overlay(_base(), _mark(15, 21, 4), origin=(20, 30), kind="R")


def _negative_origin():
    return add_overlay(_base(), _mark(), origin=(-3, -7))


def _outside():
    ds = add_overlay(_base(), _mark(), origin=(ROWS - 4, COLS - 6))
    return add_overlay(ds, _mark(seed=5), group=0x6002, origin=(ROWS + 5, 3))  # entirely below the image


def _two_planes_monochrome1():
    ds = add_overlay(_base(photometric="MONOCHROME1"), _mark(), origin=(2, 2))
    return add_overlay(ds, _mark(16, 20, 6), group=0x601E, origin=(25, 35), kind="R")


def _embedded():
    ds = _base()
    words = np.frombuffer(ds.PixelData, dtype="<u2").reshape(ROWS, COLS).copy()
    words[_embedded_bits()] |= 0x8000
    ds.PixelData = words.tobytes()
    return add_embedded(ds, bit=15)


def _embedded_bits() -> np.ndarray:
    bits = np.zeros((ROWS, COLS), dtype=bool)
    bits[3:9, 5:40] = True
    bits[::7, ::3] = True
    return bits


def _multi_frame():
    masks = np.stack([_mark(seed=s) for s in (7, 8)])
    return add_overlay(_base(frames=5), masks, origin=(6, 6), frames=2, frame_origin=3)


def _single_plane_multi_frame():
    return add_overlay(_base(frames=3), _mark(), origin=(10, 20), kind="R")


def _big_endian(path: str) -> None:
    ds = _graphic()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    ds.PixelData = np.frombuffer(ds.PixelData, dtype="<u2").astype(">u2").tobytes()
    ds[0x60003000].value = np.frombuffer(ds[0x60003000].value, dtype="<u2").astype(">u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


#: label -> (data set maker, window)
SYNTHETIC: Dict[str, Tuple[Callable, Tuple[str, str]]] = {
    "graphic plane": (_graphic, ("1500", "3000")),
    "ROI plane": (_roi, ("1500", "3000")),
    "negative origin (clipped)": (_negative_origin, ("1500.5", "2001")),
    "origin partly / wholly outside": (_outside, ("1500", "3000")),
    "MONOCHROME1, graphic + ROI plane 15": (_two_planes_monochrome1, ("1000", "1999")),
    "embedded in bit 15 of 12-bit data": (_embedded, ("1500", "3000")),
    "multi-frame plane, Image Frame Origin 3": (_multi_frame, ("1500", "3000")),
    "single-frame ROI plane on 3 frames": (_single_plane_multi_frame, ("1500", "3000")),
    "Explicit VR Big Endian (OW swapped)": (_big_endian, ("1500", "3000")),
}

#: pydicom-data files with overlays, and the window compared.
FILES = {"examples_overlay.dcm": ("500", "1000"), "MR-SIEMENS-DICOM-WithOverlays.dcm": ("600", "1200")}


def _dcm2pnm_overlays(path: str, args: Tuple[str, ...], frames: int) -> np.ndarray:
    """dcm2pnm's 8-bit output ``(frames, rows, cols)`` with its default overlay display."""
    out = os.path.join(support.workdir(), f"ovl{next(support._COUNTER)}.pnm")
    cmd = ["dcm2pnm", "--write-8-bit-pnm", *args, *(["+Fa"] if frames > 1 else []), path, out]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise support.DcmtkError(f"{' '.join(cmd)} failed ({run.returncode}): {run.stderr.strip()[-500:]}")
    names = [f"{out}.{i}.pgm" for i in range(frames)] if frames > 1 else [out]
    images = np.stack([support.read_pgm(n) for n in names])
    for n in names:
        os.unlink(n)
    return images


def _judge(name: str, label: str, path: str, window: Tuple[str, str]) -> dict:
    ds = pydicom.dcmread(path)
    info = ImageInfo.from_dataset(ds, path)
    frames = info.frames
    args = ("+Ww", *window)
    stored = info.format.stored(read_frames(info, list(range(frames))).words)
    plain_theirs = support.dcm2pnm(path, args, frames)
    theirs = _dcm2pnm_overlays(path, args, frames)
    plain_ours = dicomrender.render(path, window=window).reshape(theirs.shape)
    ours = dicomrender.render(path, window=window, overlays=True).reshape(theirs.shape)
    comparison = support.Comparison(name, label, frames)
    support.compare(comparison, plain_theirs, plain_ours, stored, support.exact_modality(info, 0, truncate=False),
                    support.ExactWindow(support.exact(window[0]), support.exact(window[1])), Window(*window),
                    info.inverse)
    failures = list(comparison.failures)
    lower = plain_theirs != plain_ours  # the exact-integer points compare() accepted
    difference = theirs.astype(np.int64) - ours
    bad = (difference != 0) & ~(lower & (difference == -1))
    if bad.any():
        failures.append(f"{label}: dcmtk's overlay render differs from render on {int(bad.sum())} pixels "
                        f"(by up to {int(np.abs(difference[bad]).max())})")
    changed_ours, changed_theirs = int(np.count_nonzero(ours != plain_ours)), int(np.count_nonzero(theirs != plain_theirs))
    if not changed_ours or not changed_theirs:
        failures.append(f"{label}: the overlays changed no pixel (render {changed_ours}, dcmtk {changed_theirs})")
    planes = overlay_planes(ds, path)
    return dict(planes=", ".join(f"{p.index}: {'ROI' if p.roi else 'graphic'}{' embedded' if p.embedded else ''} "
                                 f"{p.rows}x{p.columns} at {p.origin[0]}\\{p.origin[1]}"
                                 f"{f', {p.frames} frames from {p.frame_origin}' if p.multi_frame else ''}"
                                 for p in planes),
                photometric=info.photometric, frames=frames, window=" ".join(args), pixels=int(ours.size),
                changed=changed_ours, identical=100.0 * float(np.mean(difference == 0)),
                lower=int(np.count_nonzero(difference == -1)), failures=failures)


@pytest.mark.parametrize("label", list(SYNTHETIC))
def test_synthetic_overlays_match_dcmtk(label, dcmtk, tmp_path, report):
    make, window = SYNTHETIC[label]
    path = str(tmp_path / "overlay.dcm")
    if label.startswith("Explicit VR Big Endian"):
        make(path)
    else:
        make().save_as(path, enforce_file_format=True)
    row = _judge(label, label, path, window)
    report.add_overlay(f"synthetic: {label}", row)
    assert not row["failures"], row["failures"]


@pytest.mark.parametrize("name", list(FILES))
def test_test_file_overlays_match_dcmtk(name, dcmtk, report):
    row = _judge(name, name, support.test_file(name), FILES[name])
    report.add_overlay(name, row)
    assert not row["failures"], row["failures"]


def test_dcmtk_reads_embedded_planes_of_frame_1_for_every_frame(dcmtk, tmp_path, report):
    """A documented deviation.  An embedded plane without Number of Frames in Overlay in a multi-frame
    image: dcmtk 3.6.7 burns the bits of the first frame's words into every frame (its plane is a
    single-frame one, CP-1974); render reads each frame's own words, where each frame's bits are."""
    pixels = ramp(ROWS, COLS, 3, 3)
    bits = np.zeros(pixels.shape, dtype=bool)
    bits[0, 2:6, 3:9] = True
    bits[2, 0:2, :] = True
    words = pixels.copy()
    words[bits] |= 0x8000
    path = str(tmp_path / "embedded_frames.dcm")
    add_embedded(make_dataset(words, bits_stored=12), bit=15).save_as(path, enforce_file_format=True)
    window = ("1500", "3000")
    plain = support.dcm2pnm(path, ("+Ww", *window), 3)
    theirs = _dcm2pnm_overlays(path, ("+Ww", *window), 3)
    ours = dicomrender.render(path, window=window, overlays=True)
    plain_ours = dicomrender.render(path, window=window)
    for frame in range(3):
        assert np.array_equal(theirs[frame] != plain[frame], bits[0] & (plain[frame] != 255))
        assert np.array_equal(ours[frame] != plain_ours[frame], bits[frame] & (plain_ours[frame] != 255))
        assert (ours[frame][bits[frame]] == 255).all() and (theirs[frame][bits[0]] == 255).all()
    report.add_overlay("synthetic: embedded plane, 3 frames (deviation)", dict(
        planes="0: graphic embedded", photometric="MONOCHROME2", frames=3, window="+Ww " + " ".join(window),
        pixels=int(ours.size), changed=int(np.count_nonzero(bits)),
        identical=100.0 * float(np.mean(ours == theirs)), lower=0, failures=[],
        note="dcmtk burns frame 1's embedded bits into every frame; render each frame's own"))


def test_dcmtk_ignores_overlays_of_colour_images(dcmtk, tmp_path, report):
    """A documented deviation: dcm2pnm draws no overlay on a colour image; render burns it white in R, G, B."""
    rgb = np.zeros((ROWS, COLS, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 50, 7
    ds = make_dataset(rgb[..., 0], modality="OT")
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = rgb.tobytes()
    add_overlay(ds, _mark(), origin=(5, 9))
    path = str(tmp_path / "rgb.dcm")
    ds.save_as(path, enforce_file_format=True)
    theirs = _dcm2pnm_overlays(path, (), 1)[0]
    np.testing.assert_array_equal(theirs, rgb)
    ours = dicomrender.render(path, overlays=True)
    mask = np.zeros((ROWS, COLS), dtype=bool)
    mask[4:16, 8:25] = _mark()
    expected = rgb.copy()
    expected[mask] = 255
    np.testing.assert_array_equal(ours, expected)
    report.add_overlay("synthetic: RGB image (deviation)", dict(
        planes="0: graphic 12x17 at 5\\9", photometric="RGB", frames=1, window="(none)", pixels=int(ours.size),
        changed=int(np.count_nonzero(mask)) * 3, identical=100.0 * float(np.mean(ours == theirs)), lower=0,
        failures=[], note="dcmtk draws no overlay on colour images; render burns white in every channel"))
