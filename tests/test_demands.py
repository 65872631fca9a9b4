"""Demand models (planner.stages.demands) against independent brute-force computations."""

from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from planner.errors import InputFormatError, ValidationError
from planner.io.readers import read_network
from planner.model.scenario import (
    DemandSettings,
    default_scenario,
    load_scenario,
    scenario_from_dict,
)
from planner.stages.backbone import build_backbone, route_demands
from planner.stages.demands import demand_pairs, gravity_pairs, hub_pairs, read_pairs_csv
from tests.helpers_net import random_sites, write_sites_csv


def _random_graph(n: int, seed: int, *, parts: int = 1) -> nx.Graph:
    """A connected random geometric-ish graph per part, node names N00.. with length_km on edges."""
    rng = np.random.default_rng(seed)
    g = nx.Graph()
    names = [f"N{i:02d}" for i in range(n)]
    g.add_nodes_from(names)
    chunks = np.array_split(np.arange(n), parts)
    for chunk in chunks:
        for a, b in itertools.pairwise(chunk):  # a path keeps every part connected
            g.add_edge(names[a], names[b], length_km=float(rng.uniform(5, 120)))
        for _ in range(len(chunk)):
            a, b = rng.choice(chunk, 2, replace=False)
            g.add_edge(names[a], names[b], length_km=float(rng.uniform(5, 120)))
    return g


def _brute_scores(g: nx.Graph, nodes: list[str], w: np.ndarray, exponent: float) -> np.ndarray:
    dist = dict(nx.all_pairs_dijkstra_path_length(g, weight="length_km"))
    n = len(nodes)
    s = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j and nodes[j] in dist[nodes[i]]:
                s[i, j] = w[i] * w[j] / max(dist[nodes[i]][nodes[j]], 1.0) ** exponent
    return s


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("k", [1, 2])
def test_gravity_is_top_k_plus_maximum_spanning_forest(seed: int, parts: int, k: int) -> None:
    n = 18
    g = _random_graph(n, seed, parts=parts)
    nodes = sorted(g.nodes)
    w = np.random.default_rng(seed + 10).uniform(1, 100, n)
    got = set(gravity_pairs(nodes, w, g, k=k))
    s = _brute_scores(g, nodes, w, 2.0)
    # brute force top-k: full sort of each row
    topk = set()
    for i in range(n):
        order = sorted((j for j in range(n) if s[i, j] > 0), key=lambda j: -s[i, j])[:k]
        topk |= {tuple(sorted((nodes[i], nodes[j]))) for j in order}
    assert topk <= got
    extra = got - topk
    # the extra pairs are Kruskal's maximum spanning forest over the pieces of the top-k graph
    pieces = nx.Graph()
    pieces.add_nodes_from(nodes)
    pieces.add_edges_from(topk)
    comp = {v: c for c, part in enumerate(nx.connected_components(pieces)) for v in part}
    between = nx.Graph()
    best: dict[tuple[int, int], tuple[float, tuple[str, str]]] = {}
    for i, j in itertools.combinations(range(n), 2):
        ci, cj = comp[nodes[i]], comp[nodes[j]]
        if ci != cj and s[i, j] > 0:
            key = (min(ci, cj), max(ci, cj))
            if key not in best or s[i, j] > best[key][0]:
                best[key] = (s[i, j], (nodes[i], nodes[j]))
    for (ci, cj), (score, pair) in best.items():
        between.add_edge(ci, cj, weight=score, pair=pair)
    forest = nx.maximum_spanning_tree(between)
    expected = {tuple(sorted(d["pair"])) for _, _, d in forest.edges(data=True)}
    assert extra == expected
    if k == 1:  # with one partner each the top-k graph falls apart, so the joining pairs are exercised
        assert len(extra) >= 1
    # the demand graph has exactly the backbone's connected parts
    dg = nx.Graph()
    dg.add_nodes_from(nodes)
    dg.add_edges_from(got)
    assert sorted(map(sorted, nx.connected_components(dg))) == sorted(map(sorted, nx.connected_components(g)))
    assert len(got) <= n * k + n - 1


def test_gravity_prefers_heavy_near_partners_and_handles_zero_weights() -> None:
    # a line A - B - C - D, 10 km each; B and C heavy
    g = nx.Graph()
    for a, b in [("A", "B"), ("B", "C"), ("C", "D")]:
        g.add_edge(a, b, length_km=10.0)
    pairs = gravity_pairs(["A", "B", "C", "D"], np.array([1.0, 100.0, 100.0, 0.0]), g, k=1)
    # A's strongest: B (100/100) vs C (100/400): B; B's and C's: each other; D (zero weight): nearest, C
    assert pairs == [("A", "B"), ("B", "C"), ("C", "D")]


def test_hub_pairs_brute_force() -> None:
    nodes = ["a", "b", "c", "d"]
    assert hub_pairs(nodes, ["b", "d"]) == sorted({tuple(sorted((h, v))) for h in ["b", "d"] for v in nodes if v != h})


@pytest.mark.parametrize("ties", [False, True])
def test_route_demands_matches_per_pair_dijkstra(ties: bool) -> None:
    g = _random_graph(15, 4) if not ties else nx.convert_node_labels_to_integers(nx.grid_2d_graph(4, 4))
    g = nx.relabel_nodes(g, {v: f"N{v:02d}" for v in g.nodes}) if ties else g
    for u, v in g.edges:
        g.edges[u, v]["link_id"] = f"{u}--{v}"
        if ties:  # equal lengths: many shortest paths, networkx's tie-break must be kept
            g.edges[u, v]["length_km"] = 10.0
    pairs = list(itertools.combinations(sorted(g.nodes), 2))
    table = route_demands(g, pairs)
    assert len(table) == len(pairs)
    for row in table.itertuples(index=False):
        length, path = nx.single_source_dijkstra(g, row.source, row.target, weight="length_km")
        assert row.path == ";".join(path)
        assert row.length_km == pytest.approx(length)


def _backbone(tmp_path: Path, demands: dict, n: int = 30):
    from planner.stages.prepare import prepare_network

    scenario = default_scenario().with_overrides({f"demands.{k}": v for k, v in demands.items()})
    net, _ = prepare_network(read_network(_sites(tmp_path, n)), scenario)
    site_to_node = {s: s for s in net.site_ids()}
    return net, build_backbone(net, site_to_node, scenario)


def _sites(tmp_path: Path, n: int) -> Path:
    sites = random_sites(n, seed=3)
    lines = ["name,lat,lon,demand"] + [f"{s},{a},{b},{(i % 5) + 1}" for i, (s, a, b) in enumerate(sites)]
    f = tmp_path / "sites.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f


def test_auto_switches_from_all_pairs_to_gravity(tmp_path: Path) -> None:
    net, bb = _backbone(tmp_path, {"mode": "auto", "auto_all_pairs_max_nodes": 40}, n=30)
    assert len(bb.demands) == 30 * 29 // 2 and "all pairs" in bb.demand_model
    net, bb = _backbone(tmp_path, {"mode": "auto", "auto_all_pairs_max_nodes": 20, "k": 2}, n=30)
    assert "gravity" in bb.demand_model and len(bb.demands) <= 30 * 2 + 29
    # weights are the site demands (1..5), not equal weights
    assert "summed site demand" in bb.demand_model


def test_equal_weights_are_noted(tmp_path: Path) -> None:
    from planner.stages.prepare import prepare_network

    f = write_sites_csv(tmp_path / "s.csv", random_sites(12, seed=5))
    scenario = default_scenario().with_overrides({"demands.mode": "gravity"})
    net, _ = prepare_network(read_network(f), scenario)
    bb = build_backbone(net, {s: s for s in net.site_ids()}, scenario)
    assert "equal weights" in bb.demand_model


def test_explicit_file_and_unknown_site_error(tmp_path: Path) -> None:
    good = tmp_path / "pairs.csv"
    good.write_text("source,target\nS0000,S0001\nS0002,S0003\nS0001,S0000\n", encoding="utf-8")
    net, bb = _backbone(tmp_path, {"mode": "explicit", "file": str(good)}, n=10)
    assert list(bb.demands["demand_id"]) == ["S0000~S0001", "S0002~S0003"]
    bad = tmp_path / "bad.csv"
    bad.write_text("source,target\nS0000,S0001\nS0000,Nowhere\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"bad\.csv, row 3: site 'Nowhere' is not in network.*fix"):
        _backbone(tmp_path, {"mode": "explicit", "file": str(bad)}, n=10)
    with pytest.raises(InputFormatError, match="lacks the columns"):
        read_pairs_csv(_write(tmp_path / "h.csv", "a,b\nx,y\n"))
    with pytest.raises(InputFormatError, match=r"row 2: 'x' is paired with itself"):
        read_pairs_csv(_write(tmp_path / "s.csv", "source,target\nx,x\n"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_hubs_by_name_and_unknown_hub(tmp_path: Path) -> None:
    net, bb = _backbone(tmp_path, {"mode": "hubs", "hubs": ["S0004"]}, n=10)
    assert set(bb.demands["demand_id"]) == {
        f"{min(s, 'S0004')}~{max(s, 'S0004')}" for s in net.site_ids() if s != "S0004"
    }
    with pytest.raises(ValidationError, match=r"demands.hubs\[0\].*did you mean 'S0004'"):
        _backbone(tmp_path, {"mode": "hubs", "hubs": ["S004"]}, n=10)


def test_scenario_validates_demand_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="demands.hubs"):
        scenario_from_dict({"demands": {"mode": "hubs"}})
    with pytest.raises(ValidationError, match="demands.file"):
        scenario_from_dict({"demands": {"mode": "explicit"}})
    with pytest.raises(ValidationError, match="demands.k"):
        scenario_from_dict({"demands": {"k": 0}})
    with pytest.raises(ValidationError, match="did you mean 'demands.k'"):
        scenario_from_dict({"demands": {"kk": 2}})
    sc = tmp_path / "sc.toml"
    sc.write_text('[demands]\nmode = "explicit"\nfile = "p.csv"\n', encoding="utf-8")
    assert load_scenario(sc).demands.file == str(tmp_path / "p.csv")
    assert DemandSettings().mode == "auto"
    assert load_scenario(Path("datasets/scenarios/default.toml")) == default_scenario().__class__(name="default")


def test_demand_pairs_all_pairs_count() -> None:
    g = _random_graph(9, 1)
    nodes = sorted(g.nodes)
    from planner.model.network import Network  # noqa: F401 - the all-pairs model never reads the network

    model = demand_pairs(None, {}, nodes, g, DemandSettings(mode="all_pairs"))  # type: ignore[arg-type]
    assert model.pairs == list(itertools.combinations(nodes, 2))
