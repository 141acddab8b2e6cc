"""Make docs/images/overlay_vs_dcmtk.png: an image with an overlay plane rendered by dicomrender
(``render(..., overlays=True)``) beside dcmtk's ``dcm2pnm +on`` (8-bit PNG) with the same window.

    python docs/images/make_overlay_figure.py   # needs pydicom-data, dcmtk and Pillow
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file

import dicomrender

NAME = "MR-SIEMENS-DICOM-WithOverlays.dcm"
WINDOW = ("600", "1200")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "overlay_vs_dcmtk.png")


def dcm2pnm(path: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out.pgm")
        subprocess.run(["dcm2pnm", "--write-8-bit-pnm", "+on", "+Ww", *WINDOW, path, out], check=True)
        return np.asarray(Image.open(out))


def main() -> None:
    path = get_testdata_file(NAME, read=False)
    ours = dicomrender.render(path, window=WINDOW, overlays=True)
    theirs = dcm2pnm(path)
    rows, cols = ours.shape
    label = 22
    canvas = Image.new("L", (2 * cols + 10, rows + label), 0)
    canvas.paste(Image.fromarray(ours), (0, label))
    canvas.paste(Image.fromarray(theirs), (cols + 10, label))
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 5), "dicomrender: render(..., overlays=True)", fill=255)
    draw.text((cols + 16, 5), "dcmtk: dcm2pnm +Ww 600 1200", fill=255)
    canvas.save(OUT, optimize=True)
    print(f"{OUT}: {int(np.count_nonzero(ours != theirs))} of {ours.size} pixels differ")


if __name__ == "__main__":
    main()
