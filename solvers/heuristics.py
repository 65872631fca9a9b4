"""Heuristics for the clustering problem of :mod:`solvers.clustering`.

Used as the MILP's warm start and as the baseline the report compares against.
Three steps:

1. **masters** — lazy greedy coverage: fixed masters first, then repeatedly the candidate that
   covers the most not-yet-covered sites within reach (up to its capacity; per unit cost for
   ``min_cost``), until every site is covered or the budget is spent; for ``max_keys`` further
   masters are opened while Eq. 6 says one more cluster pays (``R_mdi*N_m`` against the
   ``R_ekr*N_s/2`` a site master gives up as a slave).
2. **assignment** — with the masters fixed, assigning sites is a transportation problem
   (bipartite, lower/upper cluster sizes): its LP has a totally unimodular matrix, so the
   simplex vertex solved by HiGHS (``scipy.optimize.linprog``) is an integral assignment that
   minimises the demand-weighted access loss.
3. **local search** — for ``max_keys``: move a slave from one odd cluster to another odd
   cluster within reach (each move gains one Ekert91 pair, Eq. 5); for ``min_cost``: close a
   master when the others can absorb its sites.

The steps live in :mod:`solvers.clustering_greedy` (1), :mod:`solvers.clustering_assign` (2, and
the mended greedy) and :mod:`solvers.clustering_local` (3); this module combines them and is their
interface (their public names are importable from here).

Guarantees: a returned solution satisfies every constraint family (it is checked with
:func:`solvers.clustering.check_solution`); ``None`` means the heuristic found no feasible
clustering (the MILP may still find one).
"""

from __future__ import annotations

import time

import numpy as np

from solvers.base import SolveResult, SolveStatus
from solvers.clustering_assign import assign_sites, unservable_sites_heuristic
from solvers.clustering_data import (
    ClusteringData,
    ClusteringIndex,
    ClusteringInfeasible,
    ClusteringOptions,
    ClusteringSolution,
    check_solution,
    prepare,
    result_from_solution,
    solution_terms,
)
from solvers.clustering_diagnose import diagnose
from solvers.clustering_greedy import (
    REPAIR_ROUNDS,
    add_extra_masters,
    choose_masters,
    greedy_cover,
    past,
    repair_masters,
)
from solvers.clustering_local import close_masters, improve_parity, open_more_masters

__all__ = [
    "REPAIR_ROUNDS",
    "add_extra_masters",
    "assign_sites",
    "choose_masters",
    "close_masters",
    "greedy_cover",
    "heuristic_search",
    "heuristic_solution",
    "improve_parity",
    "open_more_masters",
    "past",
    "repair_masters",
    "solve_clustering_heuristic",
    "unservable_sites_heuristic",
]


def _better(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    a: ClusteringSolution,
    b: ClusteringSolution | None,
) -> bool:
    if b is None:
        return True
    ta, tb = (
        solution_terms(idx, options, a)["objective"],
        solution_terms(idx, options, b)["objective"],
    )
    return ta > tb if options.objective == "max_keys" else ta < tb


def heuristic_solution(
    idx: ClusteringIndex, options: ClusteringOptions, *, seed: int = 0, deadline: float | None = None
) -> ClusteringSolution | None:
    """Best clustering found by steps 1–3 (see module docstring); ``None`` if none is feasible.

    ``deadline``: see :func:`heuristic_search` (the best clustering found by then).
    ``seed`` is accepted for reproducibility of future randomised moves; the current steps are
    deterministic.
    """
    del seed  # deterministic today; kept in the signature so callers record it
    return heuristic_search(idx, options, deadline=deadline)[0]


def heuristic_search(
    idx: ClusteringIndex, options: ClusteringOptions, *, deadline: float | None = None
) -> tuple[ClusteringSolution | None, bool]:
    """Steps 1–3 of the module docstring: the best clustering found (None if none) and whether the
    search ran to its end. With a ``deadline`` (a :func:`time.perf_counter` instant) the search
    stops at the first check after it: the first variant (greedy masters, assignment, local search)
    always runs whole, later variants and rounds of the local search only while time is left; a
    stopped search returns its best so far with ``False``. Without a deadline (or with time to
    spare) the result is exactly that of the full search."""
    base, cost_left = greedy_cover(idx, options)
    extras = [0]
    if options.objective == "max_keys":
        budget = options.max_masters if options.max_masters is not None else idx.n_cands
        site_gain = idx.key_mdi - idx.key_ekr / 2.0
        extra_loc = bool(np.any(idx.cand_site < 0))
        if (site_gain > 0 or (extra_loc and idx.key_mdi > 0)) and budget > 0:
            room = max(0, min(budget, idx.n_sites // max(1, int(idx.min_size.min()) + 1)) - int(base.sum()))
            extras += sorted({room, (3 * room) // 4, room // 2, room // 4} - {0}, reverse=True)
    best: ClusteringSolution | None = None
    for k, extra in enumerate(extras):
        if k > 0 and past(deadline):
            return best, False
        sol = _variant(idx, options, add_extra_masters(idx, options, base, cost_left, extra), deadline)
        if sol is not None and _better(idx, options, sol, best):
            best = sol
    if best is not None and options.objective == "max_keys" and len(extras) > 1:
        if past(deadline):
            return best, False
        best = open_more_masters(idx, options, best, deadline=deadline)
    return best, not past(deadline)


def _variant(
    idx: ClusteringIndex, options: ClusteringOptions, open_: np.ndarray, deadline: float | None
) -> ClusteringSolution | None:
    """One variant of the search: assign the sites to ``open_`` (mending the masters once if that
    fails), then the local search of the objective; None when no feasible clustering results."""
    sol = assign_sites(idx, open_)
    if sol is None:  # mend the greedy's masters (a chain's end) and try once more
        mended = repair_masters(idx, open_)
        sol = assign_sites(idx, mended) if not np.array_equal(mended, open_) else None
    if sol is None:
        return None
    if options.objective == "max_keys":
        sol = improve_parity(idx, sol)
    else:
        sol = close_masters(idx, options, sol, deadline=deadline)
    return None if check_solution(idx, options, sol) else sol


def solve_clustering_heuristic(data: ClusteringData, options: ClusteringOptions | None = None) -> SolveResult:
    """The heuristic as a solver: a :class:`SolveResult` with status ``HEURISTIC`` and the same
    tables as :func:`solvers.clustering.solve_clustering`.

    Raises :class:`ClusteringInfeasible` when the cheap diagnosis finds a conflict or the
    heuristic finds no feasible clustering (the MILP may still find one).
    """
    options = options or ClusteringOptions()
    t0 = time.perf_counter()
    idx = prepare(data, options)
    conflicts, details = diagnose(idx, options)
    if conflicts:
        raise ClusteringInfeasible("No clustering satisfies the settings.", conflicts=conflicts, details=details)
    sol = heuristic_solution(idx, options, seed=options.heuristic_seed)
    elapsed = time.perf_counter() - t0
    if sol is None:
        raise ClusteringInfeasible("The heuristic found no feasible clustering.", conflicts=[], details=[
            "no violated family is known; solve the MILP for a proof or a diagnosis"])  # fmt: skip
    return result_from_solution(
        idx, options, sol, status=SolveStatus.HEURISTIC, solve_time_s=elapsed, build_time_s=0.0,
        solver="heuristic", info={"source": "heuristic", "seed": options.heuristic_seed},
    )  # fmt: skip
