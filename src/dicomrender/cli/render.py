"""``dicomrender render IN OUT``: one DICOM file to one JPEG or PNG.

Exit status 0 written, 1 the input could not be rendered, 2 bad usage (an unknown preset or output
suffix, an invalid window or quality, a missing input): the usage is checked before the file is read.
"""

from __future__ import annotations

import os
import sys

from .._types import Window
from ..errors import DicomRenderError
from ..io import check_channels, image_format
from ..presets import get_preset
from ..rendering import save
from .args import QUALITY, add_window_options, default_frame, preset_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="render one DICOM file to JPEG or PNG",
                              description="Render one DICOM file to JPEG or PNG. Exit status: 0 written, "
                                          "1 the input could not be rendered, 2 bad usage.")
    p.add_argument("input", help="DICOM file")
    p.add_argument("output", help="output .jpg/.jpeg/.png")
    add_window_options(p)
    p.add_argument("--frame", type=int, default=None, help="frame of a multi-frame image (0-based; default 0)")
    p.add_argument("--quality", type=QUALITY, default=95, help="JPEG quality 1-100 (default 95)")
    p.set_defaults(handler=run)


def check_usage(args):
    """The preset argument, once everything given on the command line is known to be usable.

    Raises
    ------
    DicomRenderError or FileNotFoundError
        What is wrong with the command line.
    """
    image_format(args.output)
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder {folder!r} does not exist")
    if not os.path.exists(args.input):
        raise FileNotFoundError(f"no such file: {args.input!r}")
    if args.window is not None:
        Window(*args.window)  # InvalidWindowError: NaN, infinite, width below 1
    preset = preset_arg(args.preset)
    if preset is not None:
        names = [preset] if isinstance(preset, str) else preset
        check_channels(len(names))
        for name in names:
            get_preset(name)  # UnknownPresetError, naming the closest ones
    return preset


def run(args) -> int:
    try:
        preset = check_usage(args)
    except (DicomRenderError, FileNotFoundError) as exc:
        print(f"dicomrender render: error: {exc}", file=sys.stderr)
        return 2
    frame = default_frame(args.input) if args.frame is None else args.frame
    kwargs = dict(window=args.window, function=args.function, invert=args.invert, frame=frame, strict=args.strict)
    save(args.input, args.output, preset, quality=args.quality, **kwargs)
    print(args.output)
    return 0
