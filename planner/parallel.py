"""The one executor layer of qkdplan: run independent tasks serially, in local
processes, or on a Dask cluster, with results returned in task order.

Every parallel computation in the code base (sweeps, paper reproductions,
Monte Carlo batches) goes through :func:`map_tasks`, so that choosing where to
run is one argument, not a code change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Backend = Literal["serial", "process", "dask"]


def default_workers() -> int:
    """Number of worker processes to use by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def map_tasks(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    backend: Backend = "process",
    workers: int | None = None,
    scheduler_address: str | None = None,
    on_result: Callable[[int, R], Any] | None = None,
) -> list[R]:
    """Apply ``func`` to every item and return the results in item order.

    ``func`` must be a picklable top-level function and each item picklable.
    ``backend="serial"`` runs in this process; ``"process"`` uses a local
    process pool of ``workers`` processes (default: available cores); ``"dask"``
    submits to ``dask.distributed`` (a ``LocalCluster`` unless
    ``scheduler_address`` names a running scheduler). With one worker or one
    item the process backend falls back to serial. ``on_result(index, result)``
    is called as each result arrives (for progress or incremental writes).
    Exceptions raised by ``func`` propagate.
    """
    tasks: Sequence[T] = list(items)
    n = len(tasks)
    nworkers = workers or default_workers()
    results: list[Any] = [None] * n
    if backend == "serial" or (backend == "process" and (nworkers <= 1 or n <= 1)):
        for i, item in enumerate(tasks):
            results[i] = func(item)
            if on_result is not None:
                on_result(i, results[i])
        return results
    if backend == "process":
        with ProcessPoolExecutor(max_workers=min(nworkers, n)) as pool:
            futures = {pool.submit(func, item): i for i, item in enumerate(tasks)}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                if on_result is not None:
                    on_result(i, results[i])
        return results
    if backend == "dask":
        return _map_dask(func, tasks, nworkers, scheduler_address, on_result)
    raise ValueError(f"unknown backend '{backend}'; use 'serial', 'process' or 'dask'")


def _map_dask(
    func: Callable[[T], R],
    tasks: Sequence[T],
    nworkers: int,
    scheduler_address: str | None,
    on_result: Callable[[int, R], Any] | None,
) -> list[R]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler_address:
        client = Client(scheduler_address)
    else:
        cluster = LocalCluster(n_workers=nworkers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = client.map(func, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        for fut in as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            if on_result is not None:
                on_result(i, results[i])
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
