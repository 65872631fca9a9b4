"""Eq. 6 against a protocol-level access Monte Carlo (per-attempt storage, detection or
Bell-state measurement, random bases) at infinite lifetime."""

from __future__ import annotations

import itertools

import pytest

from planner.errors import ValidationError
from planner.simulate.access_protocol import (
    access_protocol_expected,
    protocol_key_ratios,
    simulate_access_protocol,
)


def test_memory_fills_and_eq6_holds() -> None:
    """Plenty of attempts: every unit is filled, and the simulated key matches Eq. 6."""
    r = simulate_access_protocol(
        5,
        memory_master=8,
        memory_slave=6,
        attempts=120,
        p_transmit=0.6,
        p_detect=0.9,
        p_bsm=0.5,
        trials=4000,
        seed=1,
    )
    assert r.fill_fraction == pytest.approx(1.0, abs=1e-3)
    # by hand: M = 2, R_mdi = 0.5/2, R_ekr = 0.81/2 -> 8 * 0.25 + 2 * 6 * 0.405
    assert r.eq6 == pytest.approx(8 * 0.25 + 2 * 6 * 0.405)
    assert r.expected == pytest.approx(r.eq6, rel=1e-6)
    assert r.keys.contains(r.eq6), (r.keys, r.eq6)


def test_too_few_attempts_eq6_overstates() -> None:
    """Few attempts: the memories are not filled; the simulation matches the exact
    expectation and rejects Eq. 6, which assumes full memories."""
    r = simulate_access_protocol(
        4,
        memory_master=10,
        memory_slave=10,
        attempts=20,
        p_transmit=0.5,
        p_detect=1.0,
        p_bsm=0.5,
        trials=6000,
        seed=2,
    )
    assert r.fill_fraction < 0.6
    assert r.keys.contains(r.expected), (r.keys, r.expected)
    assert not r.keys.contains(r.eq6)
    assert r.keys.high < r.eq6


def test_exact_expectation_by_enumeration() -> None:
    """E[min(Bin(A, p^2), N)] by enumerating all 2**A arrival patterns (A = 8)."""
    a, p, n = 8, 0.7, 3
    q = p * p
    total = 0.0
    for pattern in itertools.product((0, 1), repeat=a):
        k = sum(pattern)
        total += min(k, n) * q**k * (1 - q) ** (a - k)
    r_mdi, r_ekr = protocol_key_ratios(p_detect=0.8, p_bsm=0.4)
    got = access_protocol_expected(
        2, memory_master=n, memory_slave=n, attempts=a, p_transmit=p, p_detect=0.8, p_bsm=0.4
    )
    assert got == pytest.approx(total * (r_mdi + r_ekr))


def test_sifting_is_detected() -> None:
    """Without the 1/2 sifting factor the predicted key would be twice as large: rejected."""
    r = simulate_access_protocol(
        2,
        memory_master=6,
        memory_slave=6,
        attempts=200,
        p_transmit=0.8,
        p_detect=1.0,
        p_bsm=1.0,
        trials=3000,
        seed=3,
    )
    assert r.keys.contains(r.eq6)
    assert not r.keys.contains(2 * r.eq6)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="p_transmit"):
        simulate_access_protocol(4, memory_master=2, memory_slave=2, attempts=5, p_transmit=1.5)
    with pytest.raises(ValidationError, match="n_slaves"):
        simulate_access_protocol(1, memory_master=2, memory_slave=2, attempts=5, p_transmit=0.5)
