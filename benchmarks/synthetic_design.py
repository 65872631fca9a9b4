"""A large, internally consistent :class:`~planner.model.design.Design` built directly (no optimisation).

Used to measure the report and the GeoPackage at national scale (thousands of
sites, tens of thousands of demands) without running the planner: sites are
scattered over a box, every ``cluster_size``-th site is a master whose cluster
holds its nearest unassigned sites, masters are joined by a k-nearest-neighbour
backbone, every pair of clusters is a demand routed on its shortest backbone
path, and rates, latencies and security follow the project's formulas
(Eq. 7/9/10 with the worst hop, SMR-like security decaying with untrusted hops).
The numbers are plausible, not optimised; the point is the size and shape.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from planner import physics
from planner.model.design import Design
from planner.model.scenario import default_scenario
from planner.stages.latency import demand_protocol_latency_s


def synthetic_design(
    n_sites: int = 3000,
    cluster_size: int = 8,
    *,
    knn: int = 3,
    seed: int = 0,
    box_deg: tuple[float, float, float, float] = (5.8, 15.0, 47.3, 55.0),
) -> Design:
    """A design of ``n_sites`` sites in ``n_sites // cluster_size`` clusters with all-pairs demands."""
    rng = np.random.default_rng(seed)
    lon0, lon1, lat0, lat1 = box_deg
    lon = rng.uniform(lon0, lon1, n_sites)
    lat = rng.uniform(lat0, lat1, n_sites)
    ids = [f"s{i}" for i in range(n_sites)]
    kx = math.cos(math.radians((lat0 + lat1) / 2))
    pts = np.column_stack([lon * kx, lat]) * 111.32  # km, locally
    n_clusters = max(2, n_sites // cluster_size)
    masters = rng.choice(n_sites, n_clusters, replace=False)
    owner = cKDTree(pts[masters]).query(pts)[1]
    role = np.array(["slave"] * n_sites, dtype=object)
    role[masters] = "master"
    cluster = [ids[masters[o]] for o in owner]
    access_km = np.linalg.norm(pts - pts[masters][owner], axis=1)
    access_km[masters] = 0.0
    sites = pd.DataFrame(
        {
            "site_id": ids,
            "name": [f"Town {i}" for i in range(n_sites)],
            "kind": "site",
            "lat": lat,
            "lon": lon,
            "role": role,
            "cluster": cluster,
            "access_km": access_km,
            "access_db": 0.2 * access_km,
            "trusted": False,
            "memory_units": 4,
        }
    )
    members: dict[str, list[str]] = {}
    for sid, c, r in zip(ids, cluster, role, strict=True):
        if r == "slave":
            members.setdefault(c, []).append(sid)
    mids = [ids[m] for m in masters]
    clusters = pd.DataFrame(
        {
            "cluster": mids,
            "master": mids,
            "master_name": [f"Town {m}" for m in masters],
            "n_slaves": [len(members.get(c, [])) for c in mids],
            "slaves": [";".join(members.get(c, [])) for c in mids],
            "ekert_pairs": [len(members.get(c, [])) // 2 for c in mids],
            "keys_per_attempt": [0.5 + 0.25 * len(members.get(c, [])) for c in mids],
            "access_km_mean": [
                float(np.mean([access_km[int(s[1:])] for s in members.get(c, [])])) if members.get(c) else 0.0
                for c in mids
            ],
        }
    )
    mp = pts[masters]
    g = nx.Graph()
    g.add_nodes_from(mids)
    _, nb = cKDTree(mp).query(mp, k=min(knn + 1, n_clusters))
    for i, row in enumerate(nb):
        for j in row[1:]:
            g.add_edge(mids[i], mids[int(j)], length_km=float(np.linalg.norm(mp[i] - mp[int(j)])))
    comps = list(nx.connected_components(g))
    for a, b in zip(comps[:-1], comps[1:], strict=True):
        u, v = min(a), min(b)  # not next(iter(set)): that follows the hash seed
        iu, iv = mids.index(u), mids.index(v)
        g.add_edge(u, v, length_km=float(np.linalg.norm(mp[iu] - mp[iv])))
    sc = default_scenario()
    ph = sc.physics
    link_rows = []
    for u, v, data in g.edges(data=True):
        length = data["length_km"]
        reps = int(max(0, math.ceil(length / 40.0) - 1))
        seg = length / (reps + 1)
        link_rows.append(
            {
                "link_id": f"{u}--{v}",
                "u": u,
                "v": v,
                "length_km": length,
                "repeaters": reps,
                "spacing_km": seg,
                "p_link": physics.link_success_probability(seg, alpha_db_per_km=ph.alpha_db_per_km),
                "memory_units": 4,
                "route": f"{u};{v}",
                "demands_using": 0,
            }
        )
        g.edges[u, v]["link_id"] = f"{u}--{v}"
        g.edges[u, v]["hops"] = reps + 1
        g.edges[u, v]["seg"] = seg
    links = pd.DataFrame(link_rows)
    paths = dict(nx.all_pairs_dijkstra_path(g, weight="length_km"))
    rows = []
    for i, s in enumerate(mids):
        for t in mids[i + 1 :]:
            p = paths[s][t]
            edges = [g.edges[a, b] for a, b in zip(p[:-1], p[1:], strict=True)]
            rows.append(
                {
                    "demand_id": f"{s}~{t}",
                    "source": s,
                    "target": t,
                    "path": ";".join(p),
                    "links": ";".join(e["link_id"] for e in edges),
                    "length_km": float(sum(e["length_km"] for e in edges)),
                    "source_name": s,
                    "target_name": t,
                    "hops": int(sum(e["hops"] for e in edges)),
                    "seg": max(e["seg"] for e in edges),
                    "untrusted": max(0, len(p) - 2),
                    "trusted_on_path": "",
                }
            )
    demands = pd.DataFrame(rows)
    seg = demands.pop("seg").to_numpy(dtype=float)
    hops = demands["hops"].to_numpy(dtype=int)
    untrusted = demands.pop("untrusted").to_numpy(dtype=float)
    pw = np.asarray(physics.link_success_probability(seg, alpha_db_per_km=ph.alpha_db_per_km), dtype=float)
    demands["p_worst"] = pw
    demands["rate"] = np.asarray(physics.chain_distribution_ratio(hops, p=pw, q=ph.q_swap, memory=4), dtype=float)
    # Eq. 10 with equal hops of the worst length: k * t(seg) / lam + k (t_mea + t_ret)
    t_seg = seg * 10.0 ** (ph.alpha_db_per_km * seg / 10.0) / ph.speed_km_per_s
    demands["latency_s"] = hops * t_seg / demands["rate"].to_numpy() + hops * (ph.t_mea_s + ph.t_ret_s)
    demands["security"] = 1 - (1 - 0.8**untrusted) * 0.5
    demands["security_single_path"] = 0.8**untrusted
    demands["latency_protocol_s"] = demand_protocol_latency_s(demands, vars(ph))
    relays = pd.DataFrame({"site_id": mids, "name": mids, "kind": "site", "trusted": False, "p_untrusted": 0.8})
    fibre = links[["link_id", "u", "v", "length_km"]].assign(candidate=True)
    metrics = {
        "n_sites": n_sites,
        "n_clusters": n_clusters,
        "n_demands": len(demands),
        "min_demand_rate": float(demands["rate"].min()),
        "max_latency_s": float(demands["latency_s"].max()),
        "max_latency_protocol_s": float(demands["latency_protocol_s"].max()),
        "min_security": float(demands["security"].min()),
    }
    return Design(
        network_name=f"synthetic-{n_sites}",
        network_source="synthetic",
        scenario=sc.to_dict(),
        seed=seed,
        version="synthetic",
        sites=sites,
        clusters=clusters,
        links=links,
        demands=demands,
        relays=relays,
        fibre=fibre,
        metrics=metrics,
    )
