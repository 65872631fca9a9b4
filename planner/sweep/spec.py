"""Sweep specifications: read and check a sweep's TOML and expand it into points.

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

Every problem of a spec is reported at once (:class:`ValidationError` naming
the key path), before anything runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import logging
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from planner.errors import InputFormatError, ProblemCollector, ValidationError
from planner.io.bundled import datasets_dir
from planner.model.scenario import Scenario, default_scenario, load_scenario
from planner.model.serialise import flatten
from planner.topology.generators import GENERATORS

logger = logging.getLogger(__name__)

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


def spec_from_dict(data: Mapping[str, Any], *, source: str = "sweep spec", base_dir: Path | None = None) -> SweepSpec:
    """Validate parsed TOML and expand it into points; every problem is reported at once.

    Relative paths (network and scenario files) are taken from ``base_dir``
    (default: the working directory). Raises :class:`ValidationError` listing
    every problem with its key path.
    """
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
    scenario = _base_scenario(data.get("scenario", {}), problems, source, base_dir)
    axes = _varied_axes(data, scenario, network, problems, source)
    problems.raise_if_any()
    return SweepSpec(
        name=name,
        source=source,
        network=network,
        base_scenario=scenario.to_dict(),
        points=_expand(axes["grid"], axes["zip"]),
        varied=list(axes["grid"]) + list(axes["zip"]),
        seed=seed,
        simulate=simulate,
        simulate_requests=sim_requests,
        retries=retries,
        plot_metrics=list(plot_metrics),
    )


def _base_scenario(scen: Any, problems: ProblemCollector, source: str, base_dir: Path) -> Scenario:
    """The scenario every point starts from: ``[scenario] file`` (default scenario without one) + ``[scenario.set]``."""
    scenario = default_scenario()
    if not isinstance(scen, dict):
        problems.add(f"{source}: scenario", "must be a table with optional 'file' and [scenario.set]")
        scen = {}
    for key in sorted(set(scen) - {"file", "set"}):
        problems.add(f"{source}: scenario.{key}", "unknown key", "use 'file' or a [scenario.set] table")
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
        scenario = scenario.with_overrides(flatten(fixed), source=f"{source}: scenario.set")
    except ValidationError as exc:
        problems.problems.extend(exc.problems)
    return scenario


def _varied_axes(
    data: Mapping[str, Any],
    scenario: Scenario,
    network: dict[str, Any],
    problems: ProblemCollector,
    source: str,
) -> dict[str, dict[str, list[Any]]]:
    """``{"grid": {key: values}, "zip": {key: values}}`` with each value checked on its own."""
    axes: dict[str, dict[str, list[Any]]] = {}
    for section in ("grid", "zip"):
        table = data.get(section, {})
        if not isinstance(table, dict):
            problems.add(f"{source}: {section}", "must be a table of key = [values]")
            table = {}
        axes[section] = {}
        for key, values in flatten(table).items():
            where = f"{source}: {section}.{_quote(key)}"
            if not isinstance(values, list) or not values:
                problems.add(where, f"must be a non-empty list of values, got {values!r}")
                continue
            if key in axes.get("grid", {}) and section == "zip":
                problems.add(where, "is varied in both [grid] and [zip]", "vary each key in one section only")
                continue
            _check_values(key, values, where, scenario, network, problems)
            axes[section][key] = values
    lengths = {k: len(v) for k, v in axes["zip"].items()}
    if len(set(lengths.values())) > 1:
        problems.add(
            f"{source}: zip",
            "lists have different lengths: " + ", ".join(f"{k}={n}" for k, n in lengths.items()),
            "give every [zip] list the same length",
        )
    return axes


def _expand(grid: dict[str, list[Any]], zipped: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The points: every combination of the grid lists with every row of the (equal-length) zip lists."""
    grid_keys = list(grid)
    zip_keys = list(zipped)
    zip_rows = list(zip(*zipped.values(), strict=True)) if zipped else [()]
    points = []
    for combo in itertools.product(*grid.values()):
        for row in zip_rows:
            points.append(
                {
                    **dict(zip(grid_keys, combo, strict=True)),
                    **dict(zip(zip_keys, row, strict=True)),
                }
            )
    return points


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


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _check_network(net: Any, problems: ProblemCollector, source: str, base_dir: Path) -> dict[str, Any]:
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
        problems.add(where, f"needs exactly one of {', '.join(NETWORK_SOURCES)}, got {given or 'none'}")
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
            problems.add(f"{where}.n_sites", "missing", "give the number of sites, e.g. n_sites = 12")
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
            problems.add(where, f"'{key}' varies a generator parameter but [network] names no generator")
            return
        for i, v in enumerate(values):
            _check_generator_value(key[len("network.") :], v, f"{where}[{i}]", problems)
        return
    for i, v in enumerate(values):
        try:
            scenario.with_overrides({key: v}, source=f"{where}[{i}]")
        except ValidationError as exc:
            problems.problems.extend(exc.problems)
