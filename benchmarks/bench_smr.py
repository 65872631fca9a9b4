"""Benchmark of SMR routing and of the full SMR paper reproduction.

Writes ``benchmarks/results_smr.csv`` (per-request routing times by graph size)
and ``benchmarks/results_smr.md`` (that table plus the wall time of the full
reproduction: both sweeps, 1000 runs per point, on the available cores).

Size sweep: connected Waxman graphs of 100, 1 000 and 10 000 nodes with
``alpha = 0.15 * sqrt(100 / n)`` (mean degree 8 to 16; see the edge counts), 10 % of the
nodes trusted, ``p_u = 0.8``; for 10 000 nodes the largest connected component
of one draw is used. Times are per request (mean and max over the requests).

Usage: ``python benchmarks/bench_smr.py [--skip-full] [--requests N]``
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from planner.routing import ex_dijkstra, msp, smr  # noqa: E402
from planner.runtime.parallel import default_workers  # noqa: E402
from planner.topology.waxman import DEFAULT_ALPHA, DEFAULT_BETA, waxman_graph  # noqa: E402
from reports.reproduce_smr import reproduce_smr  # noqa: E402

SIZES = (100, 1_000, 10_000)
P_UNTRUSTED = 0.8
TRUSTED_FRACTION = 0.1


def size_sweep(requests: int, seed: int = 0) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for n in SIZES:
        rng = np.random.default_rng([seed, n])
        alpha = DEFAULT_ALPHA * math.sqrt(100 / n)
        t0 = time.perf_counter()
        graph = waxman_graph(n, rng, alpha=alpha, beta=DEFAULT_BETA, largest_component=n >= 10_000)
        gen_s = time.perf_counter() - t0
        nodes = sorted(graph.nodes)
        n_req = requests if n < 10_000 else max(3, requests // 4)
        times: dict[str, list[float]] = {"ex_dijkstra": [], "SMR": [], "MSP": []}
        paths, segs = [], []
        for _ in range(n_req):
            s, d = (int(x) for x in rng.choice(nodes, size=2, replace=False))
            others = [v for v in nodes if v not in (s, d)]
            k = int(TRUSTED_FRACTION * len(nodes))
            trusted = {int(x) for x in rng.choice(others, size=k, replace=False)}
            t = time.perf_counter()
            ex_dijkstra(graph, s, d, security=P_UNTRUSTED, trusted=trusted)
            times["ex_dijkstra"].append(time.perf_counter() - t)
            t = time.perf_counter()
            route = smr(graph, s, d, trusted=trusted, security=P_UNTRUSTED)
            times["SMR"].append(time.perf_counter() - t)
            paths.append(route.n_paths)
            segs.append(len(route.segments))
            t = time.perf_counter()
            msp(
                graph,
                s,
                d,
                security=P_UNTRUSTED,
                n_paths=max(1, route.n_paths),
                rng=rng,
                trusted=trusted,
            )
            times["MSP"].append(time.perf_counter() - t)
        for method, ts in times.items():
            rows.append(
                {
                    "nodes": graph.number_of_nodes(),
                    "edges": graph.number_of_edges(),
                    "method": method,
                    "requests": n_req,
                    "time_mean_ms": round(1000 * float(np.mean(ts)), 2),
                    "time_max_ms": round(1000 * float(np.max(ts)), 2),
                    "smr_paths_mean": round(float(np.mean(paths)), 2),
                    "smr_segments_mean": round(float(np.mean(segs)), 2),
                    "graph_build_s": round(gen_s, 2),
                }
            )
            print(rows[-1], flush=True)
    return rows


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def full_reproduction(workers: int, keep: Path | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s of this process and its workers, 1-min load average before).

    The reproduction's tables, figures and README go to ``keep`` (a new or empty
    folder) when given, else to a temporary folder that is removed."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cpu = _cpu_s()
        t = time.perf_counter()
        reproduce_smr(keep or Path(tmp), runs=1000, seed=0, workers=workers)
        return time.perf_counter() - t, _cpu_s() - cpu, load_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-full", action="store_true", help="skip the 1000-run reproduction")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="new folder for the reproduction's outputs")
    args = parser.parse_args()
    out = Path(__file__).resolve().parent
    workers = default_workers()
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: folder is not empty; give a new or empty folder")
    full = None if args.skip_full else full_reproduction(workers, args.keep)
    rows = size_sweep(args.requests)
    with (out / "results_smr.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    lines = [
        "# SMR benchmark",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {workers} worker processes, "
        f"Python {platform.python_version()}; load average at the end "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (other jobs were running).",
        "",
        "## Full paper reproduction",
        "",
        "`reproduce_smr(out, runs=1000, seed=0)`: both sweeps (17 points), 1000 runs per point,",
        "5 methods (SMR, MSP, MSP-disjoint, shortest, disjoint), 3 security levels, 100-node Waxman graphs.",
        "",
        (
            f"Wall time: **{full[0]:.1f} s** on {workers} workers (goal: under 120 s); "
            f"CPU time of all processes {full[1]:.1f} s, i.e. {full[1] / workers:.1f} s of "
            f"wall time on {workers} otherwise idle cores; 1-minute load average before "
            f"the run {full[2]:.1f}."
        )
        if full is not None
        else "Wall time: not measured in this run (--skip-full).",
        "",
        "## Per-request routing time by graph size",
        "",
        "Waxman graphs, alpha = 0.15 * sqrt(100 / n), beta = 0.6, 10 % trusted relays, p_u = 0.8.",
        "SMR includes step 1 (segment nodes) and step 2 (all paths until none is left);",
        "MSP draws as many paths as SMR found.",
        "",
        "| nodes | edges | method | requests | mean (ms) | max (ms) | SMR paths | SMR segments |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['nodes']} | {r['edges']} | {r['method']} | {r['requests']} | {r['time_mean_ms']} "
            f"| {r['time_max_ms']} | {r['smr_paths_mean']} | {r['smr_segments_mean']} |"
        )
    lines.append("")
    (out / "results_smr.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
