"""``python -m benchmarks [--quick] [--out DIR]``: the one-command benchmark suite.

1. Own probes, each in a fresh subprocess so its peak memory (``ru_maxrss``)
   is its own: end-to-end :func:`planner.pipeline.plan` on Waxman networks of
   growing size (with the time of every stage: clustering, repeater spacing,
   trusted relays, memory), SMR routing at 100 / 1 000 / 10 000 nodes, the
   slot-level chain simulator at growing hop counts, and the clustering MILP.
2. The committed tables of the per-model scripts (``results_*.md`` written by
   ``bench_chain.py``, ``bench_smr.py``, ``bench_clustering.py``,
   ``bench_repeaters.py``, ``bench_trust.py``, ``repalloc.py``) are collected
   as they are, with the file cited, instead of being measured again.
3. For every size sweep, the growth exponent ``a`` of ``time ~ c * n**a`` is
   fitted by least squares on ``log time`` vs ``log n``, and the size at which
   the fit reaches 10 minutes is stated (an extrapolation, marked as such).

Writes ``results.md`` to
``--out`` (default: this folder). ``--probe KIND --size N`` is the internal
entry point of one probe subprocess; it prints one JSON line.

``python -m benchmarks --only plan-real`` runs the plan probe on real site
lists instead (:mod:`benchmarks.plan_real`: 100 to 10 000 cities, each in a
capped subprocess; ``--sets nl-100 nl-243`` or ``--sizes 100 243`` limit it,
``--timeout S`` and ``--mem-gb G`` set the caps, ``--no-simulate`` skips the
verification) and writes ``results_plan_real.csv`` / ``.md``; it does not
rewrite ``results.md``, which collects that table like the other scripts'.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_facts, machine_line  # noqa: E402

PRACTICAL_LIMIT_S = 600.0
STORE_TAG = "probe-rows:"
PROBE_TIMEOUT_S = 1200.0

# (kind, sizes in full mode, sizes in quick mode)
PROBES: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = [
    ("plan", (12, 18, 24, 36, 48), (12, 18)),
    ("smr", (100, 1_000, 10_000), (100, 1_000)),
    ("chain", (2, 4, 8, 16, 32), (2, 8)),
    ("clustering", (100, 300, 1_000, 5_000, 10_000), (100,)),
]


# ------------------------------------------------------------------ probes (run in a child process)
def _rss_mb() -> float:
    """Current resident set size (MB) of this process."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**2


def probe_plan(n: int) -> dict[str, Any]:
    """Plan a connected Waxman network of ``n`` sites at constant site density; per-stage times."""
    from planner.model.scenario import default_scenario
    from planner.pipeline import plan
    from planner.topology.generators import waxman_network

    extent_km = 150.0 * math.sqrt(n / 12.0)
    net = waxman_network(n, seed=1, extent_km=extent_km)
    scenario = default_scenario().with_overrides({"solver.time_limit_s": 120.0, "solver.threads": 1})
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    design = plan(net, scenario, seed=0)
    total = time.perf_counter() - t0
    row: dict[str, Any] = {
        "n": n,
        "links": len(net.links),
        "time_s": total,
        "rss_before_mb": rss0,
        "clusters": design.metrics.get("n_clusters"),
        "demands": design.metrics.get("n_demands"),
    }
    for key, value in design.timing.items():
        if key.endswith(("solve_time_s", "build_time_s")):
            stage = key.split(".")[0]
            row[f"{stage}_s"] = row.get(f"{stage}_s", 0.0) + float(value)
    row["solver_status"] = "; ".join(f"{k}={v.get('status')}" for k, v in design.solves.items())
    return row


def probe_smr(n: int) -> dict[str, Any]:
    """SMR routing on a Waxman graph of ``n`` nodes (10 % trusted, p_u = 0.8): requests per second."""
    from planner.routing import smr
    from planner.topology.waxman import DEFAULT_ALPHA, DEFAULT_BETA, waxman_graph

    rng = np.random.default_rng([7, n])
    graph = waxman_graph(
        n,
        rng,
        alpha=DEFAULT_ALPHA * math.sqrt(100 / n),
        beta=DEFAULT_BETA,
        largest_component=n >= 10_000,
    )
    nodes = sorted(graph.nodes)
    rss0 = _rss_mb()
    requests = 10 if n < 10_000 else 3
    t0 = time.perf_counter()
    for _ in range(requests):
        s, d = (int(x) for x in rng.choice(nodes, size=2, replace=False))
        others = [v for v in nodes if v not in (s, d)]
        trusted = {int(x) for x in rng.choice(others, size=len(nodes) // 10, replace=False)}
        smr(graph, s, d, trusted=trusted, security=0.8)
    total = time.perf_counter() - t0
    return {
        "n": graph.number_of_nodes(),
        "links": graph.number_of_edges(),
        "time_s": total / requests,
        "requests_per_s": requests / total,
        "rss_before_mb": rss0,
    }


def probe_chain(hops: int) -> dict[str, Any]:
    """Slot-level chain simulation: ``hops`` hops of 10 km, q = 0.6, 4 memory units, 1 000 trials x 500 slots."""
    from planner.simulate.chain import simulate_chain

    slots, trials = 500, 1000
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    simulate_chain([10.0] * hops, q=0.6, memory=4, slots=slots, trials=trials, seed=0)
    total = time.perf_counter() - t0
    return {
        "n": hops,
        "time_s": total,
        "slots_per_s": slots * trials * hops / total,
        "rss_before_mb": rss0,
    }


def probe_clustering(n: int) -> dict[str, Any]:
    """Clustering MILP on the synthetic instance of ``bench_clustering.py`` (same generator), 120 s limit."""
    from benchmarks.bench_clustering import synthetic  # type: ignore[attr-defined]
    from solvers.base import SolverOptions
    from solvers.clustering import ClusteringOptions, solve_clustering

    data = synthetic(n, seed=1)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    res = solve_clustering(
        data,
        ClusteringOptions(max_masters=max(1, n // 8)),
        SolverOptions(time_limit_s=120.0, mip_gap=1e-4, threads=1),
    )
    total = time.perf_counter() - t0
    return {
        "n": n,
        "time_s": total,
        "solver_status": str(res.status),
        "gap": res.gap,
        "rss_before_mb": rss0,
    }


PROBE_FUNCS: dict[str, Callable[[int], dict[str, Any]]] = {
    "plan": probe_plan,
    "smr": probe_smr,
    "chain": probe_chain,
    "clustering": probe_clustering,
}


def _run_probe_here(kind: str, size: int) -> None:
    row = PROBE_FUNCS[kind](size)
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(row, default=str), flush=True)


def run_probe(kind: str, size: int, *, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Run one probe in a fresh interpreter; returns its row (``status`` ok / timeout / error)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "benchmarks", "--probe", kind, "--size", str(size)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"kind": kind, "n": size, "status": f"timeout > {timeout_s:.0f} s"}
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"kind": kind, "n": size, "status": f"error: {tail[:200]}", "process_s": wall}
    row = json.loads(lines[-1])
    row.update(kind=kind, status="ok", process_s=wall)
    return row


def read_stored_probes(path: Path) -> dict[str, Any]:
    """The probe rows and machine facts stored (as a JSON comment) in an earlier ``results.md``."""
    if not path.is_file():
        raise SystemExit(f"--reuse-probes: {path} does not exist; run the probes first")
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"<!-- {STORE_TAG} ") and line.endswith(" -->"):
            data: dict[str, Any] = json.loads(line[len(f"<!-- {STORE_TAG} ") : -len(" -->")])
            return data
    raise SystemExit(f"--reuse-probes: {path} holds no stored probe rows; run the probes first")


# ------------------------------------------------------------------ growth fits
def fit_power(n: Any, t: Any) -> dict[str, float] | None:
    """Least-squares fit of ``log t = log c + a log n``; None with fewer than 2 distinct sizes.

    Returns ``a``, ``c``, ``r2`` and ``n_at_limit`` (size where the fit reaches
    :data:`PRACTICAL_LIMIT_S`; an extrapolation).
    """
    frame = pd.DataFrame(
        {
            "n": pd.to_numeric(pd.Series(n), errors="coerce"),
            "t": pd.to_numeric(pd.Series(t), errors="coerce"),
        }
    ).dropna()
    frame = frame[(frame["n"] > 0) & (frame["t"] > 0)]
    if frame["n"].nunique() < 2:
        return None
    x, y = np.log(frame["n"].to_numpy(float)), np.log(frame["t"].to_numpy(float))
    a, logc = np.polyfit(x, y, 1)
    pred = logc + a * x
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    n_limit = math.exp((math.log(PRACTICAL_LIMIT_S) - logc) / a) if a > 1e-6 else math.inf
    return {
        "a": float(a),
        "c": float(math.exp(logc)),
        "r2": r2,
        "n_at_limit": n_limit,
        "n_min": float(frame["n"].min()),
        "n_max": float(frame["n"].max()),
        "points": float(len(frame)),
    }


LIMITED = ("feasible", "time_limit", "timeout", "infeasible", "error", "unbounded")


def completed_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose solves finished (optimal or heuristic); time-limited rows measure the limit, not the cost."""
    keep = pd.Series(True, index=frame.index)
    for col in ("solver_status", "status"):
        if col in frame.columns:
            text = frame[col].astype(str).str.lower()
            for word in LIMITED:
                keep &= ~text.str.contains(f"(?:^|=){word}", regex=True)
    return frame[keep]


def fits_table(
    frame: pd.DataFrame,
    *,
    size: str,
    time_col: str,
    groups: list[str],
    label: str,
    time_scale: float = 1.0,
) -> list[dict[str, Any]]:
    """One fit per group of ``frame`` (rows with a numeric size and time)."""
    rows = []
    present = [g for g in groups if g in frame.columns]
    grouped = frame.groupby(present, dropna=False) if present else [((), frame)]
    for key, sub in grouped:
        key = key if isinstance(key, tuple) else (key,)
        sub = completed_rows(sub)
        fit = fit_power(sub[size], pd.to_numeric(sub[time_col], errors="coerce") * time_scale)
        if fit is None:
            continue
        name = ", ".join(f"{g}={v}" for g, v in zip(present, key, strict=True))
        rows.append({"benchmark": label, "case": name or "all", "size": size, **fit})
    return rows


# ------------------------------------------------------------------ colleagues' tables
SOURCES: list[dict[str, Any]] = [
    {
        "name": "chain",
        "script": "bench_chain.py",
        "md": "results_chain.md",
        "csv": "results_chain.csv",
        "size": ["hops"],
        "time": [("seconds", 1.0)],
        "groups": ["simulator", "trials_or_cycles", "memory"],
    },
    {
        "name": "smr",
        "script": "bench_smr.py",
        "md": "results_smr.md",
        "csv": "results_smr.csv",
        "size": ["nodes"],
        "time": [("time_mean_ms", 1e-3)],
        "groups": ["method"],
    },
    {
        "name": "clustering",
        "script": "bench_clustering.py",
        "md": "results_clustering.md",
        "csv": "results_clustering.csv",
        "size": ["n_sites"],
        "time": [("wall_time_s", 1.0), ("heuristic_time_s", 1.0)],
        "groups": ["variant"],
        "rows": ("instance", "synthetic"),
    },
    {
        "name": "repeaters",
        "script": "bench_repeaters.py",
        "md": "results_repeaters.md",
        "csv": "results_repeaters.csv",
        "size": ["nodes"],
        "time": [("wall_time_s", 1.0)],
        "groups": ["mode", "paths_per_demand"],
    },
    {
        "name": "trust",
        "script": "bench_trust.py",
        "md": "results_trust.md",
        "csv": "results_trust.csv",
        "size": ["nodes"],
        "time": [("wall_time_s", 1.0)],
        "groups": ["method"],
        "rows": ("network", "Waxman"),
    },
    {
        "name": "plan-real",
        "script": "plan_real.py",
        "md": "results_plan_real.md",
        "csv": "results_plan_real.csv",
        "size": ["n"],
        "time": [("time_s", 1.0)],
        "groups": [],
    },
    {
        "name": "repalloc",
        "script": "repalloc.py",
        "md": "results_repalloc.md",
        "csv": "results_repalloc.csv",
        "size": [],
        "time": [],
    },
]
SIZE_CANDIDATES = [
    "n_sites",
    "sites",
    "nodes",
    "n_nodes",
    "n",
    "size",
    "n_links",
    "links",
    "hops",
    "pairs",
]
TIME_CANDIDATES = [
    ("total_s", 1.0),
    ("milp_time_s", 1.0),
    ("solve_time_s", 1.0),
    ("time_s", 1.0),
    ("wall_s", 1.0),
    ("seconds", 1.0),
    ("milp_s", 1.0),
    ("time_ms", 1e-3),
    ("time_mean_ms", 1e-3),
]
GROUP_CANDIDATES = [
    "method",
    "model",
    "selector",
    "solver",
    "simulator",
    "family",
    "kind",
    "instance_kind",
    "generator",
    "variant",
    "source",
    "objective",
    "mode",
]


def _git_date(path: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cd", "--date=format:%Y-%m-%d %H:%M", "--", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return out.stdout.strip() or ""
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def collect(source: dict[str, Any]) -> dict[str, Any]:
    """The committed table of one script, with growth fits where it is a size sweep."""
    md, csv = HERE / source["md"], HERE / source["csv"]
    out: dict[str, Any] = {"source": source, "present": md.is_file(), "fits": [], "note": ""}
    if not md.is_file():
        script = HERE / source["script"]
        out["note"] = (
            f"`{source['script']}` "
            + ("exists but has not committed " if script.is_file() else "is not in the tree yet; no ")
            + f"`{source['md']}`."
        )
        return out
    out["committed"] = _git_date(md)
    text = md.read_text(encoding="utf-8").strip().splitlines()
    if text and text[0].startswith("# "):
        text = text[1:]
    out["markdown"] = "\n".join(("##" + ln) if ln.startswith("#") else ln for ln in text).strip()
    if not csv.is_file():
        out["note"] = "no CSV to fit."
        return out
    frame = pd.read_csv(csv)
    if "rows" in source:  # fit only the size-swept family (e.g. synthetic instances, not real networks)
        column, prefix = source["rows"]
        if column in frame.columns:
            frame = frame[frame[column].astype(str).str.startswith(prefix)]
            out["note"] = f"Fits use the rows whose `{column}` starts with `{prefix}`."
    wanted = source.get("size", []) + [c for c, _ in source.get("time", [])]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        out["note"] += f" Columns {missing} not found; growth not fitted."
        return out
    sizes = source.get("size", [c for c in SIZE_CANDIDATES if c in frame.columns][:1])
    times = source.get("time", [(c, s) for c, s in TIME_CANDIDATES if c in frame.columns][:2])
    groups = source.get("groups", [c for c in GROUP_CANDIDATES if c in frame.columns])
    if not sizes or not times:
        out["note"] = "Not a size sweep (separate instances); no growth fit."
        return out
    for time_col, scale in times:
        out["fits"] += fits_table(
            frame,
            size=sizes[0],
            time_col=time_col,
            groups=groups,
            label=f"{source['name']} ({time_col})",
            time_scale=scale,
        )
    return out


# ------------------------------------------------------------------ report
def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else "∞"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _md_table(frame: pd.DataFrame, columns: list[str]) -> str:
    cols = [c for c in columns if c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def _fits_md(fits: list[dict[str, Any]]) -> str:
    if not fits:
        return "_no size sweep to fit_"
    frame = pd.DataFrame(fits)
    frame["range"] = [f"{_fmt(a)}–{_fmt(b)}" for a, b in zip(frame["n_min"], frame["n_max"], strict=True)]
    frame["size at 10 min (extrapolated)"] = [
        ("beyond measured range" if v == math.inf else _fmt(float(v))) for v in frame["n_at_limit"]
    ]
    frame = frame.rename(columns={"a": "exponent a", "r2": "R²"})
    return _md_table(
        frame,
        [
            "benchmark",
            "case",
            "size",
            "range",
            "points",
            "exponent a",
            "R²",
            "size at 10 min (extrapolated)",
        ],
    )


PROBE_TITLES = {
    "plan": (
        "End-to-end `plan` (Waxman, constant site density, default scenario, 1 solver thread, 120 s per MILP)",
        [
            "n",
            "links",
            "clusters",
            "demands",
            "time_s",
            "access_s",
            "repeaters_s",
            "trust_s",
            "memory_s",
            "solver_status",
            "peak_rss_mb",
            "rss_before_mb",
        ],
    ),
    "smr": (
        "SMR routing, seconds per request and requests/s (Waxman, 10 % trusted, p_u = 0.8)",
        ["n", "links", "time_s", "requests_per_s", "peak_rss_mb", "rss_before_mb"],
    ),
    "chain": (
        "Slot-level chain simulator (10 km hops, q = 0.6, 4 memory units, 1 000 trials x 500 slots)",
        ["n", "time_s", "slots_per_s", "peak_rss_mb", "rss_before_mb"],
    ),
    "clustering": (
        "Clustering MILP on `bench_clustering.synthetic` instances (master budget n/8, 120 s limit)",
        ["n", "time_s", "solver_status", "gap", "peak_rss_mb", "rss_before_mb"],
    ),
}


def render(
    rows: pd.DataFrame,
    collected: list[dict[str, Any]],
    facts: dict[str, Any],
    *,
    quick: bool,
    wall_s: float,
) -> str:
    out = [
        "# qkdplan benchmark results",
        "",
        f"Machine: {machine_line(facts)}; {facts['platform']}; Python {facts['python']}, numpy "
        f"{facts['numpy']}, scipy {facts['scipy']}, pyomo {facts['pyomo']}, highspy {facts['highspy']}. "
        f"Suite run {facts['date_utc']} ({'quick' if quick else 'full'}, {wall_s:.0f} s); load average at the "
        f"end {facts['load_avg']} (other jobs shared the cores, so times are upper bounds).",
        "",
        "Regenerate with `python -m benchmarks` (or `qkdplan bench`; `--quick` for the smallest sizes). "
        'Growth: `time ~ c * n^a`, least squares on log time vs log n; "size at 10 min" extrapolates '
        "that fit and is only indicative outside the measured range. Fits use only rows whose solves finished "
        "(optimal or heuristic): a run stopped by its time limit measures the limit, not the cost, and marks the "
        "size where the model stopped being practical. Peak memory is the peak resident "
        "set (`ru_maxrss`) of the probe's own process, including the interpreter and imports "
        "(`rss_before_mb` is the resident set just before the measured call).",
        "",
    ]
    out += ["## Growth summary", ""]
    all_fits: list[dict[str, Any]] = []
    for kind in PROBE_TITLES:
        sub = rows[(rows["kind"] == kind) & (rows["status"] == "ok")] if len(rows) else rows
        if len(sub):
            all_fits += fits_table(sub, size="n", time_col="time_s", groups=[], label=f"{kind} (own probe)")
            if kind == "plan":
                for stage in ("access_s", "repeaters_s", "trust_s", "memory_s"):
                    if stage in sub.columns:
                        all_fits += fits_table(
                            sub,
                            size="n",
                            time_col=stage,
                            groups=[],
                            label=f"plan stage {stage[:-2]} (own probe)",
                        )
    for c in collected:
        all_fits += c["fits"]
    out += [_fits_md(all_fits), ""]
    out += ["## Where each own probe stops being practical", ""]
    for kind in PROBE_TITLES:
        sub = rows[rows["kind"] == kind] if len(rows) else rows
        if not len(sub):
            continue
        done = completed_rows(sub[sub["status"] == "ok"])
        limited = sub.drop(done.index)
        text = f"- **{kind}**: "
        if len(done):
            last = done.loc[done["n"].idxmax()]
            text += f"largest completed size n = {_fmt(last['n'])} in {_fmt(last.get('time_s'))} s"
            text += f" (peak {_fmt(last.get('peak_rss_mb'))} MB)"
        if len(limited):
            first = limited.loc[limited["n"].idxmin()]
            status = first.get("solver_status", first.get("status"))
            text += f"; n = {_fmt(first['n'])} ended by a limit ({status}, {_fmt(first.get('time_s'))} s)"
        own = [f for f in all_fits if f["benchmark"] == f"{kind} (own probe)"]
        if own:
            text += f"; time ~ n^{own[0]['a']:.2f}, 10 min reached near n = {_fmt(own[0]['n_at_limit'])}"
        out.append(text + ".")
    out.append("")
    out += ["## Own probes", "", "Each row states its machine and the time it was measured.", ""]
    for kind, (title, cols) in PROBE_TITLES.items():
        sub = rows[rows["kind"] == kind] if len(rows) else rows
        if not len(sub):
            continue
        out += [f"### {title}", "", _md_table(sub, [*cols, "status", "machine", "date"]), ""]
    out += [
        "## Collected from the per-model scripts",
        "",
        "These tables are the scripts' own committed results (machine and date as each states); "
        "they are not measured again here.",
        "",
    ]
    for c in collected:
        src = c["source"]
        out += [
            f"### {src['name']} — `benchmarks/{src['md']}` (from `benchmarks/{src['script']}`)",
            "",
        ]
        if not c["present"]:
            out += [c["note"], ""]
            continue
        when = f"Committed {c['committed']}." if c["committed"] else "In the working tree, not committed yet."
        out += [
            f"{when} {c['note']}".strip(),
            "",
            "Growth fits:",
            "",
            _fits_md(c["fits"]),
            "",
            "<details><summary>the committed table</summary>",
            "",
            c["markdown"],
            "",
            "</details>",
            "",
        ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes only")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results.md (default: benchmarks/)")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        choices=[*(k for k, _, _ in PROBES), "plan-real", "simulate-real"],
        help="run only these probes ('plan-real': the plan probe on real site lists, "
        "see benchmarks/plan_real.py; 'simulate-real': qkdplan simulate on planned designs, "
        "see benchmarks/simulate_real.py)",
    )
    parser.add_argument("--sets", nargs="*", default=None, help="plan-real: site sets to run (e.g. nl-100 nl-243)")
    parser.add_argument("--sizes", nargs="*", type=int, default=None, help="plan-real: site counts to run")
    parser.add_argument("--timeout", type=float, default=None, help="plan-real: wall-clock cap per set (s)")
    parser.add_argument("--mem-gb", type=float, default=None, help="plan-real: address-space cap per set (GB)")
    parser.add_argument("--no-simulate", action="store_true", help="plan-real: skip the simulation")
    parser.add_argument(
        "--run-dirs",
        nargs="*",
        type=Path,
        default=None,
        help="simulate-real: folders written by 'qkdplan plan' (default: synthetic designs of --sizes)",
    )
    parser.add_argument(
        "--workers", nargs="*", type=int, default=None, help="simulate-real: worker counts (default 1 2)"
    )
    parser.add_argument(
        "--reuse-probes",
        action="store_true",
        help="reuse the probe rows stored in the existing results.md (with --only: re-run just "
        "those probes) and re-collect the per-model tables",
    )
    parser.add_argument("--probe", choices=[*PROBE_FUNCS, "plan-real"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe == "plan-real":
        from benchmarks.plan_real import probe_plan_real

        row = probe_plan_real(args.size, simulate=not args.no_simulate)
        print(json.dumps(row, default=str), flush=True)
        return 0
    if args.probe:
        _run_probe_here(args.probe, args.size)
        return 0
    if args.only and "simulate-real" in args.only:
        from benchmarks import simulate_real

        simulate_real.run_sweep(
            list(args.run_dirs or []),
            list(args.sizes or simulate_real.DEFAULT_SIZES),
            list(args.workers or simulate_real.DEFAULT_WORKERS),
            timeout_s=args.timeout or simulate_real.DEFAULT_TIMEOUT_S,
            mem_gb=args.mem_gb or simulate_real.DEFAULT_MEM_GB,
            out_dir=args.out,
        )
        args.only = [k for k in args.only if k != "simulate-real"]
        if not args.only:
            return 0
    if args.only and "plan-real" in args.only:
        from benchmarks import plan_real

        plan_real.run_sweep(
            plan_real.select_sizes(args.sizes, args.sets),
            timeout_s=args.timeout or plan_real.DEFAULT_TIMEOUT_S,
            mem_gb=args.mem_gb or plan_real.DEFAULT_MEM_GB,
            simulate=not args.no_simulate,
            out_dir=args.out,
        )
        args.only = [k for k in args.only if k != "plan-real"]
        if not args.only:
            return 0
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    previous: dict[str, Any] = {}
    if args.reuse_probes:
        previous = read_stored_probes(args.out / "results.md")
        rows = previous.get("rows", [])
    if args.reuse_probes and args.only:  # re-run the named probes, keep the stored rows of the others
        rows = [r for r in rows if r.get("kind") not in args.only]
    for kind, full_sizes, quick_sizes in PROBES:
        if args.only is not None and kind not in args.only:
            continue
        if args.reuse_probes and not args.only:
            continue
        for size in quick_sizes if args.quick else full_sizes:
            print(f"probe {kind} n={size} ...", flush=True)
            row = run_probe(kind, size)
            now = machine_facts()
            row.update(machine=machine_line(now), date=now["date_utc"])
            print(
                f"  {row.get('status')}: {_fmt(row.get('time_s'))} s, peak {_fmt(row.get('peak_rss_mb'))} MB",
                flush=True,
            )
            rows.append(row)
            if row.get("status") != "ok":
                break  # larger sizes will not fare better
    facts = previous.get("facts") or machine_facts()
    wall_s = previous.get("wall_s", time.perf_counter() - t0)
    frame = pd.DataFrame(rows)
    collected = [collect(s) for s in SOURCES]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.md"
    quick = previous.get("quick", args.quick)
    text = render(frame, collected, facts, quick=quick, wall_s=wall_s)
    stored = {
        "rows": frame.to_dict(orient="records"),
        "facts": facts,
        "quick": quick,
        "wall_s": wall_s,
    }
    text += f"\n<!-- {STORE_TAG} {json.dumps(stored, default=str)} -->\n"
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
