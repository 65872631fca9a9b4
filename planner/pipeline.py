"""``plan(network, scenario) -> Design``: the planning pipeline.

Stages, each a plain function over tables:

1. :func:`prepare_network` — add candidate links where the input has none or
   is disconnected;
2. :func:`plan_access` — cluster assignment and master placement
   (:mod:`solvers.clustering`, warm-started and compared with
   :mod:`solvers.heuristics`);
3. backbone — contract the network onto clusters and route demands
   (:mod:`planner.stages.backbone`);
4. :func:`plan_repeaters` — repeaters per backbone link (:mod:`solvers.repeaters`);
5. :func:`plan_trust` — trusted relays (:mod:`solvers.trust`), verified with
   SMR routing (:mod:`planner.routing`);
6. :func:`plan_memory` — memory units (:mod:`solvers.memory`);
7. :func:`assemble_design` — the :class:`~planner.model.design.Design` tables and metrics.

Progress: ``progress(stage)`` is called as each stage starts; inside a
stage's budget :func:`planner.runtime.progress.set_stage_limit` gives the current stage
of the process-wide progress tracker that budget, so a display can say how much
of it is left.

Time limits: each stage runs inside a :func:`solvers.base.stage_budget`; the
limits its solvers are handed sum to at most the stage's budget, and the
budget covers building as well as solving. Without ``time_limit_s`` every
stage's budget is ``solver.time_limit_s``. With ``time_limit_s`` (``qkdplan
plan --time-limit S``) the whole plan is bounded: when a stage starts it gets
the time left of the plan times its weight (:data:`STAGE_WEIGHTS`) over the
weights of the stages still to run, so time a stage does not use passes to the
later ones. A stage receives its budget as ``solver.time_limit_s`` of the
scenario it is given (``solver_options(scenario)`` then carries it), which is
how the trusted-relay and memory stages get theirs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner import __version__
from planner.errors import InfeasibleDesignError, ValidationError
from planner.model.design import Design
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.physics import chain_factor
from planner.runtime.progress import set_stage_limit
from planner.stages.access_tables import AccessTables, build_access_tables
from planner.stages.backbone import Backbone, build_backbone, cluster_of
from solvers.base import SolveResult, SolverOptions, StageBudget, current_budget, stage_budget

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

STRONG_LINKING_MAX_PAIRS = 20_000
# shares of a plan-wide time limit (the trusted-relay MILP is the largest model)
STAGE_WEIGHTS: dict[str, float] = {"access": 1.0, "repeaters": 1.0, "trust": 2.0, "memory": 0.5}


@dataclass
class StageResult:
    """Tables and solver summaries produced by one stage."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    solves: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)


def solver_options(scenario: Scenario, *, seed: int = 0) -> SolverOptions:
    """The MILP options of a scenario."""
    s = scenario.solver
    return SolverOptions(time_limit_s=s.time_limit_s, mip_gap=s.mip_gap, threads=s.threads, seed=seed)


def _summary(result: SolveResult, model: str) -> dict[str, Any]:
    out = result.summary()
    out["model"] = model
    return out


def _split_timing(summary: dict[str, Any], timing: dict[str, float], stage: str) -> dict[str, Any]:
    """Move wall-clock fields out of a solver summary (so design.json stays reproducible)."""
    for key in ("solve_time_s", "build_time_s", "heuristic_time_s", "prep_time_s", "prepare_time_s"):
        if key in summary:
            value = summary.pop(key)
            if isinstance(value, (int, float)) and value is not None:
                timing[f"{stage}.{key}"] = float(value)
    return summary


# ---------------------------------------------------------------- stage 1
def inferred_position_notes(network: Network) -> list[str]:
    """One note listing the sites whose position was inferred (not given in the input), if any."""
    if "position_source" not in network.sites.columns:
        return []
    src = network.sites["position_source"].astype(str)
    inferred = src[src != "given"]
    if inferred.empty:
        return []
    names = network.sites.loc[inferred.index, "name"].astype(str)
    items = ", ".join(f"{n} ({s})" for n, s in zip(names, inferred, strict=True))
    return [f"{len(inferred)} site position(s) were not in the input and were inferred (see column "
            f"position_source of sites.csv and design.gpkg; junction/neighbours: centroid of linked sites, "
            f"gazetteer: looked up by name): {items}."]


def prepare_network(network: Network, scenario: Scenario) -> tuple[Network, list[str]]:
    """Return the network with candidate links added when needed, and notes on what was done."""
    notes: list[str] = inferred_position_notes(network)
    mode = scenario.network.candidate_links
    if len(network.sites) < 2:
        raise ValidationError(f"{network.source}: the network has {len(network.sites)} site(s); planning needs "
                              "at least 3 (a master and two slaves)", source=network.source)
    needs = len(network.links) == 0 or len(network.connected_components()) > 1
    if mode in ("delaunay", "knn") or (mode == "auto" and needs):
        method: Literal["delaunay", "knn"] = "knn" if mode == "knn" else "delaunay"
        before = len(network.links)
        network = network.with_candidate_links(method=method, k=scenario.network.knn_k)
        added = len(network.links) - before
        if added:
            notes.append(f"{added} candidate fibre links were generated ({method}) because the input "
                         + ("had no links." if before == 0 else "was disconnected." if mode == "auto" else "asked for it."))
    return network, notes


# ---------------------------------------------------------------- stage 2
ACCESS_FLOOR_S = 30.0
"""Least solver time (s) the access stage gives each search for unservable sites and each
clustering solve after the first (once sites were dropped), even when its budget is spent (doubled for the next
solve when a reach component had no solution in time but the elastic model finds it feasible): on
10 000 sites building the tables and the per-component heuristics can use a 60 s budget whole,
and the small infeasible components' elastic models need well under a second each."""


def plan_access(network: Network, scenario: Scenario, *, seed: int = 0) -> tuple[StageResult, AccessTables]:
    """Cluster assignment and master placement; returns tables ``assignment`` and ``clusters``."""
    from solvers.clustering import (
        COMPONENT_SOLVE_MIN_SITES,
        ClusteringData,
        ClusteringInfeasible,
        ClusteringInputError,
        ClusteringOptions,
        restrict_to_sites,
        solve_clustering,
        solve_clustering_by_component,
        unservable_sites_by_component,
    )

    acc, mem = scenario.access, scenario.memory
    tables = build_access_tables(network, scenario)
    out = StageResult()
    balanced = acc.objective == "balanced"
    options = ClusteringOptions(
        objective="min_cost" if acc.objective == "min_cost" else "max_keys", min_slaves=acc.min_slaves, max_masters=acc.max_masters or None,
        max_cost=acc.cost_budget or None, r_mdi=acc.r_mdi, r_ekr=acc.r_ekr, memory_master=mem.master_units,
        memory_slave=mem.slave_units, min_cluster_keys=acc.min_keys_per_cluster, heuristic_seed=seed,
        loss_weight=acc.loss_weight or None,
        # per-pair linking rows x <= y: a much tighter root LP on small and medium instances
        # (SURFnet: 5 s instead of 24 s), but they stall the root LP at thousands of sites
        strong_linking=len(tables.pairs) <= STRONG_LINKING_MAX_PAIRS,
    )
    sopts = solver_options(scenario, seed=seed)
    budget = current_budget()

    def limited(fraction: float = 1.0, floor_s: float = 0.0) -> SolverOptions:
        """What is left of the stage's budget (the whole limit without one), times ``fraction``,
        but at least ``floor_s`` (which may pass the scenario's limit: see ACCESS_FLOOR_S)."""
        opts = (budget.options(sopts, fraction=fraction) if budget is not None
                else dataclasses.replace(sopts, time_limit_s=fraction * sopts.time_limit_s))
        return dataclasses.replace(opts, time_limit_s=max(opts.time_limit_s, floor_s))

    dropped: list[str] = []
    result = None
    boost = 0  # doublings of the floor: a component had no solution in time but is feasible
    for attempt in range(6):
        # the first attempt leaves 30 % of the budget for finding unservable sites should it fail;
        # a later attempt (after dropping sites) has at least ACCESS_FLOOR_S even when the budget
        # is spent (on 10 000 sites building the tables and the heuristics can use all of it)
        share = 0.7 if attempt == 0 else 1.0
        floor = 0.0 if attempt == 0 else ACCESS_FLOOR_S * 2.0 ** boost
        if len(tables.sites) == 0:
            break
        data = ClusteringData(sites=tables.sites, candidates=tables.candidates,
                              pairs=tables.pairs.rename(columns={"master": "candidate"}))
        try:
            if balanced:  # cost-aware default: fewest masters for most of the keys (planner.stages.access_pareto)
                from planner.stages.access_pareto import balanced_access

                result, out.tables["access_pareto"] = balanced_access(
                    data, options, limited(share, floor), keys_fraction=acc.keys_fraction, points=acc.pareto_points)
            elif len(data.sites) >= COMPONENT_SOLVE_MIN_SITES:  # exact and much faster without budgets
                result = solve_clustering_by_component(data, options, limited(share, floor))
            else:
                result = solve_clustering(data, options, limited(share, floor))
            unsolved = result.info.get("component_sites")  # set by the per-component solve
            if result.has_solution or (attempt > 0 and not isinstance(unsolved, list)):
                break
            # no clustering found within the limit (not even by the heuristic, which fails when
            # some sites cannot be served): look for unservable sites, drop them and try again
            where = restrict_to_sites(data, unsolved) if isinstance(unsolved, list) else data
            leave_out = unservable_sites_by_component(where, options, limited(0.5, ACCESS_FLOOR_S))
            if leave_out == [] and isinstance(unsolved, list):  # feasible, only short of time:
                boost += 1  # solve again with twice the floor
                continue
            if not leave_out:
                break
            dropped += leave_out
            tables = _without_sites(tables, set(leave_out))
        except ClusteringInfeasible as exc:
            # Sites that no cluster can serve (e.g. the fourth site of a chain of four within
            # reach) join the backbone directly, as standalone sites, rather than failing the plan;
            # any other conflict (budgets, capacity) is the user's to resolve. The fewest such
            # sites are found one reach component at a time (only components the greedy
            # heuristic cannot cluster completely get the elastic MILP). When the search was split
            # by reach component, the exception names the infeasible components' sites: only
            # those get the elastic MILP, not the (possibly huge) components that were not solved.
            where = data if exc.sites is None else restrict_to_sites(data, exc.sites)
            # (no conflicts named = the elastic diagnosis ran out of time: try too; a component's
            # conflict has no budget in it, and the search says None when leaving sites out
            # cannot help, whatever family the diagnosis chose to relax)
            leave_out = (unservable_sites_by_component(where, options, limited(1.0, ACCESS_FLOOR_S))
                         if exc.sites is not None or set(exc.conflicts) <= {"assign-once", "cluster-size-max"}
                         else None)
            if not leave_out:
                raise InfeasibleDesignError(
                    "No access clustering satisfies the scenario.", conflicts=[str(c) for c in exc.conflicts],
                    details=[*exc.details, "fix: raise access.reach_km or access.capacity, lower "
                             "access.min_slaves, or relax the master/cost budget"]) from None
            dropped += leave_out
            tables = _without_sites(tables, set(leave_out))
        except ClusteringInputError as exc:
            raise ValidationError(f"access tables: {exc}", source="scenario") from None
    standalone = sorted(set(tables.standalone) | set(dropped))
    tables = AccessTables(sites=tables.sites, candidates=tables.candidates, pairs=tables.pairs, standalone=standalone)
    if standalone:
        out.notes.append(f"{len(standalone)} site(s) cannot be served by any cluster (fewer than {acc.min_slaves} "
                         f"other sites within the access reach of {acc.reach_km:g} km, or no feasible cluster "
                         "contains them) and join the backbone directly as standalone sites: "
                         + ", ".join(_names(network, standalone[:12])) + (" ..." if len(standalone) > 12 else ""))
    if result is None:
        out.tables["assignment"] = pd.DataFrame(columns=["site", "master", "role", "distance_km", "loss_db"])
        out.tables["clusters"] = pd.DataFrame(columns=["master", "n_slaves", "ekert_pairs", "keys_per_attempt"])
        out.notes.append("No cluster can be formed: no site has enough neighbours within the access reach. "
                         "Raise access.reach_km to form clusters.")
        return out, tables
    if not result.has_solution:
        raise InfeasibleDesignError(f"the clustering model ended with status '{result.status}' and no solution "
                                    f"within {scenario.solver.time_limit_s:g} s",
                                    details=["fix: raise solver.time_limit_s or solver.mip_gap"])
    source = str(result.info.get("source", "milp"))
    model_name = "clustering MILP" if source == "milp" else f"clustering ({source})"
    if balanced:
        model_name += f", balanced: {result.info.get('rule', '')}"
    summary = _split_timing(_summary(result, model_name), out.timing, "access")
    out.solves["access"] = summary
    heur = result.info.get("heuristic_objective")
    if heur is not None:
        out.baselines["access"] = {"method": "greedy + local search heuristic (warm start)",
                                   "objective": float(heur), "optimised_objective": result.objective,
                                   "improvement_pct": _pct(result.objective, float(heur),
                                                           maximise=acc.objective != "min_cost")}
    out.tables["assignment"] = result.tables["assignment"]
    out.tables["clusters"] = result.tables["clusters"]
    return out, tables


def _without_sites(tables: AccessTables, drop: set[str]) -> AccessTables:
    """Access tables with the given sites removed (as sites and as candidate masters)."""
    pairs = tables.pairs[~tables.pairs["site"].isin(drop) & ~tables.pairs["master"].isin(drop)]
    return AccessTables(sites=tables.sites[~tables.sites.index.isin(drop)],
                        candidates=tables.candidates[~tables.candidates.index.isin(drop)],
                        pairs=pairs.reset_index(drop=True), standalone=tables.standalone)


def _pct(milp: float, heur: float, *, maximise: bool) -> float | None:
    if not (math.isfinite(milp) and math.isfinite(heur)) or heur == 0:
        return None
    return 100.0 * ((milp - heur) / abs(heur) if maximise else (heur - milp) / abs(heur))


def _names(network: Network, ids: list[str]) -> list[str]:
    names = network.sites["name"].astype(str)
    return [f"{names.get(i, i)}" for i in ids]


# ---------------------------------------------------------------- stage 4
def hop_factor_table(k_max: int, q: float) -> tuple[float, ...]:
    """Eq. 9's hop factor ``g(k)`` (:func:`planner.physics.chain_factor`) for ``k = 0..k_max``,
    the table the repeater-spacing model is given (entry 0 is not used)."""
    return (0.0, *(float(g) for g in chain_factor(np.arange(1, max(k_max, 1) + 1), q=q)))


def plan_repeaters(backbone: Backbone, scenario: Scenario, *, seed: int = 0) -> StageResult:
    """Repeaters per backbone link against the Eq. 9 rate target (or max-min rate under a budget)."""
    from solvers.repeaters import (
        ChainParameters,
        RepeaterInfeasible,
        RepeaterInputError,
        solve_spacing,
    )

    out = StageResult()
    bbs, ph = scenario.backbone, scenario.physics
    if len(backbone.links) == 0 or len(backbone.demands) == 0:
        out.tables["links"] = pd.DataFrame({"link_id": backbone.links["link_id"], "repeaters": 0})
        out.tables["demands"] = pd.DataFrame(columns=["demand_id"])
        return out
    links = pd.DataFrame({
        "link": backbone.links["link_id"],
        "length_km": np.maximum(backbone.links["length_km"].astype(float), 1e-3),
        "cost_per_repeater": bbs.repeater_cost,
        "max_repeaters": bbs.max_repeaters_per_link,
    })
    demands = pd.DataFrame({
        "demand": backbone.demands["demand_id"],
        "path": [p.split(";") for p in backbone.demands["links"]],
        "rate_target": bbs.rate_target if bbs.objective == "min_cost" else math.nan,
    })
    params = ChainParameters(alpha_db_per_km=ph.alpha_db_per_km, q=ph.q_swap, memory=scenario.memory.edge_units,
                             speed_km_per_s=ph.speed_km_per_s, t_mea_s=ph.t_mea_s, t_ret_s=ph.t_ret_s,
                             hop_factors=hop_factor_table(len(links) * (bbs.max_repeaters_per_link + 1) + 1,
                                                          ph.q_swap))
    eq10_limit = bbs.max_latency_s or None
    if eq10_limit is not None and bbs.latency_model == "protocol":
        from planner.stages.latency import apply_protocol_latency_limit

        demands, note = apply_protocol_latency_limit(demands, links, scenario)
        out.notes.append(note)
        eq10_limit = None
    try:
        result = solve_spacing(links, demands, params, mode=bbs.objective,
                               budget=bbs.repeater_budget * bbs.repeater_cost if bbs.objective == "max_min_rate" else None,
                               latency_limit_s=eq10_limit, options=solver_options(scenario, seed=seed),
                               plan_reachable=True)
    except RepeaterInfeasible as exc:
        raise InfeasibleDesignError(
            "No repeater spacing meets the backbone targets.", conflicts=[str(c) for c in exc.conflicts[:10]],
            details=[*exc.details[:10], "fix: lower backbone.rate_target, raise backbone.max_repeaters_per_link "
                     "or memory.edge_units, or raise physics.q_swap"]) from None
    except RepeaterInputError as exc:
        raise ValidationError(f"backbone tables: {exc}", source="scenario") from None
    if not result.has_solution:
        raise InfeasibleDesignError(
            f"the repeater-spacing stage ended with status '{result.status}' and no design within its time limit "
            f"of {scenario.solver.time_limit_s:.1f} s", details=["fix: raise solver.time_limit_s or the plan's --time-limit"])
    out.solves["repeaters"] = _split_timing(_summary(result, f"repeater spacing MILP ({bbs.objective})"), out.timing,
                                            "repeaters")
    out.tables["links"] = result.tables["links"]
    out.tables["demands"] = result.tables["demands"]
    unreachable = result.info.get("unreachable") or {}
    if unreachable:  # planned without them: they cannot reach the target with any spacing
        worst = sorted(unreachable, key=lambda d: unreachable[d])[:10]
        out.notes.append(
            f"{len(unreachable)} backbone demand(s) cannot reach backbone.rate_target = {bbs.rate_target:.4g} "
            f"even with {bbs.max_repeaters_per_link} repeaters on every link; the spacing was planned for the "
            "others and their shortfall is in the demands table (column 'shortfall'). Reachable at most: "
            + ", ".join(f"{d} {unreachable[d]:.3g}" for d in worst) + (", ..." if len(unreachable) > 10 else "")
            + ". Fix: lower backbone.rate_target, raise backbone.max_repeaters_per_link or memory.edge_units, "
            "or raise physics.q_swap.")
    return out


# ---------------------------------------------------------------- pipeline
def stage_budget_s(scenario: Scenario, stage: str, remaining: list[str], plan_left_s: float | None) -> float:
    """Time budget of ``stage`` (see the module docstring): ``solver.time_limit_s`` without a plan
    limit, else the plan's time left times the stage's weight over the weights of ``remaining``
    (the stages still to run, this one included)."""
    if plan_left_s is None:
        return float(scenario.solver.time_limit_s)
    total_w = sum(STAGE_WEIGHTS[s] for s in remaining)
    return max(0.0, plan_left_s) * STAGE_WEIGHTS[stage] / total_w


def _with_time_limit(scenario: Scenario, limit_s: float) -> Scenario:
    """The scenario with ``solver.time_limit_s = limit_s`` (how a stage receives its budget)."""
    import dataclasses

    return dataclasses.replace(scenario, solver=dataclasses.replace(scenario.solver, time_limit_s=max(0.0, limit_s)))


def plan(network: Network, scenario: Scenario, *, seed: int = 0, progress: Progress | None = None,
         time_limit_s: float | None = None) -> Design:
    """Plan ``network`` under ``scenario`` and return the chosen :class:`Design`.

    Guarantees: every site appears once in ``design.sites`` with a role; every
    cluster satisfies the size, reach and budget constraints (the solvers check
    their solutions); all random choices derive from ``seed``. Raises
    :class:`~planner.errors.InfeasibleDesignError` naming the conflicting
    constraints when no design exists, and
    :class:`~planner.errors.ValidationError` for invalid inputs. ``time_limit_s``
    bounds the time limits handed to the solvers of all stages together (see the
    module docstring for the split); without it each stage has ``solver.time_limit_s``.
    """
    say = progress or (lambda stage: None)
    t_start = time.perf_counter()
    stages: dict[str, StageResult] = {}
    mode = scenario.backbone.mode
    todo = ["access", *(["repeaters"] if mode in ("repeaters", "both") else []),
            *(["trust"] if mode in ("trusted", "both") else []), "memory"]
    opened: list[StageBudget] = []

    def budget_for(stage: str) -> float:
        # the plan's time left: its limit less the limits earlier stages handed to solvers (so
        # what a stage does not use passes on), and never more than the wall-clock time left
        left = None
        if time_limit_s is not None:
            left = min(float(time_limit_s) - sum(b.handed_s for b in opened),
                       float(time_limit_s) - (time.perf_counter() - t_start))
        return stage_budget_s(scenario, stage, todo[todo.index(stage):], left)

    network, notes = prepare_network(network, scenario)
    say("access clusters: assignment and master placement (MILP)")
    with stage_budget("access", budget_for("access")) as b:
        opened.append(b)
        set_stage_limit(b.budget_s)
        access, access_tables = plan_access(network, _with_time_limit(scenario, b.budget_s), seed=seed)
    access.timing["access.stage_s"] = time.perf_counter() - b.start  # all of the stage, every solve
    access.timing["access.budget_s"] = b.budget_s
    stages["access"] = access
    say("backbone: contracting the network onto clusters")
    t_bb = time.perf_counter()
    site_to_node = cluster_of(access.tables["assignment"], access_tables.standalone)
    backbone = build_backbone(network, site_to_node, scenario)
    access.timing["backbone.build_s"] = time.perf_counter() - t_bb
    if mode in ("repeaters", "both") and scenario.backbone.repeaters == "placement":
        say("backbone: repeater placement on existing sites (MILP)")
        from planner.stages.placement import plan_placement

        with stage_budget("repeaters", budget_for("repeaters")) as b:
            opened.append(b)
            set_stage_limit(b.budget_s)
            backbone, stages["repeaters"] = plan_placement(network, backbone, _with_time_limit(scenario, b.budget_s),
                                                           seed=seed)
    elif mode in ("repeaters", "both"):
        say("backbone: repeater spacing (MILP)")
        with stage_budget("repeaters", budget_for("repeaters")) as b:
            opened.append(b)
            set_stage_limit(b.budget_s)
            stages["repeaters"] = plan_repeaters(backbone, _with_time_limit(scenario, b.budget_s), seed=seed)
        stages["repeaters"].timing.update({"repeaters.stage_s": time.perf_counter() - b.start,
                                           "repeaters.budget_s": b.budget_s})
    if mode in ("trusted", "both"):
        say("backbone: trusted-relay selection (MILP) and SMR verification")
        from planner.stages.trust import plan_trust

        with stage_budget("trust", budget_for("trust")) as b:
            opened.append(b)
            set_stage_limit(b.budget_s)
            stages["trust"] = plan_trust(network, backbone, _with_time_limit(scenario, b.budget_s), seed=seed)
        stages["trust"].timing.update({"trust.stage_s": time.perf_counter() - b.start, "trust.budget_s": b.budget_s})
    say("memory allocation")
    from planner.stages.memory import plan_memory

    with stage_budget("memory", budget_for("memory")) as b:
        opened.append(b)
        set_stage_limit(b.budget_s)
        stages["memory"] = plan_memory(network, access, backbone, stages, _with_time_limit(scenario, b.budget_s),
                                       seed=seed)
    from planner.stages.assemble import assemble_design

    design = assemble_design(network, scenario, seed, access, access_tables, backbone, stages, notes)
    design.timing["total_s"] = time.perf_counter() - t_start
    design.metrics["demand_model"] = backbone.demand_model
    design.version = __version__
    return design
