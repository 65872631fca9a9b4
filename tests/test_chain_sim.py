"""Repeater-chain Monte Carlo against Eq. 9 / Eq. 10 and against exact small models."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linprog

from planner import physics as ph
from planner.errors import ValidationError
from planner.simulate import chain as ch
from planner.simulate import swap_trees as st

KS = range(1, 22)
QS = (0.3, 0.6, 0.9, 1.0)


def _deep_fraction(trees: list[st.SwapTree]) -> np.ndarray:
    return np.mean([(t.hop_depths() == t.rounds).astype(float) for t in trees], axis=0)


@pytest.mark.parametrize("k", list(range(2, 22)))
def test_eq9_schedule_is_min_depth_and_balanced(k: int) -> None:
    trees = st.eq9_schedule(k)
    n = math.ceil(math.log2(k)) - 1
    for t in trees:
        depths = t.hop_depths()
        assert depths.max() == n + 1
        assert set(depths.tolist()) <= {n, n + 1}
        assert np.sum(depths == n + 1) == 2 * (k - 2**n)
    f = _deep_fraction(trees)
    b = st.eq9_bottleneck_hops(k)
    target = 2 * (k - 2**n) / (k if k % 2 == 0 else k - 1)
    np.testing.assert_allclose(f[b], target)
    assert f.max() == pytest.approx(target)


def _all_min_depth_deep_sets(k: int) -> np.ndarray:
    """Every minimum-depth tree with complete top levels (2**n units at depth n, each a hop
    or a first-round pair), as the 0/1 vector of hops in a first-round pair. Minimum-depth
    trees with a shallower leaf (e.g. (0, ((1, 2), (3, 4))) for k = 5) are not included."""
    n = math.ceil(math.log2(k)) - 1
    units, pairs = 2**n, k - 2**n
    rows = []
    for chosen in itertools.combinations(range(units), pairs):
        deep, h = [], 0
        for u in range(units):
            if u in chosen:
                deep += [1, 1]
                h += 2
            else:
                deep += [0]
                h += 1
        rows.append(deep)
    return np.array(rows, dtype=float)


@pytest.mark.parametrize("k", list(range(2, 22)))
def test_eq9_equals_lp_optimum_over_all_min_depth_trees(k: int) -> None:
    """Independent of the closed form: time-share over all minimum-depth trees with complete
    top levels so that the most loaded edge is as light as possible (LP), then price it."""
    deep = _all_min_depth_deep_sets(k)  # trees x hops
    n_trees = deep.shape[0]
    # variables: weights w (n_trees), z; minimise z s.t. deep^T w <= z, sum w = 1
    c = np.r_[np.zeros(n_trees), 1.0]
    a_ub = np.c_[deep.T, -np.ones(k)]
    res = linprog(
        c,
        A_ub=a_ub,
        b_ub=np.zeros(k),
        A_eq=np.r_[np.ones(n_trees), 0.0][None, :],
        b_eq=[1.0],
        bounds=[(0, None)] * (n_trees + 1),
        method="highs",
    )
    assert res.status == 0
    f_star = res.x[-1]
    n = math.ceil(math.log2(k)) - 1
    for q in (0.3, 0.6, 0.9):
        consumption = f_star / q ** (n + 1) + (1 - f_star) / q**n
        lam_lp = 2.0 * 0.4 / consumption
        assert ph.chain_distribution_ratio(k, p=0.4, q=q, memory=2) == pytest.approx(lam_lp)


FAMILY_LEVEL = 1.0 - 0.01 / (len(KS) * len(QS))  # Bonferroni: 99 % for the whole grid


def _simulate_grid(cycles: int) -> list[tuple[int, float, ch.ChainRateResult]]:
    out = []
    for k in KS:
        for q in QS:
            r = ch.simulate_chain_rate(
                k,
                p=0.35,
                q=q,
                memory=3,
                cycles=cycles,
                level=FAMILY_LEVEL,
                seed=1000 * k + int(q * 10),
            )
            out.append((k, q, r))
    return out


@pytest.fixture(scope="module")
def grid() -> list[tuple[int, float, ch.ChainRateResult]]:
    return _simulate_grid(5_000)


def test_rotating_schedule_matches_eq9_within_ci(grid) -> None:
    """k = 1..21, q in {0.3, 0.6, 0.9, 1}: the rotating schedule's slowest-hop rate matches
    Eq. 9 within a family-wise 99 % interval (every point must hold)."""
    for k, q, r in grid:
        assert r.n_trees == len(st.eq9_schedule(k))
        assert r.rate.contains(r.eq9), (k, q, r.rate, r.eq9)


def test_fixed_tree_schedule_is_rejected() -> None:
    """One fixed balanced tree at k = 5, q = 0.3 loads hops 0 and 1 with depth 3: its true
    rate is m p q**3 = 0.0284, not Eq. 9's 0.0436. The hop-by-hop estimate must find the
    former and reject the latter (the pooled average over hops reported 0.0439)."""
    m, p, q = 3, 0.35, 0.3
    r = ch.simulate_chain_rate(5, p=p, q=q, memory=m, cycles=20_000, seed=5, trees=[st.balanced_tree(5)])
    assert r.eq9 == pytest.approx(0.0436, abs=5e-5)
    assert r.rate.contains(m * p * q**3)
    assert not r.rate.contains(r.eq9)
    assert set(r.bottleneck_hops.tolist()) <= {0, 1}
    # pooled over Eq. 9's bottleneck hops (1 and 3), the load would look like Eq. 9
    pooled = m * p / r.mean_consumption[[1, 3]].mean()
    assert pooled == pytest.approx(r.eq9, rel=0.05)


@pytest.mark.parametrize("k", [3, 4, 6, 7, 9])
def test_fixed_tree_rate_is_mpq_to_its_depth(k: int) -> None:
    tree = st.balanced_tree(k)
    r = ch.simulate_chain_rate(k, p=0.5, q=0.5, memory=2, cycles=8_000, seed=k, trees=[tree])
    fixed = 2 * 0.5 * 0.5**tree.rounds
    assert r.rate.contains(fixed)
    if r.eq9 > 1.1 * fixed:  # rotation balances the deepest hops: the fixed tree is slower
        assert not r.rate.contains(r.eq9)
    else:  # k = 3, 4, 7: every minimum-depth tree puts the same hops at full depth
        assert r.eq9 == pytest.approx(fixed)


def test_q1_gives_mp(grid) -> None:
    """q = 1: Eq. 9 is m*p for every k, and every hop's own rate interval (Bonferroni over
    the hops, family-wise over the grid) contains m*p."""
    pts = [r for _k, q, r in grid if q == 1.0]
    assert all(r.eq9 == pytest.approx(3 * 0.35) for r in pts)
    for r in pts:
        assert all(h.contains(3 * 0.35) for h in r.hop_rates), r.hops
        np.testing.assert_array_equal(r.mean_consumption, np.ones(r.hops))


def test_agreement_test_has_power() -> None:
    """Using the even-k branch for odd k (a plausible misreading) is rejected."""

    def even_branch(k: int, q: float) -> float:
        n = math.ceil(math.log2(k)) - 1
        return 3 * k * 0.35 * q ** (n + 1) / (2 * (k - 2**n) + q * (2 ** (n + 1) - k))

    for k in (3, 5, 7, 11, 13):
        r = ch.simulate_chain_rate(k, p=0.35, q=0.3, memory=3, cycles=20_000, seed=k)
        assert r.rate.contains(r.eq9)
        assert not r.rate.contains(even_branch(k, 0.3)), k


def test_mean_consumption_matches_tree_depths() -> None:
    r = ch.simulate_chain_rate(6, p=0.5, q=0.5, memory=1, cycles=40_000, seed=3)
    # every hop is at depth 3 with frequency 2/3, else depth 2
    expected = 2 / 3 * 2**3 + 1 / 3 * 2**2
    np.testing.assert_allclose(r.mean_consumption, expected, rtol=0.05)
    assert r.seed == 3


def test_trees_shapes() -> None:
    seq = st.sequential_tree(5)
    np.testing.assert_array_equal(seq.hop_depths(), [4, 4, 3, 2, 1])
    bal = st.balanced_tree(5)
    np.testing.assert_array_equal(bal.hop_depths(), [3, 3, 2, 2, 2])
    assert st.balanced_tree(1).rounds == 0
    assert st.balanced_tree(8).rounds == 3


# ----------------------------------------------------------------- slot-level simulator


def test_single_hop_rate_is_mp() -> None:
    r = ch.simulate_chain([10.0], q=0.5, memory=4, slots=400, trials=200, seed=1)
    mp = 4 * ph.link_success_probability(10.0, alpha_db_per_km=0.4)
    assert r.rate.contains(mp) or abs(r.rate.value - mp) < 3 * r.rate.half_width
    assert r.seed == 1


def _two_hop_markov_rate(p: float, q: float) -> float:
    """Exact stationary rate of the 2-hop, 1-unit protocol (states: which hop holds a pair)."""
    states = [(0, 0), (1, 0), (0, 1)]
    idx = {s: i for i, s in enumerate(states)}
    trans = np.zeros((3, 3))
    swap_prob = np.zeros(3)
    for s in states:
        for g1 in (0, 1):
            for g2 in (0, 1):
                pr1 = (p if g1 else 1 - p) if s[0] == 0 else (1.0 if g1 == 0 else 0.0)
                pr2 = (p if g2 else 1 - p) if s[1] == 0 else (1.0 if g2 == 0 else 0.0)
                pr = pr1 * pr2
                if pr == 0:
                    continue
                after = (s[0] or g1, s[1] or g2)
                if after == (1, 1):
                    swap_prob[idx[s]] += pr
                    after = (0, 0)
                trans[idx[s], idx[after]] += pr
    w, v = np.linalg.eig(trans.T)
    pi = np.real(v[:, np.argmin(abs(w - 1))])
    pi /= pi.sum()
    return float(pi @ swap_prob * q)


def test_two_hop_rate_matches_exact_markov_chain() -> None:
    d = 10.0
    p = ph.link_success_probability(d, alpha_db_per_km=0.4)
    r = ch.simulate_chain([d, d], q=0.7, memory=1, slots=1500, trials=400, level=0.99, seed=5)
    exact = _two_hop_markov_rate(p, 0.7)
    assert r.rate.contains(exact), (r.rate, exact)
    # and finite memory makes it smaller than Eq. 9's unlimited-memory rate
    assert exact < ph.chain_distribution_ratio(2, p=p, q=0.7, memory=1)


def test_two_hop_first_pair_time_matches_exact_mean() -> None:
    d, q = 10.0, 0.6
    p = ph.link_success_probability(d, alpha_db_per_km=0.4)
    r = ch.simulate_chain([d, d], q=q, memory=1, slots=600, trials=3000, level=0.99, seed=9)
    assert r.censored_fraction < 1e-3
    e_max_geo = 2 / p - 1 / (1 - (1 - p) ** 2)
    expected_slots = e_max_geo / q
    expected = expected_slots * r.attempt_time_s + (1 + 1) * (100e-6 + 1040e-6)
    assert r.first_pair is not None
    # censoring at 600 slots is negligible (P < 1e-3); allow the 99% CI
    assert r.first_pair.contains(expected), (r.first_pair, expected)


def test_memory_and_cutoff_effects() -> None:
    kw = dict(q=0.8, slots=600, trials=200, seed=2)
    r1 = ch.simulate_chain([8.0] * 4, memory=1, **kw)
    r4 = ch.simulate_chain([8.0] * 4, memory=4, **kw)
    assert r4.rate.low > r1.rate.high
    short = ch.simulate_chain([8.0] * 4, memory=2, cutoff_s=3 * 40e-6, **kw)
    none = ch.simulate_chain([8.0] * 4, memory=2, **kw)
    huge = ch.simulate_chain([8.0] * 4, memory=2, cutoff_s=1e6, **kw)
    assert short.rate.high < none.rate.low
    assert huge.rate.value == none.rate.value  # no pair ever expires: identical sample path


def test_sequential_slower_to_first_pair_than_nested() -> None:
    kw = dict(q=0.9, memory=2, slots=800, trials=300, seed=4)
    nested = ch.simulate_chain([5.0] * 8, schedule="nested", **kw)
    seq = ch.simulate_chain([5.0] * 8, schedule="sequential", **kw)
    assert nested.rounds == 3 and seq.rounds == 7
    assert np.nanmean(seq.first_pair_time_s) > np.nanmean(nested.first_pair_time_s)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"distances_km": [], "q": 0.5, "memory": 1}, "distances_km"),
        ({"distances_km": [1, -2], "q": 0.5, "memory": 1}, "distances_km"),
        ({"distances_km": [1], "q": 0.0, "memory": 1}, "q"),
        ({"distances_km": [1], "q": 0.5, "memory": 0}, "memory"),
        ({"distances_km": [1], "q": 0.5, "memory": 1, "schedule": "random"}, "schedule"),
        ({"distances_km": [1], "q": 0.5, "memory": 1, "cutoff_s": 0}, "cutoff_s"),
    ],
)
def test_simulate_chain_rejects_bad_input(kwargs: dict, name: str) -> None:
    d = kwargs.pop("distances_km")
    with pytest.raises(ValidationError, match=name):
        ch.simulate_chain(d, **kwargs)


def test_simulate_chain_rate_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="hops"):
        ch.simulate_chain_rate(0, p=0.5, q=0.5)
    with pytest.raises(ValidationError, match="p"):
        ch.simulate_chain_rate(3, p=1.5, q=0.5)
    with pytest.raises(ValidationError, match="memory"):
        ch.simulate_chain_rate(3, p=0.5, q=0.5, memory=0)
