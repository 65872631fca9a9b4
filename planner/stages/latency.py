"""Two latency figures for a demand's repeater chain: Eq. 10 as printed, and the protocol's derived latency.

Eq. 10 of the cluster paper, ``T = sum_i t_i / lam + k (t_mea + t_ret)`` with
``t_i = (d_i / s) / p_i`` (Eq. 8), counts ``1/p`` twice (``t_i`` holds ``1/p_i``
and ``lam`` holds ``p`` again), so it scales like ``1/p**2``; the project's own
chain simulation (``docs/cluster_model_vs_simulation.md``) finds it to exceed the
simulated time to the first end-to-end pair, by orders of magnitude on long hops.

The *protocol latency* here is the expected time to one end-to-end pair of the
protocol that Eq. 9 prices: attempts run in slots lasting the longest hop's
light time ``d_max / s`` (at least the scenario's ``attempt_time_s``, as in
``qkdplan simulate``); end-to-end pairs arrive at ``lam`` (Eq. 9) per slot, so
about ``max(1, 1/lam)`` slots pass per pair; then the swaps on the critical path
of the nested swapping tree (``ceil(log2 k)`` rounds) and the final retrieval
each cost ``t_mea + t_ret`` of classical processing:

``T_protocol = max(t_att, d_max / s) * max(1, 1 / lam) + (ceil(log2 k) + 1) * (t_mea + t_ret)``.

This is the same accounting as :func:`planner.simulate.chain.simulate_chain`
(which adds ``(rounds + 1)(t_mea + t_ret)`` to the simulated slots); the
steady-state ``1/lam`` slightly understates the time to the *first* pair from
empty memories (a max of geometric waits), which the tests bound against the
simulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: Scenario values of ``backbone.latency_model``.
LATENCY_MODELS = ("eq10", "protocol")


def swap_rounds(hops: int) -> int:
    """Swap rounds on the critical path of a nested (balanced) swapping tree over ``hops`` hops."""
    return 0 if hops <= 1 else math.ceil(math.log2(hops))


def protocol_latency_s(
    hops: int,
    rate: float,
    segment_km: float,
    *,
    speed_km_per_s: float,
    t_mea_s: float,
    t_ret_s: float,
    attempt_time_s: float = 0.0,
) -> float:
    """Expected time (s) to one end-to-end pair of the Eq. 9 protocol (see the module docstring).

    ``rate`` is the Eq. 9 distribution ratio ``lam`` (pairs per slot, > 0) and
    ``segment_km`` the longest hop. Returns ``inf`` for ``rate <= 0``.
    """
    if not rate > 0:
        return math.inf
    slot_s = max(attempt_time_s, segment_km / speed_km_per_s)
    return slot_s * max(1.0, 1.0 / rate) + (swap_rounds(int(hops)) + 1) * (t_mea_s + t_ret_s)


def segment_km_from_p(p: float, alpha_db_per_km: float) -> float:
    """Hop length (km) with Eq. 7 success probability ``p``: ``-10 log10(p) / alpha``; NaN if ``alpha = 0``."""
    if alpha_db_per_km <= 0 or not p > 0:
        return math.nan
    return -10.0 * math.log10(p) / alpha_db_per_km


def demand_protocol_latency_s(demands: pd.DataFrame, physics: Mapping[str, Any]) -> np.ndarray:
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
    t_att = float(physics.get("attempt_time_s", 0.0))
    hops = pd.to_numeric(demands["hops"], errors="coerce").to_numpy(dtype=float)
    pw = pd.to_numeric(demands["p_worst"], errors="coerce").to_numpy(dtype=float)
    rate = pd.to_numeric(demands["rate"], errors="coerce").to_numpy(dtype=float)
    length = (
        pd.to_numeric(demands["length_km"], errors="coerce").to_numpy(dtype=float)
        if "length_km" in demands
        else np.full(len(demands), np.nan)
    )
    for i in range(len(demands)):
        if not (np.isfinite(hops[i]) and np.isfinite(rate[i]) and hops[i] >= 1):
            continue
        seg = segment_km_from_p(float(pw[i]), alpha) if np.isfinite(pw[i]) else math.nan
        if not math.isfinite(seg):
            seg = float(length[i]) / hops[i] if np.isfinite(length[i]) else math.nan
        if math.isfinite(seg):
            out[i] = protocol_latency_s(
                int(hops[i]), float(rate[i]), seg, speed_km_per_s=speed, t_mea_s=tm, t_ret_s=tr, attempt_time_s=t_att
            )
    return out


def protocol_rate_target(
    longest_link_km: float,
    max_hops: int,
    limit_s: float,
    *,
    speed_km_per_s: float,
    t_mea_s: float,
    t_ret_s: float,
    attempt_time_s: float = 0.0,
) -> float:
    """Eq. 9 rate that *guarantees* ``T_protocol <= limit_s`` on a path whose longest backbone link is
    ``longest_link_km`` and whose chain has at most ``max_hops`` hops (conservative: a hop is never
    longer than its link, and more hops only add swap rounds).

    Returns ``inf`` when no rate is enough under this bound (the limit is below the light time of
    the longest link plus the swap processing); the caller then states that the limit cannot be
    guaranteed.
    """
    slack = limit_s - (swap_rounds(max_hops) + 1) * (t_mea_s + t_ret_s)
    slot_s = max(attempt_time_s, longest_link_km / speed_km_per_s)
    if slack <= 0 or slot_s > slack:
        return math.inf
    return slot_s / slack


def latency_metrics(demands: pd.DataFrame, model: str, limit_s: float) -> tuple[dict[str, Any], list[str]]:
    """Design metrics for both latency figures and notes on the limit.

    Returns ``max_latency_s`` (Eq. 10), ``max_latency_protocol_s``, ``latency_model`` and,
    with a limit (``limit_s > 0``), ``n_latency_over_limit``: demands whose latency under
    ``model`` exceeds the limit (the model is then also named in a note).
    """

    def _max(col: str) -> float | None:
        if col not in demands or not len(demands):
            return None
        v = pd.to_numeric(demands[col], errors="coerce")
        return float(v.max()) if v.notna().any() else None

    metrics: dict[str, Any] = {
        "latency_model": model,
        "max_latency_s": _max("latency_s"),
        "max_latency_protocol_s": _max("latency_protocol_s"),
    }
    notes: list[str] = []
    col = "latency_s" if model == "eq10" else "latency_protocol_s"
    if limit_s > 0 and col in demands and len(demands):
        over = int((pd.to_numeric(demands[col], errors="coerce") > limit_s * (1 + 1e-6)).sum())
        metrics["n_latency_over_limit"] = over
        label = "Eq. 10 latency" if model == "eq10" else "protocol latency (time to one end-to-end pair)"
        notes.append(
            f'Latency limit {limit_s:g} s applies to the {label} (backbone.latency_model = "{model}"); '
            f"{over} demand(s) exceed it."
        )
    return metrics, notes


def apply_protocol_latency_limit(demands: pd.DataFrame, links: pd.DataFrame, scenario: Any) -> tuple[pd.DataFrame, str]:
    """Turn ``backbone.max_latency_s`` on the protocol latency into per-demand Eq. 9 rate targets.

    ``demands`` is the repeater model's input (``demand, path, rate_target``; ``path`` a
    list of link ids), ``links`` its link table (``link, length_km``). With objective
    "min_cost" each demand's ``rate_target`` becomes the larger of its own and
    :func:`protocol_rate_target` (a sufficient condition, so every demand the model
    serves meets the limit); demands for which no rate suffices keep their target and
    are counted in the returned note, as are all demands under "max_min_rate" (whose
    model has no per-demand targets): the limit is then checked after solving only.
    """
    bbs = scenario.backbone
    ph = scenario.physics
    length = dict(zip(links["link"].astype(str), links["length_km"].astype(float), strict=True))
    max_hops = int(bbs.max_repeaters_per_link) + 1
    out = demands.copy()
    if bbs.objective != "min_cost":
        return out, (
            f'Latency limit {bbs.max_latency_s:g} s on the protocol latency: objective "{bbs.objective}" '
            "has no per-demand targets, so the limit is checked after solving, not imposed."
        )
    targets = []
    unreachable = 0
    for path, tgt in zip(out["path"], out["rate_target"], strict=True):
        ids = [str(x) for x in path]
        need = protocol_rate_target(
            max(length.get(x, 0.0) for x in ids),
            max_hops * len(ids),
            bbs.max_latency_s,
            speed_km_per_s=ph.speed_km_per_s,
            t_mea_s=ph.t_mea_s,
            t_ret_s=ph.t_ret_s,
            attempt_time_s=ph.attempt_time_s,
        )
        if not math.isfinite(need):
            unreachable += 1
            targets.append(float(tgt))
        else:
            targets.append(max(float(tgt), need))
    out["rate_target"] = targets
    note = (
        f"Latency limit {bbs.max_latency_s:g} s on the protocol latency imposed as per-demand Eq. 9 rate "
        "targets (conservative: a hop is taken as long as its backbone link)"
    )
    if unreachable:
        note += (
            f"; for {unreachable} demand(s) the limit is below the light time of a backbone link plus the swap "
            "processing, so it is checked after solving only"
        )
    return out, note + "."
