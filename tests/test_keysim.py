"""Key-level simulation on real bytes: OTP relaying, reconstruction, eavesdropper vs analysis."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from planner.errors import InfeasibleDesignError
from planner.keys.reconstruction import flexible_reconstruction, reuse_reconstruction
from planner.routing.paths import msp, smr
from planner.simulate.keysim import (
    LinkKeyPools,
    distribute_keys,
    eavesdrop,
    leak_trials,
    max_block_bits,
    route_and_reconstruct,
)
from planner.topology.waxman import waxman_graph


def two_segment_route(p: float = 0.6):
    graph = nx.Graph(
        [
            ("s", "a"),
            ("a", "r"),
            ("r", "b"),
            ("b", "d"),
            ("s", "c"),
            ("c", "r"),
            ("r", "e"),
            ("e", "d"),
            ("s", "f"),
            ("f", "g"),
            ("g", "r"),
        ]
    )
    route = smr(graph, "s", "d", trusted={"r"}, security=p)
    assert route.segment_nodes == ("s", "r", "d")
    return graph, route


def plan_for(route, eps):
    return flexible_reconstruction([list(seg.path_security) for seg in route.segments], eps)


def test_distribution_delivers_identical_keys_and_consumes_pads():
    _, route = two_segment_route()
    plan = plan_for(route, 0.5)
    assert plan.n_global_keys >= 1
    pools = LinkKeyPools(pool_bits=8_000, rng=np.random.default_rng(1))
    tr = distribute_keys(route, plan, block_bytes=16, pools=pools, rng=np.random.default_rng(2))
    assert tr.keys_agree
    assert len(tr.global_keys_source) == plan.n_global_keys
    consumed = pools.consumed_bits()
    assert sum(consumed.values()) == route.total_hops * 16 * 8
    assert all(v == 16 * 8 for v in consumed.values())  # every link used once


def test_pool_exhaustion_is_reported():
    _, route = two_segment_route()
    plan = plan_for(route, 0.5)
    pools = LinkKeyPools(pool_bits=64, rng=np.random.default_rng(1))
    with pytest.raises(InfeasibleDesignError, match="exhausted"):
        distribute_keys(route, plan, block_bytes=16, pools=pools, rng=np.random.default_rng(2))


def test_eavesdropper_deterministic_cases():
    _, route = two_segment_route()
    plan = plan_for(route, 0.0)  # one key per path per segment where counts allow
    tr = distribute_keys(
        route,
        plan,
        block_bytes=8,
        pools=LinkKeyPools(rng=np.random.default_rng(0)),
        rng=np.random.default_rng(3),
    )
    assert not eavesdrop(tr, set()).any()
    # every relay of segment 1 compromised: every global key leaks
    seg1_relays = {v for p in route.segments[0].paths for v in p[1:-1]}
    assert eavesdrop(tr, seg1_relays).all()
    # one relay of one path only: exactly the global keys whose segment key is that path alone
    first_path = route.segments[0].paths[0]
    leaked = eavesdrop(tr, {first_path[1]})
    for g, gk in enumerate(plan.global_keys):
        members = plan.segment_keys[0][gk.parts[0]].members
        assert leaked[g] == (members == frozenset({0}))


def test_eavesdropper_reuse_with_hash():
    _, route = two_segment_route()
    segs = [list(seg.path_security) for seg in route.segments]
    plan = reuse_reconstruction(segs, 0.3, max_combination_size=2)
    assert plan.reuse and plan.n_global_keys >= 2
    tr = distribute_keys(
        route,
        plan,
        block_bytes=8,
        pools=LinkKeyPools(rng=np.random.default_rng(0)),
        rng=np.random.default_rng(4),
    )
    assert tr.keys_agree
    seg2_relays = {v for p in route.segments[1].paths for v in p[1:-1]}
    assert eavesdrop(tr, seg2_relays).all()
    assert not eavesdrop(tr, set()).any()


def _assert_agrees(stats):
    n = stats.n_trials
    for emp_count, q in zip(stats.leaked_count, stats.analytic_leak, strict=True):
        sigma = math.sqrt(max(q * (1 - q), 1e-12) / n)
        # 4.5 sigma two-sided binomial interval (normal approximation)
        assert abs(emp_count / n - q) <= 4.5 * sigma + 1e-9, (emp_count / n, q)


def test_empirical_leak_rate_matches_analytic_smr():
    _, route = two_segment_route(p=0.6)
    plan = plan_for(route, 0.3)
    assert plan.n_global_keys >= 2
    stats = leak_trials(
        route,
        plan,
        trusted={"r"},
        security=0.6,
        n_trials=3000,
        rng=np.random.default_rng(7),
        block_bytes=4,
    )
    _assert_agrees(stats)
    # the analytic value equals the plan's (independent-segments) security
    assert 1 - stats.analytic_leak == pytest.approx([g.security for g in plan.global_keys])


def test_empirical_leak_rate_matches_analytic_msp_with_shared_relays():
    graph = nx.Graph(
        [
            ("s", "a"),
            ("s", "b"),
            ("a", "m"),
            ("b", "m"),
            ("m", "c"),
            ("m", "e"),
            ("c", "d"),
            ("e", "d"),
        ]
    )
    route = msp(graph, "s", "d", security=0.7, n_paths=2, rng=np.random.default_rng(0))
    assert route.n_paths == 2  # both must cross relay m
    plan = flexible_reconstruction([list(route.segments[0].path_security)], 0.0)
    one = flexible_reconstruction([list(route.segments[0].path_security)], 0.5)
    stats = leak_trials(
        route, one, trusted=set(), security=0.7, n_trials=3000, rng=np.random.default_rng(8)
    )
    _assert_agrees(stats)
    # exact: m must survive (0.7) and one of two private pairs: 0.7 * (1 - (1 - 0.49)**2)
    assert stats.analytic_leak[0] == pytest.approx(1 - 0.7 * (1 - 0.51**2))
    assert plan.n_global_keys == 2


def test_empirical_leak_rate_on_waxman_smr_route():
    rng = np.random.default_rng(12)
    graph = waxman_graph(40, rng)
    trusted = {3, 8, 15, 22, 31}
    route = smr(graph, 0, 39, trusted=trusted, security=0.7)
    plan = plan_for(route, 0.6)
    stats = leak_trials(
        route,
        plan,
        trusted=trusted,
        security=0.7,
        n_trials=2000,
        rng=np.random.default_rng(13),
        block_bytes=4,
    )
    _assert_agrees(stats)


def test_route_and_reconstruct_sizes_and_simulates():
    graph, _ = two_segment_route()
    out = route_and_reconstruct(
        graph,
        "s",
        "d",
        trusted={"r"},
        security=0.6,
        eps=0.5,
        rng=np.random.default_rng(0),
        simulate_bytes=True,
    )
    m = out.n_global_keys
    assert m >= 1
    assert out.block_bits == max_block_bits(out.route) == 100_000
    assert out.delivered_key_bits == m * 100_000
    assert out.consumed_key_bits == out.route.total_hops * 100_000
    assert out.security >= 0.5
    assert out.leaked is not None and len(out.leaked) == m
    small = route_and_reconstruct(
        graph,
        "s",
        "d",
        trusted={"r"},
        security=0.6,
        eps=0.5,
        key_bits=1000,
        rng=None,
        simulate_bytes=True,
    )
    assert small.delivered_key_bits == 1000
    assert small.block_bits == 8 * math.ceil(1000 / small.n_global_keys / 8)
    assert sum(small.consumed_bits_per_link.values()) == small.consumed_key_bits
    # a link with little key left shrinks every block of the request
    link = next(iter(out.route.link_load()))
    starved = route_and_reconstruct(
        graph, "s", "d", trusted={"r"}, security=0.6, eps=0.5, available_bits={link: 4_004}
    )
    assert starved.block_bits == 4_000
    assert starved.consumed_bits_per_link[link] == 4_000
    none = route_and_reconstruct(graph, "s", "d", trusted=set(), security=0.1, eps=0.99)
    assert none.delivered_key_bits == 0 and none.consumed_key_bits == 0 and none.security == 0.0
