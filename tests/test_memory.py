"""Memory-budget ILP: equal to enumeration on tiny cases, lifetime cap, concurrency split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import physics
from solvers.base import SolverOptions, SolveStatus
from solvers.memory import MemoryData, MemoryInputError, MemoryOptions, solve_memory
from tests.oracles.enumerate import enumerate_memory

EXACT = SolverOptions(mip_gap=1e-9, time_limit_s=30)


def _tiny(rng: np.random.Generator) -> MemoryData:
    n_cl = int(rng.integers(1, 3))
    clusters = pd.DataFrame(
        {
            "n_slaves": rng.integers(2, 6, n_cl),
            "r_mdi": rng.choice([0.5, 1.0, 2.0], n_cl),
            "r_ekr": rng.choice([0.5, 1.0], n_cl),
            "slave_cap": rng.integers(1, 3, n_cl),
            "attempts_per_s": rng.choice([1.0, 10.0], n_cl),
        },
        index=[f"c{i}" for i in range(n_cl)],
    )
    n_ed = int(rng.integers(1, 3))
    edges = pd.DataFrame({"max_units": rng.integers(2, 5, n_ed)}, index=[f"e{j}" for j in range(n_ed)])
    rows = []
    for c in clusters.index:
        rows.append({"kind": "intra", "cluster": c, "path": None, "rate_per_unit": np.nan, "weight": 1.0})
    for _ in range(int(rng.integers(1, 3))):
        path = list(rng.choice(edges.index, size=int(rng.integers(1, n_ed + 1)), replace=False))
        rows.append({"kind": "inter", "cluster": None, "path": path,
                     "rate_per_unit": float(rng.choice([2.0, 5.0, 7.5])),
                     "weight": float(rng.choice([1.0, 2.0]))})  # fmt: skip
    demands = pd.DataFrame(rows, index=[f"d{i}" for i in range(len(rows))])
    return MemoryData(clusters, edges, demands)


@pytest.mark.parametrize("objective", ["max_min", "weighted_sum"])
@pytest.mark.parametrize("seed", range(6))
def test_memory_ilp_equals_enumeration(seed: int, objective: str) -> None:
    rng = np.random.default_rng(100 + seed)
    data = _tiny(rng)
    budget = int(rng.integers(4, 9))
    res = solve_memory(data, MemoryOptions(budget_units=budget, objective=objective, secondary_weight=0.0), EXACT)  # type: ignore[arg-type]
    # the enumerator needs the defaulted share column explicitly
    dm = data.demands.copy()
    intra = dm["kind"] == "intra"
    dm["share"] = np.where(intra, 1.0, np.nan)
    ref = enumerate_memory(data.clusters, data.edges, dm, budget_units=budget, objective=objective)
    assert ref is not None
    assert res.status is SolveStatus.OPTIMAL
    assert res.objective == pytest.approx(ref.objective, rel=1e-7, abs=1e-7)
    # the reported tables reproduce the objective independently of the solver's value
    rates = res.tables["demand_rates"].set_index("demand")
    if objective == "max_min":
        assert (rates["rate"] / rates["weight"]).min() == pytest.approx(ref.objective, rel=1e-7, abs=1e-7)
    else:
        assert (rates["rate"] * rates["weight"]).sum() == pytest.approx(ref.objective, rel=1e-7, abs=1e-7)
    assert res.info["total_units"] <= budget


def test_slave_memory_capped_by_lifetime_times_generation_rate() -> None:
    clusters = pd.DataFrame(
        {
            "n_slaves": [4],
            "r_mdi": [0.0],
            "r_ekr": [1.0],
            "memory_lifetime_s": [0.5],
            "generation_rate_hz": [6.0],
        },
        index=["c"],
    )
    demands = pd.DataFrame([{"kind": "intra", "cluster": "c"}], index=["d"])
    res = solve_memory(
        MemoryData(clusters, pd.DataFrame(index=pd.Index([], name="edge")), demands),
        MemoryOptions(budget_units=100),
        EXACT,
    )
    nodes = res.tables["memory_nodes"].set_index("role")
    assert nodes.loc["slave", "useful_cap"] == 3.0  # floor(0.5 s x 6 Hz)
    assert nodes.loc["slave", "units_per_node"] == 3
    # Eq. 6 with N_s = 3, M = 2 and R_mdi = 0
    assert res.tables["demand_rates"]["rate"].iloc[0] == pytest.approx(1.0 * 3 * 2)


def test_edge_memory_is_split_between_concurrent_demands() -> None:
    """Two demands share edge e; the max-min split gives each half of the budget (Fig. 7b)."""
    clusters = pd.DataFrame({"n_slaves": [2]}, index=["c"])
    edges = pd.DataFrame({"max_units": [10]}, index=["e"])
    demands = pd.DataFrame(
        [
            {"kind": "inter", "path": ["e"], "rate_per_unit": 1.0},
            {"kind": "inter", "path": ["e"], "rate_per_unit": 3.0},
        ],
        index=["slow", "fast"],
    )
    res = solve_memory(
        MemoryData(clusters, edges, demands),
        MemoryOptions(budget_units=8, secondary_weight=0.0),
        EXACT,
    )
    shares = res.tables["memory_shares"].set_index("demand")["units"]
    assert shares.sum() <= res.tables["memory_edges"]["units"].iloc[0] <= 8
    # max-min: 1*z_slow vs 3*z_fast with z_slow + z_fast <= 8 -> z_slow = 6, z_fast = 2 gives min 6
    assert res.info["min_weighted_rate"] == pytest.approx(6.0)
    assert shares["slow"] == 6 and shares["fast"] == 2


def test_rate_is_linear_in_memory_as_the_physics_module_says() -> None:
    """The model's premise: Eq. 9 is m times the per-unit ratio (checked against planner.physics)."""
    for k in (1, 2, 3, 5, 8):
        one = float(physics.chain_distribution_ratio(k, p=0.3, q=0.7, memory=1))
        for m in (2, 5):
            assert float(physics.chain_distribution_ratio(k, p=0.3, q=0.7, memory=m)) == pytest.approx(m * one)


def test_bad_memory_tables_are_reported() -> None:
    clusters = pd.DataFrame({"n_slaves": [2]}, index=["c"])
    demands = pd.DataFrame([{"kind": "inter", "path": ["nope"], "rate_per_unit": 1.0}, {"kind": "x"}], index=["a", "b"])
    with pytest.raises(MemoryInputError) as err:
        solve_memory(MemoryData(clusters, pd.DataFrame(index=["e"]), demands), MemoryOptions(budget_units=3))
    text = str(err.value)
    assert "unknown edges" in text and "kind" in text
    with pytest.raises(MemoryInputError, match="budget"):
        solve_memory(MemoryData(clusters, pd.DataFrame(index=["e"]), demands.iloc[:0]), MemoryOptions())


def test_cost_budget_with_unit_costs_equals_unit_budget() -> None:
    data = _tiny(np.random.default_rng(7))
    by_units = solve_memory(data, MemoryOptions(budget_units=6, secondary_weight=0.0), EXACT)
    by_cost = solve_memory(data, MemoryOptions(max_cost=6.0, secondary_weight=0.0), EXACT)
    assert by_units.objective == pytest.approx(by_cost.objective)
    # doubling the price of edge memory can only lower the best max-min rate
    dear = MemoryData(data.clusters, data.edges.assign(cost_per_unit=2.0), data.demands)
    assert (
        solve_memory(dear, MemoryOptions(max_cost=6.0, secondary_weight=0.0), EXACT).objective
        <= by_cost.objective + 1e-9
    )
