"""One sweep point: plan (and optionally simulate) it, and the resume file of finished points.

Finished points are appended to ``OUT/points.jsonl`` one JSON line at a time
(:class:`PointWriter`); :func:`read_points` reads them back so an interrupted
sweep runs only the points that have no line yet.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from planner.io.bundled import bundled_path
from planner.io.readers import read_network
from planner.model.scenario import scenario_from_dict
from planner.model.serialise import json_default
from planner.pipeline import plan
from planner.runtime.parallel import TaskError
from planner.sweep.spec import GENERATOR_PARAMS
from planner.topology.generators import generate_network

logger = logging.getLogger(__name__)

POINTS_FILE = "points.jsonl"


# ------------------------------------------------------------------ one point
@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point (picklable, no open files)."""

    key: str
    params: dict[str, Any]
    network: dict[str, Any]
    base_scenario: dict[str, Any]
    seed: int
    simulate: bool
    simulate_requests: int


@dataclass
class PointRecord:
    """The outcome of one point: parameters, status, metrics, solver summaries and timing."""

    key: str
    params: dict[str, Any]
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    solver: dict[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None
    time_s: float = 0.0
    worker: str = ""
    finished_at: str = ""

    def to_json(self) -> str:
        """One JSON line (no newline)."""
        return json.dumps(self.__dict__, sort_keys=True, default=json_default, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PointRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def row(self) -> dict[str, Any]:
        """Flat table row: key, status, params, metrics, solver columns, error."""
        return {
            "point": self.key,
            "status": self.status,
            **self.params,
            **self.metrics,
            **self.solver,
            "time_s": self.time_s,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "worker": self.worker,
        }


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@functools.lru_cache(maxsize=8)
def _cached_network(network_json: str, route_factor: float, drop_external: bool) -> Any:
    spec = json.loads(network_json)
    if "generator" in spec:
        params = {k: v for k, v in spec.items() if k not in ("generator", "n_sites", "seed")}
        return generate_network(
            spec["generator"],
            spec["n_sites"],
            seed=spec.get("seed", 0),
            route_factor=route_factor,
            **params,
        )
    path = Path(spec["file"]) if "file" in spec else bundled_path(spec["bundled"])
    return read_network(path, route_factor=route_factor, drop_external=drop_external)


def run_point(task: PointTask) -> PointRecord:
    """Plan (and optionally simulate) one point; never raises for a domain or solver error.

    Guarantees: ``status`` is ``"ok"`` with scalar metrics and per-stage
    solver status/gap/objective/time, or ``"failed"`` with the exception's type
    and message (first 500 characters; no traceback).
    """
    t0 = time.perf_counter()
    record = PointRecord(
        key=task.key,
        params=dict(task.params),
        status="ok",
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    try:
        net_spec = dict(task.network)
        overrides: dict[str, Any] = {}
        seed = task.seed
        for key, value in task.params.items():
            if key == "seed":
                seed = int(value)
            elif key.startswith("network.") and key[len("network.") :] in GENERATOR_PARAMS:
                net_spec[key[len("network.") :]] = value
            else:
                overrides[key] = value
        scenario = scenario_from_dict(task.base_scenario, source="sweep base scenario")
        if overrides:
            scenario = scenario.with_overrides(overrides, source=f"sweep point {task.key}")
        network = _cached_network(
            json.dumps(net_spec, sort_keys=True),
            scenario.network.route_factor,
            scenario.network.drop_external,
        )
        design = plan(network, scenario, seed=seed)
        record.metrics = {
            k: _finite(v) for k, v in design.metrics.items() if isinstance(v, int | float | str | bool) or v is None
        }
        for stage, summary in design.solves.items():
            for field_name in ("status", "gap", "objective"):
                if field_name in summary:
                    record.solver[f"{stage}.{field_name}"] = _finite(summary[field_name])
        for name, seconds in design.timing.items():
            record.solver[f"time.{name}"] = _finite(seconds)
        if task.simulate:
            record.metrics.update(_simulate(design, task.simulate_requests, seed))
    except Exception as exc:  # a failing point is data, not a crash of the sweep
        err = TaskError.from_exception(exc)
        record.status, record.error_type, record.error_message = (
            "failed",
            err.error_type,
            err.message,
        )
        logger.info("point %s failed: %s", task.key, err)
    record.time_s = time.perf_counter() - t0
    record.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    return record


def _simulate(design: Any, requests: int, seed: int) -> dict[str, Any]:
    """Scalar results of ``simulate_design`` (its ``totals`` and top-level numbers), prefixed ``sim.``.

    Runs serially: a Dask worker process may not start a process pool of its own.
    """
    # imported here: the simulation stack pulls in scipy.stats (about 2 s of import, measured with
    # python -X importtime), which only sweeps with simulate = true need
    from planner.simulate.design_check import simulate_design  # type: ignore[import-not-found,unused-ignore]

    sim = simulate_design(design, requests=requests, duration_s=None, seed=seed, backend="serial", workers=1)
    flat: dict[str, Any] = {}
    for source in (sim, sim.get("totals", {}) if isinstance(sim, Mapping) else {}):
        if isinstance(source, Mapping):
            for k, v in source.items():
                if isinstance(v, int | float | bool) and k != "seed":
                    flat[f"sim.{k}"] = _finite(v)
    return flat


# ------------------------------------------------------------------ resume file
def read_points(path: Path) -> dict[str, PointRecord]:
    """Finished points from a ``points.jsonl`` (a torn last line from an interrupt is skipped)."""
    done: dict[str, PointRecord] = {}
    if not path.is_file():
        return done
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = PointRecord.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                logger.warning("%s line %d is not a point record (%s); it will be run again", path, lineno, exc)
                continue
            done[rec.key] = rec
    return done


class PointWriter:
    """Appends one JSON line per finished point and flushes it to disk at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_file() and path.stat().st_size:
            # make sure a torn last line does not swallow the next record
            with path.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                needs_newline = fh.read(1) != b"\n"
            if needs_newline:
                with path.open("a", encoding="utf-8") as fh:
                    fh.write("\n")

    def write(self, record: PointRecord) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(record.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
