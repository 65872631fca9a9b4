"""The clustering MILP as a Pyomo model (readable; solved through :func:`solvers.highs_driver.solve_model`).

One ``define_*`` function per constraint family of :mod:`solvers.clustering`; the same model as
:func:`solvers.clustering_arrays.build_clustering_arrays`.
"""

from __future__ import annotations

import logging

import numpy as np
import pyomo.environ as pyo

from solvers.clustering_data import (
    ClusteringIndex,
    ClusteringOptions,
)

logger = logging.getLogger(__name__)


def _pairs_by(idx: ClusteringIndex) -> tuple[list[list[int]], list[list[int]]]:
    by_site: list[list[int]] = [[] for _ in range(idx.n_sites)]
    by_cand: list[list[int]] = [[] for _ in range(idx.n_cands)]
    for p, (s, c) in enumerate(zip(idx.pair_site.tolist(), idx.pair_cand.tolist(), strict=True)):
        by_site[s].append(p)
        by_cand[c].append(p)
    return by_site, by_cand


def define_variables(m: pyo.ConcreteModel, idx: ClusteringIndex) -> None:
    """Sets ``C`` (candidates), ``S`` (sites), ``P`` (pairs within reach) and variables y, x, ekert."""
    m.C = pyo.RangeSet(0, idx.n_cands - 1)
    m.S = pyo.RangeSet(0, idx.n_sites - 1)
    m.P = pyo.RangeSet(0, idx.n_pairs - 1)
    m.y = pyo.Var(m.C, within=pyo.Binary)
    m.x = pyo.Var(m.P, within=pyo.Binary)
    caps = idx.capacity
    m.ekert = pyo.Var(m.C, within=pyo.NonNegativeIntegers, bounds=lambda _m, c: (0, int(caps[c]) // 2))


def define_assign_once(m: pyo.ConcreteModel, idx: ClusteringIndex) -> None:
    """``assign-once``: each site is a slave of exactly one master or is a master itself."""
    by_site = m._by_site

    def rule(_m: pyo.ConcreteModel, i: int) -> object:
        expr = sum(m.x[p] for p in by_site[i])
        c = int(idx.site_cand[i])
        if c >= 0:
            expr = expr + m.y[c]
        if isinstance(expr, int):
            return pyo.Constraint.Infeasible
        return expr == 1

    m.add_component("assign-once", pyo.Constraint(m.S, rule=rule))


def define_assign_open(m: pyo.ConcreteModel, idx: ClusteringIndex) -> None:
    """``assign-open``: a site can only be a slave of an open master (``x[i,c] <= y[c]``)."""
    pc = idx.pair_cand
    m.add_component("assign-open", pyo.Constraint(m.P, rule=lambda _m, p: m.x[p] <= m.y[int(pc[p])]))


def _size(m: pyo.ConcreteModel, c: int) -> object:
    return sum(m.x[p] for p in m._by_cand[c])


def define_cluster_size(m: pyo.ConcreteModel, idx: ClusteringIndex) -> None:
    """``cluster-size-min`` / ``cluster-size-max``: ``min_size*y <= slaves <= capacity*y``."""

    def lo(_m: pyo.ConcreteModel, c: int) -> object:
        if not m._by_cand[c]:
            return pyo.Constraint.Skip if idx.min_size[c] == 0 else m.y[c] <= 0
        return _size(m, c) >= int(idx.min_size[c]) * m.y[c]

    def hi(_m: pyo.ConcreteModel, c: int) -> object:
        if not m._by_cand[c]:
            return pyo.Constraint.Skip
        return _size(m, c) <= int(idx.capacity[c]) * m.y[c]

    m.add_component("cluster-size-min", pyo.Constraint(m.C, rule=lo))
    m.add_component("cluster-size-max", pyo.Constraint(m.C, rule=hi))


def define_ekert_floor(m: pyo.ConcreteModel, idx: ClusteringIndex) -> None:
    """``ekert-floor``: ``2*ekert[c] <= slaves[c]`` so ekert = floor(|V|/2) at the optimum (Eq. 5)."""

    def rule(_m: pyo.ConcreteModel, c: int) -> object:
        if not m._by_cand[c]:
            return m.ekert[c] <= 0
        return 2 * m.ekert[c] <= _size(m, c)

    m.add_component("ekert-floor", pyo.Constraint(m.C, rule=rule))


def define_budgets(m: pyo.ConcreteModel, idx: ClusteringIndex, options: ClusteringOptions) -> None:
    """``master-budget`` (count) and ``cost-budget`` (sum of master costs), when set."""
    if options.max_masters is not None:
        m.add_component("master-budget", pyo.Constraint(expr=sum(m.y[c] for c in m.C) <= options.max_masters))
    if options.max_cost is not None:
        expr = sum(float(idx.cost[c]) * m.y[c] for c in m.C)
        m.add_component("cost-budget", pyo.Constraint(expr=expr <= options.max_cost))


def define_key_target(m: pyo.ConcreteModel, idx: ClusteringIndex, options: ClusteringOptions) -> None:
    """``cluster-key-target``: an open cluster yields at least ``min_cluster_keys`` (Eq. 6)."""
    if options.min_cluster_keys <= 0:
        return
    t = options.min_cluster_keys
    m.add_component(
        "cluster-key-target",
        pyo.Constraint(m.C, rule=lambda _m, c: idx.key_mdi * m.y[c] + idx.key_ekr * m.ekert[c] >= t * m.y[c]),
    )


def define_fixed_masters(m: pyo.ConcreteModel, idx: ClusteringIndex) -> None:
    """``fixed-master``: fixed candidates are open (variable fixed to 1)."""
    for c in np.flatnonzero(idx.fixed).tolist():
        m.y[c].fix(1)


def define_objective(m: pyo.ConcreteModel, idx: ClusteringIndex, options: ClusteringOptions) -> None:
    """Objective: max Eq. 6 keys or min master cost, with the weighted access-loss tie-break."""
    w = idx.loss_weight * idx.demand[idx.pair_site] * idx.pair_loss_db
    loss = sum(float(w[p]) * m.x[p] for p in m.P if w[p] != 0)
    if options.objective == "max_keys":
        keys = sum(idx.key_mdi * m.y[c] + idx.key_ekr * m.ekert[c] for c in m.C)
        m.objective = pyo.Objective(expr=keys - loss, sense=pyo.maximize)
    else:
        cost = sum(float(idx.cost[c]) * m.y[c] for c in m.C)
        m.objective = pyo.Objective(expr=cost + loss, sense=pyo.minimize)


def build_clustering_model(idx: ClusteringIndex, options: ClusteringOptions) -> pyo.ConcreteModel:
    """The clustering MILP as a Pyomo model, one ``define_*`` function per constraint family."""
    m = pyo.ConcreteModel(name="clustering")
    m._by_site, m._by_cand = _pairs_by(idx)
    define_variables(m, idx)
    define_assign_once(m, idx)
    if options.strong_linking:
        define_assign_open(m, idx)
    define_cluster_size(m, idx)
    define_ekert_floor(m, idx)
    define_budgets(m, idx, options)
    define_key_target(m, idx, options)
    define_fixed_masters(m, idx)
    define_objective(m, idx, options)
    return m


# ----------------------------------------------------------------------------- array model
