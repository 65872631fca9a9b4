"""Trust stage at scale: exact fast paths checked against the reference searches, SMR checks on the
executor (serial == processes), and the stage's time budget covering the SMR verification
(recorded limits only, no wall-clock asserts)."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from helpers_net import random_sites, write_sites_csv

from planner.routing import Topology, smr
from planner.routing.graph import search_arrays, search_heap
from planner.runtime.parallel import Executor
from planner.stages.trust_smr import SmrEvaluator
from solvers.base import TimeLimitRecord, recording_time_limits


def _random_case(trial: int, rng: random.Random) -> tuple[Topology, list[int]]:
    if trial % 2:
        n = rng.randint(5, 50)
        g = nx.gnm_random_graph(n, rng.randint(n, 3 * n), seed=trial)
    else:
        g = nx.grid_2d_graph(rng.randint(2, 7), rng.randint(2, 7))
    topo = Topology(g)
    n = len(topo.nodes)
    kind = trial % 3
    if kind == 0:
        cost = [rng.choice([0, 5]) for _ in range(n)]  # trusted relays (cost 0) among equal ones
    elif kind == 1:
        cost = [5] * n  # one probability for all: ties everywhere
    else:
        cost = [rng.randint(0, 3) for _ in range(n)]
    return topo, cost


def test_array_search_returns_the_heap_search_path_and_cost():
    """Same path (least cost, then fewest hops, then lexicographically smallest) and cost, with
    blocked nodes and links, on 600 random searches full of ties and zero-cost relays."""
    rng = random.Random(7)
    for trial in range(120):
        topo, cost = _random_case(trial, rng)
        n = len(topo.nodes)
        arr = np.asarray(cost, dtype=float)
        links = [(u, w) for u in range(n) for w in topo.adj[u] if u < w]
        for _ in range(5):
            s, t = rng.sample(range(n), 2)
            nodes = set(rng.sample(range(n), rng.randint(0, n // 3)))
            edges = set(rng.sample(links, rng.randint(0, len(links) // 4))) if links else set()
            ref = search_heap(topo, cost, s, t, blocked_nodes=nodes, blocked_edges=edges)
            got = search_arrays(topo, cost, arr, s, t, blocked_nodes=nodes, blocked_edges=edges)
            assert got == ref, (trial, s, t)


def test_array_search_reaches_far_targets_and_finds_unreachable_ones():
    """Far targets (the growing Dijkstra limit retried several times) and targets cut off by blocked
    nodes (no path: None) give the heap search's answer."""
    import planner.routing.graph as routing

    g = nx.grid_2d_graph(40, 3)
    topo = Topology(g)
    n = len(topo.nodes)
    rng = random.Random(5)
    cost = [rng.randint(1, 3) for _ in range(n)]
    arr = np.asarray(cost, dtype=float)
    far = (topo.rank[(0, 0)], topo.rank[(39, 2)])
    cut = {topo.rank[(20, j)] for j in range(3)}  # a wall between the two ends
    for s, t in [far, (far[1], far[0]), (topo.rank[(0, 1)], topo.rank[(2, 1)])]:
        ref = search_heap(topo, cost, s, t)
        assert ref is not None and ref[1] > routing.FIRST_REACH_RELAYS * 4 * min(cost) or s != far[0]
        assert search_arrays(topo, cost, arr, s, t) == ref
        wall = search_arrays(topo, cost, arr, s, t, blocked_nodes=cut)
        assert wall == search_heap(topo, cost, s, t, blocked_nodes=cut)
    assert search_arrays(topo, cost, arr, far[0], far[1], blocked_nodes=cut) is None


def test_smr_on_a_large_graph_equals_the_heap_search_smr(monkeypatch):
    """SMR routed with the array search (graph above the size threshold) equals SMR with the heap search."""
    import planner.routing.graph as routing

    g = nx.grid_2d_graph(14, 12)  # 168 nodes
    rng = np.random.default_rng(3)
    nodes = sorted(g.nodes)
    security = {v: 0.8 for v in nodes}
    trusted = {nodes[i] for i in rng.choice(len(nodes), 4, replace=False)}
    pairs = [tuple(nodes[i] for i in rng.choice(len(nodes), 2, replace=False)) for _ in range(6)]
    assert len(nodes) >= routing.ARRAY_SEARCH_MIN_NODES
    fast = [smr(g, s, t, trusted=trusted, security=security) for s, t in pairs]
    monkeypatch.setattr(routing, "ARRAY_SEARCH_MIN_NODES", 10**9)
    slow = [smr(g, s, t, trusted=trusted, security=security) for s, t in pairs]
    assert fast == slow


def test_token_cost_tables_equal_the_heap_search():
    from solvers.trust_data import prepare_trust_data
    from solvers.trust_model import _token_cost_tables, _token_costs

    rng = np.random.default_rng(5)
    g = nx.connected_watts_strogatz_graph(40, 4, 0.3, seed=2)
    nodes = pd.DataFrame(
        {"node": list(g.nodes), "p_u": rng.choice([0.7, 0.9, 1.0], size=40), "candidate": rng.random(40) < 0.7}
    )
    edges = pd.DataFrame(list(g.edges), columns=["u", "v"])
    demands = pd.DataFrame({"demand": [0], "source": [0], "target": [20]})
    data = prepare_trust_data(edges, nodes, demands)
    idx = data.index
    adj: list[list[int]] = [[] for _ in data.nodes]
    for a, b in data.graph.edges:
        adj[idx[a]].append(idx[b])
        adj[idx[b]].append(idx[a])
    free = data.candidate & (data.weight > 0)
    for tokens in (0, 1, 3):
        tables = _token_cost_tables(data, free, [0, 7, 20], tokens)
        for r in (0, 7, 20):
            ref = _token_costs(adj, data.weight, free, r, tokens)
            np.testing.assert_allclose(tables[r], ref, rtol=1e-12, atol=1e-12)


def _evaluator_case(executor: Executor | None) -> SmrEvaluator:
    g = nx.connected_watts_strogatz_graph(60, 4, 0.2, seed=4)
    rng = np.random.default_rng(8)
    pairs = [tuple(int(x) for x in rng.choice(60, 2, replace=False)) for _ in range(220)]
    security = {v: float(p) for v, p in zip(g.nodes, rng.uniform(0.7, 0.95, 60), strict=True)}
    return SmrEvaluator(g, pairs, security, executor=executor)


def test_smr_checks_are_identical_serial_and_on_processes():
    """All demands of a selection (more than the parallel threshold) routed on two worker
    processes give exactly the serial securities and routes, in demand order."""
    serial, parallel = _evaluator_case(Executor()), _evaluator_case(Executor("process", 2))
    trusted = frozenset({3, 17, 41})
    res_s: list = []
    res_p: list = []
    sec_s = serial.securities(trusted, results=res_s)
    sec_p = parallel.securities(trusted, results=res_p)
    assert len(sec_s) == 220
    np.testing.assert_array_equal(sec_s, sec_p)
    assert res_s == res_p
    # and both equal routing each demand alone
    g = serial.graph
    for k in (0, 99, 219):
        s, t = serial.pairs[k]
        assert res_s[k] == smr(g, s, t, trusted=trusted, security=serial.security)


def test_verification_stops_at_its_deadline_and_verifies_every_set_on_the_same_demands():
    import time

    from planner.stages.trust_verify import verify

    ev = _evaluator_case(Executor())
    sets = [frozenset({3, 17}), frozenset({5}), frozenset({3, 17})]
    rows = [4, 9, 30]
    past = verify(ev, sets, frozenset({3, 17}), rows, 0.01, time.perf_counter() - 1.0, seed=0)
    assert past.rows == rows[:1]  # the deadline has passed: the first of the selection's demands only
    assert set(past.securities) == {frozenset({3, 17}), frozenset({5})}
    assert len(past.results) == 1
    # demands already routed for every set cost nothing: the selection's demands are then all kept
    for s in (frozenset({3, 17}), frozenset({5})):
        ev.securities(s, rows)
    again = verify(ev, sets, frozenset({3, 17}), rows, 0.01, time.perf_counter() - 1.0, seed=0)
    assert again.rows == rows
    np.testing.assert_array_equal(again.securities[frozenset({5})], ev.securities(frozenset({5}), rows))
    whole = verify(ev, sets, frozenset({5}), rows, 0.01, time.perf_counter() + 3600.0, seed=0)
    assert whole.rows == list(range(220))
    for s, vec in whole.securities.items():
        np.testing.assert_array_equal(vec, ev.securities(s))
    assert [r.security if r.delivered else 0.0 for r in whole.results] == list(whole.securities[frozenset({5})])


def test_betweenness_is_exact_on_small_graphs_and_sampled_to_fit_on_large_ones():
    from planner.stages.trust import EXACT_BETWEENNESS_MAX_NODES, _betweenness

    small = nx.connected_watts_strogatz_graph(50, 4, 0.2, seed=1)
    bc, k = _betweenness(small, 0.0, seed=0)
    assert k == 50 and bc == nx.betweenness_centrality(small)
    large = nx.grid_2d_graph(EXACT_BETWEENNESS_MAX_NODES // 20 + 1, 21)
    bc, k = _betweenness(large, 0.0, seed=0)
    assert k == 8  # no time: the probe's sample only
    assert bc == nx.betweenness_centrality(large, k=8, seed=0)


@pytest.mark.parametrize("stage_s", [40.0, 0.3])
def test_trust_stage_budget_covers_the_smr_verification(tmp_path, stage_s):
    """Model, betweenness, SMR search and SMR verification are each handed a recorded limit, and
    together they stay within the stage's limit; with too little time the verification covers
    fewer demands, says so, and every selection is compared on the same demands."""
    from planner.io.readers import read_network
    from planner.model.scenario import default_scenario
    from planner.pipeline import plan_access
    from planner.stages.backbone import build_backbone, cluster_of
    from planner.stages.prepare import prepare_network
    from planner.stages.trust import plan_trust

    scenario = default_scenario().with_overrides({"access.reach_km": 60.0, "solver.time_limit_s": 30.0})
    net, _ = prepare_network(read_network(write_sites_csv(tmp_path / "s.csv", random_sites(60, seed=4))), scenario)
    access, tables = plan_access(net, scenario, seed=1)
    backbone = build_backbone(net, cluster_of(access.tables["assignment"], tables.standalone), scenario)
    trust_scenario = scenario.with_overrides({"solver.time_limit_s": stage_s})
    with recording_time_limits() as log:
        out = plan_trust(net, backbone, trust_scenario, seed=1)
    handed = [r.time_limit_s for r in log if isinstance(r, TimeLimitRecord)]
    # the model's solver is not started when too little time is left (then only the other three)
    assert len(handed) >= (4 if stage_s > 10 else 3), "betweenness, search and verification were not all budgeted"
    assert sum(handed) <= stage_s + 1e-9
    info = out.metrics["trust_smr_search"]
    n_dem = len(backbone.demands)
    assert 1 <= info["verified_demands"] <= n_dem
    assert (info["verification"] == "all demands") == (info["verified_demands"] == n_dem)
    assert {row["smr_demands"] for row in out.metrics["trust_comparison"]} == {info["verified_demands"]}
    if info["verified_demands"] < n_dem:
        assert info["time_limit_reached"]
    elif stage_s > 10 and not str(info.get("stopped", "")).startswith("time limit"):
        # finished well inside its limit: handing out the last of the budget is not reaching it
        assert not info["time_limit_reached"], info
    assert out.demands is not None
    dem = out.demands
    assert int(dem["security"].notna().sum()) == info["verified_demands"] == out.verified_demands
    assert out.n_demands == n_dem and out.time_limit_reached == info["time_limit_reached"]
    assert out.trusted == set(out.relays.loc[out.relays["trusted"], "site_id"])
    assert len(out.trusted) <= trust_scenario.security.trusted_budget
    assert out.tables["relays"] is out.relays and out.tables["demands"] is out.demands
