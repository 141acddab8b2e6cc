"""The house rules of docs/ARCHITECTURE.md: imports point down, no cycles, small modules, clean types
and lint.  Each check runs the real tool on the real tree."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "dicomrender"
#: Largest Python module allowed (docs/ARCHITECTURE.md).
MAX_LINES = 600


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install the test extra)")
    return path


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_imports_point_down_and_no_package_has_a_cycle():
    result = _run(_tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_mypy_is_clean():
    result = _run(_tool("mypy"), "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean():
    result = _run(_tool("ruff"), "check", "--no-cache", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_several_modules():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert len(sizes) > 30  # the package is really there
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_tests_do_not_edit_sys_path_or_import_each_other():
    offenders = []
    for path in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
                    and node.value.id == "sys" and path.name != "test_architecture.py":
                offenders.append(f"{path.name}: sys.path")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1].startswith("test_"):
                offenders.append(f"{path.name}: imports {node.module}")
            if isinstance(node, ast.Import) and any(a.name.split(".")[-1].startswith("test_") for a in node.names):
                offenders.append(f"{path.name}: imports a test module")
    assert not offenders, offenders
