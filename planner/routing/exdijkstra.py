"""ExDijkstra (the path of greatest relay security, the SMR paper's metric E_sp) and
:class:`Router`, the per-request routing state every method shares.

A :class:`Router` holds a graph's rank topology, the integer relay costs of one
:class:`~planner.routing.security.RelaySecurity` and the searches' caches; the
``route_*`` functions of :mod:`planner.routing.smr_routing` and
:mod:`planner.routing.baselines` route one request on it. Build one router and
reuse it to route many demands on the same graph and trusted set.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np

from planner.routing.graph import INFINITE_COST, Topology, probability_cost, search
from planner.routing.security import (
    Path,
    RelaySecurity,
    Segment,
    SmrResult,
    check_endpoints,
    multipath_security,
    relay_costs,
)


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
    router = checked_router(graph, source, target, security, trusted)
    topo = router.topo
    found = search(topo, router.cost, topo.rank[source], topo.rank[target])
    if found is None:
        return None
    return tuple(topo.nodes[i] for i in found[0])


def checked_router(
    graph: nx.Graph, source: Any, target: Any, security: Mapping[Any, float] | float, trusted: Collection[Any]
) -> Router:
    """A :class:`Router` for one request on ``graph``, after checking its end points and the security values
    (raises ``ValidationError`` naming the problem)."""
    check_endpoints(graph, source, target)
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    return Router(graph, relay)


class Router:
    """Shared state for routing on one graph with one trusted set and security: topology, costs, caches.

    ``topo`` may be a :class:`Topology` built once for the graph and shared by many routers;
    ``cache`` memoises searches (used only when every untrusted relay has the same
    probability strictly between 0 and 1, where the paths do not depend on it);
    ``distance_cache`` holds classical distances, which do not depend on trust and may be
    shared by routers of different trusted sets on the same graph.
    """

    def __init__(
        self,
        graph: nx.Graph,
        relay: RelaySecurity,
        *,
        topo: Topology | None = None,
        cache: dict[Any, Any] | None = None,
        distance_cache: dict[Any, dict[int, float]] | None = None,
    ):
        self.graph = graph
        self.distance_cache = distance_cache if distance_cache is not None else {}
        self.relay = relay
        self.topo = topo or Topology(graph)
        self._cost: list[int] | None = None
        # With one probability 0 < p < 1 for every untrusted relay, path cost is
        # (number of untrusted relays) * const, so the paths found do not depend
        # on p: searches may be cached per trusted set (``cache``).
        # The integer cost of such a relay must be positive too (p within 1e-12 of 1 rounds
        # to cost 0, and the search would then rank paths by hops alone).
        uniform = relay.uniform
        cacheable = uniform is not None and 0.0 < uniform < 1.0 and probability_cost(uniform) > 0
        self.cache = cache if cacheable else None

    @property
    def cost(self) -> list[int]:
        """Integer relay costs, computed on first use (re-scoring needs none)."""
        if self._cost is None:
            self._cost = relay_costs(self.topo, self.relay)
        return self._cost

    def untrusted_interior(self, path: Sequence[int]) -> list[int]:
        """Ranks of the untrusted interior relays of a rank path."""
        nodes = self.topo.nodes
        return [i for i in path[1:-1] if nodes[i] not in self.relay.trusted]

    def path_security(self, path: Sequence[int]) -> float:
        """Security of a rank path (product of its untrusted relays' probabilities)."""
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
            found = search(self.topo, self.cost, a, b, blocked_nodes=blocked_nodes, blocked_edges=blocked_edges)
            if found is None or found[1] >= INFINITE_COST:
                break
            path = found[0]
            paths.append(path)
            self.delete(path, blocked_nodes, blocked_edges)
        return paths

    def delete(self, path: Sequence[int], blocked_nodes: set[int], blocked_edges: set[tuple[int, int]]) -> None:
        """Delete a found path: block its untrusted relays and all of its links."""
        blocked_nodes.update(self.untrusted_interior(path))
        for u, w in itertools.pairwise(path):
            blocked_edges.add((u, w) if u < w else (w, u))

    def two_path_security(self, a: int, b: int, blocked_nodes: set[int]) -> float:
        """Security of the two best ExDijkstra paths a -> b (a missing path counts 0)."""
        key = ("two", a, b, frozenset(blocked_nodes))
        paths = self.cache.get(key) if self.cache is not None else None
        if paths is None:
            paths = self.multipath(a, b, blocked_nodes=set(blocked_nodes), blocked_edges=set(), limit=2)
            if self.cache is not None:
                self.cache[key] = paths
        fail = 1.0
        for path in paths:
            fail *= 1.0 - self.path_security(path)
        return 1.0 - fail

    def distances(self, source: int, weight: str | None) -> dict[int, float]:
        """Classical distance (edge attribute ``weight``, hops when None) from rank ``source`` to
        every reachable rank; cached."""
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
        """The :class:`SmrResult` of rank paths per segment (segment nodes ``seg_ranks``), with exact security."""
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
