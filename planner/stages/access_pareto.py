"""Cost-aware access: the fewest masters that give most of the keys, with the trade-off shown.

Why: with masters unlimited, Eq. 6 credits a master's memory once per cluster, so the most keys
per attempt come from as many clusters as possible, each of the smallest allowed size (on 243
Dutch cities: 81 clusters of exactly 2 slaves, a third of all sites masters). Masters carry an
EPR source and cost money, so no planner would build that.

Rule (``access.objective = "balanced"``, the default): **the fewest masters whose keys per
attempt reach ``access.keys_fraction`` of the most keys any number of masters gives.** The
default fraction is 0: the fewest masters (with equal ``master_cost``, the least master cost)
that serve every site, and among those the most keys per attempt. Clusters then fill up to their
capacity as far as reach allows, instead of the objective's blind spot. The front shows what
more masters would buy: measured on 243 Dutch cities, keys grow almost linearly with masters
(about ``R_mdi*N_m - R_ekr*N_s/2`` keys per extra master), with no knee, so a fraction such as
0.9 still keeps about 80 % of the masters; a planner who wants keys over cost sets it.

How (:func:`balanced_access`), every solve by the clustering MILP of :mod:`solvers.clustering`:

1. ``max_keys`` without a master budget: the most keys ``K*`` and its master count ``M_hi``;
2. ``min_cost``: the fewest masters ``M_lo`` that serve every site;
3. ``max_keys`` under master budgets spread between ``M_lo`` and ``M_hi``
   (``access.pareto_points`` in all): the Pareto front of masters against keys per attempt;
4. bisection between the largest budget below the target and the smallest one reaching it
   (the best keys under a budget never fall when the budget grows), while time is left.

The chosen point is the smallest budget whose keys reach ``keys_fraction * K*``. Every solve has
its share of the stage's time budget; a solve stopped by its limit gives a point with its bound
and gap, so the front and the choice are then approximate, which the table says (``status``,
``gap``). The front is returned as the ``access_pareto`` design table.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from solvers.base import SolveResult, SolverOptions, current_budget
from solvers.clustering import (
    COMPONENT_SOLVE_MIN_SITES,
    ClusteringData,
    ClusteringInfeasible,
    ClusteringOptions,
    solve_clustering,
    solve_clustering_by_component,
)

logger = logging.getLogger(__name__)

PARETO_COLUMNS = [
    "masters_budget",
    "n_masters",
    "master_cost",
    "keys_per_attempt",
    "bound",
    "gap",
    "status",
    "point",
    "chosen",
]


def _masters(res: SolveResult) -> int:
    return int(res.info.get("n_masters", len(res.tables.get("clusters", ()))))


def _keys(res: SolveResult) -> float:
    return float(res.info.get("keys_per_attempt", math.nan))


STANDALONE_END_SHARES = (0.45, 0.5)
"""With ``unsolved="standalone"`` (large instances, solved per reach component) the two unbudgeted
ends get these fractions of what is left when each starts (the most keys first, then the fewest
masters): their heuristics and mended greedy on a large reach component take seconds each, and a
component without a clustering in time is left out. The budgeted points share the rest."""


class _Shares:
    """The time of the balanced rule's solves: each gets what is left (of ``total_s``, and of the
    open stage budget) over the solves still planned, or a given fraction of it."""

    def __init__(self, solver_options: SolverOptions, planned: int) -> None:
        self.solver_options = solver_options
        self.total_s = float(solver_options.time_limit_s)
        budget = current_budget()
        if budget is not None and self.total_s > budget.left_s() + 1e-6:
            budget = None  # the caller handed more than the stage has left (a floor): its limit rules
        self.budget = budget
        self.handed_s = 0.0
        self.planned = planned
        self.point_wall_s = 0.0  # wall time of the last budgeted point
        self.start = time.perf_counter()

    def wall_left_s(self) -> float:
        """Wall-clock seconds left (of the open stage budget, else of ``total_s``); the limits
        handed may have used the budget up before the clock did (solves that end early)."""
        if self.budget is not None:
            return self.budget.budget_s - (time.perf_counter() - self.budget.start)
        return self.total_s - (time.perf_counter() - self.start)

    def next(self, fraction: float | None = None) -> SolverOptions:
        """Options for the next solve: ``fraction`` of what is left, or its even share."""
        left = self.total_s - self.handed_s
        if self.budget is not None:
            left = min(left, self.budget.left_s())
        share = max(0.0, left) * fraction if fraction is not None else max(0.0, left) / max(1, self.planned)
        self.planned = max(1, self.planned - 1)
        self.handed_s += share
        return dataclasses.replace(self.solver_options, time_limit_s=share)


def balanced_access(
    data: ClusteringData,
    options: ClusteringOptions,
    solver_options: SolverOptions,
    *,
    keys_fraction: float = 0.9,
    points: int = 6,
    solve: Callable[[ClusteringData, ClusteringOptions, SolverOptions], SolveResult] = solve_clustering,
    unsolved: Literal["stop", "standalone"] = "stop",
) -> tuple[SolveResult, pd.DataFrame]:
    """The clustering chosen by the balanced rule (module docstring) and the Pareto table.

    Guarantees: the chosen result satisfies every constraint family (it comes from
    :func:`solvers.clustering.solve_clustering`) and the user's own master/cost budgets; its keys
    per attempt reach ``keys_fraction`` of the best found without a master budget whenever any
    evaluated budget does (else the best point is chosen). The solves' time limits sum to at most
    ``solver_options.time_limit_s`` (and to what the open stage budget has left, unless the caller
    handed more than that on purpose).
    Raises what the two unbudgeted solves raise (e.g. :class:`ClusteringInfeasible`); a budgeted
    point of the front that is infeasible or finds nothing in its time is left out of the front.
    ``unsolved="standalone"``: the two unbudgeted ends are solved by
    :func:`solvers.clustering.solve_clustering_by_component` (whatever the size), which leaves a reach
    component it cannot cluster in time out (its sites in ``info["standalone_sites"]``) instead of
    returning no clustering; the ends then get the larger shares of :data:`STANDALONE_END_SHARES`,
    when an end leaves sites out the budgeted points (on the whole instance, which has no
    clustering with that few masters) are not tried, and when no time is left after the first end
    the second is not solved either (its heuristics alone would pass the budget by seconds).
    """
    shares = _Shares(solver_options, 2 + max(0, points - 2) + 3)  # (refinement counted as 3)
    standalone = unsolved == "standalone"
    # the two ends of the front have no master budget: on large instances they are solved one
    # reach component at a time (exact, see solve_clustering_by_component)
    unbudgeted = solve
    if standalone:
        unbudgeted = functools.partial(solve_clustering_by_component, unsolved="standalone")
    elif solve is solve_clustering and len(data.sites) >= COMPONENT_SOLVE_MIN_SITES:
        unbudgeted = solve_clustering_by_component
    top_share, low_share = STANDALONE_END_SHARES if standalone else (None, None)
    top = unbudgeted(data, dataclasses.replace(options, objective="max_keys"), shares.next(top_share))
    if not top.has_solution:
        return top, pd.DataFrame(columns=PARETO_COLUMNS)
    results: dict[int, tuple[SolveResult, str]] = {_masters(top): (top, "max_keys")}
    low_opts = shares.next(low_share)
    if standalone and shares.wall_left_s() <= 0.0:  # out of (wall) time: the per-component heuristics alone
        logger.info("balanced access: no time left for the fewest-masters end; the most-keys end is kept")
        return _chosen(results, keys_fraction, _keys(top))  # would pass the budget by seconds
    low = unbudgeted(data, dataclasses.replace(options, objective="min_cost", min_cluster_keys=0.0), low_opts)
    m_lo = _masters(low) if low.has_solution else 1
    budgeted = not (standalone and (_left_out(top) or _left_out(low)))
    at_budget = functools.partial(_at_budget, data, options, solve, shares)
    if low.has_solution:
        low_keys = at_budget(m_lo) if budgeted else None
        results[m_lo] = (low_keys if low_keys is not None else low, "fewest_masters")
    else:
        shares.planned -= 1
    if budgeted:
        _front(results, at_budget, m_lo, _masters(top), points, options.max_masters, keys_fraction * _keys(top))
    return _chosen(results, keys_fraction, _keys(top))


def _left_out(res: SolveResult) -> bool:
    """Whether a per-component result left sites out (whole components or trimmed sites)."""
    return bool(res.info.get("standalone_sites") or res.info.get("trimmed_sites"))


def _at_budget(
    data: ClusteringData,
    options: ClusteringOptions,
    solve: Callable[[ClusteringData, ClusteringOptions, SolverOptions], SolveResult],
    shares: _Shares,
    masters: int,
) -> SolveResult | None:
    """Most keys with at most ``masters`` masters; None where no clustering was found at that
    budget (an inner point of the front is optional: the unbudgeted ends already hold a design), or
    when its share of the time is below the wall time the last point took."""
    opts = shares.next()
    # no time left, or less than the last point took (its preparation and heuristic run whatever
    # the limit, so it would pass the stage's budget): an optional point is not worth it
    if opts.time_limit_s <= 0.0 or opts.time_limit_s < shares.point_wall_s:
        return None
    t0 = time.perf_counter()
    try:
        res = solve(data, dataclasses.replace(options, objective="max_keys", max_masters=masters), opts)
    except ClusteringInfeasible as exc:
        logger.info(
            "balanced access: no clustering with at most %d masters (%s)",
            masters,
            ", ".join(map(str, exc.conflicts)) or "diagnosis out of time",
        )
        return None
    finally:
        shares.point_wall_s = time.perf_counter() - t0
    return res if res.has_solution else None


def _front(
    results: dict[int, tuple[SolveResult, str]],
    at_budget: Callable[[int], SolveResult | None],
    m_lo: int,
    m_hi: int,
    points: int,
    user_cap: int | None,
    target: float,
) -> None:
    """Add to ``results`` the budgeted points spread between ``m_lo`` and ``m_hi`` masters, then up
    to three bisection points between the largest budget below ``target`` keys and the smallest
    reaching it (the best keys under a budget never fall when the budget grows)."""
    inner = sorted({int(round(v)) for v in np.linspace(m_lo, m_hi, max(2, points))} - {m_lo, m_hi})
    for k in inner:
        if user_cap is not None and k > user_cap:
            continue
        res = at_budget(k)
        if res is not None:
            results[k] = (res, "budget")
    for _ in range(3):
        reach = sorted(k for k, (r, _p) in results.items() if _keys(r) >= target - 1e-9)
        below = sorted(k for k, (r, _p) in results.items() if _keys(r) < target - 1e-9)
        if not reach:
            break
        lo = max([k for k in below if k < reach[0]], default=None)
        if lo is None or reach[0] - lo <= 1:
            break
        mid = (lo + reach[0]) // 2
        res = at_budget(mid)
        if res is None:
            break
        results[mid] = (res, "refine")


def _chosen(
    results: dict[int, tuple[SolveResult, str]], keys_fraction: float, best_keys: float
) -> tuple[SolveResult, pd.DataFrame]:
    """The smallest budget whose keys reach ``keys_fraction * best_keys`` (else the most keys) and
    the front as the ``access_pareto`` table."""
    target = keys_fraction * best_keys
    reach = sorted(k for k, (r, _p) in results.items() if _keys(r) >= target - 1e-9)
    chosen_k = reach[0] if reach else max(results, key=lambda k: _keys(results[k][0]))
    rows = []
    for k in sorted(results):
        res, point = results[k]
        rows.append(
            {
                "masters_budget": k,
                "n_masters": _masters(res),
                "master_cost": float(res.info.get("master_cost", math.nan)),
                "keys_per_attempt": _keys(res),
                # the bound of a max-keys solve bounds the keys (plus a tie-break below 1e-3)
                "bound": float(res.bound) if res.info.get("objective_name") == "max_keys" else math.nan,
                "gap": float(res.gap),
                "status": str(res.status),
                "point": point,
                "chosen": k == chosen_k,
            }
        )
    table = pd.DataFrame(rows, columns=PARETO_COLUMNS)
    chosen = results[chosen_k][0]
    chosen.info["rule"] = f"fewest masters with keys >= {keys_fraction:g} x the most keys ({best_keys:g})"
    chosen.info["keys_max"] = best_keys
    logger.info(
        "balanced access: %d masters give %g of %g keys per attempt (%d front points)",
        _masters(chosen),
        _keys(chosen),
        best_keys,
        len(table),
    )
    return chosen, table
