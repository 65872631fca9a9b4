"""The driver of the cluster-paper reproduction: every figure in order, the model-vs-protocol table,
the readings, and the ``README.md`` that states the parameters and the computed trend checks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from reports.reproduce_cluster.common import PAPER, Seeds, Settings, Trend
from reports.reproduce_cluster.fig5 import fig5
from reports.reproduce_cluster.fig6 import FIG6A_HOPS, FIG6A_Q, FIG6B_CURVES, FIG6B_R, FIG6B_SLAVES, fig6a, fig6b, fig6c
from reports.reproduce_cluster.fig7 import FIG7A_MAX_N, fig7a, fig7b
from reports.reproduce_cluster.protocols import model_vs_simulation
from reports.reproduce_cluster.readings import readings_outputs

logger = logging.getLogger(__name__)

FIGURES = ("fig5", "fig6a", "fig6b", "fig6c", "fig7a", "fig7b")

_BUILDERS: dict[str, Callable[[Path, Settings, Seeds], tuple[pd.DataFrame, list[Trend]]]] = {
    "fig5": fig5,
    "fig6a": fig6a,
    "fig6b": fig6b,
    "fig6c": fig6c,
    "fig7a": fig7a,
    "fig7b": fig7b,
}


def _parameters(st: Settings) -> list[str]:
    """The README's two parameter sections: what the paper states and what is chosen here."""
    return [
        "## Parameters stated in the paper",
        "",
        f"- fibre loss alpha = {PAPER.alpha_db_per_km:g} dB/km (NV platform), Eq. 7",
        f"- Bell-state measurement t_mea = {PAPER.t_mea_s * 1e6:g} us, retrieval t_ret = {PAPER.t_ret_s * 1e6:g} us",
        f"- one link-generation attempt = {PAPER.attempt_time_s * 1e6:g} us (used to turn pairs per slot into pairs "
        "per "
        "second in Fig. 5); Figs. 6a/7b use d/s per attempt as Eq. 8 does",
        "- Fig. 5: q = 1, spacing 0-20 km; Fig. 6c: k = 21; Fig. 7a: 200 km, q in {0.3, 0.6, 0.9};"
        " Fig. 7b: q = 0.6, N = 5 repeaters",
        "",
        "## Parameters chosen here (the paper does not state them)",
        "",
        "- photon speed in fibre s = 2e5 km/s in Eq. 8 (the paper names s but gives no value)",
        "- memory units per edge m = 1 in Figs. 5, 6c, 7a (rates scale linearly with m in Eq. 9)",
        "- Fig. 5: N in {0, 1, 3, 7, 15} repeaters, x axis = total distance (N+1) x spacing; "
        f"PLOB repeaterless bound at alpha = {PAPER.alpha_db_per_km:g} dB/km, one channel use per "
        f"{PAPER.attempt_time_s * 1e6:g} us attempt",
        f"- Fig. 6a: k = {FIG6A_HOPS} hops, q = {FIG6A_Q}, spacing in {{5, 10, 15, 20}} km, "
        "m = 1..10; y = Eq. 10 latency of one end-to-end pair; simulated = mean time to the "
        "first pair in the slot-level simulator (m units per hop end, nested swaps)",
        f"- Fig. 6b: {FIG6B_SLAVES} slaves (M = 2), R_mdi = R_ekr = {FIG6B_R}, N_m = N_s = N, "
        "(N, EPR rate) in "
        + ", ".join(f"({n}, {r:g}/s)" for n, r in FIG6B_CURVES)
        + "; model in `planner/simulate/access.py` (fill memory, then measure newest first, "
        "1.14 ms per qubit, qubit lost if not measured within the lifetime)",
        "- Fig. 6c: spacing in {2, 5, 10} km",
        f"- Fig. 7a: N = 1..{FIG7A_MAX_N}, equal spacing 200/(N+1) km",
        "- Fig. 7b: spacing in {10, 20} km, 1-3 senders sharing the S memory units of each "
        "edge (Eq. 10 with m = S/senders); simulated = time until one end-to-end pair per "
        "sender has been delivered",
        f"- Monte Carlo: Eq. 9 points use the renewal estimator `simulate_chain_rate` with "
        f"{st.cycles} cycles; slot-level points use {st.trials} trials x {st.slots} slots "
        f"(first {st.slots // 10} slots are warm-up for rates); `model_vs_simulation.csv` uses "
        f"{2 * st.cycles} cycles and {st.trials} trials x {3 * st.slots} slots",
        "- Monte Carlo seeds: one integer per point from `numpy.random.SeedSequence(seed)`, in "
        "the order fig5, fig6a, fig6b, fig6c, fig7a, fig7b, model_vs_simulation",
        "",
    ]


def _trend_section(trends: list[Trend]) -> list[str]:
    """The README's table of the paper's described trends, one row per computed check."""
    lines = [
        "## Does the paper's described trend hold? (computed)",
        "",
        "| figure | claim | holds | evidence |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t.figure} | {t.claim} | {'yes' if t.holds else 'NO'} | {t.evidence} |" for t in trends]
    return lines + [
        "",
        "Where a row says NO, the numbers in its evidence column are what the formulas as "
        "printed give; see `docs/cluster_model_vs_simulation.md` for the derivation of "
        "Eq. 9 and the comparison with the physical protocol.",
        "",
    ]


def _readings_section(verdicts: pd.DataFrame) -> list[str]:
    """The README's table of Figs. 7a and 6a under every reading (rows of ``readings.csv``)."""
    lines = [
        "## Figs. 7a and 6a under every reading (computed)",
        "",
        "The paper does not say which quantity its 'key rate' (Fig. 7a) and latency "
        "(Fig. 6a) are: Eq. 9's lambda per slot, the rate 1 / (sum t_i / lambda), or the "
        "full Eq. 10. All three are computed (`fig7a_readings.csv`, "
        "`fig6a_readings.csv`, plots `fig7a_readings.png`, `fig6a_readings.png`); no "
        "single reading is taken as the paper's.",
        "",
        "| figure | reading | curve | caption says | trend computed | matches the caption? |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.figure} | {r.reading} | {r.curve} | {r.caption} | {r.trend} | {'yes' if r.matches else 'NO'} |"
        for r in verdicts.itertuples()
    ]
    return lines + [""]


def _readme(st: Settings, trends: list[Trend], verdicts: pd.DataFrame | None = None) -> str:
    """``README.md``: how the run was made, the parameters, the trend checks and (with ``verdicts``) the readings."""
    lines = [
        "# Cluster paper (Li, Xue et al. 2022): reproduction of Figs. 5-7",
        "",
        f"Generated by `qkdplan reproduce cluster` with seed {st.seed}"
        + (" in quick mode (fewer points and trials)." if st.quick else "."),
        "Every PNG shows the analytic curve (lines) and Monte Carlo points with 95% confidence "
        "intervals; every CSV holds the plotted numbers (the `seed` column, where present, is "
        "the seed of that point's Monte Carlo batch, derived from the run seed).",
        "",
        *_parameters(st),
        *_trend_section(trends),
    ]
    if verdicts is not None:
        lines += _readings_section(verdicts)
    return "\n".join(lines)


def reproduce_cluster(out_dir: Path, *, seed: int = 0, quick: bool = False) -> list[Path]:
    """Write Figs. 5, 6a, 6b, 6c, 7a, 7b of the cluster paper into ``out_dir``.

    For each figure ``figX.png`` and ``figX.csv``; also ``trends.csv`` (one row per
    checked claim: figure, claim, holds, evidence), ``model_vs_simulation.csv`` (Eq. 9/10
    against the simulated protocols: finite memory, schedules, cutoff, unequal hops), the
    readings of Figs. 7a and 6a (:func:`reports.reproduce_cluster.readings.readings_outputs`) and
    ``README.md`` (parameters and the trend table). Returns the written paths. ``quick=True`` uses
    fewer points and trials (seconds, for CI); the full run uses the local process pool of
    :func:`planner.runtime.parallel.map_tasks`. All Monte Carlo seeds derive from ``seed``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    st = Settings(
        quick=quick,
        seed=int(seed),
        cycles=2_000 if quick else 10_000,
        trials=60 if quick else 300,
        slots=150 if quick else 400,
        backend="serial" if quick else "process",
    )
    seeds = Seeds(int(seed))
    paths: list[Path] = []
    trends: list[Trend] = []
    for name in FIGURES:
        logger.info("reproducing %s", name)
        df, tr = _BUILDERS[name](out, st, seeds)
        csv = out / f"{name}.csv"
        df.to_csv(csv, index=False)
        paths += [out / f"{name}.png", csv]
        trends += tr
    mvs = out / "model_vs_simulation.csv"
    model_vs_simulation(st, seeds).to_csv(mvs, index=False)
    paths.append(mvs)
    tpath = out / "trends.csv"
    pd.DataFrame([t.__dict__ for t in trends]).to_csv(tpath, index=False)
    paths += readings_outputs(out)
    verdicts = pd.read_csv(out / "readings.csv")
    readme = out / "README.md"
    readme.write_text(_readme(st, trends, verdicts), encoding="utf-8")
    paths += [tpath, readme]
    return paths
