"""Heuristics for the clustering problem of :mod:`solvers.clustering`.

Used as the MILP's warm start and as the baseline the report compares against.
Three steps:

1. **masters** — lazy greedy coverage: fixed masters first, then repeatedly the candidate that
   covers the most not-yet-covered sites within reach (up to its capacity; per unit cost for
   ``min_cost``), until every site is covered or the budget is spent; for ``max_keys`` further
   masters are opened while Eq. 6 says one more cluster pays (``R_mdi*N_m`` against the
   ``R_ekr*N_s/2`` a site master gives up as a slave).
2. **assignment** — with the masters fixed, assigning sites is a transportation problem
   (bipartite, lower/upper cluster sizes): its LP has a totally unimodular matrix, so the
   simplex vertex solved by HiGHS (``scipy.optimize.linprog``) is an integral assignment that
   minimises the demand-weighted access loss.
3. **local search** — for ``max_keys``: move a slave from one odd cluster to another odd
   cluster within reach (each move gains one Ekert91 pair, Eq. 5); for ``min_cost``: close a
   master when the others can absorb its sites.

Guarantees: a returned solution satisfies every constraint family (it is checked with
:func:`solvers.clustering.check_solution`); ``None`` means the heuristic found no feasible
clustering (the MILP may still find one).
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import math
import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from solvers.base import SolveResult, SolveStatus
from solvers.clustering_data import (
    ClusteringData,
    ClusteringIndex,
    ClusteringInfeasible,
    ClusteringOptions,
    ClusteringSolution,
    check_solution,
    diagnose,
    prepare,
    result_from_solution,
    solution_terms,
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


def improve_parity(idx: ClusteringIndex, sol: ClusteringSolution, *, max_rounds: int = 20) -> ClusteringSolution:
    """Local search for ``max_keys`` (step 3): move a slave between two odd clusters.

    Each move keeps every constraint and raises the total Ekert91 pairs by one."""
    owner = sol.owner.copy()
    is_master_site = (idx.site_cand >= 0) & (owner == idx.site_cand)
    size = np.bincount(owner[~is_master_site], minlength=idx.n_cands)
    by_site, sptr = _csr_by(idx.pair_site, idx.n_sites)
    for _ in range(max_rounds):
        moved = 0
        odd = np.flatnonzero(sol.open & (size % 2 == 1))
        odd_set = np.zeros(idx.n_cands, dtype=bool)
        odd_set[odd] = True
        for a in odd:
            if not odd_set[a] or size[a] - 1 < idx.min_size[a]:
                continue
            members = np.flatnonzero((owner == a) & ~is_master_site)
            best: tuple[float, int, int] | None = None
            for s in members:
                ps = by_site[sptr[s] : sptr[s + 1]]
                cands = idx.pair_cand[ps]
                ok = odd_set[cands] & (cands != a) & (size[cands] < idx.capacity[cands])
                for p, b in zip(ps[ok], cands[ok], strict=True):
                    d = float(idx.pair_loss_db[p]) * idx.demand[s]
                    if best is None or d < best[0]:
                        best = (d, int(s), int(b))
            if best is not None:
                _d, s_move, b = best
                owner[s_move] = b
                size[a] -= 1
                size[b] += 1
                odd_set[a] = odd_set[b] = False
                moved += 1
        if moved == 0:
            break
    return _parity_chains(idx, ClusteringSolution(sol.open.copy(), owner), size, is_master_site)


def _parity_chains(
    idx: ClusteringIndex,
    sol: ClusteringSolution,
    size: np.ndarray,
    is_master_site: np.ndarray,
    *,
    max_chains: int = 10_000,
) -> ClusteringSolution:
    """Chains of slave moves ``A -> C1 -> ... -> B`` between two odd clusters A and B.

    Every intermediate cluster gives one slave and receives one (its size is unchanged); A
    shrinks by one (kept >= its least size) and B grows by one (kept <= capacity), so the
    total Ekert91 pairs rises by one per chain. Found by breadth-first search over clusters
    (an arc X -> Y when a slave of X is within reach of Y)."""
    owner = sol.owner.copy()
    slave_pair = ~is_master_site[idx.pair_site]
    failed = np.zeros(idx.n_cands, dtype=bool)
    for _ in range(max_chains):
        odd = sol.open & (size % 2 == 1)
        sources = np.flatnonzero(odd & (size - 1 >= idx.min_size) & ~failed)
        if not len(sources):
            break
        cur = owner[idx.pair_site]
        ok = slave_pair & (cur != idx.pair_cand) & sol.open[idx.pair_cand]
        arc_from, arc_to, arc_site = cur[ok], idx.pair_cand[ok], idx.pair_site[ok]
        order = np.argsort(arc_from, kind="stable")
        arc_from, arc_to, arc_site = arc_from[order], arc_to[order], arc_site[order]
        ptr = np.searchsorted(arc_from, np.arange(idx.n_cands + 1))
        a = int(sources[0])
        parent = {a: (-1, -1)}
        queue = [a]
        target = -1
        head = 0
        while head < len(queue) and target < 0:
            x = queue[head]
            head += 1
            for k in range(ptr[x], ptr[x + 1]):
                y = int(arc_to[k])
                if y in parent:
                    continue
                parent[y] = (x, int(arc_site[k]))
                if odd[y] and y != a and size[y] < idx.capacity[y]:
                    target = y
                    break
                queue.append(y)
        if target < 0:
            failed[a] = True
            continue
        y = target
        while y != a:
            x, s = parent[y]
            owner[s] = y
            y = x
        size[a] -= 1
        size[target] += 1
    return ClusteringSolution(sol.open.copy(), owner)


def close_masters(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    sol: ClusteringSolution,
    *,
    max_tries: int = 40,
    deadline: float | None = None,
) -> ClusteringSolution:
    """Local search for ``min_cost``: close the costliest masters whose sites the rest can absorb
    (costliest first, then the smallest clusters; at most ``max_tries`` re-assignments, none after
    ``deadline``)."""
    best = sol
    is_master_site = (idx.site_cand >= 0) & (sol.owner == idx.site_cand)
    size = np.bincount(sol.owner[~is_master_site], minlength=idx.n_cands)
    order = np.lexsort((size, -idx.cost))
    tries = 0
    for c in order:
        if not best.open[c] or idx.fixed[c] or idx.cost[c] <= 0:
            continue
        if tries >= max_tries or (tries > 0 and past(deadline)):
            break
        tries += 1
        trial = best.open.copy()
        trial[c] = False
        cand = assign_sites(idx, trial)
        if cand is not None and not check_solution(idx, options, cand):
            best = cand
    return best


def _extra_masters(idx: ClusteringIndex, sol: ClusteringSolution, k: int) -> np.ndarray:
    """Up to ``k`` closed candidates that can take slaves from clusters with spare slaves.

    Score of a candidate: reachable slaves whose cluster is above its least size; candidates
    are picked greedily by score, never two within reach of the same site, and a site candidate
    only when its own cluster can spare it."""
    owner = sol.owner
    is_master_site = (idx.site_cand >= 0) & (owner == idx.site_cand)
    size = np.bincount(owner[~is_master_site], minlength=idx.n_cands)
    spare = size - idx.min_size
    t = idx.pair_site
    donor = ~is_master_site[t] & (spare[owner[t]] >= 1) & (owner[t] != idx.pair_cand)
    score = np.bincount(idx.pair_cand[donor], minlength=idx.n_cands)
    own_ok = (idx.cand_site < 0) | (spare[owner[np.maximum(idx.cand_site, 0)]] >= 1)
    eligible = ~sol.open & _openable(idx) & own_ok & (score >= idx.min_size + 1)
    by_cand, cptr = _csr_by(idx.pair_cand, idx.n_cands)
    blocked = np.zeros(idx.n_sites, dtype=bool)
    picked: list[int] = []
    for c in np.flatnonzero(eligible)[np.argsort(-score[eligible], kind="stable")].tolist():
        if len(picked) >= k:
            break
        sites = idx.pair_site[by_cand[cptr[c] : cptr[c + 1]]]
        if blocked[sites].any() or (idx.cand_site[c] >= 0 and blocked[idx.cand_site[c]]):
            continue
        blocked[sites] = True
        if idx.cand_site[c] >= 0:
            blocked[idx.cand_site[c]] = True
        picked.append(c)
    out = np.zeros(idx.n_cands, dtype=bool)
    out[picked] = True
    return out


def open_more_masters(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    sol: ClusteringSolution,
    *,
    rounds: int = 6,
    deadline: float | None = None,
) -> ClusteringSolution:
    """For ``max_keys`` when one more cluster pays: open further masters in batches (halving a
    batch when its assignment is infeasible), keeping each batch only if it raises the objective;
    no new batch is tried after ``deadline``."""
    budget = options.max_masters if options.max_masters is not None else idx.n_cands
    best = sol
    best_obj = solution_terms(idx, options, sol)["objective"]
    for _ in range(rounds):
        k = budget - int(best.open.sum())
        improved = False
        while k >= 1 and not improved:
            if past(deadline):
                return best
            add = _extra_masters(idx, best, k)
            if not add.any():
                return best
            trial = assign_sites(idx, best.open | add)
            if trial is not None:
                trial = improve_parity(idx, trial)
                if not check_solution(idx, options, trial):
                    obj = solution_terms(idx, options, trial)["objective"]
                    if obj > best_obj + 1e-12:
                        best, best_obj, improved = trial, obj, True
                        break
            k //= 2
        if not improved:
            break
    return best


def _better(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    a: ClusteringSolution,
    b: ClusteringSolution | None,
) -> bool:
    if b is None:
        return True
    ta, tb = (
        solution_terms(idx, options, a)["objective"],
        solution_terms(idx, options, b)["objective"],
    )
    return ta > tb if options.objective == "max_keys" else ta < tb


def past(deadline: float | None) -> bool:
    """Whether ``deadline`` (a :func:`time.perf_counter` instant; None: none) has passed."""
    return deadline is not None and time.perf_counter() >= deadline


def heuristic_solution(
    idx: ClusteringIndex, options: ClusteringOptions, *, seed: int = 0, deadline: float | None = None
) -> ClusteringSolution | None:
    """Best clustering found by steps 1–3 (see module docstring); ``None`` if none is feasible.

    ``deadline``: see :func:`heuristic_search` (the best clustering found by then).
    ``seed`` is accepted for reproducibility of future randomised moves; the current steps are
    deterministic.
    """
    del seed  # deterministic today; kept in the signature so callers record it
    return heuristic_search(idx, options, deadline=deadline)[0]


def heuristic_search(
    idx: ClusteringIndex, options: ClusteringOptions, *, deadline: float | None = None
) -> tuple[ClusteringSolution | None, bool]:
    """Steps 1–3 of the module docstring: the best clustering found (None if none) and whether the
    search ran to its end. With a ``deadline`` (a :func:`time.perf_counter` instant) the search
    stops at the first check after it: the first variant (greedy masters, assignment, local search)
    always runs whole, later variants and rounds of the local search only while time is left; a
    stopped search returns its best so far with ``False``. Without a deadline (or with time to
    spare) the result is exactly that of the full search."""
    base, cost_left = greedy_cover(idx, options)
    extras = [0]
    if options.objective == "max_keys":
        budget = options.max_masters if options.max_masters is not None else idx.n_cands
        site_gain = idx.key_mdi - idx.key_ekr / 2.0
        extra_loc = bool(np.any(idx.cand_site < 0))
        if (site_gain > 0 or (extra_loc and idx.key_mdi > 0)) and budget > 0:
            room = max(0, min(budget, idx.n_sites // max(1, int(idx.min_size.min()) + 1)) - int(base.sum()))
            extras += sorted({room, (3 * room) // 4, room // 2, room // 4} - {0}, reverse=True)
    best: ClusteringSolution | None = None
    for k, extra in enumerate(extras):
        if k > 0 and past(deadline):
            return best, False
        sol = _variant(idx, options, add_extra_masters(idx, options, base, cost_left, extra), deadline)
        if sol is not None and _better(idx, options, sol, best):
            best = sol
    if best is not None and options.objective == "max_keys" and len(extras) > 1:
        if past(deadline):
            return best, False
        best = open_more_masters(idx, options, best, deadline=deadline)
    return best, not past(deadline)


def _variant(
    idx: ClusteringIndex, options: ClusteringOptions, open_: np.ndarray, deadline: float | None
) -> ClusteringSolution | None:
    """One variant of the search: assign the sites to ``open_`` (mending the masters once if that
    fails), then the local search of the objective; None when no feasible clustering results."""
    sol = assign_sites(idx, open_)
    if sol is None:  # mend the greedy's masters (a chain's end) and try once more
        mended = repair_masters(idx, open_)
        sol = assign_sites(idx, mended) if not np.array_equal(mended, open_) else None
    if sol is None:
        return None
    if options.objective == "max_keys":
        sol = improve_parity(idx, sol)
    else:
        sol = close_masters(idx, options, sol, deadline=deadline)
    return None if check_solution(idx, options, sol) else sol


def solve_clustering_heuristic(data: ClusteringData, options: ClusteringOptions | None = None) -> SolveResult:
    """The heuristic as a solver: a :class:`SolveResult` with status ``HEURISTIC`` and the same
    tables as :func:`solvers.clustering.solve_clustering`.

    Raises :class:`ClusteringInfeasible` when the cheap diagnosis finds a conflict or the
    heuristic finds no feasible clustering (the MILP may still find one).
    """
    options = options or ClusteringOptions()
    t0 = time.perf_counter()
    idx = prepare(data, options)
    conflicts, details = diagnose(idx, options)
    if conflicts:
        raise ClusteringInfeasible("No clustering satisfies the settings.", conflicts=conflicts, details=details)
    sol = heuristic_solution(idx, options, seed=options.heuristic_seed)
    elapsed = time.perf_counter() - t0
    if sol is None:
        raise ClusteringInfeasible("The heuristic found no feasible clustering.", conflicts=[], details=[
            "no violated family is known; solve the MILP for a proof or a diagnosis"])  # fmt: skip
    return result_from_solution(
        idx, options, sol, status=SolveStatus.HEURISTIC, solve_time_s=elapsed, build_time_s=0.0,
        solver="heuristic", info={"source": "heuristic", "seed": options.heuristic_seed},
    )  # fmt: skip
