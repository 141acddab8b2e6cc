"""Running a batch on a dask.distributed cluster (``convert(scheduler=...)``)."""

from __future__ import annotations

from typing import List, Sequence

from .model import FAILED, ConvertOptions, ConvertRecord, ConvertTask, Done
from .worker import convert_file

__all__ = ["run_dask", "convert_files"]

#: Most files converted by one dask task.
_DASK_CHUNK = 16


def convert_files(tasks: Sequence[ConvertTask], options: ConvertOptions) -> List[ConvertRecord]:
    """:func:`convert_file` for each task, in order (one cluster task)."""
    return [convert_file(task, options) for task in tasks]


def run_dask(tasks: List[ConvertTask], options: ConvertOptions, scheduler, jobs: int, done: Done) -> None:
    """Run ``tasks`` on the cluster of ``scheduler`` (an address, ``"local"`` or a Client), calling
    ``done(index, record)`` for each; a cluster failure (a killed worker...) gives ``failed`` records."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError("scheduler= needs dask.distributed: pip install 'dicomrender[dask]'") from None
    cluster = None
    if hasattr(scheduler, "submit"):
        client, own_client = scheduler, False
    else:
        if scheduler == "local":
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(scheduler)
        own_client = True
    try:
        # A few files per cluster task: the scheduler's cost per task is of the order of a file's
        # conversion; at least 4 tasks per worker thread keep the load balanced.
        threads = max(1, sum(client.nthreads().values()))
        size = max(1, min(_DASK_CHUNK, len(tasks) // (4 * threads)))
        futures = {}
        for start in range(0, len(tasks), size):
            indices = range(start, min(start + size, len(tasks)))
            future = client.submit(convert_files, [tasks[i] for i in indices], options, pure=False)
            futures[future] = indices
        for future in as_completed(futures):
            indices = futures[future]
            try:
                records = future.result()
            except Exception as exc:  # convert_files never raises: this is the cluster (KilledWorker...)
                message = str(exc) or repr(exc)
                if len(indices) > 1:
                    message += f" (a cluster task converting {len(indices)} files)"
                records = [ConvertRecord(tasks[i].source, FAILED, error=type(exc).__name__, message=message)
                           for i in indices]
            for index, record in zip(indices, records):
                done(index, record)
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
