"""Trusted-relay selection for SMR security, against the single-path model and simple selectors.

For 20 seeded Waxman graphs (20-100 nodes), every bundled network (Topology
Zoo, Beijing QMAN) with random demands, and the backbone of real site lists
(default: the 243 Dutch cities, all cluster-pair demands), choose ``B``
trusted relays with the single-path model of :mod:`solvers.trust`, greedy,
betweenness and random, and with the stage's SMR choice; route every demand
with SMR (:func:`planner.routing.smr_routing`) and record minimum and mean security.

Run from the repository root::

    python benchmarks/bench_trust.py [--time-limit 60] [--quick] [--real nl-243,de-1139]

Writes ``benchmarks/results_trust.csv`` and ``benchmarks/results_trust.md``.
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
from solvers.trust import (  # noqa: E402
    centrality_trust,
    greedy_trust,
    random_trust,
    solve_trust,
)

SEED = 20240601
N_DEMANDS = 10
P_RANGE = (0.7, 0.95)
RANDOM_DRAWS = 10


def waxman_cases(sizes: list[int], rng: np.random.Generator) -> list[tuple[str, nx.Graph]]:
    from planner.errors import ValidationError
    from planner.topology.waxman import waxman_graph

    out = []
    for n in sizes:
        for _attempt in range(20):  # a small sparse draw may have no connected sample: draw again
            try:
                out.append((f"Waxman-{n}", waxman_graph(n, rng)))
                break
            except ValidationError:
                continue
    return out


def tables(g: nx.Graph, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    nodes_list = sorted(g.nodes, key=str)
    n = len(nodes_list)
    edges = pd.DataFrame([(u, v) for u, v in g.edges], columns=["u", "v"])
    nodes = pd.DataFrame({"node": nodes_list, "p_u": rng.uniform(*P_RANGE, n).round(4)})
    pairs = set()
    while len(pairs) < min(N_DEMANDS, n * (n - 1) // 2):
        a, b = sorted(int(x) for x in rng.choice(n, 2, replace=False))
        pairs.add((a, b))
    pairs_l = sorted(pairs)
    demands = pd.DataFrame(
        {
            "demand": [f"d{i}" for i in range(len(pairs_l))],
            "source": [nodes_list[a] for a, _ in pairs_l],
            "target": [nodes_list[b] for _, b in pairs_l],
        }
    )
    return edges, nodes, demands


def real_case(label: str, rng: np.random.Generator):
    """Backbone of a real site list: the default scenario's access stage, then the backbone demands."""
    from benchmarks.sites import site_list
    from planner.io.readers import read_network
    from planner.model.scenario import default_scenario
    from planner.pipeline import plan_access
    from planner.stages.backbone import build_backbone, cluster_of
    from planner.stages.prepare import prepare_network
    from planner.stages.trust import trust_tables

    sc = default_scenario()
    net, _notes = prepare_network(read_network(site_list(label)), sc)
    acc, tabs = plan_access(net, sc)
    bb = build_backbone(net, cluster_of(acc.tables["assignment"], tabs.standalone), sc)
    edges, nodes, demands = trust_tables(net, bb, sc)
    return net.graph(), edges, nodes, demands


def run_case(
    name: str,
    g: nx.Graph,
    budget: int,
    rng: np.random.Generator,
    opts: SolverOptions,
    given: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None,
) -> list[dict]:
    """All selections of one case, verified with SMR on every demand (the stage's rule)."""
    from planner.stages.trust_smr import SmrEvaluator, choose_for_smr, smr_key
    from solvers.trust import evaluate_costs, prepare_trust_data

    edges, nodes, demands = given if given is not None else tables(g, rng)
    security = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    base = {
        "network": name,
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "demands": len(demands),
        "budget": budget,
    }
    data = prepare_trust_data(edges, nodes, demands)
    ev = SmrEvaluator(g, list(zip(demands["source"], demands["target"], strict=True)), security)
    timed: dict[str, tuple[object, float]] = {}
    t0 = time.perf_counter()
    milp = solve_trust(edges, nodes, demands, max_relays=budget, options=opts)
    timed["MILP"] = (milp, time.perf_counter() - t0)
    for label, func in (("greedy", greedy_trust), ("betweenness", centrality_trust)):
        t0 = time.perf_counter()
        timed[label] = (func(edges, nodes, demands, max_relays=budget), time.perf_counter() - t0)
    t0 = time.perf_counter()
    timed["random"] = (random_trust(edges, nodes, demands, max_relays=budget, rng=rng), time.perf_counter() - t0)
    starts = {k: list(r.tables["relays"]["node"]) for k, (r, _) in timed.items()}
    pool = [
        v
        for v, c, p in zip(
            nodes["node"], nodes.get("candidate", pd.Series(True, index=nodes.index)), nodes["p_u"], strict=True
        )
        if c and p < 1
    ]
    bc = nx.betweenness_centrality(g)
    order = {v: i for i, v in enumerate(sorted(pool, key=lambda v: (-bc.get(v, 0.0), str(v))))}
    t0 = time.perf_counter()
    n = len(demands)
    choice = choose_for_smr(
        ev,
        starts,
        pool,
        budget,
        objective="min",
        deadline=time.perf_counter() + opts.time_limit_s,
        rows=None if n <= 400 else sorted(rng.choice(n, 300, replace=False).tolist()),
        rank=lambda vs: sorted(vs, key=lambda v: order.get(v, 0)),
    )
    chosen = list(choice.trusted)
    full = {k: ev.securities(frozenset(v)) for k, v in starts.items()}
    full_chosen = ev.securities(frozenset(chosen))
    best = max(full, key=lambda k: smr_key(full[k], "min"))
    if smr_key(full[best], "min") > smr_key(full_chosen, "min"):
        chosen, full_chosen = starts[best], full[best]
    sel_wall = timed["MILP"][1] + time.perf_counter() - t0
    rows = []
    entries = [("SMR choice (MILP start + search)", chosen, full_chosen, sel_wall, milp)]
    entries += [(k, starts[k], full[k], timed[k][1], timed[k][0]) for k in timed]
    for label, tset, vec, wall, res in entries:
        single = np.exp(-evaluate_costs(data, tset))
        rows.append(
            {
                **base,
                "method": label,
                "status": str(res.status),
                "gap": res.gap if label.startswith(("MILP", "SMR")) else math.nan,
                "milp_columns": res.info.get("n_variables", res.info.get("estimated_model_columns", math.nan)),
                "milp_built": "milp_skipped" not in res.info,
                "wall_time_s": wall,
                "min_security": float(single.min()),
                "mean_security": float(single.mean()),
                "smr_min_security": float(vec.min()),
                "smr_mean_security": float(vec.mean()),
                "smr_start": choice.start if label.startswith("SMR") else "",
                "smr_moves": choice.moves if label.startswith("SMR") else 0,
            }
        )
    return rows


def md_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table of ``df`` (cells as already formatted strings)."""
    cells = df.astype(str).to_numpy().tolist()
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    return "\n".join([head, rule] + ["| " + " | ".join(row) + " |" for row in cells])


def markdown(df: pd.DataFrame, args: argparse.Namespace) -> str:
    fmt = df.copy()
    for col in ("min_security", "mean_security", "smr_min_security", "smr_mean_security"):
        fmt[col] = fmt[col].map(lambda x: f"{x:.4f}")
    fmt["wall_time_s"] = fmt["wall_time_s"].map(lambda x: f"{x:.2f}")
    fmt["gap"] = fmt["gap"].map(lambda x: "" if not math.isfinite(x) else f"{x:.2%}")
    cols = [
        "network",
        "nodes",
        "edges",
        "demands",
        "budget",
        "method",
        "status",
        "gap",
        "wall_time_s",
        "min_security",
        "mean_security",
        "smr_min_security",
        "smr_mean_security",
    ]
    smr = df[df["method"].str.startswith("SMR")].set_index("network")
    verdict = []
    for base in ("MILP", "greedy", "betweenness", "random"):
        b = df[df["method"] == base].set_index("network")
        common = smr.index.intersection(b.index)
        d_min = smr.loc[common, "smr_min_security"] - b.loc[common, "smr_min_security"]
        d_mean = smr.loc[common, "smr_mean_security"] - b.loc[common, "smr_mean_security"]
        verdict.append(
            {
                "baseline": base,
                "cases": len(common),
                "SMR min: better": int((d_min > 1e-12).sum()),
                "SMR min: equal": int((d_min.abs() <= 1e-12).sum()),
                "SMR min: worse": int((d_min < -1e-12).sum()),
                "SMR mean: better": int((d_mean > 1e-12).sum()),
                "SMR mean: worse": int((d_mean < -1e-12).sum()),
            }
        )
    lines = [
        "# Trusted-relay selection for SMR security vs MILP, greedy, betweenness and random",
        "",
        "Generated by `benchmarks/bench_trust.py`"
        + (" (quick mode)" if args.quick else "")
        + f" on {platform.machine()} with {args.threads} solver threads, "
        f"time limit {args.time_limit:.0f} s per selection (single-path model: heuristic, build and solve; "
        "SMR search: its own limit). Timings were taken on a shared, loaded machine.",
        "",
        f"Setting: synthetic cases have {N_DEMANDS} random demands and p_u ~ U{P_RANGE} per node, every node "
        f"a candidate, budget B. Seed {SEED} (numpy Generator; draws in table order). 20 Waxman graphs from "
        "`planner.topology.waxman.waxman_graph`; every bundled network (Topology Zoo and the Beijing QMAN "
        "topology); real-city cases are the default scenario's backbone of a real site list "
        "(`benchmarks/sites.py`): all cluster-pair demands, p_u = 0.8.",
        "",
        "Methods: `MILP` = `solvers.trust.solve_trust` (max-min best single-path security; the edge-flow "
        "MILP when its estimated size is under the column cap, else greedy + swap search with the token "
        "bound; `status`/`gap` say which); `SMR choice` = the stage's rule: every selection is a start, "
        "the best by minimum SMR security is improved by an SMR-screened add/swap search, and the final "
        "set is the best of all on SMR verification of every demand. `smr_*` = SMR routing "
        "(`planner.routing.smr_routing`) of every demand; `min/mean_security` = best single path.",
        "",
        "## SMR choice against each baseline (minimum and mean SMR security, per case)",
        "",
        md_table(pd.DataFrame(verdict)),
        "",
        "## All cases",
        "",
        md_table(fmt[cols]),
        "",
    ]
    milp = df[df["method"] == "MILP"].copy()
    growth = milp[
        ["network", "nodes", "edges", "demands", "budget", "milp_columns", "milp_built", "wall_time_s", "status", "gap"]
    ].copy()
    growth["wall_time_s"] = growth["wall_time_s"].map(lambda x: f"{x:.2f}")
    growth["milp_columns"] = growth["milp_columns"].map(lambda x: f"{x:.0f}")
    growth["gap"] = growth["gap"].map(lambda x: "" if not math.isfinite(x) else f"{x:.2%}")
    lines += [
        "## Single-path model: size (built, or estimated when not built) and time",
        "",
        md_table(growth),
        "",
    ]
    return "\n".join(lines)


def bundled_cases() -> list[tuple[str, nx.Graph]]:
    from planner.io.bundled import bundled_networks
    from planner.io.readers import read_network

    out = []
    for file in bundled_networks():
        g = read_network(file).graph()
        g.remove_edges_from(list(nx.selfloop_edges(g)))
        g = g.subgraph(max(nx.connected_components(g), key=len)).copy()
        out.append((f"{file.parent.name}/{file.stem}", g))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    parser.add_argument("--real", default="nl-243", help="comma-separated real site lists ('' for none)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    opts = SolverOptions(time_limit_s=args.time_limit, threads=args.threads, seed=0)
    sizes = [20, 30] if args.quick else [20, 30, 50, 75, 100] * 4
    cases = [(f"{name} #{i // 5 + 1}", g) for i, (name, g) in enumerate(waxman_cases(sizes, rng))] + (
        [] if args.quick else bundled_cases()
    )
    rows = []
    for name, g in cases:
        t0 = time.perf_counter()
        rows.extend(run_case(name, g, args.budget, rng, opts))
        print(f"{name}: {time.perf_counter() - t0:.1f}s", flush=True)
    for label in [x for x in args.real.split(",") if x] if not args.quick else []:
        t0 = time.perf_counter()
        g, edges, nodes, demands = real_case(label, rng)
        rows.extend(run_case(f"real {label}", g, args.budget, rng, opts, given=(edges, nodes, demands)))
        print(f"real {label}: {time.perf_counter() - t0:.1f}s", flush=True)
    df = pd.DataFrame(rows)
    df.insert(0, "seed", SEED)
    df.to_csv(args.out / "results_trust.csv", index=False)
    (args.out / "results_trust.md").write_text(markdown(df, args))


if __name__ == "__main__":
    main()
