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
``verification``, ``time_limit_reached``). SMR evaluations of many demands
run on the executor (``--workers`` / ``--scheduler``), see
:class:`planner.stages.trust_smr.SmrEvaluator`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx
import numpy as np
import pandas as pd

from planner.model.network import Network
from planner.model.scenario import Scenario, SecuritySettings
from planner.stages.backbone import Backbone
from planner.stages.result import StageResult, require_solution, solver_errors, solver_options
from planner.stages.smr_checks import smr_rows
from planner.stages.trust_smr import SmrEvaluator, choose_for_smr, fewest_for_target, smr_key
from solvers.base import SolveResult, current_budget, note_time_limit
from solvers.trust import (
    TrustData,
    TrustInputError,
    centrality_trust,
    evaluate_costs,
    greedy_trust,
    prepare_trust_data,
    random_trust,
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


def _smr_table(demands: pd.DataFrame, rows: list[int] | None, results: list[Any]) -> pd.DataFrame:
    """The :func:`smr_check` columns for the routed demands ``rows`` (all when None)."""
    idx = range(len(demands)) if rows is None else rows
    out = []
    for i, res in zip(idx, results, strict=True):
        out.append(
            {
                "demand_id": demands["demand"].iloc[i],
                "security": float(res.security) if res.delivered else 0.0,
                "segments": len(res.segments),
                "paths": int(res.n_paths),
                "key_consumption": int(res.total_hops),
                "trusted_on_path": ";".join(str(x) for x in res.segment_nodes[1:-1]),
            }
        )
    return pd.DataFrame(
        out, columns=["demand_id", "security", "segments", "paths", "key_consumption", "trusted_on_path"]
    )


def _probe_seconds(ev: Any, seed: int) -> float:
    """Seconds per demand of SMR routing, timed on up to 10 demands."""
    n = len(ev.pairs)
    probe = sorted(np.random.default_rng(seed).choice(n, size=min(n, 10), replace=False).tolist())
    t0 = time.perf_counter()
    ev.securities(frozenset(), probe, results=[])
    return max(1e-4, (time.perf_counter() - t0) / len(probe))


def _selection_rows(
    ev: Any, single_costs: list[np.ndarray], n_starts: int, time_s: float, seed: int, per_s: float | None = None
) -> tuple[list[int] | None, float]:
    """Demands the SMR selection evaluates: all when that fits in ``time_s``, else a sample.

    Times SMR on a few demands first. The sample holds the demands worst by
    single-path security under any start (they decide the minimum) and a
    fixed random draw (for the mean). Returns the rows (None = all) and the
    measured seconds per demand.
    """

    n = len(ev.pairs)
    rng = np.random.default_rng(seed)
    per = per_s if per_s is not None else _probe_seconds(ev, seed)
    affordable = int(time_s / per / (n_starts + 12))
    if affordable >= n:
        return None, per
    k = max(MIN_SELECTION_DEMANDS, affordable)
    worst: list[int] = []
    for costs in single_costs:
        worst.extend(np.argsort(-costs, kind="stable")[: k // (2 * max(1, len(single_costs)))].tolist())
    rows = set(worst)
    rest = [i for i in range(n) if i not in rows]
    rows.update(rng.choice(rest, size=min(len(rest), max(0, k - len(rows))), replace=False).tolist())
    return sorted(int(i) for i in rows), per


MODEL_SHARE = 0.5
"""Share of the trust stage's remaining time handed to the single-path model."""

BETWEENNESS_SHARE = 0.1
"""Share of what the model leaves handed to the betweenness centrality (sampled on large graphs to fit)."""

SEARCH_SHARE = 0.6
"""Share of what is then left handed to the SMR search when verifying every demand would take longer
than the rest; otherwise the search gets all but the time the verification needs (measured speed)."""

EXACT_BETWEENNESS_MAX_NODES = 500
"""Graphs up to this many nodes get exact betweenness; larger ones a seeded sample of sources that fits its share."""

MIN_SELECTION_DEMANDS = 8
"""The SMR search screens at least this many demands, even when fewer fit in its time."""

MIN_VERIFY_BLOCK = 200
"""Demands verified per block (at least), so the executor gets work worth spreading."""


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
    nx.betweenness_centrality(graph, k=probe, seed=seed)
    per = max(1e-6, (time.perf_counter() - t0) / probe)
    k = int(max(probe, min(n, (seconds - probe * per) / per)))
    if k >= n:
        return nx.betweenness_centrality(graph), n
    return nx.betweenness_centrality(graph, k=k, seed=seed), k


@dataclass
class _Verified:
    """SMR verification of several selections on the same demands ``rows``."""

    rows: list[int]
    securities: dict[frozenset[str], np.ndarray]
    results: list[Any]  # SmrResult per row, for the chosen set
    results_of: dict[frozenset[str], list[Any]]


def _verify(
    ev: Any,
    sets: list[frozenset[str]],
    chosen: frozenset[str],
    rows: list[int] | None,
    per_s: float,
    deadline: float,
    seed: int,
) -> _Verified:
    """SMR security of every set in ``sets`` on the same demands, as many as fit before ``deadline``.

    The selection's demands ``rows`` (all when None) come first and are always
    verified (the starts are memoised on them); the others follow in a fixed
    random order (``seed``), in blocks of at least :data:`MIN_VERIFY_BLOCK`,
    while the routing speed measured so far (``per_s`` before the first
    block) says the next block ends before ``deadline``; the last block is cut
    to fit. Guarantees: every set is verified on exactly the returned
    ``rows`` (sorted), and ``results`` holds the chosen set's routes on them.
    """
    n = len(ev.pairs)
    distinct = [s for s in dict.fromkeys(sets) if s != chosen]
    first = list(range(n)) if rows is None else sorted(int(i) for i in rows)
    taken = set(first)
    rest = [i for i in range(n) if i not in taken]
    rest = [rest[int(i)] for i in np.random.default_rng(seed + 1).permutation(len(rest))]
    block = max(MIN_VERIFY_BLOCK, n // 10)
    parts: dict[frozenset[str], list[np.ndarray]] = {s: [] for s in [chosen, *distinct]}
    results: list[Any] = []
    done: list[int] = []
    rate = max(1e-6, per_s)
    todo = [first] + [rest[lo : lo + block] for lo in range(0, len(rest), block)]
    for j, part in enumerate(todo):
        if j > 0:
            fit = int((deadline - time.perf_counter()) / (rate * (1 + len(distinct))))
            if fit < 1:
                break
            part = part[:fit]
        t0, calls0 = time.perf_counter(), ev.calls
        parts[chosen].append(ev.securities(chosen, part, results=results))
        for s in distinct:
            parts[s].append(ev.securities(s, part))
        if ev.calls > calls0:
            rate = max(1e-6, (time.perf_counter() - t0) / (ev.calls - calls0))
        done.extend(part)
    order = np.argsort(np.asarray(done), kind="stable")
    secs = {s: np.concatenate(v)[order] for s, v in parts.items()}
    ordered_results = [results[int(i)] for i in order]
    return _Verified(
        rows=[done[int(i)] for i in order],
        securities=secs,
        results=ordered_results,
        results_of={chosen: ordered_results},
    )


class _StageClock:
    """What is left of the trust stage's time: the open stage budget when there is one (limits
    already handed and wall time both count), else ``total_s`` minus what this clock handed out
    and the wall time since it was made. Never negative."""

    def __init__(self, total_s: float) -> None:
        self.total_s = max(0.0, float(total_s))
        self.budget = current_budget()
        self.start = time.perf_counter()
        self.handed_s = 0.0

    def left_s(self) -> float:
        if self.budget is not None:
            return self.budget.left_s()
        return max(0.0, min(self.total_s - self.handed_s, self.total_s - (time.perf_counter() - self.start)))

    def options(self, opts: Any, *, fraction: float = 1.0) -> Any:
        """``opts`` with a time limit of ``fraction`` of what is left (the solver records it)."""
        limit = max(0.0, min(float(opts.time_limit_s), fraction * self.left_s()))
        if self.budget is None:
            self.handed_s += limit
        return dataclasses.replace(opts, time_limit_s=limit)

    def wall_left_s(self) -> float:
        """Wall-clock time left of the stage, ignoring what was handed out (may be negative)."""
        if self.budget is not None:
            return self.budget.budget_s - (time.perf_counter() - self.budget.start)
        return self.total_s - (time.perf_counter() - self.start)

    def hand_out(self, fraction: float = 1.0) -> float:
        """``fraction`` of what is left, handed to work that is not a solver run (recorded as a limit)."""
        limit = max(0.0, fraction * self.left_s())
        note_time_limit(limit)
        if self.budget is None:
            self.handed_s += limit
        return limit


def plan_trust(network: Network, backbone: Backbone, scenario: Scenario, *, seed: int = 0) -> StageResult:
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
    out = StageResult()
    sec = scenario.security
    objective = str(getattr(sec, "trust_objective", "min"))
    if len(backbone.demands) == 0:
        out.tables["relays"] = pd.DataFrame(columns=["site_id", "name", "kind", "trusted", "p_untrusted"])
        return out
    edges, nodes, demands = trust_tables(network, backbone, scenario)
    budget = int(sec.trusted_budget)
    # Time: the stage has solver.time_limit_s in all (the open stage budget when the pipeline runs
    # it), for everything it does. The single-path model gets at most MODEL_SHARE of what is left,
    # the betweenness baseline BETWEENNESS_SHARE of the rest, the SMR search SEARCH_SHARE of what is
    # then left and the SMR verification all that remains; every share is recorded as a limit and
    # drawn from the same remaining time, so together they cannot overrun the stage.
    stage_clock = _StageClock(float(scenario.solver.time_limit_s))
    data, result = _solve_model(edges, nodes, demands, scenario, stage_clock, seed)
    out.record_solve("trust", result, "trusted-relay model (max-min single-path security)")
    security = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    pool = [str(v) for v, c, p in zip(nodes["node"], nodes["candidate"], nodes["p_u"], strict=True) if c and p < 1]
    g = data.graph
    ev = SmrEvaluator(g, list(zip(demands["source"], demands["target"], strict=True)), security)
    ev.keep_results = True  # the verification then reuses the search's routes of the chosen set
    # betweenness once (the baseline and the search's candidate order), sampled on large graphs
    bc, bc_sources = _betweenness(g, stage_clock.hand_out(fraction=BETWEENNESS_SHARE), seed)
    starts = _starts(result, data, (edges, nodes, demands), budget, bc, seed)
    by_bc = sorted(pool, key=lambda v: (-bc.get(v, 0.0), v))
    t_sel = time.perf_counter()
    # the verification's need at the measured SMR speed (every demand, every selection and the
    # chosen set once more) is kept back when it fits in 1 - SEARCH_SHARE of what is left
    per_probe = _probe_seconds(ev, seed) if objective != "target" else 0.0
    left = stage_clock.left_s()
    need = 1.25 * per_probe * len(demands) * (len(starts) + 2)
    share = SEARCH_SHARE if need >= (1 - SEARCH_SHARE) * left or left <= 0 else 1.0 - need / left
    search_s = stage_clock.hand_out(fraction=share)  # recorded like a solver's limit
    deadline = t_sel + search_s
    single = {name: evaluate_costs(data, s) for name, s in starts.items()}
    smr_info: dict[str, Any] = {"objective": objective, "betweenness_sources": bc_sources}
    rows: list[int] | None = None
    per_demand_s = 0.0
    if objective == "target":
        chosen_name, chosen = _select_for_target(
            ev, pool, by_bc, deadline, sec, (edges, nodes, demands), data, starts, smr_info, budget
        )
    else:
        rows, per_demand_s = _selection_rows(
            ev, list(single.values()), len(starts), 0.5 * search_s, seed, per_s=per_probe
        )
        chosen_name, chosen = _select_by_search(
            ev, starts, pool, budget, by_bc, deadline, rows, per_demand_s, smr_info, seed
        )
    smr_info["selection_time_s"] = time.perf_counter() - t_sel
    selections = {chosen_name: chosen, **starts}
    chosen, vrows, results, full = _verify_selections(
        ev, selections, chosen_name, rows, per_demand_s, stage_clock, smr_info, seed
    )
    out.metrics["trust_smr_search"] = smr_info
    comparison = _comparison(selections, single, full, data, float(sec.eps))
    smr_chosen = _smr_table(demands, vrows, results)
    for row in comparison:
        if row["method"] == chosen_name:
            row["mean_key_consumption"] = float(smr_chosen["key_consumption"].mean())
    out.metrics["trust_comparison"] = comparison
    _relay_outputs(out, network, nodes, demands, evaluate_costs(data, chosen), smr_chosen, chosen)
    _objective_outputs(out, comparison, chosen_name, objective, result)
    return out


def _objective_outputs(
    out: StageResult, comparison: list[dict[str, Any]], chosen_name: str, objective: str, result: SolveResult
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
    stage_clock: _StageClock,
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
        starts["betweenness centrality"] = [
            str(x)
            for x in centrality_trust(edges, nodes, demands, max_relays=budget, data=data, centrality=bc).tables[
                "relays"
            ]["node"]
        ]
        starts["random"] = [
            str(x)
            for x in random_trust(
                edges, nodes, demands, max_relays=budget, data=data, rng=np.random.default_rng(seed)
            ).tables["relays"]["node"]
        ]
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


def _verify_selections(
    ev: SmrEvaluator,
    selections: dict[str, list[str]],
    chosen_name: str,
    rows: list[int] | None,
    per_demand_s: float,
    stage_clock: _StageClock,
    smr_info: dict[str, Any],
    seed: int,
) -> tuple[list[str], list[int], list[Any], dict[str, np.ndarray]]:
    """Verify every selection on the same demands within what is left of the stage: the selection's
    demands first, then the others in a fixed random order, block by block while the measured SMR
    speed says the next block fits (a set met twice is routed once). Unless the objective is
    ``target``, a start that beats the search on the verified demands replaces it (``selections``
    updated in place). Returns the chosen relays, the verified rows, the chosen set's routes on
    them and each selection's SMR security per verified demand."""
    chosen = selections[chosen_name]
    objective = smr_info["objective"]
    t_ver = time.perf_counter()
    verify_s = stage_clock.hand_out()
    per = per_demand_s or _probe_seconds(ev, seed)
    verified = _verify(
        ev, [frozenset(s) for s in selections.values()], frozenset(chosen), rows, per, t_ver + verify_s, seed
    )
    vrows, results = verified.rows, verified.results
    full = {name: verified.securities[frozenset(s)] for name, s in selections.items()}
    n_dem = len(ev.pairs)
    smr_info.update(
        verified_demands=len(vrows),
        verification_time_s=time.perf_counter() - t_ver,
        verification="all demands" if len(vrows) == n_dem else f"{len(vrows)} of {n_dem} demands (stage time limit)",
    )
    key_of: Literal["min", "mean"] = "mean" if objective == "mean" else "min"
    if objective != "target":
        best = max(selections, key=lambda name: (smr_key(full[name], key_of), name == chosen_name))
        if best != chosen_name:
            smr_info["replaced_by"] = best  # the sampled search lost to a start on the verified demands
            chosen = selections[best]
            selections[chosen_name] = chosen
            full[chosen_name] = full[best]
            results = verified.results_of.get(frozenset(chosen)) or []
            if not results:
                ev.securities(frozenset(chosen), vrows, results=results)
    # reached only when the clock really ran out or work was cut short: after the last hand-out
    # left_s() is 0 by construction, so it says nothing here
    smr_info["time_limit_reached"] = bool(
        stage_clock.wall_left_s() <= 0.0
        or len(vrows) < n_dem
        or str(smr_info.get("stopped", "")).startswith("time limit")
    )
    if smr_info["time_limit_reached"]:
        logger.info(
            "trust: stage time limit reached (%s; search: %s); returning the best selection found",
            smr_info["verification"],
            smr_info.get("stopped"),
        )
    return chosen, vrows, results, full


def _comparison(
    selections: dict[str, list[str]],
    single: dict[str, np.ndarray],
    full: dict[str, np.ndarray],
    data: TrustData,
    eps: float,
) -> list[dict[str, Any]]:
    """One row per selection: its size, single-path and SMR security (min, mean) and demands meeting ``eps``."""
    comparison = []
    for method, tset in selections.items():
        costs = single.get(method)
        if costs is None:
            costs = evaluate_costs(data, tset)
        sp = np.exp(-costs)
        check = full[method]
        comparison.append(
            {
                "method": method,
                "trusted": len(tset),
                "min_single_path_security": float(sp.min()),
                "mean_single_path_security": float(sp.mean()),
                "min_smr_security": float(check.min()),
                "mean_smr_security": float(check.mean()),
                "eps_met": int((check >= eps - 1e-12).sum()),
                "smr_demands": len(check),
            }
        )
    return comparison


def _relay_outputs(
    out: StageResult,
    network: Network,
    nodes: pd.DataFrame,
    demands: pd.DataFrame,
    chosen_costs: np.ndarray,
    smr_chosen: pd.DataFrame,
    chosen: list[str],
) -> None:
    """The stage's tables: ``demands`` (single-path and SMR security of the chosen set) and ``relays``."""
    dem = pd.DataFrame({"demand_id": demands["demand"].to_numpy(), "security_single_path": np.exp(-chosen_costs)})
    out.tables["demands"] = dem.merge(smr_chosen, on="demand_id", how="left")
    names = network.sites["name"].astype(str)
    kinds = network.sites["kind"].astype(str)
    out.tables["relays"] = pd.DataFrame(
        {
            "site_id": nodes["node"],
            "name": [names.get(n, n) for n in nodes["node"]],
            "kind": [kinds.get(n, "") for n in nodes["node"]],
            "trusted": nodes["node"].isin(chosen).to_numpy(),
            "p_untrusted": nodes["p_u"].to_numpy(float),
        }
    )
