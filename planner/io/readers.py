"""Read networks from files and write result tables atomically.

:func:`read_network` chooses a reader by file suffix, then by sniffing the
content, and turns every problem it finds into one :class:`InputFormatError`
(the file cannot be parsed) or :class:`ValidationError` (parsed, but the values
are wrong) that lists *all* problems of the file, each naming the file, the
row / node / edge / key and the fix.

Supported formats:

* CSV (``.csv``, ``.tsv``, or sniffed): one row per site; columns ``name`` (or
  ``site_id``/``id``), ``lat``/``lon`` (also ``latitude``/``longitude``,
  ``lng``/``long``) in degrees, or ``x``/``y`` in the CRS given as ``crs=``
  (command line ``--crs``, scenario ``network.crs``);
  optional ``kind`` and ``demand``; other columns are kept.
* GeoJSON, GeoPackage, Shapefile: Point features are sites (properties as in
  CSV), LineString features are links, matched to sites by ``u``/``v``
  (also ``source``/``target``, ``node1``/``node2``) properties or by their end
  coordinates (within :data:`ENDPOINT_TOLERANCE_KM`); optional ``length_km``.
* GraphML and GML (Internet Topology Zoo, RepAlloc): node ``label`` is the site
  name, ``Latitude``/``Longitude`` (or a RepAlloc ``position`` string
  ``"[lon, lat]"``) the coordinates; ``Internal 0`` marks external nodes; an
  edge ``length``/``length_km`` is a stated length in km.
* SNDlib native format (``NODES ( id ( lon lat ) )`` and ``LINKS`` sections).
* Beijing QMAN JSON (QNET): ``nodes`` with name/type/latitude/longitude and
  ``links`` with node1/node2 and ``qchannel.distance`` in metres.

The writers (:func:`write_geopackage`, :func:`write_csv`, :func:`write_json`)
write to a temporary file in the target folder and then ``os.replace`` it, so a
reader never sees a half-written file.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
import logging
import math
import os
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
from shapely.geometry import LineString, MultiLineString, MultiPoint, Point
from shapely.geometry.base import BaseGeometry

from planner import geo
from planner.errors import InputFormatError, Problem, ProblemCollector, ValidationError
from planner.model.network import (
    CRS_WGS84,
    DEFAULT_ROUTE_FACTOR,
    SITE_KINDS,
    Network,
    empty_links,
    make_links,
    make_sites,
)

log = logging.getLogger(__name__)

ENDPOINT_TOLERANCE_KM = 0.05
"""A LineString end must lie within 50 m of a site to be matched to it."""

QMAN_KINDS = {
    "EndNode": "end",
    "TrustedRepeaterNode": "trusted",
    "UntrustedRepeaterNode": "untrusted",
    "RepeaterNode": "repeater",
    "BackboneNode": "backbone",
}

FORMATS = ("csv", "geojson", "gpkg", "shapefile", "graphml", "gml", "sndlib", "qman-json")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".geojson": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shapefile",
    ".graphml": "graphml",
    ".gml": "gml",
}
_SUPPORTED_TEXT = (
    "CSV (.csv), GeoJSON (.geojson/.json), GeoPackage (.gpkg), Shapefile (.shp), GraphML (.graphml), "
    "GML (.gml), SNDlib native (.txt) or Beijing QMAN JSON (.json)"
)

_ID_KEYS = ("site_id", "id")
_NAME_KEYS = ("name", "label")
_LAT_KEYS = ("lat", "latitude")
_LON_KEYS = ("lon", "lng", "long", "longitude")
_U_KEYS = ("u", "source", "node1", "from")
_V_KEYS = ("v", "target", "node2", "to")


# --------------------------------------------------------------------------- raw records
@dataclass
class _RawSite:
    """One site as found in a file, before validation. ``where`` names it for messages."""

    where: str
    site_id: Any
    name: Any
    lat: Any
    lon: Any
    kind: Any = None
    demand: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    missing_position: bool = False
    junction: bool = False
    position_source: str = "given"


@dataclass
class _RawLink:
    """One link as found in a file, before validation; u/v are site ids."""

    where: str
    u: Any
    v: Any
    length_km: Any = None
    geometry: BaseGeometry | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- entry point
def read_network(
    path: str | os.PathLike[str],
    *,
    route_factor: float = DEFAULT_ROUTE_FACTOR,
    name: str | None = None,
    crs: str | None = None,
    drop_external: bool = True,
    strict_coordinates: bool = False,
    geocode: bool = False,
) -> Network:
    """Read a network file into a validated :class:`Network`.

    ``route_factor`` multiplies great-circle distances where a link has neither
    a stated length nor a geometry. ``crs`` is the CRS of CSV ``x``/``y``
    columns and of GIS files that carry none. ``drop_external`` drops Topology
    Zoo nodes marked ``Internal 0`` (nodes outside the network) and their
    links; external nodes without coordinates are always dropped.

    Nodes without coordinates (Topology Zoo ``hyperedge`` junctions, named
    nodes whose place the file does not give, CSV rows with both coordinates
    blank) are located by :mod:`planner.io.locate`: by name in an offline
    gazetteer when ``geocode`` is true, else at the centroid of their
    neighbours; column ``position_source`` of the sites table says which
    (``given``/``gazetteer``/``neighbours``/``junction``).
    ``strict_coordinates`` refuses them instead, as does a node that can be
    neither located nor placed (no located node in its component).

    Guarantees: the result passes :meth:`Network.validate`; links exist only
    where the file gives them (call :meth:`Network.with_candidate_links` to add
    generated ones); parallel links are collapsed to the shortest. A
    disconnected network is returned as is (logged). Raises
    :class:`InputFormatError` / :class:`ValidationError` listing every problem.
    """
    file = Path(path)
    label = str(file)
    if (
        not isinstance(route_factor, int | float)
        or not math.isfinite(route_factor)
        or route_factor < 1.0
    ):
        raise ValidationError(
            f"route_factor must be a finite number >= 1 (fibre is never shorter than the great circle), got {route_factor!r}",
            source=label,
        )
    if not file.exists():
        raise InputFormatError(
            f"file not found (fix: check the path; working directory is {Path.cwd()})", source=label
        )
    if file.is_dir():
        raise InputFormatError(
            "is a folder, not a network file (fix: name a file inside it)", source=label
        )
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise InputFormatError(f"cannot read the file: {exc.strerror}", source=label) from None
    if size == 0:
        raise InputFormatError(
            f"file is empty (fix: give a non-empty {_SUPPORTED_TEXT} file)", source=label
        )
    fmt = _detect_format(file)
    reader: Callable[..., tuple[list[_RawSite], list[_RawLink], dict[str, Any]]] = _READERS[fmt]
    log.info("reading %s as %s", label, fmt)
    sites, links, meta = reader(file, crs=crs, drop_external=drop_external)
    _locate_missing(label, sites, links, strict=strict_coordinates, geocode=geocode)
    net_name = name or str(meta.get("name") or file.stem)
    return _assemble(label, net_name, sites, links, route_factor=route_factor)


def network_from_data(
    data: Any,
    *,
    name: str | None = None,
    route_factor: float = DEFAULT_ROUTE_FACTOR,
    crs: str | None = None,
    drop_external: bool = True,
    strict_coordinates: bool = False,
    geocode: bool = False,
) -> Network:
    """A validated :class:`Network` from in-memory data, with the same rules and messages as :func:`read_network`.

    ``data`` is a ``geopandas.GeoDataFrame`` (Point rows are sites, LineString
    rows are links, as in a GIS file; a frame without a CRS takes ``crs``, else
    EPSG:4326), a ``pandas.DataFrame`` (one row per site, columns as in a CSV
    file; a named index is used as the ``name`` column when there is none) or a
    ``networkx`` graph (node attributes as in a Topology Zoo GraphML file:
    ``label``, ``Latitude``/``Longitude`` or ``lat``/``lon``; edge ``length_km``).
    """
    if not isinstance(route_factor, int | float) or not math.isfinite(route_factor) or route_factor < 1.0:
        raise ValidationError(
            f"route_factor must be a finite number >= 1 (fibre is never shorter than the great circle), got {route_factor!r}",
            source="route_factor",
        )
    if isinstance(data, gpd.GeoDataFrame):
        label = f"GeoDataFrame {name}" if name else "GeoDataFrame"
        if len(data) == 0:
            raise InputFormatError("has no rows (fix: give one Point row per site)", source=label)
        sites, links, meta = _raw_from_frames([("", data)], label, crs=crs)
    elif isinstance(data, pd.DataFrame):
        label = f"DataFrame {name}" if name else "DataFrame"
        frame = data
        if frame.index.name is not None and not ({"name", "site_id", "id"} & {str(c).lower() for c in frame.columns}):
            frame = frame.reset_index()
        if len(frame) == 0:
            raise InputFormatError("has no rows (fix: give one row per site)", source=label)
        text = frame.to_csv(index=False, lineterminator="\n")
        sites, links, meta = _parse_csv_text(text, label, crs=crs)
    elif isinstance(data, nx.Graph):
        label = f"graph {name or data.graph.get('name') or ''}".strip()
        sites, links, meta = _from_nx(data, label, drop_external=drop_external)
    else:
        raise InputFormatError(
            f"cannot make a network from a {type(data).__name__} (fix: pass a file path, a GeoDataFrame, a "
            "DataFrame or a networkx graph)",
            source="read_network",
        )
    _locate_missing(label, sites, links, strict=strict_coordinates, geocode=geocode)
    net_name = name or str(meta.get("name") or "network")
    return _assemble(label, net_name, sites, links, route_factor=route_factor)


def _detect_format(file: Path) -> str:
    """Format name from the suffix, else from the first bytes of the file."""
    suffix = file.suffix.lower()
    head = _head(file)
    if suffix in (".json", ".geojson"):
        return _sniff_json(file) if suffix == ".json" else "geojson"
    if suffix == ".gml":
        stripped = head.lstrip()
        if stripped.startswith(b"<"):
            return "graphml" if b"graphml" in head.lower() else "gml-ogc"
        return "gml"
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"SQLite format 3"):
        return "gpkg"
    if stripped.startswith(b"?SNDlib") or re.search(rb"^\s*NODES\s*\(", head, re.MULTILINE):
        return "sndlib"
    if stripped.startswith(b"<") and b"graphml" in head.lower():
        return "graphml"
    if re.match(rb"(?s)\s*(#[^\n]*\n\s*)*(graph|Creator|Version)\b", stripped) and b"graph" in head:
        return "gml"
    if stripped.startswith((b"{", b"[")):
        return _sniff_json(file)
    if (
        suffix in (".txt", ".dat", "")
        and b"\n" in head
        and (b"," in head or b";" in head or b"\t" in head)
    ):
        return "csv"
    raise InputFormatError(
        f"unknown format (suffix {suffix or 'none'!r} and content not recognised; fix: use {_SUPPORTED_TEXT})",
        source=str(file),
    )


def _head(file: Path, n: int = 4096) -> bytes:
    try:
        with file.open("rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InputFormatError(f"cannot read the file: {exc.strerror}", source=str(file)) from None


def _sniff_json(file: Path) -> str:
    data = _load_json(file)
    if isinstance(data, dict) and data.get("type") in ("FeatureCollection", "Feature"):
        return "geojson"
    if isinstance(data, dict) and "nodes" in data:
        return "qman-json"
    raise InputFormatError(
        "JSON file is neither GeoJSON (a FeatureCollection) nor a QMAN topology (keys 'nodes' and 'links')"
        " (fix: give one of these two structures)",
        source=str(file),
    )


MAX_REPORTED_PROBLEMS = 50
"""At most this many problems are listed in one error; the rest are counted."""


def _raise_if_any(problems: ProblemCollector, exc_type: type[ValidationError]) -> None:
    """Raise every collected problem at once (the first MAX_REPORTED_PROBLEMS listed, the rest counted)."""
    if not problems:
        return
    listed = problems.problems[:MAX_REPORTED_PROBLEMS]
    rest = len(problems.problems) - len(listed)
    if rest:
        listed = [
            *listed,
            Problem(problems.source, f"... and {rest} more problem(s) of the kinds above"),
        ]
    raise exc_type(listed, source=problems.source)


# --------------------------------------------------------------------------- text helpers
def _read_text(file: Path) -> str:
    """The file decoded as UTF-8 (a BOM is allowed); non-UTF-8 bytes give an error naming the line."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InputFormatError(f"cannot read the file: {exc.strerror}", source=str(file)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputFormatError(
            f"line {line}: byte 0x{raw[exc.start]:02x} at offset {exc.start} is not valid UTF-8"
            " (fix: save the file as UTF-8)",
            source=str(file),
        ) from None


def _load_json(file: Path) -> Any:
    text = _read_text(file)
    if not text.strip():
        raise InputFormatError(
            "file holds only whitespace (fix: give a non-empty file)", source=str(file)
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg} (fix: repair the JSON syntax)",
            source=str(file),
        ) from None
    except RecursionError:
        raise InputFormatError(
            "JSON nested too deeply (fix: flatten the structure)", source=str(file)
        ) from None


def _to_float(value: Any) -> float | None:
    """A float from a number or numeric text; None when absent or not numeric (bools are not numbers)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _first_key(keys: Iterable[str], candidates: tuple[str, ...]) -> str | None:
    lookup = {k.strip().lower(): k for k in keys}
    for cand in candidates:
        if cand in lookup:
            return lookup[cand]
    return None


def _plain(value: Any) -> Any:
    """A scalar suitable for a table column (nested structures become JSON text)."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- missing positions
def _locate_missing(
    source: str, sites: list[_RawSite], links: list[_RawLink], *, strict: bool, geocode: bool
) -> None:
    """Fill in the coordinates of sites marked ``missing_position`` (see :func:`read_network`), in place.

    Raises :class:`ValidationError` listing every such site when ``strict``,
    and every site that can be neither located nor placed otherwise.
    """
    missing = [s for s in sites if s.missing_position]
    for s in sites:
        s.extra.setdefault("position_source", "given")
    if not missing:
        return
    problems = ProblemCollector(source=source)
    if strict:
        for s in missing:
            problems.add(
                f"{source}, {s.where}",
                "node has no coordinates (refused: strict coordinates)",
                "add Latitude and Longitude attributes, or mark it 'Internal 0' if it lies outside the network;"
                " without --strict-coordinates it is placed from its neighbours (or looked up by name with --geocode)",
            )
        _raise_if_any(problems, ValidationError)
    ids = [str(s.site_id).strip() if not _is_blank(s.site_id) else f"#{i}" for i, s in enumerate(sites)]
    pos = {sid: i for i, sid in enumerate(ids)}
    lat = np.array([np.nan if s.missing_position else (_to_float(s.lat) or 0.0) for s in sites], dtype=float)
    lon = np.array([np.nan if s.missing_position else (_to_float(s.lon) or 0.0) for s in sites], dtype=float)
    edges: list[tuple[int, int]] = []
    for lk in links:
        u, v = str(lk.u).strip(), str(lk.v).strip()
        if u in pos and v in pos and u != v:
            edges.append((pos[u], pos[v]))
    neighbours: dict[int, list[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    if geocode:
        from planner.io.locate import gazetteer_positions

        named = {pos[ids[i]]: str(sites[i].name) for i, s in enumerate(sites)
                 if s.missing_position and not s.junction and not _is_blank(s.name)}
        located = {i: (float(lat[i]), float(lon[i])) for i in range(len(sites)) if np.isfinite(lat[i])}
        found = gazetteer_positions(named, neighbours, located)
        for i, (la, lo, match) in found.items():
            lat[i], lon[i] = la, lo
            sites[i].position_source = "gazetteer"
            log.info("%s: %s located by name as %s", source, sites[i].where, match)
    from planner.io.locate import place_from_neighbours

    new_lat, new_lon, placed = place_from_neighbours(lat, lon, edges)
    for i, s in enumerate(sites):
        if not s.missing_position:
            continue
        if s.position_source == "gazetteer" or placed[i]:
            if placed[i]:
                s.position_source = "junction" if s.junction else "neighbours"
            s.lat, s.lon = float(new_lat[i]), float(new_lon[i])
            s.extra["position_source"] = s.position_source
            continue
        degree = len(neighbours.get(i, []))
        label = str(s.name) if not _is_blank(s.name) else str(s.site_id)
        where = s.where if repr(label) in s.where else f"{s.where} ({label!r})"
        if not links:  # a site list: nothing to place it from
            problems.add(
                f"{source}, {where}",
                "site has no coordinates",
                "give its lat and lon in decimal degrees"
                + ("" if geocode else ", or pass --geocode to look its name up in the offline gazetteer"),
            )
            continue
        problems.add(
            f"{source}, {where}",
            "node has no coordinates and cannot be placed: "
            + ("it has no links" if degree == 0 else
               f"no node connected to it (through its {degree} link(s), directly or via other nodes) has a position"),
            "add Latitude and Longitude to it (or to a node linked to it), mark it 'Internal 0' if it lies outside "
            "the network"
            + ("" if geocode else ", or pass --geocode to look its name up in the offline gazetteer"),
        )
    _raise_if_any(problems, ValidationError)
    inferred = Counter(s.position_source for s in missing)
    log.warning("%s: %d node(s) without coordinates were placed (%s); column position_source flags them", source,
                len(missing), ", ".join(f"{k}: {v}" for k, v in sorted(inferred.items())))


# --------------------------------------------------------------------------- assembly
def _assemble(
    source: str,
    name: str,
    raw_sites: list[_RawSite],
    raw_links: list[_RawLink],
    *,
    route_factor: float,
) -> Network:
    """Validate raw records (collecting every problem) and build the Network."""
    problems = ProblemCollector(source=source)
    if not raw_sites:
        raise InputFormatError(
            "contains no sites (fix: add at least one site/node with coordinates)", source=source
        )
    seen: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for s in raw_sites:
        where = f"{source}, {s.where}"
        ok = True
        if _is_blank(s.site_id):
            problems.add(where, "site has no name/id", "give every site a non-empty name")
            ok = False
            sid = ""
        else:
            sid = str(s.site_id).strip()
            if sid in seen:
                problems.add(
                    where,
                    f"duplicate site name {sid!r} (also at {seen[sid]})",
                    "give every site a unique name",
                )
                ok = False
            else:
                seen[sid] = s.where
        coords: dict[str, float] = {}
        for axis, value, limit in (("lat", s.lat, 90.0), ("lon", s.lon, 180.0)):
            label = "latitude" if axis == "lat" else "longitude"
            num = _to_float(value)
            if _is_blank(value):
                problems.add(where, f"{label} is missing", f"give the {label} in decimal degrees")
                ok = False
            elif num is None:
                problems.add(
                    where,
                    f"{label} {value!r} is not a number",
                    f"give the {label} in decimal degrees",
                )
                ok = False
            elif not math.isfinite(num):
                problems.add(
                    where,
                    f"{label} {value!r} is not finite",
                    f"give a finite {label} in decimal degrees",
                )
                ok = False
            elif abs(num) > limit:
                problems.add(
                    where,
                    f"{label} {num:g} is outside [-{limit:g}, {limit:g}]",
                    "check that latitude and longitude are not swapped and are in degrees (EPSG:4326);"
                    " for projected x/y columns name them x/y and give their CRS with --crs EPSG:.... (scenario: network.crs; Python: crs=)",
                )
                ok = False
            else:
                coords[axis] = num
        kind = "site" if _is_blank(s.kind) else str(s.kind).strip().lower()
        if kind not in SITE_KINDS:
            problems.add(where, f"unknown kind {s.kind!r}", f"use one of {sorted(SITE_KINDS)}")
            ok = False
        demand = 1.0
        if not _is_blank(s.demand):
            dem = _to_float(s.demand)
            if dem is None or not math.isfinite(dem) or dem < 0:
                problems.add(
                    where,
                    f"demand {s.demand!r} is not a finite number >= 0",
                    "give a demand weight >= 0 (default 1)",
                )
                ok = False
            else:
                demand = dem
        if ok:
            site_name = sid if _is_blank(s.name) else str(s.name).strip()
            row = {"site_id": sid, "name": site_name, "kind": kind, "demand": demand, **coords}
            for key, value in s.extra.items():
                if key not in row and key != "geometry":
                    row[key] = _plain(value)
            rows.append(row)

    link_rows: list[dict[str, Any]] = []
    for i, lk in enumerate(raw_links):
        where = f"{source}, {lk.where}"
        ok = True
        u = None if _is_blank(lk.u) else str(lk.u).strip()
        v = None if _is_blank(lk.v) else str(lk.v).strip()
        for end, value in (("first", u), ("second", v)):
            if value is None:
                problems.add(
                    where, f"link has no {end} end site", "name both end sites of every link"
                )
                ok = False
            elif value not in seen:
                problems.add(
                    where, f"link names unknown site {value!r}", "add that site or correct the name"
                )
                ok = False
        if ok and u == v:
            problems.add(
                where, f"link is a self-loop on {u!r}", "remove the link or correct one of its ends"
            )
            ok = False
        stated: float | None = None
        if not _is_blank(lk.length_km):
            stated = _to_float(lk.length_km)
            if stated is None or not math.isfinite(stated) or stated < 0:
                problems.add(
                    where,
                    f"stated length {lk.length_km!r} is not a finite number >= 0",
                    "give the fibre length in km, or leave it out to use the geodesic distance x route factor",
                )
                ok = False
        if ok:
            link_rows.append(
                {
                    "i": i,
                    "u": u,
                    "v": v,
                    "stated": stated,
                    "geometry": lk.geometry,
                    "extra": lk.extra,
                }
            )
    if problems:
        _raise_if_any(problems, ValidationError)

    frame = pd.DataFrame(rows).set_index("site_id")
    sites = make_sites(frame)
    links = _build_links(sites, link_rows, route_factor=route_factor)
    network = Network(
        name=name, sites=sites, links=links, source=source, route_factor=float(route_factor)
    )
    network.validate()
    n_comp = len(network.connected_components())
    if n_comp > 1 and len(links):
        log.info("%s: the link graph has %d connected components", source, n_comp)
    return network


def _build_links(
    sites: gpd.GeoDataFrame, link_rows: list[dict[str, Any]], *, route_factor: float
) -> gpd.GeoDataFrame:
    if not link_rows:
        return empty_links()
    lat = sites["lat"]
    lon = sites["lon"]
    records: list[dict[str, Any]] = []
    for r in link_rows:
        u, v = r["u"], r["v"]
        if r["stated"] is not None:
            length, src = r["stated"], "stated"
        elif r["geometry"] is not None:
            length, src = geo.line_length_km(r["geometry"]), "geometry"
        else:
            gc = float(geo.haversine_km(lat[u], lon[u], lat[v], lon[v]))
            length, src = gc * route_factor, "geodesic_x_route_factor"
        rec = {
            "u": u,
            "v": v,
            "length_km": float(length),
            "length_source": src,
            "candidate": False,
            "geometry": r["geometry"],
        }
        for key, value in r["extra"].items():
            if key not in rec and key not in ("link_id", "geometry"):
                rec[key] = _plain(value)
        rec["_order"] = r["i"]
        records.append(rec)
    # collapse parallel links (same unordered pair) to the shortest; the first one wins a tie
    best: dict[frozenset[str], dict[str, Any]] = {}
    dropped = 0
    for rec in records:
        key = frozenset((rec["u"], rec["v"]))
        if key in best:
            dropped += 1
            if rec["length_km"] < best[key]["length_km"]:
                best[key] = rec
        else:
            best[key] = rec
    if dropped:
        log.info("collapsed %d parallel link(s) to the shortest of each pair", dropped)
    kept = sorted(best.values(), key=lambda rec: rec["_order"])
    for n, rec in enumerate(kept):
        rec["link_id"] = f"L{n}"
        del rec["_order"]
    return make_links(pd.DataFrame(kept), sites)


# --------------------------------------------------------------------------- CSV
def _read_csv(
    file: Path, *, crs: str | None, drop_external: bool
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    return _parse_csv_text(_read_text(file), str(file), crs=crs)


def _parse_csv_text(
    text: str, src: str, *, crs: str | None
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    """Sites from CSV text (see the module docstring); ``src`` names it in messages."""
    lines = text.splitlines()
    header_line = next((ln for ln in lines if ln.strip()), "")
    if not header_line:
        raise InputFormatError(
            "file holds only blank lines (fix: add a header row and one row per site)", source=src
        )
    delimiter = max((",", ";", "\t"), key=header_line.count)
    if "\x00" in text:
        raise InputFormatError(
            "file contains NUL bytes; it is not a text CSV (fix: export it as UTF-8 CSV)",
            source=src,
        )
    # one pass; each row is numbered by the physical line it starts on (quoted cells may span lines)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    numbered: list[tuple[int, list[str]]] = []
    previous_line = 0
    try:
        for row in reader:
            numbered.append((previous_line + 1, row))
            previous_line = reader.line_num
    except csv.Error as exc:
        raise InputFormatError(
            f"line {reader.line_num}: malformed CSV: {exc} (fix: check quoting)", source=src
        ) from None
    numbered = [(ln, row) for ln, row in numbered if any(cell.strip() for cell in row)]
    if not numbered:
        raise InputFormatError(
            "no header row (fix: add a header such as 'name,lat,lon')", source=src
        )
    _, header = numbered[0]
    cols = [h.strip() for h in header]
    lower = [c.lower() for c in cols]
    problems = ProblemCollector(source=src)
    dupes = sorted(c for c, n in Counter(lower).items() if n > 1 and c)
    if dupes:
        problems.add(
            f"{src}, header", f"duplicate column name(s) {dupes}", "give every column a unique name"
        )
    if any(not c for c in lower):
        problems.add(f"{src}, header", "a column has an empty name", "name every column")
    id_col = _first_key(cols, _ID_KEYS)
    name_col = _first_key(cols, _NAME_KEYS)
    lat_col = _first_key(cols, _LAT_KEYS)
    lon_col = _first_key(cols, _LON_KEYS)
    x_col = _first_key(cols, ("x", "easting"))
    y_col = _first_key(cols, ("y", "northing"))
    kind_col = _first_key(cols, ("kind",))
    demand_col = _first_key(cols, ("demand",))
    if id_col is None and name_col is None:
        problems.add(
            f"{src}, header",
            f"no 'name' column (found {cols})",
            "add a 'name' column with a unique name per site",
        )
    transformer: pyproj.Transformer | None = None
    use_xy = False
    if lat_col is None or lon_col is None:
        if x_col is not None and y_col is not None:
            use_xy = True
            if crs is None:
                problems.add(
                    f"{src}, header",
                    "coordinates are in 'x'/'y' columns but no CRS was given",
                    "give the CRS of x/y with --crs EPSG:.... (scenario: network.crs; Python: crs=), or give 'lat'/'lon' columns in degrees",
                )
            else:
                transformer = _transformer(crs, src)
        else:
            problems.add(
                f"{src}, header",
                f"no coordinate columns (found {cols})",
                "add 'lat' and 'lon' columns in decimal degrees (EPSG:4326), or 'x'/'y' with --crs EPSG:.... (scenario: network.crs; Python: crs=)",
            )
    _raise_if_any(problems, InputFormatError)
    used = {c for c in (id_col, name_col, lat_col, lon_col, kind_col, demand_col) if c}
    if use_xy:
        used |= {x_col, y_col}  # type: ignore[arg-type]
    index = {c: i for i, c in enumerate(cols)}
    sites: list[_RawSite] = []
    for n, (line_no, row) in enumerate(numbered[1:], start=1):
        where = f"row {n} (line {line_no})"
        if len(row) != len(cols):
            problems.add(
                f"{src}, {where}",
                f"has {len(row)} fields but the header has {len(cols)}",
                f"give exactly {len(cols)} {delimiter!r}-separated fields per row (quote values holding the separator)",
            )
            continue
        rec = {c: row[index[c]].strip() for c in cols}
        sid = rec[id_col] if id_col else rec[name_col]  # type: ignore[index]
        nm = rec[name_col] if name_col else sid
        if use_xy:
            latlon = _xy_to_latlon(
                rec[x_col],  # type: ignore[index]
                rec[y_col],  # type: ignore[index]
                transformer,  # type: ignore[arg-type]
                problems,
                f"{src}, {where}",
                str(crs),
            )
            if latlon is None:
                continue
            lat: Any = latlon[0]
            lon: Any = latlon[1]
        else:
            lat, lon = rec[lat_col], rec[lon_col]  # type: ignore[index]
        extra = {c: rec[c] for c in cols if c not in used}
        sites.append(
            _RawSite(
                where=where,
                site_id=sid,
                name=nm,
                lat=lat,
                lon=lon,
                kind=rec[kind_col] if kind_col else None,
                demand=rec[demand_col] if demand_col else None,
                extra=extra,
                missing_position=not use_xy and _is_blank(lat) and _is_blank(lon),
            )
        )
    _raise_if_any(problems, InputFormatError)
    if not sites:
        raise InputFormatError(
            "has a header but no data rows (fix: add one row per site)", source=src
        )
    return sites, [], {}


def _transformer(crs: str, src: str) -> pyproj.Transformer:
    try:
        return pyproj.Transformer.from_crs(
            pyproj.CRS.from_user_input(crs), CRS_WGS84, always_xy=True
        )
    except pyproj.exceptions.CRSError as exc:
        raise InputFormatError(
            f"crs {crs!r} is not understood ({exc}) (fix: give e.g. 'EPSG:32631')", source=src
        ) from None


def _xy_to_latlon(
    x: Any,
    y: Any,
    transformer: pyproj.Transformer,
    problems: ProblemCollector,
    where: str,
    crs: str,
) -> tuple[float, float] | None:
    """Transform one x/y pair to (lat, lon); records a problem naming the x/y column and returns None."""
    ok = True
    for column, value in (("x", x), ("y", y)):
        num = _to_float(value)
        if num is None or not math.isfinite(num):
            problems.add(
                where,
                f"{column} {value!r} is not a finite number",
                f"give {column} in the units of {crs}",
            )
            ok = False
    if not ok:
        return None
    with np.errstate(all="ignore"):
        lon, lat = transformer.transform(_to_float(x), _to_float(y))
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        problems.add(
            where,
            f"x/y ({x}, {y}) lies outside the area where {crs} is defined",
            "check the x/y values and that --crs (network.crs, crs=) names their CRS",
        )
        return None
    return float(lat), float(lon)


# --------------------------------------------------------------------------- QMAN JSON
def _read_qman(
    file: Path, *, crs: str | None, drop_external: bool
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    src = str(file)
    data = _load_json(file)
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
    _raise_if_any(problems, InputFormatError)
    sites: list[_RawSite] = []
    for i, node in enumerate(nodes):  # type: ignore[arg-type]
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            problems.add(
                f"{src}: {where}",
                "node is not an object",
                "give each node as {'name', 'type', 'latitude', 'longitude'}",
            )
            continue
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
                continue
        nm = node.get("name")
        extra = {
            k: v for k, v in node.items() if k not in ("name", "type", "latitude", "longitude")
        }
        if ntype is not None:
            extra["qman_type"] = str(ntype)
        sites.append(
            _RawSite(
                where=f"{where} ({nm!r})" if isinstance(nm, str) else where,
                site_id=nm if isinstance(nm, str | int) and not isinstance(nm, bool) else None,
                name=nm,
                lat=node.get("latitude"),
                lon=node.get("longitude"),
                kind=kind,
                extra=extra,
            )
        )
    raw_links: list[_RawLink] = []
    for i, link in enumerate(links):  # type: ignore[arg-type]
        where = f"links[{i}]"
        if not isinstance(link, dict):
            problems.add(
                f"{src}: {where}",
                "link is not an object",
                "give each link as {'node1', 'node2', 'qchannel': {'distance': metres}}",
            )
            continue
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
            num = _to_float(dist_m)
            length_km = num / 1000.0 if num is not None else dist_m
        extra = {k: v for k, v in link.items() if k not in ("node1", "node2")}
        u, v = link.get("node1"), link.get("node2")
        raw_links.append(
            _RawLink(
                where=f"{where} ({u!r}–{v!r}, distance in metres)",
                u=u,
                v=v,
                length_km=length_km,
                extra=extra,
            )
        )
    _raise_if_any(problems, InputFormatError)
    return sites, raw_links, {}


# --------------------------------------------------------------------------- graphs (GraphML, GML)
def _read_graphml(
    file: Path, *, crs: str | None, drop_external: bool
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    src = str(file)
    try:
        graph = _logging_warnings(src, nx.read_graphml, file, force_multigraph=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes one domain error
        raise InputFormatError(
            f"malformed GraphML: {_short(exc)} (fix: repair the XML / GraphML structure)",
            source=src,
        ) from None
    return _from_nx(graph, src, drop_external=drop_external)


def _read_gml(
    file: Path, *, crs: str | None, drop_external: bool
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    src = str(file)
    text = _read_text(file)
    try:
        graph = _logging_warnings(src, _parse_gml, text)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes one domain error
        raise InputFormatError(
            f"malformed GML: {_short(exc)} (fix: repair the GML syntax: graph [ node [ id .. ] edge [ source .. target .. ] ])",
            source=src,
        ) from None
    return _from_nx(graph, src, drop_external=drop_external)


def _parse_gml(text: str) -> nx.MultiGraph:
    """Parse GML with node ids as keys; parallel edges are allowed even without 'multigraph 1'."""
    if not re.search(r"^\s*multigraph\s+1\b", text, re.MULTILINE):
        text = re.sub(r"\bgraph\s*\[", "graph [\n  multigraph 1", text, count=1)
    return nx.parse_gml(text, label="id")


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


_POSITION = re.compile(r"^\s*[\[(]?\s*([^,\s\])]+)\s*[,\s]\s*([^,\s\])]+)\s*[\])]?\s*$")


def _node_coords(attrs: Mapping[str, Any]) -> tuple[Any, Any, str]:
    """(lat, lon, how) from node attributes; (None, None, '') when the node has no coordinates."""
    lat_key = _first_key(attrs.keys(), _LAT_KEYS)
    lon_key = _first_key(attrs.keys(), _LON_KEYS)
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


def _from_nx(
    graph: nx.Graph, src: str, *, drop_external: bool
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    problems = ProblemCollector(source=src)
    if graph.number_of_nodes() == 0:
        raise InputFormatError("graph has zero nodes (fix: add nodes with coordinates)", source=src)
    if graph.is_directed():
        log.info("%s: directed graph read as undirected", src)
    kept: dict[Any, dict[str, Any]] = {}
    dropped: list[str] = []
    used_position = False
    for node, attrs in graph.nodes(data=True):
        label = attrs.get("label")
        label = str(node) if _is_blank(label) else str(label).strip()
        lat, lon, how = _node_coords(attrs)
        external = _is_external(attrs)
        has_coords = not (_is_blank(lat) and _is_blank(lon))
        if external and (drop_external or not has_coords):
            dropped.append(f"{node} ({label}{'' if has_coords else ', no coordinates'})")
            continue
        used_position |= how == "position"
        kept[node] = {"label": label, "lat": lat, "lon": lon, "attrs": attrs, "external": external,
                      "missing": not has_coords}
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
    label_count = Counter(k["label"] for k in kept.values())
    sites: list[_RawSite] = []
    site_of: dict[Any, str] = {}
    skip = {
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
    for node, k in kept.items():
        sid = k["label"] if label_count[k["label"]] == 1 else f"{k['label']}#{node}"
        site_of[node] = sid
        attrs = k["attrs"]
        kind = attrs.get("kind")
        if _is_blank(kind):
            kind = "external" if k["external"] else None
        sites.append(
            _RawSite(
                where=f"node {node} (label {k['label']!r})",
                site_id=sid,
                name=k["label"],
                lat=k["lat"],
                lon=k["lon"],
                kind=kind,
                demand=attrs.get("demand"),
                extra={
                    **{a: val for a, val in attrs.items() if a not in skip},
                    "source_node_id": str(node),
                },
                missing_position=k["missing"],
                junction=k["missing"] and _is_junction(attrs),
            )
        )
    dupes = sorted(lab for lab, n in label_count.items() if n > 1)
    if dupes:
        log.info("%s: duplicate labels made unique as 'label#node_id': %s", src, dupes)
    links: list[_RawLink] = []
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
        extra = {
            a: val for a, val in attrs.items() if a not in ("length", "length_km", "id", "key")
        }
        links.append(
            _RawLink(where=where, u=site_of[u], v=site_of[v], length_km=stated, extra=extra)
        )
    if n_dangling:
        log.info("%s: %d edge(s) to dropped nodes skipped", src, n_dangling)
    _raise_if_any(problems, ValidationError)
    meta_name = graph.graph.get("Network") or graph.graph.get("label") or graph.graph.get("name")
    return sites, links, {"name": str(meta_name).strip() if meta_name else None}


# --------------------------------------------------------------------------- SNDlib native
_SND_NODE = re.compile(r"^(\S+)\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$")
_SND_LINK = re.compile(r"^(\S+)\s*\(\s*(\S+)\s+(\S+)\s*\)(.*)$")


def _read_sndlib(
    file: Path, *, crs: str | None, drop_external: bool
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    """SNDlib native format: ``NODES ( id ( lon lat ) ... )`` and ``LINKS ( id ( u v ) ... )``.

    Other sections (META, DEMANDS, ADMISSIBLE_PATHS) are skipped; link costs
    and capacities are kept as a ``sndlib_fields`` text column. SNDlib gives
    no fibre lengths, so links get great-circle x route factor.
    """
    src = str(file)
    text = _read_text(file)
    problems = ProblemCollector(source=src)
    sections: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    opened_at = 0
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("?"):
            continue
        if current is None:
            m = re.match(r"^([A-Z_]+)\s*\($", line)
            if m:
                current, opened_at = m.group(1), line_no
                if current in sections:
                    problems.add(
                        f"{src}, line {line_no}",
                        f"section {current} appears twice",
                        "keep one section of each kind",
                    )
                sections.setdefault(current, [])
            else:
                problems.add(
                    f"{src}, line {line_no}",
                    f"text outside a section: {line[:60]!r}",
                    "put content inside NODES ( ... ) or LINKS ( ... )",
                )
            continue
        if line == ")":
            current = None
            continue
        sections[current].append((line_no, line))
    if current is not None:
        problems.add(
            f"{src}, line {opened_at}",
            f"section {current} is never closed",
            "end the section with a line holding ')'",
        )
    if "NODES" not in sections:
        problems.add(
            src,
            "no NODES section",
            "add 'NODES (' ... ')' with one '<id> ( <lon> <lat> )' per line",
        )
    _raise_if_any(problems, InputFormatError)
    meta_name = None
    for _, line in sections.get("META", []):
        m = re.match(r"^name\s*=\s*(.+)$", line)
        if m:
            meta_name = m.group(1).strip()
    sites: list[_RawSite] = []
    for line_no, line in sections["NODES"]:
        m = _SND_NODE.match(line)
        if not m:
            problems.add(
                f"{src}, line {line_no}",
                f"node line not understood: {line[:60]!r}",
                "write '<id> ( <longitude> <latitude> )'",
            )
            continue
        nid, lon, lat = m.groups()
        sites.append(
            _RawSite(
                where=f"line {line_no} (node {nid!r})", site_id=nid, name=nid, lat=lat, lon=lon
            )
        )
    links: list[_RawLink] = []
    for line_no, line in sections.get("LINKS", []):
        m = _SND_LINK.match(line)
        if not m:
            problems.add(
                f"{src}, line {line_no}",
                f"link line not understood: {line[:60]!r}",
                "write '<id> ( <source> <target> ) ...'",
            )
            continue
        lid, u, v, rest = m.groups()
        links.append(
            _RawLink(
                where=f"line {line_no} (link {lid!r})",
                u=u,
                v=v,
                extra={"sndlib_id": lid, "sndlib_fields": rest.strip()},
            )
        )
    if "DEMANDS" in sections:
        log.info("%s: DEMANDS section ignored (site demand weights default to 1)", src)
    _raise_if_any(problems, InputFormatError)
    return sites, links, {"name": meta_name}


# --------------------------------------------------------------------------- GIS (GeoJSON, GPKG, Shapefile)
def _read_gis(
    file: Path, *, crs: str | None, drop_external: bool
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    import pyogrio

    src = str(file)
    try:
        layer_info = _logging_warnings(src, pyogrio.list_layers, file)
    except Exception as exc:  # noqa: BLE001 - any driver failure becomes one domain error
        raise InputFormatError(
            f"cannot open as a GIS file: {_short(exc)} (fix: check the file is valid GeoJSON/GeoPackage/Shapefile)",
            source=src,
        ) from None
    layer_names = [str(row[0]) for row in layer_info]
    if not layer_names:
        raise InputFormatError(
            "holds no layers (fix: add a layer of Point features for the sites)", source=src
        )
    frames: list[tuple[str, Any]] = []
    for layer in layer_names:
        prefix = f"layer {layer!r}, " if len(layer_names) > 1 else ""
        try:
            frame = (
                _logging_warnings(src, gpd.read_file, file, layer=layer)
                if len(layer_names) > 1
                else _logging_warnings(src, gpd.read_file, file)
            )
        except Exception as exc:  # noqa: BLE001 - any driver failure becomes one domain error
            raise InputFormatError(
                f"{prefix}cannot read: {_short(exc)} (fix: check the file is a valid GIS file)",
                source=src,
            ) from None
        frames.append((prefix, frame))
    return _raw_from_frames(frames, src, crs=crs)


def _raw_from_frames(
    frames: list[tuple[str, Any]], src: str, *, crs: str | None
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    """Sites (Point features) and links (LineString features) from GeoDataFrames; ``prefix`` names the layer."""
    problems = ProblemCollector(source=src)
    point_rows: list[tuple[str, dict[str, Any], Point]] = []
    line_rows: list[tuple[str, dict[str, Any], BaseGeometry]] = []
    for prefix, frame in frames:
        if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
            log.info("%s: %slayer without geometry skipped", src, prefix)
            continue
        if len(frame) == 0:
            continue
        if frame.crs is None:
            if crs is not None:
                frame = frame.set_crs(_crs_or_error(crs, src))
            else:
                log.info("%s: %sno CRS stored; coordinates taken as EPSG:4326 degrees", src, prefix)
                frame = frame.set_crs(CRS_WGS84)
        if not frame.crs.equals(pyproj.CRS(CRS_WGS84)):
            try:
                with np.errstate(all="ignore"):
                    frame = _logging_warnings(src, frame.to_crs, CRS_WGS84)
            except Exception as exc:  # noqa: BLE001
                raise InputFormatError(
                    f"{prefix}cannot transform from {frame.crs} to EPSG:4326: {_short(exc)}",
                    source=src,
                ) from None
        geom_col = frame.geometry.name
        for n, (geom, props) in enumerate(
            zip(frame.geometry, frame.drop(columns=[geom_col]).to_dict("records"), strict=True),
            start=1,
        ):
            where = f"{prefix}feature {n}"
            props = {str(k): (None if _is_blank(v) else v) for k, v in props.items()}
            if geom is None or geom.is_empty:
                problems.add(
                    f"{src}, {where}",
                    "feature has no geometry",
                    "give sites a Point and links a LineString geometry",
                )
                continue
            if isinstance(geom, MultiPoint) and len(geom.geoms) == 1:
                geom = geom.geoms[0]
            if isinstance(geom, MultiLineString) and len(geom.geoms) == 1:
                geom = geom.geoms[0]
            if isinstance(geom, Point):
                point_rows.append((where, props, geom))
            elif isinstance(geom, LineString | MultiLineString):
                line_rows.append((where, props, geom))
            else:
                problems.add(
                    f"{src}, {where}",
                    f"geometry type {geom.geom_type} is not supported",
                    "use Point features for sites and LineString features for links",
                )
    sites: list[_RawSite] = []
    for where, props, pt in point_rows:
        keys = list(props)
        id_key = _first_key(keys, _ID_KEYS)
        name_key = _first_key(keys, _NAME_KEYS)
        kind_key = _first_key(keys, ("kind",))
        demand_key = _first_key(keys, ("demand",))
        if id_key is None and name_key is None:
            problems.add(
                f"{src}, {where}",
                "point feature has no 'name' property",
                "give every site feature a unique 'name' property",
            )
            continue
        sid = props[id_key] if id_key else props[name_key]  # type: ignore[index]
        if isinstance(sid, float) and sid.is_integer():
            sid = int(sid)
        used = {id_key, name_key, kind_key, demand_key} | {
            k for k in keys if k.lower() in _LAT_KEYS + _LON_KEYS
        }
        sites.append(
            _RawSite(
                where=where,
                site_id=sid,
                name=props[name_key] if name_key else sid,
                lat=pt.y,
                lon=pt.x,
                kind=props.get(kind_key) if kind_key else None,
                demand=props.get(demand_key) if demand_key else None,
                extra={k: v for k, v in props.items() if k not in used},
            )
        )
    links: list[_RawLink] = []
    if line_rows:
        ids = [str(s.site_id).strip() if not _is_blank(s.site_id) else "" for s in sites]
        lat = np.array([_to_float(s.lat) for s in sites], dtype=float)
        lon = np.array([_to_float(s.lon) for s in sites], dtype=float)
        for where, props, line in line_rows:
            keys = list(props)
            u_key, v_key = _first_key(keys, _U_KEYS), _first_key(keys, _V_KEYS)
            len_key = _first_key(keys, ("length_km",))
            u: str | None
            v: str | None
            if u_key and v_key and not _is_blank(props[u_key]) and not _is_blank(props[v_key]):
                u, v = _id_text(props[u_key]), _id_text(props[v_key])
            else:
                first = (
                    line.geoms[0].coords[0] if isinstance(line, MultiLineString) else line.coords[0]
                )
                last = (
                    line.geoms[-1].coords[-1]
                    if isinstance(line, MultiLineString)
                    else line.coords[-1]
                )
                u = _match_endpoint(first, ids, lat, lon, problems, f"{src}, {where}", "start")
                v = _match_endpoint(last, ids, lat, lon, problems, f"{src}, {where}", "end")
                if u is None or v is None:
                    continue
            used = {u_key, v_key, len_key}
            links.append(
                _RawLink(
                    where=where,
                    u=u,
                    v=v,
                    length_km=props.get(len_key) if len_key else None,
                    geometry=line,
                    extra={k: val for k, val in props.items() if k not in used and k != "link_id"},
                )
            )
    _raise_if_any(problems, InputFormatError)
    return sites, links, {}


def _logging_warnings(src: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a third-party reader; its Python warnings are logged, never raised or shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    for w in caught:
        log.warning("%s: %s", src, w.message)
    return result


def _id_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _crs_or_error(crs: str, src: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise InputFormatError(
            f"crs {crs!r} is not understood ({exc}) (fix: give e.g. 'EPSG:32631')", source=src
        ) from None


def _match_endpoint(
    point: tuple[float, ...],
    ids: list[str],
    lat: np.ndarray,
    lon: np.ndarray,
    problems: ProblemCollector,
    where: str,
    end: str,
) -> str | None:
    """The site within ENDPOINT_TOLERANCE_KM of a line end (nearest wins); records a problem when none is."""
    if not ids:
        problems.add(
            where,
            f"line {end} cannot be matched: the file has no site points",
            "add Point features for the sites",
        )
        return None
    x, y = float(point[0]), float(point[1])
    with np.errstate(invalid="ignore"):
        dist = geo.haversine_km(lat, lon, y, x)
    dist = np.where(np.isfinite(dist), dist, np.inf)
    best = int(np.argmin(dist))
    if not np.isfinite(dist[best]) or dist[best] > ENDPOINT_TOLERANCE_KM:
        problems.add(
            where,
            f"line {end} ({x:.6f}, {y:.6f}) is {dist[best]:.3f} km from the nearest site {ids[best]!r}",
            f"snap the line {end} to a site (tolerance {ENDPOINT_TOLERANCE_KM * 1000:g} m) or give 'u'/'v' properties",
        )
        return None
    return ids[best]


def _read_gml_ogc(
    file: Path, *, crs: str | None, drop_external: bool
) -> tuple[list[_RawSite], list[_RawLink], dict[str, Any]]:
    """An XML .gml file that is not GraphML: OGC Geography Markup Language, read as a GIS file."""
    return _read_gis(file, crs=crs, drop_external=drop_external)


_READERS: dict[str, Callable[..., tuple[list[_RawSite], list[_RawLink], dict[str, Any]]]] = {
    "csv": _read_csv,
    "qman-json": _read_qman,
    "graphml": _read_graphml,
    "gml": _read_gml,
    "gml-ogc": _read_gml_ogc,
    "sndlib": _read_sndlib,
    "geojson": _read_gis,
    "gpkg": _read_gis,
    "shapefile": _read_gis,
}


# --------------------------------------------------------------------------- writers
def _atomic_target(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(final path, temp path in the same folder) — same folder so os.replace is atomic."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent
    )
    os.close(fd)
    return final, Path(tmp)


def _commit(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write_geopackage(layers: Mapping[str, gpd.GeoDataFrame], path: str | os.PathLike[str]) -> None:
    """Write layers into one GeoPackage atomically (temp file, then ``os.replace``).

    Each value must be a GeoDataFrame with a CRS; object columns holding
    mixed or non-text values are written as text so every layer is storable.
    Layers are written in sorted name order.
    """
    if not layers:
        raise ValidationError(
            "no layers to write (fix: pass at least one GeoDataFrame)", source=str(path)
        )
    final, tmp = _atomic_target(path)
    tmp.unlink()  # the GPKG driver creates the file itself
    try:
        for name in sorted(layers):
            frame = layers[name]
            if not isinstance(frame, gpd.GeoDataFrame):
                raise ValidationError(
                    f"layer {name!r} is a {type(frame).__name__}, not a GeoDataFrame",
                    source=str(path),
                )
            frame = _storable(frame)
            frame.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        _commit(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _storable(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = frame.copy()
    if out.index.name is not None:
        out = out.reset_index()
    geom_col = out.geometry.name
    for col in out.columns:
        if col == geom_col:
            continue
        series = out[col]
        if series.dtype == object or str(series.dtype).startswith(("str", "string")):
            values = [None if _is_blank(v) else v for v in series]
            if not all(v is None or isinstance(v, str) for v in values):
                out[col] = [
                    None
                    if v is None
                    else (
                        json.dumps(_jsonable(v), sort_keys=True)
                        if isinstance(v, dict | list | tuple | set)
                        else str(v)
                    )
                    for v in values
                ]
    return out


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, index: bool | None = None) -> None:
    """Write a table as UTF-8 CSV atomically; byte-identical for identical tables.

    The index is written when it has a name (e.g. ``site_id``) unless
    ``index`` says otherwise; geometries are written as WKT; floats use
    Python's shortest round-trip repr; line ends are ``\\n``.
    """
    frame = df.copy()
    if isinstance(frame, gpd.GeoDataFrame):
        geom_col = frame.geometry.name
        frame = pd.DataFrame(frame)
        frame[geom_col] = [None if g is None else g.wkt for g in frame[geom_col]]
    if index is None:
        index = frame.index.name is not None or any(n is not None for n in frame.index.names)
    final, tmp = _atomic_target(path)
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=index, lineterminator="\n")
        _commit(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _jsonable(obj: Any) -> Any:
    """Plain JSON data: dict keys as text, numpy/pandas scalars unwrapped, NaN/inf as null."""
    if isinstance(obj, float | np.floating):
        val = float(obj)
        return val if math.isfinite(val) else None
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, enum.Enum):
        return _jsonable(obj.value)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, set | frozenset):
        return [_jsonable(v) for v in sorted(obj, key=str)]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, pd.DataFrame):
        return (
            [_jsonable(r) for r in obj.reset_index().to_dict("records")]
            if obj.index.name
            else [_jsonable(r) for r in obj.to_dict("records")]
        )
    if isinstance(obj, pd.Series):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, BaseGeometry):
        return obj.wkt
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise ValidationError(
        f"value of type {type(obj).__name__} cannot be written as JSON", source="write_json"
    )


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as UTF-8 JSON atomically and deterministically.

    Keys are sorted, indentation is 2, floats use Python's shortest round-trip
    repr, non-finite floats become ``null``; numpy/pandas values, dataclasses,
    enums, sets (sorted) and paths are converted to plain JSON.
    """
    text = (
        json.dumps(_jsonable(obj), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        + "\n"
    )
    final, tmp = _atomic_target(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        _commit(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
