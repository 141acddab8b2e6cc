"""The kernel's thread setting and the one answer to "how many cores may this process use"."""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["usable_cpus", "set_threads", "get_threads", "resolve_threads"]


def usable_cpus() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_threads = usable_cpus()


def set_threads(n: Optional[int]) -> None:
    """Set the default number of kernel threads (``None``: every core this process may use)."""
    global _threads
    if n is None:
        n = usable_cpus()
    if int(n) < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    _threads = int(n)


def get_threads() -> int:
    """The default number of kernel threads."""
    return _threads


def resolve_threads(threads: Optional[int]) -> int:
    """The thread count a call runs with: ``threads``, else the default."""
    return _threads if threads is None else max(1, int(threads))
