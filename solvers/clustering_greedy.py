"""Step 1 of the clustering heuristic (:mod:`solvers.heuristics`): the masters.

Lazy greedy coverage (:func:`greedy_cover`), extra masters for ``max_keys``
(:func:`add_extra_masters`), and the mending of a choice no assignment can complete
(:func:`repair_masters`); also :func:`past`, the deadline test the heuristics share.
"""

from __future__ import annotations

import heapq
import logging
import math
import time

import numpy as np

from solvers.clustering_data import (
    ClusteringIndex,
    ClusteringOptions,
)

logger = logging.getLogger(__name__)


def _csr_by(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Order and pointer arrays grouping pair indices by ``keys`` (values in ``0..n-1``)."""
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return order, ptr


def _openable(idx: ClusteringIndex) -> np.ndarray:
    n_reach = np.bincount(idx.pair_cand, minlength=idx.n_cands)
    return (idx.min_size <= idx.capacity) & (idx.min_size <= n_reach)


def choose_masters(idx: ClusteringIndex, options: ClusteringOptions, *, extra: int = 0) -> np.ndarray:
    """Greedy coverage choice of masters (step 1); ``extra`` more masters for ``max_keys``."""
    open_, cost_left = greedy_cover(idx, options)
    return add_extra_masters(idx, options, open_, cost_left, extra)


def greedy_cover(idx: ClusteringIndex, options: ClusteringOptions) -> tuple[np.ndarray, float]:
    """The lazy greedy coverage of step 1: fixed masters, then the candidate covering the most
    not-yet-covered sites (per unit cost for ``min_cost``) until all are covered or the master or
    cost budget is spent. Returns the open masters and the cost budget left (inf without one)."""
    open_ = idx.fixed.copy()
    openable = _openable(idx) | idx.fixed
    covered = np.zeros(idx.n_sites, dtype=bool)
    # pairs of each candidate sorted by loss so that a master covers its nearest sites first
    by_loss = np.lexsort((idx.pair_loss_db, idx.pair_cand))
    cptr = np.zeros(idx.n_cands + 1, dtype=np.int64)
    np.cumsum(np.bincount(idx.pair_cand, minlength=idx.n_cands), out=cptr[1:])
    near_sites = idx.pair_site[by_loss]  # candidate c's sites, nearest first: near_sites[cptr[c]:cptr[c+1]]
    budget = options.max_masters if options.max_masters is not None else idx.n_cands
    cost_left = options.max_cost if options.max_cost is not None else math.inf

    def cover(c: int) -> None:
        if idx.cand_site[c] >= 0:
            covered[idx.cand_site[c]] = True
        sites = near_sites[cptr[c] : cptr[c + 1]]
        free = sites[~covered[sites]][: int(idx.capacity[c])]
        covered[free] = True

    def score(c: int) -> float:
        sites = near_sites[cptr[c] : cptr[c + 1]]
        gain = min(int(idx.capacity[c]), int(np.count_nonzero(~covered[sites])))
        if idx.cand_site[c] >= 0 and not covered[idx.cand_site[c]]:
            gain += 1
        if options.objective == "min_cost":
            return gain / max(float(idx.cost[c]), 1e-9)
        return float(gain)

    for c0 in np.flatnonzero(open_).tolist():
        cover(c0)
        cost_left -= float(idx.cost[c0])
    heap: list[tuple[float, int]] = [(-score(c1), c1) for c1 in np.flatnonzero(openable & ~open_).tolist()]
    heapq.heapify(heap)
    n_open = int(open_.sum())
    while heap and not covered.all() and n_open < budget:
        _neg, c = heapq.heappop(heap)
        s = score(c)
        if s <= 0:
            continue
        if heap and s < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-s, c))
            continue
        if float(idx.cost[c]) > cost_left + 1e-9:
            continue
        open_[c] = True
        n_open += 1
        cost_left -= float(idx.cost[c])
        cover(c)
    return open_, cost_left


def add_extra_masters(
    idx: ClusteringIndex, options: ClusteringOptions, open_: np.ndarray, cost_left: float, extra: int
) -> np.ndarray:
    """``open_`` with up to ``extra`` more openable masters (within the master and cost budgets),
    preferring candidates that reach many sites (easy to fill) and are not sites (no slave lost)."""
    open_ = open_.copy()
    if extra <= 0:
        return open_
    budget = options.max_masters if options.max_masters is not None else idx.n_cands
    n_open = int(open_.sum())
    n_reach = np.bincount(idx.pair_cand, minlength=idx.n_cands)
    rest = np.flatnonzero((_openable(idx) | idx.fixed) & ~open_)
    rest = rest[np.lexsort((-n_reach[rest], idx.cand_site[rest] >= 0))]
    for c in rest[: max(0, min(extra, budget - n_open))]:
        if float(idx.cost[c]) <= cost_left + 1e-9:
            open_[c] = True
            cost_left -= float(idx.cost[c])
    return open_


REPAIR_ROUNDS = 50
"""Most rounds of :func:`repair_masters` (each round fixes every starved master and uncovered site)."""


def repair_masters(idx: ClusteringIndex, open_: np.ndarray, *, rounds: int = REPAIR_ROUNDS) -> np.ndarray:
    """Mend a greedy choice of masters that no assignment can complete (step 1b).

    The greedy may open a site as a master that another master needs as a slave (a chain's end:
    site ``s`` is reached only by ``c``, and ``c`` reaches only ``s`` and a site the greedy made a
    master), leaving a master with fewer than ``min_size`` sites it can serve and a site no
    master reaches. Each round: close every open, non-fixed master that reaches fewer than its
    ``min_size`` non-master sites; then for every site that no open master reaches (and that is
    no master) open the candidate reaching it (or the site itself) that reaches the most
    non-master sites, and if that is still fewer than its ``min_size``, close the non-fixed site
    masters it reaches so that they become its slaves (they are not reopened, nor is a master
    closed as starved twice). Stops when nothing changes or after
    ``rounds`` rounds. Guarantees only a set of masters (fixed ones stay open); whether it can be
    completed is for :func:`assign_sites` to say.
    """
    open_ = open_.copy()
    openable = _openable(idx) | idx.fixed  # a master closed to serve as a slave is not reopened
    has_site = idx.cand_site >= 0
    by_site, sptr = _csr_by(idx.pair_site, idx.n_sites)
    by_cand, cptr = _csr_by(idx.pair_cand, idx.n_cands)
    closed = np.zeros(idx.n_cands, dtype=np.int64)
    for _round in range(rounds):
        changed = False
        while True:  # close starved masters
            is_master = np.zeros(idx.n_sites, dtype=bool)
            is_master[idx.cand_site[open_ & has_site]] = True
            free = ~is_master[idx.pair_site]
            reach = np.bincount(idx.pair_cand[free], minlength=idx.n_cands)
            starved = open_ & (reach < idx.min_size) & ~idx.fixed
            if not starved.any():
                break
            open_[starved] = False
            closed[starved] += 1
            openable[closed >= 2] = False  # starved twice: not reopened (no endless swaps)
            changed = True
        live = open_[idx.pair_cand] & free
        reached = np.zeros(idx.n_sites, dtype=bool)
        reached[idx.pair_site[live]] = True
        uncovered = np.flatnonzero(~reached & ~is_master)
        for s in uncovered.tolist():
            if is_master[s] or reached[s]:
                continue
            cands = idx.pair_cand[by_site[sptr[s] : sptr[s + 1]]]
            if idx.site_cand[s] >= 0:
                cands = np.append(cands, idx.site_cand[s])
            cands = cands[openable[cands] & ~open_[cands]]
            if len(cands) == 0:
                continue
            now = [np.count_nonzero(~is_master[idx.pair_site[by_cand[cptr[c] : cptr[c + 1]]]]) for c in cands]
            c = int(cands[int(np.argmax(now))])
            open_[c] = True
            changed = True
            if idx.cand_site[c] >= 0:
                is_master[idx.cand_site[c]] = True
            mine = by_cand[cptr[c] : cptr[c + 1]]
            reached[idx.pair_site[mine]] = True
            if max(now) < idx.min_size[c]:  # take site masters it reaches as its slaves
                for t in idx.pair_site[mine].tolist():
                    m = int(idx.site_cand[t]) if idx.site_cand[t] >= 0 else -1
                    if m >= 0 and open_[m] and not idx.fixed[m]:
                        open_[m] = False
                        openable[m] = False
                        is_master[t] = False
        if not changed:
            break
    return open_


def past(deadline: float | None) -> bool:
    """Whether ``deadline`` (a :func:`time.perf_counter` instant; None: none) has passed."""
    return deadline is not None and time.perf_counter() >= deadline
