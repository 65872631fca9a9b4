"""Candidate fibre pairs: the joining links are a minimum spanning forest over the components left."""

from __future__ import annotations

import networkx as nx
import numpy as np

from planner import geo
from planner.topology.candidates import candidate_pairs, delaunay_pairs, fresh_link_ids, joining_pairs


def test_joining_pairs_are_a_minimum_spanning_tree_of_the_contracted_components() -> None:
    rng = np.random.default_rng(5)
    lat, lon = 50 + rng.random(40) * 3, 5 + rng.random(40) * 4
    linked = [(int(i), int(i) + 1) for i in range(0, 40, 4)]  # 30 components
    dela = delaunay_pairs(lat, lon)
    got = joining_pairs(lat, lon, linked, dela)
    # independent: contract the linked groups, keep the shortest Delaunay edge between groups, networkx MST
    g = nx.Graph(linked)
    g.add_nodes_from(range(40))
    comp = {v: c for c, nodes in enumerate(nx.connected_components(g)) for v in nodes}
    h = nx.Graph()
    h.add_nodes_from(set(comp.values()))
    for i, j in dela:
        d = float(geo.haversine_km(lat[i], lon[i], lat[j], lon[j]))
        a, b = comp[i], comp[j]
        if a != b and (not h.has_edge(a, b) or d < h[a][b]["w"]):
            h.add_edge(a, b, w=d)
    mst_km = sum(d["w"] for _, _, d in nx.minimum_spanning_edges(h, weight="w", data=True))
    got_km = sum(float(geo.haversine_km(lat[i], lon[i], lat[j], lon[j])) for i, j in got)
    assert len(got) == h.number_of_nodes() - 1
    assert abs(got_km - mst_km) < 1e-6 * mst_km
    joined = nx.Graph([*linked, *got])
    joined.add_nodes_from(range(40))
    assert nx.is_connected(joined)


def test_candidate_pairs_skip_linked_pairs_and_connect() -> None:
    rng = np.random.default_rng(2)
    lat, lon = 40 + rng.random(25), -3 + rng.random(25)
    dela = delaunay_pairs(lat, lon)
    linked = dela[:5]
    for method in ("delaunay", "knn"):
        got = candidate_pairs(lat, lon, linked, method=method, k=2)
        assert not set(got) & set(linked) and got == sorted(set(got))
        g = nx.Graph([*linked, *got])
        g.add_nodes_from(range(25))
        assert nx.is_connected(g)
    only = candidate_pairs(lat, lon, linked, connect_only=True)
    base = nx.Graph(linked)
    base.add_nodes_from(range(25))
    assert len(only) == nx.number_connected_components(base) - 1  # the fewest links that connect


def test_fresh_link_ids_skip_taken() -> None:
    assert fresh_link_ids(4, {"C1", "C3", "L7"}) == ["C0", "C2", "C4", "C5"]
