"""Segment-based Multipath Routing (Wang, Li, Xue et al., IEEE Commun. Mag. 2023, "the SMR paper").

:func:`smr` routes one request on a graph; :func:`route_smr` routes it on a prepared
:class:`~planner.routing.exdijkstra.Router` (shared by many demands on the same graph
and trusted set; both give the same result). Interpretation choices that change
results are listed in ``docs/smr_decisions.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import networkx as nx

from planner.routing.exdijkstra import Router
from planner.routing.graph import INFINITE_COST, search
from planner.routing.security import RelaySecurity, SmrResult, check_endpoints, check_trusted


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
    check_endpoints(graph, source, target)
    check_trusted(graph, trusted)
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    return route_smr(Router(graph, relay), source, target, max_paths_per_segment, weight)


def route_smr(
    router: Router,
    source: Any,
    target: Any,
    max_paths_per_segment: int | None = None,
    weight: str | None = None,
) -> SmrResult:
    """:func:`smr` of one request on a prepared router (same rules, same result).

    ``router`` carries the graph, the trusted set and the security; the end points
    are not checked here (call :func:`~planner.routing.security.check_endpoints`
    first, and :func:`~planner.routing.security.check_trusted` and
    ``RelaySecurity.validate`` when building the router), so that routing many
    demands on one router pays for the checks once.
    """
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
            segmented = router.two_path_security(cur, r, set(others)) * router.two_path_security(r, d, set(ends - {d}))
            if segmented > unseg:
                seg.append(r)
                cur = r
            else:
                break
    seg.append(d)
    final_seg, seg_paths = _smr_step2_cached(router, tuple(seg), max_paths_per_segment)
    return router.result("SMR", source, target, final_seg, seg_paths)


def _smr_step2_cached(
    router: Router, seg: tuple[int, ...], max_paths_per_segment: int | None
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
    router: Router, seg: tuple[int, ...], max_paths_per_segment: int | None
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
    router: Router, seg: Sequence[int], ends: set[int], max_paths_per_segment: int | None
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
            found = search(
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
