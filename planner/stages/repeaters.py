"""Repeater stage of the pipeline: repeaters per backbone link (the spacing model).

The stage builds the ``links`` and ``demands`` tables of :func:`solvers.repeaters.solve_spacing`
from the backbone, hands it the physics as numbers (:func:`planner.stages.repeater_tables.chain_tables`:
Eqs. 7-10 per link option and per hop count, computed with :mod:`planner.physics`), and turns the
model's outcome into a :class:`~planner.stages.result.RepeaterResult` (typed per-link and per-demand
fields, and tables ``links`` and ``demands``).
Repeaters at existing sites instead (``backbone.repeaters = "placement"``) are
:mod:`planner.stages.placement`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from planner.model.scenario import Scenario
from planner.stages.backbone import Backbone
from planner.stages.latency import apply_protocol_latency_limit
from planner.stages.repeater_tables import chain_tables
from planner.stages.result import RepeaterResult, require_solution, solver_errors, solver_options
from solvers.repeaters import ChainTables, RepeaterInputError, solve_spacing

REPEATER_FIX = (
    "lower backbone.rate_target, raise backbone.max_repeaters_per_link or memory.edge_units, or raise physics.q_swap"
)
"""What the user can change when demands cannot reach the backbone's rate target."""


def spacing_tables(backbone: Backbone, scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame, ChainTables]:
    """The spacing model's ``links`` (lengths of at least 1 m) and ``demands`` tables (a rate target only
    under ``min_cost``) and its chain tables (the scenario's physics and ``memory.edge_units``)."""
    bbs = scenario.backbone
    links = pd.DataFrame(
        {
            "link": backbone.links["link_id"],
            "length_km": np.maximum(backbone.links["length_km"].astype(float), 1e-3),
            "cost_per_repeater": bbs.repeater_cost,
            "max_repeaters": bbs.max_repeaters_per_link,
        }
    )
    demands = pd.DataFrame(
        {
            "demand": backbone.demands["demand_id"],
            "path": [p.split(";") for p in backbone.demands["links"]],
            "rate_target": bbs.rate_target if bbs.objective == "min_cost" else math.nan,
        }
    )
    return links, demands, chain_tables(links, scenario.physics, memory_units=scenario.memory.edge_units)


def unreachable_note(unreachable: dict[str, float], scenario: Scenario) -> str:
    """The note on demands planned without: they cannot reach the rate target with any spacing
    (``unreachable``: demand -> the best rate it can reach), the ten worst named."""
    bbs = scenario.backbone
    worst = sorted(unreachable, key=lambda d: unreachable[d])[:10]
    return (
        f"{len(unreachable)} backbone demand(s) cannot reach backbone.rate_target = {bbs.rate_target:.4g} "
        f"even with {bbs.max_repeaters_per_link} repeaters on every link; the spacing was planned for the "
        "others and their shortfall is in the demands table (column 'shortfall'). Reachable at most: "
        + ", ".join(f"{d} {unreachable[d]:.3g}" for d in worst)
        + (", ..." if len(unreachable) > 10 else "")
        + f". Fix: {REPEATER_FIX}."
    )


def plan_repeaters(backbone: Backbone, scenario: Scenario, *, seed: int = 0) -> RepeaterResult:
    """Repeaters per backbone link against the Eq. 9 rate target (or max-min rate under a budget).

    A :class:`~planner.stages.result.RepeaterResult`: repeaters, segment length and segment
    success probability per link; hops, worst segment, rate and latency per demand (and the
    shortfall of demands no spacing brings to the target), as typed fields and as the tables
    ``links`` and ``demands`` that :func:`solvers.repeaters.solve_spacing` reports (no chains
    without links or demands).
    Raises :class:`~planner.errors.InfeasibleDesignError` when no spacing meets the targets
    or none was found in the time limit.
    """
    out = RepeaterResult()
    bbs = scenario.backbone
    if len(backbone.links) == 0 or len(backbone.demands) == 0:
        out.set_chains(
            pd.DataFrame({"link": backbone.links["link_id"], "repeaters": 0}), pd.DataFrame(columns=["demand"])
        )
        return out
    links, demands, tables = spacing_tables(backbone, scenario)
    eq10_limit = bbs.max_latency_s or None
    if eq10_limit is not None and bbs.latency_model == "protocol":
        demands, note = apply_protocol_latency_limit(demands, links, scenario)
        out.notes.append(note)
        eq10_limit = None
    with solver_errors(
        "backbone",
        RepeaterInputError,
        infeasible="No repeater spacing meets the backbone targets.",
        fix=REPEATER_FIX,
        max_items=10,
    ):
        result = solve_spacing(
            links,
            demands,
            tables,
            mode=bbs.objective,
            budget=bbs.repeater_budget * bbs.repeater_cost if bbs.objective == "max_min_rate" else None,
            latency_limit_s=eq10_limit,
            options=solver_options(scenario, seed=seed),
            plan_reachable=True,
        )
    require_solution(
        result,
        "repeater-spacing stage",
        fix="raise solver.time_limit_s or the plan's --time-limit",
        details=(f"time limit of the stage: {scenario.solver.time_limit_s:.1f} s",),
    )
    out.record_solve("repeaters", result, f"repeater spacing MILP ({bbs.objective})")
    out.set_chains(result.tables["links"], result.tables["demands"])
    out.unreachable = {str(d): float(r) for d, r in (result.info.get("unreachable") or {}).items()}
    if out.unreachable:  # planned without them: they cannot reach the target with any spacing
        out.notes.append(unreachable_note(out.unreachable, scenario))
    return out
