"""The default number of series workers: the usable cores not busy now."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from dicomrender.engine import usable_cpus
from dicomrender.series import parallel


def test_idle_cores_are_the_usable_ones_less_the_other_running_threads(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 8)
    monkeypatch.setattr(parallel, "_running_now", lambda: 1)  # only the caller
    assert parallel.idle_cpus() == 8
    monkeypatch.setattr(parallel, "_running_now", lambda: 4)  # three others
    assert parallel.idle_cpus() == 5
    monkeypatch.setattr(parallel, "_running_now", lambda: 40)
    assert parallel.idle_cpus() == 1
    # without /proc/loadavg: the 1-minute load average beyond this process's own
    monkeypatch.setattr(parallel, "_running_now", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 0.0, 0.0))
    assert parallel.idle_cpus() == 6
    assert parallel.worker_count(None, 100, 24) == 5  # and never more workers than chunks of 24


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="the running count is Linux's /proc/loadavg")
def test_busy_processes_take_cores_from_the_default_and_a_finished_call_does_not():
    cores = usable_cpus()
    busy = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
            for _ in range(cores)]
    try:
        time.sleep(0.5)  # scheduled and running
        assert parallel.idle_cpus() == 1
    finally:
        for p in busy:
            p.kill()
            p.wait()
    time.sleep(0.2)
    # the 1-minute load average still counts them; the running count does not
    assert parallel.idle_cpus() >= cores - 1
