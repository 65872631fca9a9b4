"""Small statistics functions shared by the simulators: confidence intervals and seeding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["MeanCI", "Seed", "mean_ci", "inverse_mean_ci", "make_rng", "seed_of"]


@dataclass(frozen=True)
class MeanCI:
    """A point estimate with a two-sided confidence interval at ``level``."""

    value: float
    low: float
    high: float
    level: float
    n: int

    def contains(self, x: float) -> bool:
        """True if ``x`` lies in ``[low, high]``."""
        return self.low <= x <= self.high

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return float(stats.norm.ppf(0.5 + level / 2.0))


def mean_ci(samples: ArrayLike, *, level: float = 0.95) -> MeanCI:
    """Normal-approximation CI of the mean of i.i.d. ``samples`` (at least 2)."""
    x = np.asarray(samples, dtype=float).ravel()
    n = x.size
    if n < 2:
        raise ValueError("need at least two samples for a confidence interval")
    mean = float(np.mean(x))
    se = float(np.std(x, ddof=1)) / np.sqrt(n)
    h = _z(level) * se
    return MeanCI(mean, float(mean - h), float(mean + h), level, n)


def inverse_mean_ci(samples: ArrayLike, *, level: float = 0.95) -> MeanCI:
    """CI of ``1 / E[X]`` from i.i.d. positive ``samples`` of ``X`` (renewal-rate estimate).

    The interval is the image of the normal CI of ``E[X]`` under ``x -> 1/x``, which is
    exact in coverage to the same order as the CI of the mean.
    """
    ci = mean_ci(samples, level=level)
    low = float(1.0 / ci.high)
    high = float(1.0 / ci.low) if ci.low > 0 else float("inf")
    return MeanCI(1.0 / ci.value, low, high, level, ci.n)


Seed = int | np.random.Generator | None
"""What the simulators take as ``seed``: an integer, a generator to draw from, or None (fresh entropy)."""


def make_rng(seed: Seed) -> np.random.Generator:
    """A ``numpy.random.Generator`` from an integer seed (or the generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def seed_of(seed: Seed) -> int | None:
    """The integer seed to record in a result (``None`` when a generator was passed)."""
    if isinstance(seed, np.random.Generator) or seed is None:
        return None
    return int(seed)
