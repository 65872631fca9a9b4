"""Fibre key needs of the memory stage: routed within the stage's time, exact when complete, lower bounds when not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner.keys.pools import key_bits_from_routes, link_key_bits_per_round
from planner.model.scenario import Scenario
from planner.routing import smr
from planner.stages.backbone import Backbone
from planner.stages.key_pools import key_pool_table
from planner.stages.result import StageResult
from planner.topology.generators import waxman_network
from solvers.base import stage_budget


@pytest.fixture(scope="module")
def instance() -> tuple[object, Backbone, StageResult]:
    """A 60-site Waxman network, 40 demands between random site pairs, 6 trusted relays."""
    network = waxman_network(60, seed=3)
    ids = [str(s) for s in network.site_ids()]
    rng = np.random.default_rng(7)
    pairs = {tuple(sorted(rng.choice(ids, size=2, replace=False))) for _ in range(60)}
    pairs_l = sorted(pairs)[:40]
    demands = pd.DataFrame(
        {
            "demand_id": [f"d{i}" for i in range(len(pairs_l))],
            "source": [s for s, _ in pairs_l],
            "target": [t for _, t in pairs_l],
        }
    )
    backbone = Backbone(nodes=ids, links=pd.DataFrame(columns=["link_id", "u", "v", "length_km"]), demands=demands)
    trusted = set(rng.choice(ids, size=6, replace=False))
    relays = pd.DataFrame({"site_id": ids, "trusted": [s in trusted for s in ids], "p_untrusted": 0.3})
    return network, backbone, StageResult(tables={"relays": relays})


def _per_demand_reference(network, backbone: Backbone, trust: StageResult, eps: float) -> pd.DataFrame:
    """The table from :func:`smr` called afresh per demand (no shared router, no blocks)."""
    r = trust.tables["relays"]
    trusted = set(r.loc[r["trusted"], "site_id"])
    security = dict(zip(r["site_id"], r["p_untrusted"], strict=True))
    pairs = list(zip(backbone.demands["source"], backbone.demands["target"], strict=True))
    g = network.graph()
    routes = [smr(g, s, t, trusted=trusted, security=security) for s, t in pairs]
    links, _ = key_bits_from_routes(pairs, routes, eps=eps)
    return links


def test_complete_table_equals_per_demand_smr(instance) -> None:
    network, backbone, trust = instance
    scenario = Scenario()
    table = key_pool_table(network, backbone, trust, scenario, seed=1)
    assert table is not None and table.complete and table.routed == table.total == len(backbone.demands)
    want = _per_demand_reference(network, backbone, trust, scenario.security.eps)
    assert len(want) > 0
    got = table.links[["u", "v", "key_bits_per_round", "demands_using"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)
    # the shared-router convenience function gives the same table
    r = trust.tables["relays"]
    shared, _ = link_key_bits_per_round(
        network.graph(),
        list(zip(backbone.demands["source"], backbone.demands["target"], strict=True)),
        trusted=set(r.loc[r["trusted"], "site_id"]),
        security=dict(zip(r["site_id"], r["p_untrusted"], strict=True)),
        eps=scenario.security.eps,
    )
    pd.testing.assert_frame_equal(shared.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    assert (
        table.links["rounds_supported"] == scenario.security.key_pool_bits // table.links["key_bits_per_round"]
    ).all()


def test_out_of_time_gives_a_sample_and_lower_bounds(instance) -> None:
    network, backbone, trust = instance
    scenario = Scenario()
    full = _per_demand_reference(network, backbone, trust, scenario.security.eps)
    with stage_budget("memory", 0.0):
        table = key_pool_table(network, backbone, trust, scenario, seed=1)
    assert table is not None and not table.complete
    assert 1 <= table.routed < table.total  # the first block is routed to learn the speed, then time is out
    merged = table.links.merge(full, on=["u", "v"], how="left", suffixes=("", "_all"))
    assert merged["key_bits_per_round_all"].notna().all()  # every link a sampled route uses is used by all
    assert (merged["key_bits_per_round"] <= merged["key_bits_per_round_all"]).all()
    assert (merged["demands_using"] <= merged["demands_using_all"]).all()
