"""The backbone between clusters: its nodes, links, fibre routes and demands.

Backbone nodes are the cluster masters and the standalone sites (sites that
no cluster can serve). Two backbone nodes are linked when the network has a
fibre link between their clusters (the input graph contracted onto clusters);
the link's length is the shortest fibre route between the two backbone sites
and its ``route`` lists the sites along it (for maps and for trusted-relay
routing). Demands are pairs of backbone nodes, each routed on the shortest
backbone path.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass

import networkx as nx
import pandas as pd

from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.stages.demands import demand_pairs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backbone:
    """Backbone nodes, links and demands as tables.

    ``nodes``: index backbone node id (a site id), column ``cluster`` (same id).
    ``links``: ``link_id, u, v, length_km, route`` (";"-joined site ids).
    ``demands``: ``demand_id, source, target, path`` (";"-joined backbone
    nodes), ``links`` (";"-joined link ids), ``length_km``.
    ``demand_model``: one line saying which demand model chose the pairs.
    """

    nodes: list[str]
    links: pd.DataFrame
    demands: pd.DataFrame
    demand_model: str = "all pairs of the backbone nodes"

    def graph(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(self.nodes)
        for row in self.links.itertuples(index=False):
            g.add_edge(row.u, row.v, length_km=float(row.length_km), link_id=row.link_id)
        return g


def cluster_of(assignment: pd.DataFrame, standalone: list[str]) -> dict[str, str]:
    """Map every site to its backbone node (its master, or itself when standalone/master)."""
    out = {str(r.site): str(r.master) for r in assignment.itertuples(index=False)}
    for s in standalone:
        out[s] = s
    return out


def build_backbone(network: Network, site_to_node: dict[str, str], scenario: Scenario) -> Backbone:
    """Contract the network onto backbone nodes and route the demands.

    Guarantees: the backbone graph is connected whenever the network graph is;
    every link length is the shortest fibre distance between its two backbone
    sites; demand paths minimise total backbone length.
    """
    g = network.graph()
    nodes = sorted(set(site_to_node.values()))
    if len(nodes) < 2:
        return Backbone(nodes=nodes, links=_empty_links(), demands=_empty_demands())
    adjacent: set[tuple[str, str]] = set()
    for a, b in g.edges():
        na, nb = site_to_node.get(str(a)), site_to_node.get(str(b))
        if na is None or nb is None or na == nb:
            continue
        adjacent.add((min(na, nb), max(na, nb)))
    rows = []
    for u, v in sorted(adjacent):
        try:
            length, route = nx.single_source_dijkstra(g, u, v, weight="length_km")
        except nx.NetworkXNoPath:
            continue
        rows.append(
            {"link_id": f"{u}--{v}", "u": u, "v": v, "length_km": float(length), "route": ";".join(map(str, route))}
        )
    links = pd.DataFrame(rows, columns=["link_id", "u", "v", "length_km", "route"])
    bb = nx.Graph()
    bb.add_nodes_from(nodes)
    for r in links.itertuples(index=False):
        bb.add_edge(r.u, r.v, length_km=r.length_km, link_id=r.link_id)
    model = demand_pairs(network, site_to_node, nodes, bb, scenario.demands)
    demands = route_demands(bb, model.pairs)
    logger.info("backbone: %d nodes, %d links, %d demands (%s)", len(nodes), len(links), len(demands), model.mode)
    return Backbone(nodes=nodes, links=links, demands=demands, demand_model=model.description)


def route_demands(bb: nx.Graph, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Shortest backbone path (by length) of each pair; pairs without a path are dropped with a log line.

    One Dijkstra per distinct source, stopped once its targets are settled,
    instead of one per pair (the paths are the ones a per-pair networkx search
    returns: Dijkstra fixes a node's path when it is settled, and
    :func:`_dijkstra_until` explores in networkx's order). Rows keep the order
    of ``pairs``.
    """
    by_source: dict[str, list[str]] = {}
    for s, t in pairs:
        by_source.setdefault(s, []).append(t)
    found: dict[tuple[str, str], tuple[float, list[str]]] = {}
    for s, targets in by_source.items():
        if s not in bb:
            continue
        if len(targets) == 1:
            try:
                length, path = nx.single_source_dijkstra(bb, s, targets[0], weight="length_km")
            except nx.NetworkXNoPath:
                continue
            found[(s, targets[0])] = (float(length), path)
            continue
        lengths, paths = _dijkstra_until(bb, s, set(targets))
        for t in targets:
            if t in lengths:
                found[(s, t)] = (float(lengths[t]), paths[t])
    rows = []
    for s, t in pairs:
        if (s, t) not in found:
            logger.warning("no backbone path between %s and %s", s, t)
            continue
        length, path = found[(s, t)]
        link_ids = [bb.edges[a, b]["link_id"] for a, b in itertools.pairwise(path)]
        rows.append(
            {
                "demand_id": f"{s}~{t}",
                "source": s,
                "target": t,
                "path": ";".join(path),
                "links": ";".join(link_ids),
                "length_km": length,
            }
        )
    return pd.DataFrame(rows, columns=["demand_id", "source", "target", "path", "links", "length_km"])


def _dijkstra_until(bb: nx.Graph, source: str, targets: set[str]) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Shortest ``length_km`` distances and paths from ``source``, stopping when every target is settled.

    Same exploration order and tie-breaking as ``nx.single_source_dijkstra``
    (heap of (distance, insertion count), a path replaced only by a strictly
    shorter one), so settled paths are identical to networkx's. Returned
    ``dist`` holds the settled nodes only.
    """
    adj = bb.adj
    dist: dict[str, float] = {}
    seen: dict[str, float] = {source: 0.0}
    paths: dict[str, list[str]] = {source: [source]}
    counter = itertools.count()
    fringe: list[tuple[float, int, str]] = [(0.0, next(counter), source)]
    left = set(targets)
    while fringe and left:
        d, _, v = heapq.heappop(fringe)
        if v in dist:
            continue
        dist[v] = d
        left.discard(v)
        for u, e in adj[v].items():
            vu = d + e.get("length_km", 1)
            if u in dist:
                continue
            if u not in seen or vu < seen[u]:
                seen[u] = vu
                heapq.heappush(fringe, (vu, next(counter), u))
                paths[u] = [*paths[v], u]
    return dist, paths


def _empty_links() -> pd.DataFrame:
    return pd.DataFrame(columns=["link_id", "u", "v", "length_km", "route"])


def _empty_demands() -> pd.DataFrame:
    return pd.DataFrame(columns=["demand_id", "source", "target", "path", "links", "length_km"])
