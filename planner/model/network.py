"""The :class:`Network`: sites and fibre links as GeoDataFrames plus graph views.

Conventions (guaranteed by :func:`planner.io.readers.read_network` and checked by
:meth:`Network.validate`):

* ``sites``: index ``site_id`` (unique str); columns ``name`` (str), ``kind``
  (one of :data:`SITE_KINDS`), ``demand`` (finite float >= 0), ``lat``/``lon``
  (finite degrees in range), ``geometry`` (Point, EPSG:4326); any extra source
  attributes are kept as further columns.
* ``links``: columns ``link_id`` (unique str), ``u``/``v`` (site ids, u != v),
  ``length_km`` (finite float >= :data:`MIN_LINK_KM`), ``length_source`` (one of
  :data:`LENGTH_SOURCES`), ``candidate`` (bool: generated, not in the input),
  ``geometry`` (LineString, EPSG:4326).

Fibre length rule: the stated length when the input gives one, else the
length along the link geometry when the input gives a geometry, else the
great-circle distance times the route factor (default 1.3). Every length is
floored at :data:`MIN_LINK_KM` (10 m): sites at identical coordinates (for
example two routers in one building, as in the Topology Zoo's Uninett2010) are
joined by at least a patch cord, and a strictly positive length keeps the
link-physics formulas (loss, entanglement time, rate = 1/time) finite.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components as _cc
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString

from planner import geo
from planner.errors import Problem, ValidationError
from planner.topology.candidates import candidate_pairs, fresh_link_ids

log = logging.getLogger(__name__)

CRS_WGS84 = "EPSG:4326"
DEFAULT_ROUTE_FACTOR = 1.3
MIN_LINK_KM = 0.01
SITE_KINDS = frozenset({"site", "end", "trusted", "untrusted", "backbone", "repeater", "external"})
LENGTH_SOURCES = frozenset({"geometry", "stated", "geodesic_x_route_factor"})
SITE_COLUMNS = ["name", "kind", "demand", "lat", "lon"]
LINK_COLUMNS = ["link_id", "u", "v", "length_km", "length_source", "candidate"]


def empty_sites() -> gpd.GeoDataFrame:
    """A sites table with the required columns and no rows."""
    frame = pd.DataFrame(
        {
            "name": pd.Series([], dtype=object),
            "kind": pd.Series([], dtype=object),
            "demand": pd.Series([], dtype=float),
            "lat": pd.Series([], dtype=float),
            "lon": pd.Series([], dtype=float),
        },
        index=pd.Index([], dtype=object, name="site_id"),
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=CRS_WGS84, index=frame.index), crs=CRS_WGS84)


def empty_links() -> gpd.GeoDataFrame:
    """A links table with the required columns and no rows."""
    frame = pd.DataFrame(
        {
            "link_id": pd.Series([], dtype=object),
            "u": pd.Series([], dtype=object),
            "v": pd.Series([], dtype=object),
            "length_km": pd.Series([], dtype=float),
            "length_source": pd.Series([], dtype=object),
            "candidate": pd.Series([], dtype=bool),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=CRS_WGS84), crs=CRS_WGS84)


def make_sites(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """Build a sites GeoDataFrame from a table indexed by site_id with the required columns.

    Adds Point geometries from ``lat``/``lon``; the caller has validated values.
    """
    frame = frame.copy()
    frame.index = pd.Index([str(i) for i in frame.index], dtype=object, name="site_id")
    frame["name"] = frame["name"].astype(str).astype(object)
    frame["kind"] = frame["kind"].astype(str).astype(object)
    for col in ("demand", "lat", "lon"):
        frame[col] = frame[col].astype(float)
    ordered = SITE_COLUMNS + [c for c in frame.columns if c not in SITE_COLUMNS and c != "geometry"]
    frame = frame[ordered]
    geometry = gpd.points_from_xy(frame["lon"].to_numpy(), frame["lat"].to_numpy(), crs=CRS_WGS84)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=CRS_WGS84)


def make_links(frame: pd.DataFrame, sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Build a links GeoDataFrame; straight-line geometry is added where ``geometry`` is missing.

    ``length_km`` is floored at :data:`MIN_LINK_KM` (see module docstring).
    """
    if len(frame) == 0:
        return empty_links()
    frame = frame.reset_index(drop=True).copy()
    for col in ("link_id", "u", "v"):
        frame[col] = frame[col].astype(str).astype(object)
    frame["length_km"] = np.maximum(frame["length_km"].astype(float).to_numpy(), MIN_LINK_KM)
    frame["candidate"] = frame["candidate"].astype(bool)
    frame["length_source"] = frame["length_source"].astype(str).astype(object)
    given = frame["geometry"] if "geometry" in frame.columns else pd.Series([None] * len(frame))
    lon = sites["lon"]
    lat = sites["lat"]
    geoms = []
    for geom, u, v in zip(given, frame["u"], frame["v"], strict=True):
        if geom is None or (isinstance(geom, float) and np.isnan(geom)) or getattr(geom, "is_empty", False):
            geom = LineString([(lon[u], lat[u]), (lon[v], lat[v])])
        geoms.append(geom)
    frame = frame.drop(columns=["geometry"], errors="ignore")
    ordered = LINK_COLUMNS + [c for c in frame.columns if c not in LINK_COLUMNS]
    return gpd.GeoDataFrame(frame[ordered], geometry=gpd.GeoSeries(geoms, crs=CRS_WGS84), crs=CRS_WGS84)


@dataclass
class Network:
    """A network of sites and fibre links (see the module docstring for the table conventions)."""

    name: str
    sites: gpd.GeoDataFrame
    links: gpd.GeoDataFrame = field(default_factory=empty_links)
    source: str = ""
    route_factor: float = DEFAULT_ROUTE_FACTOR

    # ------------------------------------------------------------------ views
    def site_ids(self) -> list[str]:
        """Site ids in table order."""
        return [str(s) for s in self.sites.index]

    def graph(self) -> nx.Graph:
        """Simple undirected graph on site_id.

        Node attributes ``kind``, ``lat``, ``lon``, ``name``, ``demand``; edge
        attributes ``length_km`` and ``link_id`` (of the shortest link when
        several links join the same pair) and ``candidate``.
        """
        graph = nx.Graph(name=self.name)
        for sid, row in zip(self.site_ids(), self.sites.itertuples(index=False), strict=True):
            graph.add_node(
                sid,
                kind=row.kind,
                lat=float(row.lat),
                lon=float(row.lon),
                name=row.name,
                demand=float(row.demand),
            )
        for row in self.links.itertuples(index=False):
            length = float(row.length_km)
            if graph.has_edge(row.u, row.v) and graph.edges[row.u, row.v]["length_km"] <= length:
                continue
            graph.add_edge(row.u, row.v, length_km=length, link_id=row.link_id, candidate=bool(row.candidate))
        return graph

    def metric_crs(self) -> pyproj.CRS:
        """The UTM zone CRS (metres, WGS84) of the sites' centroid."""
        if len(self.sites) == 0:
            return geo.utm_crs(0.0, 0.0)
        lat, lon = geo.mean_point(self.sites["lat"].to_numpy(), self.sites["lon"].to_numpy())
        return geo.utm_crs(lat, lon)

    def geodesic_km(self, sources: list[str] | None = None) -> pd.DataFrame:
        """Great-circle distance (km, haversine, R = 6371 km); rows ``sources`` (default all), columns all sites.

        The full matrix needs 8 n^2 bytes; pass ``sources`` for large networks.
        """
        ids = self.site_ids()
        lat = self.sites["lat"].to_numpy(dtype=float)
        lon = self.sites["lon"].to_numpy(dtype=float)
        if sources is None:
            dist = geo.pairwise_haversine_km(lat, lon)
            rows = ids
        else:
            rows = [str(s) for s in sources]
            pos = self._positions(rows)
            dist = np.asarray(geo.haversine_km(lat[pos, None], lon[pos, None], lat[None, :], lon[None, :]))
            dist = dist.reshape(len(rows), len(ids))
        return pd.DataFrame(dist, index=pd.Index(rows, name="site_id"), columns=pd.Index(ids, name="site_id"))

    def _positions(self, sources: list[str]) -> list[int]:
        pos = {sid: i for i, sid in enumerate(self.site_ids())}
        unknown = [s for s in sources if s not in pos]
        if unknown:
            raise ValidationError(
                Problem(
                    f"network {self.name!r}",
                    f"unknown source site(s) {unknown[:5]}",
                    "use ids from network.sites.index",
                ),
            )
        return [pos[s] for s in sources]

    def _adjacency(self) -> csr_matrix:
        ids = self.site_ids()
        pos = {sid: i for i, sid in enumerate(ids)}
        n = len(ids)
        if len(self.links) == 0:
            return csr_matrix((n, n), dtype=float)
        best: dict[tuple[int, int], float] = {}
        for u, v, length in zip(self.links["u"], self.links["v"], self.links["length_km"], strict=True):
            i, j = sorted((pos[u], pos[v]))
            best[(i, j)] = min(float(length), best.get((i, j), np.inf))
        rows = np.array([k[0] for k in best], dtype=int)
        cols = np.array([k[1] for k in best], dtype=int)
        vals = np.array(list(best.values()), dtype=float)
        # lengths are floored at MIN_LINK_KM > 0, so no edge is lost as an implicit zero
        return csr_matrix((vals, (rows, cols)), shape=(n, n))

    def fibre_km(self, sources: list[str] | None = None) -> pd.DataFrame:
        """Shortest-path fibre distance (km) over the links; ``inf`` where disconnected.

        Rows are ``sources`` (default: all sites), columns all sites.
        """
        ids = self.site_ids()
        src = ids if sources is None else [str(s) for s in sources]
        indices = self._positions(src)
        if not ids or not src:
            return pd.DataFrame(
                np.zeros((0, len(ids))),
                index=pd.Index([], dtype=object, name="site_id"),
                columns=pd.Index(ids, dtype=object, name="site_id"),
            )
        dist = dijkstra(self._adjacency(), directed=False, indices=indices)
        dist = np.atleast_2d(dist)
        return pd.DataFrame(dist, index=pd.Index(src, name="site_id"), columns=pd.Index(ids, name="site_id"))

    def connected_components(self) -> list[set[str]]:
        """Connected components of the link graph, largest first (ties: smallest site id first)."""
        ids = self.site_ids()
        if not ids:
            return []
        _, labels = _cc(self._adjacency(), directed=False)
        comps: dict[int, set[str]] = {}
        for sid, lab in zip(ids, labels, strict=True):
            comps.setdefault(int(lab), set()).add(sid)
        return sorted(comps.values(), key=lambda c: (-len(c), min(c)))

    def summary(self) -> dict:
        """n_sites, n_links, n_candidate_links, total_km, bbox (min_lon, min_lat, max_lon, max_lat), n_components."""
        if len(self.sites):
            bbox = [
                float(self.sites["lon"].min()),
                float(self.sites["lat"].min()),
                float(self.sites["lon"].max()),
                float(self.sites["lat"].max()),
            ]
        else:
            bbox = [float("nan")] * 4
        return {
            "name": self.name,
            "n_sites": int(len(self.sites)),
            "n_links": int(len(self.links)),
            "n_candidate_links": int(self.links["candidate"].sum()) if len(self.links) else 0,
            "total_km": float(self.links["length_km"].sum()) if len(self.links) else 0.0,
            "bbox": bbox,
            "n_components": len(self.connected_components()),
        }

    # ----------------------------------------------------------- candidates
    def with_candidate_links(
        self,
        *,
        method: Literal["delaunay", "knn"] = "delaunay",
        k: int = 4,
        connect_only: bool = False,
    ) -> Network:
        """A copy with generated links (``candidate=True``, length = great-circle x route factor).

        ``method="delaunay"``: the edges of a Delaunay triangulation of the sites
        (in an azimuthal equidistant projection centred on the network);
        ``method="knn"``: each site joined to its ``k`` nearest sites. Pairs that
        already have a link are skipped. Then, whatever the method, the fewest
        shortest Delaunay edges that join the remaining components are added
        (Kruskal), so the result is connected. With ``connect_only=True`` only
        those joining links are added. The returned network is connected when
        it has at least one site.
        """
        if method not in ("delaunay", "knn"):
            raise ValidationError(
                Problem("with_candidate_links", f"unknown method {method!r}", "use 'delaunay' or 'knn'")
            )
        if k < 1:
            raise ValidationError(Problem("with_candidate_links", f"k must be >= 1, got {k}", "use k >= 1"))
        ids = self.site_ids()
        lat = self.sites["lat"].to_numpy(dtype=float)
        lon = self.sites["lon"].to_numpy(dtype=float)
        pos = {sid: i for i, sid in enumerate(ids)}
        linked = [(pos[u], pos[v]) for u, v in zip(self.links["u"], self.links["v"], strict=True)]
        pairs = candidate_pairs(lat, lon, linked, method=method, k=k, connect_only=connect_only)
        if not pairs:
            return Network(self.name, self.sites.copy(), self.links.copy(), self.source, self.route_factor)
        gc = geo.haversine_km(
            lat[[p[0] for p in pairs]],
            lon[[p[0] for p in pairs]],
            lat[[p[1] for p in pairs]],
            lon[[p[1] for p in pairs]],
        )
        link_ids = fresh_link_ids(len(pairs), set(self.links["link_id"]) if len(self.links) else set())
        new = pd.DataFrame(
            {
                "link_id": link_ids,
                "u": [ids[i] for i, _ in pairs],
                "v": [ids[j] for _, j in pairs],
                "length_km": np.asarray(gc, dtype=float) * self.route_factor,
                "length_source": "geodesic_x_route_factor",
                "candidate": True,
            }
        )
        new_links = make_links(new, self.sites)
        log.info(
            "%s: added %d candidate links (%s)",
            self.name,
            len(new_links),
            "connect only" if connect_only else method,
        )
        if len(self.links):
            combined = pd.concat([self.links, new_links], ignore_index=True)
            links = gpd.GeoDataFrame(combined, geometry="geometry", crs=CRS_WGS84)
        else:
            links = new_links
        return Network(self.name, self.sites.copy(), links, self.source, self.route_factor)

    # ----------------------------------------------------------- validation
    def validate(self) -> None:
        """Check the table invariants; raises :class:`ValidationError` listing every violation."""
        where = f"network {self.name!r}"
        problems: list[Problem] = []
        sites, links = self.sites, self.links
        if sites.index.name != "site_id":
            problems.append(Problem(where, f"sites index is named {sites.index.name!r}, not 'site_id'"))
        if not sites.index.is_unique:
            problems.append(Problem(where, "site ids are not unique"))
        for col in SITE_COLUMNS + ["geometry"]:
            if col not in sites.columns:
                problems.append(Problem(where, f"sites table lacks column {col!r}"))
        for col in LINK_COLUMNS + ["geometry"]:
            if col not in links.columns:
                problems.append(Problem(where, f"links table lacks column {col!r}"))
        if problems:
            raise ValidationError(problems, source=where)
        lat = sites["lat"].to_numpy(dtype=float)
        lon = sites["lon"].to_numpy(dtype=float)
        if not (np.all(np.isfinite(lat)) and np.all(np.abs(lat) <= 90)):
            problems.append(Problem(where, "a latitude is not finite or outside [-90, 90]"))
        if not (np.all(np.isfinite(lon)) and np.all(np.abs(lon) <= 180)):
            problems.append(Problem(where, "a longitude is not finite or outside [-180, 180]"))
        dem = sites["demand"].to_numpy(dtype=float)
        if not (np.all(np.isfinite(dem)) and np.all(dem >= 0)):
            problems.append(Problem(where, "a demand is negative or not finite"))
        bad_kinds = sorted(set(sites["kind"]) - SITE_KINDS)
        if bad_kinds:
            problems.append(Problem(where, f"unknown site kinds {bad_kinds}"))
        if sites.crs is None or not sites.crs.equals(pyproj.CRS(CRS_WGS84)):
            problems.append(Problem(where, "sites are not in EPSG:4326"))
        if len(links):
            ids = set(sites.index)
            if not links["link_id"].is_unique:
                problems.append(Problem(where, "link ids are not unique"))
            unknown = sorted((set(links["u"]) | set(links["v"])) - ids)
            if unknown:
                problems.append(Problem(where, f"links name unknown sites {unknown[:5]}"))
            if bool((links["u"] == links["v"]).any()):
                problems.append(Problem(where, "a link is a self-loop"))
            lengths = links["length_km"].to_numpy(dtype=float)
            if not (np.all(np.isfinite(lengths)) and np.all(lengths >= 0)):
                problems.append(Problem(where, "a link length is negative or not finite"))
            bad_src = sorted(set(links["length_source"]) - LENGTH_SOURCES)
            if bad_src:
                problems.append(Problem(where, f"unknown length sources {bad_src}"))
        if problems:
            raise ValidationError(problems, source=where)
