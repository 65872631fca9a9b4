"""The cached SMR router (``RequestRouter.smr``) against the uncached ``smr()``.

``RequestRouter`` caches SMR's searches per trusted set and reuses them for every
security probability. The paper reproduction crashed when a cached entry held the
paths of a route whose segments had been merged after starvation (issue: run 889 of
``reproduce smr --runs 1000 --seed 0``, first 10 relays trusted, p_u >= 0.7). These
tests compare every cached result with a fresh ``smr()`` call, on that run and on
random graphs built to contain starved segments.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.routing import RequestRouter, smr
from planner.routing import smr_routing as routing

P_VALUES = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _reproduction_run(run: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Graph, request and trusted order of run ``run`` of the SMR reproduction."""
    from planner.topology.waxman import waxman_graph
    from reports.reproduce_smr import SmrExperiment

    exp = SmrExperiment(runs=run + 1, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(run + 1)[run])
    graph = waxman_graph(exp.n_nodes, rng, alpha=exp.waxman_alpha, beta=exp.waxman_beta)
    source, target = (int(x) for x in rng.choice(exp.n_nodes, size=2, replace=False))
    others = [v for v in range(exp.n_nodes) if v not in (source, target)]
    order = [others[i] for i in rng.permutation(len(others))]
    return exp, graph, source, target, order


def test_reproduction_run_889_with_ten_trusted_relays_matches_smr() -> None:
    """The failing case: a trusted relay next to the target's only neighbour. From
    p_u = 0.65 step 1 segments at relay 4, the first (39, 4) path takes 52, the target's
    only neighbour, and the segments are merged; the next p_u hit the cache and crashed."""
    exp, graph, s, t, order = _reproduction_run(889)
    assert (s, t) == (39, 91)  # the reproduction's run 889 is the documented case
    assert list(graph.adj[t]) == [52]
    trusted = frozenset(order[:10])
    router = RequestRouter(graph, s, t)
    merged = 0
    for p in exp.p_untrusted_sweep:
        cached = router.smr(trusted=trusted, security=p)
        assert cached == smr(graph, s, t, trusted=trusted, security=p)
        assert cached.delivered
        merged += cached.segment_nodes == (s, t) and cached.security == pytest.approx(p**2)
    assert merged == len(exp.p_untrusted_sweep)


def test_reproduction_run_889_runs_all_points() -> None:
    from reports.reproduce_smr import run_one

    exp, *_ = _reproduction_run(889)
    metrics = run_one(exp, np.random.SeedSequence(0).spawn(890)[889])
    assert np.all(np.isfinite(metrics.security))


def _starvation_case(seed: int, n_base: int, density: float, gadget: bool):  # type: ignore[no-untyped-def]
    """A random graph (G(n, density) on ``n_base`` nodes) with, if ``gadget``, the pattern
    of run 889 planted: target ``T`` hangs off one relay ``X``; a trusted ``R`` next to
    ``X`` is reached from the source ``S = 0`` through ``u, X`` and through ``a, b``.
    Returns (graph, source, target, nodes that may be trusted, planted trusted relays)."""
    rng = np.random.default_rng(seed)
    g = nx.gnp_random_graph(n_base, density, seed=int(rng.integers(2**31)))
    if not gadget:
        s, t = (int(x) for x in rng.choice(n_base, 2, replace=False))
        return g, s, t, [v for v in g.nodes if v not in (s, t)], frozenset()
    u, x, r, a, b, t = range(n_base, n_base + 6)
    g.add_edges_from([(0, u), (u, x), (x, t), (x, r), (0, a), (a, b), (b, r)])
    for v in (u, x, r, a, b):  # a few random ties into the base graph (never to T)
        for w in rng.choice(n_base, int(rng.integers(0, 2)), replace=False):
            g.add_edge(v, int(w))
    return g, 0, t, [v for v in g.nodes if v not in (0, t)], frozenset({r})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n_base=st.integers(3, 14),
    density=st.floats(0.05, 0.6),
    gadget=st.booleans(),
    n_sets=st.integers(1, 3),
    data=st.data(),
)
def test_cached_router_equals_smr_on_random_graphs(
    seed: int, n_base: int, density: float, gadget: bool, n_sets: int, data: st.DataObject
) -> None:
    """Several trusted sets per graph, several probabilities (in random order, with
    repeats) per trusted set: every cached result equals the uncached one."""
    g, s, t, candidates, planted = _starvation_case(seed, n_base, density, gadget)
    router = RequestRouter(g, s, t)
    for _ in range(n_sets):
        extra = data.draw(st.lists(st.sampled_from(candidates), max_size=6, unique=True))
        trusted = planted | frozenset(extra)
        probs = data.draw(st.lists(st.sampled_from(P_VALUES), min_size=2, max_size=6))
        limit = data.draw(st.sampled_from([None, 1, 2]))
        for p in probs:
            cached = router.smr(trusted=trusted, security=p, max_paths_per_segment=limit)
            direct = smr(g, s, t, trusted=trusted, security=p, max_paths_per_segment=limit)
            assert cached == direct


def test_random_cases_reach_the_segment_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator of the property test does produce starved segments: count the
    step-2 calls that had to merge, and check the cached router on each of them."""
    merges = 0
    original = routing._smr_step2

    def counting(router, seg, limit):  # type: ignore[no-untyped-def]
        nonlocal merges
        out = original(router, seg, limit)
        merges += out[0] != seg
        return out

    monkeypatch.setattr(routing, "_smr_step2", counting)
    for seed in range(40):
        g, s, t, _, planted = _starvation_case(seed, 6, 0.3, gadget=True)
        router = RequestRouter(g, s, t)
        for p in (0.7, 0.8, 0.9, 0.7):
            assert router.smr(trusted=planted, security=p) == smr(g, s, t, trusted=planted, security=p)
    # the step-2 results are cached, so each merge is counted once per graph; 21 of the
    # 40 planted cases starve a segment (networkx 3 generators)
    assert merges >= 15
