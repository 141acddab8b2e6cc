"""The README's first commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_readme_starts_with_the_two_commands():
    demo, tests = readme_commands()[:2]
    assert demo.startswith("pip install .") and "dicomrender demo" in demo
    assert '".[test]"' in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_commands()[1] in ci_lines
    assert ci_lines[-1] == readme_commands()[1]  # the last thing CI does, so its exit status is CI's
