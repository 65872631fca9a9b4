"""Size and speed of the report and the GeoPackage, swept over design size.

Designs come from :func:`benchmarks.synthetic_design.synthetic_design` (built
directly, no optimisation, so the sweep reaches national scale quickly) and,
with ``--run DIR``, from real run folders written by ``qkdplan plan``. For each:
sites, clusters, demands, ``report.html`` size and time to write it, ``design.gpkg``
size and time, and the time headless Chromium takes to load the report and take a
screenshot (minus the same for an empty page), when Chromium is installed.

Writes ``benchmarks/results_report.csv`` and ``benchmarks/results_report.md``.
Run: ``python -m benchmarks.bench_report [--sizes 300 1000 3000] [--run DIR ...]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.machine import machine_line
from benchmarks.synthetic_design import synthetic_design
from planner.io.writers import write_design_files
from planner.model.design import Design
from reports.html import render_report

OUT = Path(__file__).resolve().parent


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_load_s(html: Path) -> float | None:
    """Seconds headless Chromium needs to load ``html`` and screenshot it, minus an empty page's time."""
    exe = _chromium()
    if exe is None:
        return None

    def shot(path: Path) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run(
                [
                    exe,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--user-data-dir={tmp}/profile",
                    f"--screenshot={tmp}/shot.png",
                    "--window-size=1280,4000",
                    path.resolve().as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
            return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.html"
        empty.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
        base = min(shot(empty) for _ in range(2))
    return max(0.0, min(shot(html) for _ in range(2)) - base)


def measure(design: Design, label: str) -> dict[str, object]:
    """Write the design's files and report into a temporary folder and measure them."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_design_files(design, folder)
        t_files = time.perf_counter() - t0
        t0 = time.perf_counter()
        render_report(design, folder / "report.html")
        t_report = time.perf_counter() - t0
        load = browser_load_s(folder / "report.html")
        return {
            "design": label,
            "sites": len(design.sites),
            "clusters": len(design.clusters),
            "demands": len(design.demands),
            "report_mb": round((folder / "report.html").stat().st_size / 1e6, 3),
            "report_write_s": round(t_report, 1),
            "browser_load_s": None if load is None else round(load, 2),
            "gpkg_mb": round((folder / "design.gpkg").stat().st_size / 1e6, 2),
            "data_files_write_s": round(t_files, 1),
        }


def _loadavg() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(row[c]) else str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="*", default=[300, 1000, 3000])
    ap.add_argument(
        "--cluster-size",
        type=int,
        nargs="*",
        default=[8, 7],
        help="sites per synthetic cluster; the largest size is also run with each further value",
    )
    ap.add_argument("--run", type=Path, nargs="*", default=[], help="run folders written by 'qkdplan plan'")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    first, *more = args.cluster_size
    rows = [measure(synthetic_design(n, first), f"synthetic-{n}/{first}") for n in args.sizes]
    rows += [measure(synthetic_design(max(args.sizes), c), f"synthetic-{max(args.sizes)}/{c}") for c in more]
    rows += [measure(Design.read(r), f"run:{Design.read(r).network_name}") for r in args.run]
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "results_report.csv", index=False)
    text = (
        "# Report and GeoPackage size at scale\n\n"
        f"{machine_line()}\n\n"
        "Synthetic designs `synthetic-N/c`: `benchmarks/synthetic_design.py` (N sites in a 9 x 8 degree box, "
        "clusters of about c sites, all cluster pairs as demands). Wall-clock times were taken on a shared machine "
        "under load from "
        "other jobs (see the load average below); `browser_load_s` is headless Chromium's load + screenshot time "
        "minus an empty page's.\n\n"
        f"Load average at the end of the run: {_loadavg()}.\n\n" + _markdown(df) + "\n"
    )
    (args.out / "results_report.md").write_text(text, encoding="utf-8")
    print(text)
    return df


if __name__ == "__main__":
    main()
