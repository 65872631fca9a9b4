"""Clustering MILP: equal to exhaustive enumeration, invariants, diagnosis of infeasible settings."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import physics
from solvers.base import SolverOptions, SolveStatus
from solvers.clustering import (
    FAMILIES,
    ClusteringData,
    ClusteringInfeasible,
    ClusteringInputError,
    ClusteringOptions,
    build_clustering_model,
    integral_cost_bound,
    keys_upper_bound,
    prepare,
    solve_clustering,
)
from tests.oracles.enumerate import enumerate_clustering_data, random_clustering_instance

EXACT = SolverOptions(mip_gap=1e-9, time_limit_s=60)


def _instance(seed: int, **kw: object) -> ClusteringData:
    rng = np.random.default_rng(seed)
    sites, cands, pairs = random_clustering_instance(rng, **kw)  # type: ignore[arg-type]
    return ClusteringData(sites, cands, pairs)


CASES = [
    # seed, objective, options
    (0, "max_keys", {"max_masters": 2}),
    (1, "max_keys", {"max_masters": 3, "r_mdi": 0.3}),
    (2, "max_keys", {"r_mdi": 2.0, "memory_slave": 3.0}),
    (3, "max_keys", {"max_cost": 6.0, "min_slaves": 3}),
    (4, "min_cost", {}),
    (5, "min_cost", {"min_cluster_keys": 3.0, "r_mdi": 1.0}),
    (6, "min_cost", {"max_masters": 3}),
    (7, "max_keys", {"max_masters": 2, "min_cluster_keys": 2.0}),
    (8, "min_cost", {"min_slaves": 2}),
    (9, "max_keys", {}),
]


@pytest.mark.parametrize("backend", ["pyomo", "highspy"])
@pytest.mark.parametrize(("seed", "objective", "extra"), CASES)
def test_milp_equals_enumeration(seed: int, objective: str, extra: dict, backend: str) -> None:
    data = _instance(seed, n_sites=7 + seed % 3, n_extra=seed % 2, p_fixed=0.1 * (seed % 2), p_forbidden=0.1)
    options = ClusteringOptions(objective=objective, loss_weight=0.01, backend=backend, **extra)  # type: ignore[arg-type]
    ref = enumerate_clustering_data(data, options)
    if ref is None:
        with pytest.raises(ClusteringInfeasible) as err:
            solve_clustering(data, options, EXACT)
        assert err.value.conflicts and set(err.value.conflicts) <= set(FAMILIES)
        return
    res = solve_clustering(data, options, EXACT)
    assert res.status is SolveStatus.OPTIMAL
    assert res.objective == pytest.approx(ref.objective, abs=1e-6)
    assert res.info["keys_per_attempt"] == pytest.approx(ref.keys_per_attempt, abs=1e-9) or objective == "min_cost"
    if objective == "min_cost":
        assert res.info["master_cost"] == pytest.approx(ref.cost, abs=1e-9)


def test_enumeration_cases_are_not_all_trivial() -> None:
    """The parametrised comparison covers feasible instances of both objectives."""
    feasible = {"max_keys": 0, "min_cost": 0}
    for seed, objective, extra in CASES:
        data = _instance(seed, n_sites=7 + seed % 3, n_extra=seed % 2, p_fixed=0.1 * (seed % 2), p_forbidden=0.1)
        opts = ClusteringOptions(objective=objective, loss_weight=0.01, **extra)  # type: ignore[arg-type]
        if enumerate_clustering_data(data, opts) is not None:
            feasible[objective] += 1
    assert feasible["max_keys"] >= 3 and feasible["min_cost"] >= 3


def _check_invariants(data: ClusteringData, options: ClusteringOptions, res) -> None:  # type: ignore[no-untyped-def]
    a = res.tables["assignment"]
    cl = res.tables["clusters"]
    assert sorted(a["site"]) == sorted(data.sites.index)  # every site exactly once
    assert not a["site"].duplicated().any()
    masters = set(cl["master"])
    assert set(a["master"]) <= masters
    reach = set(zip(data.pairs["site"], data.pairs["candidate"], strict=True))
    for row in a.itertuples():
        if row.role == "slave":
            assert (row.site, row.master) in reach
            assert row.site not in masters  # a master site is never also a slave
        else:
            assert row.site == row.master and row.distance_km == 0
    sizes = a[a["role"] == "slave"].groupby("master").size().reindex(cl["master"]).fillna(0)
    assert (sizes.to_numpy() == cl["n_slaves"].to_numpy()).all()
    cap = data.candidates.loc[cl["master"], "capacity"].to_numpy()
    assert (cl["n_slaves"] >= options.min_slaves).all() and (cl["n_slaves"].to_numpy() <= cap).all()
    assert (cl["ekert_pairs"] == cl["n_slaves"] // 2).all()
    eq6 = options.r_mdi * options.memory_master + options.r_ekr * options.memory_slave * (cl["n_slaves"] // 2)
    assert np.allclose(cl["keys_per_attempt"], eq6)
    if options.max_masters is not None:
        assert len(cl) <= options.max_masters
    if options.max_cost is not None:
        assert data.candidates.loc[cl["master"], "cost"].sum() <= options.max_cost + 1e-9
    fixed = data.candidates.index[data.candidates["fixed"].astype(bool)]
    forbidden = data.candidates.index[data.candidates["forbidden"].astype(bool)]
    assert set(fixed) <= masters and not (set(forbidden) & masters)


INVARIANT_EXAMPLES = 25


def test_invariants_hold_on_random_instances() -> None:
    """Every solution satisfies the invariants; infeasible draws name their conflicts. About three draws
    in four are feasible (measured on 80 uniform draws: 0.76); at least a third must be, or the property
    checks little. The draws are derandomized so the count does not vary from run to run."""
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=INVARIANT_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        seed=st.integers(0, 10_000),
        n_sites=st.integers(4, 14),
        n_extra=st.integers(0, 3),
        objective=st.sampled_from(["max_keys", "min_cost"]),
        budget=st.one_of(st.none(), st.integers(1, 5)),
    )
    def invariants(seed: int, n_sites: int, n_extra: int, objective: str, budget: int | None) -> None:
        data = _instance(seed, n_sites=n_sites, n_extra=n_extra, p_fixed=0.05, p_forbidden=0.1, capacity=(2, 8))
        options = ClusteringOptions(objective=objective, max_masters=budget)  # type: ignore[arg-type]
        try:
            res = solve_clustering(data, options, SolverOptions(time_limit_s=20))
        except ClusteringInfeasible as exc:
            assert exc.conflicts and set(exc.conflicts) <= set(FAMILIES)
            outcomes["infeasible"] += 1
            return
        assert res.has_solution
        _check_invariants(data, options, res)
        outcomes["feasible"] += 1

    invariants()
    total = sum(outcomes.values())
    assert total >= INVARIANT_EXAMPLES and outcomes["feasible"] >= total / 3, dict(outcomes)


def test_result_reports_sizes_and_matches_physics_module() -> None:
    data = _instance(3, n_sites=12, n_extra=2, capacity=(3, 6))
    options = ClusteringOptions(r_mdi=0.7, r_ekr=0.4, memory_master=5, memory_slave=3)
    res = solve_clustering(data, options, EXACT)
    for key in ("n_variables", "n_constraints", "n_binaries"):
        assert res.info[key] > 0
    assert np.isfinite(res.build_time_s) and res.gap == pytest.approx(0.0, abs=1e-6)
    _check_invariants(data, options, res)
    cl = res.tables["clusters"]
    expect = physics.cluster_keys_per_attempt(
        cl["n_slaves"].to_numpy(), r_mdi=0.7, r_ekr=0.4, memory_master=5, memory_slave=3
    )
    assert np.allclose(cl["keys_per_attempt"].to_numpy(), expect)


def test_pyomo_model_has_named_sparse_families() -> None:
    data = _instance(1, n_sites=9)
    options = ClusteringOptions(max_masters=3, max_cost=10.0, min_cluster_keys=2.0, strong_linking=True)
    idx = prepare(data, options)
    m = build_clustering_model(idx, options)
    names = {c.local_name for c in m.component_objects(ctype=__import__("pyomo.environ").environ.Constraint)}
    assert {"assign-once", "assign-open", "cluster-size-min", "cluster-size-max", "ekert-floor",
            "master-budget", "cost-budget", "cluster-key-target"} <= names  # fmt: skip
    assert len(m.x) == len(idx.pair_site) < len(data.sites) * len(data.candidates)


def _line(n: int, spacing_km: float, reach_km: float) -> ClusteringData:
    ids = [f"s{i}" for i in range(n)]
    sites = pd.DataFrame({"demand": 1.0}, index=ids)
    cands = pd.DataFrame({"cost": 1.0, "capacity": 5, "fixed": False, "forbidden": False}, index=ids)
    rows = [(a, b, abs(i - j) * spacing_km, 0.2 * abs(i - j) * spacing_km)
            for i, a in enumerate(ids) for j, b in enumerate(ids)
            if i != j and abs(i - j) * spacing_km <= reach_km]  # fmt: skip
    return ClusteringData(sites, cands, pd.DataFrame(rows, columns=["site", "candidate", "distance_km", "loss_db"]))


def test_site_out_of_reach_is_named() -> None:
    data = _line(6, 10.0, 25.0)
    far = pd.DataFrame({"demand": [1.0]}, index=["lonely"])
    data = ClusteringData(pd.concat([data.sites, far]), data.candidates, data.pairs)
    with pytest.raises(ClusteringInfeasible) as err:
        solve_clustering(data, ClusteringOptions())
    assert err.value.conflicts == ["assign-once"]
    assert "lonely" in str(err.value)


def test_capacity_one_conflicts_with_min_slaves() -> None:
    data = _line(6, 10.0, 25.0)
    cands = data.candidates.assign(capacity=1)
    with pytest.raises(ClusteringInfeasible) as err:
        solve_clustering(ClusteringData(data.sites, cands, data.pairs), ClusteringOptions())
    assert {"cluster-size-min", "cluster-size-max"} <= set(err.value.conflicts)


def test_master_budget_times_capacity_below_sites() -> None:
    data = _line(12, 1.0, 30.0)
    with pytest.raises(ClusteringInfeasible) as err:
        solve_clustering(data, ClusteringOptions(max_masters=1))
    assert {"master-budget", "cluster-size-max"} <= set(err.value.conflicts)


def test_elastic_diagnosis_names_families_when_cheap_checks_pass() -> None:
    """Fixed extra master F reaches only a, b; c, d reach each other and a, b; budget 2.

    Cheap checks pass (F serves 2, c could serve 3), but F must take a and b, and then c (or d)
    would be a master with one slave: infeasible. The elastic relaxation names the families."""
    sites = pd.DataFrame({"demand": 1.0}, index=["a", "b", "c", "d"])
    cands = pd.DataFrame(
        {
            "cost": 1.0,
            "capacity": 5,
            "fixed": [False, False, False, False, True],
            "forbidden": [True, True, False, False, False],
        },
        index=["a", "b", "c", "d", "F"],
    )
    rows = [
        ("a", "F"),
        ("b", "F"),
        ("a", "c"),
        ("b", "c"),
        ("d", "c"),
        ("a", "d"),
        ("b", "d"),
        ("c", "d"),
    ]
    pairs = pd.DataFrame(
        [(s, c, 10.0, 2.0) for s, c in rows],
        columns=["site", "candidate", "distance_km", "loss_db"],
    )
    data = ClusteringData(sites, cands, pairs)
    with pytest.raises(ClusteringInfeasible) as err:
        solve_clustering(data, ClusteringOptions(max_masters=2))
    assert "MILP is infeasible" in str(err.value)
    assert err.value.conflicts and set(err.value.conflicts) <= set(FAMILIES)
    # with one more master allowed the same data is feasible
    res = solve_clustering(data, ClusteringOptions(max_masters=3, min_slaves=1))
    assert res.has_solution


def test_bad_tables_list_every_problem() -> None:
    data = _line(5, 10.0, 25.0)
    pairs = pd.concat(
        [
            data.pairs,
            pd.DataFrame([{"site": "zz", "candidate": "s0", "distance_km": -1.0, "loss_db": 0.0}]),
        ]
    )
    sites = pd.concat([data.sites, data.sites.iloc[:1]])
    with pytest.raises(ClusteringInputError) as err:
        solve_clustering(ClusteringData(sites, data.candidates, pairs), ClusteringOptions())
    assert any("duplicate site" in p for p in err.value.problems)
    with pytest.raises(ClusteringInputError) as err:
        solve_clustering(ClusteringData(data.sites, data.candidates, pairs), ClusteringOptions())
    assert any("unknown site" in p for p in err.value.problems)
    assert any("distance_km" in p for p in err.value.problems)


def test_backends_agree_and_warm_start_does_not_change_optimum() -> None:
    data = _instance(11, n_sites=14, n_extra=2, side_km=60.0, capacity=(3, 7))
    base = ClusteringOptions(max_masters=4, loss_weight=1e-3)
    objs = []
    for backend in ("pyomo", "highspy"):
        for warm in (True, False):
            opts = dataclasses.replace(base, backend=backend, warm_start=warm)  # type: ignore[arg-type]
            objs.append(solve_clustering(data, opts, EXACT).objective)
    assert np.allclose(objs, objs[0], atol=1e-6)


@pytest.mark.parametrize(("seed", "objective", "extra"), [c for c in CASES if c[1] == "max_keys"])
def test_counting_bound_is_valid(seed: int, objective: str, extra: dict) -> None:
    data = _instance(seed, n_sites=7 + seed % 3, n_extra=seed % 2, p_fixed=0.1 * (seed % 2), p_forbidden=0.1)
    options = ClusteringOptions(objective="max_keys", loss_weight=0.0, **extra)
    ref = enumerate_clustering_data(data, options)
    if ref is not None:
        assert keys_upper_bound(prepare(data, options), options) >= ref.keys_per_attempt - 1e-9


def test_bound_shortcut_returns_the_milp_optimum() -> None:
    """Line of 9 sites, budget 3, no loss term: the heuristic meets the counting bound
    (3 masters, 6 slaves in even clusters), so the MILP is skipped with the same optimum."""
    data = _line(9, 10.0, 30.0)
    fast = solve_clustering(data, ClusteringOptions(max_masters=3, loss_weight=0.0), EXACT)
    assert fast.status is SolveStatus.OPTIMAL and "counting bound" in str(fast.info["source"])
    full = solve_clustering(data, ClusteringOptions(max_masters=3, loss_weight=0.0, bound_shortcut=False), EXACT)
    assert full.info["source"] == "milp"
    assert fast.objective == pytest.approx(full.objective) == pytest.approx(fast.bound)
    _check_invariants(data, ClusteringOptions(max_masters=3), fast)


@pytest.mark.parametrize(("seed", "objective", "extra"), [c for c in CASES if c[1] == "min_cost"])
def test_integral_cost_rounding_keeps_the_bound_valid(seed: int, objective: str, extra: dict) -> None:
    data = _instance(seed, n_sites=7 + seed % 3, n_extra=seed % 2, p_fixed=0.1 * (seed % 2), p_forbidden=0.1)
    options = ClusteringOptions(objective="min_cost", loss_weight=0.01, **extra)
    ref = enumerate_clustering_data(data, options)
    if ref is None:
        return
    idx = prepare(data, options)
    # any bound just below the optimum, rounded, stays <= the optimum
    for slack in (1e-6, 0.3, 0.99):
        assert integral_cost_bound(idx, ref.objective - slack) <= ref.objective + 1e-9
