"""Colour conformance: PALETTE COLOR, RGB (8, 16 and 32 bits) and YBR images against dcmtk's dcm2pnm.

dcm2pnm writes colour images as ASCII PPM; 16- and 32-bit samples are reduced
to 8 bits by dropping the low bits, as dicomrender does.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import dicomrender

from . import dcmtk_support as support


def _compare(name, report):
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
    return difference


@pytest.mark.parametrize("name", support.COLOUR_IDENTICAL)
def test_colour_identical_to_dcmtk(name, dcmtk, report):
    difference = _compare(name, report)
    assert difference.max() == 0, f"{np.count_nonzero(difference)} samples differ, by up to {difference.max()}"


@pytest.mark.parametrize("name", support.COLOUR_YBR)
def test_ybr_close_to_dcmtk_and_exact_to_the_formula(name, dcmtk, report):
    """dcmtk's YBR tables truncate, so it may be up to 2 levels off; the exact formula must match pydicom's."""
    difference = _compare(name, report)
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
    difference = _compare(name, report)
    assert difference.max() == 0, f"{np.count_nonzero(difference)} samples differ, by up to {difference.max()}"
    # the decoder render prefers is the one that agrees: Pillow through pydicom gives the same samples
    path = support.test_file(name)
    pillow = pydicom.pixels.pixel_array(path, decoding_plugin="pillow")
    np.testing.assert_array_equal(dicomrender.render(path).reshape(pillow.shape), pillow)
