"""The clustering solved one reach component at a time (:func:`solve_clustering_by_component`), with
the time limit shared among the components and a fallback per component that finds nothing in time.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from solvers import clustering_solve as _solve
from solvers import heuristics as _heuristics
from solvers.base import SolveResult, SolverOptions, SolveStatus, relative_gap
from solvers.clustering_bounds import fallback_bound
from solvers.clustering_cache import ComponentCache, component_key, current_component_cache
from solvers.clustering_data import (
    ClusteringData,
    ClusteringIndex,
    ClusteringInfeasible,
    ClusteringOptions,
    ClusteringSolution,
    prepare,
    result_from_solution,
)
from solvers.clustering_diagnose import diagnose
from solvers.clustering_greedy import past
from solvers.clustering_parts import reach_components, restrict_to_sites

logger = logging.getLogger(__name__)


COMPONENT_SOLVE_MIN_SITES = 1500
COMPONENT_MIN_S = 1.0
"""Least time a reach component's MILP is handed (when the limit leaves that much per component)."""


def _component_limit(
    left_s: float, weight: float, weight_left: float, n_left: int, needy: bool, n_needy_left: int
) -> float:
    """Time for the next component: its share of what is left (by pairs), at least the floor
    ``min(COMPONENT_MIN_S, left_s / n_left)``, and for a component the heuristic cannot cluster (it
    depends on the MILP) at least half of what is left split among such components; always leaving
    the floor for each of the ``n_left - 1`` later components, so the limits sum to at most ``left_s``."""
    left_s = max(0.0, left_s)
    floor = min(COMPONENT_MIN_S, left_s / max(1, n_left))
    want = max(left_s * weight / max(weight_left, 1e-12), floor)
    if needy:
        want = max(want, 0.5 * left_s / max(1, n_needy_left))
    # keep the floor for each later component
    return max(0.0, min(want, left_s - floor * max(0, n_left - 1)))


LATE_MENDED_MAX_PAIRS = 20_000
"""After the deadline the mended greedy still runs (its first round) on a component of at most this
many pairs (a fraction of a second), not on a larger one (us-10000's largest: seconds)."""

FAILED_SCAN_MAX_SITES = 500
"""Once a reach component is found infeasible, the later components that depend on the MILP are
still solved (to name all infeasible components in one pass) while they have at most this many
sites; a larger one is left for the solve after the unservable sites are dropped."""


def _merged_infeasible(failed: list[tuple[ClusteringData, ClusteringInfeasible]]) -> ClusteringInfeasible:
    """One :class:`ClusteringInfeasible` for the infeasible reach components, carrying their sites."""
    details: list[str] = []
    for sub, exc in failed:
        ids = [str(s) for s in sub.sites.index]
        where = f"reach component of {len(ids)} site(s) ({', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''})"
        details += [f"{where}: {d}" for d in exc.details] or [f"{where}: no clustering"]
    return ClusteringInfeasible(
        f"No clustering satisfies the settings in {len(failed)} reach component(s).",
        conflicts=[c for _sub, exc in failed for c in exc.conflicts],
        details=details,
        sites=[str(s) for sub, _exc in failed for s in sub.sites.index],
    )


def _mended_clustering(
    sub: ClusteringData,
    options: ClusteringOptions,
    cache: ComponentCache | None,
    deadline: float | None = None,
) -> tuple[ClusteringIndex, ClusteringSolution, list[str]] | None:
    """A clustering of all but a few sites of a component, by the mended greedy
    (:func:`solvers.heuristics.unservable_sites_heuristic`): the index of the kept sites, their
    clustering (checked against ``options``) and the left-out site ids; None when it finds none
    (or, not having run before, ``deadline`` has passed and the component has more than
    :data:`LATE_MENDED_MAX_PAIRS` pairs). Inside :func:`component_cache` the search runs once per
    component."""
    key = component_key(sub)
    known = cache.mended.get(key) if cache is not None else None
    if known is None:
        if past(deadline) and len(sub.pairs) > LATE_MENDED_MAX_PAIRS:
            return None
        idx = prepare(sub, options)
        kept: list[dict[str, str]] = []
        found = _heuristics.unservable_sites_heuristic(idx, options, kept=kept, deadline=deadline)
        if found is None or not kept:
            return None
        known = ([str(idx.site_ids[i]) for i in found], kept[-1])
        if cache is not None:
            cache.mended[key] = known
            cache.owner.update(kept[-1])
    dropped, owner = known
    kept_data = restrict_to_sites(sub, [str(s) for s in sub.sites.index if str(s) not in set(dropped)])
    kept_idx = prepare(kept_data, options)
    sol = ComponentCache(owner=dict(owner)).known_clustering(kept_idx, options)
    return None if sol is None else (kept_idx, sol, dropped)


def solve_clustering_by_component(
    data: ClusteringData,
    options: ClusteringOptions | None = None,
    solver_options: SolverOptions | None = None,
    *,
    unsolved: Literal["stop", "standalone"] = "stop",
) -> SolveResult:
    """:func:`solve_clustering` one connected component of the reach graph at a time.

    Without global budgets (``max_masters``, ``max_cost``) no constraint spans two components
    and the objective is a sum over them, so the optimum is the union of the components'
    optima (only the automatic loss tie-break weight is chosen per component). Objective,
    bound, keys, masters and cost are summed; the status is OPTIMAL when every component is,
    FEASIBLE otherwise.

    Time: the limits handed to the components sum to at most ``solver_options.time_limit_s``
    (and never reach past it in wall time). Components the greedy heuristic cannot cluster are
    solved first and get at least half of what is left split among them; the others get their
    share of what is left by pairs, at least :data:`COMPONENT_MIN_S` while that fits (see
    :func:`_component_limit`); the heuristic runs once per component, before any MILP (smallest
    components first), and stops at the wall-clock limit (:func:`solvers.heuristics.heuristic_search`:
    its first variant always runs, so the wall clock may pass the limit by one greedy step per
    component); a component reached after the limit gets no MILP and no mended greedy (but one
    of at most :data:`LATE_MENDED_MAX_PAIRS` pairs). With ``unsolved="stop"`` a component that
    depends on the MILP may pass the wall clock (without a clustering the search ends); every
    other solve is held to it. A component whose MILP
    finds nothing in its time takes the heuristic's clustering (``info["source"]`` says how many
    did); a component without a bound from the solver takes :func:`fallback_bound`, so the summed
    bound is always valid. Only a
    component that neither the MILP (after one retry with what is left) nor the heuristic can
    cluster ends the search, with its status and that component's sites in
    ``info["component_sites"]`` (where to look for unservable sites); with
    ``unsolved="standalone"`` such a component is instead left out and the search goes on: its
    sites are listed in ``info["standalone_sites"]`` (with ``info["standalone_reason"]``), the
    result clusters the other sites, and for ``max_keys`` the bound includes the left-out
    components' :func:`fallback_bound` (so it bounds the whole instance and the gap shows what
    leaving them out may cost; for ``min_cost`` they add nothing to cost or bound). With a global
    budget this is :func:`solve_clustering`.

    Inside :func:`component_cache` the heuristics and the results of components already solved
    (same sites, candidates, pairs and options) are taken from the cache instead of being redone,
    and a clustering the elastic model of :func:`unservable_sites` found serves as the start and
    fallback of a component the heuristic cannot cluster.

    Raises :class:`ClusteringInfeasible` when a component has no clustering; the components that
    depend on the MILP are solved first, and after the first infeasible one the others of at most
    :data:`FAILED_SCAN_MAX_SITES` sites are still tried, so the exception names every infeasible
    component found and carries their sites in ``sites`` (the conflict lies among them alone).
    """
    options = options or ClusteringOptions()
    solver_options = solver_options or SolverOptions()
    if options.max_masters is not None or options.max_cost is not None:
        return _solve.solve_clustering(data, options, solver_options)
    clock = _Clock(time.perf_counter(), float(solver_options.time_limit_s))
    subs = reach_components(data)
    whole = len(subs) == 1 and len(subs[0].candidates) == len(data.candidates)
    if unsolved == "stop" and (whole or (not subs and len(data.candidates) <= 1)):
        return _solve.solve_clustering(data, options, solver_options)
    cache = current_component_cache()
    comps = _with_heuristics(subs, options, cache, clock.deadline)
    if unsolved == "standalone" and cache is not None:  # the fallback of a component the heuristic
        for comp in comps:  # cannot cluster, found before its MILP takes the time (kept in the cache)
            if comp.heur is None and not comp.ruled_out:
                _mended_clustering(comp.data, options, cache, clock.deadline)
    # components that depend on the MILP first, then the rest, smallest first
    comps.sort(key=lambda c: (c.heur is not None, c.weight))
    acc = _Parts()
    for k, comp in enumerate(comps):
        if acc.failed and (comp.heur is not None or len(comp.data.sites) > FAILED_SCAN_MAX_SITES):
            break  # the infeasible components found so far are reported (see below)
        res = _solve_component(comp, comps[k:], options, solver_options, cache, clock, unsolved, acc)
        if res is None:  # infeasible: in acc.failed
            continue
        if not res.has_solution:
            if comp.heur is None:
                if acc.failed:  # the infeasible components found so far are reported first
                    break
                if unsolved == "standalone":  # left out: its sites stand alone, the rest goes on
                    _leave_out(comp, options, cache, clock.deadline, acc)
                    continue
                res.info["component_sites"] = [str(x) for x in comp.data.sites.index]
                return res
            acc.n_fallback += 1
            res = result_from_solution(
                comp.idx, options, comp.heur, status=SolveStatus.FEASIBLE, solve_time_s=res.solve_time_s,
                build_time_s=res.build_time_s, solver="heuristic", info={"source": "heuristic"},
            )  # fmt: skip
        acc.parts.append(_with_fallback_bound(res, comp.idx, options))
    if acc.failed:
        raise _merged_infeasible(acc.failed)
    return _merged_result(acc, options)


@dataclass(frozen=True)
class _Clock:
    """The time of one by-component solve: its start and limit (both in seconds)."""

    start: float
    limit_s: float

    @property
    def deadline(self) -> float:
        return self.start + self.limit_s

    def wall_left_s(self) -> float:
        return max(0.0, self.deadline - time.perf_counter())


@dataclass
class _Component:
    """One reach component: its instance, index, the heuristic's clustering (None: none, or the
    component was reached after the limit or is ruled out by the diagnosis), its weight (pairs)
    and the heuristic's time."""

    data: ClusteringData
    idx: ClusteringIndex
    heur: ClusteringSolution | None
    weight: float
    heur_s: float
    ruled_out: bool


@dataclass
class _Parts:
    """What the components gave so far: their results, the infeasible ones, the sites left out
    (whole components, and sites the mended greedy trimmed) and the bound of those left out."""

    parts: list[SolveResult] = field(default_factory=list)
    failed: list[tuple[ClusteringData, ClusteringInfeasible]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    trimmed: list[str] = field(default_factory=list)
    left_out_bound: float = 0.0
    handed_s: float = 0.0
    n_fallback: int = 0
    n_mended: int = 0


def _with_heuristics(
    subs: list[ClusteringData], options: ClusteringOptions, cache: ComponentCache | None, deadline: float
) -> list[_Component]:
    """Index every component and run the heuristic on those the diagnosis does not rule out,
    smallest first, each until ``deadline`` (past it, only its first variant: a clustering for
    every component the greedy alone clusters, at the cost of that one step per component)."""
    comps: list[_Component] = []
    for sub in sorted(subs, key=lambda d: len(d.pairs)):
        idx = prepare(sub, options)
        th = time.perf_counter()
        ruled_out = bool(diagnose(idx, options)[0])
        heur: ClusteringSolution | None = None
        if not ruled_out:  # after the deadline only the heuristic's first variant runs
            heur = (
                cache.heuristic(sub, idx, options, deadline=deadline)[0]
                if cache is not None
                else _heuristics.heuristic_search(idx, options, deadline=deadline)[0]
            )
        comps.append(_Component(sub, idx, heur, float(max(1, len(sub.pairs))), time.perf_counter() - th, ruled_out))
    return comps


def _solve_component(
    comp: _Component,
    rest: list[_Component],
    options: ClusteringOptions,
    solver_options: SolverOptions,
    cache: ComponentCache | None,
    clock: _Clock,
    unsolved: Literal["stop", "standalone"],
    acc: _Parts,
) -> SolveResult | None:
    """The MILP of one component with its share of the time (:func:`_component_limit`; a component
    that depends on the MILP gets one retry with what is left); a result from the cache when it
    holds one. None when the component is infeasible (then it is in ``acc.failed``)."""
    res: SolveResult | None = None
    for _try in range(1 if comp.heur is not None else 2):
        left = max(0.0, clock.limit_s - acc.handed_s)
        if comp.heur is not None or unsolved == "standalone":  # held to the wall clock too (with "stop",
            # a component that depends on the MILP may pass it: without a clustering the search ends)
            left = min(left, clock.wall_left_s())
        limit = _component_limit(
            left,
            comp.weight,
            sum(c.weight for c in rest),
            len(rest),
            comp.heur is None,
            sum(1 for c in rest if c.heur is None),
        )
        res = cache.result(comp.data, options, limit) if cache is not None else None
        if res is not None:  # solved on an earlier attempt: nothing handed, nothing redone
            return res
        if limit <= 0.0 and not comp.ruled_out:  # no time: building and presolving the model
            # would only pass the wall clock (HiGHS' presolve of a large component can take seconds)
            return SolveResult(status=SolveStatus.TIME_LIMIT_NO_SOLUTION, solver="none (no time left)")
        acc.handed_s += limit
        try:
            if cache is not None:
                cache.milp_runs += 1
            res = _solve.solve_clustering(
                comp.data,
                options,
                dataclasses.replace(solver_options, time_limit_s=limit),
                known_heuristic=(comp.heur, comp.heur_s) if options.warm_start else None,
            )
        except ClusteringInfeasible as exc:
            acc.failed.append((comp.data, exc))
            return None
        if cache is not None:
            cache.keep(comp.data, options, limit, res)
        if res.has_solution:
            break
    return res


def _leave_out(
    comp: _Component, options: ClusteringOptions, cache: ComponentCache | None, deadline: float, acc: _Parts
) -> None:
    """A component without a clustering in time: the mended greedy's clustering of all but a few of
    its sites (those are trimmed), or else the whole component is left out. For ``max_keys`` the
    bound still covers what is left out (the whole component's counting bound); for ``min_cost``
    the kept sites' bound (left-out sites add nothing to cost or bound)."""
    mended = None if comp.ruled_out else _mended_clustering(comp.data, options, cache, deadline)
    if mended is None:
        acc.left_out += [str(x) for x in comp.data.sites.index]
        if options.objective == "max_keys":
            acc.left_out_bound += fallback_bound(comp.idx, options)
        return
    kept_idx, sol, dropped = mended
    acc.trimmed += dropped
    acc.n_mended += 1
    bound_c = fallback_bound(comp.idx if options.objective == "max_keys" else kept_idx, options)
    res = result_from_solution(
        kept_idx, options, sol, status=SolveStatus.FEASIBLE, solver="heuristic", info={"source": "mended greedy"}
    )
    acc.parts.append(dataclasses.replace(res, bound=bound_c, gap=relative_gap(res.objective, bound_c)))


def _with_fallback_bound(res: SolveResult, idx: ClusteringIndex, options: ClusteringOptions) -> SolveResult:
    """``res`` with the tighter of its bound and :func:`fallback_bound` (both are valid)."""
    fb = fallback_bound(idx, options)
    tighter = (
        fb
        if not math.isfinite(res.bound)
        else (min(res.bound, fb) if options.objective == "max_keys" else max(res.bound, fb))
    )
    if tighter != res.bound:
        res = dataclasses.replace(res, bound=tighter, gap=relative_gap(res.objective, tighter))
    return res


def _merged_result(acc: _Parts, options: ClusteringOptions) -> SolveResult:
    """One result for the whole instance from the components' parts (see
    :func:`solve_clustering_by_component`): sums, the summed bound (with the left-out components'),
    OPTIMAL only when every part is and nothing was left out."""
    parts, left_out, trimmed, left_out_bound = acc.parts, acc.left_out, acc.trimmed, acc.left_out_bound
    n_fallback, n_mended = acc.n_fallback, acc.n_mended
    if not parts:  # every component was left out: no clustering at all
        return SolveResult(
            status=SolveStatus.TIME_LIMIT_NO_SOLUTION,
            bound=left_out_bound,
            solver="highs per component",
            info={"component_sites": left_out, "standalone_sites": left_out},
        )
    total = {
        k: float(sum(float(p.info.get(k, 0.0)) for p in parts))  # type: ignore[arg-type]
        for k in ("n_masters", "keys_per_attempt", "master_cost", "weighted_access_loss_db")
    }
    objective = float(sum(p.objective for p in parts))
    bound = (
        float(sum(p.bound for p in parts)) + left_out_bound if all(math.isfinite(p.bound) for p in parts) else math.nan
    )
    optimal = all(p.status is SolveStatus.OPTIMAL for p in parts)
    info: dict[str, object] = {
        **total,
        "n_masters": int(total["n_masters"]),
        "n_components": len(parts),
        "objective_name": options.objective,
        "objective_sense": "maximize" if options.objective == "max_keys" else "minimize",
        "source": "milp per reach component"
        + (f" ({n_fallback} of {len(parts)} by the heuristic: no MILP solution in time)" if n_fallback else "")
        + (
            f" ({n_mended} of {len(parts)} by the mended greedy: neither a MILP nor a greedy solution in time)"
            if n_mended
            else ""
        ),
        "heuristic_objective": float(
            sum(
                float(p.info["heuristic_objective"])
                if p.info.get("heuristic_objective") is not None  # type: ignore[arg-type]
                else p.objective
                for p in parts
            )
        ),
    }
    if trimmed:
        info["trimmed_sites"] = sorted(trimmed)
        info["trimmed_reason"] = (
            "left out by the mended greedy (solvers.heuristics.unservable_sites_heuristic) "
            "from a component without a clustering in time: not proven the fewest"
        )
    if left_out:
        info["standalone_sites"] = sorted(left_out)
        info["standalone_reason"] = (
            "no clustering of their reach component was found within its time limit "
            "(neither the MILP nor the heuristic)"
        )
        info["source"] = f"{info['source']}; {len(left_out)} site(s) of unsolved components left standalone"
    optimal = optimal and not left_out and not trimmed
    return SolveResult(
        status=SolveStatus.OPTIMAL if optimal else SolveStatus.FEASIBLE,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        solve_time_s=float(sum(p.solve_time_s for p in parts)),
        build_time_s=float(sum(p.build_time_s for p in parts)),
        solver="highs per component",
        tables={
            name: pd.concat([p.tables[name] for p in parts], ignore_index=True) for name in ("assignment", "clusters")
        },
        info=info,
    )
