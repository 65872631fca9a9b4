"""The HiGHS runner: statuses, warm start, gap and bound reporting, thread changes."""

from __future__ import annotations

import itertools
import math

import pyomo.environ as pyo

from solvers.base import SolverOptions, SolveStatus, relative_gap
from solvers.highs_driver import solve_model


def _knapsack(values: list[int], weights: list[int], cap: int) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, len(values) - 1)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    m.cap = pyo.Constraint(expr=sum(weights[i] * m.x[i] for i in m.I) <= cap)
    m.obj = pyo.Objective(expr=sum(values[i] * m.x[i] for i in m.I), sense=pyo.maximize)
    return m


def _brute(values: list[int], weights: list[int], cap: int) -> int:
    best = 0
    for pick in itertools.product([0, 1], repeat=len(values)):
        if sum(w * p for w, p in zip(weights, pick, strict=True)) <= cap:
            best = max(best, sum(v * p for v, p in zip(values, pick, strict=True)))
    return best


def test_optimal_matches_enumeration_with_and_without_warm_start() -> None:
    values, weights, cap = [12, 7, 9, 15, 4, 11, 8], [5, 3, 4, 7, 2, 6, 4], 15
    for warm in (False, True):
        m = _knapsack(values, weights, cap)
        for i in m.I:
            m.x[i].set_value(1 if i == 4 else 0)  # a poor but feasible start
        raw = solve_model(m, SolverOptions(warm_start=warm))
        assert raw.status is SolveStatus.OPTIMAL
        assert raw.objective == _brute(values, weights, cap)
        assert pyo.value(m.obj) == raw.objective  # loaded values are the reported solution
        assert raw.gap <= 1e-6


def test_infeasible_and_thread_change() -> None:
    m = _knapsack([1, 2], [3, 3], 5)
    m.need = pyo.Constraint(expr=m.x[0] + m.x[1] >= 2)
    assert solve_model(m, SolverOptions(threads=1)).status is SolveStatus.INFEASIBLE
    m.need.deactivate()
    assert solve_model(m, SolverOptions(threads=2)).status is SolveStatus.OPTIMAL


def test_relative_gap() -> None:
    assert relative_gap(10.0, 11.0) == 0.1
    assert math.isnan(relative_gap(math.nan, 1.0))
