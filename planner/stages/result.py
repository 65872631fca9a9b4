"""What every planning stage hands back, and the few things every stage does the same way.

- :class:`StageResult`: a stage's tables, solver summaries, baselines, metrics,
  notes and wall-clock timings; :meth:`StageResult.record_solve` records one solve
  (the solver summary goes to ``solves``, its wall-clock fields to ``timing`` so that
  ``design.json`` stays reproducible).
- :class:`AccessResult`: the access stage's result with its clustering (assignment, clusters,
  masters) and standalone sites as typed fields.
- :class:`MemoryResult`: the memory stage's result with its per-site, per-link and
  per-demand Series as typed fields.
- :class:`TrustResult`: the trusted-relay stage's result: relay set, per-demand single-path
  and SMR security, verification coverage and the model's bound as typed fields.


- :class:`RepeaterResult` (and :class:`PlacementResult` for repeaters at existing sites):
  the repeater stage's result with its per-link and per-demand chain figures as typed fields.
- :func:`solver_options`: the MILP options of a scenario.
- :func:`solver_errors`: the one translation of a solver's exceptions into the
  project's errors (:class:`~planner.errors.InfeasibleDesignError`,
  :class:`~planner.errors.ValidationError`) with what to change.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from planner.errors import InfeasibleDesignError, ValidationError
from planner.model.scenario import Scenario
from solvers.base import ModelInfeasible, SolveResult, SolverOptions

TIMING_FIELDS = ("solve_time_s", "build_time_s", "heuristic_time_s", "prep_time_s", "prepare_time_s")
"""Wall-clock fields of a solver summary: they go to a stage's ``timing``, never to ``solves``."""


def split_timing(summary: dict[str, Any], timing: dict[str, float], stage: str) -> dict[str, Any]:
    """Move the wall-clock fields (:data:`TIMING_FIELDS`) of ``summary`` into ``timing`` as
    ``"<stage>.<field>"`` (numbers only; a None is dropped); returns ``summary`` without them."""
    for key in TIMING_FIELDS:
        if key in summary:
            value = summary.pop(key)
            if isinstance(value, (int, float)):
                timing[f"{stage}.{key}"] = float(value)
    return summary


@dataclass
class StageResult:
    """Tables and solver summaries produced by one stage.

    ``tables``: the stage's output tables by name; ``solves``: one JSON-ready solver
    summary per solve (see :meth:`record_solve`); ``baselines``: simpler methods the
    solve is compared with; ``metrics``: JSON-ready figures for the design; ``notes``:
    sentences for the user; ``timing``: wall-clock seconds by ``"<stage>.<what>"``.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    solves: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)

    def record_solve(self, stage: str, result: SolveResult, model: str) -> dict[str, Any]:
        """Record ``result`` as the solve of ``stage``: its summary, labelled ``model``, becomes
        ``solves[stage]`` and its wall-clock fields go to ``timing`` (``"<stage>.solve_time_s"``
        and the like), so the summary holds only reproducible values. Returns the summary."""
        summary = result.summary()
        summary["model"] = model
        self.solves[stage] = split_timing(summary, self.timing, stage)
        return self.solves[stage]


@dataclass
class AccessResult(StageResult):
    """The access stage's result: ``assignment`` (one row per clustered site: ``site, master, role,
    distance_km, loss_db``), ``clusters`` (one row per open master: ``master, n_slaves,
    ekert_pairs, keys_per_attempt``), the ``standalone`` sites (every site in no cluster, sorted)
    and ``standalone_reasons`` (reason -> its sites; the reasons of the stage's notes). The two
    tables are also ``tables["assignment"]`` and ``tables["clusters"]`` (and the balanced rule's
    front ``tables["access_pareto"]``), the same objects."""

    assignment: pd.DataFrame = field(default_factory=pd.DataFrame)
    clusters: pd.DataFrame = field(default_factory=pd.DataFrame)
    standalone: list[str] = field(default_factory=list)
    standalone_reasons: dict[str, list[str]] = field(default_factory=dict)

    @property
    def masters(self) -> list[str]:
        """The open masters' ids, in the order of ``clusters``."""
        return [str(m) for m in self.clusters["master"]] if "master" in self.clusters.columns else []

    def set_clustering(self, assignment: pd.DataFrame, clusters: pd.DataFrame) -> None:
        """Set the clustering, as fields and as ``tables["assignment"]`` / ``tables["clusters"]``."""
        self.assignment = self.tables["assignment"] = assignment
        self.clusters = self.tables["clusters"] = clusters


@dataclass
class MemoryResult(StageResult):
    """The memory stage's result: units per site (``nodes``, by site id) and per backbone link
    (``edges``, by link id); with repeater chains, the Eq. 9 rate per demand with the link
    memory it would have alone (``demand_rates``) and shared with the other demands
    (``demand_rates_shared``), and the shortfall against ``backbone.rate_target`` under full
    load (``demand_shortfall``), all by demand id. A field is None when the stage had nothing
    to say about it (e.g. no clusters and no links to give a budget to)."""

    nodes: pd.Series | None = None
    edges: pd.Series | None = None
    demand_rates: pd.Series | None = None
    demand_rates_shared: pd.Series | None = None
    demand_shortfall: pd.Series | None = None


RELAY_COLUMNS = ["site_id", "name", "kind", "trusted", "p_untrusted"]
"""Columns of :attr:`TrustResult.relays`."""


def _no_relays() -> pd.DataFrame:
    return pd.DataFrame(columns=RELAY_COLUMNS)


@dataclass
class TrustResult(StageResult):
    """The trusted-relay stage's result.

    ``relays``: one row per site (:data:`RELAY_COLUMNS`: ``trusted`` marks the chosen relays,
    ``p_untrusted`` the site's security when untrusted); ``trusted``: the chosen relays' site ids;
    ``demands``: per backbone demand (``demand_id``) the chosen set's best single-path security
    (``security_single_path``, every demand) and its SMR routing (``security``, ``segments``,
    ``paths``, ``key_consumption``, ``trusted_on_path``; NaN for a demand the stage had no time to
    verify); ``verified_demands`` of ``n_demands`` were SMR-verified; ``time_limit_reached`` when the
    stage's time cut its search or verification; ``single_path_bound``: the model's bound on the
    best reachable minimum single-path security. Empty (no relays, ``demands`` None) when the
    backbone has no demands. :meth:`share_tables` also lists ``relays`` and ``demands`` in
    ``tables`` (the same frames) for code that reads a stage's tables by name.
    """

    relays: pd.DataFrame = field(default_factory=_no_relays)
    trusted: frozenset[str] = frozenset()
    demands: pd.DataFrame | None = None
    n_demands: int = 0
    verified_demands: int = 0
    time_limit_reached: bool = False
    single_path_bound: float | None = None

    def share_tables(self) -> None:
        """Put ``relays`` and (when set) ``demands`` into ``tables`` under those names (the same objects)."""
        self.tables["relays"] = self.relays
        if self.demands is not None:
            self.tables["demands"] = self.demands

    def site_security(self) -> dict[str, float]:
        """Security probability of every site as an untrusted relay (``p_untrusted``), by site id."""
        r = self.relays
        return {str(s): float(x) for s, x in zip(r["site_id"], r["p_untrusted"], strict=True)}


def _series(values: Any, index: Any, dtype: Any) -> pd.Series:
    """``values`` as a Series by ``index`` (labels as strings) of ``dtype``."""
    return pd.Series(list(values), index=pd.Index([str(x) for x in index], dtype=object), dtype=dtype)


@dataclass
class RepeaterResult(StageResult):
    """The repeater stage's result: its chain figures as typed fields.

    Per backbone link (by link id): ``link_repeaters`` (repeaters on it), ``segment_km`` (length
    of one of its equal segments) and ``link_p`` (Eq. 7 success probability of one segment). Per
    demand (by demand id): ``demand_hops`` (hops of its chain), ``demand_p_worst`` (the worst
    segment's probability), ``demand_rate`` (Eq. 9) and ``demand_latency_s`` (Eq. 10); with
    demands that no spacing brings to ``backbone.rate_target`` (planned without them),
    ``demand_shortfall`` (target minus rate, 0 where met; else None) and ``unreachable`` (demand ->
    the best rate it can reach). The same figures are in ``tables["links"]`` (``link, repeaters,
    segment_km, p``, ...) and ``tables["demands"]`` (``demand, hops, p_worst, rate, latency_s``, ...),
    set together by :meth:`set_chains`. All Series are empty without backbone links or demands.
    """

    link_repeaters: pd.Series = field(default_factory=lambda: _series([], [], int))
    segment_km: pd.Series = field(default_factory=lambda: _series([], [], float))
    link_p: pd.Series = field(default_factory=lambda: _series([], [], float))
    demand_hops: pd.Series = field(default_factory=lambda: _series([], [], int))
    demand_p_worst: pd.Series = field(default_factory=lambda: _series([], [], float))
    demand_rate: pd.Series = field(default_factory=lambda: _series([], [], float))
    demand_latency_s: pd.Series = field(default_factory=lambda: _series([], [], float))
    demand_shortfall: pd.Series | None = None
    unreachable: dict[str, float] = field(default_factory=dict)

    def set_chains(self, links: pd.DataFrame, demands: pd.DataFrame) -> None:
        """Set ``tables["links"]`` / ``tables["demands"]`` and the typed fields from them: ``links``
        with ``link, repeaters`` and, when it has chains, ``segment_km, p``; ``demands`` with ``demand``
        and, when it has chains, ``hops, p_worst, rate, latency_s`` (and ``shortfall``). A column
        that is absent leaves its field empty."""
        self.tables["links"], self.tables["demands"] = links, demands
        ids, dids = links["link"], demands["demand"]
        self.link_repeaters = _series(links["repeaters"], ids, int)
        for name, col, frame, index, dtype in (
            ("segment_km", "segment_km", links, ids, float),
            ("link_p", "p", links, ids, float),
            ("demand_hops", "hops", demands, dids, int),
            ("demand_p_worst", "p_worst", demands, dids, float),
            ("demand_rate", "rate", demands, dids, float),
            ("demand_latency_s", "latency_s", demands, dids, float),
        ):
            setattr(self, name, _series(frame[col], index, dtype) if col in frame else _series([], [], dtype))
        self.demand_shortfall = _series(demands["shortfall"], dids, float) if "shortfall" in demands else None


@dataclass
class PlacementResult(RepeaterResult):
    """The repeater stage's result with repeaters at existing sites (``backbone.repeaters =
    "placement"``): the :class:`RepeaterResult` fields over the elementary links (no repeater
    on a link: its ends are the repeater sites), ``repeater_sessions`` (by site id: the demand
    paths each repeater site serves), ``max_link_km`` (longest elementary link allowed; inf
    without a rate target) and ``max_repeaters_per_path``."""

    repeater_sessions: pd.Series = field(default_factory=lambda: _series([], [], int))
    max_link_km: float = math.inf
    max_repeaters_per_path: int = 0


def repeater_result(stages: Mapping[str, StageResult]) -> RepeaterResult | None:
    """``stages["repeaters"]`` (None when the plan has no repeater stage); raises ``TypeError`` when
    it is not a :class:`RepeaterResult`."""
    rep = stages.get("repeaters")
    if rep is not None and not isinstance(rep, RepeaterResult):
        raise TypeError(f"the repeater stage's result is a {type(rep).__name__}, not a RepeaterResult")
    return rep


def solver_options(scenario: Scenario, *, seed: int = 0) -> SolverOptions:
    """The MILP options of a scenario (its ``solver`` section) with the plan's ``seed``."""
    s = scenario.solver
    return SolverOptions(time_limit_s=s.time_limit_s, mip_gap=s.mip_gap, threads=s.threads, seed=seed)


@contextmanager
def solver_errors(
    tables: str, input_error: type[Exception], *, infeasible: str, fix: str | None = None, max_items: int | None = None
) -> Iterator[None]:
    """Translate a solver's exceptions raised inside the block into the project's errors.

    A :class:`solvers.base.ModelInfeasible` becomes an :class:`InfeasibleDesignError`
    with message ``infeasible``, the solver's conflicts and details (the first ``max_items`` of
    each when given) and, when given, ``"fix: " + fix``; an ``input_error`` (the solver's
    malformed-table error) becomes a :class:`ValidationError` ``"<tables> tables: <error>"``
    with source ``scenario``. Other exceptions pass unchanged.
    """
    try:
        yield
    except ModelInfeasible as exc:
        conflicts, details = exc.conflicts[:max_items], exc.details[:max_items]
        raise InfeasibleDesignError(
            infeasible, conflicts=[str(c) for c in conflicts], details=[*details, *([f"fix: {fix}"] if fix else [])]
        ) from None
    except input_error as exc:
        raise ValidationError(f"{tables} tables: {exc}", source="scenario") from None


def require_solution(
    result: SolveResult, model: str, *, fix: str, conflicts: tuple[str, ...] = (), details: tuple[str, ...] = ()
) -> None:
    """Raise :class:`InfeasibleDesignError` ("the <model> ended with status '<status>' and no
    solution", the ``details`` and ``"fix: " + fix``) unless ``result`` has a solution."""
    if not result.has_solution:
        raise InfeasibleDesignError(
            f"the {model} ended with status '{result.status}' and no solution",
            conflicts=conflicts,
            details=[*details, f"fix: {fix}"],
        )
