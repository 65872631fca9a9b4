"""Flexible key reconstruction, balanced matching, key reuse (SMR paper Sec. III-C)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import ValidationError
from planner.keys.reconstruction import (
    balanced_matching,
    combine_keys_hash,
    combine_keys_xor,
    flexible_key_counts,
    flexible_reconstruction,
    greedy_states,
    hkdf_sha256,
    independent_union,
    reuse_reconstruction,
)

prob = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
segments_strategy = st.lists(st.lists(prob, min_size=1, max_size=7), min_size=1, max_size=3)


def test_greedy_combines_two_least_secure_first():
    states = greedy_states([0.9, 0.2, 0.5, 0.1])
    assert sorted(states) == [1, 2, 3, 4]
    three = states[3]
    # 0.1 and 0.2 combine first: 1 - 0.9 * 0.8 = 0.28
    assert {frozenset(k.members) for k in three} == {
        frozenset({1, 3}),
        frozenset({2}),
        frozenset({0}),
    }
    assert any(sorted(k.members) == [1, 3] and k.security == pytest.approx(0.28) for k in three)
    two = states[2]
    # next the two least secure are 0.28 and 0.5 -> 1 - 0.72 * 0.5 = 0.64
    assert {frozenset(k.members) for k in two} == {frozenset({1, 2, 3}), frozenset({0})}
    assert sorted(k.security for k in two) == pytest.approx([0.64, 0.9])
    assert states[1][0].security == pytest.approx(1 - 0.1 * 0.8 * 0.5 * 0.9)


def test_flexible_reconstruction_two_segments_by_hand():
    seg1 = [0.9, 0.6]
    seg2 = [0.95, 0.7, 0.5]
    plan = flexible_reconstruction([seg1, seg2], 0.5)
    # seg2 must drop to 2 keys: 0.5 and 0.7 combine to 0.85 -> [0.85, 0.95]
    # matching: 0.9 with 0.85 and 0.6 with 0.95 -> min 0.57 >= 0.5
    assert plan.n_global_keys == 2
    assert sorted(g.security for g in plan.global_keys) == pytest.approx([0.57, 0.765])
    strict = flexible_reconstruction([seg1, seg2], 0.8)
    # one key per segment: 1-0.1*0.4 = 0.96 and 1-0.05*0.3*0.5 = 0.9925 -> 0.9528
    assert strict.n_global_keys == 1
    assert strict.global_keys[0].security == pytest.approx(0.96 * 0.9925)
    assert flexible_reconstruction([seg1, seg2], 0.99).n_global_keys == 0


@settings(max_examples=300, deadline=None)
@given(segments_strategy, st.floats(min_value=0.0, max_value=1.0))
def test_reconstruction_invariants(segments, eps):
    plan = flexible_reconstruction(segments, eps)
    m = plan.n_global_keys
    if m:
        for j, keys in enumerate(plan.segment_keys):
            assert len(keys) == m
            members = [i for k in keys for i in k.members]
            assert sorted(members) == list(range(len(segments[j])))  # each path key once
            for k in keys:
                assert k.security == pytest.approx(independent_union([segments[j][i] for i in k.members]))
        for g in plan.global_keys:
            assert g.security >= eps
            expected = math.prod(plan.segment_keys[j][part].security for j, part in enumerate(g.parts))
            assert g.security == pytest.approx(expected)
        for j in range(len(segments)):
            assert sorted(g.parts[j] for g in plan.global_keys) == list(range(m))
    # maximality: one more key per segment would miss eps
    m_max = min(len(s) for s in segments)
    if m < m_max:
        states = [greedy_states(seg) for seg in segments]
        bigger = balanced_matching([[k.security for k in st[m + 1]] for st in states])
        assert bigger[0][1] < eps
    assert flexible_key_counts(segments, [eps]) == [m]


@settings(max_examples=200, deadline=None)
@given(st.lists(prob, min_size=1, max_size=6), st.data())
def test_balanced_matching_maximises_weakest_key(a, data):
    b = data.draw(st.lists(prob, min_size=len(a), max_size=len(a)))
    matched = balanced_matching([a, b])
    weakest = min(sec for _, sec in matched)
    best = max(min(x * b[i] for x, i in zip(a, perm, strict=True)) for perm in itertools.permutations(range(len(b))))
    assert weakest == pytest.approx(best)
    assert sorted(p[0] for p, _ in matched) == list(range(len(a)))
    assert sorted(p[1] for p, _ in matched) == list(range(len(b)))


def test_balanced_matching_rejects_unequal_counts():
    with pytest.raises(ValidationError, match="same number"):
        balanced_matching([[0.5], [0.5, 0.6]])


def test_flexible_reconstruction_validates_input():
    with pytest.raises(ValidationError, match="eps"):
        flexible_reconstruction([[0.5]], 1.5)
    with pytest.raises(ValidationError, match="segment 0, path key 1"):
        flexible_reconstruction([[0.5, -0.1]], 0.5)
    assert flexible_reconstruction([[0.9], []], 0.1).n_global_keys == 0


def test_group_security_callback_is_used():
    # correlated keys: the callback's exact value replaces 1-(1-a)(1-b)
    plan = flexible_reconstruction([[0.5, 0.5]], 0.7, group_security=lambda j, m: 0.6)
    assert plan.n_global_keys == 0
    plan = flexible_reconstruction([[0.5, 0.5]], 0.7)
    assert plan.n_global_keys == 1 and plan.min_security == pytest.approx(0.75)


def test_key_reuse_makes_more_keys_than_single_use():
    seg = [0.6, 0.6, 0.6, 0.6]
    single = flexible_reconstruction([seg], 0.8)
    reuse = reuse_reconstruction([seg], 0.8, max_combination_size=2)
    assert single.n_global_keys == 2  # pairs 0.84
    assert reuse.n_global_keys == 6  # all C(4,2) pairs
    assert reuse.reuse
    assert all(g.security >= 0.8 for g in reuse.global_keys)
    assert all(len(k.members) <= 2 for k in reuse.segment_keys[0])
    two = reuse_reconstruction([seg, [0.9, 0.9]], 0.7)
    assert all(g.security >= 0.7 for g in two.global_keys)
    assert len({len(k) for k in two.segment_keys}) == 1


def test_xor_reuse_leaks_and_hash_reuse_does_not():
    rng = np.random.default_rng(0)  # simulation only
    k1, k2, k3 = (rng.bytes(32) for _ in range(3))
    a = combine_keys_xor([k1, k2])
    b = combine_keys_xor([k2, k3])
    c = combine_keys_xor([k1, k3])
    # an eavesdropper who learns two reused-XOR keys (e.g. after they were used
    # as one-time pads with known plaintext) computes the third without any path key
    assert combine_keys_xor([a, b]) == c
    ha = combine_keys_hash([k1, k2])
    hb = combine_keys_hash([k2, k3])
    hc = combine_keys_hash([k1, k3])
    assert combine_keys_xor([ha, hb]) != hc
    assert len({ha, hb, hc}) == 3 and all(len(h) == 32 for h in (ha, hb, hc))
    # and k1 ^ k2 is no longer a function of the outputs
    assert combine_keys_xor([ha, hb]) != combine_keys_xor([k1, k3])


def test_hkdf_matches_rfc5869_test_case_1():
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(0x0D))
    info = bytes(range(0xF0, 0xFA))
    okm = hkdf_sha256(ikm, length_bytes=42, salt=salt, info=info)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def test_hash_combination_handles_long_blocks_and_order():
    blocks = [bytes([i]) * 12_500 for i in range(3)]
    out = combine_keys_hash(blocks)
    assert len(out) == 12_500
    assert out != combine_keys_hash(list(reversed(blocks)))
    with pytest.raises(ValidationError):
        combine_keys_xor([b"ab", b"abc"])
