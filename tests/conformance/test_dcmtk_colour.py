"""Colour conformance: PALETTE COLOR, RGB (8, 16 and 32 bits) and YBR images against dcmtk's dcm2pnm.

dcm2pnm writes colour images as ASCII PPM; 16- and 32-bit samples are reduced
to 8 bits by dropping the low bits, as dicomrender does.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pydicom
import pytest

import dicomrender

from . import dcmtk_support as support


def _compare(name, report):
    """render against dcm2pnm (a colour row of the report); returns the absolute difference and dcmtk's
    samples ``(frames, rows, cols, 3)``."""
    path = support.test_file(name)
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    ours = dicomrender.render(path)
    if frames == 1:
        ours = ours[None]
    theirs = support.dcm2pnm(path, (), frames)
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    difference = np.abs(ours.astype(np.int64) - theirs)
    tsyntax = getattr(ds.file_meta, "TransferSyntaxUID", None)
    report.add_colour(name, dict(photometric=str(ds.PhotometricInterpretation), bits=int(ds.BitsStored),
                                 frames=frames, tsyntax=tsyntax.name if tsyntax else "none (ACR-NEMA)",
                                 identical=100.0 * float(np.mean(difference == 0)), worst=int(difference.max())))
    return difference, theirs


@pytest.mark.parametrize("name", support.COLOUR_IDENTICAL)
def test_colour_identical_to_dcmtk(name, dcmtk, report):
    difference, _ = _compare(name, report)
    assert difference.max() == 0, f"{np.count_nonzero(difference)} samples differ, by up to {difference.max()}"


@pytest.mark.parametrize("name", support.COLOUR_YBR)
def test_ybr_close_to_dcmtk_and_exact_to_the_formula(name, dcmtk, report):
    """dcmtk's YBR tables truncate, so it may be up to 2 levels off; the exact formula must match pydicom's."""
    difference, _ = _compare(name, report)
    assert difference.max() <= 2
    path = support.test_file(name)
    raw = pydicom.pixels.pixel_array(path, raw=True)  # YBR_FULL_422 comes upsampled to YBR_FULL
    expected = pydicom.pixels.convert_color_space(raw, "YBR_FULL", "RGB")
    np.testing.assert_array_equal(dicomrender.render(path), expected)


#: Colour JPEG Baseline files (YBR_FULL_422 and YBR_FULL), decoded by dcmtk's dcmj2pnm.
JPEG_BASELINE_COLOUR = ["SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm", "examples_ybr_color.dcm",
                        "color3d_jpeg_baseline.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_dcmtk_+eb+cy+n2.dcm",
                        "SC_rgb_dcmtk_+eb+cy+s4.dcm", "SC_rgb_jpeg_dcmtk.dcm"]


@pytest.mark.parametrize("name", JPEG_BASELINE_COLOUR)
def test_jpeg_baseline_colour_identical_to_dcmj2pnm(name, dcmtk, report):
    """dcmtk, Orthanc, PixelMed and Pillow's libjpeg agree on these files; pylibjpeg-libjpeg differs by up to
    5 levels (color3d_jpeg_baseline.dcm), so render decodes colour JPEG Baseline with Pillow."""
    difference, theirs = _compare(name, report)
    path = support.test_file(name)
    # the largest difference to dcmj2pnm of each decoder pydicom offers, for the report's decoder table
    worst = {decoder: _decoder_difference(path, plugin, theirs) for decoder, plugin in DECODERS.items()}
    worst["render"] = int(difference.max())
    report.add_decoders(name, dict(photometric=str(pydicom.dcmread(path, stop_before_pixels=True)
                                                   .PhotometricInterpretation),
                                   frames=len(theirs), worst=worst))
    assert difference.max() == 0, f"{np.count_nonzero(difference)} samples differ, by up to {difference.max()}"
    # the decoder render prefers is the one that agrees: Pillow through pydicom gives the same samples
    pillow = pydicom.pixels.pixel_array(path, decoding_plugin="pillow")
    np.testing.assert_array_equal(dicomrender.render(path).reshape(pillow.shape), pillow)
    assert worst["Pillow"] == 0


#: The JPEG decoders of pydicom compared with dcmj2pnm (column of the report: pydicom's plugin name).
DECODERS = {"pylibjpeg-libjpeg": "pylibjpeg", "Pillow": "pillow"}


def _decoder_difference(path: str, plugin: str, theirs: np.ndarray) -> Optional[int]:
    """The largest difference of ``plugin``'s RGB samples to dcmtk's, or None when the plugin is not
    installed."""
    try:
        samples = pydicom.pixels.pixel_array(path, decoding_plugin=plugin)
    except (RuntimeError, ImportError) as exc:  # pydicom: "the 'pylibjpeg' plugin is unavailable..."
        if "unavailable" in str(exc) or "missing" in str(exc) or isinstance(exc, ImportError):
            return None
        raise
    return int(np.abs(samples.reshape(theirs.shape).astype(np.int64) - theirs).max())
