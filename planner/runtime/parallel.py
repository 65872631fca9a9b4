"""The one executor layer of qkdplan: run independent tasks serially, in local
processes, or on a Dask cluster, with results returned in task order.

Every parallel computation in the code base (sweeps, paper reproductions,
Monte Carlo batches, the SMR checks of a plan, ``qkdplan simulate``) goes
through :func:`map_tasks`, so that choosing where to run is one argument, not
a code change. Code deep inside a stage uses :func:`map_chunks`, which runs
on the process-wide executor the CLI sets with :func:`use_executor`
(``--workers`` / ``--scheduler tcp://...``); without one it stays serial.

Optional behaviour, all keyword-only and off by default (so existing callers
see exceptions propagate exactly as before):

* ``capture_errors=True`` — a task that raises yields a :class:`TaskError`
  (exception type and message, no traceback) in its slot instead of stopping
  the whole map; other tasks go on.
* ``retries=N`` — a task that raises is run again up to ``N`` more times
  (Dask: ``client.map(retries=N)``, which also covers a worker that died).

Progress: both maps report to the process-wide tracker
(:func:`planner.runtime.tracker.current_tracker`) as results arrive in this process —
one unit per task for :func:`map_tasks`, one per item for :func:`map_chunks`
(a chunk's items count when the chunk returns) — so every chunked computation
gets a counted task with an ETA. ``progress="label"`` names the task,
``progress=False`` turns it off (for callers that count themselves).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from planner.runtime.tracker import current_tracker

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Backend = Literal["serial", "process", "dask"]
BACKENDS: tuple[str, ...] = ("serial", "process", "dask")
MAX_MESSAGE_CHARS = 500


def default_workers() -> int:
    """Number of worker processes to use by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class TaskError:
    """A task that raised: the exception's type name and its (first-line-limited) message."""

    error_type: str
    message: str
    attempts: int = 1

    @classmethod
    def from_exception(cls, exc: BaseException, *, attempts: int = 1) -> TaskError:
        """Summarise an exception: type name and message, cut to :data:`MAX_MESSAGE_CHARS`."""
        text = str(exc).strip() or repr(exc)
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[: MAX_MESSAGE_CHARS - 3] + "..."
        return cls(type(exc).__name__, text, attempts)

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"


@dataclass(frozen=True)
class _Retrying(Generic[T, R]):
    """Picklable wrapper: run ``func`` up to ``1 + retries`` times, re-raising the last error."""

    func: Callable[[T], R]
    retries: int

    def __call__(self, item: T) -> R:
        for attempt in range(self.retries + 1):
            try:
                return self.func(item)
            except Exception as exc:
                if attempt == self.retries:
                    raise
                logger.info(
                    "task failed (%s: %s); retry %d of %d",
                    type(exc).__name__,
                    exc,
                    attempt + 1,
                    self.retries,
                )
        raise AssertionError("unreachable")  # pragma: no cover


def map_tasks(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    backend: Backend = "process",
    workers: int | None = None,
    scheduler_address: str | None = None,
    on_result: Callable[[int, Any], Any] | None = None,
    capture_errors: bool = False,
    retries: int = 0,
    progress: str | bool = True,
) -> list[Any]:
    """Apply ``func`` to every item and return the results in item order.

    ``func`` must be a picklable top-level function (or picklable callable) and
    each item picklable. ``backend="serial"`` runs in this process;
    ``"process"`` uses a local process pool of ``workers`` processes (default:
    available cores); ``"dask"`` submits to ``dask.distributed`` (a
    ``LocalCluster`` of ``workers`` single-threaded processes unless
    ``scheduler_address`` names a running scheduler). With one worker or one
    item the process backend falls back to serial. ``on_result(index, result)``
    is called in this process as each result arrives, in completion order (for
    progress or incremental writes).

    Without ``capture_errors`` the first exception raised by ``func`` (after
    ``retries``) propagates; with it, that task's slot holds a
    :class:`TaskError` and the map continues. ``progress``: the name of the
    counted progress task (``True``: named after ``func``; ``False``: none).
    Guarantees: the returned list has one entry per item, in item order.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; use 'serial', 'process' or 'dask'")
    if retries < 0:
        raise ValueError(f"retries={retries} must be >= 0")
    tasks: Sequence[T] = list(items)
    n = len(tasks)
    nworkers = workers or default_workers()
    results: list[Any] = [None] * n
    if n == 0:
        return results

    with _progress_task(progress, func, n, unit="tasks") as bar:

        def deliver(i: int, value: Any) -> None:
            results[i] = value
            if on_result is not None:
                on_result(i, value)
            if bar is not None:
                bar.advance()

        _run_tasks(func, tasks, backend, nworkers, scheduler_address, deliver, capture_errors, retries)
    return results


def _run_tasks(
    func: Callable[[T], R],
    tasks: Sequence[T],
    backend: Backend,
    nworkers: int,
    scheduler_address: str | None,
    deliver: Callable[[int, Any], None],
    capture_errors: bool,
    retries: int,
) -> None:
    n = len(tasks)
    if backend == "dask":
        _map_dask(func, tasks, nworkers, scheduler_address, deliver, capture_errors, retries)
        return
    call: Callable[[T], R] = _Retrying(func, retries) if retries else func
    if backend == "serial" or nworkers <= 1 or n <= 1:
        for i, item in enumerate(tasks):
            try:
                value: Any = call(item)
            except Exception as exc:
                if not capture_errors:
                    raise
                value = TaskError.from_exception(exc, attempts=retries + 1)
            deliver(i, value)
        return
    with ProcessPoolExecutor(max_workers=min(nworkers, n)) as pool:
        futures = {pool.submit(call, item): i for i, item in enumerate(tasks)}
        try:
            for fut in as_completed(futures):
                try:
                    value = fut.result()
                except Exception as exc:
                    if not capture_errors:
                        raise
                    value = TaskError.from_exception(exc, attempts=retries + 1)
                deliver(futures[fut], value)
        except BaseException:
            for fut in futures:
                fut.cancel()
            _stop_workers(pool)
            raise


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes (the map was interrupted or failed).

    Without this the pool's shutdown would wait for the tasks already running,
    and a worker catches KeyboardInterrupt (SIGINT, or SIGTERM turned into one)
    as a task error and goes on with the next queued task, so an interrupted
    run could keep computing for minutes. SIGKILL cannot be caught.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for proc in processes:
        with suppress(Exception):
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with suppress(Exception):
            proc.join(timeout=5.0)


# names shown for the chunked computations of other modules until they pass ``progress="..."``
_KNOWN_LABELS: dict[str, str] = {
    "smr_row": "SMR routing checks",
    "run_batch": "simulating demand batches",
    "run_point": "sweep points",
    "_run_chunk": "Monte Carlo chunks",  # reports.reproduce_smr
}


def _label(func: Any) -> str:
    name = str(getattr(func, "__name__", type(func).__name__))
    return _KNOWN_LABELS.get(name, name.strip("_").replace("_", " "))


@contextmanager
def _progress_task(progress: str | bool, func: Any, total: int, *, unit: str) -> Iterator[Any]:
    """A counted task of the process-wide tracker for one map (``None`` when ``progress`` is off)."""
    if progress is False or total == 0:
        yield None
        return
    name = progress if isinstance(progress, str) else _label(func)
    with current_tracker().task(name, total=total, unit=unit) as bar:
        yield bar


def _map_dask(
    func: Callable[[T], R],
    tasks: Sequence[T],
    nworkers: int,
    scheduler_address: str | None,
    deliver: Callable[[int, Any], None],
    capture_errors: bool,
    retries: int,
) -> None:
    # importing distributed resets its loggers from the Dask config; keep a level the application set
    dask_logger = logging.getLogger("distributed")
    level_before = dask_logger.level
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_as_completed

    if level_before != logging.NOTSET:
        dask_logger.setLevel(level_before)

    cluster = None
    if scheduler_address:
        logger.info("connecting to Dask scheduler %s", scheduler_address)
        client = Client(scheduler_address)
    else:
        logger.info("starting a Dask LocalCluster of %d workers", nworkers)
        cluster = LocalCluster(n_workers=nworkers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = client.map(func, tasks, pure=False, retries=retries or None)
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_as_completed(futures):
            i = index[fut.key]
            try:
                value: Any = fut.result()
            except Exception as exc:
                if not capture_errors:
                    raise
                value = TaskError.from_exception(exc, attempts=retries + 1)
            fut.release()
            deliver(i, value)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------
# the process-wide executor choice (set once by the CLI, read by the stages)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Executor:
    """Where :func:`map_chunks` runs its tasks: a backend, a worker count, a Dask scheduler."""

    backend: Backend = "serial"
    workers: int | None = None
    scheduler_address: str | None = None


_CURRENT: list[Executor] = [Executor()]


def current_executor() -> Executor:
    """The executor set by :func:`use_executor` (default: serial, so library calls stay in-process)."""
    return _CURRENT[-1]


@contextmanager
def use_executor(
    backend: Backend | None = None, *, workers: int | None = None, scheduler_address: str | None = None
) -> Iterator[Executor]:
    """Run the enclosed block's :func:`map_chunks` calls on the given executor.

    A ``scheduler_address`` implies the Dask backend; otherwise ``backend``
    defaults to ``"process"`` when ``workers`` > 1 and to ``"serial"`` when
    nothing is given. Restores the previous executor on exit.
    """
    if scheduler_address:
        chosen: Backend = "dask"
    elif backend is not None:
        chosen = backend
    else:
        chosen = "process" if workers and workers > 1 else "serial"
    if chosen not in BACKENDS:
        raise ValueError(f"unknown backend '{chosen}'; use 'serial', 'process' or 'dask'")
    ex = Executor(chosen, workers, scheduler_address)
    _CURRENT.append(ex)
    try:
        yield ex
    finally:
        _CURRENT.pop()


@dataclass(frozen=True)
class _Chunk(Generic[T, R]):
    """Picklable task: apply ``func`` to each item of a chunk, with a shared ``context``."""

    func: Callable[[Any, T], R]
    context: Any
    items: tuple[T, ...]


def _run_chunk(chunk: _Chunk[T, R]) -> list[R]:
    return [chunk.func(chunk.context, item) for item in chunk.items]


def map_chunks(
    func: Callable[[Any, T], R],
    context: Any,
    items: Sequence[T],
    *,
    executor: Executor | None = None,
    chunks_per_worker: int = 4,
    min_items_for_processes: int = 0,
    progress: str | bool = True,
) -> list[R]:
    """``[func(context, item) for item in items]`` on an executor, in item order.

    ``context`` (e.g. a graph) is sent once per chunk instead of once per item;
    items are dealt round-robin into ``chunks_per_worker`` x workers chunks so
    expensive neighbours spread out. ``executor`` defaults to
    :func:`current_executor`; with fewer than ``min_items_for_processes``
    items the local process backend runs serially (starting processes would
    cost more than it saves; Dask is always used when asked for). ``progress``:
    the name of the counted progress task, in items (``True``: named after
    ``func``; ``False``: none). Guarantees: the same results, in the same order,
    on every backend (``func`` must be a picklable top-level function).
    """
    ex = executor or current_executor()
    n = len(items)
    if n == 0:
        return []
    with _progress_task(progress, func, n, unit="items") as bar:
        if ex.backend == "serial" or (ex.backend == "process" and n < min_items_for_processes):
            serial: list[R] = []
            step = max(1, n // 200)  # report in at most ~200 steps: cheap for millions of tiny items
            for k, item in enumerate(items, 1):
                serial.append(func(context, item))
                if bar is not None and (k % step == 0 or k == n):
                    bar.advance(step if k % step == 0 else k % step)
            return serial
        nw = ex.workers or default_workers()
        n_chunks = max(1, min(n, chunks_per_worker * nw))
        chunks = [_Chunk(func, context, tuple(items[c::n_chunks])) for c in range(n_chunks)]

        def count(_i: int, values: Any) -> None:
            if bar is not None:
                bar.advance(len(values))

        done = map_tasks(
            _run_chunk,
            chunks,
            backend=ex.backend,
            workers=ex.workers,
            scheduler_address=ex.scheduler_address,
            on_result=count,
            progress=False,
        )
    out: list[Any] = [None] * n
    for c, values in enumerate(done):
        out[c::n_chunks] = values
    return out
