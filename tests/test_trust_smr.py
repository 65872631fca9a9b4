"""SMR-aware trusted-relay choice: evaluator vs smr(), search vs starts and brute force, target mode."""

from __future__ import annotations

import itertools
import time

import networkx as nx
import numpy as np
import pytest

from planner.routing import smr
from planner.stages.trust_smr import SmrEvaluator, choose_for_smr, fewest_for_target, smr_key


def case(seed: int, n: int = 10, n_demands: int = 5):
    rng = np.random.default_rng(seed)
    while True:
        g = nx.gnp_random_graph(n, 0.35, seed=int(rng.integers(1 << 30)))
        if nx.is_connected(g):
            break
    g = nx.relabel_nodes(g, {v: f"n{v}" for v in g})
    nodes = sorted(g.nodes)
    security = {v: float(rng.choice([0.6, 0.7, 0.8, 0.9])) for v in nodes}
    pairs = []
    while len(pairs) < n_demands:
        a, b = (nodes[int(i)] for i in rng.choice(n, 2, replace=False))
        if (a, b) not in pairs:
            pairs.append((a, b))
    return g, nodes, security, pairs


def smr_vector(g, pairs, trusted, security):
    out = []
    for s, t in pairs:
        r = smr(g, s, t, trusted=trusted, security=security)
        out.append(r.security if r.delivered else 0.0)
    return np.array(out)


@pytest.mark.parametrize("seed", range(4))
def test_evaluator_equals_smr_per_demand(seed):
    g, nodes, security, pairs = case(seed)
    ev = SmrEvaluator(g, pairs, security)
    for trusted in (frozenset(), frozenset(nodes[:2]), frozenset(nodes[3:6])):
        expect = smr_vector(g, pairs, trusted, security)
        assert ev.securities(trusted) == pytest.approx(expect, abs=1e-12)
        assert ev.securities(trusted, [1, 3]) == pytest.approx(expect[[1, 3]], abs=1e-12)


def brute_force_best(g, nodes, security, pairs, budget, objective):
    best = None
    for k in range(budget + 1):
        for sub in itertools.combinations(nodes, k):
            key = smr_key(smr_vector(g, pairs, set(sub), security), objective)
            best = key if best is None or key > best else best
    return best


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("objective", ["min", "mean"])
def test_search_is_never_worse_than_any_start_and_never_above_brute_force(seed, objective):
    g, nodes, security, pairs = case(10 + seed, n=9)
    budget = 2
    rng = np.random.default_rng(seed)
    starts = {
        "first": nodes[:budget],
        "betweenness": sorted(nx.betweenness_centrality(g).items(), key=lambda kv: -kv[1])[:budget],
        "random": [nodes[int(i)] for i in rng.choice(len(nodes), budget, replace=False)],
    }
    starts["betweenness"] = [v for v, _ in starts["betweenness"]]
    ev = SmrEvaluator(g, pairs, security)
    choice = choose_for_smr(ev, starts, nodes, budget, objective=objective, deadline=time.perf_counter() + 60, screen=4)
    assert len(choice.trusted) <= budget
    got = smr_key(smr_vector(g, pairs, set(choice.trusted), security), objective)
    assert got == choice.key
    for name, st in starts.items():
        assert got >= smr_key(smr_vector(g, pairs, set(st), security), objective), name
    assert got <= brute_force_best(g, nodes, security, pairs, budget, objective)


@pytest.mark.parametrize("seed", range(4))
def test_target_mode_meets_eps_with_few_relays(seed):
    g, nodes, security, pairs = case(20 + seed, n=9)
    eps = 0.85
    ev = SmrEvaluator(g, pairs, security)
    res = fewest_for_target(ev, nodes, eps, order=nodes, deadline=time.perf_counter() + 60)
    vec = smr_vector(g, pairs, set(res.trusted), security)
    assert res.unreachable == []  # every node is a candidate: trusting all gives security 1
    assert bool((vec >= eps - 1e-12).all())
    assert res.met == len(pairs)
    # brute force: the fewest relays that give every demand eps
    fewest = next(
        k
        for k in range(len(nodes) + 1)
        if any(
            (smr_vector(g, pairs, set(sub), security) >= eps - 1e-12).all() for sub in itertools.combinations(nodes, k)
        )
    )
    assert res.lower_bound <= fewest <= len(res.trusted)
    # no single relay of the answer can be dropped
    for v in res.trusted:
        trial = set(res.trusted) - {v}
        assert not (smr_vector(g, pairs, trial, security) >= eps - 1e-12).all()


def test_target_mode_names_demands_that_cannot_reach_eps():
    # path a - b - c - d: b is not a candidate, so (a, c) stays at 0.5 < eps
    g = nx.path_graph(["a", "b", "c", "d"])
    security = {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5}
    ev = SmrEvaluator(g, [("a", "c"), ("c", "a"), ("b", "d")], security)
    res = fewest_for_target(ev, ["a", "c", "d"], 0.9, order=["a", "c", "d"], deadline=time.perf_counter() + 10)
    assert res.unreachable == [0, 1]
    assert res.trusted == ["c"]  # demand (b, d) needs c trusted
