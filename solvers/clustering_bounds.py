"""Bounds of the clustering objective that need no MILP: counting (``max_keys``), covering
(``min_cost``), integral rounding, and the LP relaxation by the interior-point method.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from solvers.base import SolverOptions, SolveStatus
from solvers.clustering_arrays import ArrayModel, solve_arrays
from solvers.clustering_data import (
    ClusteringIndex,
    ClusteringOptions,
)

logger = logging.getLogger(__name__)


def keys_upper_bound(idx: ClusteringIndex, options: ClusteringOptions) -> float:
    """A valid upper bound on the ``max_keys`` objective, by counting alone.

    With ``K_x`` masters at extra locations and ``K_s`` at sites (``K_x + K_s <= budget``), at most
    ``n - K_s`` sites are slaves, so the Eq. 6 total is at most
    ``R_mdi*N_m*(K_x+K_s) + R_ekr*N_s*floor((n-K_s)/2)`` (sum of floors <= floor of sum); the
    loss term only lowers the objective. Used to tighten the reported bound when the solver's
    root LP has not finished on large instances.
    """
    n_extra = int(np.count_nonzero(idx.cand_site < 0))
    n_site_c = idx.n_cands - n_extra
    budget = options.max_masters if options.max_masters is not None else idx.n_cands
    k_x = min(n_extra, budget)
    k_s = np.arange(0, max(0, min(n_site_c, budget - k_x)) + 1)
    vals = idx.key_mdi * (k_x + k_s) + idx.key_ekr * np.floor((idx.n_sites - k_s) / 2)
    return float(vals.max())


def integral_cost_bound(idx: ClusteringIndex, bound: float) -> float:
    """Round a lower bound of the ``min_cost`` objective up when master costs are whole numbers.

    The objective is ``cost + w*loss`` with ``0 <= w*loss <= L`` (``L`` = weight x the largest
    possible demand-weighted loss), so ``cost >= bound - L`` and, cost being an integer,
    ``objective >= ceil(bound - L)``. Returns ``bound`` unchanged when costs are fractional.
    """
    if not math.isfinite(bound) or not np.all(idx.cost == np.floor(idx.cost)):
        return bound
    max_loss = np.zeros(idx.n_sites)
    if idx.n_pairs:
        np.maximum.at(max_loss, idx.pair_site, idx.pair_loss_db)
    l_max = idx.loss_weight * float(np.sum(idx.demand * max_loss))
    return max(bound, float(math.ceil(bound - l_max - 1e-9)))


def cost_lower_bound(idx: ClusteringIndex) -> float:
    """A valid lower bound on the ``min_cost`` objective, by covering alone.

    Every site is a slave or an open master, and an open candidate ``c`` covers at most
    ``min(capacity_c, sites within its reach)`` slaves plus its own site (none for an extra
    location); fixed masters are open. The least cost of covering all sites with fractional
    openings (a fractional knapsack, solved exactly by the cost-per-site order) bounds the master
    cost from below, and the loss term is never negative.
    """
    n_reach = np.bincount(idx.pair_cand, minlength=idx.n_cands) if idx.n_pairs else np.zeros(idx.n_cands, int)
    cover = np.minimum(idx.capacity, n_reach).astype(float) + (idx.cand_site >= 0)
    fixed = np.asarray(idx.fixed, dtype=bool)
    need = idx.n_sites - float(cover[fixed].sum())
    total = float(idx.cost[fixed].sum())
    if need <= 0:
        return total
    free = np.flatnonzero(~fixed & (cover > 0))
    for c in free[np.argsort(idx.cost[free] / cover[free], kind="stable")]:
        take = min(1.0, need / cover[c])
        total += take * float(idx.cost[c])
        need -= take * cover[c]
        if need <= 1e-12:
            break
    return total


def fallback_bound(idx: ClusteringIndex, options: ClusteringOptions) -> float:
    """A valid bound that needs no solver: :func:`keys_upper_bound` for ``max_keys``,
    :func:`cost_lower_bound` (rounded by :func:`integral_cost_bound`) for ``min_cost``."""
    if options.objective == "max_keys":
        return keys_upper_bound(idx, options)
    return integral_cost_bound(idx, cost_lower_bound(idx))


def lp_relaxation_bound(model: ArrayModel, solver_options: SolverOptions) -> tuple[float, float]:
    """Objective of the LP relaxation by the interior-point method with crossover (a valid bound:
    upper for ``max_keys``, lower for ``min_cost``) and its time; nan if not solved within a
    quarter of the time limit. HiGHS's MIP solves the same root LP by dual simplex, which on
    large instances of this degenerate assignment structure may not finish in the time limit."""
    relaxed = dataclasses.replace(model, integrality=np.zeros_like(model.integrality))
    opts = dataclasses.replace(
        solver_options,
        time_limit_s=0.25 * solver_options.time_limit_s,
        extra={**solver_options.extra, "solver": "ipm", "run_crossover": "on"},
    )
    res = solve_arrays(relaxed, opts)
    value = res.objective if res.status is SolveStatus.OPTIMAL else math.nan
    return value, res.solve_time_s
