"""Data layer of the access-clustering model: input tables, options, the prepared index,
the cheap diagnosis, and solutions as arrays and tables.

Shared by the MILP (:mod:`solvers.clustering`) and the heuristics
(:mod:`solvers.heuristics`), which both import it; it imports neither. The cheap diagnosis run
before solving is :mod:`solvers.clustering_diagnose`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from solvers.base import ModelInfeasible, SolveResult, SolveStatus

logger = logging.getLogger(__name__)

Objective = Literal["max_keys", "min_cost"]
Backend = Literal["auto", "pyomo", "highspy"]

FAMILIES: tuple[str, ...] = (
    "assign-once",
    "assign-open",
    "cluster-size-min",
    "cluster-size-max",
    "ekert-floor",
    "master-budget",
    "cost-budget",
    "cluster-key-target",
    "fixed-master",
)


class ClusteringInputError(ValueError):
    """The clustering tables are malformed; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ClusteringInfeasible(ModelInfeasible):
    """No clustering satisfies the constraints.

    ``conflicts`` names the constraint families that conflict (see :data:`FAMILIES`);
    ``details`` explains them in plain words (which sites, which masters, which numbers).
    """

    conflict_label = "Conflicting"

    def __init__(
        self,
        message: str,
        *,
        conflicts: Iterable[Hashable] = (),
        details: Sequence[str] = (),
        sites: Iterable[str] | None = None,
    ) -> None:
        super().__init__(message, conflicts=conflicts, details=details)
        self.sites: list[str] | None = None if sites is None else sorted({str(s) for s in sites})
        """The sites of the reach components found infeasible, when the search was split by
        component (``solve_clustering_by_component``): the conflict lies among them alone, so the
        unservable-site search needs only ``restrict_to_sites`` of them. ``None``: not known."""


@dataclass(frozen=True, eq=False)
class ClusteringData:
    """Input tables.

    ``sites``: index = site id; optional column ``demand`` (weight of the site's access loss, default 1).
    ``candidates``: index = candidate master id; a candidate whose id is also a site id *is* that site
    (when it is opened, that site is a master, not a slave). Columns (all optional): ``cost``
    (default 1), ``capacity`` (max slaves, default unlimited), ``fixed`` (must be a master),
    ``forbidden`` (must not be a master).
    ``pairs``: columns ``site``, ``candidate``, ``distance_km``, ``loss_db``: one row per
    site/candidate pair within access reach; pairs not listed are out of reach.
    """

    sites: pd.DataFrame
    candidates: pd.DataFrame
    pairs: pd.DataFrame


@dataclass(frozen=True)
class ClusteringOptions:
    """Model settings.

    ``objective``: ``"max_keys"`` or ``"min_cost"``. ``min_slaves``: least slaves per cluster
    (paper: 2). ``max_masters`` / ``max_cost``: master count / master cost budgets (None = none).
    ``r_mdi``, ``r_ekr``, ``memory_master``, ``memory_slave``: Eq. 6 parameters.
    ``min_cluster_keys``: per-cluster key-per-attempt target (0 = none).
    ``loss_weight``: weight of the demand-weighted access loss (dB) in the objective; ``None``
    chooses ``1e-3`` of the smallest primary unit divided by the largest possible total loss, so
    the loss term only breaks ties. ``backend``: ``"pyomo"``, ``"highspy"`` or ``"auto"``
    (Pyomo up to ``auto_pyomo_max_pairs`` pairs). ``strong_linking``: add the disaggregated
    ``assign-open`` rows ``x[i,c] <= y[c]`` (off by default: on the benchmark they
    did not raise the LP bound but made the root LP about 30 times slower). ``warm_start``:
    start the MILP from the heuristic of :mod:`solvers.heuristics`.
    ``bound_shortcut``: for ``max_keys``, when
    the heuristic is already within ``mip_gap`` of :func:`keys_upper_bound`, return it as optimal
    (within the gap) without solving the MILP. ``lp_bound``: with the ``highspy`` backend,
    first solve the LP relaxation by interior point (a quarter of the time limit at most) and
    report the best of the solver's, the LP and the counting bounds.
    """

    objective: Objective = "max_keys"
    min_slaves: int = 2
    max_masters: int | None = None
    max_cost: float | None = None
    r_mdi: float = 1.0
    r_ekr: float = 1.0
    memory_master: float = 1.0
    memory_slave: float = 1.0
    min_cluster_keys: float = 0.0
    loss_weight: float | None = None
    backend: Backend = "auto"
    strong_linking: bool = False
    warm_start: bool = True
    auto_pyomo_max_pairs: int = 20_000
    heuristic_seed: int = 0
    bound_shortcut: bool = True
    lp_bound: bool = True


@dataclass(frozen=True, eq=False)
class ClusteringIndex:
    """The input tables as integer-indexed arrays (forbidden candidates and their pairs removed).

    ``cand_site[c]`` is the site index of candidate ``c`` or -1 for an extra location;
    ``pair_site``/``pair_cand`` index the sparse pairs (a candidate's own site is never a pair).
    """

    site_ids: np.ndarray
    cand_ids: np.ndarray
    cand_site: np.ndarray
    cost: np.ndarray
    capacity: np.ndarray
    fixed: np.ndarray
    demand: np.ndarray
    pair_site: np.ndarray
    pair_cand: np.ndarray
    pair_distance_km: np.ndarray
    pair_loss_db: np.ndarray
    key_mdi: float
    key_ekr: float
    loss_weight: float
    min_size: np.ndarray  # least slaves per open cluster (min_slaves and the key target)
    site_cand: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_sites(self) -> int:
        return len(self.site_ids)

    @property
    def n_cands(self) -> int:
        return len(self.cand_ids)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_site)


# ----------------------------------------------------------------------------- preparation


def _bool_col(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return df[name].fillna(False).astype(bool).to_numpy()


def validate_options(options: ClusteringOptions) -> list[str]:
    """Problems with the option values (empty when valid)."""
    problems = []
    if options.objective not in ("max_keys", "min_cost"):
        problems.append(f"objective '{options.objective}' is unknown; use 'max_keys' or 'min_cost'")
    if options.backend not in ("auto", "pyomo", "highspy"):
        problems.append(f"backend '{options.backend}' is unknown; use 'auto', 'pyomo' or 'highspy'")
    if options.min_slaves < 0:
        problems.append(f"min_slaves = {options.min_slaves} must be >= 0")
    if options.max_masters is not None and options.max_masters < 0:
        problems.append(f"max_masters = {options.max_masters} must be >= 0")
    for name in ("r_mdi", "r_ekr", "memory_master", "memory_slave", "min_cluster_keys"):
        value = getattr(options, name)
        if not (math.isfinite(value) and value >= 0):
            problems.append(f"{name} = {value} must be a finite number >= 0")
    if options.loss_weight is not None and not (math.isfinite(options.loss_weight) and options.loss_weight >= 0):
        problems.append(f"loss_weight = {options.loss_weight} must be a finite number >= 0")
    return problems


def prepare(data: ClusteringData, options: ClusteringOptions) -> ClusteringIndex:
    """Validate the tables and turn them into arrays.

    Raises :class:`ClusteringInputError` listing every problem (duplicate ids, unknown ids in
    ``pairs``, negative distances/losses/costs/capacities, a candidate both fixed and forbidden).
    """
    problems = validate_options(options) + _shape_problems(data)
    if problems:
        raise ClusteringInputError(problems)
    raw = _raw_arrays(data)
    if raw.problems:
        raise ClusteringInputError(raw.problems)
    return _index(data, options, raw)


def _shape_problems(data: ClusteringData) -> list[str]:
    """Duplicate site or candidate ids and missing pair columns."""
    problems: list[str] = []
    sites, cands, pairs = data.sites, data.candidates, data.pairs
    if sites.index.has_duplicates:
        dup = sites.index[sites.index.duplicated()].unique().tolist()
        problems.append(f"sites: duplicate site ids {dup[:5]}")
    if cands.index.has_duplicates:
        dup = cands.index[cands.index.duplicated()].unique().tolist()
        problems.append(f"candidates: duplicate candidate ids {dup[:5]}")
    for col in ("site", "candidate", "distance_km", "loss_db"):
        if col not in pairs.columns:
            problems.append(f"pairs: missing column '{col}'")
    return problems


@dataclass(frozen=True, eq=False)
class _RawArrays:
    """The tables as arrays in their own order (before forbidden candidates are dropped), with
    the problems found in their values."""

    fixed: np.ndarray
    forbidden: np.ndarray
    cost: np.ndarray
    capacity: np.ndarray
    demand: np.ndarray
    pair_site: np.ndarray  # position in sites (-1: unknown id)
    pair_cand: np.ndarray  # position in candidates (-1: unknown id)
    distance_km: np.ndarray
    loss_db: np.ndarray
    problems: list[str]


def _raw_arrays(data: ClusteringData) -> _RawArrays:
    """The tables' columns as arrays and every problem in their values."""
    sites, cands, pairs = data.sites, data.candidates, data.pairs
    problems: list[str] = []
    fixed_all = _bool_col(cands, "fixed")
    forbidden_all = _bool_col(cands, "forbidden")
    both = cands.index[fixed_all & forbidden_all].tolist()
    if both:
        problems.append(f"candidates {both[:5]} are both fixed and forbidden; keep one flag")
    cost_all = cands["cost"].to_numpy(float) if "cost" in cands.columns else np.ones(len(cands))
    if "capacity" in cands.columns:
        cap_all = cands["capacity"].fillna(len(sites)).to_numpy(float)
    else:
        cap_all = np.full(len(cands), float(len(sites)))
    if np.any(~np.isfinite(cost_all) | (cost_all < 0)):
        problems.append("candidates: 'cost' must be finite and >= 0")
    if np.any(cap_all < 0) or np.any(cap_all != np.floor(cap_all)):
        problems.append("candidates: 'capacity' must be a whole number >= 0")
    demand = sites["demand"].to_numpy(float) if "demand" in sites.columns else np.ones(len(sites))
    if np.any(~np.isfinite(demand) | (demand < 0)):
        problems.append("sites: 'demand' must be finite and >= 0")
    site_pos = pd.Index(sites.index)
    cand_pos = pd.Index(cands.index)
    ps = site_pos.get_indexer(pairs["site"])
    pc = cand_pos.get_indexer(pairs["candidate"])
    if np.any(ps < 0):
        problems.append(f"pairs: unknown site ids {pairs['site'][ps < 0].unique().tolist()[:5]}")
    if np.any(pc < 0):
        problems.append(f"pairs: unknown candidate ids {pairs['candidate'][pc < 0].unique().tolist()[:5]}")
    dist = pairs["distance_km"].to_numpy(float)
    loss = pairs["loss_db"].to_numpy(float)
    if np.any(~np.isfinite(dist) | (dist < 0)) or np.any(~np.isfinite(loss) | (loss < 0)):
        problems.append("pairs: 'distance_km' and 'loss_db' must be finite and >= 0")
    key = (ps.astype(np.int64) + 1) * (len(cands) + 1) + (pc + 1)
    if len(np.unique(key)) < len(key):
        problems.append("pairs: duplicate (site, candidate) rows")
    return _RawArrays(fixed_all, forbidden_all, cost_all, cap_all, demand, ps, pc, dist, loss, problems)


def _index(data: ClusteringData, options: ClusteringOptions, raw: _RawArrays) -> ClusteringIndex:
    """The :class:`ClusteringIndex` of valid tables: forbidden candidates dropped, pairs of a
    candidate with its own site dropped, pairs sorted by (site, candidate), least cluster sizes
    from ``min_slaves`` and the key target, the automatic loss weight when none is set."""
    sites, cands = data.sites, data.candidates
    fixed_all, forbidden_all, cost_all, cap_all = raw.fixed, raw.forbidden, raw.cost, raw.capacity
    demand, ps, pc, dist, loss = raw.demand, raw.pair_site, raw.pair_cand, raw.distance_km, raw.loss_db
    site_pos = pd.Index(sites.index)
    keep = ~forbidden_all
    new_of_old = np.full(len(cands), -1, dtype=np.int64)
    new_of_old[keep] = np.arange(int(keep.sum()))
    cand_site_all = site_pos.get_indexer(cands.index)
    cand_site = cand_site_all[keep]
    pc_new = new_of_old[pc]
    pmask = pc_new >= 0
    # a candidate's own site is its master role, never a slave pair
    own = cand_site_all[pc] == ps
    pmask &= ~own
    order = np.lexsort((pc_new[pmask], ps[pmask]))
    site_cand = np.full(len(sites), -1, dtype=np.int64)
    site_cand[cand_site[cand_site >= 0]] = np.flatnonzero(cand_site >= 0)

    key_mdi = options.r_mdi * options.memory_master
    key_ekr = options.r_ekr * options.memory_slave
    capacity = cap_all[keep].astype(np.int64)
    min_size = np.full(int(keep.sum()), options.min_slaves, dtype=np.int64)
    if options.min_cluster_keys > key_mdi:
        if key_ekr > 0:
            need_pairs = math.ceil((options.min_cluster_keys - key_mdi) / key_ekr - 1e-12)
            min_size = np.maximum(min_size, 2 * need_pairs)
        else:
            min_size = np.maximum(min_size, np.iinfo(np.int32).max)
    p_site = ps[pmask][order]
    p_loss = loss[pmask][order]
    loss_weight = options.loss_weight
    if loss_weight is None:
        max_loss = np.zeros(len(sites))
        if len(p_site):
            np.maximum.at(max_loss, p_site, p_loss)
        total = float(np.sum(demand * max_loss))
        if options.objective == "max_keys":
            unit = min([v for v in (key_mdi, key_ekr) if v > 0], default=1.0)
        else:
            pos = cost_all[keep][cost_all[keep] > 0]
            unit = float(pos.min()) if len(pos) else 1.0
        loss_weight = 1e-3 * unit / total if total > 0 else 0.0
    return ClusteringIndex(
        site_ids=np.asarray(sites.index, dtype=object),
        cand_ids=np.asarray(cands.index[keep], dtype=object),
        cand_site=cand_site.astype(np.int64),
        cost=cost_all[keep],
        capacity=capacity,
        fixed=fixed_all[keep],
        demand=demand,
        pair_site=p_site.astype(np.int64),
        pair_cand=pc_new[pmask][order].astype(np.int64),
        pair_distance_km=dist[pmask][order],
        pair_loss_db=p_loss,
        key_mdi=key_mdi,
        key_ekr=key_ekr,
        loss_weight=float(loss_weight),
        min_size=min_size,
        site_cand=site_cand,
    )


# ----------------------------------------------------------------------------- solution tables


@dataclass(frozen=True, eq=False)
class ClusteringSolution:
    """A clustering as arrays: ``open[c]`` masters and ``owner[i]`` = candidate serving site ``i``
    (for a master site, the candidate at that site)."""

    open: np.ndarray
    owner: np.ndarray


def check_solution(idx: ClusteringIndex, options: ClusteringOptions, sol: ClusteringSolution) -> list[str]:
    """Violated constraint families of a solution (empty when feasible)."""
    bad: list[str] = []
    owner = sol.owner
    is_master_site = (idx.site_cand >= 0) & (owner == idx.site_cand) & (owner >= 0)
    if np.any(owner < 0):
        bad.append("assign-once")
    slaves = np.flatnonzero(~is_master_site & (owner >= 0))
    if len(slaves) and np.any(pair_positions(idx, slaves, owner[slaves]) < 0):
        bad.append("assign-once")
    if np.any(~sol.open[owner[owner >= 0]]):
        bad.append("assign-open")
    for c in np.flatnonzero(idx.cand_site >= 0):
        if sol.open[c] and owner[idx.cand_site[c]] != c:
            bad.append("assign-once")
    size = np.bincount(owner[slaves], minlength=idx.n_cands)
    if np.any(sol.open & (size < idx.min_size)):
        bad.append("cluster-size-min")
    if np.any(size > np.where(sol.open, idx.capacity, 0)):
        bad.append("cluster-size-max")
    if options.max_masters is not None and int(sol.open.sum()) > options.max_masters:
        bad.append("master-budget")
    if options.max_cost is not None and float(idx.cost[sol.open].sum()) > options.max_cost + 1e-9:
        bad.append("cost-budget")
    if np.any(idx.fixed & ~sol.open):
        bad.append("fixed-master")
    return list(dict.fromkeys(bad))


def solution_terms(idx: ClusteringIndex, options: ClusteringOptions, sol: ClusteringSolution) -> dict[str, float]:
    """Objective terms of a solution: keys per attempt (Eq. 6 with M = floor(|V|/2)), cost,
    demand-weighted access loss (dB) and the model objective value."""
    slaves, cand, pidx = _slave_pairs(idx, sol)
    size = np.bincount(cand, minlength=idx.n_cands)
    ek = size // 2
    keys = float(np.sum(np.where(sol.open, idx.key_mdi + idx.key_ekr * ek, 0.0)))
    cost = float(idx.cost[sol.open].sum())
    wloss = float(np.sum(idx.demand[slaves] * idx.pair_loss_db[pidx]))
    obj = keys - idx.loss_weight * wloss if options.objective == "max_keys" else cost + idx.loss_weight * wloss
    return {"keys_per_attempt": keys, "cost": cost, "weighted_loss_db": wloss, "objective": obj}


def pair_positions(idx: ClusteringIndex, sites: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """Position in ``idx``'s pairs of each (site, candidate) given (-1 where no such pair)."""
    key = idx.pair_site.astype(np.int64) * max(1, idx.n_cands) + idx.pair_cand
    order = None if np.all(key[1:] > key[:-1]) else np.argsort(key, kind="stable")
    sorted_key = key if order is None else key[order]
    want = np.asarray(sites, dtype=np.int64) * max(1, idx.n_cands) + np.asarray(cands, dtype=np.int64)
    if len(sorted_key) == 0:
        return np.full(len(want), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_key, want), len(sorted_key) - 1)
    found = sorted_key[at] == want
    pos = at if order is None else order[at]
    return np.where(found, pos, -1).astype(np.int64)


def _slave_pairs(idx: ClusteringIndex, sol: ClusteringSolution) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    owner = sol.owner
    is_master_site = (idx.site_cand >= 0) & (owner == idx.site_cand)
    slaves = np.flatnonzero(~is_master_site & (owner >= 0))
    pidx = pair_positions(idx, slaves, owner[slaves])
    if np.any(pidx < 0):
        raise ValueError("solution assigns a site to a master out of reach")
    return slaves, owner[slaves], pidx


def solution_vector(idx: ClusteringIndex, sol: ClusteringSolution) -> np.ndarray:
    """Column vector ``[y | x | ekert]`` of a solution (for MIP starts)."""
    slaves, cand, pidx = _slave_pairs(idx, sol)
    x = np.zeros(idx.n_pairs)
    x[pidx] = 1.0
    size = np.bincount(cand, minlength=idx.n_cands)
    return np.concatenate([sol.open.astype(float), x, (size // 2).astype(float)])


def solution_tables(idx: ClusteringIndex, sol: ClusteringSolution) -> dict[str, pd.DataFrame]:
    """``assignment`` (site, master, role, distance_km, loss_db) and ``clusters`` (per master:
    n_slaves, ekert_pairs = floor(n_slaves/2), keys_per_attempt by Eq. 6, access km/dB mean/max)."""
    slaves, cand, pidx = _slave_pairs(idx, sol)
    master_sites = np.flatnonzero((idx.site_cand >= 0) & (sol.owner == idx.site_cand))
    assignment = pd.DataFrame(
        {
            "site": np.concatenate([idx.site_ids[master_sites], idx.site_ids[slaves]]),
            "master": np.concatenate([idx.cand_ids[sol.owner[master_sites]], idx.cand_ids[cand]]),
            "role": ["master"] * len(master_sites) + ["slave"] * len(slaves),
            "distance_km": np.concatenate([np.zeros(len(master_sites)), idx.pair_distance_km[pidx]]),
            "loss_db": np.concatenate([np.zeros(len(master_sites)), idx.pair_loss_db[pidx]]),
        }
    )
    order = np.concatenate([master_sites, slaves])  # site positions: rows in the order of the sites
    assignment = assignment.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    open_c = np.flatnonzero(sol.open)
    size = np.bincount(cand, minlength=idx.n_cands)
    df = pd.DataFrame({"c": cand, "km": idx.pair_distance_km[pidx], "db": idx.pair_loss_db[pidx]})
    agg = df.groupby("c").agg(
        mean_access_km=("km", "mean"),
        max_access_km=("km", "max"),
        mean_access_db=("db", "mean"),
        max_access_db=("db", "max"),
    )
    agg = agg.reindex(open_c).fillna(0.0)
    ek = size[open_c] // 2
    clusters = pd.DataFrame(
        {
            "master": idx.cand_ids[open_c],
            "master_is_site": idx.cand_site[open_c] >= 0,
            "n_slaves": size[open_c].astype(np.int64),
            "ekert_pairs": ek.astype(np.int64),
            "keys_per_attempt": idx.key_mdi + idx.key_ekr * ek,
            "cost": idx.cost[open_c],
            "mean_access_km": agg["mean_access_km"].to_numpy(),
            "max_access_km": agg["max_access_km"].to_numpy(),
            "mean_access_db": agg["mean_access_db"].to_numpy(),
            "max_access_db": agg["max_access_db"].to_numpy(),
        }
    )
    return {"assignment": assignment, "clusters": clusters}


def solution_from_values(idx: ClusteringIndex, y: np.ndarray, x: np.ndarray) -> ClusteringSolution:
    open_ = y > 0.5
    owner = np.full(idx.n_sites, -1, dtype=np.int64)
    chosen = np.flatnonzero(x > 0.5)
    owner[idx.pair_site[chosen]] = idx.pair_cand[chosen]
    own = np.flatnonzero((idx.cand_site >= 0) & open_)
    owner[idx.cand_site[own]] = own
    return ClusteringSolution(open_, owner)


def result_from_solution(
    idx: ClusteringIndex,
    options: ClusteringOptions,
    sol: ClusteringSolution,
    *,
    status: SolveStatus,
    objective: float | None = None,
    bound: float = math.nan,
    gap: float = math.nan,
    solve_time_s: float = math.nan,
    build_time_s: float = math.nan,
    solver: str = "",
    info: dict[str, object] | None = None,
) -> SolveResult:
    """A :class:`SolveResult` with the clustering tables and objective terms in ``info``."""
    terms = solution_terms(idx, options, sol)
    full_info: dict[str, object] = {
        "n_sites": idx.n_sites,
        "n_candidates": idx.n_cands,
        "n_pairs": idx.n_pairs,
        "n_masters": int(sol.open.sum()),
        "keys_per_attempt": terms["keys_per_attempt"],
        "master_cost": terms["cost"],
        "weighted_access_loss_db": terms["weighted_loss_db"],
        "loss_weight": idx.loss_weight,
        "objective_sense": "maximize" if options.objective == "max_keys" else "minimize",
        "objective_name": options.objective,
    }
    full_info.update(info or {})
    return SolveResult(
        status=status,
        objective=terms["objective"] if objective is None else objective,
        bound=bound,
        gap=gap,
        solve_time_s=solve_time_s,
        build_time_s=build_time_s,
        solver=solver,
        tables=solution_tables(idx, sol),
        info=full_info,
    )
