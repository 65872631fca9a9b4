"""Time budgets of the planning stages.

Each stage runs inside a :func:`solvers.base.stage_budget`; the limits its solvers are
handed sum to at most the stage's budget, and the budget covers building as well as
solving. Without a plan-wide limit every stage's budget is ``solver.time_limit_s``.
With one (``qkdplan plan --time-limit S``) the whole plan is bounded: when a stage
starts it gets the time left of the plan times its weight (:data:`STAGE_WEIGHTS`) over
the weights of the stages still to run, so time a stage does not use passes to the
later ones. A stage receives its budget as ``solver.time_limit_s`` of the scenario it
is given (:func:`with_time_limit`; ``solver_options(scenario)`` then carries it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager

from planner.model.scenario import Scenario
from planner.runtime.progress import set_stage_limit
from solvers.base import StageBudget, stage_budget

STAGE_WEIGHTS: dict[str, float] = {"access": 1.0, "repeaters": 1.0, "trust": 2.0, "memory": 0.5}
"""Shares of a plan-wide time limit (the trusted-relay MILP is the largest model)."""


def stage_budget_s(scenario: Scenario, stage: str, remaining: list[str], plan_left_s: float | None) -> float:
    """Time budget of ``stage`` (see the module docstring): ``solver.time_limit_s`` without a plan
    limit, else the plan's time left times the stage's weight over the weights of ``remaining``
    (the stages still to run, this one included)."""
    if plan_left_s is None:
        return float(scenario.solver.time_limit_s)
    total_w = sum(STAGE_WEIGHTS[s] for s in remaining)
    return max(0.0, plan_left_s) * STAGE_WEIGHTS[stage] / total_w


def with_time_limit(scenario: Scenario, limit_s: float) -> Scenario:
    """The scenario with ``solver.time_limit_s = limit_s`` (at least 0): how a stage receives its budget."""
    return dataclasses.replace(scenario, solver=dataclasses.replace(scenario.solver, time_limit_s=max(0.0, limit_s)))


class PlanClock:
    """The time of one plan: opens each stage's budget in turn.

    ``stages`` are the budgeted stages in the order they run; ``time_limit_s`` bounds the
    plan (None: each stage has ``solver.time_limit_s``). The plan's time left is its limit less
    the limits earlier stages handed to solvers (so what a stage does not use passes on), and
    never more than the wall-clock time left.
    """

    def __init__(self, scenario: Scenario, stages: list[str], time_limit_s: float | None) -> None:
        self.scenario = scenario
        self.stages = list(stages)
        self.time_limit_s = time_limit_s
        self.start = time.perf_counter()
        self.opened: list[StageBudget] = []

    def budget_for(self, stage: str) -> float:
        """The budget ``stage`` gets if it starts now (:func:`stage_budget_s`)."""
        left = None
        if self.time_limit_s is not None:
            limit = float(self.time_limit_s)
            left = min(limit - sum(b.handed_s for b in self.opened), limit - (time.perf_counter() - self.start))
        return stage_budget_s(self.scenario, stage, self.stages[self.stages.index(stage) :], left)

    @contextmanager
    def stage(self, stage: str) -> Iterator[tuple[Scenario, StageBudget]]:
        """Open the budget of ``stage`` (also the progress display's limit of the current stage) and
        yield the scenario the stage runs with (its budget as ``solver.time_limit_s``) and the budget."""
        with stage_budget(stage, self.budget_for(stage)) as b:
            self.opened.append(b)
            set_stage_limit(b.budget_s)
            yield with_time_limit(self.scenario, b.budget_s), b

    @staticmethod
    def record(timing: dict[str, float], stage: str, budget: StageBudget) -> None:
        """Record in ``timing`` the wall-clock seconds of the whole stage and its budget."""
        timing[f"{stage}.stage_s"] = time.perf_counter() - budget.start
        timing[f"{stage}.budget_s"] = budget.budget_s


#: Seconds that writing a design's files and report takes per site, measured on national site lists
#: (10 000 sites with generated fibre: about 20 s on 2 cores under load; tables grow about linearly with sites).
WRITE_S_PER_SITE = 2e-3


def plan_time_left(limit_s: float, elapsed_s: float, n_sites: int) -> float:
    """What a whole-run limit ``limit_s`` (``qkdplan plan --time-limit``) leaves for planning after
    ``elapsed_s`` of reading, keeping :data:`WRITE_S_PER_SITE` per site (at most a fifth of the limit)
    for writing the outputs. Never negative: with nothing left every stage returns its heuristic design."""
    reserve_s = min(0.2 * limit_s, WRITE_S_PER_SITE * n_sites)
    return max(0.0, limit_s - elapsed_s - reserve_s)
