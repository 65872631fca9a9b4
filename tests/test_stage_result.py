"""The shared stage result: one way to record a solve, one translation of solver errors."""

from __future__ import annotations

import pytest

from planner.errors import InfeasibleDesignError, ValidationError
from planner.model.scenario import default_scenario
from planner.stages.result import StageResult, require_solution, solver_errors, solver_options
from solvers.base import ModelInfeasible, SolveResult, SolveStatus


def test_record_solve_keeps_wall_clock_out_of_the_summary() -> None:
    out = StageResult()
    res = SolveResult(
        status=SolveStatus.OPTIMAL,
        objective=2.0,
        bound=2.0,
        gap=0.0,
        solve_time_s=1.5,
        build_time_s=0.25,
        solver="highs",
        info={"heuristic_time_s": 0.5, "n_variables": 7, "prep_time_s": None},
    )
    summary = out.record_solve("memory", res, "memory MILP")
    assert out.solves == {"memory": summary}
    assert summary["model"] == "memory MILP" and summary["n_variables"] == 7 and summary["status"] == "optimal"
    assert not {"solve_time_s", "build_time_s", "heuristic_time_s", "prep_time_s"} & set(summary)
    # a missing (None) time is dropped, not recorded as a number
    assert out.timing == {"memory.solve_time_s": 1.5, "memory.build_time_s": 0.25, "memory.heuristic_time_s": 0.5}


def test_solver_options_carry_the_scenario_and_seed() -> None:
    sc = default_scenario()
    opts = solver_options(sc, seed=7)
    assert (opts.time_limit_s, opts.mip_gap, opts.threads, opts.seed) == (
        sc.solver.time_limit_s,
        sc.solver.mip_gap,
        sc.solver.threads,
        7,
    )


class _InputError(ValueError):
    pass


def test_infeasible_model_becomes_infeasible_design_with_the_fix() -> None:
    with (
        pytest.raises(InfeasibleDesignError) as info,
        solver_errors("backbone", _InputError, infeasible="No spacing.", fix="lower the target", max_items=2),
    ):
        raise ModelInfeasible("x", conflicts=["d1", "d2", "d3"], details=["a", "b", "c"])
    err = info.value
    assert err.conflicts == ["d1", "d2"] and err.details == ["a", "b", "fix: lower the target"]
    assert str(err).startswith("No spacing.")


def test_input_error_becomes_validation_error_naming_the_tables() -> None:
    with (
        pytest.raises(ValidationError, match="memory tables: budget must be >= 0"),
        solver_errors("memory", _InputError, infeasible="unused"),
    ):
        raise _InputError("budget must be >= 0")


def test_other_errors_pass_unchanged() -> None:
    with pytest.raises(KeyError), solver_errors("memory", _InputError, infeasible="unused"):
        raise KeyError("bug")


def test_require_solution_only_without_one() -> None:
    require_solution(SolveResult(status=SolveStatus.FEASIBLE), "memory model", fix="raise it")
    with pytest.raises(InfeasibleDesignError, match="status 'time_limit_no_solution'") as info:
        require_solution(
            SolveResult(status=SolveStatus.TIME_LIMIT_NO_SOLUTION),
            "memory model",
            fix="raise it",
            conflicts=("memory-budget",),
        )
    assert info.value.conflicts == ["memory-budget"] and info.value.details[-1] == "fix: raise it"
