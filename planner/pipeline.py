"""``plan(network, scenario) -> Design``: the planning pipeline.

This module only orchestrates; each stage is a plain function over tables in
:mod:`planner.stages`, handing back a :class:`~planner.stages.result.StageResult`:

1. :func:`~planner.stages.prepare.prepare_network` — add candidate links where the input
   has none or is disconnected;
2. :func:`plan_access` — cluster assignment and master placement
   (:mod:`solvers.clustering`, warm-started and compared with
   :mod:`solvers.heuristics`);
3. backbone — contract the network onto clusters and route demands
   (:mod:`planner.stages.backbone`);
4. :func:`~planner.stages.repeaters.plan_repeaters` — repeaters per backbone link
   (:mod:`solvers.repeaters`), or :func:`~planner.stages.placement.plan_placement` at existing sites;
5. :func:`~planner.stages.trust.plan_trust` — trusted relays (:mod:`solvers.trust`), verified with
   SMR routing (:mod:`planner.routing`);
6. :func:`~planner.stages.memory.plan_memory` — memory units (:mod:`solvers.memory`);
7. :func:`~planner.stages.assemble.assemble_design` — the :class:`~planner.model.design.Design`
   tables and metrics.

Progress: ``progress(stage)`` is called as each stage starts; inside a
stage's budget :func:`planner.runtime.progress.set_stage_limit` gives the current stage
of the process-wide progress tracker that budget, so a display can say how much
of it is left.

Time limits: each stage runs inside its budget (:class:`planner.stages.budget.PlanClock`;
the split of a plan-wide ``time_limit_s`` over the stages is described in
:mod:`planner.stages.budget`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from planner import __version__
from planner.errors import InfeasibleDesignError, ValidationError
from planner.model.design import Design
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.stages.access_tables import AccessTables, build_access_tables
from planner.stages.assemble import assemble_design
from planner.stages.backbone import Backbone, build_backbone, cluster_of
from planner.stages.budget import PlanClock
from planner.stages.memory import plan_memory
from planner.stages.placement import plan_placement
from planner.stages.prepare import prepare_network
from planner.stages.repeaters import plan_repeaters
from planner.stages.result import StageResult, solver_options, split_timing
from planner.stages.trust import plan_trust
from solvers.base import SolveResult, SolverOptions, current_budget

Progress = Callable[[str], None]

STRONG_LINKING_MAX_PAIRS = 20_000


def _summary(result: SolveResult, model: str) -> dict[str, Any]:
    """A solver summary labelled ``model`` (for :func:`plan_access` until it moves to its stage
    module; new code records a solve with :meth:`StageResult.record_solve`)."""
    out = result.summary()
    out["model"] = model
    return out


_split_timing = split_timing


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


def _repeater_stage(network: Network, backbone: Backbone, clock: PlanClock, stages: dict[str, StageResult],
                    say: Progress, seed: int) -> Backbone:
    """Run the repeater stage the scenario asks for into ``stages["repeaters"]``; returns the backbone
    the later stages plan on (the elementary links between repeater sites with ``placement``)."""
    if clock.scenario.backbone.repeaters == "placement":
        say("backbone: repeater placement on existing sites (MILP)")
        with clock.stage("repeaters") as (sc, _):
            backbone, stages["repeaters"] = plan_placement(network, backbone, sc, seed=seed)
        return backbone
    say("backbone: repeater spacing (MILP)")
    with clock.stage("repeaters") as (sc, b):
        stages["repeaters"] = plan_repeaters(backbone, sc, seed=seed)
    clock.record(stages["repeaters"].timing, "repeaters", b)
    return backbone


def plan(network: Network, scenario: Scenario, *, seed: int = 0, progress: Progress | None = None,
         time_limit_s: float | None = None) -> Design:
    """Plan ``network`` under ``scenario`` and return the chosen :class:`Design`.

    Guarantees: every site appears once in ``design.sites`` with a role; every
    cluster satisfies the size, reach and budget constraints (the solvers check
    their solutions); all random choices derive from ``seed``. Raises
    :class:`~planner.errors.InfeasibleDesignError` naming the conflicting
    constraints when no design exists, and
    :class:`~planner.errors.ValidationError` for invalid inputs. ``time_limit_s``
    bounds the time limits handed to the solvers of all stages together (see
    :mod:`planner.stages.budget` for the split); without it each stage has ``solver.time_limit_s``.
    """
    say = progress or (lambda stage: None)
    mode = scenario.backbone.mode
    repeaters, trusted = mode in ("repeaters", "both"), mode in ("trusted", "both")
    clock = PlanClock(scenario, ["access", *(["repeaters"] if repeaters else []),
                                 *(["trust"] if trusted else []), "memory"], time_limit_s)
    network, notes = prepare_network(network, scenario)
    say("access clusters: assignment and master placement (MILP)")
    with clock.stage("access") as (sc, b):
        access, access_tables = plan_access(network, sc, seed=seed)
    clock.record(access.timing, "access", b)  # all of the stage, every solve
    stages: dict[str, StageResult] = {"access": access}
    say("backbone: contracting the network onto clusters")
    t_bb = time.perf_counter()
    site_to_node = cluster_of(access.tables["assignment"], access_tables.standalone)
    backbone = build_backbone(network, site_to_node, scenario)
    access.timing["backbone.build_s"] = time.perf_counter() - t_bb
    if repeaters:
        backbone = _repeater_stage(network, backbone, clock, stages, say, seed)
    if trusted:
        say("backbone: trusted-relay selection (MILP) and SMR verification")
        with clock.stage("trust") as (sc, b):
            stages["trust"] = plan_trust(network, backbone, sc, seed=seed)
        clock.record(stages["trust"].timing, "trust", b)
    say("memory allocation")
    with clock.stage("memory") as (sc, _):
        stages["memory"] = plan_memory(network, access, backbone, stages, sc, seed=seed)
    design = assemble_design(network, scenario, seed, access, access_tables, backbone, stages, notes)
    design.timing["total_s"] = time.perf_counter() - clock.start
    design.metrics["demand_model"] = backbone.demand_model
    design.version = __version__
    return design
