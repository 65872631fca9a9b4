"""Access-network coefficient tables: which site may join which master, at what distance and loss.

The clustering model in :mod:`solvers.clustering` receives these tables; this
module owns the geography (it is the only place where reach is measured).
Pairs are found with a KD-tree on 3-D unit vectors, so building the sparse
table costs O(n log n + pairs) rather than the O(n^2) of a full matrix: ten
thousand sites are fine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from planner.model.network import Network
from planner.model.scenario import Scenario

logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class AccessTables:
    """Inputs of the clustering model.

    ``sites``: index site_id, column ``demand``. ``candidates``: index candidate
    id, columns ``cost, capacity, fixed, forbidden``. ``pairs``: columns
    ``site, master, distance_km, loss_db`` for every ordered pair within reach
    (site != master). ``standalone``: sites that cannot be in any cluster
    because fewer than ``min_slaves`` other sites are within reach of them
    (they join the backbone directly).
    """

    sites: pd.DataFrame
    candidates: pd.DataFrame
    pairs: pd.DataFrame
    standalone: list[str]


def unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """3-D unit vectors of points on the sphere (rows), for chord-distance searches."""
    lat = np.radians(lat_deg)
    lon = np.radians(lon_deg)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def great_circle_km_from_chord(chord: np.ndarray) -> np.ndarray:
    """Great-circle distance for chord lengths on the unit sphere."""
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def pairs_within_km(
    lat_deg: np.ndarray, lon_deg: np.ndarray, max_km: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All unordered index pairs (i < j) whose great-circle distance is <= ``max_km``.

    Returns ``(i, j, distance_km)`` arrays sorted by (i, j).
    """
    xyz = unit_vectors(np.asarray(lat_deg, float), np.asarray(lon_deg, float))
    chord_max = 2.0 * np.sin(min(max_km / EARTH_RADIUS_KM, np.pi) / 2.0)
    tree = cKDTree(xyz)
    pairs = tree.query_pairs(chord_max * (1 + 1e-12), output_type="ndarray")
    if len(pairs) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    i, j = pairs[:, 0], pairs[:, 1]
    d = great_circle_km_from_chord(np.linalg.norm(xyz[i] - xyz[j], axis=1))
    keep = d <= max_km
    return i[keep], j[keep], d[keep]


def build_access_tables(network: Network, scenario: Scenario) -> AccessTables:
    """Coefficient tables of the clustering model for ``network`` under ``scenario``.

    Guarantees: every pair in ``pairs`` is within ``access.reach_km`` (and
    within ``access.max_loss_db`` when set), its master is an allowed candidate
    and its site is not standalone; ``distance_km`` is the access fibre length
    (geodesic x route factor, or the shortest fibre path over the network's
    links when ``access.distance == "fibre"``). Pairs are sorted by (site, master) id.
    Works on integer site positions throughout (ten thousand sites and a million pairs in
    about a second); only the final tables carry the ids.
    """
    acc = scenario.access
    sites = network.sites
    ids = np.asarray(sites.index.astype(str), dtype=object)
    a, b, dist = _pairs_in_reach(network, scenario, ids)
    loss = dist * scenario.physics.alpha_db_per_km
    if acc.max_loss_db > 0:
        ok = loss <= acc.max_loss_db
        a, b, dist, loss = a[ok], b[ok], dist[ok], loss[ok]
    allowed_ids = _allowed_masters(network, acc.master_candidates)
    allowed = np.fromiter((s in allowed_ids for s in ids), dtype=bool, count=len(ids))
    active = _active_sites(len(ids), a, b, allowed, acc.min_slaves)
    keep = active[a] & active[b] & allowed[b]
    a, b, dist, loss = a[keep], b[keep], dist[keep], loss[keep]
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    order = np.lexsort((rank[b], rank[a]))
    a, b, dist, loss = a[order], b[order], dist[order], loss[order]
    pairs = pd.DataFrame({"site": ids[a], "master": ids[b], "distance_km": dist, "loss_db": loss})
    pairs["site"] = pairs["site"].astype(str)
    pairs["master"] = pairs["master"].astype(str)
    demand = sites["demand"].to_numpy(float) if "demand" in sites.columns else np.ones(len(ids))
    act = np.flatnonzero(active)
    act = act[np.argsort(rank[act], kind="stable")]
    site_table = pd.DataFrame({"demand": demand[act]}, index=pd.Index(ids[act].tolist(), name="site"))
    cand = act[allowed[act]]
    candidates = pd.DataFrame(
        {"cost": acc.master_cost, "capacity": acc.capacity, "fixed": False, "forbidden": False},
        index=pd.Index(ids[cand].tolist(), name="master"),
    )
    standalone = sorted(str(s) for s in ids[~active])
    logger.info(
        "access tables: %d sites in clusters, %d standalone, %d candidates, %d pairs",
        len(site_table),
        len(standalone),
        len(candidates),
        len(pairs),
    )
    return AccessTables(sites=site_table, candidates=candidates, pairs=pairs, standalone=standalone)


def _pairs_in_reach(network: Network, scenario: Scenario, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ordered site pairs (positions in ``ids``, both directions, never a site with itself) within
    ``access.reach_km`` and their access distance in km."""
    acc = scenario.access
    sites = network.sites
    if acc.distance == "geodesic":
        rf = scenario.network.route_factor
        # geodesic x route factor <= reach  <=>  geodesic <= reach / route factor
        i, j, d_geo = pairs_within_km(sites["lat"].to_numpy(float), sites["lon"].to_numpy(float), acc.reach_km / rf)
        dist = d_geo * rf
        return np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([dist, dist])
    fib = network.fibre_km()
    pos = pd.Index(ids)
    rows = pos.get_indexer(fib.index.astype(str))
    cols = pos.get_indexer(fib.columns.astype(str))
    mat = fib.to_numpy(float)
    r, c = np.nonzero(np.isfinite(mat) & (mat <= acc.reach_km))
    ok = (rows[r] != cols[c]) & (rows[r] >= 0) & (cols[c] >= 0)
    r, c = r[ok], c[ok]
    return rows[r], cols[c], mat[r, c]


def _active_sites(n: int, a: np.ndarray, b: np.ndarray, allowed: np.ndarray, min_slaves: int) -> np.ndarray:
    """Sites that can be in a cluster (mask over ``n`` sites), for pairs ``a`` (slave) -> ``b`` (master).

    Sites with fewer than ``min_slaves`` neighbours within reach can be neither master nor slave
    of a cluster of >= min_slaves slaves (a slave's master reaches it, and the master needs
    min_slaves slaves within its reach). Iterated to a fixed point: dropping a site can strand
    others. A master must be an ``allowed`` candidate.
    """
    active = np.ones(n, dtype=bool)
    while True:
        live = active[a] & active[b]
        deg = np.bincount(b[live], minlength=n)
        masters_ok = (deg >= min_slaves) & allowed
        slave_ok = np.zeros(n, dtype=bool)
        slave_ok[a[live & masters_ok[b]]] = True
        new_active = masters_ok | slave_ok
        if np.array_equal(new_active, active):
            return active
        active = new_active


def _allowed_masters(network: Network, kinds: list[str]) -> set[str]:
    ids = set(network.sites.index.astype(str))
    if not kinds or "all" in kinds:
        return ids
    mask = network.sites["kind"].astype(str).isin(kinds)
    return set(network.sites.index[mask].astype(str))
