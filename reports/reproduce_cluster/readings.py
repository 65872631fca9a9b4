"""Figs. 7a and 6a under every reading of the paper's "key rate" and latency: Eq. 9's lambda per slot,
``1 / (sum t_i / lambda)`` and the full Eq. 10, with the caption's trend checked for each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from planner import physics
from reports.reproduce_cluster.common import PAPER, colors, save, spearman
from reports.reproduce_cluster.fig6 import FIG6A_HOPS, FIG6A_Q, FIG6A_SPACINGS
from reports.reproduce_cluster.fig7 import FIG7A_MAX_N, FIG7A_QS, FIG7A_TOTAL_KM, fig7a_analytic

READINGS = {
    "lambda": "lambda per slot (Eq. 9)",
    "sum_t": "1 / (sum t_i / lambda) (Eq. 10 without the swap term)",
    "eq10": "1 / Eq. 10 (full latency)",
}
"""The three readings of "key rate" (Fig. 7a) and of latency (Fig. 6a, as its inverse)."""


def fig7a_readings(n_rep: Any, q: float) -> dict[str, Any]:
    """Fig. 7a's y value under every reading, for ``n_rep`` repeaters on 200 km (m = 1).

    ``lambda``: Eq. 9 (pairs per attempt slot); ``sum_t``: ``lambda / sum_i t_i`` (pairs
    per second, ``t_i`` of Eq. 8 with ``s`` of :data:`PAPER`); ``eq10``: ``1 / T`` with
    ``T`` the full Eq. 10 (pairs per second). Hops are equal, ``200 / (N + 1)`` km.
    """
    n = np.atleast_1d(np.asarray(n_rep))
    k = n + 1
    lam = np.asarray(fig7a_analytic(n, q), dtype=float)
    d = FIG7A_TOTAL_KM / k
    p = physics.link_success_probability(d, alpha_db_per_km=PAPER.alpha_db_per_km)
    sum_t = k * (d / PAPER.speed_km_per_s) / p  # Eq. 8 summed over the k hops
    eq10 = np.array(
        [
            physics.chain_latency_s(
                [FIG7A_TOTAL_KM / kk] * int(kk),
                q=q,
                memory=1,
                alpha_db_per_km=PAPER.alpha_db_per_km,
                speed_km_per_s=PAPER.speed_km_per_s,
                t_mea_s=PAPER.t_mea_s,
                t_ret_s=PAPER.t_ret_s,
            )
            for kk in k
        ],
        dtype=float,
    )
    return {"lambda": lam, "sum_t": lam / sum_t, "eq10": 1.0 / eq10}


def fig6a_readings(spacing_km: float, memory: Any) -> dict[str, Any]:
    """Fig. 6a's latency (s) under every reading, ``FIG6A_HOPS`` hops of ``spacing_km``.

    ``lambda``: one attempt slot ``d / s`` divided by Eq. 9 (time per pair if lambda is
    per slot); ``sum_t``: ``sum_i t_i / lambda``; ``eq10``: the full Eq. 10.
    """
    m = np.atleast_1d(np.asarray(memory, dtype=float))
    k = FIG6A_HOPS
    p = physics.link_success_probability(spacing_km, alpha_db_per_km=PAPER.alpha_db_per_km)
    lam = np.asarray(physics.chain_distribution_ratio(k, p=p, q=FIG6A_Q, memory=m), dtype=float)
    slot = spacing_km / PAPER.speed_km_per_s
    sum_t = k * slot / p
    swap = k * (PAPER.t_mea_s + PAPER.t_ret_s)
    return {"lambda": slot / lam, "sum_t": sum_t / lam, "eq10": sum_t / lam + swap}


def _rising(n: Any, y: Any) -> tuple[bool, float]:
    """(rises, Spearman rho) over the points: rho > 0.8 and last point above the first."""
    rho = spearman(n, y)
    return bool(rho > 0.8 and y[-1] > y[0]), rho


def _fig7a_verdict(reading: str, label: str, q: float) -> dict[str, Any]:
    """One row of :func:`readings_verdicts` for Fig. 7a's curve ``q`` under ``reading``."""
    n = np.arange(1, FIG7A_MAX_N + 1)
    y = fig7a_readings(n, q)[reading]
    arg = int(n[np.argmax(y)])
    r30 = float(y[29] / y[0])
    tail = float(y[FIG7A_MAX_N - 1] / y[29])
    rises30, rho = _rising(n[:30], y[:30])
    if q == 0.9:
        ok = arg == FIG7A_MAX_N
        caption = "increases with N"
    elif q == 0.6:
        ok = rises30 and 0.75 <= tail <= 1.25
        caption = "increases for N <= 30, no significant change beyond"
    else:
        ok = rises30 and tail < 1.0
        caption = "increases for N <= 30 (as q = 0.6), decreases beyond"
    trend = (
        f"peak at N = {arg}; Spearman rho (N <= 30) = {rho:.2f}; "
        f"rate(30)/rate(1) = {r30:.3g}; rate(63)/rate(30) = {tail:.2f}"
    )
    return dict(figure="fig7a", reading=label, curve=f"q = {q}", caption=caption, trend=trend, matches=bool(ok))


def _fig6a_verdict(reading: str, label: str) -> dict[str, Any]:
    """The row of :func:`readings_verdicts` for Fig. 6a under ``reading`` (m = 1..10, all four spacings)."""
    mem = np.arange(1, 11)
    drops = {}
    falls = True
    for sp in FIG6A_SPACINGS:
        t = fig6a_readings(sp, mem)[reading]
        falls &= bool(np.all(np.diff(t) < 0))
        drops[sp] = float(t[0] - t[-1])
    steeper = bool(np.all(np.diff(list(drops.values())) > 0))
    return dict(
        figure="fig6a",
        reading=label,
        curve="5, 10, 15, 20 km",
        caption="time falls with memory; more so for longer hops",
        trend="T(m=1) - T(m=10): "
        + ", ".join(f"{sp:g} km {v * 1e3:.3g} ms" for sp, v in drops.items())
        + f"; strictly falling in m: {falls}",
        matches=bool(falls and steeper),
    )


def readings_verdicts() -> pd.DataFrame:
    """Per reading and curve: the trend computed and whether it matches the caption.

    Fig. 7a (caption): q = 0.9 increases with N; q = 0.6 increases for N <= 30, no
    significant change beyond (rate(63)/rate(30) within 0.75-1.25); q = 0.3 like q = 0.6
    for N <= 30, then decreasing (rate(63) < rate(30)). "Increases for N <= 30" is read as
    Spearman rho over N = 1..30 above 0.8 with rate(30) > rate(1); "increases with N" as
    the maximum at the largest N. Fig. 6a (text): time falls with memory at every
    distance, and falls more (m = 1 -> 10) for longer hops.
    """
    rows = []
    for reading, label in READINGS.items():
        rows += [_fig7a_verdict(reading, label, q) for q in FIG7A_QS]
        rows.append(_fig6a_verdict(reading, label))
    return pd.DataFrame(rows)


def _reading_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every reading of Fig. 7a (per q and N = 1..63) and of Fig. 6a (per spacing and m = 1..10)."""
    n = np.arange(1, FIG7A_MAX_N + 1)
    rows7 = []
    for q in FIG7A_QS:
        vals = fig7a_readings(n, q)
        for i, nn in enumerate(n):
            rows7.append(dict(q=q, repeaters=int(nn), **{r: float(vals[r][i]) for r in READINGS}))
    mem = np.arange(1, 11)
    rows6 = []
    for sp in FIG6A_SPACINGS:
        vals = fig6a_readings(sp, mem)
        for i, mm in enumerate(mem):
            rows6.append(dict(spacing_km=sp, memory=int(mm), **{r: float(vals[r][i]) for r in READINGS}))
    return pd.DataFrame(rows7), pd.DataFrame(rows6)


def _plot_fig7a_readings(path: Path, df7: pd.DataFrame) -> Path:
    """One panel per reading: Fig. 7a's curves with each peak marked."""
    units7 = {"lambda": "pairs per slot", "sum_t": "pairs per s", "eq10": "pairs per s"}
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 3)
    for ax, (reading, label) in zip(axes, READINGS.items(), strict=True):
        for color, q in zip(colors(len(FIG7A_QS)), FIG7A_QS, strict=True):
            sub = df7[df7.q == q]
            ax.plot(sub.repeaters, sub[reading], color=color, label=f"q = {q}")
            peak = sub.loc[sub[reading].idxmax()]
            ax.plot([peak.repeaters], [peak[reading]], "o", color=color, ms=4)
        ax.set_yscale("log")
        ax.set_title(f"Fig. 7a: {label}", fontsize=8)
        ax.set_xlabel("number of repeaters N")
        ax.set_ylabel(units7[reading])
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)


def _plot_fig6a_readings(path: Path, df6: pd.DataFrame) -> Path:
    """One panel per reading: Fig. 6a's latency curves (the inverse of the reading)."""
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 3)
    for ax, (reading, label) in zip(axes, READINGS.items(), strict=True):
        for color, sp in zip(colors(4), FIG6A_SPACINGS, strict=True):
            sub = df6[df6.spacing_km == sp]
            ax.plot(sub.memory, sub[reading], color=color, label=f"{sp:g} km")
        ax.set_yscale("log")
        ax.set_title(f"Fig. 6a latency: inverse of {label}", fontsize=8)
        ax.set_xlabel("memory units per edge m")
        ax.set_ylabel("time per end-to-end pair (s)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)


def readings_outputs(out: Path) -> list[Path]:
    """``fig7a_readings.csv``, ``fig6a_readings.csv``, their plots ``fig7a_readings.png`` and
    ``fig6a_readings.png``, and ``readings.csv`` (the verdicts), written into ``out`` in that order;
    returns their paths."""
    df7, df6 = _reading_tables()
    paths = []
    for name, df in (("fig7a_readings", df7), ("fig6a_readings", df6)):
        path = out / f"{name}.csv"
        df.to_csv(path, index=False)
        paths.append(path)
    paths.append(_plot_fig7a_readings(out / "fig7a_readings.png", df7))
    paths.append(_plot_fig6a_readings(out / "fig6a_readings.png", df6))
    path = out / "readings.csv"
    readings_verdicts().to_csv(path, index=False)
    paths.append(path)
    return paths
