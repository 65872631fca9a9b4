"""Quantum-repeater placement on candidate sites (the RepAlloc setting).

Problem (Rabbie, Chakraborty, Avis, Wehner, "Designing quantum networks using
preexisting infrastructure", npj Quantum Information 8, 5 (2022)): repeaters
may only be placed at existing nodes of a fibre graph. Every pair of end nodes
needs ``K`` (robustness) paths ``s, r_1, ..., r_m, t`` such that

* consecutive nodes are at most ``L_max`` km apart along the shortest fibre
  route (one *elementary link*),
* ``m <= N_max`` repeaters per path, repeaters are non-end nodes,
* the ``K`` paths of a pair share no repeater node (and use the direct link
  ``s-t`` at most once),
* every chosen repeater serves at most ``D`` (capacity) (pair, path) sessions.

Objective: number of repeaters plus ``alpha`` x total elementary-link length
summed over all paths.

Formulation (our own): for each pair one *aggregated* integer flow of value
``K`` from ``s`` to ``t`` with unit capacity on every repeater node, so that
the flow decomposes into ``K`` repeater-disjoint paths without any symmetry
between path copies. The per-path hop limit ``N_max`` is enforced on a
*layered* copy of the pair's L_max hop graph (vertex ``(u, l)`` = "u is the
l-th repeater"), restricted to the layer window
``d_s(u) <= l <= N_max + 1 - d_t(u)`` given by hop distances to the two end
nodes; nodes and arcs that cannot lie on any path with at most ``N_max``
repeaters are removed. With ``lazy_hop_limit`` each pair starts on the
smaller un-layered hop graph (a relaxation); after each solve the pairs whose
decoded paths break the hop limit are switched to their layered graph and the
model is solved again, so the final solution is exact and every intermediate
bound is a valid lower bound. The linking ``flow of pair q through u <= y_u``
(valid because a pair's paths are repeater-disjoint) gives a much stronger
LP bound than the aggregate capacity row ``sum_q flow_q(u) <= D y_u`` alone.
When ``alpha`` x the longest possible total length ``K |pairs| (N_max + 1)
L_max`` is below 1, every weighted optimum uses the least number of
repeaters, so the model is solved lexicographically: first the repeater count
alone (an integer objective, whose LP bound HiGHS rounds up, which closes the
gap at the root on the RepAlloc instances), then the weighted objective with
the count fixed to that minimum; the result is the weighted optimum.
The MILP is passed to HiGHS directly (highspy) as a sparse matrix; a small
Pyomo twin (:func:`build_pyomo_model`) of the same formulation exists for
cross-checking through :func:`solvers.highs_driver.solve_model`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from solvers.base import SolveResult, SolverOptions, SolveStatus, relative_gap
from solvers.placement_data import (
    SNK,
    SRC,
    PlacementData,
    PlacementInputError,
    PlacementInstance,
    PlacementOptions,
    fibre_distance_table,
    preprocess_placement,
)
from solvers.placement_model import (
    PlacementMilp,
    build_placement_milp,
    build_pyomo_model,
    solve_placement_milp,
    solve_placement_pyomo,
)

__all__ = [
    "PlacementData",
    "PlacementInputError",
    "PlacementOptions",
    "build_pyomo_model",
    "fibre_distance_table",
    "placement_objective",
    "solve_placement",
    "solve_placement_pyomo",
]

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------


def _decode_paths(inst: PlacementInstance, milp: PlacementMilp, x: np.ndarray) -> dict[int, list[list[int]]]:
    """Per pair, the K node sequences read from an integral flow (cycles are dropped)."""
    arcs = milp.arcs
    chosen = np.flatnonzero(x[: milp.n_arc] > 0.5)
    succ: dict[tuple[int, tuple[int, int]], list[int]] = {}
    for col in chosen:
        succ.setdefault((arcs.pair[col], arcs.tail[col]), []).append(int(col))
    paths: dict[int, list[list[int]]] = {}
    for q, pg in enumerate(inst.pairs):
        plist: list[list[int]] = []
        for _ in range(inst.k):
            seq = [pg.s]
            key = (SRC, 0)
            guard = 0
            while key[0] != SNK:
                nxt = succ.get((q, key))
                if not nxt:
                    raise RuntimeError(f"flow of pair {q} is broken at {key}")
                j = nxt.pop()
                key = arcs.head[j]
                seq.append(arcs.v[j])
                guard += 1
                if guard > len(inst.names) + 1:
                    raise RuntimeError("flow decoding did not terminate")
            plist.append(seq)
        paths[q] = plist
    return paths


def _paths_to_start(inst: PlacementInstance, milp: PlacementMilp, paths: dict[int, list[list[int]]]) -> np.ndarray:
    """Column vector of a solution given as node sequences (for a MIP start)."""
    x = np.zeros(len(milp.cost))
    index: dict[tuple[int, tuple[int, int], tuple[int, int]], int] = {}
    for j in range(milp.n_arc):
        index[(milp.arcs.pair[j], milp.arcs.tail[j], milp.arcs.head[j])] = j
    for q, plist in paths.items():
        layered = inst.pairs[q].layered
        for seq in plist:
            keys = [(SRC, 0)]
            for pos, u in enumerate(seq[1:-1], start=1):
                keys.append((u, pos if layered else 0))
            keys.append((SNK, 0))
            for a, b in zip(keys[:-1], keys[1:], strict=True):
                col = index.get((q, a, b))
                if col is None:
                    return np.array([])
                x[col] = 1.0
            for u in seq[1:-1]:
                x[milp.y_cols[u]] = 1.0
    return x


def _hop_violations(inst: PlacementInstance, paths: dict[int, list[list[int]]]) -> list[int]:
    return [q for q, plist in paths.items() if any(len(p) - 2 > inst.n_max for p in plist)]


def _tables(inst: PlacementInstance, paths: dict[int, list[list[int]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sessions: dict[int, int] = {}
    rows = []
    for q, plist in paths.items():
        pg = inst.pairs[q]
        for i, seq in enumerate(plist):
            links = [float(inst.dist_km[a, b]) for a, b in zip(seq[:-1], seq[1:], strict=True)]
            for u in seq[1:-1]:
                sessions[u] = sessions.get(u, 0) + 1
            rows.append(
                {
                    "node_a": inst.names[pg.s],
                    "node_b": inst.names[pg.t],
                    "path_index": i,
                    "nodes": tuple(inst.names[u] for u in seq),
                    "link_length_km": tuple(links),
                    "n_repeaters": len(seq) - 2,
                    "length_km": float(sum(links)),
                }
            )
    paths_df = pd.DataFrame(
        rows,
        columns=[
            "node_a",
            "node_b",
            "path_index",
            "nodes",
            "link_length_km",
            "n_repeaters",
            "length_km",
        ],
    )
    rep_df = pd.DataFrame(
        [{"node": inst.names[u], "sessions": c} for u, c in sorted(sessions.items())],
        columns=["node", "sessions"],
    )
    return rep_df, paths_df


def placement_objective(repeaters: Sequence[str], paths: pd.DataFrame, alpha_per_km: float) -> float:
    """Number of repeaters plus ``alpha_per_km`` x summed elementary-link length of all paths."""
    total_km = float(paths["length_km"].sum()) if len(paths) else 0.0
    return float(len(repeaters)) + alpha_per_km * total_km


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def solve_placement(
    data: PlacementData,
    options: PlacementOptions,
    solver_options: SolverOptions | None = None,
) -> SolveResult:
    """Solve the repeater-placement MILP (see module docstring) with HiGHS.

    Guarantees: when the status is OPTIMAL or FEASIBLE, ``tables["repeaters"]``
    (``node, sessions``) lists exactly the repeaters used by the paths and
    ``tables["paths"]`` (``node_a, node_b, path_index, nodes, link_length_km,
    n_repeaters, length_km``) gives K paths per end-node pair meeting every
    constraint; ``objective`` is recomputed from these tables and ``bound`` is
    a valid lower bound of the true optimum. ``info`` holds preprocessing and
    model sizes and the number of lazy rounds. Raises
    :class:`PlacementInputError` on bad input.
    """
    sopts = solver_options or SolverOptions()
    t_build0 = time.perf_counter()
    inst = preprocess_placement(data, options)
    for pg in inst.pairs:
        pg.layered = not options.lazy_hop_limit
    info = _instance_info(inst)
    unreachable = [
        f"{inst.names[pg.s]}-{inst.names[pg.t]}" for pg in inst.pairs if not pg.direct and pg.d_s[pg.t] > inst.n_max + 1
    ]
    build_time = time.perf_counter() - t_build0
    if unreachable:
        info["infeasible_pairs"] = ", ".join(unreachable)
        return SolveResult(
            status=SolveStatus.INFEASIBLE,
            build_time_s=build_time,
            solve_time_s=0.0,
            solver="highs",
            info=info,
        )
    stats = _LoopStats()
    final = _solve_instance(inst, options, sopts, stats, info)
    info.update(stats.info)
    info["lazy_rounds"] = stats.rounds
    result = SolveResult(
        status=final.status,
        build_time_s=build_time + stats.build_time_s,
        solve_time_s=stats.solve_time_s,
        solver="highs",
        info=info,
        bound=final.bound,
    )
    if final.paths is None:
        return result
    rep_df, paths_df = _tables(inst, final.paths)
    result.tables = {"repeaters": rep_df, "paths": paths_df}
    result.objective = placement_objective(list(rep_df["node"]), paths_df, inst.alpha)
    if math.isfinite(result.bound):
        result.bound = min(result.bound, result.objective)
    result.gap = relative_gap(result.objective, result.bound)
    return result


def _instance_info(inst: PlacementInstance) -> dict[str, Any]:
    """Preprocessing facts of ``inst`` for the result's ``info``: sizes, hop edges, candidates."""
    return {
        "n_nodes": len(inst.names),
        "n_end_nodes": len(inst.end_idx),
        "n_pairs": len(inst.pairs),
        "n_hop_edges": int(inst.hop.sum() // 2),
        "n_candidates": int((~inst.is_end).sum()),
        "n_candidates_useful": int(len(set().union(*[set(pg.candidates.tolist()) for pg in inst.pairs]))),
        "mean_candidates_per_pair": float(np.mean([len(pg.candidates) for pg in inst.pairs])),
    }


def _solve_instance(
    inst: PlacementInstance, options: PlacementOptions, sopts: SolverOptions, stats: _LoopStats, info: dict[str, Any]
) -> _LoopOutcome:
    """The lazy solve of ``inst`` within ``sopts.time_limit_s`` from now: lexicographic (least
    repeaters, then least length at that count) when that gives the weighted optimum, else weighted
    in one go. Records ``lexicographic`` and the first phase's figures in ``info``."""
    deadline = time.perf_counter() + sopts.time_limit_s
    alpha = inst.alpha
    # The alpha term never reaches 1 when every path is at most (N_max + 1) L_max long; then the
    # weighted optimum has the least number of repeaters and can be found lexicographically.
    max_alpha_term = alpha * inst.k * len(inst.pairs) * (inst.n_max + 1) * options.max_link_km
    lexicographic = options.lexicographic and alpha > 0 and max_alpha_term < 1.0
    info["lexicographic"] = lexicographic
    if not lexicographic:
        return _lazy_solve(inst, sopts, deadline, stats, alpha=alpha)
    first = _lazy_solve(inst, sopts, deadline, stats, alpha=0.0)
    if first.status is not SolveStatus.OPTIMAL or first.paths is None:
        return first  # count not proven: its bound is still a valid bound (alpha term >= 0)
    n_star = int(round(first.objective))
    info["phase1_repeaters"] = n_star
    info["phase1_solve_time_s"] = stats.solve_time_s
    final = _lazy_solve(inst, sopts, deadline, stats, alpha=alpha, n_repeaters=n_star, start=first.paths)
    if final.paths is None:  # phase 2 ran out of time: keep the phase-1 design
        return _LoopOutcome(SolveStatus.FEASIBLE, first.paths, math.nan, float(n_star))
    if final.status is SolveStatus.INFEASIBLE:
        raise RuntimeError("least-length phase infeasible although phase 1 was optimal")
    return final


@dataclass
class _LoopStats:
    rounds: int = 0
    build_time_s: float = 0.0
    solve_time_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _LoopOutcome:
    status: SolveStatus
    paths: dict[int, list[list[int]]] | None
    objective: float
    bound: float


def _lazy_solve(
    inst: PlacementInstance,
    sopts: SolverOptions,
    deadline: float,
    stats: _LoopStats,
    *,
    alpha: float,
    n_repeaters: int | None = None,
    start: dict[int, list[list[int]]] | None = None,
) -> _LoopOutcome:
    """Solve, layer the pairs whose paths break N_max, repeat until none does (or time is up).

    Every model solved is a relaxation of the exact problem (un-layered pairs
    ignore N_max), so its bound is valid; the returned paths meet N_max.
    """
    bound = math.nan
    while True:
        stats.rounds += 1
        t0 = time.perf_counter()
        milp = build_placement_milp(inst, alpha=alpha, n_repeaters=n_repeaters)
        x0 = _paths_to_start(inst, milp, start) if start else None
        stats.build_time_s += time.perf_counter() - t0
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return _LoopOutcome(SolveStatus.TIME_LIMIT_NO_SOLUTION, None, math.nan, bound)
        raw = solve_placement_milp(milp, sopts, remaining, x0 if x0 is not None and x0.size else None)
        stats.solve_time_s += raw.solve_time_s
        if math.isfinite(raw.bound):
            bound = raw.bound
        stats.info.update(
            n_columns=len(milp.cost),
            n_rows=len(milp.row_lower),
            n_nonzeros=int(milp.a_matrix.nnz),
            n_layered_pairs=sum(pg.layered for pg in inst.pairs),
        )
        logger.info(
            "placement round %d (alpha=%g): %s obj=%s bound=%s (%d cols, %d layered pairs) in %.2fs",
            stats.rounds,
            alpha,
            raw.status,
            raw.objective,
            raw.bound,
            len(milp.cost),
            stats.info["n_layered_pairs"],
            raw.solve_time_s,
        )
        if raw.values is None:
            return _LoopOutcome(raw.status, None, math.nan, bound)
        paths = _decode_paths(inst, milp, raw.values)
        bad = _hop_violations(inst, paths)
        if not bad:
            return _LoopOutcome(raw.status, paths, raw.objective, bound)
        for q in bad:
            inst.pairs[q].layered = True
