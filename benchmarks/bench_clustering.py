"""Size sweep of the clustering MILP (solvers.clustering) against the heuristic baseline.

Synthetic instances: uniform random sites at a fixed density (0.01 sites/km^2, i.e. 10 000
sites on 1 000 x 1 000 km), every site a master candidate (capacity 12 slaves, cost 1), access
reach 25 km straight line x route factor 1.3 at 0.2 dB/km, master budget n/8, Eq. 6 with
R_mdi = R_ekr = N_m = N_s = 1. Real instances: the Topology Zoo networks bundled in
``datasets/topology-zoo`` (equirectangular distance x 1.3; reach = 1.5 x the 95th
percentile of the distance to the 3rd nearest site, shown per row; capacity 12, budget n/4).
Each run is bounded by a solver time limit. Writes ``results_clustering.csv`` and
``results_clustering.md`` next to this file.

Run: ``python benchmarks/bench_clustering.py [--quick]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solvers.base import SolverOptions  # noqa: E402
from solvers.clustering import (  # noqa: E402
    ClusteringData,
    ClusteringInfeasible,
    ClusteringOptions,
    solve_clustering,
)
from solvers.heuristics import solve_clustering_heuristic  # noqa: E402

DENSITY_PER_KM2 = 0.01
REACH_KM = 25.0
ROUTE_FACTOR = 1.3
ALPHA_DB_PER_KM = 0.2
CAPACITY = 12


def synthetic(n_sites: int, *, seed: int) -> ClusteringData:
    """Uniform random sites at :data:`DENSITY_PER_KM2`; pairs within :data:`REACH_KM`."""
    rng = np.random.default_rng(seed)
    side_km = math.sqrt(n_sites / DENSITY_PER_KM2)
    xy = rng.uniform(0.0, side_km, size=(n_sites, 2))
    return _from_points([f"s{i}" for i in range(n_sites)], xy, REACH_KM, CAPACITY)


def _from_points(ids: list[str], xy_km: np.ndarray, reach_km: float, capacity: int) -> ClusteringData:
    tree = cKDTree(xy_km)
    pr = tree.query_pairs(reach_km, output_type="ndarray")
    a = np.concatenate([pr[:, 0], pr[:, 1]])
    b = np.concatenate([pr[:, 1], pr[:, 0]])
    dist_km = np.linalg.norm(xy_km[a] - xy_km[b], axis=1) * ROUTE_FACTOR
    names = np.asarray(ids, dtype=object)
    sites = pd.DataFrame({"demand": np.ones(len(ids))}, index=pd.Index(ids, name="site"))
    cands = pd.DataFrame(
        {"cost": 1.0, "capacity": capacity, "fixed": False, "forbidden": False},
        index=pd.Index(ids, name="candidate"),
    )
    pairs = pd.DataFrame(
        {
            "site": names[a],
            "candidate": names[b],
            "distance_km": dist_km,
            "loss_db": ALPHA_DB_PER_KM * dist_km,
        }
    )
    return ClusteringData(sites, cands, pairs)


def topology_zoo(path: Path) -> tuple[ClusteringData, float] | None:
    """Sites of a Topology Zoo GraphML file with coordinates (equirectangular km projection).

    The access reach (fibre km) is 1.5 x the 95th percentile of the distance from a site to its
    3rd nearest site, so that most sites can join a cluster of at least 2 slaves."""
    g = nx.read_graphml(path)
    pts = [
        (str(d.get("label", n)) + f"#{n}", float(d["Latitude"]), float(d["Longitude"]))
        for n, d in g.nodes(data=True)
        if "Latitude" in d and "Longitude" in d
    ]
    if len(pts) < 6:
        return None
    lat = np.radians([p[1] for p in pts])
    lon = np.radians([p[2] for p in pts])
    r_km = 6371.0
    xy = np.column_stack([r_km * lon * np.cos(lat.mean()), r_km * lat])
    d3, _ = cKDTree(xy).query(xy, k=4)
    reach_geo_km = 1.5 * float(np.percentile(d3[:, 3], 95))
    data = _from_points([p[0] for p in pts], xy, reach_geo_km, CAPACITY)
    return data, reach_geo_km * ROUTE_FACTOR


def run_one(
    name: str,
    data: ClusteringData,
    options: ClusteringOptions,
    time_limit_s: float,
    *,
    variant: str = "default",
) -> dict[str, object]:
    try:
        heur = solve_clustering_heuristic(data, options)
        h_keys, h_time, h_obj = heur.info["keys_per_attempt"], heur.solve_time_s, heur.objective
    except ClusteringInfeasible:
        h_keys, h_time, h_obj = float("nan"), float("nan"), float("nan")
    t0 = time.perf_counter()
    try:
        res = solve_clustering(data, options, SolverOptions(time_limit_s=time_limit_s, mip_gap=1e-4, threads=2))
    except ClusteringInfeasible as exc:
        row = {"instance": name, "variant": variant, "n_sites": len(data.sites),
               "n_pairs": len(data.pairs), "status": "infeasible: " + "+".join(exc.conflicts)}  # fmt: skip
        print(row, flush=True)
        return row
    wall = time.perf_counter() - t0
    row = {
        "instance": name,
        "variant": variant,
        "n_sites": len(data.sites),
        "n_pairs": len(data.pairs),
        "backend": res.info.get("backend"),
        "n_variables": res.info.get("n_variables"),
        "n_constraints": res.info.get("n_constraints"),
        "n_binaries": res.info.get("n_binaries"),
        "build_time_s": round(res.build_time_s, 3),
        "solve_time_s": round(res.solve_time_s, 2),
        "wall_time_s": round(wall, 2),
        "time_limit_s": time_limit_s,
        "status": str(res.status),
        "objective": res.objective,
        "bound": res.bound,
        "bound_solver": res.info.get("bound_solver", res.bound),
        "bound_counting": res.info.get("bound_counting", float("nan")),
        "gap_pct": 100 * res.gap if math.isfinite(res.gap) else float("nan"),
        "keys_per_attempt": res.info.get("keys_per_attempt"),
        "n_masters": res.info.get("n_masters"),
        "master_cost": res.info.get("master_cost"),
        "source": res.info.get("source"),
        "lp_bound": res.info.get("lp_bound", float("nan")),
        "heuristic_keys": h_keys,
        "heuristic_time_s": h_time,
        "heuristic_gap_to_bound_pct": 100 * abs(res.bound - h_obj) / abs(h_obj)
        if math.isfinite(res.bound) and math.isfinite(h_obj)
        else float("nan"),
    }
    print(row, flush=True)
    return row


def machine() -> str:
    from benchmarks.machine import machine_line

    return f"{machine_line()}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sizes = [(100, 60.0), (1000, 60.0)] if args.quick else [(100, 60.0), (1000, 60.0), (5000, 300.0), (10000, 600.0)]
    rows = []
    zoo = ROOT / "datasets" / "topology-zoo"
    for path in sorted(zoo.glob("*.graphml")):
        zoo_data = topology_zoo(path)
        if zoo_data is None:
            continue
        data, reach_km = zoo_data
        opts = ClusteringOptions(max_masters=max(1, len(data.sites) // 4))
        rows.append(run_one(f"zoo:{path.stem} (reach {reach_km:.0f} km)", data, opts, 60.0))
    for n, limit in sizes:
        data = synthetic(n, seed=args.seed)
        rows.append(run_one(f"synthetic-{n}", data, ClusteringOptions(max_masters=n // 8), limit))
    if not args.quick:
        data = synthetic(1000, seed=args.seed)
        milp = dict(max_masters=125, bound_shortcut=False)
        variants = [
            ("MILP only (no bound shortcut)", ClusteringOptions(**milp)),
            ("MILP only, strong linking x<=y", ClusteringOptions(**milp, strong_linking=True)),
            ("MILP only, highspy arrays backend", ClusteringOptions(**milp, backend="highspy")),
            ("MILP only, no warm start", ClusteringOptions(**milp, warm_start=False)),
            ("R_mdi=0.3 (fewest masters pays)", ClusteringOptions(max_masters=125, r_mdi=0.3)),
        ]
        for label, opts in variants:
            rows.append(run_one("synthetic-1000", data, opts, 60.0, variant=label))
        for n in (100, 1000):
            rows.append(
                run_one(
                    f"synthetic-{n}",
                    synthetic(n, seed=args.seed),
                    ClusteringOptions(objective="min_cost", min_cluster_keys=4.0),
                    60.0,
                    variant="min_cost, >= 4 keys/cluster",
                )
            )
        hard = [
            (
                5000,
                200.0,
                ClusteringOptions(max_masters=625, r_mdi=0.3),
                "R_mdi=0.3 (fewest masters pays)",
            ),
            (
                10000,
                400.0,
                ClusteringOptions(max_masters=1250, r_mdi=0.3),
                "R_mdi=0.3 (fewest masters pays)",
            ),
            (
                5000,
                200.0,
                ClusteringOptions(objective="min_cost", min_cluster_keys=4.0),
                "min_cost, >= 4 keys/cluster",
            ),
        ]
        for n, limit, opts, label in hard:
            rows.append(run_one(f"synthetic-{n}", synthetic(n, seed=args.seed), opts, limit, variant=label))
    df = pd.DataFrame(rows)
    out = Path(__file__).resolve().parent
    df.to_csv(out / "results_clustering.csv", index=False)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cols = ["instance", "variant", "n_sites", "n_pairs", "backend", "n_variables", "n_constraints",
            "build_time_s", "solve_time_s", "status", "bound_solver", "bound_counting", "gap_pct",
            "keys_per_attempt", "n_masters", "master_cost",
            "heuristic_keys", "heuristic_gap_to_bound_pct", "lp_bound", "source"]  # fmt: skip
    table = _markdown(df.reindex(columns=cols))
    (out / "results_clustering.md").write_text(
        f"# Clustering benchmark\n\nDate: {stamp}. Machine: {machine()}. Seed: {args.seed}.\n\n"
        f"{__doc__.split('Run:')[0].strip()}\n\n{table}\n"
    )


def _markdown(df: pd.DataFrame) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
