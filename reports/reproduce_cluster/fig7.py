"""Figs. 7a and 7b of the cluster paper: rate against the number of repeaters on 200 km (Eq. 9), and
the time for several senders sharing the memory of each edge (Eq. 10)."""

from __future__ import annotations

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

# --------------------------------------------------------------------------- Fig. 7a

FIG7A_TOTAL_KM, FIG7A_QS, FIG7A_MAX_N = 200.0, (0.3, 0.6, 0.9), 63
#: Columns of ``fig7a.csv``, in order.
FIG7A_COLUMNS = [
    "q",
    "repeaters",
    "hops",
    "spacing_km",
    "rate_analytic",
    "rate_simulated",
    "rate_ci_low",
    "rate_ci_high",
]


def fig7a_analytic(n_rep: Any, q: float) -> Any:
    """Eq. 9 (m = 1) for ``n_rep`` repeaters spaced equally on :data:`FIG7A_TOTAL_KM` (scalar or array)."""
    k = np.asarray(n_rep) + 1
    p = physics.link_success_probability(FIG7A_TOTAL_KM / k, alpha_db_per_km=PAPER.alpha_db_per_km)
    return physics.chain_distribution_ratio(k, p=p, q=q, memory=1)


def _fig7a_table(st: Settings, seeds: Seeds) -> pd.DataFrame:
    """Fig. 7a points: Eq. 9 per (q, repeaters), and the Monte Carlo rate with its CI."""
    n_list = [1, 3, 7, 10, 15, 20, 25, 30, 31, 40, 50, 63] if st.quick else list(range(1, FIG7A_MAX_N + 1))
    rows, specs = [], []
    for q in FIG7A_QS:
        for n_rep in n_list:
            k = n_rep + 1
            sp = FIG7A_TOTAL_KM / k
            p = physics.link_success_probability(sp, alpha_db_per_km=PAPER.alpha_db_per_km)
            specs.append(rate_spec(k, p=p, q=q, memory=1, cycles=st.cycles, seed=seeds.next()))
            rows.append(
                dict(q=q, repeaters=n_rep, hops=k, spacing_km=sp, rate_analytic=float(fig7a_analytic(n_rep, q)))
            )
    return with_estimates(rows, run_tasks(specs, st), RATE_COLUMNS)[FIG7A_COLUMNS]


def _fig7a_plot(out: Path, df: pd.DataFrame) -> None:
    """``fig7a.png``: Eq. 9 against N per q, simulated points, and PLOB at 200 km."""
    alpha = PAPER.alpha_db_per_km
    fig, ax = new_axes(
        f"Fig. 7a: total {FIG7A_TOTAL_KM:g} km, m = 1, alpha = {alpha} dB/km",
        "number of repeaters N",
        "end-to-end pairs per attempt slot",
    )
    all_n = np.arange(1, FIG7A_MAX_N + 1)
    for color, q in zip(colors(len(FIG7A_QS)), FIG7A_QS, strict=True):
        ax.plot(all_n, fig7a_analytic(all_n, q), color=color, label=f"Eq. 9, q = {q}")
        sub = df[df.q == q]
        value, low, high = (sub[c] for c in RATE_COLUMNS)
        points(ax, sub.repeaters, value, low, high, color, None)
    ax.axhline(
        physics.plob_bound(FIG7A_TOTAL_KM, alpha_db_per_km=alpha),
        color="k",
        ls="--",
        lw=1,
        label=f"PLOB repeaterless at {FIG7A_TOTAL_KM:g} km, alpha = {alpha} dB/km",
    )
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    save(fig, out / "fig7a.png")


def _fig7a_curve_trends() -> list[Trend]:
    """The caption's claim for each q curve, checked on Eq. 9 (lambda per slot) over N = 1..63."""
    all_n = np.arange(1, FIG7A_MAX_N + 1)
    lam = {q: fig7a_analytic(all_n, q) for q in FIG7A_QS}

    def at(q: float, n: int) -> float:
        return float(lam[q][n - 1])

    inc_steps = float(np.mean(np.diff(lam[0.9]) > 0))
    l6 = lam[0.6]
    up6 = at(0.6, 30) > at(0.6, 1) and spearman(all_n[:30], l6[:30]) > 0.9
    flat6 = abs(at(0.6, 63) / at(0.6, 30) - 1) < 0.25
    arg3 = int(all_n[np.argmax(lam[0.3])])
    return [
        Trend(
            "fig7a",
            "q = 0.9: the rate increases with the number of repeaters [reading: lambda per slot]",
            bool(inc_steps == 1.0),
            f"{inc_steps:.0%} of steps N -> N+1 increase; rate N=1 {at(0.9, 1):.2e}, N=30 "
            f"{at(0.9, 30):.2e}, N=63 {at(0.9, 63):.2e}",
        ),
        Trend(
            "fig7a",
            "q = 0.6: rises up to N = 30, then no significant change [reading: lambda per slot]",
            bool(up6 and flat6),
            f"argmax N = {int(all_n[np.argmax(l6)])}; rate N=30 {at(0.6, 30):.2e}, N=63 "
            f"{at(0.6, 63):.2e} (ratio {at(0.6, 63) / at(0.6, 30):.2f}); minimum over N>30 is "
            f"{l6[30:].min() / l6.max():.2f} of the peak",
        ),
        Trend(
            "fig7a",
            "q = 0.3: falls beyond about N = 30 (multiple swaps dominate) [reading: lambda per slot]",
            bool(at(0.3, 63) < at(0.3, 30)),
            f"rate N=30 {at(0.3, 30):.2e} -> N=63 {at(0.3, 63):.2e} (x{at(0.3, 63) / at(0.3, 30):.2f})",
        ),
        Trend(
            "fig7a",
            "q = 0.3: same trend as q = 0.6 for N <= 30 (rising up to N = 30) [reading: lambda per slot]",
            bool(arg3 >= 25),
            f"with Eq. 9 as printed q = 0.3 peaks already at N = {arg3} ({at(0.3, arg3):.2e}); "
            f"at N = 30 it is {at(0.3, 30) / at(0.3, arg3):.2f} of that peak",
        ),
    ]


def fig7a(out: Path, st: Settings, seeds: Seeds) -> tuple[pd.DataFrame, list[Trend]]:
    """Fig. 7a: ``fig7a.png`` written into ``out``; returns the plotted table (:data:`FIG7A_COLUMNS`)
    and the checked trends."""
    df = _fig7a_table(st, seeds)
    _fig7a_plot(out, df)
    agrees = agreement_trend(
        "fig7a", "simulation agrees with Eq. 9", df, "rate_analytic", "rate_ci_low", "rate_ci_high"
    )
    return df, [*_fig7a_curve_trends(), agrees]


# --------------------------------------------------------------------------- Fig. 7b


FIG7B_Q, FIG7B_REPEATERS = 0.6, 5
FIG7B_CASES = [(10.0, 1), (10.0, 2), (10.0, 3), (20.0, 1), (20.0, 2), (20.0, 3)]
_FIG7B_TIMES = ("time_simulated_s", "time_ci_low", "time_ci_high")


def _fig7b_table(st: Settings, seeds: Seeds) -> pd.DataFrame:
    """Fig. 7b points: Eq. 10 (m = S / senders) per (spacing, senders, S), and the simulated time until
    every sender has one pair, with its CI."""
    k = FIG7B_REPEATERS + 1
    memories = [3, 6, 10] if st.quick else [3, 4, 5, 6, 7, 8, 9, 10]
    rows, specs = [], []
    for sp, senders in FIG7B_CASES:
        for mem in memories:
            seed = seeds.next()
            specs.append(
                chain_spec(
                    [sp] * k, q=FIG7B_Q, memory=mem, slots=st.slots, trials=st.trials, seed=seed, pairs_needed=senders
                )
            )
            t10 = physics.chain_latency_s(
                [sp] * k, q=FIG7B_Q, memory=mem / senders, alpha_db_per_km=PAPER.alpha_db_per_km
            )
            rows.append(dict(spacing_km=sp, senders=senders, memory=mem, hops=k, q=FIG7B_Q, time_eq10_s=t10, seed=seed))
    res = run_tasks(specs, st)
    df = with_estimates(rows, res, _FIG7B_TIMES)
    df["censored_fraction"] = [r["censored"] for r in res]
    return df


def _fig7b_plot(out: Path, df: pd.DataFrame) -> None:
    """``fig7b.png``: Eq. 10 against S per case (solid 10 km, dashed 20 km), with the simulated times."""
    fig, ax = new_axes(
        f"Fig. 7b: q = {FIG7B_Q}, N = {FIG7B_REPEATERS} repeaters, senders share S units per edge",
        "memory size S per edge",
        "time to complete one key agreement per sender (s)",
    )
    for color, (sp, senders) in zip(colors(len(FIG7B_CASES)), FIG7B_CASES, strict=True):
        sub = df[(df.spacing_km == sp) & (df.senders == senders)]
        ls = "-" if sp == 10.0 else "--"
        ax.plot(sub.memory, sub.time_eq10_s, ls, color=color, label=f"Eq. 10, {sp:g} km, {senders} sender(s)")
        value, low, high = (sub[c] for c in _FIG7B_TIMES)
        points(ax, sub.memory, value, low, high, color, None)
    ax.set_yscale("log")
    ax.legend(fontsize=6, ncol=2)
    save(fig, out / "fig7b.png")


def _fig7b_trends(df: pd.DataFrame) -> list[Trend]:
    """Fig. 7b's claims, on Eq. 10 and on the simulation, at S = 6 (or the middle S): more senders take
    a little more time; distance changes the time more."""
    memories = sorted(df.memory.unique().tolist())
    s_ref = 6 if 6 in memories else memories[len(memories) // 2]

    def val(col: str, sp: float, senders: int) -> float:
        sel = df[(df.spacing_km == sp) & (df.senders == senders) & (df.memory == s_ref)]
        return float(sel[col].iloc[0])

    trends = []
    for col, name in (("time_eq10_s", "Eq. 10"), ("time_simulated_s", "simulated")):
        more = all(val(col, sp, 1) < val(col, sp, 2) < val(col, sp, 3) for sp in (10.0, 20.0))
        sender_ratio = val(col, 10.0, 3) / val(col, 10.0, 1)
        dist_ratio = val(col, 20.0, 1) / val(col, 10.0, 1)
        trends.append(
            Trend(
                "fig7b",
                f"more senders take more time, but the difference is small ({name})",
                bool(more and sender_ratio < dist_ratio),
                f"S = {s_ref}, 10 km: 3 senders / 1 sender = {sender_ratio:.2f}; increasing in "
                f"senders at both distances: {more}",
            )
        )
        trends.append(
            Trend(
                "fig7b",
                f"at equal memory, distance changes the time much more ({name})",
                bool(dist_ratio > sender_ratio),
                f"S = {s_ref}, 1 sender: 20 km / 10 km = {dist_ratio:.2f} vs senders ratio {sender_ratio:.2f}",
            )
        )
    return trends


def fig7b(out: Path, st: Settings, seeds: Seeds) -> tuple[pd.DataFrame, list[Trend]]:
    """Fig. 7b: ``fig7b.png`` written into ``out``; returns the plotted table and the checked trends."""
    df = _fig7b_table(st, seeds)
    _fig7b_plot(out, df)
    return df, _fig7b_trends(df)
