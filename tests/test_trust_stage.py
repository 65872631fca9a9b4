"""Trusted-relay stage: the chosen set is never worse on SMR security than the baselines."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_net import write_sites_csv

from planner.io.readers import read_network
from planner.model.scenario import default_scenario
from planner.pipeline import plan


def _plan(tmp_path: Path, **overrides):
    scenario = default_scenario().with_overrides(
        {"backbone.mode": "trusted", "access.reach_km": 40.0, "solver.time_limit_s": 20.0, **overrides}
    )
    return plan(read_network(write_sites_csv(tmp_path / "sites.csv")), scenario, seed=3)


@pytest.mark.parametrize("objective", ["min", "mean"])
def test_chosen_set_beats_or_ties_every_baseline(tmp_path: Path, objective: str) -> None:
    design = _plan(tmp_path, **{"security.trust_objective": objective, "security.trusted_budget": 2})
    comp = {row["method"]: row for row in design.metrics["trust_comparison"]}
    chosen = design.metrics["trust_objectives"]["chosen"]
    col = "min_smr_security" if objective == "min" else "mean_smr_security"
    for name in ("greedy", "betweenness centrality", "random", "MILP (max-min single-path security)"):
        assert comp[chosen][col] >= comp[name][col] - 1e-12, name
    trusted = design.relays[design.relays["trusted"].astype(bool)]
    assert len(trusted) <= 2
    objectives = design.metrics["trust_objectives"]
    assert objectives["min_smr_security"] == pytest.approx(comp[chosen]["min_smr_security"])
    assert objectives["min_single_path_security"] <= objectives["single_path_bound"] + 1e-12


def test_target_mode_reports_demands_meeting_eps(tmp_path: Path) -> None:
    design = _plan(tmp_path, **{"security.trust_objective": "target", "security.eps": 0.7})
    info = design.metrics["trust_smr_search"]
    comp = {row["method"]: row for row in design.metrics["trust_comparison"]}
    row = comp["fewest relays for eps (SMR)"]
    assert row["eps_met"] == info["met"]
    assert info["met"] + info["n_unreachable"] == info["n_demands"]
    assert row["trusted"] == info["n_trusted"]
