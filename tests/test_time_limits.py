"""Time limits are kept: every limit handed to a solver during a plan is recorded (the hook in
``solvers.base``), and each stage's limits sum to at most its budget, the stages' to at most the
plan's ``--time-limit`` (a stage may use what earlier stages left). No wall-clock asserts: only the
limits handed out are checked."""

from __future__ import annotations

import pytest
from helpers_net import random_sites, write_sites_csv

from planner.io.readers import read_network
from planner.model.scenario import default_scenario
from planner.pipeline import plan
from planner.stages.budget import STAGE_WEIGHTS, stage_budget_s
from solvers.base import StageBudget, TimeLimitRecord, recording_time_limits, stage_budget

TOL = 1e-9


def _split(log: list) -> tuple[dict[str, float], dict[str, list[float]]]:
    budgets: dict[str, float] = {}
    limits: dict[str, list[float]] = {}
    for entry in log:
        if isinstance(entry, TimeLimitRecord):
            limits.setdefault(entry.stage, []).append(entry.time_limit_s)
        else:
            name, value = entry
            assert name.startswith("budget:")
            budgets[name.removeprefix("budget:")] = value
    return budgets, limits


def _check(log: list, total_s: float | None) -> tuple[dict[str, float], dict[str, list[float]]]:
    budgets, limits = _split(log)
    assert "" not in limits, "a solver ran outside any stage budget"
    for stage, handed in limits.items():
        assert stage in budgets
        assert sum(handed) <= budgets[stage] + TOL, (stage, handed, budgets[stage])
    if total_s is not None:
        assert sum(sum(v) for v in limits.values()) <= total_s + TOL
        # a stage's budget is at most what earlier stages left of the plan's limit
        handed = 0.0
        for entry in log:
            if isinstance(entry, TimeLimitRecord):
                handed += entry.time_limit_s
            else:
                assert entry[1] <= total_s - handed + TOL, (entry, handed)
    return budgets, limits


@pytest.mark.parametrize("total_s", [600.0, 30.0])
def test_plan_time_limit_bounds_every_stage(tmp_path, total_s):
    scenario = default_scenario().with_overrides(
        {"backbone.mode": "repeaters", "access.reach_km": 60.0, "memory.budget_units": 200}
    )
    net = read_network(write_sites_csv(tmp_path / "s.csv", random_sites(40, seed=4)))
    with recording_time_limits() as log:
        design = plan(net, scenario, seed=1, time_limit_s=total_s)
    budgets, limits = _check(log, total_s)
    assert set(budgets) == {"access", "repeaters", "memory"}
    assert limits.get("access"), "the access MILP was never handed a limit"
    assert len(design.sites) == 40


def test_without_plan_limit_each_stage_gets_the_scenario_limit(tmp_path):
    scenario = default_scenario().with_overrides(
        {"backbone.mode": "repeaters", "access.reach_km": 60.0, "solver.time_limit_s": 7.0}
    )
    net = read_network(write_sites_csv(tmp_path / "s.csv", random_sites(30, seed=2)))
    with recording_time_limits() as log:
        plan(net, scenario, seed=1)
    budgets, _ = _check(log, None)
    assert budgets and all(v == pytest.approx(7.0) for v in budgets.values())


def test_stage_budget_split_uses_weights_and_never_exceeds_what_is_left():
    sc = default_scenario()
    stages = ["access", "repeaters", "trust", "memory"]
    first = stage_budget_s(sc, "access", stages, 90.0)
    assert first == pytest.approx(90.0 * STAGE_WEIGHTS["access"] / sum(STAGE_WEIGHTS[s] for s in stages))
    assert stage_budget_s(sc, "memory", ["memory"], 5.0) == pytest.approx(5.0)
    assert stage_budget_s(sc, "trust", ["trust", "memory"], -3.0) == 0.0
    assert stage_budget_s(sc, "access", stages, None) == sc.solver.time_limit_s


def test_stage_budget_hands_out_only_what_is_left():
    from solvers.base import SolverOptions, note_time_limit

    with recording_time_limits() as log, stage_budget("x", 10.0) as b:
        assert isinstance(b, StageBudget)
        o1 = b.options(SolverOptions(time_limit_s=60.0), fraction=0.5)
        note_time_limit(o1.time_limit_s)
        o2 = b.options(SolverOptions(time_limit_s=60.0))
        note_time_limit(o2.time_limit_s)
        o3 = b.options(SolverOptions(time_limit_s=60.0))
    assert o1.time_limit_s <= 5.0 + TOL
    assert o1.time_limit_s + o2.time_limit_s <= 10.0 + TOL
    assert o3.time_limit_s <= 10.0 - o1.time_limit_s - o2.time_limit_s + TOL
    _check(log, 10.0)


def test_repeater_stage_limits_sum_to_its_limit_in_max_min_rate_mode(tmp_path):
    """The repeater solve and its cost tie-break together stay within the stage limit."""
    scenario = default_scenario().with_overrides(
        {
            "backbone.mode": "repeaters",
            "backbone.objective": "max_min_rate",
            "backbone.repeater_budget": 6,
            "access.reach_km": 60.0,
        }
    )
    net = read_network(write_sites_csv(tmp_path / "s.csv", random_sites(30, seed=5)))
    with recording_time_limits() as log:
        plan(net, scenario, seed=1, time_limit_s=12.0)
    budgets, limits = _check(log, 12.0)
    assert "repeaters" in budgets


@pytest.mark.parametrize("total_s", [60.0, 8.0])
def test_default_backbone_mode_keeps_the_trust_stage_within_its_budget(tmp_path, total_s):
    """With the default backbone mode ("both") the trust stage runs too: its single-path model, the
    model's mean tie-break and the SMR search (recorded as the time it is handed) together stay
    within the trust budget, and all stages within the plan's limit."""
    scenario = default_scenario()
    assert scenario.backbone.mode == "both"
    scenario = scenario.with_overrides({"access.reach_km": 60.0, "memory.budget_units": 200})
    net = read_network(write_sites_csv(tmp_path / "s.csv", random_sites(40, seed=4)))
    with recording_time_limits() as log:
        design = plan(net, scenario, seed=1, time_limit_s=total_s)
    budgets, limits = _check(log, total_s)
    assert {"access", "repeaters", "trust"} <= set(budgets)
    assert len(limits.get("trust", [])) >= 2, "the trust model and the SMR search were not both budgeted"
    assert len(design.sites) == 40


def test_trust_stage_without_plan_limit_stays_within_the_scenario_limit(tmp_path):
    """Called without a stage budget, the trust stage still hands out at most solver.time_limit_s."""
    from planner.pipeline import plan_access
    from planner.stages.backbone import build_backbone, cluster_of
    from planner.stages.prepare import prepare_network
    from planner.stages.trust import plan_trust

    scenario = default_scenario().with_overrides({"access.reach_km": 60.0, "solver.time_limit_s": 5.0})
    net, _ = prepare_network(read_network(write_sites_csv(tmp_path / "s.csv", random_sites(40, seed=4))), scenario)
    access, tables = plan_access(net, scenario, seed=1)
    backbone = build_backbone(net, cluster_of(access.tables["assignment"], tables.standalone), scenario)
    with recording_time_limits() as log:
        plan_trust(net, backbone, scenario, seed=1)
    handed = [r.time_limit_s for r in log if isinstance(r, TimeLimitRecord)]
    assert len(handed) >= 2
    assert sum(handed) <= 5.0 + TOL


def test_plan_time_left_keeps_time_for_reading_and_writing():
    from planner.stages.budget import WRITE_S_PER_SITE, plan_time_left

    assert plan_time_left(100.0, 5.0, 1000) == pytest.approx(100.0 - 5.0 - WRITE_S_PER_SITE * 1000)
    assert plan_time_left(100.0, 0.0, 10**9) == pytest.approx(80.0)  # the reserve is at most a fifth
    assert plan_time_left(10.0, 12.0, 10) == 0.0  # reading took it all: never negative
