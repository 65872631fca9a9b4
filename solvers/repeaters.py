"""Repeater spacing on backbone links (cluster paper, Eqs. 7-10).

For every backbone link the model chooses how many equally spaced
entanglement repeaters it gets (one-hot options ``0..max_repeaters``). A link
of length ``L`` with ``n`` repeaters has ``n + 1`` segments of ``L / (n + 1)``
km, each with the Eq. 7 success probability ``p = 10**(-alpha * L / (n+1) / 10)``.

Every demand runs over one backbone path, fixed or chosen among its candidate
paths. Its chain has ``k`` = the total number of segments (hops) along the
path and its distribution ratio follows Eq. 9, ``lam = m * p * g(k)`` with
``g`` the hop factor (a table the caller computes, :class:`ChainParameters`) and ``p`` the success probability of
the *worst* (longest) segment on the path: Eq. 9 is stated for a homogeneous
chain, and using the worst segment for every hop makes the prediction a lower
bound for an inhomogeneous one.

Both nonlinearities are exact in the model:

* ``log g(k)`` through a one-hot choice of ``k`` per demand, tied to the
  link options by ``sum_k k * z[d,k] = sum_{l on path} (n_l + 1)``;
* ``log p_worst`` through ``y[d] <= log p_l(n_l)`` for every link on the path
  (``log p_l(n_l)`` is linear in the one-hot link option), which is tight
  because every constraint and objective asks for a large ``y``.

The Eq. 10 latency limit ``sum_i t_i / lam + k * (t_mea + t_ret) <= T`` is
linearised exactly as ``sum_i t_i <= sum_k (T - k (t_mea + t_ret)) m g(k) w[d,k]``
with ``w[d,k] = z[d,k] * p_lin[d]`` (product of a binary and a continuous
variable in [0, 1]; only the upper McCormick inequalities are needed because
the constraint asks for a large ``w``).

Modes: ``"min_cost"`` (least repeater cost such that every demand meets its
rate target and latency limit) and ``"max_min_rate"`` (maximise the minimum
rate, in log space, under a repeater budget), see :func:`solve_spacing`.

Speed on real networks (hundreds of demands) comes from three exact steps and
one heuristic: :func:`drop_dominated_demands` removes demands whose path is a
subset of another's with no higher target (valid because ``g(k)`` is
non-increasing, which is checked); :func:`presolve_spacing` removes link
options too short of the targets and hop counts that cannot reach them;
links no demand uses never enter the model; and :func:`heuristic_spacing`
finds a good design in well under a second, which is the MIP start and the
answer whenever the MILP finds nothing better within its time limit.

At national scale (tens of thousands of demands) the stage stays near-linear:
input tables are read as plain dicts (no per-row pandas access); dominance
uses per-link bit masks of the kept demands; the heuristic runs on the
reduced demands, evaluates whole designs with numpy and re-evaluates only the
demands using a changed link during greedy removal; the per-demand pre-check
runs only when the heuristic finds no design (a design meeting every target
proves each demand reachable). The model is never built blind: when the
heuristic's cost equals the exact presolve bound (every link's least useful
repeater count) it is optimal and no model is built; otherwise the size is
estimated (:func:`estimate_spacing_size`) and, if it exceeds ``max_nonzeros``
or its build would not fit in the time left, the heuristic design is returned
with that bound. Measured on 1 139 German cities (71 253 demands): over 15
minutes before, 23 s after (see ``benchmarks/results_scale_real.md``).

This module holds the solve (:func:`solve_spacing`) and re-exports the public names of
the parts it is built from: :mod:`solvers.repeaters_data` (parameters, validated tables,
design evaluation), :mod:`solvers.repeaters_bounds` (exact presolve and bounds),
:mod:`solvers.repeaters_heuristic` (fast designs) and :mod:`solvers.repeaters_model`
(the MILP).
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
    best_single_rate,
    drop_dominated_demands,
    precheck_min_cost,
    presolve_bound,
    presolve_spacing,
    rate_upper_bounds,
    unreachable_demands,
    unreachable_error,
)
from solvers.repeaters_data import (
    ChainParameters,
    RepeaterInfeasible,
    RepeaterInputError,
    SpacingData,
    SpacingMode,
    candidate_link_paths,
    chain_latency_from_segments_s,
    chain_rate,
    evaluate_spacing,
    hop_factor_nonincreasing,
    link_options,
    prepare_spacing_data,
    segment_probability,
    segment_time_s,
    subset_demands,
)
from solvers.repeaters_heuristic import HeuristicDesign, heuristic_spacing
from solvers.repeaters_model import (
    build_spacing_model,
    cost_expr,
    estimate_spacing_size,
    set_warm_start,
)

__all__ = [
    "ChainParameters",
    "HeuristicDesign",
    "RepeaterInfeasible",
    "RepeaterInputError",
    "SpacingData",
    "SpacingMode",
    "best_single_rate",
    "build_spacing_model",
    "candidate_link_paths",
    "chain_latency_from_segments_s",
    "chain_rate",
    "diagnose_infeasible",
    "drop_dominated_demands",
    "estimate_spacing_size",
    "evaluate_spacing",
    "heuristic_spacing",
    "hop_factor_nonincreasing",
    "link_options",
    "prepare_spacing_data",
    "presolve_spacing",
    "rate_upper_bounds",
    "segment_probability",
    "segment_time_s",
    "set_warm_start",
    "solve_spacing",
    "unreachable_demands",
]

logger = logging.getLogger(__name__)


# Pyomo builds the spacing model at roughly this many nonzeros per second on one core (measured
# on the real site lists, conservative); used to decide whether a build fits the time left.
BUILD_NONZEROS_PER_S = 40_000.0
MIN_SOLVE_S = 1.0  # below this, solving is not attempted: the heuristic design stands


def _feasible(
    data: SpacingData,
    mode: SpacingMode,
    budget: float | None,
    options: SolverOptions,
    left_s: list[float] | None = None,
) -> bool:
    """Whether ``data`` has a feasible design; with ``left_s`` (a one-element budget, updated)
    each solve gets half of what is left, so all of them together stay within it."""
    if left_s is not None:
        limit = 0.5 * left_s[0]
        left_s[0] -= limit
        options = dataclasses.replace(options, time_limit_s=min(options.time_limit_s, limit))
    raw = solve_model(build_spacing_model(data, mode=mode, budget=budget), options)
    if raw.status is SolveStatus.TIME_LIMIT_NO_SOLUTION or raw.status is SolveStatus.ERROR:
        return True  # undecided: do not blame this subset
    return raw.status is not SolveStatus.INFEASIBLE


def diagnose_infeasible(
    data: SpacingData, *, mode: SpacingMode, budget: float | None, options: SolverOptions
) -> tuple[list[Hashable], list[str]]:
    """Demands to blame when the full model is infeasible.

    First the demands infeasible on their own (solved one by one); if there are
    none, a deletion filter returns a minimal set of demands that conflict
    jointly (each removal makes the remaining set feasible).
    """
    left = [float(options.time_limit_s)]  # all the diagnosis solves share one limit
    alone = [d for d in data.demand_ids if not _feasible(subset_demands(data, [d]), mode, budget, options, left)]
    if alone:
        return alone, [f"demand {_show(d)} cannot meet its rate target / latency limit on its own" for d in alone]
    keep = list(data.demand_ids)
    for d in list(keep):
        trial = [e for e in keep if e != d]
        if trial and not _feasible(subset_demands(data, trial), mode, budget, options, left):
            keep = trial
    return keep, [f"demands {', '.join(map(repr, keep))} cannot meet their targets together (shared links)"]


# ---------------------------------------------------------------------------
# Solve
# ---------------------------------------------------------------------------


def solve_spacing(
    links: pd.DataFrame,
    demands: pd.DataFrame,
    params: ChainParameters,
    *,
    mode: SpacingMode = "min_cost",
    budget: float | None = None,
    latency_limit_s: float | None = None,
    tie_break_cost: bool = True,
    diagnose: bool = True,
    use_heuristic: bool = True,
    presolve: bool = True,
    options: SolverOptions | None = None,
    max_nonzeros: int = 4_000_000,
    plan_reachable: bool = False,
) -> SolveResult:
    """Choose repeaters per link; returns a :class:`SolveResult` with tables ``links`` and ``demands``.

    ``mode="min_cost"``: least total ``cost_per_repeater * repeaters`` such that
    every demand with a ``rate_target`` reaches it (Eq. 9) and, where given, its
    Eq. 10 latency stays within ``latency_limit_s``. ``objective`` is the cost.
    ``mode="max_min_rate"``: maximise the minimum demand rate under
    ``budget`` (total repeater cost; None = unlimited), then (with
    ``tie_break_cost``) the least cost at that rate; ``objective`` is the
    minimum rate and ``info["objective_log"]`` its logarithm.

    With ``use_heuristic`` a design from :func:`heuristic_spacing` is the MIP
    start; when the MILP ends without a better solution (time limit) that
    design is returned with status HEURISTIC, ``info["source"] == "heuristic"``
    and the gap to the MILP's bound, so a found design is never lost.
    ``presolve`` applies the exact reductions (dominated demands, useless
    options and hop counts). ``info`` also reports ``heuristic_objective``,
    ``heuristic_time_s``, ``n_demands_dominated`` and ``milp_status``.

    ``options.time_limit_s`` covers everything (validation, heuristic,
    presolve, model build and solve). The model's size is estimated first
    (:func:`estimate_spacing_size`); when it exceeds ``max_nonzeros`` or its
    build would not fit in the time left, the MILP is not built and the
    heuristic design is returned with the exact presolve bound
    (:func:`presolve_bound`) and ``info["milp_skipped"]`` saying why.

    ``mode="min_cost"`` first finds, in one vectorised pass
    (:func:`unreachable_demands`), the demands that cannot reach their target
    even with the maximum repeaters on every link. By default they raise
    :class:`RepeaterInfeasible` at once; with ``plan_reachable`` the others are
    planned, the unreachable ones are evaluated on the resulting design (with
    ``meets_target`` False) and listed in ``info["unreachable"]`` (demand ->
    upper bound on its rate), and the demands table gets a ``shortfall``
    column (target minus rate, 0 where met).

    Raises :class:`RepeaterInfeasible` naming the demands that cannot meet
    their targets (a pre-check of each demand's best reachable rate, then, if
    the MILP is infeasible, no heuristic design exists and ``diagnose``,
    single-demand solves and a deletion filter); :class:`RepeaterInputError`
    for invalid tables.
    """
    opts = options or SolverOptions()
    t0 = time.perf_counter()
    data = prepare_spacing_data(
        links,
        demands,
        params,
        latency_limit_s=latency_limit_s,
        require_targets=(mode == "min_cost"),
    )
    if mode not in ("min_cost", "max_min_rate"):
        raise RepeaterInputError(f"mode={_show(mode)} must be 'min_cost' or 'max_min_rate'")
    if mode == "max_min_rate" and budget is not None and not (budget >= 0):
        raise RepeaterInputError(f"budget={_show(budget)} must be >= 0")
    run = _SpacingRun(
        mode=mode,
        budget=budget,
        opts=opts,
        t0=t0,
        deadline=t0 + opts.time_limit_s,  # the limit covers preparing, building and solving
        full=data,
        data=data,
        reduced=data,
    )
    _reduce_and_start(run, plan_reachable=plan_reachable, use_heuristic=use_heuristic, presolve=presolve)
    skip_reason, presolved, size = _plan_model(run, max_nonzeros)
    left_s = run.deadline - time.perf_counter()
    if run.heur is None and size["n_nonzeros"] / BUILD_NONZEROS_PER_S + MIN_SOLVE_S > left_s:
        # no design and no time to build the model: stop at the limit instead of overrunning it
        logger.warning(
            "repeater spacing: no design found and no time left to build the model (about %s nonzeros, %.1f s left)",
            f"{size['n_nonzeros']:,}",
            max(left_s, 0.0),
        )
        return SolveResult(
            status=SolveStatus.TIME_LIMIT_NO_SOLUTION,
            build_time_s=time.perf_counter() - t0,
            solver="none",
            info={"milp_skipped": "no time left to build the model", "unreachable": dict(run.unreachable)},
        )
    info: dict[str, Any] = {}
    if skip_reason is not None:
        info["milp_skipped"] = skip_reason
    raw, model, (n_vars, n_cons), build_time = _build_and_solve(
        run, skip_reason, presolved, size, tie_break_cost=tie_break_cost
    )
    if raw.status is SolveStatus.INFEASIBLE and run.heur is None:
        conflicts, details = (
            diagnose_infeasible(
                run.data,
                mode=mode,
                budget=budget,
                options=dataclasses.replace(opts, time_limit_s=max(0.0, opts.time_limit_s - run.first_limit_s)),
            )
            if diagnose
            else ([], [])
        )
        raise RepeaterInfeasible("Repeater spacing has no feasible design.", conflicts=conflicts, details=details)
    _record_run(info, run, raw, size, (n_vars, n_cons), skip_reason)
    heur = run.heur
    milp_ok = _milp_wins(raw, heur, mode)
    if not milp_ok and heur is None:
        return SolveResult(
            status=raw.status,
            solve_time_s=raw.solve_time_s,
            build_time_s=build_time,
            solver=raw.solver,
            info=info,
        )
    if raw.status is SolveStatus.INFEASIBLE:
        logger.warning("the MILP reports infeasible but the heuristic design is feasible")
    if (
        skip_reason is not None
        and heur is not None
        and mode == "min_cost"
        and heur.objective <= raw.bound + 1e-9 * max(1.0, abs(raw.bound))
    ):
        raw = dataclasses.replace(raw, status=SolveStatus.OPTIMAL)  # proven by the bound
    design = _chosen_design(run, raw, model, milp_ok, info)
    if mode == "max_min_rate":
        _max_min_rate_finish(run, design, model, info, tie_break_cost=tie_break_cost)
    return _spacing_result(run, design, raw.solver, build_time, info)


@dataclass
class _SpacingRun:
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


def _reduce_and_start(run: _SpacingRun, *, plan_reachable: bool, use_heuristic: bool, presolve: bool) -> None:
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


def _plan_model(
    run: _SpacingRun, max_nonzeros: int
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
        floor = math.exp(heur.objective) if heur is not None and mode == "max_min_rate" else None
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


def _build_and_solve(
    run: _SpacingRun,
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
    floor = math.exp(heur.objective) if heur is not None and mode == "max_min_rate" else None
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
    run: _SpacingRun,
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
        info["heuristic_objective"] = heur.objective if run.mode == "min_cost" else math.exp(heur.objective)
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
    run: _SpacingRun, raw: RawSolve, model: pyo.ConcreteModel | None, milp_ok: bool, info: dict[str, Any]
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
    run: _SpacingRun,
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
        math.exp(design.objective),
        math.exp(design.bound) if math.isfinite(design.bound) else math.nan,
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
    run: _SpacingRun, design: _SpacingDesign, solver: str, build_time_s: float, info: dict[str, Any]
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
