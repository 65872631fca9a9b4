"""The repeater-spacing MILP (Pyomo): size estimate, model with named constraint families, MIP start,
and the diagnosis of an infeasible model (:func:`diagnose_infeasible`).

See :mod:`solvers.repeaters` for the formulation; the model is built from
:class:`~solvers.repeaters_data.SpacingData` after the exact presolve of
:mod:`solvers.repeaters_bounds`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import Any

import pyomo.environ as pyo

from solvers.base import SolverOptions, SolveStatus
from solvers.base import show_value as _show
from solvers.highs_driver import solve_model
from solvers.repeaters_bounds import presolve_spacing
from solvers.repeaters_data import (
    RepeaterInputError,
    SpacingData,
    SpacingMode,
    hop_range,
    link_options,
    log_rate,
    subset_demands,
)
from solvers.repeaters_heuristic import HeuristicDesign

# ---------------------------------------------------------------------------


def estimate_spacing_size(
    data: SpacingData, n_lo: Mapping[Hashable, int], ks_allowed: Mapping[Hashable, set[int]]
) -> dict[str, int]:
    """Variables, constraints and nonzeros :func:`build_spacing_model` would create (upper estimate).

    Counts follow the formulation: one-hot options of every used link above its
    presolve floor, one-hot hop counts per demand, path choices, the worst
    segment variable, and per (demand, path) the hop-linking and per (demand,
    path, link) the worst-segment rows (each over the link's options).
    """
    n_opt = {lid: data.n_max_of[lid] - int(n_lo.get(lid, 0)) + 1 for lid in data.length_of}
    used: set[Hashable] = set()
    n_k = n_dp = n_dpl = nz = 0
    for d in data.demand_ids:
        ks: set[int] = set()
        for path in data.paths[d]:
            lo, hi = hop_range(data, path, n_lo)
            if not ks_allowed.get(d):
                ks.update(range(lo, hi + 1))
            used.update(path)
            opt_sum = sum(n_opt[lid] for lid in path)
            n_dpl += len(path)
            nz += 3 * opt_sum + 3 * len(path)
        k = len(ks_allowed[d] if ks_allowed.get(d) else ks)
        n_k += k
        n_dp += len(data.paths[d])
        nz += (2 * len(data.paths[d]) + 2) * k
    n_x = sum(n_opt[lid] for lid in used)
    n_vars = n_x + n_k + len(data.demand_ids) + (n_dp if n_dp > len(data.demand_ids) else 0)
    n_cons = len(used) + 2 * len(data.demand_ids) + 2 * n_dp + n_dpl
    return {"n_variables": int(n_vars), "n_constraints": int(n_cons), "n_nonzeros": int(nz + 2 * n_x)}


def build_spacing_model(
    data: SpacingData,
    *,
    mode: SpacingMode = "min_cost",
    budget: float | None = None,
    rate_floor: float | None = None,
    presolved: tuple[dict[Hashable, int], dict[Hashable, set[int]]] | None = None,
) -> pyo.ConcreteModel:
    """Build the spacing MILP from validated data (see the module docstring for the formulation).

    The model is presolved exactly (see :func:`presolve_spacing`): link options
    and hop counts that cannot reach a demand's rate target (in ``max_min_rate``
    mode: ``rate_floor``, the minimum rate of a known design, if given) are left
    out. ``data`` should already be reduced by :func:`drop_dominated_demands`
    where wanted.

    Sets: ``LO`` (link, option), ``DP`` (demand, path index), ``DK`` (demand, hops).
    Variables: ``x`` one-hot link options, ``u`` path choice (only for demands
    with several candidate paths), ``z`` one-hot hops, ``y`` log of the worst
    segment probability, and for latency limits ``p_lin`` and ``w``.
    """
    if mode not in ("min_cost", "max_min_rate"):
        raise RepeaterInputError(f"mode={_show(mode)} must be 'min_cost' or 'max_min_rate'")
    if mode == "max_min_rate" and budget is not None and not (budget >= 0):
        raise RepeaterInputError(f"budget={_show(budget)} must be >= 0")
    m = pyo.ConcreteModel(name=f"repeater-spacing-{mode}")
    m._data = data
    m._mode = mode
    n_lo, ks_allowed = presolved or presolve_spacing(data, mode=mode, rate_floor=rate_floor)
    m._n_lo = n_lo
    m._ks_allowed = ks_allowed
    define_link_options(m, data)
    define_path_choice(m, data)
    define_hop_count(m, data)
    define_worst_segment(m, data)
    if mode == "min_cost":
        define_rate_target(m, data)
    else:
        define_min_rate(m, data)
        if budget is not None:
            define_repeater_budget(m, data, budget)
    if data.latency_limit_s:
        define_latency_limit(m, data)
    define_objective(m, data, mode)
    return m


def define_link_options(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``link-option-once``: each used link takes exactly one repeater count."""
    used = sorted({lid for d in data.demand_ids for path in data.paths[d] for lid in path}, key=str)
    m._used_links = used
    opts = link_options(data)
    opts = opts[opts["link"].isin(used)]
    lowest = opts["link"].map(lambda lid: m._n_lo.get(lid, 0))
    opts = opts[opts["repeaters"] >= lowest]
    m._opts = opts.set_index(["link", "repeaters"])
    # plain dicts of the option coefficients (the constraint rules read them per term)
    m._coef = {
        col: dict(zip(m._opts.index, m._opts[col].astype(float), strict=True))
        for col in ("log_p", "p", "time_s", "cost")
    }
    m.LO = pyo.Set(initialize=list(m._opts.index), dimen=2, ordered=True)
    m.x = pyo.Var(m.LO, domain=pyo.Binary)
    by_link: dict[Hashable, list[tuple[Hashable, int]]] = {}
    for lid, n in m.LO:
        by_link.setdefault(lid, []).append((lid, n))
    m._by_link = by_link
    m.L = pyo.Set(initialize=used, ordered=True)
    m.link_option_once = pyo.Constraint(m.L, rule=lambda mm, lid: sum(mm.x[i] for i in by_link[lid]) == 1)


def _sel(m: pyo.ConcreteModel, d: Hashable, j: int) -> Any:
    """1 for a demand's only path, else the path-choice variable."""
    return m.u[d, j] if (d, j) in m._dp_var else 1


def define_path_choice(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``path-choice-once``: a demand with several candidate paths uses exactly one."""
    dp = [(d, j) for d in data.demand_ids for j in range(len(data.paths[d]))]
    m.DP = pyo.Set(initialize=dp, dimen=2, ordered=True)
    multi = [(d, j) for d, j in dp if len(data.paths[d]) > 1]
    m._dp_var = set(multi)
    m.DPv = pyo.Set(initialize=multi, dimen=2, ordered=True)
    m.u = pyo.Var(m.DPv, domain=pyo.Binary)
    multi_d = [d for d in data.demand_ids if len(data.paths[d]) > 1]
    m.Dmulti = pyo.Set(initialize=multi_d, ordered=True)
    m.path_choice_once = pyo.Constraint(
        m.Dmulti, rule=lambda mm, d: sum(mm.u[d, j] for j in range(len(data.paths[d]))) == 1
    )


def _path_hops_expr(m: pyo.ConcreteModel, path: tuple[Hashable, ...]) -> Any:
    return sum((n + 1) * m.x[lid, n] for lid in path for (_, n) in m._by_link[lid])


def define_hop_count(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``hops-once`` and ``hops-link``: one-hot total hop count k tied to the chosen path's link options."""
    dk: list[tuple[Hashable, int]] = []
    for d in data.demand_ids:
        ks: set[int] = set()
        for path in data.paths[d]:
            lo, hi = hop_range(data, path, m._n_lo)
            ks.update(range(lo, hi + 1))
        allowed = m._ks_allowed.get(d)
        if allowed is not None and ks & allowed:
            ks &= allowed
        dk.extend((d, k) for k in sorted(ks))
    m.DK = pyo.Set(initialize=dk, dimen=2, ordered=True)
    m.z = pyo.Var(m.DK, domain=pyo.Binary)
    ks_of: dict[Hashable, list[int]] = {}
    for d, k in dk:
        ks_of.setdefault(d, []).append(k)
    m._ks_of = ks_of
    m.D = pyo.Set(initialize=data.demand_ids, ordered=True)
    m.hops_once = pyo.Constraint(m.D, rule=lambda mm, d: sum(mm.z[d, k] for k in ks_of[d]) == 1)

    def k_expr(mm: pyo.ConcreteModel, d: Hashable) -> Any:
        return sum(k * mm.z[d, k] for k in ks_of[d])

    def upper(mm: pyo.ConcreteModel, d: Hashable, j: int) -> Any:
        path = data.paths[d][j]
        big = max(0, max(ks_of[d]) - hop_range(data, path, m._n_lo)[0])
        return k_expr(mm, d) <= _path_hops_expr(mm, path) + big * (1 - _sel(mm, d, j))

    def lower(mm: pyo.ConcreteModel, d: Hashable, j: int) -> Any:
        path = data.paths[d][j]
        big = max(0, hop_range(data, path, m._n_lo)[1] - min(ks_of[d]))
        return k_expr(mm, d) >= _path_hops_expr(mm, path) - big * (1 - _sel(mm, d, j))

    m.hops_link_upper = pyo.Constraint(m.DP, rule=upper)
    m.hops_link_lower = pyo.Constraint(m.DP, rule=lower)


def define_worst_segment(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``worst-segment``: ``y[d] <= log p`` of every link segment on the chosen path."""
    log_p = m._coef["log_p"]
    worst = {lid: log_p[m._by_link[lid][0]] for lid in m._used_links}
    lo_y = {d: min(worst[lid] for path in data.paths[d] for lid in path) for d in data.demand_ids}
    m.y = pyo.Var(m.D, bounds=lambda mm, d: (lo_y[d], 0.0))
    rows = [(d, j, lid) for d, j in m.DP for lid in data.paths[d][j]]
    m.DPL = pyo.Set(initialize=rows, dimen=3, ordered=True)

    def rule(mm: pyo.ConcreteModel, d: Hashable, j: int, lid: Hashable) -> Any:
        logp = sum(log_p[i] * mm.x[i] for i in m._by_link[lid])
        big = -worst[lid]  # relaxes to y <= 0 when the path is not chosen
        return mm.y[d] <= logp + big * (1 - _sel(mm, d, j))

    m.worst_segment = pyo.Constraint(m.DPL, rule=rule)


def _log_rate_expr(m: pyo.ConcreteModel, data: SpacingData, d: Hashable) -> Any:
    logf = data.tables.log_rate_factor
    return m.y[d] + sum(float(logf[k]) * m.z[d, k] for k in m._ks_of[d])


def define_rate_target(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``rate-target``: ``log p_worst + log f(k) >= log target`` (exact, Eq. 9; ``f`` the rate factor)."""
    with_target = [d for d in data.demand_ids if d in data.rate_target]
    m.Dtarget = pyo.Set(initialize=with_target, ordered=True)
    m.rate_target = pyo.Constraint(
        m.Dtarget, rule=lambda mm, d: _log_rate_expr(mm, data, d) >= log_rate(data.rate_target[d])
    )


def define_min_rate(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``min-rate``: ``eta <= log rate`` of every demand."""
    logf = data.tables.log_rate_factor
    lo = min(m.y[d].lb for d in data.demand_ids)
    lo += min(float(logf[k]) for d in data.demand_ids for k in m._ks_of[d])
    hi = max(float(logf[k]) for d in data.demand_ids for k in m._ks_of[d])  # log p <= 0
    m.eta = pyo.Var(bounds=(lo - 1.0, hi + 1.0))
    m.min_rate = pyo.Constraint(m.D, rule=lambda mm, d: mm.eta <= _log_rate_expr(mm, data, d))


def cost_expr(m: pyo.ConcreteModel) -> Any:
    cost = m._coef["cost"]
    return sum(cost[i] * m.x[i] for i in m.LO if cost[i] != 0)


def define_repeater_budget(m: pyo.ConcreteModel, data: SpacingData, budget: float) -> None:
    """``repeater-budget``: total repeater cost <= budget."""
    m.repeater_budget = pyo.Constraint(expr=cost_expr(m) <= budget)


def define_latency_limit(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``latency-limit``: Eq. 10 latency <= limit, linear after scaling by the limit.

    ``sum_i t_i / T <= sum_k ((T - s(k)) / T) f(k) w[d,k]`` (``f`` the rate factor, ``s`` the
    swap latency of the chain tables) with ``w <= z``,
    ``w <= p_lin`` and ``p_lin[d] <= p`` of every segment on the chosen path.
    Options whose own segment time already exceeds the limit are excluded for
    the paths they would sit on (``latency-option-excluded``).
    """
    rate_factor, _, swap_latency_s = data.tables.hop_arrays()
    dl = [d for d in data.demand_ids if d in data.latency_limit_s]
    m.Dlat = pyo.Set(initialize=dl, ordered=True)
    m.p_lin = pyo.Var(m.Dlat, bounds=(0.0, 1.0))
    dk = [(d, k) for d in dl for k in m._ks_of[d]]
    m.DKlat = pyo.Set(initialize=dk, dimen=2, ordered=True)
    m.w = pyo.Var(m.DKlat, bounds=(0.0, 1.0))
    m.latency_w_hops = pyo.Constraint(m.DKlat, rule=lambda mm, d, k: mm.w[d, k] <= mm.z[d, k])
    m.latency_w_p = pyo.Constraint(m.DKlat, rule=lambda mm, d, k: mm.w[d, k] <= mm.p_lin[d])
    forbidden_k = [(d, k) for d, k in dk if data.latency_limit_s[d] - swap_latency_s[k] <= 0]
    m.latency_hops_excluded = pyo.Constraint(
        pyo.Set(initialize=forbidden_k, dimen=2, ordered=True),
        rule=lambda mm, d, k: mm.z[d, k] == 0,
    )
    rows = [(d, j, lid) for d in dl for j in range(len(data.paths[d])) for lid in data.paths[d][j]]
    m.DPLlat = pyo.Set(initialize=rows, dimen=3, ordered=True)

    def p_rule(mm: pyo.ConcreteModel, d: Hashable, j: int, lid: Hashable) -> Any:
        p = sum(m._coef["p"][i] * mm.x[i] for i in m._by_link[lid])
        return mm.p_lin[d] <= p + (1 - _sel(mm, d, j))

    m.latency_worst_segment = pyo.Constraint(m.DPLlat, rule=p_rule)

    excluded = []
    for d, j, lid in rows:
        for i in m._by_link[lid]:
            if m._coef["time_s"][i] > data.latency_limit_s[d]:
                excluded.append((d, j, i[0], i[1]))
    m.latency_option_excluded = pyo.Constraint(
        pyo.Set(initialize=excluded, dimen=4, ordered=True),
        rule=lambda mm, d, j, lid, n: mm.x[lid, n] + _sel(mm, d, j) <= 1 if (d, j) in m._dp_var else mm.x[lid, n] == 0,
    )

    def lat_rule(mm: pyo.ConcreteModel, d: Hashable, j: int) -> Any:
        limit = data.latency_limit_s[d]
        path = data.paths[d][j]
        # clipped scaled times: an option above the limit is excluded on this path anyway
        coef = {i: min(m._coef["time_s"][i] / limit, 1.0 + 1e-9) for lid in path for i in m._by_link[lid]}
        big = sum(max(coef[i] for i in m._by_link[lid]) for lid in path)
        lhs = sum(c * mm.x[i] for i, c in coef.items())
        rhs = sum(
            max(0.0, (limit - float(swap_latency_s[k])) / limit) * float(rate_factor[k]) * mm.w[d, k]
            for k in m._ks_of[d]
        )
        return lhs <= rhs + big * (1 - _sel(mm, d, j))

    m.DPlat = pyo.Set(initialize=[(d, j) for d in dl for j in range(len(data.paths[d]))], dimen=2, ordered=True)
    m.latency_limit = pyo.Constraint(m.DPlat, rule=lat_rule)


def define_objective(m: pyo.ConcreteModel, data: SpacingData, mode: SpacingMode) -> None:
    """``min_cost``: minimise total repeater cost; ``max_min_rate``: maximise eta (log of the minimum rate)."""
    if mode == "min_cost":
        m.objective = pyo.Objective(expr=cost_expr(m), sense=pyo.minimize)
    else:
        m.objective = pyo.Objective(expr=m.eta, sense=pyo.maximize)


def set_warm_start(m: pyo.ConcreteModel, design: HeuristicDesign) -> None:
    """Set every model variable to the values of ``design`` (one-hot, hops, worst segment, eta)."""
    data: SpacingData = m._data
    logf = data.tables.log_rate_factor
    log_p_rows, p_of = data.options.log_p_rows, data.options.p
    pos = data.link_pos
    for lid, n in m.LO:
        m.x[lid, n].set_value(1 if design.repeaters.get(lid, 0) == n else 0)
    for d, j in m.DPv:
        m.u[d, j].set_value(1 if design.path_choice.get(d, 0) == j else 0)
    log_rates = []
    for d in m.D:
        path = data.paths[d][design.path_choice.get(d, 0)]
        reps = [design.repeaters.get(lid, 0) for lid in path]
        k = sum(n + 1 for n in reps)
        for kk in m._ks_of[d]:
            m.z[d, kk].set_value(1 if kk == k else 0)
        log_p = min(log_p_rows[lid][n] for lid, n in zip(path, reps, strict=True))
        p_worst = min(float(p_of[pos[lid], n]) for lid, n in zip(path, reps, strict=True))
        m.y[d].set_value(min(0.0, max(m.y[d].lb, log_p)))
        log_rates.append(log_p + float(logf[k]))
        if hasattr(m, "p_lin") and d in m.Dlat:
            m.p_lin[d].set_value(p_worst)
            for kk in m._ks_of[d]:
                m.w[d, kk].set_value(p_worst if kk == k else 0.0)
    if hasattr(m, "eta"):
        eta = min(log_rates)
        m.eta.set_value(min(max(eta, m.eta.lb), m.eta.ub))


# ---------------------------------------------------------------------------
# Diagnosis of an infeasible model
# ---------------------------------------------------------------------------


def _feasible(
    data: SpacingData,
    mode: SpacingMode,
    budget: float | None,
    options: SolverOptions,
    left_s: list[float] | None = None,
) -> bool:
    """Whether ``data`` has a feasible design; with ``left_s`` (a one-element budget, updated)
    each solve gets half of what is left, so all of them together stay within it."""
    if left_s is not None:
        limit = 0.5 * left_s[0]
        left_s[0] -= limit
        options = dataclasses.replace(options, time_limit_s=min(options.time_limit_s, limit))
    raw = solve_model(build_spacing_model(data, mode=mode, budget=budget), options)
    if raw.status is SolveStatus.TIME_LIMIT_NO_SOLUTION or raw.status is SolveStatus.ERROR:
        return True  # undecided: do not blame this subset
    return raw.status is not SolveStatus.INFEASIBLE


def diagnose_infeasible(
    data: SpacingData, *, mode: SpacingMode, budget: float | None, options: SolverOptions
) -> tuple[list[Hashable], list[str]]:
    """Demands to blame when the full model is infeasible.

    First the demands infeasible on their own (solved one by one); if there are
    none, a deletion filter returns a minimal set of demands that conflict
    jointly (each removal makes the remaining set feasible).
    """
    left = [float(options.time_limit_s)]  # all the diagnosis solves share one limit
    alone = [d for d in data.demand_ids if not _feasible(subset_demands(data, [d]), mode, budget, options, left)]
    if alone:
        return alone, [f"demand {_show(d)} cannot meet its rate target / latency limit on its own" for d in alone]
    keep = list(data.demand_ids)
    for d in list(keep):
        trial = [e for e in keep if e != d]
        if trial and not _feasible(subset_demands(data, trial), mode, budget, options, left):
            keep = trial
    return keep, [f"demands {', '.join(map(repr, keep))} cannot meet their targets together (shared links)"]
