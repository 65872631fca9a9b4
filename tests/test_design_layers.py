"""design.gpkg: layer names, CRS, column types, NULLs, geometry checked against the design's own tables."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
from helpers_net import write_sites_csv
from shapely.geometry import Point

from planner.io.writers import (
    CLUSTER_BUFFER_M,
    LAYERS,
    METADATA_TABLE,
    design_layers,
    write_design_files,
)
from qkdplan import Design
from qkdplan.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("layers")
    f = write_sites_csv(base / "sites.csv")
    sc = base / "s.toml"
    sc.write_text(
        '[backbone]\nmode = "both"\n[access]\nreach_km = 40.0\n[security]\ntrusted_budget = 1\n'
        "[solver]\ntime_limit_s = 30.0\n",
        encoding="utf-8",
    )
    out = base / "run"
    assert main(["plan", str(f), "--scenario", str(sc), "--out", str(out)]) == 0
    return out


def test_layer_names_crs_and_metadata_table(run_dir: Path) -> None:
    gpkg = run_dir / "design.gpkg"
    listed = {str(name): geom for name, geom in pyogrio.list_layers(gpkg)}
    assert set(LAYERS) | {METADATA_TABLE} == set(listed)
    assert listed[METADATA_TABLE] is None  # attribute table, no geometry
    for name in LAYERS:
        assert pyogrio.read_info(gpkg, layer=name)["crs"] == "EPSG:4326", name
    assert {listed[n] for n in ("fibre", "access_links", "demand_routes", "links")} == {"LineString"}
    meta = pyogrio.read_dataframe(gpkg, layer=METADATA_TABLE)
    kv = dict(zip(meta["key"], meta["value"], strict=True))
    design = json.loads((run_dir / "design.json").read_text(encoding="utf-8"))
    assert kv["qkdplan_version"] == design["qkdplan_version"]
    assert kv["scenario_name"] == design["scenario"]["name"]
    assert json.loads(kv["scenario_json"]) == design["scenario"]
    for stage, s in design["solves"].items():
        assert kv[f"solver.{stage}.status"] == s["status"]


def test_column_types(run_dir: Path) -> None:
    gpkg = run_dir / "design.gpkg"

    def dtypes(layer: str) -> dict[str, str]:
        info = pyogrio.read_info(gpkg, layer=layer)
        return dict(zip(info["fields"], info["dtypes"], strict=True))

    fib = dtypes("fibre")
    assert fib["length_km"] == "float64" and fib["candidate"] == "bool" and fib["backbone"] == "bool"
    acc = dtypes("access_links")
    assert acc["access_km"] == "float64" and acc["slave"] == "object"
    dr = dtypes("demand_routes")
    for col in ("rate", "latency_s", "latency_protocol_s", "security", "security_single_path", "length_km"):
        assert dr[col] == "float64", col
    assert dr["hops"] in ("int64", "int32")
    cl = dtypes("clusters")
    assert cl["buffer_m"] == "float64" and cl["hull_area_km2"] == "float64"


def test_layers_match_the_design_tables(run_dir: Path) -> None:
    d = Design.read(run_dir)
    gpkg = run_dir / "design.gpkg"
    # fibre: every link, candidate flag kept, backbone flag = consecutive sites of some backbone route
    fib = gpd.read_file(gpkg, layer="fibre")
    assert len(fib) == len(d.fibre) and fib["candidate"].sum() == d.fibre["candidate"].astype(bool).sum()
    used = set()
    for route in d.links["route"]:
        ids = str(route).split(";")
        used |= {frozenset(p) for p in zip(ids[:-1], ids[1:], strict=True)}
    expect = [frozenset((u, v)) in used for u, v in zip(fib["u"], fib["v"], strict=True)]
    assert fib["backbone"].tolist() == expect and any(expect)
    # access lines: one per slave, from its master's position to the slave's
    pos = {r.site_id: (r.lon, r.lat) for r in d.sites.itertuples(index=False)}
    acc = gpd.read_file(gpkg, layer="access_links")
    assert sorted(acc["slave"]) == sorted(d.sites.loc[d.sites["role"] == "slave", "site_id"])
    for r in acc.itertuples(index=False):
        c = list(r.geometry.coords)
        assert np.allclose(c[0], pos[r.master]) and np.allclose(c[-1], pos[r.slave])
    # demand routes: one per demand, from source to target, same numbers as design.json
    dr = gpd.read_file(gpkg, layer="demand_routes").set_index("demand_id")
    dem = d.demands.set_index("demand_id")
    assert set(dr.index) == set(dem.index)
    for did, r in dr.iterrows():
        c = list(r.geometry.coords)
        assert np.allclose(c[0], pos[dem.at[did, "source"]]) and np.allclose(c[-1], pos[dem.at[did, "target"]])
        for col in ("rate", "security", "latency_s"):
            assert r[col] == pytest.approx(float(dem.at[did, col]), rel=1e-10)  # design.json: 12 digits
        # the line follows the demand's backbone links: it is no shorter than their fibre routes' chords
        assert len(c) >= int(dem.at[did, "hops"] > 0) + 1


def test_cluster_buffer_is_metres_around_every_member(run_dir: Path) -> None:
    d = Design.read(run_dir)
    hulls = gpd.read_file(run_dir / "design.gpkg", layer="clusters")
    pos = {r.site_id: (r.lon, r.lat) for r in d.sites.itertuples(index=False)}
    for r in hulls.itertuples(index=False):
        members = [r.master, *str(r.slaves).split(";")]
        utm = gpd.GeoSeries([r.geometry], crs="EPSG:4326").estimate_utm_crs()
        to_utm = pyproj.Transformer.from_crs("EPSG:4326", utm, always_xy=True)
        poly = gpd.GeoSeries([r.geometry], crs="EPSG:4326").to_crs(utm).iloc[0]
        for m in members:
            p = Point(to_utm.transform(*pos[m]))
            assert poly.contains(p)
            # the buffer is CLUSTER_BUFFER_M metres (UTM scale error < 0.1 %), not a fraction of a degree
            assert poly.exterior.distance(p) >= CLUSTER_BUFFER_M * 0.99
        assert r.buffer_m == CLUSTER_BUFFER_M


def test_absent_values_are_null(run_dir: Path, tmp_path: Path) -> None:
    d = Design.read(run_dir)
    d.demands.loc[d.demands.index[0], "security"] = np.nan
    d.demands["trusted_on_path"] = ""
    write_design_files(d, tmp_path)
    con = sqlite3.connect(tmp_path / "design.gpkg")
    try:
        n_null = con.execute("SELECT COUNT(*) FROM demand_routes WHERE security IS NULL").fetchone()[0]
        n_empty = con.execute("SELECT COUNT(*) FROM demand_routes WHERE trusted_on_path = ''").fetchone()[0]
        n_null_text = con.execute("SELECT COUNT(*) FROM demand_routes WHERE trusted_on_path IS NULL").fetchone()[0]
    finally:
        con.close()
    assert n_null == 1 and n_empty == 0 and n_null_text == len(d.demands)


def test_to_geodataframes_is_the_layer_set(run_dir: Path) -> None:
    d = Design.read(run_dir)
    layers = d.to_geodataframes()
    assert tuple(layers) == LAYERS
    assert all(isinstance(g, gpd.GeoDataFrame) and g.crs == "EPSG:4326" for g in layers.values())
    assert len(layers["demand_routes"]) == len(d.demands)
    assert set(design_layers(d)) == set(layers)
