"""Input and evaluation of trusted-relay selection: validated tables and best single paths.

:func:`prepare_trust_data` validates the ``edges``, ``nodes`` and ``demands`` tables into
:class:`TrustData`; :func:`evaluate_trust` and :func:`evaluate_costs` give each demand's
best single-path security for a trusted set (exact, Dijkstra on ``-log p_u`` weights of
untrusted relays). See :mod:`solvers.trust` for the security model.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from solvers.base import ModelInfeasible
from solvers.base import show_value as _show
from solvers.trust_fast import interior_rows, terminal_rows

TrustMode = Literal["max_min_security", "min_cost"]


class TrustInputError(ValueError):
    """The tables handed to the trust model are invalid; the message names the row and the fix."""


class TrustInfeasible(ModelInfeasible):
    """No relay set reaches the security target; ``conflicts`` names the demands that cannot."""

    conflict_label = "Conflicting demands"


# ---------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustData:
    """Validated input: a simple undirected graph, node weights, candidates and demands."""

    graph: nx.Graph
    nodes: list[Hashable]  # fixed order; position = index in the arrays below
    weight: np.ndarray  # -log p_u per node (0 when p_u = 1)
    p_u: np.ndarray
    cost: np.ndarray
    candidate: np.ndarray  # bool
    demands: pd.DataFrame  # columns demand, source, target
    #: memo of :func:`evaluate_costs` by trusted set, and ``"base"``: the no-relay interior costs
    #: among the demand end points (large graphs), as the greedy computed them
    cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def index(self) -> dict[Hashable, int]:
        return {v: i for i, v in enumerate(self.nodes)}


def prepare_trust_data(edges: pd.DataFrame, nodes: pd.DataFrame, demands: pd.DataFrame) -> TrustData:
    """Validate the tables; raises :class:`TrustInputError` listing every problem at once.

    ``edges``: columns ``u``, ``v`` (undirected; parallel edges and self loops are
    dropped). ``nodes``: ``node``, ``p_u`` (security probability when untrusted,
    in (0, 1]), optional ``cost`` (default 1) and ``candidate`` (default True).
    ``demands``: ``demand``, ``source``, ``target`` (distinct, connected nodes).
    """
    problems: list[str] = []
    for table, name, cols in (
        (edges, "edges", ("u", "v")),
        (nodes, "nodes", ("node", "p_u")),
        (demands, "demands", ("demand", "source", "target")),
    ):
        for col in cols:
            if col not in table.columns:
                problems.append(f"{name} table: missing column '{col}' (add it)")
    if problems:
        raise TrustInputError("; ".join(problems))
    nd = nodes.copy()
    if "cost" not in nd.columns:
        nd["cost"] = 1.0
    if "candidate" not in nd.columns:
        nd["candidate"] = True
    if nd["node"].duplicated().any():
        problems.append(f"nodes table: duplicated node ids {nd.loc[nd['node'].duplicated(), 'node'].tolist()}")
    # column-wise iteration (row Series are slow: seconds on a national network's tables)
    for i, node, p, c in zip(nd.index, nd["node"], nd["p_u"], nd["cost"], strict=True):
        if not (isinstance(p, (int, float, np.number)) and 0 < p <= 1):
            problems.append(
                f"nodes table, row {i} (node {_show(node)}): p_u={_show(p)} must be in (0, 1] (1 = never compromised)"
            )
        if not (isinstance(c, (int, float, np.number)) and math.isfinite(c) and c >= 0):
            problems.append(f"nodes table, row {i} (node {_show(node)}): cost={_show(c)} must be a finite number >= 0")
    known = set(nd["node"])
    graph = nx.Graph()
    graph.add_nodes_from(nd["node"])
    for i, a, b in zip(edges.index, edges["u"], edges["v"], strict=True):
        for end in (a, b):
            if end not in known:
                problems.append(f"edges table, row {i}: node {_show(end)} is not in the nodes table")
        if a != b:
            graph.add_edge(a, b)
    if demands["demand"].duplicated().any():
        problems.append(
            f"demands table: duplicated demand ids {demands.loc[demands['demand'].duplicated(), 'demand'].tolist()}"
        )
    component: dict[Hashable, int] = {}
    for c, members in enumerate(nx.connected_components(graph)):
        for v in members:
            component[v] = c
    no_problems_before = not problems
    for i, d_id, s, t in zip(demands.index, demands["demand"], demands["source"], demands["target"], strict=True):
        cs, ct = component.get(s), component.get(t)
        if cs is not None and ct is not None and s != t and cs == ct:
            continue  # the common case, checked without building a message
        where = f"demands table, row {i} (demand {_show(d_id)})"
        if cs is None or ct is None:
            problems.append(f"{where}: source/target must be nodes of the nodes table")
        elif s == t:
            problems.append(f"{where}: source equals target (give two distinct nodes)")
        elif no_problems_before:
            problems.append(f"{where}: no path from {_show(s)} to {_show(t)} (connect them)")
    if len(demands) == 0:
        problems.append("demands table is empty (give at least one demand)")
    if problems:
        raise TrustInputError("; ".join(problems))
    order = list(nd["node"])
    p_u = nd["p_u"].to_numpy(dtype=float)
    return TrustData(
        graph=graph,
        nodes=order,
        weight=-np.log(p_u),
        p_u=p_u,
        cost=nd["cost"].to_numpy(dtype=float),
        candidate=nd["candidate"].to_numpy(dtype=bool),
        demands=demands[["demand", "source", "target"]].reset_index(drop=True),
    )


# ---------------------------------------------------------------------------
# Evaluation: best single path per demand for a given trusted set
# ---------------------------------------------------------------------------


class PathOracle:
    """Shortest paths for node weights counted at the head of each arc (scipy Dijkstra)."""

    def __init__(self, data: TrustData):
        self.data = data
        idx = data.index
        arcs = [(idx[a], idx[b]) for a, b in data.graph.edges] + [(idx[b], idx[a]) for a, b in data.graph.edges]
        self.tails = np.array([a for a, _ in arcs], dtype=np.int64)
        self.heads = np.array([b for _, b in arcs], dtype=np.int64)
        self.src = np.array([idx[s] for s in data.demands["source"]], dtype=np.int64)
        self.dst = np.array([idx[t] for t in data.demands["target"]], dtype=np.int64)
        self.sources, self.src_row = np.unique(self.src, return_inverse=True)
        n = len(data.nodes)
        self.n = n

    def costs(self, trusted_mask: np.ndarray, *, predecessors: bool = False) -> Any:
        """Per-demand best-path cost ``sum of -log p_u`` over untrusted interior relays."""
        w = np.where(trusted_mask, 0.0, self.data.weight)
        mat = sp.csr_matrix((w[self.heads], (self.tails, self.heads)), shape=(self.n, self.n))
        if predecessors:
            dist, pred = dijkstra(mat, directed=True, indices=self.sources, return_predecessors=True)
        else:
            dist = dijkstra(mat, directed=True, indices=self.sources)
            pred = None
        cost = dist[self.src_row, self.dst] - w[self.dst]
        cost = np.maximum(cost, 0.0)
        return (cost, pred) if predecessors else cost


def evaluate_trust(data: TrustData, trusted: Iterable[Hashable]) -> pd.DataFrame:
    """Best single path of every demand given the trusted set (exact, Dijkstra).

    Columns: ``demand, source, target, path`` (node list), ``hops``,
    ``untrusted_relays`` (interior nodes not trusted with ``p_u < 1``) and
    ``security`` (product of their ``p_u``).
    """
    idx = data.index
    mask = np.zeros(len(data.nodes), dtype=bool)
    for v in trusted:
        mask[idx[v]] = True
    oracle = PathOracle(data)
    cost, pred = oracle.costs(mask, predecessors=True)
    rows = []
    for d, row in enumerate(data.demands.itertuples(index=False)):
        r = oracle.src_row[d]
        node = oracle.dst[d]
        path = [node]
        while node != oracle.src[d]:
            node = pred[r, node]
            path.append(node)
        path.reverse()
        names = [data.nodes[i] for i in path]
        untrusted = [data.nodes[i] for i in path[1:-1] if not mask[i] and data.weight[i] > 0]
        rows.append(
            {
                "demand": row.demand,
                "source": row.source,
                "target": row.target,
                "path": names,
                "hops": len(path) - 1,
                "untrusted_relays": len(untrusted),
                "security": float(math.exp(-cost[d])),
            }
        )
    return pd.DataFrame(rows)


def relays_table(data: TrustData, trusted: Iterable[Hashable]) -> pd.DataFrame:
    idx = data.index
    chosen = sorted(trusted, key=lambda v: idx[v])
    return pd.DataFrame(
        {
            "node": chosen,
            "p_u": [float(data.p_u[idx[v]]) for v in chosen],
            "cost": [float(data.cost[idx[v]]) for v in chosen],
        }
    )


def candidate_indices(data: TrustData) -> list[int]:
    return [i for i in range(len(data.nodes)) if data.candidate[i]]


def evaluate_costs(data: TrustData, trusted: Iterable[Hashable]) -> np.ndarray:
    """Per-demand ``-log`` best single-path security for a trusted set (exact; memoised per set).

    Dijkstra from every demand source on graphs where cost matrices keep all rows
    (:func:`solvers.trust_fast.terminal_rows` false); on large graphs the no-relay costs among the
    demand end points (computed once) pivoted through each trusted relay (:func:`_pivot_costs`),
    which is the same exact cost for ``|trusted|`` Dijkstra runs instead of one per source.
    """
    idx = data.index
    mask = np.zeros(len(data.nodes), dtype=bool)
    for v in trusted:
        mask[idx[v]] = True
    key = frozenset(np.nonzero(mask)[0].tolist())
    hit = data.cache.get(key)
    if hit is None:
        oracle = PathOracle(data)
        if terminal_rows(len(data.nodes), len(np.union1d(oracle.src, oracle.dst))):
            hit = _pivot_costs(data, oracle, mask)
        else:
            hit = np.asarray(oracle.costs(mask), dtype=float)
        data.cache[key] = hit
    return hit.copy()


def _pivot_costs(data: TrustData, oracle: PathOracle, mask: np.ndarray) -> np.ndarray:
    """Demand costs for the trusted ``mask``: the no-relay interior costs ``M`` among the end points
    and the trusted relays, then ``M = min(M, M[:, v] + M[v, :])`` for every trusted ``v`` (exact:
    a best path either avoids ``v`` or joins a best path to ``v`` and one from it)."""
    n = len(data.nodes)
    tails, heads = oracle.tails, oracle.heads
    terms = np.union1d(oracle.src, oracle.dst)
    base = data.cache.get("base")
    if base is None or base.shape != (len(terms), len(terms)):
        base = data.cache["base"] = interior_rows(n, tails, heads, data.weight, terms)[:, terms]
    relays = np.nonzero(mask)[0]
    extra = np.setdiff1d(relays, terms)
    idx = np.concatenate([terms, extra])
    m, k = len(idx), len(terms)
    M = np.empty((m, m))
    M[:k, :k] = base
    if len(extra):
        rows = interior_rows(n, tails, heads, data.weight, extra)
        M[k:, :] = rows[:, idx]
        M[:k, k:] = rows[:, terms].T
    pos = np.full(n, -1, dtype=np.int64)
    pos[idx] = np.arange(m)
    for v in relays.tolist():
        p = int(pos[v])
        np.minimum(M, M[:, p, None] + M[None, p, :], out=M)
    return np.maximum(M[pos[oracle.src], pos[oracle.dst]], 0.0)
