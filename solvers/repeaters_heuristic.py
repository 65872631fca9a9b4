"""Fast feasible repeater designs (the MIP start, and the answer when the MILP finds nothing better).

:func:`heuristic_spacing` evaluates whole designs with numpy
(:class:`_DesignEvaluator`, the chain tables' rates and latencies looked up per design,
in agreement with :func:`~solvers.repeaters_data.evaluate_spacing`): common-segment-length designs,
then greedy marginal allocation (max-min rate) and greedy removal of repeaters.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from solvers.repeaters_bounds import presolve_spacing
from solvers.repeaters_data import SpacingData, SpacingMode, log_rate, rate_of_log

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Heuristic (fast feasible designs; MIP start)
# ---------------------------------------------------------------------------


@dataclass
class HeuristicDesign:
    """A design found by :func:`heuristic_spacing` with its objective (cost, or log min rate)."""

    repeaters: dict[Hashable, int]
    path_choice: dict[Hashable, int]
    objective: float
    time_s: float


class _DesignEvaluator:
    """Rate and latency (from the chain tables) of every (demand, candidate path) row of a design, vectorised.

    Agrees with :func:`evaluate_spacing` (the tests compare the designs it
    accepts against that function).
    """

    def __init__(self, data: SpacingData):
        self.data = data
        self.links = list(data.links.index)
        pos = data.link_pos
        self.length = data.links["length_km"].to_numpy(float)
        self.cost = data.links["cost_per_repeater"].to_numpy(float)
        self.n_max = data.links["max_repeaters"].to_numpy(int)
        rows = [(d, j, path) for d in data.demand_ids for j, path in enumerate(data.paths[d])]
        width = max(len(path) for _, _, path in rows)
        n_links = len(self.links)
        self.index = np.full((len(rows), width), n_links, dtype=int)  # n_links = padding
        for r, (_, _, path) in enumerate(rows):
            self.index[r, : len(path)] = [pos[lid] for lid in path]
        dpos = {d: i for i, d in enumerate(data.demand_ids)}
        self.row_demand = np.array([dpos[d] for d, _, _ in rows], dtype=int)
        self.row_path = np.array([j for _, j, _ in rows], dtype=int)
        self.n_demands = len(data.demand_ids)
        self.log_target = np.array(
            [log_rate(data.rate_target[d]) if d in data.rate_target else -np.inf for d, _, _ in rows]
        )
        self.limit = np.array([data.latency_limit_s.get(d, np.inf) for d, _, _ in rows])
        _, _, self.swap_latency_s = data.tables.hop_arrays()
        self.log_rate_factor = data.log_rate_factors(data.tables.max_hops)
        self.at_link = np.arange(n_links)
        # rows using each link, as CSR (users_ptr[i]:users_ptr[i+1] into users_rows)
        flat_link = self.index.ravel()
        flat_row = np.repeat(np.arange(len(rows)), width)
        real = flat_link < n_links
        order = np.argsort(flat_link[real], kind="stable")
        self.users_rows = flat_row[real][order]  # paths are simple: each row once per link
        counts = np.bincount(flat_link[real], minlength=n_links)
        self.users_ptr = np.concatenate([[0], np.cumsum(counts)])

    def users(self, i: int) -> np.ndarray:
        """Rows (demand, path) whose path uses link ``i``."""
        return self.users_rows[self.users_ptr[i] : self.users_ptr[i + 1]]

    def _link_values(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per link (with a neutral padding entry last) for repeaters ``n``: log p, hops and the
        segment time summed over the link, from the chain tables."""
        opt, at = self.data.options, (self.at_link, n)
        return np.append(opt.log_p[at], 0.0), np.append(n + 1, 0), np.append(opt.time_s[at], 0.0)

    def _metrics(self, n: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log rate, latency_s) of the rows whose link positions are ``idx`` (padded), for repeaters ``n``."""
        log_p, hops, time_s = self._link_values(n)
        k = hops[idx].sum(axis=1)
        log_rate = log_p[idx].min(axis=1) + self.log_rate_factor[k]
        with np.errstate(divide="ignore", over="ignore"):
            latency = time_s[idx].sum(axis=1) / rate_of_log(log_rate) + self.swap_latency_s[k]
        return log_rate, latency

    def rows_ok(self, n: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``row_ok`` restricted to ``rows`` (same formula, fewer rows)."""
        log_rate, latency = self._metrics(n, self.index[rows])
        return (log_rate >= self.log_target[rows] + math.log1p(-1e-9)) & (latency <= self.limit[rows] * (1 - 1e-9))

    def row_metrics(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log rate, latency_s) of every row for repeaters ``n`` per link."""
        return self._metrics(n, self.index)

    def demand_log_rate(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best log rate per demand over its paths meeting their latency limit, and the row chosen."""
        log_rate, latency = self.row_metrics(n)
        usable = np.where(latency <= self.limit * (1 - 1e-9), log_rate, -np.inf)
        best = np.full(self.n_demands, -np.inf)
        np.maximum.at(best, self.row_demand, usable)
        chosen = np.full(self.n_demands, -1)
        for r in np.flatnonzero(usable >= best[self.row_demand]):
            if chosen[self.row_demand[r]] < 0 and np.isfinite(usable[r]):
                chosen[self.row_demand[r]] = r
        return best, chosen

    def row_ok(self, n: np.ndarray) -> np.ndarray:
        log_rate, latency = self.row_metrics(n)
        return (log_rate >= self.log_target + math.log1p(-1e-9)) & (latency <= self.limit * (1 - 1e-9))

    def feasible(self, n: np.ndarray) -> bool:
        """Every demand has a candidate path meeting its target and latency limit."""
        ok = np.zeros(self.n_demands, dtype=bool)
        np.logical_or.at(ok, self.row_demand, self.row_ok(n))
        return bool(ok.all())

    def choice(self, n: np.ndarray, *, by_rate: bool) -> dict[Hashable, int]:
        if by_rate:
            _, chosen = self.demand_log_rate(n)
        else:
            ok = self.row_ok(n)
            chosen = np.full(self.n_demands, -1)
            for r in np.flatnonzero(ok)[::-1]:
                chosen[self.row_demand[r]] = r
        return {d: int(self.row_path[r]) if r >= 0 else 0 for d, r in zip(self.data.demand_ids, chosen, strict=True)}


def _uniform_designs(ev: _DesignEvaluator, used: np.ndarray, deadline: float = math.inf) -> list[np.ndarray]:
    """Designs with a common maximum segment length (one per distinct option segment length,
    longest first; past ``deadline``, a ``time.perf_counter()`` value, only those made so far)."""
    lengths = sorted(
        {float(ev.length[i] / (n + 1)) for i in np.flatnonzero(used) for n in range(ev.n_max[i] + 1)},
        reverse=True,
    )
    designs: list[np.ndarray] = []
    chunk = max(1, (1 << 20) // max(1, len(ev.length)))  # designs made at once: about 10^6 entries
    for start in range(0, len(lengths), chunk):
        if time.perf_counter() > deadline:
            logger.warning(
                "repeater heuristic: %d of %d uniform designs made before the time limit", len(designs), len(lengths)
            )
            break
        # in place, with the operations of ceil(L / s * (1 - 1e-12)) - 1 clipped to 0..n_max, 0 on unused links
        ratio = ev.length[None, :] / np.asarray(lengths[start : start + chunk])[:, None]
        ratio *= 1 - 1e-12
        np.ceil(ratio, out=ratio)
        block = ratio.astype(int)
        del ratio
        block -= 1
        np.clip(block, 0, ev.n_max[None, :], out=block)
        block[:, ~used] = 0
        designs.extend(block)
    return designs


class _KeepFeasible:
    """Acceptance test of greedy removal that keeps every demand served (``ev.feasible``).

    Holds which (demand, path) rows meet their target and how many rows each demand has,
    and re-evaluates only the rows that use the changed link (same verdicts as
    ``ev.feasible``, near-linear instead of links x rows per move).
    """

    def __init__(self, ev: _DesignEvaluator, n: np.ndarray) -> None:
        self.ev = ev
        self.ok = ev.row_ok(n)
        self.n_ok = np.bincount(ev.row_demand, weights=self.ok, minlength=ev.n_demands)

    def __call__(self, n: np.ndarray, i: int) -> bool:
        """Whether design ``n`` (link ``i`` just lowered) still serves every demand; updates the state if so."""
        ev = self.ev
        rows = ev.users(i)
        new_ok = ev.rows_ok(n, rows)
        delta = new_ok.astype(float) - self.ok[rows]
        trial = self.n_ok.copy()
        np.add.at(trial, ev.row_demand[rows], delta)
        if np.all(trial[ev.row_demand[rows]] > 0.5):
            self.ok[rows] = new_ok
            self.n_ok = trial
            return True
        return False


def _greedy_remove(
    ev: _DesignEvaluator,
    n: np.ndarray,
    accept: Callable[[np.ndarray, int], bool],
    deadline: float = math.inf,
) -> np.ndarray:
    """Remove repeaters one at a time, largest cost saving first, while ``accept(n, i)`` holds.

    ``accept`` is called with the design after one repeater was taken from link ``i``; when
    it refuses, the repeater is put back and the next link is tried; passes repeat until
    none is removed. Past ``deadline`` (a ``time.perf_counter()`` value) it stops with the
    design so far (every accepted design, so it still satisfies ``accept``).
    """
    n = n.copy()
    order = np.argsort(-ev.cost, kind="stable")
    changed = True
    while changed:
        changed = False
        for i in order:
            if ev.cost[i] <= 0:
                continue
            if time.perf_counter() > deadline:
                logger.warning("repeater heuristic: greedy removal stopped at the time limit")
                return n
            while n[i] > 0:
                n[i] -= 1
                if accept(n, int(i)):
                    changed = True
                else:
                    n[i] += 1
                    break
    return n


def heuristic_spacing(
    data: SpacingData, *, mode: SpacingMode, budget: float | None = None, deadline: float = math.inf
) -> HeuristicDesign | None:
    """A good feasible design fast, or None when none is found.

    ``min_cost``: the cheapest design with a common maximum segment length
    (every distinct option length is tried) that lets every demand meet its
    target and latency limit, then greedy removal of repeaters (largest cost
    saving first) while all of them still hold. ``max_min_rate``: the best
    common-segment-length design within the budget, then greedy marginal
    allocation (the affordable repeater that most raises the worst demand's
    log rate, else lowers the number of demands at that rate), then greedy
    removal while the minimum rate does not drop. Feasibility is checked with
    Eqs. 7-10 (the result is re-evaluated by the caller). Past ``deadline`` (a
    ``time.perf_counter()`` value) each phase stops: the best design so far is
    returned, or None when none was found yet.
    """
    t0 = time.perf_counter()
    ev = _DesignEvaluator(data)
    used = np.zeros(len(ev.links), dtype=bool)
    used[np.unique(ev.index[ev.index < len(ev.links)])] = True
    designs = _uniform_designs(ev, used, deadline)
    designs.append(np.zeros(len(ev.links), dtype=int))
    designs.append(np.where(used, ev.n_max, 0))
    if mode == "min_cost":  # the lowest useful option of every link (exact presolve bound)
        n_lo, _ = presolve_spacing(data, mode=mode, hop_counts=False)
        designs.append(np.array([n_lo.get(lid, 0) for lid in ev.links], dtype=int))
        found = _min_cost_design(ev, designs, deadline)
    else:
        found = _max_min_design(ev, designs, used, budget, deadline)
    if found is None:
        return None
    n, objective, by_rate = found
    return HeuristicDesign(
        dict(zip(ev.links, n.tolist(), strict=True)),
        ev.choice(n, by_rate=by_rate),
        objective,
        time.perf_counter() - t0,
    )


def _min_cost_design(
    ev: _DesignEvaluator, designs: list[np.ndarray], deadline: float
) -> tuple[np.ndarray, float, bool] | None:
    """The cheapest feasible candidate (the first in list order among equals), then greedy removal:
    ``(design, cost, False)``, or None when no candidate is feasible (or the deadline passed first)."""

    def cost_of(n: np.ndarray) -> float:
        return float(np.dot(ev.cost, n))

    # try them in stable cost order and stop at the first feasible one
    start = None
    for cand in sorted(designs, key=cost_of):
        if ev.feasible(cand):
            start = cand
            break
        if time.perf_counter() > deadline:
            logger.warning("repeater heuristic: no feasible design found before the time limit")
            break
    if start is None:
        return None
    n = _greedy_remove(ev, start, _KeepFeasible(ev, start), deadline)
    return n, cost_of(n), False


def _max_min_design(
    ev: _DesignEvaluator, designs: list[np.ndarray], used: np.ndarray, budget: float | None, deadline: float
) -> tuple[np.ndarray, float, bool] | None:
    """The best affordable candidate, greedy marginal allocation, then greedy removal while the
    minimum rate holds: ``(design, log of its minimum rate, True)``, or None when no demand has a rate."""

    def cost_of(n: np.ndarray) -> float:
        return float(np.dot(ev.cost, n))

    limit = math.inf if budget is None else float(budget) + 1e-9

    def score(n: np.ndarray) -> tuple[float, int]:
        best, _ = ev.demand_log_rate(n)
        worst = float(best.min())
        return worst, -int(np.sum(best <= worst + 1e-12))

    affordable = [n for n in designs if cost_of(n) <= limit]
    n = max(affordable, key=lambda a: (score(a)[0], -cost_of(a)))
    current = score(n)
    while time.perf_counter() <= deadline:
        best_move, best_score = None, current
        spent = cost_of(n)
        for i in np.flatnonzero(used & (n < ev.n_max)):
            if spent + ev.cost[i] > limit:
                continue
            n[i] += 1
            sc = score(n)
            n[i] -= 1
            if sc > best_score:
                best_move, best_score = i, sc
        if best_move is None:
            break
        n[best_move] += 1
        current = best_score
    floor = current[0]
    n = _greedy_remove(ev, n, lambda a, _i: score(a)[0] >= floor - 1e-12, deadline)
    worst = score(n)[0]
    if not math.isfinite(worst):
        return None
    return n, worst, True
