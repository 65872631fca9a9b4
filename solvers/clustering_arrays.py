"""The clustering MILP as sparse arrays passed to HiGHS through ``highspy`` (large instances, where
Pyomo's build time dominates); also its elastic form (slack per row) for diagnoses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from solvers.base import SolverOptions
from solvers.clustering_data import (
    ClusteringIndex,
    ClusteringOptions,
)
from solvers.highs_driver import HighsRun, LinearArrays
from solvers.highs_driver import solve_arrays as solve_arrays_highs

logger = logging.getLogger(__name__)


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
    nc, npairs = idx.n_cands, idx.n_pairs
    oy, ox, om = 0, nc, nc + npairs
    n = nc + npairs + nc
    blocks = _row_blocks(idx, options, elastic=elastic)
    col_lower = np.zeros(n)
    col_upper = np.concatenate([np.ones(nc), np.ones(npairs), (idx.capacity // 2).astype(float)])
    if elastic:
        fx = np.flatnonzero(idx.fixed)
        if len(fx):
            a = sp.csr_matrix((np.ones(len(fx)), (np.arange(len(fx)), oy + fx)), shape=(len(fx), n))
            blocks.append(RowBlock("fixed-master", a, np.ones(len(fx)), np.full(len(fx), np.inf)))
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


def _row_blocks(idx: ClusteringIndex, options: ClusteringOptions, *, elastic: bool) -> list[RowBlock]:
    """The constraint families as row blocks over the columns ``[y | x | ekert]`` (``assign-open``
    only with ``options.strong_linking`` and not ``elastic``; the budgets and the key target only
    when set)."""
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

    return blocks


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
