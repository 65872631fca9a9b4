"""Scalable pieces of the trusted-relay selection: exact costs, greedy, swap search, bound.

Everything works on the *interior cost* ``C[a, b]``: the least sum of
``w_v = -log p_u(v)`` over the untrusted interior relays of an ``a``-``b``
path (end points excluded), so the best single-path security is
``exp(-C[a, b])``. Guarantees used throughout:

* Trusting one more relay ``v`` (its weight drops to 0) changes the matrix
  exactly to ``min(C, C[:, v] + C[v, :])`` (a Floyd–Warshall pivot: a best
  path either avoids ``v`` or is a best ``a``-``v`` path followed by a best
  ``v``-``b`` path; shortcutting a walk never costs more with ``w >= 0``).
  So the cost of *every* demand after adding *each* candidate is one
  vectorised minimum, and greedy costs ``O(B * |candidates| * |demands|)``
  instead of one all-pairs Dijkstra per candidate.
* :func:`token_lower_bound`: whatever ``B`` relays are trusted, demand ``d``
  costs at least its cost when it alone may pass ``B`` candidates for free
  (Dijkstra on (node, tokens used) layers). The maximum over demands is a
  valid lower bound on the optimal max-min cost (an upper bound on the best
  reachable minimum security), computed without a model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

logger = logging.getLogger(__name__)

#: bytes of float64 matrix the all-pairs cost may take before rows are restricted
_ROW_CHUNK = 256


def _arc_arrays(n: int, edges: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    tails = np.concatenate([e[:, 0], e[:, 1]])
    heads = np.concatenate([e[:, 1], e[:, 0]])
    return tails, heads


class OutOfTime(Exception):
    """A computation of this module reached its deadline before it finished."""


def interior_rows(
    n: int,
    tails: np.ndarray,
    heads: np.ndarray,
    w: np.ndarray,
    rows: np.ndarray,
    deadline: float | None = None,
    chunk: int = _ROW_CHUNK,
) -> np.ndarray:
    """Interior costs from each node of ``rows`` to every node (``len(rows) x n``) for node weights ``w``
    (already 0 at trusted relays); raises :class:`OutOfTime` when ``deadline`` passes between chunks."""
    # a tiny epsilon keeps zero-weight arcs in the sparse matrix (explicit zeros are dropped)
    mat = sp.csr_matrix((w[heads] + 1e-300, (tails, heads)), shape=(n, n))
    dist = np.empty((len(rows), n))
    for lo in range(0, len(rows), chunk):
        if deadline is not None and time.perf_counter() >= deadline:
            raise OutOfTime
        part = rows[lo : lo + chunk]
        dist[lo : lo + len(part)] = dijkstra(mat, directed=True, indices=part)
    dist -= w[None, :]
    dist[np.arange(len(rows)), rows] = 0.0
    np.maximum(dist, 0.0, out=dist)
    return dist


def interior_costs(n: int, edges: Sequence[tuple[int, int]], weight: np.ndarray, trusted: np.ndarray) -> np.ndarray:
    """All-pairs interior cost matrix ``C`` (``n x n``) for a trusted mask (exact, Dijkstra).

    ``C[a, a] = 0``; unreachable pairs are ``inf``. Weights are counted at arc
    heads and the head's own weight is removed, so end points never count.
    """
    tails, heads = _arc_arrays(n, edges)
    return interior_rows(n, tails, heads, np.where(trusted, 0.0, weight), np.arange(n))


#: Graphs of more nodes than this keep interior-cost rows only for the demand end points
#: (when they are fewer than half the nodes); smaller ones keep the full matrix.
TERMINAL_ROWS_MIN_NODES = 1000


def terminal_rows(n: int, n_terminals: int) -> bool:
    """Whether cost matrices over ``n`` nodes keep rows only for ``n_terminals`` demand end points."""
    return n > TERMINAL_ROWS_MIN_NODES and 2 * n_terminals < n


class CostRows:
    """Interior costs ``C[a, b]`` from the rows' nodes to every node, exact under trusting more relays.

    Small graphs (:func:`terminal_rows` false) keep all ``n`` rows, as :func:`interior_costs`;
    large ones only the demand end points ``terminals`` (``C`` is symmetric, so the cost from a
    candidate ``v`` to an end point ``t`` is read as ``C[t, v]``): ``|terminals| x n`` instead of
    ``n x n`` in memory and Dijkstra runs. Trusting ``v`` (:meth:`trust`) is the pivot
    ``C = min(C, C[:, v] + C[v, :])``, with row ``v`` computed by one Dijkstra run when it is not
    kept. Raises :class:`OutOfTime` when ``deadline`` passes while the rows are computed.
    """

    def __init__(
        self,
        n: int,
        edges: Sequence[tuple[int, int]],
        weight: np.ndarray,
        trusted: np.ndarray,
        terminals: np.ndarray,
        *,
        deadline: float | None = None,
    ) -> None:
        self.n, self.weight, self.mask = n, weight, trusted.copy()
        self.tails, self.heads = _arc_arrays(n, edges)
        terms = np.unique(np.asarray(terminals, dtype=np.int64))
        self.full = not terminal_rows(n, len(terms))
        self.rows = np.arange(n) if self.full else terms
        self.pos = np.full(n, -1, dtype=np.int64)
        self.pos[self.rows] = np.arange(len(self.rows))
        w = np.where(self.mask, 0.0, weight)
        self.C = interior_rows(n, self.tails, self.heads, w, self.rows, deadline, 64 if not self.full else _ROW_CHUNK)

    def demand_costs(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Interior cost of every demand ``src[i] -> dst[i]`` (end points are kept rows)."""
        return self.C[self.pos[src], dst]

    def into(self, ends: np.ndarray, vs: np.ndarray) -> np.ndarray:
        """Costs end point -> candidate, ``len(ends) x len(vs)``."""
        return self.C[np.ix_(self.pos[ends], vs)]

    def out_of(self, vs: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Costs candidate -> end point, ``len(vs) x len(ends)``."""
        if self.full:
            return self.C[np.ix_(vs, ends)]
        return self.C[np.ix_(self.pos[ends], vs)].T

    def trust(self, v: int) -> None:
        """Trust ``v``: every kept row becomes its cost with ``v`` trusted too (exact pivot)."""
        self.mask[v] = True
        if self.full:
            pivot(self.C, v)
            return
        w = np.where(self.mask, 0.0, self.weight)
        row = interior_rows(self.n, self.tails, self.heads, w, np.array([v]))[0]
        np.minimum(self.C, self.C[:, v, None] + row[None, :], out=self.C)


def lex_key(costs: np.ndarray) -> tuple[float, float]:
    """Max-min order of a demand cost vector: worst cost first, then the sum (geometric mean)."""
    return (round(float(costs.max()), 12), round(float(costs.sum()), 9))


class _Pairs:
    """Demands as a dense (unique sources x unique targets) block with multiplicities.

    When that block is small compared with the demand list (all pairs among
    cluster masters: about twice the demands), candidate evaluation is a
    broadcast over contiguous arrays instead of gathers per demand.
    """

    def __init__(self, src: np.ndarray, dst: np.ndarray) -> None:
        self.src, self.dst = src, dst
        self.su, self.si = np.unique(src, return_inverse=True)
        self.tu, self.ti = np.unique(dst, return_inverse=True)
        self.dense = len(self.su) * len(self.tu) <= 3 * len(src) + 64
        if self.dense:
            self.cnt = np.zeros((len(self.su), len(self.tu)))
            np.add.at(self.cnt, (self.si, self.ti), 1.0)
            self.has = self.cnt > 0

    def current(self, C: CostRows) -> np.ndarray:
        """Demand costs as the dense block (0 where no demand), or per demand."""
        if self.dense:
            return np.where(self.has, C.into(self.su, self.tu), 0.0)
        return C.demand_costs(self.src, self.dst)


def best_addition(C: CostRows, pool: Sequence[int], pairs: _Pairs) -> tuple[int, tuple[float, float]]:
    """The candidate of ``pool`` whose trusting gives the best :func:`lex_key` (first on ties)."""
    best_v, best_key = -1, (np.inf, np.inf)
    pool_a = np.asarray(list(pool), dtype=np.int64)
    cur = pairs.current(C)
    chunk = max(1, int(2_000_000 // max(1, cur.size))) if pairs.dense else max(1, int(4_000_000 // max(1, cur.size)))
    for lo in range(0, len(pool_a), chunk):
        vs = pool_a[lo : lo + chunk]
        if pairs.dense:
            a = C.into(pairs.su, vs).T  # (k, sources)
            b = C.out_of(vs, pairs.tu)  # (k, targets)
            new = np.minimum(cur[None, :, :], a[:, :, None] + b[:, None, :])
            worst = np.round(new.max(axis=(1, 2)), 12)
            total = np.round(np.einsum("kij,ij->k", new, pairs.cnt), 9)
        else:
            new = np.minimum(cur[None, :], C.into(pairs.src, vs).T + C.out_of(vs, pairs.dst))
            worst = np.round(new.max(axis=1), 12)
            total = np.round(new.sum(axis=1), 9)
        order = np.lexsort((np.arange(len(vs)), total, worst))
        k = int(order[0])
        key = (float(worst[k]), float(total[k]))
        if key < best_key:
            best_v, best_key = int(vs[k]), key
    return best_v, best_key


def pivot(C: np.ndarray, v: int) -> None:
    """Trust ``v`` in place: ``C = min(C, C[:, v] + C[v, :])``."""
    np.minimum(C, C[:, v, None] + C[None, v, :], out=C)


def greedy_select(
    n: int,
    edges: Sequence[tuple[int, int]],
    weight: np.ndarray,
    pool: Sequence[int],
    src: np.ndarray,
    dst: np.ndarray,
    budget: int,
    *,
    deadline: float | None = None,
    keep: dict[str, Any] | None = None,
) -> list[int]:
    """Greedy max-min selection: add the candidate giving the best :func:`lex_key`, ``budget`` times.

    Same rule as the Dijkstra-per-candidate greedy (ties: first in ``pool``),
    with every candidate evaluated exactly by :func:`pivot` arithmetic. With a
    ``deadline`` (perf_counter) it returns the relays picked when it passes
    (at least one: the no-relay costs it starts from are what any evaluation of
    the demands needs anyway). ``keep``: on large graphs (:class:`CostRows` with
    end-point rows) receives those no-relay costs among the end points as ``keep["base"]``.
    """
    C = CostRows(n, edges, weight, np.zeros(n, dtype=bool), np.concatenate([src, dst]))
    if keep is not None and not C.full:
        keep["base"] = C.C[:, C.rows].copy()
    chosen: list[int] = []
    left = list(pool)
    pairs = _Pairs(src, dst)
    for _ in range(min(budget, len(left))):
        if deadline is not None and chosen and time.perf_counter() >= deadline:
            break
        v, _key = best_addition(C, left, pairs)
        chosen.append(v)
        left.remove(v)
        C.trust(v)
    return chosen


def swap_search(
    n: int,
    edges: Sequence[tuple[int, int]],
    weight: np.ndarray,
    pool: Sequence[int],
    src: np.ndarray,
    dst: np.ndarray,
    start: Sequence[int],
    budget: int,
    deadline: float,
) -> tuple[list[int], int]:
    """First-improvement local search on the single-path max-min objective.

    Moves: add a candidate while fewer than ``budget`` are trusted; otherwise
    drop one trusted relay ``u`` and add the best replacement (evaluated
    exactly for all replacements at once). A move is taken only when it
    strictly improves :func:`lex_key`, so the result is never worse than
    ``start``. Stops at a local optimum or at ``deadline`` (perf_counter, also
    checked while costs are computed). Returns the set and the number of moves taken.
    """
    chosen = list(start)
    moves = 0
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    ends = np.concatenate([src, dst])
    try:
        C = CostRows(n, edges, weight, mask, ends, deadline=deadline)
    except OutOfTime:
        return chosen, 0
    key = lex_key(C.demand_costs(src, dst))
    pairs = _Pairs(src, dst)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        if len(chosen) < budget:
            left = [v for v in pool if not mask[v]]
            if left:
                v, k = best_addition(C, left, pairs)
                if k < key:
                    chosen.append(v)
                    mask[v] = True
                    C.trust(v)
                    key, improved, moves = lex_key(C.demand_costs(src, dst)), True, moves + 1
                    continue
        for u in list(chosen):
            if time.perf_counter() >= deadline:
                break
            mask[u] = False
            try:
                Cu = CostRows(n, edges, weight, mask, ends, deadline=deadline)
            except OutOfTime:
                mask[u] = True
                break
            left = [v for v in pool if not mask[v] and v != u]
            if not left:
                mask[u] = True
                continue
            v, k = best_addition(Cu, left, pairs)
            if k < key:
                chosen[chosen.index(u)] = v
                mask[v] = True
                Cu.trust(v)
                C, key, improved, moves = Cu, lex_key(Cu.demand_costs(src, dst)), True, moves + 1
                break
            mask[u] = True
    return chosen, moves


def token_graph(
    n: int, edges: Sequence[tuple[int, int]], weight: np.ndarray, free: np.ndarray, tokens: int
) -> sp.csr_matrix:
    """The layered token graph as a sparse ``n (tokens + 1)`` square matrix for scipy's Dijkstra.

    Node ``b * n + v`` = at ``v`` having used ``b`` tokens; arc ``(i, b) -> (j, b)``
    costs ``w_j``, ``(i, b) -> (j, b + 1)`` costs 0 when ``j`` is ``free`` (both
    directions of every edge). Every arc carries 1e-300 more than its cost, so the
    sparse matrix keeps the zero-cost ones; callers clear values below 1e-200.
    """
    tails, heads = _arc_arrays(n, edges)
    rows, cols, vals = [], [], []
    for b in range(tokens + 1):
        rows.append(tails + b * n)
        cols.append(heads + b * n)
        vals.append(weight[heads] + 1e-300)
        if b < tokens:
            ok = free[heads]
            rows.append(tails[ok] + b * n)
            cols.append(heads[ok] + (b + 1) * n)
            vals.append(np.full(int(ok.sum()), 1e-300))
    size = n * (tokens + 1)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))


def token_lower_bound(
    n: int,
    edges: Sequence[tuple[int, int]],
    weight: np.ndarray,
    free: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    tokens: int,
    *,
    upper: np.ndarray | None = None,
    deadline: float | None = None,
) -> np.ndarray:
    """Per demand, the least interior cost when at most ``tokens`` nodes with ``free`` cost 0.

    Layered graph: node ``(v, b)`` = at ``v`` having used ``b`` tokens; arc
    ``(i, b) -> (j, b)`` costs ``w_j``, ``(i, b) -> (j, b + 1)`` costs 0 when
    ``j`` is free. The interior cost to ``t`` is the least cost of reaching a
    neighbour of ``t`` (that neighbour's weight counted or tokened), or 0 when
    ``s`` and ``t`` are adjacent. Valid for any trusted set of size ``<= tokens``.

    Only the maximum over demands bounds the max-min optimum. With ``upper`` (each
    demand's cost under some set of at most ``tokens`` relays, e.g. the heuristic's,
    which its bound cannot exceed) sources are searched in decreasing order of their
    demands' ``upper`` and the search stops once no demand left can raise the maximum;
    with ``deadline`` (perf_counter) it also stops there. Demands not searched get 0
    (a valid bound), so the maximum stays a valid bound, and is exact when stopped by ``upper``.
    """
    tokens = max(0, int(tokens))
    L = tokens + 1
    tails, heads = _arc_arrays(n, edges)
    mat = token_graph(n, edges, weight, free, tokens)
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(tails.tolist(), heads.tolist(), strict=True):
        nbrs[b].append(a)
    out = np.full(len(src), np.inf)
    sources, inv = np.unique(src, return_inverse=True)
    order = np.arange(len(sources))
    chunk = _ROW_CHUNK
    if upper is not None:
        top = np.full(len(sources), -np.inf)
        np.maximum.at(top, inv, upper)
        order = np.argsort(-top, kind="stable")
        chunk = 16
    searched = np.zeros(len(src), dtype=bool)
    best = -np.inf
    for lo in range(0, len(order), chunk):
        if upper is not None and lo > 0 and best >= top[order[lo]]:
            break
        if deadline is not None and lo > 0 and time.perf_counter() >= deadline:
            break
        part_rows = order[lo : lo + chunk]
        part = sources[part_rows]
        dist = dijkstra(mat, directed=True, indices=part)
        reach = dist.reshape(len(part), L, n).min(axis=1)  # (sources, n): cost up to and incl. v
        reach[np.arange(len(part)), part] = 0.0
        at = np.full(len(sources), -1, dtype=np.int64)
        at[part_rows] = np.arange(len(part))
        for d in np.nonzero(at[inv] >= 0)[0].tolist():
            nb = nbrs[int(dst[d])]
            out[d] = float(reach[int(at[inv[d]]), nb].min()) if nb else np.inf
            searched[d] = True
        best = max(best, float(np.max(out[searched], initial=-np.inf)))
    out[~searched] = 0.0
    return np.maximum(out, 0.0)


def info_sizes(n: int, n_demands: int) -> dict[str, Any]:
    """Memory of the dense cost matrix the heuristic keeps (bytes), for the stage's log."""
    return {"heuristic_matrix_bytes": 8 * n * n * 2, "n_demands": n_demands}
