"""Read networks from files or in-memory data: the one entry point, :func:`read_network`.

:func:`read_network` chooses a reader by file suffix, then by sniffing the
content, and turns every problem it finds into one :class:`InputFormatError`
(the file cannot be parsed) or :class:`ValidationError` (parsed, but the values
are wrong) that lists *all* problems of the file, each naming the file, the
row / node / edge / key and the fix.

Supported formats, one reader module per family:

* CSV (``.csv``, ``.tsv``, or sniffed), :mod:`planner.io.csv_sites`: one row per
  site; columns ``name`` (or ``site_id``/``id``), ``lat``/``lon`` (also
  ``latitude``/``longitude``, ``lng``/``long``) in degrees, or ``x``/``y`` in
  the CRS given as ``crs=`` (command line ``--crs``, scenario ``network.crs``);
  optional ``kind`` and ``demand``; other columns are kept.
* GeoJSON, GeoPackage, Shapefile (and OGC GML), :mod:`planner.io.gis`: Point
  features are sites (properties as in CSV), LineString features are links,
  matched to sites by ``u``/``v`` (also ``source``/``target``,
  ``node1``/``node2``) properties or by their end coordinates (within
  :data:`planner.io.gis.ENDPOINT_TOLERANCE_KM`); optional ``length_km``.
* GraphML and GML (Internet Topology Zoo, RepAlloc), :mod:`planner.io.graphs`:
  node ``label`` is the site name, ``Latitude``/``Longitude`` (or a RepAlloc
  ``position`` string ``"[lon, lat]"``) the coordinates; ``Internal 0`` marks
  external nodes; an edge ``length``/``length_km`` is a stated length in km.
* SNDlib native format (``NODES ( id ( lon lat ) )`` and ``LINKS`` sections),
  :mod:`planner.io.sndlib`.
* Beijing QMAN JSON (QNET), :mod:`planner.io.qman`: ``nodes`` with
  name/type/latitude/longitude and ``links`` with node1/node2 and
  ``qchannel.distance`` in metres.

Readers produce raw records (:mod:`planner.io.records`); nodes without
coordinates are located by :func:`planner.io.locate.locate_missing`; the
records are validated into a :class:`Network` by
:func:`planner.io.build.build_network`. Result files are written by
:mod:`planner.io.files`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import pandas as pd

from planner.errors import InputFormatError, ValidationError
from planner.io.build import build_network
from planner.io.csv_sites import parse_csv_text, read_csv
from planner.io.gis import raw_from_frames, read_gis, read_gml_ogc
from planner.io.graphs import raw_from_graph, read_gml, read_graphml
from planner.io.locate import locate_missing
from planner.io.qman import read_qman
from planner.io.records import RawNetwork, load_json
from planner.io.sndlib import read_sndlib
from planner.model.network import (
    DEFAULT_ROUTE_FACTOR,
    Network,
)

log = logging.getLogger(__name__)


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
    if not isinstance(route_factor, int | float) or not math.isfinite(route_factor) or route_factor < 1.0:
        raise ValidationError(
            "route_factor must be a finite number >= 1 (fibre is never shorter than the great circle), got "
            f"{route_factor!r}",
            source=label,
        )
    if not file.exists():
        raise InputFormatError(f"file not found (fix: check the path; working directory is {Path.cwd()})", source=label)
    if file.is_dir():
        raise InputFormatError("is a folder, not a network file (fix: name a file inside it)", source=label)
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise InputFormatError(f"cannot read the file: {exc.strerror}", source=label) from None
    if size == 0:
        raise InputFormatError(f"file is empty (fix: give a non-empty {_SUPPORTED_TEXT} file)", source=label)
    fmt = _detect_format(file)
    reader: Callable[..., RawNetwork] = _READERS[fmt]
    log.info("reading %s as %s", label, fmt)
    sites, links, meta = reader(file, crs=crs, drop_external=drop_external)
    locate_missing(label, sites, links, strict=strict_coordinates, geocode=geocode)
    net_name = name or str(meta.get("name") or file.stem)
    return build_network(label, net_name, sites, links, route_factor=route_factor)


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
            "route_factor must be a finite number >= 1 (fibre is never shorter than the great circle), got "
            f"{route_factor!r}",
            source="route_factor",
        )
    if isinstance(data, gpd.GeoDataFrame):
        label = f"GeoDataFrame {name}" if name else "GeoDataFrame"
        if len(data) == 0:
            raise InputFormatError("has no rows (fix: give one Point row per site)", source=label)
        sites, links, meta = raw_from_frames([("", data)], label, crs=crs)
    elif isinstance(data, pd.DataFrame):
        label = f"DataFrame {name}" if name else "DataFrame"
        frame = data
        if frame.index.name is not None and not ({"name", "site_id", "id"} & {str(c).lower() for c in frame.columns}):
            frame = frame.reset_index()
        if len(frame) == 0:
            raise InputFormatError("has no rows (fix: give one row per site)", source=label)
        text = frame.to_csv(index=False, lineterminator="\n")
        sites, links, meta = parse_csv_text(text, label, crs=crs)
    elif isinstance(data, nx.Graph):
        label = f"graph {name or data.graph.get('name') or ''}".strip()
        sites, links, meta = raw_from_graph(data, label, drop_external=drop_external)
    else:
        raise InputFormatError(
            f"cannot make a network from a {type(data).__name__} (fix: pass a file path, a GeoDataFrame, a "
            "DataFrame or a networkx graph)",
            source="read_network",
        )
    locate_missing(label, sites, links, strict=strict_coordinates, geocode=geocode)
    net_name = name or str(meta.get("name") or "network")
    return build_network(label, net_name, sites, links, route_factor=route_factor)


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
    if suffix in (".txt", ".dat", "") and b"\n" in head and (b"," in head or b";" in head or b"\t" in head):
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
    data = load_json(file)
    if isinstance(data, dict) and data.get("type") in ("FeatureCollection", "Feature"):
        return "geojson"
    if isinstance(data, dict) and "nodes" in data:
        return "qman-json"
    raise InputFormatError(
        "JSON file is neither GeoJSON (a FeatureCollection) nor a QMAN topology (keys 'nodes' and 'links')"
        " (fix: give one of these two structures)",
        source=str(file),
    )


_READERS: dict[str, Callable[..., RawNetwork]] = {
    "csv": read_csv,
    "qman-json": read_qman,
    "graphml": read_graphml,
    "gml": read_gml,
    "gml-ogc": read_gml_ogc,
    "sndlib": read_sndlib,
    "geojson": read_gis,
    "gpkg": read_gis,
    "shapefile": read_gis,
}
