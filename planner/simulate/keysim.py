"""Key-level simulation of segment-based multipath key distribution on real bytes.

What is simulated (SMR paper, Sec. II-A/III):

1. Every link ``(u, v)`` holds a key pool of ``pool_bits`` random bits shared
   by ``u`` and ``v`` (default 100 kb = 100 000 bits, the paper's setting).
2. For every path of every segment, the segment's start node draws a random
   path key and relays it hop by hop with one-time pads (OTP) taken from the
   link pools: on hop ``(u, v)`` it sends ``c = k XOR pad`` on the public
   classical channel, ``v`` decrypts, re-encrypts for the next hop, and so on.
   Pad bits are consumed and never reused.
3. Both segment ends combine path keys into segment keys as the
   :class:`~planner.keys.reconstruction.ReconstructionPlan` says (XOR, or HKDF-SHA-256 when
   keys are reused); the source draws every global key and relays it segment
   by segment, OTP-encrypted with the segment keys (``G XOR K_j`` is public).
   The simulator checks that both ends obtain identical bits.

Eavesdropper (threat model): every untrusted relay ``v`` is compromised
independently with probability ``1 - p_v``; trusted relays and the request end
points never are. The eavesdropper records (a) every ciphertext on every
classical channel (these are public), (b) everything a compromised relay holds
or sees: the pad bits of all its links and every plaintext key it relays. The
protocol itself (routes, reconstruction plan, matching) is public
(Kerckhoffs). A global key counts as *leaked* exactly when the eavesdropper can
compute it: :func:`eavesdrop` derives values by actually solving the recorded
XOR relations on real bytes (peeling: a relation with one unknown is solved
and the value propagates) and evaluating hash combinations whose inputs are all
known; a global key is leaked when its derived bytes equal the true key. It
never uses the analytic formula. Peeling is complete for these protocols:
without key reuse every relation chain that is not anchored by a compromised
relay has one more unknown than relations.

Many eavesdropper draws against the exact figure are run by
:mod:`planner.simulate.leaks`; one request end to end (route, reconstruction, block
size) by :mod:`planner.simulate.key_request`.

Random bits: ``rng`` (a seeded :class:`numpy.random.Generator`) is for
SIMULATION ONLY -- reproducible, not cryptographically secure. Pass
``rng=None`` to draw from :mod:`secrets`.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.errors import InfeasibleDesignError, ValidationError
from planner.keys.reconstruction import (
    ReconstructionPlan,
    combine_keys_hash,
    combine_keys_xor,
)
from planner.routing import RelaySecurity, SmrResult, edge_key

logger = logging.getLogger(__name__)

DEFAULT_POOL_BITS = 100_000

Symbol = tuple[Any, ...]


def random_bytes(n_bytes: int, rng: np.random.Generator | None) -> bytes:
    """``n_bytes`` random bytes: from ``rng`` (simulation only) or :mod:`secrets` when None."""
    if rng is None:
        return secrets.token_bytes(n_bytes)
    return rng.bytes(n_bytes)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


class RandomByteStream:
    """Random bytes from ``rng`` (simulation only) or :mod:`secrets` when None, drawn in chunks.

    ``take(n)`` returns the next ``n`` bytes of one long random stream; the
    generator is asked for ``chunk_bytes`` at a time, because one call per
    8-byte key costs far more than the bytes. Guarantees: for a seeded ``rng``
    the sequence of returned bytes depends only on the seed and the sequence of
    ``n``s, and every byte is uniform and independent of the others.
    """

    def __init__(self, rng: np.random.Generator | None, *, chunk_bytes: int = 4096):
        if chunk_bytes < 1:
            raise ValidationError(f"chunk_bytes={chunk_bytes} must be >= 1")
        self._rng = rng
        self._chunk = chunk_bytes
        self._buf = b""
        self._pos = 0

    def take(self, n_bytes: int) -> bytes:
        """The next ``n_bytes`` random bytes."""
        if n_bytes < 0:
            raise ValidationError(f"n_bytes={n_bytes} must be >= 0")
        end = self._pos + n_bytes
        if end <= len(self._buf):
            out = self._buf[self._pos : end]
            self._pos = end
            return out
        head = self._buf[self._pos :]
        need = n_bytes - len(head)
        fresh = random_bytes(max(need, self._chunk), self._rng)
        self._buf, self._pos = fresh, need
        return head + fresh[:need]


class LinkKeyPools:
    """Per-link key pools of ``pool_bits`` bits, consumed front to back.

    A pool's bits are drawn as they are consumed (from one :class:`RandomByteStream`
    of ``rng``): every pad is uniform and independent, as if the pool had been filled
    in advance, and only the consumed part is ever generated.
    """

    def __init__(self, *, pool_bits: int = DEFAULT_POOL_BITS, rng: np.random.Generator | None):
        if pool_bits < 8 or pool_bits % 8:
            raise ValidationError(f"pool_bits={pool_bits} must be a positive multiple of 8")
        self.pool_bytes = pool_bits // 8
        self._bytes = RandomByteStream(rng)
        self._offset: dict[tuple[Any, Any], int] = {}

    def take(self, u: Any, v: Any, n_bytes: int) -> tuple[tuple[Any, Any], int, bytes]:
        """Consume ``n_bytes`` pad bytes of link (u, v); returns (link, offset, pad).

        Raises ``InfeasibleDesignError`` (nothing consumed) when the pool holds fewer.
        """
        link = edge_key(u, v)
        start = self._offset.get(link, 0)
        if start + n_bytes > self.pool_bytes:
            raise InfeasibleDesignError(
                f"key pool of link {link!r} exhausted: needs {8 * (start + n_bytes)} bits, holds {8 * self.pool_bytes}",
                conflicts=["link-key-pool"],
            )
        self._offset[link] = start + n_bytes
        return link, start, self._bytes.take(n_bytes)

    def consumed_bits(self) -> dict[tuple[Any, Any], int]:
        return {link: 8 * off for link, off in self._offset.items()}


@dataclass
class Transcript:
    """Everything that happened in one distribution, split into what is public and private.

    ``relations``: XOR relations ``(symbols, rhs)`` meaning XOR of the symbols'
    values equals ``rhs`` (rhs are public ciphertexts or zero);
    ``hash_relations``: ``(symbol, member symbols)`` for hash-combined keys;
    ``seen_by[v]``: (symbol, bytes) pairs relay ``v`` holds or sees;
    ``truth``: true values (for checking only; the eavesdropper never reads it).
    """

    block_bytes: int
    relations: list[tuple[tuple[Symbol, ...], bytes]] = field(default_factory=list)
    hash_relations: list[tuple[Symbol, tuple[Symbol, ...]]] = field(default_factory=list)
    seen_by: dict[Any, list[tuple[Symbol, bytes]]] = field(default_factory=dict)
    truth: dict[Symbol, bytes] = field(default_factory=dict)
    global_keys_source: list[bytes] = field(default_factory=list)
    global_keys_target: list[bytes] = field(default_factory=list)
    relays: tuple[Any, ...] = ()

    @property
    def keys_agree(self) -> bool:
        """Both end points hold identical global keys."""
        return self.global_keys_source == self.global_keys_target


def distribute_keys(
    route: SmrResult,
    plan: ReconstructionPlan,
    *,
    block_bytes: int,
    pools: LinkKeyPools,
    rng: np.random.Generator | None,
) -> Transcript:
    """Run the distribution of ``plan``'s global keys over ``route`` on real bytes.

    Raises ``InfeasibleDesignError`` when a link pool runs out. The returned
    transcript's ``keys_agree`` says whether both ends obtained the same keys.
    """
    if block_bytes < 1:
        raise ValidationError(f"block_bytes={block_bytes} must be >= 1")
    tr = Transcript(block_bytes=block_bytes)
    key_bytes = RandomByteStream(rng)
    relays: set[Any] = set()
    zero = bytes(block_bytes)
    # path keys relayed hop by hop; both ends' copies kept
    end_copy: dict[Symbol, bytes] = {}
    for j, seg in enumerate(route.segments):
        for i, path in enumerate(seg.paths):
            sym = ("pk", j, i)
            key = key_bytes.take(block_bytes)
            tr.truth[sym] = key
            current = key
            for u, v in itertools.pairwise(path):
                link, offset, pad = pools.take(u, v, block_bytes)
                pad_sym = ("pad", link, offset)
                tr.truth[pad_sym] = pad
                cipher = _xor(current, pad)
                tr.relations.append(((sym, pad_sym), cipher))
                for node in (u, v):
                    if node not in (seg.start, seg.end):
                        tr.seen_by.setdefault(node, []).append((pad_sym, pad))
                current = _xor(cipher, pad)  # v decrypts
                if v != seg.end:
                    relays.add(v)
                    tr.seen_by.setdefault(v, []).append((sym, current))
            end_copy[sym] = current
    # segment keys at both segment ends
    seg_end_keys: list[list[bytes]] = []
    seg_start_keys: list[list[bytes]] = []
    for j, keys in enumerate(plan.segment_keys):
        starts, ends = [], []
        for idx, rk in enumerate(keys):
            members = [("pk", j, i) for i in sorted(rk.members)]
            sym = ("sk", j, idx)
            if plan.reuse:
                start_val = combine_keys_hash([tr.truth[m] for m in members])
                end_val = combine_keys_hash([end_copy[m] for m in members])
                tr.hash_relations.append((sym, tuple(members)))
            else:
                start_val = combine_keys_xor([tr.truth[m] for m in members])
                end_val = combine_keys_xor([end_copy[m] for m in members])
                tr.relations.append(((sym, *members), zero))
            tr.truth[sym] = start_val
            starts.append(start_val)
            ends.append(end_val)
        seg_start_keys.append(starts)
        seg_end_keys.append(ends)
    # global keys relayed segment by segment
    for g, gk in enumerate(plan.global_keys):
        gsym: Symbol = ("gk", g)
        value = key_bytes.take(block_bytes)
        tr.truth[gsym] = value
        current = value
        for j, part in enumerate(gk.parts):
            cipher = _xor(current, seg_start_keys[j][part])
            tr.relations.append(((gsym, ("sk", j, part)), cipher))
            current = _xor(cipher, seg_end_keys[j][part])
        tr.global_keys_source.append(value)
        tr.global_keys_target.append(current)
    tr.relays = tuple(sorted(relays, key=repr))
    return tr


def eavesdrop(transcript: Transcript, compromised: Collection[Any]) -> np.ndarray:
    """Which global keys the eavesdropper can compute from what it recorded.

    Starts from the material of the ``compromised`` relays and the public
    relations, solves XOR relations with one unknown and hash relations with
    all inputs known until nothing changes, then compares derived global keys
    with the true ones. Returns a boolean array (one per global key).
    Raises ``RuntimeError`` if a derived value disagrees with the truth (a bug).
    """
    known: dict[Symbol, bytes] = {}
    for node in compromised:
        for sym, value in transcript.seen_by.get(node, ()):
            known[sym] = value
    relations = list(transcript.relations)
    pending_hash = list(transcript.hash_relations)
    progress = True
    while progress:
        progress = False
        remaining = []
        for symbols, rhs in relations:
            unknown = [s for s in symbols if s not in known]
            if len(unknown) == 1:
                acc = rhs
                for s in symbols:
                    if s in known:
                        acc = _xor(acc, known[s])
                known[unknown[0]] = acc
                progress = True
            elif unknown:
                remaining.append((symbols, rhs))
        relations = remaining
        still = []
        for sym, members in pending_hash:
            if sym in known:
                continue
            if all(m in known for m in members):
                known[sym] = combine_keys_hash([known[m] for m in members])
                progress = True
            else:
                still.append((sym, members))
        pending_hash = still
    for sym, value in known.items():
        if transcript.truth.get(sym, value) != value:
            raise RuntimeError(f"eavesdropper derived a wrong value for {sym}: simulator bug")
    n = len(transcript.global_keys_source)
    return np.array([("gk", g) in known for g in range(n)], dtype=bool)


def draw_compromised(relays: Sequence[Any], relay: RelaySecurity, rng: np.random.Generator) -> set[Any]:
    """Each relay with probability below 1 is compromised independently with probability 1 - p."""
    p = np.array([relay.node(v) for v in relays], dtype=float)
    hit = rng.random(len(relays)) >= p
    return {v for v, h in zip(relays, hit, strict=True) if h}


def max_block_bits(
    route: SmrResult,
    *,
    pool_bits: int = DEFAULT_POOL_BITS,
    available_bits: Mapping[tuple[Any, Any], int] | None = None,
) -> int:
    """Largest path-key block (multiple of 8 bits) the link pools allow.

    Every path carries one block; a link used by ``n`` paths splits its pool
    ``n`` ways, so the block is ``min_link floor(pool / load)``. ``pool`` is
    ``available_bits[link]`` when given (links keyed as in
    :meth:`SmrResult.link_load`, i.e. sorted node pairs), else ``pool_bits``.
    """
    load = route.link_load()
    if not load:
        return 0
    avail = available_bits or {}
    bits = min(max(0, int(avail.get(link, pool_bits))) // n for link, n in load.items())
    return (bits // 8) * 8
