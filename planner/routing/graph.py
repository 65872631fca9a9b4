"""Search core of the routing: rank topology and node-weighted Dijkstra with deterministic ties.

Nodes are mapped to ranks (:class:`Topology`) so that ties between equal-cost paths
are broken the same way on every run; relay costs are integers (-log p scaled by
:data:`COST_SCALE`) so that sums are exact. :func:`search` finds the least-cost,
then fewest-hop, then lexicographically smallest path, with a heap search on small
graphs and an array search (scipy) on large ones; both return the same path.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Sequence
from typing import Any

import networkx as nx
import numpy as np


def edge_key(u: Any, v: Any) -> tuple[Any, Any]:
    """Canonical (sorted) node pair of a link."""
    if type(u) is type(v):
        try:
            return (u, v) if u <= v else (v, u)
        except TypeError:
            pass
    return (u, v) if sort_key(u) <= sort_key(v) else (v, u)


def sort_key(node: Any) -> tuple[str, Any]:
    """Total order of node ids of mixed types: numbers first (by value), then by type name and value/repr."""
    if isinstance(node, int | float | str):
        return (type(node).__name__ if not isinstance(node, int | float) else "0num", node)
    return (type(node).__name__, repr(node))


class Topology:
    """Adjacency in node-rank space; ranks give deterministic lexicographic ties.

    ``tails`` / ``heads`` list every arc (both directions of each link, tails
    ascending, heads ascending per tail) for the array search of large graphs.
    """

    __slots__ = ("nodes", "rank", "adj", "tails", "heads", "_hop_matrix")

    def __init__(self, graph: nx.Graph) -> None:
        self.nodes: list[Any] = sorted(graph.nodes, key=sort_key)
        self.rank: dict[Any, int] = {v: i for i, v in enumerate(self.nodes)}
        rank = self.rank
        self.adj: list[list[int]] = [sorted(rank[w] for w in graph.adj[v] if w != v) for v in self.nodes]
        self.tails = np.fromiter((v for v, ws in enumerate(self.adj) for _ in ws), dtype=np.int64)
        self.heads = np.fromiter((w for ws in self.adj for w in ws), dtype=np.int64)
        self._hop_matrix: Any = None

    def hop_distances(self, source: int) -> np.ndarray:
        """Hop count from ``source`` to every node (``inf`` when unreachable), by breadth-first search."""
        if self._hop_matrix is None:
            import scipy.sparse as sp

            n = len(self.nodes)
            self._hop_matrix = sp.csr_matrix((np.ones(len(self.tails)), (self.tails, self.heads)), shape=(n, n))
        from scipy.sparse.csgraph import dijkstra

        return np.asarray(dijkstra(self._hop_matrix, directed=True, indices=source, unweighted=True))


#: Costs are integers: -log(p) scaled by COST_SCALE and rounded, so that sums are
#: exact and equal-security ties are exact ties.
COST_SCALE = 10**12
#: Cost of a node with security 0 (any path through it has cost >= this; the
#: costs add up, so fewer such relays rank first).
INFINITE_COST = 10**40


#: Graphs with at least this many nodes are searched with array Dijkstra (:func:`search_arrays`)
#: when the integer costs allow exact float sums; smaller ones with the heap search.
ARRAY_SEARCH_MIN_NODES = 150

_EXACT_FLOAT_INT = 2**53


def search(
    topo: Topology,
    cost: Sequence[int],
    source: int,
    target: int,
    *,
    blocked_nodes: Collection[int] = (),
    blocked_edges: Collection[tuple[int, int]] = (),
) -> tuple[tuple[int, ...], int] | None:
    """Least-cost path source -> target in rank space (see :func:`search_heap` for the rules).

    Large graphs go to :func:`search_arrays`, which returns the same path
    and cost whenever every path cost is an integer below 2**53 (checked;
    otherwise, e.g. with a relay of security 0, the heap search runs).
    """
    if len(topo.nodes) >= ARRAY_SEARCH_MIN_NODES and source != target:
        costs = _cost_array(cost)
        if costs is not None:
            return search_arrays(
                topo, cost, costs, source, target, blocked_nodes=blocked_nodes, blocked_edges=blocked_edges
            )
    return search_heap(topo, cost, source, target, blocked_nodes=blocked_nodes, blocked_edges=blocked_edges)


_COST_ARRAY_CACHE: list[tuple[Sequence[int], np.ndarray | None]] = []


def _cost_array(cost: Sequence[int]) -> np.ndarray | None:
    """``cost`` as float64 when every sum of at most ``len(cost)`` of them is an exact integer, else None.

    Remembers the last list it converted (the same list is searched many times)."""
    if _COST_ARRAY_CACHE and _COST_ARRAY_CACHE[0][0] is cost:
        return _COST_ARRAY_CACHE[0][1]
    top = max(cost) if len(cost) else 0
    exact = min(cost, default=0) >= 0 and top * max(1, len(cost)) < _EXACT_FLOAT_INT
    arr = np.asarray(cost, dtype=np.float64) if exact else None
    _COST_ARRAY_CACHE[:] = [(cost, arr)]
    return arr


def search_arrays(
    topo: Topology,
    cost: Sequence[int],
    costs: np.ndarray,
    source: int,
    target: int,
    *,
    blocked_nodes: Collection[int] = (),
    blocked_edges: Collection[tuple[int, int]] = (),
) -> tuple[tuple[int, ...], int] | None:
    """The path of :func:`search_heap`, found with array Dijkstra (scipy) for exact integer costs.

    1. Dijkstra on the allowed arcs with the head's cost (sums are exact
       integers in float64, so equal costs compare equal);
    2. the cost-tight arcs (``dist[u] + cost[w] == dist[w]``) carry exactly
       the least-cost paths; a breadth-first search on them gives the fewest
       hops among those;
    3. the arcs that also raise the hop count by one form a DAG whose
       source-target paths are the least-(cost, hops) paths; walking from the
       source to the smallest-rank successor that still reaches the target
       gives the lexicographically smallest of them.
    """
    from scipy.sparse.csgraph import breadth_first_order, dijkstra

    n = len(topo.nodes)
    tails, heads = topo.tails, topo.heads
    allowed = heads != source
    if blocked_nodes:
        bad = np.zeros(n, dtype=bool)
        bad[np.fromiter(blocked_nodes, dtype=np.int64)] = True
        bad[target] = False
        allowed &= ~bad[heads]
    if blocked_edges:
        keys = np.fromiter((a * n + b for a, b in blocked_edges), dtype=np.int64)
        lo = np.minimum(tails, heads)
        hi = np.maximum(tails, heads)
        allowed &= ~np.isin(lo * n + hi, keys)
    t, h = tails[allowed], heads[allowed]
    w = costs[h]
    dist = _dijkstra_to(_sorted_csr(t, h, w, n), source, target, costs)
    if dist is None:
        return None
    tight = np.isfinite(dist[t]) & (dist[t] + w == dist[h])
    tt, th = t[tight], h[tight]
    hops = np.asarray(
        dijkstra(_sorted_csr(tt, th, np.ones(len(tt)), n), directed=True, indices=source, unweighted=True)
    )
    level = (hops[th] == hops[tt] + 1) & (hops[th] <= hops[target])
    dt, dh = tt[level], th[level]
    order = np.argsort(dh, kind="stable")
    back = _sorted_csr(dh[order], dt[order], np.ones(len(dt)), n)
    reach = np.zeros(n, dtype=bool)
    reach[breadth_first_order(back, target, directed=True, return_predecessors=False)] = True
    keep = reach[dh]
    dt, dh = dt[keep], dh[keep]  # still ordered by tail, then head: the first arc of a tail is its smallest
    path = [source]
    cur = source
    while cur != target:
        cur = int(dh[int(np.searchsorted(dt, cur))])
        path.append(cur)
    return tuple(path), sum(cost[v] for v in path[1:-1])


#: The array search first explores only paths costing at most this many times the cheapest relay
#: cost, and four times more on each retry, until the target is reached (see :func:`_dijkstra_to`).
FIRST_REACH_RELAYS = 8


def _dijkstra_to(mat: Any, source: int, target: int, costs: np.ndarray) -> np.ndarray | None:
    """Least costs from ``source`` (``inf`` beyond what was explored), exact for every node costing at
    most the target's cost; None when the target is unreachable.

    Dijkstra with a growing ``limit``: :data:`FIRST_REACH_RELAYS` times the cheapest positive relay
    cost, then four times more until the target is within it (then every node on a least-cost path
    to the target is too: costs are non-negative), the limit passes the sum of all costs (no simple
    path costs more) or becomes unbounded. Demands between nearby sites thus explore a small ball
    instead of the whole graph.
    """
    from scipy.sparse.csgraph import dijkstra

    positive = costs[costs > 0]
    total = float(positive.sum()) if len(positive) else 0.0
    limit = FIRST_REACH_RELAYS * float(positive.min()) if len(positive) else np.inf
    while True:
        if limit >= total:
            limit = np.inf
        dist = np.asarray(dijkstra(mat, directed=True, indices=source, limit=limit))
        if np.isfinite(dist[target]):
            return dist
        if limit == np.inf:
            return None
        limit *= 4.0


def _sorted_csr(tails: np.ndarray, heads: np.ndarray, data: np.ndarray, n: int) -> Any:
    """An ``n x n`` CSR matrix from arcs already ordered by tail (no sorting, duplicates kept apart)."""
    import scipy.sparse as sp

    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(tails, minlength=n), out=indptr[1:])
    return sp.csr_matrix((data, heads, indptr), shape=(n, n))


def search_heap(
    topo: Topology,
    cost: Sequence[int],
    source: int,
    target: int,
    *,
    blocked_nodes: Collection[int] = (),
    blocked_edges: Collection[tuple[int, int]] = (),
) -> tuple[tuple[int, ...], int] | None:
    """Least-cost path source -> target in rank space.

    Path cost = sum of the integer ``cost[v]`` over interior nodes (end points
    free). Ties: fewer hops, then the lexicographically smallest rank
    sequence. ``blocked_nodes`` may not be used as interior nodes;
    ``blocked_edges`` (pairs (min, max)) may not be used at all. Returns
    (path, cost) or None.

    Label-setting Dijkstra on (cost, hops); the predecessor of a node is the
    one whose path is lexicographically smallest among equal labels. This is
    exact because all candidate predecessors of ``w`` carry smaller labels and
    are settled before ``w``.
    """
    if source == target:
        return (source,), 0
    adj = topo.adj
    label: dict[int, tuple[int, int]] = {source: (0, 0)}
    pred: dict[int, int] = {}
    path_of: dict[int, tuple[int, ...]] = {}  # settled nodes: their chosen path
    heap: list[tuple[int, int, int]] = [(0, 0, source)]
    check_edges = bool(blocked_edges)
    while heap:
        c, h, u = heapq.heappop(heap)
        if u in path_of:
            continue
        here = path_of[u] = (path_of[pred[u]] + (u,)) if u != source else (source,)
        if u == target:
            return here, c
        nc = c + cost[u] if u != source else 0
        nh = h + 1
        new = (nc, nh)
        for w in adj[u]:
            if w in path_of or (w != target and w in blocked_nodes):
                continue
            if check_edges and ((u, w) if u < w else (w, u)) in blocked_edges:
                continue
            old = label.get(w)
            if old is None or new < old:
                label[w] = new
                pred[w] = u
                heapq.heappush(heap, (nc, nh, w))
            elif new == old and here < path_of[pred[w]]:
                pred[w] = u
    return None


def probability_cost(p: float) -> int:
    """Integer cost -log(p) * COST_SCALE of a relay (p <= 0: INFINITE_COST; p >= 1: 0)."""
    if p <= 0.0:
        return INFINITE_COST
    if p >= 1.0:
        return 0
    return round(-math.log(p) * COST_SCALE)
