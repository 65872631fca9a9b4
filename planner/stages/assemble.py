"""Assemble the stage results of the pipeline into a :class:`~planner.model.design.Design`.

Only this module knows how stage tables map onto the design's tables; it also
computes the headline metrics shown in the report and the CLI summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner import __version__
from planner.model.design import Design
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.model.schema import conform, empty_table
from planner.physics import link_success_probability
from planner.stages.access_tables import AccessTables
from planner.stages.backbone import Backbone
from planner.stages.latency import demand_protocol_latency_s, latency_metrics
from planner.stages.result import MemoryResult, RepeaterResult, StageResult, TrustResult, repeater_result


def assemble_design(
    network: Network,
    scenario: Scenario,
    seed: int,
    access: StageResult,
    access_tables: AccessTables,
    backbone: Backbone,
    stages: dict[str, StageResult],
    notes: list[str],
) -> Design:
    """Build the design tables from the stage outputs.

    Guarantees: every table is :func:`planner.model.schema.conform`-ed to its declared schema (an
    empty table carries the declared ``always`` columns; declared float columns are floats).
    Raises :class:`TypeError` when ``stages["memory"]`` is not a
    :class:`~planner.stages.result.MemoryResult` or ``stages["trust"]`` not a
    :class:`~planner.stages.result.TrustResult`.
    :class:`~planner.stages.result.MemoryResult` or ``stages["repeaters"]`` not a
    :class:`~planner.stages.result.RepeaterResult`.
    """
    names = network.sites["name"].astype(str).to_dict()
    memory = stages.get("memory")
    if memory is not None and not isinstance(memory, MemoryResult):
        raise TypeError(f"the memory stage's result is a {type(memory).__name__}, not a MemoryResult")
    trust = stages.get("trust")
    if trust is not None and not isinstance(trust, TrustResult):
        raise TypeError(f"the trust stage's result is a {type(trust).__name__}, not a TrustResult")
    rep = repeater_result(stages)
    sites = _site_table(network, access, memory, trust)
    clusters = _cluster_table(access, sites, memory, names, scenario)
    links = _link_table(backbone, rep, memory, names, scenario)
    demands = _demand_table(backbone, rep, memory, trust, names, scenario)
    relays = trust.relays if trust is not None else empty_table("relays")

    all_notes = list(notes)
    solves: dict[str, dict[str, Any]] = {}
    baselines: dict[str, dict[str, Any]] = {}
    timing: dict[str, float] = {}
    extra_metrics: dict[str, Any] = {}
    for _stage, st in [("access", access), *stages.items()]:
        all_notes.extend(n for n in st.notes if n not in all_notes)
        solves.update(st.solves)
        baselines.update(st.baselines)
        timing.update(st.timing)
        extra_metrics.update(st.metrics)
    metrics = _metrics(sites, clusters, links, demands, relays, scenario)
    metrics.update(extra_metrics)
    lat_metrics, lat_notes = latency_metrics(demands, scenario.backbone.latency_model, scenario.backbone.max_latency_s)
    metrics.update(lat_metrics)
    all_notes.extend(n for n in lat_notes if n not in all_notes)
    fibre = _fibre_table(network, memory, scenario)
    tables = {
        "sites": sites,
        "clusters": clusters,
        "links": links,
        "demands": demands,
        "relays": relays,
        "fibre": fibre,
        "access_pareto": access.tables.get("access_pareto", empty_table("access_pareto")),
    }
    return Design(
        network_name=network.name,
        network_source=_portable_source(network.source),
        scenario=scenario.to_dict(),
        seed=seed,
        version=__version__,
        metrics=metrics,
        solves=solves,
        baselines=baselines,
        notes=all_notes,
        timing=timing,
        **{name: conform(name, table) for name, table in tables.items()},
    )


def _site_table(
    network: Network, access: StageResult, memory: MemoryResult | None, trust: TrustResult | None
) -> pd.DataFrame:
    """One row per site: role and cluster from the access stage, trust and memory units."""
    assignment = access.tables["assignment"].set_index("site") if len(access.tables["assignment"]) else None
    node_mem = memory.nodes if memory is not None else None
    trusted_ids = trust.trusted if trust is not None else frozenset()

    rows = []
    for sid, s in network.sites.iterrows():
        sid = str(sid)
        if assignment is not None and sid in assignment.index:
            a = assignment.loc[sid]
            role, cluster = str(a["role"]), str(a["master"])
            km, db = float(a["distance_km"]), float(a["loss_db"])
        else:
            role, cluster, km, db = "unassigned", "", 0.0, 0.0
        mem_units = int(node_mem.get(sid, 0)) if node_mem is not None else 0
        rows.append(
            {
                "site_id": sid,
                "name": str(s["name"]),
                "kind": str(s["kind"]),
                "lat": float(s["lat"]),
                "lon": float(s["lon"]),
                "role": role,
                "cluster": cluster,
                "access_km": km,
                "access_db": db,
                "trusted": sid in trusted_ids,
                "memory_units": mem_units,
                "position_source": str(s.get("position_source", "given") or "given"),
            }
        )
    return pd.DataFrame(rows)


def _cluster_table(
    access: StageResult, sites: pd.DataFrame, memory: MemoryResult | None, names: dict[str, str], scenario: Scenario
) -> pd.DataFrame:
    """One row per cluster: the access stage's figures, its slaves and memory per master and slave."""
    clusters = access.tables["clusters"].copy()
    if not len(clusters):
        return empty_table("clusters")
    slaves = sites[sites["role"] == "slave"].groupby("cluster")["site_id"].apply(lambda s: ";".join(sorted(s)))
    clusters = clusters.rename(
        columns={
            "mean_access_km": "access_km_mean",
            "max_access_km": "access_km_max",
            "max_access_db": "access_db_max",
            "mean_access_db": "access_db_mean",
        }
    )
    clusters.insert(0, "cluster", clusters["master"].astype(str))
    clusters["master_name"] = [names.get(m, m) for m in clusters["master"]]
    clusters["slaves"] = [slaves.get(m, "") for m in clusters["master"]]
    clusters["slave_names"] = [", ".join(names.get(x, x) for x in s.split(";") if x) for s in clusters["slaves"]]
    mm = memory.tables.get("clusters") if memory is not None else None
    clusters["memory_master"] = [
        int(mm.loc[m, "memory_master"]) if mm is not None and m in mm.index else scenario.memory.master_units
        for m in clusters["master"]
    ]
    clusters["memory_slave"] = [
        int(mm.loc[m, "memory_slave"]) if mm is not None and m in mm.index else scenario.memory.slave_units
        for m in clusters["master"]
    ]
    return clusters.sort_values("cluster", kind="mergesort").reset_index(drop=True)


def _link_table(
    backbone: Backbone,
    rep: RepeaterResult | None,
    memory: MemoryResult | None,
    names: dict[str, str],
    scenario: Scenario,
) -> pd.DataFrame:
    """One row per backbone link: repeaters and spacing (none without a repeater stage), link
    success probability, memory units and the number of demands routed over it."""
    links = backbone.links.copy()
    links["u_name"] = [names.get(u, u) for u in links["u"]]
    links["v_name"] = [names.get(v, v) for v in links["v"]]
    if rep is not None and len(rep.segment_km):
        links["repeaters"] = [int(rep.link_repeaters[lid]) for lid in links["link_id"]]
        links["spacing_km"] = [float(rep.segment_km[lid]) for lid in links["link_id"]]
        links["p_link"] = [float(rep.link_p[lid]) for lid in links["link_id"]]
    else:
        links["repeaters"] = 0
        links["spacing_km"] = links["length_km"].astype(float)
        links["p_link"] = link_success_probability(
            links["length_km"].astype(float).to_numpy(), alpha_db_per_km=scenario.physics.alpha_db_per_km
        )
    edge_mem = memory.edges if memory is not None else None
    links["memory_units"] = [
        int(edge_mem.get(lid, scenario.memory.edge_units)) if edge_mem is not None else scenario.memory.edge_units
        for lid in links["link_id"]
    ]
    use: dict[str, int] = {}
    for p in backbone.demands["links"]:
        for lid in str(p).split(";"):
            use[lid] = use.get(lid, 0) + 1
    links["demands_using"] = [use.get(lid, 0) for lid in links["link_id"]]
    return links


def _demand_table(
    backbone: Backbone,
    rep: RepeaterResult | None,
    memory: MemoryResult | None,
    trust: TrustResult | None,
    names: dict[str, str],
    scenario: Scenario,
) -> pd.DataFrame:
    """One row per backbone demand: the repeater stage's chain figures, the memory stage's rates
    and shortfalls, the trust stage's securities and the protocol latency."""
    demands = backbone.demands.copy()
    demands["source_name"] = [names.get(x, x) for x in demands["source"]]
    demands["target_name"] = [names.get(x, x) for x in demands["target"]]
    if rep is not None and len(rep.demand_hops):
        chains = {"hops": rep.demand_hops, "p_worst": rep.demand_p_worst, "rate": rep.demand_rate}
        for col, values in {**chains, "latency_s": rep.demand_latency_s}.items():
            demands[col] = [values[d] for d in demands["demand_id"]]
        if rep.demand_shortfall is not None:  # demands no repeater spacing brings to backbone.rate_target
            demands["rate_shortfall"] = [rep.demand_shortfall[d] for d in demands["demand_id"]]
    if memory is not None and memory.demand_rates is not None:
        dr = memory.demand_rates
        base = demands["rate"] if "rate" in demands else pd.Series(np.nan, index=demands.index)
        demands["rate"] = [float(dr.get(d, r)) for d, r in zip(demands["demand_id"], base, strict=True)]
        shared = memory.demand_rates_shared
        if shared is not None:
            demands["rate_shared"] = [float(shared.get(d, np.nan)) for d in demands["demand_id"]]
        short = memory.demand_shortfall
        if short is not None:  # full-load shortfall against backbone.rate_target (planner.stages.memory)
            demands["shortfall_full_load"] = [float(short.get(d, np.nan)) for d in demands["demand_id"]]
    if trust is not None and trust.demands is not None:
        td = trust.demands.set_index("demand_id")
        for col in ("security", "security_single_path", "trusted_on_path", "key_consumption"):
            if col in td.columns:
                demands[col] = [td.at[d, col] if d in td.index else np.nan for d in demands["demand_id"]]

    if "rate" in demands and "hops" in demands:
        demands["latency_protocol_s"] = demand_protocol_latency_s(demands, vars(scenario.physics))
    return demands


def _fibre_table(network: Network, memory: MemoryResult | None, scenario: Scenario) -> pd.DataFrame:
    """One row per fibre link of the network, with the key generation it needs when the memory stage
    stated it (``fibre_key_bits``, :mod:`planner.stages.memory`)."""
    fibre = pd.DataFrame(
        {
            "link_id": network.links["link_id"].astype(str).to_numpy(),
            "u": network.links["u"].astype(str).to_numpy(),
            "v": network.links["v"].astype(str).to_numpy(),
            "length_km": network.links["length_km"].astype(float).to_numpy(),
            "candidate": network.links["candidate"].astype(bool).to_numpy(),
        }
    )
    pools = memory.tables.get("fibre_key_bits") if memory is not None else None
    if pools is not None and len(pools):  # key generation each link needs
        need = {(str(r.u), str(r.v)): r for r in pools.itertuples(index=False)}
        keys = [(min(u, v), max(u, v)) for u, v in zip(fibre["u"], fibre["v"], strict=True)]
        fibre["key_bits_per_round"] = [int(need[k].key_bits_per_round) if k in need else 0 for k in keys]
        fibre["key_pool_bits"] = int(scenario.security.key_pool_bits)
        fibre["rounds_supported"] = pd.Series(
            [int(need[k].rounds_supported) if k in need else None for k in keys], dtype=object, index=fibre.index
        )
    return fibre


def _portable_source(source: str) -> str:
    """The file name only: design.json must not depend on where the input lies."""
    return Path(source).name if source else ""


def _metrics(
    sites: pd.DataFrame,
    clusters: pd.DataFrame,
    links: pd.DataFrame,
    demands: pd.DataFrame,
    relays: pd.DataFrame,
    scenario: Scenario,
) -> dict[str, Any]:
    def _min(col: str) -> float | None:
        return float(demands[col].astype(float).min()) if col in demands and len(demands) else None

    def _mean(col: str) -> float | None:
        return float(demands[col].astype(float).mean()) if col in demands and len(demands) else None

    n_rep = int(links["repeaters"].sum()) if len(links) else 0
    mem_total = int(sites["memory_units"].sum()) + (int(links["memory_units"].sum()) if len(links) else 0)
    return {
        "n_sites": len(sites),
        "n_clusters": len(clusters),
        "n_masters": int((sites["role"] == "master").sum()),
        "n_slaves": int((sites["role"] == "slave").sum()),
        "n_standalone": int((sites["role"] == "unassigned").sum()),
        "total_keys_per_attempt": float(clusters["keys_per_attempt"].sum()) if len(clusters) else 0.0,
        "n_backbone_links": len(links),
        "backbone_km": float(links["length_km"].sum()) if len(links) else 0.0,
        "n_repeaters": n_rep,
        "repeater_cost": n_rep * scenario.backbone.repeater_cost,
        "n_demands": len(demands),
        "min_demand_rate": _min("rate"),
        "mean_demand_rate": _mean("rate"),
        "max_latency_s": float(demands["latency_s"].astype(float).max())
        if "latency_s" in demands and len(demands)
        else None,
        "n_trusted": int(relays["trusted"].astype(bool).sum()) if len(relays) else 0,
        "min_security": _min("security"),
        "mean_security": _mean("security"),
        "min_security_single_path": _min("security_single_path"),
        "memory_units_total": mem_total,
        "master_cost": float(len(clusters) * scenario.access.master_cost),
    }
