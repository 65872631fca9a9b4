"""Memory stage of the pipeline: quantum-memory units per master, slave and backbone link.

With ``memory.budget_units == 0`` the scenario's fixed sizes are used
(``master_units``, ``slave_units``, ``edge_units``); with ``memory.size_for_load``
a backbone edge gets more units when the demands sharing it would otherwise miss
``backbone.rate_target`` under full load (:func:`load_sized_edges`). With a budget,
the memory model of :mod:`solvers.memory` distributes it to maximise the minimum
predicted key rate over intra- and inter-cluster demands.

**Full load.** All demands active at once time-share each edge's memory equally
(Fig. 7b): a demand ``d`` over links ``l`` with ``m_l`` units, success probability
``p_l`` (Eq. 7 of the link's segment) and ``u_l`` demands routed over it gets
``rate_shared_d = g(k_d, q) * min_l m_l p_l / u_l`` (Eq. 9 with each link's memory
divided by its users; the same figure ``qkdplan simulate`` reports as the rate under
concurrent load). It meets the target iff ``m_l >= target u_l / (p_l g(k_d))`` on
every link, so the smallest sufficient size of link ``l`` is the ceiling of the
largest right-hand side over its demands. Where ``max_units_per_node`` caps that,
the plan states each demand's ``shortfall_full_load`` (target minus shared rate).

The stage also states, per fibre link, the key generation the demand set needs
from the trusted-relay layer (:mod:`planner.keys.pools`).
"""

from __future__ import annotations

import logging
import math

import pandas as pd

from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.physics import chain_factor
from planner.stages.backbone import Backbone
from planner.stages.key_pools import key_pool_table
from planner.stages.memory_sizing import optimise_memory
from planner.stages.result import MemoryResult, StageResult

logger = logging.getLogger(__name__)


def fixed_allocation(access: StageResult, backbone: Backbone, scenario: Scenario) -> tuple[pd.Series, pd.Series]:
    """Memory units per site (``nodes``: Series by site id) and per backbone link (``edges``: Series by link id)."""
    mem = scenario.memory
    a = access.tables["assignment"]
    units = pd.Series(0, index=pd.Index([], dtype=str), dtype=int)
    if len(a):
        units = pd.Series(
            [mem.master_units if r == "master" else mem.slave_units for r in a["role"]],
            index=a["site"].astype(str),
            dtype=int,
        )
    edges = pd.Series(mem.edge_units, index=backbone.links["link_id"].astype(str), dtype=int)
    return units, edges


def _chain_inputs(
    backbone: Backbone, repeaters: StageResult | None
) -> tuple[dict[str, float], dict[str, int], dict[str, list[str]], dict[str, int]] | None:
    """``p`` per link, hops and links per demand, users per link; None without a repeater stage."""
    if repeaters is None or "links" not in repeaters.tables or "demands" not in repeaters.tables:
        return None
    rl, rd = repeaters.tables["links"], repeaters.tables["demands"]
    if len(rl) == 0 or len(rd) == 0 or "p" not in rl or "hops" not in rd:
        return None
    p = {str(k): float(v) for k, v in zip(rl["link"], rl["p"], strict=True)}
    hops = {str(k): int(v) for k, v in zip(rd["demand"], rd["hops"], strict=True)}
    paths = {
        str(d): [x for x in str(lk).split(";") if x]
        for d, lk in zip(backbone.demands["demand_id"], backbone.demands["links"], strict=True)
    }
    users: dict[str, int] = {}
    for lids in paths.values():
        for lid in lids:
            users[lid] = users.get(lid, 0) + 1
    return p, hops, paths, users


def load_sized_edges(
    backbone: Backbone, repeaters: StageResult | None, scenario: Scenario, base: pd.Series
) -> pd.Series:
    """Edge units so that every demand meets ``backbone.rate_target`` under full load (capped).

    Guarantees: each edge keeps at least its ``base`` units; where the cap
    ``memory.max_units_per_node`` does not bind, every demand's ``rate_shared``
    (module docstring) is at least the target.
    """
    target, q = scenario.backbone.rate_target, scenario.physics.q_swap
    inputs = _chain_inputs(backbone, repeaters)
    if inputs is None or target <= 0 or scenario.backbone.objective != "min_cost":
        return base  # no rate target to meet (max_min_rate spends a repeater budget instead)
    p, hops, paths, users = inputs
    need = base.astype(int).copy()
    for d, lids in paths.items():
        if d not in hops:
            continue
        g = float(chain_factor(hops[d], q=q))
        for lid in lids:
            denom = p.get(lid, 0.0) * g
            if denom <= 0:
                continue
            cap = scenario.memory.max_units_per_node  # (the result is clipped to it anyway; a link whose
            ratio = target * users[lid] / denom * (1 - 1e-12)  # rate is tiny would overflow int64)
            units = cap if not math.isfinite(ratio) or ratio >= cap else math.ceil(ratio)
            need[lid] = max(int(need.get(lid, 0)), units)
    return need.clip(upper=scenario.memory.max_units_per_node).astype(int)


def demand_rates(
    backbone: Backbone, repeaters: StageResult | None, scenario: Scenario, edges: pd.Series
) -> tuple[pd.Series, pd.Series] | None:
    """Eq. 9 rate per demand with the given edge units alone (``m = min`` over its links) and shared."""
    inputs = _chain_inputs(backbone, repeaters)
    if inputs is None:
        return None
    p, hops, paths, users = inputs
    q = scenario.physics.q_swap
    alone, shared = {}, {}
    for d, lids in paths.items():
        if d not in hops or not lids:
            continue
        g = float(chain_factor(hops[d], q=q))
        m = [float(edges.get(lid, 0)) for lid in lids]
        pl = [p.get(lid, 0.0) for lid in lids]
        alone[d] = min(m) * min(pl) * g
        shared[d] = g * min(mi * pi / users[lid] for mi, pi, lid in zip(m, pl, lids, strict=True))
    return pd.Series(alone, dtype=float), pd.Series(shared, dtype=float)


def _fixed_memory(
    access: StageResult, backbone: Backbone, repeaters: StageResult | None, scenario: Scenario
) -> MemoryResult:
    """The scenario's fixed sizes; with ``memory.size_for_load`` edges sized for full load and the
    demands' rates alone and shared."""
    mem = scenario.memory
    nodes, edges = fixed_allocation(access, backbone, scenario)
    out = MemoryResult(nodes=nodes, edges=edges)
    if mem.size_for_load:
        sized = load_sized_edges(backbone, repeaters, scenario, edges)
        raised = int((sized > edges).sum())
        if raised:
            out.notes.append(
                f"{raised} backbone link(s) got more than memory.edge_units = {mem.edge_units} "
                f"memory units (at most {mem.max_units_per_node}) so that every demand meets the "
                "rate target with all demands sharing the link at once."
            )
        out.edges = sized
        rates = demand_rates(backbone, repeaters, scenario, sized)
        if rates is not None:
            out.demand_rates, out.demand_rates_shared = rates
    return out


def plan_memory(
    network: Network,
    access: StageResult,
    backbone: Backbone,
    stages: dict[str, StageResult],
    scenario: Scenario,
    *,
    seed: int = 0,
) -> MemoryResult:
    """Memory allocation: units per site (``nodes``) and per backbone link (``edges``).

    Also ``demand_rates`` / ``demand_rates_shared`` / ``demand_shortfall`` (by demand id;
    shortfall = target minus the shared rate, 0 when met) when the backbone has repeater
    chains (see :class:`~planner.stages.result.MemoryResult`), and the table
    ``fibre_key_bits`` (per fibre link key needs) when it has a trusted-relay layer.
    """
    if scenario.memory.budget_units > 0:
        out = optimise_memory(network, access, backbone, stages, scenario, seed=seed)
    else:
        out = _fixed_memory(access, backbone, stages.get("repeaters"), scenario)
    shared = out.demand_rates_shared
    target = scenario.backbone.rate_target
    if shared is not None and len(shared) and target > 0 and scenario.backbone.objective == "min_cost":
        shortfall = (target - shared).clip(lower=0.0)
        out.demand_shortfall = shortfall
        n_short = int((shortfall > 0).sum())
        out.metrics["n_demands_short_full_load"] = n_short
        if n_short:
            out.notes.append(
                f"Under full load (all demands sharing link memory) {n_short} of {len(shortfall)} "
                f"demand(s) fall short of the rate target {target:g}; see the demands table's "
                "shortfall_full_load column (raise memory.max_units_per_node or the memory budget)."
            )
    pools = key_pool_table(network, backbone, stages.get("trust"), scenario, seed=seed)
    if pools is not None and len(pools.links):
        out.tables["fibre_key_bits"] = pools.links
        out.metrics["fibre_key_demands_routed"] = pools.routed
        out.metrics["fibre_key_demands"] = pools.total
        worst = pools.links["rounds_supported"].dropna()
        if len(worst):
            out.metrics["key_pool_rounds_supported_min"] = int(worst.min())
            out.metrics["key_bits_per_round_max"] = int(pools.links["key_bits_per_round"].max())
        if not pools.complete:
            out.notes.append(
                f"Fibre key needs (fibre_key_bits) are summed over {pools.routed} of {pools.total} demands, "
                "a random sample routed with SMR within the memory stage's time limit: they are lower bounds "
                "of each link's needs, and key_pool_rounds_supported_min an upper bound. Raise "
                "solver.time_limit_s or route in parallel with --workers / --scheduler to cover all demands."
            )
    return out
