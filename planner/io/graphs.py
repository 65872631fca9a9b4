"""Graph files (GraphML, GML: Internet Topology Zoo, RepAlloc) and in-memory ``networkx`` graphs.

Node ``label`` is the site name; ``Latitude``/``Longitude`` (or a RepAlloc
``position`` string ``"[lon, lat]"``) the coordinates; ``Internal 0`` marks
external nodes; Topology Zoo ``hyperedge`` nodes are junctions without a place;
an edge ``length``/``length_km`` is a stated length in km.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from planner.errors import InputFormatError, ProblemCollector, ValidationError
from planner.io.records import (
    LAT_KEYS,
    LON_KEYS,
    RawLink,
    RawNetwork,
    RawSite,
    first_key,
    is_blank,
    logging_warnings,
    raise_if_any,
    read_text,
    short_error,
)

log = logging.getLogger(__name__)


def read_graphml(file: Path, *, crs: str | None, drop_external: bool) -> RawNetwork:
    """Raw sites and links of a GraphML file (parallel edges kept for collapsing); see :func:`raw_from_graph`."""
    src = str(file)
    try:
        graph = logging_warnings(src, nx.read_graphml, file, force_multigraph=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes one domain error
        raise InputFormatError(
            f"malformed GraphML: {short_error(exc)} (fix: repair the XML / GraphML structure)",
            source=src,
        ) from None
    return raw_from_graph(graph, src, drop_external=drop_external)


def read_gml(file: Path, *, crs: str | None, drop_external: bool) -> RawNetwork:
    """Raw sites and links of a GML file (node ids as keys); see :func:`raw_from_graph`."""
    src = str(file)
    text = read_text(file)
    try:
        graph = logging_warnings(src, _parse_gml, text)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes one domain error
        raise InputFormatError(
            f"malformed GML: {short_error(exc)} (fix: repair the GML syntax: graph [ node [ id .. ] edge [ source .. "
            "target .. ] ])",
            source=src,
        ) from None
    return raw_from_graph(graph, src, drop_external=drop_external)


def _parse_gml(text: str) -> nx.MultiGraph:
    """Parse GML with node ids as keys; parallel edges are allowed even without 'multigraph 1'."""
    if not re.search(r"^\s*multigraph\s+1\b", text, re.MULTILINE):
        text = re.sub(r"\bgraph\s*\[", "graph [\n  multigraph 1", text, count=1)
    return nx.parse_gml(text, label="id")


_POSITION = re.compile(r"^\s*[\[(]?\s*([^,\s\])]+)\s*[,\s]\s*([^,\s\])]+)\s*[\])]?\s*$")


def _node_coords(attrs: Mapping[str, Any]) -> tuple[Any, Any, str]:
    """(lat, lon, how) from node attributes; (None, None, '') when the node has no coordinates."""
    lat_key = first_key(attrs.keys(), LAT_KEYS)
    lon_key = first_key(attrs.keys(), LON_KEYS)
    if lat_key is not None or lon_key is not None:
        return (
            (attrs.get(lat_key) if lat_key else None),
            (attrs.get(lon_key) if lon_key else None),
            "latlon",
        )
    pos = attrs.get("position")
    if pos is not None:
        if isinstance(pos, list | tuple) and len(pos) == 2:
            return pos[1], pos[0], "position"
        m = _POSITION.match(str(pos))
        if m:
            return m.group(2), m.group(1), "position"
        return f"unparsable position {pos!r}", f"unparsable position {pos!r}", "position"
    return None, None, ""


def _is_junction(attrs: Mapping[str, Any]) -> bool:
    """A Topology Zoo ``hyperedge`` node: a shared-medium junction, not a place."""
    value = attrs.get("hyperedge", attrs.get("Hyperedge"))
    return value is not None and str(value).strip() not in ("", "0", "0.0", "False", "false")


def _is_external(attrs: Mapping[str, Any]) -> bool:
    internal = attrs.get("Internal", attrs.get("internal"))
    return internal is not None and str(internal).strip() in ("0", "0.0", "False", "false")


def raw_from_graph(graph: nx.Graph, src: str, *, drop_external: bool) -> RawNetwork:
    """Raw sites and links of a graph (see the module docstring); the meta ``name`` is the graph's name.

    External nodes (``Internal 0``) are dropped when ``drop_external`` or when
    they have no coordinates, with their edges. Duplicate labels are made
    unique as ``label#node_id``. Raises :class:`ValidationError` for self-loops
    and for internal nodes without coordinates and without links.
    """
    problems = ProblemCollector(source=src)
    if graph.number_of_nodes() == 0:
        raise InputFormatError("graph has zero nodes (fix: add nodes with coordinates)", source=src)
    if graph.is_directed():
        log.info("%s: directed graph read as undirected", src)
    kept = _kept_nodes(graph, src, drop_external, problems)
    label_count = Counter(k["label"] for k in kept.values())
    sites: list[RawSite] = []
    site_of: dict[Any, str] = {}
    for node, k in kept.items():
        sid = k["label"] if label_count[k["label"]] == 1 else f"{k['label']}#{node}"
        site_of[node] = sid
        sites.append(_site_from_node(node, k, sid))
    dupes = sorted(lab for lab, n in label_count.items() if n > 1)
    if dupes:
        log.info("%s: duplicate labels made unique as 'label#node_id': %s", src, dupes)
    links = _links_from_edges(graph, src, kept, site_of, problems)
    raise_if_any(problems, ValidationError)
    meta_name = graph.graph.get("Network") or graph.graph.get("label") or graph.graph.get("name")
    return sites, links, {"name": str(meta_name).strip() if meta_name else None}


def _kept_nodes(
    graph: nx.Graph, src: str, drop_external: bool, problems: ProblemCollector
) -> dict[Any, dict[str, Any]]:
    """Node -> {label, lat, lon, attrs, external, missing} of the nodes that become sites, in graph order."""
    kept: dict[Any, dict[str, Any]] = {}
    dropped: list[str] = []
    used_position = False
    for node, attrs in graph.nodes(data=True):
        label = attrs.get("label")
        label = str(node) if is_blank(label) else str(label).strip()
        lat, lon, how = _node_coords(attrs)
        external = _is_external(attrs)
        has_coords = not (is_blank(lat) and is_blank(lon))
        if external and (drop_external or not has_coords):
            dropped.append(f"{node} ({label}{'' if has_coords else ', no coordinates'})")
            continue
        used_position |= how == "position"
        kept[node] = {
            "label": label,
            "lat": lat,
            "lon": lon,
            "attrs": attrs,
            "external": external,
            "missing": not has_coords,
        }
    for node in [n for n, k in kept.items() if k["missing"]]:
        if not any(nbr in kept and nbr != node for nbr in graph.neighbors(node)):
            problems.add(
                f"{src}, node {node} (label {kept[node]['label']!r})",
                "internal node has no coordinates and no links to place it from",
                "add Latitude and Longitude attributes, link it to a located node, or mark it 'Internal 0' if "
                "it lies outside the network",
            )
            del kept[node]
    if dropped:
        log.warning(
            "%s: dropped %d external node(s) and their links: %s",
            src,
            len(dropped),
            ", ".join(dropped),
        )
    if used_position:
        log.info("%s: coordinates taken from node 'position' strings read as [lon, lat]", src)
    return kept


_NODE_KEYS_USED = frozenset(
    {
        "label",
        "id",
        "position",
        "kind",
        "demand",
        "Latitude",
        "Longitude",
        "latitude",
        "longitude",
        "lat",
        "lon",
        "lng",
        "long",
    }
)
"""Node attributes read into site columns; every other attribute is kept as a column of its own."""


def _site_from_node(node: Any, k: dict[str, Any], sid: str) -> RawSite:
    """The raw site of a kept node (``k`` as made by :func:`_kept_nodes`) with site id ``sid``."""
    attrs = k["attrs"]
    kind = attrs.get("kind")
    if is_blank(kind):
        kind = "external" if k["external"] else None
    return RawSite(
        where=f"node {node} (label {k['label']!r})",
        site_id=sid,
        name=k["label"],
        lat=k["lat"],
        lon=k["lon"],
        kind=kind,
        demand=attrs.get("demand"),
        extra={
            **{a: val for a, val in attrs.items() if a not in _NODE_KEYS_USED},
            "source_node_id": str(node),
        },
        missing_position=k["missing"],
        junction=k["missing"] and _is_junction(attrs),
    )


def _links_from_edges(
    graph: nx.Graph,
    src: str,
    kept: dict[Any, dict[str, Any]],
    site_of: dict[Any, str],
    problems: ProblemCollector,
) -> list[RawLink]:
    """Raw links of the edges between kept nodes; self-loops are recorded as problems."""
    links: list[RawLink] = []
    n_dangling = 0
    edges = (
        graph.edges(keys=True, data=True)
        if graph.is_multigraph()
        else ((u, v, 0, d) for u, v, d in graph.edges(data=True))
    )
    for u, v, key, attrs in edges:
        parallel = graph.is_multigraph() and graph.number_of_edges(u, v) > 1
        where = f"edge {u}–{v}" + (f" (parallel edge {key})" if parallel else "")
        if u == v:
            problems.add(f"{src}, {where}", f"edge is a self-loop on node {u}", "remove the edge")
            continue
        if u not in site_of or v not in site_of:
            if u in kept or v in kept or u not in graph or v not in graph:
                n_dangling += 1
            continue
        stated = attrs.get("length_km", attrs.get("length"))
        extra = {a: val for a, val in attrs.items() if a not in ("length", "length_km", "id", "key")}
        links.append(RawLink(where=where, u=site_of[u], v=site_of[v], length_km=stated, extra=extra))
    if n_dangling:
        log.info("%s: %d edge(s) to dropped nodes skipped", src, n_dangling)
    return links
