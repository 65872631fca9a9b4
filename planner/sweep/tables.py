"""A sweep's result table (``results.csv``, ``results.parquet``) and its plots (``plots/<param>.png|svg``)."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

MAX_PLOT_METRICS = 12


def write_table(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``results.csv`` and ``results.parquet`` (atomically: temp file, then rename)."""
    out = []
    for name, writer in (
        ("results.csv", lambda f: table.to_csv(f, index=False)),
        ("results.parquet", lambda f: _to_parquet(table, f)),
    ):
        final = out_dir / name
        tmp = out_dir / f".{name}.tmp"
        writer(tmp)
        os.replace(tmp, final)
        out.append(final)
    return out


def _to_parquet(table: pd.DataFrame, path: Path) -> None:
    frame = table.copy()
    for col in frame.columns:  # parquet needs one type per column: mixed object columns become text
        if frame[col].dtype == object:
            kinds = {type(v) for v in frame[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(kinds) > 1:
                frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    frame.to_parquet(path, index=False)


def plot_sweep(
    table: pd.DataFrame, varied: list[str], plot_dir: Path, *, metrics: list[str] | None = None
) -> list[Path]:
    """One figure per varied parameter: each metric's mean (line) and min-max band over the other parameters.

    Only successful points are plotted; metrics default to every numeric
    metric column that varies (at most :data:`MAX_PLOT_METRICS`). Writes PNG
    and SVG; returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"] if len(table) else table
    if ok.empty or not varied:
        return []
    skip = set(varied) | {"point", "status", "time_s", "error_type", "error_message", "worker"}
    if metrics:
        chosen = [m for m in metrics if m in ok.columns]
    else:
        chosen = [
            c
            for c in ok.columns
            if c not in skip
            and not c.startswith(("time.", "access.", "backbone.", "trust.", "memory."))
            and pd.api.types.is_numeric_dtype(ok[c])
            and ok[c].nunique(dropna=True) > 1
        ]
    chosen = chosen[:MAX_PLOT_METRICS]
    if not chosen:
        return []
    plot_dir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for param in varied:
        x = ok[param]
        if not pd.api.types.is_numeric_dtype(x):
            x = x.astype(str)
        ncols = min(3, len(chosen))
        nrows = math.ceil(len(chosen) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
        for ax, metric in zip(axes.flat, chosen, strict=False):
            grouped = pd.DataFrame({"x": x, "y": pd.to_numeric(ok[metric], errors="coerce")}).groupby("x")["y"]
            stats = grouped.agg(["mean", "min", "max"]).dropna()
            xs = stats.index.to_numpy() if pd.api.types.is_numeric_dtype(stats.index) else range(len(stats))
            ax.plot(xs, stats["mean"], marker="o")
            ax.fill_between(xs, stats["min"], stats["max"], alpha=0.2)
            if not pd.api.types.is_numeric_dtype(stats.index):
                ax.set_xticks(list(xs), list(stats.index))
            ax.set_xlabel(param)
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(chosen) :]:
            ax.set_visible(False)
        fig.suptitle(f"metrics vs {param} (mean, min-max over other parameters)")
        fig.tight_layout()
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in param)
        for ext in ("png", "svg"):
            path = plot_dir / f"{stem}.{ext}"
            fig.savefig(path, dpi=110)
            out.append(path)
        plt.close(fig)
    return out
