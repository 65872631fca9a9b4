"""Routing (SMR paper): ExDijkstra vs brute force, SMR on hand-made graphs, baselines."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import ValidationError
from planner.routing import (
    RelaySecurity,
    RequestRouter,
    disjoint_multipath,
    ex_dijkstra,
    msp,
    multipath_security,
    shortest_path_route,
    smr,
)
from planner.topology.waxman import waxman_graph

PROBS = (0.0, 0.3, 0.5, 0.8, 1.0)


@st.composite
def small_instances(draw):
    n = draw(st.integers(min_value=2, max_value=8))
    pairs = list(itertools.combinations(range(n), 2))
    mask = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(p for p, keep in zip(pairs, mask, strict=True) if keep)
    probs = draw(st.lists(st.sampled_from(PROBS), min_size=n, max_size=n))
    trusted = draw(st.sets(st.integers(0, n - 1), max_size=n))
    source, target = draw(st.sampled_from([(a, b) for a in range(n) for b in range(n) if a != b]))
    security = {v: probs[v] for v in range(n) if probs[v] != 1.0 or v % 2}  # some nodes missing
    return graph, source, target, security, trusted


def brute_force_security(path, security, trusted):
    return math.prod(1.0 if v in trusted else security.get(v, 1.0) for v in path[1:-1])


@settings(max_examples=300, deadline=None)
@given(small_instances())
def test_ex_dijkstra_matches_brute_force(instance):
    graph, s, d, security, trusted = instance
    found = ex_dijkstra(graph, s, d, security=security, trusted=trusted)
    paths = list(nx.all_simple_paths(graph, s, d))
    if not paths:
        assert found is None
        return
    assert found is not None
    assert found[0] == s and found[-1] == d
    assert all(graph.has_edge(u, v) for u, v in itertools.pairwise(found))
    assert len(set(found)) == len(found)
    best = max(brute_force_security(p, security, trusted) for p in paths)
    got = brute_force_security(found, security, trusted)
    assert got == pytest.approx(best, rel=1e-9, abs=1e-12)
    if best == 0.0:
        return  # zero-security paths are ranked by their number of p = 0 relays
    # tie-breaking: fewest hops among the most secure, then lexicographic
    ties = [
        p for p in paths if math.isclose(brute_force_security(p, security, trusted), best, rel_tol=1e-9, abs_tol=1e-12)
    ]
    fewest = min(len(p) for p in ties)
    assert len(found) == fewest
    assert tuple(found) == min(tuple(p) for p in ties if len(p) == fewest)


def test_ex_dijkstra_counts_trusted_and_endpoints_as_one():
    graph = nx.Graph([(0, 1), (1, 3), (0, 2), (2, 3)])
    # end points with low security are ignored; trusted relay 1 beats relay 2 (0.9)
    path = ex_dijkstra(graph, 0, 3, security={0: 0.01, 1: 0.1, 2: 0.9, 3: 0.01}, trusted={1})
    assert path == (0, 1, 3)
    assert ex_dijkstra(graph, 0, 3, security={1: 0.1, 2: 0.9}) == (0, 2, 3)
    # missing from the mapping counts 1
    assert ex_dijkstra(graph, 0, 3, security={2: 0.9}) == (0, 1, 3)


def test_ex_dijkstra_zero_security_only_when_nothing_else():
    graph = nx.Graph([(0, 1), (1, 3), (0, 2), (2, 4), (4, 3)])
    assert ex_dijkstra(graph, 0, 3, security={1: 0.0, 2: 0.1, 4: 0.1}) == (0, 2, 4, 3)
    chain = nx.path_graph(3)
    assert ex_dijkstra(chain, 0, 2, security={1: 0.0}) == (0, 1, 2)


def test_bad_input_raises_domain_errors():
    graph = nx.path_graph(4)
    with pytest.raises(ValidationError, match="security"):
        ex_dijkstra(graph, 0, 3, security={1: 1.5})
    with pytest.raises(ValidationError, match="not in the network"):
        ex_dijkstra(graph, 0, 99, security=0.5)
    with pytest.raises(ValidationError, match="same node"):
        smr(graph, 1, 1, trusted=set(), security=0.5)
    with pytest.raises(ValidationError, match="trusted relays not in the network"):
        smr(graph, 0, 3, trusted={42}, security=0.5)
    with pytest.raises(ValidationError, match="must lie in"):
        smr(graph, 0, 3, trusted=set(), security=1.2)
    with pytest.raises(ValidationError, match="n_paths"):
        msp(graph, 0, 3, security=0.5, n_paths=0, rng=np.random.default_rng(0))


def two_by_two_graph():
    """s -a- r -b- d and s -c- r -e- d, r trusted: segmentation at r pays off."""
    return nx.Graph(
        [
            ("s", "a"),
            ("a", "r"),
            ("r", "b"),
            ("b", "d"),
            ("s", "c"),
            ("c", "r"),
            ("r", "e"),
            ("e", "d"),
        ]
    )


def test_smr_segments_at_trusted_relay_with_known_security():
    p = 0.5
    result = smr(two_by_two_graph(), "s", "d", trusted={"r"}, security=p)
    # unsegmented two paths: 1-(1-p^2)^2 = 0.4375; segmented: (1-(1-p)^2)^2 = 0.5625
    assert result.segment_nodes == ("s", "r", "d")
    assert result.paths == (
        (("s", "a", "r"), ("s", "c", "r")),
        (("r", "b", "d"), ("r", "e", "d")),
    )
    assert result.segment_security == pytest.approx((0.75, 0.75))
    assert result.security == pytest.approx(0.5625)
    assert result.total_hops == 8
    assert result.hops == ((2, 2), (2, 2))


def test_smr_does_not_segment_when_it_does_not_help():
    # direct two-hop routes to d; the trusted relay t hangs off a long detour
    graph = nx.Graph(
        [
            (
                "s",
                "x",
            ),
            ("x", "d"),
            ("s", "y"),
            ("y", "d"),
            ("s", "t"),
            ("t", "u"),
            ("u", "v"),
            ("v", "d"),
        ]
    )
    result = smr(graph, "s", "d", trusted={"t"}, security=0.9)
    assert result.segment_nodes == ("s", "d")
    # step 2 finds all three paths; the one through t has two untrusted relays
    assert set(result.paths[0]) == {("s", "x", "d"), ("s", "y", "d"), ("s", "t", "u", "v", "d")}
    expected = 1 - (1 - 0.9) * (1 - 0.9) * (1 - 0.81)
    assert result.security == pytest.approx(expected)


def test_smr_paths_may_cross_at_trusted_relays():
    graph = nx.Graph(
        [
            ("s", "t"),
            ("t", "d"),
            ("s", "a"),
            ("a", "t"),
            ("t", "b"),
            ("b", "d"),
            ("s", "c"),
            ("c", "d"),
        ]
    )
    p = 0.6
    result = smr(graph, "s", "d", trusted={"t"}, security=p)
    # segmenting at t gives 1 * 1, not more than unsegmented (s-t-d alone is secure): no split
    assert result.segment_nodes == ("s", "d")
    assert result.paths[0] == (("s", "t", "d"), ("s", "c", "d"), ("s", "a", "t", "b", "d"))
    assert result.security == pytest.approx(1.0)
    capped = smr(graph, "s", "d", trusted={"t"}, security=p, max_paths_per_segment=2)
    assert capped.paths[0] == (("s", "t", "d"), ("s", "c", "d"))


def test_smr_segmentation_needs_strict_gain():
    # a chain: segmenting at trusted relay 2 gives p * p, the same as p^2 unsegmented
    chain = nx.path_graph(5)
    result = smr(chain, 0, 4, trusted={2}, security=0.5)
    assert result.segment_nodes == (0, 4)
    assert result.security == pytest.approx(0.25)


def test_smr_missing_second_path_counts_zero():
    # s -a- r -b- d and r -e- d: s->r has one path (the second counts 0), r->d has two
    graph = nx.Graph([("s", "a"), ("a", "r"), ("r", "b"), ("b", "d"), ("r", "e"), ("e", "d")])
    result = smr(graph, "s", "d", trusted={"r"}, security=0.5)
    # unsegmented: one path s-a-r-b-d, 0.25; segmented: 0.5 * (1 - 0.5**2) = 0.375
    assert result.segment_nodes == ("s", "r", "d")
    assert result.security == pytest.approx(0.375)


def test_smr_unreachable_target_has_zero_security():
    graph = nx.Graph([(0, 1), (2, 3)])
    result = smr(graph, 0, 3, trusted=set(), security=0.9)
    assert result.security == 0.0
    assert not result.delivered
    assert result.n_paths == 0


def _exact_by_enumeration(result, relay: RelaySecurity) -> float:
    relays = sorted(
        {v for seg in result.segments for p in seg.paths for v in p[1:-1] if relay.is_untrusted(v)},
        key=repr,
    )
    total = 0.0
    for state in itertools.product((True, False), repeat=len(relays)):
        ok = dict(zip(relays, state, strict=True))
        weight = math.prod(relay.node(v) if ok[v] else 1 - relay.node(v) for v in relays)
        secure = all(any(all(ok.get(v, True) for v in p[1:-1]) for p in seg.paths) for seg in result.segments)
        total += weight * secure
    return total


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 6), st.sampled_from([0.5, 0.8]))
def test_smr_invariants_on_random_waxman(seed, n_trusted, p):
    rng = np.random.default_rng(seed)
    graph = waxman_graph(16, rng, alpha=0.4, beta=0.5)
    s, d = (int(x) for x in rng.choice(16, 2, replace=False))
    trusted = {int(x) for x in rng.choice([v for v in range(16) if v not in (s, d)], n_trusted, replace=False)}
    security = {v: float(rng.choice([p, 0.95])) for v in graph.nodes}
    result = smr(graph, s, d, trusted=trusted, security=security)
    relay = RelaySecurity(security, trusted)
    assert result.segment_nodes[0] == s and result.segment_nodes[-1] == d
    assert all(r in trusted for r in result.segment_nodes[1:-1])
    used_relays: set[int] = set()
    used_edges: set[frozenset[int]] = set()
    for seg in result.segments:
        for path in seg.paths:
            assert path[0] == seg.start and path[-1] == seg.end
            assert all(graph.has_edge(u, v) for u, v in itertools.pairwise(path))
            assert s not in path[1:-1] and d not in path[1:-1]
            untrusted = {v for v in path[1:-1] if v not in trusted}
            assert not (untrusted & used_relays)
            used_relays |= untrusted
            edges = {frozenset(e) for e in itertools.pairwise(path)}
            assert not (edges & used_edges)
            used_edges |= edges
        assert seg.path_security == pytest.approx([relay.path(q) for q in seg.paths])
    expected = math.prod(1 - math.prod(1 - q for q in seg.path_security) for seg in result.segments)
    assert result.security == pytest.approx(expected)
    assert result.security == pytest.approx(_exact_by_enumeration(result, relay))
    # the first path of a single-segment route is the ExDijkstra path
    if len(result.segments) == 1 and result.segments[0].paths:
        assert result.segments[0].path_security[0] == pytest.approx(
            relay.path(ex_dijkstra(graph, s, d, security=security, trusted=trusted))
        )


def test_msp_exact_security_with_shared_relays_matches_enumeration():
    # a graph with a bottleneck relay 'm' every path must cross
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
            ("s", "m2"),
            ("m2", "d"),
        ]
    )
    relay = RelaySecurity(0.7)
    result = msp(graph, "s", "d", security=0.7, n_paths=3, rng=np.random.default_rng(3))
    assert result.method == "MSP"
    assert 1 <= result.n_paths <= 3
    assert result.security == pytest.approx(_exact_by_enumeration(result, relay))
    shared = multipath_security([[("s", "a", "m", "c", "d"), ("s", "b", "m", "e", "d")]], relay)
    assert shared == pytest.approx(0.7 * (1 - (1 - 0.49) ** 2))


def test_msp_is_deterministic_and_prefix_consistent():
    graph = waxman_graph(40, np.random.default_rng(5))
    long = msp(graph, 0, 39, security=0.8, n_paths=6, rng=np.random.default_rng(11))
    short = msp(graph, 0, 39, security=0.8, n_paths=3, rng=np.random.default_rng(11))
    again = msp(graph, 0, 39, security=0.8, n_paths=6, rng=np.random.default_rng(11))
    assert long.paths == again.paths
    assert short.paths[0] == long.paths[0][:3]
    links = [frozenset(e) for p in long.paths[0] for e in itertools.pairwise(p)]
    assert len(links) == len(set(links))


def test_disjoint_multipath_reaches_node_connectivity():
    graph = waxman_graph(30, np.random.default_rng(2))
    s, d = 0, 29
    if graph.has_edge(s, d):
        graph.remove_edge(s, d)
    result = disjoint_multipath(graph, s, d, security=0.8)
    assert result.n_paths == nx.node_connectivity(graph, s, d)
    interiors = [set(p[1:-1]) for p in result.paths[0]]
    for a, b in itertools.combinations(interiors, 2):
        assert not (a & b)
    graph.add_edge(s, d)
    with_direct = disjoint_multipath(graph, s, d, security=0.8)
    assert (s, d) in with_direct.paths[0]
    assert with_direct.security == 1.0


def test_shortest_path_route_has_fewest_hops():
    graph = waxman_graph(30, np.random.default_rng(4))
    result = shortest_path_route(graph, 3, 17, security=0.9)
    assert result.total_hops == nx.shortest_path_length(graph, 3, 17)
    assert result.security == pytest.approx(0.9 ** (result.total_hops - 1))


def test_request_router_matches_module_functions():
    graph = waxman_graph(60, np.random.default_rng(8))
    router = RequestRouter(graph, 1, 58)
    order = [v for v in range(60) if v not in (1, 58)]
    for n_trusted in (0, 5, 15):
        trusted = set(order[:n_trusted])
        for p in (0.5, 0.8, 0.95):
            cached = router.smr(trusted=trusted, security=p)
            direct = smr(graph, 1, 58, trusted=trusted, security=p)
            assert cached == direct
    base = router.msp(security=0.5, n_paths=4, rng=np.random.default_rng(1))
    re = router.reevaluate(base, security=0.9, trusted=set(order[:5]), max_paths=2)
    ref = msp(graph, 1, 58, security=0.9, trusted=set(order[:5]), n_paths=2, rng=np.random.default_rng(1))
    assert re.paths == ref.paths
    assert re.security == pytest.approx(ref.security)


def test_smr_merges_a_segment_starved_by_deletion(datasets_dir) -> None:  # type: ignore[no-untyped-def]
    """SURFnet, Groningen -> Westerbork with trusted Amsterdam, Utrecht, Eindhoven: step 1 makes
    Amsterdam a segment node, and the first path of (Groningen, Amsterdam) takes Dwingeloo,
    Westerbork's only fibre neighbour, starving (Amsterdam, Westerbork). SMR must merge the
    segments and deliver (security 0.8 ** 2 over Assen, Dwingeloo) rather than fail."""
    from planner.io.readers import read_network
    from planner.routing import smr

    g = read_network(datasets_dir / "topology-zoo" / "Surfnet.graphml").graph()
    res = smr(g, "Groningen", "Westerbork", trusted={"Amsterdam", "Utrecht", "Eindhoven"}, security=0.8)
    assert res.delivered
    assert res.security == pytest.approx(0.64)


@settings(max_examples=150, deadline=None)
@given(small_instances())
def test_one_shared_router_routes_every_demand_as_smr_does(instance):
    """The public batch API (one Topology and one Router per trusted set, route_smr per demand,
    as the trust stage and the design check use it) gives smr's result for every demand."""
    from planner.routing import Router, Topology, check_endpoints, route_smr

    graph, _s, _d, security, trusted = instance
    topo = Topology(graph)
    router = Router(graph, RelaySecurity(security, trusted), topo=topo)
    for s, t in itertools.permutations(sorted(graph.nodes), 2):
        check_endpoints(graph, s, t)
        assert route_smr(router, s, t) == smr(graph, s, t, trusted=trusted, security=security)
