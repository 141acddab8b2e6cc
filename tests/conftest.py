"""Shared test fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from dicomrender import _kernel

from .synthetic import make_dataset


@pytest.fixture
def ct_dataset():
    """A 12-bit CT slice (stored = HU + 1024) with a brain window in the header."""
    hu = np.linspace(-1024, 3071, 64 * 64).round().astype(np.int32).reshape(64, 64)
    return make_dataset((hu + 1024).astype(np.uint16), bits_stored=12, RescaleIntercept=-1024, RescaleSlope=1,
                        WindowCenter=40, WindowWidth=80)


@pytest.fixture(params=_kernel.TARGETS)
def target(request):
    """Run the test with the kernel forced to one target; skipped where the CPU lacks it."""
    if request.param not in _kernel.supported_targets():
        pytest.skip(f"this CPU does not run the {request.param} target")
    _kernel.set_target(request.param)
    yield request.param
    _kernel.set_target(None)
