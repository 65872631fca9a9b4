"""``plan(network, scenario) -> Design``: the planning pipeline.

This module only orchestrates; each stage is a plain function over tables in
:mod:`planner.stages`, handing back a :class:`~planner.stages.result.StageResult`:

1. :func:`~planner.stages.prepare.prepare_network` — add candidate links where the input
   has none or is disconnected;
2. :func:`~planner.stages.access.plan_access` — cluster assignment and master placement
   (:mod:`solvers.clustering`, warm-started and compared with
   :mod:`solvers.heuristics`);
3. backbone — contract the network onto clusters and route demands
   (:mod:`planner.stages.backbone`);
4. :func:`~planner.stages.repeaters.plan_repeaters` — repeaters per backbone link
   (:mod:`solvers.repeaters`), or :func:`~planner.stages.placement.plan_placement` at existing sites;
5. :func:`~planner.stages.trust.plan_trust` — trusted relays (:mod:`solvers.trust`), verified with
   SMR routing (:mod:`planner.routing`);
6. :func:`~planner.stages.memory.plan_memory` — memory units (:mod:`solvers.memory`);
7. :func:`~planner.stages.assemble.assemble_design` — the :class:`~planner.model.design.Design`
   tables and metrics.

Progress: ``progress(stage)`` is called as each stage starts; inside a
stage's budget :func:`planner.runtime.progress.set_stage_limit` gives the current stage
of the process-wide progress tracker that budget, so a display can say how much
of it is left.

Time limits: each stage runs inside its budget (:class:`planner.stages.budget.PlanClock`;
the split of a plan-wide ``time_limit_s`` over the stages is described in
:mod:`planner.stages.budget`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from planner import __version__
from planner.model.design import Design
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.stages.access import plan_access
from planner.stages.assemble import assemble_design
from planner.stages.backbone import Backbone, build_backbone, cluster_of
from planner.stages.budget import PlanClock
from planner.stages.memory import plan_memory
from planner.stages.placement import plan_placement
from planner.stages.prepare import prepare_network
from planner.stages.repeaters import plan_repeaters
from planner.stages.result import StageResult
from planner.stages.trust import plan_trust

Progress = Callable[[str], None]


def _repeater_stage(
    network: Network, backbone: Backbone, clock: PlanClock, stages: dict[str, StageResult], say: Progress, seed: int
) -> Backbone:
    """Run the repeater stage the scenario asks for into ``stages["repeaters"]``; returns the backbone
    the later stages plan on (the elementary links between repeater sites with ``placement``)."""
    if clock.scenario.backbone.repeaters == "placement":
        say("backbone: repeater placement on existing sites (MILP)")
        with clock.stage("repeaters") as (sc, _):
            backbone, stages["repeaters"] = plan_placement(network, backbone, sc, seed=seed)
        return backbone
    say("backbone: repeater spacing (MILP)")
    with clock.stage("repeaters") as (sc, b):
        stages["repeaters"] = plan_repeaters(backbone, sc, seed=seed)
    clock.record(stages["repeaters"].timing, "repeaters", b)
    return backbone


def plan(
    network: Network,
    scenario: Scenario,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    time_limit_s: float | None = None,
) -> Design:
    """Plan ``network`` under ``scenario`` and return the chosen :class:`Design`.

    Guarantees: every site appears once in ``design.sites`` with a role; every
    cluster satisfies the size, reach and budget constraints (the solvers check
    their solutions); all random choices derive from ``seed``. Raises
    :class:`~planner.errors.InfeasibleDesignError` naming the conflicting
    constraints when no design exists, and
    :class:`~planner.errors.ValidationError` for invalid inputs. ``time_limit_s``
    bounds the time limits handed to the solvers of all stages together (see
    :mod:`planner.stages.budget` for the split); without it each stage has ``solver.time_limit_s``.
    """
    say = progress or (lambda stage: None)
    mode = scenario.backbone.mode
    repeaters, trusted = mode in ("repeaters", "both"), mode in ("trusted", "both")
    clock = PlanClock(
        scenario,
        ["access", *(["repeaters"] if repeaters else []), *(["trust"] if trusted else []), "memory"],
        time_limit_s,
    )
    network, notes = prepare_network(network, scenario)
    say("access clusters: assignment and master placement (MILP)")
    with clock.stage("access") as (sc, b):
        access, access_tables = plan_access(network, sc, seed=seed)
    clock.record(access.timing, "access", b)  # all of the stage, every solve
    stages: dict[str, StageResult] = {"access": access}
    say("backbone: contracting the network onto clusters")
    t_bb = time.perf_counter()
    site_to_node = cluster_of(access.tables["assignment"], access_tables.standalone)
    backbone = build_backbone(network, site_to_node, scenario)
    access.timing["backbone.build_s"] = time.perf_counter() - t_bb
    if repeaters:
        backbone = _repeater_stage(network, backbone, clock, stages, say, seed)
    if trusted:
        say("backbone: trusted-relay selection (MILP) and SMR verification")
        with clock.stage("trust") as (sc, b):
            stages["trust"] = plan_trust(network, backbone, sc, seed=seed)
        clock.record(stages["trust"].timing, "trust", b)
    say("memory allocation")
    with clock.stage("memory") as (sc, b):
        stages["memory"] = plan_memory(network, access, backbone, stages, sc, seed=seed)
    clock.record(stages["memory"].timing, "memory", b)
    design = assemble_design(network, scenario, seed, access, access_tables, backbone, stages, notes)
    design.timing["total_s"] = time.perf_counter() - clock.start
    design.metrics["demand_model"] = backbone.demand_model
    design.version = __version__
    return design
