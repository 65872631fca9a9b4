"""Repeater spacing at growing backbone sizes (both modes, fixed and candidate paths).

Backbones are seeded Gabriel graphs of uniform random points in a square of
``SIDE_KM``; each link
gets up to ``min(N_CAP, ceil(length / SPACING_KM))`` repeaters at unit cost.
Demands join random node pairs over their shortest path (K = 1) or a choice of
the K = 3 shortest paths. Mode ``min_cost``: every demand must reach half of the
best rate it could reach on its own; mode ``max_min_rate``: repeater budget of
one repeater per link on average.

Run from the repository root::

    python benchmarks/bench_repeaters.py [--time-limit 120] [--quick]

Writes ``benchmarks/results_repeaters.csv`` and ``benchmarks/results_repeaters.md``.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solvers.base import SolverOptions  # noqa: E402
from solvers.repeaters import (  # noqa: E402
    ChainParameters,
    best_single_rate,
    candidate_link_paths,
    prepare_spacing_data,
    solve_spacing,
)

SEED = 20240602
SIDE_KM = 500.0
SPACING_KM = 5.0
N_CAP = 30
PARAMS = ChainParameters(alpha_db_per_km=0.4, q=0.9, memory=4.0)
SIZES = [(10, 5), (20, 10), (50, 20), (100, 40)]  # (backbone nodes, demands)


def gabriel_graph(n: int, rng: np.random.Generator) -> nx.Graph:
    """Gabriel graph of ``n`` uniform points in the unit square (planar, connected, degree ~4).

    An edge joins a and b when no other point lies in the disc with diameter ab,
    a common model of fibre backbones (it contains the Euclidean minimum spanning tree).
    """
    pos = rng.uniform(size=(n, 2))
    g = nx.Graph()
    for i in range(n):
        g.add_node(i, pos=tuple(pos[i]))
    for a in range(n):
        for b in range(a + 1, n):
            mid = (pos[a] + pos[b]) / 2
            r2 = np.sum((pos[a] - pos[b]) ** 2) / 4
            d2 = np.sum((pos - mid) ** 2, axis=1)
            d2[[a, b]] = np.inf
            if np.all(d2 > r2):
                g.add_edge(a, b)
    return g


def backbone(n: int, rng: np.random.Generator) -> tuple[nx.Graph, pd.DataFrame]:
    g = gabriel_graph(n, rng)
    rows = []
    for i, (a, b) in enumerate(sorted(g.edges)):
        length = max(1.0, SIDE_KM * math.dist(g.nodes[a]["pos"], g.nodes[b]["pos"]))
        rows.append(
            {
                "link": f"e{i}",
                "u": a,
                "v": b,
                "length_km": round(length, 2),
                "cost_per_repeater": 1.0,
                "max_repeaters": min(N_CAP, math.ceil(length / SPACING_KM)),
            }
        )
    return g, pd.DataFrame(rows)


def demands_for(
    links: pd.DataFrame, n: int, n_demands: int, k: int, rng: np.random.Generator
) -> pd.DataFrame:
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_demands:
        a, b = sorted(int(x) for x in rng.choice(n, 2, replace=False))
        pairs.add((a, b))
    rows = []
    for i, (a, b) in enumerate(sorted(pairs)):
        rows.append({"demand": f"d{i}", "paths": candidate_link_paths(links, a, b, k=k)})
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    opts = SolverOptions(time_limit_s=args.time_limit, threads=args.threads, seed=0)
    sizes = SIZES[:2] if args.quick else SIZES
    rows = []
    for n, n_dem in sizes:
        g, links = backbone(n, rng)
        for k in (1, 3):
            demands = demands_for(links, n, n_dem, k, rng)
            data = prepare_spacing_data(links, demands, PARAMS)
            best = {d: best_single_rate(data, d) for d in data.demand_ids}
            with_target = demands.assign(rate_target=[0.5 * best[d] for d in demands["demand"]])
            budget = float(len({lid for ps in demands["paths"] for p in ps for lid in p}))
            for mode in ("min_cost", "max_min_rate"):
                t0 = time.perf_counter()
                res = solve_spacing(
                    links,
                    with_target if mode == "min_cost" else demands,
                    PARAMS,
                    mode=mode,
                    budget=budget if mode == "max_min_rate" else None,
                    options=opts,
                )
                wall = time.perf_counter() - t0
                empty = pd.DataFrame({"rate": [math.nan], "hops": [0], "meets_target": [False]})
                dem = res.tables.get("demands", empty)
                rows.append(
                    {
                        "nodes": n,
                        "links": len(links),
                        "demands": n_dem,
                        "paths_per_demand": k,
                        "mode": mode,
                        "budget": budget if mode == "max_min_rate" else math.nan,
                        "status": str(res.status),
                        "gap": res.gap,
                        "n_variables": res.info.get("n_variables"),
                        "n_constraints": res.info.get("n_constraints"),
                        "build_time_s": res.build_time_s,
                        "solve_time_s": res.solve_time_s,
                        "wall_time_s": wall,
                        "total_repeaters": res.info.get("total_repeaters"),
                        "min_rate": float(dem["rate"].min()),
                        "mean_rate": float(dem["rate"].mean()),
                        "max_hops": int(dem["hops"].max()),
                        "targets_met": bool(dem["meets_target"].all()),
                    }
                )
                print(f"n={n} K={k} {mode}: {res.status} {wall:.1f}s", flush=True)
    df = pd.DataFrame(rows)
    df.insert(0, "seed", SEED)
    return df


def md_table(df: pd.DataFrame) -> str:
    cells = [[str(x) for x in row] for row in df.to_numpy().tolist()]
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    return "\n".join([head, rule] + ["| " + " | ".join(row) + " |" for row in cells])


def markdown(df: pd.DataFrame, args: argparse.Namespace) -> str:
    fmt = df.drop(columns=["seed"]).copy()
    for col in ("build_time_s", "solve_time_s", "wall_time_s"):
        fmt[col] = fmt[col].map(lambda x: f"{x:.2f}")
    for col in ("min_rate", "mean_rate"):
        fmt[col] = fmt[col].map(lambda x: f"{x:.3e}")
    fmt["gap"] = fmt["gap"].map(lambda x: "" if not math.isfinite(x) else f"{x:.2%}")
    for col in ("budget", "n_variables", "n_constraints", "total_repeaters"):
        fmt[col] = fmt[col].map(lambda x: "" if not math.isfinite(x) else f"{x:.0f}")
    return "\n".join(
        [
            "# Repeater spacing: model size and solve time at growing backbone sizes",
            "",
            "Generated by `benchmarks/bench_repeaters.py`"
            + (" (quick mode)" if args.quick else "")
            + f" on {platform.machine()} with {args.threads} solver threads, "
            f"time limit {args.time_limit:.0f} s per solve.",
            "",
            f"Setting: Gabriel graphs of uniform random points (seed {SEED}) in a "
            f"{SIDE_KM:.0f} km square (planar, connected, mean degree about 4); alpha = {PARAMS.alpha_db_per_km} dB/km (NV platform, "
            f"cluster paper), q = {PARAMS.q}, m = {PARAMS.memory:.0f}; up to "
            f"min({N_CAP}, ceil(length / {SPACING_KM:.0f} km)) repeaters per link at unit cost. "
            "Demands between random node pairs over their shortest path (K = 1) or a choice "
            "among the 3 shortest paths (K = 3). `min_cost`: every demand must reach half of "
            "its best stand-alone Eq. 9 rate; `max_min_rate`: budget = number of used links "
            "(then least cost at the optimal rate). Rates are Eq. 9 distribution ratios "
            "(pairs per attempt slot) with the worst segment's Eq. 7 probability, recomputed "
            "from the chosen design. Status `feasible`: time limit reached with a design (gap to "
            "the proven bound); `time_limit_no_solution`: no design found within the limit.",
            "",
            md_table(fmt),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    df = run(args)
    df.to_csv(args.out / "results_repeaters.csv", index=False)
    (args.out / "results_repeaters.md").write_text(markdown(df, args))


if __name__ == "__main__":
    main()
