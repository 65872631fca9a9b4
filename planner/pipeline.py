"""``plan(network, scenario) -> Design``: the planning pipeline.

Stages, each a plain function over tables:

1. :func:`prepare_network` — add candidate links where the input has none or
   is disconnected;
2. :func:`plan_access` — cluster assignment and master placement
   (:mod:`solvers.clustering`, warm-started and compared with
   :mod:`solvers.heuristics`);
3. backbone — contract the network onto clusters and route demands
   (:mod:`planner.backbone`);
4. :func:`plan_repeaters` — repeaters per backbone link (:mod:`solvers.repeaters`);
5. :func:`plan_trust` — trusted relays (:mod:`solvers.trust`), verified with
   SMR routing (:mod:`planner.routing`);
6. :func:`plan_memory` — memory units (:mod:`solvers.memory`);
7. :func:`assemble_design` — the :class:`~planner.design.Design` tables and metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner import __version__
from planner.access import AccessTables, build_access_tables
from planner.backbone import Backbone, build_backbone, cluster_of
from planner.design import Design
from planner.errors import InfeasibleDesignError, ValidationError
from planner.network import Network
from planner.scenario import Scenario
from solvers.base import SolveResult, SolverOptions

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

STRONG_LINKING_MAX_PAIRS = 20_000


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
def prepare_network(network: Network, scenario: Scenario) -> tuple[Network, list[str]]:
    """Return the network with candidate links added when needed, and notes on what was done."""
    notes: list[str] = []
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
def plan_access(network: Network, scenario: Scenario, *, seed: int = 0) -> tuple[StageResult, AccessTables]:
    """Cluster assignment and master placement; returns tables ``assignment`` and ``clusters``."""
    from solvers.clustering import (
        ClusteringData,
        ClusteringInfeasible,
        ClusteringInputError,
        ClusteringOptions,
        solve_clustering,
        unservable_sites,
    )

    acc, mem = scenario.access, scenario.memory
    tables = build_access_tables(network, scenario)
    out = StageResult()
    options = ClusteringOptions(
        objective=acc.objective, min_slaves=acc.min_slaves, max_masters=acc.max_masters or None,
        max_cost=acc.cost_budget or None, r_mdi=acc.r_mdi, r_ekr=acc.r_ekr, memory_master=mem.master_units,
        memory_slave=mem.slave_units, min_cluster_keys=acc.min_keys_per_cluster, heuristic_seed=seed,
        loss_weight=acc.loss_weight or None,
        # per-pair linking rows x <= y: a much tighter root LP on small and medium instances
        # (SURFnet: 5 s instead of 24 s), but they stall the root LP at thousands of sites
        strong_linking=len(tables.pairs) <= STRONG_LINKING_MAX_PAIRS,
    )
    sopts = solver_options(scenario, seed=seed)
    dropped: list[str] = []
    result = None
    for _attempt in range(3):
        if len(tables.sites) == 0:
            break
        data = ClusteringData(sites=tables.sites, candidates=tables.candidates,
                              pairs=tables.pairs.rename(columns={"master": "candidate"}))
        try:
            result = solve_clustering(data, options, sopts)
            break
        except ClusteringInfeasible as exc:
            # Sites that no cluster can serve (e.g. the fourth site of a chain of four within
            # reach) join the backbone directly, as standalone sites, rather than failing the plan;
            # any other conflict (budgets, capacity) is the user's to resolve.
            leave_out = unservable_sites(data, options, sopts) if exc.conflicts == ["assign-once"] else None
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
    summary = _split_timing(_summary(result, model_name), out.timing, "access")
    out.solves["access"] = summary
    heur = result.info.get("heuristic_objective")
    if heur is not None:
        out.baselines["access"] = {"method": "greedy + local search heuristic (warm start)",
                                   "objective": float(heur), "optimised_objective": result.objective,
                                   "improvement_pct": _pct(result.objective, float(heur),
                                                           maximise=acc.objective == "max_keys")}
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
                             speed_km_per_s=ph.speed_km_per_s, t_mea_s=ph.t_mea_s, t_ret_s=ph.t_ret_s)
    eq10_limit = bbs.max_latency_s or None
    if eq10_limit is not None and bbs.latency_model == "protocol":
        from planner.latency import apply_protocol_latency_limit

        demands, note = apply_protocol_latency_limit(demands, links, scenario)
        out.notes.append(note)
        eq10_limit = None
    try:
        result = solve_spacing(links, demands, params, mode=bbs.objective,
                               budget=bbs.repeater_budget * bbs.repeater_cost if bbs.objective == "max_min_rate" else None,
                               latency_limit_s=eq10_limit, options=solver_options(scenario, seed=seed))
    except RepeaterInfeasible as exc:
        raise InfeasibleDesignError(
            "No repeater spacing meets the backbone targets.", conflicts=[str(c) for c in exc.conflicts[:10]],
            details=[*exc.details[:10], "fix: lower backbone.rate_target, raise backbone.max_repeaters_per_link "
                     "or memory.edge_units, or raise physics.q_swap"]) from None
    except RepeaterInputError as exc:
        raise ValidationError(f"backbone tables: {exc}", source="scenario") from None
    if not result.has_solution:
        raise InfeasibleDesignError(f"the repeater-spacing model ended with status '{result.status}' and no solution",
                                    details=["fix: raise solver.time_limit_s"])
    out.solves["repeaters"] = _split_timing(_summary(result, f"repeater spacing MILP ({bbs.objective})"), out.timing,
                                            "repeaters")
    out.tables["links"] = result.tables["links"]
    out.tables["demands"] = result.tables["demands"]
    return out


# ---------------------------------------------------------------- pipeline
def plan(network: Network, scenario: Scenario, *, seed: int = 0, progress: Progress | None = None) -> Design:
    """Plan ``network`` under ``scenario`` and return the chosen :class:`Design`.

    Guarantees: every site appears once in ``design.sites`` with a role; every
    cluster satisfies the size, reach and budget constraints (the solvers check
    their solutions); all random choices derive from ``seed``. Raises
    :class:`~planner.errors.InfeasibleDesignError` naming the conflicting
    constraints when no design exists, and
    :class:`~planner.errors.ValidationError` for invalid inputs.
    """
    say = progress or (lambda stage: None)
    t_start = time.perf_counter()
    stages: dict[str, StageResult] = {}
    network, notes = prepare_network(network, scenario)
    say("access clusters: assignment and master placement (MILP)")
    access, access_tables = plan_access(network, scenario, seed=seed)
    stages["access"] = access
    say("backbone: contracting the network onto clusters")
    site_to_node = cluster_of(access.tables["assignment"], access_tables.standalone)
    backbone = build_backbone(network, site_to_node, scenario)
    mode = scenario.backbone.mode
    if mode in ("repeaters", "both"):
        say("backbone: repeater spacing (MILP)")
        stages["repeaters"] = plan_repeaters(backbone, scenario, seed=seed)
    if mode in ("trusted", "both"):
        say("backbone: trusted-relay selection (MILP) and SMR verification")
        from planner.trust_stage import plan_trust

        stages["trust"] = plan_trust(network, backbone, scenario, seed=seed)
    say("memory allocation")
    from planner.memory_stage import plan_memory

    stages["memory"] = plan_memory(network, access, backbone, stages, scenario, seed=seed)
    from planner.assemble import assemble_design

    design = assemble_design(network, scenario, seed, access, access_tables, backbone, stages, notes)
    design.timing["total_s"] = time.perf_counter() - t_start
    design.metrics["demand_model"] = backbone.demand_model
    design.version = __version__
    return design
