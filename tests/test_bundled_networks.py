"""Every bundled network plans end to end with the default scenario (solver time capped for speed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_design import assert_same_design

from planner.io.bundled import bundled_networks
from planner.io.readers import read_network
from planner.model.design import Design
from planner.model.scenario import default_scenario
from planner.pipeline import plan

SCENARIO = default_scenario().with_overrides({"solver.time_limit_s": 10.0})


@pytest.mark.slow
@pytest.mark.parametrize("path", bundled_networks(), ids=lambda p: p.name)
def test_bundled_network_plans(path: Path) -> None:
    net = read_network(path)
    design = plan(net, SCENARIO, seed=0)
    s = design.sites
    assert len(s) == len(net.sites) and s["site_id"].is_unique
    assert (s["role"] != "unassigned").any() or len(design.clusters) == 0
    for stage, summary in design.solves.items():
        assert summary["status"] in ("optimal", "feasible", "heuristic"), (stage, summary)
    # every demand between backbone nodes has a rate, a latency and a security
    d = design.demands
    assert len(d) > 0
    for col in ("rate", "latency_s", "security", "security_single_path"):
        assert d[col].notna().all(), col
    assert (d["rate"] >= SCENARIO.backbone.rate_target * (1 - 1e-9)).all()
    assert (d["security"] >= 0).all() and (d["security"] <= 1).all()
    again = Design.from_dict(design.to_dict())
    assert again.to_json() == design.to_json()
    assert_same_design(design, again)
