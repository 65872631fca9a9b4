"""Throughput of the repeater-chain simulators, swept over size.

Writes ``benchmarks/results_chain.csv`` and ``benchmarks/results_chain.md``. A
"link-attempt slot" is one hop of one trial in one attempt slot (all memory units of
that hop attempt in parallel within it); the target is >= 1e6 per second on one core.
Run: ``python benchmarks/bench_chain.py``.
"""

from __future__ import annotations

import os

# one core: keep BLAS single-threaded so CPU time is single-core work
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from planner.simulate.chain import simulate_chain, simulate_chain_rate  # noqa: E402

OUT = Path(__file__).resolve().parent


def _best_of(func, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        func()
        best = min(best, time.process_time() - t0)
    return best


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(row[c]) else str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def main() -> pd.DataFrame:
    rows = []
    slots = 500
    for hops in (2, 4, 8, 16):
        for trials in (100, 1000, 4000):
            for memory in (1, 4):
                secs = _best_of(
                    lambda h=hops, t=trials, m=memory: simulate_chain(
                        [10.0] * h, q=0.6, memory=m, slots=slots, trials=t, seed=0
                    )
                )
                edge_slots = hops * trials * slots
                rows.append(
                    {
                        "simulator": "simulate_chain (slot-level)",
                        "hops": hops,
                        "trials_or_cycles": trials,
                        "memory": memory,
                        "slots": slots,
                        "seconds": round(secs, 4),
                        "link_attempt_slots_per_s": round(edge_slots / secs),
                        "unit_attempts_per_s": round(edge_slots * memory / secs),
                    }
                )
    for hops in (4, 21, 64):
        for cycles in (10_000, 100_000):
            secs = _best_of(lambda h=hops, c=cycles: simulate_chain_rate(h, p=0.3, q=0.6, cycles=c, seed=0))
            r = simulate_chain_rate(hops, p=0.3, q=0.6, cycles=cycles, seed=0)
            rows.append(
                {
                    "simulator": "simulate_chain_rate (Eq. 9 renewal)",
                    "hops": hops,
                    "trials_or_cycles": cycles,
                    "memory": 1,
                    "slots": round(cycles / r.rate.value),
                    "seconds": round(secs, 4),
                    "link_attempt_slots_per_s": round(hops * cycles / r.rate.value / secs),
                    "unit_attempts_per_s": round(hops * cycles / r.rate.value / secs),
                    "rel_ci_half_width": round(r.rate.half_width / r.rate.value, 4),
                }
            )
    df = pd.DataFrame(rows)
    df.to_csv(OUT / "results_chain.csv", index=False)
    head = (
        "# Repeater-chain simulator throughput\n\n"
        f"Machine: {platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}; one process, one core, best of 3 by CPU time "
        "(time.process_time, so that other load on the machine does not distort it), "
        "BLAS limited to one thread.\n\n"
        "`link_attempt_slots_per_s` = hops x trials x slots / seconds (each hop attempts on "
        "all its free memory units in a slot); `unit_attempts_per_s` multiplies by the memory "
        "units. For the renewal estimator, slots are the attempt slots the simulated cycles "
        "represent (cycles / rate), so its figure is the equivalent simulated chain time.\n\n"
    )
    (OUT / "results_chain.md").write_text(head + _markdown(df) + "\n")
    return df


if __name__ == "__main__":
    print(main().to_string(index=False))
