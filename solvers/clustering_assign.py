"""Step 2 of the clustering heuristic (:mod:`solvers.heuristics`): assigning sites to fixed masters
(a transportation LP, integral by total unimodularity), and the mended greedy that finds sites to
leave out so that the rest clusters (:func:`unservable_sites_heuristic`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from solvers.clustering_data import (
    ClusteringIndex,
    ClusteringOptions,
    ClusteringSolution,
    check_solution,
)
from solvers.clustering_greedy import choose_masters, past, repair_masters

logger = logging.getLogger(__name__)


def assign_sites(idx: ClusteringIndex, open_: np.ndarray) -> ClusteringSolution | None:
    """Optimal assignment for fixed masters (step 2): transportation LP, integral by total
    unimodularity. ``None`` when no assignment respects reach and cluster sizes."""
    owner = np.full(idx.n_sites, -1, dtype=np.int64)
    own = np.flatnonzero(open_ & (idx.cand_site >= 0))
    owner[idx.cand_site[own]] = own
    is_master_site = owner >= 0
    keep = open_[idx.pair_cand] & ~is_master_site[idx.pair_site]
    pairs = np.flatnonzero(keep)
    slaves = np.flatnonzero(~is_master_site)
    if len(slaves) == 0:
        sol = ClusteringSolution(open_.copy(), owner)
        return sol
    if len(pairs) == 0:
        return None
    row_of_site = np.full(idx.n_sites, -1, dtype=np.int64)
    row_of_site[slaves] = np.arange(len(slaves))
    open_c = np.flatnonzero(open_)
    row_of_cand = np.full(idx.n_cands, -1, dtype=np.int64)
    row_of_cand[open_c] = np.arange(len(open_c))
    k = np.arange(len(pairs))
    a_eq = sp.csr_matrix(
        (np.ones(len(pairs)), (row_of_site[idx.pair_site[pairs]], k)),
        shape=(len(slaves), len(pairs)),
    )
    a_size = sp.csr_matrix(
        (np.ones(len(pairs)), (row_of_cand[idx.pair_cand[pairs]], k)),
        shape=(len(open_c), len(pairs)),
    )
    a_ub = sp.vstack([a_size, -a_size], format="csr")
    b_ub = np.concatenate([idx.capacity[open_c].astype(float), -idx.min_size[open_c].astype(float)])
    cost = idx.demand[idx.pair_site[pairs]] * idx.pair_loss_db[pairs]
    cost = cost + 1e-9  # keep the vertex unique-ish; any vertex is integral
    res = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=np.ones(len(slaves)),
        bounds=(0, 1),
        method="highs-ds",
    )
    if res.status != 0 or res.x is None:
        return None
    x = res.x
    if np.any(np.abs(x - np.round(x)) > 1e-6):
        logger.warning("transportation LP returned a fractional vertex; rounding")
    chosen = pairs[x > 0.5]
    owner[idx.pair_site[chosen]] = idx.pair_cand[chosen]
    if np.any(owner < 0):
        return None
    return ClusteringSolution(open_.copy(), owner)


def _elastic_assignment(idx: ClusteringIndex, open_: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Transportation LP of :func:`assign_sites` with two penalised slacks: a slave site may stay
    unassigned, an open master may fall short of its ``min_size``. Returns (unassigned site
    indices, short master indices); the matrix stays totally unimodular, so the vertex is integral."""
    is_master = np.zeros(idx.n_sites, dtype=bool)
    is_master[idx.cand_site[open_ & (idx.cand_site >= 0)]] = True
    pairs = np.flatnonzero(open_[idx.pair_cand] & ~is_master[idx.pair_site])
    slaves = np.flatnonzero(~is_master)
    open_c = np.flatnonzero(open_)
    row_of_site = np.full(idx.n_sites, -1, dtype=np.int64)
    row_of_site[slaves] = np.arange(len(slaves))
    row_of_cand = np.full(idx.n_cands, -1, dtype=np.int64)
    row_of_cand[open_c] = np.arange(len(open_c))
    n_p, n_s, n_c = len(pairs), len(slaves), len(open_c)
    k = np.arange(n_p)
    # columns: pairs, site slack u (n_s), master shortfall v (n_c)
    a_eq = sp.hstack(
        [
            sp.csr_matrix((np.ones(n_p), (row_of_site[idx.pair_site[pairs]], k)), shape=(n_s, n_p)),
            sp.identity(n_s, format="csr"),
            sp.csr_matrix((n_s, n_c)),
        ],
        format="csr",
    )
    size = sp.csr_matrix((np.ones(n_p), (row_of_cand[idx.pair_cand[pairs]], k)), shape=(n_c, n_p))
    a_ub = sp.vstack(
        [
            sp.hstack([size, sp.csr_matrix((n_c, n_s)), sp.csr_matrix((n_c, n_c))]),
            sp.hstack([-size, sp.csr_matrix((n_c, n_s)), -sp.identity(n_c)]),
        ],
        format="csr",
    )
    b_ub = np.concatenate([idx.capacity[open_c].astype(float), -idx.min_size[open_c].astype(float)])
    big = 1.0 + float(np.sum(idx.demand[idx.pair_site[pairs]] * idx.pair_loss_db[pairs]))
    cost = np.concatenate(
        [idx.demand[idx.pair_site[pairs]] * idx.pair_loss_db[pairs] + 1e-9, np.full(n_s, big), np.full(n_c, big)]
    )
    res = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=np.ones(n_s),
        bounds=[(0, 1)] * (n_p + n_s) + [(0, None)] * n_c,
        method="highs-ds",
    )
    if res.status != 0 or res.x is None:
        return None
    x = res.x
    return slaves[x[n_p : n_p + n_s] > 0.5], open_c[x[n_p + n_s :] > 0.5]


def _without_sites(idx: ClusteringIndex, gone: np.ndarray) -> tuple[ClusteringIndex, np.ndarray]:
    """``idx`` without the sites flagged in ``gone`` (and their candidates and pairs); also the
    mask of the candidates kept."""
    keep_pairs = ~gone[idx.pair_site]
    keep_cands = ~((idx.cand_site >= 0) & gone[np.maximum(idx.cand_site, 0)])
    keep_pairs &= keep_cands[idx.pair_cand]
    new_site = np.cumsum(~gone) - 1
    new_cand = np.cumsum(keep_cands) - 1
    cs = idx.cand_site[keep_cands]
    sc = idx.site_cand[~gone]
    reduced = dataclasses.replace(
        idx,
        site_ids=idx.site_ids[~gone],
        cand_ids=idx.cand_ids[keep_cands],
        cand_site=np.where(cs >= 0, new_site[np.maximum(cs, 0)], -1),
        cost=idx.cost[keep_cands],
        capacity=idx.capacity[keep_cands],
        fixed=idx.fixed[keep_cands],
        demand=idx.demand[~gone],
        pair_site=new_site[idx.pair_site[keep_pairs]],
        pair_cand=new_cand[idx.pair_cand[keep_pairs]],
        pair_distance_km=idx.pair_distance_km[keep_pairs],
        pair_loss_db=idx.pair_loss_db[keep_pairs],
        min_size=idx.min_size[keep_cands],
        site_cand=np.where(sc >= 0, new_cand[np.maximum(sc, 0)], -1),
    )
    return reduced, keep_cands


def unservable_sites_heuristic(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    *,
    rounds: int = 10,
    kept: list[dict[str, str]] | None = None,
    deadline: float | None = None,
) -> list[int] | None:
    """Sites (indices) to leave out so that the rest clusters, found without a MILP: the greedy
    masters mended by :func:`repair_masters`; then, up to ``rounds`` times, the transportation LP
    with penalised slacks (:func:`_elastic_assignment`): masters that fall short of their
    ``min_size`` are closed (and the masters mended again) until none is short, and the slave
    sites the LP leaves unassigned are the answer.

    Guarantees: without the returned sites, the final masters admit an assignment meeting reach
    and cluster sizes, checked by :func:`assign_sites` and
    :func:`solvers.clustering.check_solution` on the reduced instance; so leaving them out makes a
    clustering exist. Not proven to be the fewest (the elastic MILP of
    :func:`solvers.clustering.unservable_sites` is). ``None`` when no such set was found. When ``kept``
    is given, the clustering of the other sites is appended to it as a map from site id to its
    master's id (a master maps to itself). After ``deadline`` (a :func:`time.perf_counter`
    instant) no further round starts (the answer is then None).
    """
    open_ = repair_masters(idx, choose_masters(idx, options))
    for _round in range(rounds):
        if _round > 0 and past(deadline):
            return None
        found = _elastic_assignment(idx, open_)
        if found is None:
            return None
        out, short = found
        if len(short):
            open_[short[~idx.fixed[short]]] = False
            if idx.fixed[short].any():
                return None
            open_ = repair_masters(idx, open_)
            continue
        gone = np.zeros(idx.n_sites, dtype=bool)
        gone[out] = True
        reduced, keep_cands = _without_sites(idx, gone)
        sol = assign_sites(reduced, open_[keep_cands])
        if sol is not None and kept is not None and not check_solution(reduced, options, sol):
            kept.append({str(reduced.site_ids[i]): str(reduced.cand_ids[c]) for i, c in enumerate(sol.owner)})
        if sol is None or check_solution(reduced, options, sol):
            return None
        return [int(i) for i in out]
    return None
