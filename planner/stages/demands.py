"""Demand models: which pairs of backbone nodes need keys.

A backbone node is a cluster master or a standalone site; its *weight* is the
sum of the ``demand`` column over the sites it serves (a population, a number
of customers; 1 per site when the input has no demand column). The models
(``[demands] mode`` in the scenario):

* ``all_pairs`` (alias ``all_clusters``): every pair of backbone nodes,
  C (C - 1) / 2 demands for C nodes. Exact for small networks, quadratic.
* ``gravity``: for every node its ``k`` strongest partners by the gravity
  score w_i w_j / d_ij^exponent (d = shortest backbone fibre distance, km),
  plus the strongest pairs that join the resulting demand graph into one
  connected piece per connected part of the backbone (a maximum spanning
  forest over the pieces, Borůvka). At most C k + C - 1 demands.
* ``hubs``: every node paired with each named hub site (and hubs pairwise),
  at most C x hubs demands.
* ``list``: the ``pairs`` written in the scenario; ``explicit``: the pairs of
  a CSV file (``file``, columns ``source,target``, site ids or names).
* ``auto`` (the default): ``all_pairs`` up to ``auto_all_pairs_max_nodes``
  backbone nodes, ``gravity`` above. Small networks keep every pair (the
  designs of the bundled networks do not change), while a 3 000-site plan
  stays linear in the number of clusters instead of quadratic (378 clusters
  would otherwise give ~71 000 demands, each a set of rows in every backbone
  model).

:func:`demand_pairs` returns the sorted pairs and a one-line description of
the model used (recorded in the design's metrics and the report).
"""

from __future__ import annotations

import csv
import difflib
import logging
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from planner.errors import InputFormatError, Problem, ValidationError
from planner.model.network import Network
from planner.model.scenario import DemandSettings

logger = logging.getLogger(__name__)

DISTANCE_FLOOR_KM = 1.0
"""Gravity distances below this are raised to it (co-located nodes do not get an infinite score)."""

_ROW_BLOCK = 256
"""Rows of the distance matrix computed at once (bounds memory at 256 x C floats)."""


@dataclass(frozen=True)
class DemandModel:
    """The pairs chosen and how: ``pairs`` sorted (a, b) with a < b; ``description`` one line."""

    pairs: list[tuple[str, str]]
    mode: str
    description: str


def demand_pairs(
    network: Network, site_to_node: dict[str, str], nodes: list[str], bb: nx.Graph, settings: DemandSettings
) -> DemandModel:
    """The demand pairs of ``settings.mode`` between the backbone ``nodes``.

    Guarantees: every pair is (a, b) with a < b, both in ``nodes``, no
    duplicates, sorted; ``auto`` resolves to ``all_pairs`` or ``gravity`` and
    the returned ``mode`` says which. Raises
    :class:`~planner.errors.ValidationError` naming the scenario key (or the
    file and row) of an unknown site.
    """
    mode = settings.mode
    n = len(nodes)
    if mode == "auto":
        mode = "all_pairs" if n <= settings.auto_all_pairs_max_nodes else "gravity"
        reason = (
            f" (auto: {n} backbone nodes {'<=' if mode == 'all_pairs' else '>'} {settings.auto_all_pairs_max_nodes})"
        )
    else:
        reason = ""
    if mode in ("all_pairs", "all_clusters"):
        pairs = [(nodes[i], nodes[j]) for i in range(n) for j in range(i + 1, n)]
        return DemandModel(pairs, "all_pairs", f"all pairs of the {n} backbone nodes{reason}")
    if mode == "gravity":
        weights, note = node_weights(network, site_to_node, nodes)
        pairs = gravity_pairs(nodes, weights, bb, k=settings.k, exponent=settings.gravity_exponent)
        return DemandModel(
            pairs,
            "gravity",
            f"gravity model{reason}: each of the {n} backbone nodes paired with its "
            f"{settings.k} strongest partners by w_i w_j / d^{settings.gravity_exponent:g} "
            f"(d = backbone fibre km, w = {note}), plus the strongest pairs joining them into "
            "one connected demand graph",
        )
    if mode == "hubs":
        hubs = [
            _resolve(network, name, f"demands.hubs[{i}]", "list hub sites by id or name")
            for i, name in enumerate(settings.hubs)
        ]
        hub_nodes = sorted({site_to_node[h] for h in hubs if h in site_to_node})
        pairs = hub_pairs(nodes, hub_nodes)
        return DemandModel(
            pairs, "hubs", f"hub pairs: every backbone node to each of the hubs {', '.join(settings.hubs)}"
        )
    if mode == "list":
        named = [(a, b, f"scenario: demands.pairs[{i}]") for i, (a, b) in enumerate(settings.pairs)]
        pairs = _named_pairs(network, site_to_node, named)
        return DemandModel(pairs, "list", f"{len(pairs)} pairs listed in the scenario (demands.pairs)")
    if mode == "explicit":
        named = read_pairs_csv(Path(settings.file))
        pairs = _named_pairs(network, site_to_node, named)
        return DemandModel(pairs, "explicit", f"{len(pairs)} pairs from {Path(settings.file).name}")
    raise ValueError(f"unknown demand mode {mode!r}")  # pragma: no cover - the scenario validates it


def node_weights(network: Network, site_to_node: dict[str, str], nodes: list[str]) -> tuple[np.ndarray, str]:
    """Weight of each backbone node: the summed ``demand`` of its sites, and a note saying what it is.

    When every site has the same demand (e.g. the input had no demand column,
    so every site counts 1) the weight is the number of sites served, and the
    note says so.
    """
    dem = network.sites["demand"].astype(float)
    index = {node: i for i, node in enumerate(nodes)}
    w = np.zeros(len(nodes))
    for sid, d in dem.items():
        node = site_to_node.get(str(sid))
        if node is not None and node in index:
            w[index[node]] += float(d)
    if len(dem) and float(dem.max()) == float(dem.min()):
        return w, "sites served (all site demands are equal, e.g. no demand column: equal weights)"
    return w, "summed site demand"


def gravity_pairs(
    nodes: list[str], weights: np.ndarray, bb: nx.Graph, *, k: int, exponent: float = 2.0
) -> list[tuple[str, str]]:
    """Top-``k`` gravity partners of every node, joined into a connected demand graph.

    The score of (i, j) is w_i w_j / max(d_ij, 1 km)^exponent over the shortest
    backbone distance d_ij; pairs in different connected parts of the backbone
    are never chosen. Zero weights are raised to a tiny positive value so a
    node without demand still gets its nearest partners. Ties break towards
    the lower node index. Guarantees: every node with a reachable partner is
    in at least min(k, reachable) pairs it chose itself; the chosen pairs
    connect every connected part of the backbone; at most n k + n - 1 pairs.
    """
    n = len(nodes)
    if n < 2:
        return []
    w = np.asarray(weights, dtype=float)
    positive = w[w > 0]
    floor = (positive.min() if len(positive) else 1.0) * 1e-9
    w = np.where(w > 0, w, floor)
    matrix = _backbone_matrix(nodes, bb)
    chosen: set[tuple[int, int]] = set()
    for start in range(0, n, _ROW_BLOCK):
        rows = np.arange(start, min(n, start + _ROW_BLOCK))
        score = _scores(matrix, rows, w, exponent)
        for r, i_np in enumerate(rows):
            i = int(i_np)
            s = score[r]
            finite = np.flatnonzero(s > 0)
            if len(finite) == 0:
                continue
            take = min(k, len(finite))
            # stable sort on -score keeps the lower index first among equal scores
            order = finite[np.argsort(-s[finite], kind="stable")[:take]]
            for j_np in order:
                j = int(j_np)
                chosen.add((min(i, j), max(i, j)))
    chosen |= _connect(matrix, w, exponent, chosen, n)
    return sorted((nodes[i], nodes[j]) if nodes[i] < nodes[j] else (nodes[j], nodes[i]) for i, j in chosen)


def hub_pairs(nodes: list[str], hub_nodes: list[str]) -> list[tuple[str, str]]:
    """Every node paired with every hub node (hubs among themselves too), sorted, without self-pairs."""
    pairs = {(min(h, v), max(h, v)) for h in hub_nodes for v in nodes if v != h}
    return sorted(pairs)


def read_pairs_csv(path: Path) -> list[tuple[str, str, str]]:
    """Rows of a ``source,target`` CSV as (source, target, where) with ``where`` = "file, row N".

    Raises :class:`~planner.errors.InputFormatError` naming the file (and row)
    when it is missing, lacks the two columns, or has an empty or self pair.
    """
    if not path.is_file():
        raise InputFormatError(
            f"demand file not found: {path} (fix: set demands.file to a CSV with columns source,target)",
            source=str(path),
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFormatError(
            f"{path}: not UTF-8 text ({exc.reason}); save the file as UTF-8", source=str(path)
        ) from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "source" not in header or "target" not in header:
        raise InputFormatError(
            f"{path}: header {reader.fieldnames!r} lacks the columns 'source' and 'target' "
            "(fix: start the file with the line source,target)",
            source=str(path),
        )
    problems: list[Problem] = []
    out: list[tuple[str, str, str]] = []
    for rowno, raw in enumerate(reader, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        a, b = row.get("source", ""), row.get("target", "")
        where = f"{path}, row {rowno}"
        if not a or not b:
            problems.append(Problem(where, "source or target is empty", "give two site ids or names"))
        elif a == b:
            problems.append(Problem(where, f"'{a}' is paired with itself", "give two different sites"))
        else:
            out.append((a, b, where))
    if problems:
        raise InputFormatError(problems, source=str(path))
    if not out:
        raise InputFormatError(f"{path}: no demand pairs (fix: add rows source,target)", source=str(path))
    return out


def _named_pairs(
    network: Network, site_to_node: dict[str, str], named: list[tuple[str, str, str]]
) -> list[tuple[str, str]]:
    """Resolve site ids or names to backbone nodes; every unknown site is reported with its row."""
    problems: list[Problem] = []
    pairs: set[tuple[str, str]] = set()
    for a, b, where in named:
        ends = []
        for name in (a, b):
            try:
                sid = _resolve(network, name, where, "use a site id or name from the sites file")
            except ValidationError as exc:
                problems.extend(exc.problems)
                continue
            node = site_to_node.get(sid)
            if node is None:
                problems.append(
                    Problem(
                        where,
                        f"site '{name}' is not served by any cluster or backbone node",
                        "pair sites that are part of the plan",
                    )
                )
                continue
            ends.append(node)
        if len(ends) == 2 and ends[0] != ends[1]:
            pairs.add((min(ends), max(ends)))
    if problems:
        raise ValidationError(problems, source=named[0][2].split(",")[0] if named else "demands")
    return sorted(pairs)


def _resolve(network: Network, name: str, where: str, fix: str) -> str:
    """Site id of ``name`` (an id, or a unique site name); a ValidationError naming ``where`` otherwise."""
    ids = network.sites.index
    if name in ids:
        return str(name)
    names = network.sites["name"].astype(str)
    hits = names.index[names == name]
    if len(hits) == 1:
        return str(hits[0])
    if len(hits) > 1:
        raise ValidationError(
            Problem(
                where,
                f"site name '{name}' is ambiguous ({len(hits)} sites carry it)",
                f"use one of the site ids {', '.join(map(str, hits[:5]))}",
            )
        )
    close = difflib.get_close_matches(name, list(names) + [str(i) for i in ids], n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ValidationError(Problem(where, f"site '{name}' is not in network {network.name!r}", hint + fix))


def _backbone_matrix(nodes: list[str], bb: nx.Graph) -> csr_matrix:
    index = {v: i for i, v in enumerate(nodes)}
    rows, cols, vals = [], [], []
    for u, v, data in bb.edges(data=True):
        if u in index and v in index:
            length = max(float(data.get("length_km", 0.0)), 1e-9)
            rows += [index[u], index[v]]
            cols += [index[v], index[u]]
            vals += [length, length]
    n = len(nodes)
    return csr_matrix((vals, (rows, cols)), shape=(n, n))


def _scores(matrix: csr_matrix, rows: np.ndarray, w: np.ndarray, exponent: float) -> np.ndarray:
    """Gravity scores of ``rows`` against every node; 0 for itself and unreachable nodes."""
    dist = dijkstra(matrix, directed=False, indices=rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.outer(w[rows], w) / np.maximum(dist, DISTANCE_FLOOR_KM) ** exponent
    score[~np.isfinite(dist)] = 0.0
    score[np.arange(len(rows)), rows] = 0.0
    return score


def _connect(
    matrix: csr_matrix, w: np.ndarray, exponent: float, chosen: set[tuple[int, int]], n: int
) -> set[tuple[int, int]]:
    """Borůvka rounds: join the pieces of the demand graph by their strongest reachable pairs."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in chosen:
        parent[find(i)] = find(j)
    added: set[tuple[int, int]] = set()
    while True:
        comp = np.array([find(i) for i in range(n)])
        if len(set(comp.tolist())) == 1:
            return added
        # best outgoing pair of each piece: (score, -i, -j) maximal, i.e. ties to the lower indices
        best: dict[int, tuple[float, int, int]] = {}
        for start in range(0, n, _ROW_BLOCK):
            rows = np.arange(start, min(n, start + _ROW_BLOCK))
            score = _scores(matrix, rows, w, exponent)
            score[comp[rows][:, None] == comp[None, :]] = 0.0
            for r, i_np in enumerate(rows):
                i = int(i_np)
                s = score[r]
                j = int(np.argmax(s))
                if s[j] <= 0:
                    continue
                cand = (float(s[j]), -min(i, j), -max(i, j))
                c = int(comp[i])
                if c not in best or cand > best[c]:
                    best[c] = cand
        if not best:
            return added  # remaining pieces lie in different parts of the backbone
        merged = False
        for _, ni, nj in sorted(best.values(), reverse=True):
            i, j = -ni, -nj
            if find(i) != find(j):
                parent[find(i)] = find(j)
                added.add((i, j))
                merged = True
        if not merged:  # pragma: no cover - a best pair always joins two pieces
            return added
