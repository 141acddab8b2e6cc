"""Pixel-exact conformance of ``dicomrender.render`` with dcmtk's dcm2pnm.

For every grayscale test file: the header windows (``+Wi n``), explicit
windows chosen from the data (narrow, wide with a half-integer centre, width
1, far above and far below the data), min-max (``+Wm``, over all frames and
per frame), and the VOI LUTs (``+Wl n``), on every frame.  The acceptance
rule is in :mod:`dcmtk_support`.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pydicom
import pytest

import dicomrender
from dicomrender import errors
from dicomrender._types import ModalityLut, Window
from dicomrender.dicom.header import ImageInfo
from dicomrender.dicom.pixels import read_frames

from . import dcmtk_support as support


def _needs_copy(name: str, tsyntax) -> bool:
    return name in support.DECODED_COPY or "2000" in pydicom.uid.UID(tsyntax).name


class FileCase:
    """One test file: its pixel description, stored values and the dcmtk model of its modality values."""

    def __init__(self, name: str):
        self.name = name
        self.path = support.test_file(name)
        self.ds = pydicom.dcmread(self.path)
        self.info = ImageInfo.from_dataset(self.ds, self.path)
        tsyntax = self.ds.file_meta.TransferSyntaxUID
        self.tsyntax = tsyntax.name
        self.copy = _needs_copy(name, tsyntax)
        self.dcmtk_path = support.decoded_copy(self.path) if self.copy else self.path
        self.frames = self.info.frames
        self.stored = self.info.format.stored(read_frames(self.info, list(range(self.frames))).words)
        self.params = [self.info.frame_parameters(i) for i in range(self.frames)]
        first = self.params[0].modality
        self.integer_modality = isinstance(first, ModalityLut) or first.is_integer
        self.modality = [support.exact_modality(self.info, i, truncate=not self.integer_modality)
                         for i in range(self.frames)]
        self.invert = self.info.inverse
        self.same_parameters = all(p.key() == self.params[0].key() for p in self.params)
        fmt = self.info.format
        self.summary = dict(photometric=self.info.photometric,
                            bits=f"{1 if self.info.packed_bits else fmt.bits_allocated}/{fmt.bits_stored}/"
                                 f"{'yes' if fmt.signed else 'no'}",
                            frames=self.frames, tsyntax=self.tsyntax, note="")
        if self.copy:
            self.summary["note"] = "dcmtk read a pydicom-decoded copy"
        if not self.integer_modality:
            self.summary["note"] = (self.summary["note"] + "; " if self.summary["note"] else "") + \
                "non-integer rescale: dcmtk truncates m"

        self._unique = {}

    @property
    def big(self) -> bool:
        return self.info.rows * self.info.columns > support.BIG

    def unique(self, frame: int) -> tuple:
        """``np.unique(stored, return_inverse=True)`` of ``frame``, computed once."""
        if frame not in self._unique:
            self._unique[frame] = np.unique(self.stored[frame], return_inverse=True)
        return self._unique[frame]

    def model_values(self, frame: int) -> np.ndarray:
        """dcmtk's modality values of the stored values of ``frame`` (float64, exact for these data)."""
        return self.modality[frame].float_values(self.unique(frame)[0])

    def dcmtk(self, args, frame=None) -> np.ndarray:
        return support.dcm2pnm(self.dcmtk_path, tuple(args), self.frames, frame)


def _run(case: FileCase, label, args, render_kwargs, voi, float_voi, comparisons, frames=None):
    """One dcm2pnm run over ``frames`` (None: all, with +Fa) compared with one render call."""
    comparison = support.Comparison(case.name, label, case.frames if frames is None else 1)
    if frames is None:
        dcmtk = case.dcmtk(args)
        ours = dicomrender.render(case.path, **render_kwargs)
        if case.frames == 1:
            ours = ours[None]
        indices = range(case.frames)
    else:
        dcmtk = case.dcmtk(args, frame=frames + 1)
        ours = dicomrender.render(case.path, frame=frames, **render_kwargs)[None]
        indices = [frames]
    for position, index in enumerate(indices):
        support.compare(comparison, dcmtk[position], ours[position], case.stored[index], case.modality[index],
                        voi, float_voi, case.invert, case.unique(index))
    comparisons.append(comparison)
    return ours


def _minmax(case: FileCase, frames) -> tuple:
    """dcmtk's +Wm window over ``frames``: (min + max + 1) / 2 and max - min + 1 of its modality values,
    Pixel Padding included (dcmtk does not exclude it)."""
    values = np.concatenate([case.model_values(i) for i in frames])
    low, high = float(values.min()), float(values.max())
    return (low + high + 1) / 2, high - low + 1


def _padding_in(case: FileCase, frames) -> bool:
    padding = case.info.pixel_padding
    if padding is None:
        return False
    return any(((case.stored[i] >= padding[0]) & (case.stored[i] <= padding[1])).any() for i in frames)


def _check_auto(case: FileCase, frames, rendered, comparisons, frame=None):
    """render(preset="auto") must equal dcmtk's +Wm window where dcmtk's min-max is ours:
    an integer rescale and no Pixel Padding Value present in the frames."""
    if not case.integer_modality or _padding_in(case, frames):
        return
    auto = dicomrender.render(case.path, "auto", frame=frame)
    if frame is None and case.frames == 1 or frame is not None:
        auto = auto[None]
    if not np.array_equal(auto, rendered):
        comparisons[-1].failures.append(f"{comparisons[-1].label}: preset 'auto' differs from dcmtk's min-max")


@pytest.mark.parametrize("name", support.all_files())
def test_dcmtk_conformance(name, dcmtk, report):
    case = FileCase(name)
    comparisons = []
    all_frames = list(range(case.frames))
    # (a) header windows; (d) VOI LUTs
    if case.same_parameters:
        params = case.params[0]
        top_level = "WindowCenter" in case.ds
        for k, header in enumerate(params.windows[:3]):
            window = header.to_window()
            if window.function != "LINEAR":
                continue
            args = ("+Wi", str(k + 1)) if top_level else ("+Ww", str(header.center), str(header.width))
            exact = support.ExactWindow(support.exact(header.center), support.exact(header.width))
            _run(case, f"+Wi {k + 1}" if top_level else f"header {header.center}/{header.width}", args,
                 dict(preset="header", voi_index=k), exact, window, comparisons)
        if not params.windows:
            for k, lut in enumerate(params.voi_luts[:3]):
                exact = support.ExactVOILut(np.asarray(lut.data), int(lut.first_mapped), int(lut.bits))
                _run(case, f"+Wl {k + 1}", ("+Wl", str(k + 1)), dict(preset="header", voi_index=k), exact, lut,
                     comparisons)
    # (b) explicit windows from the data range
    values = np.concatenate([case.model_values(i) for i in all_frames])
    fewer = case.big and case.ds.file_meta.TransferSyntaxUID.is_compressed
    windows = support.explicit_windows(float(values.min()), float(values.max()), case.big, fewer)
    if case.info.modality_name == "CT" and not fewer:
        # clinical windows; 40.5/101 puts many Hounsfield values on exact-integer display values
        windows += [("brain", "40", "80"), ("half-integer", "40.5", "101")]
    for label, c, w in windows:
        exact = support.ExactWindow(support.exact(c), support.exact(w))
        _run(case, f"{label} {c}/{w}", ("+Ww", c, w), dict(window=(c, w)), exact, Window(c, w), comparisons)
    # (c) min-max over all frames, then (e) per frame
    center, width = _minmax(case, all_frames)
    exact = support.ExactWindow(support.exact(center), support.exact(width))
    rendered = _run(case, "+Wm", ("+Wm",), dict(window=(center, width)), exact, Window(center, width),
                    comparisons)
    _check_auto(case, all_frames, rendered, comparisons)
    if case.frames > 1:
        for index in all_frames:
            center, width = _minmax(case, [index])
            exact = support.ExactWindow(support.exact(center), support.exact(width))
            rendered = _run(case, f"+Wm +F {index + 1}", ("+Wm",), dict(window=(center, width)), exact,
                            Window(center, width), comparisons, frames=index)
            _check_auto(case, [index], rendered, comparisons, frame=index)
    if _padding_in(case, all_frames):
        case.summary["note"] = (case.summary["note"] + "; " if case.summary["note"] else "") + \
            "+Wm includes Pixel Padding (preset 'auto' excludes it)"
    report.add(name, case.summary, comparisons)
    failures = [f for c in comparisons for f in c.failures]
    assert not failures, "\n".join(failures)
    assert sum(c.pixels for c in comparisons) > 0


@pytest.mark.parametrize("name", sorted(support.EXCLUDED))
def test_excluded_files_fail_cleanly(name):
    """Every excluded file raises a dicomrender error that names an attribute, never anything else."""
    try:
        path = support.test_file(name)
    except FileNotFoundError:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"{name} is not installed")
    with pytest.raises(errors.DicomRenderError) as info:
        dicomrender.render(path, window=(100, 200))
    assert info.value.attribute, str(info.value)
    assert name in str(info.value)


@pytest.mark.parametrize("name,twin", sorted(support.LOSSLESS_TWINS.items()))
def test_lossless_twins_render_identically(name, twin, dcmtk):
    """A losslessly compressed (or big-endian) file renders exactly as its uncompressed twin."""
    a = dicomrender.render(support.test_file(name), "auto")
    b = dicomrender.render(support.test_file(twin), "auto")
    assert a.shape == b.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_lossy_jpeg_decoders_agree_closely(dcmtk, tmp_path):
    """JPGExtended.dcm goes to dcm2pnm as a pydicom-decoded copy because the two 12-bit lossy JPEG decoders
    differ slightly; this measures by how much (at most 1 stored level, on under 2 % of pixels)."""
    path = support.test_file("JPGExtended.dcm")
    out = tmp_path / "decoded.dcm"
    subprocess.run(["dcmdjpeg", path, str(out)], check=True, capture_output=True)
    by_dcmtk = pydicom.dcmread(out).pixel_array.astype(np.int64)
    by_pydicom = pydicom.dcmread(path).pixel_array.astype(np.int64)
    difference = np.abs(by_dcmtk - by_pydicom)
    assert difference.max() <= 1
    assert 0 < np.mean(difference > 0) < 0.02
