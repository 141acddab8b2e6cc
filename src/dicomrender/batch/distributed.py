"""Running a batch on a dask.distributed cluster (``convert(scheduler=...)``).

One cluster task per file, so that a file which kills its worker costs that
file only.  The scheduler gives up on a task once ``allowed-failures`` workers
died running it; in the ``LocalCluster`` that ``scheduler="local"`` starts
that is at the first death, and each worker holds one task at a time
(``worker-saturation`` 1), so no other file is in a dying worker's hands.  A
cluster of your own keeps its settings (dask's default retries a task on 3
more workers).  Files that failed for a cluster reason are not retried, except
``KilledWorker`` from a scheduler that allows no failure: such a file is
run once more, alone on the cluster, so that a file which was only in a
dying worker's queue converts; the file that kills has then run twice, and
has one ``failed`` record.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List

from .model import FAILED, ConvertOptions, ConvertRecord, ConvertTask, Done, Work
from .worker import convert_file

__all__ = ["dask_client", "run_dask", "LOCAL_SCHEDULER_CONFIG"]

#: The scheduler settings of the LocalCluster of ``scheduler="local"``: see the module's docstring.
LOCAL_SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}


@contextlib.contextmanager
def dask_client(scheduler, jobs: int) -> Iterator:
    """A Client of ``scheduler`` (an address, ``"local"``: a new LocalCluster of ``jobs`` worker processes, or a
    Client, which stays open), closed on exit with the cluster it started."""
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("scheduler= needs dask.distributed: pip install 'dicomrender[dask]'") from None
    if hasattr(scheduler, "submit"):
        yield scheduler
        return
    cluster = None
    if scheduler == "local":
        with dask.config.set(LOCAL_SCHEDULER_CONFIG):
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_dask(tasks: List[ConvertTask], options: ConvertOptions, client, done: Done, work: Work = convert_file) -> None:
    """Run ``work(task, options)`` for ``tasks`` on the cluster of ``client`` (see :func:`dask_client`), calling
    ``done(index, record)`` for each; a cluster failure (a killed worker...) gives a ``failed`` record."""
    from dask.distributed import as_completed

    futures = {client.submit(work, task, options, pure=False, retries=0): index for index, task in enumerate(tasks)}
    again = []
    # Results gathered as soon as they are ready: one still on a worker that dies is computed again (and
    # then reports its images as kept rather than written).
    for future, outcome in as_completed(futures, with_results=True, raise_errors=False):
        index = futures.pop(future)
        try:
            record = outcome if isinstance(outcome, ConvertRecord) else future.result()
        except Exception as exc:  # work() never raises: this is the cluster (KilledWorker...)
            if type(exc).__name__ == "KilledWorker" and getattr(exc, "allowed_failures", None) == 0:
                again.append(index)
                continue
            record = _cluster_failure(tasks[index], exc)
        done(index, record)
    for index in sorted(again):  # one at a time: nothing else is on the cluster beside it
        try:
            record = client.submit(work, tasks[index], options, pure=False, retries=0).result()
        except Exception as exc:
            record = _cluster_failure(tasks[index], exc)
        done(index, record)


def _cluster_failure(task: ConvertTask, exc: Exception) -> ConvertRecord:
    return ConvertRecord(task.source, FAILED, error=type(exc).__name__, message=str(exc) or repr(exc))
