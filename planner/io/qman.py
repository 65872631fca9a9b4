"""Beijing QMAN JSON (QNET) topologies: ``nodes`` with name/type/latitude/longitude, ``links`` in metres."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from planner.errors import InputFormatError, ProblemCollector
from planner.io.records import (
    RawLink,
    RawNetwork,
    RawSite,
    load_json,
    raise_if_any,
    to_float,
)

log = logging.getLogger(__name__)


QMAN_KINDS = {
    "EndNode": "end",
    "TrustedRepeaterNode": "trusted",
    "UntrustedRepeaterNode": "untrusted",
    "RepeaterNode": "repeater",
    "BackboneNode": "backbone",
}


def read_qman(file: Path, *, crs: str | None, drop_external: bool) -> RawNetwork:
    """Raw sites and links of a QMAN JSON file; raises :class:`InputFormatError` listing every structural problem."""
    src = str(file)
    data = load_json(file)
    problems = ProblemCollector(source=src)
    if not isinstance(data, dict):
        raise InputFormatError(
            "top level is not a JSON object (fix: give {'nodes': [...], 'links': [...]})",
            source=src,
        )
    nodes = data.get("nodes")
    links = data.get("links", [])
    if not isinstance(nodes, list):
        problems.add(f"{src}: nodes", "'nodes' is not a list", "give 'nodes' as a list of objects")
    if not isinstance(links, list):
        problems.add(f"{src}: links", "'links' is not a list", "give 'links' as a list of objects")
    raise_if_any(problems, InputFormatError)
    sites = [
        site
        for i, node in enumerate(nodes)  # type: ignore[arg-type]
        if (site := _site_from_node(src, i, node, problems)) is not None
    ]
    raw_links = [
        raw
        for i, entry in enumerate(links)  # type: ignore[arg-type]
        if (raw := _link_from_json(src, i, entry, problems)) is not None
    ]
    raise_if_any(problems, InputFormatError)
    return sites, raw_links, {}


def _site_from_node(src: str, i: int, node: Any, problems: ProblemCollector) -> RawSite | None:
    """The raw site of ``nodes[i]``; None after recording a malformed node or an unknown type."""
    where = f"nodes[{i}]"
    if not isinstance(node, dict):
        problems.add(
            f"{src}: {where}",
            "node is not an object",
            "give each node as {'name', 'type', 'latitude', 'longitude'}",
        )
        return None
    ntype = node.get("type")
    kind: Any = None
    if ntype is not None:
        kind = QMAN_KINDS.get(str(ntype))
        if kind is None:
            problems.add(
                f"{src}: {where}.type",
                f"unknown node type {ntype!r}",
                f"use one of {sorted(QMAN_KINDS)}",
            )
            return None
    nm = node.get("name")
    extra = {k: v for k, v in node.items() if k not in ("name", "type", "latitude", "longitude")}
    if ntype is not None:
        extra["qman_type"] = str(ntype)
    return RawSite(
        where=f"{where} ({nm!r})" if isinstance(nm, str) else where,
        site_id=nm if isinstance(nm, str | int) and not isinstance(nm, bool) else None,
        name=nm,
        lat=node.get("latitude"),
        lon=node.get("longitude"),
        kind=kind,
        extra=extra,
    )


def _link_from_json(src: str, i: int, link: Any, problems: ProblemCollector) -> RawLink | None:
    """The raw link of ``links[i]`` (distance in metres made km); None after recording a malformed link."""
    where = f"links[{i}]"
    if not isinstance(link, dict):
        problems.add(
            f"{src}: {where}",
            "link is not an object",
            "give each link as {'node1', 'node2', 'qchannel': {'distance': metres}}",
        )
        return None
    dist_m: Any = None
    for channel in ("qchannel", "cchannel"):
        ch = link.get(channel)
        if isinstance(ch, dict) and "distance" in ch:
            dist_m = ch["distance"]
            break
    if dist_m is None and "distance" in link:
        dist_m = link["distance"]
    length_km: Any = None
    if dist_m is not None:
        num = to_float(dist_m)
        length_km = num / 1000.0 if num is not None else dist_m
    extra = {k: v for k, v in link.items() if k not in ("node1", "node2")}
    u, v = link.get("node1"), link.get("node2")
    return RawLink(
        where=f"{where} ({u!r}–{v!r}, distance in metres)",
        u=u,
        v=v,
        length_km=length_km,
        extra=extra,
    )
