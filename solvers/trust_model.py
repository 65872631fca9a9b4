"""The edge-flow MILP of trusted-relay selection (Pyomo) and its pruning and size estimate.

See :mod:`solvers.trust` for the formulation. :func:`demand_node_sets` prunes the
nodes each demand's flow may use (biconnected blocks between its end points, then
node-cost bounds from a known design); :func:`estimate_model_columns` counts the
model's columns before it is built.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Hashable, Iterable
from typing import Any

import networkx as nx
import numpy as np
import pyomo.environ as pyo
from scipy.sparse.csgraph import dijkstra

from solvers.base import show_value as _show
from solvers.trust_data import (
    TrustData,
    TrustInputError,
    TrustMode,
    candidate_indices,
    evaluate_trust,
)
from solvers.trust_fast import token_graph

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# MILP
# ---------------------------------------------------------------------------


class PruneOutOfTime(RuntimeError):
    """The node-set pruning reached its deadline (the caller then keeps the unpruned estimate)."""


def _blocks_between(data: TrustData, deadline: float | None = None) -> list[set[int]]:
    """Per demand, the nodes of the biconnected blocks between source and target.

    A node lies on some simple source-target path only if it belongs to a block
    on the block-cut-tree path between the end points. With a ``deadline``
    (perf_counter) raises ``PruneOutOfTime`` when it passes.
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
            raise PruneOutOfTime
        path = nx.shortest_path(tree, anchor(row.source), anchor(row.target))
        nodes: set[int] = set()
        for kind, key in path:
            if kind == "B":
                nodes.update(block_idx[key])
        out.append(nodes)
    return out


def _token_costs(adj: list[list[int]], weight: np.ndarray, free: np.ndarray, root: int, tokens: int) -> np.ndarray:
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


def _token_cost_tables(
    data: TrustData, free: np.ndarray, roots: list[int], tokens: int, deadline: float | None = None
) -> dict[int, np.ndarray]:
    """:func:`_token_costs` of every root at once: scipy Dijkstra on the layered graph.

    Node ``b * n + v`` = at ``v`` having used ``b`` tokens; arc ``(i, b) -> (j, b)``
    costs ``w_j``, ``(i, b) -> (j, b + 1)`` costs 0 when ``j`` is free (the
    zero arcs carry 1e-300 so the sparse matrix keeps them). Same values as the
    heap search up to float rounding of equal-cost paths.
    """
    n = len(data.nodes)
    idx = data.index
    mat = token_graph(n, [(idx[a], idx[b]) for a, b in data.graph.edges], data.weight, free, tokens)
    out: dict[int, np.ndarray] = {}
    for lo in range(0, len(roots), 256):
        if deadline is not None and time.perf_counter() >= deadline:
            raise PruneOutOfTime
        part = roots[lo : lo + 256]
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
    With a ``deadline`` (perf_counter) raises ``PruneOutOfTime`` when it passes.
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
            raise PruneOutOfTime
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
        raise TrustInputError(f"min_cost needs security_target in (0, 1], got {_show(security_target)}")
    m = pyo.ConcreteModel(name=f"trust-{mode}")
    bound: float | None
    if mode == "min_cost":
        target_cost = -math.log(float(security_target))  # type: ignore[arg-type]
        bound = target_cost if cost_upper_bound is None else min(cost_upper_bound, target_cost)
    else:
        bound = cost_upper_bound
    m._allowed = (
        node_sets if node_sets is not None else demand_node_sets(data, max_relays=max_relays, cost_upper_bound=bound)
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
    arcs = [(idx[a], idx[b]) for a, b in data.graph.edges] + [(idx[b], idx[a]) for a, b in data.graph.edges]
    ends = {d: (idx[row.source], idx[row.target]) for d, row in enumerate(data.demands.itertuples(index=False))}
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
    m.through_node_max = pyo.Constraint(m.DVi, rule=lambda mm, d, v: sum(mm.f[a] for a in in_arcs[(d, v)]) <= 1)


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


def warm_start(m: pyo.ConcreteModel, data: TrustData, trusted: Iterable[Hashable]) -> None:
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


def index_arrays(data: TrustData) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    idx = data.index
    edges = [(idx[a], idx[b]) for a, b in data.graph.edges]
    src = np.array([idx[s] for s in data.demands["source"]], dtype=np.int64)
    dst = np.array([idx[t] for t in data.demands["target"]], dtype=np.int64)
    return edges, src, dst


def useful_pool(data: TrustData) -> list[int]:
    return [i for i in candidate_indices(data) if data.weight[i] > 0]


#: Pyomo + HiGHS memory per model column, measured on the 243-city plan (18 GB / 3.7 M columns)
BYTES_PER_COLUMN = 5_000
#: default column cap of the edge-flow MILP (about 1.2 GB by the measured ratio)
DEFAULT_MAX_COLUMNS = 250_000
#: seconds APPSI spends per column handing the model to HiGHS (outside HiGHS' own time limit)
LOAD_S_PER_COLUMN = 2e-5
#: handing a model to HiGHS through APPSI takes about this many times its Pyomo build (measured on the
#: Geant2010 plan: 20 s build, 47 s hand-over on a loaded machine)
LOAD_PER_BUILD = 2.0


#: Pruning is not tried when the unpruned column count is more than this many times the cap: measured
#: pruning keeps 70 % of the columns on the 243 Dutch cities and 18 % on the 3 407 US cities, so such a
#: model stays above the cap anyway (on the 3 407 US cities the pruning took 16 s of the model's time)
PRUNE_MAX_RATIO = 50


def estimate_model_columns(
    data: TrustData,
    *,
    max_relays: int | None,
    cost_upper_bound: float | None,
    work_cap: int = 20_000_000,
    deadline: float | None = None,
    max_columns: int | None = None,
) -> tuple[int, list[set[int]] | None]:
    """Columns (flow + weight variables) the edge-flow MILP would have, before building it.

    Cheap first: ``demands x (2 edges + nodes)`` (no pruning). When that is
    above the cap of the caller and ``demands x nodes <= work_cap``, prunes
    with :func:`demand_node_sets` and counts exactly; returns the node sets so
    a build can reuse them. Otherwise (or when the pruning is not done by
    ``deadline``, perf_counter, or the unpruned count is above
    :data:`PRUNE_MAX_RATIO` times ``max_columns``) returns the unpruned upper bound and None.
    """
    n_d = len(data.demands)
    n, m = len(data.nodes), data.graph.number_of_edges()
    crude = n_d * (2 * m + n)
    if n_d * n > work_cap or (max_columns is not None and crude > PRUNE_MAX_RATIO * max_columns):
        return crude, None
    try:
        sets = demand_node_sets(data, max_relays=max_relays, cost_upper_bound=cost_upper_bound, deadline=deadline)
    except PruneOutOfTime:
        return crude, None
    edges, _src, _dst = index_arrays(data)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    total = 0
    for keep in sets:
        mask = np.zeros(n, dtype=bool)
        mask[list(keep)] = True
        both = mask[e[:, 0]] & mask[e[:, 1]]
        total += 2 * int(both.sum()) + len(keep)
    return total, sets
