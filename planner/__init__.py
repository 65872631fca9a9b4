"""qkdplan planner: the domain (data model, physics, routing, keys, stages, simulation, sweeps).

Sub-packages by job (docs/architecture.md): ``io``, ``model``, ``topology``, ``routing``, ``keys``,
``stages``, ``simulate``, ``sweep``, ``runtime``; ``physics``, ``geo`` and ``errors`` are shared by all.
The command-line interface lives in :mod:`qkdplan.cli`, outside the domain.

The public entry points are :func:`planner.io.readers.read_network`,
:func:`planner.model.scenario.load_scenario` and :func:`planner.pipeline.plan`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qkdplan")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
