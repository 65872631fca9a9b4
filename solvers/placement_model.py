"""The placement MILP: sparse arrays handed to HiGHS, and the Pyomo twin used to cross-check it.

See :mod:`solvers.placement` for the formulation.
"""

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp

from solvers.base import SolveResult, SolverOptions, SolveStatus
from solvers.highs_driver import HighsRun, LinearArrays, solve_arrays, solve_model
from solvers.placement_data import (
    SNK,
    SRC,
    PairArcs,
    PlacementData,
    PlacementInstance,
    PlacementOptions,
    pair_arcs,
    preprocess_placement,
)

# ---------------------------------------------------------------------------
# sparse MILP
# ---------------------------------------------------------------------------


@dataclass
class PlacementMilp:
    """The placement MILP as sparse arrays (columns: arc flows, then one ``y`` per candidate repeater)."""

    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integrality: np.ndarray
    a_matrix: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    y_cols: dict[int, int]  # repeater node -> column
    arcs: PairArcs
    n_arc: int


def build_placement_milp(inst: PlacementInstance, *, alpha: float, n_repeaters: int | None = None) -> PlacementMilp:
    """The sparse MILP of ``inst`` (objective: repeaters + ``alpha`` x length; with ``n_repeaters``, the
    repeater count fixed to it) on the pairs' current hop graphs (see :mod:`solvers.placement`)."""
    arcs = PairArcs()
    for q in range(len(inst.pairs)):
        pair_arcs(inst, q, arcs)
    n_arc = len(arcs.pair)
    used = sorted({v for v, q in zip(arcs.v, arcs.pair, strict=True) if not inst.is_end[v]})
    y_cols = {u: n_arc + i for i, u in enumerate(used)}
    n_col = n_arc + len(used)
    cost = np.zeros(n_col)
    cost[:n_arc] = alpha * np.asarray(arcs.length_km, dtype=float)
    cost[n_arc:] = 1.0
    lower = np.zeros(n_col)
    upper = np.ones(n_col)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rlo: list[float] = []
    rup: list[float] = []

    def new_row(lo: float, up: float) -> int:
        rlo.append(lo)
        rup.append(up)
        return len(rlo) - 1

    source_row = {q: new_row(inst.k, inst.k) for q in range(len(inst.pairs))}
    vertex_row: dict[tuple[int, tuple[int, int]], int] = {}
    link_row: dict[tuple[int, int], int] = {}
    cap_row: dict[int, int] = {}
    sessions_possible: dict[int, int] = {}
    for _q, v in {(q, v) for q, v in zip(arcs.pair, arcs.v, strict=True) if not inst.is_end[v]}:
        sessions_possible[v] = sessions_possible.get(v, 0) + 1
    for j in range(n_arc):
        q, tail, head, v = arcs.pair[j], arcs.tail[j], arcs.head[j], arcs.v[j]
        if tail[0] == SRC:
            rows.append(source_row[q])
            cols.append(j)
            vals.append(1.0)
        else:
            key = (q, tail)
            if key not in vertex_row:
                vertex_row[key] = new_row(0.0, 0.0)
            rows.append(vertex_row[key])
            cols.append(j)
            vals.append(-1.0)
        if head[0] != SNK:
            key = (q, head)
            if key not in vertex_row:
                vertex_row[key] = new_row(0.0, 0.0)
            rows.append(vertex_row[key])
            cols.append(j)
            vals.append(1.0)
            lk = (q, v)
            if lk not in link_row:
                link_row[lk] = new_row(-np.inf, 0.0)
                rows.append(link_row[lk])
                cols.append(y_cols[v])
                vals.append(-1.0)
            rows.append(link_row[lk])
            cols.append(j)
            vals.append(1.0)
            if sessions_possible[v] > inst.capacity:
                if v not in cap_row:
                    cap_row[v] = new_row(-np.inf, 0.0)
                    rows.append(cap_row[v])
                    cols.append(y_cols[v])
                    vals.append(-float(inst.capacity))
                rows.append(cap_row[v])
                cols.append(j)
                vals.append(1.0)
    if n_repeaters is not None:
        count_row = new_row(float(n_repeaters), float(n_repeaters))
        for col in y_cols.values():
            rows.append(count_row)
            cols.append(col)
            vals.append(1.0)
    a = sp.csc_matrix(
        (np.asarray(vals), (np.asarray(rows), np.asarray(cols))), shape=(len(rlo), n_col)
    )
    a.sum_duplicates()
    return PlacementMilp(
        cost=cost,
        lower=lower,
        upper=upper,
        integrality=np.ones(n_col, dtype=np.int64),
        a_matrix=a,
        row_lower=np.asarray(rlo, dtype=float),
        row_upper=np.asarray(rup, dtype=float),
        y_cols=y_cols,
        arcs=arcs,
        n_arc=n_arc,
    )


def solve_placement_milp(
    milp: PlacementMilp, solver_options: SolverOptions, time_limit_s: float, start: np.ndarray | None
) -> HighsRun:
    """One round's solve by the HiGHS driver; the returned column values give the returned
    objective. The loop of rounds is bounded by its own deadline, so a round's limit is not
    reported to the stage budget."""
    arrays = LinearArrays(
        col_cost=milp.cost,
        col_lower=milp.lower,
        col_upper=milp.upper,
        a_matrix=milp.a_matrix,
        row_lower=milp.row_lower,
        row_upper=milp.row_upper,
        integrality=milp.integrality,
    )
    opts = dataclasses.replace(solver_options, time_limit_s=time_limit_s)
    return solve_arrays(arrays, opts, start=start, record_limit=False)


# ---------------------------------------------------------------------------
# Pyomo twin (cross-check through solvers.highs_driver.solve_model)
# ---------------------------------------------------------------------------


def build_pyomo_model(data: PlacementData, options: PlacementOptions) -> pyo.ConcreteModel:
    """The fully layered formulation as a Pyomo model (for cross-checks on small instances).

    Variables ``model.y[node]`` (repeater chosen) and ``model.x[arc]`` (arc used);
    the objective equals the one minimised by :func:`solve_placement`.
    """
    inst = preprocess_placement(data, options)
    for pg in inst.pairs:
        pg.layered = True
    arcs = PairArcs()
    for q in range(len(inst.pairs)):
        pair_arcs(inst, q, arcs)
    n_arc = len(arcs.pair)
    reps = sorted({v for v in arcs.v if not inst.is_end[v]})
    m = pyo.ConcreteModel()
    m.A = pyo.RangeSet(0, n_arc - 1)
    m.R = pyo.Set(initialize=[inst.names[u] for u in reps])
    m.x = pyo.Var(m.A, domain=pyo.Binary)
    m.y = pyo.Var(m.R, domain=pyo.Binary)
    m.obj = pyo.Objective(
        expr=sum(m.y[r] for r in m.R)
        + inst.alpha * sum(arcs.length_km[j] * m.x[j] for j in range(n_arc)),
        sense=pyo.minimize,
    )
    m.cons = pyo.ConstraintList()
    by_pair_src: dict[int, list[int]] = {}
    inflow: dict[tuple[int, tuple[int, int]], list[int]] = {}
    outflow: dict[tuple[int, tuple[int, int]], list[int]] = {}
    through: dict[tuple[int, int], list[int]] = {}
    for j in range(n_arc):
        q = arcs.pair[j]
        if arcs.tail[j][0] == SRC:
            by_pair_src.setdefault(q, []).append(j)
        else:
            outflow.setdefault((q, arcs.tail[j]), []).append(j)
        if arcs.head[j][0] != SNK:
            inflow.setdefault((q, arcs.head[j]), []).append(j)
            through.setdefault((q, arcs.v[j]), []).append(j)
    for q in range(len(inst.pairs)):
        m.cons.add(sum(m.x[j] for j in by_pair_src.get(q, [])) == inst.k)
    for key in set(inflow) | set(outflow):
        m.cons.add(
            sum(m.x[j] for j in inflow.get(key, [])) == sum(m.x[j] for j in outflow.get(key, []))
        )
    for (_q, u), js in through.items():
        m.cons.add(sum(m.x[j] for j in js) <= m.y[inst.names[u]])
    for u in reps:
        js = [j for (q, uu), lst in through.items() if uu == u for j in lst]
        m.cons.add(sum(m.x[j] for j in js) <= inst.capacity * m.y[inst.names[u]])
    return m


def solve_placement_pyomo(
    data: PlacementData, options: PlacementOptions, solver_options: SolverOptions | None = None
) -> SolveResult:
    """Solve :func:`build_pyomo_model` with :func:`solvers.highs_driver.solve_model` (objective and chosen repeaters only)."""
    t0 = time.perf_counter()
    model = build_pyomo_model(data, options)
    build = time.perf_counter() - t0
    raw = solve_model(model, solver_options)
    reps = [
        r
        for r in model.R
        if raw.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) and pyo.value(model.y[r]) > 0.5
    ]
    return SolveResult(
        status=raw.status,
        objective=raw.objective,
        bound=raw.bound,
        gap=raw.gap,
        solve_time_s=raw.solve_time_s,
        build_time_s=build,
        solver=raw.solver,
        tables={"repeaters": pd.DataFrame({"node": reps})},
    )
