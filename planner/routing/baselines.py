"""The routing baselines SMR is compared with, each one segment with XOR reconstruction:

- :func:`shortest_path_route` -- the single fewest-hop path;
- :func:`disjoint_multipath` -- a maximum set of node-disjoint paths (max flow);
- :func:`msp` -- Multiple Stochastic Paths (Wen et al., Sci. China F 52(1), 2009),
  node-disjoint where possible, a given number of them;
- :func:`msp_disjoint` -- stochastic paths kept strictly node-disjoint until none is left.

Each has a ``route_*`` twin that routes on a prepared
:class:`~planner.routing.exdijkstra.Router`.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping
from typing import Any

import networkx as nx
import numpy as np

from planner.errors import ValidationError
from planner.routing.exdijkstra import Router, checked_router
from planner.routing.graph import COST_SCALE, Topology, search
from planner.routing.security import SmrResult, check_endpoints


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
    return route_shortest(checked_router(graph, source, target, security, trusted), source, target)


def route_shortest(router: Router, source: Any, target: Any) -> SmrResult:
    """:func:`shortest_path_route` on a prepared router (end points and security already checked)."""
    rank = router.topo.rank
    s, d = rank[source], rank[target]
    unit = [1] * len(router.topo.nodes)
    found = search(router.topo, unit, s, d)
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
    return route_disjoint(checked_router(graph, source, target, security, trusted), source, target, max_paths)


def route_disjoint(router: Router, source: Any, target: Any, max_paths: int | None) -> SmrResult:
    """:func:`disjoint_multipath` on a prepared router (end points and security already checked)."""
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


def _max_node_disjoint(topo: Topology, s: int, t: int) -> list[tuple[int, ...]]:
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
    check_endpoints(graph, source, target)
    if n_paths < 1:
        raise ValidationError(f"n_paths={n_paths} must be at least 1", source="msp")
    return route_msp(checked_router(graph, source, target, security, trusted), source, target, n_paths, rng)


def route_msp(router: Router, source: Any, target: Any, n_paths: int, rng: np.random.Generator) -> SmrResult:
    """:func:`msp` on a prepared router (end points and security already checked)."""
    rank = router.topo.rank
    s, d = rank[source], rank[target]
    paths = _stochastic_paths(router, s, d, rng, max_paths=n_paths, disjoint=False)
    return router.result("MSP", source, target, [s, d], [paths])


def _stochastic_paths(
    router: Router, s: int, d: int, rng: np.random.Generator, *, max_paths: int | None, disjoint: bool
) -> list[tuple[int, ...]]:
    """MSP paths s -> d (ranks), drawn one after another until ``max_paths`` or none is left.

    Each path is the least-cost path under fresh ``U(0, 1)`` relay weights (one draw
    of ``rng`` per path) on the links no earlier path used. The relays of earlier
    paths are removed when ``disjoint``, else they cost ``n_nodes`` more (used only
    when the topology leaves no other way).
    """
    n = len(router.topo.nodes)
    used = np.zeros(n)
    blocked_nodes: set[int] = set()
    blocked_edges: set[tuple[int, int]] = set()
    paths: list[tuple[int, ...]] = []
    while max_paths is None or len(paths) < max_paths:
        draw = rng.random(n) if disjoint else rng.random(n) + float(n) * used
        weights = np.round(draw * COST_SCALE).astype(np.int64).tolist()
        found = search(router.topo, weights, s, d, blocked_nodes=blocked_nodes, blocked_edges=blocked_edges)
        if found is None:
            break
        path = found[0]
        paths.append(path)
        if disjoint:
            blocked_nodes.update(path[1:-1])
        else:
            used[list(path[1:-1])] = 1.0
        for u, w in itertools.pairwise(path):
            blocked_edges.add((u, w) if u < w else (w, u))
    return paths


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
    return route_msp_disjoint(checked_router(graph, source, target, security, trusted), source, target, rng, max_paths)


def route_msp_disjoint(
    router: Router, source: Any, target: Any, rng: np.random.Generator, max_paths: int | None
) -> SmrResult:
    """:func:`msp_disjoint` on a prepared router (end points and security already checked)."""
    rank = router.topo.rank
    s, d = rank[source], rank[target]
    paths = _stochastic_paths(router, s, d, rng, max_paths=max_paths, disjoint=True)
    return router.result("MSP-disjoint", source, target, [s, d], [paths])
