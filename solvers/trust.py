"""Trusted-relay selection (SMR paper security model).

Security model (SMR paper, Sec. II): every untrusted relay ``v`` resists the
eavesdropper with probability ``p_u(v)``; trusted relays and the two end points
count 1; the security of a single path is the product over its untrusted
relays. The best single path of a demand maximises that product, i.e. it is a
shortest path for the node weights ``w_v = -log p_u(v)`` counted only at
untrusted relays.

Model (:func:`build_trust_model`): binary ``y_v`` = relay ``v`` is trusted
(candidates only); per demand a unit flow ``f[d, (i, j)]`` over both directions
of every edge; the flow through a node is its inflow ``in_d(v) <= 1``. The
weight of ``v`` counts on demand ``d`` only if ``v`` is untrusted, i.e.
``g[d, v] = in_d(v) * (1 - y_v)``, linearised by the McCormick inequality
``g >= in_d(v) - y_v`` with ``g >= 0`` (the other McCormick inequalities are not
needed because ``g`` is minimised). With binary ``y`` the flow LP of every
demand has an integral optimum (a shortest path), so the model is exact.

Modes: ``"max_min_security"`` minimises ``z >= sum_v w_v g[d, v]`` over all
demands with at most ``max_relays`` trusted relays; ``"min_cost"`` minimises the
total relay cost subject to ``sum_v w_v g[d, v] <= -log(security_target)``.

Comparison selectors with the same result tables: :func:`greedy_trust`,
:func:`centrality_trust` (betweenness), :func:`random_trust`.

Scale (why the solver works as it does). The edge-flow model has one flow
column per demand and directed edge: on the backbone of the 243 Dutch cities
(3 240 demands, 716 edges) that is 3.7 M columns, 18 GB and more than 10
minutes, and on the 1 139 German cities (71 253 demands, 3 397 edges) about
565 M columns. The max-min mode therefore runs, before any model:

1. greedy on exact costs: interior costs once (all pairs up to 1 000 nodes,
   else from the demand end points only: on the 10 000 US cities 1 483 rows
   instead of 10 000, 120 MB instead of 800 MB), then every candidate is
   evaluated for every demand by one Floyd–Warshall pivot
   (:mod:`solvers.trust_fast`), not one Dijkstra run per candidate; it adds
   no relay after :data:`GREEDY_SHARE` of the limit;
2. a swap local search (drop one relay, add the best replacement) on the
   same exact costs, with a quarter of the time left (checked while costs are computed);
3. a model-free bound: each demand alone with ``max_relays`` free candidates
   (the token bound; exact per demand, checked against enumeration), searched
   worst demand first and stopped once no demand left can raise it (or at the deadline).

Then the MILP's column count is estimated (exactly after pruning when that is
cheap, else demands x (2 edges + nodes)); above ``max_columns`` (default
250 000, about 1.2 GB at the measured 5 kB per column) the model is not built
and the heuristic set is returned with the token bound and its gap. Below the
cap the MILP runs as before, warm-started from the heuristic set, pruned with
its cost, on the time left of the one limit (heuristic, build and solve).
Measured on a shared, loaded 2-core machine: 243 Dutch cities 20 s and 0.3 GB
(was 675 s and 18 GB), 1 139 German cities in about a minute and under 0.5 GB.
Quality of the heuristic (measured, p_u ~ U(0.7, 0.95), 10 random demands,
budgets 2/3/5 on the 8 bundled networks and Waxman 20/50/100): greedy + swap
equals the MILP's minimum security in 30 of 33 cases and is within 4.5 % in
the other 3 (Uninett2010 B=5, Beijing QMAN B=3 and 5); greedy alone misses in
10. The token bound is tight for small budgets and weak (often 1) for larger
ones, so the reported gap at scale is honest but loose. Path-based column
generation and Benders cuts with shortest-path separation were not built or
measured; whether their LP bound (which couples the demands through the shared
budget, unlike the token bound) is worth its cost at scale is open work.

This module holds the solve (:func:`solve_trust`) and the comparison selectors, and
re-exports the public names of :mod:`solvers.trust_data` (validated tables, evaluation)
and :mod:`solvers.trust_model` (the MILP, its pruning and size estimate).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Hashable, Mapping
from dataclasses import replace
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pyomo.environ as pyo

from solvers.base import SolveResult, SolverOptions, SolveStatus, relative_gap, result_from_raw
from solvers.base import show_value as _show
from solvers.highs_driver import solve_model
from solvers.trust_data import (
    TrustData,
    TrustInfeasible,
    TrustInputError,
    TrustMode,
    candidate_indices,
    evaluate_costs,
    evaluate_trust,
    prepare_trust_data,
    relays_table,
)
from solvers.trust_fast import greedy_select, lex_key, swap_search, token_lower_bound
from solvers.trust_model import (
    BYTES_PER_COLUMN,
    DEFAULT_MAX_COLUMNS,
    LOAD_PER_BUILD,
    LOAD_S_PER_COLUMN,
    build_trust_model,
    demand_node_sets,
    estimate_model_columns,
    index_arrays,
    useful_pool,
    warm_start,
)

__all__ = [
    "BYTES_PER_COLUMN",
    "DEFAULT_MAX_COLUMNS",
    "LOAD_PER_BUILD",
    "TrustData",
    "TrustInfeasible",
    "TrustInputError",
    "TrustMode",
    "build_trust_model",
    "centrality_select",
    "centrality_trust",
    "demand_node_sets",
    "estimate_model_columns",
    "evaluate_costs",
    "evaluate_trust",
    "greedy_trust",
    "prepare_trust_data",
    "random_select",
    "random_trust",
    "solve_trust",
]

logger = logging.getLogger(__name__)


def solve_trust(
    edges: pd.DataFrame,
    nodes: pd.DataFrame,
    demands: pd.DataFrame,
    *,
    mode: TrustMode = "max_min_security",
    max_relays: int | None = None,
    security_target: float | None = None,
    tie_break_mean: bool = True,
    options: SolverOptions | None = None,
    max_columns: int | None = DEFAULT_MAX_COLUMNS,
    data: TrustData | None = None,
    demand_paths: bool = True,
) -> SolveResult:
    """Choose trusted relays; returns tables ``relays`` (chosen) and ``demands`` (best path, security).

    ``mode="max_min_security"``: at most ``max_relays`` relays maximising the
    minimum over demands of the best single-path security; with
    ``tie_break_mean`` a second solve keeps that minimum and maximises the
    geometric mean security. ``objective`` / ``bound`` are securities (the
    solver works on ``-log``). ``mode="min_cost"``: least total relay ``cost``
    such that every demand reaches ``security_target`` (``max_relays``
    optional); ``objective`` is the cost.

    Scale (max-min): a greedy + swap local search (:mod:`solvers.trust_fast`)
    runs first and a model-free token bound is computed; the MILP's size is
    estimated before building, and above ``max_columns`` (None: no cap) or
    when the time left is too short it is not built: the heuristic set is
    returned with status ``heuristic``, the token ``bound`` and ``gap``.
    ``options.time_limit_s`` covers everything (heuristic, build, solve); at
    scale the heuristic itself stops at the limit with the relays picked so
    far. On a time limit the best known set is returned (never worse than the heuristic).

    Raises :class:`TrustInfeasible` naming the demands that miss the target even
    with every candidate trusted, :class:`TrustInputError` for invalid tables.
    ``data``: the tables already validated by :func:`prepare_trust_data` (the
    tables are then not read again). In max-min mode ``info["greedy_relays"]``
    holds the greedy set the search started from (:func:`greedy_trust`'s set).
    ``demand_paths=False``: the max-min ``demands`` table has the security but
    no ``path``, ``hops`` and ``untrusted_relays`` (no path search per demand).
    """
    opts = options or SolverOptions()
    t0 = time.perf_counter()
    deadline = t0 + opts.time_limit_s
    data = data if data is not None else prepare_trust_data(edges, nodes, demands)
    info: dict[str, Any] = {
        "mode": mode,
        "n_nodes": len(data.nodes),
        "n_edges": data.graph.number_of_edges(),
        "n_demands": len(data.demands),
        "n_candidates": len(useful_pool(data)),
    }
    if mode == "max_min_security" and max_relays is not None and max_relays >= 0:
        run = _MaxMin(data, int(max_relays), opts, t0, deadline, info, demand_paths)
        return run.solve(tie_break_mean, max_columns)
    if mode == "min_cost":
        _precheck_target(data, security_target)
    return _solve_milp(data, mode, max_relays, security_target, opts, t0, deadline, info)


def _solve_milp(
    data: TrustData,
    mode: TrustMode,
    max_relays: int | None,
    security_target: float | None,
    opts: SolverOptions,
    t0: float,
    deadline: float,
    info: dict[str, Any],
) -> SolveResult:
    """The edge-flow MILP of ``mode`` without the heuristic stage (``min_cost``, or max-min without a budget)."""
    model = build_trust_model(data, mode=mode, max_relays=max_relays, security_target=security_target)
    build_time = time.perf_counter() - t0
    # never more than what is left of the limit (building counted), never past the deadline
    raw = solve_model(
        model, replace(opts, time_limit_s=max(0.0, min(opts.time_limit_s, deadline - time.perf_counter())))
    )
    info.update(n_variables=model.nvariables(), n_constraints=model.nconstraints())
    if raw.status is SolveStatus.INFEASIBLE:
        need = evaluate_trust(data, [])
        short = need.loc[need["security"] < (security_target or 0) * (1 - 1e-9), "demand"].tolist()
        raise TrustInfeasible(
            f"No set of at most {max_relays} trusted relays reaches security {security_target}.",
            conflicts=short,
            details=["relay-count limit too small for these demands; raise max_relays"],
        )
    if raw.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        return SolveResult(
            status=raw.status, solve_time_s=raw.solve_time_s, build_time_s=build_time, solver=raw.solver, info=info
        )
    trusted = [data.nodes[v] for v in model.C if pyo.value(model.y[v]) > 0.5]
    table = evaluate_trust(data, trusted)
    info.update(
        min_security=float(table["security"].min()),
        mean_security=float(table["security"].mean()),
        n_trusted=len(trusted),
    )
    return result_from_raw(
        raw, build_time_s=build_time, tables={"relays": relays_table(data, trusted), "demands": table}, info=info
    )


TIE_BREAK_SHARE = 0.25
"""Share of the solver time kept for the mean-security tie-break of the max-min MILP."""

GREEDY_SHARE = 0.8
"""Share of the max-min limit after which the greedy adds no more relays (it keeps those picked so
far), so that the swap search, the bound and the evaluation have time left."""


class _MaxMin:
    """One max-min solve (see :func:`solve_trust`): heuristic and token bound, then the MILP when it fits."""

    def __init__(
        self,
        data: TrustData,
        budget: int,
        opts: SolverOptions,
        t0: float,
        deadline: float,
        info: dict[str, Any],
        demand_paths: bool,
    ) -> None:
        self.data, self.budget, self.opts, self.t0, self.deadline, self.info = data, budget, opts, t0, deadline, info
        self.demand_paths = demand_paths
        self.heur: list[Hashable] = []
        self.heur_costs = np.zeros(0)
        self.upper = self.lower = 0.0

    def solve(self, tie_break_mean: bool, max_columns: int | None) -> SolveResult:
        """Heuristic first; the heuristic set with the token bound unless the MILP is built and solved."""
        data, info, budget = self.data, self.info, self.budget
        self.heur, self.heur_costs, self.upper, self.lower = _max_min_heuristic(data, budget, self.deadline, info)
        info["heuristic_time_s"] = time.perf_counter() - self.t0
        est, sets = (
            estimate_model_columns(
                data, max_relays=budget, cost_upper_bound=self.upper, deadline=self.deadline, max_columns=max_columns
            )
            if (max_columns is not None)
            else (0, None)
        )
        info["estimated_model_columns"] = int(est)
        info["estimated_model_gb"] = round(est * BYTES_PER_COLUMN / 1e9, 3)
        if max_columns is not None and est > max_columns:
            return self.heuristic(
                f"edge-flow MILP not built: about {est:,} columns "
                f"(~{info['estimated_model_gb']:.1f} GB) > cap {max_columns:,}",
                self.lower,
            )
        if self.upper <= self.lower + 1e-12 and not tie_break_mean:
            return self.heuristic("heuristic set meets the token bound (optimal)", self.lower)
        load_s = est * LOAD_S_PER_COLUMN * 3  # build + hand-over, from the measured rate
        if self.deadline - time.perf_counter() < 1.0 + load_s:
            return self.heuristic("too little time left for the MILP", self.lower)
        return self.milp(tie_break_mean, sets)

    def heuristic(
        self, reason: str, bound_cost: float, build_time: float = 0.0, solve_time: float = 0.0
    ) -> SolveResult:
        """The greedy + swap set with the bound ``exp(-bound_cost)`` (optimal when they meet)."""
        data, info = self.data, self.info
        info["milp_skipped"] = reason
        logger.info(
            "trust: %s; returning the greedy + swap set (bound from %s)",
            reason,
            "the token relaxation" if bound_cost == self.lower else "the MILP",
        )
        table = self._demand_table(self.heur)
        obj = float(table["security"].min())
        bnd = math.exp(-bound_cost)
        info.update(min_security=obj, mean_security=float(table["security"].mean()), n_trusted=len(self.heur))
        status = SolveStatus.OPTIMAL if self.upper <= bound_cost + 1e-9 else SolveStatus.HEURISTIC
        return SolveResult(
            status=status,
            objective=obj,
            bound=bnd,
            gap=relative_gap(obj, bnd),
            solve_time_s=solve_time,
            build_time_s=time.perf_counter() - self.t0 - solve_time,
            solver="greedy+swap",
            tables={"relays": relays_table(data, self.heur), "demands": table},
            info=info,
        )

    def _demand_table(self, trusted: list[Hashable]) -> pd.DataFrame:
        """:func:`evaluate_trust` of ``trusted``, or without the paths (``demand_paths=False``)."""
        if self.demand_paths:
            return evaluate_trust(self.data, trusted)
        table = self.data.demands[["demand", "source", "target"]].copy()
        table["security"] = np.exp(-evaluate_costs(self.data, trusted))
        return table

    def milp(self, tie_break_mean: bool, sets: list[set[int]] | None) -> SolveResult:
        """Build the edge-flow MILP warm-started from the heuristic set and solve it in the time left."""
        data, info, budget = self.data, self.info, self.budget
        t_model = time.perf_counter()
        model = build_trust_model(
            data, mode="max_min_security", max_relays=budget, cost_upper_bound=self.upper, node_sets=sets
        )
        warm_start(model, data, self.heur)
        build_time = time.perf_counter() - self.t0 - info["heuristic_time_s"]
        info.update(n_variables=model.nvariables(), n_constraints=model.nconstraints())
        # handing the model to HiGHS happens outside HiGHS' own limit: it is charged here, at the larger of
        # the per-column rate and LOAD_PER_BUILD times the build just measured (the machine's real speed)
        load_s = max(model.nvariables() * LOAD_S_PER_COLUMN, LOAD_PER_BUILD * (time.perf_counter() - t_model))
        info["estimated_load_s"] = round(load_s, 3)
        left = self.deadline - time.perf_counter() - load_s
        if left < 1.0:
            return self.heuristic(
                "time limit reached while building the MILP (no time left to hand it to the solver)",
                self.lower,
                build_time,
            )
        # the limits handed to the solver sum to at most what the deadline leaves: with the mean
        # tie-break, the max-min solve gets TIE_BREAK_SHARE less and the tie-break only what is left
        first_s = left * (1.0 - TIE_BREAK_SHARE) if tie_break_mean else left
        raw = solve_model(model, replace(self.opts, time_limit_s=first_s, warm_start=True))
        solve_time = raw.solve_time_s
        if raw.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
            return self.heuristic(f"MILP ended '{raw.status}' without a solution", self.lower, build_time, solve_time)
        bound_cost = max(self.lower, raw.bound) if math.isfinite(raw.bound) else self.lower
        info["objective_neglog"] = raw.objective
        if tie_break_mean and raw.status is SolveStatus.OPTIMAL:
            solve_time += _mean_tie_break(model, self.opts, left - first_s, self.deadline, info)
        trusted = [data.nodes[v] for v in model.C if pyo.value(model.y[v]) > 0.5]
        costs = evaluate_costs(data, trusted)
        if lex_key(costs) > lex_key(self.heur_costs):  # an incumbent never worse than the start
            trusted, costs = self.heur, self.heur_costs
        table = self._demand_table(trusted)
        objective = float(table["security"].min())
        bound = math.exp(-min(bound_cost, float(costs.max())))
        status = (
            raw.status if raw.status is SolveStatus.OPTIMAL or objective < bound * (1 - 1e-9) else (SolveStatus.OPTIMAL)
        )
        info.update(min_security=objective, mean_security=float(table["security"].mean()), n_trusted=len(trusted))
        return SolveResult(
            status=status,
            objective=objective,
            bound=bound,
            gap=relative_gap(objective, bound),
            solve_time_s=solve_time,
            build_time_s=build_time,
            solver=raw.solver,
            tables={"relays": relays_table(data, trusted), "demands": table},
            info=info,
        )


def _max_min_heuristic(
    data: TrustData, budget: int, deadline: float, info: dict[str, Any]
) -> tuple[list[Hashable], np.ndarray, float, float]:
    """Greedy (at most :data:`GREEDY_SHARE` of the time left), then swap search (a quarter of the time
    left), then the token bound (searched worst demand first, until the deadline).

    Returns (the greedy + swap set, its per-demand ``-log`` securities, their maximum
    ``upper``, the token bound ``lower <= upper``); records the greedy set, both minimum
    securities, the swap moves and the bound in ``info``.
    """
    edges_i, src, dst = index_arrays(data)
    n = len(data.nodes)
    pool = useful_pool(data)
    keep: dict[str, Any] = {}
    now = time.perf_counter()
    g_deadline = now + GREEDY_SHARE * max(0.0, deadline - now)
    start = greedy_select(n, edges_i, data.weight, pool, src, dst, budget, deadline=g_deadline, keep=keep)
    if keep.get("base") is not None:
        data.cache["base"] = keep["base"]
    info["greedy_relays"] = [data.nodes[i] for i in start]
    greedy_cost = float(evaluate_costs(data, [data.nodes[i] for i in start]).max())
    ls_deadline = min(deadline, time.perf_counter() + 0.25 * max(0.0, deadline - time.perf_counter()))
    heur, moves = swap_search(n, edges_i, data.weight, pool, src, dst, start, budget, ls_deadline)
    heur_costs = evaluate_costs(data, [data.nodes[i] for i in heur])
    upper = float(heur_costs.max())
    free = data.candidate & (data.weight > 0)
    lower = float(
        token_lower_bound(n, edges_i, data.weight, free, src, dst, budget, upper=heur_costs, deadline=deadline).max()
    )
    lower = min(lower, upper)
    info.update(
        greedy_min_security=math.exp(-greedy_cost),
        heuristic_min_security=math.exp(-upper),
        swap_moves=moves,
        token_bound_security=math.exp(-lower),
    )
    if len(start) < min(budget, len(pool)):
        info["greedy_stopped"] = f"time limit after {len(start)} of {budget} relays"
    return [data.nodes[i] for i in heur], heur_costs, upper, lower


def _mean_tie_break(
    model: pyo.ConcreteModel, opts: SolverOptions, left_s: float, deadline: float, info: dict[str, Any]
) -> float:
    """Keep the optimal worst cost and minimise the sum of costs (the geometric mean security)
    within what is left of the time limit (``left_s``, and the deadline less the hand-over);
    returns the solve time in s (0 when skipped) and records the status in ``info``."""
    z_star = float(pyo.value(model.z))
    model.z.setub(z_star + 1e-7)
    model.objective.deactivate()
    model.mean_objective = pyo.Objective(expr=sum(model.cost[d] for d in model.D), sense=pyo.minimize)
    # the tie-break gets what is left of the time limit, not a second full limit
    remaining = min(left_s, deadline - time.perf_counter() - model.nvariables() * LOAD_S_PER_COLUMN)
    if remaining < 1.0:
        info["tie_break_status"] = "skipped (time limit)"
        return 0.0
    raw2 = solve_model(model, replace(opts, time_limit_s=remaining, warm_start=True))
    info["tie_break_status"] = str(raw2.status)
    return raw2.solve_time_s


def _precheck_target(data: TrustData, target: float | None) -> None:
    if target is None or not (0 < target <= 1):
        raise TrustInputError(f"min_cost needs security_target in (0, 1], got {_show(target)}")
    all_cand = [data.nodes[i] for i in range(len(data.nodes)) if data.candidate[i]]
    best = evaluate_trust(data, all_cand)
    bad = best.loc[best["security"] < target * (1 - 1e-9)]
    if len(bad):
        raise TrustInfeasible(
            f"Security target {target} is out of reach.",
            conflicts=bad["demand"].tolist(),
            details=[
                f"demand {_show(r.demand)}: best security {r.security:.4g} with every candidate trusted"
                for r in bad.itertuples()
            ],
        )


# ---------------------------------------------------------------------------
# Comparison selectors
# ---------------------------------------------------------------------------


def _heuristic_result(
    data: TrustData, trusted: list[Hashable], method: str, elapsed_s: float, **extra: Any
) -> SolveResult:
    table = evaluate_trust(data, trusted)
    info = {
        "method": method,
        "n_trusted": len(trusted),
        "min_security": float(table["security"].min()),
        "mean_security": float(table["security"].mean()),
        **extra,
    }
    return SolveResult(
        status=SolveStatus.HEURISTIC,
        objective=info["min_security"],
        solve_time_s=elapsed_s,
        build_time_s=0.0,
        solver=method,
        tables={"relays": relays_table(data, trusted), "demands": table},
        info=info,
    )


def _greedy(data: TrustData, max_relays: int) -> list[Hashable]:
    edges_i, src, dst = index_arrays(data)
    chosen = greedy_select(len(data.nodes), edges_i, data.weight, useful_pool(data), src, dst, max_relays)
    return [data.nodes[i] for i in chosen]


def greedy_trust(
    edges: pd.DataFrame, nodes: pd.DataFrame, demands: pd.DataFrame, *, max_relays: int, data: TrustData | None = None
) -> SolveResult:
    """Greedy: add, one at a time, the candidate that most raises the minimum security
    (ties: the geometric mean), until ``max_relays`` are chosen. ``data``: see :func:`solve_trust`."""
    t0 = time.perf_counter()
    data = data if data is not None else prepare_trust_data(edges, nodes, demands)
    chosen = _greedy(data, max_relays)
    return _heuristic_result(data, chosen, "greedy", time.perf_counter() - t0)


def centrality_trust(
    edges: pd.DataFrame,
    nodes: pd.DataFrame,
    demands: pd.DataFrame,
    *,
    max_relays: int,
    data: TrustData | None = None,
    centrality: Mapping[Hashable, float] | None = None,
) -> SolveResult:
    """The ``max_relays`` candidates of highest betweenness centrality (hop count; ties by node order).

    ``centrality``: precomputed values per node (e.g. sampled on a large graph;
    missing nodes count 0), else exact betweenness of the graph. ``data``: see
    :func:`solve_trust`.
    """
    t0 = time.perf_counter()
    data = data if data is not None else prepare_trust_data(edges, nodes, demands)
    bc = centrality if centrality is not None else nx.betweenness_centrality(data.graph)
    chosen = centrality_select(data, max_relays, bc)
    return _heuristic_result(data, chosen, "betweenness", time.perf_counter() - t0)


def centrality_select(data: TrustData, max_relays: int, centrality: Mapping[Hashable, float]) -> list[Hashable]:
    """The relays of :func:`centrality_trust` without evaluating them: the ``max_relays`` candidates of
    highest ``centrality`` (missing nodes count 0; ties by node order)."""
    order = sorted(candidate_indices(data), key=lambda i: (-centrality.get(data.nodes[i], 0.0), i))
    return [data.nodes[i] for i in order[:max_relays]]


def random_trust(
    edges: pd.DataFrame,
    nodes: pd.DataFrame,
    demands: pd.DataFrame,
    *,
    max_relays: int,
    rng: np.random.Generator,
    data: TrustData | None = None,
) -> SolveResult:
    """``max_relays`` candidates drawn uniformly without replacement from ``rng``.

    The generator's initial state is recorded in ``info["rng_state"]``. ``data``: see :func:`solve_trust`.
    """
    t0 = time.perf_counter()
    data = data if data is not None else prepare_trust_data(edges, nodes, demands)
    state = rng.bit_generator.state
    chosen = random_select(data, max_relays, rng)
    return _heuristic_result(data, chosen, "random", time.perf_counter() - t0, rng_state=str(state))


def random_select(data: TrustData, max_relays: int, rng: np.random.Generator) -> list[Hashable]:
    """The relays of :func:`random_trust` without evaluating them: ``max_relays`` candidates drawn
    uniformly without replacement from ``rng`` (in node order)."""
    cand = candidate_indices(data)
    picks = rng.choice(len(cand), size=min(max_relays, len(cand)), replace=False)
    return [data.nodes[cand[i]] for i in sorted(picks)]
