"""Arguments shared by subcommands: the window choice, presets given as ``a,b,c``, the default frame."""

from __future__ import annotations

import argparse
import math
from typing import Callable, Optional

from ..dicom.header import frame_count
from ..dicom.source import read_dataset
from ..display.icc import ICC_PROFILE_VALUES
from ..display.viewport import parse_viewport
from ..errors import InvalidArgumentError, InvalidDatasetError

__all__ = ["add_window_choice", "add_strict", "add_window_options", "preset_arg", "default_frame", "int_in",
           "QUALITY", "COMPRESS_LEVEL", "positive_seconds", "add_rendered_options"]


def add_window_choice(parser: argparse.ArgumentParser, preset_help: str) -> None:
    """``--preset`` or ``--window C W``, not both."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--preset", help=preset_help)
    choice.add_argument("--window", nargs=2, type=float, metavar=("C", "W"), help="window centre and width")


def add_strict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-strict", dest="strict", action="store_false",
                        help="allow HU presets on images without Hounsfield units")


def add_window_options(parser: argparse.ArgumentParser) -> None:
    """Everything :func:`dicomrender.render` takes about the window: preset or window, function, inversion."""
    add_window_choice(parser, "preset name, or NAME,NAME,NAME for an RGB stack")
    parser.add_argument("--function", choices=("LINEAR", "LINEAR_EXACT", "SIGMOID"), type=str.upper,
                        help="VOI LUT function (default: the file's, else LINEAR)")
    parser.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                        help="force (--invert) or suppress (--no-invert) inversion")
    add_strict(parser)


def int_in(low: int, high: Optional[int] = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``low`` to ``high`` (None: no upper bound); anything else is a
    usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = f"integer {low}-{high}" if high is not None else f"integer >= {low}"
    return parse


#: ``--quality`` (JPEG, 1-100) and ``--compress-level`` (PNG, 0-9), for every subcommand that writes images.
QUALITY = int_in(1, 100)
COMPRESS_LEVEL = int_in(0, 9)


def positive_seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def _viewport(text: str):
    """An argparse ``type``: ``vw,vh[,sx,sy,sw,sh]`` (PS3.18 ``viewport``)."""
    try:
        return parse_viewport(text)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


def add_rendered_options(parser: argparse.ArgumentParser) -> None:
    """PS3.18's rendered parameters: ``--viewport``, ``--iccprofile``, ``--annotation``."""
    parser.add_argument("--viewport", type=_viewport, metavar="VW,VH[,SX,SY,SW,SH]",
                        help="scale the region SX,SY,SW,SH (default the whole image; negative SW/SH flip) to fit "
                             "VW x VH pixels, keeping the aspect ratio")
    parser.add_argument("--iccprofile", choices=ICC_PROFILE_VALUES, type=str.lower, default="no",
                        help="colour images: embed the file's ICC profile (yes) or convert to sRGB (srgb); "
                             "default no (adobergb and rommrgb are not supported)")
    parser.add_argument("--annotation", metavar="patient,technique",
                        help="burn in patient and/or technique text (PS3.18 annotation)")


def preset_arg(text: Optional[str]):
    """``"a,b,c"`` -> ``["a", "b", "c"]``; a single name stays a string."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names[0] if len(names) == 1 else names


def default_frame(path) -> Optional[int]:
    """0 for a multi-frame file (an image file holds one frame), None otherwise."""
    ds, filename = read_dataset(path, stop_before_pixels=True)
    try:
        return 0 if frame_count(ds, filename) > 1 else None
    except InvalidDatasetError:
        return None  # render reports the bad NumberOfFrames with the file name
