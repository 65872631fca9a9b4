"""Side-by-side comparison of planned designs (``qkdplan compare`` and ``plan --alternatives``).

:func:`write_comparison` reads several run folders (each written by ``qkdplan plan``,
optionally with ``simulation.json`` from ``qkdplan simulate``) and writes
``comparison.csv`` and a self-contained ``comparison.html`` (inline SVG, inline CSS,
no scripts, no external resources): one row per alternative with cost, masters,
repeaters, memory, trusted relays, key rates, security, latency and solve time, the
scenario settings that differ between the alternatives, and plots.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: E402

from planner import __version__  # noqa: E402
from planner.errors import InputFormatError  # noqa: E402
from planner.io.files import write_csv  # noqa: E402
from planner.model.design import Design  # noqa: E402
from planner.model.serialise import flatten  # noqa: E402
from planner.runtime.progress import current_tracker  # noqa: E402
from planner.stages.latency import demand_protocol_latency_s  # noqa: E402
from reports.figures import to_svg  # noqa: E402
from reports.tables import fmt, table_html  # noqa: E402

logger = logging.getLogger(__name__)

__all__ = ["COLUMNS", "comparison_row", "load_run", "scenario_differences", "write_comparison"]

_ENV = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))

#: Columns of ``comparison.csv``, in order, with their labels in the HTML table.
COLUMNS: dict[str, str] = {
    "alternative": "alternative",
    "network": "network",
    "scenario": "scenario",
    "cost": "cost",
    "masters": "masters",
    "repeaters": "repeaters",
    "memory_units": "memory units",
    "trusted_relays": "trusted relays",
    "clusters": "clusters",
    "standalone": "standalone sites",
    "demands": "demands",
    "keys_per_attempt": "access keys / attempt",
    "min_key_rate": "min rate (pairs/attempt)",
    "mean_key_rate": "mean rate (pairs/attempt)",
    "min_security": "min security",
    "mean_security": "mean security",
    "max_latency_s": "max latency (s, Eq. 10)",
    "max_latency_protocol_s": "max latency (s, protocol)",
    "solve_time_s": "solve time (s)",
    "total_time_s": "planning time (s)",
    "simulated": "simulated",
    "sim_flagged_pairs": "flagged pairs",
    "sim_min_key_rate": "simulated min rate",
    "sim_min_security": "simulated min security",
    "sim_max_rate_rel_error": "max |rate error|",
    "sim_max_security_error": "max |security error|",
    "run_dir": "run folder",
}


def load_run(run_dir: Path) -> tuple[Design, dict[str, Any] | None]:
    """The design of a run folder and its simulation (``None`` when not simulated).

    Raises :class:`InputFormatError` naming the folder when it is not a run folder or
    a file in it is malformed.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InputFormatError(
            f"{run}: not a folder; pass folders written by 'qkdplan plan --out DIR'",
            source=str(run),
        )
    if not (run / "design.json").is_file():
        raise InputFormatError(
            f"{run}: no design.json in this folder; pass folders written by 'qkdplan plan --out DIR'",
            source=str(run),
        )
    try:
        design = Design.read(run)
    except InputFormatError as exc:
        raise InputFormatError(f"{run}: {exc}", source=str(run)) from None
    sim_path = run / "simulation.json"
    sim = None
    if sim_path.is_file():
        try:
            sim = json.loads(sim_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFormatError(
                f"{sim_path}: not valid JSON ({exc}); re-run 'qkdplan simulate {run}'",
                source=str(sim_path),
            ) from None
        if not isinstance(sim, dict) or not isinstance(sim.get("pairs"), list):
            raise InputFormatError(
                f"{sim_path}: not a qkdplan simulation file; re-run 'qkdplan simulate {run}'",
                source=str(sim_path),
            )
    return design, sim


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def comparison_row(
    design: Design, sim: dict[str, Any] | None, *, alternative: str, run_dir: str = ""
) -> dict[str, Any]:
    """One row of the comparison table for a design (and its simulation).

    ``cost`` = master_cost x masters + repeater_cost x repeaters + trusted_cost x
    trusted relays, with the unit costs of the design's own scenario (all 1 by
    default, so cost is then the number of devices). ``solve_time_s`` sums the MILP
    solve times of ``design.timing``.
    """
    m, sc = design.metrics, design.scenario
    masters = int(m.get("n_masters", 0) or 0)
    repeaters = int(m.get("n_repeaters", 0) or 0)
    trusted = int(m.get("n_trusted", 0) or 0)
    cost = (
        float(sc.get("access", {}).get("master_cost", 1.0)) * masters
        + float(sc.get("backbone", {}).get("repeater_cost", 1.0)) * repeaters
        + float(sc.get("security", {}).get("trusted_cost", 1.0)) * trusted
    )
    timing = design.timing or {}
    solve = sum(float(v) for k, v in timing.items() if k.endswith(".solve_time_s") and _num(v) is not None)
    row: dict[str, Any] = {
        "alternative": alternative,
        "network": design.network_name,
        "scenario": str(sc.get("name", "")),
        "cost": cost,
        "masters": masters,
        "repeaters": repeaters,
        "memory_units": int(m.get("memory_units_total", 0) or 0),
        "trusted_relays": trusted,
        "clusters": int(m.get("n_clusters", 0) or 0),
        "standalone": int(m.get("n_standalone", 0) or 0),
        "demands": int(m.get("n_demands", len(design.demands)) or 0),
        "keys_per_attempt": _num(m.get("total_keys_per_attempt")),
        "min_key_rate": _num(m.get("min_demand_rate")),
        "mean_key_rate": _num(m.get("mean_demand_rate")),
        "min_security": _num(m.get("min_security")),
        "mean_security": _num(m.get("mean_security")),
        "max_latency_s": _num(m.get("max_latency_s")),
        "max_latency_protocol_s": _protocol_latency_max(design),
        "solve_time_s": solve,
        "total_time_s": _num(timing.get("total_s")),
        "simulated": sim is not None,
        "run_dir": run_dir,
    }
    if sim is not None:
        totals = sim.get("totals", {})
        row.update(
            {
                "sim_flagged_pairs": int(totals.get("n_flagged", sum(1 for p in sim["pairs"] if p.get("flagged")))),
                "sim_min_key_rate": _num(totals.get("inter_rate_simulated_min")),
                "sim_min_security": _num(totals.get("security_simulated_min")),
                "sim_max_rate_rel_error": _num(totals.get("max_abs_rate_rel_error")),
                "sim_max_security_error": _num(totals.get("max_abs_security_error")),
            }
        )
    return row


def _protocol_latency_max(design: Design) -> float | None:
    """The design's largest protocol latency; derived from its demands table for designs written before
    the metric existed."""
    v = _num(design.metrics.get("max_latency_protocol_s"))
    if v is not None:
        return v
    dem = design.demands
    if not len(dem) or not {"hops", "p_worst", "rate"} <= set(dem.columns):
        return None
    lat = demand_protocol_latency_s(dem, design.scenario["physics"])
    return float(np.nanmax(lat)) if np.isfinite(lat).any() else None


def _flat_scenario(scenario: dict[str, Any]) -> dict[str, Any]:
    """Scenario settings as dotted keys; list values as JSON text (so that they compare and print as one cell)."""
    return {k: json.dumps(v) if isinstance(v, list) else v for k, v in flatten(scenario).items()}


def scenario_differences(designs: list[Design], labels: list[str]) -> pd.DataFrame:
    """Scenario settings whose values differ between the designs (one column per alternative)."""
    flat = [_flat_scenario(d.scenario) for d in designs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = []
    for k in keys:
        values = [f.get(k) for f in flat]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            rows.append({"setting": k, **{lab: v for lab, v in zip(labels, values, strict=True)}})
    return pd.DataFrame(rows, columns=["setting", *labels])


def _labels(run_dirs: list[Path]) -> list[str]:
    """Short unique labels: folder names, with parent folders added where names repeat."""
    names = [p.resolve().name or str(p) for p in run_dirs]
    if len(set(names)) == len(names):
        return names
    out = []
    for p, n in zip(run_dirs, names, strict=True):
        out.append(n if names.count(n) == 1 else f"{p.resolve().parent.name}/{n}")
    if len(set(out)) < len(out):
        out = [f"{i + 1}: {n}" for i, n in enumerate(out)]
    return out


def write_comparison(run_dirs: list[Path], out_dir: Path) -> pd.DataFrame:
    """Compare the designs in ``run_dirs``; write ``comparison.csv`` and ``comparison.html`` into ``out_dir``.

    Returns the comparison table (columns :data:`COLUMNS`, one row per run, in the
    order given). Raises :class:`InputFormatError` naming the folder for a missing or
    malformed run folder. ``out_dir`` is created if needed. The HTML file is
    self-contained (inline SVG plots, no scripts, no external resources).
    """
    if not run_dirs:
        raise InputFormatError(
            "no run folders to compare; pass one or more folders written by 'qkdplan plan'",
            source="compare",
        )
    dirs = [Path(p) for p in run_dirs]
    tracker = current_tracker()
    loaded = []
    with tracker.task("reading run folders", total=len(dirs), unit="runs") as reading:
        for p in dirs:
            loaded.append(load_run(p))
            reading.advance()
    drawing = tracker.task("drawing the comparison", total=4, unit="figures")
    labels = _labels(dirs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rel = [_relative(p, out) for p in dirs]
    rows = [
        comparison_row(d, s, alternative=lab, run_dir=r) for (d, s), lab, r in zip(loaded, labels, rel, strict=True)
    ]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    write_csv(table, out / "comparison.csv", index=False)
    designs = [d for d, _ in loaded]
    diffs = scenario_differences(designs, labels)
    with drawing:
        figs = {"cost": _cost_figure(table)}
        drawing.advance()
        figs["rates"] = _rate_figure(designs, labels, [s for _, s in loaded])
        drawing.advance()
        figs["tradeoff"] = _tradeoff_figure(table)
        drawing.advance()
        figs["security"] = _security_figure(designs, labels)
        drawing.advance()
    shown = [c for c in COLUMNS if c != "run_dir" and (c in ("alternative",) or table[c].notna().any())]
    text = _ENV.get_template("comparison.html.j2").render(
        version=__version__,
        n=len(table),
        networks=", ".join(sorted(set(table["network"].astype(str)))),
        table_html=table_html(table, columns=shown, labels=COLUMNS, left=("alternative", "network", "scenario")),
        diff_html=table_html(diffs, left=("setting",))
        if len(diffs)
        else '<p class="note">All alternatives use the same scenario settings.</p>',
        figs=figs,
        notes=_notes(table),
        runs=list(zip(labels, rel, strict=True)),
    )
    (out / "comparison.html").write_text(text, encoding="utf-8")
    logger.info("compared %d runs into %s", len(table), out)
    return table


def _relative(run: Path, out: Path) -> str:
    """``run`` relative to ``out`` (stays valid when both move together), else absolute."""
    try:
        return os.path.relpath(run.resolve(), out.resolve())
    except ValueError:  # pragma: no cover - different drives on Windows
        return str(run.resolve())


def _notes(table: pd.DataFrame) -> list[str]:
    notes = []
    if len(table) > 1:
        cheapest = table.loc[table["cost"].idxmin()]
        notes.append(f"Cheapest: {cheapest['alternative']} (cost {fmt(float(cheapest['cost']))}).")
        rates = pd.to_numeric(table["min_key_rate"], errors="coerce")
        if rates.notna().any():
            best = table.loc[rates.idxmax()]
            notes.append(
                f"Highest minimum rate: {best['alternative']} ({fmt(float(best['min_key_rate']))} pairs/attempt)."
            )
        sec = pd.to_numeric(table["min_security"], errors="coerce")
        if sec.notna().any():
            best = table.loc[sec.idxmax()]
            notes.append(f"Highest minimum security: {best['alternative']} ({fmt(float(best['min_security']))}).")
    hopeless = table[pd.to_numeric(table["min_key_rate"], errors="coerce") < 1e-9]
    for r in hopeless.itertuples(index=False):
        notes.append(
            f"{r.alternative}: some demands have a rate below 1e-9 pairs/attempt (chains without enough "
            "repeaters); its cost is not comparable."
        )
    flagged = table[pd.to_numeric(table.get("sim_flagged_pairs"), errors="coerce").fillna(0) > 0]
    for r in flagged.itertuples(index=False):
        notes.append(
            f"{r.alternative}: {int(r.sim_flagged_pairs)} pair(s) disagree with their simulation "
            "beyond tolerance; see its report.html."
        )
    unsimulated = table.loc[~table["simulated"].astype(bool), "alternative"].tolist()
    if unsimulated:
        notes.append(
            "Not simulated yet: "
            + ", ".join(html.escape(str(x)) for x in unsimulated)
            + " (run 'qkdplan simulate RUN_DIR')."
        )
    return notes


# ---------------------------------------------------------------------------
# figures (matplotlib Agg -> inline SVG)
# ---------------------------------------------------------------------------


def _short(labels: list[str]) -> list[str]:
    return [lab if len(lab) <= 18 else lab[:16] + "…" for lab in labels]


def _cost_figure(table: pd.DataFrame) -> str:
    """Stacked bars: device counts (masters, repeaters, trusted relays) per alternative."""
    labels = _short(table["alternative"].astype(str).tolist())
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(table) + 2.5), 3.4))
    bottom = np.zeros(len(table))
    for col, colour in (
        ("masters", "#457b9d"),
        ("repeaters", "#e63946"),
        ("trusted_relays", "#2a9d8f"),
    ):
        vals = table[col].astype(float).to_numpy()
        ax.bar(x, vals, bottom=bottom, color=colour, label=COLUMNS[col], width=0.6)
        bottom += vals
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylabel("devices")
    ax.set_title("Devices per alternative")
    ax.legend(fontsize=7)
    return to_svg(fig)


#: Above this many demands per alternative, figures draw them as an embedded raster or a summary.
_POINTS_DRAWN_UP_TO = 400


def _rate_figure(designs: list[Design], labels: list[str], sims: list[dict[str, Any] | None]) -> str:
    """Per-demand predicted rates per alternative (box plot, log scale), simulated minimum marked."""
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(designs) + 2.5), 3.6))
    data, pos = [], []
    for i, d in enumerate(designs):
        if "rate" in d.demands.columns and len(d.demands):
            r = pd.to_numeric(d.demands["rate"], errors="coerce").dropna()
            r = r[r > 0]
            if len(r):
                data.append(r.to_numpy())
                pos.append(i)
    if data:
        # outliers are drawn one by one only for small designs, so the SVG stays small at 100 000 demands
        ax.boxplot(data, positions=pos, widths=0.5, showfliers=max(len(x) for x in data) <= _POINTS_DRAWN_UP_TO)
        ax.set_yscale("log")
    for i, s in enumerate(sims):
        low = _num((s or {}).get("totals", {}).get("inter_rate_simulated_min"))
        if low and low > 0:
            ax.plot(
                [i],
                [low],
                "v",
                color="crimson",
                ms=7,
                label="simulated minimum" if i == next(j for j, t in enumerate(sims) if t) else None,
            )
    ax.set_xticks(np.arange(len(designs)), _short(labels), rotation=20, ha="right")
    ax.set_xlim(-0.6, len(designs) - 0.4)
    ax.set_ylabel("rate (pairs/attempt, Eq. 9)")
    ax.set_title("Inter-cluster rates per alternative")
    if any(sims):
        ax.legend(fontsize=7)
    if not data:
        ax.text(0.5, 0.5, "no repeater-chain demands", transform=ax.transAxes, ha="center")
    return to_svg(fig)


def _tradeoff_figure(table: pd.DataFrame) -> str:
    """Cost vs minimum rate, one labelled point per alternative."""
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    rate = pd.to_numeric(table["min_key_rate"], errors="coerce")
    ok = rate > 0
    ax.scatter(table.loc[ok, "cost"], rate[ok], color="#1d3557", zorder=3)
    for r, c, lab in zip(rate[ok], table.loc[ok, "cost"], table.loc[ok, "alternative"], strict=True):
        ax.annotate(
            str(lab)[:18],
            (float(c), float(r)),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    if ok.any():
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no rates to compare", transform=ax.transAxes, ha="center")
    ax.set_xlabel("cost (unit costs of each scenario)")
    ax.set_ylabel("minimum rate (pairs/attempt)")
    ax.set_title("Cost vs minimum rate")
    return to_svg(fig)


def _security_figure(designs: list[Design], labels: list[str]) -> str:
    """Sorted per-demand end-to-end security of every alternative."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    drawn = False
    for d, lab in zip(designs, labels, strict=True):
        if "security" in d.demands.columns and len(d.demands):
            s = np.sort(pd.to_numeric(d.demands["security"], errors="coerce").dropna().to_numpy())
            if len(s):
                ax.plot(
                    np.linspace(0, 1, len(s)),
                    s,
                    drawstyle="steps-post",
                    label=lab[:24],
                    rasterized=len(s) > _POINTS_DRAWN_UP_TO,
                )
                drawn = True
    if drawn:
        ax.legend(fontsize=7)
        ax.set_ylim(-0.02, 1.02)
    else:
        ax.text(0.5, 0.5, "no trusted-relay layer", transform=ax.transAxes, ha="center")
    ax.set_xlabel("fraction of demands (sorted)")
    ax.set_ylabel("end-to-end security (SMR)")
    ax.set_title("Security of every demand")
    return to_svg(fig)
