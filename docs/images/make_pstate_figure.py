"""Make docs/images/pstate_vs_dcmtk.png: one presentation state rendered by dcmtk's dcmp2pgm and by dicomrender.

The state is made by ``dcmpsmk`` from pydicom's MR_small.dcm, then given a window, a 90 degree rotation with
a flip, a bitmap shutter (an overlay plane of the state), and a graphic annotation (a circle and a line).
Panels: ``dcmp2pgm -p``, ``render(presentation_state=)``, and ``render(..., annotations=True)``, each scaled
up 4x with nearest-neighbour sampling.  Needs dcmtk (dcmpsmk, dcmp2pgm).

    python docs/images/make_pstate_figure.py
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np
import pydicom
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import dicomrender

HERE = os.path.dirname(os.path.abspath(__file__))


def make_state(image: str, folder: str) -> str:
    path = os.path.join(folder, "ps.dcm")
    subprocess.run(["dcmpsmk", image, path], check=True, capture_output=True)
    state = pydicom.dcmread(path)
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = "700", "1400"
    state.SoftcopyVOILUTSequence = Sequence([voi])
    state.ImageRotation, state.ImageHorizontalFlip = 90, "Y"
    rows, columns = np.mgrid[1:65, 1:65]
    covered = (rows - 32) ** 2 + (columns - 30) ** 2 > 28 ** 2  # a round bitmap shutter
    packed = np.packbits(covered.astype(np.uint8).ravel(), bitorder="little").tobytes()
    for element, vr, value in ((0x0010, "US", 64), (0x0011, "US", 64), (0x0040, "CS", "G"), (0x0050, "SS", [1, 1]),
                               (0x0100, "US", 1), (0x0102, "US", 0), (0x3000, "OW", packed)):
        state.add_new(0x6000 << 16 | element, vr, value)
    state.ShutterShape, state.ShutterOverlayGroup, state.ShutterPresentationValue = "BITMAP", 0x6000, 16384
    circle, line, item, layer = Dataset(), Dataset(), Dataset(), Dataset()
    for graphic, kind, points in ((circle, "CIRCLE", [40.0, 24.0, 48.0, 24.0]), (line, "POLYLINE",
                                                                                 [8.0, 56.0, 30.0, 40.0])):
        graphic.GraphicAnnotationUnits, graphic.GraphicDimensions = "PIXEL", 2
        graphic.NumberOfGraphicPoints, graphic.GraphicData = 2, points
        graphic.GraphicType, graphic.GraphicFilled = kind, "N"
    item.GraphicLayer, item.GraphicObjectSequence = "NOTES", Sequence([circle, line])
    state.GraphicAnnotationSequence = Sequence([item])
    layer.GraphicLayer, layer.GraphicLayerOrder, layer.GraphicLayerRecommendedDisplayGrayscaleValue = "NOTES", 1, 65535
    state.GraphicLayerSequence = Sequence([layer])
    state.save_as(path)
    return path


def read_pgm(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        data = f.read()
    _, width, height, _, _ = data.split(None, 4)
    w, h = int(width), int(height)
    return np.frombuffer(data[-w * h:], dtype=np.uint8).reshape(h, w)


def main() -> None:
    image = get_testdata_file("MR_small.dcm")
    with tempfile.TemporaryDirectory() as folder:
        state = make_state(image, folder)
        out = os.path.join(folder, "dcmtk.pgm")
        subprocess.run(["dcmp2pgm", "-p", state, image, out], check=True, capture_output=True)
        panels = [("dcmp2pgm -p", read_pgm(out)),
                  ("render(presentation_state=)", dicomrender.render(image, presentation_state=state)),
                  ("... annotations=True", dicomrender.render(image, presentation_state=state, annotations=True))]
    scale, gap, caption = 4, 12, 18
    size = 64 * scale
    figure = Image.new("L", (len(panels) * (size + gap) - gap, size + caption), 255)
    pen = ImageDraw.Draw(figure)
    for i, (title, pixels) in enumerate(panels):
        figure.paste(Image.fromarray(pixels).resize((size, size), Image.NEAREST), (i * (size + gap), caption))
        pen.text((i * (size + gap) + 2, 3), title, fill=0)
    figure.save(os.path.join(HERE, "pstate_vs_dcmtk.png"), optimize=True)


if __name__ == "__main__":
    main()
