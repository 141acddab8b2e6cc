"""Inputs that once broke dicomrender, kept so they never do again.

Each ``.dcm`` here was produced by the mutation fuzzer (``tests/fuzz``);
``cases.json`` records the render options, what went wrong at the time and
the outcome expected now (``"ok"`` or the dicomrender error class).  A case
fails if rendering raises anything else or lets a RuntimeWarning through.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import dicomrender
from dicomrender.errors import DicomRenderError

HERE = Path(__file__).resolve().parent
CASES = json.loads((HERE / "cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_regression_input_renders_or_raises_the_expected_error(case):
    path = HERE / case["file"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = dicomrender.render(path, **case["options"])
        except DicomRenderError as exc:
            outcome = type(exc).__name__
            assert exc.filename == str(path)  # the error names the file
            assert str(path) in str(exc)
        else:
            outcome = "ok"
            assert isinstance(result, np.ndarray) and result.dtype == np.uint8
    assert outcome == case["expect"], f"{case['file']}: once {case['found']}"
    leaked = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not leaked, f"{case['file']}: warnings leaked: {leaked}"


def test_every_regression_file_is_listed():
    listed = {c["file"] for c in CASES}
    assert listed == {p.name for p in HERE.glob("*.dcm")}
