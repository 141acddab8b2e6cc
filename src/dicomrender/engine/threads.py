"""The kernel's thread setting and the one answer to "how many cores may this process use".

The knobs, most specific first: ``threads=`` of a call; :func:`set_threads` (which
``threadpoolctl.threadpool_limits`` drives too, see :mod:`.threadpool`); the
``DICOMRENDER_NUM_THREADS`` environment variable, read at import; else :func:`usable_cpus`.
Whatever they say, the kernel's helper threads and the calls running at once together stay within
the thread budget: the usable cores, or the default when it is set higher.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Dict, Optional, Union

from .. import _kernel
from ..errors import integer_argument

__all__ = ["usable_cpus", "cgroup_cpu_limit", "set_threads", "get_threads", "resolve_threads", "check_threads",
           "MAX_THREADS", "ENV_THREADS"]

#: The environment variable that sets the default thread count (read once, at import).
ENV_THREADS = "DICOMRENDER_NUM_THREADS"

_PathLike = Union[str, "os.PathLike[str]"]


def _cgroup_paths(self_cgroup: _PathLike) -> Dict[str, str]:
    """The process's cgroup path per hierarchy: "" for v2 (unified), "cpu" for the v1 cpu controller."""
    paths: Dict[str, str] = {}
    try:
        lines = Path(self_cgroup).read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _id, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controllers == "":
            paths[""] = path
        elif "cpu" in controllers.split(","):
            paths["cpu"] = path
    return paths


def _ancestors(base: Path, path: str):
    """``base/path`` and each of its ancestors up to ``base``, deepest first (those that exist)."""
    parts = [p for p in path.strip("/").split("/") if p]
    for depth in range(len(parts), -1, -1):
        directory = base.joinpath(*parts[:depth])
        if directory.is_dir():
            yield directory


def _read_limit(directory: Path) -> Optional[float]:
    """CPUs the quota files in ``directory`` allow: v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``/``cfs_period_us``."""
    try:
        quota, _, period = (directory / "cpu.max").read_text().strip().partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
        period_us = int((directory / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def cgroup_cpu_limit(root: _PathLike = "/sys/fs/cgroup",
                     self_cgroup: _PathLike = "/proc/self/cgroup") -> Optional[float]:
    """CPUs the cgroup CPU quota allows this process (quota / period, the tightest of its cgroup and
    their ancestors, v2 or v1), or ``None`` without a quota.  ``root`` and ``self_cgroup`` are where
    the hierarchy is mounted and the process's membership file (tests point them at a fake tree)."""
    root = Path(root)
    paths = _cgroup_paths(self_cgroup)
    bases = []
    if "" in paths and (root / "cgroup.controllers").exists():
        bases.append((root, paths[""]))
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        if "cpu" in paths and (root / mount).is_dir():
            bases.append((root / mount, paths["cpu"]))
            break
    limits = [limit for base, path in bases for directory in _ancestors(base, path)
              if (limit := _read_limit(directory)) is not None]
    return min(limits) if limits else None


def usable_cpus(cgroup_root: _PathLike = "/sys/fs/cgroup", self_cgroup: _PathLike = "/proc/self/cgroup") -> int:
    """Cores this process may use: its CPU affinity (a taskset, a container's cpuset), capped by the cgroup
    CPU quota rounded up (a container limited to 2 CPUs on a 64-core host gets 2), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root, self_cgroup)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


#: Most kernel threads one call may ask for.  More threads than cores are honoured (the result is the
#: same, and the tests split loops on two threads even on a one-core machine), but a count far beyond
#: any machine's cores is a bug in the caller (``threads=2**40`` overflowed the kernel's C int).
MAX_THREADS = max(1024, usable_cpus())


def check_threads(n, attribute: str = "threads") -> int:
    """``n`` as a thread count: an integer (bool is refused) from 1 to :data:`MAX_THREADS`.

    Raises
    ------
    TypeError
        ``n`` is not an integer.
    InvalidArgumentError
        ``n`` is below 1 or above :data:`MAX_THREADS`.
    """
    return integer_argument(n, 1, MAX_THREADS, attribute)


_USABLE = usable_cpus()


def _default_threads() -> int:
    """``DICOMRENDER_NUM_THREADS`` when it holds a valid count (else a warning), otherwise the usable cores."""
    value = os.environ.get(ENV_THREADS, "").strip()
    if value:
        try:
            return check_threads(int(value), ENV_THREADS)
        except (TypeError, ValueError) as error:
            warnings.warn(f"{ENV_THREADS}={value!r} ignored ({error}); using {min(_USABLE, MAX_THREADS)} threads",
                          RuntimeWarning, stacklevel=2)
    return min(_USABLE, MAX_THREADS)


def _set_budget() -> None:
    # helpers plus the calls running at once stay within the usable cores, or the default when set higher
    _kernel.set_thread_budget(min(max(_USABLE, _threads), MAX_THREADS))


_threads = _default_threads()
_set_budget()


def set_threads(n: Optional[int]) -> None:
    """Set the default number of kernel threads (``None``: back to ``DICOMRENDER_NUM_THREADS``, else every
    core this process may use).

    ``n`` is an integer from 1 to :data:`MAX_THREADS`; more than the usable cores is allowed.
    """
    global _threads
    _threads = _default_threads() if n is None else check_threads(n)
    _set_budget()


def get_threads() -> int:
    """The default number of kernel threads."""
    return _threads


def resolve_threads(threads: Optional[int]) -> int:
    """The thread count a call runs with: ``threads`` (checked by :func:`check_threads`), else the default."""
    if threads is None:
        return _threads
    if type(threads) is int and 1 <= threads <= MAX_THREADS:  # the common case, without the checks' cost
        return threads
    return check_threads(threads)
