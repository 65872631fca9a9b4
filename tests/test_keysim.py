"""Key-level simulation on real bytes: OTP relaying, reconstruction, eavesdropper vs analysis."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest

from planner.errors import InfeasibleDesignError
from planner.keys.reconstruction import flexible_reconstruction, reuse_reconstruction
from planner.routing import RelaySecurity, msp, smr
from planner.simulate.key_request import route_and_reconstruct
from planner.simulate.keysim import (
    LinkKeyPools,
    RandomByteStream,
    distribute_keys,
    draw_compromised,
    eavesdrop,
    max_block_bits,
)
from planner.simulate.leaks import PeelingStructure, leak_trials
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
    stats = leak_trials(route, one, trusted=set(), security=0.7, n_trials=3000, rng=np.random.default_rng(8))
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
    starved = route_and_reconstruct(graph, "s", "d", trusted={"r"}, security=0.6, eps=0.5, available_bits={link: 4_004})
    assert starved.block_bits == 4_000
    assert starved.consumed_bits_per_link[link] == 4_000
    none = route_and_reconstruct(graph, "s", "d", trusted=set(), security=0.1, eps=0.99)
    assert none.delivered_key_bits == 0 and none.consumed_key_bits == 0 and none.security == 0.0


def _leak_counts_trial_by_trial(route, plan, *, trusted, security, n_trials, rng, every=50):
    """Reference: one real-byte distribution per ``every`` trials, one byte-level attack per trial."""
    relay = RelaySecurity(security, trusted)
    counts = np.zeros(plan.n_global_keys, dtype=np.int64)
    any_count = 0
    tr = None
    for t in range(n_trials):
        if t % every == 0:
            tr = distribute_keys(route, plan, block_bytes=8, pools=LinkKeyPools(rng=rng), rng=rng)
        leaked = eavesdrop(tr, draw_compromised(tr.relays, relay, rng))
        counts += leaked
        any_count += int(leaked.any())
    return counts, any_count


@pytest.mark.parametrize("reuse", [False, True])
def test_vectorised_leak_trials_equal_the_trial_by_trial_attack(reuse):
    rng = np.random.default_rng(21)
    graph = waxman_graph(50, rng)
    trusted = {4, 9, 17, 30}
    route = smr(graph, 0, 49, trusted=trusted, security=0.75)
    segs = [list(seg.path_security) for seg in route.segments]
    plan = reuse_reconstruction(segs, 0.3, max_combination_size=2) if reuse else plan_for(route, 0.2)
    assert plan.n_global_keys >= 1 and plan.reuse == reuse
    # 1 130 trials: several peeling batches and a last, partial distribution block
    stats = leak_trials(route, plan, trusted=trusted, security=0.75, n_trials=1130, rng=np.random.default_rng(5))
    counts, any_count = _leak_counts_trial_by_trial(
        route, plan, trusted=trusted, security=0.75, n_trials=1130, rng=np.random.default_rng(5)
    )
    assert stats.leaked_count.tolist() == counts.tolist()
    assert stats.any_leaked_count == any_count
    assert 0 < any_count < 1130  # the draws are neither all safe nor all leaking


def test_peeling_structure_matches_byte_attack_on_every_relay_subset():
    _, route = two_segment_route()
    for plan in (
        plan_for(route, 0.0),
        reuse_reconstruction([list(seg.path_security) for seg in route.segments], 0.3, max_combination_size=2),
    ):
        tr = distribute_keys(
            route,
            plan,
            block_bytes=8,
            pools=LinkKeyPools(rng=np.random.default_rng(0)),
            rng=np.random.default_rng(1),
        )
        structure = PeelingStructure.of(tr)
        n = len(structure.relays)
        subsets = np.array(list(itertools.product([False, True], repeat=n)), dtype=bool)
        by_symbols = structure.leaked(subsets)
        for row, got in zip(subsets, by_symbols, strict=True):
            chosen = {v for v, hit in zip(structure.relays, row, strict=True) if hit}
            assert got.tolist() == eavesdrop(tr, chosen).tolist()
        assert by_symbols.any() and not by_symbols.all()


class _CountingBytes:
    """Stands in for a generator: returns the bytes 0, 1, 2, ... in order (to check the splicing)."""

    def __init__(self):
        self.next = 0
        self.calls = 0

    def bytes(self, n):
        self.calls += 1
        out = bytes((self.next + k) % 256 for k in range(n))
        self.next += n
        return out


def test_random_byte_stream_hands_out_the_stream_in_order():
    src = _CountingBytes()
    stream = RandomByteStream(src, chunk_bytes=5)
    parts = [stream.take(n) for n in (3, 0, 7, 1, 12, 2)]
    assert [len(x) for x in parts] == [3, 0, 7, 1, 12, 2]
    assert b"".join(parts) == bytes(range(25))
    assert src.calls == 5  # draws of 5, 5, 5, 8 (4 left over + 8 = 12) and 5 bytes
    a = RandomByteStream(np.random.default_rng(3))
    b = RandomByteStream(np.random.default_rng(3))
    assert [a.take(n) for n in (8, 8, 5000)] == [b.take(n) for n in (8, 8, 5000)]
    assert len(RandomByteStream(None).take(9)) == 9
