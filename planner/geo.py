"""Geodesic helpers: great-circle distances and local projections.

Distances use the haversine formula on a sphere of radius
:data:`EARTH_RADIUS_KM` (6371 km, the mean Earth radius; the same convention as
the RepAlloc repeater-placement instances). On a sphere the haversine distance
differs from the WGS84 ellipsoidal distance by at most about 0.5 %, far below
the uncertainty of a fibre route factor.
"""

from __future__ import annotations

import numpy as np
import pyproj
from numpy.typing import ArrayLike, NDArray
from shapely.geometry.base import BaseGeometry

EARTH_RADIUS_KM = 6371.0


def haversine_km(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> NDArray[np.float64]:
    """Great-circle distance in km between points given in degrees (broadcasts like numpy)."""
    phi1 = np.radians(np.asarray(lat1, dtype=float))
    phi2 = np.radians(np.asarray(lat2, dtype=float))
    dphi = phi2 - phi1
    dlmb = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def pairwise_haversine_km(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Symmetric matrix of great-circle distances (km) between all points; zero diagonal."""
    lat_a = np.asarray(lat, dtype=float)
    lon_a = np.asarray(lon, dtype=float)
    dist = haversine_km(lat_a[:, None], lon_a[:, None], lat_a[None, :], lon_a[None, :])
    dist = np.asarray(dist, dtype=float).reshape(len(lat_a), len(lat_a))
    np.fill_diagonal(dist, 0.0)
    return (dist + dist.T) / 2.0


def line_length_km(geometry: BaseGeometry) -> float:
    """Length in km of a (Multi)LineString in lon/lat degrees: sum of great-circle segment lengths.

    Unlike a length measured in one projected CRS, this has no projection
    distortion, whatever the extent of the network.
    """
    if geometry.geom_type == "MultiLineString":
        return float(sum(line_length_km(part) for part in geometry.geoms))
    coords = np.asarray(geometry.coords, dtype=float)
    if len(coords) < 2:
        return 0.0
    seg = haversine_km(coords[:-1, 1], coords[:-1, 0], coords[1:, 1], coords[1:, 0])
    return float(np.sum(seg))


def utm_crs(lat: float, lon: float) -> pyproj.CRS:
    """The WGS84 UTM zone CRS (EPSG 326xx north / 327xx south) containing the point."""
    zone = int(np.floor((float(lon) + 180.0) / 6.0)) % 60 + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    return pyproj.CRS.from_epsg(epsg)


def azimuthal_equidistant_crs(lat: float, lon: float) -> pyproj.CRS:
    """An azimuthal equidistant projection centred on the point (metres).

    Distances from the centre are exact and distortion stays moderate over a
    hemisphere, so it suits planar geometry (e.g. Delaunay triangulation) on
    networks of any extent.
    """
    return pyproj.CRS.from_proj4(
        f"+proj=aeqd +lat_0={float(lat)!r} +lon_0={float(lon)!r} +datum=WGS84 +units=m +no_defs"
    )


def unit_vectors(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Points on the unit sphere (n x 3); chord distance between them is monotone in great-circle distance."""
    phi = np.radians(np.asarray(lat, dtype=float))
    lmb = np.radians(np.asarray(lon, dtype=float))
    return np.column_stack([np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)])


def mean_point(lat: ArrayLike, lon: ArrayLike) -> tuple[float, float]:
    """Centroid (lat, lon) in degrees of points, taken on the sphere (safe across the antimeridian)."""
    vec = unit_vectors(lat, lon).mean(axis=0)
    norm = float(np.linalg.norm(vec))
    if norm < 1e-12:
        return 0.0, 0.0
    x, y, z = vec / norm
    return float(np.degrees(np.arcsin(np.clip(z, -1.0, 1.0)))), float(np.degrees(np.arctan2(y, x)))
