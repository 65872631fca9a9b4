"""Exact presolve and bounds of the repeater-spacing model.

:func:`drop_dominated_demands` and :func:`presolve_spacing` are the exact
reductions (dominated demands, link options too short of the targets, hop counts
that cannot reach them); :func:`presolve_bound` bounds the optimum without a
solve; :func:`best_single_rate` (exact) and :func:`rate_upper_bounds` (fast,
vectorised) bound what each demand can reach on its own, and
:func:`precheck_min_cost` names the demands that cannot reach their targets.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Hashable, Mapping

import numpy as np

from solvers.base import show_value as _show
from solvers.repeaters_data import (
    RepeaterInfeasible,
    SpacingData,
    SpacingMode,
    hop_range,
    log_rate,
    max_chain_hops,
    rate_factor_nonincreasing,
    rate_of_log,
    subset_demands,
)

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Exact presolve
# ---------------------------------------------------------------------------


LOG_P_TOL = 1e-12
"""Relative slack of the option-table search: an option whose ``log_p`` falls short of the one
asked for by no more than this share of it counts as reaching it."""


def _fewest_repeaters(data: SpacingData, lid: Hashable, need_log_p: float) -> int:
    """Fewest repeaters on ``lid`` whose segment ``log p >= need_log_p`` (a search of the link's
    option table, up to :data:`LOG_P_TOL`); its maximum if none."""
    row = data.options.log_p_rows[lid]
    n = bisect.bisect_left(row, need_log_p - LOG_P_TOL * abs(need_log_p))
    return min(n, data.n_max_of[lid])


def presolve_spacing(
    data: SpacingData, *, mode: SpacingMode, rate_floor: float | None = None, hop_counts: bool = True
) -> tuple[dict[Hashable, int], dict[Hashable, set[int]]]:
    """Exact reductions: lowest useful option per link and allowed hop counts per demand.

    Every demand ``d`` with a required rate ``r_d`` (its target in
    ``min_cost`` mode; ``rate_floor`` for every demand in ``max_min_rate``
    mode) needs ``p_worst * f(k) >= r_d``, ``f`` the chain tables' rate factor.
    Hence, with ``F = max f`` over the hop counts the path can still reach:
    every link on a demand's only path needs ``p_l(n) >= r_d / F``, which
    gives the lowest option ``n_lo[l]`` (a search of the link's option table);
    and a hop count ``k`` is possible only if ``p_best * f(k) >= r_d`` on some
    candidate path, ``p_best`` the worst link's best probability, and the
    fewest repeaters reaching ``r_d / f(k)`` on every link fit in ``k`` hops. No feasible design (no design at least as
    good as ``rate_floor``) is cut off. Small relative slack (1e-6) keeps
    designs on the boundary. With ``hop_counts=False`` only ``n_lo`` is
    computed (the hop-count sets are returned empty).
    """
    logf = data.log_rate_factors(max_chain_hops(data))
    required: dict[Hashable, float] = {}
    if mode == "min_cost":
        required = dict(data.rate_target)
    elif rate_floor is not None and rate_floor > 0:
        required = {d: float(rate_floor) for d in data.demand_ids}
    slack = 1e-6
    n_lo: dict[Hashable, int] = {}
    singles = [(d, r, data.paths[d][0]) for d, r in required.items() if len(data.paths[d]) == 1]
    changed = True
    while changed:  # fixed point: more repeaters -> more hops -> lower best g -> more repeaters
        changed = False
        for _d, r, path in singles:
            k_lo = hop_range(data, path, n_lo)[0]
            log_fmax = float(np.max(logf[k_lo:]))
            need_log_p = log_rate(r) - log_fmax - slack
            for lid in path:
                n_new = _fewest_repeaters(data, lid, need_log_p)
                if n_new > n_lo.get(lid, 0):
                    n_lo[lid] = n_new
                    changed = True
    ks_allowed: dict[Hashable, set[int]] = {}
    for d, r in required.items() if hop_counts else ():
        allowed: set[int] = set()
        for path in data.paths[d]:
            lo, hi = hop_range(data, path, n_lo)
            ks = np.arange(lo, hi + 1)
            need_log_p_k = log_rate(r) - logf[ks] - slack  # per k
            # fewest repeaters per link reaching need_log_p_k at this k (a search of its option
            # table); k must fit their hops
            need_tol = need_log_p_k - LOG_P_TOL * np.abs(need_log_p_k)
            rows = [data.options.log_p[data.link_pos[lid], : data.n_max_of[lid] + 1] for lid in path]
            reachable = need_log_p_k <= min(row[-1] for row in rows)
            fewest = np.zeros(len(ks), dtype=np.int64)
            for row in rows:
                fewest += np.minimum(np.searchsorted(row, need_tol, side="left"), len(row) - 1) + 1
            ok = reachable & (fewest <= ks)
            allowed.update(int(k) for k in ks[ok])
        ks_allowed[d] = allowed
    return n_lo, ks_allowed


def drop_dominated_demands(data: SpacingData, *, mode: SpacingMode) -> tuple[SpacingData, int]:
    """Remove demands whose constraints are implied by another demand's (exact).

    Demand ``d`` (one fixed path) is dominated by ``e`` (one fixed path) when
    ``d``'s links are a subset of ``e``'s, ``d``'s target is at most ``e``'s
    (``min_cost``) and ``d`` has no latency limit or one at least ``e``'s.
    Then ``d`` has no more hops, no worse worst segment and no more segment
    time than ``e``; with the rate factor non-increasing in ``k`` (checked, else nothing
    is dropped) its Eq. 9 rate is at least ``e``'s and its Eq. 10 latency at
    most ``e``'s, so ``d`` meets whatever ``e`` meets and never sets the
    minimum rate alone. Returns the reduced data and the number dropped.
    """
    if not rate_factor_nonincreasing(data, max_chain_hops(data)):
        return data, 0
    single = [d for d in data.demand_ids if len(data.paths[d]) == 1]
    if len(single) < 2:
        return data, 0
    tgt = data.rate_target if mode == "min_cost" else {}
    inf = math.inf

    def order(d: Hashable) -> tuple[float, float, float]:
        return (-len(data.paths[d][0]), -tgt.get(d, 0.0), data.latency_limit_s.get(d, inf))

    kept: list[tuple[float, float]] = []
    dropped: set[Hashable] = set()
    # kept demands per link as bit masks (bit i = kept demand i): intersections run in C
    by_link: dict[Hashable, int] = {}
    # sorted order puts a demand after every demand it could be dominated by, so with equal
    # targets and limits any kept demand covering d dominates it
    uniform = (
        len({tgt.get(d, 0.0) for d in single}) <= 1 and len({data.latency_limit_s.get(d, inf) for d in single}) <= 1
    )
    for d in sorted(single, key=order):
        links = data.paths[d][0]
        t_d = tgt.get(d, 0.0)
        lim_d = data.latency_limit_s.get(d, inf)
        cand = -1
        for lid in links:
            cand &= by_link.get(lid, 0)
            if not cand:
                break
        dominated = False
        if cand:
            if uniform:
                dominated = True
            else:
                while cand and not dominated:
                    low = cand & -cand
                    t_e, lim_e = kept[low.bit_length() - 1]
                    dominated = t_d <= t_e and lim_d >= lim_e
                    cand ^= low
        if dominated:
            dropped.add(d)
            continue
        kept.append((t_d, lim_d))
        bit = 1 << (len(kept) - 1)
        for lid in links:
            by_link[lid] = by_link.get(lid, 0) | bit
    if not dropped:
        return data, 0
    return subset_demands(data, [d for d in data.demand_ids if d not in dropped]), len(dropped)


def presolve_bound(
    data: SpacingData, n_lo: Mapping[Hashable, int], *, mode: SpacingMode, max_demands: int = 200
) -> float:
    """A valid bound on the MILP optimum without solving it.

    ``min_cost``: the cost of the presolve floors (every link needs at least
    ``n_lo`` repeaters in any feasible design: exact presolve). ``max_min_rate``
    (log space): the log of the lowest best-alone rate of up to ``max_demands``
    demands with the longest paths (no design gives any demand more than its
    best rate alone, so the minimum rate cannot exceed it).
    """
    if mode == "min_cost":
        cost = data.links["cost_per_repeater"].to_dict()
        return float(sum(float(cost[lid]) * int(n) for lid, n in n_lo.items()))
    longest = sorted(data.demand_ids, key=lambda d: -max(len(p) for p in data.paths[d]))[:max_demands]
    best = min(best_single_rate(data, d) for d in longest)
    return log_rate(best) if best > 0 else -math.inf


# ---------------------------------------------------------------------------
# Best rate per demand alone (infeasibility pre-check)
# ---------------------------------------------------------------------------


def best_single_rate(data: SpacingData, d: Hashable) -> float:
    """Highest Eq. 9 rate demand ``d`` can reach on its own (over its paths and all spacings).

    Exact: for each candidate worst-segment probability ``theta`` (one of the
    option probabilities) every link on the path needs at least the fewest
    repeaters reaching ``theta``, and any total hop count between that minimum
    and the path's maximum is possible; the best is the maximum of
    ``theta * f(k)`` over these (``f`` the rate factor). Latency limits are ignored here.
    """
    opt = data.options
    rate_factor = data.tables.hop_arrays()[0]
    pos = data.link_pos
    best = 0.0
    for path in data.paths[d]:
        opts = {lid: opt.p[pos[lid], : data.n_max_of[lid] + 1].tolist() for lid in path}
        thetas = sorted({p for ps in opts.values() for p in ps})
        k_max = sum(len(ps) for ps in opts.values())
        f = rate_factor[: k_max + 1].tolist()
        for theta in thetas:
            need = 0
            ok = True
            for ps in opts.values():
                n_min = next((n for n, p in enumerate(ps) if p >= theta * (1 - 1e-12)), None)
                if n_min is None:
                    ok = False
                    break
                need += n_min + 1
            if ok:
                best = max(best, theta * max(f[need : k_max + 1]))
    return best


def rate_upper_bounds(data: SpacingData) -> np.ndarray:
    """An upper bound on the Eq. 9 rate each demand can reach on its own, in ``data.demand_ids`` order.

    Vectorised, one pass over the (demand, path) rows. On a path of ``h``
    links, a link with ``n`` repeaters bounds the worst segment's success
    probability by its own ``p_l(n)`` and the chain has at least
    ``n + h`` hops, so the rate is at most
    ``max_n p_l(n) * max_{k >= n + h} f(k)`` (``f`` the rate factor) for every link of the
    path; the path's bound is the smallest over its links, the demand's the
    largest over its paths. Latency limits are ignored. Guarantees: every
    value is >= :func:`best_single_rate` (a demand whose bound is below its
    target cannot reach it with any spacing), and equal to it for a one-link
    path when ``f`` is nonincreasing.
    """
    links = list(data.links.index)
    pos = data.link_pos
    n_max = data.links["max_repeaters"].to_numpy(int)
    rows = [(i, path) for i, d in enumerate(data.demand_ids) for path in data.paths[d]]
    if not rows:
        return np.zeros(len(data.demand_ids))
    width = max(len(path) for _, path in rows)
    top = int(n_max.max()) if len(n_max) else 0
    k_top = min(top + width, data.tables.max_hops)  # longer chains cannot form (prepare_spacing_data)
    logf = data.log_rate_factors(k_top)
    suffix_max = np.maximum.accumulate(logf[::-1])[::-1]  # max log f(k') over k' >= k
    # bound[l, h]: max over n <= n_max[l] of log p_l(n) + max_{k >= n + h} log f(k)
    h = np.arange(width + 1)
    bound = np.full((len(links) + 1, width + 1), -np.inf)
    for n in range(top + 1):
        log_p = data.options.log_p[:, n]
        term = log_p[:, None] + suffix_max[np.minimum(n + np.maximum(h, 1), k_top)][None, :]
        bound[:-1] = np.where((n <= n_max)[:, None], np.maximum(bound[:-1], term), bound[:-1])
    bound[-1] = np.inf  # padding column of short paths
    index = np.full((len(rows), width), len(links), dtype=int)
    for r, (_, path) in enumerate(rows):
        index[r, : len(path)] = [pos[lid] for lid in path]
    n_hops = np.array([len(path) for _, path in rows], dtype=int)
    row_log = bound[index, n_hops[:, None]].min(axis=1)
    best = np.full(len(data.demand_ids), -np.inf)
    np.maximum.at(best, np.array([i for i, _ in rows], dtype=int), row_log)
    return np.asarray(rate_of_log(best))


def unreachable_demands(data: SpacingData) -> dict[Hashable, float]:
    """Demands whose rate target is above :func:`rate_upper_bounds` (no spacing reaches it), with that bound.

    Fast (one vectorised pass); sound but not complete: a demand it does not
    list may still be unreachable (:func:`best_single_rate` is exact).
    """
    if not data.rate_target:
        return {}
    upper = rate_upper_bounds(data)
    return {
        d: float(u)
        for d, u in zip(data.demand_ids, upper, strict=True)
        if d in data.rate_target and u < data.rate_target[d] * (1 - 1e-9)
    }


def unreachable_error(data: SpacingData, bad: Mapping[Hashable, float]) -> RepeaterInfeasible:
    worst = sorted(bad, key=lambda d: bad[d] / data.rate_target[d])
    return RepeaterInfeasible(
        f"Repeater spacing cannot meet the rate targets: {len(bad)} demand(s) cannot reach theirs "
        "even with the maximum repeaters on every link.",
        conflicts=worst,
        details=[
            f"demand {_show(d)}: at most {bad[d]:.4g} (any spacing, any candidate path) against the "
            f"target {data.rate_target[d]:.4g}; lower the target or allow more repeaters"
            for d in worst
        ],
    )


def precheck_min_cost(data: SpacingData, deadline: float = math.inf) -> None:
    """Raise :class:`RepeaterInfeasible` naming the demands that cannot reach their targets alone.

    The fast bound (:func:`unreachable_demands`) first; then the exact
    :func:`best_single_rate` per remaining demand until ``deadline``
    (``time.perf_counter()`` value), after which the check stops undecided.
    """
    bad = unreachable_demands(data)
    if bad:
        raise unreachable_error(data, bad)
    conflicts, details = [], []
    for d, target in data.rate_target.items():
        if time.perf_counter() > deadline:
            logger.warning("repeater pre-check stopped at the time limit; not every demand was checked")
            break
        best = best_single_rate(data, d)
        if best < target * (1 - 1e-9):
            conflicts.append(d)
            details.append(
                f"demand {_show(d)}: best reachable rate {best:.4g} (any spacing, any candidate path) "
                f"is below the target {target:.4g}; lower the target or allow more repeaters"
            )
    if conflicts:
        raise RepeaterInfeasible("Repeater spacing cannot meet the rate targets.", conflicts=conflicts, details=details)
