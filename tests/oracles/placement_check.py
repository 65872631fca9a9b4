"""Independent validator of a repeater-placement solution (RepAlloc setting).

Shares no code with :mod:`solvers.placement`: it rebuilds every fact it needs
(distances from its own table, sessions per repeater, disjointness) and checks

* every end-node pair has ``K`` paths, each starting at one end node of the
  pair and ending at the other;
* every intermediate node is a chosen repeater, not an end node, and appears
  once in its path;
* each elementary link is at most ``L_max`` km of shortest fibre route;
* each path has at most ``N_max`` repeaters;
* the ``K`` paths of a pair share no repeater and at most one of them is the
  direct link;
* each repeater serves at most ``D`` (pair, path) sessions;
* reported link lengths (when given) match the distance table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

_TOL_KM = 1e-6


@dataclass(frozen=True)
class PlacementViolation:
    """One broken rule: ``kind`` (e.g. ``"link-too-long"``) and a human-readable ``message``."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def shortest_distance_table(nodes: Sequence[str], fibre_edges: pd.DataFrame) -> pd.DataFrame:
    """All-pairs shortest fibre distance (scipy Dijkstra) as ``node_a, node_b, distance_km``.

    ``fibre_edges`` has columns ``node_a``, ``node_b``, ``length_km``; the
    graph is undirected. Unreachable pairs are left out.
    """
    index = {n: i for i, n in enumerate(nodes)}
    a = fibre_edges["node_a"].map(index).to_numpy(dtype=np.int64)
    b = fibre_edges["node_b"].map(index).to_numpy(dtype=np.int64)
    w = fibre_edges["length_km"].to_numpy(dtype=float)
    n = len(nodes)
    # tiny positive floor keeps zero-length fibre edges as edges in the sparse graph
    w_pos = np.where(w > 0, w, 1e-12)
    graph = coo_matrix((np.r_[w_pos, w_pos], (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    dist = dijkstra(graph, directed=False)
    iu, ju = np.triu_indices(n, k=1)
    d = dist[iu, ju]
    keep = np.isfinite(d)
    names = np.asarray(list(nodes), dtype=object)
    return pd.DataFrame({"node_a": names[iu[keep]], "node_b": names[ju[keep]], "distance_km": d[keep]})


def check_placement(
    *,
    nodes: Sequence[str],
    end_nodes: Sequence[str],
    distance_km: pd.DataFrame,
    repeaters: Iterable[str],
    paths: pd.DataFrame,
    max_link_km: float,
    max_repeaters_per_path: int,
    capacity_sessions: int,
    robustness_paths: int,
) -> list[PlacementViolation]:
    """All violations of a placement solution; an empty list means the solution is feasible.

    ``paths`` has columns ``node_a``, ``node_b``, ``nodes`` (sequence of node
    names from one end node to the other) and optionally ``link_length_km``.
    ``distance_km`` is a table ``node_a, node_b, distance_km`` of shortest
    fibre distances (unordered pairs).
    """
    out: list[PlacementViolation] = []
    known = set(nodes)
    ends = list(end_nodes)
    end_set = set(ends)
    chosen = set(repeaters)
    dist: dict[frozenset[str], float] = {}
    for a, b, d in zip(distance_km["node_a"], distance_km["node_b"], distance_km["distance_km"], strict=True):
        key = frozenset((a, b))
        dist[key] = min(float(d), dist.get(key, float("inf")))
    for r in sorted(chosen):
        if r not in known:
            out.append(PlacementViolation("unknown-node", f"repeater '{r}' is not a node"))
        elif r in end_set:
            out.append(PlacementViolation("end-node-repeater", f"end node '{r}' chosen as repeater"))

    by_pair: dict[frozenset[str], list[tuple[str, ...]]] = {}
    sessions: dict[str, int] = {}
    has_lengths = "link_length_km" in paths.columns
    for i, row in enumerate(paths.itertuples(index=False)):
        seq = tuple(row.nodes)
        pair = frozenset((row.node_a, row.node_b))
        label = f"path row {i} ({row.node_a}-{row.node_b})"
        if len(pair) != 2 or not pair <= end_set:
            out.append(PlacementViolation("bad-pair", f"{label}: not a pair of two end nodes"))
            continue
        by_pair.setdefault(pair, []).append(seq)
        if len(seq) < 2 or frozenset((seq[0], seq[-1])) != pair:
            out.append(PlacementViolation("wrong-endpoints", f"{label}: runs {seq[:1]}..{seq[-1:]}"))
            continue
        inner = seq[1:-1]
        if len(set(inner)) != len(inner):
            out.append(PlacementViolation("repeated-node", f"{label}: a repeater appears twice"))
        for u in inner:
            if u in end_set:
                out.append(PlacementViolation("end-node-repeater", f"{label}: passes end node '{u}'"))
            elif u not in chosen:
                out.append(PlacementViolation("unchosen-repeater", f"{label}: '{u}' is not chosen"))
            sessions[u] = sessions.get(u, 0) + 1
        if len(inner) > max_repeaters_per_path:
            out.append(
                PlacementViolation(
                    "too-many-repeaters",
                    f"{label}: {len(inner)} repeaters > N_max={max_repeaters_per_path}",
                )
            )
        reported = list(row.link_length_km) if has_lengths else None
        if reported is not None and len(reported) != len(seq) - 1:
            out.append(PlacementViolation("length-mismatch", f"{label}: wrong number of link lengths"))
            reported = None
        for j, (a, b) in enumerate(zip(seq[:-1], seq[1:], strict=True)):
            d = dist.get(frozenset((a, b)), float("inf"))
            if a == b:
                d = float("inf")
            if d > max_link_km + _TOL_KM:
                out.append(
                    PlacementViolation(
                        "link-too-long",
                        f"{label}: link {a}-{b} is {d:.3f} km > L_max={max_link_km}",
                    )
                )
            if reported is not None and abs(float(reported[j]) - d) > 1e-6 * max(1.0, d):
                out.append(
                    PlacementViolation(
                        "length-mismatch",
                        f"{label}: link {a}-{b} reported {reported[j]} km, actual {d} km",
                    )
                )

    for s, t in combinations(ends, 2):
        pair = frozenset((s, t))
        plist = by_pair.get(pair, [])
        if len(plist) != robustness_paths:
            out.append(PlacementViolation("path-count", f"pair {s}-{t}: {len(plist)} paths, need K={robustness_paths}"))
        seen: dict[str, int] = {}
        direct = 0
        for p in plist:
            if len(p) == 2:
                direct += 1
            for u in set(p[1:-1]):
                seen[u] = seen.get(u, 0) + 1
        shared = sorted(u for u, c in seen.items() if c > 1)
        if shared:
            out.append(PlacementViolation("not-disjoint", f"pair {s}-{t}: repeaters {shared} shared"))
        if direct > 1:
            out.append(PlacementViolation("not-disjoint", f"pair {s}-{t}: direct link used {direct} times"))
    for u, c in sorted(sessions.items()):
        if c > capacity_sessions:
            out.append(PlacementViolation("capacity", f"repeater '{u}' serves {c} sessions > D={capacity_sessions}"))
    return out
