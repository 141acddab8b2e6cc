"""Test files of pydicom and pydicom-data, by name: a missing one skips the test with the reason."""

from __future__ import annotations

import pytest
from pydicom.data import get_testdata_file


def data_file(name: str) -> str:
    """The path of pydicom's test file ``name``; skips the calling test when it is not installed
    (files beyond pydicom's own ~100 come with pydicom-data, the ``test`` extra)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install pydicom-data, or the test extra)")
    return str(path)
