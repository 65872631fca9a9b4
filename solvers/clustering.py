"""Access clustering and master placement (cluster paper, Eq. 5/6).

Every site is either a master or a slave assigned to exactly one open master
within access reach. A cluster with ``|V|`` slaves runs ``M = floor(|V|/2)``
concurrent Ekert91 pairs per attempt (Eq. 5) and yields
``R_mdi*N_m + R_ekr*N_s*M`` keys per attempt (Eq. 6).

The MILP (sparse: assignment variables only for site/candidate pairs listed
in the ``pairs`` table, i.e. within reach):

* ``y[c]`` binary: candidate ``c`` is an open master;
* ``x[p]`` binary: for pair ``p = (site i, candidate c)``, site ``i`` is a slave of ``c``;
* ``ekert[c]`` integer: Ekert91 pairs of cluster ``c`` (the floor of Eq. 5 via ``2*ekert <= size``).

Constraint families (names as used in diagnoses): ``assign-once``,
``assign-open``, ``cluster-size-min``, ``cluster-size-max``, ``ekert-floor``,
``master-budget``, ``cost-budget``, ``cluster-key-target``, ``fixed-master``.

Objectives: ``"max_keys"`` maximises the total Eq. 6 keys per attempt,
``"min_cost"`` minimises the total master cost (with an optional per-cluster
key target); both subtract/add a demand-weighted access-loss tie-break.

Two interchangeable builders give the same model: :func:`build_clustering_model`
(Pyomo, readable, solved through :func:`solvers.highs_driver.solve_model`) and
:func:`build_clustering_arrays` (sparse arrays passed to HiGHS through
``highspy``; used for large instances where Pyomo's build time dominates).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from solvers.base import (
    SolverError,
    SolveResult,
    SolverOptions,
    SolveStatus,
    relative_gap,
)
from solvers.clustering_data import (
    FAMILIES,
    Backend,
    ClusteringData,
    ClusteringIndex,
    ClusteringInfeasible,
    ClusteringInputError,
    ClusteringOptions,
    ClusteringSolution,
    Objective,
    check_solution,
    diagnose,
    prepare,
    result_from_solution,
    solution_from_values,
    solution_tables,
    solution_terms,
    solution_vector,
    validate_options,
)
from solvers.heuristics import heuristic_solution
from solvers.highs_driver import HighsRun, LinearArrays, solve_model
from solvers.highs_driver import solve_arrays as solve_arrays_highs

# the data layer's public names are part of this module's interface
__all__ = [
    "FAMILIES",
    "Backend",
    "ClusteringData",
    "ClusteringIndex",
    "ClusteringInfeasible",
    "ClusteringInputError",
    "ClusteringOptions",
    "ClusteringSolution",
    "Objective",
    "check_solution",
    "diagnose",
    "prepare",
    "result_from_solution",
    "solution_from_values",
    "solution_tables",
    "solution_terms",
    "solution_vector",
    "validate_options",
    "COMPONENT_MIN_S",
    "ComponentCache",
    "component_cache",
    "current_component_cache",
    "COMPONENT_SOLVE_MIN_SITES",
    "ArrayModel",
    "RowBlock",
    "build_clustering_arrays",
    "build_clustering_model",
    "cost_lower_bound",
    "define_assign_once",
    "define_assign_open",
    "define_budgets",
    "define_cluster_size",
    "define_ekert_floor",
    "define_fixed_masters",
    "define_key_target",
    "define_objective",
    "define_variables",
    "elastic_diagnosis",
    "fallback_bound",
    "integral_cost_bound",
    "keys_upper_bound",
    "solve_arrays",
    "solve_clustering",
    "solve_clustering_by_component",
    "unservable_sites",
    "unservable_sites_by_component",
]

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- Pyomo model


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


@dataclass
class RowBlock:
    """One constraint family as sparse rows ``lower <= A @ cols <= upper``."""

    name: str
    matrix: sp.csr_matrix
    lower: np.ndarray
    upper: np.ndarray


@dataclass
class ArrayModel:
    """A MILP as arrays: columns ``[y (C) | x (P) | ekert (C) | slacks]`` and row blocks."""

    col_cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray  # 1 = integer
    blocks: list[RowBlock]
    maximize: bool
    n_y: int
    n_x: int
    n_ekert: int
    slack_family: list[str] = field(default_factory=list)
    slack_row: list[int] = field(default_factory=list)  # row of its block that each slack relaxes
    slack_side: list[float] = field(default_factory=list)  # +1 relaxes the lower side, -1 the upper

    @property
    def n_cols(self) -> int:
        return len(self.col_cost)

    @property
    def n_rows(self) -> int:
        return sum(b.matrix.shape[0] for b in self.blocks)


def build_clustering_arrays(idx: ClusteringIndex, options: ClusteringOptions, *, elastic: bool = False) -> ArrayModel:
    """The clustering MILP as sparse arrays (same model as :func:`build_clustering_model`).

    With ``elastic=True`` each row of every family except ``assign-open`` gets slack columns,
    fixed masters become ``fixed-master`` rows, and the objective is the total slack: a zero
    optimum means the model is feasible; otherwise the families with nonzero slack conflict.
    """
    nc, ns, npairs = idx.n_cands, idx.n_sites, idx.n_pairs
    oy, ox, om = 0, nc, nc + npairs
    n = nc + npairs + nc
    inf = np.inf
    blocks: list[RowBlock] = []
    prow = np.arange(npairs)
    # sizes: A_size[c, col] = 1 for each pair of c
    size = sp.csr_matrix((np.ones(npairs), (idx.pair_cand, ox + prow)), shape=(nc, n))
    y_eye = sp.csr_matrix((np.ones(nc), (np.arange(nc), oy + np.arange(nc))), shape=(nc, n))
    m_eye = sp.csr_matrix((np.ones(nc), (np.arange(nc), om + np.arange(nc))), shape=(nc, n))

    own = np.flatnonzero(idx.site_cand >= 0)
    rows = np.concatenate([idx.pair_site, own])
    cols = np.concatenate([ox + prow, oy + idx.site_cand[own]])
    a_once = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(ns, n))
    blocks.append(RowBlock("assign-once", a_once, np.ones(ns), np.ones(ns)))
    if options.strong_linking and not elastic:
        a_open = sp.csr_matrix(
            (
                np.concatenate([np.ones(npairs), -np.ones(npairs)]),
                (np.concatenate([prow, prow]), np.concatenate([ox + prow, oy + idx.pair_cand])),
            ),
            shape=(npairs, n),
        )
        blocks.append(RowBlock("assign-open", a_open, np.full(npairs, -inf), np.zeros(npairs)))
    blocks.append(
        RowBlock(
            "cluster-size-min",
            (size - sp.diags(idx.min_size.astype(float)) @ y_eye).tocsr(),
            np.zeros(nc),
            np.full(nc, inf),
        )
    )
    blocks.append(
        RowBlock(
            "cluster-size-max",
            (size - sp.diags(idx.capacity.astype(float)) @ y_eye).tocsr(),
            np.full(nc, -inf),
            np.zeros(nc),
        )
    )
    blocks.append(RowBlock("ekert-floor", (2 * m_eye - size).tocsr(), np.full(nc, -inf), np.zeros(nc)))
    if options.max_masters is not None:
        a = sp.csr_matrix((np.ones(nc), (np.zeros(nc, dtype=int), oy + np.arange(nc))), shape=(1, n))
        blocks.append(RowBlock("master-budget", a, np.array([-inf]), np.array([float(options.max_masters)])))
    if options.max_cost is not None:
        a = sp.csr_matrix((idx.cost, (np.zeros(nc, dtype=int), oy + np.arange(nc))), shape=(1, n))
        blocks.append(RowBlock("cost-budget", a, np.array([-inf]), np.array([float(options.max_cost)])))
    if options.min_cluster_keys > 0:
        a = ((idx.key_mdi - options.min_cluster_keys) * y_eye + idx.key_ekr * m_eye).tocsr()
        blocks.append(RowBlock("cluster-key-target", a, np.zeros(nc), np.full(nc, inf)))

    col_lower = np.zeros(n)
    col_upper = np.concatenate([np.ones(nc), np.ones(npairs), (idx.capacity // 2).astype(float)])
    if elastic:
        fx = np.flatnonzero(idx.fixed)
        if len(fx):
            a = sp.csr_matrix((np.ones(len(fx)), (np.arange(len(fx)), oy + fx)), shape=(len(fx), n))
            blocks.append(RowBlock("fixed-master", a, np.ones(len(fx)), np.full(len(fx), inf)))
    else:
        col_lower[oy + np.flatnonzero(idx.fixed)] = 1.0
    col_cost = np.zeros(n)
    w = idx.loss_weight * idx.demand[idx.pair_site] * idx.pair_loss_db
    if options.objective == "max_keys":
        col_cost[oy : oy + nc] = idx.key_mdi
        col_cost[om : om + nc] = idx.key_ekr
        col_cost[ox : ox + npairs] = -w
        maximize = True
    else:
        col_cost[oy : oy + nc] = idx.cost
        col_cost[ox : ox + npairs] = w
        maximize = False
    integrality = np.ones(n, dtype=np.int8)
    model = ArrayModel(col_cost, col_lower, col_upper, integrality, blocks, maximize, nc, npairs, nc)
    if elastic:
        _add_elastic_slacks(model)
    return model


def _add_elastic_slacks(model: ArrayModel) -> None:
    """Append slack columns to every row (one per finite side) and minimise their sum."""
    n0 = model.n_cols
    extra_cols = 0
    families: list[str] = []
    rows: list[int] = []
    sides: list[float] = []
    new_blocks = []
    for b in model.blocks:
        r = b.matrix.shape[0]
        pieces = [b.matrix]
        for side, finite in ((+1.0, np.isfinite(b.lower)), (-1.0, np.isfinite(b.upper))):
            k = np.flatnonzero(finite)
            if not len(k):
                continue
            pieces.append(("slack", side, k))
        new_blocks.append((b, pieces, r))
    total_slack = sum(len(p[2]) for _b, pieces, _r in new_blocks for p in pieces[1:])
    n = n0 + total_slack
    for b, pieces, r in new_blocks:
        mat = sp.csr_matrix((b.matrix.data, b.matrix.indices, b.matrix.indptr), shape=(r, n))
        for _tag, side, k in pieces[1:]:
            cols = n0 + extra_cols + np.arange(len(k))
            mat = mat + sp.csr_matrix((np.full(len(k), side), (k, cols)), shape=(r, n))
            families += [b.name] * len(k)
            rows += [int(x) for x in k]
            sides += [side] * len(k)
            extra_cols += len(k)
        b.matrix = mat.tocsr()
    model.col_cost = np.concatenate([np.zeros(n0), np.ones(total_slack)])
    model.col_lower = np.concatenate([model.col_lower, np.zeros(total_slack)])
    model.col_upper = np.concatenate([model.col_upper, np.full(total_slack, np.inf)])
    model.integrality = np.concatenate([model.integrality, np.zeros(total_slack, dtype=np.int8)])
    model.maximize = False
    model.slack_family = families
    model.slack_row = rows
    model.slack_side = sides


def solve_arrays(model: ArrayModel, options: SolverOptions, *, start: np.ndarray | None = None) -> HighsRun:
    """Solve an :class:`ArrayModel` with the HiGHS driver (MIP start from ``start`` when given)."""
    a = sp.vstack([b.matrix for b in model.blocks], format="csc") if model.blocks else sp.csc_matrix((0, model.n_cols))
    arrays = LinearArrays(
        col_cost=model.col_cost,
        col_lower=model.col_lower,
        col_upper=model.col_upper,
        a_matrix=a,
        row_lower=np.concatenate([b.lower for b in model.blocks]),
        row_upper=np.concatenate([b.upper for b in model.blocks]),
        integrality=model.integrality,
        maximize=model.maximize,
    )
    return solve_arrays_highs(arrays, options, start=start)


# ----------------------------------------------------------------------------- solve


def elastic_diagnosis(
    idx: ClusteringIndex, options: ClusteringOptions, solver_options: SolverOptions
) -> tuple[list[str], list[str]]:
    """Solve the elastic relaxation; return the families with nonzero slack and details."""
    model = build_clustering_arrays(idx, options, elastic=True)
    res = solve_arrays(model, solver_options)
    if res.values is None:
        return [], ["the elastic relaxation could not be solved within the time limit"]
    slack = res.values[model.n_y + model.n_x + model.n_ekert :]
    fam = np.asarray(model.slack_family, dtype=object)
    conflicts: list[str] = []
    details: list[str] = []
    for name in dict.fromkeys(model.slack_family):
        total = float(slack[fam == name].sum())
        if total > 1e-6:
            conflicts.append(name)
            details.append(f"'{name}' must be relaxed by {total:.6g} in total to make the model feasible")
    return conflicts, details


ComponentKey = tuple[tuple[str, ...], tuple[str, ...], int]


def component_key(data: ClusteringData) -> ComponentKey:
    """What identifies an instance (a reach component) across attempts: its sites, its candidates
    and its number of pairs (dropping a site changes the key of its component only)."""
    return (tuple(sorted(map(str, data.sites.index))), tuple(sorted(map(str, data.candidates.index))), len(data.pairs))


@dataclass
class ComponentCache:
    """Work on reach components kept across the solves of one access stage, so that a retry
    (after unservable sites were dropped, or with more time) redoes only what changed.

    * ``heuristics``: the greedy heuristic's clustering (or None) and its time, per component and
      options; the heuristic is deterministic for given data, options and seed, so reusing it is exact;
    * ``results``: a component's solve result (only results with a clustering), per component,
      options and time limit class (a result is reused for a later limit at most as long, or when
      it is optimal);
    * ``owner``: clusterings found on the way, site id -> its master's id (a master maps to itself):
      by the elastic model of :func:`unservable_sites` (zero slack) and by the mended greedy of
      :func:`solvers.heuristics.unservable_sites_heuristic` (for the sites it keeps). A component
      the heuristic cannot cluster whose sites all have a master here takes that clustering as its
      start and fallback (checked against the component's options before use).

    ``heuristic_runs`` and ``milp_runs`` count the calls actually made (not served from here).
    """

    heuristics: dict[tuple[ComponentKey, str], tuple[ClusteringSolution | None, float]] = field(default_factory=dict)
    results: dict[tuple[ComponentKey, str], tuple[SolveResult, float]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    mended: dict[ComponentKey, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    heuristic_runs: int = 0
    milp_runs: int = 0
    hits: int = 0

    def heuristic(
        self, data: ClusteringData, idx: ClusteringIndex, options: ClusteringOptions
    ) -> tuple[ClusteringSolution | None, float]:
        """The heuristic's clustering of the component (or, when it has none, a checked elastic one)
        and the time it took (0 when served from the cache)."""
        key = (component_key(data), repr(options))
        if key in self.heuristics:
            self.hits += 1
            sol, _s = self.heuristics[key]
            out: tuple[ClusteringSolution | None, float] = (sol, 0.0)
        else:
            th = time.perf_counter()
            sol = heuristic_solution(idx, options, seed=options.heuristic_seed)
            self.heuristic_runs += 1
            out = (sol, time.perf_counter() - th)
            self.heuristics[key] = out
        if out[0] is None:
            known = self.known_clustering(idx, options)
            if known is not None:
                return known, 0.0
        return out

    def remember(self, idx: ClusteringIndex, sol: ClusteringSolution) -> None:
        """Keep a (checked) clustering of ``idx`` in :attr:`owner`."""
        self.owner.update({str(idx.site_ids[i]): str(idx.cand_ids[c]) for i, c in enumerate(sol.owner) if c >= 0})

    def known_clustering(self, idx: ClusteringIndex, options: ClusteringOptions) -> ClusteringSolution | None:
        """A clustering of ``idx`` from :attr:`owner` that satisfies ``options``, if there is one."""
        cand_pos = {str(c): k for k, c in enumerate(idx.cand_ids)}
        owner = np.full(idx.n_sites, -1, dtype=np.int64)
        for i, site in enumerate(idx.site_ids):
            c = cand_pos.get(self.owner.get(str(site), ""), -1)
            if c < 0:
                return None
            owner[i] = c
        open_ = np.zeros(idx.n_cands, dtype=bool)
        open_[owner] = True
        sol = ClusteringSolution(open_, owner)
        return None if check_solution(idx, options, sol) else sol

    def result(self, data: ClusteringData, options: ClusteringOptions, limit_s: float) -> SolveResult | None:
        """A stored result of the component under ``options`` that a solve with ``limit_s`` would
        not improve on (optimal, or found with at least that limit)."""
        got = self.results.get((component_key(data), repr(options)))
        if got is None:
            return None
        res, had_s = got
        if res.status is SolveStatus.OPTIMAL or had_s >= limit_s:
            self.hits += 1
            return res
        return None

    def keep(self, data: ClusteringData, options: ClusteringOptions, limit_s: float, res: SolveResult) -> None:
        if res.has_solution:
            self.results[(component_key(data), repr(options))] = (res, limit_s)


_CACHES: list[ComponentCache] = []


@contextlib.contextmanager
def component_cache(cache: ComponentCache | None = None) -> Iterator[ComponentCache]:
    """Open a :class:`ComponentCache` for the per-component solves run inside the block."""
    cache = cache or ComponentCache()
    _CACHES.append(cache)
    try:
        yield cache
    finally:
        _CACHES.remove(cache)


def current_component_cache() -> ComponentCache | None:
    """The innermost open :class:`ComponentCache`, if any."""
    return _CACHES[-1] if _CACHES else None


def unservable_sites(
    data: ClusteringData, options: ClusteringOptions, solver_options: SolverOptions | None = None
) -> list[str] | None:
    """The fewest sites that must be left out for a clustering to exist.

    Solves the elastic model in which only the ``assign-once`` rows may take slack
    (every other family is kept hard) and the total slack is minimised. Returns
    ``[]`` when the model is feasible, the ids of the sites whose ``assign-once`` row
    needs slack (the fewest sites; dropping them makes the model feasible), and
    ``None`` when no choice of dropped sites helps (other families conflict) or the
    relaxation could not be solved.
    """
    solver_options = solver_options or SolverOptions()
    idx = prepare(data, options)
    model = build_clustering_arrays(idx, options, elastic=True)
    n_fixed = model.n_y + model.n_x + model.n_ekert
    # only "a site is assigned to no cluster" may be relaxed, never "assigned twice"
    hard = (np.asarray(model.slack_family, dtype=object) != "assign-once") | (
        np.asarray(model.slack_side, dtype=float) < 0
    )
    model.col_upper[n_fixed:][hard] = 0.0
    res = solve_arrays(model, solver_options)
    if res.values is None:
        return None
    slack = res.values[model.n_y + model.n_x + model.n_ekert :]
    fam = np.asarray(model.slack_family, dtype=object)
    rows = np.asarray(model.slack_row, dtype=np.int64)
    bad = slack > 1e-6
    if not bad.any():
        cache = current_component_cache()
        if cache is not None:  # a clustering of this instance: keep it (start and fallback of later solves)
            n_c, n_p = idx.n_cands, idx.n_pairs
            sol = solution_from_values(idx, res.values[:n_c], res.values[n_c : n_c + n_p])
            if not check_solution(idx, options, sol):
                cache.remember(idx, sol)
        return []
    if set(fam[bad]) != {"assign-once"}:
        return None
    return sorted({str(idx.site_ids[r]) for r in rows[bad]})


ELASTIC_MAX_PAIRS = 100_000
"""Above this many pairs a reach component's unservable sites are first sought by
:func:`solvers.heuristics.unservable_sites_heuristic` (seconds, not proven fewest); the elastic
MILP of :func:`unservable_sites` runs out of time there (us-10000: 972 000 pairs, no answer in 30 s)."""


def unservable_sites_by_component(
    data: ClusteringData, options: ClusteringOptions, solver_options: SolverOptions | None = None
) -> list[str] | None:
    """:func:`unservable_sites`, solved one connected component of the reach graph at a time.

    Sites (and candidates) are linked when a pair lists them; without global budgets
    (``max_masters``, ``max_cost``) the components are independent, so the fewest sites to
    leave out overall is the union of each component's fewest. A component the greedy
    heuristic of :mod:`solvers.heuristics` clusters completely needs nothing; only the others
    get the elastic MILP, each with a share of ``solver_options.time_limit_s`` in proportion to its sites
    (their limits sum to at most the limit); a component of more than :data:`ELASTIC_MAX_PAIRS`
    pairs first gets :func:`solvers.heuristics.unservable_sites_heuristic`, whose sites make a
    clustering exist but are not proven the fewest (the elastic MILP only if it fails). With a global
    budget the whole model is solved by :func:`unservable_sites`. Same return convention as :func:`unservable_sites`.
    """

    solver_options = solver_options or SolverOptions()
    if options.max_masters is not None or options.max_cost is not None:
        return unservable_sites(data, options, solver_options)
    ids = pd.Index(sorted({str(i) for i in data.sites.index} | {str(c) for c in data.candidates.index}))
    a = ids.get_indexer(data.pairs["site"].astype(str))
    b = ids.get_indexer(data.pairs["candidate"].astype(str))
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    _, label = connected_components(graph, directed=False)
    site_label = label[ids.get_indexer(data.sites.index.astype(str))]
    cand_label = label[ids.get_indexer(data.candidates.index.astype(str))]
    pair_label = label[a]
    hard: list[tuple[ClusteringData, int]] = []
    out: list[str] = []
    for comp in np.unique(site_label):
        sub = ClusteringData(
            sites=data.sites[site_label == comp],
            candidates=data.candidates[cand_label == comp],
            pairs=data.pairs[pair_label == comp],
        )
        idx = prepare(sub, options)
        if idx.n_pairs == 0:
            out += [str(s) for s in sub.sites.index if str(s) not in set(map(str, sub.candidates.index))]
            continue
        if not diagnose(idx, options)[0]:
            cache = current_component_cache()
            clustered = (
                cache.heuristic(sub, idx, options)[0]
                if cache is not None
                else heuristic_solution(idx, options, seed=options.heuristic_seed)
            )
            if clustered is not None:
                continue
        hard.append((sub, len(sub.sites)))
    n_heuristic = 0
    if hard:
        from solvers.heuristics import unservable_sites_heuristic

        elastic: list[tuple[ClusteringData, int]] = []
        for sub, n in hard:  # a component too large for the elastic MILP: the mended greedy's
            if len(sub.pairs) > ELASTIC_MAX_PAIRS:  # unreached sites, when they are enough
                idx = prepare(sub, options)
                kept: list[dict[str, str]] = []
                found = unservable_sites_heuristic(idx, options, kept=kept)
                cache = current_component_cache()
                if cache is not None:  # the clustering of the sites it keeps: a start for the next solve
                    for clustering in kept:
                        cache.owner.update(clustering)
                if found is not None:
                    n_heuristic += 1
                    out += [str(idx.site_ids[i]) for i in found]
                    continue
            elastic.append((sub, n))
        n_hard = sum(n for _sub, n in elastic)
        for sub, n in elastic:  # each component's share of the limit is in proportion to its sites
            share = dataclasses.replace(solver_options, time_limit_s=solver_options.time_limit_s * n / n_hard)
            left = unservable_sites(sub, options, share)
            if left is None:
                return None
            out += left
    logger.info(
        "unservable sites: %d component(s) need the elastic model, %d of them too large for it "
        "(left to the mended greedy, not proven fewest), %d site(s) left out",
        len(hard),
        n_heuristic,
        len(out),
    )
    return sorted(set(out))


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


def _lp_relaxation_bound(model: ArrayModel, solver_options: SolverOptions) -> tuple[float, float]:
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


def _choose_backend(idx: ClusteringIndex, options: ClusteringOptions) -> str:
    if options.backend != "auto":
        return options.backend
    return "pyomo" if idx.n_pairs <= options.auto_pyomo_max_pairs else "highspy"


def solve_clustering(
    data: ClusteringData,
    options: ClusteringOptions | None = None,
    solver_options: SolverOptions | None = None,
    *,
    known_heuristic: tuple[ClusteringSolution | None, float] | None = None,
) -> SolveResult:
    """Choose masters and assign every site, optimally or with a reported gap.

    ``known_heuristic``: the heuristic's solution (``None`` if it found none) and its time, when
    the caller has already run it on the same data and options (it is then not run again).

    Guarantees: a returned result with a solution satisfies every constraint family
    (checked); ``tables["assignment"]`` lists every site once, ``tables["clusters"]`` every
    open master. Raises :class:`ClusteringInputError` for malformed tables and
    :class:`ClusteringInfeasible` (naming the conflicting families) when no clustering exists.
    When the time limit ends the search without a MILP solution but the heuristic found one,
    the heuristic solution is returned with status ``FEASIBLE`` and ``info["source"] = "heuristic"``.
    """
    options = options or ClusteringOptions()
    solver_options = solver_options or SolverOptions()
    t0 = time.perf_counter()
    idx = prepare(data, options)
    conflicts, details = diagnose(idx, options)
    if conflicts:
        raise ClusteringInfeasible("No clustering satisfies the settings.", conflicts=conflicts, details=details)
    prep_s = time.perf_counter() - t0
    start_sol: ClusteringSolution | None = None
    heur_info: dict[str, object] = {}
    if options.warm_start:
        th = time.perf_counter()
        if known_heuristic is not None:
            start_sol, heur_info["heuristic_time_s"] = known_heuristic
        else:
            start_sol = heuristic_solution(idx, options, seed=options.heuristic_seed)
            heur_info["heuristic_time_s"] = time.perf_counter() - th
        if start_sol is not None:
            heur_info["heuristic_objective"] = solution_terms(idx, options, start_sol)["objective"]
    if options.bound_shortcut and options.objective == "max_keys" and start_sol is not None:
        comb = keys_upper_bound(idx, options)
        h_obj = float(heur_info["heuristic_objective"])  # type: ignore[arg-type]
        h_gap = relative_gap(h_obj, comb)
        if math.isfinite(h_gap) and h_gap <= solver_options.mip_gap:
            sizes = build_clustering_arrays(idx, options)
            info: dict[str, object] = {
                "backend": "none",
                "n_variables": sizes.n_cols,
                "n_constraints": sizes.n_rows,
                "n_binaries": idx.n_cands + idx.n_pairs,
                "prepare_time_s": prep_s,
                "bound_counting": comb,
                "source": "heuristic, proven within mip_gap by the counting bound",
                **heur_info,
            }
            return result_from_solution(
                idx, options, start_sol, status=SolveStatus.OPTIMAL, bound=comb, gap=h_gap,
                solve_time_s=float(heur_info["heuristic_time_s"]),  # type: ignore[arg-type]
                build_time_s=0.0, solver="heuristic+bound", info=info,
            )  # fmt: skip
    backend = _choose_backend(idx, options)
    info_extra: dict[str, object] = {}
    tb = time.perf_counter()
    if backend == "pyomo":
        model = build_clustering_model(idx, options)
        n_vars = model.nvariables()
        n_cons = model.nconstraints()
        n_bin = idx.n_cands + idx.n_pairs
        if start_sol is not None:
            vec = solution_vector(idx, start_sol)
            for c in range(idx.n_cands):
                if not model.y[c].fixed:
                    model.y[c].set_value(vec[c])
                model.ekert[c].set_value(vec[idx.n_cands + idx.n_pairs + c])
            for p in range(idx.n_pairs):
                model.x[p].set_value(vec[idx.n_cands + p])
        build_s = time.perf_counter() - tb
        # a tenth of the limit is kept for the elastic diagnosis should the model be infeasible
        wall_left = max(0.01, solver_options.time_limit_s - (time.perf_counter() - t0))
        raw = solve_model(
            model, dataclasses.replace(solver_options, time_limit_s=min(0.9 * solver_options.time_limit_s, wall_left))
        )
        status, obj, bound, gap, solve_s = (
            raw.status,
            raw.objective,
            raw.bound,
            raw.gap,
            raw.solve_time_s,
        )
        values = None
        if status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
            y = np.array([pyo.value(model.y[c]) for c in range(idx.n_cands)], dtype=float)
            x = np.array([pyo.value(model.x[p]) for p in range(idx.n_pairs)], dtype=float)
            values = (y, x)
    else:
        amodel = build_clustering_arrays(idx, options)
        n_vars, n_cons, n_bin = amodel.n_cols, amodel.n_rows, idx.n_cands + idx.n_pairs
        build_s = time.perf_counter() - tb
        start = solution_vector(idx, start_sol) if start_sol is not None else None
        milp_options = solver_options
        if options.lp_bound:
            lp_bound, lp_s = _lp_relaxation_bound(amodel, solver_options)
            info_extra["lp_bound"] = lp_bound
            info_extra["lp_bound_time_s"] = lp_s
            # the LP was handed a quarter of the limit; the MILP gets the rest (less a tenth
            # kept for a diagnosis): 0.25 + 0.65 + 0.1, so the limits handed sum to the limit
            milp_options = dataclasses.replace(solver_options, time_limit_s=0.65 * solver_options.time_limit_s)
        else:
            milp_options = dataclasses.replace(solver_options, time_limit_s=0.9 * solver_options.time_limit_s)
        # the limit covers building too: never past t0 + limit
        wall_left = max(0.01, solver_options.time_limit_s - (time.perf_counter() - t0))
        milp_options = dataclasses.replace(milp_options, time_limit_s=min(milp_options.time_limit_s, wall_left))
        ares = solve_arrays(amodel, milp_options, start=start)
        status, obj, bound, gap, solve_s = (
            ares.status,
            ares.objective,
            ares.bound,
            ares.gap,
            ares.solve_time_s,
        )
        values = None
        if ares.values is not None:
            values = (
                ares.values[: idx.n_cands],
                ares.values[idx.n_cands : idx.n_cands + idx.n_pairs],
            )
    info = {
        "backend": backend,
        "n_variables": int(n_vars),
        "n_constraints": int(n_cons),
        "n_binaries": int(n_bin),
        "prepare_time_s": prep_s,
        "strong_linking": options.strong_linking,
        **heur_info,
        **info_extra,
    }
    if status is SolveStatus.INFEASIBLE:
        conflicts, details = elastic_diagnosis(
            idx, options, dataclasses.replace(solver_options, time_limit_s=0.1 * solver_options.time_limit_s)
        )
        raise ClusteringInfeasible(
            "No clustering satisfies the settings (the MILP is infeasible).",
            conflicts=conflicts,
            details=details,
        )
    if values is None:
        if start_sol is not None:
            info["source"] = "heuristic"
            h_gap = math.nan
            if options.objective == "max_keys":  # still report a valid bound: the best of solver, LP, counting
                lp_b = float(info_extra.get("lp_bound", math.nan))  # type: ignore[arg-type]
                bound = min(b for b in (bound, lp_b, keys_upper_bound(idx, options), math.inf) if math.isfinite(b))
                h_gap = relative_gap(float(info.get("heuristic_objective", math.nan)), bound)  # type: ignore[arg-type]
            return result_from_solution(
                idx, options, start_sol, status=SolveStatus.FEASIBLE, bound=bound, gap=h_gap,
                solve_time_s=solve_s, build_time_s=build_s, solver=f"highs-{backend}", info=info,
            )  # fmt: skip
        return SolveResult(status=status, bound=bound, solve_time_s=solve_s, build_time_s=build_s,
                           solver=f"highs-{backend}", info=info)  # fmt: skip
    info["bound_solver"] = bound
    lp_b = float(info_extra.get("lp_bound", math.nan))  # type: ignore[arg-type]
    if options.objective == "max_keys":
        comb = keys_upper_bound(idx, options)
        info["bound_counting"] = comb
        best_bound = min(b for b in (bound, comb, lp_b) if math.isfinite(b))
    else:
        finite = [b for b in (bound, lp_b) if math.isfinite(b)]
        best_bound = max(finite) if finite else math.nan
        best_bound = integral_cost_bound(idx, best_bound)
    if math.isfinite(best_bound) and best_bound != bound:
        bound = best_bound
        gap = relative_gap(obj, bound)
        if status is SolveStatus.FEASIBLE and gap <= solver_options.mip_gap:
            status = SolveStatus.OPTIMAL
    sol = solution_from_values(idx, values[0], values[1])
    bad = check_solution(idx, options, sol)
    if bad:
        raise SolverError(f"the solver returned a clustering that violates {bad}")
    info["source"] = "milp"
    return result_from_solution(
        idx, options, sol, status=status, objective=obj, bound=bound, gap=gap,
        solve_time_s=solve_s, build_time_s=build_s, solver=f"highs-{backend}", info=info,
    )  # fmt: skip


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


COMPONENT_SOLVE_MIN_SITES = 1500
COMPONENT_MIN_S = 1.0
"""Least time a reach component's MILP is handed (when the limit leaves that much per component)."""


def _component_limit(
    left_s: float, weight: float, weight_left: float, n_left: int, needy: bool, n_needy_left: int
) -> float:
    """Time for the next component: its share of what is left (by pairs), at least the floor
    ``min(COMPONENT_MIN_S, left_s / n_left)``, and for a component the heuristic cannot cluster (it
    depends on the MILP) at least half of what is left split among such components; always leaving
    the floor for each of the ``n_left - 1`` later components, so the limits sum to at most ``left_s``."""
    left_s = max(0.0, left_s)
    floor = min(COMPONENT_MIN_S, left_s / max(1, n_left))
    want = max(left_s * weight / max(weight_left, 1e-12), floor)
    if needy:
        want = max(want, 0.5 * left_s / max(1, n_needy_left))
    # keep the floor for each later component
    return max(0.0, min(want, left_s - floor * max(0, n_left - 1)))


FAILED_SCAN_MAX_SITES = 500
"""Once a reach component is found infeasible, the later components that depend on the MILP are
still solved (to name all infeasible components in one pass) while they have at most this many
sites; a larger one is left for the solve after the unservable sites are dropped."""


def _merged_infeasible(failed: list[tuple[ClusteringData, ClusteringInfeasible]]) -> ClusteringInfeasible:
    """One :class:`ClusteringInfeasible` for the infeasible reach components, carrying their sites."""
    details: list[str] = []
    for sub, exc in failed:
        ids = [str(s) for s in sub.sites.index]
        where = f"reach component of {len(ids)} site(s) ({', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''})"
        details += [f"{where}: {d}" for d in exc.details] or [f"{where}: no clustering"]
    return ClusteringInfeasible(
        f"No clustering satisfies the settings in {len(failed)} reach component(s).",
        conflicts=[c for _sub, exc in failed for c in exc.conflicts],
        details=details,
        sites=[str(s) for sub, _exc in failed for s in sub.sites.index],
    )


def _mended_clustering(
    sub: ClusteringData,
    options: ClusteringOptions,
    cache: ComponentCache | None,
) -> tuple[ClusteringIndex, ClusteringSolution, list[str]] | None:
    """A clustering of all but a few sites of a component, by the mended greedy
    (:func:`solvers.heuristics.unservable_sites_heuristic`): the index of the kept sites, their
    clustering (checked against ``options``) and the left-out site ids; None when it finds none.
    Inside :func:`component_cache` the search runs once per component."""
    from solvers.heuristics import unservable_sites_heuristic

    key = component_key(sub)
    known = cache.mended.get(key) if cache is not None else None
    if known is None:
        idx = prepare(sub, options)
        kept: list[dict[str, str]] = []
        found = unservable_sites_heuristic(idx, options, kept=kept)
        if found is None or not kept:
            return None
        known = ([str(idx.site_ids[i]) for i in found], kept[-1])
        if cache is not None:
            cache.mended[key] = known
            cache.owner.update(kept[-1])
    dropped, owner = known
    kept_data = restrict_to_sites(sub, [str(s) for s in sub.sites.index if str(s) not in set(dropped)])
    kept_idx = prepare(kept_data, options)
    sol = ComponentCache(owner=dict(owner)).known_clustering(kept_idx, options)
    return None if sol is None else (kept_idx, sol, dropped)


def restrict_to_sites(data: ClusteringData, sites: Iterable[str]) -> ClusteringData:
    """The instance on ``sites`` alone: those sites, the pairs that serve them, and the candidates
    those pairs name or that are among the sites. For a union of whole reach components (as
    :attr:`ClusteringInfeasible.sites`) this is exactly their part of the model: no pair or
    candidate of another component is lost or kept."""
    keep = {str(s) for s in sites}
    site_ids = data.sites.index.astype(str)
    pairs = data.pairs[data.pairs["site"].astype(str).isin(keep)]
    cands = keep | set(pairs["candidate"].astype(str))
    return ClusteringData(
        sites=data.sites[site_ids.isin(keep)],
        candidates=data.candidates[data.candidates.index.astype(str).isin(cands)],
        pairs=pairs,
    )


def solve_clustering_by_component(
    data: ClusteringData,
    options: ClusteringOptions | None = None,
    solver_options: SolverOptions | None = None,
    *,
    unsolved: Literal["stop", "standalone"] = "stop",
) -> SolveResult:
    """:func:`solve_clustering` one connected component of the reach graph at a time.

    Without global budgets (``max_masters``, ``max_cost``) no constraint spans two components
    and the objective is a sum over them, so the optimum is the union of the components'
    optima (only the automatic loss tie-break weight is chosen per component). Objective,
    bound, keys, masters and cost are summed; the status is OPTIMAL when every component is,
    FEASIBLE otherwise.

    Time: the limits handed to the components sum to at most ``solver_options.time_limit_s``
    (and never reach past it in wall time). Components the greedy heuristic cannot cluster are
    solved first and get at least half of what is left split among them; the others get their
    share of what is left by pairs, at least :data:`COMPONENT_MIN_S` while that fits (see
    :func:`_component_limit`); the heuristic runs once per component, before any MILP, so the
    wall clock may pass the limit by the heuristic's time, but only for a component that depends
    on the MILP (the others are also held to the wall clock). A component whose MILP finds nothing in its time takes the
    heuristic's clustering (``info["source"]`` says how many did); a component without a bound
    from the solver takes :func:`fallback_bound`, so the summed bound is always valid. Only a
    component that neither the MILP (after one retry with what is left) nor the heuristic can
    cluster ends the search, with its status and that component's sites in
    ``info["component_sites"]`` (where to look for unservable sites); with
    ``unsolved="standalone"`` such a component is instead left out and the search goes on: its
    sites are listed in ``info["standalone_sites"]`` (with ``info["standalone_reason"]``), the
    result clusters the other sites, and for ``max_keys`` the bound includes the left-out
    components' :func:`fallback_bound` (so it bounds the whole instance and the gap shows what
    leaving them out may cost; for ``min_cost`` they add nothing to cost or bound). With a global
    budget this is :func:`solve_clustering`.

    Inside :func:`component_cache` the heuristics and the results of components already solved
    (same sites, candidates, pairs and options) are taken from the cache instead of being redone,
    and a clustering the elastic model of :func:`unservable_sites` found serves as the start and
    fallback of a component the heuristic cannot cluster.

    Raises :class:`ClusteringInfeasible` when a component has no clustering; the components that
    depend on the MILP are solved first, and after the first infeasible one the others of at most
    :data:`FAILED_SCAN_MAX_SITES` sites are still tried, so the exception names every infeasible
    component found and carries their sites in ``sites`` (the conflict lies among them alone).
    """

    options = options or ClusteringOptions()
    solver_options = solver_options or SolverOptions()
    if options.max_masters is not None or options.max_cost is not None:
        return solve_clustering(data, options, solver_options)
    t0 = time.perf_counter()
    total_s = float(solver_options.time_limit_s)
    ids = pd.Index(sorted({str(i) for i in data.sites.index} | {str(c) for c in data.candidates.index}))
    a = ids.get_indexer(data.pairs["site"].astype(str))
    b = ids.get_indexer(data.pairs["candidate"].astype(str))
    n_comp, label = connected_components(
        sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids))), directed=False
    )
    if n_comp <= 1 and unsolved == "stop":
        return solve_clustering(data, options, solver_options)
    site_label = label[ids.get_indexer(data.sites.index.astype(str))]
    cand_label = label[ids.get_indexer(data.candidates.index.astype(str))]
    pair_label = label[a]
    cache = current_component_cache()
    ruled_out: set[int] = set()  # components the counting rules of diagnose() prove infeasible
    comps: list[tuple[ClusteringData, ClusteringIndex, ClusteringSolution | None, float, float]] = []
    for comp in np.unique(site_label):
        sub = ClusteringData(
            sites=data.sites[site_label == comp],
            candidates=data.candidates[cand_label == comp],
            pairs=data.pairs[pair_label == comp],
        )
        idx = prepare(sub, options)
        th = time.perf_counter()
        heur: ClusteringSolution | None = None
        if diagnose(idx, options)[0]:
            ruled_out.add(id(sub))
        else:
            heur = (
                cache.heuristic(sub, idx, options)[0]
                if cache is not None
                else heuristic_solution(idx, options, seed=options.heuristic_seed)
            )
        comps.append(
            (sub, idx, heur, float(max(1, int(np.count_nonzero(pair_label == comp)))), time.perf_counter() - th)
        )
    # components that depend on the MILP first, then the rest, smallest first
    comps.sort(key=lambda c: (c[2] is not None, c[3]))
    handed = 0.0
    n_fallback = 0
    parts: list[SolveResult] = []
    failed: list[tuple[ClusteringData, ClusteringInfeasible]] = []
    left_out: list[str] = []
    n_mended = 0
    trimmed: list[str] = []  # sites the mended greedy left out of components it clustered otherwise
    left_out_bound = 0.0
    for k, (sub, idx, heur, weight, heur_s) in enumerate(comps):
        if failed and (heur is not None or len(sub.sites) > FAILED_SCAN_MAX_SITES):
            break  # the infeasible components found so far are reported (see below)
        res: SolveResult | None = None
        for _try in range(1 if heur is not None else 2):
            left = max(0.0, total_s - handed)
            if heur is not None or unsolved == "standalone":  # held to the wall clock too (with "stop",
                # a component that depends on the MILP may pass it: without a clustering the search ends)
                left = min(left, max(0.0, total_s - (time.perf_counter() - t0)))
            rest = comps[k:]
            limit = _component_limit(
                left, weight, sum(c[3] for c in rest), len(rest), heur is None, sum(1 for c in rest if c[2] is None)
            )
            res = cache.result(sub, options, limit) if cache is not None else None
            if res is not None:  # solved on an earlier attempt: nothing handed, nothing redone
                break
            if limit <= 0.0 and id(sub) not in ruled_out:  # no time: building and presolving the model
                # would only pass the wall clock (HiGHS' presolve of a large component can take seconds)
                res = SolveResult(status=SolveStatus.TIME_LIMIT_NO_SOLUTION, solver="none (no time left)")
                break
            handed += limit
            try:
                if cache is not None:
                    cache.milp_runs += 1
                res = solve_clustering(
                    sub,
                    options,
                    dataclasses.replace(solver_options, time_limit_s=limit),
                    known_heuristic=(heur, heur_s) if options.warm_start else None,
                )
            except ClusteringInfeasible as exc:
                failed.append((sub, exc))
                break
            if cache is not None:
                cache.keep(sub, options, limit, res)
            if res.has_solution:
                break
        if failed and failed[-1][0] is sub:
            continue
        assert res is not None
        if not res.has_solution:
            if heur is None:
                if failed:  # the infeasible components found so far are reported first
                    break
                if unsolved == "standalone":  # left out: its sites stand alone, the rest goes on
                    mended = None if id(sub) in ruled_out else _mended_clustering(sub, options, cache)
                    if mended is not None:  # the mended greedy clusters all but a few of its sites
                        kept_idx, sol, dropped = mended
                        trimmed += dropped
                        n_mended += 1
                        # max_keys: the whole component's counting bound; min_cost: the kept sites'
                        bound_c = fallback_bound(idx if options.objective == "max_keys" else kept_idx, options)
                        res = result_from_solution(
                            kept_idx,
                            options,
                            sol,
                            status=SolveStatus.FEASIBLE,
                            solver="heuristic",
                            info={"source": "mended greedy"},
                        )
                        parts.append(dataclasses.replace(res, bound=bound_c, gap=relative_gap(res.objective, bound_c)))
                        continue
                    left_out += [str(x) for x in sub.sites.index]
                    if options.objective == "max_keys":
                        left_out_bound += fallback_bound(idx, options)
                    continue
                res.info["component_sites"] = [str(x) for x in sub.sites.index]
                return res
            n_fallback += 1
            res = result_from_solution(
                idx,
                options,
                heur,
                status=SolveStatus.FEASIBLE,
                solve_time_s=res.solve_time_s,
                build_time_s=res.build_time_s,
                solver="heuristic",
                info={"source": "heuristic"},
            )
        fb = fallback_bound(idx, options)  # both bounds are valid: keep the tighter
        tighter = (
            fb
            if not math.isfinite(res.bound)
            else (min(res.bound, fb) if options.objective == "max_keys" else max(res.bound, fb))
        )
        if tighter != res.bound:
            res = dataclasses.replace(res, bound=tighter, gap=relative_gap(res.objective, tighter))
        parts.append(res)
    if failed:
        raise _merged_infeasible(failed)
    if not parts:  # every component was left out: no clustering at all
        return SolveResult(
            status=SolveStatus.TIME_LIMIT_NO_SOLUTION,
            bound=left_out_bound,
            solver="highs per component",
            info={"component_sites": left_out, "standalone_sites": left_out},
        )
    total = {
        k: float(sum(float(p.info.get(k, 0.0)) for p in parts))  # type: ignore[arg-type]
        for k in ("n_masters", "keys_per_attempt", "master_cost", "weighted_access_loss_db")
    }
    objective = float(sum(p.objective for p in parts))
    bound = (
        float(sum(p.bound for p in parts)) + left_out_bound if all(math.isfinite(p.bound) for p in parts) else math.nan
    )
    optimal = all(p.status is SolveStatus.OPTIMAL for p in parts)
    info: dict[str, object] = {
        **total,
        "n_masters": int(total["n_masters"]),
        "n_components": len(parts),
        "objective_name": options.objective,
        "objective_sense": "maximize" if options.objective == "max_keys" else "minimize",
        "source": "milp per reach component"
        + (f" ({n_fallback} of {len(parts)} by the heuristic: no MILP solution in time)" if n_fallback else "")
        + (
            f" ({n_mended} of {len(parts)} by the mended greedy: neither a MILP nor a greedy solution in time)"
            if n_mended
            else ""
        ),
        "heuristic_objective": float(
            sum(
                float(p.info["heuristic_objective"])
                if p.info.get("heuristic_objective") is not None  # type: ignore[arg-type]
                else p.objective
                for p in parts
            )
        ),
    }
    if trimmed:
        info["trimmed_sites"] = sorted(trimmed)
        info["trimmed_reason"] = (
            "left out by the mended greedy (solvers.heuristics.unservable_sites_heuristic) "
            "from a component without a clustering in time: not proven the fewest"
        )
    if left_out:
        info["standalone_sites"] = sorted(left_out)
        info["standalone_reason"] = (
            "no clustering of their reach component was found within its time limit "
            "(neither the MILP nor the heuristic)"
        )
        info["source"] = f"{info['source']}; {len(left_out)} site(s) of unsolved components left standalone"
    optimal = optimal and not left_out and not trimmed
    return SolveResult(
        status=SolveStatus.OPTIMAL if optimal else SolveStatus.FEASIBLE,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        solve_time_s=float(sum(p.solve_time_s for p in parts)),
        build_time_s=float(sum(p.build_time_s for p in parts)),
        solver="highs per component",
        tables={
            name: pd.concat([p.tables[name] for p in parts], ignore_index=True) for name in ("assignment", "clusters")
        },
        info=info,
    )
