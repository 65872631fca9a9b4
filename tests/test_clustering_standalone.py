"""Sites that no cluster can serve are found by the elastic relaxation and left standalone."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from planner.io.readers import read_network
from planner.model.scenario import default_scenario
from planner.pipeline import plan_access
from solvers.clustering import (
    ClusteringData,
    ClusteringInfeasible,
    ClusteringOptions,
    solve_clustering,
    unservable_sites,
)


def _chain(n: int) -> ClusteringData:
    """n sites in a line where only neighbours are within reach."""
    ids = [f"s{i}" for i in range(n)]
    rows = []
    for a, b in itertools.pairwise(range(n)):
        rows += [(ids[a], ids[b]), (ids[b], ids[a])]
    pairs = pd.DataFrame(rows, columns=["site", "candidate"]).assign(distance_km=10.0, loss_db=2.0)
    sites = pd.DataFrame({"demand": 1.0}, index=pd.Index(ids, name="site"))
    cands = pd.DataFrame({"cost": 1.0, "capacity": 8}, index=pd.Index(ids, name="master"))
    return ClusteringData(sites=sites, candidates=cands, pairs=pairs)


def _coverable(n: int) -> int:
    """Brute force: the most sites of an n-chain that clusters (master + 2 neighbours) can cover."""
    best = 0
    for masters in itertools.product([0, 1], repeat=n):
        covered = set()
        ok = True
        for i, is_m in enumerate(masters):
            if not is_m:
                continue
            nbrs = [j for j in (i - 1, i + 1) if 0 <= j < n and not masters[j]]
            if len(nbrs) < 2 or covered & set(nbrs):
                ok = False
                break
            covered |= {i, *nbrs}
        if ok:
            best = max(best, len(covered))
    return best


@pytest.mark.parametrize("n", [4, 5, 7])
def test_fewest_unservable_sites_match_brute_force(n: int) -> None:
    data = _chain(n)
    options = ClusteringOptions()
    with pytest.raises(ClusteringInfeasible):
        solve_clustering(data, options)
    left = unservable_sites(data, options)
    assert left is not None and len(left) == n - _coverable(n)
    keep = [s for s in data.sites.index if s not in left]
    reduced = ClusteringData(
        sites=data.sites.loc[keep],
        candidates=data.candidates.loc[keep],
        pairs=data.pairs[data.pairs["site"].isin(keep) & data.pairs["candidate"].isin(keep)],
    )
    assert solve_clustering(reduced, options).has_solution


def test_feasible_model_has_no_unservable_sites() -> None:
    assert unservable_sites(_chain(3), ClusteringOptions()) == []


def test_pipeline_leaves_unservable_sites_standalone(datasets_dir) -> None:  # type: ignore[no-untyped-def]
    """Uninett2010 at 80 km reach: one site fits no cluster; the plan still succeeds and names it."""
    net = read_network(datasets_dir / "topology-zoo" / "Uninett2010.graphml")
    out, tables = plan_access(net, default_scenario())
    a = out.tables["assignment"]
    assert set(a["site"]).isdisjoint(tables.standalone)
    assert len(a) + len(tables.standalone) == len(net.sites)
    assert any("standalone" in n for n in out.notes)


def _chains(lengths: list[int]) -> ClusteringData:
    """Several separate chains (separate reach components) in one instance."""
    parts = []
    for c, n in enumerate(lengths):
        d = _chain(n)
        ren = {s: f"c{c}{s}" for s in d.sites.index}
        parts.append(
            ClusteringData(
                sites=d.sites.rename(index=ren),
                candidates=d.candidates.rename(index=ren),
                pairs=d.pairs.assign(site=d.pairs["site"].map(ren), candidate=d.pairs["candidate"].map(ren)),
            )
        )
    return ClusteringData(
        sites=pd.concat([p.sites for p in parts]),
        candidates=pd.concat([p.candidates for p in parts]),
        pairs=pd.concat([p.pairs for p in parts], ignore_index=True),
    )


@pytest.mark.parametrize("lengths", [[4, 3], [4, 5, 7], [3, 6, 4, 8], [2, 3]])
def test_component_search_leaves_out_as_few_as_brute_force(lengths: list[int]) -> None:
    from solvers.clustering import unservable_sites_by_component

    data = _chains(lengths)
    options = ClusteringOptions(min_slaves=2)
    left = unservable_sites_by_component(data, options)
    assert left is not None
    assert len(left) == sum(n - _coverable(n) for n in lengths)  # brute force per chain
    rest = set(data.sites.index) - set(left)
    sub = ClusteringData(
        sites=data.sites.loc[sorted(rest)],
        candidates=data.candidates.loc[sorted(rest)],
        pairs=data.pairs[data.pairs["site"].isin(rest) & data.pairs["candidate"].isin(rest)],
    )
    assert solve_clustering(sub, options).has_solution  # what is left clusters completely
    # the same count as the whole-model elastic search
    assert len(left) == len(unservable_sites(data, options) or [])


@pytest.mark.parametrize("objective", ["max_keys", "min_cost"])
def test_solving_per_component_equals_the_whole_model(objective: str) -> None:
    """Without budgets the per-component solve reaches the whole model's optimum (keys, masters)."""
    from solvers.base import SolverOptions
    from solvers.clustering import solve_clustering_by_component

    data = _chains([3, 5, 3, 6])  # then drop the unservable sites, so that every component clusters
    keep = set(data.sites.index) - set(unservable_sites(data, ClusteringOptions()) or [])
    data = ClusteringData(
        sites=data.sites.loc[sorted(keep)],
        candidates=data.candidates.loc[sorted(keep)],
        pairs=data.pairs[data.pairs["site"].isin(keep) & data.pairs["candidate"].isin(keep)],
    )
    options = ClusteringOptions(objective=objective, loss_weight=0.0)  # type: ignore[arg-type]
    exact = SolverOptions(mip_gap=1e-9, time_limit_s=60)
    whole = solve_clustering(data, options, exact)
    parts = solve_clustering_by_component(data, options, exact)
    assert parts.info["n_components"] > 1
    assert parts.objective == pytest.approx(whole.objective)
    assert parts.info["keys_per_attempt"] == pytest.approx(whole.info["keys_per_attempt"])
    assert sorted(parts.tables["assignment"]["site"]) == sorted(data.sites.index)


# ------------------------------------------------- one infeasible reach component among feasible ones
def _can_partition(left: frozenset[str], reach: set[tuple[str, str]], lo: int, hi: int) -> bool:
    """Enumeration: can the sites ``left`` be split into clusters, each a master plus ``lo..hi``
    slaves that the master reaches (``(slave, master)`` in ``reach``)?"""
    if not left:
        return True
    s = min(left)
    for m in left:  # the cluster holding s has master m (s itself, or a master that reaches s)
        if m != s and (s, m) not in reach:
            continue
        served = sorted(t for t in left if t != m and (t, m) in reach and t != s)
        must = [s] if m != s else []
        for k in range(lo - len(must), hi - len(must) + 1):
            for extra in itertools.combinations(served, max(0, k)):
                if k < 0:
                    break
                cluster = {m, *must, *extra}
                if _can_partition(left - cluster, reach, lo, hi):
                    return True
    return False


def _fewest_left_out(sites: list[str], reach: set[tuple[str, str]], lo: int, hi: int) -> int:
    """Enumeration: the fewest sites to leave out so that the rest can be clustered."""
    for k in range(len(sites) + 1):
        if any(_can_partition(frozenset(sites) - set(out), reach, lo, hi) for out in itertools.combinations(sites, k)):
            return k
    raise AssertionError("unreachable: leaving every site out always works")


def _towns(tmp_path, sizes: list[int]):  # type: ignore[no-untyped-def]
    """One tight town per size (sites ~1 km apart, all within reach of each other), towns ~440 km
    apart (separate reach components)."""
    from helpers_net import write_sites_csv

    rows = [(f"T{t}S{i}", 36.0 + 4.0 * t, -100.0 + 0.01 * i) for t, n in enumerate(sizes) for i in range(n)]
    return read_network(write_sites_csv(tmp_path / "towns.csv", rows))


@pytest.mark.parametrize("objective", ["balanced", "max_keys"])
def test_plan_drops_only_the_infeasible_components_sites(tmp_path, monkeypatch, objective: str) -> None:  # type: ignore[no-untyped-def]
    """Clusters of exactly 3 (capacity 2 = min_slaves): the town of 4 cannot be clustered whole, the
    towns of 3 and 6 can. Solved per reach component, the plan leaves out exactly as many sites as
    enumeration says, all from the town of 4, and the elastic search sees that town's sites alone."""
    import planner.stages.access_pareto
    import solvers.clustering

    monkeypatch.setattr(solvers.clustering, "COMPONENT_SOLVE_MIN_SITES", 1)  # force the per-component path
    monkeypatch.setattr(planner.stages.access_pareto, "COMPONENT_SOLVE_MIN_SITES", 1)
    seen: list[set[str]] = []
    real = solvers.clustering.unservable_sites_by_component

    def spy(data, options, solver_options=None):  # type: ignore[no-untyped-def]
        seen.append({str(s) for s in data.sites.index})
        return real(data, options, solver_options)

    monkeypatch.setattr(solvers.clustering, "unservable_sites_by_component", spy)
    net = _towns(tmp_path, [3, 4, 6])
    scenario = default_scenario().with_overrides(
        {"access.capacity": 2, "access.min_slaves": 2, "access.objective": objective}
    )
    out, tables = plan_access(net, scenario)
    town4 = {f"T1S{i}" for i in range(4)}
    assert seen == [town4]  # only the infeasible component got the elastic model
    from planner.stages.access_tables import build_access_tables

    full = build_access_tables(net, scenario)
    reach = {
        (str(s), str(m)) for s, m in zip(full.pairs["site"], full.pairs["master"], strict=True) if s != m and s in town4
    }
    assert reach == {(a, b) for a in town4 for b in town4 if a != b}  # the town: all within reach
    assert len(tables.standalone) == _fewest_left_out(sorted(town4), reach, 2, 2) == 1
    assert set(tables.standalone) <= town4
    # the same count as the elastic model on that component alone
    data = ClusteringData(
        sites=full.sites, candidates=full.candidates, pairs=full.pairs.rename(columns={"master": "candidate"})
    )
    alone = unservable_sites(solvers.clustering.restrict_to_sites(data, town4), ClusteringOptions(min_slaves=2))
    assert alone is not None and len(alone) == len(tables.standalone)
    a = out.tables["assignment"]
    assert sorted(a["site"]) == sorted(set(net.sites.index.astype(str)) - set(tables.standalone))
    sizes = a.groupby("master").size()
    assert (sizes == 3).all()  # every cluster: a master and exactly two slaves


def test_component_solve_names_every_infeasible_component() -> None:
    """The exception of the per-component solve carries the sites of the infeasible chains only,
    and restrict_to_sites of them is exactly their part of the model."""
    from solvers.clustering import restrict_to_sites, solve_clustering_by_component

    data = _chains([3, 4, 6, 5])  # chains of 4 and 5 cannot be clustered whole (brute force: _coverable)
    with pytest.raises(ClusteringInfeasible) as info:
        solve_clustering_by_component(data, ClusteringOptions(min_slaves=2))
    bad = {
        s for c, n in enumerate([3, 4, 6, 5]) if _coverable(n) < n for s in data.sites.index if s.startswith(f"c{c}")
    }
    assert set(info.value.sites or []) == bad
    sub = restrict_to_sites(data, info.value.sites or [])
    assert set(sub.sites.index) == bad and set(sub.candidates.index) == bad
    assert len(sub.pairs) == int(data.pairs["site"].isin(bad).sum())
    left = unservable_sites(sub, ClusteringOptions(min_slaves=2))
    assert left is not None and len(left) == sum(n - _coverable(n) for n in [4, 5])
