"""Exhaustive reference solvers for small instances (used by the tests).

They share no model code with :mod:`solvers.clustering` / :mod:`solvers.memory`: they read the
raw tables and options and enumerate. Exponential: keep instances tiny.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class EnumeratedClustering:
    """Best clustering found by enumeration: objective, Eq. 6 keys, cost, weighted loss, masters
    and ``owner`` (site id -> master id; a master site maps to its own candidate id)."""

    objective: float
    keys_per_attempt: float
    cost: float
    weighted_loss_db: float
    masters: tuple[str, ...]
    owner: dict[str, str]


def enumerate_clustering(
    sites: pd.DataFrame,
    candidates: pd.DataFrame,
    pairs: pd.DataFrame,
    *,
    objective: str,
    min_slaves: int,
    max_masters: int | None,
    max_cost: float | None,
    key_mdi: float,
    key_ekr: float,
    min_cluster_keys: float,
    loss_weight: float,
) -> EnumeratedClustering | None:
    """Optimum over every master set and every assignment (``None`` if infeasible).

    For each subset of allowed candidates, a dynamic programme over the sites enumerates all
    assignments, keeping per vector of cluster sizes the least weighted loss (the objective
    depends on the assignment only through the sizes and the loss, so this is exact).
    ``key_mdi = R_mdi*N_m`` and ``key_ekr = R_ekr*N_s`` of Eq. 6.
    """
    site_ids = [str(s) for s in sites.index]
    demand = {
        str(s): float(d)
        for s, d in (sites["demand"] if "demand" in sites else pd.Series(1.0, index=sites.index)).items()
    }
    cand_ids = [str(c) for c in candidates.index]

    def col(name: str, default: object) -> dict[str, object]:
        if name in candidates.columns:
            return {str(c): v for c, v in candidates[name].items()}
        return dict.fromkeys(cand_ids, default)

    cost = {c: float(v) for c, v in col("cost", 1.0).items()}  # type: ignore[arg-type]
    cap = {c: int(v) for c, v in col("capacity", len(site_ids)).items()}  # type: ignore[call-overload]
    fixed = {c: bool(v) for c, v in col("fixed", False).items()}
    forbidden = {c: bool(v) for c, v in col("forbidden", False).items()}
    reach: dict[tuple[str, str], float] = {}
    for s, c, loss in zip(pairs["site"], pairs["candidate"], pairs["loss_db"], strict=True):
        reach[(str(s), str(c))] = float(loss)
    allowed = [c for c in cand_ids if not forbidden[c]]
    must = [c for c in allowed if fixed[c]]
    free = [c for c in allowed if not fixed[c]]
    best: EnumeratedClustering | None = None
    better = (lambda a, b: a > b + 1e-12) if objective == "max_keys" else (lambda a, b: a < b - 1e-12)
    for k in range(len(free) + 1):
        for extra in itertools.combinations(free, k):
            masters = tuple(must) + extra
            if max_masters is not None and len(masters) > max_masters:
                continue
            total_cost = sum(cost[c] for c in masters)
            if max_cost is not None and total_cost > max_cost + 1e-9:
                continue
            master_sites = {c for c in masters if c in site_ids}
            slaves = [s for s in site_ids if s not in master_sites]
            # DP over slaves: sizes tuple -> (least loss, owner tuple)
            states: dict[tuple[int, ...], tuple[float, tuple[str, ...]]] = {(0,) * len(masters): (0.0, ())}
            for s in slaves:
                nxt: dict[tuple[int, ...], tuple[float, tuple[str, ...]]] = {}
                for sizes, (loss, own) in states.items():
                    for j, c in enumerate(masters):
                        if (s, c) not in reach or sizes[j] >= cap[c]:
                            continue
                        ns = sizes[:j] + (sizes[j] + 1,) + sizes[j + 1 :]
                        nl = loss + demand[s] * reach[(s, c)]
                        if ns not in nxt or nl < nxt[ns][0]:
                            nxt[ns] = (nl, own + (c,))
                states = nxt
            for sizes, (loss, own) in states.items():
                if any(n < min_slaves for n in sizes):
                    continue
                keys = [key_mdi + key_ekr * (n // 2) for n in sizes]
                if min_cluster_keys > 0 and any(v < min_cluster_keys - 1e-9 for v in keys):
                    continue
                total_keys = float(sum(keys))
                if objective == "max_keys":
                    obj = total_keys - loss_weight * loss
                else:
                    obj = total_cost + loss_weight * loss
                if best is None or better(obj, best.objective):
                    owner = dict(zip(slaves, own, strict=True))
                    owner.update({c: c for c in master_sites})
                    best = EnumeratedClustering(obj, total_keys, total_cost, loss, masters, owner)
    return best


@dataclass(frozen=True)
class EnumeratedMemory:
    """Best memory allocation found by enumeration: objective and units per item."""

    objective: float
    master_units: dict[str, int]
    slave_units: dict[str, int]
    edge_units: dict[str, int]
    rates: dict[str, float]


def enumerate_clustering_data(data: Any, options: Any) -> EnumeratedClustering | None:
    """:func:`enumerate_clustering` of a ``solvers.clustering.ClusteringData`` under its ``ClusteringOptions``."""
    return enumerate_clustering(
        data.sites,
        data.candidates,
        data.pairs,
        objective=options.objective,
        min_slaves=options.min_slaves,
        max_masters=options.max_masters,
        max_cost=options.max_cost,
        key_mdi=options.r_mdi * options.memory_master,
        key_ekr=options.r_ekr * options.memory_slave,
        min_cluster_keys=options.min_cluster_keys,
        loss_weight=options.loss_weight or 0.0,
    )


def enumerate_memory(
    clusters: pd.DataFrame,
    edges: pd.DataFrame,
    demands: pd.DataFrame,
    *,
    budget_units: int,
    objective: str,
) -> EnumeratedMemory | None:
    """Max-min (or weighted-sum) key rate over every integer allocation within ``budget_units``.

    Tables as in :mod:`solvers.memory` with these columns used: clusters ``n_slaves``, ``r_mdi``,
    ``r_ekr``, ``slave_cap``, ``attempts_per_s``; edges ``max_units``; demands ``kind``,
    ``cluster``, ``share``, ``path``, ``rate_per_unit``, ``weight``. Every split of each
    edge's units among the inter-cluster demands that use it is tried.
    """
    cl = list(clusters.index)
    ed = list(edges.index)
    dm = list(demands.index)
    nsl = {c: int(clusters.loc[c, "n_slaves"]) for c in cl}
    best: EnumeratedMemory | None = None
    users = {e: [d for d in dm if demands.loc[d, "kind"] == "inter" and e in demands.loc[d, "path"]] for e in ed}

    def splits(units: int, k: int) -> list[tuple[int, ...]]:
        if k == 0:
            return [()]
        out = []
        for first in range(units + 1):
            for rest in splits(units - first, k - 1):
                out.append((first,) + rest)
        return out

    item_ranges = []
    for c in cl:
        item_ranges.append(range(budget_units + 1))
        item_ranges.append(range(min(budget_units, int(clusters.loc[c, "slave_cap"])) + 1))
    for e in ed:
        item_ranges.append(range(min(budget_units, int(edges.loc[e, "max_units"])) + 1))
    for alloc in itertools.product(*item_ranges):
        nm = {c: alloc[2 * i] for i, c in enumerate(cl)}
        ns = {c: alloc[2 * i + 1] for i, c in enumerate(cl)}
        me = {e: alloc[2 * len(cl) + j] for j, e in enumerate(ed)}
        used = sum(nm[c] + nsl[c] * ns[c] for c in cl) + sum(me.values())
        if used > budget_units:
            continue
        intra = {}
        for d in dm:
            row = demands.loc[d]
            if row["kind"] == "intra":
                c = row["cluster"]
                cr = clusters.loc[c]
                keys = cr["r_mdi"] * nm[c] + cr["r_ekr"] * ns[c] * (nsl[c] // 2)
                intra[d] = float(cr["attempts_per_s"] * keys * row["share"])
        split_options = [splits(me[e], len(users[e])) for e in ed]
        for choice in itertools.product(*split_options):
            share = {}
            for e, sp_ in zip(ed, choice, strict=True):
                for d, u in zip(users[e], sp_, strict=True):
                    share[(e, d)] = u
            rates = dict(intra)
            for d in dm:
                row = demands.loc[d]
                if row["kind"] == "inter":
                    rates[d] = float(row["rate_per_unit"]) * min(share[(e, d)] for e in row["path"])
            if objective == "max_min":
                obj = min(rates[d] / float(demands.loc[d, "weight"]) for d in dm)
            else:
                obj = sum(rates[d] * float(demands.loc[d, "weight"]) for d in dm)
            if best is None or obj > best.objective + 1e-12:
                best = EnumeratedMemory(obj, nm, ns, me, rates)
    return best


def random_clustering_instance(
    rng: np.random.Generator,
    *,
    n_sites: int,
    n_extra: int = 0,
    side_km: float = 60.0,
    reach_km: float = 35.0,
    alpha_db_per_km: float = 0.2,
    capacity: tuple[int, int] = (2, 6),
    p_fixed: float = 0.0,
    p_forbidden: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Random small instance as ``(sites, candidates, pairs)`` tables for tests.

    Sites and ``n_extra`` extra candidate locations are uniform in a square of ``side_km``;
    every site is also a candidate; pairs are listed for Euclidean distance <= ``reach_km``.
    """
    xy = rng.uniform(0.0, side_km, size=(n_sites + n_extra, 2))
    site_ids = [f"s{i}" for i in range(n_sites)]
    cand_ids = site_ids + [f"x{j}" for j in range(n_extra)]
    sites = pd.DataFrame({"demand": rng.integers(1, 4, n_sites).astype(float)}, index=site_ids)
    n_c = len(cand_ids)
    fixed = rng.random(n_c) < p_fixed
    forbidden = (rng.random(n_c) < p_forbidden) & ~fixed
    candidates = pd.DataFrame(
        {
            "cost": rng.integers(1, 5, n_c).astype(float),
            "capacity": rng.integers(capacity[0], capacity[1] + 1, n_c),
            "fixed": fixed,
            "forbidden": forbidden,
        },
        index=cand_ids,
    )
    rows = []
    for i, s in enumerate(site_ids):
        for j, c in enumerate(cand_ids):
            if i == j:
                continue
            d = float(np.hypot(*(xy[i] - xy[j])))
            if d <= reach_km:
                rows.append((s, c, d, alpha_db_per_km * d))
    pairs = pd.DataFrame(rows, columns=["site", "candidate", "distance_km", "loss_db"])
    return sites, candidates, pairs
