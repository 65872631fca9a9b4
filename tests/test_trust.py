"""Trusted-relay selection: checked against brute force over relay sets and all simple paths."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import planner.routing as routing
from solvers.base import SolveStatus
from solvers.trust import (
    TrustInfeasible,
    TrustInputError,
    centrality_trust,
    evaluate_trust,
    greedy_trust,
    prepare_trust_data,
    random_trust,
    solve_trust,
)


def random_case(seed: int, *, n: int = 9, n_demands: int = 3, p_edge: float = 0.35):
    rng = np.random.default_rng(seed)
    while True:
        g = nx.gnp_random_graph(n, p_edge, seed=int(rng.integers(1 << 30)))
        if nx.is_connected(g):
            break
    edges = pd.DataFrame(list(g.edges), columns=["u", "v"])
    nodes = pd.DataFrame(
        {
            "node": list(range(n)),
            "p_u": rng.choice([0.6, 0.7, 0.8, 0.9, 1.0], n),
            "cost": rng.choice([1.0, 2.0, 3.0], n),
            "candidate": rng.random(n) < 0.8,
        }
    )
    pairs = [tuple(int(x) for x in rng.choice(n, 2, replace=False)) for _ in range(n_demands)]
    demands = pd.DataFrame(
        {
            "demand": [f"r{i}" for i in range(n_demands)],
            "source": [a for a, _ in pairs],
            "target": [b for _, b in pairs],
        }
    )
    return g, edges, nodes, demands


def best_security(g, p_u, s, t, trusted):
    """Best single-path security by enumerating every simple path (no Dijkstra)."""
    best = 0.0
    for path in nx.all_simple_paths(g, s, t):
        sec = math.prod(p_u[v] for v in path[1:-1] if v not in trusted)
        best = max(best, sec)
    return best


def brute_force_max_min(g, nodes, demands, budget):
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    cand = list(nodes.loc[nodes["candidate"], "node"])
    best = -1.0
    for size in range(budget + 1):
        for subset in itertools.combinations(cand, size):
            val = min(best_security(g, p_u, r.source, r.target, set(subset)) for r in demands.itertuples())
            best = max(best, val)
    return best


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("budget", [1, 2])
def test_max_min_security_matches_brute_force(seed, budget):
    g, edges, nodes, demands = random_case(seed)
    expected = brute_force_max_min(g, nodes, demands, budget)
    res = solve_trust(edges, nodes, demands, max_relays=budget)
    assert res.status is SolveStatus.OPTIMAL
    assert res.objective == pytest.approx(expected, rel=1e-7)
    relays = res.tables["relays"]
    assert len(relays) <= budget
    assert set(relays["node"]) <= set(nodes.loc[nodes["candidate"], "node"])
    # the reported per-demand securities are those of the chosen set, recomputed by path enumeration
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    trusted = set(relays["node"])
    for r in res.tables["demands"].itertuples():
        assert r.security == pytest.approx(best_security(g, p_u, r.source, r.target, trusted), rel=1e-9)
        assert r.path[0] == r.source and r.path[-1] == r.target
        assert nx.is_path(g, r.path)
        assert r.security == pytest.approx(math.prod(p_u[v] for v in r.path[1:-1] if v not in trusted))
    assert min(res.tables["demands"]["security"]) == pytest.approx(res.objective)


@pytest.mark.parametrize("seed", range(6))
def test_min_cost_matches_brute_force(seed):
    g, edges, nodes, demands = random_case(50 + seed)
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    cost = dict(zip(nodes["node"], nodes["cost"], strict=True))
    cand = list(nodes.loc[nodes["candidate"], "node"])
    everything = min(best_security(g, p_u, r.source, r.target, set(cand)) for r in demands.itertuples())
    nothing = min(best_security(g, p_u, r.source, r.target, set()) for r in demands.itertuples())
    target = nothing + 0.6 * (everything - nothing)
    best = math.inf
    for size in range(len(cand) + 1):
        for subset in itertools.combinations(cand, size):
            ok = all(
                best_security(g, p_u, r.source, r.target, set(subset)) >= target - 1e-12 for r in demands.itertuples()
            )
            if ok:
                best = min(best, sum(cost[v] for v in subset))
    res = solve_trust(edges, nodes, demands, mode="min_cost", security_target=target)
    assert res.objective == pytest.approx(best)
    assert res.tables["demands"]["security"].min() >= target * (1 - 1e-9)
    assert res.tables["relays"]["cost"].sum() == pytest.approx(best)


def test_target_out_of_reach_names_demands():
    # path 0-1-2 where 1 is not a candidate: security of (0, 2) stays 0.5
    edges = pd.DataFrame({"u": [0, 1, 2], "v": [1, 2, 3]})
    nodes = pd.DataFrame({"node": [0, 1, 2, 3], "p_u": [0.5, 0.5, 0.5, 0.5], "candidate": [True, False, True, True]})
    demands = pd.DataFrame({"demand": ["a", "b"], "source": [0, 2], "target": [2, 3]})
    with pytest.raises(TrustInfeasible) as err:
        solve_trust(edges, nodes, demands, mode="min_cost", security_target=0.9)
    assert err.value.conflicts == ["a"]


def test_heuristics_are_feasible_and_not_better_than_milp():
    g, edges, nodes, demands = random_case(3, n=12, n_demands=4)
    budget = 2
    milp = solve_trust(edges, nodes, demands, max_relays=budget)
    p_u = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    results = [
        greedy_trust(edges, nodes, demands, max_relays=budget),
        centrality_trust(edges, nodes, demands, max_relays=budget),
        random_trust(edges, nodes, demands, max_relays=budget, rng=np.random.default_rng(5)),
    ]
    for res in results:
        assert res.status is SolveStatus.HEURISTIC
        chosen = set(res.tables["relays"]["node"])
        assert len(chosen) == budget
        assert chosen <= set(nodes.loc[nodes["candidate"], "node"])
        exact = min(best_security(g, p_u, r.source, r.target, chosen) for r in demands.itertuples())
        assert res.objective == pytest.approx(exact)
        assert res.objective <= milp.objective + 1e-9


def test_centrality_picks_highest_betweenness():
    g, edges, nodes, demands = random_case(4, n=12)
    res = centrality_trust(edges, nodes, demands, max_relays=3)
    bc = nx.betweenness_centrality(g)
    cand = sorted(nodes.loc[nodes["candidate"], "node"], key=lambda v: -bc[v])
    assert sorted(bc[v] for v in res.tables["relays"]["node"]) == pytest.approx(sorted(bc[v] for v in cand[:3]))


def test_random_is_reproducible_and_records_seed():
    _g, edges, nodes, demands = random_case(5, n=12)
    a = random_trust(edges, nodes, demands, max_relays=3, rng=np.random.default_rng(42))
    b = random_trust(edges, nodes, demands, max_relays=3, rng=np.random.default_rng(42))
    assert list(a.tables["relays"]["node"]) == list(b.tables["relays"]["node"])
    assert "rng_state" in a.info


def test_greedy_first_pick_is_best_single_relay():
    g, edges, nodes, demands = random_case(6, n=10)
    res = greedy_trust(edges, nodes, demands, max_relays=1)
    assert res.objective == pytest.approx(brute_force_max_min(g, nodes, demands, 1))


def test_evaluate_counts_endpoints_and_trusted_as_one():
    # line 0-1-2-3: demand 0 -> 3 passes 1 and 2
    edges = pd.DataFrame({"u": [0, 1, 2], "v": [1, 2, 3]})
    nodes = pd.DataFrame({"node": [0, 1, 2, 3], "p_u": [0.1, 0.5, 0.8, 0.2]})
    demands = pd.DataFrame({"demand": ["x"], "source": [0], "target": [3]})
    data = prepare_trust_data(edges, nodes, demands)
    assert evaluate_trust(data, []).at[0, "security"] == pytest.approx(0.4)
    assert evaluate_trust(data, [1]).at[0, "security"] == pytest.approx(0.8)
    assert evaluate_trust(data, [1, 2]).at[0, "security"] == pytest.approx(1.0)
    assert evaluate_trust(data, [0, 3]).at[0, "security"] == pytest.approx(0.4)


def test_bad_input_lists_every_problem():
    edges = pd.DataFrame({"u": [0, 1], "v": [1, 9]})
    nodes = pd.DataFrame({"node": [0, 1, 2], "p_u": [0.5, 0.0, 1.2]})
    demands = pd.DataFrame({"demand": ["a", "b"], "source": [0, 0], "target": [0, 7]})
    with pytest.raises(TrustInputError) as err:
        prepare_trust_data(edges, nodes, demands)
    msg = str(err.value)
    for part in (
        "row 1 (node 1)",
        "row 2 (node 2)",
        "node 9",
        "source equals target",
        "demand 'b'",
    ):
        assert part in msg
    with pytest.raises(TrustInputError, match="no path"):
        prepare_trust_data(
            pd.DataFrame({"u": [0], "v": [1]}),
            pd.DataFrame({"node": [0, 1, 2], "p_u": [0.5, 0.5, 0.5]}),
            pd.DataFrame({"demand": ["a"], "source": [0], "target": [2]}),
        )


def test_smr_security_of_chosen_set_is_at_least_single_path():
    """With SMR routing, multipath security is never below the best single path."""
    g, edges, nodes, demands = random_case(7, n=14, n_demands=4)
    res = solve_trust(edges, nodes, demands, max_relays=2)
    trusted = set(res.tables["relays"]["node"])
    security = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    for r in res.tables["demands"].itertuples():
        out = routing.smr(g, r.source, r.target, trusted=trusted, security=security)
        assert out.security >= r.security - 1e-9
