"""Flexible key reconstruction, balanced matching and key reuse (SMR paper, Sec. III-C).

After multipath distribution every path of segment ``j`` has delivered one key
block ("path key") of known security probability. This module decides how the
path keys are combined:

- :func:`flexible_reconstruction` -- per segment, a priority queue (``heapq``)
  repeatedly combines the two least secure keys into one with security
  ``1 - (1-a)(1-b)``; the loop stops at the first state where all segments hold
  the same number ``m`` of keys and the least secure *global* key meets
  ``eps``. Global keys come from :func:`balanced_matching` (highest of one
  segment with lowest of the next) and have security = product over segments.
- :func:`reuse_reconstruction` -- the key-reuse variant: a path key may take
  part in several combinations, combinations below ``eps`` are discarded, and
  the combining function must be a cryptographic hash
  (:func:`combine_keys_hash`, HKDF-SHA-256, RFC 5869) because XOR combinations
  of overlapping key sets reveal each other (``(k1^k2) ^ (k2^k3) == k1^k3``).

Combining without reuse uses XOR (:func:`combine_keys_xor`), which is
information-theoretically secure when each path key is used once.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from planner.errors import ValidationError

logger = logging.getLogger(__name__)

#: group security callback: (segment index, member path-key indices) -> probability
GroupSecurity = Callable[[int, frozenset[int]], float]


@dataclass(frozen=True)
class ReconstructedKey:
    """A segment key: the combination of path keys ``members`` (indices into the segment)."""

    members: frozenset[int]
    security: float


@dataclass(frozen=True)
class GlobalKey:
    """An end-to-end key: ``parts[j]`` indexes the segment-``j`` key it is relayed with."""

    parts: tuple[int, ...]
    security: float


@dataclass(frozen=True)
class ReconstructionPlan:
    """How path keys become global keys for one request at security level ``eps``.

    ``segment_keys[j]`` lists segment ``j``'s reconstructed keys;
    ``global_keys`` the end-to-end keys (empty when ``eps`` cannot be met).
    ``reuse`` is True when members may overlap (then combine with a hash).
    """

    eps: float
    segment_keys: tuple[tuple[ReconstructedKey, ...], ...]
    global_keys: tuple[GlobalKey, ...]
    reuse: bool = False

    @property
    def n_global_keys(self) -> int:
        return len(self.global_keys)

    @property
    def min_security(self) -> float:
        """Security of the least secure global key (0 when there is none)."""
        return min((g.security for g in self.global_keys), default=0.0)


def independent_union(probabilities: Sequence[float]) -> float:
    """``1 - prod(1 - p)``: at least one of independent keys is secure."""
    return 1.0 - math.prod(1.0 - p for p in probabilities)


def _validate(segment_securities: Sequence[Sequence[float]], eps: float) -> None:
    if not (0.0 <= eps <= 1.0):
        raise ValidationError(f"eps={eps!r} must lie in [0, 1]", source="key request")
    for j, seg in enumerate(segment_securities):
        for i, p in enumerate(seg):
            if not (0.0 <= p <= 1.0):
                raise ValidationError(
                    f"segment {j}, path key {i}: security {p!r} outside [0, 1]",
                    source="path key securities",
                )


def greedy_states(
    securities: Sequence[float],
    *,
    segment: int = 0,
    group_security: GroupSecurity | None = None,
) -> dict[int, tuple[ReconstructedKey, ...]]:
    """All states of one segment's priority-queue reconstruction, by key count.

    Starting from one key per path, repeatedly pop the two least secure keys
    (ties: smaller member set first, then lower indices) and push their
    combination. Returns ``{count: keys sorted by (security, members)}`` for
    every count from ``len(securities)`` down to 1. The combination's security
    is ``group_security(segment, members)`` if given (exact for correlated
    paths), else ``1 - (1-a)(1-b)``.
    """
    n = len(securities)
    if n == 0:
        return {}
    heap: list[tuple[float, int, tuple[int, ...]]] = [(float(p), 1, (i,)) for i, p in enumerate(securities)]
    heapq.heapify(heap)
    states: dict[int, tuple[ReconstructedKey, ...]] = {}

    def snapshot() -> tuple[ReconstructedKey, ...]:
        return tuple(ReconstructedKey(frozenset(m), p) for p, _, m in sorted(heap))

    states[n] = snapshot()
    while len(heap) > 1:
        pa, _, ma = heapq.heappop(heap)
        pb, _, mb = heapq.heappop(heap)
        members = tuple(sorted(ma + mb))
        if group_security is not None:
            p = float(group_security(segment, frozenset(members)))
        else:
            p = 1.0 - (1.0 - pa) * (1.0 - pb)
        heapq.heappush(heap, (p, len(members), members))
        states[len(heap)] = snapshot()
    return states


def balanced_matching(
    segment_keys: Sequence[Sequence[float]],
) -> list[tuple[tuple[int, ...], float]]:
    """Match keys across segments: highest of the running product with lowest of the next.

    Every segment must hold the same number ``m`` of keys. Segment 0's keys
    are matched with segment 1's (most secure with least secure, second with
    second, ...), the products with segment 2's, and so on. Returns ``m``
    (parts, security) pairs, where ``parts[j]`` indexes ``segment_keys[j]``
    and security is the product. For two segments this maximises the least
    secure global key over all matchings.
    """
    if not segment_keys:
        return []
    m = len(segment_keys[0])
    if any(len(s) != m for s in segment_keys):
        raise ValidationError(
            "balanced matching needs the same number of keys in every segment: " + str([len(s) for s in segment_keys])
        )
    current: list[tuple[tuple[int, ...], float]] = [((i,), float(p)) for i, p in enumerate(segment_keys[0])]
    for seg in segment_keys[1:]:
        high_first = sorted(range(m), key=lambda i: (-current[i][1], i))
        low_first = sorted(range(m), key=lambda i: (seg[i], i))
        current = [
            (current[a][0] + (b,), current[a][1] * float(seg[b])) for a, b in zip(high_first, low_first, strict=True)
        ]
    return sorted(current, key=lambda x: (x[1], x[0]))


def flexible_reconstruction(
    segment_securities: Sequence[Sequence[float]],
    eps: float,
    *,
    group_security: GroupSecurity | None = None,
) -> ReconstructionPlan:
    """The paper's flexible key reconstruction for one request.

    ``segment_securities[j][i]`` is the security of path key ``i`` of segment
    ``j``. Each segment runs the priority-queue loop of :func:`greedy_states`;
    the loop stops at the largest common key count ``m`` for which the least
    secure balanced-matched global key has security ``>= eps`` (the paper's
    stopping rule: equal counts and the weakest global key meets ``eps``).

    Guarantees: every path key is used by exactly one segment key; all
    segments hold ``m`` keys; every global key meets ``eps``; with ``m + 1``
    keys (if possible) the weakest global key would not. If even one key per
    segment misses ``eps`` (or a segment has no path), no global key is made.
    Global security assumes segments are independent (true for SMR routes,
    whose segments share no untrusted relay).
    """
    _validate(segment_securities, eps)
    if not segment_securities or any(len(s) == 0 for s in segment_securities):
        return ReconstructionPlan(eps, tuple(() for _ in segment_securities), ())
    states = [greedy_states(seg, segment=j, group_security=group_security) for j, seg in enumerate(segment_securities)]
    m_max = min(len(s) for s in segment_securities)
    for m in range(m_max, 0, -1):
        keys = [st[m] for st in states]
        matched = balanced_matching([[k.security for k in ks] for ks in keys])
        if matched[0][1] >= eps:
            return ReconstructionPlan(
                eps,
                tuple(keys),
                tuple(GlobalKey(parts, sec) for parts, sec in matched),
            )
    last = tuple(st[1] for st in states)
    return ReconstructionPlan(eps, last, ())


def flexible_key_counts(
    segment_securities: Sequence[Sequence[float]],
    eps_values: Sequence[float],
    *,
    group_security: GroupSecurity | None = None,
) -> list[int]:
    """Number of global keys :func:`flexible_reconstruction` makes, for several ``eps`` at once.

    Same result as ``flexible_reconstruction(..., eps).n_global_keys`` for each
    ``eps`` (the priority-queue states are computed once).
    """
    for eps in eps_values:
        _validate(segment_securities, eps)
    if not segment_securities or any(len(s) == 0 for s in segment_securities):
        return [0 for _ in eps_values]
    states = [greedy_states(seg, segment=j, group_security=group_security) for j, seg in enumerate(segment_securities)]
    m_max = min(len(s) for s in segment_securities)
    weakest = {}
    for m in range(m_max, 0, -1):
        matched = balanced_matching([[k.security for k in st[m]] for st in states])
        weakest[m] = matched[0][1]
    out = []
    for eps in eps_values:
        out.append(next((m for m in range(m_max, 0, -1) if weakest[m] >= eps), 0))
    return out


def reuse_reconstruction(
    segment_securities: Sequence[Sequence[float]],
    eps: float,
    *,
    max_combination_size: int = 2,
    group_security: GroupSecurity | None = None,
) -> ReconstructionPlan:
    """Key-reuse variant: combinations of path keys may share keys.

    Per segment, every combination of 1..``max_combination_size`` path keys is
    a candidate segment key; candidates below ``eps`` are dropped (a global
    key cannot be more secure than any of its parts). Each segment keeps its
    ``m`` most secure candidates (``m`` = smallest candidate count over the
    segments), the segments are balanced-matched, and global keys below
    ``eps`` are discarded. Members overlap, so the keys MUST be combined with
    :func:`combine_keys_hash`, never XOR. Reused keys make global keys
    statistically dependent; each key's own security is still the stated
    probability.
    """
    _validate(segment_securities, eps)
    if max_combination_size < 1:
        raise ValidationError(f"max_combination_size={max_combination_size} must be >= 1")
    per_segment: list[list[ReconstructedKey]] = []
    for j, seg in enumerate(segment_securities):
        cands = []
        for size in range(1, min(max_combination_size, len(seg)) + 1):
            for combo in itertools.combinations(range(len(seg)), size):
                members = frozenset(combo)
                if group_security is not None:
                    p = float(group_security(j, members))
                else:
                    p = independent_union([seg[i] for i in combo])
                if p >= eps:
                    cands.append(ReconstructedKey(members, p))
        cands.sort(key=lambda k: (-k.security, len(k.members), sorted(k.members)))
        per_segment.append(cands)
    if not per_segment or any(not c for c in per_segment):
        return ReconstructionPlan(eps, tuple(tuple(c) for c in per_segment), (), reuse=True)
    m = min(len(c) for c in per_segment)
    keys = [tuple(sorted(c[:m], key=lambda k: (k.security, sorted(k.members)))) for c in per_segment]
    matched = balanced_matching([[k.security for k in ks] for ks in keys])
    kept = tuple(GlobalKey(parts, sec) for parts, sec in matched if sec >= eps)
    return ReconstructionPlan(eps, tuple(keys), kept, reuse=True)


# ---------------------------------------------------------------------------
# Combining real key material
# ---------------------------------------------------------------------------


def combine_keys_xor(keys: Sequence[bytes]) -> bytes:
    """XOR of equally long key blocks (secure only when each block is used once)."""
    if not keys:
        raise ValidationError("combine_keys_xor needs at least one key")
    length = len(keys[0])
    if any(len(k) != length for k in keys):
        raise ValidationError("combine_keys_xor needs key blocks of equal length")
    acc = int.from_bytes(keys[0], "big")
    for k in keys[1:]:
        acc ^= int.from_bytes(k, "big")
    return acc.to_bytes(length, "big")


def hkdf_sha256(ikm: bytes, *, length_bytes: int, salt: bytes = b"", info: bytes = b"") -> bytes:
    """HKDF with SHA-256 (RFC 5869): extract then expand to ``length_bytes``."""
    if length_bytes > 255 * 32:
        raise ValidationError(f"HKDF-SHA-256 output is limited to {255 * 32} bytes")
    prk = hmac.new(salt or b"\x00" * 32, ikm, hashlib.sha256).digest()
    out = b""
    block = b""
    counter = 1
    while len(out) < length_bytes:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length_bytes]


def combine_keys_hash(
    keys: Sequence[bytes], *, length_bytes: int | None = None, info: bytes = b"qkdplan-smr-reuse"
) -> bytes:
    """Hash combination for key reuse: HKDF-SHA-256 over the length-prefixed concatenation.

    Output length defaults to the input block length (at most 8160 bytes per
    call; longer blocks are processed in 8160-byte chunks with a chunk index in
    ``info``). Order of ``keys`` matters; callers pass members in index order.
    """
    if not keys:
        raise ValidationError("combine_keys_hash needs at least one key")
    length = length_bytes if length_bytes is not None else len(keys[0])
    ikm = b"".join(len(k).to_bytes(4, "big") + k for k in keys)
    chunk = 255 * 32
    parts = []
    for index, start in enumerate(range(0, length, chunk)):
        size = min(chunk, length - start)
        parts.append(hkdf_sha256(ikm, length_bytes=size, info=info + index.to_bytes(4, "big")))
    return b"".join(parts)
