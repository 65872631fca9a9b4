"""The one HiGHS driver: its status map, options, array and Pyomo models, MIP starts, limits."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
import pytest
import scipy.sparse as sp

from solvers import highs_driver as drv
from solvers.base import SolverOptions, SolveStatus, TimeLimitRecord, recording_time_limits
from solvers.highs_driver import (
    LinearArrays,
    TerminationCondition,
    solve_arrays,
    solve_model,
    solve_status,
    termination_condition,
)

TC = TerminationCondition


def test_every_highs_model_status_has_one_termination_condition() -> None:
    expected = {
        "kOptimal": TC.OPTIMAL, "kInfeasible": TC.INFEASIBLE, "kUnbounded": TC.UNBOUNDED,
        "kUnboundedOrInfeasible": TC.INFEASIBLE_OR_UNBOUNDED, "kTimeLimit": TC.TIME_LIMIT,
        "kIterationLimit": TC.ITERATION_LIMIT, "kInterrupt": TC.INTERRUPTED,
        "kObjectiveBound": TC.OBJECTIVE_LIMIT, "kSolveError": TC.ERROR, "kNotset": TC.UNKNOWN,
    }  # fmt: skip
    for name, tc in expected.items():
        assert termination_condition(getattr(highspy.HighsModelStatus, name)) is tc, name
    for status in highspy.HighsModelStatus.__members__.values():
        assert isinstance(termination_condition(status), TerminationCondition)


def test_status_needs_a_solution_for_optimal_and_says_why_there_is_none() -> None:
    assert solve_status(TC.OPTIMAL, True) is SolveStatus.OPTIMAL
    assert solve_status(TC.OPTIMAL, False) is SolveStatus.ERROR
    assert solve_status(TC.TIME_LIMIT, True) is SolveStatus.FEASIBLE
    assert solve_status(TC.INTERRUPTED, True) is SolveStatus.FEASIBLE
    for tc in (TC.TIME_LIMIT, TC.ITERATION_LIMIT, TC.INTERRUPTED):
        assert solve_status(tc, False) is SolveStatus.TIME_LIMIT_NO_SOLUTION
    for tc in (TC.INFEASIBLE, TC.INFEASIBLE_OR_UNBOUNDED):
        assert solve_status(tc, False) is SolveStatus.INFEASIBLE
    assert solve_status(TC.UNBOUNDED, False) is SolveStatus.UNBOUNDED
    assert solve_status(TC.ERROR, False) is SolveStatus.ERROR
    assert solve_status(TC.UNKNOWN, False) is SolveStatus.ERROR


def _random_mip(rng: np.random.Generator, n: int, m: int) -> tuple[LinearArrays, np.ndarray]:
    """A random pure-integer model on x in {0, 1, 2}^n and its optimum found by enumeration."""
    a = rng.integers(-2, 4, size=(m, n)).astype(float)
    upper = rng.integers(2, 3 * n, size=m).astype(float)
    cost = rng.integers(-5, 6, size=n).astype(float)
    model = LinearArrays(
        col_cost=cost, col_lower=np.zeros(n), col_upper=np.full(n, 2.0), a_matrix=sp.csc_matrix(a),
        row_lower=np.full(m, -np.inf), row_upper=upper, integrality=np.ones(n, dtype=int),
        maximize=bool(rng.integers(2)), offset=float(rng.integers(-3, 4)),
    )  # fmt: skip
    best: np.ndarray | None = None
    for pick in itertools.product((0.0, 1.0, 2.0), repeat=n):
        x = np.array(pick)
        if np.all(a @ x <= upper) and (
            best is None or (cost @ x > cost @ best if model.maximize else cost @ x < cost @ best)
        ):
            best = x
    assert best is not None  # x = 0 is feasible when every upper side is >= 2
    return model, best


@pytest.mark.parametrize("seed", range(6))
def test_array_models_reach_the_enumerated_optimum_with_and_without_a_start(seed: int) -> None:
    rng = np.random.default_rng(seed)
    model, best = _random_mip(rng, n=5, m=3)
    optimum = float(model.col_cost @ best) + model.offset
    for start in (None, np.zeros(5)):
        run = solve_arrays(model, SolverOptions(threads=1), start=start)
        assert run.status is SolveStatus.OPTIMAL
        assert run.termination is TC.OPTIMAL
        assert run.objective == pytest.approx(optimum, abs=1e-9)
        assert run.values is not None
        assert float(model.col_cost @ run.values) + model.offset == pytest.approx(run.objective)
        assert run.gap <= 1e-4


def test_pyomo_and_array_forms_of_one_model_agree() -> None:
    model, best = _random_mip(np.random.default_rng(11), n=4, m=3)
    a = model.a_matrix.toarray()
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(4), domain=pyo.NonNegativeIntegers, bounds=(0, 2))
    m.rows = pyo.Constraint(range(3), rule=lambda m, r: sum(a[r, j] * m.x[j] for j in range(4)) <= model.row_upper[r])
    sense = pyo.maximize if model.maximize else pyo.minimize
    m.obj = pyo.Objective(expr=sum(model.col_cost[j] * m.x[j] for j in range(4)) + model.offset, sense=sense)
    raw = solve_model(m, SolverOptions())
    run = solve_arrays(model, SolverOptions())
    assert raw.status is run.status is SolveStatus.OPTIMAL
    assert raw.objective == pytest.approx(run.objective) == pytest.approx(float(model.col_cost @ best) + model.offset)
    assert pyo.value(m.obj) == pytest.approx(raw.objective)  # the loaded values are the solution


def test_infeasible_array_model_and_lp_bound() -> None:
    infeasible = LinearArrays(
        col_cost=np.ones(2), col_lower=np.zeros(2), col_upper=np.ones(2), a_matrix=sp.csc_matrix(np.ones((1, 2))),
        row_lower=np.array([3.0]), row_upper=np.array([np.inf]), integrality=np.ones(2, dtype=int),
    )  # fmt: skip
    run = solve_arrays(infeasible, SolverOptions())
    assert run.status is SolveStatus.INFEASIBLE and run.values is None and math.isnan(run.objective)
    lp = LinearArrays(
        col_cost=np.array([1.0, 2.0]), col_lower=np.zeros(2), col_upper=np.full(2, np.inf),
        a_matrix=sp.csc_matrix(np.array([[1.0, 1.0]])), row_lower=np.array([1.5]), row_upper=np.array([np.inf]),
        integrality=np.zeros(2, dtype=int),
    )  # fmt: skip
    run = solve_arrays(lp, SolverOptions())
    assert run.status is SolveStatus.OPTIMAL
    assert run.objective == pytest.approx(1.5) and run.bound == pytest.approx(1.5) and run.gap == 0.0


def test_thread_changes_between_runs_are_accepted() -> None:
    model, best = _random_mip(np.random.default_rng(3), n=4, m=2)
    for threads in (1, 2, 1):
        run = solve_arrays(model, SolverOptions(threads=threads))
        assert run.status is SolveStatus.OPTIMAL
        assert run.objective == pytest.approx(float(model.col_cost @ best) + model.offset)


def test_limits_reach_the_stage_budget_unless_the_caller_bounds_them() -> None:
    model, _ = _random_mip(np.random.default_rng(5), n=3, m=2)
    with recording_time_limits() as log:
        solve_arrays(model, SolverOptions(time_limit_s=7.0))
        solve_arrays(model, SolverOptions(time_limit_s=5.0), record_limit=False)
    assert [r.time_limit_s for r in log if isinstance(r, TimeLimitRecord)] == [7.0]


class _FakeHighs:
    """Stands in for ``highspy.Highs``: the first run returns values that do not give the
    reported objective (as HiGHS can after a MIP start), later runs a consistent optimum."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.options: dict[str, Any] = {}
        self.start: Any = None
        self.cleared = 0

    def setOptionValue(self, key: str, value: Any) -> None:  # noqa: N802 - HiGHS's name
        self.options[key] = value

    def setSolution(self, sol: Any) -> None:  # noqa: N802
        self.start = np.asarray(sol.col_value)

    def clearSolver(self) -> None:  # noqa: N802
        self.cleared += 1
        self.start = None

    def run(self) -> Any:
        self.runs.append({"start": self.start, "time_limit": self.options["time_limit"]})
        return highspy.HighsStatus.kOk

    def getModelStatus(self) -> Any:  # noqa: N802
        return highspy.HighsModelStatus.kOptimal

    def getInfo(self) -> Any:  # noqa: N802
        return SimpleNamespace(
            primal_solution_status=2, objective_function_value=3.0, mip_node_count=1, mip_dual_bound=3.0
        )

    def getSolution(self) -> Any:  # noqa: N802
        first = len(self.runs) == 1
        return SimpleNamespace(col_value=[1.0, 1.0] if first else [1.0, 2.0])


def test_values_that_miss_the_reported_objective_are_solved_again_without_the_start() -> None:
    fake = _FakeHighs()
    run = drv._run(
        fake,
        SolverOptions(time_limit_s=9.0),
        cost=np.array([1.0, 1.0]),
        offset=0.0,
        start=np.array([1.0, 1.0]),
        record_limit=False,
    )
    assert len(fake.runs) == 2 and fake.cleared == 1
    assert fake.runs[0]["start"] is not None and fake.runs[1]["start"] is None
    assert 0 < fake.runs[1]["time_limit"] <= 9.0
    assert run.status is SolveStatus.OPTIMAL and run.objective == 3.0
    assert run.values is not None and list(run.values) == [1.0, 2.0]


def test_no_highs_banner_on_standard_output():
    """HiGHS prints a version banner on its first instance; a command's output must not carry it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import numpy as np, scipy.sparse as sp\n"
        "from solvers.base import SolverOptions\n"
        "from solvers.highs_driver import LinearArrays, solve_arrays\n"
        "m = LinearArrays(np.array([1.0]), np.zeros(1), np.ones(1), sp.csr_matrix(np.ones((1, 1))),\n"
        "                 np.zeros(1), np.ones(1), np.ones(1, dtype=np.int32), maximize=True)\n"
        "r = solve_arrays(m, SolverOptions(time_limit_s=10))\n"
        "print('objective', r.objective)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=True,
    )
    assert "objective 1.0" in out.stdout
    assert "HiGHS" not in out.stdout, out.stdout
