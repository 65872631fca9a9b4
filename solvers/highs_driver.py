"""The one HiGHS driver of :mod:`solvers`: every model of the package is solved here.

Two entry points share one run:

* :func:`solve_arrays` takes a model given as sparse arrays (:class:`LinearArrays`);
* :func:`solve_model` takes a Pyomo model; Pyomo's APPSI HiGHS interface only
  translates it into a HiGHS model (same column order as before), the run is ours.

Both go through :func:`_run`, which owns

* the options (:func:`apply_options`: time limit, relative MIP gap, threads,
  random seed, log output and ``SolverOptions.extra``), and the report of every
  time limit to the stage budgets (:func:`solvers.base.note_time_limit`);
* HiGHS's global thread scheduler (:func:`_run_with_scheduler`);
* the one status map: HiGHS model status -> :class:`TerminationCondition`
  (:func:`termination_condition`), then termination condition and "a feasible
  solution exists" -> :class:`solvers.base.SolveStatus` (:func:`solve_status`);
* the check that the returned column values give the reported objective (see
  :func:`_run`).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.contrib.appsi.solvers import Highs as AppsiHighs

try:
    import highspy
except ImportError:  # pragma: no cover - reported by highs_available() / solve_*()
    highspy = None  # type: ignore[assignment]

from solvers.base import (
    RawSolve,
    SolverError,
    SolverOptions,
    SolveStatus,
    note_time_limit,
    relative_gap,
)

logger = logging.getLogger(__name__)

_BANNER_DONE = False


def _swallow_banner() -> None:
    """Create the process's first ``highspy.Highs`` with the C-level standard output sent to the null
    device: HiGHS prints its version banner there on the first instance whatever ``output_flag`` says,
    which would land in the middle of a command's output. Later instances print nothing."""
    global _BANNER_DONE
    if _BANNER_DONE or highspy is None:
        return
    _BANNER_DONE = True
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


#: relative tolerance between the reported objective and the objective of the returned values
OBJECTIVE_MATCH_RTOL = 1e-6
#: smallest time limit handed to a re-solve (HiGHS needs a positive limit to do anything)
MIN_RESOLVE_LIMIT_S = 0.01


class TerminationCondition(StrEnum):
    """Why HiGHS stopped, independent of whether a solution was found (cf. linopy's design)."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"  # also HiGHS's MIP solution / node limits
    OBJECTIVE_LIMIT = "objective_limit"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    UNKNOWN = "unknown"


# HiGHS model status name -> termination condition (names, so this module imports highspy lazily)
_MODEL_STATUS: dict[str, TerminationCondition] = {
    "kOptimal": TerminationCondition.OPTIMAL,
    "kInfeasible": TerminationCondition.INFEASIBLE,
    "kUnboundedOrInfeasible": TerminationCondition.INFEASIBLE_OR_UNBOUNDED,
    "kUnbounded": TerminationCondition.UNBOUNDED,
    "kTimeLimit": TerminationCondition.TIME_LIMIT,
    "kIterationLimit": TerminationCondition.ITERATION_LIMIT,
    "kSolutionLimit": TerminationCondition.ITERATION_LIMIT,
    "kObjectiveBound": TerminationCondition.OBJECTIVE_LIMIT,
    "kObjectiveTarget": TerminationCondition.OBJECTIVE_LIMIT,
    "kInterrupt": TerminationCondition.INTERRUPTED,
    "kLoadError": TerminationCondition.ERROR,
    "kModelError": TerminationCondition.ERROR,
    "kPresolveError": TerminationCondition.ERROR,
    "kSolveError": TerminationCondition.ERROR,
    "kPostsolveError": TerminationCondition.ERROR,
    "kMemoryLimit": TerminationCondition.ERROR,
}

# limits: the search stopped early, so "no solution" means "none found in time"
_STOPPED_EARLY = frozenset(
    {
        TerminationCondition.TIME_LIMIT,
        TerminationCondition.ITERATION_LIMIT,
        TerminationCondition.INTERRUPTED,
    }
)


def termination_condition(model_status: Any) -> TerminationCondition:
    """The termination condition of a HiGHS model status (``highspy.HighsModelStatus``).

    Statuses HiGHS may add later map to ``UNKNOWN`` (reported as a solver error
    unless a solution exists)."""
    return _MODEL_STATUS.get(getattr(model_status, "name", str(model_status)), TerminationCondition.UNKNOWN)


def solve_status(condition: TerminationCondition, has_solution: bool) -> SolveStatus:
    """The project's :class:`SolveStatus` of a run: the one place a status is decided.

    ``OPTIMAL`` needs a proven optimum *and* a solution; infeasible and unbounded models
    are reported as such; any other run with a solution is ``FEASIBLE``; a run stopped by
    a limit without one is ``TIME_LIMIT_NO_SOLUTION``; everything else is ``ERROR``.
    """
    if condition is TerminationCondition.OPTIMAL and has_solution:
        return SolveStatus.OPTIMAL
    if condition in (TerminationCondition.INFEASIBLE, TerminationCondition.INFEASIBLE_OR_UNBOUNDED):
        return SolveStatus.INFEASIBLE
    if condition is TerminationCondition.UNBOUNDED:
        return SolveStatus.UNBOUNDED
    if has_solution:
        return SolveStatus.FEASIBLE
    if condition in _STOPPED_EARLY:
        return SolveStatus.TIME_LIMIT_NO_SOLUTION
    return SolveStatus.ERROR


@dataclass(frozen=True)
class HighsRun:
    """Outcome of one driver solve.

    ``objective`` and ``values`` (column values, in the model's column order) are set
    exactly when a feasible solution exists, and ``values`` then give ``objective``
    (within :data:`OBJECTIVE_MATCH_RTOL`); ``bound`` is HiGHS's dual bound (for an LP
    solve, the optimum), ``nan`` when unknown; ``gap`` is :func:`solvers.base.relative_gap`
    (0 for a proven optimum without a finite bound); ``solve_time_s`` sums every run.
    """

    status: SolveStatus
    termination: TerminationCondition
    objective: float
    bound: float
    gap: float
    solve_time_s: float
    values: np.ndarray | None


@dataclass(frozen=True)
class LinearArrays:
    """A MILP/LP as arrays: minimise (or maximise) ``col_cost @ x + offset`` subject to
    ``row_lower <= a_matrix @ x <= row_upper`` and ``col_lower <= x <= col_upper``;
    ``integrality[j]`` nonzero makes column ``j`` integer. Infinite bounds are allowed."""

    col_cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    a_matrix: sp.spmatrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    integrality: np.ndarray
    maximize: bool = False
    offset: float = 0.0


def highs_available() -> bool:
    """True when HiGHS (``highspy``) can be imported."""
    return highspy is not None


def solver_available(name: str = "highs") -> bool:
    """True when the named solver can be used (only ``"highs"`` is supported)."""
    return name == "highs" and highs_available()


def apply_options(h: Any, options: SolverOptions, time_limit_s: float) -> None:
    """Set every option of a run on a ``highspy.Highs``: the one place options are applied.

    ``time_limit_s`` replaces ``options.time_limit_s`` (a re-solve gets what is left);
    ``options.tee`` turns HiGHS's log on; ``options.extra`` is applied last, so it may
    override any of the others."""
    h.setOptionValue("output_flag", bool(options.tee))
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(options.mip_gap))
    h.setOptionValue("threads", int(options.threads))
    h.setOptionValue("random_seed", int(options.seed))
    for key, value in options.extra.items():
        h.setOptionValue(key, value)


_LAST_THREADS: list[int] = []


def _run_with_scheduler(h: Any, threads: int) -> Any:
    """``h.run()`` under HiGHS's one global thread scheduler per process.

    HiGHS refuses a run asking for another thread count than the scheduler was made
    with: the scheduler is reset when the count changes between runs of this driver,
    and once more (then the run is repeated) if HiGHS still refuses the run before
    solving (the scheduler may have been made outside this driver)."""
    if _LAST_THREADS and _LAST_THREADS[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _LAST_THREADS[:] = [threads]
    run_status = h.run()
    if run_status == highspy.HighsStatus.kError and h.getModelStatus() in (
        highspy.HighsModelStatus.kNotset,
        highspy.HighsModelStatus.kModelError,
    ):
        highspy.Highs.resetGlobalScheduler(True)
        run_status = h.run()
    return run_status


@dataclass
class _Attempt:
    termination: TerminationCondition
    has_solution: bool
    objective: float
    bound: float
    values: np.ndarray | None
    time_s: float


def _attempt(h: Any, options: SolverOptions, time_limit_s: float, start: np.ndarray | None) -> _Attempt:
    apply_options(h, options, time_limit_s)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(start, dtype=float)
        sol.value_valid = True
        sol.dual_valid = False
        h.setSolution(sol)
    t0 = time.perf_counter()
    _run_with_scheduler(h, int(options.threads))
    elapsed = time.perf_counter() - t0
    info = h.getInfo()
    has_sol = int(info.primal_solution_status) == int(highspy.SolutionStatus.kSolutionStatusFeasible)
    objective = float(info.objective_function_value) if has_sol else math.nan
    if int(info.mip_node_count) == -1:  # solved as an LP: the optimum is the bound
        bound = objective
    else:
        bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else math.nan
    values = np.asarray(h.getSolution().col_value, dtype=float) if has_sol else None
    return _Attempt(termination_condition(h.getModelStatus()), has_sol, objective, bound, values, elapsed)


def _values_give(att: _Attempt, cost: np.ndarray, offset: float) -> bool:
    assert att.values is not None
    value = float(cost @ att.values) + offset
    return abs(value - att.objective) <= OBJECTIVE_MATCH_RTOL * max(1.0, abs(att.objective))


def _run(
    h: Any,
    options: SolverOptions,
    *,
    cost: np.ndarray,
    offset: float,
    start: np.ndarray | None,
    record_limit: bool,
) -> HighsRun:
    """Run a HiGHS model already passed to ``h`` (objective ``cost @ x + offset``).

    The MIP start ``start`` is used only with ``options.warm_start``. HiGHS can report an
    objective improved from a MIP start yet return the start's column values; when the
    values do not give the reported objective the model is solved again without the
    start, within what is left of the limit. Should the values still not match, the
    objective of the values is reported and the run counts as ``FEASIBLE``.
    """
    time_limit_s = float(options.time_limit_s)
    if record_limit:
        note_time_limit(time_limit_s)
    h.HandleKeyboardInterrupt = True  # lets a KeyboardInterrupt stop the search
    use_start = start if options.warm_start and start is not None and len(start) else None
    t0 = time.perf_counter()
    att = _attempt(h, options, time_limit_s, use_start)
    total_s = att.time_s
    if att.values is not None and not _values_give(att, cost, offset):
        logger.warning(
            "HiGHS returned values of objective %.9g but reported %.9g; solving again without MIP start",
            float(cost @ att.values) + offset,
            att.objective,
        )
        h.clearSolver()  # forget the returned solution, so it is not used as a start
        left_s = max(MIN_RESOLVE_LIMIT_S, time_limit_s - (time.perf_counter() - t0))
        att = _attempt(h, options, left_s, None)
        total_s += att.time_s
    status = solve_status(att.termination, att.has_solution)
    objective = att.objective
    if att.values is not None and not _values_give(att, cost, offset):
        objective = float(cost @ att.values) + offset
        if status is SolveStatus.OPTIMAL:
            status = SolveStatus.FEASIBLE
    gap = relative_gap(objective, att.bound) if att.has_solution else math.nan
    if status is SolveStatus.OPTIMAL and not math.isfinite(gap):
        gap = 0.0
    logger.info(
        "HiGHS: %s (%s) obj=%s bound=%s gap=%s in %.2fs",
        status, att.termination, objective, att.bound, gap, total_s,
    )  # fmt: skip
    return HighsRun(status, att.termination, objective, att.bound, gap, total_s, att.values)


def solve_arrays(
    model: LinearArrays,
    options: SolverOptions,
    *,
    start: np.ndarray | None = None,
    record_limit: bool = True,
) -> HighsRun:
    """Solve a model given as arrays (MIP start from ``start`` when given and
    ``options.warm_start``).

    Guarantees: never raises for infeasible or unbounded models or time limits (see
    ``status``); ``values`` are in the column order of ``model``. ``record_limit=False``
    leaves the limit out of the stage budgets, for a caller that bounds a loop of solves
    by its own deadline. Raises :class:`SolverError` when HiGHS is missing or rejects the model.
    """
    if highspy is None:
        raise SolverError("HiGHS is not available; install it with 'pip install highspy'")
    a = sp.csc_matrix(model.a_matrix)
    lp = highspy.HighsLp()
    lp.num_col_ = len(model.col_cost)
    lp.num_row_ = a.shape[0]
    lp.col_cost_ = np.asarray(model.col_cost, dtype=float)
    lp.col_lower_ = np.asarray(model.col_lower, dtype=float)
    lp.col_upper_ = np.asarray(model.col_upper, dtype=float)
    lp.row_lower_ = np.asarray(model.row_lower, dtype=float)
    lp.row_upper_ = np.asarray(model.row_upper, dtype=float)
    lp.offset_ = float(model.offset)
    lp.sense_ = highspy.ObjSense.kMaximize if model.maximize else highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(float)
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous for v in model.integrality
    ]
    _swallow_banner()
    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(options.tee))
    if h.passModel(lp) == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the model")
    return _run(
        h, options, cost=np.asarray(model.col_cost, dtype=float), offset=float(model.offset),
        start=start, record_limit=record_limit,
    )  # fmt: skip


def solve_model(model: pyo.ConcreteModel, options: SolverOptions | None = None) -> RawSolve:
    """Solve a Pyomo model with HiGHS.

    Guarantees: never raises for infeasible/unbounded models or time limits
    (those are reported in ``status``); when ``status`` is OPTIMAL or FEASIBLE
    the model's variables hold the incumbent solution. With
    ``options.warm_start`` the values already set on the variables are passed
    to HiGHS as a MIP start (unset ones as 0). Raises :class:`SolverError` only
    when HiGHS is missing or fails.
    """
    opts = options or SolverOptions()
    if opts.solver != "highs":
        raise SolverError(f"solver '{opts.solver}' is not supported; use 'highs'")
    if not highs_available():
        raise SolverError("HiGHS is not available; install it with 'pip install highspy'")
    try:
        h, columns = _translate(model, opts)
        lp = h.getLp()
        cost = np.asarray(lp.col_cost_, dtype=float)
        offset = float(lp.offset_)
        start = None
        if any(v.value is not None for v in columns):
            start = np.array([0.0 if v.value is None else float(pyo.value(v)) for v in columns])
        run = _run(h, opts, cost=cost, offset=offset, start=start, record_limit=True)
    except SolverError:
        raise
    except Exception as exc:  # noqa: BLE001 - solver crash is re-raised as our error
        raise SolverError(f"HiGHS failed: {exc}") from exc
    if run.values is not None:
        for var, value in zip(columns, run.values, strict=True):
            var.set_value(float(value), skip_validation=True)
    return RawSolve(
        status=run.status, objective=run.objective, bound=run.bound, gap=run.gap,
        solve_time_s=run.solve_time_s, solver="highs",
    )  # fmt: skip


def _translate(model: pyo.ConcreteModel, options: SolverOptions) -> tuple[Any, list[Any]]:
    """The HiGHS model of a Pyomo model and its variables in column order.

    Pyomo's APPSI HiGHS interface writes the model into a ``highspy.Highs`` (the column
    order, objective offset and sense it chooses are kept); the run itself is
    :func:`_run`'s. This reads two attributes of that interface that it does not
    document (the HiGHS instance and the variable -> column map); checked here.
    """
    _swallow_banner()
    translator = AppsiHighs()
    translator.config.stream_solver = bool(options.tee)
    translator.set_instance(model)
    h = getattr(translator, "_solver_model", None)
    col_of = getattr(translator, "_pyomo_var_to_solver_var_map", None)
    var_data = getattr(translator, "_vars", None)
    if h is None or col_of is None or var_data is None:  # pragma: no cover - another Pyomo version
        raise SolverError("this Pyomo version's HiGHS interface is not supported by the driver")
    columns: list[Any] = [None] * len(col_of)
    for var_id, col in col_of.items():
        columns[col] = var_data[var_id][0]
    return h, columns


__all__ = [
    "HighsRun",
    "LinearArrays",
    "TerminationCondition",
    "apply_options",
    "highs_available",
    "solve_arrays",
    "solve_model",
    "solve_status",
    "solver_available",
    "termination_condition",
]
