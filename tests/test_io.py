"""Readers (every format, every bundled network) and atomic writers."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import pytest
from shapely.geometry import LineString, Point

from planner import geo
from planner.errors import InputFormatError, ValidationError
from planner.io.files import write_csv, write_geopackage, write_json
from planner.io.readers import read_network
from planner.model.network import MIN_LINK_KM

DATA = Path(__file__).parent / "data"


# ======================================================================== CSV
def test_csv_reader_sites_kinds_demand_extras() -> None:
    net = read_network(DATA / "sites.csv")
    net.validate()
    assert net.name == "sites"
    assert list(net.sites.index) == ["Amsterdam", "Utrecht", "Rotterdam", "Den Haag", "Leiden"]
    assert net.sites.index.name == "site_id"
    assert list(net.sites["kind"]) == ["end", "trusted", "site", "site", "end"]
    assert list(net.sites["demand"]) == [2.5, 1.0, 1.0, 0.0, 1.5]  # empty cell -> default 1
    assert net.sites.loc["Utrecht", "lat"] == 52.0907 and net.sites.loc["Utrecht", "lon"] == 5.1214
    assert net.sites.loc["Utrecht", "geometry"].equals(Point(5.1214, 52.0907))
    assert net.sites.loc["Rotterdam", "operator"] == "kpn"
    assert net.sites.crs.to_epsg() == 4326
    assert net.links.empty and net.summary()["n_components"] == 5


def test_csv_alternative_columns_bom_semicolon(tmp_path: Path) -> None:
    path = tmp_path / "alt.csv"
    path.write_bytes("\ufeffSite_ID;Latitude;Longitude\nx1;10.5;-20.25\nx2;-10;20\n".encode())
    net = read_network(path, name="alt")
    assert net.name == "alt"
    assert list(net.sites.index) == ["x1", "x2"]
    assert net.sites.loc["x1", "name"] == "x1"
    assert net.sites.loc["x1", "lon"] == -20.25


def test_csv_xy_with_crs(tmp_path: Path) -> None:
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32631", always_xy=True)
    x1, y1 = to_utm.transform(4.9041, 52.3676)
    x2, y2 = to_utm.transform(4.4777, 51.9244)
    path = tmp_path / "xy.csv"
    path.write_text(f"name,x,y\nA,{x1!r},{y1!r}\nB,{x2!r},{y2!r}\n", encoding="utf-8")
    net = read_network(path, crs="EPSG:32631")
    assert net.sites.loc["A", "lat"] == pytest.approx(52.3676, abs=1e-9)
    assert net.sites.loc["B", "lon"] == pytest.approx(4.4777, abs=1e-9)
    with pytest.raises(InputFormatError, match=r"no CRS was given.*crs="):
        read_network(path)
    path.write_text(f"name,x,y\nA,{x1!r},abc\nB,1e30,{y2!r}\n", encoding="utf-8")
    text = _err(path, crs="EPSG:32631")
    assert "row 1 (line 2): y 'abc' is not a finite number" in text
    assert "row 2 (line 3): x/y (1e30" in text and "outside the area" in text


# ======================================================================== GIS
def _sites_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["A", "B", "C"], "kind": ["end", "site", "trusted"], "demand": [2.0, 1.0, 0.5]},
        geometry=[Point(4.90, 52.37), Point(5.12, 52.09), Point(4.48, 51.92)],
        crs="EPSG:4326",
    )


def test_geojson_points_and_lines(tmp_path: Path) -> None:
    bent = LineString([(4.90, 52.37), (5.00, 52.30), (5.12, 52.09)])
    lines = gpd.GeoDataFrame(
        {"u": [None, "B"], "v": [None, "C"], "length_km": [None, 42.0], "owner": ["x", "y"]},
        geometry=[bent, LineString([(5.12, 52.09), (4.48, 51.92)])],
        crs="EPSG:4326",
    )
    both = pd.concat([_sites_frame(), lines], ignore_index=True)
    path = tmp_path / "net.geojson"
    gpd.GeoDataFrame(both, geometry="geometry", crs="EPSG:4326").to_file(path, driver="GeoJSON")
    net = read_network(path)
    net.validate()
    assert list(net.sites.index) == ["A", "B", "C"]
    assert list(net.sites["kind"]) == ["end", "site", "trusted"]
    first, second = net.links.iloc[0], net.links.iloc[1]
    assert (first["u"], first["v"]) == ("A", "B")  # matched by end coordinates
    assert first["length_source"] == "geometry"
    expected = float(geo.haversine_km(52.37, 4.90, 52.30, 5.00) + geo.haversine_km(52.30, 5.00, 52.09, 5.12))
    assert first["length_km"] == pytest.approx(expected)
    assert first["geometry"].equals(bent)
    assert (second["u"], second["v"], second["length_km"], second["length_source"]) == (
        "B",
        "C",
        42.0,
        "stated",
    )
    assert first["owner"] == "x"


def test_geopackage_two_layers_projected(tmp_path: Path) -> None:
    path = tmp_path / "net.gpkg"
    sites = _sites_frame().to_crs("EPSG:28992")  # Dutch RD New, metres
    lines = gpd.GeoDataFrame(
        {"u": ["A"], "v": ["C"]},
        geometry=[LineString([(4.90, 52.37), (4.48, 51.92)])],
        crs="EPSG:4326",
    ).to_crs("EPSG:28992")
    sites.to_file(path, layer="sites", driver="GPKG")
    lines.to_file(path, layer="links", driver="GPKG")
    net = read_network(path)
    assert net.sites.loc["A", "lat"] == pytest.approx(52.37, abs=1e-6)
    assert net.sites.loc["C", "lon"] == pytest.approx(4.48, abs=1e-6)
    assert len(net.links) == 1 and net.links.iloc[0]["length_source"] == "geometry"
    assert net.links.iloc[0]["length_km"] == pytest.approx(float(geo.haversine_km(52.37, 4.90, 51.92, 4.48)), rel=1e-4)


def test_shapefile_points(tmp_path: Path) -> None:
    path = tmp_path / "sites.shp"
    _sites_frame().to_file(path)
    net = read_network(path)
    assert list(net.sites.index) == ["A", "B", "C"] and net.links.empty
    assert net.sites.loc["C", "demand"] == 0.5


def test_gis_unmatched_line_end_and_polygon(tmp_path: Path) -> None:
    from shapely.geometry import Polygon

    bad = gpd.GeoDataFrame(
        {"name": ["A", "B", None, None]},
        geometry=[
            Point(4.90, 52.37),
            Point(5.12, 52.09),
            LineString([(4.90, 52.37), (6.0, 53.0)]),
            Polygon([(0, 0), (1, 0), (1, 1)]),
        ],
        crs="EPSG:4326",
    )
    path = tmp_path / "bad.geojson"
    bad.to_file(path, driver="GeoJSON")
    with pytest.raises(InputFormatError) as err:
        read_network(path)
    text = str(err.value)
    assert "feature 3" in text and "nearest site" in text and "u'/'v'" in text
    assert "feature 4" in text and "Polygon" in text


# ======================================================================== graphs
def test_graphml_parallel_edges_and_external_nodes(caplog: pytest.LogCaptureFixture) -> None:
    net = read_network(DATA / "tiny.graphml")
    assert list(net.sites.index) == ["Alpha", "Beta", "Gamma"]  # Abroad is Internal 0: dropped
    pairs = {frozenset(p) for p in zip(net.links["u"], net.links["v"], strict=True)}
    assert pairs == {frozenset(("Alpha", "Beta")), frozenset(("Beta", "Gamma"))}
    ab = net.links[net.links["u"] == "Alpha"].iloc[0]
    assert ab["length_source"] == "geodesic_x_route_factor"
    assert ab["length_km"] == pytest.approx(1.3 * float(geo.haversine_km(52.37, 4.90, 52.09, 5.12)))
    kept = read_network(DATA / "tiny.graphml", drop_external=False, route_factor=1.5)
    assert kept.sites.loc["Abroad", "kind"] == "external"
    assert len(kept.links) == 3
    assert kept.links.iloc[0]["length_km"] == pytest.approx(1.5 * float(geo.haversine_km(52.37, 4.90, 52.09, 5.12)))


def test_gml_duplicates_stated_lengths_external_without_coords(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="planner.io"):
        net = read_network(DATA / "tiny_zoo.gml")
    assert any("Peer" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert net.name == "TinyZoo"
    assert sorted(net.sites.index) == ["Alpha", "Beta#1", "Beta#2", "Gamma"]
    assert net.sites.loc["Beta#2", "name"] == "Beta"
    lengths = {frozenset((r.u, r.v)): (r.length_km, r.length_source) for r in net.links.itertuples()}
    assert lengths[frozenset(("Alpha", "Gamma"))] == (61.0, "stated")  # parallel: shortest kept
    assert lengths[frozenset(("Beta#1", "Beta#2"))] == (MIN_LINK_KM, "geodesic_x_route_factor")
    assert len(net.links) == 3


def test_gml_position_strings_and_length(tmp_path: Path) -> None:
    path = tmp_path / "core.gml"
    path.write_text(
        'graph [\n node [ id 0 label "P" position "[4.96, 52.42]" ]\n'
        ' node [ id 1 label "Q" position "[5.36, 52.87]" ]\n'
        " edge [ source 0 target 1 length 77.7 ]\n]\n",
        encoding="utf-8",
    )
    net = read_network(path)
    assert net.sites.loc["P", "lon"] == 4.96 and net.sites.loc["P", "lat"] == 52.42
    assert net.links.iloc[0]["length_km"] == 77.7 and net.links.iloc[0]["length_source"] == "stated"


def test_sndlib_reader() -> None:
    net = read_network(DATA / "polska_mini.txt")
    assert list(net.sites.index) == ["Gdansk", "Szczecin", "Warsaw", "Wroclaw"]
    assert net.sites.loc["Gdansk", "lat"] == 54.20 and net.sites.loc["Gdansk", "lon"] == 18.60
    assert len(net.links) == 4
    assert list(net.links["sndlib_id"]) == ["Link_0_2", "Link_0_1", "Link_1_3", "Link_3_2"]
    gw = net.links.iloc[0]
    assert gw["length_km"] == pytest.approx(1.3 * float(geo.haversine_km(54.2, 18.6, 52.2, 21.0)))
    assert net.summary()["n_components"] == 1


def test_qman_reader_small() -> None:
    net = read_network(DATA / "qman_mini.json")
    assert dict(net.sites["kind"]) == {
        "BB": "backbone",
        "TR1": "trusted",
        "EN1": "end",
        "EN2": "end",
    }
    assert list(net.links["length_km"]) == [3.08, 4.5, 2.7505]
    assert set(net.links["length_source"]) == {"stated"}


# ======================================================================== bundled networks
ZOO_COUNTS = {
    "Abilene": (11, 14),
    "Nsfnet": (13, 15),
    "Geant2010": (37, 56),
    "Surfnet": (50, 68),
    "Cernet": (37, 54),
    "Uninett2010": (74, 101),
    "Kreonet": (13, 12),
}


@pytest.mark.parametrize("stem", sorted(ZOO_COUNTS))
def test_bundled_zoo_networks(stem: str, datasets_dir: Path) -> None:
    path = datasets_dir / "topology-zoo" / f"{stem}.graphml"
    net = read_network(path)
    net.validate()
    n_sites, n_links = ZOO_COUNTS[stem]
    assert (len(net.sites), len(net.links)) == (n_sites, n_links)
    # independent count: networkx simple graph on the internal nodes
    raw = nx.Graph(nx.read_graphml(path))
    raw.remove_nodes_from([n for n, d in raw.nodes(data=True) if d.get("Internal") == 0])
    assert (raw.number_of_nodes(), raw.number_of_edges()) == (n_sites, n_links)
    assert net.summary()["n_components"] == nx.number_connected_components(raw)
    assert (net.links["length_source"] == "geodesic_x_route_factor").all()


def test_bundled_uninett_oddities(datasets_dir: Path) -> None:
    path = datasets_dir / "topology-zoo" / "Uninett2010.graphml"
    net = read_network(path)
    assert {"UiO#0", "UiO#1", "UiTo#8", "UiTo#26"} <= set(net.sites.index)
    # independent count: links of the raw internal graph whose two ends have identical coordinates
    # (zero great-circle length); the reader floors exactly those to MIN_LINK_KM
    raw = nx.Graph(nx.read_graphml(path))
    raw.remove_nodes_from([n for n, d in raw.nodes(data=True) if d.get("Internal") == 0])

    def _at(n: str) -> tuple[float, float]:
        return (raw.nodes[n]["Latitude"], raw.nodes[n]["Longitude"])

    zero = sum(1 for u, v in raw.edges if _at(u) == _at(v))
    assert zero > 0  # the oddity this test is about is present in the file
    assert int((net.links["length_km"] == MIN_LINK_KM).sum()) == zero


def test_bundled_beijing(datasets_dir: Path) -> None:
    path = datasets_dir / "beijing_qman" / "beijing_qman_topology.json"
    net = read_network(path)
    # independent count: the raw JSON (QMAN distances are in metres)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert (len(net.sites), len(net.links)) == (len(raw["nodes"]), len(raw["links"]))
    qman_kind = {"EndNode": "end", "TrustedRepeaterNode": "trusted", "BackboneNode": "backbone"}
    raw_kinds = pd.Series([qman_kind[n["type"]] for n in raw["nodes"]]).value_counts().to_dict()
    assert net.sites["kind"].value_counts().to_dict() == raw_kinds
    assert net.links["length_km"].sum() == pytest.approx(
        sum(link["qchannel"]["distance"] for link in raw["links"]) / 1000.0, rel=1e-12
    )
    assert (net.links["length_source"] == "stated").all()
    stated = {frozenset((link["node1"], link["node2"])): link["qchannel"]["distance"] / 1000.0 for link in raw["links"]}
    for link in net.links.itertuples(index=False):
        assert link.length_km == pytest.approx(stated[frozenset((link.u, link.v))], rel=1e-12)


def test_repalloc_gml(repalloc_dir: Path) -> None:
    # independent count: networkx on the raw files (their README lists the same node/edge counts)
    core_raw = nx.read_gml(repalloc_dir / "SurfnetCore.gml")
    core = read_network(repalloc_dir / "SurfnetCore.gml")
    assert (len(core.sites), len(core.links)) == (core_raw.number_of_nodes(), core_raw.number_of_edges()) == (54, 64)
    assert core.links["length_km"].sum() == pytest.approx(
        sum(float(d["length"]) for _, _, d in core_raw.edges(data=True)), rel=1e-12
    )
    assert (core.links["length_source"] == "stated").all()
    lon, lat = json.loads(core_raw.nodes["A'dam 1"]["position"])
    assert (core.sites.loc["A'dam 1", "lon"], core.sites.loc["A'dam 1", "lat"]) == (lon, lat)
    assert set(core.sites.index) == set(core_raw.nodes)
    for stem in ("Surfnet", "Colt"):
        raw = nx.read_gml(repalloc_dir / f"{stem}.gml")
        net = read_network(repalloc_dir / f"{stem}.gml")
        assert (len(net.sites), len(net.links)) == (raw.number_of_nodes(), raw.number_of_edges())
        assert net.summary()["n_components"] == nx.number_connected_components(raw) == 1


# ======================================================================== bad input
def _err(path: Path, **kwargs) -> str:
    with pytest.raises(ValidationError) as err:  # InputFormatError is a ValidationError
        read_network(path, **kwargs)
    text = str(err.value)
    assert str(path) in text, text
    return text


def test_missing_file_unknown_format_empty(tmp_path: Path) -> None:
    text = _err(tmp_path / "nope.csv")
    assert "not found" in text
    weird = tmp_path / "net.xyz"
    weird.write_bytes(b"\x01\x02binary")
    assert "unknown format" in _err(weird)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "empty" in _err(empty)
    blank = tmp_path / "blank.json"
    blank.write_text("  \n", encoding="utf-8")
    assert "whitespace" in _err(blank)


def test_csv_without_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "nocoord.csv"
    path.write_text("name,city\nA,Delft\n", encoding="utf-8")
    text = _err(path)
    assert "no coordinate columns" in text and "fix:" in text and "'lat'" in text


def test_csv_collects_all_row_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "name,lat,lon,demand,kind\n"
        "A,200,4,1,site\n"  # row 1: latitude out of range
        "B,abc,4,1,site\n"  # row 2: non-numeric
        "C,nan,inf,1,site\n"  # row 3: NaN and inf
        "A,50,4,1,site\n"  # row 4: duplicate
        "D,50,190,-1,wizard\n"  # row 5: longitude, demand, kind
        "E,50\n",  # row 6: short row
        encoding="utf-8",
    )
    with pytest.raises(ValidationError) as err:
        read_network(path)
    text = str(err.value)
    # the short row is a format problem and is reported first, before values are checked
    assert "row 6 (line 7)" in text and "has 2 fields" in text
    path.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:-1]) + "\n", encoding="utf-8")
    text = _err(path)
    for expected in (
        "row 1 (line 2): latitude 200 is outside [-90, 90]",
        "row 2 (line 3): latitude 'abc' is not a number",
        "row 3 (line 4): latitude 'nan' is not finite",
        "row 3 (line 4): longitude 'inf' is not finite",
        "row 4 (line 5): duplicate site name 'A'",
        "row 5 (line 6): longitude 190 is outside [-180, 180]",
        "row 5 (line 6): demand '-1'",
        "row 5 (line 6): unknown kind 'wizard'",
    ):
        assert expected in text, text
    assert text.count("fix:") >= 8


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,lat,lon\nA,1,1\nZürich,47.4,8.5\n".encode("latin-1"))
    text = _err(path)
    assert "line 3" in text and "UTF-8" in text


def test_malformed_xml_json_gml(tmp_path: Path) -> None:
    xml = tmp_path / "bad.graphml"
    xml.write_text('<?xml version="1.0"?><graphml><graph><node id="a"></graph>', encoding="utf-8")
    assert "malformed GraphML" in _err(xml)
    js = tmp_path / "bad.json"
    js.write_text('{"nodes": [1, 2', encoding="utf-8")
    assert "malformed JSON at line 1" in _err(js)
    gml = tmp_path / "bad.gml"
    gml.write_text("graph [ node [ id 0 label ", encoding="utf-8")
    assert "malformed GML" in _err(gml)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    assert "neither GeoJSON" in _err(other)


def test_graph_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.gml"
    path.write_text(
        "graph [\n"
        ' node [ id 0 label "A" Latitude 50 Longitude 4 ]\n'
        ' node [ id 1 label "B" Latitude 51 Longitude 5 ]\n'
        ' node [ id 2 label "NoCoords" Internal 1 ]\n'
        " edge [ source 0 target 0 ]\n"
        " edge [ source 0 target 1 length -5 ]\n"
        ' edge [ source 1 target 0 length "ten" ]\n'
        "]\n",
        encoding="utf-8",
    )
    text = _err(path)
    assert "node 2 (label 'NoCoords'): internal node has no coordinates" in text
    assert "edge 0–0: edge is a self-loop" in text
    # the value problems come in a second pass, after the structure is fixed
    path.write_text(
        path.read_text(encoding="utf-8")
        .replace(' node [ id 2 label "NoCoords" Internal 1 ]\n', "")
        .replace(" edge [ source 0 target 0 ]\n", ""),
        encoding="utf-8",
    )
    text = _err(path)
    assert "edge 0–1 (parallel edge 0): stated length -5" in text
    assert "edge 0–1 (parallel edge 1): stated length 'ten'" in text
    empty = tmp_path / "empty.gml"
    empty.write_text("graph [\n]\n", encoding="utf-8")
    assert "zero nodes" in _err(empty)


def test_links_naming_unknown_sites(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text(
        json.dumps(
            {
                "nodes": [{"name": "A", "type": "EndNode", "latitude": 40, "longitude": 116}],
                "links": [{"node1": "A", "node2": "Z", "qchannel": {"distance": 10}}],
            }
        ),
        encoding="utf-8",
    )
    text = _err(path)
    assert "links[0]" in text and "unknown site 'Z'" in text


def test_disconnected_is_not_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "two.gml"
    path.write_text(
        "graph [\n"
        + "".join(f' node [ id {i} label "N{i}" Latitude {50 + i} Longitude 4 ]\n' for i in range(4))
        + " edge [ source 0 target 1 ]\n edge [ source 2 target 3 ]\n]\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.INFO, logger="planner.io"):
        net = read_network(path)
    assert net.summary()["n_components"] == 2
    assert any("2 connected components" in r.getMessage() for r in caplog.records)


def test_bad_route_factor(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="route_factor"):
        read_network(DATA / "sites.csv", route_factor=0.5)


# ======================================================================== writers
def test_write_json_deterministic_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out" / "d.json"
    obj = {
        "b": np.float64(0.1) + 0.2,
        "a": [np.int64(3), float("nan"), math.inf],
        "c": {"z": 1, "y": {2, 1}},
    }
    write_json(obj, path)
    first = path.read_bytes()
    write_json(dict(reversed(list(obj.items()))), path)
    assert path.read_bytes() == first
    assert json.loads(first) == {
        "a": [3, None, None],
        "b": 0.30000000000000004,
        "c": {"y": [1, 2], "z": 1},
    }
    assert first.index(b'"a"') < first.index(b'"b"')
    with pytest.raises(ValidationError):
        write_json({"x": object()}, path)
    assert path.read_bytes() == first  # the failed write left the old file intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["d.json"]  # no temp files left


def test_write_csv_deterministic(tmp_path: Path) -> None:
    net = read_network(DATA / "sites.csv")
    write_csv(net.sites, tmp_path / "a.csv")
    write_csv(net.sites, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    back = pd.read_csv(tmp_path / "a.csv")
    assert list(back.columns[:3]) == ["site_id", "name", "kind"]
    assert back["lat"].tolist() == net.sites["lat"].tolist()  # floats round-trip exactly
    assert back["geometry"].iloc[0] == "POINT (4.9041 52.3676)"
    assert b"\r\n" not in (tmp_path / "a.csv").read_bytes()


def test_write_geopackage_round_trip(tmp_path: Path) -> None:
    net = read_network(DATA / "tiny_zoo.gml").with_candidate_links()
    path = tmp_path / "design.gpkg"
    write_geopackage({"sites": net.sites, "links": net.links}, path)
    import pyogrio

    assert sorted(str(row[0]) for row in pyogrio.list_layers(path)) == ["links", "sites"]
    sites = gpd.read_file(path, layer="sites")
    links = gpd.read_file(path, layer="links")
    assert sorted(sites["site_id"]) == sorted(net.sites.index)
    assert len(links) == len(net.links) and links["candidate"].dtype == bool
    before = path.read_bytes()
    with pytest.raises(ValidationError):
        write_geopackage({"sites": net.sites, "bad": pd.DataFrame({"a": [1]})}, path)  # type: ignore[dict-item]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["design.gpkg"]
    # the written file reads back as a network
    again = read_network(path)
    assert sorted(again.sites.index) == sorted(net.sites.index)
    assert len(again.links) == len(net.links)


def test_format_sniffed_from_content(tmp_path: Path) -> None:
    copies = {
        "graph.xml": "tiny.graphml",
        "sites.txt": "sites.csv",
        "polska": "polska_mini.txt",
        "zoo.dat": "tiny_zoo.gml",
        "beijing.data": "qman_mini.json",
    }
    for target, source in copies.items():
        (tmp_path / target).write_bytes((DATA / source).read_bytes())
    assert len(read_network(tmp_path / "graph.xml").sites) == 3
    assert len(read_network(tmp_path / "sites.txt").sites) == 5
    assert len(read_network(tmp_path / "polska").links) == 4
    assert len(read_network(tmp_path / "zoo.dat").sites) == 4
    assert len(read_network(tmp_path / "beijing.data").links) == 3


def test_half_given_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "half.gml"
    path.write_text(
        'graph [\n node [ id 0 label "A" Latitude 50 ]\n node [ id 1 label "B" Latitude 51 Longitude 5 ]\n]\n',
        encoding="utf-8",
    )
    text = _err(path)
    assert "node 0 (label 'A'): longitude is missing" in text


def test_csv_quoted_multiline_cell_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('name,lat,lon,note\nA,1,2,"two\nlines"\n\nB,95,2,x\n', encoding="utf-8")
    text = _err(path)
    assert "row 2 (line 5): latitude 95 is outside" in text
    path.write_text('name,lat,lon\nA,1,2\n"B,3,4\n', encoding="utf-8")
    assert "malformed CSV" in _err(path)
