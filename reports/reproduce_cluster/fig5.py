"""Fig. 5 of the cluster paper: end-to-end rate against distance for several repeater counts (Eq. 9),
with the repeaterless PLOB bound."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner import physics
from reports.reproduce_cluster.common import (
    PAPER,
    RATE_COLUMNS,
    Seeds,
    Settings,
    Trend,
    agreement_trend,
    colors,
    new_axes,
    points,
    rate_spec,
    run_tasks,
    save,
    spearman,
    with_estimates,
)

#: Fig. 5: swap success, memory units per edge and repeater counts.
FIG5_Q, FIG5_M = 1.0, 1
FIG5_REPEATERS = [0, 1, 3, 7, 15]

#: Columns of ``fig5.csv``, in order.
FIG5_COLUMNS = [
    "repeaters",
    "hops",
    "spacing_km",
    "total_km",
    "rate_analytic",
    "rate_simulated",
    "rate_ci_low",
    "rate_ci_high",
    "rate_analytic_hz",
    "plob_bits_per_use",
    "plob_bits_per_s",
    "seed",
]


def _eq9(hops: int, spacing_km: Any) -> Any:
    """Eq. 9 with Fig. 5's q and m for ``hops`` equal hops of ``spacing_km`` (scalar or array)."""
    p = physics.link_success_probability(spacing_km, alpha_db_per_km=PAPER.alpha_db_per_km)
    return physics.chain_distribution_ratio(hops, p=p, q=FIG5_Q, memory=FIG5_M)


def _fig5_table(st: Settings, seeds: Seeds) -> pd.DataFrame:
    """Fig. 5 points: Eq. 9 and PLOB per (repeaters, spacing), and the Monte Carlo rate with its CI."""
    alpha, t_att = PAPER.alpha_db_per_km, PAPER.attempt_time_s
    spacings = [2.0, 6.0, 10.0, 14.0, 20.0] if st.quick else [float(s) for s in range(1, 21)]
    rows, specs = [], []
    for n_rep in FIG5_REPEATERS:
        k = n_rep + 1
        for sp in spacings:
            p = physics.link_success_probability(sp, alpha_db_per_km=alpha)
            seed = seeds.next()
            specs.append(rate_spec(k, p=p, q=FIG5_Q, memory=FIG5_M, cycles=st.cycles, seed=seed))
            lam = physics.chain_distribution_ratio(k, p=p, q=FIG5_Q, memory=FIG5_M)
            plob = physics.plob_bound(k * sp, alpha_db_per_km=alpha)
            rows.append(
                dict(
                    repeaters=n_rep,
                    hops=k,
                    spacing_km=sp,
                    total_km=k * sp,
                    rate_analytic=lam,
                    rate_analytic_hz=lam / t_att,
                    plob_bits_per_use=plob,
                    plob_bits_per_s=plob / t_att,
                    seed=seed,
                )
            )
    return with_estimates(rows, run_tasks(specs, st), RATE_COLUMNS)


def _fig5_plot(out: Path, df: pd.DataFrame) -> None:
    """``fig5.png``: Eq. 9 curves, simulated points and the repeaterless bound."""
    alpha, t_att = PAPER.alpha_db_per_km, PAPER.attempt_time_s
    fig, ax = new_axes(
        f"Fig. 5: q = 1, m = 1, alpha = {alpha} dB/km, spacing 0-20 km",
        "total distance L (km)",
        "end-to-end pairs per second (145 us per attempt)",
    )
    for color, n_rep in zip(colors(len(FIG5_REPEATERS)), FIG5_REPEATERS, strict=True):
        k = n_rep + 1
        sp_fine = np.linspace(0.2, 20, 100)
        ax.plot(k * sp_fine, np.asarray(_eq9(k, sp_fine)) / t_att, color=color, label=f"N = {n_rep} (Eq. 9)")
        sub = df[df.repeaters == n_rep]
        value, low, high = (sub[c] / t_att for c in RATE_COLUMNS)
        points(ax, sub.total_km, value, low, high, color, None)
    ll = np.linspace(1, 320, 300)
    ax.plot(
        ll,
        physics.plob_bound(ll, alpha_db_per_km=alpha) / t_att,
        "k--",
        lw=1,
        label=f"PLOB repeaterless, alpha = {alpha} dB/km",
    )
    ax.set_yscale("log")
    ax.set_ylim(1e-1, 1e5)
    ax.legend(fontsize=7)
    save(fig, out / "fig5.png")


def _falls_with_distance(df: pd.DataFrame) -> Trend:
    """Eq. 9 strictly decreasing in the spacing for every N, and the simulated points falling too."""
    fine = np.linspace(0.5, 20, 60)
    dec = all(np.all(np.diff(np.asarray(_eq9(n + 1, fine))) < 0) for n in FIG5_REPEATERS)
    sim_rho = min(spearman(g.spacing_km, g.rate_simulated) for _, g in df.groupby("repeaters"))
    return Trend(
        "fig5",
        "rate falls as the repeater spacing (distance) grows, for every N",
        bool(dec and sim_rho < 0),
        f"Eq. 9 strictly decreasing for all N; simulated Spearman rho <= {sim_rho:.2f}",
    )


def _decay_by_repeaters() -> Trend:
    """More repeaters: slower decay with distance, so a higher rate at L = 80 km."""
    repeaters = FIG5_REPEATERS
    slopes = {n: PAPER.alpha_db_per_km / (n + 1) for n in repeaters}
    lam_at = {n: float(_eq9(n + 1, 80.0 / (n + 1))) for n in repeaters}
    order_ok = all(lam_at[a] < lam_at[b] for a, b in zip(repeaters, repeaters[1:], strict=False))
    return Trend(
        "fig5",
        "small N: rate drops rapidly with distance; large N: more slowly",
        bool(order_ok),
        "decay of log10(rate) per 10 km of total distance: "
        + ", ".join(f"N={n}: {s:.3f}" for n, s in slopes.items())
        + "; rate at L = 80 km: "
        + ", ".join(f"N={n}: {v:.2e}/slot" for n, v in lam_at.items()),
    )


def _beats_plob() -> Trend:
    """Every chain with repeaters exceeds the repeaterless bound beyond some distance; the direct link never."""
    alpha = PAPER.alpha_db_per_km
    cross = {}
    for n in FIG5_REPEATERS[1:]:
        ll = np.linspace(0.5, 20 * (n + 1), 2000)
        beats = np.asarray(_eq9(n + 1, ll / (n + 1))) > physics.plob_bound(ll, alpha_db_per_km=alpha)
        cross[n] = float(ll[np.argmax(beats)]) if beats.any() else math.nan
    l_direct = np.linspace(0.5, 320.0, 2000)
    direct_never = bool(
        np.all(
            physics.link_success_probability(l_direct, alpha_db_per_km=alpha)
            <= physics.plob_bound(l_direct, alpha_db_per_km=alpha)
        )
    )
    return Trend(
        "fig5",
        "repeaters extend the range of secure communication (beyond the repeaterless bound)",
        bool(direct_never and all(np.isfinite(v) for v in cross.values())),
        "chain rate exceeds PLOB beyond L = "
        + ", ".join(f"{v:.1f} km (N={n})" for n, v in cross.items())
        + "; the direct link (N=0) never does",
    )


def _fig5_trends(df: pd.DataFrame) -> list[Trend]:
    """The trends the paper reads off Fig. 5, each checked on Eq. 9, PLOB and the simulated points."""
    return [
        _falls_with_distance(df),
        _decay_by_repeaters(),
        _beats_plob(),
        agreement_trend(
            "fig5",
            "simulation agrees with Eq. 9 (95% CI contains it)",
            df,
            "rate_analytic",
            "rate_ci_low",
            "rate_ci_high",
        ),
    ]


def fig5(out: Path, st: Settings, seeds: Seeds) -> tuple[pd.DataFrame, list[Trend]]:
    """Fig. 5: ``fig5.png`` written into ``out``; returns the plotted table and the checked trends."""
    df = _fig5_table(st, seeds)
    _fig5_plot(out, df)
    return df[FIG5_COLUMNS], _fig5_trends(df)
