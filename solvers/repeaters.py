"""Repeater spacing on backbone links (cluster paper, Eqs. 7-10).

For every backbone link the model chooses how many equally spaced
entanglement repeaters it gets (one-hot options ``0..max_repeaters``). A link
of length ``L`` with ``n`` repeaters has ``n + 1`` segments of ``L / (n + 1)``
km. The model evaluates no formula of the physics: the caller hands it the
numbers (:class:`ChainTables`, built by the planner's
:mod:`planner.stages.repeater_tables`): per link option the Eq. 7 success
probability ``p_l(n)`` of one segment (and its log) and the Eq. 8 time summed
over the segments; per hop count ``k`` the rate factor ``f(k) = m g(k)`` of
Eq. 9 (and its log) and the swap latency ``s(k) = k (t_mea + t_ret)`` of Eq. 10.

Every demand runs over one backbone path, fixed or chosen among its candidate
paths. Its chain has ``k`` = the total number of segments (hops) along the
path and its distribution ratio follows Eq. 9, ``lam = p * f(k)`` with ``p``
the success probability of the *worst* segment on the path: Eq. 9 is stated
for a homogeneous chain, and using the worst segment for every hop makes the
prediction a lower bound for an inhomogeneous one.

Both nonlinearities are exact in the model:

* ``log f(k)`` through a one-hot choice of ``k`` per demand, tied to the
  link options by ``sum_k k * z[d,k] = sum_{l on path} (n_l + 1)``;
* ``log p_worst`` through ``y[d] <= log p_l(n_l)`` for every link on the path
  (``log p_l(n_l)`` is linear in the one-hot link option), which is tight
  because every constraint and objective asks for a large ``y``.

The Eq. 10 latency limit ``sum_i t_i / lam + s(k) <= T`` is
linearised exactly as ``sum_i t_i <= sum_k (T - s(k)) f(k) w[d,k]``
with ``w[d,k] = z[d,k] * p_lin[d]`` (product of a binary and a continuous
variable in [0, 1]; only the upper McCormick inequalities are needed because
the constraint asks for a large ``w``).

Modes: ``"min_cost"`` (least repeater cost such that every demand meets its
rate target and latency limit) and ``"max_min_rate"`` (maximise the minimum
rate, in log space, under a repeater budget), see :func:`solve_spacing`.

Speed on real networks (hundreds of demands) comes from three exact steps and
one heuristic: :func:`drop_dominated_demands` removes demands whose path is a
subset of another's with no higher target (valid because ``f(k)`` is
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
the parts it is built from: :mod:`solvers.repeaters_data` (chain tables, validated tables,
design evaluation), :mod:`solvers.repeaters_bounds` (exact presolve and bounds),
:mod:`solvers.repeaters_heuristic` (fast designs), :mod:`solvers.repeaters_model`
(the MILP and its infeasibility diagnosis) and :mod:`solvers.repeaters_run` (the
phases of one solve).
"""

from __future__ import annotations

import pandas as pd

from solvers.base import SolveResult, SolverOptions, SolveStatus
from solvers.repeaters_bounds import (
    best_single_rate,
    drop_dominated_demands,
    presolve_spacing,
    rate_upper_bounds,
    unreachable_demands,
)
from solvers.repeaters_data import (
    ChainTables,
    RepeaterInfeasible,
    RepeaterInputError,
    SpacingData,
    SpacingMode,
    candidate_link_paths,
    evaluate_spacing,
    link_options,
    prepare_spacing_data,
    rate_factor_nonincreasing,
)
from solvers.repeaters_heuristic import HeuristicDesign, heuristic_spacing
from solvers.repeaters_model import build_spacing_model, diagnose_infeasible, estimate_spacing_size, set_warm_start
from solvers.repeaters_run import (
    build_and_solve,
    finish,
    out_of_time,
    plan_model,
    raise_infeasible,
    reduce_and_start,
    start_run,
)

__all__ = [
    "ChainTables",
    "HeuristicDesign",
    "RepeaterInfeasible",
    "RepeaterInputError",
    "SpacingData",
    "SpacingMode",
    "best_single_rate",
    "build_spacing_model",
    "candidate_link_paths",
    "diagnose_infeasible",
    "drop_dominated_demands",
    "estimate_spacing_size",
    "evaluate_spacing",
    "heuristic_spacing",
    "link_options",
    "prepare_spacing_data",
    "presolve_spacing",
    "rate_factor_nonincreasing",
    "rate_upper_bounds",
    "set_warm_start",
    "solve_spacing",
    "unreachable_demands",
]


def solve_spacing(
    links: pd.DataFrame,
    demands: pd.DataFrame,
    tables: ChainTables,
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

    ``tables`` (:class:`ChainTables`) holds every number of the physics the model uses.
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
    run = start_run(links, demands, tables, mode=mode, budget=budget, latency_limit_s=latency_limit_s, options=options)
    reduce_and_start(run, plan_reachable=plan_reachable, use_heuristic=use_heuristic, presolve=presolve)
    skip_reason, presolved, size = plan_model(run, max_nonzeros)
    stopped = out_of_time(run, size)
    if stopped is not None:
        return stopped
    solved = build_and_solve(run, skip_reason, presolved, size, tie_break_cost=tie_break_cost)
    if solved[0].status is SolveStatus.INFEASIBLE and run.heur is None:
        raise_infeasible(run, diagnose=diagnose)
    return finish(run, solved, size, skip_reason, tie_break_cost=tie_break_cost)
