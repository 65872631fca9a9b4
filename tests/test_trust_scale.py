"""Scalable trust pieces checked against enumeration: pivot costs, greedy, token bound, heuristic path."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from test_trust import best_security, brute_force_max_min, random_case

from solvers.base import SolverOptions, SolveStatus
from solvers.trust import evaluate_trust, prepare_trust_data, solve_trust
from solvers.trust_fast import greedy_select, interior_costs, pivot, token_lower_bound


def _arrays(nodes: pd.DataFrame, edges: pd.DataFrame, demands: pd.DataFrame):
    data = prepare_trust_data(edges, nodes, demands)
    idx = data.index
    e = [(idx[a], idx[b]) for a, b in data.graph.edges]
    src = np.array([idx[s] for s in data.demands["source"]])
    dst = np.array([idx[t] for t in data.demands["target"]])
    return data, e, src, dst


@pytest.mark.parametrize("seed", range(5))
def test_pivot_matches_enumerated_costs(seed):
    g, edges, nodes, demands = random_case(100 + seed, n=8)
    data, e, _src, _dst = _arrays(nodes, edges, demands)
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    n = len(data.nodes)
    mask = np.zeros(n, dtype=bool)
    C = interior_costs(n, e, data.weight, mask)
    for v in (2, 5):
        pivot(C, v)
        mask[v] = True
    trusted = {data.nodes[i] for i in np.nonzero(mask)[0]}
    fresh = interior_costs(n, e, data.weight, mask)
    for a, b in itertools.combinations(range(n), 2):
        expect = -math.log(best_security(g, p_u, data.nodes[a], data.nodes[b], trusted))
        assert C[a, b] == pytest.approx(expect, abs=1e-9)
        assert C[b, a] == pytest.approx(expect, abs=1e-9)
        assert fresh[a, b] == pytest.approx(expect, abs=1e-9)


def _reference_greedy(data, budget):
    """Greedy by re-evaluating every candidate with Dijkstra (the rule greedy_select must follow)."""
    chosen: list = []
    pool = [data.nodes[i] for i in range(len(data.nodes)) if data.candidate[i] and data.weight[i] > 0]
    for _ in range(min(budget, len(pool))):
        best = None
        for v in pool:
            if v in chosen:
                continue
            sec = evaluate_trust(data, chosen + [v])["security"].to_numpy()
            key = (round(float((-np.log(sec)).max()), 12), round(float((-np.log(sec)).sum()), 9))
            if best is None or key < best[0]:
                best = (key, v)
        chosen.append(best[1])
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_greedy_select_follows_the_dijkstra_greedy(seed):
    _g, edges, nodes, demands = random_case(200 + seed, n=11, n_demands=5)
    data, e, src, dst = _arrays(nodes, edges, demands)
    pool = [i for i in range(len(data.nodes)) if data.candidate[i] and data.weight[i] > 0]
    fast = [data.nodes[i] for i in greedy_select(len(data.nodes), e, data.weight, pool, src, dst, 3)]
    ref = _reference_greedy(data, 3)
    sec_fast = evaluate_trust(data, fast)["security"]
    sec_ref = evaluate_trust(data, ref)["security"]
    assert sec_fast.min() == pytest.approx(sec_ref.min())
    assert np.log(sec_fast).sum() == pytest.approx(np.log(sec_ref).sum())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("budget", [1, 2])
def test_token_bound_is_valid_per_demand(seed, budget):
    g, edges, nodes, demands = random_case(300 + seed, n=9, n_demands=4)
    data, e, src, dst = _arrays(nodes, edges, demands)
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    free = data.candidate & (data.weight > 0)
    lb = token_lower_bound(len(data.nodes), e, data.weight, free, src, dst, budget)
    cand = list(nodes.loc[nodes["candidate"], "node"])
    for d, r in enumerate(demands.itertuples()):
        best_cost = min(
            -math.log(best_security(g, p_u, r.source, r.target, set(sub)))
            for k in range(budget + 1)
            for sub in itertools.combinations(cand, k)
        )
        # the bound is exactly the single-demand optimum (each demand alone may choose its relays)
        assert lb[d] == pytest.approx(best_cost, abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_heuristic_path_has_valid_bound_and_exact_objective(seed):
    g, edges, nodes, demands = random_case(seed, n=10, n_demands=4)
    budget = 2
    optimum = brute_force_max_min(g, nodes, demands, budget)
    res = solve_trust(edges, nodes, demands, max_relays=budget, max_columns=0)
    assert res.status in (SolveStatus.HEURISTIC, SolveStatus.OPTIMAL)
    assert "milp_skipped" in res.info
    assert res.objective <= optimum + 1e-9 <= res.bound + 2e-9
    assert res.gap == pytest.approx((res.bound - res.objective) / res.objective, abs=1e-9)
    if res.status is SolveStatus.OPTIMAL:
        assert res.objective == pytest.approx(optimum)
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    trusted = set(res.tables["relays"]["node"])
    assert len(trusted) <= budget
    exact = min(best_security(g, p_u, r.source, r.target, trusted) for r in demands.itertuples())
    assert res.objective == pytest.approx(exact)


def test_string_node_ids_and_a_tiny_time_limit_still_give_a_design():
    g = nx.random_geometric_graph(40, 0.3, seed=4)
    g = g.subgraph(max(nx.connected_components(g), key=len)).copy()
    names = {v: f"site-{v}" for v in g}
    edges = pd.DataFrame([(names[a], names[b]) for a, b in g.edges], columns=["u", "v"])
    nodes = pd.DataFrame({"node": [names[v] for v in g], "p_u": 0.8})
    vs = sorted(names.values())
    demands = pd.DataFrame({"demand": [f"d{i}" for i in range(6)], "source": vs[:6], "target": vs[-6:]})
    res = solve_trust(edges, nodes, demands, max_relays=3, options=SolverOptions(time_limit_s=0.01))
    assert res.has_solution
    assert math.isfinite(res.bound) and res.bound >= res.objective - 1e-12
    assert len(res.tables["relays"]) <= 3
