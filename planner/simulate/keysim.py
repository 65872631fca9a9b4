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

Random bits: ``rng`` (a seeded :class:`numpy.random.Generator`) is for
SIMULATION ONLY -- reproducible, not cryptographically secure. Pass
``rng=None`` to draw from :mod:`secrets`.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from planner.errors import InfeasibleDesignError, ValidationError
from planner.keys.reconstruction import (
    ReconstructionPlan,
    combine_keys_hash,
    combine_keys_xor,
    flexible_reconstruction,
)
from planner.routing import RelaySecurity, SmrResult, edge_key, multipath_security, smr

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


def analytic_global_security(route: SmrResult, plan: ReconstructionPlan, relay: RelaySecurity) -> np.ndarray:
    """Exact probability that each global key stays secret (shared relays included)."""
    out = []
    for gk in plan.global_keys:
        groups = []
        for j, part in enumerate(gk.parts):
            members = plan.segment_keys[j][part].members
            groups.append([route.segments[j].paths[i] for i in sorted(members)])
        out.append(multipath_security(groups, relay))
    return np.array(out, dtype=float)


@dataclass(frozen=True)
class LeakStatistics:
    """Empirical vs analytic leak rates of a route + plan over ``n_trials`` eavesdroppers."""

    n_trials: int
    leaked_count: np.ndarray  # per global key
    analytic_leak: np.ndarray  # per global key, 1 - exact security
    any_leaked_count: int

    @property
    def empirical_leak(self) -> np.ndarray:
        return self.leaked_count / self.n_trials


def _padded(rows: Sequence[Sequence[int]], fill: int) -> np.ndarray:
    """Ragged integer lists as one ``(len(rows), longest)`` array, short rows padded with ``fill``."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), fill, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@dataclass(frozen=True)
class PeelingStructure:
    """The symbolic shape of a transcript: which relay reveals which symbol, and the relations.

    Stored as padded index arrays so the peeling runs over many eavesdropper draws at
    once with gathers and reductions only (no matrix products, so no BLAS threads):
    ``symbol_relays[s]`` the relays (indices into ``relays``) that hold or see symbol
    ``s``, padded with ``len(relays)``; ``xor_members[i]`` the symbols of XOR relation
    ``i``, padded with ``len(symbols)`` (a symbol that is always known);
    ``symbol_xors[s]`` the XOR relations symbol ``s`` occurs in, padded with
    ``len(xor_members)`` (a relation never solvable); ``hash_members[i]`` the inputs of
    hash relation ``i`` (padded like ``xor_members``), whose output symbol is
    ``hash_target[i]``; ``global_index[g]`` the symbol of global key ``g``. The
    structure depends only on the route and the plan, not on the bytes, so one
    structure serves every transcript of the same route and plan.
    """

    relays: tuple[Any, ...]
    symbols: tuple[Symbol, ...]
    symbol_relays: np.ndarray
    xor_members: np.ndarray
    symbol_xors: np.ndarray
    hash_members: np.ndarray
    hash_target: np.ndarray
    global_index: np.ndarray

    @classmethod
    def of(cls, transcript: Transcript) -> PeelingStructure:
        """The structure of ``transcript`` (relays in ``transcript.relays`` order)."""
        index: dict[Symbol, int] = {}

        def ix(sym: Symbol) -> int:
            return index.setdefault(sym, len(index))

        xor_rows = [sorted({ix(sym) for sym in symbols}) for symbols, _ in transcript.relations]
        hash_rows = []
        hash_target = []
        for sym, members in transcript.hash_relations:
            hash_target.append(ix(sym))
            hash_rows.append(sorted({ix(m) for m in members}))
        global_index = [ix(("gk", g)) for g in range(len(transcript.global_keys_source))]
        seen_rows: list[set[int]] = []
        for node in transcript.relays:
            seen_rows.append({ix(sym) for sym, _ in transcript.seen_by.get(node, ())})
        n_sym = len(index)
        relays_of: list[list[int]] = [[] for _ in range(n_sym)]
        for r, seen in enumerate(seen_rows):
            for k in seen:
                relays_of[k].append(r)
        xors_of: list[list[int]] = [[] for _ in range(n_sym)]
        for i, row in enumerate(xor_rows):
            for k in row:
                xors_of[k].append(i)
        return cls(
            relays=tuple(transcript.relays),
            symbols=tuple(sorted(index, key=index.__getitem__)),
            symbol_relays=_padded(relays_of, len(transcript.relays)),
            xor_members=_padded(xor_rows, n_sym),
            symbol_xors=_padded(xors_of, len(xor_rows)),
            hash_members=_padded(hash_rows, n_sym),
            hash_target=np.array(hash_target, dtype=np.int64),
            global_index=np.array(global_index, dtype=np.int64),
        )

    def leaked(self, compromised: np.ndarray) -> np.ndarray:
        """Which global keys each eavesdropper draw can compute: ``(draws, global keys)`` booleans.

        ``compromised[t, r]``: draw ``t`` holds relay ``relays[r]``. Runs the same
        peeling as :func:`eavesdrop` on symbols instead of bytes (a relation with one
        unknown symbol makes it known; a hash relation with all inputs known makes its
        output known) for all draws at once, until nothing changes. The closure does
        not depend on the order relations are solved in, so the result equals
        :func:`eavesdrop`'s for every draw.
        """
        comp = np.asarray(compromised, dtype=bool)
        n_relays, n_sym = len(self.relays), len(self.symbols)
        if comp.ndim != 2 or comp.shape[1] != n_relays:
            raise ValueError(f"compromised must have shape (draws, {n_relays}), got {comp.shape}")
        draws = comp.shape[0]
        comp_ext = np.zeros((draws, n_relays + 1), dtype=bool)
        comp_ext[:, :n_relays] = comp
        known = np.ones((draws, n_sym + 1), dtype=bool)  # the last column: the always-known pad symbol
        known[:, :n_sym] = comp_ext[:, self.symbol_relays].any(axis=2)
        n_xor = len(self.xor_members) if len(self.symbol_xors) and n_sym else 0
        solvable = np.zeros((draws, n_xor + 1), dtype=bool)  # the last column: never solvable
        while True:
            changed = False
            if n_xor:
                unknown = np.count_nonzero(~known[:, self.xor_members], axis=2)
                solvable[:, :n_xor] = unknown == 1
                gained = solvable[:, self.symbol_xors].any(axis=2) & ~known[:, :n_sym]
                if gained.any():
                    known[:, :n_sym] |= gained
                    changed = True
            if len(self.hash_target):
                ready = known[:, self.hash_members].all(axis=2)
                gained = ready & ~known[:, self.hash_target]
                if gained.any():
                    known[:, self.hash_target] |= gained
                    changed = True
            if not changed:
                return known[:, self.global_index]


#: Eavesdropper draws peeled together (bounds the ``draws x symbols`` matrices).
PEEL_BATCH = 512


def leak_trials(
    route: SmrResult,
    plan: ReconstructionPlan,
    *,
    trusted: Collection[Any],
    security: Mapping[Any, float] | float,
    n_trials: int,
    rng: np.random.Generator,
    block_bytes: int = 8,
    pool_bits: int = DEFAULT_POOL_BITS,
    fresh_keys_every: int = 50,
) -> LeakStatistics:
    """Monte Carlo of the eavesdropper on real bytes.

    Every ``fresh_keys_every`` trials the whole distribution is re-run with new
    pools and keys (its end points must agree); every trial draws a new set of
    compromised relays. Which global keys a draw leaks is decided by
    :meth:`PeelingStructure.leaked`, vectorised over draws; for every fresh
    distribution the draw with the most compromised relays (the first such) is
    also attacked on the real bytes with :func:`eavesdrop`, which must derive
    exactly the same keys (else ``RuntimeError``: a simulator bug).

    Guarantees: the random stream is consumed exactly as by one
    :func:`distribute_keys` per fresh distribution followed by one
    :func:`draw_compromised` per trial, so the counts equal those of running
    :func:`eavesdrop` trial by trial with the same ``rng``. Returns counts per
    global key and the analytic leak probability for comparison.
    """
    if fresh_keys_every < 1:
        raise ValidationError(f"fresh_keys_every={fresh_keys_every} must be >= 1")
    relay = RelaySecurity(security, trusted)
    counts = np.zeros(plan.n_global_keys, dtype=np.int64)
    any_count = 0
    structure: PeelingStructure | None = None
    p: np.ndarray | None = None
    pending: list[np.ndarray] = []

    def flush() -> None:
        nonlocal counts, any_count
        if structure is None or not pending:
            return
        comp = np.concatenate(pending, axis=0)
        pending.clear()
        leaked = structure.leaked(comp)
        counts += leaked.sum(axis=0, dtype=np.int64)
        any_count += int(leaked.any(axis=1).sum())

    n_pending = 0
    for start in range(0, n_trials, fresh_keys_every):
        n_block = min(fresh_keys_every, n_trials - start)
        pools = LinkKeyPools(pool_bits=pool_bits, rng=rng)
        transcript = distribute_keys(route, plan, block_bytes=block_bytes, pools=pools, rng=rng)
        if not transcript.keys_agree:
            raise RuntimeError("end points disagree on the global keys: simulator bug")
        if structure is None:
            structure = PeelingStructure.of(transcript)
            p = np.array([relay.node(v) for v in structure.relays], dtype=float)
        elif transcript.relays != structure.relays:  # pragma: no cover - distribute_keys is deterministic
            raise RuntimeError("the same route gave different relays: simulator bug")
        assert p is not None
        comp = rng.random((n_block, len(p))) >= p
        # the real-byte attack on this distribution's hardest draw must agree with the peeling
        t = int(np.argmax(comp.sum(axis=1))) if comp.size else 0
        chosen = {v for v, hit in zip(structure.relays, comp[t], strict=True) if hit} if comp.size else set()
        on_bytes = eavesdrop(transcript, chosen)
        on_symbols = structure.leaked(comp[t : t + 1])[0]
        if not np.array_equal(on_bytes, on_symbols):
            raise RuntimeError(
                f"eavesdropper on bytes {on_bytes.tolist()} and on symbols {on_symbols.tolist()} disagree: "
                "simulator bug"
            )
        pending.append(comp)
        n_pending += n_block
        if n_pending >= PEEL_BATCH:
            flush()
            n_pending = 0
    flush()
    analytic = 1.0 - analytic_global_security(route, plan, relay)
    return LeakStatistics(n_trials, counts, analytic, any_count)


# ---------------------------------------------------------------------------
# One request end to end (used by the network verifier)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestOutcome:
    """Result of routing and reconstructing keys for one request.

    ``block_bits``: bits each path key carries; ``delivered_key_bits``: global
    key bits the end points obtain (``n_global_keys * block_bits``, capped at
    the requested ``key_bits``); ``consumed_key_bits``: link-pool bits used
    (``total_hops * block_bits``; 0 when nothing is delivered, since the
    central server then does not start the distribution);
    ``security``: security of the least secure global key (0 if none);
    ``end_to_end_security``: security when all path keys are combined;
    ``consumed_bits_per_link``: link (sorted node pair) -> bits used;
    ``leaked``: per global key, from one eavesdropper draw on real bytes
    (only when ``simulate_bytes=True``).
    """

    route: SmrResult
    plan: ReconstructionPlan
    block_bits: int
    delivered_key_bits: int
    consumed_key_bits: int
    security: float
    end_to_end_security: float
    consumed_bits_per_link: Mapping[tuple[Any, Any], int] = field(default_factory=dict)
    leaked: tuple[bool, ...] | None = None

    @property
    def n_global_keys(self) -> int:
        return self.plan.n_global_keys


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


def route_and_reconstruct(
    graph: nx.Graph,
    source: Any,
    target: Any,
    *,
    trusted: Collection[Any],
    security: Mapping[Any, float] | float,
    eps: float,
    key_bits: int | None = None,
    rng: np.random.Generator | None = None,
    pool_bits: int = DEFAULT_POOL_BITS,
    available_bits: Mapping[tuple[Any, Any], int] | None = None,
    simulate_bytes: bool = False,
) -> RequestOutcome:
    """Route a key request with SMR, plan flexible reconstruction at ``eps``, and size it.

    ``key_bits`` (optional) is the demand: path blocks are shrunk to
    ``ceil(key_bits / m)`` (rounded up to whole bytes) when that is below the
    pool limit, so only the needed link key is consumed. ``available_bits``
    gives the remaining key of each link (sorted node pair -> bits; missing
    links hold ``pool_bits``), so a traffic simulation can deduct
    ``consumed_bits_per_link`` request by request. With
    ``simulate_bytes=True`` the distribution is run on real bytes (``rng``:
    seeded simulation-only generator, or ``secrets`` when None) and one
    eavesdropper draw decides ``leaked``.
    """
    if key_bits is not None and key_bits < 0:
        raise ValidationError(f"key_bits={key_bits} must be >= 0", source="key request")
    route = smr(graph, source, target, trusted=trusted, security=security)
    plan = flexible_reconstruction([list(seg.path_security) for seg in route.segments], eps)
    m = plan.n_global_keys
    block = max_block_bits(route, pool_bits=pool_bits, available_bits=available_bits) if m else 0
    if m and key_bits is not None:
        block = min(block, 8 * math.ceil(key_bits / m / 8))
    delivered = m * block
    if key_bits is not None:
        delivered = min(delivered, key_bits)
    consumed = route.total_hops * block if m else 0
    per_link = {link: n * block for link, n in route.link_load().items()} if m and block else {}
    leaked: tuple[bool, ...] | None = None
    if simulate_bytes and m and block:
        pools = LinkKeyPools(pool_bits=pool_bits, rng=rng)
        tr = distribute_keys(route, plan, block_bytes=block // 8, pools=pools, rng=rng)
        if not tr.keys_agree:
            raise RuntimeError("end points disagree on the global keys: simulator bug")
        relay = RelaySecurity(security, trusted)
        draw_rng = rng if rng is not None else np.random.default_rng(secrets.randbits(64))
        leaked = tuple(bool(x) for x in eavesdrop(tr, draw_compromised(tr.relays, relay, draw_rng)))
    return RequestOutcome(
        route=route,
        plan=plan,
        block_bits=block,
        delivered_key_bits=delivered,
        consumed_key_bits=consumed,
        security=plan.min_security,
        end_to_end_security=route.security,
        consumed_bits_per_link=per_link,
        leaked=leaked,
    )
