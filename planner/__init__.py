"""qkdplan planner: network data, physics, routing, keys, simulation, pipeline and CLI.

The public entry points are :func:`planner.io.read_network`,
:func:`planner.scenario.load_scenario` and :func:`planner.pipeline.plan`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qkdplan")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
