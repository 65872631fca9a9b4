"""The public Python API: the example in docs/api.md runs, and the wrappers keep their promises."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from helpers_net import SMALL_SITES, write_sites_csv

import qkdplan
from planner.io.readers import read_network as read_file

REPO = Path(__file__).resolve().parents[1]


def test_docs_api_example_runs(tmp_path: Path) -> None:
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/api.md", "exec"), {"out_dir": tmp_path, "__name__": "docs_api"})  # noqa: S102
    assert (tmp_path / "run" / "design.gpkg").is_file()


def test_public_names() -> None:
    for name in ("read_network", "load_scenario", "plan", "simulate", "compare", "Design", "__version__"):
        assert hasattr(qkdplan, name), name
    assert (REPO / "qkdplan" / "py.typed").is_file()


def test_read_network_takes_frames_and_gives_the_same_network_as_the_file(tmp_path: Path) -> None:
    csv = write_sites_csv(tmp_path / "s.csv")
    ref = read_file(csv)
    df = pd.DataFrame(SMALL_SITES, columns=["name", "lat", "lon"])
    from_df = qkdplan.read_network(df)
    gdf = gpd.GeoDataFrame({"name": df["name"]}, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")
    from_gdf = qkdplan.read_network(gdf)
    # a GeoDataFrame in a projected CRS is transformed back to degrees
    from_rd = qkdplan.read_network(gdf.to_crs("EPSG:28992"))
    for net, tol_deg in ((from_df, 1e-12), (from_gdf, 1e-12), (from_rd, 1e-7)):  # 1e-7 deg ~ 1 cm
        assert list(net.sites.index) == list(ref.sites.index)
        assert (net.sites[["lat", "lon"]] - ref.sites[["lat", "lon"]]).abs().max().max() < tol_deg
    # a DataFrame indexed by name works too
    assert list(qkdplan.read_network(df.set_index("name")).sites.index) == list(ref.sites.index)


def test_read_network_from_data_reports_problems_like_files() -> None:
    bad = pd.DataFrame({"name": ["A", "B"], "lat": [52.0, 200.0], "lon": [4.0, 5.0]})
    with pytest.raises(qkdplan.ValidationError, match=r"DataFrame, row 2.*latitude 200"):
        qkdplan.read_network(bad)
    with pytest.raises(qkdplan.InputFormatError, match="cannot make a network from a list"):
        qkdplan.read_network([1, 2, 3])  # type: ignore[arg-type]
    xy = pd.DataFrame({"name": ["A"], "x": [1.0], "y": [2.0]})
    with pytest.raises(qkdplan.InputFormatError, match="--crs"):
        qkdplan.read_network(xy)


def test_design_write_refuses_a_folder_of_other_files(tmp_path: Path) -> None:
    import networkx as nx

    g = nx.path_graph(4)
    for i, (lat, lon) in enumerate([(52.0, 4.0), (52.1, 4.1), (52.2, 4.2), (52.3, 4.3)]):
        g.nodes[i].update(label=f"N{i}", Latitude=lat, Longitude=lon)
    net = qkdplan.read_network(g)
    assert list(net.sites.index) == ["N0", "N1", "N2", "N3"] and len(net.links) == 3
    design = qkdplan.plan(net, qkdplan.load_scenario(overrides={"backbone.mode": "repeaters"}))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("k", encoding="utf-8")
    with pytest.raises(qkdplan.InputFormatError, match="not written by qkdplan"):
        design.write(folder)
    design.write(folder, force=True)
    assert (folder / "keep.txt").read_text(encoding="utf-8") == "k" and (folder / "design.json").is_file()
    html = design.report(tmp_path / "r.html")
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
