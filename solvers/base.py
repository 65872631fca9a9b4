"""Common solver layer: options, status enums, the result object, and a HiGHS runner.

Every model in :mod:`solvers` is solved through :func:`solve_model`, which
returns status, objective, bound, gap and time from the solver's result
object (never by parsing solver text).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

logger = logging.getLogger(__name__)


class SolveStatus(StrEnum):
    """Outcome of a solve, independent of the solver used."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"  # a solution exists but optimality is not proven (time/gap limit)
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT_NO_SOLUTION = "time_limit_no_solution"
    ERROR = "error"
    HEURISTIC = "heuristic"  # produced by a heuristic, not a MILP


class ModelInfeasible(RuntimeError):
    """No solution satisfies a model's constraints.

    ``conflicts`` names what conflicts (constraint families, or the demands that
    cannot meet their targets); ``details`` explains it in plain words. The
    planner turns it into :class:`planner.errors.InfeasibleDesignError`.
    """

    conflict_label = "Conflicting"

    def __init__(self, message: str, *, conflicts: Iterable[Hashable] = (), details: Sequence[str] = ()) -> None:
        self.conflicts: list[Hashable] = list(dict.fromkeys(conflicts))
        self.details: list[str] = list(details)
        text = message
        if self.conflicts:
            text += f" {self.conflict_label}: " + ", ".join(str(c) for c in self.conflicts) + "."
        if self.details:
            text += "\n" + "\n".join(f"  - {d}" for d in self.details)
        super().__init__(text)


class SolverError(RuntimeError):
    """The solver failed in a way that is not an infeasible or unbounded model."""


@dataclass(frozen=True)
class SolverOptions:
    """Options for one MILP solve.

    ``time_limit_s``: wall-clock limit; ``mip_gap``: relative gap at which the
    solver stops; ``threads``: solver threads; ``warm_start``: use the values
    set on the variables as a MIP start when the solver supports it.
    """

    solver: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 2
    seed: int = 0
    warm_start: bool = True
    tee: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SolveResult:
    """What a model solve returns: status, objective, bound, gap, time and result tables.

    ``gap`` is relative, ``|objective - bound| / max(1e-9, |objective|)``; it is
    ``nan`` when no solution exists. ``tables`` maps a name to a DataFrame of the
    chosen design (e.g. ``"assignment"``); ``info`` holds model sizes and other
    scalar facts (e.g. ``n_variables``, ``build_time_s``).
    """

    status: SolveStatus
    objective: float = math.nan
    bound: float = math.nan
    gap: float = math.nan
    solve_time_s: float = math.nan
    build_time_s: float = math.nan
    solver: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def has_solution(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.HEURISTIC)

    @property
    def optimal(self) -> bool:
        return self.status is SolveStatus.OPTIMAL

    def summary(self) -> dict[str, Any]:
        """Plain-JSON summary (no tables)."""
        return {
            "status": str(self.status),
            "objective": _json_float(self.objective),
            "bound": _json_float(self.bound),
            "gap": _json_float(self.gap),
            "solve_time_s": _json_float(self.solve_time_s),
            "build_time_s": _json_float(self.build_time_s),
            "solver": self.solver,
            **{k: v for k, v in self.info.items() if isinstance(v, (int, float, str, bool)) or v is None},
        }


# --------------------------------------------------------------------------- time budgets
# Every time limit handed to a solver (solve_model, and the direct highspy runs of the
# clustering model) is reported to note_time_limit; a StageBudget open around a stage sums
# them, so a stage hands out no more than its budget, and a recorder (tests) sees them all.


@dataclass(frozen=True)
class TimeLimitRecord:
    """One time limit handed to a solver: the stage open at the time ("" if none) and its limit."""

    stage: str
    time_limit_s: float


_OPEN_BUDGETS: list[StageBudget] = []
_RECORDERS: list[list[TimeLimitRecord | tuple[str, float]]] = []


class StageBudget:
    """A stage's time budget: what is left is the budget minus the limits already handed to
    solvers within the stage, and never more than the wall-clock time left.

    ``left_s()`` is what the next solve may get; :meth:`options` returns solver options whose
    limit is at most that. Budgets nest (the innermost one names the stage of a record).
    """

    def __init__(self, stage: str, budget_s: float) -> None:
        self.stage = stage
        self.budget_s = float(budget_s)
        self.handed_s = 0.0
        self.start = time.perf_counter()

    def left_s(self) -> float:
        wall = self.budget_s - (time.perf_counter() - self.start)
        return max(0.0, min(self.budget_s - self.handed_s, wall))

    def options(self, opts: SolverOptions, *, fraction: float = 1.0) -> SolverOptions:
        """``opts`` with a time limit of at most ``fraction`` of what is left (possibly 0)."""
        limit = max(0.0, min(opts.time_limit_s, fraction * self.left_s()))
        return SolverOptions(**{**opts.__dict__, "time_limit_s": limit})


@contextlib.contextmanager
def stage_budget(stage: str, budget_s: float) -> Iterator[StageBudget]:
    """Open a :class:`StageBudget` for the duration of a stage and report it to the recorders."""
    budget = StageBudget(stage, budget_s)
    for rec in _RECORDERS:
        rec.append((f"budget:{stage}", budget.budget_s))
    _OPEN_BUDGETS.append(budget)
    try:
        yield budget
    finally:
        _OPEN_BUDGETS.remove(budget)


def current_budget() -> StageBudget | None:
    """The innermost open stage budget, if any."""
    return _OPEN_BUDGETS[-1] if _OPEN_BUDGETS else None


def note_time_limit(time_limit_s: float) -> None:
    """Called by every solver run with the limit it was given (see module notes above)."""
    stage = _OPEN_BUDGETS[-1].stage if _OPEN_BUDGETS else ""
    for budget in _OPEN_BUDGETS:
        budget.handed_s += float(time_limit_s)
    for rec in _RECORDERS:
        rec.append(TimeLimitRecord(stage, float(time_limit_s)))


@contextlib.contextmanager
def recording_time_limits() -> Iterator[list[TimeLimitRecord | tuple[str, float]]]:
    """Record every stage budget opened (``("budget:<stage>", s)``) and every time limit handed
    to a solver (:class:`TimeLimitRecord`) while the block runs."""
    log: list[TimeLimitRecord | tuple[str, float]] = []
    _RECORDERS.append(log)
    try:
        yield log
    finally:
        _RECORDERS.remove(log)


def _json_float(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def show_value(value: Any) -> str:
    """repr of an id or value as a user wrote it (numpy scalars shown as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def relative_gap(objective: float, bound: float) -> float:
    """Relative MIP gap ``|obj - bound| / max(1e-9, |obj|)``; nan if either is not finite."""
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.nan
    return abs(objective - bound) / max(1e-9, abs(objective))


@dataclass(frozen=True)
class RawSolve:
    """Solver-level outcome of :func:`solve_model`; the caller reads variable values from the model."""

    status: SolveStatus
    objective: float
    bound: float
    gap: float
    solve_time_s: float
    solver: str


def solver_available(name: str = "highs") -> bool:
    """True when the named solver can be used (only ``"highs"`` is supported)."""
    if name != "highs":
        return False
    try:
        from pyomo.contrib.appsi.solvers import Highs

        return bool(Highs().available())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


_LAST_THREADS: list[int] = []


def _reset_scheduler_if_threads_changed(threads: int) -> None:
    """HiGHS refuses to run when a process changes its thread count between solves
    unless its global scheduler is reset first."""
    if _LAST_THREADS and _LAST_THREADS[0] != threads:
        try:
            import highspy

            highspy.Highs.resetGlobalScheduler(True)
        except (ImportError, AttributeError):  # pragma: no cover - older highspy
            pass
    _LAST_THREADS[:] = [threads]


def _objective_matches(model: pyo.ConcreteModel, reported: float) -> bool:
    """True when the loaded variable values give the objective HiGHS reported."""
    objectives = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objectives) != 1:
        return True
    try:
        value = float(pyo.value(objectives[0].expr))
    except (ValueError, TypeError, ZeroDivisionError):
        return True
    return abs(value - reported) <= 1e-6 * max(1.0, abs(reported))


def solve_model(model: pyo.ConcreteModel, options: SolverOptions | None = None) -> RawSolve:
    """Solve a Pyomo model with HiGHS through Pyomo's APPSI interface.

    Guarantees: never raises for infeasible/unbounded models or time limits
    (those are reported in ``status``); when ``status`` is OPTIMAL or FEASIBLE
    the model's variables hold the incumbent solution. With
    ``options.warm_start`` the values already set on the variables are passed
    to HiGHS as a MIP start. Raises :class:`SolverError` only when HiGHS is
    missing or fails.
    """
    from pyomo.contrib.appsi.base import TerminationCondition
    from pyomo.contrib.appsi.solvers import Highs

    opts = options or SolverOptions()
    if opts.solver != "highs":
        raise SolverError(f"solver '{opts.solver}' is not supported; use 'highs'")
    solver = Highs()
    if not solver.available():
        raise SolverError("HiGHS is not available; install it with 'pip install highspy'")
    solver.config.time_limit = opts.time_limit_s
    note_time_limit(opts.time_limit_s)
    solver.config.mip_gap = opts.mip_gap
    solver.config.warmstart = opts.warm_start
    solver.config.stream_solver = opts.tee
    solver.config.load_solution = False
    solver.highs_options = {"threads": opts.threads, "random_seed": opts.seed, **opts.extra}
    _reset_scheduler_if_threads_changed(opts.threads)
    t0 = time.perf_counter()
    try:
        res = solver.solve(model)
        tc = res.termination_condition
        obj_raw = res.best_feasible_objective
        has_sol = obj_raw is not None and math.isfinite(obj_raw)
        if has_sol:
            res.solution_loader.load_vars()
            if opts.warm_start and not _objective_matches(model, float(obj_raw)):
                # HiGHS can report an improved objective yet return the MIP start's values;
                # the loaded values are then not the reported solution: solve again without the start.
                logger.warning("HiGHS returned values that do not match its objective; re-solving without warm start")
                solver.config.warmstart = False
                # within the same limit: the re-solve gets what is left of it
                solver.config.time_limit = max(0.01, opts.time_limit_s - (time.perf_counter() - t0))
                res = solver.solve(model)
                tc = res.termination_condition
                obj_raw = res.best_feasible_objective
                has_sol = obj_raw is not None and math.isfinite(obj_raw)
                if has_sol:
                    res.solution_loader.load_vars()
    except Exception as exc:  # noqa: BLE001 - solver crash is re-raised as our error
        raise SolverError(f"HiGHS failed: {exc}") from exc
    elapsed = time.perf_counter() - t0
    obj = float(obj_raw) if has_sol else math.nan
    bound_raw = res.best_objective_bound
    bound = float(bound_raw) if bound_raw is not None and math.isfinite(bound_raw) else math.nan
    if tc == TerminationCondition.optimal and has_sol:
        status = SolveStatus.OPTIMAL
    elif tc in (TerminationCondition.infeasible, TerminationCondition.infeasibleOrUnbounded):
        status = SolveStatus.INFEASIBLE
    elif tc == TerminationCondition.unbounded:
        status = SolveStatus.UNBOUNDED
    elif has_sol:
        status = SolveStatus.FEASIBLE
    elif tc in (TerminationCondition.maxTimeLimit, TerminationCondition.maxIterations):
        status = SolveStatus.TIME_LIMIT_NO_SOLUTION
    else:
        status = SolveStatus.ERROR
    gap = relative_gap(obj, bound) if has_sol else math.nan
    if status is SolveStatus.OPTIMAL and not (math.isfinite(gap) and gap <= max(opts.mip_gap, 1e-6)):
        gap = 0.0 if not math.isfinite(gap) else gap
    logger.info("HiGHS: %s obj=%s bound=%s gap=%s in %.2fs", status, obj, bound, gap, elapsed)
    return RawSolve(status=status, objective=obj, bound=bound, gap=gap, solve_time_s=elapsed, solver="highs")
