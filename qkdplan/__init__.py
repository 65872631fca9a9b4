"""qkdplan: plan quantum-key-distribution networks from Python.

The public face of the project (the work is done in ``planner``, ``solvers``
and ``reports``)::

    import qkdplan

    network = qkdplan.read_network("sites.csv")          # or a GeoDataFrame, DataFrame, networkx graph
    scenario = qkdplan.load_scenario(overrides={"access.capacity": 6})
    design = qkdplan.plan(network, scenario, seed=1)
    design.write("run")                                   # design.json, CSV tables, design.gpkg, report.html
    layers = design.to_geodataframes()                    # {"sites": GeoDataFrame, "links": ..., ...}
    sim = qkdplan.simulate(design, requests=50)

See ``docs/api.md``.
"""

from __future__ import annotations

from planner import __version__
from planner.errors import (
    InfeasibleDesignError,
    InputFormatError,
    QkdplanError,
    SolverUnavailableError,
    ValidationError,
)
from planner.model.network import Network
from planner.model.scenario import Scenario
from qkdplan._api import Design, compare, load_scenario, plan, read_network, simulate

__all__ = [
    "Design",
    "InfeasibleDesignError",
    "InputFormatError",
    "Network",
    "QkdplanError",
    "Scenario",
    "SolverUnavailableError",
    "ValidationError",
    "__version__",
    "compare",
    "load_scenario",
    "plan",
    "read_network",
    "simulate",
]
