"""``dicomrender render IN OUT``: one DICOM file to one JPEG or PNG.

Exit status 0 written, 1 the input could not be rendered, 2 bad usage (an unknown preset or output
suffix, an invalid window or quality, a missing input): the usage is checked before the file is read.
"""

from __future__ import annotations

import os
import sys

from .._types import Window
from ..display.icc import check_iccprofile
from ..errors import DicomRenderError, InvalidArgumentError
from ..io import check_channels, image_format, is_animated
from ..presets import get_preset
from ..rendering import save
from .args import QUALITY, add_rendered_options, add_window_options, default_frame, preset_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="render one DICOM file to JPEG or PNG",
                              description="Render one DICOM file to JPEG or PNG. Exit status: 0 written, "
                                          "1 the input could not be rendered, 2 bad usage.")
    p.add_argument("input", help="DICOM file")
    p.add_argument("output", help="output .jpg/.jpeg/.png/.webp, or .gif/.webp/.apng/.mp4 for all the frames of "
                                  "a multi-frame image")
    add_window_options(p)
    p.add_argument("--frame", type=int, default=None,
                   help="frame of a multi-frame image (0-based; default 0, or all frames for an animated output)")
    p.add_argument("--quality", type=QUALITY, default=95, help="JPEG, WebP and MP4 quality 1-100 (default 95)")
    p.add_argument("--lossless", action="store_true", help="lossless WebP")
    add_rendered_options(p)
    p.add_argument("--overlays", nargs="?", const=True, default=False, type=_overlay_indices, metavar="INDICES",
                   help="burn in the overlay planes, as dcm2pnm does: all, or those of comma-separated indices "
                        "(0-15, plane (group - 0x6000) / 2), e.g. --overlays 0,2")
    p.add_argument("--pstate", default=None, metavar="PS.dcm",
                   help="apply a Grayscale Softcopy Presentation State that references the image (its VOI, "
                        "Presentation LUT, shutters, overlays, rotation / flip and displayed area)")
    p.add_argument("--annotations", action="store_true",
                   help="draw the presentation state's graphic and text annotations")
    p.add_argument("--shutters", action="store_true",
                   help="paint the image's own display shutters (CR, DX, XA, RF)")
    p.set_defaults(handler=run)


def _overlay_indices(text: str):
    """``--overlays 0,2``: the plane indices (argparse reports a ValueError as bad usage)."""
    return [int(item) for item in text.split(",") if item.strip()]


def check_usage(args):
    """The preset argument, once everything given on the command line is known to be usable.

    Raises
    ------
    DicomRenderError or FileNotFoundError
        What is wrong with the command line.
    """
    image_format(args.output)
    check_iccprofile(args.iccprofile)  # adobergb, rommrgb: not supported
    if args.annotation:
        raise InvalidArgumentError("annotation (burned-in patient / technique text) is not supported",
                                   attribute="annotation")
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder {folder!r} does not exist")
    if not os.path.exists(args.input):
        raise FileNotFoundError(f"no such file: {args.input!r}")
    if args.pstate is not None and not os.path.exists(args.pstate):
        raise FileNotFoundError(f"no such presentation state: {args.pstate!r}")
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
    frame = args.frame
    if frame is None and not is_animated(image_format(args.output)):
        frame = default_frame(args.input)
    kwargs = dict(window=args.window, function=args.function, invert=args.invert, frame=frame, strict=args.strict,
                  overlays=args.overlays, presentation_state=args.pstate, shutters=args.shutters,
                  annotations=args.annotations)
    save(args.input, args.output, preset, quality=args.quality, iccprofile=args.iccprofile, lossless=args.lossless,
         viewport=args.viewport, **kwargs)
    print(args.output)
    return 0
