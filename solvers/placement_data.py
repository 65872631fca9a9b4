"""Input of repeater placement: tables, options, validation and the per-pair hop graphs.

:class:`PlacementData` and :class:`PlacementOptions` are the input;
:func:`fibre_distance_table` derives the distance table from a fibre graph;
the preprocessing builds, per pair of end nodes, the L_max hop graph and its arcs
(layered when the hop limit is enforced). See :mod:`solvers.placement` for the problem
and the formulation.
"""

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import networkx as nx
import numpy as np
import pandas as pd

_LEN_TOL_KM = 1e-9


class PlacementInputError(ValueError):
    """Invalid placement input (unknown node, bad parameter); the message names it and the fix."""


@dataclass(frozen=True)
class PlacementData:
    """Plain-table input of the placement problem.

    ``nodes``: every node name of the fibre graph; ``end_nodes``: the end nodes
    (all other nodes are candidate repeater sites); ``distance_km``: DataFrame
    with columns ``node_a``, ``node_b``, ``distance_km`` giving the shortest
    fibre distance of unordered node pairs (pairs not listed cannot form an
    elementary link; pairs farther than ``L_max`` may be listed and are ignored).
    """

    nodes: Sequence[str]
    end_nodes: Sequence[str]
    distance_km: pd.DataFrame


@dataclass(frozen=True)
class PlacementOptions:
    """Parameters of the placement problem (RepAlloc meaning) and model switches.

    ``max_link_km`` = L_max, ``max_repeaters_per_path`` = N_max,
    ``capacity_sessions`` = D, ``robustness_paths`` = K,
    ``alpha_per_km`` = weight of the total elementary-link length.
    ``lazy_hop_limit``: start pairs on the un-layered hop graph and layer only
    pairs whose paths break N_max (exact either way).
    ``lexicographic``: when ``alpha`` x the longest possible total length is
    below 1 (so the weighted optimum has the least repeater count), first
    minimise the count, then the length at that count (exact; much faster).
    """

    max_link_km: float
    max_repeaters_per_path: int
    capacity_sessions: int
    robustness_paths: int = 1
    alpha_per_km: float = 0.0
    lazy_hop_limit: bool = True
    lexicographic: bool = True


# ---------------------------------------------------------------------------
# distances and preprocessing
# ---------------------------------------------------------------------------


def fibre_distance_table(fibre_edges: pd.DataFrame, *, max_distance_km: float | None = None) -> pd.DataFrame:
    """Shortest fibre distance between all node pairs of an undirected fibre graph.

    ``fibre_edges`` has columns ``node_a``, ``node_b``, ``length_km``. Returns a
    DataFrame ``node_a, node_b, distance_km`` with one row per unordered pair of
    distinct connected nodes (only pairs within ``max_distance_km`` when given).
    Guarantees ``distance_km`` is the Dijkstra distance over ``length_km``.
    """
    missing = {"node_a", "node_b", "length_km"} - set(fibre_edges.columns)
    if missing:
        raise PlacementInputError(
            f"fibre edge table lacks columns {sorted(missing)} (fix: provide node_a, node_b, length_km)"
        )
    lengths = fibre_edges["length_km"].to_numpy(dtype=float)
    if np.any(~np.isfinite(lengths)) or np.any(lengths < 0):
        bad = int(np.flatnonzero(~np.isfinite(lengths) | (lengths < 0))[0])
        raise PlacementInputError(
            f"fibre edge row {bad}: length_km={lengths[bad]} (fix: use a finite non-negative length)"
        )
    graph = nx.Graph()
    for a, b, length in zip(fibre_edges["node_a"], fibre_edges["node_b"], lengths, strict=True):
        if a == b:
            continue
        if graph.has_edge(a, b):
            length = min(length, graph[a][b]["length_km"])
        graph.add_edge(a, b, length_km=float(length))
    rows: list[tuple[str, str, float]] = []
    order = {n: i for i, n in enumerate(graph.nodes)}
    for src, dists in nx.all_pairs_dijkstra_path_length(graph, cutoff=max_distance_km, weight="length_km"):
        for dst, d in dists.items():
            if order[dst] > order[src]:
                rows.append((src, dst, float(d)))
    return pd.DataFrame(rows, columns=["node_a", "node_b", "distance_km"])


@dataclass
class _PairGraph:
    """Preprocessed L_max hop graph of one end-node pair."""

    s: int
    t: int
    d_s: np.ndarray  # hop distance (arcs) from s through repeaters; large when unreachable
    d_t: np.ndarray
    candidates: np.ndarray  # repeater indices that can lie on a feasible path
    direct: bool
    layered: bool = False


@dataclass
class PlacementInstance:
    """Validated placement problem in index space: distances, allowed elementary links, per-pair hop graphs."""

    names: list[str]
    end_idx: list[int]
    is_end: np.ndarray
    dist_km: np.ndarray  # n x n, inf where no route is known
    hop: np.ndarray  # bool n x n, elementary link allowed
    pairs: list[_PairGraph]
    n_max: int
    k: int
    capacity: int
    alpha: float


_FAR = 10**6


def _hop_bfs(hop: np.ndarray, is_end: np.ndarray, source: int) -> np.ndarray:
    """Arc count from ``source`` to every node using only non-end intermediate nodes."""
    n = hop.shape[0]
    dist = np.full(n, _FAR, dtype=np.int64)
    dist[source] = 0
    queue = deque([source])
    while queue:
        u = queue.popleft()
        if u != source and is_end[u]:
            continue  # end nodes are never intermediate
        for v in np.flatnonzero(hop[u]):
            if dist[v] == _FAR:
                dist[v] = dist[u] + 1
                queue.append(int(v))
    return dist


def _validate(data: PlacementData, options: PlacementOptions) -> None:
    problems: list[str] = []
    if not (options.max_link_km > 0 and math.isfinite(options.max_link_km)):
        problems.append(f"max_link_km={options.max_link_km} (fix: a positive finite length)")
    if options.max_repeaters_per_path < 0:
        problems.append(f"max_repeaters_per_path={options.max_repeaters_per_path} (fix: >= 0)")
    if options.capacity_sessions < 1:
        problems.append(f"capacity_sessions={options.capacity_sessions} (fix: >= 1)")
    if options.robustness_paths < 1:
        problems.append(f"robustness_paths={options.robustness_paths} (fix: >= 1)")
    if options.alpha_per_km < 0:
        problems.append(f"alpha_per_km={options.alpha_per_km} (fix: >= 0)")
    names = list(data.nodes)
    if len(set(names)) != len(names):
        problems.append("nodes: duplicate node names (fix: make node names unique)")
    known = set(names)
    for e in data.end_nodes:
        if e not in known:
            problems.append(f"end_nodes: '{e}' is not a node (fix: use a name from nodes)")
    if len(set(data.end_nodes)) != len(list(data.end_nodes)):
        problems.append("end_nodes: duplicates (fix: list each end node once)")
    if len(list(data.end_nodes)) < 2:
        problems.append("end_nodes: need at least two end nodes")
    missing = {"node_a", "node_b", "distance_km"} - set(data.distance_km.columns)
    if missing:
        problems.append(f"distance_km table lacks columns {sorted(missing)}")
    else:
        for col in ("node_a", "node_b"):
            unknown = sorted(set(data.distance_km[col]) - known)
            if unknown:
                problems.append(f"distance_km.{col}: unknown nodes {unknown[:5]} (fix: list them in nodes)")
        d = data.distance_km["distance_km"].to_numpy(dtype=float)
        if np.any(np.isnan(d)) or np.any(d < 0):
            row = int(np.flatnonzero(np.isnan(d) | (d < 0))[0])
            problems.append(f"distance_km row {row}: invalid distance {d[row]} (fix: >= 0)")
    if problems:
        raise PlacementInputError("; ".join(problems))


def preprocess_placement(data: PlacementData, options: PlacementOptions) -> PlacementInstance:
    """Validate the input (raises :class:`PlacementInputError`) and build every pair's hop graph."""
    _validate(data, options)
    names = list(data.nodes)
    index = {n: i for i, n in enumerate(names)}
    n = len(names)
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0.0)
    ia = data.distance_km["node_a"].map(index).to_numpy(dtype=np.int64)
    ib = data.distance_km["node_b"].map(index).to_numpy(dtype=np.int64)
    dv = data.distance_km["distance_km"].to_numpy(dtype=float)
    # keep the smallest listed value for a pair listed twice
    np.minimum.at(dist, (ia, ib), dv)
    np.minimum.at(dist, (ib, ia), dv)
    hop = dist <= options.max_link_km + _LEN_TOL_KM
    np.fill_diagonal(hop, False)
    end_idx = [index[e] for e in data.end_nodes]
    is_end = np.zeros(n, dtype=bool)
    is_end[end_idx] = True
    n_max = options.max_repeaters_per_path
    pairs: list[_PairGraph] = []
    for s, t in combinations(end_idx, 2):
        d_s = _hop_bfs(hop, is_end, s)
        d_t = _hop_bfs(hop, is_end, t)
        ok = (~is_end) & (d_s + d_t <= n_max + 1)
        pairs.append(_PairGraph(s=s, t=t, d_s=d_s, d_t=d_t, candidates=np.flatnonzero(ok), direct=bool(hop[s, t])))
    return PlacementInstance(
        names=names,
        end_idx=end_idx,
        is_end=is_end,
        dist_km=dist,
        hop=hop,
        pairs=pairs,
        n_max=n_max,
        k=options.robustness_paths,
        capacity=options.capacity_sessions,
        alpha=options.alpha_per_km,
    )


# ---------------------------------------------------------------------------
# arcs of the per-pair flow graphs
# ---------------------------------------------------------------------------

#: vertex keys of the super source and sink of a pair's flow graph
SRC = -1
SNK = -2


@dataclass
class PairArcs:
    """All flow arcs of the model; vertex keys are (node, layer), layer 0 = un-layered."""

    pair: list[int] = field(default_factory=list)
    tail: list[tuple[int, int]] = field(default_factory=list)
    head: list[tuple[int, int]] = field(default_factory=list)
    u: list[int] = field(default_factory=list)  # tail node index
    v: list[int] = field(default_factory=list)  # head node index
    length_km: list[float] = field(default_factory=list)

    def add(self, q: int, tail: tuple[int, int], head: tuple[int, int], u: int, v: int, length: float) -> None:
        self.pair.append(q)
        self.tail.append(tail)
        self.head.append(head)
        self.u.append(u)
        self.v.append(v)
        self.length_km.append(length)


def pair_arcs(inst: PlacementInstance, q: int, arcs: PairArcs) -> None:
    """Append the flow arcs of pair ``q`` (layered when its hop graph is) to ``arcs``."""
    pg = inst.pairs[q]
    s, t, n_max = pg.s, pg.t, inst.n_max
    hop, dist = inst.hop, inst.dist_km
    cand = [int(c) for c in pg.candidates]
    src, snk = (SRC, 0), (SNK, 0)
    if pg.direct:
        arcs.add(q, src, snk, s, t, dist[s, t])
    if not pg.layered:
        for v in cand:
            if hop[s, v]:
                arcs.add(q, src, (v, 0), s, v, dist[s, v])
            if hop[v, t]:
                arcs.add(q, (v, 0), snk, v, t, dist[v, t])
        for u in cand:
            for v in cand:
                if u != v and hop[u, v] and pg.d_s[u] + 1 + pg.d_t[v] <= n_max + 1:
                    arcs.add(q, (u, 0), (v, 0), u, v, dist[u, v])
        return
    window = {u: (int(pg.d_s[u]), int(n_max + 1 - pg.d_t[u])) for u in cand}
    for v in cand:
        lo, hi = window[v]
        if hop[s, v] and lo <= 1 <= hi:
            arcs.add(q, src, (v, 1), s, v, dist[s, v])
        if hop[v, t]:
            for layer in range(lo, hi + 1):
                arcs.add(q, (v, layer), snk, v, t, dist[v, t])
    for u in cand:
        lo_u, hi_u = window[u]
        for v in cand:
            if u == v or not hop[u, v]:
                continue
            lo_v, hi_v = window[v]
            for layer in range(max(lo_u, lo_v - 1), min(hi_u, hi_v - 1) + 1):
                arcs.add(q, (u, layer), (v, layer + 1), u, v, dist[u, v])
