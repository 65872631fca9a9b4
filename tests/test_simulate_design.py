"""Simulation check of a planned design: agreement on a correct design, flags on wrong predictions."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_net import write_sites_csv

from planner.errors import ValidationError
from planner.io.readers import read_network
from planner.model.design import Design
from planner.model.network import Network
from planner.model.scenario import default_scenario
from planner.pipeline import plan
from planner.simulate.design_check import (
    DEFAULT_TOLERANCE,
    PAIR_COLUMNS,
    REQUEST_KEY_BITS,
    SimulationResult,
    SimulationSamples,
    fibre_graph,
    simulate_design,
    wilson_interval,
    write_simulation_files,
)
from planner.simulate.traffic import pool_traffic

# no trusted relays: every demand relays through untrusted sites, so security < 1 and the
# eavesdropper has work to do; r < 1 makes the access Monte Carlo random (binomial sifting)
SCENARIO = default_scenario().with_overrides(
    {
        "access.reach_km": 40.0,
        "access.r_mdi": 0.5,
        "access.r_ekr": 0.75,
        "security.trusted_budget": 0,
        "security.p_untrusted": 0.7,
        "solver.time_limit_s": 30.0,
    }
)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Design, Network]:
    f = write_sites_csv(tmp_path_factory.mktemp("net") / "sites.csv")
    network = read_network(f)
    return plan(network, SCENARIO, seed=3), network


@pytest.fixture(scope="module")
def sim(planned: tuple[Design, Network]) -> dict:
    design, network = planned
    return simulate_design(design, network=network, requests=200, seed=1, backend="serial")


def _rows(sim: dict) -> pd.DataFrame:
    return pd.DataFrame(sim["pairs"]).set_index("pair")


def test_correct_design_agrees_with_its_simulation(planned: tuple[Design, Network], sim: dict) -> None:
    design, _ = planned
    rows = _rows(sim)
    assert list(pd.DataFrame(sim["pairs"]).columns) == PAIR_COLUMNS
    assert len(rows) == len(design.clusters) + len(design.demands)
    assert not rows["flagged"].any(), rows.loc[rows["flagged"], "flag_reason"].to_dict()
    assert sim["totals"]["n_flagged"] == 0 and sim["tolerance"] == DEFAULT_TOLERANCE
    inter = rows[rows["kind"] == "inter-cluster"]
    intra = rows[rows["kind"] == "intra-cluster"]
    assert len(inter) == len(design.demands) >= 3 and len(intra) == len(design.clusters) >= 2
    # every estimate is a real Monte Carlo figure with a CI that contains the prediction
    for frame, pred in ((inter, "rate_predicted"), (intra, "rate_predicted")):
        assert (frame["rate_ci_low"] < frame["rate_ci_high"]).all()
        assert (frame["rate_ci_low"] <= frame[pred]).all() and (frame[pred] <= frame["rate_ci_high"]).all()
        assert (frame["rate_rel_error"].abs() <= DEFAULT_TOLERANCE["rate_rel"]).all()
    # the design has untrusted relays: security below 1 on some pairs, checked on real bytes
    assert (inter["security_predicted"] < 0.99).sum() >= 2
    assert (
        (inter["security_simulated"] - inter["security_predicted"]).abs() <= DEFAULT_TOLERANCE["security_abs"]
    ).all()
    assert (inter["security_trials"] == 200 * 10).all()
    # SMR re-run on the fibre graph reproduces the stated security exactly
    np.testing.assert_allclose(inter["security_route"], inter["security_predicted"], rtol=1e-9)
    # the chain was rebuilt from the links table, consistent with the demands table
    d = design.demands.set_index("demand_id")
    assert (inter["hops"].astype(int) == d.loc[inter.index, "hops"].astype(int)).all()


def test_intra_cluster_estimates_match_eq6(sim: dict) -> None:
    acc = SCENARIO.access
    for c in sim["clusters"]:
        eq6 = acc.r_mdi * c["memory_master"] + acc.r_ekr * c["memory_slave"] * (c["n_slaves"] // 2)
        assert c["keys_eq6"] == pytest.approx(eq6)
        assert c["keys_predicted"] == pytest.approx(eq6)
        assert c["keys_ci_low"] <= eq6 <= c["keys_ci_high"]


def test_doubled_rate_prediction_is_flagged(planned: tuple[Design, Network]) -> None:
    design, network = planned
    wrong = copy.deepcopy(design)
    target = str(wrong.demands.loc[0, "demand_id"])
    wrong.demands.loc[0, "rate"] = 2.0 * float(wrong.demands.loc[0, "rate"])
    rows = _rows(simulate_design(wrong, network=network, requests=50, seed=1, backend="serial", latency_pairs=0))
    assert rows.loc[target, "flagged"]
    assert "rate" in rows.loc[target, "flag_reason"]
    assert rows.loc[target, "rate_rel_error"] == pytest.approx(-0.5, abs=0.05)
    assert rows["flagged"].sum() == 1


def test_wrong_security_and_wrong_cluster_keys_are_flagged(planned: tuple[Design, Network]) -> None:
    design, network = planned
    wrong = copy.deepcopy(design)
    i = int(wrong.demands["security"].astype(float).idxmin())
    target = str(wrong.demands.loc[i, "demand_id"])
    wrong.demands.loc[i, "security"] = float(wrong.demands.loc[i, "security"]) - 0.15
    wrong.clusters.loc[0, "keys_per_attempt"] = 2.0 * float(wrong.clusters.loc[0, "keys_per_attempt"])
    cluster = f"cluster {wrong.clusters.loc[0, 'cluster']}"
    rows = _rows(simulate_design(wrong, network=network, requests=100, seed=2, backend="serial", latency_pairs=0))
    assert rows.loc[target, "flagged"] and "security" in rows.loc[target, "flag_reason"]
    assert rows.loc[target, "security_abs_error"] == pytest.approx(0.15, abs=0.06)
    assert rows.loc[cluster, "flagged"] and "rate" in rows.loc[cluster, "flag_reason"]
    assert rows["flagged"].sum() == 2


def test_smr_worse_than_a_single_path_is_flagged(planned: tuple[Design, Network]) -> None:
    design, network = planned
    wrong = copy.deepcopy(design)
    i = int(wrong.demands["security"].astype(float).idxmin())
    target = str(wrong.demands.loc[i, "demand_id"])
    wrong.demands.loc[i, "security_single_path"] = min(1.0, float(wrong.demands.loc[i, "security"]) + 0.2)
    rows = _rows(simulate_design(wrong, network=network, requests=20, seed=0, backend="serial", latency_pairs=0))
    assert rows.loc[target, "flagged"] and rows.loc[target, "flag_reason"].startswith("routing:")
    # the same draws on the unchanged design: the wrong single-path figure adds exactly that flag
    # (at 20 requests a pair may also fall outside its 99% interval by chance, on both designs alike)
    base = _rows(simulate_design(design, network=network, requests=20, seed=0, backend="serial", latency_pairs=0))
    assert not base.loc[target, "flag_reason"].startswith("routing:")
    assert set(rows.index[rows["flagged"]]) == set(base.index[base["flagged"]]) | {target}
    assert sum("routing:" in str(r) for r in rows["flag_reason"]) == 1


def test_hopeless_chain_is_noted_not_flagged(planned: tuple[Design, Network]) -> None:
    design, network = planned
    odd = copy.deepcopy(design)
    odd.links["spacing_km"] = odd.links["spacing_km"].astype(float)
    odd.links.loc[0, "spacing_km"] = 1000.0  # p = 1e-20
    odd.links.loc[0, "p_link"] = 1e-20
    lid = str(odd.links.loc[0, "link_id"])
    uses = odd.demands["links"].str.split(";").apply(lambda ids: lid in ids)
    odd.demands["p_worst"] = odd.demands["p_worst"].astype(float)
    odd.demands.loc[uses, "p_worst"] = 1e-20
    out = simulate_design(odd, network=network, requests=20, seed=0, backend="serial", latency_pairs=0)
    rows = _rows(out)
    hit = rows.loc[odd.demands.loc[uses, "demand_id"]]
    assert len(hit) >= 1 and hit["note"].str.startswith("rate not simulated").all()
    assert hit["rate_simulated"].isna().all() and not hit["flagged"].any()
    assert out["totals"]["n_rate_not_simulated"] == len(hit)


def test_inconsistent_hop_count_is_flagged(planned: tuple[Design, Network]) -> None:
    design, network = planned
    wrong = copy.deepcopy(design)
    wrong.demands["hops"] = wrong.demands["hops"].astype(int)
    wrong.demands.loc[1, "hops"] = int(wrong.demands.loc[1, "hops"]) + 1
    target = str(wrong.demands.loc[1, "demand_id"])
    rows = _rows(simulate_design(wrong, network=network, requests=20, seed=0, backend="serial", latency_pairs=0))
    assert rows.loc[target, "flagged"] and "demands.hops" in rows.loc[target, "flag_reason"]


def test_same_seed_same_result_for_every_backend(planned: tuple[Design, Network], sim: dict) -> None:
    design, network = planned
    kw = {"network": network, "requests": 30, "latency_pairs": 1}
    serial = simulate_design(design, seed=1, backend="serial", **kw)
    again = simulate_design(design, seed=1, backend="process", workers=2, **kw)
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(serial.to_dict(), sort_keys=True)
    assert again == serial  # equal results compare equal as mappings
    other = simulate_design(design, seed=2, backend="serial", **kw)
    assert [p["rate_simulated"] for p in other["pairs"]] != [p["rate_simulated"] for p in serial["pairs"]]
    assert serial["seed"] == 1 and other["seed"] == 2


def test_latency_is_simulated_for_the_slowest_pairs(planned: tuple[Design, Network], sim: dict) -> None:
    inter = _rows(sim)
    inter = inter[inter["kind"] == "inter-cluster"]
    with_lat = inter.dropna(subset=["latency_first_pair_s"])
    assert len(with_lat) == min(len(inter), sim["samples"]["latency_pairs"]) >= 1
    assert (with_lat["latency_ci_low_s"] <= with_lat["latency_first_pair_s"]).all()
    assert (with_lat["rate_physical"] > 0).all()
    # steady-state time between pairs: slot / simulated rate; a slot is the attempt time or the
    # flight time over the demand's longest segment, whichever is longer
    design, _ = planned
    ph = SCENARIO.physics
    spacing = design.links.set_index("link_id")["spacing_km"].astype(float)
    longest = {r.demand_id: max(spacing[x] for x in r.links.split(";")) for r in design.demands.itertuples()}
    slot = np.array([max(ph.attempt_time_s, longest[p] / ph.speed_km_per_s) for p in inter.index])
    np.testing.assert_allclose(inter["time_per_pair_s"], slot / inter["rate_simulated"], rtol=1e-9)
    assert (slot > ph.attempt_time_s).any()  # the 60-100 km hops take longer than 145 us


def test_key_pool_traffic_by_hand() -> None:
    """Two pairs sharing link (a, b); pool 4096 bits; block = 256/m bits per path key."""
    results = [
        {"eps_met": True, "global_keys": 1, "link_load": [["a", "b", 2], ["b", "c", 1]]},  # 512 bits on a-b
        {"eps_met": True, "global_keys": 2, "link_load": [["a", "b", 1]]},  # 128 bits on a-b
        {"eps_met": False, "global_keys": 0, "link_load": []},
    ]
    pairs, links = pool_traffic(results, [10, 10, 5], 4096, np.random.default_rng(0))
    served = [p["requests_served"] for p in pairs]
    used_ab = 512 * served[0] + 128 * served[1]
    assert used_ab <= 4096 and 4096 - used_ab < 512 + 128  # no further request of pair 0 AND pair 1 fits
    assert served[0] + pairs[0]["requests_blocked_pool"] == 10
    assert pairs[2] == {
        "requests": 5,
        "requests_served": 0,
        "requests_refused_eps": 5,
        "requests_blocked_pool": 0,
        "key_bits_delivered": 0,
        "link_bits_consumed": 0,
        "key_pool_depletion": None,
        "served_before_pool_block": None,
    }
    assert pairs[1]["key_bits_delivered"] == served[1] * REQUEST_KEY_BITS
    ab = next(x for x in links if (x["u"], x["v"]) == ("a", "b"))
    assert ab["consumed_bits"] == used_ab and ab["pairs_using"] == 2
    bc = next(x for x in links if (x["u"], x["v"]) == ("b", "c"))
    assert bc["consumed_bits"] == 256 * served[0]


def test_wilson_interval_closed_form() -> None:
    k, n, z = 37, 120, 2.5758293035489004
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson_interval(k, n, level=0.99) == pytest.approx((centre - half, centre + half), rel=1e-9)


def test_files_are_written_deterministically(sim: dict, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    files = write_simulation_files(sim, a)
    write_simulation_files(json.loads(json.dumps(sim.to_dict())), b)
    assert sorted(p.name for p in files) == [
        "simulation.json",
        "simulation_clusters.csv",
        "simulation_links.csv",
        "simulation_pairs.csv",
    ]
    for p in files:
        assert p.read_bytes() == (b / p.name).read_bytes()
    data = json.loads((a / "simulation.json").read_text())
    assert list(data) == sorted(data) and data["seed"] == 1
    pairs = pd.read_csv(a / "simulation_pairs.csv")
    assert list(pairs.columns) == PAIR_COLUMNS and len(pairs) == len(sim["pairs"])


def _edges(g: object) -> set[frozenset]:
    return {frozenset(e) for e in g.edges}  # type: ignore[attr-defined]


def test_fibre_graph_is_rebuilt_from_the_design(planned: tuple[Design, Network]) -> None:
    design, network = planned
    full, source, exact = fibre_graph(design, SCENARIO, network=network)
    assert source == "network given" and exact
    # the design stores the fibre links it was planned on
    stored, source, exact = fibre_graph(design, SCENARIO)
    assert exact and "fibre table" in source
    assert _edges(stored) == _edges(full)
    # without that table (older designs): a CSV of sites has no links, so the pipeline's
    # candidate links are rebuilt exactly
    no_table = copy.deepcopy(design)
    no_table.fibre = no_table.fibre.iloc[0:0]
    rebuilt, source, exact = fibre_graph(no_table, SCENARIO)
    assert exact and "candidate links" in source
    assert _edges(rebuilt) == _edges(full)
    # a route over a fibre the rebuilt graph lacks: only the routes are known -> approximate
    broken = copy.deepcopy(no_table)
    far = sorted(set(full.nodes) - set(full.adj["A1"]) - {"A1"})[0]
    broken.links.loc[0, "route"] = f"A1;{far}"
    routes, source, exact = fibre_graph(broken, SCENARIO)
    assert not exact and "routes only" in source
    assert _edges(routes) <= _edges(full) | {frozenset(("A1", far))}
    out = simulate_design(broken, requests=20, seed=0, backend="serial", latency_pairs=0)
    assert out["totals"]["security_verified"] is False
    assert not any("security" in p["flag_reason"] for p in out["pairs"])


def test_duration_mode_sets_sample_sizes(planned: tuple[Design, Network]) -> None:
    design, network = planned
    out = simulate_design(design, network=network, duration_s=2.0, seed=0, backend="serial", latency_pairs=0)
    assert out["samples"]["duration_s"] == 2.0 and out["samples"]["requests"] is None
    assert out["samples"]["access_slots"] == round(2.0 / SCENARIO.physics.attempt_time_s)
    inter = _rows(out)
    inter = inter[inter["kind"] == "inter-cluster"]
    expected = (2.0 / SCENARIO.physics.attempt_time_s * inter["rate_predicted"]).round().clip(lower=100)
    assert (inter["chain_cycles"] == expected).all()
    assert not inter["flagged"].any()


@pytest.mark.parametrize(
    "kwargs", [{"requests": 1}, {"duration_s": -1.0}, {"seed": -3}, {"latency_pairs": -1}, {"tolerance": {"rate": 0.1}}]
)
def test_bad_settings_are_rejected(planned: tuple[Design, Network], kwargs: dict) -> None:
    design, network = planned
    with pytest.raises(ValidationError):
        simulate_design(design, network=network, backend="serial", **kwargs)


def test_summary_lines_state_the_totals(sim: dict) -> None:
    from planner.simulate.design_check import REPORT_COLUMNS, summary_lines

    lines = summary_lines(sim)
    t = sim["totals"]
    assert lines[0].startswith(f"0 of {t['n_pairs']} pairs flagged")
    assert any(f"served {t['requests_served']} of {t['requests']}" in x for x in lines)
    assert any(x.startswith("Eq. 10 latency is") for x in lines)
    assert set(REPORT_COLUMNS) <= set(PAIR_COLUMNS)


def test_shared_router_routes_every_demand_as_smr_does(planned: tuple[Design, Network]) -> None:
    from planner.physics import PhysicsParameters
    from planner.routing import route_smr, smr
    from planner.simulate.demand_work import DemandContext, shared_router
    from planner.simulate.design_check import _scenario

    design, network = planned
    graph, _, exact = fibre_graph(design, _scenario(design), network=network)
    assert exact
    r = design.relays
    trusted = frozenset(r.loc[r["trusted"].astype(bool), "site_id"].astype(str))
    security = {str(s): float(p) for s, p in zip(r["site_id"], r["p_untrusted"], strict=True)}
    physics = PhysicsParameters(
        alpha_db_per_km=0.2, speed_km_per_s=2e5, q_swap=1.0, t_mea_s=0.0, t_ret_s=0.0, attempt_time_s=1e-3
    )
    ctx = DemandContext(graph=graph, trusted=trusted, security=security, eps=0.1, physics=physics, level=0.99)
    router = shared_router(ctx)
    pairs = list(zip(design.demands["source"].astype(str), design.demands["target"].astype(str), strict=True))
    assert len(pairs) >= 3
    for s, t in pairs + pairs[::-1]:  # the second pass reads the router's caches
        assert route_smr(router, s, t, None, None) == smr(graph, s, t, trusted=trusted, security=security)


def test_typed_result_and_its_json_form_agree(sim: SimulationResult) -> None:
    form = sim.to_dict()
    assert list(form) == [
        "schema_version",
        "network",
        "scenario",
        "seed",
        "level",
        "tolerance",
        "samples",
        "pairs",
        "clusters",
        "links",
        "totals",
        "worst",
        "notes",
    ]
    assert json.loads(json.dumps(form, allow_nan=False)) == form  # plain JSON data
    assert dict(sim) == form and sim == form  # the mapping view is the JSON form
    assert isinstance(sim.samples, SimulationSamples) and form["samples"] == sim.samples.to_dict()
    assert sim.samples.requests == 200 and sim.samples.latency_pairs == form["samples"]["latency_pairs"]
    assert sim.totals["n_pairs"] == len(sim.pairs) == len(form["pairs"])
    assert sim.seed == 1 and sim.level == form["level"] and sim.notes == form["notes"]
    form["notes"] = []  # to_dict gives a new top-level dict: the result is not changed through it
    assert sim.notes and sim["notes"] == sim.notes
