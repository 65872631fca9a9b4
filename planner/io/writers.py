"""Write a design's data files into a run folder: JSON, CSV tables and a GeoPackage.

The caller passes a (temporary) folder from
:func:`planner.io.atomic.atomic_output_dir`, so a run folder is never seen
half-written. GeoPackage layers (all EPSG:4326 longitude/latitude; every
distance column is named with its unit):

- ``sites`` (points): the sites table;
- ``links`` (lines): backbone links along their fibre routes;
- ``clusters`` (polygons): convex hull of each cluster's sites buffered by
  ``CLUSTER_BUFFER_M`` metres, the buffer drawn in the UTM zone of the
  cluster (so it is metres, not degrees);
- ``repeaters`` (points): equally spaced along each backbone route, by geodesic length;
- ``fibre`` (lines): every site-level fibre link the design was planned on,
  ``candidate`` = generated (not in the input), ``backbone`` = used by a backbone route;
- ``access_links`` (lines): master -> slave access lines;
- ``demand_routes`` (lines): each demand's backbone route with its rate, latency and security;
- ``metadata`` (attribute table, no geometry): ``key, value`` rows with the
  scenario, versions and every stage's solver status.

Absent values are NULL (empty strings and NaN are written as NULL).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from shapely.geometry import LineString, MultiPoint, Point

from planner.io.files import write_csv, write_geopackage
from planner.model.design import SCHEMA_VERSION, TABLES, Design

logger = logging.getLogger(__name__)

_GEOD = pyproj.Geod(ellps="WGS84")
#: Buffer (metres) drawn around each cluster's convex hull so that one- and two-site clusters are polygons too.
CLUSTER_BUFFER_M = 1000.0
#: Names of the GeoPackage layers with geometry, in writing order.
LAYERS = ("sites", "links", "clusters", "repeaters", "fibre", "access_links", "demand_routes")
METADATA_TABLE = "metadata"


def _nullify(df: pd.DataFrame) -> pd.DataFrame:
    """Empty strings in text columns become None (NULL in the GeoPackage)."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col]):
            out[col] = pd.Series(
                [None if (isinstance(v, str) and v == "") else v for v in out[col]], index=out.index, dtype=object
            )
    return out


def _gdf(df: pd.DataFrame, geoms: list[Any]) -> gpd.GeoDataFrame:
    frame = _nullify(df.reset_index(drop=True))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


def design_layers(design: Design) -> dict[str, gpd.GeoDataFrame]:
    """GeoDataFrames (EPSG:4326) for the GeoPackage layers of a design, keyed by the names in :data:`LAYERS`.

    Guarantees: every layer has a CRS and a geometry column; empty layers keep their columns.
    """
    sites = design.sites.copy()
    xy = {str(r.site_id): (float(r.lon), float(r.lat)) for r in sites.itertuples(index=False)}
    sites_gdf = _gdf(sites, [Point(xy[str(s)]) for s in sites["site_id"]])

    link_geoms = []
    rep_rows = []
    route_coords: dict[str, list[tuple[float, float]]] = {}
    for r in design.links.itertuples(index=False):
        coords = [xy[s] for s in str(getattr(r, "route", "")).split(";") if s in xy]
        if len(coords) < 2:
            coords = [xy[str(r.u)], xy[str(r.v)]]
        route_coords[str(r.link_id)] = coords
        link_geoms.append(LineString(coords))
        n = int(getattr(r, "repeaters", 0) or 0)
        for i, pt in enumerate(_points_along_geodesic(coords, n)):
            rep_rows.append(
                {
                    "link_id": r.link_id,
                    "index": i + 1,
                    "spacing_km": float(getattr(r, "spacing_km", np.nan)),
                    "geometry": Point(pt),
                }
            )
    links_gdf = _gdf(design.links, link_geoms)
    repeaters_gdf = gpd.GeoDataFrame(
        pd.DataFrame(rep_rows, columns=["link_id", "index", "spacing_km", "geometry"]),
        geometry="geometry",
        crs="EPSG:4326",
    )
    return {
        "sites": sites_gdf,
        "links": links_gdf,
        "clusters": _cluster_hulls(design, xy),
        "repeaters": repeaters_gdf,
        "fibre": _fibre_layer(design, xy),
        "access_links": _access_layer(design, xy),
        "demand_routes": _demand_routes_layer(design, xy, route_coords),
    }


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone containing (lon, lat) (326xx north, 327xx south)."""
    zone = int(min(max((lon + 180.0) // 6.0, 0), 59)) + 1
    return (32600 if lat >= 0 else 32700) + zone


def _cluster_hulls(design: Design, xy: dict[str, tuple[float, float]]) -> gpd.GeoDataFrame:
    """Convex hull of each cluster buffered by :data:`CLUSTER_BUFFER_M` metres, drawn in the UTM zone of the
    cluster's centroid (scale error below 0.1 % within a zone) and stored back in EPSG:4326."""
    hulls = []
    areas = []
    transformers: dict[int, tuple[pyproj.Transformer, pyproj.Transformer]] = {}
    for r in design.clusters.itertuples(index=False):
        members = [str(r.master)] + [s for s in str(r.slaves).split(";") if s]
        pts = [xy[m] for m in members if m in xy]
        epsg = utm_epsg(float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts])))
        if epsg not in transformers:
            transformers[epsg] = (
                pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True),
                pyproj.Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True),
            )
        fwd, inv = transformers[epsg]
        poly_m = _reproject(MultiPoint(pts), fwd).convex_hull.buffer(CLUSTER_BUFFER_M)
        areas.append(poly_m.area / 1e6)
        hulls.append(_reproject(poly_m, inv))
    frame = design.clusters.copy()
    frame["buffer_m"] = CLUSTER_BUFFER_M
    frame["hull_area_km2"] = np.asarray(areas, dtype=float)
    return _gdf(frame, hulls)


def _reproject(geom: Any, transformer: pyproj.Transformer) -> Any:
    """``geom`` with every coordinate passed through ``transformer`` (x/y order)."""

    def _xy(a: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(a[:, 0], a[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, _xy)


def _fibre_layer(design: Design, xy: dict[str, tuple[float, float]]) -> gpd.GeoDataFrame:
    """Every site-level fibre link as a straight line; ``candidate`` flags generated links."""
    cols = ["link_id", "u", "v", "length_km", "candidate", "backbone"]
    f = design.fibre
    if f is None or len(f) == 0:
        return gpd.GeoDataFrame(
            pd.DataFrame(columns=cols), geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326"
        )
    used: set[frozenset[str]] = set()
    for route in design.links.get("route", pd.Series([], dtype=object)):
        ids = [s for s in str(route).split(";") if s]
        used.update(frozenset(pair) for pair in zip(ids[:-1], ids[1:], strict=True))
    frame = pd.DataFrame(
        {
            "link_id": f["link_id"].astype(str),
            "u": f["u"].astype(str),
            "v": f["v"].astype(str),
            "length_km": pd.to_numeric(f["length_km"], errors="coerce").astype(float),
            "candidate": f["candidate"].astype(bool) if "candidate" in f else False,
            "backbone": [frozenset((str(u), str(v))) in used for u, v in zip(f["u"], f["v"], strict=True)],
        }
    )
    geoms = [
        LineString([xy[u], xy[v]]) if u in xy and v in xy else None for u, v in zip(frame["u"], frame["v"], strict=True)
    ]
    return _gdf(frame, geoms)


def _access_layer(design: Design, xy: dict[str, tuple[float, float]]) -> gpd.GeoDataFrame:
    """One line per slave, from its master to the slave."""
    s = design.sites
    slaves = s[s["role"] == "slave"] if len(s) else s
    frame = pd.DataFrame(
        {
            "slave": slaves["site_id"].astype(str).to_numpy(),
            "master": slaves["cluster"].astype(str).to_numpy(),
            "cluster": slaves["cluster"].astype(str).to_numpy(),
            "access_km": pd.to_numeric(slaves.get("access_km"), errors="coerce").to_numpy(dtype=float)
            if "access_km" in slaves
            else np.full(len(slaves), np.nan),
            "access_db": pd.to_numeric(slaves.get("access_db"), errors="coerce").to_numpy(dtype=float)
            if "access_db" in slaves
            else np.full(len(slaves), np.nan),
        }
    )
    geoms = [
        LineString([xy[m], xy[v]]) if m in xy and v in xy else None
        for m, v in zip(frame["master"], frame["slave"], strict=True)
    ]
    return _gdf(frame, geoms)


DEMAND_ROUTE_COLUMNS = (
    "demand_id",
    "source",
    "target",
    "source_name",
    "target_name",
    "path",
    "hops",
    "length_km",
    "rate",
    "latency_s",
    "latency_protocol_s",
    "security",
    "security_single_path",
    "trusted_on_path",
)


def _demand_routes_layer(
    design: Design, xy: dict[str, tuple[float, float]], route_coords: dict[str, list[tuple[float, float]]]
) -> gpd.GeoDataFrame:
    """Each demand's backbone route (the fibre routes of its backbone links, in order) as one line."""
    d = design.demands
    cols = [c for c in DEMAND_ROUTE_COLUMNS if c in d.columns]
    by_pair: dict[frozenset[str], str] = {}
    for r in design.links.itertuples(index=False):
        by_pair.setdefault(frozenset((str(r.u), str(r.v))), str(r.link_id))
    link_ends = {str(r.link_id): (str(r.u), str(r.v)) for r in design.links.itertuples(index=False)}
    geoms = []
    for rec in d.itertuples(index=False):
        path = [c for c in str(getattr(rec, "path", "")).split(";") if c]
        if len(path) < 2:
            path = [str(rec.source), str(rec.target)]
        given = [x for x in str(getattr(rec, "links", "") or "").split(";") if x in link_ends]
        hop_links = (
            given
            if len(given) == len(path) - 1
            else [by_pair.get(frozenset((a, b)), "") for a, b in zip(path[:-1], path[1:], strict=True)]
        )
        coords: list[tuple[float, float]] = []
        for (a, b), lid in zip(zip(path[:-1], path[1:], strict=True), hop_links, strict=True):
            seg = list(route_coords.get(lid, []))
            if len(seg) < 2:
                seg = [xy[a], xy[b]] if a in xy and b in xy else []
            elif link_ends[lid][0] != a:
                seg = seg[::-1]
            coords.extend(seg if not coords or not seg or seg[0] != coords[-1] else seg[1:])
        geoms.append(LineString(coords) if len(coords) >= 2 else None)
    frame = d[cols].copy() if len(d) else pd.DataFrame(columns=cols)
    for c in ("rate", "latency_s", "latency_protocol_s", "security", "security_single_path", "length_km"):
        if c in frame:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return _gdf(frame, geoms)


def design_metadata(design: Design) -> pd.DataFrame:
    """``key, value`` rows (text; NULL where absent): scenario, versions, network, seed and solver status per stage."""
    rows: list[tuple[str, str | None]] = [
        ("qkdplan_version", design.version),
        ("schema_version", str(SCHEMA_VERSION)),
        ("network_name", design.network_name),
        ("network_source", design.network_source or None),
        ("seed", str(design.seed)),
        ("scenario_name", str(design.scenario.get("name")) if design.scenario.get("name") is not None else None),
        ("scenario_json", json.dumps(design.scenario, sort_keys=True)),
    ]
    for stage in sorted(design.solves):
        s = design.solves[stage]
        for key in ("status", "model", "objective", "bound", "gap"):
            v = s.get(key)
            rows.append((f"solver.{stage}.{key}", None if v is None else str(v)))
    return pd.DataFrame(rows, columns=["key", "value"])


def _points_along_geodesic(coords: list[tuple[float, float]], n: int) -> list[tuple[float, float]]:
    """``n`` points splitting a lon/lat polyline into ``n + 1`` parts of equal geodesic length."""
    if n <= 0:
        return []
    seg = np.array([_GEOD.inv(a[0], a[1], b[0], b[1])[2] for a, b in zip(coords[:-1], coords[1:], strict=True)])
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    out = []
    for k in range(1, n + 1):
        target = total * k / (n + 1)
        i = int(np.clip(np.searchsorted(cum, target, side="right") - 1, 0, len(seg) - 1))
        (lon1, lat1), (lon2, lat2) = coords[i], coords[i + 1]
        if seg[i] <= 0:
            out.append((lon1, lat1))
            continue
        az, _, _ = _GEOD.inv(lon1, lat1, lon2, lat2)
        lon, lat, _ = _GEOD.fwd(lon1, lat1, az, target - cum[i])
        out.append((float(lon), float(lat)))
    return out


def write_design_files(design: Design, folder: Path) -> list[Path]:
    """Write ``design.json``, one CSV per table and ``design.gpkg`` into ``folder``; returns the paths."""
    folder = Path(folder)
    written = []
    p = folder / "design.json"
    p.write_text(design.to_json(), encoding="utf-8")
    written.append(p)
    for name in TABLES:
        p = folder / f"{name}.csv"
        write_csv(design.table(name), p, index=False)
        written.append(p)
    p = folder / "design.gpkg"
    write_geopackage(design_layers(design), p)
    # the attribute-only metadata table goes into the same (still temporary) run folder's file
    pyogrio.write_dataframe(design_metadata(design), p, layer=METADATA_TABLE, driver="GPKG")
    written.append(p)
    return written
