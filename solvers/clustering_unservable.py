"""The fewest sites to leave out so that a clustering exists: the elastic MILP (:func:`unservable_sites`),
per reach component with the mended greedy for the largest ones (:func:`unservable_sites_by_component`).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from solvers import heuristics as _heuristics
from solvers.base import SolverOptions
from solvers.clustering_arrays import build_clustering_arrays, solve_arrays
from solvers.clustering_cache import current_component_cache
from solvers.clustering_data import (
    ClusteringData,
    ClusteringIndex,
    ClusteringOptions,
    ClusteringSolution,
    check_solution,
    prepare,
    solution_from_values,
)
from solvers.clustering_diagnose import diagnose
from solvers.clustering_greedy import past
from solvers.clustering_parts import reach_components

logger = logging.getLogger(__name__)


def unservable_sites(
    data: ClusteringData, options: ClusteringOptions, solver_options: SolverOptions | None = None
) -> list[str] | None:
    """The fewest sites that must be left out for a clustering to exist.

    Solves the elastic model in which only the ``assign-once`` rows may take slack
    (every other family is kept hard) and the total slack is minimised. Returns
    ``[]`` when the model is feasible, the ids of the sites whose ``assign-once`` row
    needs slack (the fewest sites; dropping them makes the model feasible), and
    ``None`` when no choice of dropped sites helps (other families conflict) or the
    relaxation could not be solved.
    """
    solver_options = solver_options or SolverOptions()
    idx = prepare(data, options)
    model = build_clustering_arrays(idx, options, elastic=True)
    n_fixed = model.n_y + model.n_x + model.n_ekert
    # only "a site is assigned to no cluster" may be relaxed, never "assigned twice"
    hard = (np.asarray(model.slack_family, dtype=object) != "assign-once") | (
        np.asarray(model.slack_side, dtype=float) < 0
    )
    model.col_upper[n_fixed:][hard] = 0.0
    res = solve_arrays(model, solver_options)
    if res.values is None:
        return None
    slack = res.values[model.n_y + model.n_x + model.n_ekert :]
    fam = np.asarray(model.slack_family, dtype=object)
    rows = np.asarray(model.slack_row, dtype=np.int64)
    bad = slack > 1e-6
    if not bad.any():
        cache = current_component_cache()
        if cache is not None:  # a clustering of this instance: keep it (start and fallback of later solves)
            n_c, n_p = idx.n_cands, idx.n_pairs
            sol = solution_from_values(idx, res.values[:n_c], res.values[n_c : n_c + n_p])
            if not check_solution(idx, options, sol):
                cache.remember(idx, sol)
        return []
    if set(fam[bad]) != {"assign-once"}:
        return None
    return sorted({str(idx.site_ids[r]) for r in rows[bad]})


ELASTIC_MAX_PAIRS = 100_000
"""Above this many pairs a reach component's unservable sites are first sought by
:func:`solvers.heuristics.unservable_sites_heuristic` (seconds, not proven fewest); the elastic
MILP of :func:`unservable_sites` runs out of time there (us-10000: 972 000 pairs, no answer in 30 s)."""


def unservable_sites_by_component(
    data: ClusteringData, options: ClusteringOptions, solver_options: SolverOptions | None = None
) -> list[str] | None:
    """:func:`unservable_sites`, solved one connected component of the reach graph at a time.

    Sites (and candidates) are linked when a pair lists them; without global budgets
    (``max_masters``, ``max_cost``) the components are independent, so the fewest sites to
    leave out overall is the union of each component's fewest. A component the greedy
    heuristic of :mod:`solvers.heuristics` clusters completely needs nothing; only the others
    get the elastic MILP, each with a share of what is left of ``solver_options.time_limit_s`` in
    proportion to its sites (their limits sum to at most the limit); a component of more than
    :data:`ELASTIC_MAX_PAIRS` pairs first gets :func:`solvers.heuristics.unservable_sites_heuristic`,
    whose sites make a clustering exist but are not proven the fewest (the elastic MILP only if it
    fails). With a global budget the whole model is solved by :func:`unservable_sites`. Same return
    convention as :func:`unservable_sites`; also None when the limit passes before every component
    has an answer (the heuristics check the wall clock; one step of a heuristic may pass it).
    """
    solver_options = solver_options or SolverOptions()
    if options.max_masters is not None or options.max_cost is not None:
        return unservable_sites(data, options, solver_options)
    deadline = time.perf_counter() + float(solver_options.time_limit_s)
    out: list[str] = []
    hard: list[ClusteringData] = []
    for sub in reach_components(data):
        if past(deadline):
            return None
        idx = prepare(sub, options)
        if idx.n_pairs == 0:
            out += [str(s) for s in sub.sites.index if str(s) not in set(map(str, sub.candidates.index))]
        elif diagnose(idx, options)[0] or _component_heuristic(sub, idx, options, deadline) is None:
            hard.append(sub)
    n_heuristic = 0
    elastic: list[ClusteringData] = []
    for sub in hard:  # a component too large for the elastic MILP: the mended greedy's unreached sites
        found = _mended_sites(sub, options, deadline) if len(sub.pairs) > ELASTIC_MAX_PAIRS else None
        if found is not None:
            n_heuristic += 1
            out += found
        else:
            elastic.append(sub)
    n_left = sum(len(sub.sites) for sub in elastic)
    for sub in elastic:  # each component's share of what is left is in proportion to its sites
        left_s = max(0.0, deadline - time.perf_counter())
        if left_s <= 0.0:
            return None
        share = dataclasses.replace(solver_options, time_limit_s=left_s * len(sub.sites) / n_left)
        n_left -= len(sub.sites)
        left = unservable_sites(sub, options, share)
        if left is None:
            return None
        out += left
    logger.info(
        "unservable sites: %d component(s) need the elastic model, %d of them too large for it "
        "(left to the mended greedy, not proven fewest), %d site(s) left out",
        len(hard),
        n_heuristic,
        len(out),
    )
    return sorted(set(out))


def _component_heuristic(
    sub: ClusteringData, idx: ClusteringIndex, options: ClusteringOptions, deadline: float
) -> ClusteringSolution | None:
    """The heuristic's clustering of a reach component (from the open cache when there is one)."""
    cache = current_component_cache()
    if cache is not None:
        return cache.heuristic(sub, idx, options, deadline=deadline)[0]
    return _heuristics.heuristic_search(idx, options, deadline=deadline)[0]


def _mended_sites(sub: ClusteringData, options: ClusteringOptions, deadline: float) -> list[str] | None:
    """The sites the mended greedy leaves out of a component (None if it finds no such set); the
    clustering of the sites it keeps goes to the open cache (a start for the next solve)."""
    idx = prepare(sub, options)
    kept: list[dict[str, str]] = []
    found = _heuristics.unservable_sites_heuristic(idx, options, kept=kept, deadline=deadline)
    cache = current_component_cache()
    if cache is not None:
        for clustering in kept:
            cache.owner.update(clustering)
    return None if found is None else [str(idx.site_ids[i]) for i in found]
