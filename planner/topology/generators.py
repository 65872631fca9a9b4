"""Synthetic networks for sweeps and benchmarks: Waxman, random geometric and grid.

Every generator places ``n_sites`` sites in a square of side ``extent_km``
centred on a reference point (default 52 N, 5 E), joins them by fibre links
and returns a validated :class:`~planner.model.network.Network`. Site ids are
``S0000``, ``S0001``, ...; link lengths are the great-circle distance times
``route_factor`` (``length_source = "geodesic_x_route_factor"``), exactly as
:func:`planner.io.readers.read_network` treats a file without stated lengths.

Planar positions are turned into latitude/longitude with the local
azimuthal-equidistant projection of :func:`planner.geo.azimuthal_equidistant_crs`
so that distances in the square are distances on the ground.

All randomness comes from one ``numpy.random.Generator`` seeded with ``seed``;
the same arguments give the same network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pyproj

from planner import geo
from planner.errors import ValidationError
from planner.model.network import DEFAULT_ROUTE_FACTOR, Network, make_links, make_sites
from planner.topology.waxman import DEFAULT_ALPHA, DEFAULT_BETA, waxman_graph

logger = logging.getLogger(__name__)

GENERATORS = ("waxman", "random_geometric", "grid")
DEFAULT_EXTENT_KM = 300.0
DEFAULT_CENTER = (52.0, 5.0)


def _check_common(n_sites: int, extent_km: float, route_factor: float, source: str) -> None:
    problems = []
    if not isinstance(n_sites, int) or isinstance(n_sites, bool) or n_sites < 3:
        problems.append(f"n_sites={n_sites!r} must be an integer >= 3 (a master and two slaves)")
    if not (isinstance(extent_km, int | float) and 0 < extent_km <= 10_000):
        problems.append(f"extent_km={extent_km!r} must be in (0, 10000]")
    if not (isinstance(route_factor, int | float) and 1.0 <= route_factor <= 10.0):
        problems.append(f"route_factor={route_factor!r} must be in [1, 10]")
    if problems:
        raise ValidationError("; ".join(problems), source=source)


def _network_from_xy(
    name: str,
    xy_km: np.ndarray,
    edges: list[tuple[int, int]],
    *,
    center: tuple[float, float],
    route_factor: float,
    source: str,
) -> Network:
    """Build a Network from planar positions (km, origin at the square's centre) and index pairs."""
    lat0, lon0 = center
    crs = geo.azimuthal_equidistant_crs(lat0, lon0)
    to_wgs = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(xy_km[:, 0] * 1000.0, xy_km[:, 1] * 1000.0)
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    ids = [f"S{i:04d}" for i in range(len(xy_km))]
    sites = pd.DataFrame(
        {"name": ids, "kind": "site", "demand": 1.0, "lat": lat, "lon": lon},
        index=pd.Index(ids, name="site_id"),
    )
    site_gdf = make_sites(sites)
    if edges:
        u = np.array([e[0] for e in edges], dtype=int)
        v = np.array([e[1] for e in edges], dtype=int)
        gc_km = geo.haversine_km(lat[u], lon[u], lat[v], lon[v])
        links = pd.DataFrame(
            {
                "link_id": [f"L{i:05d}" for i in range(len(edges))],
                "u": [ids[i] for i in u],
                "v": [ids[i] for i in v],
                "length_km": np.asarray(gc_km, dtype=float) * route_factor,
                "length_source": "geodesic_x_route_factor",
                "candidate": False,
            }
        )
        link_gdf = make_links(links, site_gdf)
    else:
        link_gdf = make_links(pd.DataFrame(), site_gdf)
    net = Network(name, site_gdf, link_gdf, source=source, route_factor=route_factor)
    net.validate()
    return net


def waxman_network(
    n_sites: int,
    *,
    seed: int = 0,
    extent_km: float = DEFAULT_EXTENT_KM,
    alpha: float | None = None,
    beta: float = DEFAULT_BETA,
    route_factor: float = DEFAULT_ROUTE_FACTOR,
    center: tuple[float, float] = DEFAULT_CENTER,
) -> Network:
    """A connected Waxman network (:func:`planner.topology.waxman.waxman_graph`) scaled to ``extent_km``.

    ``alpha`` defaults to ``0.15 * sqrt(100 / n_sites)`` for fewer than 100
    sites and 0.15 above (the SMR-experiment setting at 100 nodes): the mean
    degree of a Waxman graph grows like ``n * alpha**2``, so this keeps small
    graphs about as dense as the 100-node one, where a draw is connected.
    Guarantees: ``n_sites`` sites, connected, identical for identical arguments.
    """
    source = f"waxman(n={n_sites}, seed={seed})"
    _check_common(n_sites, extent_km, route_factor, source)
    if alpha is None:
        alpha = DEFAULT_ALPHA * max(1.0, float(np.sqrt(100.0 / n_sites)))
    graph = waxman_graph(n_sites, np.random.default_rng(seed), alpha=alpha, beta=beta)
    pos = np.array([graph.nodes[i]["pos"] for i in range(n_sites)], dtype=float)
    xy_km = (pos - 0.5) * extent_km
    edges = sorted((min(u, v), max(u, v)) for u, v in graph.edges())
    return _network_from_xy(
        f"waxman-{n_sites}-s{seed}",
        xy_km,
        edges,
        center=center,
        route_factor=route_factor,
        source=source,
    )


def random_geometric_network(
    n_sites: int,
    *,
    seed: int = 0,
    extent_km: float = DEFAULT_EXTENT_KM,
    radius_km: float | None = None,
    route_factor: float = DEFAULT_ROUTE_FACTOR,
    center: tuple[float, float] = DEFAULT_CENTER,
) -> Network:
    """A random geometric network: uniform sites, a link between every pair closer than ``radius_km``.

    The default radius gives a mean degree of about 6 (``radius = extent * sqrt(6 / (pi n))``).
    The result may be disconnected for small radii; the planner then adds
    candidate links (``network.candidate_links = "auto"``).
    """
    source = f"random_geometric(n={n_sites}, seed={seed})"
    _check_common(n_sites, extent_km, route_factor, source)
    if radius_km is None:
        radius_km = extent_km * float(np.sqrt(6.0 / (np.pi * n_sites)))
    if not radius_km > 0:
        raise ValidationError(f"radius_km={radius_km!r} must be > 0", source=source)
    rng = np.random.default_rng(seed)
    xy_km = (rng.random((n_sites, 2)) - 0.5) * extent_km
    from scipy.spatial import cKDTree

    pairs = cKDTree(xy_km).query_pairs(r=radius_km, output_type="ndarray")
    edges = sorted((int(a), int(b)) for a, b in pairs)
    return _network_from_xy(
        f"rgg-{n_sites}-s{seed}",
        xy_km,
        edges,
        center=center,
        route_factor=route_factor,
        source=source,
    )


def grid_network(
    n_sites: int,
    *,
    seed: int = 0,
    extent_km: float = DEFAULT_EXTENT_KM,
    jitter: float = 0.0,
    route_factor: float = DEFAULT_ROUTE_FACTOR,
    center: tuple[float, float] = DEFAULT_CENTER,
) -> Network:
    """A near-square grid of ``n_sites`` sites (rows filled in order) with 4-neighbour links.

    ``jitter`` (fraction of the grid spacing, 0..0.5) moves each site by a
    uniform random offset; with ``jitter = 0`` the seed has no effect.
    """
    source = f"grid(n={n_sites}, seed={seed})"
    _check_common(n_sites, extent_km, route_factor, source)
    if not 0.0 <= jitter <= 0.5:
        raise ValidationError(f"jitter={jitter!r} must be in [0, 0.5]", source=source)
    cols = int(np.ceil(np.sqrt(n_sites)))
    spacing = extent_km / max(cols - 1, 1)
    idx = np.arange(n_sites)
    row, col = idx // cols, idx % cols
    xy_km = np.column_stack([col * spacing, row * spacing]).astype(float)
    xy_km -= xy_km.mean(axis=0)
    if jitter:
        rng = np.random.default_rng(seed)
        xy_km += rng.uniform(-jitter, jitter, xy_km.shape) * spacing
    g = nx.Graph()
    g.add_nodes_from(range(n_sites))
    for i in range(n_sites):
        if col[i] + 1 < cols and i + 1 < n_sites:
            g.add_edge(i, i + 1)
        if i + cols < n_sites:
            g.add_edge(i, i + cols)
    edges = sorted((min(u, v), max(u, v)) for u, v in g.edges())
    return _network_from_xy(
        f"grid-{n_sites}-s{seed}",
        xy_km,
        edges,
        center=center,
        route_factor=route_factor,
        source=source,
    )


_BUILDERS: dict[str, Callable[..., Network]] = {
    "waxman": waxman_network,
    "random_geometric": random_geometric_network,
    "grid": grid_network,
}


def generate_network(kind: str, n_sites: int, *, seed: int = 0, **params: Any) -> Network:
    """Dispatch to a generator by name (one of :data:`GENERATORS`); ``params`` go to it."""
    try:
        builder = _BUILDERS[kind]
    except KeyError:
        raise ValidationError(
            f"unknown generator {kind!r}; use one of {', '.join(GENERATORS)}",
            source="network.generator",
        ) from None
    try:
        return builder(n_sites, seed=seed, **params)
    except TypeError as exc:
        raise ValidationError(f"generator {kind!r}: {exc}", source="network.generator") from None
