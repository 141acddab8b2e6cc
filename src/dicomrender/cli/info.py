"""``dicomrender info FILE``: what a render of the file does and why (:func:`dicomrender.explain`).

Exit status 0 explained, 1 the file cannot be rendered (the error says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json

from ..explain import explain
from ..presets.windows import VOI_CHOICES
from .args import add_window_options, preset_arg


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("info", help="explain how a DICOM file renders and why",
                              description="Explain how a DICOM file renders with the given options: the modality "
                                          "transform, the VOI chosen and why, the inversion, the kernel loop, the "
                                          "output. Exit status: 0 explained, 1 the file cannot be rendered, 2 bad "
                                          "usage.")
    p.add_argument("input", help="DICOM file")
    add_window_options(p)
    p.add_argument("--frame", type=int, default=None, help="frame of a multi-frame image (0-based; default all)")
    p.add_argument("--voi", choices=VOI_CHOICES, default=None,
                   help="the header's window or its VOI LUT when it has both (default: the window)")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = {"voi": args.voi} if args.voi is not None and args.window is None else {}
    explanation = explain(args.input, preset_arg(args.preset), window=args.window, function=args.function,
                          invert=args.invert, frame=args.frame, strict=args.strict, **options)
    print(json.dumps(explanation.to_dict(), indent=2) if args.json else explanation)
    return 0
