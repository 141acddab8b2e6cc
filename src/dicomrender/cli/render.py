"""``dicomrender render IN OUT``: one DICOM file to one JPEG or PNG."""

from __future__ import annotations

from ..rendering import save
from .args import add_window_options, default_frame, preset_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="render one DICOM file to JPEG or PNG")
    p.add_argument("input", help="DICOM file")
    p.add_argument("output", help="output .jpg/.jpeg/.png")
    add_window_options(p)
    p.add_argument("--frame", type=int, default=None, help="frame of a multi-frame image (0-based; default 0)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    p.set_defaults(handler=run)


def run(args) -> int:
    frame = default_frame(args.input) if args.frame is None else args.frame
    kwargs = dict(window=args.window, function=args.function, invert=args.invert, frame=frame, strict=args.strict)
    save(args.input, args.output, preset_arg(args.preset), quality=args.quality, **kwargs)
    print(args.output)
    return 0
