"""One request routed many times on one graph (different trusted sets and security), cheaply."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import networkx as nx
import numpy as np

from planner.routing.baselines import route_disjoint, route_msp, route_msp_disjoint, route_shortest
from planner.routing.exdijkstra import Router
from planner.routing.graph import Topology
from planner.routing.security import RelaySecurity, SmrResult, check_endpoints, check_trusted
from planner.routing.smr_routing import route_smr


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
        check_endpoints(graph, source, target)
        self.graph = graph
        self.source = source
        self.target = target
        self.topo = Topology(graph)
        self._caches: dict[frozenset[Any], dict[Any, Any]] = {}
        self._distances: dict[Any, dict[int, float]] = {}

    def _router(self, security: Mapping[Any, float] | float, trusted: Iterable[Any]) -> Router:
        relay = RelaySecurity(security, frozenset(trusted))
        if not isinstance(security, int | float):
            relay.validate(self.graph)
        check_trusted(self.graph, relay.trusted)
        cache = self._caches.setdefault(relay.trusted, {})
        return Router(self.graph, relay, topo=self.topo, cache=cache, distance_cache=self._distances)

    def smr(
        self,
        *,
        trusted: Collection[Any],
        security: Mapping[Any, float] | float,
        max_paths_per_segment: int | None = None,
        weight: str | None = None,
    ) -> SmrResult:
        router = self._router(security, trusted)
        return route_smr(router, self.source, self.target, max_paths_per_segment, weight)

    def msp(
        self,
        *,
        security: Mapping[Any, float] | float,
        n_paths: int,
        rng: np.random.Generator,
        trusted: Collection[Any] = (),
    ) -> SmrResult:
        return route_msp(self._router(security, trusted), self.source, self.target, n_paths, rng)

    def msp_disjoint(
        self,
        *,
        security: Mapping[Any, float] | float,
        rng: np.random.Generator,
        trusted: Collection[Any] = (),
        max_paths: int | None = None,
    ) -> SmrResult:
        return route_msp_disjoint(self._router(security, trusted), self.source, self.target, rng, max_paths)

    def shortest(self, *, security: Mapping[Any, float] | float, trusted: Collection[Any] = ()) -> SmrResult:
        return route_shortest(self._router(security, trusted), self.source, self.target)

    def disjoint(
        self,
        *,
        security: Mapping[Any, float] | float,
        trusted: Collection[Any] = (),
        max_paths: int | None = None,
    ) -> SmrResult:
        return route_disjoint(self._router(security, trusted), self.source, self.target, max_paths)

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
        seg_paths = [[tuple(rank[v] for v in p) for p in seg.paths[:max_paths]] for seg in result.segments]
        seg_ranks = [rank[v] for v in result.segment_nodes]
        return router.result(result.method, result.source, result.target, seg_ranks, seg_paths)
