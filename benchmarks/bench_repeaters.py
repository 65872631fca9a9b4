"""Repeater spacing at growing backbone sizes and on the bundled networks.

Part 1 (synthetic, both modes, fixed and candidate paths):

Backbones are seeded Gabriel graphs of uniform random points in a square of
``SIDE_KM``; each link
gets up to ``min(N_CAP, ceil(length / SPACING_KM))`` repeaters at unit cost.
Demands join random node pairs over their shortest path (K = 1) or a choice of
the K = 3 shortest paths. Mode ``min_cost``: every demand must reach half of the
best rate it could reach on its own; mode ``max_min_rate``: repeater budget of
one repeater per link on average.

Part 2 (bundled Topology Zoo networks): the pipeline's own backbone
(access clustering, contraction onto clusters, one shortest path per cluster
pair) and :func:`planner.stages.repeaters.plan_repeaters` under the bundled default
scenario with ``backbone.mode = "repeaters"`` and several
``rate_target`` / ``max_repeaters_per_link`` settings (and ``max_min_rate``
with a budget of 4 repeaters per backbone link); the solver time limit is the
scenario's.

Run from the repository root::

    python benchmarks/bench_repeaters.py [--time-limit 120] [--quick] [--networks-only]

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

from planner.physics import PAPER_NV_PHYSICS  # noqa: E402
from planner.stages.repeater_tables import chain_tables  # noqa: E402
from solvers.base import SolverOptions  # noqa: E402
from solvers.repeaters import (  # noqa: E402
    best_single_rate,
    candidate_link_paths,
    prepare_spacing_data,
    solve_spacing,
)

SEED = 20240602
SIDE_KM = 500.0
SPACING_KM = 5.0
N_CAP = 30
PHYSICS = PAPER_NV_PHYSICS.with_values(q_swap=0.9)  # the cluster paper's NV platform, q = 0.9
MEMORY_UNITS = 4.0
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


def demands_for(links: pd.DataFrame, n: int, n_demands: int, k: int, rng: np.random.Generator) -> pd.DataFrame:
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
            tables = chain_tables(links, PHYSICS, memory_units=MEMORY_UNITS)  # Eqs. 7-10 as numbers
            data = prepare_spacing_data(links, demands, tables)
            best = {d: best_single_rate(data, d) for d in data.demand_ids}
            with_target = demands.assign(rate_target=[0.5 * best[d] for d in demands["demand"]])
            budget = float(len({lid for ps in demands["paths"] for p in ps for lid in p}))
            for mode in ("min_cost", "max_min_rate"):
                t0 = time.perf_counter()
                res = solve_spacing(
                    links,
                    with_target if mode == "min_cost" else demands,
                    tables,
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


NETWORKS = ["Abilene", "Nsfnet", "Surfnet", "Kreonet", "Cernet", "Geant2010", "Uninett2010"]
# extra overrides a network needs for the access stage to be feasible under the default scenario
NETWORK_OVERRIDES: dict[str, dict[str, object]] = {"Uninett2010": {"access.reach_km": 120.0}}
SETTINGS = [  # (objective, rate_target, max_repeaters_per_link)
    ("min_cost", 1e-3, 30),
    ("min_cost", 1e-4, 30),
    ("min_cost", 1e-4, 63),
    ("max_min_rate", math.nan, 30),
]


def run_networks(args: argparse.Namespace) -> pd.DataFrame:
    """Repeater stage of the pipeline on the bundled networks (see the module docstring)."""
    from planner.errors import InfeasibleDesignError, ValidationError
    from planner.io.bundled import DEFAULT_SCENARIO, bundled_path
    from planner.io.readers import read_network
    from planner.model.scenario import load_scenario
    from planner.pipeline import plan_access
    from planner.stages.backbone import build_backbone, cluster_of
    from planner.stages.prepare import prepare_network
    from planner.stages.repeaters import plan_repeaters

    base = load_scenario(bundled_path(DEFAULT_SCENARIO))
    rows = []
    for name in NETWORKS[:3] if args.quick else NETWORKS:
        sc = base.with_overrides({"backbone.mode": "repeaters", **NETWORK_OVERRIDES.get(name, {})})
        net = read_network(
            bundled_path(f"topology-zoo/{name}.graphml"),
            route_factor=sc.network.route_factor,
            drop_external=sc.network.drop_external,
        )
        t0 = time.perf_counter()
        try:
            net, _notes = prepare_network(net, sc)
            access, tables = plan_access(net, sc)
            bb = build_backbone(net, cluster_of(access.tables["assignment"], tables.standalone), sc)
        except (InfeasibleDesignError, ValidationError) as exc:
            print(f"{name}: access stage failed: {str(exc).splitlines()[0]}", flush=True)
            continue
        access_s = time.perf_counter() - t0
        for objective, target, n_max in SETTINGS:
            over: dict[str, object] = {
                "backbone.objective": objective,
                "backbone.max_repeaters_per_link": n_max,
            }
            if objective == "min_cost":
                over["backbone.rate_target"] = target
            else:
                over["backbone.repeater_budget"] = 4 * len(bb.links)
            sc2 = sc.with_overrides(over)
            t1 = time.perf_counter()
            row: dict[str, object] = {
                "network": name,
                "backbone_links": len(bb.links),
                "demands": len(bb.demands),
                "objective": objective,
                "rate_target": target,
                "max_repeaters_per_link": n_max,
                "budget": 4 * len(bb.links) if objective == "max_min_rate" else math.nan,
                "access_stage_s": access_s,
            }
            try:
                stage = plan_repeaters(bb, sc2)
                summary = stage.solves["repeaters"]
                info = summary.get("info", {}) if isinstance(summary.get("info"), dict) else {}
                get = {**summary, **info}.get
                dem = stage.tables["demands"]
                row.update(
                    {
                        "status": get("status"),
                        "source": get("source"),
                        "objective_value": get("objective"),
                        "heuristic_value": get("heuristic_objective"),
                        "gap": get("gap"),
                        "dominated_demands": get("n_demands_dominated"),
                        "n_variables": get("n_variables"),
                        "heuristic_s": stage.timing.get("repeaters.heuristic_time_s", math.nan),
                        "build_s": stage.timing.get("repeaters.build_time_s", math.nan),
                        "solve_s": stage.timing.get("repeaters.solve_time_s", math.nan),
                        "total_repeaters": int(stage.tables["links"]["repeaters"].sum()),
                        "min_rate": float(dem["rate"].min()),
                        "targets_met": bool(dem["meets_target"].all()),
                    }
                )
            except InfeasibleDesignError as exc:
                row.update({"status": "infeasible (pre-check)", "note": str(exc).splitlines()[0]})
            row["stage_wall_s"] = time.perf_counter() - t1
            rows.append(row)
            print(
                f"{name} {objective} {target} {n_max}: {row['status']} {row['stage_wall_s']:.1f}s",
                flush=True,
            )
    return pd.DataFrame(rows)


def networks_markdown(df: pd.DataFrame) -> str:
    fmt = df.copy()
    for col in fmt.columns:
        if col.endswith("_s"):
            fmt[col] = fmt[col].map(lambda x: "" if pd.isna(x) else f"{x:.2f}")
    for col in ("min_rate", "rate_target", "objective_value", "heuristic_value"):
        if col in fmt:
            fmt[col] = fmt[col].map(lambda x: "" if pd.isna(x) else f"{x:.4g}")
    if "gap" in fmt:
        fmt["gap"] = fmt["gap"].map(lambda x: "" if pd.isna(x) else f"{float(x):.2%}")
    fmt = fmt.astype(object).where(fmt.notna(), "")
    return "\n".join(
        [
            "## Bundled networks (pipeline repeater stage)",
            "",
            'Default scenario with `backbone.mode = "repeaters"`; one shortest backbone path per '
            "cluster pair; `max_min_rate` with a budget of 4 repeaters per backbone link. "
            "`source`: `milp` (the MILP, started from the heuristic design) or `heuristic` (the "
            "MILP found nothing better within the limit). `*_s` columns are wall-clock seconds "
            "of the heuristic, model build and MILP solve; `stage_wall_s` is the whole stage.",
            "",
            md_table(fmt),
            "",
        ]
    )


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
            f"{SIDE_KM:.0f} km square (planar, connected, mean degree about 4); alpha = {PHYSICS.alpha_db_per_km} "
            "dB/km (NV platform, "
            f"cluster paper), q = {PHYSICS.q_swap}, m = {MEMORY_UNITS:.0f}; up to "
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
    parser.add_argument("--networks-only", action="store_true")
    args = parser.parse_args()
    nets = run_networks(args)
    nets.to_csv(args.out / "results_repeaters_networks.csv", index=False)
    if args.networks_only and (args.out / "results_repeaters.csv").exists():
        df = pd.read_csv(args.out / "results_repeaters.csv")
    else:
        df = run(args)
        df.to_csv(args.out / "results_repeaters.csv", index=False)
    (args.out / "results_repeaters.md").write_text(markdown(df, args) + "\n" + networks_markdown(nets))


if __name__ == "__main__":
    main()
