"""Quantum-memory budgets for a fixed topology (cluster paper, Eq. 6, Eq. 9, Figs. 6b and 7b).

Integer memory units are chosen per master (``N_m``), per slave of each cluster (``N_s``, the
same for every slave of a cluster as in Eq. 6) and per backbone edge (``m``), under a total
unit budget and/or a cost budget, to maximise the minimum (weighted) key rate or the weighted
sum of key rates over the demands.

With the topology fixed the rates are linear in memory:

* intra-cluster demand ``d`` in cluster ``c`` (Eq. 6, ``M_c = floor(|V_c|/2)``):
  ``rate_d = attempts_per_s_c * share_d * (R_mdi*N_m + R_ekr*N_s*M_c)``;
* inter-cluster demand ``d`` over backbone path ``P_d`` (Eq. 9 is ``m`` times a per-unit ratio
  for a homogeneous chain): ``rate_d = rate_per_unit_d * min_{e in P_d} z[e,d]`` where ``z[e,d]``
  are the integer units of edge ``e`` given to demand ``d`` and ``sum_d z[e,d] <= m_e``
  (concurrency splits an edge's memory, Fig. 7b). The caller computes ``rate_per_unit`` with
  the physics formulas (e.g. ``chain_distribution_ratio(k, p=..., q=..., memory=1)`` divided by
  the chain latency), since this package does not import the planner.
* A slave's useful memory is capped by memory lifetime x generation rate (Fig. 6b): ``N_s <=
  slave_cap`` (units beyond it would decohere before being measured, so they never help).

Constraint families: ``memory-budget``, ``memory-cost``, ``edge-split``, ``chain-bottleneck``,
``intra-rate``, ``min-rate``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from solvers.base import SolveResult, SolverOptions, SolveStatus
from solvers.highs_driver import solve_model

logger = logging.getLogger(__name__)

MemoryObjective = Literal["max_min", "weighted_sum"]


class MemoryInputError(ValueError):
    """The memory tables are malformed; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, eq=False)
class MemoryData:
    """Input tables.

    ``clusters`` (index = cluster id): ``n_slaves``; ``r_mdi``, ``r_ekr`` (default 1);
    ``slave_cap`` (useful units per slave) or ``memory_lifetime_s`` and ``generation_rate_hz``
    (cap = floor(lifetime x rate)); ``attempts_per_s`` (default 1: rates are then keys per attempt).
    ``edges`` (index = edge id): optional ``max_units``, ``cost_per_unit`` (default 1).
    ``demands`` (index = demand id): ``kind`` in {"intra", "inter"}; intra: ``cluster`` and
    optional ``share`` (default: equal split among the cluster's intra demands); inter: ``path``
    (list of edge ids) and ``rate_per_unit``; optional ``weight`` (default 1).
    """

    clusters: pd.DataFrame
    edges: pd.DataFrame
    demands: pd.DataFrame


@dataclass(frozen=True)
class MemoryOptions:
    """``budget_units``: total units over all nodes and edges (None = no unit budget);
    ``max_cost`` with ``cost_master_unit``/``cost_slave_unit`` and the edges' ``cost_per_unit``;
    ``objective``: ``"max_min"`` (maximise ``min_d rate_d / weight_d``) or ``"weighted_sum"``
    (maximise ``sum_d weight_d * rate_d``); ``secondary_weight``: weight of the total rate added
    to the max-min objective so spare units are not left idle (0 = pure max-min);
    ``min_units``: least units on every master, slave and edge (a node without memory cannot
    store the qubits Eq. 6 assumes; the planner uses 1)."""

    budget_units: int | None = None
    max_cost: float | None = None
    cost_master_unit: float = 1.0
    cost_slave_unit: float = 1.0
    objective: MemoryObjective = "max_min"
    secondary_weight: float = 1e-6
    min_units: int = 0


def _prepare(data: MemoryData, options: MemoryOptions) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    problems: list[str] = []
    cl = data.clusters.copy()
    ed = data.edges.copy()
    dm = data.demands.copy()
    if options.budget_units is None and options.max_cost is None:
        problems.append("set budget_units or max_cost: without a budget the rates are unbounded")
    if options.objective not in ("max_min", "weighted_sum"):
        problems.append(f"objective '{options.objective}' is unknown; use 'max_min' or 'weighted_sum'")
    if "n_slaves" not in cl.columns:
        problems.append("clusters: missing column 'n_slaves'")
    for name, default in (("r_mdi", 1.0), ("r_ekr", 1.0), ("attempts_per_s", 1.0)):
        if name not in cl.columns:
            cl[name] = default
    if "slave_cap" not in cl.columns:
        if {"memory_lifetime_s", "generation_rate_hz"} <= set(cl.columns):
            cl["slave_cap"] = np.floor(cl["memory_lifetime_s"] * cl["generation_rate_hz"] + 1e-9)
        else:
            cl["slave_cap"] = np.inf
    big = float(options.budget_units) if options.budget_units is not None else np.inf
    if "max_units" not in ed.columns:
        ed["max_units"] = big
    if "cost_per_unit" not in ed.columns:
        ed["cost_per_unit"] = 1.0
    if "weight" not in dm.columns:
        dm["weight"] = 1.0
    for name in ("cluster", "path", "rate_per_unit"):
        if name not in dm.columns:
            dm[name] = None
    if "kind" not in dm.columns:
        problems.append("demands: missing column 'kind'")
    if problems:
        raise MemoryInputError(problems)
    for d, row in dm.iterrows():
        if row["kind"] == "intra":
            if row.get("cluster") not in cl.index:
                problems.append(f"demands: row '{d}' names unknown cluster {row.get('cluster')!r}")
        elif row["kind"] == "inter":
            path = row.get("path")
            if not isinstance(path, (list, tuple)) or not path:
                problems.append(f"demands: row '{d}' needs a non-empty 'path' (list of edge ids)")
            elif any(e not in ed.index for e in path):
                problems.append(f"demands: row '{d}' uses unknown edges {[e for e in path if e not in ed.index]}")
            rpu = row.get("rate_per_unit")
            if rpu is None or not (isinstance(rpu, (int, float)) and math.isfinite(rpu) and rpu >= 0):
                problems.append(f"demands: row '{d}' needs a finite 'rate_per_unit' >= 0")
        else:
            problems.append(f"demands: row '{d}' has kind {row['kind']!r}; use 'intra' or 'inter'")
        if not (float(row["weight"]) > 0):
            problems.append(f"demands: row '{d}' needs weight > 0")
    if problems:
        raise MemoryInputError(problems)
    intra = dm["kind"] == "intra"
    if "share" not in dm.columns:
        dm["share"] = np.nan
    counts = dm.loc[intra, "cluster"].map(dm.loc[intra, "cluster"].value_counts())
    dm.loc[intra, "share"] = dm.loc[intra, "share"].fillna(1.0 / counts)
    return cl, ed, dm


def build_memory_model(
    clusters: pd.DataFrame, edges: pd.DataFrame, demands: pd.DataFrame, options: MemoryOptions
) -> pyo.ConcreteModel:
    """The memory ILP (one ``define`` block per family; prepared tables from :class:`MemoryData`)."""
    m = pyo.ConcreteModel(name="memory")
    cl_ids, ed_ids, dm_ids = list(clusters.index), list(edges.index), list(demands.index)
    inter = [d for d in dm_ids if demands.loc[d, "kind"] == "inter"]
    uses = [(e, d) for d in inter for e in demands.loc[d, "path"]]
    m.C = pyo.Set(initialize=cl_ids, ordered=True)
    m.E = pyo.Set(initialize=ed_ids, ordered=True)
    m.D = pyo.Set(initialize=dm_ids, ordered=True)
    m.U = pyo.Set(initialize=uses, dimen=2, ordered=True)
    define_memory_units(m, clusters, edges, options)
    n_sl = {c: int(clusters.loc[c, "n_slaves"]) for c in cl_ids}
    define_memory_limits(m, edges, options, n_sl)
    define_edge_rates(m, demands, ed_ids, uses)
    define_intra_rates(m, clusters, demands, n_sl)
    define_memory_objective(m, demands, options)
    return m


def define_memory_units(
    m: pyo.ConcreteModel, clusters: pd.DataFrame, edges: pd.DataFrame, options: MemoryOptions
) -> None:
    """Variables: memory units per master, per slave (of a cluster) and per edge, each at least
    ``min_units`` and within its cap; units of an edge per demand ``z``; demand rates; the minimum ``t``."""
    lo = int(options.min_units)

    def cap_bounds(v: float) -> tuple[int, int | None]:
        return (lo, None if not math.isfinite(v) else max(lo, int(v)))

    m.n_master = pyo.Var(m.C, within=pyo.NonNegativeIntegers, bounds=(lo, None))
    m.n_slave = pyo.Var(
        m.C,
        within=pyo.NonNegativeIntegers,
        bounds=lambda _m, c: cap_bounds(float(clusters.loc[c, "slave_cap"])),
    )
    m.m_edge = pyo.Var(
        m.E,
        within=pyo.NonNegativeIntegers,
        bounds=lambda _m, e: cap_bounds(float(edges.loc[e, "max_units"])),
    )
    m.z = pyo.Var(m.U, within=pyo.NonNegativeIntegers)
    m.rate = pyo.Var(m.D, within=pyo.NonNegativeReals)
    m.t = pyo.Var(within=pyo.NonNegativeReals)


def define_memory_limits(
    m: pyo.ConcreteModel, edges: pd.DataFrame, options: MemoryOptions, n_sl: dict[Any, int]
) -> None:
    """``memory-budget`` (total units) and ``memory-cost`` (total cost), when the options set them."""
    cl_ids, ed_ids = list(n_sl), list(edges.index)
    units = sum(m.n_master[c] + n_sl[c] * m.n_slave[c] for c in cl_ids) + sum(m.m_edge[e] for e in ed_ids)
    if options.budget_units is not None:
        m.add_component("memory-budget", pyo.Constraint(expr=units <= options.budget_units))
    if options.max_cost is not None:
        cost = sum(
            options.cost_master_unit * m.n_master[c] + options.cost_slave_unit * n_sl[c] * m.n_slave[c] for c in cl_ids
        )
        cost = cost + sum(float(edges.loc[e, "cost_per_unit"]) * m.m_edge[e] for e in ed_ids)
        m.add_component("memory-cost", pyo.Constraint(expr=cost <= options.max_cost))


def define_edge_rates(
    m: pyo.ConcreteModel, demands: pd.DataFrame, ed_ids: list[Any], uses: list[tuple[Any, Any]]
) -> None:
    """``edge-split``: an edge's units are shared by the demands crossing it; ``chain-bottleneck``: an
    inter-cluster demand's rate is at most its rate per unit times its units on every edge of its path."""
    users: dict[object, list[object]] = {e: [] for e in ed_ids}
    for e, d in uses:
        users[e].append(d)
    m.add_component(
        "edge-split",
        pyo.Constraint(
            [e for e in ed_ids if users[e]],
            rule=lambda _m, e: sum(m.z[e, d] for d in users[e]) <= m.m_edge[e],
        ),
    )
    m.add_component(
        "chain-bottleneck",
        pyo.Constraint(
            m.U,
            rule=lambda _m, e, d: m.rate[d] <= float(demands.loc[d, "rate_per_unit"]) * m.z[e, d],
        ),
    )


def define_intra_rates(
    m: pyo.ConcreteModel, clusters: pd.DataFrame, demands: pd.DataFrame, n_sl: dict[Any, int]
) -> None:
    """``intra-rate``: an intra-cluster demand's rate is its share of the cluster's MDI (master units)
    and Ekert (slave pairs) key rates."""

    def intra_rule(_m: pyo.ConcreteModel, d: object) -> object:
        row = demands.loc[d]
        if row["kind"] != "intra":
            return pyo.Constraint.Skip
        c = row["cluster"]
        cr = clusters.loc[c]
        scale = float(cr["attempts_per_s"]) * float(row["share"])
        ek = n_sl[c] // 2
        return m.rate[d] == scale * (float(cr["r_mdi"]) * m.n_master[c] + float(cr["r_ekr"]) * ek * m.n_slave[c])

    m.add_component("intra-rate", pyo.Constraint(m.D, rule=intra_rule))


def define_memory_objective(m: pyo.ConcreteModel, demands: pd.DataFrame, options: MemoryOptions) -> None:
    """``max_min``: ``min-rate`` rows and the weighted minimum rate (plus ``secondary_weight`` x total
    rate); otherwise the weighted total rate."""
    dm_ids = list(demands.index)
    if options.objective == "max_min":
        m.add_component(
            "min-rate",
            pyo.Constraint(m.D, rule=lambda _m, d: m.rate[d] >= float(demands.loc[d, "weight"]) * m.t),
        )
        m.objective = pyo.Objective(
            expr=m.t + options.secondary_weight * sum(m.rate[d] for d in dm_ids), sense=pyo.maximize
        )
    else:
        m.objective = pyo.Objective(
            expr=sum(float(demands.loc[d, "weight"]) * m.rate[d] for d in dm_ids),
            sense=pyo.maximize,
        )


def solve_memory(
    data: MemoryData,
    options: MemoryOptions | None = None,
    solver_options: SolverOptions | None = None,
) -> SolveResult:
    """Allocate memory units; tables ``memory_nodes``, ``memory_edges``, ``memory_shares`` and
    ``demand_rates``. ``info["min_weighted_rate"]`` is ``min_d rate_d / weight_d`` of the result.

    Raises :class:`MemoryInputError` for malformed tables.
    """
    options = options or MemoryOptions()
    solver_options = solver_options or SolverOptions()
    cl, ed, dm = _prepare(data, options)
    tb = time.perf_counter()
    model = build_memory_model(cl, ed, dm, options)
    build_s = time.perf_counter() - tb
    raw = solve_model(model, solver_options)
    info: dict[str, object] = {
        "n_variables": int(model.nvariables()),
        "n_constraints": int(model.nconstraints()),
        "objective_name": options.objective,
    }
    if raw.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        return SolveResult(status=raw.status, bound=raw.bound, solve_time_s=raw.solve_time_s, build_time_s=build_s,
                           solver=raw.solver, info=info)  # fmt: skip

    def iv(v: pyo.Var) -> int:
        return round(pyo.value(v))

    rows = []
    for c in cl.index:
        rows.append({"cluster": c, "role": "master", "n_nodes": 1, "units_per_node": iv(model.n_master[c]),
                     "useful_cap": math.inf})  # fmt: skip
        rows.append({"cluster": c, "role": "slave", "n_nodes": int(cl.loc[c, "n_slaves"]),
                     "units_per_node": iv(model.n_slave[c]), "useful_cap": float(cl.loc[c, "slave_cap"])})  # fmt: skip
    nodes = pd.DataFrame(rows)
    nodes["total_units"] = nodes["n_nodes"] * nodes["units_per_node"]
    shares = pd.DataFrame([{"edge": e, "demand": d, "units": iv(model.z[e, d])} for (e, d) in model.U],
                          columns=["edge", "demand", "units"])  # fmt: skip
    edges = pd.DataFrame({"edge": list(ed.index), "units": [iv(model.m_edge[e]) for e in ed.index]})
    edges["n_demands"] = edges["edge"].map(shares.groupby("edge").size() if len(shares) else {}).fillna(0).astype(int)
    rates = []
    for d in dm.index:
        row = dm.loc[d]
        if row["kind"] == "intra":
            c = row["cluster"]
            cr = cl.loc[c]
            keys = float(cr["r_mdi"]) * iv(model.n_master[c]) + float(cr["r_ekr"]) * (int(cr["n_slaves"]) // 2) * iv(
                model.n_slave[c]
            )
            rate, bottleneck = float(cr["attempts_per_s"]) * float(row["share"]) * keys, ""
        else:
            got = {e: iv(model.z[e, d]) for e in row["path"]}
            bottleneck = min(got, key=lambda e: got[e])
            rate = float(row["rate_per_unit"]) * got[bottleneck]
        rates.append(
            {
                "demand": d,
                "kind": row["kind"],
                "rate": rate,
                "weight": float(row["weight"]),
                "bottleneck_edge": bottleneck,
            }
        )
    demand_rates = pd.DataFrame(rates)
    info["min_weighted_rate"] = float((demand_rates["rate"] / demand_rates["weight"]).min()) if len(rates) else math.nan
    info["total_units"] = int(nodes["total_units"].sum() + edges["units"].sum())
    return SolveResult(
        status=raw.status, objective=raw.objective, bound=raw.bound, gap=raw.gap, solve_time_s=raw.solve_time_s,
        build_time_s=build_s, solver=raw.solver, info=info,
        tables={"memory_nodes": nodes, "memory_edges": edges, "memory_shares": shares, "demand_rates": demand_rates},
    )  # fmt: skip
