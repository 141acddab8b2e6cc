"""The local process pool: worker processes with a queue each, per-file timeouts, dead workers replaced.

A worker that hangs on a file (longer than ``timeout``) is killed, one that
dies is noticed; either way that file gets a ``failed`` record, a new worker
takes the dead one's place, the files queued behind it go to the others, and
the batch goes on.

Workers die with this process, however it ends (an exception, SIGTERM turned
into one by the command, or SIGKILL): each holds only its own end of its
pipe, so it sees end-of-file when this process is gone, and on Linux the
kernel kills it when its parent dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections import deque
from multiprocessing.connection import wait
from typing import List, Optional, Set

from .model import FAILED, ConvertOptions, ConvertRecord, ConvertTask, Done, Work
from .worker import convert_file

__all__ = ["run_pool"]

#: What a worker sends once it has started.
_READY = "ready"

#: Imported once before forking (or by the forkserver) rather than in every worker.
_PRELOAD = ["dicomrender.batch.pool", "dicomrender.rendering", "PIL.Image", "PIL.JpegImagePlugin",
            "PIL.PngImagePlugin"]

#: Files queued per worker: the next one waits in the pipe while the worker converts the current
#: one, so a worker never idles for a round trip to this process.
_QUEUE_DEPTH = 2

#: The longest this process waits for its workers at once (seconds): a timeout of days is waited for in
#: rounds, because the wait's own argument has a limit.
_LONGEST_WAIT = 3600.0

#: This process's ends of its workers' pipes.  A forked worker inherits copies of them all, its own
#: included, and must close them: while any copy is open, no worker sees end-of-file when this process dies.
_PARENT_ENDS: Set = set()

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int, direct: bool) -> None:
    """Have the kernel kill this worker when its parent dies, and exit if the batch is gone already.

    ``direct``: the worker is a child of the batch's process ``parent_pid``
    (fork, spawn); else of a forkserver, which exits with the batch's process.
    The check after ``prctl`` covers a parent that died before it.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: end-of-file on the pipe still ends the worker
            pass
    if direct:
        gone = os.getppid() != parent_pid
    else:
        try:
            os.kill(parent_pid, 0)
            gone = False
        except ProcessLookupError:
            gone = True
        except OSError:
            gone = False
    if gone:
        os._exit(1)


def _worker_main(conn, options: ConvertOptions, work: Work, parent_pid: int, direct: bool) -> None:
    _die_with_parent(parent_pid, direct)
    for end in list(_PARENT_ENDS):  # inherited by a fork: see _PARENT_ENDS
        end.close()
    _PARENT_ENDS.clear()
    # Ctrl-C goes to the whole process group: the parent decides, workers just stop with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        conn.send(_READY)
        while True:
            item = conn.recv()
            if item is None:
                return
            index, task = item
            conn.send((index, work(task, options)))
    except (EOFError, OSError):  # the parent is gone
        return


class _Worker:
    """A worker process and the files sent to it, in the order it converts them."""

    def __init__(self, context, options, work: Work):
        self.conn, child = multiprocessing.Pipe()
        _PARENT_ENDS.add(self.conn)
        direct = context.get_start_method() != "forkserver"
        self.process = context.Process(target=_worker_main, args=(child, options, work, os.getpid(), direct),
                                       daemon=True)
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about forking with native threads; see _pool_context for why it is safe.
                warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
                self.process.start()
        except BaseException:
            self.close()
            raise
        finally:
            child.close()
        self.queue: deque = deque()  # (index, task); the first is being converted
        self.started = 0.0  # when the first of the queue started
        self.broken = False  # its pipe broke on a send: the worker is gone

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait for the worker's first message; a worker that cannot start stops the batch."""
        message = None
        if wait([self.conn], timeout):
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                pass
        if message != _READY:
            self.kill()
            raise RuntimeError(
                f"a worker process could not start (it {_exit_description(self.process.exitcode)}). A script that "
                f"calls convert() must do so under `if __name__ == \"__main__\":`, because worker processes "
                f"import it; jobs=1 converts without worker processes")

    def send(self, index, task) -> bool:
        """Queue a file for the worker; False (the file not queued) when the worker's end of the pipe is
        closed: the worker died, between two looks at it."""
        try:
            self.conn.send((index, task))
        except OSError:  # BrokenPipeError, or the connection already closed
            self.broken = True
            return False
        if not self.queue:
            self.started = time.monotonic()
        self.queue.append((index, task))
        return True

    def kill(self):
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.close()

    def close(self):
        _PARENT_ENDS.discard(self.conn)
        self.conn.close()


def _pool_context():
    """The multiprocessing context for a new worker.

    A fork is cheapest and, when this process runs no other Python thread,
    safe: no lock can be copied in a locked state.  Native threads (BLAS,
    the kernel's OpenMP pool) do not matter, because workers render with one
    kernel thread and never enter a parallel region.  With other Python
    threads (a dask client, a web server...) workers fork from a forkserver,
    a clean process started once; its workers re-import the main script,
    which cannot work for code read from stdin: fork then anyway.
    """
    methods = multiprocessing.get_all_start_methods()
    main = sys.modules.get("__main__")
    main_path = getattr(main, "__file__", None)
    unimportable_main = (main_path is not None and getattr(getattr(main, "__spec__", None), "name", None) is None
                         and not os.path.isfile(main_path))
    if "fork" in methods and (threading.active_count() == 1 or unimportable_main):
        for name in _PRELOAD:  # imported once here rather than in every worker
            importlib.import_module(name)
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def _exit_description(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def _successor(w: _Worker, pending: deque, options, work: Work) -> _Worker:
    """Stop ``w`` (the file it failed on already taken off its queue), put the files queued behind it
    first in ``pending`` and start the worker that takes its place (not yet waited for)."""
    w.kill()
    pending.extendleft(reversed(w.queue))  # the files queued behind it go first
    return _Worker(_pool_context(), options, work)


def run_pool(tasks: List[ConvertTask], options: ConvertOptions, jobs: int, timeout: Optional[float],
             done: Done, work: Work = convert_file) -> None:
    """Run ``work(task, options)`` for ``tasks`` on ``jobs`` worker processes, calling ``done(index, record)``
    for each.

    A worker whose current file takes longer than ``timeout`` seconds is
    killed and replaced; a worker that dies is replaced; either way that file
    gets a ``failed`` record, the files queued behind it go to other workers,
    and the batch goes on.  However this returns or raises, no worker is left.
    """
    context = _pool_context()
    pending = deque(enumerate(tasks))
    workers: List[_Worker] = []
    try:
        workers.extend(_Worker(context, options, work) for _ in range(min(jobs, len(tasks))))
        for w in workers:
            w.wait_ready()
        while pending or any(w.queue for w in workers):
            for w in workers:
                while pending and len(w.queue) < _QUEUE_DEPTH and not w.broken:
                    if not w.send(*pending[0]):
                        break
                    pending.popleft()
            busy = [w for w in workers if w.queue]
            wait_for = 0.0 if any(w.broken for w in workers) else _LONGEST_WAIT  # a broken one is replaced now
            if timeout is not None and busy:
                wait_for = min(wait_for, max(0.0, min(w.started + timeout for w in busy) - time.monotonic()))
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], wait_for))
            for position, w in enumerate(workers):
                if not w.queue and not w.broken:
                    continue
                died = w.broken or w.process.sentinel in ready
                try:
                    while w.queue and w.conn.poll():
                        index, record = w.conn.recv()
                        w.queue.popleft()
                        w.started = time.monotonic()
                        done(index, record)
                except (EOFError, OSError):
                    died = True
                if not w.queue:
                    if w.broken:  # gone while idle: replaced, no file was being converted
                        workers[position] = _successor(w, pending, options, work)
                        workers[position].wait_ready()
                    continue
                index, task = w.queue[0]
                if died:
                    w.process.join()
                    failure = ConvertRecord(task.source, FAILED, error="WorkerDiedError",
                                            message=f"the worker process {_exit_description(w.process.exitcode)} "
                                                    f"while converting this file")
                elif timeout is not None and time.monotonic() - w.started >= timeout:
                    failure = ConvertRecord(task.source, FAILED, error="TimeoutError",
                                            message=f"no result after {timeout:g} s; the worker was stopped")
                else:
                    continue
                w.queue.popleft()
                workers[position] = _successor(w, pending, options, work)
                done(index, failure)
                workers[position].wait_ready()
    finally:
        for w in workers:
            if not w.queue and w.process.is_alive():
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for w in workers:
            if not w.queue:
                w.process.join(max(0.0, deadline - time.monotonic()))
            w.kill()
