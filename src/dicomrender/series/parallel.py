"""Running chunks of a series' work side by side: forked processes or threads, and the shared output.

Reading a header is Python work under the GIL (pydicom's parser), so threads barely help there;
forked processes do, and cost one ``fork`` each (a few milliseconds).  The caller runs the first chunk
itself, the others run in children forked for the call, which write the volume straight into an
anonymous shared mapping allocated before the fork and send back only small results (headers,
counts) through a pipe.  Where ``fork`` is missing or unsafe (a process that runs other threads),
threads do the work instead: reading files and the kernel release the GIL, parsing does not.
"""

from __future__ import annotations

import gc
import mmap
import os
import pickle
import signal
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from ..engine import usable_cpus
from ..errors import SeriesError

__all__ = ["EXECUTORS", "choose_executor", "idle_cpus", "worker_count", "map_chunks", "split", "shared_empty"]

#: ``executor=`` values: "auto" takes processes where fork is available and safe, else threads.
EXECUTORS = ("auto", "processes", "threads")


def idle_cpus() -> int:
    """Usable cores not busy with other work, at least 1: the usable cores less the threads of other
    processes running or ready to run now (Linux: ``/proc/loadavg``'s running count, the least of a few
    reads, without the calling thread), else less the 1-minute load average beyond this process's own.

    On a machine whose cores are all busy, extra workers only compete for them (and a fork costs
    milliseconds): the default then stays serial.  The running count describes this moment, so a
    call right after a parallel one (whose workers weigh on the 1-minute average for a minute) is not
    taken for a busy machine.
    """
    cores = usable_cpus()
    running = _running_now()
    if running is not None:
        return max(1, cores - max(0, running - 1))
    try:
        others = max(0.0, os.getloadavg()[0] - 1.0)
    except (AttributeError, OSError):
        return cores
    return max(1, cores - int(others))


def _running_now(reads: int = 3) -> Optional[int]:
    """Threads running or runnable system-wide now (the calling one included), the least of ``reads``
    reads of ``/proc/loadavg``; None where there is no such file."""
    counts = []
    try:
        for _ in range(reads):
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
    except (OSError, ValueError, IndexError):
        return None
    return min(counts)


def worker_count(jobs: Optional[int], items: int, per_worker: int) -> int:
    """Workers for ``items`` units of work: ``jobs`` (default: the idle cores, :func:`idle_cpus`), but
    no more than one per ``per_worker`` items, so that a fork pays for itself."""
    if jobs is None:
        jobs = idle_cpus()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    return max(1, min(jobs, -(-items // max(1, per_worker))))


def choose_executor(executor: str, shared_output: bool = True) -> str:
    """"processes" or "threads" for ``executor`` ("auto", "processes" or "threads").

    Processes need ``os.fork`` and, to be safe, a process with no other thread running (a lock held
    by another thread at the fork stays held in the child); the output must be one they can share.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    can_fork = hasattr(os, "fork") and shared_output
    if executor == "processes" and not can_fork:
        raise ValueError("executor='processes' needs os.fork and an output buffer allocated by dicomrender "
                         "(out= is written by threads)")
    if executor == "auto":
        return "processes" if can_fork and threading.active_count() == 1 else "threads"
    return executor


def split(count: int, parts: int) -> List[range]:
    """``range(count)`` in ``parts`` contiguous runs of nearly equal length (none empty)."""
    parts = max(1, min(parts, count))
    bounds = [count * k // parts for k in range(parts + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(parts)]


def shared_empty(shape: tuple, processes: bool) -> np.ndarray:
    """An uninitialised uint8 array; in memory forked children write to and the caller sees."""
    if not processes:
        return np.empty(shape, dtype=np.uint8)
    nbytes = int(np.prod(shape, dtype=np.int64))
    buffer = mmap.mmap(-1, max(nbytes, 1))  # anonymous and shared across fork on every POSIX system
    return np.frombuffer(buffer, dtype=np.uint8, count=nbytes).reshape(shape)


def map_chunks(fn: Callable[[Any], Any], chunks: Sequence[Any], executor: str) -> List[Any]:
    """``[fn(chunk) for chunk in chunks]``, the chunks side by side; the first runs in the caller.

    An exception in any chunk is raised here (the first chunk's first); warnings raised in a child
    process are raised again in the caller.
    """
    if len(chunks) <= 1:
        return [fn(chunk) for chunk in chunks]
    if executor == "processes":
        return _forked(fn, chunks)
    with ThreadPoolExecutor(max_workers=len(chunks) - 1, thread_name_prefix="dicomrender-series") as pool:
        futures = [pool.submit(fn, chunk) for chunk in chunks[1:]]
        try:
            first = fn(chunks[0])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return [first] + [future.result() for future in futures]


def _child(fn, chunk, write_fd: int) -> None:
    """Run in a forked child: ``fn(chunk)``, its warnings and its result or exception, pickled to the pipe."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome: tuple = (True, fn(chunk))
        except BaseException as exc:
            outcome = (False, exc)
    notes = [(w.category, str(w.message)) for w in caught]
    try:
        payload = pickle.dumps(outcome + (notes,), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an unpicklable result or exception: say what it was
        error = SeriesError(f"a worker process failed: {outcome[1]!r} (not picklable: {exc})")
        payload = pickle.dumps((False, error, notes), protocol=pickle.HIGHEST_PROTOCOL)
    with os.fdopen(write_fd, "wb") as pipe:
        pipe.write(payload)


def _forked(fn, chunks) -> List[Any]:
    children: List[tuple] = []
    # Objects the collector never visits are not written to, so the pages the child shares with this
    # process stay shared instead of being copied on its first collection; and the caller's own
    # collections meanwhile walk only the new objects.
    gc.freeze()
    try:
        for chunk in chunks[1:]:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns into the caller's code
                status = 0
                try:
                    os.close(read_fd)
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    # a short-lived child: the collector would only walk (and copy) the parent's pages
                    gc.disable()
                    _child(fn, chunk, write_fd)
                except BaseException:
                    status = 1
                finally:
                    os._exit(status)
            os.close(write_fd)
            children.append((pid, read_fd))
        # the caller's own chunk with everything from before still frozen: its collections walk only
        # what the chunk allocates (unfrozen once the children are done, in the finally below)
        results = [fn(chunks[0])]
        while children:
            pid, read_fd = children[0]
            with os.fdopen(read_fd, "rb") as pipe:
                payload = pipe.read()
            _, status = os.waitpid(pid, 0)
            children.pop(0)
            if not payload:
                raise SeriesError(f"a worker process died ({_describe(status)}) before reporting its result")
            ok, value, notes = pickle.loads(payload)
            for category, message in notes:
                warnings.warn(message, category, stacklevel=2)
            if not ok:
                raise value
            results.append(value)
        return results
    finally:
        gc.unfreeze()
        for pid, read_fd in children:  # only after an error: stop and reap the children still running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            try:
                os.close(read_fd)
            except OSError:
                pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(number).name}"
        except ValueError:
            return f"killed by signal {number}"
    return f"exit status {os.WEXITSTATUS(status)}"
