"""Key-distribution routing in partially-trusted relay QKD networks.

Implements the routing half of Wang, Li, Xue et al., *A Segment-based Multipath
Distribution Method in Partially-Trusted Relay Quantum Networks* (IEEE Commun.
Mag. 2023, "the SMR paper") and the baselines it is compared with:

- :func:`ex_dijkstra` -- the path maximising the product of the security
  probabilities of its relays (the paper's ExDijkstra, metric E_sp);
- :func:`smr` -- Segment-based Multipath Routing (step 1: segment nodes among
  the trusted relays; step 2: per-segment multipath by repeated ExDijkstra and
  deletion);
- :func:`msp` -- Multiple Stochastic Paths (Wen et al., Sci. China F 52(1), 2009),
  random paths kept node-disjoint where possible, a given number of them;
- :func:`msp_disjoint` -- the same stochastic paths kept strictly node-disjoint,
  drawn until no path is left;
- :func:`shortest_path_route` and :func:`disjoint_multipath` -- single
  fewest-hop path and maximum node-disjoint multipath.

Every method returns the same :class:`SmrResult`, so methods can be compared.

Security model (paper, Sec. II-B): every untrusted relay ``v`` resists the
eavesdropper independently with probability ``p_v``; trusted relays and the two
end points of a path count 1. A path is secure when all its relays resist; a
segment is secure when at least one of its paths is; the end-to-end key is
secure when every segment is. :attr:`SmrResult.security` is this probability,
computed *exactly*, also when paths share untrusted relays (MSP): shared relays
are conditioned on (:func:`multipath_security`). Interpretation choices that
change results are listed in ``docs/smr_decisions.md``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from planner.errors import ValidationError

logger = logging.getLogger(__name__)

Node = Hashable
Path = tuple[Any, ...]

#: Above this many relays shared between paths, :func:`multipath_security`
#: refuses exact enumeration (2**k terms).
MAX_SHARED_RELAYS_EXACT = 18


# ---------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One segment ``start -> end`` of a route and the key-distribution paths in it.

    ``paths[i]`` is a node tuple from ``start`` to ``end``;
    ``path_security[i]`` the product of its relays' security probabilities;
    ``security`` the probability that at least one path is secure (exact,
    including shared relays); ``hops[i] = len(paths[i]) - 1``.
    """

    start: Any
    end: Any
    paths: tuple[Path, ...]
    path_security: tuple[float, ...]
    security: float
    hops: tuple[int, ...]

    @property
    def n_paths(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class SmrResult:
    """A routed key request, for SMR and every baseline.

    ``segment_nodes`` = (source, r_1, ..., r_k, target): the trusted relays the
    key is re-encrypted at (baselines: just (source, target)).
    ``security`` is the end-to-end security probability when every segment's
    path keys are all combined (the paper's Fig. 5a/6a metric), exact.
    ``method`` names the routing method that produced it.
    """

    method: str
    source: Any
    target: Any
    segment_nodes: tuple[Any, ...]
    segments: tuple[Segment, ...]
    security: float

    @property
    def paths(self) -> tuple[tuple[Path, ...], ...]:
        """Per-segment path tuples."""
        return tuple(seg.paths for seg in self.segments)

    @property
    def path_security(self) -> tuple[tuple[float, ...], ...]:
        return tuple(seg.path_security for seg in self.segments)

    @property
    def segment_security(self) -> tuple[float, ...]:
        return tuple(seg.security for seg in self.segments)

    @property
    def hops(self) -> tuple[tuple[int, ...], ...]:
        return tuple(seg.hops for seg in self.segments)

    @property
    def total_hops(self) -> int:
        """Link hops summed over every path: local key blocks consumed per path-key block."""
        return sum(sum(seg.hops) for seg in self.segments)

    @property
    def n_paths(self) -> int:
        return sum(seg.n_paths for seg in self.segments)

    @property
    def delivered(self) -> bool:
        """True when every segment has at least one path."""
        return bool(self.segments) and all(seg.n_paths > 0 for seg in self.segments)

    def link_load(self) -> dict[tuple[Any, Any], int]:
        """How many paths (over all segments) use each link; keys are sorted node pairs."""
        load: dict[tuple[Any, Any], int] = {}
        for seg in self.segments:
            for path in seg.paths:
                for u, v in itertools.pairwise(path):
                    key = _edge_key(u, v)
                    load[key] = load.get(key, 0) + 1
        return load


# ---------------------------------------------------------------------------
# Security probabilities
# ---------------------------------------------------------------------------


class RelaySecurity:
    """Security probability of nodes acting as relays.

    ``security`` maps node -> probability in [0, 1] (or is one float for every
    untrusted node); nodes in ``trusted`` and nodes missing from the mapping
    count 1. :meth:`path` excludes the two end points.
    """

    __slots__ = ("_map", "_uniform", "trusted")

    def __init__(
        self, security: Mapping[Any, float] | float, trusted: Collection[Any] = ()
    ) -> None:
        self.trusted = frozenset(trusted)
        if isinstance(security, int | float):
            self._uniform: float | None = float(security)
            self._map: Mapping[Any, float] = {}
            _check_probability("security", self._uniform)
        else:
            self._uniform = None
            self._map = security

    @property
    def uniform(self) -> float | None:
        """The one probability of every untrusted node, or None for a mapping."""
        return self._uniform

    def node(self, node: Any) -> float:
        if node in self.trusted:
            return 1.0
        if self._uniform is not None:
            return self._uniform
        return float(self._map.get(node, 1.0))

    def is_untrusted(self, node: Any) -> bool:
        """A relay the eavesdropper may compromise (security below 1)."""
        return self.node(node) < 1.0

    def path(self, path: Sequence[Any]) -> float:
        """Product of the relays' probabilities (end points excluded)."""
        prob = 1.0
        for v in path[1:-1]:
            prob *= self.node(v)
        return prob

    def validate(self, graph: nx.Graph) -> None:
        """Raise ``ValidationError`` naming every node whose probability is outside [0, 1]."""
        if self._uniform is not None:
            return
        bad = []
        for node, value in self._map.items():
            try:
                ok = 0.0 <= float(value) <= 1.0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                bad.append(f"security[{node!r}] = {value!r}")
        if bad:
            raise ValidationError(
                "security probabilities must lie in [0, 1]: " + ", ".join(bad[:10]),
                source="security mapping",
            )


def _check_probability(name: str, value: float) -> None:
    if not (0.0 <= value <= 1.0):
        raise ValidationError(f"{name}={value!r} must lie in [0, 1]")


def multipath_security(
    segments: Sequence[Sequence[Sequence[Any]]],
    relay: RelaySecurity,
) -> float:
    """Exact probability that every segment has at least one fully secure path.

    ``segments`` is a list of segments, each a list of paths (node sequences);
    a path is secure when none of its relays (end points excluded) is
    compromised, relays being compromised independently with probability
    ``1 - p``. Relays used by several paths are conditioned on (2**k states for
    k shared relays), so correlated paths are handled exactly; with disjoint
    relays this equals ``prod_segments (1 - prod_paths (1 - P_path))``.
    A segment without paths has probability 0.
    """
    rel_sets: list[list[list[Any]]] = []
    count: dict[Any, int] = {}
    for seg in segments:
        seg_sets = []
        for path in seg:
            rels = sorted({v for v in path[1:-1] if relay.is_untrusted(v)}, key=repr)
            seg_sets.append(rels)
            for v in rels:
                count[v] = count.get(v, 0) + 1
        rel_sets.append(seg_sets)
    if any(len(s) == 0 for s in rel_sets):
        return 0.0
    shared = sorted((v for v, c in count.items() if c > 1), key=repr)
    if not shared:
        total = 1.0
        for seg_sets in rel_sets:
            fail = 1.0
            for rels in seg_sets:
                fail *= 1.0 - math.prod(relay.node(v) for v in rels)
            total *= 1.0 - fail
        return total
    if len(shared) > MAX_SHARED_RELAYS_EXACT:
        raise ValidationError(
            f"{len(shared)} relays are shared between paths; exact security needs 2**k terms "
            f"(limit {MAX_SHARED_RELAYS_EXACT}); use paths that share fewer relays"
        )
    idx = {v: i for i, v in enumerate(shared)}
    k = len(shared)
    states = ((np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1).astype(bool)  # True=secure
    p_shared = np.array([relay.node(v) for v in shared])
    weight = np.prod(np.where(states, p_shared, 1.0 - p_shared), axis=1)
    all_ok = np.ones(2**k)
    for seg_sets in rel_sets:
        seg_fail = np.ones(2**k)
        for rels in seg_sets:
            private = math.prod(relay.node(v) for v in rels if v not in idx)
            cols = [idx[v] for v in rels if v in idx]
            ok = states[:, cols].all(axis=1) if cols else np.ones(2**k, dtype=bool)
            seg_fail *= 1.0 - np.where(ok, private, 0.0)
        all_ok *= 1.0 - seg_fail
    return float(np.dot(weight, all_ok))


# ---------------------------------------------------------------------------
# Search core: node-weighted Dijkstra with deterministic tie-breaking
# ---------------------------------------------------------------------------


def _edge_key(u: Any, v: Any) -> tuple[Any, Any]:
    """Canonical (sorted) node pair of a link."""
    if type(u) is type(v):
        try:
            return (u, v) if u <= v else (v, u)
        except TypeError:
            pass
    return (u, v) if _sort_key(u) <= _sort_key(v) else (v, u)


def _sort_key(node: Any) -> tuple[str, Any]:
    if isinstance(node, int | float | str):
        return (type(node).__name__ if not isinstance(node, int | float) else "0num", node)
    return (type(node).__name__, repr(node))


class _Topology:
    """Adjacency in node-rank space; ranks give deterministic lexicographic ties.

    ``tails`` / ``heads`` list every arc (both directions of each link, tails
    ascending, heads ascending per tail) for the array search of large graphs.
    """

    __slots__ = ("nodes", "rank", "adj", "tails", "heads", "_hop_matrix")

    def __init__(self, graph: nx.Graph) -> None:
        self.nodes: list[Any] = sorted(graph.nodes, key=_sort_key)
        self.rank: dict[Any, int] = {v: i for i, v in enumerate(self.nodes)}
        rank = self.rank
        self.adj: list[list[int]] = [
            sorted(rank[w] for w in graph.adj[v] if w != v) for v in self.nodes
        ]
        self.tails = np.fromiter(
            (v for v, ws in enumerate(self.adj) for _ in ws), dtype=np.int64
        )
        self.heads = np.fromiter((w for ws in self.adj for w in ws), dtype=np.int64)
        self._hop_matrix: Any = None

    def hop_distances(self, source: int) -> np.ndarray:
        """Hop count from ``source`` to every node (``inf`` when unreachable), by breadth-first search."""
        if self._hop_matrix is None:
            import scipy.sparse as sp

            n = len(self.nodes)
            self._hop_matrix = sp.csr_matrix(
                (np.ones(len(self.tails)), (self.tails, self.heads)), shape=(n, n)
            )
        from scipy.sparse.csgraph import dijkstra

        return np.asarray(dijkstra(self._hop_matrix, directed=True, indices=source, unweighted=True))


#: Costs are integers: -log(p) scaled by COST_SCALE and rounded, so that sums are
#: exact and equal-security ties are exact ties.
COST_SCALE = 10**12
#: Cost of a node with security 0 (any path through it has cost >= this; the
#: costs add up, so fewer such relays rank first).
INFINITE_COST = 10**40


#: Graphs with at least this many nodes are searched with array Dijkstra (:func:`_search_arrays`)
#: when the integer costs allow exact float sums; smaller ones with the heap search.
ARRAY_SEARCH_MIN_NODES = 150

_EXACT_FLOAT_INT = 2**53


def _search(
    topo: _Topology,
    cost: Sequence[int],
    source: int,
    target: int,
    *,
    blocked_nodes: Collection[int] = (),
    blocked_edges: Collection[tuple[int, int]] = (),
) -> tuple[tuple[int, ...], int] | None:
    """Least-cost path source -> target in rank space (see :func:`_search_heap` for the rules).

    Large graphs go to :func:`_search_arrays`, which returns the same path
    and cost whenever every path cost is an integer below 2**53 (checked;
    otherwise, e.g. with a relay of security 0, the heap search runs).
    """
    if len(topo.nodes) >= ARRAY_SEARCH_MIN_NODES and source != target:
        costs = _cost_array(cost)
        if costs is not None:
            return _search_arrays(topo, cost, costs, source, target,
                                  blocked_nodes=blocked_nodes, blocked_edges=blocked_edges)
    return _search_heap(topo, cost, source, target, blocked_nodes=blocked_nodes, blocked_edges=blocked_edges)


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


def _search_arrays(
    topo: _Topology,
    cost: Sequence[int],
    costs: np.ndarray,
    source: int,
    target: int,
    *,
    blocked_nodes: Collection[int] = (),
    blocked_edges: Collection[tuple[int, int]] = (),
) -> tuple[tuple[int, ...], int] | None:
    """The path of :func:`_search_heap`, found with array Dijkstra (scipy) for exact integer costs.

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
    dist = np.asarray(dijkstra(_sorted_csr(t, h, w, n), directed=True, indices=source))
    if not np.isfinite(dist[target]):
        return None
    tight = np.isfinite(dist[t]) & (dist[t] + w == dist[h])
    tt, th = t[tight], h[tight]
    hops = np.asarray(dijkstra(_sorted_csr(tt, th, np.ones(len(tt)), n), directed=True, indices=source,
                               unweighted=True))
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


def _sorted_csr(tails: np.ndarray, heads: np.ndarray, data: np.ndarray, n: int) -> Any:
    """An ``n x n`` CSR matrix from arcs already ordered by tail (no sorting, duplicates kept apart)."""
    import scipy.sparse as sp

    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(tails, minlength=n), out=indptr[1:])
    return sp.csr_matrix((data, heads, indptr), shape=(n, n))


def _search_heap(
    topo: _Topology,
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


def _relay_costs(topo: _Topology, relay: RelaySecurity) -> list[int]:
    """Integer -log(p) * COST_SCALE per node (trusted and p=1: 0; p=0: INFINITE_COST)."""
    uniform = relay.uniform
    if uniform is not None:
        c_all = _probability_cost(uniform)
        trusted = relay.trusted
        return [0 if v in trusted else c_all for v in topo.nodes]
    cache: dict[float, int] = {}
    out = []
    for v in topo.nodes:
        p = relay.node(v)
        c = cache.get(p)
        if c is None:
            c = cache[p] = _probability_cost(p)
        out.append(c)
    return out


def _probability_cost(p: float) -> int:
    if p <= 0.0:
        return INFINITE_COST
    if p >= 1.0:
        return 0
    return round(-math.log(p) * COST_SCALE)


def _check_endpoints(graph: nx.Graph, source: Any, target: Any) -> None:
    missing = [repr(n) for n in (source, target) if n not in graph]
    if missing:
        raise ValidationError(
            f"request end point(s) {', '.join(missing)} not in the network",
            source="routing request (use node ids of the graph)",
        )
    if source == target:
        raise ValidationError(f"source and target are the same node {source!r}")


def _check_trusted(graph: nx.Graph, trusted: Collection[Any]) -> None:
    missing = [repr(n) for n in trusted if n not in graph]
    if missing:
        raise ValidationError(
            "trusted relays not in the network: " + ", ".join(missing[:10]),
            source="trusted relay set",
        )


# ---------------------------------------------------------------------------
# ExDijkstra
# ---------------------------------------------------------------------------


def ex_dijkstra(
    graph: nx.Graph,
    source: Any,
    target: Any,
    *,
    security: Mapping[Any, float] | float,
    trusted: Collection[Any] = (),
) -> Path | None:
    """The path source -> target maximising the product of relay security probabilities.

    ``security`` maps node -> probability (or one float for all nodes); nodes
    in ``trusted``, nodes missing from ``security`` and the two end points
    count 1. Equivalent to Dijkstra on node weights -log(p). Among paths of
    equal security (-log p compared as integers scaled by 1e12) the one with fewer hops
    wins, then the lexicographically smallest node sequence (nodes ordered by
    value). Returns ``None`` when target is unreachable. A path through a
    relay with probability 0 (security 0) is returned only when no other path
    exists; such paths are ranked by their number of p = 0 relays, then as
    above.
    """
    _check_endpoints(graph, source, target)
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    topo = _Topology(graph)
    found = _search(topo, _relay_costs(topo, relay), topo.rank[source], topo.rank[target])
    if found is None:
        return None
    return tuple(topo.nodes[i] for i in found[0])


# ---------------------------------------------------------------------------
# SMR
# ---------------------------------------------------------------------------


class _Router:
    """Shared state for routing one request: topology, costs, security."""

    def __init__(
        self,
        graph: nx.Graph,
        relay: RelaySecurity,
        *,
        topo: _Topology | None = None,
        cache: dict[Any, Any] | None = None,
        distance_cache: dict[Any, dict[int, float]] | None = None,
    ):
        self.graph = graph
        self.distance_cache = distance_cache if distance_cache is not None else {}
        self.relay = relay
        self.topo = topo or _Topology(graph)
        self._cost: list[int] | None = None
        # With one probability 0 < p < 1 for every untrusted relay, path cost is
        # (number of untrusted relays) * const, so the paths found do not depend
        # on p: searches may be cached per trusted set (``cache``).
        # The integer cost of such a relay must be positive too (p within 1e-12 of 1 rounds
        # to cost 0, and the search would then rank paths by hops alone).
        uniform = relay.uniform
        cacheable = uniform is not None and 0.0 < uniform < 1.0 and _probability_cost(uniform) > 0
        self.cache = cache if cacheable else None

    @property
    def cost(self) -> list[int]:
        """Integer relay costs, computed on first use (re-scoring needs none)."""
        if self._cost is None:
            self._cost = _relay_costs(self.topo, self.relay)
        return self._cost

    def untrusted_interior(self, path: Sequence[int]) -> list[int]:
        nodes = self.topo.nodes
        return [i for i in path[1:-1] if nodes[i] not in self.relay.trusted]

    def path_security(self, path: Sequence[int]) -> float:
        return self.relay.path([self.topo.nodes[i] for i in path])

    def multipath(
        self,
        a: int,
        b: int,
        *,
        blocked_nodes: set[int],
        blocked_edges: set[tuple[int, int]],
        limit: int | None,
    ) -> list[tuple[int, ...]]:
        """Repeated ExDijkstra a -> b, deleting each found path (see :func:`smr`).

        Stops when no path is left or the best one has security 0."""
        paths: list[tuple[int, ...]] = []
        while limit is None or len(paths) < limit:
            found = _search(
                self.topo, self.cost, a, b, blocked_nodes=blocked_nodes, blocked_edges=blocked_edges
            )
            if found is None or found[1] >= INFINITE_COST:
                break
            path = found[0]
            paths.append(path)
            self.delete(path, blocked_nodes, blocked_edges)
        return paths

    def delete(
        self, path: Sequence[int], blocked_nodes: set[int], blocked_edges: set[tuple[int, int]]
    ) -> None:
        blocked_nodes.update(self.untrusted_interior(path))
        for u, w in itertools.pairwise(path):
            blocked_edges.add((u, w) if u < w else (w, u))

    def two_path_security(self, a: int, b: int, blocked_nodes: set[int]) -> float:
        """Security of the two best ExDijkstra paths a -> b (a missing path counts 0)."""
        key = ("two", a, b, frozenset(blocked_nodes))
        paths = self.cache.get(key) if self.cache is not None else None
        if paths is None:
            paths = self.multipath(
                a, b, blocked_nodes=set(blocked_nodes), blocked_edges=set(), limit=2
            )
            if self.cache is not None:
                self.cache[key] = paths
        fail = 1.0
        for path in paths:
            fail *= 1.0 - self.path_security(path)
        return 1.0 - fail

    def distances(self, source: int, weight: str | None) -> dict[int, float]:
        cached = self.distance_cache.get((source, weight))
        if cached is not None:
            return cached
        node = self.topo.nodes[source]
        if weight is None:
            hops = self.topo.hop_distances(source)
            found = np.flatnonzero(np.isfinite(hops))
            out = dict(zip(found.tolist(), hops[found].tolist(), strict=True))
            self.distance_cache[(source, weight)] = out
            return out
        raw = nx.single_source_dijkstra_path_length(self.graph, node, weight=weight)
        rank = self.topo.rank
        out = {rank[v]: float(d) for v, d in raw.items()}
        self.distance_cache[(source, weight)] = out
        return out

    def result(
        self,
        method: str,
        source: Any,
        target: Any,
        seg_ranks: Sequence[int],
        seg_paths: Sequence[Sequence[tuple[int, ...]]],
    ) -> SmrResult:
        nodes = self.topo.nodes
        node_paths = [[tuple(nodes[i] for i in p) for p in paths] for paths in seg_paths]
        segments = []
        for (a, b), paths in zip(itertools.pairwise(seg_ranks), node_paths, strict=True):
            segments.append(
                Segment(
                    start=nodes[a],
                    end=nodes[b],
                    paths=tuple(paths),
                    path_security=tuple(self.relay.path(p) for p in paths),
                    security=multipath_security([paths], self.relay),
                    hops=tuple(len(p) - 1 for p in paths),
                )
            )
        return SmrResult(
            method=method,
            source=source,
            target=target,
            segment_nodes=tuple(nodes[i] for i in seg_ranks),
            segments=tuple(segments),
            security=multipath_security(node_paths, self.relay),
        )


def smr(
    graph: nx.Graph,
    source: Any,
    target: Any,
    *,
    trusted: Collection[Any],
    security: Mapping[Any, float] | float,
    max_paths_per_segment: int | None = None,
    weight: str | None = None,
) -> SmrResult:
    """Segment-based Multipath Routing (SMR paper, Sec. III-B and Fig. 3).

    Step 1 (segment nodes): starting from ``s = source``, take the trusted
    relay ``r`` (not yet a segment node, not an end point) minimising
    ``dist(s, r) + dist(r, target)`` (classical shortest-path distance on edge
    attribute ``weight``, hop count when ``None``; ties: smaller ``dist(s, r)``,
    then node order). Compare "two paths" s -> target against two s -> r times
    two r -> target, where "two paths" means: the ExDijkstra path, then the
    ExDijkstra path after deleting the first (same deletion rule as step 2),
    with security ``1 - (1-P1)(1-P2)``; a path that does not exist counts
    ``P = 0`` (so one path gives ``P1``, none gives 0). Each pair is evaluated
    on the topology as it is (no deletions shared between the three
    evaluations). If segmented is strictly more secure, ``r`` becomes a
    segment node and the next start; otherwise step 1 stops.

    Step 2 (multipath): round-robin over the segments, find one ExDijkstra path
    per segment and delete it from the shared topology, until no segment finds
    a path (or ``max_paths_per_segment`` is reached). Deleting a path removes
    its *untrusted* relays and all of its links; trusted relays stay, so paths
    may cross at trusted relays (never reuse an untrusted relay or a link).
    Consequences: untrusted relays are used by at most one path of the request,
    so segment and end-to-end security are exactly ``1 - prod(1-P)`` and the
    product over segments; and every link carries at most one path. The
    request end points are never used as relays of other segments. A path
    whose security is 0 (through a relay with p = 0) is not used.

    Returns an :class:`SmrResult` with ``method="SMR"``. If target is
    unreachable the single segment has no paths and security 0.
    """
    _check_endpoints(graph, source, target)
    _check_trusted(graph, trusted)
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    return _smr(_Router(graph, relay), source, target, max_paths_per_segment, weight)


def _smr(
    router: _Router,
    source: Any,
    target: Any,
    max_paths_per_segment: int | None,
    weight: str | None,
) -> SmrResult:
    rank = router.topo.rank
    s, d = rank[source], rank[target]
    ends = {s, d}
    candidates = sorted(rank[r] for r in router.relay.trusted if rank[r] not in ends)
    seg = [s]
    if candidates:
        dist_d = router.distances(d, weight)
        cur = s
        while True:
            dist_c = router.distances(cur, weight)
            pool = [r for r in candidates if r not in seg and r in dist_c and r in dist_d]
            if not pool:
                break
            r = min(pool, key=lambda x: (dist_c[x] + dist_d[x], dist_c[x], x))
            others = ends - {cur}
            unseg = router.two_path_security(cur, d, set(others - {d}))
            segmented = router.two_path_security(cur, r, set(others)) * router.two_path_security(
                r, d, set(ends - {d})
            )
            if segmented > unseg:
                seg.append(r)
                cur = r
            else:
                break
    seg.append(d)
    final_seg, seg_paths = _smr_step2_cached(router, tuple(seg), max_paths_per_segment)
    return router.result("SMR", source, target, final_seg, seg_paths)


def _smr_step2_cached(
    router: _Router, seg: tuple[int, ...], max_paths_per_segment: int | None
) -> tuple[tuple[int, ...], list[list[tuple[int, ...]]]]:
    """:func:`_smr_step2`, memoised in ``router.cache`` (when the router allows caching).

    The cache key is the complete input of :func:`_smr_step2` (the segment nodes as step 1
    chose them, and the path limit; the trusted set and the end points are fixed per cache)
    and the value is its complete output (the final segment nodes *and* their paths), so a
    cache hit returns exactly what a fresh call would.
    """
    if router.cache is None:
        return _smr_step2(router, seg, max_paths_per_segment)
    key = ("step2", seg, max_paths_per_segment)
    hit = router.cache.get(key)
    if hit is None:
        hit = router.cache[key] = _smr_step2(router, seg, max_paths_per_segment)
    final_seg, seg_paths = hit
    return final_seg, [list(paths) for paths in seg_paths]


def _smr_step2(
    router: _Router, seg: tuple[int, ...], max_paths_per_segment: int | None
) -> tuple[tuple[int, ...], list[list[tuple[int, ...]]]]:
    """SMR step 2 on the segment nodes ``seg`` (source, r_1, ..., target).

    Returns ``(final segment nodes, paths per final segment)``; the two always have
    matching lengths (``len(paths) == len(final) - 1``).

    Step 2 deletes paths from one shared topology, so a segment found early can take the
    only way into a later segment (e.g. a relay whose single fibre neighbour is used by the
    first path). The paper does not cover this; we then merge the starved segment with a
    neighbour (drop one intermediate segment node) and route again, so SMR never returns
    an undeliverable route when a deliverable one exists.
    """
    ends = {seg[0], seg[-1]}
    seg_paths = _smr_multipath(router, seg, ends, max_paths_per_segment)
    while len(seg) > 2 and any(not paths for paths in seg_paths):
        j = next(i for i, paths in enumerate(seg_paths) if not paths)
        drop = j + 1 if j + 1 < len(seg) - 1 else j  # an intermediate node bounding segment j
        seg = seg[:drop] + seg[drop + 1 :]
        seg_paths = _smr_multipath(router, seg, ends, max_paths_per_segment)
    return seg, seg_paths


def _smr_multipath(
    router: _Router, seg: Sequence[int], ends: set[int], max_paths_per_segment: int | None
) -> list[list[tuple[int, ...]]]:
    """SMR step 2: round-robin ExDijkstra + deletion over the segments of ``seg``."""
    pairs = list(itertools.pairwise(seg))
    blocked_nodes: set[int] = set()
    blocked_edges: set[tuple[int, int]] = set()
    seg_paths: list[list[tuple[int, ...]]] = [[] for _ in pairs]
    active = list(range(len(pairs)))
    while active:
        still = []
        for j in active:
            a, b = pairs[j]
            # request end points are not relays of other segments
            extra = ends - {a, b}
            found = _search(
                router.topo,
                router.cost,
                a,
                b,
                blocked_nodes=blocked_nodes | extra if extra else blocked_nodes,
                blocked_edges=blocked_edges,
            )
            if found is None or found[1] >= INFINITE_COST:
                continue
            seg_paths[j].append(found[0])
            router.delete(found[0], blocked_nodes, blocked_edges)
            if max_paths_per_segment is None or len(seg_paths[j]) < max_paths_per_segment:
                still.append(j)
        active = still
    return seg_paths


# ---------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------


def shortest_path_route(
    graph: nx.Graph,
    source: Any,
    target: Any,
    *,
    security: Mapping[Any, float] | float,
    trusted: Collection[Any] = (),
) -> SmrResult:
    """Single fewest-hop path (ties: lexicographically smallest), one segment.

    The classical trusted-relay baseline: routing ignores security; the result's
    security is the product of the path's relay probabilities.
    """
    _check_endpoints(graph, source, target)
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    return _shortest(_Router(graph, relay), source, target)


def _shortest(router: _Router, source: Any, target: Any) -> SmrResult:
    rank = router.topo.rank
    s, d = rank[source], rank[target]
    unit = [1] * len(router.topo.nodes)
    found = _search(router.topo, unit, s, d)
    paths = [found[0]] if found is not None else []
    return router.result("shortest", source, target, [s, d], [paths])


def disjoint_multipath(
    graph: nx.Graph,
    source: Any,
    target: Any,
    *,
    security: Mapping[Any, float] | float,
    trusted: Collection[Any] = (),
    max_paths: int | None = None,
) -> SmrResult:
    """A maximum set of node-disjoint paths (one segment), as in classical multipath QKD.

    Paths come from a maximum flow on the node-split graph (scipy), so their
    number is the local node connectivity; routing ignores trust and security.
    Each path's key is combined with all others (XOR), hence the segment
    security ``1 - prod(1 - P)``. If source and target are adjacent, the direct
    link is one of the paths.
    """
    _check_endpoints(graph, source, target)
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    return _disjoint(_Router(graph, relay), source, target, max_paths)


def _disjoint(router: _Router, source: Any, target: Any, max_paths: int | None) -> SmrResult:
    rank = router.topo.rank
    graph = router.graph
    paths: list[tuple[int, ...]] = []
    if nx.has_path(graph, source, target):
        work = graph
        if graph.has_edge(source, target):
            paths.append((rank[source], rank[target]))
            work = graph.copy()
            work.remove_edge(source, target)
        if nx.has_path(work, source, target):
            found = _max_node_disjoint(router.topo, rank[source], rank[target])
            paths.extend(sorted(found, key=lambda p: (len(p), p)))
    if max_paths is not None:
        paths = sorted(paths, key=lambda p: (len(p), p))[:max_paths]
    return router.result("disjoint", source, target, [rank[source], rank[target]], [paths])


def _max_node_disjoint(topo: _Topology, s: int, t: int) -> list[tuple[int, ...]]:
    """A maximum set of node-disjoint s-t paths, ignoring a direct s-t link (max flow).

    Node splitting: node ``v`` becomes ``v_in = v -> v_out = v + n`` with
    capacity 1; each link ``(u, w)`` becomes ``u_out -> w_in`` and
    ``w_out -> u_in`` with capacity 1. Solved with
    :func:`scipy.sparse.csgraph.maximum_flow`; paths are read off by following
    positive flow from ``s_out`` (unit node capacities keep them simple).
    """
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import maximum_flow

    n = len(topo.nodes)
    rows: list[int] = []
    cols: list[int] = []
    for v in range(n):
        rows.append(v)
        cols.append(v + n)
        for w in topo.adj[v]:
            if (v == s and w == t) or (v == t and w == s):
                continue
            rows.append(v + n)
            cols.append(w)
    data = np.ones(len(rows), dtype=np.int32)
    cap = csr_array((data, (np.array(rows), np.array(cols))), shape=(2 * n, 2 * n))
    flow = maximum_flow(cap, s + n, t, method="dinic").flow
    coo = csr_array(flow).tocoo()
    nxt: dict[int, list[int]] = {}
    for u, w, f in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True):
        if f > 0:
            nxt.setdefault(u, []).append(w)
    for outs in nxt.values():
        outs.sort(reverse=True)
    paths: list[tuple[int, ...]] = []
    while nxt.get(s + n):
        path = [s]
        node = nxt[s + n].pop()
        while node != t:
            path.append(node)
            node = nxt[node + n].pop()
        path.append(t)
        paths.append(tuple(path))
    return paths


def msp(
    graph: nx.Graph,
    source: Any,
    target: Any,
    *,
    security: Mapping[Any, float] | float,
    n_paths: int,
    rng: np.random.Generator,
    trusted: Collection[Any] = (),
) -> SmrResult:
    """Multiple Stochastic Paths (Wen et al. 2009), one segment, XOR reconstruction.

    Path i is the least-cost path under fresh random relay weights
    ``U(0, 1)`` per node (a stochastic route that ignores security and trust),
    plus a penalty of ``n_nodes`` for every relay already used by an earlier
    path (trusted or not: MSP ignores trust), so paths are node-disjoint
    whenever the topology allows and
    share relays only when it does not ("node-disjoint as possible"); links
    already used are not reused. Fewer than ``n_paths`` paths are returned
    when the links run out. Paths are drawn one after another from ``rng``, so
    with equal generator states the route with ``k`` paths is the first ``k``
    paths of a route with more. Security is exact with shared relays
    (:func:`multipath_security`).
    """
    _check_endpoints(graph, source, target)
    if n_paths < 1:
        raise ValidationError(f"n_paths={n_paths} must be at least 1", source="msp")
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    return _msp(_Router(graph, relay), source, target, n_paths, rng)


def _msp(
    router: _Router, source: Any, target: Any, n_paths: int, rng: np.random.Generator
) -> SmrResult:
    rank = router.topo.rank
    s, d = rank[source], rank[target]
    n = len(router.topo.nodes)
    used = np.zeros(n)
    blocked_edges: set[tuple[int, int]] = set()
    paths: list[tuple[int, ...]] = []
    for _ in range(n_paths):
        draw = rng.random(n) + float(n) * used
        weights = np.round(draw * COST_SCALE).astype(np.int64).tolist()
        found = _search(router.topo, weights, s, d, blocked_edges=blocked_edges)
        if found is None:
            break
        path = found[0]
        paths.append(path)
        for v in path[1:-1]:
            used[v] = 1.0
        for u, w in itertools.pairwise(path):
            blocked_edges.add((u, w) if u < w else (w, u))
    return router.result("MSP", source, target, [s, d], [paths])


def msp_disjoint(
    graph: nx.Graph,
    source: Any,
    target: Any,
    *,
    security: Mapping[Any, float] | float,
    rng: np.random.Generator,
    trusted: Collection[Any] = (),
    max_paths: int | None = None,
) -> SmrResult:
    """Multiple Stochastic Paths, strictly node-disjoint, drawn until no path is left.

    The second MSP construction of the literature: path ``i`` is the least-cost path
    under fresh ``U(0, 1)`` relay weights with every relay (trusted or not) and every
    link of earlier paths removed, so all paths are node-disjoint; drawing stops when
    source and target are disconnected (or after ``max_paths``). Routing ignores trust
    and security, as :func:`msp` does. One segment, XOR reconstruction.
    """
    _check_endpoints(graph, source, target)
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    return _msp_disjoint(_Router(graph, relay), source, target, rng, max_paths)


def _msp_disjoint(
    router: _Router, source: Any, target: Any, rng: np.random.Generator, max_paths: int | None
) -> SmrResult:
    rank = router.topo.rank
    s, d = rank[source], rank[target]
    n = len(router.topo.nodes)
    blocked_nodes: set[int] = set()
    blocked_edges: set[tuple[int, int]] = set()
    paths: list[tuple[int, ...]] = []
    while max_paths is None or len(paths) < max_paths:
        weights = np.round(rng.random(n) * COST_SCALE).astype(np.int64).tolist()
        found = _search(
            router.topo, weights, s, d, blocked_nodes=blocked_nodes, blocked_edges=blocked_edges
        )
        if found is None:
            break
        path = found[0]
        paths.append(path)
        blocked_nodes.update(path[1:-1])
        for u, w in itertools.pairwise(path):
            blocked_edges.add((u, w) if u < w else (w, u))
    return router.result("MSP-disjoint", source, target, [s, d], [paths])


# ---------------------------------------------------------------------------
# Batch entry point (one topology, many evaluations)
# ---------------------------------------------------------------------------


class RequestRouter:
    """Route one request on one graph repeatedly (different trust/security) cheaply.

    Builds the rank topology once; each ``smr``/``msp``/... call then only
    recomputes relay costs. When ``security`` is one probability strictly
    between 0 and 1 (the paper's setting), the paths SMR finds do not depend
    on its value, so searches are cached per trusted set and only the security
    comparisons are redone. Results equal those of the module-level functions.
    Used by the paper reproduction.
    """

    def __init__(self, graph: nx.Graph, source: Any, target: Any) -> None:
        _check_endpoints(graph, source, target)
        self.graph = graph
        self.source = source
        self.target = target
        self.topo = _Topology(graph)
        self._caches: dict[frozenset[Any], dict[Any, Any]] = {}
        self._distances: dict[Any, dict[int, float]] = {}

    def _router(self, security: Mapping[Any, float] | float, trusted: Iterable[Any]) -> _Router:
        relay = RelaySecurity(security, frozenset(trusted))
        if not isinstance(security, int | float):
            relay.validate(self.graph)
        _check_trusted(self.graph, relay.trusted)
        cache = self._caches.setdefault(relay.trusted, {})
        return _Router(
            self.graph, relay, topo=self.topo, cache=cache, distance_cache=self._distances
        )

    def smr(
        self,
        *,
        trusted: Collection[Any],
        security: Mapping[Any, float] | float,
        max_paths_per_segment: int | None = None,
        weight: str | None = None,
    ) -> SmrResult:
        router = self._router(security, trusted)
        return _smr(router, self.source, self.target, max_paths_per_segment, weight)

    def msp(
        self,
        *,
        security: Mapping[Any, float] | float,
        n_paths: int,
        rng: np.random.Generator,
        trusted: Collection[Any] = (),
    ) -> SmrResult:
        return _msp(self._router(security, trusted), self.source, self.target, n_paths, rng)

    def msp_disjoint(
        self,
        *,
        security: Mapping[Any, float] | float,
        rng: np.random.Generator,
        trusted: Collection[Any] = (),
        max_paths: int | None = None,
    ) -> SmrResult:
        return _msp_disjoint(
            self._router(security, trusted), self.source, self.target, rng, max_paths
        )

    def shortest(
        self, *, security: Mapping[Any, float] | float, trusted: Collection[Any] = ()
    ) -> SmrResult:
        return _shortest(self._router(security, trusted), self.source, self.target)

    def disjoint(
        self,
        *,
        security: Mapping[Any, float] | float,
        trusted: Collection[Any] = (),
        max_paths: int | None = None,
    ) -> SmrResult:
        return _disjoint(self._router(security, trusted), self.source, self.target, max_paths)

    def reevaluate(
        self,
        result: SmrResult,
        *,
        security: Mapping[Any, float] | float,
        trusted: Collection[Any],
        max_paths: int | None = None,
    ) -> SmrResult:
        """The same paths (the first ``max_paths`` per segment), re-scored for another setting."""
        router = self._router(security, trusted)
        rank = self.topo.rank
        seg_paths = [
            [tuple(rank[v] for v in p) for p in seg.paths[:max_paths]] for seg in result.segments
        ]
        seg_ranks = [rank[v] for v in result.segment_nodes]
        return router.result(result.method, result.source, result.target, seg_ranks, seg_paths)
