"""Thin wrappers over the planner, simulator and reports: the functions ``import qkdplan`` exposes."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from planner.model import design as _design
from planner.model.network import Network
from planner.model.scenario import Scenario

PathLike = str | os.PathLike[str]


class Design(_design.Design):
    """A planned network (tables, metrics, solver summaries), with methods to export it.

    Tables: ``sites``, ``clusters``, ``links``, ``demands``, ``relays``, ``fibre``, ``access_pareto``
    (pandas DataFrames; every column's dtype, unit and meaning is declared in
    :mod:`planner.model.schema`, rendered as ``docs/design_tables.md``);
    ``metrics``, ``solves``, ``notes``. ``Design.read(folder)`` reads a run folder.
    """

    @classmethod
    def from_planner(cls, design: _design.Design) -> Design:
        """The same design as this class (no copy of the tables)."""
        if isinstance(design, cls):
            return design
        return cls(**{f.name: getattr(design, f.name) for f in dataclasses.fields(design)})

    def to_geodataframes(self) -> dict[str, gpd.GeoDataFrame]:
        """The layers of ``design.gpkg`` as GeoDataFrames, by layer name (``sites``, ``links``, ...)."""
        from planner.io.writers import (
            design_layers,  # geopandas/pyogrio only when layers are wanted
        )

        return design_layers(self)

    def write(self, folder: PathLike, *, force: bool = False, simulation: Mapping[str, Any] | None = None) -> Path:
        """Write the run folder (as ``qkdplan plan --out``): design.json, CSV tables, design.gpkg, report.html.

        Follows the output-folder rules of :mod:`planner.io.atomic`: a previous
        run there is replaced, other files are never deleted or overwritten, a
        folder of other files is refused unless ``force``. Returns the folder.
        """
        from planner.io.atomic import atomic_output_dir
        from planner.io.writers import write_design_files
        from reports.html import render_report

        target = Path(folder)
        with atomic_output_dir(target, force=force) as tmp:
            write_design_files(self, tmp)
            sim = dict(simulation) if simulation is not None else None
            if sim is not None:
                from planner.simulate.design_check import write_simulation_files

                write_simulation_files(sim, tmp)
            render_report(self, tmp / "report.html", simulation=sim)
        return target

    def report(self, path: PathLike, *, simulation: Mapping[str, Any] | None = None) -> Path:
        """Write the self-contained HTML report to ``path`` (an existing file there is replaced)."""
        from reports.html import render_report

        return render_report(self, Path(path), simulation=dict(simulation) if simulation is not None else None)


def read_network(
    source: PathLike | gpd.GeoDataFrame | pd.DataFrame | Any,
    *,
    scenario: Scenario | None = None,
    name: str | None = None,
    crs: str | None = None,
    geocode: bool | None = None,
    strict_coordinates: bool | None = None,
    route_factor: float | None = None,
    drop_external: bool | None = None,
) -> Network:
    """A validated :class:`~planner.model.network.Network` from a file path, GeoDataFrame, DataFrame or networkx graph.

    Settings left as None come from ``scenario.network`` (default scenario if
    none): ``crs`` of x/y columns or of GIS data without a CRS, ``geocode``
    (locate named nodes without coordinates in the offline gazetteer),
    ``strict_coordinates`` (refuse such nodes), ``route_factor``,
    ``drop_external``. Raises :class:`~planner.errors.ValidationError` /
    :class:`~planner.errors.InputFormatError` listing every problem.
    """
    from planner.io.readers import network_from_data
    from planner.io.readers import read_network as _read_file
    from planner.model.scenario import default_scenario

    ns = (scenario or default_scenario()).network
    opts: dict[str, Any] = {
        "name": name,
        "crs": crs if crs is not None else (ns.crs or None),
        "geocode": ns.geocode if geocode is None else geocode,
        "strict_coordinates": ns.strict_coordinates if strict_coordinates is None else strict_coordinates,
        "route_factor": ns.route_factor if route_factor is None else route_factor,
        "drop_external": ns.drop_external if drop_external is None else drop_external,
    }
    if isinstance(source, str | os.PathLike):
        return _read_file(source, **opts)
    return network_from_data(source, **opts)


def load_scenario(path: PathLike | None = None, *, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """The scenario in the TOML file ``path`` (the bundled default when None), with ``overrides`` applied.

    ``overrides`` maps dotted keys to values, e.g. ``{"access.capacity": 6}``;
    every problem is reported at once with its key.
    """
    from planner.model.scenario import default_scenario
    from planner.model.scenario import load_scenario as _load

    scenario = _load(Path(path)) if path is not None else default_scenario()
    if overrides:
        scenario = scenario.with_overrides(dict(overrides), source="overrides")
    return scenario


def plan(
    network: Network | PathLike | gpd.GeoDataFrame | pd.DataFrame | Any,
    scenario: Scenario | PathLike | None = None,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Design:
    """Plan ``network`` (a Network, or anything :func:`read_network` takes) under ``scenario``.

    ``scenario`` is a Scenario, a TOML path, or None for the bundled default.
    ``progress(stage)`` is called as each stage starts. Raises
    :class:`~planner.errors.InfeasibleDesignError` naming the conflicting
    constraints when no design exists.
    """
    from planner.pipeline import plan as _plan

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    net = network if isinstance(network, Network) else read_network(network, scenario=sc)
    return Design.from_planner(_plan(net, sc, seed=seed, progress=progress))


def simulate(
    design: _design.Design | PathLike,
    *,
    requests: int = 200,
    duration_s: float | None = None,
    seed: int = 0,
    network: Network | None = None,
) -> dict[str, Any]:
    """Verify a design (or a run folder) by simulation: predicted vs simulated rates and security per pair.

    Returns the JSON form of :class:`planner.simulate.result.SimulationResult` (the content of
    ``simulation.json``) as a plain dict.
    """
    from planner.simulate.design_check import simulate_design

    d = design if isinstance(design, _design.Design) else Design.read(Path(design))
    return simulate_design(d, requests=requests, duration_s=duration_s, seed=seed, network=network).to_dict()


def compare(
    designs: Sequence[_design.Design | PathLike],
    out: PathLike | None = None,
    *,
    force: bool = False,
) -> pd.DataFrame:
    """Compare designs (Design objects or run folders) side by side; returns the comparison table.

    With ``out``, ``comparison.html`` and ``comparison.csv`` are written
    there (output-folder rules as :meth:`Design.write`).
    """
    from planner.io.atomic import atomic_output_dir
    from planner.io.writers import write_design_files
    from reports.compare import write_comparison

    with tempfile.TemporaryDirectory(prefix="qkdplan-compare-") as scratch:
        runs: list[Path] = []
        for i, d in enumerate(designs):
            if isinstance(d, _design.Design):
                folder = Path(scratch) / f"{i + 1}-{_safe(d.network_name)}"
                folder.mkdir()
                write_design_files(d, folder)
                runs.append(folder)
            else:
                runs.append(Path(d))
        if out is None:
            return write_comparison(runs, Path(scratch) / "comparison")
        with atomic_output_dir(
            Path(out), inputs=[r for r in runs if not str(r).startswith(scratch)], force=force
        ) as tmp:
            return write_comparison(runs, tmp)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))[:40] or "design"
