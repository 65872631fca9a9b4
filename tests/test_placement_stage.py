"""Backbone option ``backbone.repeaters = "placement"``: stage vs brute force and the independent checker."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.sparse.csgraph import shortest_path

from planner import physics
from planner.errors import InfeasibleDesignError
from planner.model.network import Network, make_links, make_sites
from planner.model.scenario import default_scenario
from planner.stages.backbone import Backbone
from planner.stages.placement import placement_max_link_km, plan_placement
from tests.oracles.placement_check import check_placement


def _network(seed: int, n: int = 8) -> Network:
    """Random connected fibre graph of ``n`` sites: a path through all sites plus random chords."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "name": ids,
            "kind": "site",
            "demand": 1.0,
            "lat": 52.0 + rng.uniform(0, 1, n),
            "lon": 5.0 + rng.uniform(0, 1, n),
        },
        index=pd.Index(ids, name="site_id"),
    )
    sites = make_sites(frame)
    pairs = {(i, i + 1) for i in range(n - 1)}
    for _ in range(n):
        a, b = sorted(rng.choice(n, 2, replace=False).tolist())
        pairs.add((a, b))
    rows = [(f"L{k}", ids[a], ids[b], float(rng.uniform(30, 110))) for k, (a, b) in enumerate(sorted(pairs))]
    table = pd.DataFrame(rows, columns=["link_id", "u", "v", "length_km"]).assign(
        length_source="stated", candidate=False
    )
    return Network("tiny", sites, make_links(table, sites), "in-memory")


def _backbone(ends: list[str]) -> Backbone:
    rows = [
        {"demand_id": f"{a}~{b}", "source": a, "target": b, "path": f"{a};{b}", "links": "", "length_km": 0.0}
        for a, b in itertools.combinations(sorted(ends), 2)
    ]
    return Backbone(
        nodes=sorted(ends),
        links=pd.DataFrame(columns=["link_id", "u", "v", "length_km", "route"]),
        demands=pd.DataFrame(rows),
    )


def _all_pairs_km(net: Network) -> tuple[list[str], np.ndarray]:
    ids = net.site_ids()
    index = {s: i for i, s in enumerate(ids)}
    w = np.full((len(ids), len(ids)), np.inf)
    for r in net.links.itertuples(index=False):
        a, b = index[r.u], index[r.v]
        w[a, b] = w[b, a] = min(w[a, b], float(r.length_km))
    w[~np.isfinite(w)] = 0.0  # scipy: 0 = no edge in a dense matrix
    return ids, shortest_path(w, directed=False)


def brute_force_repeaters(net: Network, ends: list[str], l_max: float, n_max: int) -> int | None:
    """Fewest repeater sites such that every pair of ends has a path of <= n_max repeaters, hops <= l_max."""
    ids, dist = _all_pairs_km(net)
    index = {s: i for i, s in enumerate(ids)}
    cand = [index[s] for s in ids if s not in ends]
    e_idx = [index[s] for s in ends]
    for size in range(len(cand) + 1):
        for subset in itertools.combinations(cand, size):
            allowed = set(subset)
            ok = True
            for s, t in itertools.combinations(e_idx, 2):
                # BFS on hop count through allowed repeaters
                frontier, seen, found = {s}, {s}, False
                for _ in range(n_max + 1):
                    if any(dist[u, t] <= l_max + 1e-9 for u in frontier):
                        found = True
                        break
                    frontier = {v for u in frontier for v in allowed - seen if dist[u, v] <= l_max + 1e-9}
                    seen |= frontier
                if not found:
                    ok = False
                    break
            if ok:
                return size
    return None


def _scenario(target: float, n_max: int = 2, memory: int = 2):
    return default_scenario().with_overrides(
        {
            "backbone.rate_target": target,
            "backbone.repeaters": "placement",
            "backbone.placement_max_repeaters": n_max,
            "memory.edge_units": memory,
            "solver.time_limit_s": 30.0,
        }
    )


def test_max_link_is_the_longest_hop_meeting_the_target() -> None:
    sc = _scenario(2e-3, n_max=3, memory=2)
    l_max, n_max = placement_max_link_km(sc)
    assert n_max == 3
    ph = sc.physics
    p = physics.link_success_probability(l_max, alpha_db_per_km=ph.alpha_db_per_km)
    at = physics.chain_distribution_ratio(n_max + 1, p=p, q=ph.q_swap, memory=2)
    assert at == pytest.approx(2e-3, rel=1e-9)
    p_long = physics.link_success_probability(l_max * 1.001, alpha_db_per_km=ph.alpha_db_per_km)
    assert physics.chain_distribution_ratio(n_max + 1, p=p_long, q=ph.q_swap, memory=2) < 2e-3
    # fewer hops at the same worst hop still meet it (g non-increasing in k)
    for k in range(1, n_max + 1):
        assert physics.chain_distribution_ratio(k, p=p, q=ph.q_swap, memory=2) >= 2e-3 * (1 - 1e-12)


def test_unreachable_hop_counts_are_dropped_and_impossible_targets_refused() -> None:
    # M g(k) with M = 1, q = 0.6: g(2) = 0.6, g(3) = 0.6 * 2 * 0.6**2 / ... < 0.6; a target of 0.5 allows k <= 2
    sc = _scenario(0.5, n_max=4, memory=1)
    l_max, n_max = placement_max_link_km(sc)
    assert n_max == 1 and l_max > 0
    assert physics.chain_distribution_ratio(3, p=1.0, q=0.6, memory=1) < 0.5
    impossible = _scenario(2.0, n_max=2, memory=1)
    assert math.isnan(placement_max_link_km(impossible)[0])
    net = _network(0)
    with pytest.raises(InfeasibleDesignError, match="rate target"):
        plan_placement(net, _backbone(["s0", "s7"]), impossible)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6, 7])
def test_stage_matches_brute_force_and_checker(seed: int) -> None:
    net = _network(seed)
    ends = ["s0", "s3", "s7"]
    target = 5e-3
    sc = _scenario(target, n_max=2, memory=2)
    l_max, n_max = placement_max_link_km(sc)
    expected = brute_force_repeaters(net, ends, l_max, n_max)
    if expected is None:
        with pytest.raises(InfeasibleDesignError):
            plan_placement(net, _backbone(ends), sc)
        return
    bb, stage = plan_placement(net, _backbone(ends), sc)
    assert stage.metrics["n_repeaters"] == expected
    # independent checker on the paths the design will use
    ids, dist = _all_pairs_km(net)
    index = {s: i for i, s in enumerate(ids)}
    dist_table = pd.DataFrame(
        [(a, b, dist[index[a], index[b]]) for a, b in itertools.combinations(ids, 2)],
        columns=["node_a", "node_b", "distance_km"],
    )
    paths = pd.DataFrame(
        {
            "node_a": bb.demands["source"],
            "node_b": bb.demands["target"],
            "path_index": 0,
            "nodes": [tuple(p.split(";")) for p in bb.demands["path"]],
        }
    )
    reps = stage.tables["repeater_sites"]["site_id"].tolist()
    assert (
        check_placement(
            nodes=ids,
            end_nodes=ends,
            distance_km=dist_table,
            repeaters=reps,
            paths=paths,
            max_link_km=l_max,
            max_repeaters_per_path=n_max,
            capacity_sessions=10,
            robustness_paths=1,
        )
        == []
    )
    # every demand meets the rate target, hop counts and elementary-link lengths agree with the paths
    rates = stage.tables["demands"].set_index("demand")
    links = bb.links.set_index("link_id")
    for d in bb.demands.itertuples(index=False):
        seq = d.path.split(";")
        assert rates.at[d.demand_id, "hops"] == len(seq) - 1
        assert rates.at[d.demand_id, "rate"] >= target * (1 - 1e-12)
        for lid, (u, v) in zip(d.links.split(";"), itertools.pairwise(seq), strict=True):
            assert links.at[lid, "length_km"] == pytest.approx(dist[index[u], index[v]])
            assert links.at[lid, "length_km"] <= l_max + 1e-9
    # the typed result: the checked repeater sites with their sessions, the limits and the chain figures
    assert sorted(stage.repeater_sessions.index) == sorted(reps)
    assert int(stage.repeater_sessions.sum()) == sum(len(p.split(";")) - 2 for p in bb.demands["path"])
    assert (stage.max_link_km, stage.max_repeaters_per_path) == (l_max, n_max)
    for d in bb.demands.itertuples(index=False):
        assert stage.demand_hops[d.demand_id] == len(d.path.split(";")) - 1
        assert stage.demand_rate[d.demand_id] == rates.at[d.demand_id, "rate"]
    assert (stage.link_repeaters == 0).all() and sorted(stage.link_p.index) == sorted(links.index)


def test_brute_force_cases_need_repeaters() -> None:
    """The parametrised instances are not trivial: at least one needs repeaters and one needs none."""
    counts = []
    for seed in [1, 2, 3, 4, 5, 6, 7]:
        sc = _scenario(5e-3, n_max=2, memory=2)
        l_max, n_max = placement_max_link_km(sc)
        counts.append(brute_force_repeaters(_network(seed), ["s0", "s3", "s7"], l_max, n_max))
    assert any(c is not None and c >= 2 for c in counts) and 0 in counts


def test_plan_with_placement_passes_the_simulation_check(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from planner.io.readers import read_network
    from planner.pipeline import plan
    from planner.simulate.design_check import simulate_design
    from tests.helpers_net import write_sites_csv

    sc = default_scenario().with_overrides(
        {"backbone.repeaters": "placement", "backbone.rate_target": 1e-4, "solver.time_limit_s": 30.0}
    )
    net = read_network(write_sites_csv(tmp_path / "sites.csv"), route_factor=1.3, drop_external=True)
    design = plan(net, sc)
    assert design.metrics["repeater_model"] == "placement"
    assert design.metrics["n_repeaters"] == len(design.metrics["placement_repeater_sites"])
    l_max = design.metrics["placement_max_link_km"]
    assert (design.links["length_km"] <= l_max + 1e-9).all() and (design.links["repeaters"] == 0).all()
    assert (design.demands["rate"] >= 1e-4 * (1 - 1e-12)).all()
    sim = simulate_design(design, requests=10, network=net, backend="serial", latency_pairs=0)
    assert sim["totals"]["n_flagged"] == 0
    assert sim["totals"]["n_inter_cluster"] == len(design.demands) > 0
