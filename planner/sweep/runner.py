"""Parameter sweeps: plan (and optionally simulate) one network under many scenarios, on Dask.

A sweep specification is a TOML file::

    name = "capacity-vs-attenuation"
    seed = 0                      # planning seed unless 'seed' is varied
    simulate = false              # also run planner.simulate.design_check.simulate_design
    retries = 0                   # re-run a point whose task raised (worker lost, ...)
    plot_metrics = []             # metrics to plot (default: every numeric metric that varies)

    [network]                     # exactly one of generator / file / bundled
    generator = "grid"            # waxman | random_geometric | grid (planner.topology.generators)
    n_sites = 12
    seed = 1
    extent_km = 150.0
    # file = "sites.csv"          # relative to this spec file
    # bundled = "topology-zoo/Abilene.graphml"

    [scenario]
    # file = "my-scenario.toml"   # default: the bundled default scenario
    [scenario.set]                # fixed overrides for every point
    "solver.time_limit_s" = 10.0

    [grid]                        # cartesian product of these lists
    "access.capacity" = [4, 6, 8]
    seed = [0, 1]

    [zip]                         # lists of equal length, varied together
    "physics.q_swap" = [0.5, 0.7, 0.9]
    "memory.edge_units" = [2, 4, 8]

Varied keys are dotted scenario keys (``access.capacity``,
``physics.alpha_db_per_km`` ...), ``seed`` (the planning seed), or
``network.<param>`` for a generator parameter (``network.n_sites``,
``network.seed``, ``network.extent_km`` ...). The points are the product of
the grid with the zipped rows.

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

import functools
import hashlib
import importlib.util
import itertools
import json
import logging
import math
import os
import socket
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd

from planner.errors import InputFormatError, ProblemCollector, ValidationError
from planner.runtime.parallel import Backend, TaskError, default_workers, map_tasks

logger = logging.getLogger(__name__)

POINTS_FILE = "points.jsonl"
TOP_KEYS = frozenset(
    {
        "name",
        "seed",
        "simulate",
        "retries",
        "plot_metrics",
        "simulate_requests",
        "network",
        "scenario",
        "grid",
        "zip",
    }
)
NETWORK_SOURCES = ("generator", "file", "bundled")
GENERATOR_PARAMS: dict[str, type | tuple[type, ...]] = {
    "n_sites": int,
    "seed": int,
    "extent_km": (int, float),
    "alpha": (int, float),
    "beta": (int, float),
    "radius_km": (int, float),
    "jitter": (int, float),
}
MAX_PLOT_METRICS = 12

PointCallback = Callable[["PointRecord", int, int], None]
StartCallback = Callable[[int, int, int], None]


# ------------------------------------------------------------------ spec
@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep specification (see the module docstring for the TOML form)."""

    name: str
    source: str
    network: dict[str, Any]
    base_scenario: dict[str, Any]
    points: list[dict[str, Any]]
    varied: list[str]
    seed: int = 0
    simulate: bool = False
    simulate_requests: int = 50
    retries: int = 0
    plot_metrics: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Hash of everything every point shares; part of each point key."""
        return _digest(
            {
                "network": self.network,
                "scenario": self.base_scenario,
                "simulate": self.simulate,
                "simulate_requests": self.simulate_requests,
                "seed": self.seed,
            }
        )

    def point_key(self, params: Mapping[str, Any]) -> str:
        """Stable 16-hex-digit key of one point: same spec and parameters give the same key."""
        return _digest({"base": self.fingerprint, "params": dict(params)})[:16]


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate a sweep spec; raises :class:`ValidationError` listing every problem with its key path."""
    p = Path(path)
    if not p.is_file():
        raise InputFormatError(f"sweep spec not found: {p}", source=str(p))
    try:
        data = tomllib.loads(p.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputFormatError(f"{p}: not valid UTF-8 TOML ({exc})", source=str(p)) from None
    return spec_from_dict(data, source=str(p), base_dir=p.parent)


def spec_from_dict(
    data: Mapping[str, Any], *, source: str = "sweep spec", base_dir: Path | None = None
) -> SweepSpec:
    """Validate parsed TOML and expand it into points; every problem is reported at once."""
    from planner.model.scenario import default_scenario, load_scenario

    base_dir = base_dir or Path.cwd()
    problems = ProblemCollector(source=source)
    for key in sorted(set(data) - TOP_KEYS):
        problems.add(f"{source}: {key}", "unknown key", f"use one of {', '.join(sorted(TOP_KEYS))}")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        problems.add(f"{source}: name", f"must be a string, got {name!r}")
        name = "sweep"
    seed = _int_field(data, "seed", 0, problems, source, minimum=0)
    retries = _int_field(data, "retries", 0, problems, source, minimum=0)
    sim_requests = _int_field(data, "simulate_requests", 50, problems, source, minimum=1)
    simulate = data.get("simulate", False)
    if not isinstance(simulate, bool):
        problems.add(f"{source}: simulate", f"must be true or false, got {simulate!r}")
        simulate = False
    if simulate and importlib.util.find_spec("planner.simulate.design_check") is None:
        problems.add(
            f"{source}: simulate",
            "network simulation (planner.simulate.design_check) is not available in this installation",
            "set simulate = false",
        )
    plot_metrics = data.get("plot_metrics", [])
    if not (isinstance(plot_metrics, list) and all(isinstance(m, str) for m in plot_metrics)):
        problems.add(f"{source}: plot_metrics", "must be a list of metric names")
        plot_metrics = []

    network = _check_network(data.get("network"), problems, source, base_dir)

    # scenario: file + fixed overrides
    scen = data.get("scenario", {})
    scenario = default_scenario()
    if not isinstance(scen, dict):
        problems.add(
            f"{source}: scenario", "must be a table with optional 'file' and [scenario.set]"
        )
        scen = {}
    for key in sorted(set(scen) - {"file", "set"}):
        problems.add(
            f"{source}: scenario.{key}", "unknown key", "use 'file' or a [scenario.set] table"
        )
    if "file" in scen:
        if not isinstance(scen["file"], str):
            problems.add(f"{source}: scenario.file", "must be a path string")
        else:
            try:
                scenario = load_scenario(_resolve(scen["file"], base_dir))
            except ValidationError as exc:
                for prob in exc.problems:
                    problems.add(f"{source}: scenario.file -> {prob.where}", prob.what, prob.fix)
    fixed = scen.get("set", {})
    if not isinstance(fixed, dict):
        problems.add(f"{source}: scenario.set", "must be a table of dotted keys")
        fixed = {}
    try:
        scenario = scenario.with_overrides(_flatten(fixed), source=f"{source}: scenario.set")
    except ValidationError as exc:
        problems.problems.extend(exc.problems)

    # varied parameters
    axes: dict[str, dict[str, list[Any]]] = {}
    for section in ("grid", "zip"):
        table = data.get(section, {})
        if not isinstance(table, dict):
            problems.add(f"{source}: {section}", "must be a table of key = [values]")
            table = {}
        axes[section] = {}
        for key, values in _flatten(table).items():
            where = f"{source}: {section}.{_quote(key)}"
            if not isinstance(values, list) or not values:
                problems.add(where, f"must be a non-empty list of values, got {values!r}")
                continue
            if key in axes.get("grid", {}) and section == "zip":
                problems.add(
                    where, "is varied in both [grid] and [zip]", "vary each key in one section only"
                )
                continue
            _check_values(key, values, where, scenario, network, problems)
            axes[section][key] = values
    zipped = axes["zip"]
    lengths = {k: len(v) for k, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        problems.add(
            f"{source}: zip",
            "lists have different lengths: " + ", ".join(f"{k}={n}" for k, n in lengths.items()),
            "give every [zip] list the same length",
        )
    problems.raise_if_any()

    grid_keys = list(axes["grid"])
    zip_keys = list(zipped)
    zip_rows = list(zip(*zipped.values(), strict=True)) if zipped else [()]
    points = []
    for combo in itertools.product(*axes["grid"].values()):
        for row in zip_rows:
            points.append(
                {
                    **dict(zip(grid_keys, combo, strict=True)),
                    **dict(zip(zip_keys, row, strict=True)),
                }
            )
    return SweepSpec(
        name=name,
        source=source,
        network=network,
        base_scenario=scenario.to_dict(),
        points=points,
        varied=grid_keys + zip_keys,
        seed=seed,
        simulate=simulate,
        simulate_requests=sim_requests,
        retries=retries,
        plot_metrics=list(plot_metrics),
    )


def _int_field(
    data: Mapping[str, Any],
    key: str,
    default: int,
    problems: ProblemCollector,
    source: str,
    *,
    minimum: int,
) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        problems.add(f"{source}: {key}", f"must be an integer >= {minimum}, got {value!r}")
        return default
    return value


def _quote(key: str) -> str:
    return f'"{key}"' if "." in key else key


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` and ``{"a.b": 1}`` both give ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _check_network(
    net: Any, problems: ProblemCollector, source: str, base_dir: Path
) -> dict[str, Any]:
    from planner.io.bundled import datasets_dir
    from planner.topology.generators import GENERATORS

    where = f"{source}: network"
    if not isinstance(net, dict):
        problems.add(
            where,
            "missing or not a table",
            'add [network] with generator = "grid" (or file / bundled)',
        )
        return {}
    given = [k for k in NETWORK_SOURCES if k in net]
    if len(given) != 1:
        problems.add(
            where, f"needs exactly one of {', '.join(NETWORK_SOURCES)}, got {given or 'none'}"
        )
        return dict(net)
    out = dict(net)
    if "generator" in net:
        if net["generator"] not in GENERATORS:
            problems.add(
                f"{where}.generator",
                f"unknown generator {net['generator']!r}",
                f"use one of {', '.join(GENERATORS)}",
            )
        for key in sorted(set(net) - {"generator"} - set(GENERATOR_PARAMS)):
            problems.add(
                f"{where}.{key}",
                "unknown generator parameter",
                f"use one of {', '.join(GENERATOR_PARAMS)}",
            )
        if "n_sites" not in net:
            problems.add(
                f"{where}.n_sites", "missing", "give the number of sites, e.g. n_sites = 12"
            )
        for key in GENERATOR_PARAMS:
            if key in net:
                _check_generator_value(key, net[key], f"{where}.{key}", problems)
        out.setdefault("seed", 0)
    elif "file" in net:
        if not isinstance(net["file"], str) or not _resolve(net["file"], base_dir).is_file():
            problems.add(
                f"{where}.file",
                f"network file not found: {net['file']!r}",
                "give a path relative to the spec file",
            )
        else:
            out["file"] = str(_resolve(net["file"], base_dir).resolve())
        for key in sorted(set(net) - {"file"}):
            problems.add(f"{where}.{key}", "unknown key for a network file")
    else:
        if not isinstance(net["bundled"], str) or not (datasets_dir() / net["bundled"]).is_file():
            problems.add(
                f"{where}.bundled",
                f"no bundled network {net['bundled']!r}",
                'e.g. bundled = "topology-zoo/Abilene.graphml"',
            )
        for key in sorted(set(net) - {"bundled"}):
            problems.add(f"{where}.{key}", "unknown key for a bundled network")
    return out


def _check_generator_value(key: str, value: Any, where: str, problems: ProblemCollector) -> None:
    typ = GENERATOR_PARAMS[key]
    if isinstance(value, bool) or not isinstance(value, typ):
        problems.add(where, f"must be {'an integer' if typ is int else 'a number'}, got {value!r}")
        return
    number = float(cast(float, value))
    if key == "n_sites" and number < 3:
        problems.add(where, f"n_sites={value} is below 3 (a master needs two slaves)")
    elif key == "seed" and number < 0:
        problems.add(where, f"seed={value} must be >= 0")
    elif key not in ("seed", "n_sites") and not (math.isfinite(number) and number >= 0):
        problems.add(where, f"{key}={value!r} must be a finite number >= 0")


def _check_values(
    key: str,
    values: list[Any],
    where: str,
    scenario: Any,
    network: dict[str, Any],
    problems: ProblemCollector,
) -> None:
    """Check each value of a varied key on its own (combinations are checked when the point runs)."""
    if key == "seed":
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                problems.add(f"{where}[{i}]", f"a seed must be an integer >= 0, got {v!r}")
        return
    if key.startswith("network.") and key[len("network.") :] in GENERATOR_PARAMS:
        if "generator" not in network:
            problems.add(
                where, f"'{key}' varies a generator parameter but [network] names no generator"
            )
            return
        for i, v in enumerate(values):
            _check_generator_value(key[len("network.") :], v, f"{where}[{i}]", problems)
        return
    for i, v in enumerate(values):
        try:
            scenario.with_overrides({key: v}, source=f"{where}[{i}]")
        except ValidationError as exc:
            problems.problems.extend(exc.problems)


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
        return json.dumps(self.__dict__, sort_keys=True, default=_json_default, allow_nan=False)

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


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@functools.lru_cache(maxsize=8)
def _cached_network(network_json: str, route_factor: float, drop_external: bool) -> Any:
    from planner.io.bundled import bundled_path
    from planner.io.readers import read_network
    from planner.topology.generators import generate_network

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
    from planner.model.scenario import scenario_from_dict
    from planner.pipeline import plan

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
            k: _finite(v)
            for k, v in design.metrics.items()
            if isinstance(v, int | float | str | bool) or v is None
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
    from planner.simulate.design_check import simulate_design  # type: ignore[import-not-found,unused-ignore]

    sim = simulate_design(
        design, requests=requests, duration_s=None, seed=seed, backend="serial", workers=1
    )
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
                logger.warning(
                    "%s line %d is not a point record (%s); it will be run again", path, lineno, exc
                )
                continue
            done[rec.key] = rec
    return done


class _PointWriter:
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
    n_unique = len(set(keys))
    n_resumed = sum(1 for k in set(keys) if k in done)
    logger.info(
        "sweep %s: %d points, %d already done, %d to run", spec.name, n_unique, n_resumed, len(todo)
    )
    if on_start is not None:
        resumed_failed = sum(1 for k in set(keys) if k in done and done[k].status != "ok")
        on_start(n_unique, n_resumed, resumed_failed)
    (out_dir / "spec.json").write_text(
        json.dumps(
            {
                "name": spec.name,
                "source": spec.source,
                "fingerprint": spec.fingerprint,
                "network": spec.network,
                "varied": spec.varied,
                "n_points": n_unique,
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    writer = _PointWriter(points_path)
    finished = n_resumed
    failed = sum(1 for k in set(keys) if k in done and done[k].status != "ok")
    from planner.runtime.progress import current_tracker

    bar = current_tracker().task(f"sweep {spec.name}", total=n_unique, unit="points", initial=n_resumed)
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
            on_point(value, finished, n_unique)

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
    records = [done[k] for k in dict.fromkeys(keys)]
    table = pd.DataFrame([r.row() for r in records])
    files = write_table(table, out_dir)
    if plots:
        files += plot_sweep(table, spec.varied, out_dir / "plots", metrics=spec.plot_metrics)
    n_failed = int((table["status"] != "ok").sum()) if len(table) else 0
    errors = (
        table.loc[table["status"] != "ok", "error_type"].value_counts().to_dict()
        if n_failed
        else {}
    )
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


def write_table(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``results.csv`` and ``results.parquet`` (atomically: temp file, then rename)."""
    out = []
    for name, writer in (
        ("results.csv", lambda f: table.to_csv(f, index=False)),
        ("results.parquet", lambda f: _to_parquet(table, f)),
    ):
        final = out_dir / name
        tmp = out_dir / f".{name}.tmp"
        writer(tmp)
        os.replace(tmp, final)
        out.append(final)
    return out


def _to_parquet(table: pd.DataFrame, path: Path) -> None:
    frame = table.copy()
    for col in frame.columns:  # parquet needs one type per column: mixed object columns become text
        if frame[col].dtype == object:
            kinds = {
                type(v)
                for v in frame[col]
                if v is not None and not (isinstance(v, float) and math.isnan(v))
            }
            if len(kinds) > 1:
                frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    frame.to_parquet(path, index=False)


def plot_sweep(
    table: pd.DataFrame, varied: list[str], plot_dir: Path, *, metrics: list[str] | None = None
) -> list[Path]:
    """One figure per varied parameter: each metric's mean (line) and min-max band over the other parameters.

    Only successful points are plotted; metrics default to every numeric
    metric column that varies (at most :data:`MAX_PLOT_METRICS`). Writes PNG
    and SVG; returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"] if len(table) else table
    if ok.empty or not varied:
        return []
    skip = set(varied) | {"point", "status", "time_s", "error_type", "error_message", "worker"}
    if metrics:
        chosen = [m for m in metrics if m in ok.columns]
    else:
        chosen = [
            c
            for c in ok.columns
            if c not in skip
            and not c.startswith(("time.", "access.", "backbone.", "trust.", "memory."))
            and pd.api.types.is_numeric_dtype(ok[c])
            and ok[c].nunique(dropna=True) > 1
        ]
    chosen = chosen[:MAX_PLOT_METRICS]
    if not chosen:
        return []
    plot_dir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for param in varied:
        x = ok[param]
        if not pd.api.types.is_numeric_dtype(x):
            x = x.astype(str)
        ncols = min(3, len(chosen))
        nrows = math.ceil(len(chosen) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
        for ax, metric in zip(axes.flat, chosen, strict=False):
            grouped = pd.DataFrame(
                {"x": x, "y": pd.to_numeric(ok[metric], errors="coerce")}
            ).groupby("x")["y"]
            stats = grouped.agg(["mean", "min", "max"]).dropna()
            xs = (
                stats.index.to_numpy()
                if pd.api.types.is_numeric_dtype(stats.index)
                else range(len(stats))
            )
            ax.plot(xs, stats["mean"], marker="o")
            ax.fill_between(xs, stats["min"], stats["max"], alpha=0.2)
            if not pd.api.types.is_numeric_dtype(stats.index):
                ax.set_xticks(list(xs), list(stats.index))
            ax.set_xlabel(param)
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(chosen) :]:
            ax.set_visible(False)
        fig.suptitle(f"metrics vs {param} (mean, min-max over other parameters)")
        fig.tight_layout()
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in param)
        for ext in ("png", "svg"):
            path = plot_dir / f"{stem}.{ext}"
            fig.savefig(path, dpi=110)
            out.append(path)
        plt.close(fig)
    return out


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
    from planner.runtime.progress import display

    # the points are counted (with an ETA) by execute_sweep on the process-wide tracker
    with display(console):
        return execute_sweep(
            spec,
            out_dir=out_dir,
            backend=backend,
            scheduler_address=scheduler_address,
            workers=workers,
        )


__all__ = [
    "PointRecord",
    "PointTask",
    "SweepResult",
    "SweepSpec",
    "execute_sweep",
    "load_spec",
    "plot_sweep",
    "read_points",
    "run_point",
    "run_sweep",
    "spec_from_dict",
    "write_table",
]
