"""Quantum-repeater placement on candidate sites (the RepAlloc setting).

Problem (Rabbie, Chakraborty, Avis, Wehner, "Designing quantum networks using
preexisting infrastructure", npj Quantum Information 8, 5 (2022)): repeaters
may only be placed at existing nodes of a fibre graph. Every pair of end nodes
needs ``K`` (robustness) paths ``s, r_1, ..., r_m, t`` such that

* consecutive nodes are at most ``L_max`` km apart along the shortest fibre
  route (one *elementary link*),
* ``m <= N_max`` repeaters per path, repeaters are non-end nodes,
* the ``K`` paths of a pair share no repeater node (and use the direct link
  ``s-t`` at most once),
* every chosen repeater serves at most ``D`` (capacity) (pair, path) sessions.

Objective: number of repeaters plus ``alpha`` x total elementary-link length
summed over all paths.

Formulation (our own): for each pair one *aggregated* integer flow of value
``K`` from ``s`` to ``t`` with unit capacity on every repeater node, so that
the flow decomposes into ``K`` repeater-disjoint paths without any symmetry
between path copies. The per-path hop limit ``N_max`` is enforced on a
*layered* copy of the pair's L_max hop graph (vertex ``(u, l)`` = "u is the
l-th repeater"), restricted to the layer window
``d_s(u) <= l <= N_max + 1 - d_t(u)`` given by hop distances to the two end
nodes; nodes and arcs that cannot lie on any path with at most ``N_max``
repeaters are removed. With ``lazy_hop_limit`` each pair starts on the
smaller un-layered hop graph (a relaxation); after each solve the pairs whose
decoded paths break the hop limit are switched to their layered graph and the
model is solved again, so the final solution is exact and every intermediate
bound is a valid lower bound. The linking ``flow of pair q through u <= y_u``
(valid because a pair's paths are repeater-disjoint) gives a much stronger
LP bound than the aggregate capacity row ``sum_q flow_q(u) <= D y_u`` alone.
When ``alpha`` x the longest possible total length ``K |pairs| (N_max + 1)
L_max`` is below 1, every weighted optimum uses the least number of
repeaters, so the model is solved lexicographically: first the repeater count
alone (an integer objective, whose LP bound HiGHS rounds up, which closes the
gap at the root on the RepAlloc instances), then the weighted objective with
the count fixed to that minimum; the result is the weighted optimum.
The MILP is passed to HiGHS directly (highspy) as a sparse matrix; a small
Pyomo twin (:func:`build_pyomo_model`) of the same formulation exists for
cross-checking through :func:`solvers.highs_driver.solve_model`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp

from solvers.base import SolveResult, SolverOptions, SolveStatus, relative_gap
from solvers.highs_driver import HighsRun, LinearArrays, solve_arrays, solve_model

logger = logging.getLogger(__name__)

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


def fibre_distance_table(
    fibre_edges: pd.DataFrame, *, max_distance_km: float | None = None
) -> pd.DataFrame:
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
    for src, dists in nx.all_pairs_dijkstra_path_length(
        graph, cutoff=max_distance_km, weight="length_km"
    ):
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
class _Instance:
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
                problems.append(
                    f"distance_km.{col}: unknown nodes {unknown[:5]} (fix: list them in nodes)"
                )
        d = data.distance_km["distance_km"].to_numpy(dtype=float)
        if np.any(np.isnan(d)) or np.any(d < 0):
            row = int(np.flatnonzero(np.isnan(d) | (d < 0))[0])
            problems.append(f"distance_km row {row}: invalid distance {d[row]} (fix: >= 0)")
    if problems:
        raise PlacementInputError("; ".join(problems))


def _preprocess(data: PlacementData, options: PlacementOptions) -> _Instance:
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
        pairs.append(
            _PairGraph(
                s=s, t=t, d_s=d_s, d_t=d_t, candidates=np.flatnonzero(ok), direct=bool(hop[s, t])
            )
        )
    return _Instance(
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

_SRC = -1
_SNK = -2


@dataclass
class _Arcs:
    """All flow arcs of the model; vertex keys are (node, layer), layer 0 = un-layered."""

    pair: list[int] = field(default_factory=list)
    tail: list[tuple[int, int]] = field(default_factory=list)
    head: list[tuple[int, int]] = field(default_factory=list)
    u: list[int] = field(default_factory=list)  # tail node index
    v: list[int] = field(default_factory=list)  # head node index
    length_km: list[float] = field(default_factory=list)

    def add(
        self, q: int, tail: tuple[int, int], head: tuple[int, int], u: int, v: int, length: float
    ) -> None:
        self.pair.append(q)
        self.tail.append(tail)
        self.head.append(head)
        self.u.append(u)
        self.v.append(v)
        self.length_km.append(length)


def _pair_arcs(inst: _Instance, q: int, arcs: _Arcs) -> None:
    pg = inst.pairs[q]
    s, t, n_max = pg.s, pg.t, inst.n_max
    hop, dist = inst.hop, inst.dist_km
    cand = [int(c) for c in pg.candidates]
    src, snk = (_SRC, 0), (_SNK, 0)
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


# ---------------------------------------------------------------------------
# sparse MILP
# ---------------------------------------------------------------------------


@dataclass
class _Milp:
    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integrality: np.ndarray
    a_matrix: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    y_cols: dict[int, int]  # repeater node -> column
    arcs: _Arcs
    n_arc: int


def _build_milp(inst: _Instance, *, alpha: float, n_repeaters: int | None = None) -> _Milp:
    arcs = _Arcs()
    for q in range(len(inst.pairs)):
        _pair_arcs(inst, q, arcs)
    n_arc = len(arcs.pair)
    used = sorted({v for v, q in zip(arcs.v, arcs.pair, strict=True) if not inst.is_end[v]})
    y_cols = {u: n_arc + i for i, u in enumerate(used)}
    n_col = n_arc + len(used)
    cost = np.zeros(n_col)
    cost[:n_arc] = alpha * np.asarray(arcs.length_km, dtype=float)
    cost[n_arc:] = 1.0
    lower = np.zeros(n_col)
    upper = np.ones(n_col)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rlo: list[float] = []
    rup: list[float] = []

    def new_row(lo: float, up: float) -> int:
        rlo.append(lo)
        rup.append(up)
        return len(rlo) - 1

    source_row = {q: new_row(inst.k, inst.k) for q in range(len(inst.pairs))}
    vertex_row: dict[tuple[int, tuple[int, int]], int] = {}
    link_row: dict[tuple[int, int], int] = {}
    cap_row: dict[int, int] = {}
    sessions_possible: dict[int, int] = {}
    for _q, v in {(q, v) for q, v in zip(arcs.pair, arcs.v, strict=True) if not inst.is_end[v]}:
        sessions_possible[v] = sessions_possible.get(v, 0) + 1
    for j in range(n_arc):
        q, tail, head, v = arcs.pair[j], arcs.tail[j], arcs.head[j], arcs.v[j]
        if tail[0] == _SRC:
            rows.append(source_row[q])
            cols.append(j)
            vals.append(1.0)
        else:
            key = (q, tail)
            if key not in vertex_row:
                vertex_row[key] = new_row(0.0, 0.0)
            rows.append(vertex_row[key])
            cols.append(j)
            vals.append(-1.0)
        if head[0] != _SNK:
            key = (q, head)
            if key not in vertex_row:
                vertex_row[key] = new_row(0.0, 0.0)
            rows.append(vertex_row[key])
            cols.append(j)
            vals.append(1.0)
            lk = (q, v)
            if lk not in link_row:
                link_row[lk] = new_row(-np.inf, 0.0)
                rows.append(link_row[lk])
                cols.append(y_cols[v])
                vals.append(-1.0)
            rows.append(link_row[lk])
            cols.append(j)
            vals.append(1.0)
            if sessions_possible[v] > inst.capacity:
                if v not in cap_row:
                    cap_row[v] = new_row(-np.inf, 0.0)
                    rows.append(cap_row[v])
                    cols.append(y_cols[v])
                    vals.append(-float(inst.capacity))
                rows.append(cap_row[v])
                cols.append(j)
                vals.append(1.0)
    if n_repeaters is not None:
        count_row = new_row(float(n_repeaters), float(n_repeaters))
        for col in y_cols.values():
            rows.append(count_row)
            cols.append(col)
            vals.append(1.0)
    a = sp.csc_matrix(
        (np.asarray(vals), (np.asarray(rows), np.asarray(cols))), shape=(len(rlo), n_col)
    )
    a.sum_duplicates()
    return _Milp(
        cost=cost,
        lower=lower,
        upper=upper,
        integrality=np.ones(n_col, dtype=np.int64),
        a_matrix=a,
        row_lower=np.asarray(rlo, dtype=float),
        row_upper=np.asarray(rup, dtype=float),
        y_cols=y_cols,
        arcs=arcs,
        n_arc=n_arc,
    )


def _solve_highs(
    milp: _Milp, solver_options: SolverOptions, time_limit_s: float, start: np.ndarray | None
) -> HighsRun:
    """One round's solve by the HiGHS driver; the returned column values give the returned
    objective. The loop of rounds is bounded by its own deadline, so a round's limit is not
    reported to the stage budget."""
    arrays = LinearArrays(
        col_cost=milp.cost,
        col_lower=milp.lower,
        col_upper=milp.upper,
        a_matrix=milp.a_matrix,
        row_lower=milp.row_lower,
        row_upper=milp.row_upper,
        integrality=milp.integrality,
    )
    opts = dataclasses.replace(solver_options, time_limit_s=time_limit_s)
    return solve_arrays(arrays, opts, start=start, record_limit=False)


# ---------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------


def _decode_paths(inst: _Instance, milp: _Milp, x: np.ndarray) -> dict[int, list[list[int]]]:
    """Per pair, the K node sequences read from an integral flow (cycles are dropped)."""
    arcs = milp.arcs
    chosen = np.flatnonzero(x[: milp.n_arc] > 0.5)
    succ: dict[tuple[int, tuple[int, int]], list[int]] = {}
    for col in chosen:
        succ.setdefault((arcs.pair[col], arcs.tail[col]), []).append(int(col))
    paths: dict[int, list[list[int]]] = {}
    for q, pg in enumerate(inst.pairs):
        plist: list[list[int]] = []
        for _ in range(inst.k):
            seq = [pg.s]
            key = (_SRC, 0)
            guard = 0
            while key[0] != _SNK:
                nxt = succ.get((q, key))
                if not nxt:
                    raise RuntimeError(f"flow of pair {q} is broken at {key}")
                j = nxt.pop()
                key = arcs.head[j]
                seq.append(arcs.v[j])
                guard += 1
                if guard > len(inst.names) + 1:
                    raise RuntimeError("flow decoding did not terminate")
            plist.append(seq)
        paths[q] = plist
    return paths


def _paths_to_start(inst: _Instance, milp: _Milp, paths: dict[int, list[list[int]]]) -> np.ndarray:
    """Column vector of a solution given as node sequences (for a MIP start)."""
    x = np.zeros(len(milp.cost))
    index: dict[tuple[int, tuple[int, int], tuple[int, int]], int] = {}
    for j in range(milp.n_arc):
        index[(milp.arcs.pair[j], milp.arcs.tail[j], milp.arcs.head[j])] = j
    for q, plist in paths.items():
        layered = inst.pairs[q].layered
        for seq in plist:
            keys = [(_SRC, 0)]
            for pos, u in enumerate(seq[1:-1], start=1):
                keys.append((u, pos if layered else 0))
            keys.append((_SNK, 0))
            for a, b in zip(keys[:-1], keys[1:], strict=True):
                col = index.get((q, a, b))
                if col is None:
                    return np.array([])
                x[col] = 1.0
            for u in seq[1:-1]:
                x[milp.y_cols[u]] = 1.0
    return x


def _hop_violations(inst: _Instance, paths: dict[int, list[list[int]]]) -> list[int]:
    return [q for q, plist in paths.items() if any(len(p) - 2 > inst.n_max for p in plist)]


def _tables(
    inst: _Instance, paths: dict[int, list[list[int]]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    sessions: dict[int, int] = {}
    rows = []
    for q, plist in paths.items():
        pg = inst.pairs[q]
        for i, seq in enumerate(plist):
            links = [float(inst.dist_km[a, b]) for a, b in zip(seq[:-1], seq[1:], strict=True)]
            for u in seq[1:-1]:
                sessions[u] = sessions.get(u, 0) + 1
            rows.append(
                {
                    "node_a": inst.names[pg.s],
                    "node_b": inst.names[pg.t],
                    "path_index": i,
                    "nodes": tuple(inst.names[u] for u in seq),
                    "link_length_km": tuple(links),
                    "n_repeaters": len(seq) - 2,
                    "length_km": float(sum(links)),
                }
            )
    paths_df = pd.DataFrame(
        rows,
        columns=[
            "node_a",
            "node_b",
            "path_index",
            "nodes",
            "link_length_km",
            "n_repeaters",
            "length_km",
        ],
    )
    rep_df = pd.DataFrame(
        [{"node": inst.names[u], "sessions": c} for u, c in sorted(sessions.items())],
        columns=["node", "sessions"],
    )
    return rep_df, paths_df


def placement_objective(
    repeaters: Sequence[str], paths: pd.DataFrame, alpha_per_km: float
) -> float:
    """Number of repeaters plus ``alpha_per_km`` x summed elementary-link length of all paths."""
    total_km = float(paths["length_km"].sum()) if len(paths) else 0.0
    return float(len(repeaters)) + alpha_per_km * total_km


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def solve_placement(
    data: PlacementData,
    options: PlacementOptions,
    solver_options: SolverOptions | None = None,
) -> SolveResult:
    """Solve the repeater-placement MILP (see module docstring) with HiGHS.

    Guarantees: when the status is OPTIMAL or FEASIBLE, ``tables["repeaters"]``
    (``node, sessions``) lists exactly the repeaters used by the paths and
    ``tables["paths"]`` (``node_a, node_b, path_index, nodes, link_length_km,
    n_repeaters, length_km``) gives K paths per end-node pair meeting every
    constraint; ``objective`` is recomputed from these tables and ``bound`` is
    a valid lower bound of the true optimum. ``info`` holds preprocessing and
    model sizes and the number of lazy rounds. Raises
    :class:`PlacementInputError` on bad input.
    """
    sopts = solver_options or SolverOptions()
    t_build0 = time.perf_counter()
    inst = _preprocess(data, options)
    for pg in inst.pairs:
        pg.layered = not options.lazy_hop_limit
    info: dict[str, Any] = {
        "n_nodes": len(inst.names),
        "n_end_nodes": len(inst.end_idx),
        "n_pairs": len(inst.pairs),
        "n_hop_edges": int(inst.hop.sum() // 2),
        "n_candidates": int((~inst.is_end).sum()),
        "n_candidates_useful": int(
            len(set().union(*[set(pg.candidates.tolist()) for pg in inst.pairs]))
        ),
        "mean_candidates_per_pair": float(np.mean([len(pg.candidates) for pg in inst.pairs])),
    }
    unreachable = [
        f"{inst.names[pg.s]}-{inst.names[pg.t]}"
        for pg in inst.pairs
        if not pg.direct and pg.d_s[pg.t] > inst.n_max + 1
    ]
    build_time = time.perf_counter() - t_build0
    if unreachable:
        info["infeasible_pairs"] = ", ".join(unreachable)
        return SolveResult(
            status=SolveStatus.INFEASIBLE,
            build_time_s=build_time,
            solve_time_s=0.0,
            solver="highs",
            info=info,
        )
    deadline = time.perf_counter() + sopts.time_limit_s
    alpha = inst.alpha
    # The alpha term never reaches 1 when every path is at most (N_max + 1) L_max long; then the
    # weighted optimum has the least number of repeaters and can be found lexicographically.
    max_alpha_term = alpha * inst.k * len(inst.pairs) * (inst.n_max + 1) * options.max_link_km
    lexicographic = options.lexicographic and alpha > 0 and max_alpha_term < 1.0
    info["lexicographic"] = lexicographic
    stats = _LoopStats()
    if lexicographic:
        first = _lazy_solve(inst, sopts, deadline, stats, alpha=0.0)
        if first.status is SolveStatus.OPTIMAL and first.paths is not None:
            n_star = int(round(first.objective))
            info["phase1_repeaters"] = n_star
            info["phase1_solve_time_s"] = stats.solve_time_s
            final = _lazy_solve(
                inst, sopts, deadline, stats, alpha=alpha, n_repeaters=n_star, start=first.paths
            )
            if final.paths is None:  # phase 2 ran out of time: keep the phase-1 design
                final = _LoopOutcome(SolveStatus.FEASIBLE, first.paths, math.nan, float(n_star))
            elif final.status is SolveStatus.INFEASIBLE:
                raise RuntimeError("least-length phase infeasible although phase 1 was optimal")
        else:
            final = first  # count not proven: its bound is still a valid bound (alpha term >= 0)
    else:
        final = _lazy_solve(inst, sopts, deadline, stats, alpha=alpha)
    build_time += stats.build_time_s
    info.update(stats.info)
    info["lazy_rounds"] = stats.rounds
    result = SolveResult(
        status=final.status,
        build_time_s=build_time,
        solve_time_s=stats.solve_time_s,
        solver="highs",
        info=info,
        bound=final.bound,
    )
    if final.paths is None:
        return result
    rep_df, paths_df = _tables(inst, final.paths)
    result.tables = {"repeaters": rep_df, "paths": paths_df}
    result.objective = placement_objective(list(rep_df["node"]), paths_df, alpha)
    if math.isfinite(result.bound):
        result.bound = min(result.bound, result.objective)
    result.gap = relative_gap(result.objective, result.bound)
    return result


@dataclass
class _LoopStats:
    rounds: int = 0
    build_time_s: float = 0.0
    solve_time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _LoopOutcome:
    status: SolveStatus
    paths: dict[int, list[list[int]]] | None
    objective: float
    bound: float


def _lazy_solve(
    inst: _Instance,
    sopts: SolverOptions,
    deadline: float,
    stats: _LoopStats,
    *,
    alpha: float,
    n_repeaters: int | None = None,
    start: dict[int, list[list[int]]] | None = None,
) -> _LoopOutcome:
    """Solve, layer the pairs whose paths break N_max, repeat until none does (or time is up).

    Every model solved is a relaxation of the exact problem (un-layered pairs
    ignore N_max), so its bound is valid; the returned paths meet N_max.
    """
    bound = math.nan
    while True:
        stats.rounds += 1
        t0 = time.perf_counter()
        milp = _build_milp(inst, alpha=alpha, n_repeaters=n_repeaters)
        x0 = _paths_to_start(inst, milp, start) if start else None
        stats.build_time_s += time.perf_counter() - t0
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return _LoopOutcome(SolveStatus.TIME_LIMIT_NO_SOLUTION, None, math.nan, bound)
        raw = _solve_highs(milp, sopts, remaining, x0 if x0 is not None and x0.size else None)
        stats.solve_time_s += raw.solve_time_s
        if math.isfinite(raw.bound):
            bound = raw.bound
        stats.info.update(
            n_columns=len(milp.cost),
            n_rows=len(milp.row_lower),
            n_nonzeros=int(milp.a_matrix.nnz),
            n_layered_pairs=sum(pg.layered for pg in inst.pairs),
        )
        logger.info(
            "placement round %d (alpha=%g): %s obj=%s bound=%s (%d cols, %d layered pairs) in %.2fs",
            stats.rounds,
            alpha,
            raw.status,
            raw.objective,
            raw.bound,
            len(milp.cost),
            stats.info["n_layered_pairs"],
            raw.solve_time_s,
        )
        if raw.values is None:
            return _LoopOutcome(raw.status, None, math.nan, bound)
        paths = _decode_paths(inst, milp, raw.values)
        bad = _hop_violations(inst, paths)
        if not bad:
            return _LoopOutcome(raw.status, paths, raw.objective, bound)
        for q in bad:
            inst.pairs[q].layered = True


# ---------------------------------------------------------------------------
# Pyomo twin (cross-check through solvers.highs_driver.solve_model)
# ---------------------------------------------------------------------------


def build_pyomo_model(data: PlacementData, options: PlacementOptions) -> pyo.ConcreteModel:
    """The fully layered formulation as a Pyomo model (for cross-checks on small instances).

    Variables ``model.y[node]`` (repeater chosen) and ``model.x[arc]`` (arc used);
    the objective equals the one minimised by :func:`solve_placement`.
    """
    inst = _preprocess(data, options)
    for pg in inst.pairs:
        pg.layered = True
    arcs = _Arcs()
    for q in range(len(inst.pairs)):
        _pair_arcs(inst, q, arcs)
    n_arc = len(arcs.pair)
    reps = sorted({v for v in arcs.v if not inst.is_end[v]})
    m = pyo.ConcreteModel()
    m.A = pyo.RangeSet(0, n_arc - 1)
    m.R = pyo.Set(initialize=[inst.names[u] for u in reps])
    m.x = pyo.Var(m.A, domain=pyo.Binary)
    m.y = pyo.Var(m.R, domain=pyo.Binary)
    m.obj = pyo.Objective(
        expr=sum(m.y[r] for r in m.R)
        + inst.alpha * sum(arcs.length_km[j] * m.x[j] for j in range(n_arc)),
        sense=pyo.minimize,
    )
    m.cons = pyo.ConstraintList()
    by_pair_src: dict[int, list[int]] = {}
    inflow: dict[tuple[int, tuple[int, int]], list[int]] = {}
    outflow: dict[tuple[int, tuple[int, int]], list[int]] = {}
    through: dict[tuple[int, int], list[int]] = {}
    for j in range(n_arc):
        q = arcs.pair[j]
        if arcs.tail[j][0] == _SRC:
            by_pair_src.setdefault(q, []).append(j)
        else:
            outflow.setdefault((q, arcs.tail[j]), []).append(j)
        if arcs.head[j][0] != _SNK:
            inflow.setdefault((q, arcs.head[j]), []).append(j)
            through.setdefault((q, arcs.v[j]), []).append(j)
    for q in range(len(inst.pairs)):
        m.cons.add(sum(m.x[j] for j in by_pair_src.get(q, [])) == inst.k)
    for key in set(inflow) | set(outflow):
        m.cons.add(
            sum(m.x[j] for j in inflow.get(key, [])) == sum(m.x[j] for j in outflow.get(key, []))
        )
    for (_q, u), js in through.items():
        m.cons.add(sum(m.x[j] for j in js) <= m.y[inst.names[u]])
    for u in reps:
        js = [j for (q, uu), lst in through.items() if uu == u for j in lst]
        m.cons.add(sum(m.x[j] for j in js) <= inst.capacity * m.y[inst.names[u]])
    return m


def solve_placement_pyomo(
    data: PlacementData, options: PlacementOptions, solver_options: SolverOptions | None = None
) -> SolveResult:
    """Solve :func:`build_pyomo_model` with :func:`solvers.highs_driver.solve_model` (objective and chosen repeaters only)."""
    t0 = time.perf_counter()
    model = build_pyomo_model(data, options)
    build = time.perf_counter() - t0
    raw = solve_model(model, solver_options)
    reps = [
        r
        for r in model.R
        if raw.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) and pyo.value(model.y[r]) > 0.5
    ]
    return SolveResult(
        status=raw.status,
        objective=raw.objective,
        bound=raw.bound,
        gap=raw.gap,
        solve_time_s=raw.solve_time_s,
        build_time_s=build,
        solver=raw.solver,
        tables={"repeaters": pd.DataFrame({"node": reps})},
    )
