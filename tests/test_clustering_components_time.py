"""The per-component clustering keeps its time limit and never ends without a clustering when the
heuristic has one: components handed (near-)zero time, or whose MILP finds nothing, take the
heuristic's clustering, and the summed bound stays valid (checked against exhaustive enumeration)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import solvers.clustering as clustering
import solvers.clustering_components as clustering_components
import solvers.clustering_solve as clustering_solve
from solvers.base import (
    SolveResult,
    SolverOptions,
    SolveStatus,
    TimeLimitRecord,
    recording_time_limits,
)
from solvers.clustering import (
    ClusteringData,
    ClusteringOptions,
    check_solution,
    cost_lower_bound,
    fallback_bound,
    prepare,
    solve_clustering_by_component,
)
from tests.oracles.enumerate import enumerate_clustering_data, random_clustering_instance

TOL = 1e-6


def _part(seed: int, tag: str) -> ClusteringData:
    rng = np.random.default_rng(seed)
    sites, cands, pairs = random_clustering_instance(rng, n_sites=7, reach_km=40.0)
    ren = {s: f"{tag}{s}" for s in cands.index}
    return ClusteringData(
        sites.rename(index=ren),
        cands.rename(index=ren),
        pairs.assign(site=pairs["site"].map(ren), candidate=pairs["candidate"].map(ren)),
    )


def _instance(objective: str) -> tuple[ClusteringData, ClusteringOptions, float]:
    """Three far-apart random instances (every one clusters) and the enumerated optimum of the whole
    (the sum of the parts' optima: no budgets, so the components are independent)."""
    options = ClusteringOptions(objective=objective, loss_weight=0.01, backend="highspy")  # type: ignore[arg-type]
    parts: list[ClusteringData] = []
    optimum = 0.0
    seed = 0
    while len(parts) < 3:
        part = _part(seed, f"p{seed}_")
        seed += 1
        ref = enumerate_clustering_data(part, options)
        if ref is None:
            continue
        parts.append(part)
        optimum += ref.objective
    data = ClusteringData(
        pd.concat([p.sites for p in parts]),
        pd.concat([p.candidates for p in parts]),
        pd.concat([p.pairs for p in parts], ignore_index=True),
    )
    return data, options, optimum


def _check_against_enumeration(
    data: ClusteringData, options: ClusteringOptions, res: SolveResult, optimum: float
) -> None:
    assert res.has_solution
    assert sorted(res.tables["assignment"]["site"]) == sorted(data.sites.index)
    idx = prepare(data, options)
    owner = res.tables["assignment"].set_index("site")["master"].reindex(idx.site_ids)
    open_ = np.isin(idx.cand_ids, res.tables["clusters"]["master"].to_numpy())
    cand_pos = {c: i for i, c in enumerate(idx.cand_ids)}
    sol = clustering.ClusteringSolution(open_, np.array([cand_pos[m] for m in owner], dtype=np.int64))
    assert check_solution(idx, options, sol) == []
    assert np.isfinite(res.bound)
    if options.objective == "max_keys":
        assert res.objective <= optimum + TOL <= res.bound + 2 * TOL
    else:
        assert res.bound - TOL <= optimum <= res.objective + TOL


@pytest.mark.parametrize("objective", ["max_keys", "min_cost"])
@pytest.mark.parametrize("limit_s", [0.0, 1e-4])
def test_near_zero_time_still_gives_a_clustering_within_the_bound(objective: str, limit_s: float) -> None:
    data, options, optimum = _instance(objective)
    with recording_time_limits() as log:
        res = solve_clustering_by_component(data, options, SolverOptions(time_limit_s=limit_s))
    assert res.info["n_components"] >= 3
    _check_against_enumeration(data, options, res, optimum)
    handed = [r.time_limit_s for r in log if isinstance(r, TimeLimitRecord)]
    assert sum(handed) <= limit_s + 1e-12


@pytest.mark.parametrize("objective", ["max_keys", "min_cost"])
def test_components_whose_milp_finds_nothing_take_the_heuristic(objective: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data, options, optimum = _instance(objective)
    calls: list[float] = []

    def nothing(_data, _options, solver_options, **_kw):  # type: ignore[no-untyped-def]
        calls.append(solver_options.time_limit_s)
        return SolveResult(status=SolveStatus.TIME_LIMIT_NO_SOLUTION)

    monkeypatch.setattr(clustering_solve, "solve_clustering", nothing)  # as the per-component solve calls it
    res = solve_clustering_by_component(data, options, SolverOptions(time_limit_s=30.0))
    assert res.status is SolveStatus.FEASIBLE
    assert "by the heuristic" in str(res.info["source"])
    assert len(calls) >= res.info["n_components"]
    assert sum(calls) <= 30.0 + 1e-9
    _check_against_enumeration(data, options, res, optimum)


def test_component_limits_sum_to_the_limit_with_floors() -> None:
    left, weights = 10.0, [1.0, 1.0, 500.0, 2.0, 1.0]
    handed = []
    for k, w in enumerate(weights):
        rest = weights[k:]
        lim = clustering_components._component_limit(
            left, w, sum(rest), len(rest), needy=k == 0, n_needy_left=int(k == 0)
        )
        handed.append(lim)
        left -= lim
    assert sum(handed) <= 10.0 + 1e-12
    assert handed[0] >= 5.0  # the component that depends on the MILP gets half
    assert min(handed[1:]) >= min(clustering.COMPONENT_MIN_S, 5.0 / 4) - 1e-12  # small ones get the floor


@pytest.mark.parametrize("objective", ["max_keys", "min_cost"])
def test_fallback_bound_is_valid(objective: str) -> None:
    """On eight random instances that cluster (fixed masters and extra locations among them)."""
    checked = 0
    seed = 100
    while checked < 8:
        rng = np.random.default_rng(seed)
        data = ClusteringData(
            *random_clustering_instance(rng, n_sites=8, n_extra=seed % 2, p_fixed=0.1 * (seed % 3 == 0))
        )
        seed += 1
        options = ClusteringOptions(objective=objective, loss_weight=0.01)  # type: ignore[arg-type]
        ref = enumerate_clustering_data(data, options)
        if ref is None:
            continue
        checked += 1
        idx = prepare(data, options)
        if objective == "max_keys":
            assert ref.objective <= fallback_bound(idx, options) + TOL
        else:
            assert cost_lower_bound(idx) <= ref.cost + TOL
            assert fallback_bound(idx, options) <= ref.objective + TOL
    assert seed < 200
