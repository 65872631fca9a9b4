"""Step 3 of the clustering heuristic (:mod:`solvers.heuristics`): local search. ``max_keys``: slave
moves between odd clusters (:func:`improve_parity`) and further masters in batches
(:func:`open_more_masters`); ``min_cost``: closing masters (:func:`close_masters`).
"""

from __future__ import annotations

import logging

import numpy as np

from solvers.clustering_assign import assign_sites
from solvers.clustering_data import (
    ClusteringIndex,
    ClusteringOptions,
    ClusteringSolution,
    check_solution,
    solution_terms,
)
from solvers.clustering_greedy import _csr_by, _openable, past

logger = logging.getLogger(__name__)


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
