"""The numbers the repeater-spacing model is given: Eqs. 7-10 evaluated per link option and per hop count.

The spacing model (:mod:`solvers.repeaters`) evaluates no formula of the physics; this module
evaluates them, with :mod:`planner.physics` and the one physics parameter object
(:class:`planner.physics.PhysicsParameters`), into a :class:`solvers.repeaters.ChainTables`:

- per (backbone link, repeater count ``n``): one segment's Eq. 7 success probability ``p``
  and its log (:func:`planner.physics.log_link_success_probability`, finite where ``p``
  underflows), and the Eq. 8 entanglement time summed over the link's ``n + 1`` segments;
- per hop count ``k``: the rate factor ``m g(k)`` of Eq. 9 (``m`` memory units per edge,
  ``g`` :func:`planner.physics.chain_factor`), its log, and Eq. 10's swap latency
  ``k (t_mea + t_ret)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.physics import (
    PhysicsParameters,
    chain_factor,
    link_entanglement_time_s,
    link_success_probability,
    log_link_success_probability,
)
from solvers.repeaters import ChainTables


def hop_factor_table(k_max: int, q: float) -> tuple[float, ...]:
    """Eq. 9's hop factor ``g(k)`` (:func:`planner.physics.chain_factor`) for ``k = 0..k_max``
    (entry 0 is not used)."""
    return (0.0, *(float(g) for g in chain_factor(np.arange(1, max(k_max, 1) + 1), q=q)))


def link_option_table(links: pd.DataFrame, physics: PhysicsParameters) -> pd.DataFrame:
    """One row per (``link``, ``repeaters`` ``n`` = 0..``max_repeaters``) of ``links`` (columns
    ``link, length_km, max_repeaters``): ``p`` and ``log_p`` of one segment of ``length_km / (n + 1)``
    km (Eq. 7) and ``time_s``, the Eq. 8 time of one segment times ``n + 1``."""
    n_max = links["max_repeaters"].to_numpy(int)
    reps = np.concatenate([np.arange(n + 1) for n in n_max]) if len(n_max) else np.zeros(0, dtype=int)
    index = np.repeat(np.arange(len(n_max)), n_max + 1)
    seg_km = links["length_km"].to_numpy(float)[index] / (reps + 1)
    alpha = physics.alpha_db_per_km
    return pd.DataFrame(
        {
            "link": links["link"].to_numpy()[index],
            "repeaters": reps,
            "p": link_success_probability(seg_km, alpha_db_per_km=alpha),
            "log_p": log_link_success_probability(seg_km, alpha_db_per_km=alpha),
            "time_s": (reps + 1)
            * link_entanglement_time_s(seg_km, alpha_db_per_km=alpha, speed_km_per_s=physics.speed_km_per_s),
        }
    )


def max_chain_hops(links: pd.DataFrame) -> int:
    """An upper bound on the hops of any chain over ``links``: the sum over them of
    ``max_repeaters + 1``, plus 1."""
    return int((links["max_repeaters"].to_numpy(int) + 1).sum()) + 1


def chain_tables(
    links: pd.DataFrame, physics: PhysicsParameters, *, memory_units: float, k_max: int | None = None
) -> ChainTables:
    """The :class:`~solvers.repeaters.ChainTables` of ``links`` (columns ``link, length_km,
    max_repeaters``) under ``physics`` with ``memory_units`` per edge, per hop count up to ``k_max``
    (default :func:`max_chain_hops`, which covers every chain the model can form)."""
    k = np.arange(0, (max_chain_hops(links) if k_max is None else k_max) + 1)
    g = np.asarray(chain_factor(np.maximum(k, 1), q=physics.q_swap), dtype=float)
    rate_factor = np.where(k >= 1, memory_units * g, 0.0)
    with np.errstate(divide="ignore"):
        log_rate_factor = np.where(k >= 1, np.log(memory_units) + np.log(g), -np.inf)
    return ChainTables(
        options=link_option_table(links, physics),
        rate_factor=rate_factor,
        log_rate_factor=log_rate_factor,
        swap_latency_s=k * (physics.t_mea_s + physics.t_ret_s),
    )
