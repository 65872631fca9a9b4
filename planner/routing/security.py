"""Relay security probabilities, route results and their exact end-to-end security.

Security model (SMR paper, Sec. II-B): every untrusted relay ``v`` resists the
eavesdropper independently with probability ``p_v``; trusted relays and the two
end points of a path count 1. A path is secure when all its relays resist; a
segment is secure when at least one of its paths is; the end-to-end key is
secure when every segment is. :attr:`SmrResult.security` is this probability,
computed *exactly*, also when paths share untrusted relays (MSP): shared relays
are conditioned on (:func:`multipath_security`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from planner.errors import ValidationError
from planner.routing.graph import Topology, edge_key, probability_cost

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
                    key = edge_key(u, v)
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

    def __init__(self, security: Mapping[Any, float] | float, trusted: Collection[Any] = ()) -> None:
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


def check_endpoints(graph: nx.Graph, source: Any, target: Any) -> None:
    """Raise ``ValidationError`` unless source and target are two different nodes of ``graph``."""
    missing = [repr(n) for n in (source, target) if n not in graph]
    if missing:
        raise ValidationError(
            f"request end point(s) {', '.join(missing)} not in the network",
            source="routing request (use node ids of the graph)",
        )
    if source == target:
        raise ValidationError(f"source and target are the same node {source!r}")


def check_trusted(graph: nx.Graph, trusted: Collection[Any]) -> None:
    """Raise ``ValidationError`` naming (up to ten) trusted relays that are not nodes of ``graph``."""
    missing = [repr(n) for n in trusted if n not in graph]
    if missing:
        raise ValidationError(
            "trusted relays not in the network: " + ", ".join(missing[:10]),
            source="trusted relay set",
        )


def relay_costs(topo: Topology, relay: RelaySecurity) -> list[int]:
    """Integer -log(p) * COST_SCALE per node (trusted and p=1: 0; p=0: INFINITE_COST)."""
    uniform = relay.uniform
    if uniform is not None:
        c_all = probability_cost(uniform)
        trusted = relay.trusted
        return [0 if v in trusted else c_all for v in topo.nodes]
    cache: dict[float, int] = {}
    out = []
    for v in topo.nodes:
        p = relay.node(v)
        c = cache.get(p)
        if c is None:
            c = cache[p] = probability_cost(p)
        out.append(c)
    return out
