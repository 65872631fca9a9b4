"""A reach component without a clustering in time does not fail the plan, and work on components is
not redone across the access stage's attempts.

* With ``unsolved="standalone"`` a component that neither the MILP (given 0 s) nor the heuristic
  clusters is left out: the other components are clustered optimally (checked against exhaustive
  enumeration) and the bound still bounds the whole instance.
* ``plan_access`` with a 0 s budget and a heuristic that finds nothing: every site is standalone
  with its reason and the stage returns; with the heuristic working it clusters every component.
* A plan whose first attempt finds an infeasible component (dropped sites, second attempt) runs the
  heuristic and the MILP of every other component once (solver calls counted).
* A component whose MILP finds nothing but which the elastic model finds feasible gets the elastic
  model's clustering on the next attempt instead of being left out.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

import solvers.clustering as clustering
import solvers.clustering_solve as clustering_solve
import solvers.heuristics as heuristics
from planner.io.readers import read_network
from planner.model.scenario import default_scenario
from planner.stages.access import plan_access
from solvers.base import SolveResult, SolverOptions, SolveStatus, stage_budget
from solvers.clustering import (
    ClusteringData,
    ClusteringOptions,
    check_solution,
    component_cache,
    fallback_bound,
    prepare,
    solve_clustering_by_component,
)
from tests.oracles.enumerate import enumerate_clustering_data, random_clustering_instance


def _stand_in_heuristic(monkeypatch, fn) -> None:  # type: ignore[no-untyped-def]
    """Let ``fn(idx, options)`` (a clustering or None) stand in for the heuristic everywhere."""
    monkeypatch.setattr(heuristics, "heuristic_search", lambda idx, opts, deadline=None: (fn(idx, opts), True))


def _stand_in_solve(monkeypatch, fn) -> None:  # type: ignore[no-untyped-def]
    """Let ``fn`` stand in for :func:`solvers.clustering.solve_clustering` (whole and per component)."""
    monkeypatch.setattr(clustering, "solve_clustering", fn)
    monkeypatch.setattr(clustering_solve, "solve_clustering", fn)


TOL = 1e-6


def _parts(objective: str) -> tuple[list[ClusteringData], ClusteringOptions, list[float]]:
    """Three far-apart random instances that each cluster, with their enumerated optima."""
    options = ClusteringOptions(objective=objective, loss_weight=0.01, backend="highspy")  # type: ignore[arg-type]
    parts: list[ClusteringData] = []
    optima: list[float] = []
    seed = 0
    while len(parts) < 3:
        rng = np.random.default_rng(seed)
        sites, cands, pairs = random_clustering_instance(rng, n_sites=7, reach_km=40.0)
        ren = {s: f"p{seed}_{s}" for s in cands.index}
        part = ClusteringData(
            sites.rename(index=ren),
            cands.rename(index=ren),
            pairs.assign(site=pairs["site"].map(ren), candidate=pairs["candidate"].map(ren)),
        )
        seed += 1
        ref = enumerate_clustering_data(part, options)
        if ref is None:
            continue
        parts.append(part)
        optima.append(float(ref.objective))
    return parts, options, optima


def _whole(parts: list[ClusteringData]) -> ClusteringData:
    return ClusteringData(
        pd.concat([p.sites for p in parts]),
        pd.concat([p.candidates for p in parts]),
        pd.concat([p.pairs for p in parts], ignore_index=True),
    )


@pytest.mark.parametrize("objective", ["max_keys", "min_cost"])
def test_component_without_clustering_in_zero_time_is_left_standalone(objective: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    parts, options, optima = _parts(objective)
    hopeless = parts[0]
    hopeless_ids = {str(s) for s in hopeless.sites.index}
    real = heuristics.heuristic_search

    def heuristic(idx, opts):  # type: ignore[no-untyped-def]
        # the heuristic cannot cluster the first component (as on components it fails on in practice)
        return None if set(map(str, idx.site_ids)) == hopeless_ids else real(idx, opts)[0]

    _stand_in_heuristic(monkeypatch, heuristic)
    monkeypatch.setattr(heuristics, "unservable_sites_heuristic", lambda *_a, **_k: None)  # nor the mended greedy
    data = _whole(parts)
    stop = solve_clustering_by_component(data, options, SolverOptions(time_limit_s=0.0))
    assert not stop.has_solution  # by default the search stops there, naming the component
    assert set(stop.info["component_sites"]) == hopeless_ids  # type: ignore[arg-type]
    res = solve_clustering_by_component(data, options, SolverOptions(time_limit_s=0.0), unsolved="standalone")
    assert res.has_solution
    assert set(res.info["standalone_sites"]) == hopeless_ids  # type: ignore[arg-type]
    rest = _whole(parts[1:])
    assert sorted(res.tables["assignment"]["site"]) == sorted(rest.sites.index)
    idx = prepare(rest, options)
    owner = res.tables["assignment"].set_index("site")["master"].reindex(idx.site_ids)
    cand_pos = {c: i for i, c in enumerate(idx.cand_ids)}
    sol = clustering.ClusteringSolution(
        np.isin(idx.cand_ids, res.tables["clusters"]["master"].to_numpy()),
        np.array([cand_pos[m] for m in owner], dtype=np.int64),
    )
    assert check_solution(idx, options, sol) == []
    rest_opt = sum(optima[1:])
    assert res.status is SolveStatus.FEASIBLE
    if objective == "max_keys":  # the bound covers the left-out component too: it bounds the whole optimum
        assert res.objective <= rest_opt + TOL
        assert sum(optima) <= res.bound + TOL
        assert fallback_bound(prepare(hopeless, options), options) >= optima[0] - TOL
    else:  # the design's own problem (left-out sites cost nothing): a lower bound of the rest
        assert res.bound - TOL <= rest_opt <= res.objective + TOL


def _towns(tmp_path, sizes: list[int]):  # type: ignore[no-untyped-def]
    """One tight town per size (all within reach of each other), towns ~440 km apart."""
    from helpers_net import write_sites_csv

    rows = [(f"T{t}S{i}", 36.0 + 4.0 * t, -100.0 + 0.01 * i) for t, n in enumerate(sizes) for i in range(n)]
    return read_network(write_sites_csv(tmp_path / "towns.csv", rows))


def _per_component(monkeypatch):  # type: ignore[no-untyped-def]
    import planner.stages.access_pareto as pareto

    monkeypatch.setattr(clustering, "COMPONENT_SOLVE_MIN_SITES", 1)
    monkeypatch.setattr(pareto, "COMPONENT_SOLVE_MIN_SITES", 1)


@pytest.mark.parametrize("objective", ["balanced", "max_keys"])
@pytest.mark.parametrize("mended", [False, True])
def test_zero_budget_and_no_heuristic_leaves_sites_standalone_with_reason(
    tmp_path, monkeypatch, objective: str, mended: bool
) -> None:  # type: ignore[no-untyped-def]
    """No time and no greedy clustering: the mended greedy clusters the towns (both can be clustered
    whole); without it every site is standalone, with its reason."""
    _per_component(monkeypatch)
    _stand_in_heuristic(monkeypatch, lambda idx, opts: None)
    if not mended:
        monkeypatch.setattr(heuristics, "unservable_sites_heuristic", lambda *_a, **_k: None)
    net = _towns(tmp_path, [3, 6])
    scenario = default_scenario().with_overrides({"access.capacity": 2, "access.objective": objective})
    with stage_budget("access", 0.0):
        out, tables = plan_access(net, scenario)
    if mended:
        assert tables.standalone == []
        a = out.tables["assignment"]
        assert sorted(a["site"]) == sorted(net.sites.index.astype(str))
        assert (a.groupby("master").size() == 3).all()
        assert "heuristic" in out.solves["access"]["model"] or "mended greedy" in out.solves["access"]["model"]
        return
    assert sorted(tables.standalone) == sorted(net.sites.index.astype(str))
    assert out.tables["assignment"].empty
    assert any("within the stage's time" in n for n in out.notes)
    assert out.metrics["access_standalone"]["no_clustering_in_time"] == 9


@pytest.mark.parametrize("objective", ["balanced", "max_keys"])
def test_zero_budget_with_heuristic_clusters_every_component(tmp_path, monkeypatch, objective: str) -> None:  # type: ignore[no-untyped-def]
    _per_component(monkeypatch)
    net = _towns(tmp_path, [3, 6])
    scenario = default_scenario().with_overrides({"access.capacity": 2, "access.objective": objective})
    with stage_budget("access", 0.0):
        out, tables = plan_access(net, scenario)
    assert tables.standalone == []
    a = out.tables["assignment"]
    assert sorted(a["site"]) == sorted(net.sites.index.astype(str))
    assert (a.groupby("master").size() == 3).all()
    assert np.isfinite(out.solves["access"]["bound"])


@pytest.mark.parametrize("objective", ["balanced", "max_keys"])
def test_attempts_do_not_redo_solved_components(tmp_path, monkeypatch, objective: str) -> None:  # type: ignore[no-untyped-def]
    """The town of 4 is infeasible (clusters of exactly 3): the first attempt raises, 1 site is
    dropped, the second attempt solves again. Every other town's heuristic and MILP run once per
    objective solved (balanced: max_keys and min_cost), not once per attempt."""
    _per_component(monkeypatch)
    heur_calls: Counter[tuple[frozenset[str], str]] = Counter()
    milp_calls: Counter[tuple[frozenset[str], str]] = Counter()
    real_h, real_s = heuristics.heuristic_search, clustering.solve_clustering

    def heuristic(idx, opts):  # type: ignore[no-untyped-def]
        heur_calls[(frozenset(map(str, idx.site_ids)), repr(opts))] += 1
        return real_h(idx, opts)[0]

    def solve(data, opts, sopts, **kw):  # type: ignore[no-untyped-def]
        milp_calls[(frozenset(map(str, data.sites.index)), repr(opts))] += 1
        return real_s(data, opts, sopts, **kw)

    _stand_in_heuristic(monkeypatch, heuristic)
    _stand_in_solve(monkeypatch, solve)
    net = _towns(tmp_path, [3, 4, 6])
    scenario = default_scenario().with_overrides({"access.capacity": 2, "access.objective": objective})
    out, tables = plan_access(net, scenario)
    assert len(tables.standalone) == 1 and tables.standalone[0].startswith("T1")
    for town, n in ((0, 3), (2, 6)):
        ids = frozenset(f"T{town}S{i}" for i in range(n))
        h = [c for (s, _o), c in heur_calls.items() if s == ids]
        m = [c for (s, _o), c in milp_calls.items() if s == ids]
        assert h and all(c == 1 for c in h), heur_calls
        assert m and all(c == 1 for c in m), milp_calls
    assert sorted(out.tables["assignment"]["site"]) == sorted(set(net.sites.index.astype(str)) - set(tables.standalone))


def test_elastic_clustering_is_used_when_milp_and_heuristic_find_nothing(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The first MILP of every component finds nothing and the heuristic never does: the elastic
    model then finds the components feasible, and the next attempt takes its clusterings (no site
    standalone)."""
    _per_component(monkeypatch)
    _stand_in_heuristic(monkeypatch, lambda idx, opts: None)
    real_s = clustering.solve_clustering
    seen: Counter[frozenset[str]] = Counter()

    def solve(data, opts, sopts, **kw):  # type: ignore[no-untyped-def]
        key = frozenset(map(str, data.sites.index))
        seen[key] += 1
        if kw.get("known_heuristic") is None or kw["known_heuristic"][0] is None:
            return SolveResult(status=SolveStatus.TIME_LIMIT_NO_SOLUTION)
        return real_s(data, opts, sopts, **kw)

    _stand_in_solve(monkeypatch, solve)
    net = _towns(tmp_path, [3, 6])
    scenario = default_scenario().with_overrides({"access.capacity": 2, "access.objective": "max_keys"})
    with component_cache():  # (plan_access opens its own; nesting is allowed)
        out, tables = plan_access(net, scenario)
    assert tables.standalone == []
    a = out.tables["assignment"]
    assert sorted(a["site"]) == sorted(net.sites.index.astype(str))
    assert (a.groupby("master").size() == 3).all()


def test_mended_greedy_reports_a_valid_clustering_of_the_sites_it_keeps() -> None:
    """A town of 7 sites all within reach of each other, clusters of exactly 3: the sites the
    mended greedy keeps come with a clustering that satisfies every constraint on the instance
    without the left-out sites."""
    import itertools

    from solvers.clustering import restrict_to_sites
    from solvers.heuristics import unservable_sites_heuristic

    ids = [f"s{i}" for i in range(7)]
    rows = list(itertools.permutations(ids, 2))
    data = ClusteringData(
        sites=pd.DataFrame({"demand": 1.0}, index=pd.Index(ids, name="site")),
        candidates=pd.DataFrame({"cost": 1.0, "capacity": 2}, index=pd.Index(ids, name="master")),
        pairs=pd.DataFrame(rows, columns=["site", "candidate"]).assign(distance_km=1.0, loss_db=0.1),
    )
    options = ClusteringOptions(min_slaves=2)
    idx = prepare(data, options)
    kept: list[dict[str, str]] = []
    out = unservable_sites_heuristic(idx, options, kept=kept)
    assert out is not None and len(out) >= 1  # 7 sites cannot form clusters of exactly 3
    assert len(kept) == 1
    rest = restrict_to_sites(data, [s for i, s in enumerate(ids) if i not in set(out)])
    rest_idx = prepare(rest, options)
    cache = clustering.ComponentCache(owner=kept[0])
    sol = cache.known_clustering(rest_idx, options)
    assert sol is not None and check_solution(rest_idx, options, sol) == []
    assert set(kept[0]) == set(map(str, rest_idx.site_ids))
