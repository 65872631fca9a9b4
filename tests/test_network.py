"""Network model: distances, graph views, candidate links, invariants."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from planner import geo
from planner.errors import ValidationError
from planner.io.readers import read_network
from planner.model.network import MIN_LINK_KM, Network, empty_links, make_links, make_sites


def _net(coords: dict[str, tuple[float, float]], links: list[tuple[str, str, float]] | None = None) -> Network:
    frame = pd.DataFrame(
        {
            "name": list(coords),
            "kind": "site",
            "demand": 1.0,
            "lat": [c[0] for c in coords.values()],
            "lon": [c[1] for c in coords.values()],
        },
        index=pd.Index(list(coords), name="site_id"),
    )
    sites = make_sites(frame)
    if links:
        table = pd.DataFrame(
            {
                "link_id": [f"L{i}" for i in range(len(links))],
                "u": [u for u, _, _ in links],
                "v": [v for _, v, _ in links],
                "length_km": [d for _, _, d in links],
                "length_source": "stated",
                "candidate": False,
            }
        )
        link_table = make_links(table, sites)
    else:
        link_table = empty_links()
    return Network("test", sites, link_table, "in-memory")


# ------------------------------------------------------------------ geodesic distances
def test_haversine_closed_forms() -> None:
    # one degree of longitude on the equator and a quarter meridian, on a 6371 km sphere
    assert geo.haversine_km(0, 0, 0, 1) == pytest.approx(2 * math.pi * 6371.0 / 360, rel=1e-12)
    assert geo.haversine_km(0, 0, 90, 0) == pytest.approx(math.pi * 6371.0 / 2, rel=1e-12)
    assert geo.haversine_km(10, 20, 10, 20) == 0.0


def test_haversine_against_spherical_law_of_cosines() -> None:
    # Amsterdam - Paris computed by hand with the spherical law of cosines (an independent formula)
    lat1, lon1, lat2, lon2 = 52.3676, 4.9041, 48.8566, 2.3522
    p1, p2 = math.radians(lat1), math.radians(lat2)
    central = math.acos(math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(math.radians(lon2 - lon1)))
    expected = 6371.0 * central  # about 430 km
    assert 425 < expected < 435
    assert geo.haversine_km(lat1, lon1, lat2, lon2) == pytest.approx(expected, rel=1e-9)


def test_geodesic_matrix_matches_pairwise_haversine() -> None:
    net = _net({"A": (52.37, 4.90), "B": (48.86, 2.35), "C": (51.51, -0.13)})
    dist = net.geodesic_km()
    assert list(dist.index) == ["A", "B", "C"] and list(dist.columns) == ["A", "B", "C"]
    assert np.allclose(dist.to_numpy(), dist.to_numpy().T)
    assert np.all(np.diag(dist.to_numpy()) == 0)
    assert dist.loc["A", "C"] == pytest.approx(float(geo.haversine_km(52.37, 4.90, 51.51, -0.13)))
    rows = net.geodesic_km(["C", "A"])
    assert list(rows.index) == ["C", "A"] and list(rows.columns) == ["A", "B", "C"]
    assert np.allclose(rows.to_numpy(), dist.loc[["C", "A"]].to_numpy())
    with pytest.raises(ValidationError, match="unknown source"):
        net.geodesic_km(["Z"])


def test_line_length_is_sum_of_segments() -> None:
    from shapely.geometry import LineString

    line = LineString([(0, 0), (1, 0), (1, 1)])
    expected = float(geo.haversine_km(0, 0, 0, 1) + geo.haversine_km(0, 1, 1, 1))
    assert geo.line_length_km(line) == pytest.approx(expected)


def test_metric_crs_is_utm_zone_of_centroid() -> None:
    net = _net({"A": (52.37, 4.90), "B": (52.09, 5.12)})
    assert net.metric_crs().to_epsg() == 32631  # 4.9-5.1 E, north: UTM 31N
    south = _net({"A": (-33.87, 151.21), "B": (-33.9, 151.0)})
    assert south.metric_crs().to_epsg() == 32756


# ------------------------------------------------------------------ fibre distances
def test_fibre_km_matches_networkx_dijkstra() -> None:
    net = read_network(_datasets() / "topology-zoo" / "Geant2010.graphml")
    fib = net.fibre_km()
    graph = net.graph()
    for source in list(graph.nodes)[:6]:
        expected = nx.single_source_dijkstra_path_length(graph, source, weight="length_km")
        for target, value in expected.items():
            assert fib.loc[source, target] == pytest.approx(value, rel=1e-12)


def test_fibre_km_inf_when_disconnected_and_sources_subset() -> None:
    net = _net(
        {"A": (0, 0), "B": (0, 1), "C": (0, 2), "D": (10, 10)},
        [("A", "B", 5.0), ("B", "C", 7.0), ("A", "C", 20.0)],
    )
    fib = net.fibre_km(["A"])
    assert list(fib.index) == ["A"]
    assert fib.loc["A", "C"] == pytest.approx(12.0)
    assert math.isinf(fib.loc["A", "D"])
    with pytest.raises(ValidationError, match="unknown source"):
        net.fibre_km(["nope"])
    assert net.fibre_km([]).shape == (0, 4)


def test_graph_collapses_parallel_links_to_shortest() -> None:
    net = _net({"A": (0, 0), "B": (0, 1)}, [("A", "B", 9.0), ("B", "A", 4.0), ("A", "B", 6.0)])
    graph = net.graph()
    assert graph.number_of_edges() == 1
    assert graph.edges["A", "B"]["length_km"] == 4.0
    assert graph.edges["A", "B"]["link_id"] == "L1"
    assert graph.nodes["A"]["kind"] == "site" and graph.nodes["A"]["lat"] == 0.0


def test_zero_length_links_are_floored() -> None:
    net = _net({"A": (0, 0), "B": (0, 0)}, [("A", "B", 0.0)])
    assert net.links["length_km"].iloc[0] == MIN_LINK_KM
    assert net.fibre_km().loc["A", "B"] == MIN_LINK_KM


# ------------------------------------------------------------------ components and summary
def test_connected_components_and_summary() -> None:
    net = _net(
        {"A": (0, 0), "B": (0, 1), "C": (1, 1), "D": (5, 5), "E": (6, 6)},
        [("A", "B", 1.5), ("B", "C", 2.5), ("D", "E", 3.0)],
    )
    assert net.connected_components() == [{"A", "B", "C"}, {"D", "E"}]
    summary = net.summary()
    assert summary["n_sites"] == 5 and summary["n_links"] == 3 and summary["n_components"] == 2
    assert summary["total_km"] == pytest.approx(7.0)
    assert summary["bbox"] == [0.0, 0.0, 6.0, 6.0]


# ------------------------------------------------------------------ candidate links
def _random_sites(n: int, seed: int) -> Network:
    rng = np.random.default_rng(seed)
    lat = rng.uniform(50.0, 53.0, n)
    lon = rng.uniform(3.0, 7.0, n)
    return _net({f"S{i}": (float(a), float(b)) for i, (a, b) in enumerate(zip(lat, lon, strict=True))})


@pytest.mark.parametrize("method", ["delaunay", "knn"])
def test_candidate_links_make_connected_graph(method: str) -> None:
    net = _random_sites(40, seed=3)
    assert len(net.connected_components()) == 40
    cand = net.with_candidate_links(method=method, k=2)
    assert len(cand.connected_components()) == 1
    assert cand.links["candidate"].all()
    assert (cand.links["length_source"] == "geodesic_x_route_factor").all()
    gc = cand.geodesic_km()
    for row in cand.links.itertuples():
        assert row.length_km == pytest.approx(gc.loc[row.u, row.v] * 1.3)
    cand.validate()
    assert net.links.empty  # the original is not modified


def test_delaunay_edges_match_planar_triangulation_count() -> None:
    # a Delaunay triangulation of n points in general position with h hull points has 3n - 3 - h edges
    from scipy.spatial import ConvexHull

    net = _random_sites(30, seed=11)
    cand = net.with_candidate_links(method="delaunay")
    import pyproj

    lat, lon = geo.mean_point(net.sites["lat"], net.sites["lon"])
    tr = pyproj.Transformer.from_crs("EPSG:4326", geo.azimuthal_equidistant_crs(lat, lon), always_xy=True)
    x, y = tr.transform(net.sites["lon"].to_numpy(), net.sites["lat"].to_numpy())
    hull = len(ConvexHull(np.column_stack([x, y])).vertices)
    assert len(cand.links) == 3 * 30 - 3 - hull


def test_knn_links_include_each_nearest_neighbour() -> None:
    net = _random_sites(25, seed=5)
    cand = net.with_candidate_links(method="knn", k=1)
    gc = net.geodesic_km().to_numpy(copy=True)
    np.fill_diagonal(gc, np.inf)
    ids = net.site_ids()
    pairs = {frozenset(p) for p in zip(cand.links["u"], cand.links["v"], strict=True)}
    for i, sid in enumerate(ids):
        assert frozenset((sid, ids[int(np.argmin(gc[i]))])) in pairs


def test_connect_only_adds_minimum_bridges() -> None:
    net = _net(
        {"A": (0, 0), "B": (0, 0.1), "C": (1, 0), "D": (1, 0.1)},
        [("A", "B", 12.0), ("C", "D", 12.0)],
    )
    out = net.with_candidate_links(connect_only=True)
    new = out.links[out.links["candidate"]]
    assert len(new) == 1  # two components need exactly one bridge
    assert len(out.connected_components()) == 1
    assert set(out.links.loc[~out.links["candidate"], "link_id"]) == {"L0", "L1"}


def test_candidate_links_degenerate_inputs() -> None:
    collinear = _net({f"S{i}": (50.0, 4.0 + 0.1 * i) for i in range(6)})
    assert len(collinear.with_candidate_links().connected_components()) == 1
    duplicates = _net({"A": (50.0, 4.0), "B": (50.0, 4.0), "C": (50.0, 4.0), "D": (50.5, 4.5), "E": (51, 4)})
    assert len(duplicates.with_candidate_links().connected_components()) == 1
    single = _net({"A": (50.0, 4.0)})
    assert single.with_candidate_links().links.empty
    pair = _net({"A": (50.0, 4.0), "B": (51.0, 4.0)})
    assert len(pair.with_candidate_links().links) == 1
    world = _net({"A": (0, 0), "B": (0, 179.9), "C": (60, -120), "D": (-45, 90), "E": (10, -179.9)})
    assert len(world.with_candidate_links().connected_components()) == 1
    with pytest.raises(ValidationError):
        pair.with_candidate_links(method="grid")  # type: ignore[arg-type]


def test_validate_reports_bad_tables() -> None:
    net = _net({"A": (0, 0), "B": (0, 1)}, [("A", "B", 3.0)])
    net.links.loc[0, "v"] = "Z"
    net.sites.loc["A", "lat"] = 95.0
    with pytest.raises(ValidationError) as err:
        net.validate()
    text = str(err.value)
    assert "unknown sites" in text and "latitude" in text


def _datasets():
    from planner.io.bundled import datasets_dir

    return datasets_dir()
