"""Test files of pydicom and pydicom-data, by name: a missing one skips the test with the reason."""

from __future__ import annotations

import glob
import os
from typing import List

import pytest
from pydicom.data import get_testdata_file


def data_file(name: str) -> str:
    """The path of pydicom's test file ``name``; skips the calling test when it is not installed
    (files beyond pydicom's own ~100 come with pydicom-data, the ``test`` extra)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install pydicom-data, or the test extra)")
    return str(path)


def all_test_files() -> List[str]:
    """Every ``.dcm`` file of pydicom's test data and, when installed, pydicom-data's (listed from its
    folder: nothing is downloaded)."""
    folder = os.path.dirname(get_testdata_file("CT_small.dcm"))
    files = sorted(glob.glob(os.path.join(folder, "*.dcm")))
    extra = get_testdata_file("emri_small.dcm", download=False)
    if extra is not None and os.path.dirname(extra) != folder:
        files += sorted(glob.glob(os.path.join(os.path.dirname(extra), "*.dcm")))
    return files
