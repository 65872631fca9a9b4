"""MSP-disjoint: stochastic paths, strictly node-disjoint, until no path is left."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from planner.routing import RequestRouter, msp_disjoint
from planner.topology.waxman import waxman_graph


@pytest.mark.parametrize("seed", range(8))
def test_paths_are_node_disjoint_and_maximal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    graph = waxman_graph(30, rng)
    s, t = (int(x) for x in rng.choice(30, 2, replace=False))
    res = msp_disjoint(graph, s, t, security=0.8, rng=np.random.default_rng(seed))
    paths = res.paths[0]
    assert paths, "a connected graph has at least one path"
    for a, b in itertools.combinations(paths, 2):
        assert not set(a[1:-1]) & set(b[1:-1])
    for path in paths:
        assert path[0] == s and path[-1] == t
        assert all(graph.has_edge(u, v) for u, v in itertools.pairwise(path))
    # maximal: with every used relay and link removed, no path is left
    rest = graph.copy()
    for path in paths:
        rest.remove_edges_from(itertools.pairwise(path))
        rest.remove_nodes_from(path[1:-1])
    assert not nx.has_path(rest, s, t)
    # never more paths than the node connectivity allows (+1 for a direct link)
    bound = nx.node_connectivity(graph, s, t) if not graph.has_edge(s, t) else None
    if bound is not None:
        assert len(paths) <= bound
    # security: disjoint relays, so 1 - prod(1 - P_i)
    expected = 1 - np.prod([1 - 0.8 ** (len(p) - 2) for p in paths])
    assert res.security == pytest.approx(expected)


def test_request_router_msp_disjoint_matches_module_function() -> None:
    graph = waxman_graph(40, np.random.default_rng(3))
    router = RequestRouter(graph, 2, 33)
    a = router.msp_disjoint(security=0.7, rng=np.random.default_rng(9), max_paths=3)
    b = msp_disjoint(graph, 2, 33, security=0.7, rng=np.random.default_rng(9), max_paths=3)
    assert a == b and a.n_paths <= 3 and a.method == "MSP-disjoint"
