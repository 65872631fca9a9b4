"""The placement MILP: sparse arrays handed to HiGHS, and the Pyomo twin used to cross-check it.

See :mod:`solvers.placement` for the formulation.
"""

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp

from solvers.base import SolveResult, SolverOptions, SolveStatus, result_from_raw
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


class _SparseRows:
    """Constraint rows built one entry at a time (coordinates and row bounds), numbered in creation order."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lo: list[float] = []
        self.up: list[float] = []

    def new(self, lo: float, up: float) -> int:
        """A new row with bounds ``lo <= . <= up``; returns its number."""
        self.lo.append(lo)
        self.up.append(up)
        return len(self.lo) - 1

    def add(self, row: int, col: int, val: float) -> None:
        """Coefficient ``val`` of column ``col`` in ``row``."""
        self.rows.append(row)
        self.cols.append(col)
        self.vals.append(val)

    def keyed(self, table: dict[Any, int], key: Any, lo: float, up: float) -> tuple[int, bool]:
        """The row of ``key`` in ``table``, created (with these bounds) on first use; (row, created)."""
        row = table.get(key)
        if row is not None:
            return row, False
        row = table[key] = self.new(lo, up)
        return row, True


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
    rows = _SparseRows()
    source_row = {q: rows.new(inst.k, inst.k) for q in range(len(inst.pairs))}
    vertex_row: dict[Any, int] = {}
    link_row: dict[Any, int] = {}
    cap_row: dict[Any, int] = {}
    sessions_possible: dict[int, int] = {}
    for _q, v in {(q, v) for q, v in zip(arcs.pair, arcs.v, strict=True) if not inst.is_end[v]}:
        sessions_possible[v] = sessions_possible.get(v, 0) + 1
    for j in range(n_arc):
        q, tail, head, v = arcs.pair[j], arcs.tail[j], arcs.head[j], arcs.v[j]
        if tail[0] == SRC:
            rows.add(source_row[q], j, 1.0)
        else:
            rows.add(rows.keyed(vertex_row, (q, tail), 0.0, 0.0)[0], j, -1.0)
        if head[0] == SNK:
            continue
        rows.add(rows.keyed(vertex_row, (q, head), 0.0, 0.0)[0], j, 1.0)
        row, created = rows.keyed(link_row, (q, v), -np.inf, 0.0)
        if created:
            rows.add(row, y_cols[v], -1.0)
        rows.add(row, j, 1.0)
        if sessions_possible[v] > inst.capacity:
            row, created = rows.keyed(cap_row, v, -np.inf, 0.0)
            if created:
                rows.add(row, y_cols[v], -float(inst.capacity))
            rows.add(row, j, 1.0)
    if n_repeaters is not None:
        count_row = rows.new(float(n_repeaters), float(n_repeaters))
        for col in y_cols.values():
            rows.add(count_row, col, 1.0)
    a = sp.csc_matrix(
        (np.asarray(rows.vals), (np.asarray(rows.rows), np.asarray(rows.cols))), shape=(len(rows.lo), n_col)
    )
    a.sum_duplicates()
    rlo, rup = rows.lo, rows.up
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
        expr=sum(m.y[r] for r in m.R) + inst.alpha * sum(arcs.length_km[j] * m.x[j] for j in range(n_arc)),
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
        m.cons.add(sum(m.x[j] for j in inflow.get(key, [])) == sum(m.x[j] for j in outflow.get(key, [])))
    for (_q, u), js in through.items():
        m.cons.add(sum(m.x[j] for j in js) <= m.y[inst.names[u]])
    for u in reps:
        js = [j for (q, uu), lst in through.items() if uu == u for j in lst]
        m.cons.add(sum(m.x[j] for j in js) <= inst.capacity * m.y[inst.names[u]])
    return m


def solve_placement_pyomo(
    data: PlacementData, options: PlacementOptions, solver_options: SolverOptions | None = None
) -> SolveResult:
    """Solve :func:`build_pyomo_model` with :func:`solvers.highs_driver.solve_model`.

    Returns the objective and the chosen repeaters only."""
    t0 = time.perf_counter()
    model = build_pyomo_model(data, options)
    build = time.perf_counter() - t0
    raw = solve_model(model, solver_options)
    reps = [
        r for r in model.R if raw.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) and pyo.value(model.y[r]) > 0.5
    ]
    return result_from_raw(raw, build_time_s=build, tables={"repeaters": pd.DataFrame({"node": reps})})
