"""Eq. 9 and Eq. 10 against the simulated protocols, case by case (``model_vs_simulation.csv``):
the time-shared nested trees Eq. 9 assumes, finite memory under fixed schedules, memory cutoffs and
unequal hops."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from planner import physics
from reports.reproduce_cluster.common import PAPER, Seeds, Settings, chain_spec, rate_spec, run_tasks

MVS_Q, MVS_SPACING = 0.6, 10.0

_EQ9 = "Eq. 9 protocol: unlimited storage, time-shared nested trees"
_NESTED = "finite memory, fixed nested tree"
_SEQUENTIAL = "finite memory, sequential (hop-by-hop)"
_D = MVS_SPACING
#: (label, hop lengths in km, memory units, schedule, cutoff in slots or None); "eq9" is the renewal estimator.
CASES: list[tuple[str, list[float], int, str, int | None]] = [
    (_EQ9, [_D] * 4, 1, "eq9", None),
    (_EQ9, [_D] * 5, 1, "eq9", None),
    (_EQ9, [_D] * 6, 1, "eq9", None),
    (_NESTED, [_D] * 4, 1, "nested", None),
    (_NESTED, [_D] * 4, 2, "nested", None),
    (_NESTED, [_D] * 4, 5, "nested", None),
    (_NESTED, [_D] * 4, 10, "nested", None),
    (_NESTED, [_D] * 6, 5, "nested", None),
    (_SEQUENTIAL, [_D] * 4, 5, "sequential", None),
    (_SEQUENTIAL, [_D] * 6, 5, "sequential", None),
    ("memory cutoff 2 slots", [_D] * 4, 5, "nested", 2),
    ("memory cutoff 5 slots", [_D] * 4, 5, "nested", 5),
    ("memory cutoff 20 slots", [_D] * 4, 5, "nested", 20),
    ("unequal hops (5/15 km), Eq. 9 with worst hop", [5.0, 15.0, 5.0, 15.0], 5, "nested", None),
]


def _case_spec(
    dist: list[float], mem: int, sched: str, cut: int | None, p_worst: float, st: Settings, seed: int
) -> dict[str, Any]:
    """The Monte Carlo task of one case: the renewal estimator for "eq9", else the slot-level chain
    (twice the cycles, three times the slots of the figures; a cutoff counts attempt slots of the longest hop)."""
    if sched == "eq9":
        return rate_spec(len(dist), p=p_worst, q=MVS_Q, memory=mem, cycles=st.cycles * 2, seed=seed)
    att = max(dist) / PAPER.speed_km_per_s
    return chain_spec(
        dist,
        q=MVS_Q,
        memory=mem,
        slots=st.slots * 3,
        trials=st.trials,
        seed=seed,
        schedule=sched,
        cutoff_s=None if cut is None else cut * att,
    )


def model_vs_simulation(st: Settings, seeds: Seeds) -> pd.DataFrame:
    """Eq. 9 / Eq. 10 against the simulated protocols, one row per case of :data:`CASES` (in order)."""
    alpha = PAPER.alpha_db_per_km
    specs, rows = [], []
    for label, dist, mem, sched, cut in CASES:
        k = len(dist)
        p_worst = float(physics.link_success_probability(max(dist), alpha_db_per_km=alpha))
        seed = seeds.next()
        specs.append(_case_spec(dist, mem, sched, cut, p_worst, st, seed))
        rows.append(
            dict(
                case=label,
                hops=k,
                distances_km="/".join(f"{x:g}" for x in dist),
                memory=mem,
                schedule="time-shared nested" if sched == "eq9" else sched,
                cutoff_slots=cut,
                q=MVS_Q,
                eq9_rate=float(physics.chain_distribution_ratio(k, p=p_worst, q=MVS_Q, memory=mem)),
                eq10_latency_s=float(physics.chain_latency_s(dist, q=MVS_Q, memory=mem, alpha_db_per_km=alpha)),
                seed=seed,
            )
        )
    res = run_tasks(specs, st)
    df = pd.DataFrame(rows)
    df["sim_rate"] = [r.get("rate_per_slot", r["value"]) for r in res]
    df["sim_rate_ci_low"] = [r.get("rate_low", r["low"]) for r in res]
    df["sim_rate_ci_high"] = [r.get("rate_high", r["high"]) for r in res]
    df["sim_over_eq9"] = df.sim_rate / df.eq9_rate
    df["sim_first_pair_s"] = [r.get("value") if "rate_per_slot" in r else math.nan for r in res]
    df["eq10_over_sim_first_pair"] = df.eq10_latency_s / df.sim_first_pair_s
    return df
