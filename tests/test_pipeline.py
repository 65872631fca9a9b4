"""End-to-end planning on a small site set: invariants, JSON round trip, reproducibility, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_design import assert_same_design
from helpers_net import write_sites_csv

from planner.io.readers import read_network
from planner.model.design import Design
from planner.model.scenario import default_scenario
from planner.pipeline import plan
from qkdplan.cli import main

SCENARIO = default_scenario().with_overrides(
    {"backbone.mode": "repeaters", "access.reach_km": 40.0, "solver.time_limit_s": 30.0}
)


@pytest.fixture(scope="module")
def small_design(tmp_path_factory: pytest.TempPathFactory) -> Design:
    f = write_sites_csv(tmp_path_factory.mktemp("net") / "sites.csv")
    return plan(read_network(f), SCENARIO, seed=3)


def test_every_site_has_one_role_and_clusters_respect_bounds(small_design: Design) -> None:
    s = small_design.sites
    assert s["site_id"].is_unique and len(s) == 14
    assert set(s["role"]) <= {"master", "slave", "unassigned"}
    acc = SCENARIO.access
    for c in small_design.clusters.itertuples(index=False):
        members = s[s["cluster"] == c.master]
        slaves = members[members["role"] == "slave"]
        assert acc.min_slaves <= len(slaves) == c.n_slaves <= acc.capacity
        assert (slaves["access_km"] <= acc.reach_km + 1e-9).all()
        assert c.ekert_pairs == c.n_slaves // 2
    masters = s[s["role"] == "master"]
    assert (masters["cluster"] == masters["site_id"]).all()


def test_backbone_links_and_demands_are_consistent(small_design: Design) -> None:
    d = small_design
    nodes = set(d.clusters["master"]) | set(d.sites.loc[d.sites["role"] == "unassigned", "site_id"])
    assert set(d.links["u"]) | set(d.links["v"]) <= nodes
    n = len(nodes)
    assert len(d.demands) == n * (n - 1) // 2  # all pairs of clusters are served (graph is connected)
    # the rate target holds for every demand, as the min-cost model promises
    assert (d.demands["rate"] >= SCENARIO.backbone.rate_target * (1 - 1e-9)).all()
    assert d.metrics["n_repeaters"] == int(d.links["repeaters"].sum())


def test_json_round_trip(small_design: Design) -> None:
    again = Design.from_dict(json.loads(small_design.to_json()))
    assert again.to_json() == small_design.to_json()
    assert_same_design(small_design, again)  # columns, dtypes and values, table by table


def _without_timing(text: str) -> dict:
    data = json.loads(text)
    data.pop("timing")
    return data


def test_cli_plan_writes_every_output_and_is_reproducible(tmp_path: Path) -> None:
    f = write_sites_csv(tmp_path / "sites.csv")
    sc = tmp_path / "s.toml"
    sc.write_text('[backbone]\nmode = "repeaters"\n[access]\nreach_km = 40.0\n', encoding="utf-8")
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["plan", str(f), "--scenario", str(sc), "--out", str(out), "--seed", "7"]) == 0
        for fname in (
            "design.json",
            "design.gpkg",
            "report.html",
            "sites.csv",
            "clusters.csv",
            "links.csv",
            "demands.csv",
            "relays.csv",
        ):
            assert (out / fname).is_file() and (out / fname).stat().st_size > 0, fname
        runs.append((out / "design.json").read_text(encoding="utf-8"))
    a, b = (_without_timing(t) for t in runs)
    assert a == b
    # the timing section is the only part allowed to differ; everything else is byte-identical
    strip = [json.dumps(_without_timing(t), sort_keys=True) for t in runs]
    assert strip[0] == strip[1]
    html = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html
    import re

    # self-contained: no external scripts, stylesheets or images
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "<script src" not in html and "<link " not in html
    import geopandas as gpd
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(tmp_path / "a" / "design.gpkg")}
    assert {"sites", "links", "clusters", "repeaters"} <= layers
    sites = gpd.read_file(tmp_path / "a" / "design.gpkg", layer="sites")
    assert len(sites) == 14


def test_memory_budget_is_distributed_and_respected(tmp_path: Path) -> None:
    f = write_sites_csv(tmp_path / "sites.csv")
    budget = 120
    design = plan(read_network(f), SCENARIO.with_overrides({"memory.budget_units": budget}), seed=0)
    assert design.solves["memory"]["status"] == "optimal"
    s = design.sites
    used = int(s["memory_units"].sum()) + int(design.links["memory_units"].sum())
    assert used <= budget
    in_cluster = s[s["role"].isin(["master", "slave"])]
    assert (in_cluster["memory_units"] >= 1).all() and (design.links["memory_units"] >= 1).all()
    # the design's rate is Eq. 9 with the least memory on the demand's links (what the simulator checks)
    from planner.physics import chain_distribution_ratio

    links = design.links.set_index("link_id")
    for d in design.demands.itertuples(index=False):
        m = int(links.loc[str(d.links).split(";"), "memory_units"].min())
        expected = chain_distribution_ratio(int(d.hops), p=float(d.p_worst), q=SCENARIO.physics.q_swap, memory=m)
        assert d.rate == pytest.approx(float(expected), rel=1e-9)
        assert d.rate_shared <= d.rate * (1 + 1e-9)  # sharing a link never helps a demand
