"""Work on reach components kept across the solves of one access stage (:class:`ComponentCache`)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from solvers import heuristics as _heuristics
from solvers.base import SolveResult, SolveStatus
from solvers.clustering_data import (
    ClusteringData,
    ClusteringIndex,
    ClusteringOptions,
    ClusteringSolution,
    check_solution,
)

logger = logging.getLogger(__name__)


ComponentKey = tuple[tuple[str, ...], tuple[str, ...], int]


def component_key(data: ClusteringData) -> ComponentKey:
    """What identifies an instance (a reach component) across attempts: its sites, its candidates
    and its number of pairs (dropping a site changes the key of its component only)."""
    return (tuple(sorted(map(str, data.sites.index))), tuple(sorted(map(str, data.candidates.index))), len(data.pairs))


@dataclass
class ComponentCache:
    """Work on reach components kept across the solves of one access stage, so that a retry
    (after unservable sites were dropped, or with more time) redoes only what changed.

    * ``heuristics``: the greedy heuristic's clustering (or None) and its time, per component and
      options; the heuristic is deterministic for given data, options and seed, so reusing it is exact;
    * ``results``: a component's solve result (only results with a clustering), per component,
      options and time limit class (a result is reused for a later limit at most as long, or when
      it is optimal);
    * ``owner``: clusterings found on the way, site id -> its master's id (a master maps to itself):
      by the elastic model of :func:`unservable_sites` (zero slack) and by the mended greedy of
      :func:`solvers.heuristics.unservable_sites_heuristic` (for the sites it keeps). A component
      the heuristic cannot cluster whose sites all have a master here takes that clustering as its
      start and fallback (checked against the component's options before use).

    ``heuristic_runs`` and ``milp_runs`` count the calls actually made (not served from here).
    """

    heuristics: dict[tuple[ComponentKey, str], tuple[ClusteringSolution | None, float]] = field(default_factory=dict)
    results: dict[tuple[ComponentKey, str], tuple[SolveResult, float]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    mended: dict[ComponentKey, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    heuristic_runs: int = 0
    milp_runs: int = 0
    hits: int = 0

    def heuristic(
        self,
        data: ClusteringData,
        idx: ClusteringIndex,
        options: ClusteringOptions,
        *,
        deadline: float | None = None,
    ) -> tuple[ClusteringSolution | None, float]:
        """The heuristic's clustering of the component (or, when it has none, a checked elastic one)
        and the time it took (0 when served from the cache). A search stopped by ``deadline`` (see
        :func:`solvers.heuristics.heuristic_search`) gives its best so far and is not kept (a later
        attempt with more time runs it again)."""
        key = (component_key(data), repr(options))
        if key in self.heuristics:
            self.hits += 1
            sol, _s = self.heuristics[key]
            out: tuple[ClusteringSolution | None, float] = (sol, 0.0)
        else:
            th = time.perf_counter()
            sol, complete = _heuristics.heuristic_search(idx, options, deadline=deadline)
            self.heuristic_runs += 1
            out = (sol, time.perf_counter() - th)
            if complete:
                self.heuristics[key] = out
        if out[0] is None:
            known = self.known_clustering(idx, options)
            if known is not None:
                return known, 0.0
        return out

    def remember(self, idx: ClusteringIndex, sol: ClusteringSolution) -> None:
        """Keep a (checked) clustering of ``idx`` in :attr:`owner`."""
        self.owner.update({str(idx.site_ids[i]): str(idx.cand_ids[c]) for i, c in enumerate(sol.owner) if c >= 0})

    def known_clustering(self, idx: ClusteringIndex, options: ClusteringOptions) -> ClusteringSolution | None:
        """A clustering of ``idx`` from :attr:`owner` that satisfies ``options``, if there is one."""
        cand_pos = {str(c): k for k, c in enumerate(idx.cand_ids)}
        owner = np.full(idx.n_sites, -1, dtype=np.int64)
        for i, site in enumerate(idx.site_ids):
            c = cand_pos.get(self.owner.get(str(site), ""), -1)
            if c < 0:
                return None
            owner[i] = c
        open_ = np.zeros(idx.n_cands, dtype=bool)
        open_[owner] = True
        sol = ClusteringSolution(open_, owner)
        return None if check_solution(idx, options, sol) else sol

    def result(self, data: ClusteringData, options: ClusteringOptions, limit_s: float) -> SolveResult | None:
        """A stored result of the component under ``options`` that a solve with ``limit_s`` would
        not improve on (optimal, or found with at least that limit)."""
        got = self.results.get((component_key(data), repr(options)))
        if got is None:
            return None
        res, had_s = got
        if res.status is SolveStatus.OPTIMAL or had_s >= limit_s:
            self.hits += 1
            return res
        return None

    def keep(self, data: ClusteringData, options: ClusteringOptions, limit_s: float, res: SolveResult) -> None:
        if res.has_solution:
            self.results[(component_key(data), repr(options))] = (res, limit_s)


_CACHES: list[ComponentCache] = []


@contextlib.contextmanager
def component_cache(cache: ComponentCache | None = None) -> Iterator[ComponentCache]:
    """Open a :class:`ComponentCache` for the per-component solves run inside the block."""
    cache = cache or ComponentCache()
    _CACHES.append(cache)
    try:
        yield cache
    finally:
        _CACHES.remove(cache)


def current_component_cache() -> ComponentCache | None:
    """The innermost open :class:`ComponentCache`, if any."""
    return _CACHES[-1] if _CACHES else None
