"""The balanced access rule against enumeration: the Pareto front's keys at each master budget and
the chosen point are recomputed by enumerating every master set and assignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner.stages.access_pareto import PARETO_COLUMNS, balanced_access
from solvers.base import SolverOptions
from solvers.clustering import ClusteringData, ClusteringOptions
from tests.oracles.enumerate import enumerate_clustering, random_clustering_instance

EXACT = SolverOptions(mip_gap=1e-9, time_limit_s=120)


def _instance(seed: int, n_sites: int) -> ClusteringData:
    rng = np.random.default_rng(seed)
    sites, cands, pairs = random_clustering_instance(rng, n_sites=n_sites, reach_km=40.0, capacity=(2, 4))
    cands = cands.assign(cost=1.0, fixed=False, forbidden=False)  # equal master costs: fewest = cheapest
    return ClusteringData(sites, cands, pairs)


def _best_keys(data: ClusteringData, options: ClusteringOptions, max_masters: int | None) -> float | None:
    ref = enumerate_clustering(
        data.sites,
        data.candidates,
        data.pairs,
        objective="max_keys",
        min_slaves=options.min_slaves,
        max_masters=max_masters,
        max_cost=None,
        key_mdi=options.r_mdi * options.memory_master,
        key_ekr=options.r_ekr * options.memory_slave,
        min_cluster_keys=0.0,
        loss_weight=0.0,
    )
    return None if ref is None else ref.keys_per_attempt


@pytest.mark.parametrize(("seed", "fraction"), [(0, 0.0), (1, 0.0), (2, 0.9), (3, 0.8), (6, 1.0)])
def test_front_and_choice_match_enumeration(seed: int, fraction: float) -> None:
    data = _instance(seed, 8)
    options = ClusteringOptions(memory_master=4.0, memory_slave=2.0, loss_weight=1e-6)
    k_star = _best_keys(data, options, None)
    assert k_star is not None, "pick seeds whose instance has a clustering"
    chosen, table = balanced_access(data, options, EXACT, keys_fraction=fraction, points=4)
    assert list(table.columns) == PARETO_COLUMNS
    assert table["chosen"].sum() == 1
    best_by_budget = {}
    for row in table.itertuples(index=False):
        ref = _best_keys(data, options, int(row.masters_budget))
        assert ref is not None
        assert row.keys_per_attempt == pytest.approx(ref)  # each point is the true best for its budget
        assert row.n_masters <= row.masters_budget
        best_by_budget[int(row.masters_budget)] = ref
    assert max(table["keys_per_attempt"]) == pytest.approx(k_star)
    # the rule, recomputed by enumeration over every budget: the fewest masters reaching the target
    n = len(data.sites)
    budgets = [k for k in range(1, n + 1) if (_best_keys(data, options, k) or -1) >= fraction * k_star - 1e-9]
    fewest = min(budgets)
    assert float(chosen.info["keys_per_attempt"]) >= fraction * k_star - 1e-9
    chosen_budget = int(table.loc[table["chosen"], "masters_budget"].iloc[0])
    assert chosen_budget == fewest


def test_time_limits_of_the_front_sum_to_the_limit() -> None:
    from solvers.base import TimeLimitRecord, recording_time_limits

    data = _instance(4, 9)
    with recording_time_limits() as log:
        balanced_access(data, ClusteringOptions(), SolverOptions(time_limit_s=5.0), points=5)
    handed = [e.time_limit_s for e in log if isinstance(e, TimeLimitRecord)]
    assert handed and sum(handed) <= 5.0 + 1e-9


def test_empty_front_table_has_the_columns() -> None:
    from planner.model.design import Design

    empty = Design.__dataclass_fields__["access_pareto"].default_factory()  # type: ignore[misc]
    assert isinstance(empty, pd.DataFrame) and list(empty.columns) == PARETO_COLUMNS


def test_infeasible_budget_points_are_left_out_of_the_front() -> None:
    """A budgeted point whose solve reports infeasibility (as a diagnosis out of time can at scale)
    is dropped from the front; the unbudgeted ends still give the design, which enumeration confirms."""
    from solvers.clustering import ClusteringInfeasible, solve_clustering

    data = _instance(0, 8)
    options = ClusteringOptions(memory_master=4.0, memory_slave=2.0, loss_weight=1e-6)
    budgeted_calls: list[int] = []

    def flaky(d: ClusteringData, o: ClusteringOptions, s: SolverOptions):  # type: ignore[no-untyped-def]
        if o.max_masters is not None:
            budgeted_calls.append(o.max_masters)
            raise ClusteringInfeasible(
                "no clustering", conflicts=["assign-once"], details=["'assign-once' must be relaxed by 1"]
            )
        return solve_clustering(d, o, s)

    chosen, table = balanced_access(data, options, EXACT, keys_fraction=1.0, points=4, solve=flaky)
    assert budgeted_calls, "the front must have tried budgeted points"
    assert set(table["point"]) <= {"max_keys", "fewest_masters"}
    assert table["chosen"].sum() == 1
    k_star = _best_keys(data, options, None)
    assert float(chosen.info["keys_per_attempt"]) == pytest.approx(k_star)
