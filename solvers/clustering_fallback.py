"""The best design the heuristics give when the clustering MILP found none in time, for instances
with a global budget (``max_masters``, ``max_cost``: they couple the reach components, so the
instance is solved whole and no component can be left out on its own).

:func:`budget_fallback` tries, in turn:

1. the greedy + local search heuristic (:func:`solvers.heuristics.heuristic_search`), whose
   masters are chosen within the budgets;
2. the mended greedy (:func:`solvers.heuristics.unservable_sites_heuristic`): a clustering of all
   but a few sites (those are listed in ``info["trimmed_sites"]``), kept only if it satisfies every
   constraint family, the budgets included.

Each gets at least its first step whatever the deadline (that step is the small overshoot of a
stage out of time). The bound is always valid: :func:`solvers.clustering_bounds.fallback_bound` of
the whole instance for ``max_keys`` (so it also covers trimmed sites; the budgets only lower the
optimum), of the clustered sites for ``min_cost`` (trimmed sites add nothing to cost or bound).
"""

from __future__ import annotations

import logging

from solvers import heuristics as _heuristics
from solvers.base import SolveResult, SolveStatus, relative_gap
from solvers.clustering_bounds import fallback_bound
from solvers.clustering_cache import ComponentCache
from solvers.clustering_data import (
    ClusteringData,
    ClusteringOptions,
    check_solution,
    prepare,
    result_from_solution,
)
from solvers.clustering_parts import restrict_to_sites

logger = logging.getLogger(__name__)


def budget_fallback(data: ClusteringData, options: ClusteringOptions, *, deadline: float | None = None) -> SolveResult:
    """A clustering of ``data`` that satisfies ``options`` (budgets included), found without a MILP.

    Guarantees: a result with a solution passes :func:`solvers.clustering_data.check_solution` on
    the sites it clusters; every other site is in ``info["trimmed_sites"]``; its status is FEASIBLE
    and its bound valid (module docstring). Without one (neither heuristic found a clustering) the
    status is ``TIME_LIMIT_NO_SOLUTION`` with the valid bound of the whole instance.
    ``deadline``: a :func:`time.perf_counter` instant after which no further step starts.
    """
    idx = prepare(data, options)
    whole_bound = fallback_bound(idx, options)
    sol = _heuristics.heuristic_search(idx, options, deadline=deadline)[0]
    if sol is not None and not check_solution(idx, options, sol):
        res = result_from_solution(
            idx,
            options,
            sol,
            status=SolveStatus.FEASIBLE,
            solver="heuristic",
            info={"source": "heuristic (no MILP solution in time)"},
        )
        return _with_bound(res, whole_bound)
    kept: list[dict[str, str]] = []
    dropped = _heuristics.unservable_sites_heuristic(idx, options, kept=kept, deadline=deadline)
    if dropped is not None and kept:
        gone = {str(idx.site_ids[i]) for i in dropped}
        kept_data = restrict_to_sites(data, [str(s) for s in data.sites.index if str(s) not in gone])
        kept_idx = prepare(kept_data, options)
        mended = ComponentCache(owner=dict(kept[-1])).known_clustering(kept_idx, options)
        if mended is not None:
            res = result_from_solution(
                kept_idx,
                options,
                mended,
                status=SolveStatus.FEASIBLE,
                solver="heuristic",
                info={
                    "source": "mended greedy (no MILP or greedy solution in time)",
                    "trimmed_sites": sorted(gone),
                    "trimmed_reason": (
                        "left out by the mended greedy (solvers.heuristics.unservable_sites_heuristic) "
                        "when neither the MILP nor the greedy found a clustering in time: not proven the fewest"
                    ),
                },
            )
            bound = whole_bound if options.objective == "max_keys" else fallback_bound(kept_idx, options)
            return _with_bound(res, bound)
    logger.info("budget fallback: neither the greedy nor the mended greedy found a clustering within the budgets")
    return SolveResult(status=SolveStatus.TIME_LIMIT_NO_SOLUTION, bound=whole_bound, solver="heuristic")


def _with_bound(res: SolveResult, bound: float) -> SolveResult:
    res.bound = bound
    res.gap = relative_gap(res.objective, bound)
    return res
