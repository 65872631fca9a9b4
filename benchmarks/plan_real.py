"""Plan probe on real site lists: ``qkdplan plan`` as a new user runs it, 100 to 10 000 sites.

Each site set of :data:`REAL_SETS` (cities of a country from GeoNames, see
:mod:`benchmarks.sites`; only ``name,lat,lon,demand``, no links, so candidate
fibre is generated) is planned with the default scenario in a fresh
subprocess (``python -m benchmarks --probe plan-real --size N``), under an
address-space cap (``--mem-gb``, ``RLIMIT_AS``) and a wall-clock timeout
(``--timeout``), so one run cannot take the machine down. A probe that runs
out of either is recorded as ``oom`` / ``timeout`` (with the stages it
finished), never as a crash of the sweep. After the plan the design is also
verified with ``simulate_design`` (2 worker processes) and that time is a
column of its own.

Per run: total wall time, per-stage build and solve time, status and gap
(from ``design.solves``), clusters, demands and the demand model, peak RSS of
the probe process (``ru_maxrss``, including its simulation workers' peak as a
separate column). Written to ``results_plan_real.csv`` and
``results_plan_real.md`` (with ``time ~ c n^a`` growth fits over the runs
that finished).

Run: ``python -m benchmarks --only plan-real [--sets nl-100 nl-243]
[--sizes 100 243] [--timeout 1800] [--mem-gb 8] [--no-simulate]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: site count -> named site set of :mod:`benchmarks.sites`
REAL_SETS: dict[int, str] = {
    100: "nl-100",
    243: "nl-243",
    658: "it-658",
    692: "fr-692",
    1139: "de-1139",
    1300: "jp-1300",
    3076: "de-3076",
    3407: "us-3407",
    10000: "us-10000",
}
DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEM_GB = 8.0
CSV_NAME = "results_plan_real.csv"
MD_NAME = "results_plan_real.md"
STAGES = ("access", "repeaters", "trust", "memory")
#: the goals of the issue this probe tracks: sites -> (wall s, peak GB)
GOALS = {1000: (300.0, 4.0), 3000: (900.0, 8.0)}


def _stage_of(key: str) -> str:
    return key.split(".")[0].split("/")[0]


def probe_plan_real(n: int, *, simulate: bool = True) -> dict[str, Any]:
    """Plan the real site set of ``n`` sites with the default scenario; print rows as stages finish.

    Prints a JSON line after the plan (so a run killed during the simulation
    still reports its plan) and returns the final row.
    """
    from benchmarks.sites import site_list
    from planner.errors import QkdplanError
    from planner.io.readers import read_network
    from planner.model.scenario import default_scenario
    from planner.pipeline import plan

    name = REAL_SETS[n]
    path = site_list(name)
    t0 = time.perf_counter()
    network = read_network(path)
    read_s = time.perf_counter() - t0
    scenario = default_scenario()
    row: dict[str, Any] = {"set": name, "n": len(network.sites), "phase": "plan"}
    try:
        design = plan(network, scenario, seed=0)
    except QkdplanError as exc:  # an honest result too: say which stage gave up and why
        row["time_s"] = time.perf_counter() - t0
        row["error"] = " ".join(str(exc).split())[:300]
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps(row, default=str), flush=True)
        raise SystemExit(1) from None
    row["time_s"] = time.perf_counter() - t0
    row["clusters"] = design.metrics.get("n_clusters")
    row["standalone"] = design.metrics.get("n_standalone")
    row["demands"] = len(design.demands)
    row["demand_model"] = str(design.metrics.get("demand_model", ""))
    row["backbone_links"] = len(design.links)
    for key, value in design.timing.items():  # "<stage>.<what>_time_s" -> "<stage>_<what>_s"
        if key.endswith("_time_s") and "." in key and isinstance(value, int | float):
            stage, what = key.split(".", 1)
            col = f"{stage}_{what[: -len('_time_s')]}_s"
            row[col] = row.get(col, 0.0) + float(value)
        elif key.endswith((".stage_s", ".budget_s")) and isinstance(value, int | float):  # a stage's wall time
            stage, what = key.split(".", 1)  # and its budget
            row[f"{stage}_{what}"] = float(value)
    for key, solve in design.solves.items():
        st = _stage_of(key)
        row[f"{st}_status"] = str(solve.get("status"))
        gap = solve.get("gap")
        row[f"{st}_gap"] = float(gap) if isinstance(gap, int | float) else None
    row["read_s"] = read_s
    row["backbone_s"] = design.timing.get("backbone.build_s")
    staged = sum(float(row.get(f"{st}_stage_s") or 0.0) for st in STAGES)
    row["outside_stages_s"] = row["time_s"] - read_s - staged  # preparation, backbone, assembly
    routed, total = design.metrics.get("fibre_key_demands_routed"), design.metrics.get("fibre_key_demands")
    row["key_pool_demands"] = f"{routed}/{total}" if total else None
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(row, default=str), flush=True)
    if simulate:
        from planner.simulate.design_check import simulate_design

        t1 = time.perf_counter()
        sim = simulate_design(design, seed=0, network=network, workers=2)
        row["simulate_s"] = time.perf_counter() - t1
        row["simulate_flagged"] = sum(1 for p in sim["pairs"] if p.get("flagged"))
        row["phase"] = "plan+simulate"
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        row["simulate_workers_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return row


def _limit_memory(mem_bytes: int) -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))


def run_capped(cmd: list[str], *, timeout_s: float, mem_gb: float) -> tuple[list[dict[str, Any]], str, float]:
    """Run ``cmd`` in its own session under an address-space cap and a wall-clock timeout.

    Returns the JSON objects it printed (one per stdout line starting with
    ``{``), its status and its wall time. ``status``: ``ok`` (exit 0 and at
    least one JSON line); ``timeout > S s`` (the whole process group is
    killed); ``oom (cap G GB)`` (a MemoryError or failed allocation under
    the cap); ``killed by signal N`` (e.g. an abort in native code, often an
    allocation failure); or ``error: <last stderr line>``.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cap = int(mem_gb * 1024**3)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: _limit_memory(cap),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
        status = None
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        status = f"timeout > {timeout_s:.0f} s"
    wall = time.perf_counter() - t0
    rows = []
    for line in (out or "").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):  # a line cut by the kill
                rows.append(json.loads(line))
    if status is None:
        text = err or ""
        if proc.returncode == 0 and rows:
            status = "ok"
        elif any(word in text for word in _OOM_WORDS):
            status = f"oom (cap {mem_gb:g} GB)"
        elif proc.returncode is not None and proc.returncode < 0:
            status = f"killed by signal {-proc.returncode} (cap {mem_gb:g} GB)"
        else:
            tail = (text.strip().splitlines() or ["no output"])[-1]
            status = f"error: {tail[:200]}"
    return rows, status, wall


_OOM_WORDS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory", "failed to map segment")


def run_real_probe(n: int, *, timeout_s: float, mem_gb: float, simulate: bool) -> dict[str, Any]:
    """The plan probe of ``n`` sites in a fresh, capped interpreter (:func:`run_capped`).

    Always returns a row with ``status``; a run stopped during the
    simulation keeps its plan columns and says so.
    """
    cmd = [sys.executable, "-m", "benchmarks", "--probe", "plan-real", "--size", str(n)]
    if not simulate:
        cmd.append("--no-simulate")
    rows, status, wall = run_capped(cmd, timeout_s=timeout_s, mem_gb=mem_gb)
    row: dict[str, Any] = rows[-1] if rows else {"set": REAL_SETS[n], "n": n}
    if row.get("error") and not status.startswith(("timeout", "oom")):
        status = f"error: {row.pop('error')}"
    row["process_s"] = wall
    row["mem_cap_gb"] = mem_gb
    if status != "ok" and row.get("phase") == "plan" and simulate:
        status += " (during the simulation; plan columns are complete)"
    row["status"] = status
    return row


# ------------------------------------------------------------------ tables
COLUMNS = [
    "set",
    "n",
    "status",
    "time_s",
    "process_s",
    "peak_rss_mb",
    "clusters",
    "standalone",
    "demands",
    "backbone_links",
    "read_s",
    "backbone_s",
    "outside_stages_s",
    "key_pool_demands",
    *[f"{s}_{c}" for s in STAGES for c in ("stage_s", "budget_s", "build_s", "solve_s", "status", "gap")],
    "simulate_s",
    "simulate_flagged",
    "simulate_workers_peak_rss_mb",
    "mem_cap_gb",
    "demand_model",
    "machine",
    "date",
    "load_avg",
]


def render_md(frame: pd.DataFrame, fits: list[dict[str, Any]]) -> str:
    """Markdown page: what was run, the goals, the table and the growth fits."""
    from benchmarks.__main__ import _fits_md, _md_table

    lines = [
        "# Plan probe on real site lists",
        "",
        "`qkdplan plan` with the default scenario on city lists from GeoNames (`benchmarks/sites.py`: "
        "`name,lat,lon,demand` with demand = population, no links, so candidate fibre is generated), "
        "each set in a fresh subprocess under an address-space cap and a wall-clock timeout; then "
        "`simulate_design` on the result with 2 worker processes. Regenerate with "
        "`python -m benchmarks --only plan-real` (`--sets` / `--sizes` to limit it).",
        "",
        "Goals (issue: national deployments): 1 000 sites in <= 5 min and <= 4 GB peak, 3 000 sites in "
        "<= 15 min and <= 8 GB, 10 000 sites completes; a 3 000-site design simulates in <= 10 min on 2 cores.",
        "",
        "Columns: `time_s` wall time of reading + planning; `read_s` reading the site list; `backbone_s` "
        "contracting the network onto clusters and routing the demands; `outside_stages_s` the plan's time "
        "outside the four budgeted stages (reading excluded); `key_pool_demands` demands the memory stage's "
        "fibre key needs were summed over, of all; `<stage>_stage_s` / `_budget_s` a stage's wall "
        "time (building, solving, everything) and its time budget; `<stage>_build_s` / `_solve_s` model build and "
        "solver time summed over the stage's models; `_status` / `_gap` of its (last) model; "
        "`peak_rss_mb` peak resident set of the probe process; `process_s` wall time of the whole "
        "subprocess (plan + simulation). `timeout` / `oom` rows are results, not failures of the probe. "
        "`load_avg` is the machine's load when the row finished: on a shared machine the times are upper "
        "bounds.",
        "",
        _md_table(frame, [c for c in COLUMNS if c in frame.columns and c != "demand_model"]),
        "",
        "Demand model used per set:",
        "",
    ]
    for _, r in frame.iterrows():
        if isinstance(r.get("demand_model"), str) and r.get("demand_model"):
            lines.append(f"- {r['set']}: {r['demand_model']}")
    lines += ["", "## Growth fits (runs that finished)", "", _fits_md(fits), ""]
    return "\n".join(lines) + "\n"


def growth_fits(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``time ~ c n^a`` fits of the total time, each stage's build + solve, and the simulation."""
    from benchmarks.__main__ import fit_power

    ok = frame[frame["status"].astype(str).str.startswith("ok")] if "status" in frame else frame
    fits = []
    cols: list[tuple[str, pd.Series]] = []
    if "time_s" in ok:
        cols.append(("plan total", ok["time_s"]))
    for st in STAGES:
        parts = [c for c in (f"{st}_build_s", f"{st}_solve_s") if c in ok]
        if parts:
            cols.append((f"plan stage {st}", ok[parts].apply(pd.to_numeric, errors="coerce").sum(axis=1, min_count=1)))
    if "simulate_s" in ok:
        cols.append(("simulate", ok["simulate_s"]))
    for label, series in cols:
        fit = fit_power(ok["n"], pd.to_numeric(series, errors="coerce"))
        if fit is not None:
            fits.append({"benchmark": f"plan-real: {label}", "case": "all", "size": "n", **fit})
    return fits


def run_sweep(sizes: list[int], *, timeout_s: float, mem_gb: float, simulate: bool, out_dir: Path) -> pd.DataFrame:
    """Run the probes of ``sizes`` in order, merge with earlier rows of other sets, write CSV + markdown.

    Goes on after a timeout or oom (the lead may have given a larger cap to
    the next set), but skips the remaining larger sets once two in a row
    failed, since they will not fare better.
    """
    from benchmarks.machine import machine_facts, machine_line

    csv_path = out_dir / CSV_NAME
    old = pd.read_csv(csv_path) if csv_path.is_file() else pd.DataFrame(columns=["set"])
    rows = []
    failures = 0
    for n in sizes:
        if failures >= 2:
            print(f"skip {REAL_SETS[n]}: two smaller sets in a row did not finish", flush=True)
            continue
        print(f"probe plan-real {REAL_SETS[n]} (timeout {timeout_s:.0f} s, cap {mem_gb:g} GB) ...", flush=True)
        row = run_real_probe(n, timeout_s=timeout_s, mem_gb=mem_gb, simulate=simulate)
        facts = machine_facts()
        row.update(machine=machine_line(facts), date=facts["date_utc"], load_avg=str(facts["load_avg"]))
        print(
            f"  {row['status']}: plan {row.get('time_s', float('nan')):.0f} s, process "
            f"{row['process_s']:.0f} s, peak {row.get('peak_rss_mb', float('nan')):.0f} MB",
            flush=True,
        )
        rows.append(row)
        failures = 0 if str(row["status"]).startswith("ok") else failures + 1
    return write_tables(old, pd.DataFrame(rows), out_dir)


def write_tables(old: pd.DataFrame, new: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Rows of ``new`` replace those of the same set in ``old``; writes the CSV and the markdown page."""
    keep = old[~old["set"].isin(new["set"])] if len(new) and "set" in old else old
    frame = pd.concat([keep, new], ignore_index=True) if len(keep) else new
    frame = frame.sort_values("n", kind="mergesort").reset_index(drop=True)
    cols = [c for c in COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in COLUMNS]
    frame = frame[cols]
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / CSV_NAME, out_dir / MD_NAME
    frame.to_csv(csv_path, index=False)
    md_path.write_text(render_md(frame, growth_fits(frame)), encoding="utf-8")
    print(f"wrote {csv_path} and {md_path}", flush=True)
    return frame


def select_sizes(sizes: list[int] | None, sets: list[str] | None) -> list[int]:
    """The site counts to run: ``sizes`` and the sizes of the named ``sets`` (default: all), ascending."""
    by_name = {v: k for k, v in REAL_SETS.items()}
    chosen: set[int] = set()
    for s in sizes or []:
        if s not in REAL_SETS:
            raise SystemExit(f"--sizes: no real site set of {s} sites; known sizes: {', '.join(map(str, REAL_SETS))}")
        chosen.add(s)
    for name in sets or []:
        if name not in by_name:
            raise SystemExit(f"--sets: unknown set {name!r}; known: {', '.join(by_name)}")
        chosen.add(by_name[name])
    return sorted(chosen or REAL_SETS)
