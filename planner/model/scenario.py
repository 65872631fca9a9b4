"""Scenario: every planning setting, loaded from TOML into frozen dataclasses.

A scenario file has one table per section (``[physics]``, ``[access]``,
``[memory]``, ``[backbone]``, ``[security]``, ``[demands]``, ``[solver]``,
``[network]``). Every key is optional; missing keys take the documented
defaults below. :func:`load_scenario` validates the whole file and reports
*every* problem at once (unknown keys with a "did you mean", wrong types,
values out of physical range) with its key path, e.g. ``access.capacity``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from planner.errors import InputFormatError, ProblemCollector, ValidationError
from planner.physics import PhysicsParameters


@dataclass(frozen=True)
class NetworkSettings:
    """How the input network is read and completed.

    ``route_factor``: fibre length = geodesic x route_factor where a link has no
    stated length or geometry. ``candidate_links``: links generated when the
    input has none or is disconnected ("auto": only then; "none": never).
    """

    route_factor: float = 1.3
    drop_external: bool = True
    candidate_links: Literal["auto", "none", "delaunay", "knn"] = "auto"
    knn_k: int = 4
    # how the input file is read (the command line's --crs / --geocode / --strict-coordinates win):
    # crs: CRS of CSV x/y columns and of GIS files that carry none ("" = lat/lon degrees);
    # geocode: locate named nodes without coordinates in the offline gazetteer (extra 'geo');
    # strict_coordinates: refuse nodes without coordinates instead of placing them from their neighbours
    crs: str = ""
    geocode: bool = False
    strict_coordinates: bool = False


PhysicsSettings = PhysicsParameters
"""Physical layer (cluster paper, Sect. 4): the scenario's ``[physics]`` section is the one
physics parameter object :class:`planner.physics.PhysicsParameters` (defaults there)."""


@dataclass(frozen=True)
class AccessSettings:
    """Access clusters: a master with an EPR source serving 2..capacity slaves.

    ``reach_km``: longest master-slave access fibre; ``max_loss_db`` (0 = off)
    an additional loss limit. ``objective``: "balanced" (default) takes the
    fewest masters whose keys per attempt reach ``keys_fraction`` of the most
    keys any number of masters gives (default 0: the fewest masters that serve
    every site, with the most keys for that number), from a Pareto front of masters against
    keys computed by the MILP at ``pareto_points`` master budgets (see
    :mod:`planner.stages.access_pareto` for the rule and why); "max_keys" maximises the total
    Eq. 6 keys per attempt (with masters unlimited this makes as many clusters
    of the smallest size as possible), "min_cost" finds the cheapest masters meeting
    ``min_keys_per_cluster``. ``max_masters`` / ``cost_budget``: 0 = no limit.
    ``r_mdi`` / ``r_ekr``: keys per attempt per memory unit of MDI-QKD and of
    one Ekert91 pair (Eq. 5-6). ``master_candidates``: site kinds allowed to
    host a master ("all" = every site). ``loss_weight``: weight of the
    demand-weighted access loss (dB) in the objective; 0 = automatic, small
    enough that loss only breaks ties between designs of equal keys or cost. ``distance``: "geodesic" (dedicated
    access fibre, geodesic x route factor) or "fibre" (shortest path over the
    network's links).
    """

    reach_km: float = 80.0
    max_loss_db: float = 0.0
    min_slaves: int = 2
    capacity: int = 8
    objective: Literal["balanced", "max_keys", "min_cost"] = "balanced"
    keys_fraction: float = 0.0
    pareto_points: int = 6
    max_masters: int = 0
    master_cost: float = 1.0
    cost_budget: float = 0.0
    min_keys_per_cluster: float = 0.0
    r_mdi: float = 1.0
    r_ekr: float = 1.0
    loss_weight: float = 0.0
    master_candidates: list[str] = field(default_factory=lambda: ["all"])
    distance: Literal["geodesic", "fibre"] = "geodesic"


@dataclass(frozen=True)
class MemorySettings:
    """Quantum memory units (cluster paper Eq. 6, 9; Fig. 6b, 7b).

    Fixed sizes are used when ``budget_units`` is 0; otherwise the memory model
    distributes ``budget_units`` between masters, slaves and backbone edges.
    ``lifetime_s`` and ``epr_rate_hz`` cap a slave's useful memory at
    lifetime x rate (0 lifetime = unlimited). ``size_for_load`` (fixed sizes
    only): raise a backbone edge's units above ``edge_units`` (up to
    ``max_units_per_node``) until every demand routed over it still meets
    ``backbone.rate_target`` when all demands share the edge at once.
    """

    master_units: int = 8
    slave_units: int = 4
    edge_units: int = 4
    budget_units: int = 0
    max_units_per_node: int = 64
    lifetime_s: float = 0.0
    epr_rate_hz: float = 1.0e4
    size_for_load: bool = True


@dataclass(frozen=True)
class BackboneSettings:
    """Backbone between clusters.

    ``mode``: "repeaters" (entanglement-repeater chains, cluster paper),
    "trusted" (partially-trusted relays, SMR paper) or "both".
    ``objective``: "min_cost" places the fewest repeaters meeting
    ``rate_target`` (end-to-end pairs per attempt, Eq. 9) on every demand;
    "max_min_rate" maximises the worst demand rate with ``repeater_budget``.
    ``max_latency_s``: 0 = no latency limit.
    ``latency_model``: which latency ``max_latency_s`` limits: "eq10" (the cluster
    paper's Eq. 10 as printed) or "protocol" (the derived time to one end-to-end
    pair of the Eq. 9 protocol, :mod:`planner.stages.latency`); the report shows both.
    ``repeaters``: "spacing" puts equally spaced repeaters on every backbone link;
    "placement" puts repeaters only at existing sites of the input network
    (RepAlloc-style model, :mod:`planner.stages.placement`), at most
    ``placement_max_repeaters`` per demand path, with the longest elementary link
    derived from Eq. 7/9 and ``rate_target``.
    """

    mode: Literal["repeaters", "trusted", "both"] = "both"
    objective: Literal["min_cost", "max_min_rate"] = "min_cost"
    max_repeaters_per_link: int = 30
    repeater_cost: float = 1.0
    rate_target: float = 1e-4
    repeater_budget: int = 0
    max_latency_s: float = 0.0
    candidate_paths: int = 1
    latency_model: Literal["eq10", "protocol"] = "eq10"
    repeaters: Literal["spacing", "placement"] = "spacing"
    placement_max_repeaters: int = 4


@dataclass(frozen=True)
class SecuritySettings:
    """Partially-trusted relays (SMR paper).

    ``p_untrusted``: probability that an untrusted relay is not compromised;
    ``trusted_budget``: how many relays may be made trusted; ``eps``: the
    security a reconstructed global key must reach. ``trust_objective``: how
    the trusted relays are chosen: "min" (maximise the minimum SMR security
    over demands), "mean" (the mean) with at most ``trusted_budget`` relays, or
    "target" (the fewest relays giving every demand SMR security ``eps``).
    """

    p_untrusted: float = 0.8
    trusted_budget: int = 3
    eps: float = 0.9
    trusted_cost: float = 1.0
    key_pool_bits: int = 100_000
    trust_objective: Literal["min", "mean", "target"] = "min"


@dataclass(frozen=True)
class DemandSettings:
    """Key demands between backbone nodes (cluster masters and standalone sites).

    ``mode`` (see :mod:`planner.stages.demands`): "all_pairs" (alias "all_clusters":
    every pair, C^2/2 for C nodes); "gravity": each node's ``k`` strongest
    partners by w_i w_j / d^``gravity_exponent`` (w = summed site ``demand``,
    d = backbone fibre km) plus pairs joining them into a connected demand
    graph; "hubs": every node to each of ``hubs`` (site ids or names);
    "list": the ``pairs`` given here; "explicit": the ``file`` CSV with columns
    ``source,target`` (relative paths are relative to the scenario file);
    "auto" (default): "all_pairs" up to ``auto_all_pairs_max_nodes`` backbone
    nodes, "gravity" above, so large plans stay linear in the clusters.
    """

    mode: Literal["auto", "all_pairs", "all_clusters", "gravity", "hubs", "list", "explicit"] = "auto"
    pairs: list[list[str]] = field(default_factory=list)
    k: int = 3
    gravity_exponent: float = 2.0
    hubs: list[str] = field(default_factory=list)
    file: str = ""
    auto_all_pairs_max_nodes: int = 40


@dataclass(frozen=True)
class SolverSettings:
    """MILP solver options (HiGHS)."""

    time_limit_s: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 2


@dataclass(frozen=True)
class Scenario:
    """A complete planning scenario; :func:`default_scenario` gives the defaults."""

    name: str = "default"
    network: NetworkSettings = field(default_factory=NetworkSettings)
    physics: PhysicsSettings = field(default_factory=PhysicsSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    backbone: BackboneSettings = field(default_factory=BackboneSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    demands: DemandSettings = field(default_factory=DemandSettings)
    solver: SolverSettings = field(default_factory=SolverSettings)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (round-trips through :func:`scenario_from_dict`)."""
        return asdict(self)

    def with_overrides(self, overrides: dict[str, Any], *, source: str = "overrides") -> Scenario:
        """A copy with dotted-key overrides applied, e.g. ``{"access.capacity": 6}``; validated."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            node = data
            parts = dotted.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ValidationError(f"'{dotted}' does not name a scenario setting", source=source)
            node[parts[-1]] = value
        return scenario_from_dict(data, source=source)


# Physical / logical ranges: (min, max, min_inclusive, max_inclusive); checked after types.
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "network.route_factor": (1.0, 10.0, True, True),
    "network.knn_k": (1, 50, True, True),
    "physics.alpha_db_per_km": (0.0, 10.0, True, True),
    "physics.speed_km_per_s": (1.0, 3.0e5, False, True),
    "physics.q_swap": (0.0, 1.0, False, True),
    "physics.t_mea_s": (0.0, 10.0, True, True),
    "physics.t_ret_s": (0.0, 10.0, True, True),
    "physics.attempt_time_s": (0.0, 10.0, False, True),
    "access.reach_km": (0.0, 20_000.0, False, True),
    "access.max_loss_db": (0.0, 1_000.0, True, True),
    "access.min_slaves": (2, 10_000, True, True),
    "access.capacity": (2, 100_000, True, True),
    "access.max_masters": (0, 1_000_000, True, True),
    "access.master_cost": (0.0, math.inf, True, False),
    "access.keys_fraction": (0.0, 1.0, True, True),
    "access.pareto_points": (2, 50, True, True),
    "access.cost_budget": (0.0, math.inf, True, False),
    "access.min_keys_per_cluster": (0.0, math.inf, True, False),
    "access.r_mdi": (0.0, math.inf, True, False),
    "access.r_ekr": (0.0, math.inf, True, False),
    "access.loss_weight": (0.0, math.inf, True, False),
    "memory.master_units": (1, 1_000_000, True, True),
    "memory.slave_units": (1, 1_000_000, True, True),
    "memory.edge_units": (1, 1_000_000, True, True),
    "memory.budget_units": (0, 100_000_000, True, True),
    "memory.max_units_per_node": (1, 1_000_000, True, True),
    "memory.lifetime_s": (0.0, math.inf, True, False),
    "memory.epr_rate_hz": (0.0, math.inf, False, False),
    "backbone.max_repeaters_per_link": (0, 1_000, True, True),
    "backbone.repeater_cost": (0.0, math.inf, True, False),
    "backbone.rate_target": (0.0, 1.0e9, True, True),
    "backbone.repeater_budget": (0, 1_000_000, True, True),
    "backbone.max_latency_s": (0.0, math.inf, True, False),
    "backbone.candidate_paths": (1, 50, True, True),
    "backbone.placement_max_repeaters": (0, 1_000, True, True),
    "security.p_untrusted": (0.0, 1.0, False, True),
    "security.trusted_budget": (0, 1_000_000, True, True),
    "security.eps": (0.0, 1.0, False, False),
    "security.trusted_cost": (0.0, math.inf, True, False),
    "security.key_pool_bits": (8, 10**12, True, True),
    "demands.k": (1, 1_000, True, True),
    "demands.gravity_exponent": (0.0, 10.0, True, True),
    "demands.auto_all_pairs_max_nodes": (2, 100_000, True, True),
    "solver.time_limit_s": (0.1, 86_400.0, True, True),
    "solver.mip_gap": (0.0, 1.0, True, False),
    "solver.threads": (1, 1024, True, True),
}

_FIX_HINTS: dict[str, str] = {
    "access.capacity": "a master serves at least 2 slaves (cluster paper); set capacity >= 2",
    "access.min_slaves": "a cluster needs at least 2 slaves (cluster paper, Eq. 5)",
    "physics.q_swap": "the swap success probability q lies in (0, 1]",
    "security.p_untrusted": "a security probability lies in (0, 1]",
    "security.eps": "eps is a probability in (0, 1)",
    "physics.alpha_db_per_km": "fibre attenuation is >= 0 dB/km (0.2 for standard fibre)",
}


def default_scenario() -> Scenario:
    """The built-in defaults (also bundled as ``datasets/scenarios/default.toml``)."""
    return Scenario()


def load_scenario(path: str | Path | None) -> Scenario:
    """Read and validate a TOML scenario file; ``None`` gives the defaults.

    Raises :class:`~planner.errors.InputFormatError` when the file is missing or
    not TOML, and :class:`~planner.errors.ValidationError` listing every
    unknown key, wrong type and out-of-range value with its key path.
    """
    if path is None:
        return default_scenario()
    p = Path(path)
    if not p.is_file():
        raise InputFormatError(f"scenario file not found: {p}", source=str(p)) from None
    try:
        data = tomllib.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputFormatError(
            f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8", source=str(p)
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputFormatError(f"{p}: not valid TOML ({exc}); check the syntax at that line", source=str(p)) from None
    data.setdefault("name", p.stem)
    demands = data.get("demands")
    if isinstance(demands, dict) and isinstance(demands.get("file"), str) and demands["file"]:
        demands["file"] = str(p.parent / demands["file"])  # a relative demand file lies beside the scenario
    return scenario_from_dict(data, source=str(p))


def scenario_from_dict(data: dict[str, Any], *, source: str = "scenario") -> Scenario:
    """Build a validated :class:`Scenario` from nested plain data (e.g. parsed TOML)."""
    problems = ProblemCollector(source=source)
    if not isinstance(data, dict):
        raise ValidationError("a scenario must be a table of sections", source=source)
    scenario = _build(Scenario, data, "", problems, source)
    problems.raise_if_any()
    assert isinstance(scenario, Scenario)
    _check_cross(scenario, problems, source)
    problems.raise_if_any()
    return scenario


def _build(cls: type, data: dict[str, Any], prefix: str, problems: ProblemCollector, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"known keys: {', '.join(sorted(known))}"
            problems.add(f"{source}: {path}", "unknown key", hint)
            continue
        typ = hints[key]
        if isinstance(typ, type) and hasattr(typ, "__dataclass_fields__"):
            if not isinstance(value, dict):
                problems.add(
                    f"{source}: {path}",
                    f"must be a table [{path}], got {type(value).__name__}",
                    f"write it as a [{path}] section",
                )
                continue
            kwargs[key] = _build(typ, value, f"{path}.", problems, source)
            continue
        ok, converted, expected = _coerce(value, typ)
        if not ok:
            problems.add(f"{source}: {path}", f"expected {expected}, got {value!r}", f"give {path} as {expected}")
            continue
        rng = _RANGES.get(path)
        if rng is not None and isinstance(converted, (int, float)) and not _in_range(converted, rng):
            lo, hi, lo_inc, hi_inc = rng
            interval = f"{'[' if lo_inc else '('}{lo:g}, {hi:g}{']' if hi_inc else ')'}"
            problems.add(
                f"{source}: {path}",
                f"value {converted!r} is outside {interval}",
                _FIX_HINTS.get(path, f"choose a value in {interval}"),
            )
            continue
        kwargs[key] = converted
    try:
        return cls(**kwargs)
    except TypeError:  # pragma: no cover - only on programming errors
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        problems.add(f"{source}: {prefix or '<root>'}", f"missing keys {missing}")
        return cls  # placeholder, never returned because problems raise


def _in_range(x: float, rng: tuple[float, float, bool, bool]) -> bool:
    lo, hi, lo_inc, hi_inc = rng
    if not math.isfinite(x) and not (x == math.inf and hi == math.inf and not hi_inc):
        return False
    above = x >= lo if lo_inc else x > lo
    below = x <= hi if hi_inc else x < hi
    return above and below


def _coerce(value: Any, typ: Any) -> tuple[bool, Any, str]:
    """Check ``value`` against a field type; ints are accepted for floats."""
    origin = get_origin(typ)
    if origin is Literal:
        options = get_args(typ)
        return (value in options, value, "one of " + ", ".join(repr(o) for o in options))
    if typ is bool:
        return (isinstance(value, bool), value, "true or false")
    if typ is int:
        return (isinstance(value, int) and not isinstance(value, bool), value, "an integer")
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return (False, value, "a number")
        return (math.isfinite(float(value)) or value == math.inf, float(value), "a finite number")
    if typ is str:
        return (isinstance(value, str), value, "a string")
    if origin in (list, typing.List):  # noqa: UP006
        (inner,) = get_args(typ)
        if not isinstance(value, list):
            return (False, value, f"a list of {_name(inner)}")
        out = []
        for item in value:
            ok, conv, _ = _coerce(item, inner)
            if not ok:
                return (False, value, f"a list of {_name(inner)}")
            out.append(conv)
        return (True, out, "")
    if origin in (types.UnionType, typing.Union):
        for option in get_args(typ):
            ok, conv, _ = _coerce(value, option)
            if ok:
                return (True, conv, "")
        return (False, value, " or ".join(_name(a) for a in get_args(typ)))
    return (True, value, "")  # pragma: no cover


def _name(typ: Any) -> str:
    origin = get_origin(typ)
    if origin in (list, typing.List):  # noqa: UP006
        return f"lists of {_name(get_args(typ)[0])}"
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(typ, str(typ))


def _check_cross(s: Scenario, problems: ProblemCollector, source: str) -> None:
    """Checks that involve more than one key."""
    if s.access.capacity < s.access.min_slaves:
        problems.add(
            f"{source}: access.capacity",
            f"capacity {s.access.capacity} is below min_slaves {s.access.min_slaves}, so no cluster can be formed",
            "raise access.capacity or lower access.min_slaves (>= 2)",
        )
    if s.backbone.objective == "max_min_rate" and s.backbone.mode != "trusted" and s.backbone.repeater_budget == 0:
        problems.add(
            f"{source}: backbone.repeater_budget",
            "objective 'max_min_rate' needs a repeater budget",
            "set backbone.repeater_budget to the number of repeaters you can deploy",
        )
    if s.demands.mode == "list":
        if not s.demands.pairs:
            problems.add(
                f"{source}: demands.pairs",
                "mode 'list' needs at least one pair",
                'add pairs = [["A", "B"], ...] or use mode = "auto"',
            )
        for i, pair in enumerate(s.demands.pairs):
            if len(pair) != 2 or pair[0] == pair[1]:
                problems.add(
                    f"{source}: demands.pairs[{i}]",
                    f"{pair!r} is not a pair of two different sites",
                    'write each demand as ["site A", "site B"]',
                )
    if s.demands.mode == "hubs" and not s.demands.hubs:
        problems.add(
            f"{source}: demands.hubs",
            "mode 'hubs' needs at least one hub site",
            'add hubs = ["site id or name", ...] or use mode = "auto"',
        )
    if s.demands.mode == "explicit" and not s.demands.file:
        problems.add(
            f"{source}: demands.file",
            "mode 'explicit' needs a CSV file of demand pairs",
            'set file = "pairs.csv" (columns source,target) or use mode = "auto"',
        )


def scenario_to_toml(s: Scenario) -> str:
    """Render a scenario as TOML (the inverse of :func:`load_scenario`)."""
    lines = [f"name = {_toml_value(s.name)}", ""]
    for f in fields(s):
        sub = getattr(s, f.name)
        if not hasattr(sub, "__dataclass_fields__"):
            continue
        lines.append(f"[{f.name}]")
        for g in fields(sub):
            lines.append(f"{g.name} = {_toml_value(getattr(sub, g.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        if v == math.inf:
            return "inf"
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


__all__ = [
    "AccessSettings",
    "BackboneSettings",
    "DemandSettings",
    "MemorySettings",
    "NetworkSettings",
    "PhysicsSettings",
    "Scenario",
    "SecuritySettings",
    "SolverSettings",
    "default_scenario",
    "load_scenario",
    "replace",
    "scenario_from_dict",
    "scenario_to_toml",
]
