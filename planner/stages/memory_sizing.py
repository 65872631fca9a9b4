"""Memory optimisation stage: distribute ``memory.budget_units`` with :mod:`solvers.memory`.

Demands and their weights:

- one intra-cluster demand per cluster: Eq. 6 keys per attempt,
  ``r_mdi * N_m + r_ekr * N_s * floor(|V|/2)``;
- every inter-cluster backbone demand: Eq. 9 pairs per attempt, ``m * p * g(k)``
  with the chosen hops and worst hop, where ``m`` is the memory units the demand
  gets on its bottleneck link (an edge's units are split between the demands
  routed over it: concurrency, Fig. 7b).

Weights normalise the two very different scales: a demand's weight is its rate
with one memory unit (intra: one master and one slave unit; inter: one unit on
every link), so the max-min objective maximises the smallest "memory-unit
equivalent" over all demands. A slave's useful memory is capped by
lifetime x EPR rate (Fig. 6b) when ``memory.lifetime_s`` > 0.

The design's ``rate`` column keeps the Eq. 9 rate with the link memory the
demand would have alone (the minimum units over its links), which is what the
chain simulator verifies; the concurrency-aware rate is ``rate_shared``.
"""

from __future__ import annotations

import math

import pandas as pd

from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.physics import chain_distribution_ratio, link_success_probability
from planner.stages.backbone import Backbone
from planner.stages.result import (
    MemoryResult,
    StageResult,
    require_solution,
    solver_errors,
    solver_options,
)
from solvers.base import SolveResult
from solvers.memory import MemoryData, MemoryInputError, MemoryOptions, solve_memory


def memory_tables(
    access: StageResult, backbone: Backbone, repeaters: StageResult | None, scenario: Scenario
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``clusters``, ``edges`` and ``demands`` tables of the memory model."""
    acc, mem, ph = scenario.access, scenario.memory, scenario.physics
    cl = access.tables["clusters"]
    clusters = pd.DataFrame(
        {
            "n_slaves": cl["n_slaves"].astype(int).to_numpy(),
            "r_mdi": acc.r_mdi,
            "r_ekr": acc.r_ekr,
        },
        index=pd.Index(cl["master"].astype(str), name="cluster"),
    )
    if mem.lifetime_s > 0:
        clusters["slave_cap"] = float(max(1, math.floor(mem.lifetime_s * mem.epr_rate_hz + 1e-9)))
    edges = pd.DataFrame(
        {"max_units": mem.max_units_per_node, "cost_per_unit": 1.0},
        index=pd.Index(backbone.links["link_id"].astype(str), name="edge"),
    )
    rows = []
    for c in clusters.itertuples():
        rows.append(
            {
                "demand": f"intra:{c.Index}",
                "kind": "intra",
                "cluster": c.Index,
                "path": None,
                "rate_per_unit": None,
                "weight": acc.r_mdi + acc.r_ekr * (c.n_slaves // 2),
            }
        )
    rep = repeaters.tables.get("demands") if repeaters is not None else None
    by_demand = rep.set_index("demand") if rep is not None and len(rep) else None
    for d in backbone.demands.itertuples(index=False):
        if by_demand is not None and d.demand_id in by_demand.index:
            hops = int(by_demand.at[d.demand_id, "hops"])
            p = float(by_demand.at[d.demand_id, "p_worst"])
        else:
            hops = len(str(d.links).split(";"))
            p = float(link_success_probability(float(d.length_km) / hops, alpha_db_per_km=ph.alpha_db_per_km))
        per_unit = float(chain_distribution_ratio(hops, p=p, q=ph.q_swap, memory=1))
        rows.append(
            {
                "demand": d.demand_id,
                "kind": "inter",
                "cluster": None,
                "path": str(d.links).split(";"),
                "rate_per_unit": per_unit,
                "weight": max(per_unit, 1e-300),
            }
        )
    demands = pd.DataFrame(rows).set_index("demand")
    return clusters, edges, demands


def optimise_memory(
    network: Network,
    access: StageResult,
    backbone: Backbone,
    stages: dict[str, StageResult],
    scenario: Scenario,
    *,
    seed: int = 0,
) -> MemoryResult:
    """Memory units per site and backbone link under ``memory.budget_units`` (max-min, weighted).

    Raises :class:`~planner.errors.InfeasibleDesignError` when the budget cannot give every
    master, slave and link a unit (or no allocation was found in time)."""
    out = MemoryResult()
    mem = scenario.memory
    if len(access.tables["clusters"]) == 0 and len(backbone.links) == 0:
        out.notes.append("memory budget ignored: no clusters and no backbone links to give memory to")
        return out
    clusters, edges, demands = memory_tables(access, backbone, stages.get("repeaters"), scenario)
    needed = 2 * len(clusters) + int(sum(len(p) for p in demands["path"].dropna()))
    with solver_errors(
        "memory",
        MemoryInputError,
        infeasible="No memory allocation fits memory.budget_units.",
        fix="raise memory.budget_units",
    ):
        result = solve_memory(
            MemoryData(clusters=clusters, edges=edges, demands=demands),
            MemoryOptions(budget_units=mem.budget_units, objective="max_min", min_units=1),
            solver_options(scenario, seed=seed),
        )
    require_solution(
        result,
        "memory model",
        conflicts=("memory-budget",),
        fix="raise memory.budget_units",
        details=(
            f"memory.budget_units = {mem.budget_units}; giving every master, slave and each "
            f"demand on each link one unit needs about {needed}",
        ),
    )
    out.record_solve("memory", result, "memory MILP (max-min weighted rate)")
    nodes_t = result.tables["memory_nodes"]
    per = {(r.cluster, r.role): int(r.units_per_node) for r in nodes_t.itertuples(index=False)}
    a = access.tables["assignment"]
    out.nodes = pd.Series(
        [per.get((str(m), str(role)), 0) for m, role in zip(a["master"], a["role"], strict=True)],
        index=a["site"].astype(str),
        dtype=int,
    )
    out.edges = result.tables["memory_edges"].set_index("edge")["units"].astype(int)
    out.tables["clusters"] = pd.DataFrame(
        {
            "memory_master": [per.get((c, "master"), 0) for c in clusters.index],
            "memory_slave": [per.get((c, "slave"), 0) for c in clusters.index],
        },
        index=clusters.index,
    )
    out.demand_rates, out.demand_rates_shared = _demand_rates(
        result, demands, out.edges, stages.get("repeaters"), scenario
    )
    out.metrics["memory_min_unit_equivalent"] = result.info.get("min_weighted_rate")
    return out


def _demand_rates(
    result: SolveResult, demands: pd.DataFrame, edge_units: pd.Series, rep: StageResult | None, scenario: Scenario
) -> tuple[pd.Series, pd.Series]:
    """Per inter-cluster demand: the Eq. 9 rate with the link memory it would have alone (the fewest
    units over its links; only demands with a repeater chain) and the model's shared rate."""
    dr = result.tables["demand_rates"].set_index("demand")
    inter = demands[demands["kind"] == "inter"]
    rate_alone, rate_shared = {}, {}
    rep_d = (
        rep.tables["demands"].set_index("demand")
        if rep is not None and "demands" in rep.tables and len(rep.tables["demands"])
        else None
    )
    for d, row in inter.iterrows():
        m_alone = int(min(edge_units.get(e, 0) for e in row["path"]))
        if rep_d is not None and d in rep_d.index:
            hops, p = int(rep_d.at[d, "hops"]), float(rep_d.at[d, "p_worst"])
            rate_alone[d] = (
                float(chain_distribution_ratio(hops, p=p, q=scenario.physics.q_swap, memory=max(m_alone, 1)))
                if m_alone > 0
                else 0.0
            )
        rate_shared[d] = float(dr.at[d, "rate"])
    return pd.Series(rate_alone, dtype=float), pd.Series(rate_shared, dtype=float)
