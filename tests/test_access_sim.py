"""Access-cluster Monte Carlo against Eq. 6 and against its exact lifetime model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner import physics as ph
from planner.errors import ValidationError
from planner.simulate.access import cluster_keys_analytic, simulate_cluster_keys_per_attempt

PARAMS = dict(r_mdi=0.3, r_ekr=0.6, memory_master=8, memory_slave=5)


@pytest.mark.parametrize("n_slaves", [2, 3, 6, 9])
def test_infinite_lifetime_mean_matches_eq6(n_slaves: int) -> None:
    r = simulate_cluster_keys_per_attempt(n_slaves, slots=4000, level=0.99, seed=n_slaves, **PARAMS)
    eq6 = ph.cluster_keys_per_attempt(n_slaves, **PARAMS)
    assert r.eq6 == pytest.approx(eq6)
    assert r.analytic == pytest.approx(eq6)
    assert r.keys.contains(eq6), (r.keys, eq6)
    assert r.seed == n_slaves
    assert r.ekert_pairs == n_slaves // 2


def test_ratio_one_is_deterministic_eq6() -> None:
    r = simulate_cluster_keys_per_attempt(5, r_mdi=1.0, r_ekr=1.0, memory_master=4, memory_slave=3, slots=50)
    assert r.keys.value == r.keys.low == r.keys.high == 4 + 3 * 2


@pytest.mark.parametrize("lifetime_s", [1e-3, 4e-3, 1e-2])
def test_finite_lifetime_matches_exact_expectation(lifetime_s: float) -> None:
    kw = dict(lifetime_s=lifetime_s, epr_rate_hz=2e3, **PARAMS)
    r = simulate_cluster_keys_per_attempt(6, slots=6000, level=0.99, seed=11, **kw)
    exact = cluster_keys_analytic(6, **kw)
    assert r.keys.contains(exact), (r.keys, exact)
    assert exact < ph.cluster_keys_per_attempt(6, **PARAMS)


def test_analytic_single_qubit_by_hand() -> None:
    # one unit, no MDI: survives iff t_q <= lifetime (no waiting for newer arrivals)
    kw = dict(r_mdi=0.0, r_ekr=1.0, memory_master=0, memory_slave=1, t_mea_s=1e-4, t_ret_s=1e-4)
    assert cluster_keys_analytic(2, lifetime_s=1.9e-4, **kw) == 0.0
    assert cluster_keys_analytic(2, lifetime_s=2.1e-4, **kw) == 1.0
    # two units, rate r: newest survives if 2e-4 <= L; second if Exp(r) + 4e-4 <= L
    kw2 = dict(kw, memory_slave=2)
    rate, life = 1e4, 6e-4
    expected = 1.0 + (1 - math.exp(-rate * (life - 4e-4)))
    assert cluster_keys_analytic(2, lifetime_s=life, epr_rate_hz=rate, **kw2) == pytest.approx(expected)


def test_trend_linear_then_saturating() -> None:
    lifetimes = np.linspace(0.5e-3, 60e-3, 40)
    kw = dict(r_mdi=0.0, r_ekr=1.0, memory_master=0, memory_slave=20, epr_rate_hz=5e3)
    keys = np.array([cluster_keys_analytic(2, lifetime_s=t, **kw) for t in lifetimes])
    assert np.all(np.diff(keys) >= -1e-12)
    assert keys[-1] == pytest.approx(20.0, rel=1e-6)
    # initial slope ~ 1 / (t_q + 1/rate) keys per second of lifetime
    slope = (keys[6] - keys[2]) / (lifetimes[6] - lifetimes[2])
    assert slope == pytest.approx(1 / (1.14e-3 + 2e-4), rel=0.25)
    faster = cluster_keys_analytic(2, lifetime_s=10e-3, **dict(kw, epr_rate_hz=5e4))
    assert faster > cluster_keys_analytic(2, lifetime_s=10e-3, **kw)


def test_bad_input_named() -> None:
    with pytest.raises(ValidationError, match="n_slaves"):
        simulate_cluster_keys_per_attempt(1, **PARAMS)
    with pytest.raises(ValidationError, match="lifetime_s"):
        simulate_cluster_keys_per_attempt(4, lifetime_s=0.0, **PARAMS)
    with pytest.raises(ValidationError, match="r_ekr"):
        cluster_keys_analytic(4, r_mdi=0.1, r_ekr=2.0, memory_master=1, memory_slave=1)
    with pytest.raises(ValidationError, match="slots"):
        simulate_cluster_keys_per_attempt(4, slots=1, **PARAMS)
