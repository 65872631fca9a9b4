"""Solve the clustering MILP of :mod:`solvers.clustering` on one instance (:func:`solve_clustering`),
warm-started by the heuristics of :mod:`solvers.heuristics`, with a diagnosis when it is infeasible.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from solvers import heuristics as _heuristics
from solvers.base import SolverError, SolveResult, SolverOptions, SolveStatus, relative_gap
from solvers.clustering_arrays import build_clustering_arrays, solve_arrays
from solvers.clustering_bounds import integral_cost_bound, keys_upper_bound, lp_relaxation_bound
from solvers.clustering_data import (
    ClusteringData,
    ClusteringIndex,
    ClusteringInfeasible,
    ClusteringOptions,
    ClusteringSolution,
    check_solution,
    prepare,
    result_from_solution,
    solution_from_values,
    solution_terms,
    solution_vector,
)
from solvers.clustering_diagnose import diagnose
from solvers.clustering_model import build_clustering_model
from solvers.highs_driver import solve_model

logger = logging.getLogger(__name__)


def elastic_diagnosis(
    idx: ClusteringIndex, options: ClusteringOptions, solver_options: SolverOptions
) -> tuple[list[str], list[str]]:
    """Solve the elastic relaxation; return the families with nonzero slack and details."""
    model = build_clustering_arrays(idx, options, elastic=True)
    res = solve_arrays(model, solver_options)
    if res.values is None:
        return [], ["the elastic relaxation could not be solved within the time limit"]
    slack = res.values[model.n_y + model.n_x + model.n_ekert :]
    fam = np.asarray(model.slack_family, dtype=object)
    conflicts: list[str] = []
    details: list[str] = []
    for name in dict.fromkeys(model.slack_family):
        total = float(slack[fam == name].sum())
        if total > 1e-6:
            conflicts.append(name)
            details.append(f"'{name}' must be relaxed by {total:.6g} in total to make the model feasible")
    return conflicts, details


def _choose_backend(idx: ClusteringIndex, options: ClusteringOptions) -> str:
    if options.backend != "auto":
        return options.backend
    return "pyomo" if idx.n_pairs <= options.auto_pyomo_max_pairs else "highspy"


MILP_SETUP_S_PER_PAIR = 3e-6
"""Seconds per pair that building and presolving the clustering MILP take at least (us-10000's
largest reach component, 970 000 pairs: about 3 s, whatever the time limit). A solve whose wall
time left is below this is not started: it could only pass its limit."""


def milp_fits(n_pairs: int, left_s: float) -> bool:
    """Whether a clustering MILP of ``n_pairs`` pairs is worth starting with ``left_s`` seconds
    left (:data:`MILP_SETUP_S_PER_PAIR`)."""
    return left_s > 0.0 and left_s >= MILP_SETUP_S_PER_PAIR * n_pairs


@dataclass
class _MilpRun:
    """What one MILP solve gave: status, objective, bound, gap, times, the (y, x) values of its
    solution (None without one), model sizes and extra info (LP bound)."""

    status: SolveStatus
    objective: float
    bound: float
    gap: float
    solve_s: float
    build_s: float
    values: tuple[np.ndarray, np.ndarray] | None
    n_vars: int
    n_cons: int
    info: dict[str, object] = field(default_factory=dict)


def solve_clustering(
    data: ClusteringData,
    options: ClusteringOptions | None = None,
    solver_options: SolverOptions | None = None,
    *,
    known_heuristic: tuple[ClusteringSolution | None, float] | None = None,
) -> SolveResult:
    """Choose masters and assign every site, optimally or with a reported gap.

    ``known_heuristic``: the heuristic's solution (``None`` if it found none) and its time, when
    the caller has already run it on the same data and options (it is then not run again).

    Guarantees: a returned result with a solution satisfies every constraint family
    (checked); ``tables["assignment"]`` lists every site once, ``tables["clusters"]`` every
    open master. Raises :class:`ClusteringInputError` for malformed tables and
    :class:`ClusteringInfeasible` (naming the conflicting families) when no clustering exists.
    When the time limit ends the search without a MILP solution but the heuristic found one,
    the heuristic solution is returned with status ``FEASIBLE`` and ``info["source"] = "heuristic"``.

    Time: the warm-start heuristic stops at the limit (one step of it may pass it,
    :func:`solvers.heuristics.heuristic_search`); the MILP (and the elastic diagnosis of an
    infeasible model) is not started when the wall time left is below what building and
    presolving it take (:func:`milp_fits`), so the solve keeps its limit up to that step.
    """
    options = options or ClusteringOptions()
    solver_options = solver_options or SolverOptions()
    t0 = time.perf_counter()
    limit_s = float(solver_options.time_limit_s)
    idx = prepare(data, options)
    conflicts, details = diagnose(idx, options)
    if conflicts:
        raise ClusteringInfeasible("No clustering satisfies the settings.", conflicts=conflicts, details=details)
    prep_s = time.perf_counter() - t0
    start_sol, heur_info = _warm_start(idx, options, known_heuristic, t0 + limit_s)
    shortcut = _bound_shortcut(idx, options, solver_options, start_sol, heur_info, prep_s)
    if shortcut is not None:
        return shortcut
    backend = _choose_backend(idx, options)
    run = None
    if milp_fits(idx.n_pairs, limit_s - (time.perf_counter() - t0)):
        runner = _run_pyomo if backend == "pyomo" else _run_arrays
        run = runner(idx, options, solver_options, start_sol, t0)
    info: dict[str, object] = {
        "backend": backend if run is not None else "none (no time left)",
        "n_variables": run.n_vars if run is not None else 0,
        "n_constraints": run.n_cons if run is not None else 0,
        "n_binaries": int(idx.n_cands + idx.n_pairs),
        "prepare_time_s": prep_s,
        "strong_linking": options.strong_linking,
        **heur_info,
        **(run.info if run is not None else {}),
    }
    if run is None:
        run = _MilpRun(SolveStatus.TIME_LIMIT_NO_SOLUTION, math.nan, math.nan, math.nan, 0.0, 0.0, None, 0, 0)
    if run.status is SolveStatus.INFEASIBLE:
        diag_s = max(0.1 * limit_s, limit_s - (time.perf_counter() - t0))  # its tenth, or what is left
        conflicts, details = (
            elastic_diagnosis(idx, options, dataclasses.replace(solver_options, time_limit_s=0.1 * limit_s))
            if milp_fits(idx.n_pairs, diag_s)
            else ([], ["the elastic relaxation was not started: no time left"])
        )
        raise ClusteringInfeasible(
            "No clustering satisfies the settings (the MILP is infeasible).", conflicts=conflicts, details=details
        )
    if run.values is None:
        return _without_milp_solution(idx, options, start_sol, run, backend, info)
    return _with_milp_solution(idx, options, solver_options, run, backend, info)


def _warm_start(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    known: tuple[ClusteringSolution | None, float] | None,
    deadline: float,
) -> tuple[ClusteringSolution | None, dict[str, object]]:
    """The heuristic's clustering (``known`` when given, else run until ``deadline``) and its info
    (time, objective); (None, {}) without ``options.warm_start``."""
    heur_info: dict[str, object] = {}
    if not options.warm_start:
        return None, heur_info
    th = time.perf_counter()
    if known is not None:
        start_sol, heur_info["heuristic_time_s"] = known
    else:
        start_sol = _heuristics.heuristic_search(idx, options, deadline=deadline)[0]
        heur_info["heuristic_time_s"] = time.perf_counter() - th
    if start_sol is not None:
        heur_info["heuristic_objective"] = solution_terms(idx, options, start_sol)["objective"]
    return start_sol, heur_info


def _bound_shortcut(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    solver_options: SolverOptions,
    start_sol: ClusteringSolution | None,
    heur_info: dict[str, object],
    prep_s: float,
) -> SolveResult | None:
    """The heuristic's clustering as OPTIMAL when the counting bound proves it within ``mip_gap``
    (``max_keys`` with ``options.bound_shortcut``); None otherwise."""
    if not (options.bound_shortcut and options.objective == "max_keys" and start_sol is not None):
        return None
    comb = keys_upper_bound(idx, options)
    h_obj = float(heur_info["heuristic_objective"])  # type: ignore[arg-type]
    h_gap = relative_gap(h_obj, comb)
    if not (math.isfinite(h_gap) and h_gap <= solver_options.mip_gap):
        return None
    sizes = build_clustering_arrays(idx, options)
    info: dict[str, object] = {
        "backend": "none",
        "n_variables": sizes.n_cols,
        "n_constraints": sizes.n_rows,
        "n_binaries": idx.n_cands + idx.n_pairs,
        "prepare_time_s": prep_s,
        "bound_counting": comb,
        "source": "heuristic, proven within mip_gap by the counting bound",
        **heur_info,
    }
    return result_from_solution(
        idx, options, start_sol, status=SolveStatus.OPTIMAL, bound=comb, gap=h_gap,
        solve_time_s=float(heur_info["heuristic_time_s"]),  # type: ignore[arg-type]
        build_time_s=0.0, solver="heuristic+bound", info=info,
    )  # fmt: skip


def _run_pyomo(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    solver_options: SolverOptions,
    start_sol: ClusteringSolution | None,
    t0: float,
) -> _MilpRun:
    """The Pyomo model solved with 90 % of the limit (a tenth kept for a diagnosis), never past
    ``t0`` + limit; started from ``start_sol`` when given."""
    tb = time.perf_counter()
    model = build_clustering_model(idx, options)
    if start_sol is not None:
        vec = solution_vector(idx, start_sol)
        for c in range(idx.n_cands):
            if not model.y[c].fixed:
                model.y[c].set_value(vec[c])
            model.ekert[c].set_value(vec[idx.n_cands + idx.n_pairs + c])
        for p in range(idx.n_pairs):
            model.x[p].set_value(vec[idx.n_cands + p])
    build_s = time.perf_counter() - tb
    # a tenth of the limit is kept for the elastic diagnosis should the model be infeasible
    wall_left = max(0.01, solver_options.time_limit_s - (time.perf_counter() - t0))
    raw = solve_model(
        model, dataclasses.replace(solver_options, time_limit_s=min(0.9 * solver_options.time_limit_s, wall_left))
    )
    values = None
    if raw.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        y = np.array([pyo.value(model.y[c]) for c in range(idx.n_cands)], dtype=float)
        x = np.array([pyo.value(model.x[p]) for p in range(idx.n_pairs)], dtype=float)
        values = (y, x)
    return _MilpRun(
        raw.status, raw.objective, raw.bound, raw.gap, raw.solve_time_s, build_s, values,
        int(model.nvariables()), int(model.nconstraints()),
    )  # fmt: skip


def _run_arrays(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    solver_options: SolverOptions,
    start_sol: ClusteringSolution | None,
    t0: float,
) -> _MilpRun:
    """The array model solved through ``highspy``: with ``options.lp_bound`` the LP relaxation gets
    a quarter of the limit and the MILP 65 %, else the MILP 90 % (a tenth kept for a diagnosis),
    never past ``t0`` + limit; started from ``start_sol`` when given."""
    tb = time.perf_counter()
    amodel = build_clustering_arrays(idx, options)
    build_s = time.perf_counter() - tb
    start = solution_vector(idx, start_sol) if start_sol is not None else None
    info: dict[str, object] = {}
    if options.lp_bound:
        lp_bound, lp_s = lp_relaxation_bound(amodel, solver_options)
        info["lp_bound"] = lp_bound
        info["lp_bound_time_s"] = lp_s
        # the LP was handed a quarter of the limit; the MILP gets the rest (less a tenth
        # kept for a diagnosis): 0.25 + 0.65 + 0.1, so the limits handed sum to the limit
        milp_options = dataclasses.replace(solver_options, time_limit_s=0.65 * solver_options.time_limit_s)
    else:
        milp_options = dataclasses.replace(solver_options, time_limit_s=0.9 * solver_options.time_limit_s)
    # the limit covers building too: never past t0 + limit
    wall_left = max(0.01, solver_options.time_limit_s - (time.perf_counter() - t0))
    milp_options = dataclasses.replace(milp_options, time_limit_s=min(milp_options.time_limit_s, wall_left))
    ares = solve_arrays(amodel, milp_options, start=start)
    values = None
    if ares.values is not None:
        values = (ares.values[: idx.n_cands], ares.values[idx.n_cands : idx.n_cands + idx.n_pairs])
    return _MilpRun(
        ares.status, ares.objective, ares.bound, ares.gap, ares.solve_time_s, build_s, values,
        int(amodel.n_cols), int(amodel.n_rows), info,
    )  # fmt: skip


def _without_milp_solution(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    start_sol: ClusteringSolution | None,
    run: _MilpRun,
    backend: str,
    info: dict[str, object],
) -> SolveResult:
    """No MILP solution in time: the heuristic's clustering (FEASIBLE, with the best valid bound
    for ``max_keys``: solver, LP or counting), or no solution with the solver's status."""
    if start_sol is None:
        return SolveResult(status=run.status, bound=run.bound, solve_time_s=run.solve_s, build_time_s=run.build_s,
                           solver=f"highs-{backend}", info=info)  # fmt: skip
    info["source"] = "heuristic"
    bound, h_gap = run.bound, math.nan
    if options.objective == "max_keys":  # still report a valid bound: the best of solver, LP, counting
        lp_b = float(info.get("lp_bound", math.nan))  # type: ignore[arg-type]
        bound = min(b for b in (bound, lp_b, keys_upper_bound(idx, options), math.inf) if math.isfinite(b))
        h_gap = relative_gap(float(info.get("heuristic_objective", math.nan)), bound)  # type: ignore[arg-type]
    return result_from_solution(
        idx, options, start_sol, status=SolveStatus.FEASIBLE, bound=bound, gap=h_gap,
        solve_time_s=run.solve_s, build_time_s=run.build_s, solver=f"highs-{backend}", info=info,
    )  # fmt: skip


def _with_milp_solution(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    solver_options: SolverOptions,
    run: _MilpRun,
    backend: str,
    info: dict[str, object],
) -> SolveResult:
    """The MILP's clustering (checked) with the tightest valid bound (solver, counting, LP,
    integral rounding); OPTIMAL when that bound proves it within ``mip_gap``."""
    assert run.values is not None
    status, bound, gap = run.status, run.bound, run.gap
    info["bound_solver"] = bound
    lp_b = float(info.get("lp_bound", math.nan))  # type: ignore[arg-type]
    if options.objective == "max_keys":
        comb = keys_upper_bound(idx, options)
        info["bound_counting"] = comb
        best_bound = min(b for b in (bound, comb, lp_b) if math.isfinite(b))
    else:
        finite = [b for b in (bound, lp_b) if math.isfinite(b)]
        best_bound = max(finite) if finite else math.nan
        best_bound = integral_cost_bound(idx, best_bound)
    if math.isfinite(best_bound) and best_bound != bound:
        bound = best_bound
        gap = relative_gap(run.objective, bound)
        if status is SolveStatus.FEASIBLE and gap <= solver_options.mip_gap:
            status = SolveStatus.OPTIMAL
    sol = solution_from_values(idx, run.values[0], run.values[1])
    bad = check_solution(idx, options, sol)
    if bad:
        raise SolverError(f"the solver returned a clustering that violates {bad}")
    info["source"] = "milp"
    return result_from_solution(
        idx, options, sol, status=status, objective=run.objective, bound=bound, gap=gap,
        solve_time_s=run.solve_s, build_time_s=run.build_s, solver=f"highs-{backend}", info=info,
    )  # fmt: skip
