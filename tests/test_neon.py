"""The NEON target (aarch64) on an x86 machine: the kernel's C, cross-compiled with
``aarch64-linux-gnu-gcc`` and run under ``qemu-aarch64`` (both Debian packages, installed by
``.ci/run``), through the standalone harness ``tests/neon/harness.c``.

The host writes every case: a stored format (8- to 16-bit domains, signed and unsigned, shifted and
with garbage bits), 1 to 4 windows of every VOI LUT Function, the exact table of each window over the
whole domain (``dicomrender._reference``), and what the engine compiles for it (the affine parameters
where its proof holds, the narrow table where there is one).  The harness renders every stored bit
pattern, clean and with garbage, on every path (gather, affine, narrow, fused float64) of every
target the CPU runs, on one and three threads (small chunks, so that every case is split), and
counts the bytes that differ from the table.

What this verifies: the NEON loops' instruction semantics as qemu implements them (extraction,
widening, fused multiply-add, truncation, saturation, table lookups, interleaves), aarch64 code
generation of the portable loops under the build's flags, and the thread pool on aarch64 (futex, atomics).
What it cannot: speed (qemu translates every instruction), and the floating point of real Arm
hardware: qemu emulates IEEE arithmetic in software, so a hardware erratum or a CPU that flushes
denormals differently would not show (the values involved are far from denormal, and the result is
fixed by IEEE 754 rounding, which real cores implement; but that is an argument, not a measurement).

Without the cross compiler or qemu the aarch64 part is skipped with the reason, unless
``DICOMRENDER_REQUIRE_NEON=1`` (set by ``.ci/run``), where a missing tool fails the test.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from dicomrender import _kernel, _reference
from dicomrender._types import Rescale, StoredFormat, Window
from dicomrender.engine.compile import compile_tables

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "neon" / "harness.c"
KERNEL = Path(_kernel.__file__).resolve().parent

CROSS = os.environ.get("DICOMRENDER_CROSS_CC", "aarch64-linux-gnu-gcc")
QEMU = os.environ.get("DICOMRENDER_QEMU", "qemu-aarch64")
SYSROOT = os.environ.get("DICOMRENDER_QEMU_SYSROOT", "/usr/aarch64-linux-gnu")

#: The build flags of setup.py (no fused multiply-add behind our back), plus small chunks.
FLAGS = ["-O3", "-std=c99", "-Wall", "-Werror", "-Wno-unused-function", "-ffp-contract=off", "-fno-math-errno",
         "-fno-trapping-math", "-pthread", "-DDR_CHUNK=2048", "-DDR_MIN_CHUNKS_PER_THREAD=2"]

FORMATS = [
    StoredFormat(8, 8, 7, False),
    StoredFormat(8, 8, 7, True),
    StoredFormat(8, 6, 6, True),       # stored bits 1..6 of a byte, signed
    StoredFormat(16, 10, 9, False),
    StoredFormat(16, 12, 11, False),
    StoredFormat(16, 12, 11, True),
    StoredFormat(16, 12, 13, True),    # stored bits 2..13, garbage on both sides
    StoredFormat(16, 12, 13, False),
    StoredFormat(16, 14, 13, True),
    StoredFormat(16, 9, 15, False),    # the top nine bits
    StoredFormat(16, 16, 15, True),
    StoredFormat(16, 16, 15, False),
]

# (rescale, window): CT windows, an exact-integer case (c=550 w=1024 gives exactly 170 at x=720),
# non-integer centres, negative slope, width 1, tiny and huge widths, every function.
WINDOWS = [
    (Rescale(1.0, -1024.0), Window(40, 80)),
    (Rescale(1.0, -1024.0), Window(400, 1800)),
    (Rescale(1.0, -1024.0), Window(-600, 1500, "LINEAR_EXACT")),
    (Rescale(1.0, 0.0), Window(550, 1024)),
    (Rescale(1.0, -1024.0), Window(40.5, 101)),
    (Rescale(3.774, -10.25), Window(300, 77, "LINEAR_EXACT")),
    (Rescale(-0.5, 100.0), Window(20, 300)),
    (Rescale(1.0, 0.0), Window(100, 1)),
    (Rescale(1.0, 0.0), Window(100, 1e-6, "LINEAR_EXACT")),
    (Rescale(1.0, 0.0), Window(0, 1e9)),
    (Rescale(2.0, -3.0), Window(0, 500, "SIGMOID")),
    (Rescale(1.0, 0.0), Window(30, 20, "SIGMOID")),
    (Rescale(0.25, 7.0), Window(12, 9)),
]

#: Several windows in one pass (RGB and the generic interleave of two and four).
MULTI = [
    (Rescale(1.0, -1024.0), [Window(40, 80), Window(400, 1800), Window(-600, 1500)]),
    (Rescale(1.0, -1024.0), [Window(40, 80), Window(0, 900, "SIGMOID")]),
    (Rescale(2.0, 3.0), [Window(400, 1800), Window(40, 80), Window(-600, 1500, "LINEAR_EXACT"), Window(100, 300)]),
    (Rescale(1.0, 0.0), [Window(100, 60), Window(120, 60), Window(140, 60)]),
]

_FUNCTION_CODE = {name: code for code, name in enumerate(_kernel.FUNCTIONS)}


def _case(fmt: StoredFormat, modality: Rescale, vois: list, invert: bool) -> bytes:
    domain = modality.values(fmt.domain())
    tables = np.stack([_reference.to_uint8(v.values(domain), invert, v.snap) for v in vois]).astype(np.uint8)
    compiled = compile_tables(fmt, modality, vois, invert)
    assert np.array_equal(compiled.tables, tables)  # the engine's tables are the reference's
    affine = compiled.affine
    narrow = compiled.narrow
    parts = [struct.pack("<7i", fmt.bits_allocated // 8, fmt.shift, fmt.bits_stored, int(fmt.signed), len(vois),
                         int(affine is not None), int(narrow is not None))]
    for j, voi in enumerate(vois):
        a, b, pivot = affine[j] if affine is not None else (0.0, 0.0, 0)
        parts.append(struct.pack("<6d2fi", modality.slope, modality.intercept, voi.center, voi.width,
                                 _FUNCTION_CODE[voi.function], int(invert), a, b, int(pivot)))
    small, low, span = narrow if narrow is not None else (np.zeros(256, np.uint8), 0, 0)
    parts.append(struct.pack("<2H", low, span) + np.asarray(small, np.uint8).tobytes())
    parts.append(tables.tobytes())
    return b"".join(parts)


def write_cases(path: Path) -> dict:
    """Every case, in the harness's format; returns what they cover."""
    cases = []
    covered = {"affine": 0, "narrow": 0, "functions": set()}
    for fmt in FORMATS:
        for invert in (False, True):
            for modality, voi in WINDOWS:
                cases.append(_case(fmt, modality, [voi], invert))
                compiled = compile_tables(fmt, modality, [voi], invert)
                covered["affine"] += compiled.affine is not None
                covered["narrow"] += compiled.narrow is not None
                covered["functions"].add(voi.function)
        for modality, vois in MULTI:
            cases.append(_case(fmt, modality, vois, False))
            covered["affine"] += compile_tables(fmt, modality, vois, False).affine is not None
    path.write_bytes(struct.pack("<I", len(cases)) + b"".join(cases))
    covered["cases"] = len(cases)
    return covered


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    path = tmp_path_factory.mktemp("neon") / "cases.bin"
    covered = write_cases(path)
    # the cases reach every path the NEON target has: proven affine windows and narrow tables
    assert covered["affine"] > 50 and covered["narrow"] > 20
    assert covered["functions"] == set(_kernel.FUNCTIONS)
    return path, covered


def _check(output: str, targets: list, cases_written: int) -> None:
    lines = output.splitlines()
    assert lines[0].startswith(f"cases {cases_written}; functions LINEAR LINEAR_EXACT SIGMOID"), output
    for target in targets:
        [line] = [x for x in lines if x.startswith(f"target {target}:")]
        for path in ("gather", "affine", "narrow", "arith"):
            assert f" {path} 0 runs" not in line, line  # every path ran on every target
        assert line.count(" 0 wrong;") == 4, line
    assert lines[-1].endswith("all exact"), output


def test_harness_on_this_machine_equals_the_reference(cases, tmp_path):
    """The same harness built for this CPU, on every target it runs: checks the harness itself."""
    compiler = shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) or shutil.which("gcc") \
        or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "harness"
    subprocess.run([compiler, *FLAGS, "-I", str(KERNEL), str(HARNESS), "-o", str(exe), "-lm"], check=True,
                   capture_output=True)
    path, covered = cases
    run = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    _check(run.stdout, list(_kernel.supported_targets()), covered["cases"])


def _tools_or_skip() -> None:
    missing = [tool for tool in (CROSS, QEMU) if shutil.which(tool) is None]
    if not missing and not (Path(SYSROOT) / "lib").is_dir():
        missing.append(f"the aarch64 C library under {SYSROOT} (libc6-dev-arm64-cross)")
    if missing:
        message = f"cannot check the NEON target: {', '.join(missing)} not installed (gcc-aarch64-linux-gnu, qemu-user)"
        if os.environ.get("DICOMRENDER_REQUIRE_NEON") == "1":
            pytest.fail(message)
        pytest.skip(message)


def test_neon_target_under_qemu_equals_the_reference(cases, tmp_path):
    _tools_or_skip()
    exe = tmp_path / "harness-aarch64"
    build = subprocess.run([CROSS, *FLAGS, "-I", str(KERNEL), str(HARNESS), "-o", str(exe), "-lm"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    path, covered = cases
    run = subprocess.run([QEMU, "-L", SYSROOT, str(exe), str(path)], capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    _check(run.stdout, ["baseline", "neon"], covered["cases"])
    assert run.stdout.splitlines()[-1] == "best target neon; all exact"
    assert "helpers started 2" in run.stdout  # the pool ran on aarch64 too
