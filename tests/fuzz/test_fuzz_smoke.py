"""A short in-process run of the mutation fuzzer, and checks of the fuzzer itself.

The long run (>= 5,000 files against an AddressSanitizer/UBSan build of the
kernel) is ``.ci/sanitize``; this keeps the fuzzer working and the normal
build clean on every test run.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import dicomfuzz

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def corpus():
    corpus = dicomfuzz.load_corpus()
    assert len(corpus) >= 40  # pydicom's own test files alone give more
    return corpus


def test_mutated_files_render_or_raise_dicomrender_errors(corpus):
    outcomes = collections.Counter()
    bugs = []
    for index in range(400):
        case = dicomfuzz.case_for(corpus, 20261125, index)
        result = dicomfuzz.run_any(case)
        outcomes[result["outcome"]] += 1
        if result["outcome"] == "bug":
            bugs.append((index, case.get("source"), case.get("mutations"), result["message"]))
    assert not bugs, bugs
    # the mutations neither break everything nor leave files intact
    assert outcomes["ok"] >= 20 and outcomes["error"] >= 200, outcomes


def test_cases_are_reproducible_from_seed_and_index(corpus):
    first = dicomfuzz.make_case(corpus, 7, 123)
    again = dicomfuzz.make_case(corpus, 7, 123)
    other = dicomfuzz.make_case(corpus, 7, 124)
    assert first["data"] == again["data"] and first["options"] == again["options"]
    assert first["mutations"] == again["mutations"] and first["mutations"]
    assert (first["data"], first["options"]) != (other["data"], other["options"])


def test_mutations_change_the_file(corpus):
    originals = dict(corpus)
    changed = sum(dicomfuzz.make_case(corpus, 3, i)["data"] != originals[dicomfuzz.make_case(corpus, 3, i)["source"]]
                  for i in range(50))
    assert changed >= 40  # a few mutations are no-ops (deleting an absent attribute)


def test_message_shape_blanks_values():
    from dicomrender.errors import InvalidDatasetError

    a = dicomfuzz.message_shape(InvalidDatasetError("HighBit must be 0..15, got 16", filename="/x/a.dcm"))
    b = dicomfuzz.message_shape(InvalidDatasetError("HighBit must be 0..7, got 9", filename="/y/b.dcm"))
    assert a == b == "InvalidDatasetError: HighBit must be #..#, got #"


def test_supervisor_reports_a_dying_and_a_silent_worker(tmp_path):
    env = dict(os.environ, DICOMFUZZ_ABORT_AT="3", DICOMFUZZ_HANG_AT="6")
    proc = subprocess.run([sys.executable, str(HERE / "dicomfuzz.py"), "--count", "12", "--jobs", "2",
                           "--case-timeout", "3", "--crash-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert '"crashes": 1' in proc.stdout and '"hangs": 1' in proc.stdout and '"cases": 12' in proc.stdout
    assert (tmp_path / "crash-1-3.dcm").exists() and (tmp_path / "hang-1-6.dcm").exists()
    saved = (tmp_path / "crash-1-3.dcm").read_bytes()
    assert saved == dicomfuzz.make_case(dicomfuzz.load_corpus(), 1, 3)["data"]


def _hostile_case(corpus, kind: str, seed: int):
    """A case of the hostile family ``kind`` alone, on the first corpus file (from ``seed``) it applies to."""
    import io
    import random
    import warnings

    import pydicom

    dicomfuzz._configure_pydicom_writing()
    rng = random.Random(f"hostile:{kind}:{seed}")
    order = list(range(len(corpus)))
    rng.shuffle(order)
    for k in order:
        name, original = corpus[k]
        log: list = []
        post: list = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(original))
            try:
                dicomfuzz.hostile_mutation(kind, ds, rng, log, post)
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=False)
                data = buffer.getvalue()
                for rewrite in post:
                    data = rewrite(data)
            except Exception:
                continue  # the family does not apply to this file
        return {"seed": seed, "index": 0, "source": name, "mutations": log, "options": {}, "data": data}
    raise AssertionError(f"{kind} applies to no corpus file")


@pytest.mark.parametrize("kind", sorted(dicomfuzz.HOSTILE_KINDS))
def test_each_hostile_family_builds_its_case_and_renders_or_raises(corpus, kind):
    import time

    for seed in range(6):
        case = _hostile_case(corpus, kind, seed)
        assert case["mutations"] and case["mutations"][0].startswith(kind + ":"), case["mutations"]
        assert case == _hostile_case(corpus, kind, seed)  # deterministic by seed
        started = time.perf_counter()
        result = dicomfuzz.run_case(case)
        assert result["outcome"] in ("ok", "error"), (case["source"], case["mutations"], result)
        assert time.perf_counter() - started < 10, (case["source"], case["mutations"])
        data = case["data"]
        if kind == "deflate":
            assert dicomfuzz._syntax_of(data) == "1.2.840.10008.1.2.1.99" or "unwritable" in case["mutations"]
        elif kind == "undefined" and dicomfuzz._syntax_of(data) in dicomfuzz._NATIVE_SYNTAXES:
            assert data[data.find(b"\xe0\x7f\x10\x00", 132):].find(b"\xff\xff\xff\xff") in (4, 8)
        elif kind == "nested":
            assert b"\xfe\xff\x00\xe0" in data


def test_hostile_families_are_part_of_the_mutation_mix(corpus):
    seen = collections.Counter()
    for index in range(300):
        for mutation in dicomfuzz.make_case(corpus, 20261128, index)["mutations"]:
            seen[mutation.split(":")[0]] += 1
    assert set(dicomfuzz.HOSTILE_KINDS) <= set(seen), seen
