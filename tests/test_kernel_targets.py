"""The compiled kernel's constants and instruction-set targets.

The constants come from ``src/dicomrender/_kernel/constants.h``, which the C loops read too;
``DICOMRENDER_TARGET`` forces a target for the whole process, read once at import (so each
case here runs in a fresh interpreter).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dicomrender import _kernel, _reference
from dicomrender._kernel import _core

SUPPORTED = _kernel.supported_targets()


def test_constants_from_the_header_agree_with_the_reference():
    assert _kernel.FUNCTIONS == _reference.FUNCTIONS
    assert _kernel.SNAP == _reference.SNAP
    assert _kernel.TARGETS == ("baseline", "avx2", "avx512", "avx512vbmi", "neon")
    assert _kernel.MAX_WINDOWS == 4
    assert _kernel.MIN_PIXELS_PER_THREAD == 8 * _kernel.CHUNK
    assert SUPPORTED[0] == "baseline" and set(SUPPORTED) <= set(_kernel.TARGETS)


def test_the_package_only_re_exports_the_compiled_module():
    public = {name for name in vars(_kernel) if not name.startswith("_")}
    assert public == set(_kernel.__all__)
    for name in _kernel.__all__:
        assert getattr(_kernel, name) is getattr(_core, name), name


def _target_in_fresh_interpreter(value: str | None, code: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DICOMRENDER_TARGET"}
    if value is not None:
        env["DICOMRENDER_TARGET"] = value
    script = "from dicomrender import _kernel\n" + code + "print(_kernel.get_target())\n"
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          check=True)


@pytest.mark.parametrize("name", SUPPORTED)
def test_environment_variable_forces_each_supported_target(name):
    run = _target_in_fresh_interpreter(name.upper() if name == "avx2" else name)  # case does not matter
    assert run.stdout.split() == [name]
    assert "DICOMRENDER_TARGET" not in run.stderr


def test_without_the_environment_variable_the_best_target_runs():
    assert _target_in_fresh_interpreter(None).stdout.split() == [SUPPORTED[-1]]
    assert _target_in_fresh_interpreter("").stdout.split() == [SUPPORTED[-1]]


def test_unknown_target_warns_and_runs_the_best():
    run = _target_in_fresh_interpreter("sse9")
    assert run.stdout.split() == [SUPPORTED[-1]]
    assert "RuntimeWarning" in run.stderr and "DICOMRENDER_TARGET='sse9' is not a target" in run.stderr
    assert ", ".join(SUPPORTED) in run.stderr


@pytest.mark.parametrize("name", [t for t in _kernel.TARGETS if t not in SUPPORTED] or [None])
def test_target_this_cpu_cannot_run_warns_and_runs_the_best(name):
    if name is None:
        pytest.skip("this CPU runs every target")
    run = _target_in_fresh_interpreter(name)
    assert run.stdout.split() == [SUPPORTED[-1]]
    assert "RuntimeWarning" in run.stderr and "is not supported by this CPU" in run.stderr


def test_set_target_none_restores_the_forced_target():
    run = _target_in_fresh_interpreter("baseline", "_kernel.set_target(_kernel.TARGETS[-1] if _kernel.TARGETS[-1] in "
                                                   "_kernel.supported_targets() else 'baseline')\n"
                                                   "_kernel.set_target(None)\n")
    assert run.stdout.split() == ["baseline"]
