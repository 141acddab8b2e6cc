"""The ``dicomrender`` command: the parser, built from the subcommand modules, and ``main``.

Subcommands: ``render`` (one file), ``info`` (how a file renders and why), ``demo`` (bundled sample data),
``presets`` (the preset table), ``convert`` (batch conversion), ``serve`` (a DICOMweb server).  Exit status
0 on success, 1 when rendering failed, 2 on bad usage (bad arguments, an
unknown preset, an invalid window, an unknown output format), each with
``dicomrender COMMAND: error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..errors import DicomRenderError, InvalidArgumentError, UnknownPresetError
from . import convert, demo, info, presets, render, series, serve

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: The subcommands, in the order ``--help`` lists them: modules with ``add_parser(subparsers)``, which
#: adds the subcommand with a ``handler(args) -> exit status`` default.
SUBCOMMANDS: list = [render, info, demo, presets, convert, series, serve]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dicomrender", description="Render DICOM pixel data to 8-bit images.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (InvalidArgumentError, UnknownPresetError) as exc:  # usage found only once the file is rendered
        print(f"dicomrender {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (DicomRenderError, OSError, ValueError) as exc:
        print(f"dicomrender {args.command}: error: {exc}", file=sys.stderr)
        return 1
