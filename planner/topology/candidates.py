"""Candidate fibre links between sites: which site pairs a network without (enough) links gets.

Pure geometry on site coordinates (degrees); :meth:`planner.model.network.Network.with_candidate_links`
turns the pairs into links. Pairs are site index pairs ``(i, j)`` with ``i < j``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import pyproj
from networkx.utils import UnionFind
from scipy.spatial import Delaunay, QhullError, cKDTree

from planner import geo

CRS_WGS84 = "EPSG:4326"


def candidate_pairs(
    lat: np.ndarray,
    lon: np.ndarray,
    linked: Iterable[tuple[int, int]],
    *,
    method: Literal["delaunay", "knn"] = "delaunay",
    k: int = 4,
    connect_only: bool = False,
) -> list[tuple[int, int]]:
    """Site pairs to add as candidate links (sorted), given the pairs already ``linked``.

    ``method="delaunay"``: the Delaunay edges of the sites; ``"knn"``: each site with its ``k``
    nearest; pairs already linked are skipped (none with ``connect_only``). Then the fewest
    shortest Delaunay edges that join the components left (Kruskal, ties in Delaunay order)
    are added. Guarantees: the linked pairs plus the result connect all sites.
    """
    linked = [(min(i, j), max(i, j)) for i, j in linked]
    delaunay = delaunay_pairs(lat, lon)
    new_pairs: list[tuple[int, int]] = []
    if not connect_only:
        existing = set(linked)
        generated = delaunay if method == "delaunay" else knn_pairs(lat, lon, k)
        new_pairs = [p for p in generated if p not in existing]
    return sorted({*new_pairs, *joining_pairs(lat, lon, [*linked, *new_pairs], delaunay)})


def joining_pairs(
    lat: np.ndarray, lon: np.ndarray, linked: Iterable[tuple[int, int]], delaunay: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The shortest ``delaunay`` pairs (great-circle km; ties in list order) that join the components of
    the sites under ``linked``, fewest first: Kruskal's rule on the components. Guarantees: ``linked``
    plus the result connect all sites when ``delaunay`` connects them."""
    groups = UnionFind(range(len(lat)))
    for i, j in linked:
        groups.union(i, j)
    if not delaunay:
        return []
    a = np.array([p[0] for p in delaunay])
    b = np.array([p[1] for p in delaunay])
    dist = geo.haversine_km(lat[a], lon[a], lat[b], lon[b])
    out = []
    for idx in np.argsort(dist, kind="stable"):
        i, j = delaunay[int(idx)]
        if groups[i] != groups[j]:
            groups.union(i, j)
            out.append((i, j))
    return out


def fresh_link_ids(n: int, taken: set[str]) -> list[str]:
    """``n`` link ids ``C0, C1, ...`` in order, skipping those in ``taken``."""
    out: list[str] = []
    counter = 0
    while len(out) < n:
        if f"C{counter}" not in taken:
            out.append(f"C{counter}")
        counter += 1
    return out


def delaunay_pairs(lat: np.ndarray, lon: np.ndarray) -> list[tuple[int, int]]:
    """Index pairs (i < j) of the Delaunay edges of the points; all pairs when fewer than 4 points."""
    n = len(lat)
    if n < 2:
        return []
    if n <= 3:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    clat, clon = geo.mean_point(lat, lon)
    transformer = pyproj.Transformer.from_crs(CRS_WGS84, geo.azimuthal_equidistant_crs(clat, clon), always_xy=True)
    x, y = transformer.transform(lon, lat)
    pts = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    if not np.all(np.isfinite(pts)):  # a site at the antipode of the centre: fall back to lon/lat
        pts = np.column_stack([lon, lat])
    try:
        # "QJ" joggles the input so duplicate and collinear points still get triangulated
        tri = Delaunay(pts, qhull_options="QJ")
    except (QhullError, ValueError):
        order = np.lexsort((pts[:, 1], pts[:, 0]))
        return sorted({(min(int(a), int(b)), max(int(a), int(b))) for a, b in zip(order[:-1], order[1:], strict=True)})
    pairs: set[tuple[int, int]] = set()
    for simplex in tri.simplices:
        a, b, c = (int(s) for s in simplex)
        for i, j in ((a, b), (b, c), (a, c)):
            if i != j:
                pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def knn_pairs(lat: np.ndarray, lon: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Index pairs (i < j) joining each point to its k nearest points (great-circle order)."""
    n = len(lat)
    if n < 2:
        return []
    kk = min(k, n - 1)
    tree = cKDTree(geo.unit_vectors(lat, lon))
    _, nbrs = tree.query(geo.unit_vectors(lat, lon), k=kk + 1)
    pairs: set[tuple[int, int]] = set()
    for i, row in enumerate(np.atleast_2d(nbrs)):
        for j in row:
            j = int(j)
            if j != i and j < n:
                pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)
