"""Parameter sweeps: plan (and optionally simulate) one network under many scenarios, on Dask.

The sweep is split by job: :mod:`planner.sweep.spec` reads and checks the
TOML specification and expands it into points, :mod:`planner.sweep.points`
runs one point and keeps the resume file, :mod:`planner.sweep.tables` writes
the result table and plots, and this module runs the points
(:func:`execute_sweep`, :func:`run_sweep`).

Each point is identified by a stable hash of its parameters and of everything
fixed (network spec, resolved base scenario, simulate flag): ``point_key``.
Finished points are appended to ``OUT/points.jsonl`` one JSON line at a time,
so a sweep that is interrupted and started again runs only the points that
have no line yet (a changed spec changes every key, so nothing stale is
reused). A point that raises records its error type and message and the sweep
goes on. At the end ``results.parquet``, ``results.csv`` (one row per point)
and ``plots/<param>.png|svg`` (each metric against each varied parameter) are
written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import ValidationError
from planner.runtime.parallel import Backend, TaskError, default_workers, map_tasks
from planner.runtime.progress import current_tracker, display
from planner.sweep.points import (
    POINTS_FILE,
    PointRecord,
    PointTask,
    PointWriter,
    read_points,
    run_point,
)
from planner.sweep.spec import SweepSpec, load_spec
from planner.sweep.tables import plot_sweep, write_table

logger = logging.getLogger(__name__)

PointCallback = Callable[["PointRecord", int, int], None]
StartCallback = Callable[[int, int, int], None]


# ------------------------------------------------------------------ the sweep
@dataclass
class SweepResult:
    """What a sweep produced: counts, wall time, the table and the files written."""

    name: str
    out_dir: Path
    n_points: int
    n_resumed: int
    n_run: int
    n_ok: int
    n_failed: int
    wall_time_s: float
    table: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for a terminal: counts, wall time, error types, files."""
        lines = [
            f"sweep '{self.name}': {self.n_points} points — {self.n_ok} ok, {self.n_failed} failed "
            f"({self.n_run} run now, {self.n_resumed} resumed from {POINTS_FILE}) in {self.wall_time_s:.1f} s"
        ]
        for etype, count in sorted(self.errors.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count} x {etype}")
        lines.append(f"results: {self.out_dir / 'results.csv'} (+ results.parquet, plots/)")
        return "\n".join(lines)


def execute_sweep(
    spec: SweepSpec,
    *,
    out_dir: Path,
    backend: Backend = "dask",
    scheduler_address: str | None = None,
    workers: int | None = None,
    on_point: PointCallback | None = None,
    on_start: StartCallback | None = None,
    plots: bool = True,
) -> SweepResult:
    """Run every point of ``spec`` that ``out_dir/points.jsonl`` does not hold yet, then write the table and plots.

    ``backend`` is a :func:`planner.runtime.parallel.map_tasks` backend (``"dask"``
    by default; ``"serial"`` for debugging). ``on_point(record, n_finished,
    n_points)`` is called in this process as each point finishes;
    ``on_start(n_points, n_resumed, n_resumed_failed)`` once before any runs.
    """
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    points_path = out_dir / POINTS_FILE
    done = read_points(points_path)
    keys = [spec.point_key(p) for p in spec.points]
    if len(set(keys)) != len(keys):
        logger.info("the spec repeats %d point(s); each runs once", len(keys) - len(set(keys)))
    todo = _tasks_to_run(spec, keys, done)
    n_unique = len(set(keys))
    n_resumed = sum(1 for k in set(keys) if k in done)
    logger.info("sweep %s: %d points, %d already done, %d to run", spec.name, n_unique, n_resumed, len(todo))
    resumed_failed = sum(1 for k in set(keys) if k in done and done[k].status != "ok")
    if on_start is not None:
        on_start(n_unique, n_resumed, resumed_failed)
    _write_spec_json(spec, n_unique, out_dir)
    _run_tasks(
        spec,
        todo,
        done,
        points_path=points_path,
        n_points=n_unique,
        n_resumed=n_resumed,
        n_resumed_failed=resumed_failed,
        backend=backend,
        scheduler_address=scheduler_address,
        workers=workers,
        on_point=on_point,
    )
    records = [done[k] for k in dict.fromkeys(keys)]
    table = pd.DataFrame([r.row() for r in records])
    files = write_table(table, out_dir)
    if plots:
        files += plot_sweep(table, spec.varied, out_dir / "plots", metrics=spec.plot_metrics)
    n_failed = int((table["status"] != "ok").sum()) if len(table) else 0
    errors = table.loc[table["status"] != "ok", "error_type"].value_counts().to_dict() if n_failed else {}
    return SweepResult(
        name=spec.name,
        out_dir=out_dir,
        n_points=len(records),
        n_resumed=n_resumed,
        n_run=len(todo),
        n_ok=len(records) - n_failed,
        n_failed=n_failed,
        wall_time_s=time.perf_counter() - t0,
        table=table,
        files=files,
        errors={str(k): int(v) for k, v in errors.items()},
    )


def _run_tasks(
    spec: SweepSpec,
    todo: list[PointTask],
    done: dict[str, PointRecord],
    *,
    points_path: Path,
    n_points: int,
    n_resumed: int,
    n_resumed_failed: int,
    backend: Backend,
    scheduler_address: str | None,
    workers: int | None,
    on_point: PointCallback | None,
) -> None:
    """Run ``todo`` through :func:`map_tasks`, appending each record to ``points_path`` and ``done`` as it arrives.

    A task lost by the executor (worker died, unpicklable ...) becomes a
    ``"failed"`` record; progress is counted on the process-wide tracker.
    """
    writer = PointWriter(points_path)
    finished = n_resumed
    failed = n_resumed_failed
    bar = current_tracker().task(f"sweep {spec.name}", total=n_points, unit="points", initial=n_resumed)
    if failed:
        bar.set_note(f"{failed} failed")

    def on_result(i: int, value: Any) -> None:
        nonlocal finished, failed
        if isinstance(value, TaskError):  # the task itself was lost (worker died, unpicklable ...)
            task = todo[i]
            value = PointRecord(
                key=task.key,
                params=dict(task.params),
                status="failed",
                error_type=value.error_type,
                error_message=value.message,
                finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
        writer.write(value)
        done[value.key] = value
        finished += 1
        if value.status != "ok":
            failed += 1
            bar.set_note(f"{failed} failed")
        bar.advance()
        if on_point is not None:
            on_point(value, finished, n_points)

    with bar:
        if todo:
            nworkers = workers or default_workers()
            map_tasks(
                run_point,
                todo,
                backend=backend,
                workers=nworkers,
                scheduler_address=scheduler_address,
                on_result=on_result,
                capture_errors=True,
                retries=spec.retries,
                progress=False,
            )


def _tasks_to_run(spec: SweepSpec, keys: list[str], done: dict[str, PointRecord]) -> list[PointTask]:
    """One task per point key not in ``done``, in spec order; a repeated key runs once."""
    todo: list[PointTask] = []
    seen: set[str] = set()
    for key, params in zip(keys, spec.points, strict=True):
        if key in done or key in seen:
            continue
        seen.add(key)
        todo.append(
            PointTask(
                key=key,
                params=params,
                network=spec.network,
                base_scenario=spec.base_scenario,
                seed=spec.seed,
                simulate=spec.simulate,
                simulate_requests=spec.simulate_requests,
            )
        )
    return todo


def _write_spec_json(spec: SweepSpec, n_points: int, out_dir: Path) -> None:
    """``out_dir/spec.json``: name, source, fingerprint, network, varied keys and point count."""
    (out_dir / "spec.json").write_text(
        json.dumps(
            {
                "name": spec.name,
                "source": spec.source,
                "fingerprint": spec.fingerprint,
                "network": spec.network,
                "varied": spec.varied,
                "n_points": n_points,
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )


def run_sweep(
    spec_path: Path,
    *,
    out_dir: Path,
    scheduler_address: str | None = None,
    workers: int | None = None,
    console: Any = None,
    backend: Backend = "dask",
) -> SweepResult:
    """Load ``spec_path``, run it on Dask (LocalCluster unless ``scheduler_address``) and write the outputs.

    With a ``rich`` ``console`` progress with an ETA is shown there
    (:func:`planner.runtime.progress.display`: a live bar on a terminal, else plain
    lines); without one, each finished point goes to the log. Raises :class:`ValidationError` for a bad spec
    (every problem at once) before anything runs.
    """
    spec = load_spec(spec_path)
    if workers is not None and workers < 1:
        raise ValidationError(f"--workers {workers}: need at least 1 worker", source="command line")
    if console is None:

        def log_point(record: PointRecord, finished: int, total: int) -> None:
            logger.info("[%d/%d] %s %s", finished, total, record.status, record.params)

        return execute_sweep(
            spec,
            out_dir=out_dir,
            backend=backend,
            scheduler_address=scheduler_address,
            workers=workers,
            on_point=log_point,
        )
    # the points are counted (with an ETA) by execute_sweep on the process-wide tracker
    with display(console):
        return execute_sweep(
            spec,
            out_dir=out_dir,
            backend=backend,
            scheduler_address=scheduler_address,
            workers=workers,
        )
