"""The ``dicomrender`` command line.

Subcommands: ``render`` (one file), ``demo`` (bundled sample data),
``presets`` (the preset table).  Exit status 0 on success, 1 when rendering
failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from .errors import DicomRenderError

__all__ = ["main"]

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


def default_frame(path) -> Optional[int]:
    """0 for a multi-frame file (an image file holds one frame), None otherwise."""
    from .image import read_dataset

    ds, _ = read_dataset(path, stop_before_pixels=True)
    try:
        return 0 if int(ds.get("NumberOfFrames", 1) or 1) > 1 else None
    except (TypeError, ValueError):
        return None  # render reports the bad NumberOfFrames with the file name


def _window_args(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--preset", help="preset name, or NAME,NAME,NAME for an RGB stack")
    choice.add_argument("--window", nargs=2, type=float, metavar=("C", "W"), help="window centre and width")
    parser.add_argument("--function", choices=("LINEAR", "LINEAR_EXACT", "SIGMOID"), type=str.upper,
                        help="VOI LUT function (default: the file's, else LINEAR)")
    parser.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                        help="force (--invert) or suppress (--no-invert) inversion")
    parser.add_argument("--no-strict", dest="strict", action="store_false",
                        help="allow HU presets on images without Hounsfield units")


def preset_arg(text: Optional[str]):
    """``"a,b,c"`` -> ``["a", "b", "c"]``; a single name stays a string."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names[0] if len(names) == 1 else names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dicomrender", description="Render DICOM pixel data to 8-bit images.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render", help="render one DICOM file to JPEG or PNG")
    p.add_argument("input", help="DICOM file")
    p.add_argument("output", help="output .jpg/.jpeg/.png")
    _window_args(p)
    p.add_argument("--frame", type=int, default=None, help="frame of a multi-frame image (0-based; default 0)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    p.set_defaults(handler=_cmd_render)

    p = sub.add_parser("demo", help="render pydicom's bundled sample images into a folder")
    p.add_argument("outdir", nargs="?", default="out", help="output folder (default: out)")
    p.set_defaults(handler=_cmd_demo)

    p = sub.add_parser("presets", help="list the registered presets")
    p.set_defaults(handler=_cmd_presets)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


def _add_convert(sub) -> None:
    from .convert import add_command

    add_command(sub)


#: Functions ``f(subparsers)`` adding more subcommands (batch conversion and others).
_EXTRA_COMMANDS: list = [_add_convert]


def _cmd_render(args) -> int:
    from .render import save

    frame = default_frame(args.input) if args.frame is None else args.frame
    kwargs = dict(window=args.window, function=args.function, invert=args.invert, frame=frame, strict=args.strict)
    save(args.input, args.output, preset_arg(args.preset), quality=args.quality, **kwargs)
    print(args.output)
    return 0


def _cmd_demo(args) -> int:
    from pydicom.data import get_testdata_file

    from .render import render, write_image

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


def _cmd_presets(args) -> int:
    from .plugins import ENV_VAR, plugin_infos
    from .presets import list_presets, preset_table

    print(preset_table(list_presets()))
    loaded = ", ".join(info.distribution or info.source for info in plugin_infos())
    print(f"\nplugins: {loaded}  (limit third-party plugins with {ENV_VAR}=name,name; empty: none)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except DicomRenderError as exc:
        print(f"dicomrender: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"dicomrender: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
