"""The site-level fibre graph the trusted-relay (SMR) routing of a design ran on."""

from __future__ import annotations

import logging
from pathlib import Path

import networkx as nx
import pandas as pd

from planner.errors import InputFormatError, ValidationError
from planner.io.bundled import bundled_networks
from planner.io.readers import read_network
from planner.model.design import Design
from planner.model.network import Network, make_sites
from planner.model.scenario import Scenario
from planner.stages.prepare import prepare_network

logger = logging.getLogger(__name__)

__all__ = ["fibre_graph"]


def fibre_graph(design: Design, scenario: Scenario, *, network: Network | None = None) -> tuple[nx.Graph, str, bool]:
    """The site-level fibre graph SMR routing ran on during planning, its origin, and exactness.

    In order: the ``network`` given (after the pipeline's candidate-link step:
    exact); a ``fibre`` table of the design (columns ``u, v``) if it has one; the
    bundled network file named by ``design.network_source`` if its sites are the
    design's (exact); the design's sites joined by the pipeline's generated
    candidate links, accepted when every backbone fibre route runs on them (exact for
    inputs without links, such as a CSV of sites); else the union of the backbone
    links' fibre routes (approximate: SMR may find fewer paths than during planning,
    so security is then reported but not flagged).
    """
    site_ids = set(design.sites["site_id"].astype(str)) if len(design.sites) else set()
    route_edges = _route_edges(design)
    if network is not None:
        prepared, _ = prepare_network(network, scenario)
        return prepared.graph(), "network given", True
    stored = getattr(design, "fibre", None)  # the design table of fibre links (u, v)
    if isinstance(stored, pd.DataFrame) and {"u", "v"} <= set(stored.columns) and len(stored):
        g = nx.Graph()
        g.add_nodes_from(sorted(site_ids))
        g.add_edges_from(zip(stored["u"].astype(str), stored["v"].astype(str), strict=True))
        return g, "the design's fibre table", True
    bundled = _bundled_file(design.network_source)
    if bundled is not None:
        try:
            net = read_network(
                bundled,
                route_factor=scenario.network.route_factor,
                drop_external=scenario.network.drop_external,
            )
            g = prepare_network(net, scenario)[0].graph()
            if {str(n) for n in g.nodes} == site_ids:
                return g, f"bundled network file {bundled.name}", True
            logger.info("bundled %s does not hold the design's sites", bundled.name)
        except (InputFormatError, ValidationError) as exc:  # pragma: no cover
            logger.warning("could not re-read bundled %s: %s", bundled.name, exc)
    rebuilt = _candidate_graph(design, scenario)
    if rebuilt is not None and all(rebuilt.has_edge(u, v) for u, v in route_edges):
        return rebuilt, "the design's sites with the pipeline's generated candidate links", True
    g = nx.Graph()
    g.add_nodes_from(sorted(site_ids))
    g.add_edges_from(route_edges)
    return g, "backbone fibre routes only (the full fibre graph is not stored in the design)", False


def _route_edges(design: Design) -> list[tuple[str, str]]:
    edges: list[tuple[str, str]] = []
    for route in design.links.get("route", pd.Series(dtype=str)):
        hops = [x for x in str(route).split(";") if x]
        edges.extend(zip(hops[:-1], hops[1:], strict=True))
    return edges


def _candidate_graph(design: Design, scenario: Scenario) -> nx.Graph | None:
    """The design's sites with the links the pipeline generates for a site list without links."""
    s = design.sites
    if len(s) < 3 or scenario.network.candidate_links == "none":
        return None
    frame = pd.DataFrame(
        {
            "name": s["name"].astype(str).to_numpy(),
            "kind": s["kind"].astype(str).to_numpy(),
            "demand": 0.0,
            "lat": s["lat"].astype(float).to_numpy(),
            "lon": s["lon"].astype(float).to_numpy(),
        },
        index=pd.Index(s["site_id"].astype(str), name="site_id"),
    )
    try:
        net = Network(
            name=design.network_name,
            sites=make_sites(frame),
            source=design.network_source,
            route_factor=scenario.network.route_factor,
        )
        return prepare_network(net, scenario)[0].graph()
    except (InputFormatError, ValidationError) as exc:
        logger.info("could not rebuild candidate links from the design's sites: %s", exc)
        return None


def _bundled_file(source: str) -> Path | None:
    if not source:
        return None
    try:
        files = bundled_networks()
    except InputFormatError:  # pragma: no cover - no bundled data installed
        return None
    return next((f for f in files if f.name == source), None)
