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
    links when ``access.distance == "fibre"``).
    """
    acc = scenario.access
    alpha = scenario.physics.alpha_db_per_km
    sites = network.sites
    ids = np.asarray(sites.index.astype(str))
    rf = scenario.network.route_factor
    if acc.distance == "geodesic":
        # geodesic x route factor <= reach  <=>  geodesic <= reach / route factor
        i, j, d_geo = pairs_within_km(sites["lat"].to_numpy(float), sites["lon"].to_numpy(float), acc.reach_km / rf)
        dist = d_geo * rf
        a = np.concatenate([i, j])
        b = np.concatenate([j, i])
        dd = np.concatenate([dist, dist])
        table = pd.DataFrame({"site": ids[a], "master": ids[b], "distance_km": dd})
    else:
        fib = network.fibre_km()
        stacked = fib.stack()
        stacked = stacked[(stacked <= acc.reach_km) & np.isfinite(stacked)]
        table = pd.DataFrame(
            {
                "site": stacked.index.get_level_values(0).astype(str),
                "master": stacked.index.get_level_values(1).astype(str),
                "distance_km": stacked.to_numpy(float),
            }
        )
        table = table[table["site"] != table["master"]]
    table["loss_db"] = table["distance_km"] * alpha
    if acc.max_loss_db > 0:
        table = table[table["loss_db"] <= acc.max_loss_db]

    allowed = _allowed_masters(network, acc.master_candidates)
    # Sites with fewer than min_slaves neighbours within reach can be neither master nor slave
    # of a cluster of >= min_slaves slaves (a slave's master reaches it, and the master needs
    # min_slaves slaves within its reach). Iterate to a fixed point: dropping a site can
    # strand others.
    active = set(ids)
    while True:
        t = table[table["site"].isin(active) & table["master"].isin(active)]
        deg = t.groupby("master").size()
        masters_ok = set(deg[deg >= acc.min_slaves].index) & allowed
        slave_ok = set(t.loc[t["master"].isin(masters_ok), "site"])
        new_active = masters_ok | slave_ok
        if new_active == active:
            break
        active = new_active
    standalone = sorted(set(ids) - active)
    pairs = table[table["site"].isin(active) & table["master"].isin(active & allowed)]
    pairs = pairs.sort_values(["site", "master"], kind="mergesort").reset_index(drop=True)

    demand = sites["demand"].astype(float) if "demand" in sites.columns else pd.Series(1.0, index=sites.index)
    site_table = pd.DataFrame(
        {"demand": demand.loc[sorted(active)].to_numpy()}, index=pd.Index(sorted(active), name="site")
    )
    cand_ids = sorted(active & allowed)
    candidates = pd.DataFrame(
        {
            "cost": acc.master_cost,
            "capacity": acc.capacity,
            "fixed": False,
            "forbidden": False,
        },
        index=pd.Index(cand_ids, name="master"),
    )
    logger.info(
        "access tables: %d sites in clusters, %d standalone, %d candidates, %d pairs",
        len(site_table),
        len(standalone),
        len(candidates),
        len(pairs),
    )
    return AccessTables(sites=site_table, candidates=candidates, pairs=pairs, standalone=standalone)


def _allowed_masters(network: Network, kinds: list[str]) -> set[str]:
    ids = set(network.sites.index.astype(str))
    if not kinds or "all" in kinds:
        return ids
    mask = network.sites["kind"].astype(str).isin(kinds)
    return set(network.sites.index[mask].astype(str))
