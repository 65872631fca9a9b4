"""Intra-cluster check of a design (cluster paper Eq. 5-6): every access cluster simulated."""

from __future__ import annotations

import math
from typing import Any

from planner import physics
from planner.model.design import Design
from planner.model.scenario import Scenario
from planner.simulate.access import simulate_cluster_keys_per_attempt
from planner.simulate.sampling import LEVEL, SampleSizes, float_or_none, stream_seed

__all__ = ["simulate_clusters"]


def simulate_clusters(design: Design, scenario: Scenario, sizes: SampleSizes, seed: int) -> list[dict[str, Any]]:
    """One row per cluster of ``design.clusters`` (in order): simulated key bits per attempt
    with their CI at :data:`LEVEL`, the Eq. 6 value, and ``problems`` where the clusters table
    contradicts Eq. 5 or a cluster is too small to simulate.
    """
    acc, mem, ph = scenario.access, scenario.memory, scenario.physics
    lifetime = math.inf if mem.lifetime_s <= 0 else float(mem.lifetime_s)
    rows = []
    for i, c in enumerate(design.clusters.itertuples(index=False)):
        n_slaves = int(c.n_slaves)
        m_master = int(getattr(c, "memory_master", mem.master_units))
        m_slave = int(getattr(c, "memory_slave", mem.slave_units))
        predicted = float(c.keys_per_attempt)
        row: dict[str, Any] = {
            "cluster": str(c.cluster),
            "master": str(c.master),
            "n_slaves": n_slaves,
            "ekert_pairs": int(c.ekert_pairs),
            "memory_master": m_master,
            "memory_slave": m_slave,
            "keys_predicted": predicted,
            "slots": sizes.access_slots,
            "lifetime_s": float_or_none(lifetime),
        }
        problems = []
        if int(c.ekert_pairs) != n_slaves // 2:
            problems.append(f"ekert_pairs = {int(c.ekert_pairs)} but floor({n_slaves}/2) = {n_slaves // 2} (Eq. 5)")
        if n_slaves < 2:
            problems.append(f"cluster has {n_slaves} slave(s); Eq. 5-6 need at least 2")
            row.update(
                keys_simulated=None,
                keys_ci_low=None,
                keys_ci_high=None,
                keys_eq6=None,
                keys_expected=None,
            )
        else:
            res = simulate_cluster_keys_per_attempt(
                n_slaves,
                r_mdi=acc.r_mdi,
                r_ekr=acc.r_ekr,
                memory_master=m_master,
                memory_slave=m_slave,
                lifetime_s=lifetime,
                epr_rate_hz=mem.epr_rate_hz,
                t_mea_s=ph.t_mea_s,
                t_ret_s=ph.t_ret_s,
                slots=sizes.access_slots,
                level=LEVEL,
                seed=stream_seed(seed, "cluster", i),
            )
            row.update(
                keys_simulated=res.keys.value,
                keys_ci_low=res.keys.low,
                keys_ci_high=res.keys.high,
                keys_mdi=res.keys_mdi,
                keys_ekert=res.keys_ekert,
                keys_expected=res.analytic,
                keys_eq6=float(
                    physics.cluster_keys_per_attempt(
                        n_slaves,
                        r_mdi=acc.r_mdi,
                        r_ekr=acc.r_ekr,
                        memory_master=m_master,
                        memory_slave=m_slave,
                    )
                ),
            )
        row["problems"] = "; ".join(problems)
        rows.append(row)
    return rows
