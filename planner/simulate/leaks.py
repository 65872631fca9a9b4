"""The eavesdropper of the key-level simulation, over many draws: leak counts vs the exact analysis.

:func:`leak_trials` re-runs the distribution of :mod:`planner.simulate.keysim` on real
bytes and draws compromised relays trial by trial; which global keys a draw leaks is
decided by :class:`PeelingStructure` (the peeling of :func:`~planner.simulate.keysim.eavesdrop`
on symbols, vectorised over draws) and cross-checked on the real bytes once per
distribution. :func:`analytic_global_security` is the exact figure it is compared with.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.errors import ValidationError
from planner.keys.reconstruction import ReconstructionPlan
from planner.routing import RelaySecurity, SmrResult, multipath_security
from planner.simulate.keysim import DEFAULT_POOL_BITS, LinkKeyPools, Symbol, Transcript, distribute_keys, eavesdrop

__all__ = ["PEEL_BATCH", "LeakStatistics", "PeelingStructure", "analytic_global_security", "leak_trials"]


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
