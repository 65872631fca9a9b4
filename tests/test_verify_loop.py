"""Targets under full load, per-link key needs and the closed plan-verify loop.

Independent checks: the memory sizing against a direct search over unit counts with
Eq. 9 written out here; the full-load rates and the per-link key bits against what
``simulate_design`` computes with its own code; the loop on a small network, real
plan and simulation.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from planner.io.readers import read_network
from planner.model.scenario import default_scenario
from planner.pipeline import plan
from planner.simulate.design_check import simulate_design
from planner.stages.backbone import Backbone
from planner.stages.memory import demand_rates, load_sized_edges
from planner.stages.result import RepeaterResult
from planner.stages.verify_loop import (
    VerifyBudgets,
    next_trusted_budget,
    required_pool_bits,
    verify_loop,
    with_key_pool,
)
from reports.verify_sections import findings
from tests.helpers_net import write_sites_csv

REQUESTS = 12


def eq9(k: int, p: float, q: float, m: float) -> float:
    """Eq. 9 of the cluster paper written out (k = 1: m p)."""
    if k == 1:
        return m * p
    n = math.ceil(math.log2(k)) - 1
    if k % 2 == 0:
        return m * k * p * q ** (n + 1) / (2 * (k - 2**n) + q * (2 ** (n + 1) - k))
    return m * (k - 1) * p * q ** (n + 1) / (2 * (k - 2**n) + q * (2 ** (n + 1) - k - 1))


def _synthetic() -> tuple[Backbone, RepeaterResult]:
    links = pd.DataFrame(
        {
            "link_id": ["a", "b", "c"],
            "u": ["A", "B", "C"],
            "v": ["B", "C", "D"],
            "length_km": [50.0, 80.0, 30.0],
            "route": ["A;B", "B;C", "C;D"],
        }
    )
    demands = pd.DataFrame(
        {
            "demand_id": ["AB", "AC", "AD", "BD"],
            "source": ["A", "A", "A", "B"],
            "target": ["B", "C", "D", "D"],
            "path": ["", "", "", ""],
            "links": ["a", "a;b", "a;b;c", "b;c"],
            "length_km": [50.0, 130.0, 160.0, 110.0],
        }
    )
    rep = RepeaterResult()
    rep.set_chains(
        pd.DataFrame(
            {
                "link": ["a", "b", "c"],
                "repeaters": [0, 1, 0],
                "segment_km": [50.0, 40.0, 30.0],
                "p": [10 ** (-0.2 * x / 10) for x in (50.0, 40.0, 30.0)],
            }
        ),
        pd.DataFrame({"demand": ["AB", "AC", "AD", "BD"], "hops": [1, 3, 4, 3]}),
    )
    return Backbone(nodes=["A", "B", "C", "D"], links=links, demands=demands), rep


@pytest.mark.parametrize("target", [1e-3, 1e-2, 5e-2])
def test_edge_memory_is_the_least_that_meets_the_target_under_full_load(target: float) -> None:
    bb, rep = _synthetic()
    sc = default_scenario().with_overrides({"backbone.rate_target": target, "memory.max_units_per_node": 10_000})
    base = pd.Series(2, index=["a", "b", "c"])
    sized = load_sized_edges(bb, rep, sc, base)
    p = dict(zip(rep.tables["links"]["link"], rep.tables["links"]["p"], strict=True))
    hops = dict(zip(rep.tables["demands"]["demand"], rep.tables["demands"]["hops"], strict=True))
    paths = {d: lk.split(";") for d, lk in zip(bb.demands["demand_id"], bb.demands["links"], strict=True)}
    users = {lid: sum(lid in v for v in paths.values()) for lid in "abc"}
    q = sc.physics.q_swap

    def ok(units: dict[str, int]) -> bool:
        return all(
            min(eq9(hops[d], p[lid], q, units[lid] / users[lid]) for lid in lids) >= target * (1 - 1e-9)
            for d, lids in paths.items()
        )

    # direct search: each link's least units such that its own demands meet the target
    for lid in "abc":
        m = 2
        while not all(
            eq9(hops[d], p[lid], q, m / users[lid]) >= target * (1 - 1e-9) for d, lids in paths.items() if lid in lids
        ):
            m += 1
        assert int(sized[lid]) == m
    assert ok({k: int(v) for k, v in sized.items()})
    alone, shared = demand_rates(bb, rep, sc, sized)  # type: ignore[misc]
    assert (shared >= target * (1 - 1e-9)).all()
    for d, lids in paths.items():
        m_min = min(int(sized[x]) for x in lids)
        assert alone[d] == pytest.approx(eq9(hops[d], min(p[x] for x in lids), q, m_min))


def test_cap_leaves_a_stated_shortfall() -> None:
    bb, rep = _synthetic()
    sc = default_scenario().with_overrides({"backbone.rate_target": 5e-2, "memory.max_units_per_node": 3})
    sized = load_sized_edges(bb, rep, sc, pd.Series(2, index=["a", "b", "c"]))
    assert int(sized.max()) == 3
    _, shared = demand_rates(bb, rep, sc, sized)  # type: ignore[misc]
    assert (shared < 5e-2).any()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = write_sites_csv(tmp_path_factory.mktemp("net") / "sites.csv")
    sc = default_scenario()
    net = read_network(path, route_factor=sc.network.route_factor, drop_external=True)
    sc = sc.with_overrides({"security.trusted_budget": 1, "backbone.rate_target": 1e-2, "solver.time_limit_s": 30.0})
    design = plan(net, sc)
    need = required_pool_bits(design, REQUESTS)
    assert need is not None and need > 0
    design = with_key_pool(design, need)
    sim = simulate_design(design, requests=REQUESTS, network=net, backend="serial", latency_pairs=0)
    return net, sc, design, sim


def test_full_load_rates_agree_with_the_simulator(small) -> None:  # type: ignore[no-untyped-def]
    _, sc, design, sim = small
    pairs = pd.DataFrame(sim["pairs"])
    inter = pairs[pairs["kind"] == "inter-cluster"].set_index("pair")
    dem = design.demands.set_index("demand_id")
    assert "shortfall_full_load" in dem.columns and "rate_shared" in dem.columns
    checked = 0
    for d, row in inter.iterrows():
        if not (row["rate_simulated"] and row["rate_shared"]):
            continue
        factor = float(row["rate_shared"]) / float(row["rate_simulated"])  # the simulator's sharing factor
        assert float(row["rate_predicted"]) * factor == pytest.approx(float(dem.at[d, "rate_shared"]), rel=1e-6)
        assert float(dem.at[d, "rate_shared"]) >= sc.backbone.rate_target * (1 - 1e-9)
        assert float(dem.at[d, "shortfall_full_load"]) == 0.0
        checked += 1
    assert checked >= 3
    # the target binds: some link got more memory than edge_units
    assert int(design.links["memory_units"].max()) > sc.memory.edge_units


def test_key_bits_per_round_are_what_the_simulation_draws(small) -> None:  # type: ignore[no-untyped-def]
    _, _, design, sim = small
    t = sim["totals"]
    assert t["requests_blocked_pool"] == 0 and t["requests_served"] == REQUESTS * t["n_eps_met"] > 0
    f = design.fibre
    need = {
        (min(u, v), max(u, v)): int(b)
        for u, v, b in zip(f["u"], f["v"], f["key_bits_per_round"], strict=True)
        if int(b) > 0
    }
    used = {(min(x["u"], x["v"]), max(x["u"], x["v"])): int(x["consumed_bits"]) for x in sim["links"]}
    assert used == {k: REQUESTS * b for k, b in need.items()}


def test_next_trusted_budget_grows_with_misses_and_respects_the_cap() -> None:
    assert next_trusted_budget(3, 120, 24, 50) == 6
    assert next_trusted_budget(10, 100, 90, 50) == 12
    assert next_trusted_budget(0, 10, 0, 50) == 1
    assert next_trusted_budget(40, 100, 0, 50) == 50


def test_loop_meets_targets_on_a_small_network(tmp_path: Path) -> None:
    path = write_sites_csv(tmp_path / "sites.csv")
    sc = default_scenario()
    net = read_network(path, route_factor=sc.network.route_factor, drop_external=True)
    sc = sc.with_overrides({"security.trusted_budget": 0, "security.key_pool_bits": 1000, "solver.time_limit_s": 30.0})
    out = verify_loop(
        net,
        sc,
        rounds=5,
        requests=REQUESTS,
        simulate_fn=lambda d, **kw: simulate_design(d, backend="serial", latency_pairs=0, **kw),
    )
    first, last = out.rounds[0], out.rounds[-1]
    assert first.demands_meeting_eps < first.n_demands  # budget 0 cannot reach eps
    assert out.met and last.met and len(out.rounds) >= 2
    assert last.demands_meeting_eps >= 0.95 * last.n_demands
    assert last.requests_served >= 0.9 * last.requests
    assert last.trusted_budget > 0 and last.key_pool_bits > 1000
    t = out.simulation["totals"]
    assert t["n_eps_met"] == last.demands_meeting_eps and t["requests_served"] == last.requests_served
    assert out.design.scenario["security"]["eps"] == sc.security.eps  # security settings untouched
    assert out.design.metrics["verify_rounds"][-1]["met"] is True


def test_loop_names_the_budget_when_out_of_reach(tmp_path: Path) -> None:
    path = write_sites_csv(tmp_path / "sites.csv")
    sc = default_scenario()
    net = read_network(path, route_factor=sc.network.route_factor, drop_external=True)
    sc = sc.with_overrides({"security.trusted_budget": 0, "backbone.mode": "trusted", "solver.time_limit_s": 30.0})
    out = verify_loop(
        net,
        sc,
        rounds=3,
        requests=REQUESTS,
        budgets=VerifyBudgets(max_trusted=0),
        simulate_fn=lambda d, **kw: simulate_design(d, backend="serial", latency_pairs=0, **kw),
    )
    assert not out.met and len(out.rounds) == 1
    assert any("trusted-relay budget at its limit (0)" in v for v in out.verdict)
    assert any("NOT met" in x for x in findings(out.design, out.simulation))


def test_served_below_90_percent_is_a_finding(small) -> None:  # type: ignore[no-untyped-def]
    _, _, design, sim = small
    high = {**sim, "totals": {**sim["totals"], "requests": 100, "requests_served": 90}}
    assert not any("simulated key requests" in x for x in findings(design, high))
    low = {**sim, "totals": {**sim["totals"], "requests": 100, "requests_served": 89}}
    assert any("Only 89 of 100" in x for x in findings(design, low))


def test_cli_rejects_zero_rounds_without_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qkdplan.cli import main

    path = write_sites_csv(tmp_path / "sites.csv")
    out = tmp_path / "run"
    assert main(["plan", str(path), "--out", str(out), "--verify", "--verify-rounds", "0"]) == 2
    assert "--verify-rounds 0" in capsys.readouterr().err
    assert not out.exists()


def test_rate_short_under_full_load_raises_the_memory_cap(small) -> None:  # type: ignore[no-untyped-def]
    from planner.stages.verify_loop import VerifyTargets, _adjust, evaluate

    net, sc, design, sim = small
    pairs = pd.DataFrame(sim["pairs"])
    shared = pd.to_numeric(pairs.loc[pairs["kind"] == "inter-cluster", "rate_shared"], errors="coerce").dropna()
    target = float(shared.median())
    hard = sc.with_overrides({"backbone.rate_target": target})
    ev = evaluate(design, sim, hard, VerifyTargets())
    assert ev["short"] == int((shared < target * (1 - 1e-9)).sum()) > 0 and not ev["rate_ok"]
    nxt, changes, stuck = _adjust(hard, ev, VerifyBudgets(max_memory_units=1024), net, VerifyTargets())
    assert nxt is not None and nxt.memory.max_units_per_node == 2 * hard.memory.max_units_per_node
    assert any("memory per link cap" in c for c in changes)
    capped = hard.with_overrides({"memory.max_units_per_node": 1024})
    _, _, stuck = _adjust(capped, ev, VerifyBudgets(max_memory_units=1024), net, VerifyTargets())
    assert any("rate:" in s and "1024 memory units" in s for s in stuck)


def test_new_columns_survive_the_design_json_round_trip(small) -> None:  # type: ignore[no-untyped-def]
    import json

    from planner.model.design import Design
    from tests.helpers_design import assert_same_design

    _, _, design, _ = small
    assert {"key_bits_per_round", "key_pool_bits", "rounds_supported"} <= set(design.fibre.columns)
    assert_same_design(design, Design.from_dict(json.loads(json.dumps(design.to_dict()))))
