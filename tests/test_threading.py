"""The kernel's thread pool: usable cores (affinity and cgroup quota), the knobs (``threads=``,
``set_threads``, ``DICOMRENDER_NUM_THREADS``, threadpoolctl), helpers that take part without ever
being waited for before they start, park when idle, and stay within the budget when many Python
threads call at once.  The bytes never depend on any of it (tests/test_dispatch.py checks every
path and target on two threads as well)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import dicomrender
from dicomrender import _kernel
from dicomrender.engine import threads as engine_threads
from dicomrender.engine.threads import cgroup_cpu_limit, usable_cpus

pool_only = pytest.mark.skipif(not _kernel.HAVE_THREADS, reason="built without the thread pool")

#: Four 512 x 512 slices' worth of pixels: well above the size that gets a second thread.
PIXELS = 4 * 512 * 512 + 777


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(14)
    words = rng.integers(0, 4096, size=PIXELS, dtype=np.uint16)
    expected = dicomrender.window(words, 40, 80, intercept=-1024, bits_stored=12, threads=1)
    return words, expected


@pytest.fixture
def budget_two():
    """A budget of at least two threads, whatever this machine has (restored afterwards)."""
    before = _kernel.get_thread_budget()
    _kernel.set_thread_budget(max(2, before))
    yield
    _kernel.set_thread_budget(before)


def _render(words, threads):
    return dicomrender.window(words, 40, 80, intercept=-1024, bits_stored=12, threads=threads)


# ---- usable cores -------------------------------------------------------------------------------


def _tree(tmp_path, membership: str, files: dict) -> tuple:
    """A fake cgroup hierarchy under tmp_path/cgroup and a /proc/self/cgroup file."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "self_cgroup"
    proc.write_text(membership)
    return root, proc


def test_cgroup_v2_quota_is_the_tightest_of_the_cgroup_and_its_ancestors(tmp_path):
    root, proc = _tree(tmp_path, "0::/kubepods/pod1/box\n", {
        "cgroup.controllers": "cpu memory",
        "kubepods/cpu.max": "max 100000",
        "kubepods/pod1/cpu.max": "250000 100000",
        "kubepods/pod1/box/cpu.max": "max 100000",
    })
    assert cgroup_cpu_limit(root, proc) == 2.5
    (root / "kubepods/cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(root, proc) == 1.5


def test_cgroup_v2_namespace_root_and_no_quota(tmp_path):
    root, proc = _tree(tmp_path, "0::/\n", {"cgroup.controllers": "cpu", "cpu.max": "200000 100000\n"})
    assert cgroup_cpu_limit(root, proc) == 2.0
    (root / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(root, proc) is None


def test_cgroup_v1_cfs_quota(tmp_path):
    root, proc = _tree(tmp_path, "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    })
    assert cgroup_cpu_limit(root, proc) == 0.5
    (root / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(root, proc) is None


def test_missing_or_broken_cgroup_files_mean_no_quota(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "nowhere", tmp_path / "nothing") is None
    root, proc = _tree(tmp_path, "0::/a\n", {"cgroup.controllers": "", "a/cpu.max": "garbage\n"})
    assert cgroup_cpu_limit(root, proc) is None


def test_a_two_cpu_container_on_a_64_core_host_uses_two(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    root, proc = _tree(tmp_path, "0::/\n", {"cgroup.controllers": "cpu", "cpu.max": "200000 100000\n"})
    assert usable_cpus(root, proc) == 2
    (root / "cpu.max").write_text("150001 100000\n")  # rounded up
    assert usable_cpus(root, proc) == 2
    (root / "cpu.max").write_text("10000 100000\n")   # at least one
    assert usable_cpus(root, proc) == 1
    (root / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(root, proc) == 64
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 5, 7}, raising=False)  # taskset
    assert usable_cpus(root, proc) == 3


def test_the_budget_is_the_usable_cores_or_the_default_when_higher():
    usable = engine_threads._USABLE
    before = dicomrender.get_threads()
    try:
        dicomrender.set_threads(1)
        assert _kernel.get_thread_budget() == (usable if _kernel.HAVE_THREADS else 1)
        dicomrender.set_threads(usable + 3)
        assert _kernel.get_thread_budget() == (usable + 3 if _kernel.HAVE_THREADS else 1)
    finally:
        dicomrender.set_threads(before)


# ---- the environment variable, in fresh interpreters ------------------------------------------------


def _fresh(code: str, **env_vars) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DICOMRENDER_NUM_THREADS"}
    env.update(env_vars)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=True)


def test_environment_variable_sets_the_default_threads():
    code = ("import dicomrender; from dicomrender import _kernel; "
            "print(dicomrender.get_threads(), _kernel.get_thread_budget())")
    usable = engine_threads._USABLE
    run = _fresh(code, DICOMRENDER_NUM_THREADS="3")
    assert run.stdout.split() == ["3", str(max(usable, 3) if _kernel.HAVE_THREADS else 1)]
    run = _fresh(code, DICOMRENDER_NUM_THREADS="1")
    assert run.stdout.split() == ["1", str(usable if _kernel.HAVE_THREADS else 1)]
    run = _fresh(code + "; dicomrender.set_threads(2); dicomrender.set_threads(None); print(dicomrender.get_threads())",
                 DICOMRENDER_NUM_THREADS="1")
    assert run.stdout.split()[-1] == "1"  # None goes back to the variable's default


@pytest.mark.parametrize("value", ["0", "two", "-4", "99999"])
def test_a_bad_environment_variable_warns_and_uses_the_usable_cores(value):
    run = _fresh("import dicomrender; print(dicomrender.get_threads())", DICOMRENDER_NUM_THREADS=value)
    assert run.stdout.split() == [str(engine_threads._USABLE)]
    assert "RuntimeWarning" in run.stderr and "DICOMRENDER_NUM_THREADS" in run.stderr


# ---- threadpoolctl --------------------------------------------------------------------------------


def _ours(info):
    return [lib for lib in info if lib["user_api"] == "dicomrender"]


def test_threadpoolctl_sees_and_limits_the_kernel_pool(volume):
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    [lib] = _ours(threadpoolctl.threadpool_info())
    assert lib["internal_api"] == "dicomrender"
    assert os.path.samefile(lib["filepath"], _kernel._core.__file__)
    assert lib["num_threads"] == dicomrender.get_threads()
    assert lib["thread_budget"] == _kernel.get_thread_budget() and lib["usable_cpus"] == usable_cpus()
    before = dicomrender.get_threads()
    words, expected = volume
    with threadpoolctl.threadpool_limits(limits=1):
        assert dicomrender.get_threads() == 1
        assert _ours(threadpoolctl.threadpool_info())[0]["num_threads"] == 1
        helped = _kernel.pool_stats()[1]
        for _ in range(5):
            np.testing.assert_array_equal(_render(words, None), expected)
        assert _kernel.pool_stats()[1] == helped  # the default is one thread: no helper took part
    assert dicomrender.get_threads() == before
    with threadpoolctl.threadpool_limits(limits=1, user_api="dicomrender"):
        assert dicomrender.get_threads() == 1
    with threadpoolctl.ThreadpoolController().limit(limits=3, user_api="dicomrender"):
        assert dicomrender.get_threads() == 3
    assert dicomrender.get_threads() == before


@pytest.mark.parametrize("order", ["threadpoolctl first", "dicomrender first"])
def test_threadpoolctl_finds_the_pool_whichever_is_imported_first(order):
    pytest.importorskip("threadpoolctl", minversion="3.5")
    imports = ["import threadpoolctl", "import dicomrender"]
    if order == "dicomrender first":
        imports.reverse()
    code = "; ".join(imports) + ("; print(sum(lib['user_api'] == 'dicomrender' "
                                 "for lib in threadpoolctl.threadpool_info()))")
    assert _fresh(code).stdout.split() == ["1"]


# ---- the pool -------------------------------------------------------------------------------------


@pool_only
def test_helpers_take_part_and_the_bytes_do_not_change(volume, budget_two):
    words, expected = volume
    start = _kernel.pool_stats()[1]
    for _ in range(400):  # on a busy machine a helper may be scheduled too late for a few calls
        np.testing.assert_array_equal(_render(words, 2), expected)
        if _kernel.pool_stats()[1] > start:
            break
    assert _kernel.pool_stats()[1] > start, "no helper ever took a chunk"
    assert 1 <= _kernel.pool_stats()[0] <= _kernel.get_thread_budget() - 1


@pool_only
def test_a_call_never_waits_for_helpers_that_do_not_run(volume, budget_two):
    """Helpers that are never scheduled (paused) cost nothing: every call finishes on its own thread."""
    words, expected = volume
    _render(words, 2)  # the helpers exist
    _kernel.pause_helpers(True)
    try:
        helped = _kernel.pool_stats()[1]
        with ThreadPoolExecutor(1) as pool:  # a hang would fail here instead of blocking the test run
            for threads in (2, 4, 64):
                got = pool.submit(_render, words, threads).result(timeout=60)
                np.testing.assert_array_equal(got, expected)
        assert _kernel.pool_stats()[1] == helped
    finally:
        _kernel.pause_helpers(False)


def _cpu_seconds_of_other_threads() -> float:
    """CPU time (user + system) of every thread of this process but the calling one (Linux)."""
    me = threading.get_native_id()
    ticks = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == me:
            continue
        try:
            fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@pool_only
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_idle_helpers_sleep_instead_of_spinning(volume, budget_two):
    words, _ = volume
    for _ in range(20):
        _render(words, 2)
    time.sleep(0.1)  # past the helpers' short spin
    before = _cpu_seconds_of_other_threads()
    time.sleep(1.0)
    assert _cpu_seconds_of_other_threads() - before < 0.05


@pool_only
def test_concurrent_callers_share_one_pool_within_the_budget(volume, budget_two):
    """Eight Python threads asking for four threads each: one pool, at most budget - 1 helpers."""
    words, expected = volume
    barrier = threading.Barrier(8)

    def worker(_):
        barrier.wait()
        return all(np.array_equal(_render(words, 4), expected) for _ in range(10))

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(worker, range(8)))
    assert 1 <= _kernel.pool_stats()[0] <= _kernel.get_thread_budget() - 1


def test_threads_for_respects_the_knobs():
    budget = _kernel.get_thread_budget()
    assert _kernel.threads_for(64 * 512 * 512, 1) == 1
    assert _kernel.threads_for(64 * 512 * 512, 1024) == (budget if _kernel.HAVE_THREADS else 1)
    assert _kernel.threads_for(512 * 512, 1024) == 1  # one slice stays on the calling thread
