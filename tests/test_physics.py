"""Tests of the cluster-paper formulas (Eq. 5-10) and the PLOB bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import physics as ph
from planner.errors import ValidationError


def test_ekert_pairs_floor_half() -> None:
    assert ph.ekert_pairs_per_attempt(2) == 1.0
    assert ph.ekert_pairs_per_attempt(7) == 3.0
    assert isinstance(ph.ekert_pairs_per_attempt(4), float)
    np.testing.assert_array_equal(ph.ekert_pairs_per_attempt([0, 1, 2, 3, 10]), [0, 0, 1, 1, 5])


def test_cluster_keys_hand_values() -> None:
    # 5 slaves -> M = 2; 0.5*10 + 0.25*4*2 = 7
    assert ph.cluster_keys_per_attempt(5, r_mdi=0.5, r_ekr=0.25, memory_master=10, memory_slave=4) == pytest.approx(7.0)
    # 6 slaves -> M = 3; 0.1*3 + 0.2*5*3 = 3.3
    assert ph.cluster_keys_per_attempt(6, r_mdi=0.1, r_ekr=0.2, memory_master=3, memory_slave=5) == pytest.approx(3.3)
    arr = ph.cluster_keys_per_attempt([2, 3], r_mdi=1, r_ekr=1, memory_master=1, memory_slave=1)
    np.testing.assert_allclose(arr, [2.0, 2.0])


def test_cluster_needs_two_slaves() -> None:
    with pytest.raises(ValidationError, match="n_slaves"):
        ph.cluster_keys_per_attempt(1, r_mdi=0.5, r_ekr=0.5, memory_master=1, memory_slave=1)


def test_link_probability_and_time() -> None:
    assert ph.link_success_probability(10, alpha_db_per_km=0.4) == pytest.approx(10**-0.4)
    assert ph.link_success_probability(0, alpha_db_per_km=0.4) == 1.0
    assert ph.link_success_probability(50, alpha_db_per_km=0.2) == pytest.approx(0.1)
    # 20 km at 0.4 dB/km: p = 10**-0.8, attempt 20/2e5 = 1e-4 s -> t = 1e-4 * 10**0.8
    assert ph.link_entanglement_time_s(20, alpha_db_per_km=0.4) == pytest.approx(1e-4 * 10**0.8)
    assert ph.link_entanglement_time_s(0, alpha_db_per_km=0.4) == 0.0
    d = np.array([1.0, 5.0, 30.0])
    np.testing.assert_allclose(
        ph.link_entanglement_time_s(d, alpha_db_per_km=0.3),
        d / 2e5 / ph.link_success_probability(d, alpha_db_per_km=0.3),
    )


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # hand-computed from Eq. 9 with p = 0.5, q = 0.6, m = 2
        (1, 2 * 0.5),
        (2, 2 * 0.5 * 0.6),
        (3, 2 * 2 * 0.5 * 0.6**2 / (2 * (3 - 2) + 0.6 * (4 - 3 - 1))),
        (5, 2 * 4 * 0.5 * 0.6**3 / (2 * (5 - 4) + 0.6 * (8 - 5 - 1))),
        (6, 2 * 6 * 0.5 * 0.6**3 / (2 * (6 - 4) + 0.6 * (8 - 6))),
        (12, 2 * 12 * 0.5 * 0.6**4 / (2 * (12 - 8) + 0.6 * (16 - 12))),
        (21, 2 * 20 * 0.5 * 0.6**5 / (2 * (21 - 16) + 0.6 * (32 - 21 - 1))),
    ],
)
def test_chain_ratio_hand_values(k: int, expected: float) -> None:
    assert ph.chain_distribution_ratio(k, p=0.5, q=0.6, memory=2) == pytest.approx(expected)


def test_chain_ratio_special_cases() -> None:
    ks = np.arange(1, 70)
    np.testing.assert_allclose(ph.chain_distribution_ratio(ks, p=0.3, q=1.0, memory=3), 0.9)
    for q in (0.2, 0.5, 0.95):
        assert ph.chain_distribution_ratio(2, p=0.4, q=q, memory=3) == pytest.approx(3 * 0.4 * q)
        for j in range(0, 7):
            assert ph.chain_distribution_ratio(2**j, p=0.4, q=q, memory=3) == pytest.approx(3 * 0.4 * q**j)


def test_chain_ratio_monotone() -> None:
    ks = np.arange(2, 130)
    for q in (0.1, 0.3, 0.6, 0.9, 0.999):
        lam = ph.chain_distribution_ratio(ks, p=0.7, q=q, memory=1)
        assert np.all(np.diff(lam) <= 1e-15), q
    qs = np.linspace(0.05, 1.0, 40)
    for k in (2, 3, 7, 21):
        assert np.all(np.diff(ph.chain_distribution_ratio(k, p=0.7, q=qs, memory=1)) > 0)
    ps = np.linspace(0.05, 1.0, 20)
    assert np.all(np.diff(ph.chain_distribution_ratio(9, p=ps, q=0.5, memory=2)) > 0)


def test_log_chain_factor_is_log_of_ratio_over_mp() -> None:
    ks = np.arange(1, 40)
    lam = ph.chain_distribution_ratio(ks, p=0.2, q=0.7, memory=4)
    np.testing.assert_allclose(np.log(lam), np.log(4) + np.log(0.2) + ph.log_chain_factor(ks, 0.7), rtol=1e-12)
    assert ph.log_chain_factor(1, 0.3) == 0.0
    assert ph.swap_tree_depth(1) == 0.0
    np.testing.assert_array_equal(ph.swap_tree_depth([2, 3, 4, 5, 8, 9, 21]), [1, 2, 2, 3, 3, 4, 5])


def test_chain_latency_hand_value() -> None:
    # three hops 10, 10, 20 km; worst hop p = 10**-0.8; k = 3: lam = m*p*q**2
    d = [10.0, 10.0, 20.0]
    t_links = sum(x / 2e5 * 10 ** (0.4 * x / 10) for x in d)
    lam = 2 * 10**-0.8 * 0.6**2
    expected = t_links / lam + 3 * (100e-6 + 1040e-6)
    got = ph.chain_latency_s(d, q=0.6, memory=2, alpha_db_per_km=0.4)
    assert isinstance(got, float)
    assert got == pytest.approx(expected)
    batch = ph.chain_latency_s(np.array([d, [5.0, 5.0, 5.0]]), q=0.6, memory=2, alpha_db_per_km=0.4)
    assert batch.shape == (2,)
    assert batch[0] == pytest.approx(expected)


def test_plob_values() -> None:
    assert ph.plob_bound(0, alpha_db_per_km=0.2) == math.inf
    eta = 10 ** (-0.2 * 100 / 10)
    assert ph.plob_bound(100, alpha_db_per_km=0.2) == pytest.approx(-math.log2(1 - eta))
    # -log2(1 - 0.5) = 1 at 3.0103 dB
    assert ph.plob_bound(10 * math.log10(2) / 0.4, alpha_db_per_km=0.4) == pytest.approx(1.0)
    big = ph.plob_bound(np.array([200.0]), alpha_db_per_km=0.2)
    assert big[0] == pytest.approx(1.44269504 * 1e-4, rel=1e-3)


def test_max_hop_inverts_eq9() -> None:
    d = ph.max_hop_km_for_rate(0.05, hops=6, q=0.8, memory=2, alpha_db_per_km=0.4)
    p = ph.link_success_probability(d, alpha_db_per_km=0.4)
    assert ph.chain_distribution_ratio(6, p=p, q=0.8, memory=2) == pytest.approx(0.05)
    assert math.isnan(ph.max_hop_km_for_rate(5.0, hops=6, q=0.8, memory=2, alpha_db_per_km=0.4))
    assert ph.max_hop_km_for_rate(0.1, hops=2, q=0.8, memory=1, alpha_db_per_km=0) == math.inf


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"hops": 0, "p": 0.5, "q": 0.5, "memory": 1}, "hops"),
        ({"hops": 2.5, "p": 0.5, "q": 0.5, "memory": 1}, "hops"),
        ({"hops": 3, "p": 0.0, "q": 0.5, "memory": 1}, "p"),
        ({"hops": 3, "p": 0.5, "q": 1.5, "memory": 1}, "q"),
        ({"hops": 3, "p": 0.5, "q": 0.0, "memory": 1}, "q"),
        ({"hops": 3, "p": 0.5, "q": 0.5, "memory": 0.5}, "memory"),
        ({"hops": 3, "p": float("nan"), "q": 0.5, "memory": 1}, "p"),
    ],
)
def test_chain_ratio_rejects_bad_input(kwargs: dict, name: str) -> None:
    hops = kwargs.pop("hops")
    with pytest.raises(ValidationError, match=name):
        ph.chain_distribution_ratio(hops, **kwargs)


def test_other_validation() -> None:
    with pytest.raises(ValidationError, match="distance_km"):
        ph.link_success_probability(-1, alpha_db_per_km=0.4)
    with pytest.raises(ValidationError, match="alpha_db_per_km"):
        ph.plob_bound(10, alpha_db_per_km=-0.1)
    with pytest.raises(ValidationError, match="distances_km"):
        ph.chain_latency_s([], q=0.5, memory=1, alpha_db_per_km=0.4)
    with pytest.raises(ValidationError, match="distances_km"):
        ph.chain_latency_s([10, -1], q=0.5, memory=1, alpha_db_per_km=0.4)
    with pytest.raises(ValidationError) as info:
        ph.chain_distribution_ratio(0, p=2, q=0.5, memory=1)
    assert len(info.value.problems) == 2


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(min_value=1, max_value=300),
    p=st.floats(min_value=1e-6, max_value=1.0),
    q=st.floats(min_value=1e-3, max_value=1.0),
    m=st.floats(min_value=1.0, max_value=100.0),
)
def test_chain_ratio_bounds_property(k: int, p: float, q: float, m: float) -> None:
    """Eq. 9 lies between the fixed-tree bottleneck m*p*q**depth and m*p."""
    lam = ph.chain_distribution_ratio(k, p=p, q=q, memory=m)
    depth = math.ceil(math.log2(k)) if k > 1 else 0
    assert lam <= m * p * (1 + 1e-12)
    assert lam >= m * p * q**depth * (1 - 1e-12)


def test_one_physics_parameter_object() -> None:
    """The scenario's ``[physics]``, the design check and the reproductions share one class."""
    from planner.model.scenario import PhysicsSettings, default_scenario
    from reports.reproduce_cluster import PAPER

    assert PhysicsSettings is ph.PhysicsParameters
    planner_default = default_scenario().physics
    assert isinstance(planner_default, ph.PhysicsParameters)
    assert (planner_default.alpha_db_per_km, planner_default.q_swap) == (0.2, 0.6)
    assert planner_default.speed_km_per_s == ph.SPEED_OF_LIGHT_FIBRE_KM_PER_S == 2e5
    # the paper's NV platform differs from the planner default only in its fibre loss
    assert PAPER is ph.PAPER_NV_PHYSICS
    assert planner_default.with_values(alpha_db_per_km=0.4) == PAPER
    assert (PAPER.t_mea_s, PAPER.t_ret_s, PAPER.attempt_time_s) == (100e-6, 1040e-6, 145e-6)
    with pytest.raises(TypeError):
        PAPER.with_values(alpha=0.3)  # a misspelt field is an error, not a silent extra


def test_scenario_physics_overrides_reach_the_object() -> None:
    from planner.model.scenario import default_scenario

    s = default_scenario().with_overrides({"physics.alpha_db_per_km": 0.3, "physics.q_swap": 0.9})
    assert s.physics == ph.PhysicsParameters(alpha_db_per_km=0.3, q_swap=0.9)
    with pytest.raises(ValidationError):
        default_scenario().with_overrides({"physics.alpha_db_per_km": -1.0})


def test_design_check_rebuilds_chains_with_eq7() -> None:
    """The chain table's worst-segment p is Eq. 7 of the longest spacing, computed here by hand."""
    import pandas as pd

    from planner.model.scenario import default_scenario
    from planner.simulate.chain_table import chains_from_links

    class _Design:  # the two tables chains_from_links reads
        links = pd.DataFrame(
            {
                "link_id": ["L1", "L2"],
                "repeaters": [1, 0],
                "spacing_km": [30.0, 12.5],
                "memory_units": [2.0, 3.0],
                "p_link": [10 ** (-0.3 * 30.0 / 10), 10 ** (-0.3 * 12.5 / 10)],
            }
        )
        demands = pd.DataFrame(
            {"demand_id": ["d"], "links": ["L1;L2"], "hops": [3], "p_worst": [10 ** (-0.3 * 30.0 / 10)]}
        )

    scenario = default_scenario().with_overrides({"physics.alpha_db_per_km": 0.3})
    row = chains_from_links(_Design(), scenario).iloc[0]  # type: ignore[arg-type]
    assert row["hops"] == 3 and row["memory"] == 2.0 and row["problems"] == ""
    assert row["p_worst"] == pytest.approx(10 ** (-0.3 * 30.0 / 10), rel=1e-15)
    assert row["distances_km"] == (30.0, 30.0, 12.5)
