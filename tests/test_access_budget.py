"""The access stage keeps its time budget, and a global budget without a clustering in time still
gives a design.

* The heuristics stop at a deadline after their first variant (a clustering all the same), and
  run their full search without one (same result as before).
* ``solve_clustering`` with no time left starts no MILP and returns the heuristic's clustering with
  a valid bound (checked against exhaustive enumeration).
* :func:`solvers.clustering_fallback.budget_fallback` at a passed deadline: a clustering within the
  master/cost budget whose objective and bound bracket the enumerated optimum.
* ``plan_access`` with a master budget, 0 s and no greedy clustering: the mended greedy's design
  within the budget instead of an error; with no heuristic clustering at all, an error that says so.
* The vectorised access tables equal a brute-force construction (haversine distance, fixed point
  over Python sets), and the stage's typed result matches its tables.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

import solvers.heuristics as heuristics
from planner.errors import InfeasibleDesignError
from planner.io.readers import read_network
from planner.model.scenario import default_scenario
from planner.stages.access import plan_access
from planner.stages.access_tables import EARTH_RADIUS_KM, build_access_tables
from planner.stages.result import AccessResult
from solvers.base import SolverOptions, SolveStatus, TimeLimitRecord, recording_time_limits, stage_budget
from solvers.clustering import (
    ClusteringData,
    ClusteringOptions,
    ClusteringSolution,
    check_solution,
    prepare,
    solution_terms,
    solve_clustering,
)
from solvers.clustering_fallback import budget_fallback
from tests.oracles.enumerate import enumerate_clustering_data, random_clustering_instance

TOL = 1e-6


def _instances(objective: str, n: int = 6, **budgets: float) -> list[tuple[ClusteringData, ClusteringOptions, float]]:
    """Random instances that have a clustering under ``budgets``, with their enumerated optimum."""
    out = []
    seed = 0
    while len(out) < n and seed < 200:
        rng = np.random.default_rng(seed)
        seed += 1
        sites, cands, pairs = random_clustering_instance(rng, n_sites=7, reach_km=40.0)
        data = ClusteringData(sites, cands, pairs)
        options = ClusteringOptions(objective=objective, loss_weight=0.01, **budgets)  # type: ignore[arg-type]
        ref = enumerate_clustering_data(data, options)
        if ref is not None:
            out.append((data, options, ref.objective))
    assert len(out) == n
    return out


def _solution_of(data: ClusteringData, options: ClusteringOptions, tables: dict[str, pd.DataFrame]):  # type: ignore[no-untyped-def]
    """The clustering of result tables as arrays over the index of the sites they assign."""
    assigned = [str(s) for s in tables["assignment"]["site"]]
    sub = ClusteringData(
        data.sites.loc[assigned],
        data.candidates,
        data.pairs[data.pairs["site"].isin(assigned)],
    )
    idx = prepare(sub, options)
    owner = tables["assignment"].set_index("site")["master"].reindex(idx.site_ids)
    pos = {c: i for i, c in enumerate(idx.cand_ids)}
    open_ = np.isin(idx.cand_ids, tables["clusters"]["master"].to_numpy())
    return idx, ClusteringSolution(open_, np.array([pos[m] for m in owner], dtype=np.int64))


@pytest.mark.parametrize("objective", ["max_keys", "min_cost"])
def test_heuristic_stops_after_its_first_variant_at_a_passed_deadline(objective: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = [0]
    real = heuristics.assign_sites

    def counting(idx, open_):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(idx, open_)

    monkeypatch.setattr(heuristics, "assign_sites", counting)
    for data, options, _opt in _instances(objective, n=4):
        idx = prepare(data, options)
        calls[0] = 0
        full, complete = heuristics.heuristic_search(idx, options)
        full_calls = calls[0]
        assert complete
        assert heuristics.heuristic_solution(idx, options) is not None or full is None
        calls[0] = 0
        late, complete_late = heuristics.heuristic_search(idx, options, deadline=time.perf_counter() - 1.0)
        assert calls[0] <= 2  # the first variant only: one assignment, and one more after mending
        assert calls[0] <= full_calls
        if full_calls > 2:
            assert not complete_late
        if late is not None:
            assert check_solution(idx, options, late) == []
            if full is not None:  # the full search keeps the best variant, the first among them
                a = solution_terms(idx, options, late)["objective"]
                b = solution_terms(idx, options, full)["objective"]
                assert (b >= a - TOL) if objective == "max_keys" else (b <= a + TOL)


@pytest.mark.parametrize("objective", ["max_keys", "min_cost"])
def test_solve_with_no_time_left_starts_no_milp_and_keeps_a_valid_bound(objective: str) -> None:
    for data, options, optimum in _instances(objective, n=4):
        with recording_time_limits() as log:
            res = solve_clustering(data, options, SolverOptions(time_limit_s=0.0))
        assert not [r for r in log if isinstance(r, TimeLimitRecord)]  # no solver was started
        if not res.has_solution:
            continue  # the heuristic found none: no solution, honestly
        assert res.info["backend"] == "none (no time left)"
        idx, sol = _solution_of(data, options, res.tables)
        assert check_solution(idx, options, sol) == []
        if objective == "max_keys":
            assert res.objective <= optimum + TOL <= res.bound + 2 * TOL
        else:
            assert res.status is SolveStatus.FEASIBLE
            assert res.objective >= optimum - TOL


@pytest.mark.parametrize(
    ("objective", "budgets"),
    [
        ("max_keys", {"max_masters": 2}),
        ("max_keys", {"max_cost": 5.0}),
        ("min_cost", {"max_masters": 3}),
        ("min_cost", {"max_cost": 6.0}),
    ],
)
def test_budget_fallback_respects_the_budget_and_brackets_the_optimum(objective: str, budgets: dict) -> None:  # type: ignore[type-arg]
    found = 0
    for data, options, optimum in _instances(objective, n=5, **budgets):
        res = budget_fallback(data, options, deadline=time.perf_counter() - 1.0)  # out of time: first steps only
        assert math.isfinite(res.bound)
        if objective == "max_keys":
            assert optimum <= res.bound + TOL  # the bound is valid whether or not a design was found
        if not res.has_solution:
            continue
        found += 1
        idx, sol = _solution_of(data, options, res.tables)
        assert check_solution(idx, options, sol) == []  # budgets included
        trimmed = res.info.get("trimmed_sites", [])
        assert sorted(map(str, res.tables["assignment"]["site"])) == sorted(
            set(map(str, data.sites.index)) - set(trimmed)
        )
        if objective == "max_keys":
            assert res.objective <= optimum + TOL
        elif not trimmed:
            assert res.bound - TOL <= optimum <= res.objective + TOL
    assert found >= 3


def _towns(tmp_path, sizes: list[int]):  # type: ignore[no-untyped-def]
    """One tight town per size (all within reach of each other), towns ~440 km apart."""
    from helpers_net import write_sites_csv

    rows = [(f"T{t}S{i}", 36.0 + 4.0 * t, -100.0 + 0.01 * i) for t, n in enumerate(sizes) for i in range(n)]
    return read_network(write_sites_csv(tmp_path / "towns.csv", rows))


@pytest.mark.parametrize("objective", ["balanced", "max_keys", "min_cost"])
def test_master_budget_without_a_clustering_in_time_gives_the_mended_design(
    tmp_path, monkeypatch, objective: str
) -> None:  # type: ignore[no-untyped-def]
    """A master budget couples the towns; with 0 s the MILP is not started and the greedy (stood in
    for: finds nothing) neither; the mended greedy's clustering within the budget is the design
    (before, the plan failed with 'no solution')."""
    monkeypatch.setattr(heuristics, "heuristic_search", lambda idx, opts, deadline=None: (None, True))
    net = _towns(tmp_path, [3, 6])
    scenario = default_scenario().with_overrides(
        {"access.capacity": 2, "access.objective": objective, "access.max_masters": 3}
    )
    with stage_budget("access", 0.0):
        out, tables = plan_access(net, scenario)
    assert isinstance(out, AccessResult)
    a = out.assignment
    assert a["master"].nunique() <= 3  # within the master budget
    assert (a.groupby("master").size() == 3).all()  # clusters of a master and its 2 slaves
    clustered = set(a["site"])
    assert clustered | set(tables.standalone) == set(net.sites.index.astype(str))
    assert not clustered & set(tables.standalone)
    assert len(clustered) >= 6
    assert math.isfinite(out.solves["access"]["bound"])
    assert "mended greedy" in out.solves["access"]["model"]


def test_master_budget_without_any_heuristic_clustering_says_so(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(heuristics, "heuristic_search", lambda idx, opts, deadline=None: (None, True))
    monkeypatch.setattr(heuristics, "unservable_sites_heuristic", lambda *_a, **_k: None)
    net = _towns(tmp_path, [3, 6])
    scenario = default_scenario().with_overrides(
        {"access.capacity": 2, "access.objective": "max_keys", "access.max_masters": 3}
    )
    with stage_budget("access", 0.0), pytest.raises(InfeasibleDesignError, match="master/cost budget"):
        plan_access(net, scenario)


def _brute_force_tables(net, scenario):  # type: ignore[no-untyped-def]
    """Pairs by haversine distance over every ordered pair, active sites by a fixed point over sets."""
    acc = scenario.access
    ids = [str(s) for s in net.sites.index]
    lat = np.radians(net.sites["lat"].to_numpy(float))
    lon = np.radians(net.sites["lon"].to_numpy(float))
    pairs = {}
    for i in range(len(ids)):
        for j in range(len(ids)):
            if i == j:
                continue
            h = (
                math.sin((lat[j] - lat[i]) / 2) ** 2
                + math.cos(lat[i]) * math.cos(lat[j]) * math.sin((lon[j] - lon[i]) / 2) ** 2
            )
            d = 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h)) * scenario.network.route_factor
            if d <= acc.reach_km:
                pairs[(ids[i], ids[j])] = d
    active = set(ids)
    while True:
        deg: dict[str, int] = {}
        for s, m in pairs:
            if s in active and m in active:
                deg[m] = deg.get(m, 0) + 1
        masters = {m for m, k in deg.items() if k >= acc.min_slaves}
        slaves = {s for s, m in pairs if s in active and m in masters}
        if masters | slaves == active:
            break
        active = masters | slaves
    return sorted(active), {p: d for p, d in pairs.items() if p[0] in active and p[1] in active}


@pytest.mark.parametrize("min_slaves", [2, 3])
def test_access_tables_equal_a_brute_force_construction(tmp_path, min_slaves: int) -> None:
    from helpers_net import random_sites, write_sites_csv

    net = read_network(write_sites_csv(tmp_path / "s.csv", random_sites(60, seed=min_slaves, span_deg=3.0)))
    scenario = default_scenario().with_overrides({"access.min_slaves": min_slaves, "access.reach_km": 60.0})
    tables = build_access_tables(net, scenario)
    active, pairs = _brute_force_tables(net, scenario)
    assert list(tables.sites.index) == active
    assert tables.standalone == sorted(set(map(str, net.sites.index)) - set(active))
    got = {(s, m): d for s, m, d in tables.pairs[["site", "master", "distance_km"]].itertuples(index=False)}
    assert set(got) == set(pairs)
    assert all(abs(got[p] - pairs[p]) <= 1e-6 * max(1.0, pairs[p]) for p in pairs)
    keys = list(zip(tables.pairs["site"], tables.pairs["master"], strict=True))
    assert keys == sorted(keys)  # sorted by (site, master)
    alpha = scenario.physics.alpha_db_per_km
    assert np.allclose(tables.pairs["loss_db"], tables.pairs["distance_km"] * alpha)


def test_access_result_fields_are_its_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    net = _towns(tmp_path, [3, 6, 2])
    scenario = default_scenario().with_overrides({"access.capacity": 2, "access.objective": "max_keys"})
    out, tables = plan_access(net, scenario)
    assert out.assignment is out.tables["assignment"]
    assert out.clusters is out.tables["clusters"]
    assert out.standalone == tables.standalone == ["T2S0", "T2S1"]  # a town of 2: too few neighbours
    assert out.standalone_reasons["too_few_neighbours_or_unservable"] == ["T2S0", "T2S1"]
    assert sorted(out.masters) == sorted(out.assignment.loc[out.assignment["role"] == "master", "site"])
    assert len(out.masters) == 3
