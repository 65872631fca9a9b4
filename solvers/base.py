"""Common solver layer: options, the status enum, result objects and stage time budgets.

Every model in :mod:`solvers` is solved by the one HiGHS driver,
:mod:`solvers.highs_driver`, which reports status, objective, bound, gap and time
from the solver's own result (never by parsing solver text).
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
# Every time limit handed to a solver (by the HiGHS driver, solvers.highs_driver) is
# reported to note_time_limit; a StageBudget open around a stage sums
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
    """Solver-level outcome of :func:`solvers.highs_driver.solve_model`; the caller reads variable
    values from the model."""

    status: SolveStatus
    objective: float
    bound: float
    gap: float
    solve_time_s: float
    solver: str


def result_from_raw(
    raw: RawSolve,
    *,
    build_time_s: float,
    tables: dict[str, pd.DataFrame] | None = None,
    info: dict[str, Any] | None = None,
) -> SolveResult:
    """The :class:`SolveResult` of a solver-level outcome: ``raw``'s status, objective, bound, gap,
    solve time and solver, with ``build_time_s``, ``tables`` and ``info`` (empty when not given)."""
    return SolveResult(
        status=raw.status,
        objective=raw.objective,
        bound=raw.bound,
        gap=raw.gap,
        solve_time_s=raw.solve_time_s,
        build_time_s=build_time_s,
        solver=raw.solver,
        tables={} if tables is None else tables,
        info={} if info is None else info,
    )
