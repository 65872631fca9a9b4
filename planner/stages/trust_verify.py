"""SMR verification of the trusted-relay stage's selections, within the stage's time.

:class:`TrustClock` is what is left of the stage's time and hands it out as recorded limits;
:func:`selection_rows` picks the demands the SMR search screens (all when they fit, else the
worst ones and a fixed sample, at the speed :func:`probe_seconds` measures); :func:`verify`
routes every selection on the same demands until its deadline and :func:`verify_selections`
wraps it for the stage (a start that beats the search on the verified demands replaces it);
:func:`smr_table` and :func:`comparison` are the stage's per-demand SMR columns and its
comparison of the selections.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from planner.stages.trust_smr import SmrEvaluator, smr_key
from solvers.base import current_budget, note_time_limit
from solvers.trust import TrustData, evaluate_costs

logger = logging.getLogger(__name__)

PROBE_SHARE = 0.05
"""Share of the stage's time left after which the SMR speed probe stops routing more demands."""

VERIFY_SAFETY = 1.25
"""The verification adds a block of demands only when that many times its routing time at the measured
speed fits before the deadline (the speed varies from demand to demand)."""

MIN_SELECTION_DEMANDS = 8
"""The SMR search screens at least this many demands, even when fewer fit in its time."""

MIN_VERIFY_BLOCK = 200
"""Demands verified per block (at least), so the executor gets work worth spreading."""


class TrustClock:
    """What is left of the trust stage's time: the open stage budget when there is one (limits
    already handed and wall time both count), else ``total_s`` minus what this clock handed out
    and the wall time since it was made. Never negative."""

    def __init__(self, total_s: float) -> None:
        self.total_s = max(0.0, float(total_s))
        self.budget = current_budget()
        self.start = time.perf_counter()
        self.handed_s = 0.0

    def left_s(self) -> float:
        if self.budget is not None:
            return self.budget.left_s()
        return max(0.0, min(self.total_s - self.handed_s, self.total_s - (time.perf_counter() - self.start)))

    def options(self, opts: Any, *, fraction: float = 1.0) -> Any:
        """``opts`` with a time limit of ``fraction`` of what is left (the solver records it)."""
        limit = max(0.0, min(float(opts.time_limit_s), fraction * self.left_s()))
        if self.budget is None:
            self.handed_s += limit
        return dataclasses.replace(opts, time_limit_s=limit)

    def wall_left_s(self) -> float:
        """Wall-clock time left of the stage, ignoring what was handed out (may be negative)."""
        if self.budget is not None:
            return self.budget.budget_s - (time.perf_counter() - self.budget.start)
        return self.total_s - (time.perf_counter() - self.start)

    def hand_out(self, fraction: float = 1.0) -> float:
        """``fraction`` of what is left, handed to work that is not a solver run (recorded as a limit)."""
        limit = max(0.0, fraction * self.left_s())
        note_time_limit(limit)
        if self.budget is None:
            self.handed_s += limit
        return limit


def smr_table(demands: pd.DataFrame, rows: list[int] | None, results: list[Any]) -> pd.DataFrame:
    """The :func:`smr_check` columns for the routed demands ``rows`` (all when None)."""
    idx = range(len(demands)) if rows is None else rows
    out = []
    for i, res in zip(idx, results, strict=True):
        out.append(
            {
                "demand_id": demands["demand"].iloc[i],
                "security": float(res.security) if res.delivered else 0.0,
                "segments": len(res.segments),
                "paths": int(res.n_paths),
                "key_consumption": int(res.total_hops),
                "trusted_on_path": ";".join(str(x) for x in res.segment_nodes[1:-1]),
            }
        )
    return pd.DataFrame(
        out, columns=["demand_id", "security", "segments", "paths", "key_consumption", "trusted_on_path"]
    )


def probe_seconds(ev: Any, seed: int, max_s: float = float("inf")) -> float:
    """Seconds per demand of SMR routing, timed on up to 10 demands (fewer once ``max_s`` has passed;
    at least one)."""
    n = len(ev.pairs)
    probe = sorted(np.random.default_rng(seed).choice(n, size=min(n, 10), replace=False).tolist())
    t0 = time.perf_counter()
    done = 0
    for row in probe:
        ev.securities(frozenset(), [row], results=[])
        done += 1
        if time.perf_counter() - t0 >= max_s:
            break
    return max(1e-4, (time.perf_counter() - t0) / done)


def selection_rows(
    ev: Any, single_costs: list[np.ndarray], n_starts: int, time_s: float, seed: int, per_s: float | None = None
) -> tuple[list[int] | None, float]:
    """Demands the SMR selection evaluates: all when that fits in ``time_s``, else a sample.

    Times SMR on a few demands first. The sample holds the demands worst by
    single-path security under any start (they decide the minimum) and a
    fixed random draw (for the mean). Returns the rows (None = all) and the
    measured seconds per demand.
    """

    n = len(ev.pairs)
    rng = np.random.default_rng(seed)
    per = per_s if per_s is not None else probe_seconds(ev, seed)
    affordable = int(time_s / per / (n_starts + 12))
    if affordable >= n:
        return None, per
    k = max(MIN_SELECTION_DEMANDS, affordable)
    worst: list[int] = []
    for costs in single_costs:
        worst.extend(np.argsort(-costs, kind="stable")[: k // (2 * max(1, len(single_costs)))].tolist())
    rows = set(worst)
    rest = [i for i in range(n) if i not in rows]
    rows.update(rng.choice(rest, size=min(len(rest), max(0, k - len(rows))), replace=False).tolist())
    return sorted(int(i) for i in rows), per


@dataclass
class Verified:
    """SMR verification of several selections on the same demands ``rows``."""

    rows: list[int]
    securities: dict[frozenset[str], np.ndarray]
    results: list[Any]  # SmrResult per row, for the chosen set
    results_of: dict[frozenset[str], list[Any]]


def verify(
    ev: Any,
    sets: list[frozenset[str]],
    chosen: frozenset[str],
    rows: list[int] | None,
    per_s: float,
    deadline: float,
    seed: int,
) -> Verified:
    """SMR security of every set in ``sets`` on the same demands, as many as fit before ``deadline``.

    The selection's demands ``rows`` (all when None) come first and are verified
    as far as the time allows, at least one (the starts are mostly memoised on
    them, which costs nothing); the others follow in a fixed
    random order (``seed``), in blocks of at least :data:`MIN_VERIFY_BLOCK`,
    while the routing speed measured so far (``per_s`` before the first
    block) says the next block ends before ``deadline``; the last block is cut
    to fit. Guarantees: every set is verified on exactly the returned
    ``rows`` (sorted), and ``results`` holds the chosen set's routes on them.
    """
    n = len(ev.pairs)
    distinct = [s for s in dict.fromkeys(sets) if s != chosen]
    first = list(range(n)) if rows is None else sorted(int(i) for i in rows)
    taken = set(first)
    rest = [i for i in range(n) if i not in taken]
    rest = [rest[int(i)] for i in np.random.default_rng(seed + 1).permutation(len(rest))]
    block = max(MIN_VERIFY_BLOCK, n // 10)
    parts: dict[frozenset[str], list[np.ndarray]] = {s: [] for s in [chosen, *distinct]}
    results: list[Any] = []
    done: list[int] = []
    rate = max(1e-6, per_s)
    todo = [first] + [rest[lo : lo + block] for lo in range(0, len(rest), block)]
    for j, part in enumerate(todo):
        routed = [s for s in [chosen, *distinct] if not ev.known(s, part)]
        if routed:
            fit = int((deadline - time.perf_counter()) / (VERIFY_SAFETY * rate * len(routed)))
            if fit < 1 and (j > 0 or not part):
                break
            part = part[: max(1, fit)]  # the selection's demands: at least one, even out of time
        t0, calls0 = time.perf_counter(), ev.calls
        parts[chosen].append(ev.securities(chosen, part, results=results))
        for s in distinct:
            parts[s].append(ev.securities(s, part))
        if ev.calls > calls0:
            rate = max(1e-6, (time.perf_counter() - t0) / (ev.calls - calls0))
        done.extend(part)
    order = np.argsort(np.asarray(done), kind="stable")
    secs = {s: np.concatenate(v)[order] for s, v in parts.items()}
    ordered_results = [results[int(i)] for i in order]
    return Verified(
        rows=[done[int(i)] for i in order],
        securities=secs,
        results=ordered_results,
        results_of={chosen: ordered_results},
    )


def verify_selections(
    ev: SmrEvaluator,
    selections: dict[str, list[str]],
    chosen_name: str,
    rows: list[int] | None,
    per_demand_s: float,
    stage_clock: TrustClock,
    smr_info: dict[str, Any],
    seed: int,
) -> tuple[list[str], list[int], list[Any], dict[str, np.ndarray]]:
    """Verify every selection on the same demands within what is left of the stage: the selection's
    demands first, then the others in a fixed random order, block by block while the measured SMR
    speed says the next block fits (a set met twice is routed once). Unless the objective is
    ``target``, a start that beats the search on the verified demands replaces it (``selections``
    updated in place). Returns the chosen relays, the verified rows, the chosen set's routes on
    them and each selection's SMR security per verified demand."""
    chosen = selections[chosen_name]
    objective = smr_info["objective"]
    t_ver = time.perf_counter()
    verify_s = stage_clock.hand_out()
    per = per_demand_s or probe_seconds(ev, seed)
    verified = verify(
        ev, [frozenset(s) for s in selections.values()], frozenset(chosen), rows, per, t_ver + verify_s, seed
    )
    vrows, results = verified.rows, verified.results
    full = {name: verified.securities[frozenset(s)] for name, s in selections.items()}
    n_dem = len(ev.pairs)
    smr_info.update(
        verified_demands=len(vrows),
        verification_time_s=time.perf_counter() - t_ver,
        verification="all demands" if len(vrows) == n_dem else f"{len(vrows)} of {n_dem} demands (stage time limit)",
    )
    key_of: Literal["min", "mean"] = "mean" if objective == "mean" else "min"
    if objective != "target":
        best = max(selections, key=lambda name: (smr_key(full[name], key_of), name == chosen_name))
        if best != chosen_name:
            smr_info["replaced_by"] = best  # the sampled search lost to a start on the verified demands
            chosen = selections[best]
            selections[chosen_name] = chosen
            full[chosen_name] = full[best]
            results = verified.results_of.get(frozenset(chosen)) or []
            if not results:
                ev.securities(frozenset(chosen), vrows, results=results)
    # reached only when the clock really ran out or work was cut short: after the last hand-out
    # left_s() is 0 by construction, so it says nothing here
    smr_info["time_limit_reached"] = bool(
        stage_clock.wall_left_s() <= 0.0
        or len(vrows) < n_dem
        or str(smr_info.get("stopped", "")).startswith("time limit")
    )
    if smr_info["time_limit_reached"]:
        logger.info(
            "trust: stage time limit reached (%s; search: %s); returning the best selection found",
            smr_info["verification"],
            smr_info.get("stopped"),
        )
    return chosen, vrows, results, full


def comparison(
    selections: dict[str, list[str]],
    single: dict[str, np.ndarray],
    full: dict[str, np.ndarray],
    data: TrustData,
    eps: float,
) -> list[dict[str, Any]]:
    """One row per selection: its size, single-path and SMR security (min, mean) and demands meeting ``eps``."""
    comparison = []
    for method, tset in selections.items():
        costs = single.get(method)
        if costs is None:
            costs = evaluate_costs(data, tset)
        sp = np.exp(-costs)
        check = full[method]
        comparison.append(
            {
                "method": method,
                "trusted": len(tset),
                "min_single_path_security": float(sp.min()),
                "mean_single_path_security": float(sp.mean()),
                "min_smr_security": float(check.min()),
                "mean_smr_security": float(check.mean()),
                "eps_met": int((check >= eps - 1e-12).sum()),
                "smr_demands": len(check),
            }
        )
    return comparison
