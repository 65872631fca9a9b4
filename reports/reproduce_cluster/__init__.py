"""Reproduce Figs. 5, 6a, 6b, 6c, 7a and 7b of the cluster paper (Li, Xue et al. 2022).

For every figure: the analytic curve from the paper's formulas (``planner.physics``, or
the exact expectation of the simulated protocol where the paper has no formula), Monte
Carlo points with confidence intervals (``planner.simulate``), a PNG and a CSV. A
``README.md`` beside them lists every parameter chosen where the paper is silent and, for
each figure, whether the trend the paper describes holds with the formulas as printed --
computed from the numbers, not asserted.

Entry point: :func:`reproduce_cluster` (the CLI's ``qkdplan reproduce cluster``).

Modules: ``common`` (settings, seeds, Monte Carlo tasks, plotting helpers), ``fig5``, ``fig6``
(6a-6c), ``fig7`` (7a, 7b), ``protocols`` (Eq. 9/10 against the simulated protocols), ``readings``
(Figs. 7a and 6a under every reading) and ``run`` (the driver and the README).
"""

from __future__ import annotations

from reports.reproduce_cluster.common import PAPER
from reports.reproduce_cluster.fig7 import FIG7A_COLUMNS
from reports.reproduce_cluster.readings import READINGS, fig6a_readings, fig7a_readings, readings_verdicts
from reports.reproduce_cluster.run import FIGURES, reproduce_cluster

__all__ = [
    "reproduce_cluster",
    "PAPER",
    "FIGURES",
    "FIG7A_COLUMNS",
    "READINGS",
    "fig7a_readings",
    "fig6a_readings",
    "readings_verdicts",
]
