"""Simulate probe: ``qkdplan simulate`` on planned designs of growing size, 1 and 2 workers.

Each design is a folder written by ``qkdplan plan`` (``--run-dirs``, e.g. the
plans of the real site lists of :mod:`benchmarks.plan_real`), or, without
one, a :func:`benchmarks.synthetic_design.synthetic_design` of ``--sizes``
sites whose demands are cut to three per cluster (about the count the
gravity demand model gives real site lists). Every run is ``python -m
planner.cli simulate RUN --workers N`` in a fresh subprocess on a copy of the
folder, as a user runs it (reading the design, the simulation, writing the
simulation files and the report), under an address-space cap.

Per run: sites, clusters, demands, workers, wall seconds, CPU seconds of the
process and its workers (user + system; on a shared machine the wall time is
an upper bound and the CPU time the steadier figure), peak RSS of the main
process and of its largest worker, flagged pairs, and the load average when
the run ended. Written to ``results_simulate_real.csv`` / ``.md`` (rows of the
same design and worker count are replaced).

Run: ``python -m benchmarks --only simulate-real [--run-dirs DIR ...]
[--sizes 300 1000 3000] [--workers 1 2] [--mem-gb 8] [--timeout 1800]``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CSV_NAME = "results_simulate_real.csv"
MD_NAME = "results_simulate_real.md"
DEFAULT_SIZES = (300, 1000, 3000)
DEFAULT_WORKERS = (1, 2)
DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEM_GB = 8.0
#: demands kept per cluster of a synthetic design
SYNTHETIC_DEMANDS_PER_CLUSTER = 3
#: the goal this probe tracks: a 3 000-site design simulates in at most 10 minutes on 2 cores
GOAL_SITES, GOAL_WALL_S, GOAL_WORKERS = 3000, 600.0, 2
COLUMNS = [
    "design",
    "sites",
    "clusters",
    "demands",
    "workers",
    "status",
    "wall_s",
    "cpu_s",
    "peak_rss_mb",
    "worker_peak_rss_mb",
    "flagged",
    "requests",
    "mem_cap_gb",
    "machine",
    "date",
    "load_avg",
]


def write_synthetic_run(n_sites: int, folder: Path) -> Path:
    """A synthetic design of ``n_sites`` sites, three demands per cluster, written as a run folder."""
    from benchmarks.synthetic_design import synthetic_design
    from planner.io.writers import write_design_files

    design = synthetic_design(n_sites)
    per_cluster: dict[str, int] = {}
    keep = []
    for i, (s, t) in enumerate(zip(design.demands["source"], design.demands["target"], strict=True)):
        if per_cluster.get(s, 0) < SYNTHETIC_DEMANDS_PER_CLUSTER:
            keep.append(i)
            per_cluster[s] = per_cluster.get(s, 0) + 1
            per_cluster[t] = per_cluster.get(t, 0) + 1
    design.demands = design.demands.iloc[keep].reset_index(drop=True)
    design.metrics["n_demands"] = len(design.demands)
    folder.mkdir(parents=True, exist_ok=True)
    write_design_files(design, folder)
    return folder


def _design_facts(run: Path) -> dict[str, Any]:
    data = json.loads((run / "design.json").read_text(encoding="utf-8"))
    return {
        "design": str(data.get("network", {}).get("name") or run.name),
        "sites": len(data.get("sites", [])),
        "clusters": len(data.get("clusters", [])),
        "demands": len(data.get("demands", [])),
    }


def run_simulate(run: Path, workers: int, *, timeout_s: float, mem_gb: float, requests: int = 200) -> dict[str, Any]:
    """``qkdplan simulate`` on a copy of ``run`` with ``workers`` processes, in a capped subprocess."""
    row: dict[str, Any] = {**_design_facts(run), "workers": workers, "requests": requests, "mem_cap_gb": mem_gb}
    cap = int(mem_gb * 1024**3)

    def limit() -> None:  # pragma: no cover - runs in the child
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryDirectory(prefix="qkdplan-simulate-probe-") as tmp:
        copy = Path(tmp) / run.name
        shutil.copytree(run, copy)
        cmd = [sys.executable, "-m", "benchmarks.simulate_real", "--child", str(copy), str(workers), str(requests)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                preexec_fn=limit,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        except subprocess.TimeoutExpired:
            row.update(status="timeout", wall_s=time.perf_counter() - t0)
            return row
        row["wall_s"] = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        row["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = " ".join((proc.stderr or proc.stdout).split())[-300:]
            row.update(status="oom" if "MemoryError" in tail else f"error (exit {proc.returncode}): {tail}")
            return row
        row.update(json.loads(lines[-1]))
        row["status"] = "ok"
    return row


def _child(run: Path, workers: int, requests: int) -> None:
    """Inside the probe subprocess: the CLI's simulate, then one JSON line of facts."""
    from qkdplan.cli import main

    code = main(["-q", "simulate", str(run), "--workers", str(workers), "--requests", str(requests)])
    if code != 0:
        raise SystemExit(code)
    sim = json.loads((run / "simulation.json").read_text(encoding="utf-8"))
    print(
        json.dumps(
            {
                "flagged": sim.get("totals", {}).get("n_flagged"),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
            }
        ),
        flush=True,
    )


def run_sweep(
    run_dirs: list[Path], sizes: list[int], workers: list[int], *, timeout_s: float, mem_gb: float, out_dir: Path
) -> pd.DataFrame:
    """Simulate every run folder (or synthetic design of ``sizes``) with every worker count; write the tables."""
    from benchmarks.machine import machine_facts, machine_line

    rows = []
    with tempfile.TemporaryDirectory(prefix="qkdplan-synthetic-") as tmp:
        runs = list(run_dirs) or [write_synthetic_run(n, Path(tmp) / f"synthetic-{n}") for n in sizes]
        for run in runs:
            for w in workers:
                print(f"probe simulate-real {run.name} workers={w} ...", flush=True)
                row = run_simulate(run, w, timeout_s=timeout_s, mem_gb=mem_gb)
                facts = machine_facts()
                row.update(machine=machine_line(facts), date=facts["date_utc"], load_avg=str(facts["load_avg"]))
                print(
                    f"  {row['status']}: {row.get('wall_s', float('nan')):.0f} s wall, "
                    f"{row.get('cpu_s', float('nan')):.0f} s CPU",
                    flush=True,
                )
                rows.append(row)
    return write_tables(pd.DataFrame(rows), out_dir)


def write_tables(new: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Rows of ``new`` replace earlier rows of the same design and worker count; writes CSV and markdown."""
    csv_path, md_path = out_dir / CSV_NAME, out_dir / MD_NAME
    old = pd.read_csv(csv_path) if csv_path.is_file() else pd.DataFrame(columns=COLUMNS)
    if len(old) and len(new):
        done = set(zip(new["design"], new["workers"], strict=True))
        old = old[[(d, w) not in done for d, w in zip(old["design"], old["workers"], strict=True)]]
    frame = pd.concat([old, new], ignore_index=True) if len(old) else new
    frame = frame.sort_values(["sites", "design", "workers"], kind="mergesort").reset_index(drop=True)
    frame = frame[[c for c in COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in COLUMNS]]
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv_path, index=False)
    md_path.write_text(render_md(frame), encoding="utf-8")
    print(f"wrote {csv_path} and {md_path}", flush=True)
    return frame


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def render_md(frame: pd.DataFrame) -> str:
    """The results page: what was run, the goal, and one row per design and worker count."""
    out = [
        "# Simulate probe",
        "",
        "`qkdplan simulate RUN --workers N` (default 200 requests per pair) in a fresh subprocess on a copy of a "
        "planned design, as a user runs it: reading the design, the simulation, writing the simulation files and "
        "the report. Regenerate with `python -m benchmarks --only simulate-real [--run-dirs DIR ...]` "
        "(`benchmarks/simulate_real.py`).",
        "",
        f"Goal (issue: national deployments): a {GOAL_SITES:,}-site design simulates in <= {GOAL_WALL_S / 60:g} min "
        f"on {GOAL_WORKERS} cores.",
        "",
        "Columns: `wall_s` wall time of the subprocess; `cpu_s` user + system CPU time of it and its workers "
        "(the machine is shared: `load_avg` is the 1/5/15-minute load when the row finished, and with a load "
        "above the core count the wall time is an upper bound); `peak_rss_mb` of the main process, "
        "`worker_peak_rss_mb` of its largest worker; `flagged` pairs whose prediction the simulation contradicts.",
        "",
    ]
    cols = [c for c in COLUMNS if c in frame.columns]
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "---|" * len(cols))
    for rec in frame.to_dict(orient="records"):
        out.append("| " + " | ".join(_fmt(rec.get(c)) for c in cols) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Internal child entry point (``--child RUN WORKERS REQUESTS``)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 4 and args[0] == "--child":
        _child(Path(args[1]), int(args[2]), int(args[3]))
        return 0
    print("use: python -m benchmarks --only simulate-real", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
