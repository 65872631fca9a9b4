"""Scalable trust pieces checked against enumeration: pivot costs (full and end-point rows), greedy,
token bound (all demands and worst first), pivoted set costs, heuristic path."""

from __future__ import annotations

import itertools
import math
import time

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from test_trust import best_security, brute_force_max_min, random_case

from solvers import trust_fast
from solvers.base import SolverOptions, SolveStatus
from solvers.trust import evaluate_costs, evaluate_trust, prepare_trust_data, solve_trust
from solvers.trust_data import PathOracle
from solvers.trust_fast import greedy_select, interior_costs, pivot, token_lower_bound
from solvers.trust_model import PRUNE_MAX_RATIO, estimate_model_columns


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


@pytest.fixture
def end_point_rows(monkeypatch):
    """Cost matrices keep only the demand end points' rows on every graph (as on national ones)."""
    monkeypatch.setattr(trust_fast, "TERMINAL_ROWS_MIN_NODES", 0)


@pytest.mark.parametrize("seed", range(5))
def test_end_point_rows_follow_the_enumerated_costs_through_pivots(seed, end_point_rows):
    g, edges, nodes, demands = random_case(400 + seed, n=11, n_demands=2, p_edge=0.3)
    data, e, src, dst = _arrays(nodes, edges, demands)
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    n = len(data.nodes)
    C = trust_fast.CostRows(n, e, data.weight, np.zeros(n, dtype=bool), np.concatenate([src, dst]))
    assert not C.full and len(C.rows) <= 4
    trusted: set = set()
    for v in (1, 6, 9):  # trusting relays one by one keeps every kept row exact
        C.trust(v)
        trusted.add(data.nodes[v])
        for a, b in itertools.product(C.rows.tolist(), range(n)):
            if a != b:
                expect = -math.log(best_security(g, p_u, data.nodes[a], data.nodes[b], trusted))
                assert C.C[C.pos[a], b] == pytest.approx(expect, abs=1e-9)
        for i, (s, t) in enumerate(zip(demands["source"], demands["target"], strict=True)):
            expect = -math.log(best_security(g, p_u, s, t, trusted))
            assert C.demand_costs(src, dst)[i] == pytest.approx(expect, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_greedy_on_end_point_rows_follows_the_dijkstra_greedy(seed, end_point_rows):
    _g, edges, nodes, demands = random_case(200 + seed, n=11, n_demands=2)
    data, e, src, dst = _arrays(nodes, edges, demands)
    pool = [i for i in range(len(data.nodes)) if data.candidate[i] and data.weight[i] > 0]
    keep: dict = {}
    fast = [data.nodes[i] for i in greedy_select(len(data.nodes), e, data.weight, pool, src, dst, 3, keep=keep)]
    assert keep["base"].shape == (len(np.union1d(src, dst)),) * 2
    ref = _reference_greedy(data, 3)
    sec_fast = evaluate_trust(data, fast)["security"]
    sec_ref = evaluate_trust(data, ref)["security"]
    assert sec_fast.min() == pytest.approx(sec_ref.min())
    assert np.log(sec_fast).sum() == pytest.approx(np.log(sec_ref).sum())
    # past its deadline the greedy still returns its first pick, the reference's first pick
    late = greedy_select(len(data.nodes), e, data.weight, pool, src, dst, 3, deadline=time.perf_counter() - 1)
    assert [data.nodes[i] for i in late] == ref[:1]


@pytest.mark.parametrize("seed", range(6))
def test_pivoted_set_costs_equal_the_enumerated_costs(seed, end_point_rows):
    g, edges, nodes, demands = random_case(500 + seed, n=12, n_demands=2, p_edge=0.3)
    data = prepare_trust_data(edges, nodes, demands)
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    rng = np.random.default_rng(seed)
    for _ in range(4):
        trusted = [int(v) for v in rng.choice(12, size=int(rng.integers(0, 4)), replace=False)]
        got = evaluate_costs(data, trusted)  # pivoted through the end points' no-relay costs
        assert data.cache.get("base") is not None
        for i, r in enumerate(demands.itertuples()):
            assert got[i] == pytest.approx(-math.log(best_security(g, p_u, r.source, r.target, set(trusted))), abs=1e-9)
        np.testing.assert_allclose(got, PathOracle(data).costs(_mask(data, trusted)), atol=1e-12)


def _mask(data, trusted):
    mask = np.zeros(len(data.nodes), dtype=bool)
    mask[[data.index[v] for v in trusted]] = True
    return mask


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("budget", [1, 2])
def test_token_bound_worst_first_keeps_the_maximum(seed, budget):
    _g, edges, nodes, demands = random_case(300 + seed, n=9, n_demands=6)
    data, e, src, dst = _arrays(nodes, edges, demands)
    free = data.candidate & (data.weight > 0)
    full = token_lower_bound(len(data.nodes), e, data.weight, free, src, dst, budget)
    pool = [i for i in range(len(data.nodes)) if free[i]]
    upper = evaluate_costs(data, [data.nodes[i] for i in pool[:budget]])  # costs of a set of <= budget relays
    assert (full <= upper + 1e-9).all()
    early = token_lower_bound(len(data.nodes), e, data.weight, free, src, dst, budget, upper=upper)
    assert early.max() == full.max()  # stopped early by the upper costs, yet exact
    searched = early > 0
    np.testing.assert_array_equal(early[searched], full[searched])
    late = token_lower_bound(
        len(data.nodes), e, data.weight, free, src, dst, budget, upper=upper, deadline=time.perf_counter() - 1
    )
    assert late.max() <= full.max() and ((late == 0) | (late == full)).all()  # a valid, weaker bound
    worst_source = src[int(np.argmax(upper))]
    assert (late[src == worst_source] == full[src == worst_source]).all()  # the worst demand's source first


def test_column_estimate_skips_the_pruning_far_above_the_cap():
    _g, edges, nodes, demands = random_case(7, n=10, n_demands=4)
    data = prepare_trust_data(edges, nodes, demands)
    n_d, n, m = len(demands), len(data.nodes), data.graph.number_of_edges()
    crude = n_d * (2 * m + n)
    pruned, sets = estimate_model_columns(data, max_relays=2, cost_upper_bound=None)
    assert sets is not None and len(sets) == n_d and pruned <= crude
    far, none = estimate_model_columns(
        data, max_relays=2, cost_upper_bound=None, max_columns=crude // (PRUNE_MAX_RATIO + 1)
    )
    assert (far, none) == (crude, None)
    near, near_sets = estimate_model_columns(data, max_relays=2, cost_upper_bound=None, max_columns=crude)
    assert (near, near_sets is not None) == (pruned, True)
