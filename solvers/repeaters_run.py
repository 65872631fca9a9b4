"""The phases of one repeater-spacing solve (:func:`solvers.repeaters.solve_spacing`).

:func:`start_run` validates the input into a :class:`SpacingRun`; :func:`reduce_and_start`
sets unreachable demands aside, drops dominated ones and finds the heuristic design (the MIP
start); :func:`plan_model` presolves and decides whether the MILP is built;
:func:`build_and_solve` builds and solves it (or stands in for it with the presolve bound);
:func:`finish` picks the design returned and re-evaluates it into the result tables.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from solvers.base import RawSolve, SolveResult, SolverOptions, SolveStatus, relative_gap
from solvers.base import show_value as _show
from solvers.highs_driver import solve_model
from solvers.repeaters_bounds import (
    drop_dominated_demands,
    precheck_min_cost,
    presolve_bound,
    presolve_spacing,
    unreachable_demands,
    unreachable_error,
)
from solvers.repeaters_data import (
    ChainTables,
    RepeaterInfeasible,
    RepeaterInputError,
    SpacingData,
    SpacingMode,
    evaluate_spacing,
    prepare_spacing_data,
    rate_of_log,
    subset_demands,
)
from solvers.repeaters_heuristic import HeuristicDesign, heuristic_spacing
from solvers.repeaters_model import (
    build_spacing_model,
    cost_expr,
    diagnose_infeasible,
    estimate_spacing_size,
    set_warm_start,
)

logger = logging.getLogger(__name__)


# Pyomo builds the spacing model at roughly this many nonzeros per second on one core (measured
# on the real site lists, conservative); used to decide whether a build fits the time left.
BUILD_NONZEROS_PER_S = 40_000.0
MIN_SOLVE_S = 1.0  # below this, solving is not attempted: the heuristic design stands


@dataclass
class SpacingRun:
    """State of one :func:`solve_spacing` call shared by its phases."""

    mode: SpacingMode
    budget: float | None
    opts: SolverOptions
    t0: float
    deadline: float  # ``time.perf_counter()`` value at which the time limit ends
    full: SpacingData  # every demand (the result tables cover them all)
    data: SpacingData  # the demands planned (without the unreachable ones)
    reduced: SpacingData  # ``data`` without dominated demands (what the heuristic and the model see)
    unreachable: dict[Hashable, float] = field(default_factory=dict)
    n_dropped: int = 0
    heur: HeuristicDesign | None = None
    first_limit_s: float = 0.0  # the time limit of the first MILP solve (0 when not solved)


@dataclass
class _SpacingDesign:
    """The design :func:`solve_spacing` returns, with its objective, bound, gap, status and solve time."""

    repeaters: dict[Hashable, int]
    choice: dict[Hashable, int]
    objective: float
    bound: float
    gap: float
    status: SolveStatus
    solve_time_s: float


def start_run(
    links: pd.DataFrame,
    demands: pd.DataFrame,
    tables: ChainTables,
    *,
    mode: SpacingMode,
    budget: float | None,
    latency_limit_s: float | None,
    options: SolverOptions | None,
) -> SpacingRun:
    """Validate the input (raises :class:`RepeaterInputError`) into a run whose time limit starts now."""
    opts = options or SolverOptions()
    t0 = time.perf_counter()
    data = prepare_spacing_data(
        links, demands, tables, latency_limit_s=latency_limit_s, require_targets=(mode == "min_cost")
    )
    if mode not in ("min_cost", "max_min_rate"):
        raise RepeaterInputError(f"mode={_show(mode)} must be 'min_cost' or 'max_min_rate'")
    if mode == "max_min_rate" and budget is not None and not (budget >= 0):
        raise RepeaterInputError(f"budget={_show(budget)} must be >= 0")
    # the limit covers preparing, building and solving
    return SpacingRun(mode, budget, opts, t0, t0 + opts.time_limit_s, data, data, data)


def out_of_time(run: SpacingRun, size: dict[str, int]) -> SolveResult | None:
    """Without a heuristic design and without the time to build the model: the result that stops at the
    limit instead of overrunning it (status TIME_LIMIT_NO_SOLUTION); else None."""
    left_s = run.deadline - time.perf_counter()
    if run.heur is not None or size["n_nonzeros"] / BUILD_NONZEROS_PER_S + MIN_SOLVE_S <= left_s:
        return None
    logger.warning(
        "repeater spacing: no design found and no time left to build the model (about %s nonzeros, %.1f s left)",
        f"{size['n_nonzeros']:,}",
        max(left_s, 0.0),
    )
    return SolveResult(
        status=SolveStatus.TIME_LIMIT_NO_SOLUTION,
        build_time_s=time.perf_counter() - run.t0,
        solver="none",
        info={"milp_skipped": "no time left to build the model", "unreachable": dict(run.unreachable)},
    )


def raise_infeasible(run: SpacingRun, *, diagnose: bool) -> None:
    """Raise :class:`RepeaterInfeasible` for an infeasible model without a heuristic design, naming the
    demands to blame when ``diagnose`` (with what is left of the time limit)."""
    conflicts, details = (
        diagnose_infeasible(
            run.data,
            mode=run.mode,
            budget=run.budget,
            options=dataclasses.replace(run.opts, time_limit_s=max(0.0, run.opts.time_limit_s - run.first_limit_s)),
        )
        if diagnose
        else ([], [])
    )
    raise RepeaterInfeasible("Repeater spacing has no feasible design.", conflicts=conflicts, details=details)


def finish(
    run: SpacingRun,
    solved: tuple[RawSolve, pyo.ConcreteModel | None, tuple[int, int], float],
    size: dict[str, int],
    skip_reason: str | None,
    *,
    tie_break_cost: bool,
) -> SolveResult:
    """The result of a run from its MILP solve (``solved``: solve, model, (variables, constraints),
    build time): the MILP's design when it wins, else the heuristic one (proven optimal when the
    presolve bound meets it), with the model's size and the run's facts in ``info``."""
    raw, model, counts, build_time = solved
    info: dict[str, Any] = {} if skip_reason is None else {"milp_skipped": skip_reason}
    _record_run(info, run, raw, size, counts, skip_reason)
    heur = run.heur
    milp_ok = _milp_wins(raw, heur, run.mode)
    if not milp_ok and heur is None:
        return SolveResult(
            status=raw.status, solve_time_s=raw.solve_time_s, build_time_s=build_time, solver=raw.solver, info=info
        )
    if raw.status is SolveStatus.INFEASIBLE:
        logger.warning("the MILP reports infeasible but the heuristic design is feasible")
    if (
        skip_reason is not None
        and heur is not None
        and run.mode == "min_cost"
        and heur.objective <= raw.bound + 1e-9 * max(1.0, abs(raw.bound))
    ):
        raw = dataclasses.replace(raw, status=SolveStatus.OPTIMAL)  # proven by the bound
    design = _chosen_design(run, raw, model, milp_ok, info)
    if run.mode == "max_min_rate":
        _max_min_rate_finish(run, design, model, info, tie_break_cost=tie_break_cost)
    return _spacing_result(run, design, raw.solver, build_time, info)


def reduce_and_start(run: SpacingRun, *, plan_reachable: bool, use_heuristic: bool, presolve: bool) -> None:
    """Set aside unreachable demands, drop dominated ones and find the heuristic design (MIP start).

    Raises :class:`RepeaterInfeasible` when unreachable demands may not be set aside (or all
    are) and, in min-cost mode without a heuristic design, when a demand cannot reach its target.
    """
    data, mode = run.data, run.mode
    run.unreachable = unreachable_demands(data) if mode == "min_cost" else {}
    if run.unreachable:
        if not plan_reachable or len(run.unreachable) == len(data.demand_ids):
            raise unreachable_error(data, run.unreachable)
        logger.warning(
            "repeater spacing: %d demand(s) cannot reach their rate target with any spacing; planning the other %d",
            len(run.unreachable),
            len(data.demand_ids) - len(run.unreachable),
        )
        data = run.data = subset_demands(data, [d for d in data.demand_ids if d not in run.unreachable])
    run.reduced, run.n_dropped = drop_dominated_demands(data, mode=mode) if presolve else (data, 0)
    # the heuristic runs on the reduced demands: a design meets every reduced demand's target
    # exactly when it meets every demand's (exact dominance), and the minimum rate is the same
    run.heur = (
        heuristic_spacing(run.reduced, mode=mode, budget=run.budget, deadline=run.deadline) if use_heuristic else None
    )
    if run.heur is not None:
        logger.info("repeater heuristic: objective %.6g in %.2fs", run.heur.objective, run.heur.time_s)
    elif mode == "min_cost":
        # a design meeting every target proves each demand reachable, so the per-demand
        # pre-check is only needed when no design is known
        precheck_min_cost(data, run.deadline)


def plan_model(
    run: SpacingRun, max_nonzeros: int
) -> tuple[str | None, tuple[dict[Hashable, int], dict[Hashable, set[int]]], dict[str, int]]:
    """Presolve and estimate the model; returns (reason not to build it or None, presolve, size estimate).

    The model is not built when the heuristic design costs no more than the presolve bound
    (it is optimal), or when a heuristic design exists and the model exceeds ``max_nonzeros``
    or its build would not fit in the time left.
    """
    reduced, mode, heur = run.reduced, run.mode, run.heur
    skip_reason = None
    size = {"n_variables": 0, "n_constraints": 0, "n_nonzeros": 0}
    if heur is not None and mode == "min_cost":
        n_lo_only, _ = presolve_spacing(reduced, mode=mode, hop_counts=False)
        floor_bound = presolve_bound(reduced, n_lo_only, mode="min_cost")
        if heur.objective <= floor_bound + 1e-9 * max(1.0, abs(floor_bound)):
            skip_reason = "model not built: the heuristic design costs no more than the presolve bound (optimal)"
            presolved: tuple[dict[Hashable, int], dict[Hashable, set[int]]] = (n_lo_only, {})
    if skip_reason is None:
        floor = rate_of_log(heur.objective) if heur is not None and mode == "max_min_rate" else None
        presolved = presolve_spacing(reduced, mode=mode, rate_floor=floor)
        size = estimate_spacing_size(reduced, *presolved)
    left_s = run.deadline - time.perf_counter()
    if heur is not None and skip_reason is None:
        if size["n_nonzeros"] > max_nonzeros:
            skip_reason = (
                f"model not built: about {size['n_nonzeros']:,} nonzeros "
                f"({size['n_variables']:,} variables) exceed the limit of {max_nonzeros:,}"
            )
        elif size["n_nonzeros"] / BUILD_NONZEROS_PER_S + MIN_SOLVE_S > left_s:
            skip_reason = (
                f"model not built: building about {size['n_nonzeros']:,} nonzeros would not "
                f"fit in the {max(left_s, 0.0):.1f} s left of the time limit"
            )
    return skip_reason, presolved, size


def build_and_solve(
    run: SpacingRun,
    skip_reason: str | None,
    presolved: tuple[dict[Hashable, int], dict[Hashable, set[int]]],
    size: dict[str, int],
    *,
    tie_break_cost: bool,
) -> tuple[RawSolve, pyo.ConcreteModel | None, tuple[int, int], float]:
    """Build and solve the MILP (warm-started from the heuristic design), or, with a ``skip_reason``,
    stand in for it with the presolve bound. Returns (solve, model or None, (variables, constraints),
    build time in s). Sets ``run.first_limit_s`` to the limit the solve was given."""
    mode, heur, opts = run.mode, run.heur, run.opts
    if skip_reason is not None:
        assert heur is not None
        # proven optimal by the presolve bound is good news (info); a size or time skip is a warning
        level = logging.INFO if skip_reason.endswith("(optimal)") else logging.WARNING
        logger.log(level, "repeater spacing: %s; the heuristic design is returned with a bound", skip_reason)
        bound = presolve_bound(run.reduced, presolved[0], mode=mode)
        raw = RawSolve(
            status=SolveStatus.TIME_LIMIT_NO_SOLUTION,
            objective=math.nan,
            bound=bound,
            gap=math.nan,
            solve_time_s=0.0,
            solver="none",
        )
        return raw, None, (size["n_variables"], size["n_constraints"]), time.perf_counter() - run.t0
    floor = rate_of_log(heur.objective) if heur is not None and mode == "max_min_rate" else None
    model = build_spacing_model(run.reduced, mode=mode, budget=run.budget, rate_floor=floor, presolved=presolved)
    if heur is not None:
        set_warm_start(model, heur)
    build_time = time.perf_counter() - run.t0
    counts = (model.nvariables(), model.nconstraints())
    left_s = max(0.0, run.deadline - time.perf_counter())
    if mode == "max_min_rate" and tie_break_cost:
        left_s *= 0.75  # a quarter is kept for the cost tie-break
    run.first_limit_s = min(opts.time_limit_s, left_s)
    raw = solve_model(model, dataclasses.replace(opts, time_limit_s=run.first_limit_s))
    return raw, model, counts, build_time


def _record_run(
    info: dict[str, Any],
    run: SpacingRun,
    raw: RawSolve,
    size: dict[str, int],
    counts: tuple[int, int],
    skip_reason: str | None,
) -> None:
    """Record the model size, the demands planned and the heuristic design's objective in ``info``."""
    info.update(
        {
            "mode": run.mode,
            "n_variables": counts[0],
            "n_constraints": counts[1],
            "n_nonzeros_estimate": size["n_nonzeros"],
            "n_links": len(run.data.links),
            "n_demands": len(run.data.demand_ids),
            "n_demands_dominated": run.n_dropped,
            "milp_status": "not built" if skip_reason is not None else str(raw.status),
        }
    )
    heur = run.heur
    if heur is not None:
        info["heuristic_objective"] = heur.objective if run.mode == "min_cost" else rate_of_log(heur.objective)
        info["heuristic_time_s"] = heur.time_s


def _milp_wins(raw: RawSolve, heur: HeuristicDesign | None, mode: SpacingMode) -> bool:
    """Whether the MILP's solution is returned: it has one, and it is at least as good as the
    heuristic design (or proven optimal)."""
    milp_ok = raw.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    if milp_ok and heur is not None:
        better = (
            raw.objective <= heur.objective + 1e-9 * max(1.0, abs(heur.objective))
            if mode == "min_cost"
            else raw.objective >= heur.objective - 1e-9
        )
        milp_ok = better or raw.status is SolveStatus.OPTIMAL
    return milp_ok


def _model_design(model: pyo.ConcreteModel, repeaters: dict[Hashable, int], choice: dict[Hashable, int]) -> None:
    """Read the chosen link options and paths of a solved model into ``repeaters`` and ``choice``."""
    for lid, n in model.LO:
        if pyo.value(model.x[lid, n]) > 0.5:
            repeaters[lid] = n
    for d, j in model.DPv:
        if pyo.value(model.u[d, j]) > 0.5:
            choice[d] = j


def _chosen_design(
    run: SpacingRun, raw: RawSolve, model: pyo.ConcreteModel | None, milp_ok: bool, info: dict[str, Any]
) -> _SpacingDesign:
    """The MILP's design when it wins (``milp_ok``), else the heuristic one; records ``info["source"]``."""
    repeaters: dict[Hashable, int] = {lid: 0 for lid in run.data.links.index}
    if milp_ok:
        info["source"] = "milp"
        assert model is not None
        choice: dict[Hashable, int] = {}
        _model_design(model, repeaters, choice)
        # dominated demands (not in the model) keep their only path: index 0
        return _SpacingDesign(repeaters, choice, raw.objective, raw.bound, raw.gap, raw.status, raw.solve_time_s)
    heur = run.heur
    assert heur is not None
    status = SolveStatus.OPTIMAL if raw.status is SolveStatus.OPTIMAL else SolveStatus.HEURISTIC
    info["source"] = "heuristic"
    repeaters.update(heur.repeaters)
    return _SpacingDesign(
        repeaters,
        dict(heur.path_choice),
        heur.objective,
        raw.bound,
        relative_gap(heur.objective, raw.bound),
        status,
        raw.solve_time_s,
    )


def _max_min_rate_finish(
    run: SpacingRun,
    design: _SpacingDesign,
    model: pyo.ConcreteModel | None,
    info: dict[str, Any],
    *,
    tie_break_cost: bool,
) -> None:
    """Max-min mode: objective and bound from log space to rates, then (with ``tie_break_cost``,
    an optimal MILP and enough time left) the least-cost design at the optimal minimum rate."""
    info["objective_log"] = design.objective
    info["bound_log"] = design.bound
    design.objective, design.bound = (
        rate_of_log(design.objective),
        rate_of_log(design.bound) if math.isfinite(design.bound) else math.nan,
    )
    design.gap = relative_gap(design.objective, design.bound)
    # the limits handed to the solver sum to at most the time limit
    left_s = min(run.deadline - time.perf_counter(), run.opts.time_limit_s - run.first_limit_s)
    if not (tie_break_cost and design.status is SolveStatus.OPTIMAL and model is not None and left_s >= MIN_SOLVE_S):
        return
    eta_star = float(pyo.value(model.eta))
    model.eta.setlb(eta_star - 1e-7)
    model.objective.deactivate()
    model.cost_objective = pyo.Objective(expr=cost_expr(model), sense=pyo.minimize)
    # the tie-break gets what is left of the time limit (skipped when too little is left)
    raw2 = solve_model(model, dataclasses.replace(run.opts, time_limit_s=left_s))
    design.solve_time_s += raw2.solve_time_s
    if raw2.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        # no incumbent was loaded, so the variables still hold the first solution
        logger.warning("cost tie-break solve ended with %s; keeping the first solution", raw2.status)
    info["tie_break_status"] = str(raw2.status)
    _model_design(model, design.repeaters, design.choice)


def _spacing_result(
    run: SpacingRun, design: _SpacingDesign, solver: str, build_time_s: float, info: dict[str, Any]
) -> SolveResult:
    """The :class:`SolveResult` of a design: tables re-evaluated on every demand (Eqs. 7-10), totals in ``info``."""
    links_out, demands_out = evaluate_spacing(run.full, design.repeaters, design.choice)
    unreachable = run.unreachable
    if unreachable:
        info["unreachable"] = dict(unreachable)
        demands_out["shortfall"] = np.maximum(demands_out["rate_target"] - demands_out["rate"], 0.0)
    if (
        run.mode == "min_cost"
        and not demands_out.loc[~demands_out["demand"].isin(list(unreachable)), "meets_target"].all()
    ):
        bad = demands_out.loc[
            ~demands_out["meets_target"] & ~demands_out["demand"].isin(list(unreachable)), "demand"
        ].tolist()
        logger.warning("solution misses targets for %s after re-evaluation (solver tolerance)", bad)
    info["total_repeaters"] = int(links_out["repeaters"].sum())
    info["total_cost"] = float(links_out["cost"].sum())
    info["min_rate"] = float(demands_out["rate"].min())
    return SolveResult(
        status=design.status,
        objective=design.objective,
        bound=design.bound,
        gap=design.gap,
        solve_time_s=design.solve_time_s,
        build_time_s=build_time_s,
        solver=solver,
        tables={"links": links_out, "demands": demands_out},
        info=info,
    )
