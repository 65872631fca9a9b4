"""Repeater-chain waiting times against exact Markov-chain computations (small k).

The slot-by-slot simulator (:func:`planner.simulate.chain.simulate_chain`) is compared
with absorbing Markov chains solved exactly (linear systems), for protocols small enough
to enumerate: two hops (closed form, deterministic and probabilistic swap) and four hops
with nested swapping and one memory unit per hop end. Nothing here reuses the simulator's
code: the chains are written from the protocol description.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from planner import physics as ph
from planner.simulate import chain as ch

ALPHA = 0.4  # dB/km


def _distance_for(p: float) -> float:
    """Hop length (km) whose Eq. 7 success probability is ``p``."""
    return -10.0 * math.log10(p) / ALPHA


def _half_transition(p: float, q: float) -> np.ndarray:
    """One slot of a two-hop half of the nested 4-hop chain (1 unit per hop end).

    States: 0 = no pair, 1 = left hop holds a pair, 2 = right hop holds a pair,
    3 = the half's swapped pair is stored (it blocks both hops). In a slot, free hops
    attempt (success ``p``); if both hops then hold pairs they are swapped at once
    (success ``q``, a failure loses both)."""
    t = np.zeros((4, 4))
    t[0, 3] += p * p * q
    t[0, 0] += p * p * (1 - q) + (1 - p) ** 2
    t[0, 1] += p * (1 - p)
    t[0, 2] += p * (1 - p)
    for s in (1, 2):
        t[s, 3] += p * q
        t[s, 0] += p * (1 - q)
        t[s, s] += 1 - p
    t[3, 3] = 1.0
    return t


def _nested4_expected_slots(p: float, q: float) -> float:
    """Exact E[slots until the first end-to-end pair] of nested swapping over 4 hops.

    Joint state (left half, right half); the halves evolve independently within a slot,
    then two stored half pairs are swapped (success ``q``: done; failure: both lost)."""
    half = _half_transition(p, q)
    states = list(itertools.product(range(4), repeat=2))
    idx = {s: i for i, s in enumerate(states)}
    trans = np.zeros((16, 16))
    done = np.zeros(16)
    for a, b in states:
        for a2, b2 in states:
            pr = half[a, a2] * half[b, b2]
            if pr == 0.0:
                continue
            if (a2, b2) == (3, 3):
                done[idx[(a, b)]] += pr * q
                trans[idx[(a, b)], idx[(0, 0)]] += pr * (1 - q)
            else:
                trans[idx[(a, b)], idx[(a2, b2)]] += pr
    np.testing.assert_allclose(trans.sum(axis=1) + done, 1.0)
    steps = np.linalg.solve(np.eye(16) - trans, np.ones(16))
    return float(steps[idx[(0, 0)]])


def test_two_hop_deterministic_swap_closed_form() -> None:
    """k = 2, q = 1: the first pair arrives after max(G1, G2) slots, G_i geometric(p),
    E = (3 - 2p) / (p (2 - p)); the 4-hop solver's half chain reproduces it too."""
    p = 0.3
    exact = (3 - 2 * p) / (p * (2 - p))
    # the half chain of the 4-hop model is the 2-hop protocol: its time to state 3
    half = _half_transition(p, 1.0)
    steps = np.linalg.solve(np.eye(3) - half[:3, :3], np.ones(3))
    assert steps[0] == pytest.approx(exact)
    d = _distance_for(p)
    r = ch.simulate_chain(
        [d, d],
        q=1.0,
        memory=1,
        slots=400,
        trials=4000,
        attempt_time_s=1.0,
        t_mea_s=0.0,
        t_ret_s=0.0,
        level=0.99,
        seed=21,
    )
    assert r.censored_fraction == 0.0
    assert r.first_pair is not None and r.first_pair.contains(exact), (r.first_pair, exact)
    # power: the mean of one geometric (1/p) or of the sum (2/p) is rejected
    assert not r.first_pair.contains(1 / p) and not r.first_pair.contains(2 / p)


@pytest.mark.parametrize(("p", "q"), [(0.4, 0.6), (0.6, 0.9)])
def test_four_hop_nested_first_pair_time_matches_exact_chain(p: float, q: float) -> None:
    exact = _nested4_expected_slots(p, q)
    d = _distance_for(p)
    r = ch.simulate_chain(
        [d] * 4,
        q=q,
        memory=1,
        schedule="nested",
        slots=int(12 * exact),
        trials=3000,
        attempt_time_s=1.0,
        t_mea_s=0.0,
        t_ret_s=0.0,
        level=0.999,
        seed=int(100 * p + 10 * q),
    )
    assert r.censored_fraction < 1e-3
    assert r.first_pair is not None and r.first_pair.contains(exact), (r.first_pair, exact)
    # power: the same chain with a swap twice as likely to fail is rejected
    assert not r.first_pair.contains(_nested4_expected_slots(p, 1 - 2 * (1 - q)))


def test_four_hop_nested_rate_matches_exact_renewal_rate() -> None:
    """After a delivery both halves are empty, so deliveries form a renewal process and
    the long-run rate is 1 / E[T]; with one unit per hop end it lies below Eq. 9."""
    p, q = 0.5, 0.7
    exact_rate = 1.0 / _nested4_expected_slots(p, q)
    d = _distance_for(p)
    r = ch.simulate_chain(
        [d] * 4,
        q=q,
        memory=1,
        slots=1200,
        trials=300,
        attempt_time_s=1.0,
        level=0.99,
        seed=4,
    )
    assert r.rate.contains(exact_rate), (r.rate, exact_rate)
    assert exact_rate < ph.chain_distribution_ratio(4, p=p, q=q, memory=1)
