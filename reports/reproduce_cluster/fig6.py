"""Figs. 6a-6c of the cluster paper: latency against memory (Eq. 10), access keys against memory
lifetime (Eq. 6 and the exact expectation of the access protocol), and rate against swap success (Eq. 9)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from planner import physics
from planner.simulate.access import cluster_keys_analytic
from reports.reproduce_cluster.common import (
    PAPER,
    RATE_COLUMNS,
    Seeds,
    Settings,
    Trend,
    agreement_trend,
    chain_spec,
    colors,
    new_axes,
    points,
    rate_spec,
    run_tasks,
    save,
    spearman,
    with_estimates,
)

# --------------------------------------------------------------------------- Fig. 6a

FIG6A_HOPS, FIG6A_Q = 4, 0.9
#: Fig. 6a: hop lengths (km), one curve each.
FIG6A_SPACINGS = [5.0, 10.0, 15.0, 20.0]
_FIG6A_TIMES = ("time_first_pair_sim_s", "time_ci_low", "time_ci_high")


def _fig6a_table(st: Settings, seeds: Seeds) -> pd.DataFrame:
    """Fig. 6a points: Eq. 10 per (spacing, memory), and the simulated time to the first pair with its CI."""
    alpha = PAPER.alpha_db_per_km
    memories = [1, 2, 4, 7, 10] if st.quick else list(range(1, 11))
    rows, specs = [], []
    for sp in FIG6A_SPACINGS:
        for m in memories:
            seed = seeds.next()
            distances = [sp] * FIG6A_HOPS
            specs.append(chain_spec(distances, q=FIG6A_Q, memory=m, slots=st.slots, trials=st.trials, seed=seed))
            t10 = physics.chain_latency_s(distances, q=FIG6A_Q, memory=m, alpha_db_per_km=alpha)
            rows.append(dict(spacing_km=sp, memory=m, hops=FIG6A_HOPS, q=FIG6A_Q, latency_eq10_s=t10, seed=seed))
    res = run_tasks(specs, st)
    df = with_estimates(rows, res, _FIG6A_TIMES)
    df["censored_fraction"] = [r["censored"] for r in res]
    df["time_between_pairs_sim_s"] = [
        r["attempt_time_s"] / r["rate_per_slot"] if r["rate_per_slot"] > 0 else math.inf for r in res
    ]
    return df


def _fig6a_plot(out: Path, df: pd.DataFrame) -> None:
    """``fig6a.png``: Eq. 10 curves and the simulated times to the first pair."""
    fig, ax = new_axes(
        f"Fig. 6a: k = {FIG6A_HOPS} hops, q = {FIG6A_Q}, alpha = {PAPER.alpha_db_per_km} dB/km",
        "memory units per edge m",
        "time to one end-to-end pair (s)",
    )
    for color, sp in zip(colors(len(FIG6A_SPACINGS)), FIG6A_SPACINGS, strict=True):
        sub = df[df.spacing_km == sp]
        ax.plot(sub.memory, sub.latency_eq10_s, color=color, label=f"Eq. 10, {sp:g} km")
        value, low, high = (sub[c] for c in _FIG6A_TIMES)
        points(ax, sub.memory, value, low, high, color, f"simulated first pair, {sp:g} km")
    ax.set_yscale("log")
    ax.legend(fontsize=6, ncol=2)
    save(fig, out / "fig6a.png")


def _memory_drop(df: pd.DataFrame, col: str) -> dict[float, float]:
    """Per spacing: ``col`` at the smallest memory minus ``col`` at the largest."""
    return {
        sp: float(g.sort_values("memory")[col].iloc[0] - g.sort_values("memory")[col].iloc[-1])
        for sp, g in df.groupby("spacing_km")
    }


def _fig6a_trends(df: pd.DataFrame) -> list[Trend]:
    """Fig. 6a's claims: time falls with memory, more so for longer hops; and Eq. 10 against the simulation."""
    dec_a = all(np.all(np.diff(g.sort_values("memory").latency_eq10_s) < 0) for _, g in df.groupby("spacing_km"))
    dec_s = all(spearman(g.memory, g.time_first_pair_sim_s) < 0 for _, g in df.groupby("spacing_km"))
    da, ds = _memory_drop(df, "latency_eq10_s"), _memory_drop(df, "time_first_pair_sim_s")
    grow_a = all(np.diff([da[s] for s in FIG6A_SPACINGS]) > 0)
    grow_s = all(np.diff([ds[s] for s in FIG6A_SPACINGS]) > 0)
    ratio = df.latency_eq10_s / df.time_first_pair_sim_s
    return [
        Trend(
            "fig6a",
            "time falls as memory size grows (fixed distance)",
            bool(dec_a and dec_s),
            f"Eq. 10 strictly decreasing in m: {dec_a}; simulated decreasing "
            f"(Spearman < 0) for every distance: {dec_s}",
        ),
        Trend(
            "fig6a",
            "the decline with memory is steeper for longer distances",
            bool(grow_a and grow_s),
            "T(m=min) - T(m=max), Eq. 10: "
            + ", ".join(f"{s:g} km {v * 1e3:.2f} ms" for s, v in da.items())
            + "; simulated: "
            + ", ".join(f"{s:g} km {v * 1e3:.2f} ms" for s, v in ds.items()),
        ),
        Trend(
            "fig6a",
            "Eq. 10 matches the simulated time to the first pair",
            bool(np.all((ratio > 0.8) & (ratio < 1.25))),
            f"Eq. 10 / simulated ranges {ratio.min():.2f}-{ratio.max():.2f} "
            "(Eq. 10 adds up the k hops' times although the hops work in parallel, and "
            "counts 1/p twice: t_i = (d/s)/p and lam contains p again)",
        ),
    ]


def fig6a(out: Path, st: Settings, seeds: Seeds) -> tuple[pd.DataFrame, list[Trend]]:
    """Fig. 6a: ``fig6a.png`` written into ``out``; returns the plotted table and the checked trends."""
    df = _fig6a_table(st, seeds)
    _fig6a_plot(out, df)
    return df, _fig6a_trends(df)


# --------------------------------------------------------------------------- Fig. 6b


FIG6B_CURVES = [(10, 1e3), (10, 1e4), (20, 1e4)]
FIG6B_SLAVES, FIG6B_R = 4, 0.5
_FIG6B_KEYS = ("keys_simulated", "keys_ci_low", "keys_ci_high")


def _fig6b_kwargs(n_mem: int, rate_hz: float) -> dict[str, Any]:
    """Keywords of :func:`cluster_keys_analytic` for one curve: N memory units at master and slaves, EPR rate."""
    return dict(
        r_mdi=FIG6B_R,
        r_ekr=FIG6B_R,
        t_mea_s=PAPER.t_mea_s,
        t_ret_s=PAPER.t_ret_s,
        memory_master=n_mem,
        memory_slave=n_mem,
        epr_rate_hz=rate_hz,
    )


def _fig6b_eq6(n_mem: int) -> float:
    """Eq. 6 (infinite lifetime) for Fig. 6b's cluster with ``n_mem`` units at master and slaves."""
    return float(
        physics.cluster_keys_per_attempt(
            FIG6B_SLAVES, r_mdi=FIG6B_R, r_ekr=FIG6B_R, memory_master=n_mem, memory_slave=n_mem
        )
    )


def _fig6b_curve(n_mem: int, rate_hz: float, lifetimes_s: Any) -> np.ndarray:
    """The exact expected keys per slot at every lifetime of ``lifetimes_s``."""
    kw = _fig6b_kwargs(n_mem, rate_hz)
    return np.array([cluster_keys_analytic(FIG6B_SLAVES, lifetime_s=t, **kw) for t in lifetimes_s])


def _fig6b_fine(df: pd.DataFrame) -> np.ndarray:
    """The lifetimes (s) of the analytic curves: up to the longest simulated lifetime."""
    return np.linspace(0.2e-3, df.lifetime_s.max(), 120)


def _fig6b_table(st: Settings, seeds: Seeds) -> pd.DataFrame:
    """Fig. 6b points: exact expectation and Eq. 6 per (curve, lifetime), and the simulated keys with their CI."""
    lifetimes = (
        np.array([1, 4, 10, 20, 40]) if st.quick else np.array([0.5, 1, 2, 4, 6, 8, 10, 14, 18, 24, 30, 40, 50])
    ) * 1e-3
    rows, specs = [], []
    for n_mem, rate in FIG6B_CURVES:
        kw = _fig6b_kwargs(n_mem, rate)
        eq6 = _fig6b_eq6(n_mem)
        for life in lifetimes:
            seed = seeds.next()
            spec = dict(kind="access", n_slaves=FIG6B_SLAVES, lifetime_s=float(life), slots=st.trials * 10, seed=seed)
            specs.append(dict(spec, **kw))
            rows.append(
                dict(
                    memory=n_mem,
                    epr_rate_hz=rate,
                    lifetime_s=float(life),
                    keys_analytic=cluster_keys_analytic(FIG6B_SLAVES, lifetime_s=float(life), **kw),
                    eq6_infinite_lifetime=eq6,
                    seed=seed,
                )
            )
    return with_estimates(rows, run_tasks(specs, st), _FIG6B_KEYS)


def _fig6b_plot(out: Path, df: pd.DataFrame) -> None:
    """``fig6b.png``: exact curves, simulated points and Eq. 6 as a dotted level per curve."""
    fig, ax = new_axes(
        f"Fig. 6b: {FIG6B_SLAVES} slaves, R_mdi = R_ekr = {FIG6B_R}, t_mea + t_ret = 1.14 ms",
        "memory lifetime (ms)",
        "key bits per time slot (attempt)",
    )
    fine = _fig6b_fine(df)
    for color, (n_mem, rate) in zip(colors(len(FIG6B_CURVES)), FIG6B_CURVES, strict=True):
        ax.plot(
            fine * 1e3,
            _fig6b_curve(n_mem, rate, fine),
            color=color,
            label=f"N = {n_mem}, EPR rate {rate:g}/s (exact)",
        )
        sub = df[(df.memory == n_mem) & (df.epr_rate_hz == rate)]
        value, low, high = (sub[c] for c in _FIG6B_KEYS)
        points(ax, sub.lifetime_s * 1e3, value, low, high, color, None)
        ax.axhline(sub.eq6_infinite_lifetime.iloc[0], color=color, ls=":", lw=0.8)
    ax.legend(fontsize=7)
    save(fig, out / "fig6b.png")


def _grows_then_levels(fine: np.ndarray) -> Trend:
    """Every curve is non-decreasing, about linear below half of Eq. 6, and at Eq. 6 after 1 s."""
    mono, linear, sat = [], [], []
    for n_mem, rate in FIG6B_CURVES:
        eq6 = _fig6b_eq6(n_mem)
        y = _fig6b_curve(n_mem, rate, fine)
        mono.append(bool(np.all(np.diff(y) >= -1e-12)))
        early = y < 0.5 * eq6
        r2 = stats.linregress(fine[early], y[early]).rvalue ** 2 if early.sum() > 3 else math.nan
        linear.append(r2)
        sat.append(float(_fig6b_curve(n_mem, rate, [1.0])[0]) / eq6)
    return Trend(
        "fig6b",
        "keys per slot first grow (about linearly) with lifetime, then level off",
        bool(all(mono) and all(r > 0.97 for r in linear) and all(s > 0.999 for s in sat)),
        "non-decreasing: "
        + str(all(mono))
        + "; R^2 of a line below half of Eq. 6: "
        + ", ".join(f"{r:.3f}" for r in linear)
        + "; value at 1 s / Eq. 6: "
        + ", ".join(f"{s:.4f}" for s in sat),
    )


def _fig6b_trends(df: pd.DataFrame) -> list[Trend]:
    """Fig. 6b's claims: growth then saturation with lifetime, more keys with a faster EPR source, and
    the simulation against the exact expectation."""
    mid = 8e-3
    lo_rate = float(_fig6b_curve(10, 1e3, [mid])[0])
    hi_rate = float(_fig6b_curve(10, 1e4, [mid])[0])
    return [
        _grows_then_levels(_fig6b_fine(df)),
        Trend(
            "fig6b",
            "a higher EPR distribution rate gives more keys per slot",
            bool(hi_rate > lo_rate),
            f"at {mid * 1e3:g} ms, N = 10: {lo_rate:.2f} (1e3/s) vs {hi_rate:.2f} (1e4/s)",
        ),
        agreement_trend(
            "fig6b", "simulation agrees with the exact expectation", df, "keys_analytic", "keys_ci_low", "keys_ci_high"
        ),
    ]


def fig6b(out: Path, st: Settings, seeds: Seeds) -> tuple[pd.DataFrame, list[Trend]]:
    """Fig. 6b: ``fig6b.png`` written into ``out``; returns the plotted table and the checked trends."""
    df = _fig6b_table(st, seeds)
    _fig6b_plot(out, df)
    return df, _fig6b_trends(df)


# --------------------------------------------------------------------------- Fig. 6c


FIG6C_HOPS = 21
#: Fig. 6c: hop lengths (km), one curve each.
FIG6C_SPACINGS = [2.0, 5.0, 10.0]


def _fig6c_eq9(spacing_km: float, q: Any) -> Any:
    """Eq. 9 for Fig. 6c's chain (k = 21, m = 1) of hops ``spacing_km`` at swap success ``q``."""
    p = physics.link_success_probability(spacing_km, alpha_db_per_km=PAPER.alpha_db_per_km)
    return physics.chain_distribution_ratio(FIG6C_HOPS, p=p, q=q, memory=1)


def _fig6c_table(st: Settings, seeds: Seeds) -> pd.DataFrame:
    """Fig. 6c points: Eq. 9 per (spacing, q), and the Monte Carlo rate with its CI."""
    qs = [0.2, 0.5, 0.8, 1.0] if st.quick else [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    rows, specs = [], []
    for sp in FIG6C_SPACINGS:
        p = physics.link_success_probability(sp, alpha_db_per_km=PAPER.alpha_db_per_km)
        for q in qs:
            seed = seeds.next()
            specs.append(rate_spec(FIG6C_HOPS, p=p, q=q, memory=1, cycles=st.cycles, seed=seed))
            rows.append(dict(spacing_km=sp, hops=FIG6C_HOPS, q=q, rate_analytic=_fig6c_eq9(sp, q), seed=seed))
    return with_estimates(rows, run_tasks(specs, st), RATE_COLUMNS)


def _fig6c_plot(out: Path, df: pd.DataFrame, fine: np.ndarray) -> None:
    """``fig6c.png``: Eq. 9 against q per spacing, with the simulated points."""
    fig, ax = new_axes(
        f"Fig. 6c: k = {FIG6C_HOPS}, m = 1, alpha = {PAPER.alpha_db_per_km} dB/km",
        "swap success probability q",
        "end-to-end pairs per attempt slot",
    )
    for color, sp in zip(colors(len(FIG6C_SPACINGS)), FIG6C_SPACINGS, strict=True):
        ax.plot(fine, _fig6c_eq9(sp, fine), color=color, label=f"Eq. 9, spacing {sp:g} km")
        sub = df[df.spacing_km == sp]
        value, low, high = (sub[c] for c in RATE_COLUMNS)
        points(ax, sub.q, value, low, high, color, None)
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    save(fig, out / "fig6c.png")


def fig6c(out: Path, st: Settings, seeds: Seeds) -> tuple[pd.DataFrame, list[Trend]]:
    """Fig. 6c: ``fig6c.png`` written into ``out``; returns the plotted table and the checked trends
    (the rate rises with q; the simulation agrees with Eq. 9)."""
    df = _fig6c_table(st, seeds)
    fine = np.linspace(0.05, 1.0, 100)
    _fig6c_plot(out, df, fine)
    inc = all(np.all(np.diff(_fig6c_eq9(sp, fine)) > 0) for sp in FIG6C_SPACINGS)
    rho = min(spearman(g.q, g.rate_simulated) for _, g in df.groupby("spacing_km"))
    g05 = physics.chain_factor(FIG6C_HOPS, q=0.5)
    trends = [
        Trend(
            "fig6c",
            "with k = 21 and fixed spacing the rate rises with q",
            bool(inc and rho > 0),
            f"Eq. 9 strictly increasing in q; simulated Spearman rho >= {rho:.2f}; "
            f"rate(q=1)/rate(q=0.5) = {1 / g05:.0f}",
        ),
        agreement_trend("fig6c", "simulation agrees with Eq. 9", df, "rate_analytic", "rate_ci_low", "rate_ci_high"),
    ]
    return df, trends
