"""The greedy's masters mended at a chain's end, and unservable sites found without the MILP."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from solvers.clustering import (
    ClusteringData,
    ClusteringInfeasible,
    ClusteringOptions,
    check_solution,
    prepare,
    solve_clustering,
    unservable_sites,
)
from solvers.heuristics import (
    choose_masters,
    heuristic_solution,
    repair_masters,
    unservable_sites_heuristic,
)


def _graph(edges: list[tuple[str, str]]) -> ClusteringData:
    """Sites that reach each other along ``edges`` (both ways); every site a candidate."""
    ids = sorted({s for e in edges for s in e})
    rows = [(a, b) for a, b in edges] + [(b, a) for a, b in edges]
    pairs = pd.DataFrame(rows, columns=["site", "candidate"]).assign(distance_km=10.0, loss_db=2.0)
    sites = pd.DataFrame({"demand": 1.0}, index=pd.Index(ids, name="site"))
    cands = pd.DataFrame({"cost": 1.0, "capacity": 8}, index=pd.Index(ids, name="master"))
    return ClusteringData(sites=sites, candidates=cands, pairs=pairs)


# a hub H reaching A, B, C (a triangle) and X; X also reaches the pendant P. The greedy opens H
# first (it covers most), then X for P, which leaves X one slave: no assignment exists. Feasible:
# X serves P and H, A serves B and C.
HUB = [("H", "A"), ("H", "B"), ("H", "C"), ("A", "B"), ("B", "C"), ("A", "C"), ("H", "X"), ("X", "P")]


def test_greedy_alone_fails_and_the_mended_masters_cluster() -> None:
    from solvers.heuristics import assign_sites

    data = _graph(HUB)
    options = ClusteringOptions(min_slaves=2)
    idx = prepare(data, options)
    greedy = choose_masters(idx, options)
    assert assign_sites(idx, greedy) is None  # the failure the mending is for
    mended = repair_masters(idx, greedy)
    assert assign_sites(idx, mended) is not None
    sol = heuristic_solution(idx, options)
    assert sol is not None and not check_solution(idx, options, sol)
    assert solve_clustering(data, options).has_solution  # the MILP agrees a clustering exists


def _conflict(extra: int) -> list[tuple[str, str]]:
    """Two pendants that need the same site: P1 is reached only by X1, which reaches only P1 and
    Y; P2 is reached only by Y, which reaches only P2, X1 and a triangle T0..T2 (plus ``extra``
    more triangles hung off the first). X1 must be a master with slaves P1 and Y, and Y a master
    with slave P2: one of P1, P2 cannot be served."""
    edges = [("P1", "X1"), ("X1", "Y"), ("Y", "P2"), ("Y", "T0"), ("T0", "T1"), ("T1", "T2"), ("T0", "T2")]
    for k in range(extra):
        a, b, c = (f"U{k}a", f"U{k}b", f"U{k}c")
        edges += [("T0", a), (a, b), (b, c), (a, c)]
    return edges


@pytest.mark.parametrize("edges", [_conflict(0), _conflict(2), HUB, list(itertools.pairwise("abcd"))])
def test_heuristic_unservable_sites_are_enough_and_never_fewer_than_the_fewest(edges: list[tuple[str, str]]) -> None:
    data = _graph(edges)
    options = ClusteringOptions(min_slaves=2)
    idx = prepare(data, options)
    found = unservable_sites_heuristic(idx, options)
    assert found is not None
    out = {str(idx.site_ids[i]) for i in found}
    keep = sorted(set(data.sites.index) - out)
    reduced = ClusteringData(
        sites=data.sites.loc[keep],
        candidates=data.candidates.loc[keep],
        pairs=data.pairs[data.pairs["site"].isin(keep) & data.pairs["candidate"].isin(keep)],
    )
    assert solve_clustering(reduced, options).has_solution  # leaving them out is enough (MILP check)
    fewest = unservable_sites(data, options)
    assert fewest is not None and len(out) >= len(fewest)
    if fewest:
        with pytest.raises(ClusteringInfeasible):
            solve_clustering(data, options)
    # on these small cases the mended greedy leaves out no more than the elastic MILP
    assert len(out) == len(fewest)
