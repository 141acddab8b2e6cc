"""``dicomrender demo [OUTDIR]``: pydicom's bundled sample images, rendered into a folder."""

from __future__ import annotations

import os

from ..io import write_image
from ..rendering import render
from .args import default_frame

#: pydicom's bundled samples rendered by ``dicomrender demo``: (file, preset, output name).
#: Only files that ship inside the pydicom package, so the demo needs no download.
DEMO_FILES = (
    ("CT_small.dcm", "header", "ct_small_header.jpg"),
    ("CT_small.dcm", "auto", "ct_small_minmax.jpg"),
    ("MR_small.dcm", "header", "mr_small_header.jpg"),
    ("examples_overlay.dcm", "header", "mr_overlay_header.jpg"),
    ("examples_palette.dcm", "header", "us_palette.jpg"),
    ("rtdose.dcm", "auto", "rtdose_frame0.png"),
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="render pydicom's bundled sample images into a folder")
    p.add_argument("outdir", nargs="?", default="out", help="output folder (default: out)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from pydicom.data import get_testdata_file

    os.makedirs(args.outdir, exist_ok=True)
    for name, preset, output in DEMO_FILES:
        path = get_testdata_file(name, download=False)
        if path is None:
            raise FileNotFoundError(f"pydicom's bundled sample {name} is missing; reinstall pydicom")
        pixels = render(path, preset, frame=default_frame(path))
        target = os.path.join(args.outdir, output)
        write_image(pixels, target)
        print(f"{name:22s} preset={preset:8s} -> {target} ({pixels.shape[1]}x{pixels.shape[0]})")
    return 0
