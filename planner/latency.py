"""Two latency figures for a demand's repeater chain: Eq. 10 as printed, and the protocol's derived latency.

Eq. 10 of the cluster paper, ``T = sum_i t_i / lam + k (t_mea + t_ret)`` with
``t_i = (d_i / s) / p_i`` (Eq. 8), counts ``1/p`` twice (``t_i`` holds ``1/p_i``
and ``lam`` holds ``p`` again), so it scales like ``1/p**2``; the project's own
chain simulation (``docs/cluster_model_vs_simulation.md``) finds it to exceed the
simulated time to the first end-to-end pair, by orders of magnitude on long hops.

The *protocol latency* here is the expected time to one end-to-end pair of the
protocol that Eq. 9 prices: attempts run in slots lasting the longest hop's
light time ``d_max / s``; end-to-end pairs arrive at ``lam`` (Eq. 9) per slot, so
about ``max(1, 1/lam)`` slots pass per pair; then the swaps on the critical path
of the nested swapping tree (``ceil(log2 k)`` rounds) and the final retrieval
each cost ``t_mea + t_ret`` of classical processing:

``T_protocol = (d_max / s) * max(1, 1 / lam) + (ceil(log2 k) + 1) * (t_mea + t_ret)``.

This is the same accounting as :func:`planner.simulate.chain.simulate_chain`
(which adds ``(rounds + 1)(t_mea + t_ret)`` to the simulated slots); the
steady-state ``1/lam`` slightly understates the time to the *first* pair from
empty memories (a max of geometric waits), which the tests bound against the
simulation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Scenario values of ``backbone.latency_model``.
LATENCY_MODELS = ("eq10", "protocol")


def swap_rounds(hops: int) -> int:
    """Swap rounds on the critical path of a nested (balanced) swapping tree over ``hops`` hops."""
    return 0 if hops <= 1 else math.ceil(math.log2(hops))


def protocol_latency_s(hops: int, rate: float, segment_km: float, *, speed_km_per_s: float, t_mea_s: float,
                       t_ret_s: float) -> float:
    """Expected time (s) to one end-to-end pair of the Eq. 9 protocol (see the module docstring).

    ``rate`` is the Eq. 9 distribution ratio ``lam`` (pairs per slot, > 0) and
    ``segment_km`` the longest hop. Returns ``inf`` for ``rate <= 0``.
    """
    if not rate > 0:
        return math.inf
    slot_s = segment_km / speed_km_per_s
    return slot_s * max(1.0, 1.0 / rate) + (swap_rounds(int(hops)) + 1) * (t_mea_s + t_ret_s)


def segment_km_from_p(p: float, alpha_db_per_km: float) -> float:
    """Hop length (km) with Eq. 7 success probability ``p``: ``-10 log10(p) / alpha``; NaN if ``alpha = 0``."""
    if alpha_db_per_km <= 0 or not p > 0:
        return math.nan
    return -10.0 * math.log10(p) / alpha_db_per_km


def demand_protocol_latency_s(demands: pd.DataFrame, physics: dict[str, float]) -> np.ndarray:
    """``latency_protocol_s`` of every row of a design's demands table (``hops, p_worst, rate``; ``length_km``).

    The longest hop is recovered from ``p_worst`` (Eq. 7); with zero attenuation it is
    ``length_km / hops``. Rows without a rate give NaN.
    """
    out = np.full(len(demands), np.nan)
    if not len(demands) or not {"hops", "p_worst", "rate"} <= set(demands.columns):
        return out
    alpha = float(physics["alpha_db_per_km"])
    speed = float(physics["speed_km_per_s"])
    tm = float(physics["t_mea_s"])
    tr = float(physics["t_ret_s"])
    hops = pd.to_numeric(demands["hops"], errors="coerce").to_numpy(dtype=float)
    pw = pd.to_numeric(demands["p_worst"], errors="coerce").to_numpy(dtype=float)
    rate = pd.to_numeric(demands["rate"], errors="coerce").to_numpy(dtype=float)
    length = (pd.to_numeric(demands["length_km"], errors="coerce").to_numpy(dtype=float)
              if "length_km" in demands else np.full(len(demands), np.nan))
    for i in range(len(demands)):
        if not (np.isfinite(hops[i]) and np.isfinite(rate[i]) and hops[i] >= 1):
            continue
        seg = segment_km_from_p(float(pw[i]), alpha) if np.isfinite(pw[i]) else math.nan
        if not math.isfinite(seg):
            seg = float(length[i]) / hops[i] if np.isfinite(length[i]) else math.nan
        if math.isfinite(seg):
            out[i] = protocol_latency_s(int(hops[i]), float(rate[i]), seg, speed_km_per_s=speed, t_mea_s=tm,
                                        t_ret_s=tr)
    return out


def protocol_rate_target(longest_link_km: float, max_hops: int, limit_s: float, *, speed_km_per_s: float,
                         t_mea_s: float, t_ret_s: float) -> float:
    """Eq. 9 rate that *guarantees* ``T_protocol <= limit_s`` on a path whose longest backbone link is
    ``longest_link_km`` and whose chain has at most ``max_hops`` hops (conservative: a hop is never
    longer than its link, and more hops only add swap rounds).

    Returns ``inf`` when no rate is enough under this bound (the limit is below the light time of
    the longest link plus the swap processing); the caller then states that the limit cannot be
    guaranteed.
    """
    slack = limit_s - (swap_rounds(max_hops) + 1) * (t_mea_s + t_ret_s)
    slot_s = longest_link_km / speed_km_per_s
    if slack <= 0 or slot_s > slack:
        return math.inf
    return slot_s / slack
