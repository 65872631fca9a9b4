"""Access-stage probe: wall time of :func:`planner.stages.access.plan_access` against its budget.

Loads a real site list of :mod:`benchmarks.sites` (``name,lat,lon,demand``), prepares the network as
:func:`planner.pipeline.plan` does, and runs the access stage alone inside its stage budget (the
default scenario with ``solver.time_limit_s`` set to each limit asked for). Prints one JSON line per
run: wall time of the stage, of building the access tables, the budget, clusters and standalone sites,
status and bound.

Run: ``python -m benchmarks.access_stage us-10000 us-3407 --limits 10 20 60``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

from benchmarks.sites import site_list
from planner.io.readers import read_network
from planner.model.scenario import default_scenario
from planner.stages.access import plan_access
from planner.stages.budget import PlanClock
from planner.stages.prepare import prepare_network


def probe_access(name: str, limit_s: float) -> dict[str, Any]:
    """Run the access stage of the default scenario on site set ``name`` with a budget of ``limit_s``."""
    network = read_network(site_list(name))
    base = default_scenario()
    scenario = dataclasses.replace(base, solver=dataclasses.replace(base.solver, time_limit_s=limit_s))
    network, _notes = prepare_network(network, scenario)
    clock = PlanClock(scenario, ["access"], None)
    t0 = time.perf_counter()
    with clock.stage("access") as (sc, budget):
        access, tables = plan_access(network, sc, seed=0)
    wall_s = time.perf_counter() - t0
    solve = access.solves.get("access", {})
    return {
        "set": name,
        "n": len(network.sites),
        "budget_s": budget.budget_s,
        "stage_s": round(wall_s, 2),
        "overshoot_s": round(wall_s - budget.budget_s, 2),
        "timing": {k: round(v, 2) for k, v in access.timing.items()},
        "clusters": len(access.tables["clusters"]),
        "standalone": len(tables.standalone),
        "status": solve.get("status"),
        "objective": solve.get("objective"),
        "bound": solve.get("bound"),
        "gap": solve.get("gap"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--limits", nargs="+", type=float, default=[60.0])
    args = parser.parse_args(argv)
    for name in args.sets:
        for limit in args.limits:
            print(json.dumps(probe_access(name, limit), default=str), flush=True)


if __name__ == "__main__":
    main()
