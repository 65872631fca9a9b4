"""Memory stage of the pipeline: quantum-memory units per master, slave and backbone link.

With ``memory.budget_units == 0`` the scenario's fixed sizes are used
(``master_units``, ``slave_units``, ``edge_units``). With a budget, the memory
model of :mod:`solvers.memory` distributes it to maximise the minimum predicted
key rate over intra- and inter-cluster demands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from planner.backbone import Backbone
from planner.network import Network
from planner.scenario import Scenario

if TYPE_CHECKING:
    from planner.pipeline import StageResult


def fixed_allocation(access: StageResult, backbone: Backbone, scenario: Scenario) -> dict[str, object]:
    """Memory units per site (``nodes``: Series by site id) and per backbone link (``edges``: Series by link id)."""
    mem = scenario.memory
    a = access.tables["assignment"]
    units = pd.Series(0, index=pd.Index([], dtype=str), dtype=int)
    if len(a):
        units = pd.Series(
            [mem.master_units if r == "master" else mem.slave_units for r in a["role"]],
            index=a["site"].astype(str), dtype=int)
    edges = pd.Series(mem.edge_units, index=backbone.links["link_id"].astype(str), dtype=int)
    return {"nodes": units, "edges": edges}


def plan_memory(network: Network, access: StageResult, backbone: Backbone, stages: dict[str, StageResult],
                scenario: Scenario, *, seed: int = 0) -> StageResult:
    """Memory allocation; tables ``nodes`` (Series site -> units) and ``edges`` (Series link -> units)."""
    from planner.pipeline import StageResult

    out = StageResult()
    if scenario.memory.budget_units > 0:
        from planner.memory_opt import optimise_memory

        return optimise_memory(network, access, backbone, stages, scenario, seed=seed)
    alloc = fixed_allocation(access, backbone, scenario)
    out.tables.update(alloc)  # type: ignore[arg-type]
    return out
