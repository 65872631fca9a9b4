"""Write a design's data files into a run folder: JSON, CSV tables and a GeoPackage.

The caller passes a (temporary) folder from
:func:`planner.atomic.atomic_output_dir`, so a run folder is never seen
half-written. GeoPackage layers: ``sites`` (points), ``links`` (backbone fibre
routes as lines), ``clusters`` (convex hull of each cluster's sites, buffered
slightly so that two-site clusters are polygons too), ``repeaters`` (points
equally spaced along each backbone route, by geodesic length).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
from shapely.geometry import LineString, MultiPoint, Point

from planner.design import TABLES, Design
from planner.io import write_csv, write_geopackage

logger = logging.getLogger(__name__)

_GEOD = pyproj.Geod(ellps="WGS84")


def design_layers(design: Design) -> dict[str, gpd.GeoDataFrame]:
    """GeoDataFrames (EPSG:4326) for the GeoPackage layers of a design."""
    sites = design.sites.copy()
    xy = {str(r.site_id): (float(r.lon), float(r.lat)) for r in sites.itertuples(index=False)}
    sites_gdf = gpd.GeoDataFrame(sites, geometry=[Point(xy[str(s)]) for s in sites["site_id"]], crs="EPSG:4326")

    link_geoms = []
    rep_rows = []
    for r in design.links.itertuples(index=False):
        coords = [xy[s] for s in str(r.route).split(";") if s in xy]
        if len(coords) < 2:
            coords = [xy[str(r.u)], xy[str(r.v)]]
        line = LineString(coords)
        link_geoms.append(line)
        n = int(getattr(r, "repeaters", 0) or 0)
        for i, pt in enumerate(_points_along_geodesic(coords, n)):
            rep_rows.append({"link_id": r.link_id, "index": i + 1, "spacing_km": float(getattr(r, "spacing_km", np.nan)),
                             "geometry": Point(pt)})
    links_gdf = gpd.GeoDataFrame(design.links.copy(), geometry=link_geoms, crs="EPSG:4326")
    repeaters_gdf = gpd.GeoDataFrame(
        pd.DataFrame(rep_rows, columns=["link_id", "index", "spacing_km", "geometry"]), geometry="geometry",
        crs="EPSG:4326")

    hulls = []
    for r in design.clusters.itertuples(index=False):
        members = [str(r.master)] + [s for s in str(r.slaves).split(";") if s]
        pts = MultiPoint([xy[m] for m in members if m in xy])
        hulls.append(pts.convex_hull.buffer(0.01))
    clusters_gdf = gpd.GeoDataFrame(design.clusters.copy(), geometry=hulls, crs="EPSG:4326")
    return {"sites": sites_gdf, "links": links_gdf, "clusters": clusters_gdf, "repeaters": repeaters_gdf}


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
    written.append(p)
    return written
