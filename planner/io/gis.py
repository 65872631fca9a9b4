"""GIS files (GeoJSON, GeoPackage, Shapefile, OGC GML) and in-memory GeoDataFrames.

Point features are sites, LineString features are links; a link's ends are
named by ``u``/``v`` (also ``source``/``target``, ``node1``/``node2``)
properties or matched to the nearest site within :data:`ENDPOINT_TOLERANCE_KM`.
Coordinates are transformed to EPSG:4326; a layer without a CRS takes ``crs``,
else is read as EPSG:4326 degrees.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
from shapely.geometry import LineString, MultiLineString, MultiPoint, Point
from shapely.geometry.base import BaseGeometry

from planner import geo
from planner.errors import InputFormatError, ProblemCollector
from planner.io.records import (
    ID_KEYS,
    LAT_KEYS,
    LON_KEYS,
    NAME_KEYS,
    U_KEYS,
    V_KEYS,
    RawLink,
    RawNetwork,
    RawSite,
    first_key,
    is_blank,
    logging_warnings,
    raise_if_any,
    short_error,
    to_float,
)
from planner.model.network import (
    CRS_WGS84,
)

log = logging.getLogger(__name__)


ENDPOINT_TOLERANCE_KM = 0.05
"""A LineString end must lie within 50 m of a site to be matched to it."""


def read_gis(file: Path, *, crs: str | None, drop_external: bool) -> RawNetwork:
    """Raw sites and links of every layer of a GIS file; a driver failure is one :class:`InputFormatError`."""
    import pyogrio

    src = str(file)
    try:
        layer_info = logging_warnings(src, pyogrio.list_layers, file)
    except Exception as exc:  # noqa: BLE001 - any driver failure becomes one domain error
        raise InputFormatError(
            f"cannot open as a GIS file: {short_error(exc)} (fix: check the file is valid "
            "GeoJSON/GeoPackage/Shapefile)",
            source=src,
        ) from None
    layer_names = [str(row[0]) for row in layer_info]
    if not layer_names:
        raise InputFormatError("holds no layers (fix: add a layer of Point features for the sites)", source=src)
    frames: list[tuple[str, Any]] = []
    for layer in layer_names:
        prefix = f"layer {layer!r}, " if len(layer_names) > 1 else ""
        try:
            frame = (
                logging_warnings(src, gpd.read_file, file, layer=layer)
                if len(layer_names) > 1
                else logging_warnings(src, gpd.read_file, file)
            )
        except Exception as exc:  # noqa: BLE001 - any driver failure becomes one domain error
            raise InputFormatError(
                f"{prefix}cannot read: {short_error(exc)} (fix: check the file is a valid GIS file)",
                source=src,
            ) from None
        frames.append((prefix, frame))
    return raw_from_frames(frames, src, crs=crs)


def raw_from_frames(frames: list[tuple[str, Any]], src: str, *, crs: str | None) -> RawNetwork:
    """Sites (Point features) and links (LineString features) from GeoDataFrames; ``prefix`` names the layer.

    Raises :class:`InputFormatError` listing every feature problem of every layer.
    """
    problems = ProblemCollector(source=src)
    point_rows: list[tuple[str, dict[str, Any], Point]] = []
    line_rows: list[tuple[str, dict[str, Any], BaseGeometry]] = []
    for prefix, frame in frames:
        frame = _frame_in_wgs84(prefix, frame, src, crs)
        if frame is not None:
            _sort_features(prefix, frame, src, problems, point_rows, line_rows)
    sites: list[RawSite] = []
    for where, props, pt in point_rows:
        site = _site_from_point(where, props, pt, src, problems)
        if site is not None:
            sites.append(site)
    links: list[RawLink] = []
    if line_rows:
        ids = [str(s.site_id).strip() if not is_blank(s.site_id) else "" for s in sites]
        lat = np.array([to_float(s.lat) for s in sites], dtype=float)
        lon = np.array([to_float(s.lon) for s in sites], dtype=float)
        for where, props, line in line_rows:
            link = _link_from_line(where, props, line, ids, lat, lon, src, problems)
            if link is not None:
                links.append(link)
    raise_if_any(problems, InputFormatError)
    return sites, links, {}


def _frame_in_wgs84(prefix: str, frame: Any, src: str, crs: str | None) -> gpd.GeoDataFrame | None:
    """The layer in EPSG:4326 (a layer without a CRS takes ``crs``, else EPSG:4326); None for a layer to skip."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        log.info("%s: %slayer without geometry skipped", src, prefix)
        return None
    if len(frame) == 0:
        return None
    if frame.crs is None:
        if crs is not None:
            frame = frame.set_crs(_crs_or_error(crs, src))
        else:
            log.info("%s: %sno CRS stored; coordinates taken as EPSG:4326 degrees", src, prefix)
            frame = frame.set_crs(CRS_WGS84)
    if not frame.crs.equals(pyproj.CRS(CRS_WGS84)):
        try:
            with np.errstate(all="ignore"):
                frame = logging_warnings(src, frame.to_crs, CRS_WGS84)
        except Exception as exc:  # noqa: BLE001
            raise InputFormatError(
                f"{prefix}cannot transform from {frame.crs} to EPSG:4326: {short_error(exc)}",
                source=src,
            ) from None
    return frame


def _sort_features(
    prefix: str,
    frame: gpd.GeoDataFrame,
    src: str,
    problems: ProblemCollector,
    point_rows: list[tuple[str, dict[str, Any], Point]],
    line_rows: list[tuple[str, dict[str, Any], BaseGeometry]],
) -> None:
    """Append each feature to ``point_rows`` or ``line_rows`` (single-part multi-geometries unwrapped)."""
    geom_col = frame.geometry.name
    for n, (geom, props) in enumerate(
        zip(frame.geometry, frame.drop(columns=[geom_col]).to_dict("records"), strict=True),
        start=1,
    ):
        where = f"{prefix}feature {n}"
        props = {str(k): (None if is_blank(v) else v) for k, v in props.items()}
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


def _site_from_point(
    where: str, props: dict[str, Any], pt: Point, src: str, problems: ProblemCollector
) -> RawSite | None:
    """The raw site of a Point feature; None after recording a missing name."""
    keys = list(props)
    id_key = first_key(keys, ID_KEYS)
    name_key = first_key(keys, NAME_KEYS)
    kind_key = first_key(keys, ("kind",))
    demand_key = first_key(keys, ("demand",))
    if id_key is None and name_key is None:
        problems.add(
            f"{src}, {where}",
            "point feature has no 'name' property",
            "give every site feature a unique 'name' property",
        )
        return None
    sid = props[id_key] if id_key else props[name_key]  # type: ignore[index]
    if isinstance(sid, float) and sid.is_integer():
        sid = int(sid)
    used = {id_key, name_key, kind_key, demand_key} | {k for k in keys if k.lower() in LAT_KEYS + LON_KEYS}
    return RawSite(
        where=where,
        site_id=sid,
        name=props[name_key] if name_key else sid,
        lat=pt.y,
        lon=pt.x,
        kind=props.get(kind_key) if kind_key else None,
        demand=props.get(demand_key) if demand_key else None,
        extra={k: v for k, v in props.items() if k not in used},
    )


def _link_from_line(
    where: str,
    props: dict[str, Any],
    line: BaseGeometry,
    ids: list[str],
    lat: np.ndarray,
    lon: np.ndarray,
    src: str,
    problems: ProblemCollector,
) -> RawLink | None:
    """The raw link of a LineString feature, its ends named by u/v properties or matched to the nearest sites.

    None after recording an end that matches no site.
    """
    keys = list(props)
    u_key, v_key = first_key(keys, U_KEYS), first_key(keys, V_KEYS)
    len_key = first_key(keys, ("length_km",))
    u: str | None
    v: str | None
    if u_key and v_key and not is_blank(props[u_key]) and not is_blank(props[v_key]):
        u, v = _id_text(props[u_key]), _id_text(props[v_key])
    else:
        first = line.geoms[0].coords[0] if isinstance(line, MultiLineString) else line.coords[0]
        last = line.geoms[-1].coords[-1] if isinstance(line, MultiLineString) else line.coords[-1]
        u = _match_endpoint(first, ids, lat, lon, problems, f"{src}, {where}", "start")
        v = _match_endpoint(last, ids, lat, lon, problems, f"{src}, {where}", "end")
        if u is None or v is None:
            return None
    used = {u_key, v_key, len_key}
    return RawLink(
        where=where,
        u=u,
        v=v,
        length_km=props.get(len_key) if len_key else None,
        geometry=line,
        extra={k: val for k, val in props.items() if k not in used and k != "link_id"},
    )


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


def read_gml_ogc(file: Path, *, crs: str | None, drop_external: bool) -> RawNetwork:
    """An XML .gml file that is not GraphML: OGC Geography Markup Language, read as a GIS file."""
    return read_gis(file, crs=crs, drop_external=drop_external)
