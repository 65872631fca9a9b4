"""Trusted-relay selection (SMR paper security model).

Security model (SMR paper, Sec. II): every untrusted relay ``v`` resists the
eavesdropper with probability ``p_u(v)``; trusted relays and the two end points
count 1; the security of a single path is the product over its untrusted
relays. The best single path of a demand maximises that product, i.e. it is a
shortest path for the node weights ``w_v = -log p_u(v)`` counted only at
untrusted relays.

Model (:func:`build_trust_model`): binary ``y_v`` = relay ``v`` is trusted
(candidates only); per demand a unit flow ``f[d, (i, j)]`` over both directions
of every edge; the flow through a node is its inflow ``in_d(v) <= 1``. The
weight of ``v`` counts on demand ``d`` only if ``v`` is untrusted, i.e.
``g[d, v] = in_d(v) * (1 - y_v)``, linearised by the McCormick inequality
``g >= in_d(v) - y_v`` with ``g >= 0`` (the other McCormick inequalities are not
needed because ``g`` is minimised). With binary ``y`` the flow LP of every
demand has an integral optimum (a shortest path), so the model is exact.

Modes: ``"max_min_security"`` minimises ``z >= sum_v w_v g[d, v]`` over all
demands with at most ``max_relays`` trusted relays; ``"min_cost"`` minimises the
total relay cost subject to ``sum_v w_v g[d, v] <= -log(security_target)``.

Comparison selectors with the same result tables: :func:`greedy_trust`,
:func:`centrality_trust` (betweenness), :func:`random_trust`.

Scale (why the solver works as it does). The edge-flow model has one flow
column per demand and directed edge: on the backbone of the 243 Dutch cities
(3 240 demands, 716 edges) that is 3.7 M columns, 18 GB and more than 10
minutes, and on the 1 139 German cities (71 253 demands, 3 397 edges) about
565 M columns. The max-min mode therefore runs, before any model:

1. greedy on exact costs: all-pairs interior costs once, then every
   candidate is evaluated for every demand by one Floyd–Warshall pivot
   (:mod:`solvers.trust_fast`), not one Dijkstra run per candidate;
2. a swap local search (drop one relay, add the best replacement) on the
   same exact costs, with a quarter of the time left;
3. a model-free bound: each demand alone with ``max_relays`` free candidates
   (the token bound; exact per demand, checked against enumeration).

Then the MILP's column count is estimated (exactly after pruning when that is
cheap, else demands x (2 edges + nodes)); above ``max_columns`` (default
250 000, about 1.2 GB at the measured 5 kB per column) the model is not built
and the heuristic set is returned with the token bound and its gap. Below the
cap the MILP runs as before, warm-started from the heuristic set, pruned with
its cost, on the time left of the one limit (heuristic, build and solve).
Measured on a shared, loaded 2-core machine: 243 Dutch cities 20 s and 0.3 GB
(was 675 s and 18 GB), 1 139 German cities in about a minute and under 0.5 GB.
Quality of the heuristic (measured, p_u ~ U(0.7, 0.95), 10 random demands,
budgets 2/3/5 on the 8 bundled networks and Waxman 20/50/100): greedy + swap
equals the MILP's minimum security in 30 of 33 cases and is within 4.5 % in
the other 3 (Uninett2010 B=5, Beijing QMAN B=3 and 5); greedy alone misses in
10. The token bound is tight for small budgets and weak (often 1) for larger
ones, so the reported gap at scale is honest but loose. Path-based column
generation and Benders cuts with shortest-path separation were not built or
measured; whether their LP bound (which couples the demands through the shared
budget, unlike the token bound) is worth its cost at scale is open work.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import networkx as nx
import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from solvers.base import (
    ModelInfeasible,
    SolveResult,
    SolverOptions,
    SolveStatus,
    relative_gap,
)
from solvers.base import (
    show_value as _show,
)
from solvers.highs_driver import solve_model
from solvers.trust_fast import greedy_select, lex_key, swap_search, token_lower_bound

logger = logging.getLogger(__name__)


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

    @property
    def index(self) -> dict[Hashable, int]:
        return {v: i for i, v in enumerate(self.nodes)}


def prepare_trust_data(
    edges: pd.DataFrame, nodes: pd.DataFrame, demands: pd.DataFrame
) -> TrustData:
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
        problems.append(
            f"nodes table: duplicated node ids {nd.loc[nd['node'].duplicated(), 'node'].tolist()}"
        )
    # column-wise iteration (row Series are slow: seconds on a national network's tables)
    for i, node, p, c in zip(nd.index, nd["node"], nd["p_u"], nd["cost"], strict=True):
        if not (isinstance(p, (int, float, np.number)) and 0 < p <= 1):
            problems.append(f"nodes table, row {i} (node {_show(node)}): p_u={_show(p)} must be in (0, 1] "
                            "(1 = never compromised)")
        if not (isinstance(c, (int, float, np.number)) and math.isfinite(c) and c >= 0):
            problems.append(f"nodes table, row {i} (node {_show(node)}): cost={_show(c)} must be a finite number >= 0")
    known = set(nd["node"])
    graph = nx.Graph()
    graph.add_nodes_from(nd["node"])
    for i, a, b in zip(edges.index, edges["u"], edges["v"], strict=True):
        for end in (a, b):
            if end not in known:
                problems.append(
                    f"edges table, row {i}: node {_show(end)} is not in the nodes table"
                )
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


class _PathOracle:
    """Shortest paths for node weights counted at the head of each arc (scipy Dijkstra)."""

    def __init__(self, data: TrustData):
        self.data = data
        idx = data.index
        arcs = [(idx[a], idx[b]) for a, b in data.graph.edges] + [
            (idx[b], idx[a]) for a, b in data.graph.edges
        ]
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
            dist, pred = dijkstra(
                mat, directed=True, indices=self.sources, return_predecessors=True
            )
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
    oracle = _PathOracle(data)
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


def _relays_table(data: TrustData, trusted: Iterable[Hashable]) -> pd.DataFrame:
    idx = data.index
    chosen = sorted(trusted, key=lambda v: idx[v])
    return pd.DataFrame(
        {
            "node": chosen,
            "p_u": [float(data.p_u[idx[v]]) for v in chosen],
            "cost": [float(data.cost[idx[v]]) for v in chosen],
        }
    )


# ---------------------------------------------------------------------------
# MILP
# ---------------------------------------------------------------------------


class _PruneOutOfTime(RuntimeError):
    """The node-set pruning reached its deadline (the caller then keeps the unpruned estimate)."""


def _blocks_between(data: TrustData, deadline: float | None = None) -> list[set[int]]:
    """Per demand, the nodes of the biconnected blocks between source and target.

    A node lies on some simple source-target path only if it belongs to a block
    on the block-cut-tree path between the end points. With a ``deadline``
    (perf_counter) raises ``_PruneOutOfTime`` when it passes.
    """
    idx = data.index
    blocks = [set(b) for b in nx.biconnected_components(data.graph)]
    tree = nx.Graph()
    member: dict[Hashable, list[int]] = {}
    for i, b in enumerate(blocks):
        tree.add_node(("B", i))
        for v in b:
            member.setdefault(v, []).append(i)
    for v, bs in member.items():
        if len(bs) > 1:
            for i in bs:
                tree.add_edge(("C", v), ("B", i))

    def anchor(v: Hashable) -> tuple[str, Any]:
        bs = member.get(v, [])
        return ("C", v) if len(bs) > 1 else ("B", bs[0])

    block_idx = [[idx[v] for v in b] for b in blocks]
    out = []
    for d, row in enumerate(data.demands.itertuples(index=False)):
        if deadline is not None and d % 64 == 0 and time.perf_counter() >= deadline:
            raise _PruneOutOfTime
        path = nx.shortest_path(tree, anchor(row.source), anchor(row.target))
        nodes: set[int] = set()
        for kind, key in path:
            if kind == "B":
                nodes.update(block_idx[key])
        out.append(nodes)
    return out


def _token_costs(
    adj: list[list[int]], weight: np.ndarray, free: np.ndarray, root: int, tokens: int
) -> np.ndarray:
    """``cost[b, v]``: least head-counted weight from ``root`` to ``v`` when at most ``b``
    nodes with ``free`` set may be passed at no cost (Dijkstra on (node, tokens used))."""
    n = len(adj)
    best = np.full((tokens + 1, n), np.inf)
    best[0, root] = 0.0
    heap = [(0.0, root, 0)]
    while heap:
        c, v, b = heapq.heappop(heap)
        if c > best[b, v]:
            continue
        for u in adj[v]:
            options = [(c + weight[u], b)]
            if free[u] and b < tokens:
                options.append((c, b + 1))
            for cu, bu in options:
                if cu < best[bu, u]:
                    best[bu, u] = cu
                    heapq.heappush(heap, (cu, u, bu))
    return np.minimum.accumulate(best, axis=0)


#: largest layered (node, tokens used) graph searched with scipy's Dijkstra in :func:`_token_cost_tables`
_LAYERED_MAX_NODES = 2_000_000


def _token_cost_tables(data: TrustData, free: np.ndarray, roots: list[int], tokens: int,
                       deadline: float | None = None) -> dict[int, np.ndarray]:
    """:func:`_token_costs` of every root at once: scipy Dijkstra on the layered graph.

    Node ``b * n + v`` = at ``v`` having used ``b`` tokens; arc ``(i, b) -> (j, b)``
    costs ``w_j``, ``(i, b) -> (j, b + 1)`` costs 0 when ``j`` is free (the
    zero arcs carry 1e-300 so the sparse matrix keeps them). Same values as the
    heap search up to float rounding of equal-cost paths.
    """
    n = len(data.nodes)
    idx = data.index
    e = np.array([(idx[a], idx[b]) for a, b in data.graph.edges], dtype=np.int64).reshape(-1, 2)
    tails = np.concatenate([e[:, 0], e[:, 1]])
    heads = np.concatenate([e[:, 1], e[:, 0]])
    w = data.weight
    rows, cols, vals = [], [], []
    for b in range(tokens + 1):
        rows.append(tails + b * n)
        cols.append(heads + b * n)
        vals.append(w[heads] + 1e-300)
        if b < tokens:
            ok = free[heads]
            rows.append(tails[ok] + b * n)
            cols.append(heads[ok] + (b + 1) * n)
            vals.append(np.full(int(ok.sum()), 1e-300))
    size = n * (tokens + 1)
    mat = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))
    out: dict[int, np.ndarray] = {}
    for lo in range(0, len(roots), 256):
        if deadline is not None and time.perf_counter() >= deadline:
            raise _PruneOutOfTime
        part = roots[lo:lo + 256]
        dist = np.asarray(dijkstra(mat, directed=True, indices=part)).reshape(len(part), tokens + 1, n)
        for k, r in enumerate(part):
            table = dist[k]
            table[0, r] = 0.0
            table[table < 1e-200] = 0.0  # the 1e-300 carriers of zero-cost arcs
            out[r] = np.minimum.accumulate(table, axis=0)
    return out


def demand_node_sets(
    data: TrustData, *, max_relays: int | None, cost_upper_bound: float | None, deadline: float | None = None
) -> list[set[int]]:
    """Node indices each demand's flow may use, without losing an optimal solution.

    Keeps a node when it is in a block between the end points and (with a
    ``cost_upper_bound``) when the cheapest source-node-target walk through it,
    with at most ``max_relays`` candidates free of charge (all of them when
    None), costs no more than the bound: an optimal path of any demand costs at
    most the bound and trusts at most ``max_relays`` relays, so all its nodes pass.
    With a ``deadline`` (perf_counter) raises ``_PruneOutOfTime`` when it passes.
    """
    sets = _blocks_between(data, deadline)
    if cost_upper_bound is None:
        return sets
    idx = data.index
    n = len(data.nodes)
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in data.graph.edges:
        adj[idx[a]].append(idx[b])
        adj[idx[b]].append(idx[a])
    free = data.candidate & (data.weight > 0)
    tokens = int(free.sum()) if max_relays is None else min(int(max_relays), int(free.sum()))
    w = data.weight
    ends = sorted({idx[v] for v in data.demands["source"]} | {idx[v] for v in data.demands["target"]})
    if (tokens + 1) * n <= _LAYERED_MAX_NODES:
        cache = _token_cost_tables(data, free, ends, tokens, deadline)
    else:  # the layered graph would be too large: one heap search per end point
        cache = {r: _token_costs(adj, w, free, r, tokens) for r in ends}
    out = []
    for d, row in enumerate(data.demands.itertuples(index=False)):
        if deadline is not None and d % 64 == 0 and time.perf_counter() >= deadline:
            raise _PruneOutOfTime
        s, t = idx[row.source], idx[row.target]
        cs, ct = cache[s], cache[t]
        # both halves count v itself (or spend a token on it); subtracting w_v once keeps a lower bound
        lbs = np.full(n, np.inf)
        for b1 in range(tokens + 1):
            lbs = np.minimum(lbs, cs[b1] + ct[tokens - b1])
        lbs = lbs - w
        keep = {v for v in sets[d] if v in (s, t) or lbs[v] <= cost_upper_bound + 1e-9}
        out.append(keep)
    return out


def build_trust_model(
    data: TrustData,
    *,
    mode: TrustMode = "max_min_security",
    max_relays: int | None = None,
    security_target: float | None = None,
    cost_upper_bound: float | None = None,
    node_sets: list[set[int]] | None = None,
) -> pyo.ConcreteModel:
    """Build the relay-selection MILP (see the module docstring).

    Demand ``d``'s flow lives only on the nodes :func:`demand_node_sets` keeps:
    the blocks between its end points, minus nodes whose token lower bound
    exceeds ``cost_upper_bound`` (max-min: the ``-log`` security of a known
    relay set, e.g. greedy; min-cost: ``-log(security_target)``).

    Constraint families: ``flow-balance``, ``through-node-max``,
    ``untrusted-weight`` (McCormick), ``demand-cost``, ``relay-count``, and
    ``worst-demand`` (max-min) or ``security-target`` (min-cost).
    """
    if mode not in ("max_min_security", "min_cost"):
        raise TrustInputError(f"mode={_show(mode)} must be 'max_min_security' or 'min_cost'")
    if mode == "max_min_security" and (max_relays is None or max_relays < 0):
        raise TrustInputError("max_min_security needs max_relays >= 0")
    if mode == "min_cost" and not (security_target is not None and 0 < security_target <= 1):
        raise TrustInputError(
            f"min_cost needs security_target in (0, 1], got {_show(security_target)}"
        )
    m = pyo.ConcreteModel(name=f"trust-{mode}")
    bound: float | None
    if mode == "min_cost":
        target_cost = -math.log(float(security_target))  # type: ignore[arg-type]
        bound = target_cost if cost_upper_bound is None else min(cost_upper_bound, target_cost)
    else:
        bound = cost_upper_bound
    m._allowed = node_sets if node_sets is not None else demand_node_sets(
        data, max_relays=max_relays, cost_upper_bound=bound
    )
    define_trust_choice(m, data)
    define_flow_balance(m, data)
    define_untrusted_weight(m, data)
    define_demand_cost(m, data)
    if max_relays is not None:
        define_relay_count(m, data, int(max_relays))
    if mode == "max_min_security":
        define_worst_demand(m, data)
        m.objective = pyo.Objective(expr=m.z, sense=pyo.minimize)
    else:
        define_security_target(m, data, float(security_target))  # type: ignore[arg-type]
        m.objective = pyo.Objective(expr=_relay_cost_expr(m, data), sense=pyo.minimize)
    return m


def define_trust_choice(m: pyo.ConcreteModel, data: TrustData) -> None:
    """Binary ``y[v]`` for every candidate relay with ``p_u < 1`` (trusting others changes nothing)."""
    useful = [i for i in range(len(data.nodes)) if data.candidate[i] and data.weight[i] > 0]
    m.C = pyo.Set(initialize=useful, ordered=True)
    m.y = pyo.Var(m.C, domain=pyo.Binary)


def define_flow_balance(m: pyo.ConcreteModel, data: TrustData) -> None:
    """``flow-balance`` (unit s-t flow per demand) and ``through-node-max`` (inflow <= 1)."""
    idx = data.index
    arcs = [(idx[a], idx[b]) for a, b in data.graph.edges] + [
        (idx[b], idx[a]) for a, b in data.graph.edges
    ]
    ends = {
        d: (idx[row.source], idx[row.target])
        for d, row in enumerate(data.demands.itertuples(index=False))
    }
    m._ends = ends
    # arcs into the source or out of the target never carry useful flow
    allowed = m._allowed
    dA = [
        (d, i, j)
        for d, (s, t) in ends.items()
        for i, j in arcs
        if j != s and i != t and i in allowed[d] and j in allowed[d]
    ]
    m.DA = pyo.Set(initialize=dA, dimen=3, ordered=True)
    m.f = pyo.Var(m.DA, bounds=(0.0, 1.0))
    out_arcs: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    in_arcs: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for d, i, j in dA:
        out_arcs.setdefault((d, i), []).append((d, i, j))
        in_arcs.setdefault((d, j), []).append((d, i, j))
    m._in_arcs = in_arcs
    n = len(data.nodes)
    m.DV = pyo.Set(
        initialize=[(d, v) for d in ends for v in range(n) if v in allowed[d]],
        dimen=2,
        ordered=True,
    )

    def balance(mm: pyo.ConcreteModel, d: int, v: int) -> Any:
        s, t = ends[d]
        rhs = 1 if v == s else (-1 if v == t else 0)
        out_f = sum(mm.f[a] for a in out_arcs.get((d, v), []))
        in_f = sum(mm.f[a] for a in in_arcs.get((d, v), []))
        if isinstance(out_f, int) and isinstance(in_f, int):
            return pyo.Constraint.Feasible if rhs == 0 else pyo.Constraint.Infeasible
        return out_f - in_f == rhs

    m.flow_balance = pyo.Constraint(m.DV, rule=balance)
    interior = [(d, v) for d, v in m.DV if v not in ends[d] and (d, v) in in_arcs]
    m.DVi = pyo.Set(initialize=interior, dimen=2, ordered=True)
    m.through_node_max = pyo.Constraint(
        m.DVi, rule=lambda mm, d, v: sum(mm.f[a] for a in in_arcs[(d, v)]) <= 1
    )


def define_untrusted_weight(m: pyo.ConcreteModel, data: TrustData) -> None:
    """``untrusted-weight``: ``g[d, v] >= inflow_d(v) - y_v`` for weighted candidate relays."""
    cand = set(m.C)
    rows = [(d, v) for d, v in m.DVi if v in cand]
    m.DVc = pyo.Set(initialize=rows, dimen=2, ordered=True)
    m.g = pyo.Var(m.DVc, bounds=(0.0, 1.0))
    m.untrusted_weight = pyo.Constraint(
        m.DVc,
        rule=lambda mm, d, v: mm.g[d, v] >= sum(mm.f[a] for a in m._in_arcs[(d, v)]) - mm.y[v],
    )


def define_demand_cost(m: pyo.ConcreteModel, data: TrustData) -> None:
    """``demand-cost``: ``cost[d] = sum_v w_v * (counted flow through v)`` = -log security of d."""
    cand = set(m.C)
    by_d: dict[int, list[int]] = {}
    for d, v in m.DVi:
        if data.weight[v] > 0:
            by_d.setdefault(d, []).append(v)
    m.D = pyo.Set(initialize=list(m._ends), ordered=True)
    upper = float(data.weight.sum())
    m.cost = pyo.Var(m.D, bounds=(0.0, upper))

    def rule(mm: pyo.ConcreteModel, d: int) -> Any:
        terms = []
        for v in by_d.get(d, []):
            w = float(data.weight[v])
            if v in cand:
                terms.append(w * mm.g[d, v])
            else:
                terms.append(w * sum(mm.f[a] for a in m._in_arcs[(d, v)]))
        return mm.cost[d] == sum(terms) if terms else mm.cost[d] == 0

    m.demand_cost = pyo.Constraint(m.D, rule=rule)


def define_relay_count(m: pyo.ConcreteModel, data: TrustData, max_relays: int) -> None:
    """``relay-count``: at most ``max_relays`` trusted relays."""
    m.relay_count = pyo.Constraint(expr=sum(m.y[v] for v in m.C) <= max_relays)


def define_worst_demand(m: pyo.ConcreteModel, data: TrustData) -> None:
    """``worst-demand``: ``z >= cost[d]`` for every demand (z = -log of the minimum security)."""
    m.z = pyo.Var(bounds=(0.0, float(data.weight.sum())))
    m.worst_demand = pyo.Constraint(m.D, rule=lambda mm, d: mm.z >= mm.cost[d])


def define_security_target(m: pyo.ConcreteModel, data: TrustData, target: float) -> None:
    """``security-target``: ``cost[d] <= -log(target)`` for every demand."""
    m.security_target = pyo.Constraint(m.D, rule=lambda mm, d: mm.cost[d] <= -math.log(target))


def _relay_cost_expr(m: pyo.ConcreteModel, data: TrustData) -> Any:
    return sum(float(data.cost[v]) * m.y[v] for v in m.C)


def _warm_start(m: pyo.ConcreteModel, data: TrustData, trusted: Iterable[Hashable]) -> None:
    """Set every variable from a relay set: y, each demand's best path as flow, g, cost and z."""
    idx = data.index
    chosen = {idx[v] for v in trusted}
    for v in m.C:
        m.y[v].set_value(1 if v in chosen else 0)
    for a in m.DA:
        m.f[a].set_value(0.0)
    for a in m.DVc:
        m.g[a].set_value(0.0)
    table = evaluate_trust(data, [data.nodes[v] for v in chosen])
    worst = 0.0
    for d, path in enumerate(table["path"]):
        ids = [idx[v] for v in path]
        for i, j in zip(ids[:-1], ids[1:], strict=True):
            m.f[d, i, j].set_value(1.0)
            if (d, j) in m.DVc and j not in chosen:
                m.g[d, j].set_value(1.0)
        c = -math.log(float(table["security"].iloc[d]))
        m.cost[d].set_value(max(0.0, c))
        worst = max(worst, c)
    if hasattr(m, "z"):
        m.z.set_value(worst)


def _index_arrays(data: TrustData) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    idx = data.index
    edges = [(idx[a], idx[b]) for a, b in data.graph.edges]
    src = np.array([idx[s] for s in data.demands["source"]], dtype=np.int64)
    dst = np.array([idx[t] for t in data.demands["target"]], dtype=np.int64)
    return edges, src, dst


def _useful_pool(data: TrustData) -> list[int]:
    return [i for i in _candidates(data) if data.weight[i] > 0]


#: Pyomo + HiGHS memory per model column, measured on the 243-city plan (18 GB / 3.7 M columns)
BYTES_PER_COLUMN = 5_000
#: default column cap of the edge-flow MILP (about 1.2 GB by the measured ratio)
DEFAULT_MAX_COLUMNS = 250_000
#: seconds APPSI spends per column handing the model to HiGHS (outside HiGHS' own time limit)
_LOAD_S_PER_COLUMN = 2e-5
#: handing a model to HiGHS through APPSI takes about this many times its Pyomo build (measured on the
#: Geant2010 plan: 20 s build, 47 s hand-over on a loaded machine)
LOAD_PER_BUILD = 2.0


def estimate_model_columns(
    data: TrustData, *, max_relays: int | None, cost_upper_bound: float | None, work_cap: int = 20_000_000,
    deadline: float | None = None,
) -> tuple[int, list[set[int]] | None]:
    """Columns (flow + weight variables) the edge-flow MILP would have, before building it.

    Cheap first: ``demands x (2 edges + nodes)`` (no pruning). When that is
    above the cap of the caller and ``demands x nodes <= work_cap``, prunes
    with :func:`demand_node_sets` and counts exactly; returns the node sets so
    a build can reuse them. Otherwise (or when the pruning is not done by
    ``deadline``, perf_counter) returns the unpruned upper bound and None.
    """
    n_d = len(data.demands)
    n, m = len(data.nodes), data.graph.number_of_edges()
    crude = n_d * (2 * m + n)
    if n_d * n > work_cap:
        return crude, None
    try:
        sets = demand_node_sets(data, max_relays=max_relays, cost_upper_bound=cost_upper_bound, deadline=deadline)
    except _PruneOutOfTime:
        return crude, None
    edges, _src, _dst = _index_arrays(data)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    total = 0
    for keep in sets:
        mask = np.zeros(n, dtype=bool)
        mask[list(keep)] = True
        both = mask[e[:, 0]] & mask[e[:, 1]]
        total += 2 * int(both.sum()) + len(keep)
    return total, sets


def solve_trust(
    edges: pd.DataFrame,
    nodes: pd.DataFrame,
    demands: pd.DataFrame,
    *,
    mode: TrustMode = "max_min_security",
    max_relays: int | None = None,
    security_target: float | None = None,
    tie_break_mean: bool = True,
    options: SolverOptions | None = None,
    max_columns: int | None = DEFAULT_MAX_COLUMNS,
    data: TrustData | None = None,
) -> SolveResult:
    """Choose trusted relays; returns tables ``relays`` (chosen) and ``demands`` (best path, security).

    ``mode="max_min_security"``: at most ``max_relays`` relays maximising the
    minimum over demands of the best single-path security; with
    ``tie_break_mean`` a second solve keeps that minimum and maximises the
    geometric mean security. ``objective`` / ``bound`` are securities (the
    solver works on ``-log``). ``mode="min_cost"``: least total relay ``cost``
    such that every demand reaches ``security_target`` (``max_relays``
    optional); ``objective`` is the cost.

    Scale (max-min): a greedy + swap local search (:mod:`solvers.trust_fast`)
    runs first and a model-free token bound is computed; the MILP's size is
    estimated before building, and above ``max_columns`` (None: no cap) or
    when the time left is too short it is not built: the heuristic set is
    returned with status ``heuristic``, the token ``bound`` and ``gap``.
    ``options.time_limit_s`` covers everything (heuristic, build, solve). On a
    time limit the best known set is returned (never worse than the heuristic).

    Raises :class:`TrustInfeasible` naming the demands that miss the target even
    with every candidate trusted, :class:`TrustInputError` for invalid tables.
    ``data``: the tables already validated by :func:`prepare_trust_data` (the
    tables are then not read again). In max-min mode ``info["greedy_relays"]``
    holds the greedy set the search started from (:func:`greedy_trust`'s set).
    """
    opts = options or SolverOptions()
    t0 = time.perf_counter()
    deadline = t0 + opts.time_limit_s
    data = data if data is not None else prepare_trust_data(edges, nodes, demands)
    info: dict[str, Any] = {
        "mode": mode,
        "n_nodes": len(data.nodes),
        "n_edges": data.graph.number_of_edges(),
        "n_demands": len(data.demands),
        "n_candidates": len(_useful_pool(data)),
    }
    if mode == "max_min_security" and max_relays is not None and max_relays >= 0:
        return _solve_max_min(data, int(max_relays), tie_break_mean, opts, max_columns, t0, deadline, info)
    if mode == "min_cost":
        _precheck_target(data, security_target)
    model = build_trust_model(
        data, mode=mode, max_relays=max_relays, security_target=security_target
    )
    build_time = time.perf_counter() - t0
    # never more than what is left of the limit (building counted), never past the deadline
    raw = solve_model(model, replace(opts, time_limit_s=max(0.0, min(opts.time_limit_s,
                                                                    deadline - time.perf_counter()))))
    info.update(n_variables=model.nvariables(), n_constraints=model.nconstraints())
    if raw.status is SolveStatus.INFEASIBLE:
        need = evaluate_trust(data, [])
        short = need.loc[need["security"] < (security_target or 0) * (1 - 1e-9), "demand"].tolist()
        raise TrustInfeasible(
            f"No set of at most {max_relays} trusted relays reaches security {security_target}.",
            conflicts=short,
            details=["relay-count limit too small for these demands; raise max_relays"],
        )
    if raw.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        return SolveResult(status=raw.status, solve_time_s=raw.solve_time_s, build_time_s=build_time,
                           solver=raw.solver, info=info)
    trusted = [data.nodes[v] for v in model.C if pyo.value(model.y[v]) > 0.5]
    table = evaluate_trust(data, trusted)
    info.update(min_security=float(table["security"].min()), mean_security=float(table["security"].mean()),
                n_trusted=len(trusted))
    return SolveResult(status=raw.status, objective=raw.objective, bound=raw.bound, gap=raw.gap,
                       solve_time_s=raw.solve_time_s, build_time_s=build_time, solver=raw.solver,
                       tables={"relays": _relays_table(data, trusted), "demands": table}, info=info)


TIE_BREAK_SHARE = 0.25
"""Share of the solver time kept for the mean-security tie-break of the max-min MILP."""


def _solve_max_min(
    data: TrustData,
    budget: int,
    tie_break_mean: bool,
    opts: SolverOptions,
    max_columns: int | None,
    t0: float,
    deadline: float,
    info: dict[str, Any],
) -> SolveResult:
    """Max-min mode: heuristic + token bound first, then the MILP when it fits (see solve_trust)."""
    edges_i, src, dst = _index_arrays(data)
    n = len(data.nodes)
    pool = _useful_pool(data)
    start = greedy_select(n, edges_i, data.weight, pool, src, dst, budget)
    info["greedy_relays"] = [data.nodes[i] for i in start]
    greedy_cost = float(evaluate_costs(data, [data.nodes[i] for i in start]).max())
    ls_deadline = min(deadline, time.perf_counter() + 0.25 * max(0.0, deadline - time.perf_counter()))
    heur, moves = swap_search(n, edges_i, data.weight, pool, src, dst, start, budget, ls_deadline)
    heur_costs = evaluate_costs(data, [data.nodes[i] for i in heur])
    upper = float(heur_costs.max())
    free = data.candidate & (data.weight > 0)
    lower = float(token_lower_bound(n, edges_i, data.weight, free, src, dst, budget).max())
    lower = min(lower, upper)
    heuristic_time = time.perf_counter() - t0
    info.update(greedy_min_security=math.exp(-greedy_cost), heuristic_min_security=math.exp(-upper),
                swap_moves=moves, token_bound_security=math.exp(-lower), heuristic_time_s=heuristic_time)
    est, sets = estimate_model_columns(data, max_relays=budget, cost_upper_bound=upper, deadline=deadline) if (
        max_columns is not None) else (0, None)
    info["estimated_model_columns"] = int(est)
    info["estimated_model_gb"] = round(est * BYTES_PER_COLUMN / 1e9, 3)
    heur_names = [data.nodes[i] for i in heur]

    def heuristic(reason: str, bound_cost: float, build_time: float = 0.0, solve_time: float = 0.0) -> SolveResult:
        info["milp_skipped"] = reason
        logger.info("trust: %s; returning the greedy + swap set (bound from %s)", reason,
                    "the token relaxation" if bound_cost == lower else "the MILP")
        table = evaluate_trust(data, heur_names)
        obj = float(table["security"].min())
        bnd = math.exp(-bound_cost)
        info.update(min_security=obj, mean_security=float(table["security"].mean()), n_trusted=len(heur_names))
        status = SolveStatus.OPTIMAL if upper <= bound_cost + 1e-9 else SolveStatus.HEURISTIC
        return SolveResult(status=status, objective=obj, bound=bnd, gap=relative_gap(obj, bnd),
                           solve_time_s=solve_time, build_time_s=time.perf_counter() - t0 - solve_time,
                           solver="greedy+swap", tables={"relays": _relays_table(data, heur_names),
                                                         "demands": table}, info=info)

    if max_columns is not None and est > max_columns:
        return heuristic(f"edge-flow MILP not built: about {est:,} columns "
                         f"(~{info['estimated_model_gb']:.1f} GB) > cap {max_columns:,}", lower)
    if upper <= lower + 1e-12 and not tie_break_mean:
        return heuristic("heuristic set meets the token bound (optimal)", lower)
    load_s = est * _LOAD_S_PER_COLUMN * 3  # build + hand-over, from the measured rate
    if deadline - time.perf_counter() < 1.0 + load_s:
        return heuristic("too little time left for the MILP", lower)
    t_model = time.perf_counter()
    model = build_trust_model(data, mode="max_min_security", max_relays=budget, cost_upper_bound=upper,
                              node_sets=sets)
    _warm_start(model, data, heur_names)
    build_time = time.perf_counter() - t0 - heuristic_time
    info.update(n_variables=model.nvariables(), n_constraints=model.nconstraints())
    # handing the model to HiGHS happens outside HiGHS' own limit: it is charged here, at the larger of
    # the per-column rate and LOAD_PER_BUILD times the build just measured (the machine's real speed)
    load_s = max(model.nvariables() * _LOAD_S_PER_COLUMN, LOAD_PER_BUILD * (time.perf_counter() - t_model))
    info["estimated_load_s"] = round(load_s, 3)
    left = deadline - time.perf_counter() - load_s
    if left < 1.0:
        return heuristic("time limit reached while building the MILP (no time left to hand it to the solver)",
                         lower, build_time)
    # the limits handed to the solver sum to at most what the deadline leaves: with the mean
    # tie-break, the max-min solve gets TIE_BREAK_SHARE less and the tie-break only what is left
    first_s = left * (1.0 - TIE_BREAK_SHARE) if tie_break_mean else left
    handed_s = first_s
    raw = solve_model(model, replace(opts, time_limit_s=first_s, warm_start=True))
    solve_time = raw.solve_time_s
    if raw.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        return heuristic(f"MILP ended '{raw.status}' without a solution", lower, build_time, solve_time)
    bound_cost = max(lower, raw.bound) if math.isfinite(raw.bound) else lower
    info["objective_neglog"] = raw.objective
    if tie_break_mean and raw.status is SolveStatus.OPTIMAL:
        z_star = float(pyo.value(model.z))
        model.z.setub(z_star + 1e-7)
        model.objective.deactivate()
        model.mean_objective = pyo.Objective(expr=sum(model.cost[d] for d in model.D), sense=pyo.minimize)
        # the tie-break gets what is left of the time limit, not a second full limit
        remaining = min(left - handed_s, deadline - time.perf_counter() - model.nvariables() * _LOAD_S_PER_COLUMN)
        if remaining >= 1.0:
            raw2 = solve_model(model, replace(opts, time_limit_s=remaining, warm_start=True))
            solve_time += raw2.solve_time_s
            info["tie_break_status"] = str(raw2.status)
        else:
            info["tie_break_status"] = "skipped (time limit)"
    trusted = [data.nodes[v] for v in model.C if pyo.value(model.y[v]) > 0.5]
    costs = evaluate_costs(data, trusted)
    if lex_key(costs) > lex_key(heur_costs):  # an incumbent never worse than the start
        trusted, costs = heur_names, heur_costs
    table = evaluate_trust(data, trusted)
    objective = float(table["security"].min())
    bound = math.exp(-min(bound_cost, float(costs.max())))
    status = raw.status if raw.status is SolveStatus.OPTIMAL or objective < bound * (1 - 1e-9) else (
        SolveStatus.OPTIMAL)
    info.update(min_security=objective, mean_security=float(table["security"].mean()), n_trusted=len(trusted))
    return SolveResult(status=status, objective=objective, bound=bound, gap=relative_gap(objective, bound),
                       solve_time_s=solve_time, build_time_s=build_time, solver=raw.solver,
                       tables={"relays": _relays_table(data, trusted), "demands": table}, info=info)


def evaluate_costs(data: TrustData, trusted: Iterable[Hashable]) -> np.ndarray:
    """Per-demand ``-log`` best single-path security for a trusted set (exact, Dijkstra)."""
    idx = data.index
    mask = np.zeros(len(data.nodes), dtype=bool)
    for v in trusted:
        mask[idx[v]] = True
    return np.asarray(_PathOracle(data).costs(mask), dtype=float)


def _precheck_target(data: TrustData, target: float | None) -> None:
    if target is None or not (0 < target <= 1):
        raise TrustInputError(f"min_cost needs security_target in (0, 1], got {_show(target)}")
    all_cand = [data.nodes[i] for i in range(len(data.nodes)) if data.candidate[i]]
    best = evaluate_trust(data, all_cand)
    bad = best.loc[best["security"] < target * (1 - 1e-9)]
    if len(bad):
        raise TrustInfeasible(
            f"Security target {target} is out of reach.",
            conflicts=bad["demand"].tolist(),
            details=[
                f"demand {_show(r.demand)}: best security {r.security:.4g} with every candidate trusted"
                for r in bad.itertuples()
            ],
        )


# ---------------------------------------------------------------------------
# Comparison selectors
# ---------------------------------------------------------------------------


def _heuristic_result(
    data: TrustData, trusted: list[Hashable], method: str, elapsed_s: float, **extra: Any
) -> SolveResult:
    table = evaluate_trust(data, trusted)
    info = {
        "method": method,
        "n_trusted": len(trusted),
        "min_security": float(table["security"].min()),
        "mean_security": float(table["security"].mean()),
        **extra,
    }
    return SolveResult(
        status=SolveStatus.HEURISTIC,
        objective=info["min_security"],
        solve_time_s=elapsed_s,
        build_time_s=0.0,
        solver=method,
        tables={"relays": _relays_table(data, trusted), "demands": table},
        info=info,
    )


def _candidates(data: TrustData) -> list[int]:
    return [i for i in range(len(data.nodes)) if data.candidate[i]]


def _greedy(data: TrustData, max_relays: int) -> list[Hashable]:
    edges_i, src, dst = _index_arrays(data)
    chosen = greedy_select(len(data.nodes), edges_i, data.weight, _useful_pool(data), src, dst, max_relays)
    return [data.nodes[i] for i in chosen]


def greedy_trust(
    edges: pd.DataFrame, nodes: pd.DataFrame, demands: pd.DataFrame, *, max_relays: int, data: TrustData | None = None
) -> SolveResult:
    """Greedy: add, one at a time, the candidate that most raises the minimum security
    (ties: the geometric mean), until ``max_relays`` are chosen. ``data``: see :func:`solve_trust`."""
    t0 = time.perf_counter()
    data = data if data is not None else prepare_trust_data(edges, nodes, demands)
    chosen = _greedy(data, max_relays)
    return _heuristic_result(data, chosen, "greedy", time.perf_counter() - t0)


def centrality_trust(
    edges: pd.DataFrame, nodes: pd.DataFrame, demands: pd.DataFrame, *, max_relays: int,
    data: TrustData | None = None, centrality: Mapping[Hashable, float] | None = None
) -> SolveResult:
    """The ``max_relays`` candidates of highest betweenness centrality (hop count; ties by node order).

    ``centrality``: precomputed values per node (e.g. sampled on a large graph;
    missing nodes count 0), else exact betweenness of the graph. ``data``: see
    :func:`solve_trust`.
    """
    t0 = time.perf_counter()
    data = data if data is not None else prepare_trust_data(edges, nodes, demands)
    bc = centrality if centrality is not None else nx.betweenness_centrality(data.graph)
    order = sorted(_candidates(data), key=lambda i: (-bc.get(data.nodes[i], 0.0), i))
    chosen = [data.nodes[i] for i in order[:max_relays]]
    return _heuristic_result(data, chosen, "betweenness", time.perf_counter() - t0)


def random_trust(
    edges: pd.DataFrame,
    nodes: pd.DataFrame,
    demands: pd.DataFrame,
    *,
    max_relays: int,
    rng: np.random.Generator,
    data: TrustData | None = None,
) -> SolveResult:
    """``max_relays`` candidates drawn uniformly without replacement from ``rng``.

    The generator's initial state is recorded in ``info["rng_state"]``. ``data``: see :func:`solve_trust`.
    """
    t0 = time.perf_counter()
    data = data if data is not None else prepare_trust_data(edges, nodes, demands)
    state = rng.bit_generator.state
    cand = _candidates(data)
    picks = rng.choice(len(cand), size=min(max_relays, len(cand)), replace=False)
    chosen = [data.nodes[cand[i]] for i in sorted(picks)]
    return _heuristic_result(data, chosen, "random", time.perf_counter() - t0, rng_state=str(state))
