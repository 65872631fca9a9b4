"""What every figure of the cluster-paper reproduction shares: run settings, seeds, the Monte
Carlo task specs and their pool runner, the trend record, and the plotting helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from scipy import stats

from planner import physics
from planner.runtime.parallel import map_tasks
from planner.simulate.access import simulate_cluster_keys_per_attempt
from planner.simulate.chain import simulate_chain, simulate_chain_rate

PAPER = physics.PAPER_NV_PHYSICS
"""Parameters the paper states (Sect. 3-4): the NV platform's fibre loss 0.4 dB/km, t_mea 100 us,
t_ret 1040 us and 145 us per attempt, as the one physics parameter object; its photon speed ``s``
of Eq. 8, which the paper uses but does not state, is light in fibre (2e5 km/s, chosen here). Every
figure states its own swap success ``q`` (the ``FIG*_Q`` constants) and memory."""

#: Confidence level of every Monte Carlo interval.
LEVEL = 0.95

#: Column names of a Monte Carlo estimate ``(value, low, high)`` for a rate and for a time.
RATE_COLUMNS = ("rate_simulated", "rate_ci_low", "rate_ci_high")


@dataclass(frozen=True)
class Settings:
    """Sizes of one reproduction run: ``quick`` uses fewer points and trials; ``backend`` is
    ``"serial"`` or ``"process"`` (the local pool of :func:`planner.runtime.parallel.map_tasks`)."""

    quick: bool
    seed: int
    cycles: int
    trials: int
    slots: int
    backend: str


@dataclass
class Trend:
    """One claim of the paper about a figure, and whether the computed numbers bear it out."""

    figure: str
    claim: str
    holds: bool
    evidence: str


class Seeds:
    """Independent integer seeds for every Monte Carlo task, derived from one seed."""

    def __init__(self, seed: int) -> None:
        self._seq = np.random.SeedSequence(seed)

    def next(self) -> int:
        """The next child seed of the run's :class:`numpy.random.SeedSequence` (same order, same seeds)."""
        (child,) = self._seq.spawn(1)
        return int(child.generate_state(1)[0])


# --------------------------------------------------------------------------- tasks


def rate_spec(hops: int, *, p: float, q: float, memory: int, cycles: int, seed: int) -> dict[str, Any]:
    """A renewal-estimator task (:func:`planner.simulate.chain.simulate_chain_rate`): pairs per slot
    of Eq. 9's protocol."""
    return dict(kind="rate", hops=hops, p=p, q=q, memory=memory, cycles=cycles, seed=seed)


def chain_spec(
    distances_km: list[float], *, q: float, memory: int, slots: int, trials: int, seed: int, **extra: Any
) -> dict[str, Any]:
    """A slot-level chain task (:func:`planner.simulate.chain.simulate_chain`) with the paper's loss
    and swap/retrieval times; ``extra`` passes further keywords (schedule, cutoff, senders)."""
    return dict(
        kind="chain",
        distances_km=distances_km,
        q=q,
        memory=memory,
        alpha_db_per_km=PAPER.alpha_db_per_km,
        slots=slots,
        trials=trials,
        t_mea_s=PAPER.t_mea_s,
        t_ret_s=PAPER.t_ret_s,
        seed=seed,
        **extra,
    )


def _task(spec: dict[str, Any]) -> dict[str, float]:
    """One Monte Carlo batch (top-level so that process pools can pickle it)."""
    kind = spec.pop("kind")
    if kind == "rate":
        r = simulate_chain_rate(level=LEVEL, **spec)
        return {"value": r.rate.value, "low": r.rate.low, "high": r.rate.high}
    if kind == "chain":
        c = simulate_chain(level=LEVEL, **spec)
        fp = c.first_pair
        return {
            "value": fp.value if fp else math.nan,
            "low": fp.low if fp else math.nan,
            "high": fp.high if fp else math.nan,
            "censored": c.censored_fraction,
            "rate_per_slot": c.rate.value,
            "rate_low": c.rate.low,
            "rate_high": c.rate.high,
            "attempt_time_s": c.attempt_time_s,
        }
    if kind == "access":
        a = simulate_cluster_keys_per_attempt(level=LEVEL, **spec)
        return {"value": a.keys.value, "low": a.keys.low, "high": a.keys.high}
    raise ValueError(f"unknown task kind {kind!r}")


def run_tasks(specs: list[dict[str, Any]], settings: Settings) -> list[dict[str, float]]:
    """Every spec's Monte Carlo result, in spec order (the specs themselves are left untouched)."""
    backend = "serial" if settings.backend == "serial" else "process"
    return map_tasks(_task, [dict(s) for s in specs], backend=backend)  # type: ignore[arg-type]


def with_estimates(
    rows: list[dict[str, Any]], results: list[dict[str, float]], columns: tuple[str, str, str]
) -> pd.DataFrame:
    """``rows`` as a table with each result's ``value``, ``low`` and ``high`` appended as ``columns``
    (in that order)."""
    df = pd.DataFrame(rows)
    for col, key in zip(columns, ("value", "low", "high"), strict=True):
        df[col] = [r[key] for r in results]
    return df


# --------------------------------------------------------------------------- plotting and checks


def new_axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    """A 6.4 x 4.4 in figure with one titled, labelled and gridded axis."""
    fig = Figure(figsize=(6.4, 4.4), dpi=110)
    ax = fig.subplots()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def points(ax: Any, x: Any, y: Any, low: Any, high: Any, color: Any, label: str | None) -> None:
    """Monte Carlo points with their confidence intervals as error bars."""
    y = np.asarray(y, dtype=float)
    err = np.vstack([y - np.asarray(low, dtype=float), np.asarray(high, dtype=float) - y])
    ax.errorbar(x, y, yerr=np.clip(err, 0, None), fmt="o", ms=3.5, capsize=2, color=color, label=label)


def save(fig: Figure, path: Path) -> Path:
    """Lay out and write ``fig`` to ``path``; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path)
    return path


def colors(n: int) -> list[Any]:
    """``n`` colours spread over viridis (its light yellow end left out)."""
    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1) * 0.85) for i in range(n)]


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation of ``x`` and ``y``."""
    res = stats.spearmanr(x, y)
    return float(res.statistic)


def agreement(df: pd.DataFrame, analytic: str, low: str, high: str) -> tuple[int, int]:
    """(points whose CI ``[low, high]`` contains ``analytic``, points with a CI)."""
    sim = df.dropna(subset=[low, high])
    inside = ((sim[low] <= sim[analytic]) & (sim[analytic] <= sim[high])).sum()
    return int(inside), len(sim)


def agreement_trend(figure: str, claim: str, df: pd.DataFrame, analytic: str, low: str, high: str) -> Trend:
    """The "simulation agrees" trend: it holds when at least 85% of the CIs ``[low, high]`` contain ``analytic``."""
    inside, total = agreement(df, analytic, low, high)
    return Trend(figure, claim, inside >= 0.85 * total, f"{inside}/{total} points")
