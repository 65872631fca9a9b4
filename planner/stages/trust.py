"""Trusted-relay stage of the pipeline (SMR paper's partially-trusted relay network).

Chooses at most ``security.trusted_budget`` trusted relays among the network's
sites with :func:`solvers.trust.solve_trust` (max-min best single-path
security over the inter-cluster demands), then verifies the choice with SMR
routing (:func:`planner.routing.smr`) on the full fibre graph, and compares it
with greedy, betweenness-centrality and random selections of the same size.

Everything the stage does (model, baselines, SMR search, SMR verification)
draws on one time budget, ``solver.time_limit_s`` (the pipeline's stage
budget); each part is handed a recorded limit. When the time runs out the
stage returns its best selection with the model's bound and gap, and its
metrics say what was cut (``trust_smr_search``: ``stopped``,
``verification``, ``time_limit_reached``). The one piece of work it always
finishes is the model's exact single-path cost of every demand (a Dijkstra
run per demand end point on national graphs: on the 10 000 US cities 2.6 s of CPU time,
many times that on a loaded machine), so a limit below that is overrun by it. SMR evaluations of many demands
run on the executor (``--workers`` / ``--scheduler``), see
:class:`planner.stages.trust_smr.SmrEvaluator`; the verification and the stage's clock
are in :mod:`planner.stages.trust_verify`. The result is a
:class:`~planner.stages.result.TrustResult`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from planner.model.network import Network
from planner.model.scenario import Scenario, SecuritySettings
from planner.stages.backbone import Backbone
from planner.stages.result import TrustResult, require_solution, solver_errors, solver_options
from planner.stages.smr_checks import smr_rows
from planner.stages.trust_smr import SmrEvaluator, choose_for_smr, fewest_for_target
from planner.stages.trust_verify import (
    PROBE_SHARE,
    TrustClock,
    comparison,
    probe_seconds,
    selection_rows,
    smr_table,
    verify_selections,
)
from solvers.base import SolveResult
from solvers.trust import (
    TrustData,
    TrustInputError,
    centrality_select,
    evaluate_costs,
    greedy_trust,
    prepare_trust_data,
    random_select,
    solve_trust,
)

logger = logging.getLogger(__name__)

NON_RELAY_KINDS = {"external"}


def trust_tables(
    network: Network, backbone: Backbone, scenario: Scenario
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``edges``, ``nodes`` and ``demands`` tables of the trust model.

    A site's security probability is its ``p_untrusted`` column when the
    network file gives one, else ``security.p_untrusted``.
    """
    sec = scenario.security
    g = network.graph()
    edges = pd.DataFrame([(u, v) for u, v in g.edges()], columns=["u", "v"])
    sites = network.sites
    p_u = (
        sites["p_untrusted"].astype(float)
        if "p_untrusted" in sites.columns
        else pd.Series(sec.p_untrusted, index=sites.index)
    )
    nodes = pd.DataFrame(
        {
            "node": sites.index.astype(str),
            "p_u": p_u.fillna(sec.p_untrusted).to_numpy(float),
            "cost": sec.trusted_cost,
            "candidate": ~sites["kind"].astype(str).isin(NON_RELAY_KINDS).to_numpy(),
        }
    )
    demands = pd.DataFrame(
        {
            "demand": backbone.demands["demand_id"],
            "source": backbone.demands["source"],
            "target": backbone.demands["target"],
        }
    )
    return edges, nodes, demands


def smr_check(network: Network, demands: pd.DataFrame, trusted: set[str], security: dict[str, float]) -> pd.DataFrame:
    """SMR routing of every demand with the given trusted set: security, paths, key consumption.

    ``key_consumption`` is the number of link-key bits consumed per delivered
    end-to-end key bit when all path keys of all segments are combined (the sum
    of the hop counts of every path).
    """
    # runs on the executor set by the CLI (--workers / --scheduler); serial otherwise
    return smr_rows(network.graph(), demands, trusted, security)


MODEL_SHARE = 0.5
"""Share of the trust stage's remaining time handed to the single-path model."""

BETWEENNESS_SHARE = 0.1
"""Share of what the model leaves handed to the betweenness centrality (sampled on large graphs to fit)."""

SEARCH_SHARE = 0.6
"""Share of what is then left handed to the SMR search when verifying every demand would take longer
than the rest; otherwise the search gets all but the time the verification needs (measured speed)."""

EXACT_BETWEENNESS_MAX_NODES = 500
"""Graphs up to this many nodes get exact betweenness; larger ones a seeded sample of sources that fits its share."""


def _betweenness(graph: nx.Graph, seconds: float, seed: int) -> tuple[dict[Any, float], int]:
    """Betweenness centrality (hop count) and the number of BFS sources it used.

    Exact on graphs of at most :data:`EXACT_BETWEENNESS_MAX_NODES` nodes (or
    when all sources fit in ``seconds``); otherwise networkx's estimate from a
    seeded sample of as many sources as ``seconds`` allows at the speed
    measured on 8 of them (never fewer than 8).
    """
    n = graph.number_of_nodes()
    if n <= EXACT_BETWEENNESS_MAX_NODES:
        return nx.betweenness_centrality(graph), n
    probe = 8
    t0 = time.perf_counter()
    estimate = nx.betweenness_centrality(graph, k=probe, seed=seed)
    per = max(1e-6, (time.perf_counter() - t0) / probe)
    k = int(max(probe, min(n, (seconds - probe * per) / per)))
    if k >= n:
        return nx.betweenness_centrality(graph), n
    if k == probe:  # the probe is that estimate already (same sample of sources)
        return estimate, k
    return nx.betweenness_centrality(graph, k=k, seed=seed), k


def plan_trust(network: Network, backbone: Backbone, scenario: Scenario, *, seed: int = 0) -> TrustResult:
    """Trusted-relay choice for SMR security, verification and comparison with simpler selections.

    Steps: the single-path max-min model (:func:`solvers.trust.solve_trust`)
    gives a bound and a start; greedy, betweenness and random selections are
    further starts; :func:`planner.stages.trust_smr.choose_for_smr` picks the best by
    ``security.trust_objective`` ("min" or "mean" SMR security) and improves
    it by local search. Every selection is then verified with SMR on the same
    demands: all of them when the stage's time allows, else the selection's
    demands and as many more as fit (recorded in ``verification``); the chosen
    set is the best of all by that verification, so it is never worse than a
    baseline on the objective on the verified demands. All of it, model
    included, stays within ``solver.time_limit_s`` (see the module notes).
    ``trust_objective = "target"`` picks the fewest relays that give every
    demand SMR security ``security.eps`` and names the demands that cannot.
    """
    sec = scenario.security
    objective = str(getattr(sec, "trust_objective", "min"))
    if len(backbone.demands) == 0:
        empty = TrustResult()
        empty.share_tables()
        return empty
    tables = trust_tables(network, backbone, scenario)
    edges, nodes, demands = tables
    # Time: the stage has solver.time_limit_s in all (the open stage budget when the pipeline runs
    # it), for everything it does. The single-path model gets at most MODEL_SHARE of what is left,
    # the betweenness baseline BETWEENNESS_SHARE of the rest, the SMR search SEARCH_SHARE of what is
    # then left and the SMR verification all that remains; every share is recorded as a limit and
    # drawn from the same remaining time, so together they cannot overrun the stage.
    clock = TrustClock(float(scenario.solver.time_limit_s))
    data, result = _solve_model(edges, nodes, demands, scenario, clock, seed)
    out = TrustResult(n_demands=len(demands), single_path_bound=result.bound)
    out.record_solve("trust", result, "trusted-relay model (max-min single-path security)")
    security = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    ev = SmrEvaluator(data.graph, list(zip(demands["source"], demands["target"], strict=True)), security)
    ev.keep_results = True  # the verification then reuses the search's routes of the chosen set
    # betweenness once (the baseline and the search's candidate order), sampled on large graphs
    bc, bc_sources = _betweenness(data.graph, clock.hand_out(fraction=BETWEENNESS_SHARE), seed)
    starts = _starts(result, data, tables, int(sec.trusted_budget), bc, seed)
    smr_info: dict[str, Any] = {"objective": objective, "betweenness_sources": bc_sources}
    sel = _select(ev, starts, bc, clock, sec, tables, data, smr_info, seed)
    selections = {sel.name: sel.relays, **starts}
    chosen, vrows, results, full = verify_selections(
        ev, selections, sel.name, sel.rows, sel.per_demand_s, clock, smr_info, seed
    )
    out.metrics["trust_smr_search"] = smr_info
    rows = comparison(selections, sel.single, full, data, float(sec.eps))
    smr_chosen = smr_table(demands, vrows, results)
    for row in rows:
        if row["method"] == sel.name:
            row["mean_key_consumption"] = float(smr_chosen["key_consumption"].mean())
    out.metrics["trust_comparison"] = rows
    _relay_outputs(out, network, nodes, demands, evaluate_costs(data, chosen), smr_chosen, chosen)
    out.verified_demands = len(vrows)
    out.time_limit_reached = bool(smr_info["time_limit_reached"])
    _objective_outputs(out, rows, sel.name, objective, result)
    return out


@dataclass
class _Selection:
    """The SMR selection's outcome: its name and relays, the demands it was made on (``rows``, None =
    all) at the measured SMR speed, and every start's per-demand single-path ``-log`` security."""

    name: str
    relays: list[str]
    rows: list[int] | None
    per_demand_s: float
    single: dict[str, np.ndarray]


def _select(
    ev: SmrEvaluator,
    starts: dict[str, list[str]],
    bc: dict[Any, float],
    clock: TrustClock,
    sec: SecuritySettings,
    tables: Tables,
    data: TrustData,
    smr_info: dict[str, Any],
    seed: int,
) -> _Selection:
    """The SMR search (or the fewest relays for ``eps`` with ``trust_objective = "target"``) within its
    share of the stage's time: all but what verifying every demand needs at the measured SMR speed
    when that fits in ``1 - SEARCH_SHARE`` of what is left, else ``SEARCH_SHARE`` of it."""
    objective = smr_info["objective"]
    _edges, nodes, demands = tables
    pool = [str(v) for v, c, p in zip(nodes["node"], nodes["candidate"], nodes["p_u"], strict=True) if c and p < 1]
    by_bc = sorted(pool, key=lambda v: (-bc.get(v, 0.0), v))
    t_sel = time.perf_counter()
    per_probe = probe_seconds(ev, seed, PROBE_SHARE * clock.left_s())  # the verification's need, in every mode
    left = clock.left_s()
    need = 1.25 * per_probe * len(demands) * (len(starts) + 2)
    share = SEARCH_SHARE if need >= (1 - SEARCH_SHARE) * left or left <= 0 else 1.0 - need / left
    search_s = clock.hand_out(fraction=share)  # recorded like a solver's limit
    deadline = t_sel + search_s
    single = {name: evaluate_costs(data, s) for name, s in starts.items()}
    budget = int(sec.trusted_budget)
    if objective == "target":
        name, relays = _select_for_target(ev, pool, by_bc, deadline, sec, tables, data, starts, smr_info, budget)
        smr_info["selection_time_s"] = time.perf_counter() - t_sel
        return _Selection(name, relays, None, 0.0, single)
    rows, per_demand_s = selection_rows(ev, list(single.values()), len(starts), 0.5 * search_s, seed, per_s=per_probe)
    t_search, calls_before = time.perf_counter(), ev.calls
    name, relays = _select_by_search(ev, starts, pool, budget, by_bc, deadline, rows, per_demand_s, smr_info, seed)
    smr_info["selection_time_s"] = time.perf_counter() - t_sel
    if ev.calls > calls_before:  # the search's own speed (relays make more segments than the probe's none)
        per_demand_s = max(per_demand_s, (time.perf_counter() - t_search) / (ev.calls - calls_before))
    return _Selection(name, relays, rows, per_demand_s, single)


def _objective_outputs(
    out: TrustResult, comparison: list[dict[str, Any]], chosen_name: str, objective: str, result: SolveResult
) -> None:
    """The chosen selection's objectives (``trust_objectives``) and the greedy baseline of the same budget."""
    by_name = {row["method"]: row for row in comparison}
    out.metrics["trust_objectives"] = {
        "objective": objective,
        "chosen": chosen_name,
        "min_single_path_security": by_name[chosen_name]["min_single_path_security"],
        "mean_single_path_security": by_name[chosen_name]["mean_single_path_security"],
        "min_smr_security": by_name[chosen_name]["min_smr_security"],
        "mean_smr_security": by_name[chosen_name]["mean_smr_security"],
        "single_path_bound": result.bound,
    }
    out.baselines["trust"] = {
        "method": "greedy (same budget)",
        "objective": by_name["greedy"]["min_smr_security"] if "greedy" in by_name else None,
        "milp_objective": by_name[chosen_name]["min_smr_security"],
        "measure": "minimum SMR security",
    }


Tables = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
"""The trust model's ``edges``, ``nodes`` and ``demands`` (:func:`trust_tables`)."""


def _solve_model(
    edges: pd.DataFrame,
    nodes: pd.DataFrame,
    demands: pd.DataFrame,
    scenario: Scenario,
    stage_clock: TrustClock,
    seed: int,
) -> tuple[TrustData, SolveResult]:
    """The single-path max-min model within :data:`MODEL_SHARE` of the stage's time; raises
    :class:`~planner.errors.InfeasibleDesignError` when it has no solution."""
    with solver_errors(
        "trust", TrustInputError, infeasible="No trusted-relay choice meets the security settings.", max_items=10
    ):
        data = prepare_trust_data(edges, nodes, demands)
        opts = stage_clock.options(solver_options(scenario, seed=seed), fraction=MODEL_SHARE)
        result = solve_trust(
            edges,
            nodes,
            demands,
            mode="max_min_security",
            max_relays=int(scenario.security.trusted_budget),
            options=opts,
            data=data,
            demand_paths=False,
        )
    require_solution(result, "trusted-relay model", fix="raise solver.time_limit_s or lower security.trusted_budget")
    return data, result


def _starts(
    result: SolveResult, data: TrustData, tables: Tables, budget: int, bc: dict[Any, float], seed: int
) -> dict[str, list[str]]:
    """The selections the SMR search starts from (and the baselines): the model's relays and, with a
    budget, greedy, betweenness-centrality and random selections of that size."""
    edges, nodes, demands = tables
    starts: dict[str, list[str]] = {
        "MILP (max-min single-path security)": [str(x) for x in result.tables["relays"]["node"]]
    }
    if budget > 0:
        greedy_set = result.info.get("greedy_relays")
        starts["greedy"] = (
            [str(x) for x in greedy_set]
            if greedy_set is not None
            else [
                str(x)
                for x in greedy_trust(edges, nodes, demands, max_relays=budget, data=data).tables["relays"]["node"]
            ]
        )
        # the relays only (a baseline's per-demand paths are not needed here); relays_table's node order
        idx = data.index
        bc_set = sorted(centrality_select(data, budget, bc), key=lambda v: idx[v])
        starts["betweenness centrality"] = [str(x) for x in bc_set]
        rnd = sorted(random_select(data, budget, np.random.default_rng(seed)), key=lambda v: idx[v])
        starts["random"] = [str(x) for x in rnd]
    return starts


def _select_for_target(
    ev: SmrEvaluator,
    pool: list[str],
    by_bc: list[str],
    deadline: float,
    sec: SecuritySettings,
    tables: Tables,
    data: TrustData,
    starts: dict[str, list[str]],
    smr_info: dict[str, Any],
    budget: int,
) -> tuple[str, list[str]]:
    """``trust_objective = "target"``: the fewest relays giving every demand SMR security ``eps``
    (recorded in ``smr_info``); ``starts`` get greedy and betweenness baselines of the same size.
    Returns the selection's name and relays."""
    edges, nodes, demands = tables
    tgt = fewest_for_target(ev, pool, float(sec.eps), order=by_bc, deadline=deadline)
    chosen = [str(v) for v in tgt.trusted]
    unreachable = [str(demands["demand"].iloc[i]) for i in tgt.unreachable]
    smr_info.update(
        eps=float(sec.eps),
        met=tgt.met,
        n_demands=len(demands),
        unreachable=unreachable[:50],
        n_unreachable=len(unreachable),
        lower_bound_relays=tgt.lower_bound,
        stopped=tgt.stopped,
        n_trusted=len(chosen),
        over_budget=len(chosen) > budget,
    )
    # baselines of the same size for the comparison
    k = len(chosen)
    if k > 0:
        starts["greedy"] = [
            str(x) for x in greedy_trust(edges, nodes, demands, max_relays=k, data=data).tables["relays"]["node"]
        ]
        starts["betweenness centrality"] = by_bc[:k]
    return "fewest relays for eps (SMR)", chosen


def _select_by_search(
    ev: SmrEvaluator,
    starts: dict[str, list[str]],
    pool: list[str],
    budget: int,
    by_bc: list[str],
    deadline: float,
    rows: list[int] | None,
    per_demand_s: float,
    smr_info: dict[str, Any],
    seed: int,
) -> tuple[str, list[str]]:
    """``trust_objective`` "min" or "mean": the best start improved by SMR local search on ``rows``
    (all demands when None) until ``deadline``, candidates in betweenness order (recorded in
    ``smr_info``). Returns the selection's name and relays."""
    objective = smr_info["objective"]
    order_rank = {v: i for i, v in enumerate(by_bc)}
    choice = choose_for_smr(
        ev,
        starts,
        pool,
        budget,
        objective="mean" if objective == "mean" else "min",
        deadline=deadline,
        rows=rows,
        rank=lambda vs: sorted(vs, key=lambda v: order_rank.get(str(v), 0)),
        seed=seed,
    )
    smr_info.update(
        start=choice.start,
        moves=choice.moves,
        stopped=choice.stopped,
        selection_demands=len(ev.pairs) if rows is None else len(rows),
        smr_seconds_per_demand=round(per_demand_s, 5),
        history=choice.history,
    )
    return f"SMR local search ({objective} SMR security)", [str(v) for v in choice.trusted]


def _relay_outputs(
    out: TrustResult,
    network: Network,
    nodes: pd.DataFrame,
    demands: pd.DataFrame,
    chosen_costs: np.ndarray,
    smr_chosen: pd.DataFrame,
    chosen: list[str],
) -> None:
    """The stage's outputs: ``demands`` (single-path and SMR security of the chosen set), ``relays``
    (every site) and ``trusted``."""
    dem = pd.DataFrame({"demand_id": demands["demand"].to_numpy(), "security_single_path": np.exp(-chosen_costs)})
    out.demands = dem.merge(smr_chosen, on="demand_id", how="left")
    names = network.sites["name"].astype(str).to_dict()
    kinds = network.sites["kind"].astype(str).to_dict()
    out.relays = pd.DataFrame(
        {
            "site_id": nodes["node"],
            "name": [names.get(n, n) for n in nodes["node"]],
            "kind": [kinds.get(n, "") for n in nodes["node"]],
            "trusted": nodes["node"].isin(chosen).to_numpy(),
            "p_untrusted": nodes["p_u"].to_numpy(float),
        }
    )
    out.trusted = frozenset(str(v) for v in out.relays.loc[out.relays["trusted"], "site_id"])
    out.share_tables()
