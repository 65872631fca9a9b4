"""Monte Carlo simulation of a repeater chain, to verify Eq. 7-10 of the cluster paper.

Two simulators, both vectorised with numpy over many independent trials:

* :func:`simulate_chain_rate` -- the stochastic protocol of which Eq. 9 is the exact
  long-run rate (derivation in ``docs/cluster_model_vs_simulation.md``): every edge
  produces link pairs with ``m`` units that each succeed with probability ``p`` per slot,
  storage is unlimited, swaps follow a minimum-depth (nested) swap tree, a failed swap
  loses both input pairs (the subtrees are rebuilt), and successive end-to-end pairs
  rotate through the trees of :func:`eq9_schedule`, which balance the load of the
  bottleneck edges (any other schedule of trees can be passed, e.g. one fixed tree).
  The rate is estimated hop by hop with a renewal (regenerative) estimator over cycles
  of one end-to-end pair each: the link pairs a cycle consumes on every hop are drawn
  from the actual swap-retry process, the slots each hop needs to produce them from the
  actual Bernoulli link attempts, and the slowest hop sets the rate.

* :func:`simulate_chain` -- a slot-by-slot simulation of the physical protocol: ``m``
  memory units at each end of every edge (a stored pair blocks a unit until it is swapped
  or lost), link attempts on the free units, a fixed swap order (``"nested"``: balanced
  tree; ``"sequential"``: hop by hop from the left), swap success ``q``, an optional
  memory cutoff after which stored pairs are discarded, unequal hop lengths, and the
  time to the first end-to-end pair including ``t_mea`` and ``t_ret``. It quantifies how
  far the paper's simplifications are from this protocol.

The swap trees both follow are built in :mod:`planner.simulate.swap_trees`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner import physics
from planner.errors import ProblemCollector
from planner.simulate.stats import MeanCI, Seed, inverse_mean_ci, make_rng, mean_ci, seed_of
from planner.simulate.swap_trees import SwapTree, balanced_tree, check_hops, eq9_schedule, sequential_tree

logger = logging.getLogger(__name__)

__all__ = [
    "ChainRateResult",
    "simulate_chain_rate",
    "ChainSimResult",
    "simulate_chain",
]

Schedule = Literal["nested", "sequential"]


# ---------------------------------------------------------------------------------------
# the Eq. 9 protocol: renewal estimator
# ---------------------------------------------------------------------------------------


def _negbin_failures(rng: np.random.Generator, successes: NDArray[np.int64], prob: float) -> NDArray[np.int64]:
    """Failures before ``successes`` successes of Bernoulli(prob) trials (0 where n = 0)."""
    out = np.zeros_like(successes)
    if prob >= 1.0:
        return out
    pos = successes > 0
    if np.any(pos):
        out[pos] = rng.negative_binomial(successes[pos], prob)
    return out


def _tree_consumption(tree: SwapTree, cycles: int, q: float, rng: np.random.Generator) -> NDArray[np.int64]:
    """Link pairs consumed on every hop to deliver one end-to-end pair (cycles x hops)."""
    needed = np.zeros((tree.n_nodes, cycles), dtype=np.int64)
    needed[0] = 1
    for v in range(tree.n_nodes):
        a, b = tree.left[v], tree.right[v]
        if a < 0:
            continue
        attempts = needed[v] + _negbin_failures(rng, needed[v], q)
        needed[a] = attempts
        needed[b] = attempts
    return needed[tree.leaf_of_hop()].T


@dataclass(frozen=True)
class ChainRateResult:
    """Long-run end-to-end pairs per attempt slot of a swap-tree schedule, with its CI."""

    hops: int
    p: float
    q: float
    memory: float
    cycles: int
    seed: int | None
    rate: MeanCI
    """End-to-end pairs per attempt slot: the rate of the slowest hop (``value``), with a
    simultaneous interval (``low``, ``high``) at ``level`` (see :func:`simulate_chain_rate`)."""
    mean_consumption: NDArray[np.float64] = field(repr=False)
    """Mean link pairs consumed per end-to-end pair, per hop."""
    bottleneck_hops: NDArray[np.int64] = field(repr=False)
    """Hops whose simulated rate interval reaches below the upper end of the slowest
    hop's: the hops that may limit the rate."""
    hop_rates: tuple[MeanCI, ...] = field(default=(), repr=False)
    """Per hop: the rate that hop alone would allow (pairs per slot), Bonferroni CI."""
    n_trees: int = 1
    """How many swap trees the schedule rotates through."""

    @property
    def eq9(self) -> float:
        """Eq. 9 for the same parameters, for comparison."""
        return float(physics.chain_distribution_ratio(self.hops, p=self.p, q=self.q, memory=self.memory))


def _validate_probs(pc: ProblemCollector, **values: float) -> None:
    for name, val in values.items():
        if not (isinstance(val, int | float) and 0.0 < float(val) <= 1.0):
            pc.add(name, f"must be a probability in (0, 1], got {val!r}", "use 0 < value <= 1")


def simulate_chain_rate(
    hops: int,
    *,
    p: float,
    q: float,
    memory: float = 1.0,
    cycles: int = 20_000,
    level: float = 0.99,
    seed: Seed = 0,
    trees: Sequence[SwapTree] | None = None,
) -> ChainRateResult:
    """Monte Carlo estimate of the long-run rate of a rotating swap-tree schedule.

    The protocol: end-to-end pair ``i`` is built along tree ``trees[i % len(trees)]``
    (default :func:`eq9_schedule`, the rotating minimum-depth trees Eq. 9 prices; pass
    ``[balanced_tree(k)]`` for one fixed tree). Every swap is retried until it succeeds
    (probability ``q``); a failure consumes both inputs, which are rebuilt from fresh
    link pairs. Every hop produces its link pairs with Bernoulli(``p``) attempts on its
    ``memory`` units in parallel every slot, and storage is unlimited, so in the long run
    each hop ``h`` needs ``A_h(N) / memory`` slots for the ``N`` pairs, ``A_h(N)`` being
    the attempts that produce the link pairs the ``N`` cycles consume on ``h``. The rate
    is therefore that of the **slowest hop**, ``N / max_h A_h(N) * memory``, hop by hop,
    not a pooled average over hops.

    The interval: each hop's rate gets a delta-method CI at level
    ``1 - (1 - level) / hops`` (Bonferroni), so with probability at least ``level`` all of
    them cover at once and then ``[min_h low_h, min_h high_h]`` covers the true minimum.
    Guarantees: ``q = 1`` gives ``memory * p``; a single fixed tree gives
    ``memory * p * q**depth`` for its deepest leaf.
    """
    k = _checked_rate_arguments(hops, p=p, q=q, memory=memory, cycles=cycles, level=level, trees=trees)
    rng = make_rng(seed)
    schedule = list(trees) if trees is not None else eq9_schedule(k)
    cycles = int(cycles)
    consumed = np.zeros((cycles, k), dtype=np.int64)
    for j, tree in enumerate(schedule):
        rows = np.arange(j, cycles, len(schedule))
        if rows.size:
            consumed[rows] = _tree_consumption(tree, rows.size, float(q), rng)
    attempts = consumed + _negbin_failures(rng, consumed.ravel(), float(p)).reshape(consumed.shape)
    slots = attempts / float(memory)  # cycles x hops: slots hop h spends on cycle i
    hop_rates = _hop_rates(slots, level=1.0 - (1.0 - level) / k)
    slowest = min(range(k), key=lambda h: hop_rates[h].value)
    rate = MeanCI(
        hop_rates[slowest].value,
        min(r.low for r in hop_rates),
        min(r.high for r in hop_rates),
        level,
        cycles,
    )
    limiting = np.array([h for h in range(k) if hop_rates[h].low <= rate.high], dtype=np.int64)
    return ChainRateResult(
        hops=k,
        p=float(p),
        q=float(q),
        memory=float(memory),
        cycles=cycles,
        seed=seed_of(seed),
        rate=rate,
        mean_consumption=consumed.mean(axis=0),
        bottleneck_hops=limiting,
        hop_rates=tuple(hop_rates),
        n_trees=len(schedule),
    )


def _checked_rate_arguments(
    hops: int,
    *,
    p: float,
    q: float,
    memory: float,
    cycles: int,
    level: float,
    trees: Sequence[SwapTree] | None,
) -> int:
    """The number of hops; raises ``ValidationError`` naming every bad argument of :func:`simulate_chain_rate`."""
    pc = ProblemCollector("simulate_chain_rate")
    k = check_hops(hops)
    _validate_probs(pc, p=p, q=q)
    if not memory >= 1:
        pc.add("memory", f"must be >= 1, got {memory!r}", "use at least one memory unit")
    if int(cycles) != cycles or cycles < 2:
        pc.add("cycles", f"must be an integer >= 2, got {cycles!r}", "use e.g. 20000")
    if not 0.0 < level < 1.0:
        pc.add("level", f"must be in (0, 1), got {level!r}", "use e.g. 0.99")
    if trees is not None:
        if len(trees) == 0:
            pc.add("trees", "must hold at least one swap tree", "omit it for eq9_schedule")
        elif any(t.hops != k for t in trees):
            pc.add("trees", f"every tree must span {k} hops", "build them for this chain")
    pc.raise_if_any()
    return k


def _hop_rates(slots: NDArray[np.float64], *, level: float) -> list[MeanCI]:
    """Per hop (column of ``slots``, the slots that hop spent on each cycle): pairs per slot with a CI at ``level``.

    A hop that spent the same number of slots on every cycle gets that exact rate (a zero-width interval).
    """
    cycles, hops = slots.shape
    out: list[MeanCI] = []
    for h in range(hops):
        col = slots[:, h]
        if np.all(col == col[0]):
            v = 1.0 / float(col[0])
            out.append(MeanCI(v, v, v, level, cycles))
        else:
            out.append(inverse_mean_ci(col, level=level))
    return out


# ---------------------------------------------------------------------------------------
# slot-by-slot simulation of the physical protocol
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainSimResult:
    """Outcome of :func:`simulate_chain` (all times in seconds, rates per attempt slot)."""

    distances_km: tuple[float, ...]
    p_hops: tuple[float, ...]
    q: float
    memory: int
    schedule: str
    cutoff_slots: int | None
    slots: int
    warmup_slots: int
    trials: int
    attempt_time_s: float
    swap_time_s: float
    seed: int | None
    rate: MeanCI
    """End-to-end pairs per attempt slot after warm-up, mean over trials with CI."""
    first_pair_time_s: NDArray[np.float64] = field(repr=False)
    """Time until ``pairs_needed`` end-to-end pairs per trial (``nan`` if not reached)."""
    first_pair: MeanCI | None
    """Mean of ``first_pair_time_s`` over the trials that reached it, with CI."""
    pairs_needed: int
    censored_fraction: float
    rounds: int

    @property
    def hops(self) -> int:
        return len(self.distances_km)

    @property
    def rate_hz(self) -> float:
        """End-to-end pairs per second."""
        return self.rate.value / self.attempt_time_s


def _segment_end_matrices(tree: SwapTree) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Which stored segment occupies a unit at the left/right end of which hop."""
    lmat = np.zeros((tree.n_nodes, tree.hops), dtype=np.int64)
    rmat = np.zeros((tree.n_nodes, tree.hops), dtype=np.int64)
    for v in range(tree.n_nodes):
        lmat[v, tree.lo[v]] = 1
        rmat[v, tree.hi[v] - 1] = 1
    return lmat, rmat


def _check_chain_arguments(
    d: NDArray[np.float64],
    q: float,
    memory: int,
    schedule: str,
    slots: int,
    trials: int,
    alpha_db_per_km: float,
    cutoff_s: float | None,
    pairs_needed: int,
    warmup_slots: int | None,
) -> None:
    """Raise ``ValidationError`` naming every bad argument of :func:`simulate_chain` (``d``: the hop lengths)."""
    pc = ProblemCollector("simulate_chain")
    if d.ndim != 1 or d.size == 0 or np.any(~np.isfinite(d)) or np.any(d < 0):
        pc.add("distances_km", "must be a non-empty list of hop lengths >= 0", "e.g. [10, 10]")
    _validate_probs(pc, q=q)
    if isinstance(memory, bool) or int(memory) != memory or memory < 1:
        pc.add("memory", f"must be an integer >= 1, got {memory!r}", "use at least one unit")
    if schedule not in ("nested", "sequential"):
        pc.add("schedule", f"unknown schedule {schedule!r}", "use 'nested' or 'sequential'")
    if int(slots) != slots or slots < 2:
        pc.add("slots", f"must be an integer >= 2, got {slots!r}", "use e.g. 2000")
    if int(trials) != trials or trials < 2:
        pc.add("trials", f"must be an integer >= 2, got {trials!r}", "use e.g. 500")
    if alpha_db_per_km < 0:
        pc.add("alpha_db_per_km", f"must be >= 0, got {alpha_db_per_km}", "use e.g. 0.4")
    if cutoff_s is not None and not cutoff_s > 0:
        pc.add("cutoff_s", f"must be > 0, got {cutoff_s!r}", "omit it for no cutoff")
    if isinstance(pairs_needed, bool) or int(pairs_needed) != pairs_needed or pairs_needed < 1:
        pc.add("pairs_needed", f"must be an integer >= 1, got {pairs_needed!r}", "e.g. 1")
    if warmup_slots is not None and not 0 <= warmup_slots < slots:
        pc.add("warmup_slots", f"must be in [0, slots), got {warmup_slots!r}", "e.g. slots // 10")
    pc.raise_if_any()


class _PairStore:
    """The stored pairs of every trial, per node of a swap tree, for :func:`simulate_chain`.

    ``births[v, trial]`` holds the birth slots of the pairs node ``v``'s segment has
    stored, sorted oldest first and padded with ``inf`` to ``memory`` units;
    ``counts[v, trial]`` how many there are. A stored pair blocks one unit at each of
    the two end nodes of its segment.
    """

    def __init__(self, tree: SwapTree, trials: int, memory: int) -> None:
        self.tree = tree
        self.trials = trials
        self.memory = memory
        self.lmat, self.rmat = _segment_end_matrices(tree)
        self.leaf_of_hop = tree.leaf_of_hop()
        self.internal_bottom_up = [v for v in reversed(range(tree.n_nodes)) if tree.left[v] >= 0]
        self.births = np.full((tree.n_nodes, trials, memory), np.inf)
        self.counts = np.zeros((tree.n_nodes, trials), dtype=np.int64)
        self.unit = np.arange(memory)

    def run(
        self,
        slots: int,
        *,
        warm: int,
        cutoff_slots: int | None,
        p_hops: NDArray[np.float64],
        q: float,
        pairs_needed: int,
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Run ``slots`` slots; per trial the end-to-end pairs delivered from slot ``warm`` on, and the
        slot in which the ``pairs_needed``-th pair was delivered (-1: never)."""
        delivered = np.zeros(self.trials, dtype=np.int64)
        cumulative = np.zeros(self.trials, dtype=np.int64)
        first_slot = np.full(self.trials, -1, dtype=np.int64)
        for t in range(slots):
            if cutoff_slots is not None:
                self.expire(t - cutoff_slots)
            got = self.step(t, p_hops, q, rng)
            cumulative += got
            first_slot[(first_slot < 0) & (cumulative >= pairs_needed)] = t
            if t >= warm:
                delivered += got
        return delivered, first_slot

    def expire(self, oldest_kept: int) -> None:
        """Discard every pair born at or before slot ``oldest_kept``."""
        expired = self.births <= oldest_kept
        if expired.any():
            self.births[expired] = np.inf
            self.counts -= expired.sum(axis=2)
            self.births.sort(axis=2)

    def step(self, t: int, p_hops: NDArray[np.float64], q: float, rng: np.random.Generator) -> NDArray[np.int64]:
        """Slot ``t``: link attempts on the free units, then the swaps bottom-up; end-to-end pairs per trial."""
        free = self.memory - np.maximum(self.counts.T @ self.lmat, self.counts.T @ self.rmat)
        new = rng.binomial(free, p_hops[None, :])
        if self.tree.n_nodes == 1:
            return new[:, 0].copy()
        unit = self.unit
        for h in range(self.tree.hops):
            v = self.leaf_of_hop[h]
            c = self.counts[v]
            add = new[:, h]
            mask = (unit[None, :] >= c[:, None]) & (unit[None, :] < (c + add)[:, None])
            self.births[v] = np.where(mask, float(t), self.births[v])
            self.counts[v] = c + add
        got = np.zeros(self.trials, dtype=np.int64)
        for v in self.internal_bottom_up:
            n_ok = self._swap(v, q, rng)
            if n_ok is not None and v == 0:
                got = n_ok
        return got

    def _swap(self, v: int, q: float, rng: np.random.Generator) -> NDArray[np.int64] | None:
        """Swap the pairs of node ``v``'s two children, oldest first; the successes per trial (None: no pairs).

        A swapped pair is as old as the older of its inputs and is stored at ``v``
        (except at the root, where it is delivered); a failed swap loses both inputs.
        """
        births, counts, unit, m = self.births, self.counts, self.unit, self.memory
        a, b = self.tree.left[v], self.tree.right[v]
        n_sw = np.minimum(counts[a], counts[b])
        if not n_sw.any():
            return None
        take = unit[None, :] < n_sw[:, None]
        ok = take & (rng.random((self.trials, m)) < q)
        merged = np.where(ok, np.minimum(births[a], births[b]), np.inf)
        # drop the n_sw oldest pairs of each child: shift the sorted rows left
        src = unit[None, :] + n_sw[:, None]
        keep = src < m
        src = np.minimum(src, m - 1)
        births[a] = np.where(keep, np.take_along_axis(births[a], src, axis=1), np.inf)
        births[b] = np.where(keep, np.take_along_axis(births[b], src, axis=1), np.inf)
        counts[a] -= n_sw
        counts[b] -= n_sw
        n_ok = ok.sum(axis=1)
        if v != 0:
            both = np.concatenate([births[v], merged], axis=1)
            both.sort(axis=1)
            births[v] = both[:, :m]
            counts[v] += n_ok
        return n_ok


def simulate_chain(
    distances_km: ArrayLike,
    *,
    q: float,
    memory: int,
    alpha_db_per_km: float = physics.PAPER_NV_PHYSICS.alpha_db_per_km,
    schedule: Schedule = "nested",
    cutoff_s: float | None = None,
    slots: int = 2_000,
    trials: int = 500,
    warmup_slots: int | None = None,
    attempt_time_s: float | None = None,
    speed_km_per_s: float = physics.PAPER_NV_PHYSICS.speed_km_per_s,
    t_mea_s: float = physics.PAPER_NV_PHYSICS.t_mea_s,
    t_ret_s: float = physics.PAPER_NV_PHYSICS.t_ret_s,
    pairs_needed: int = 1,
    level: float = 0.95,
    seed: Seed = 0,
) -> ChainSimResult:
    """Slot-by-slot Monte Carlo of a repeater chain with finite memory.

    Per attempt slot, in every trial: (1) stored pairs older than the cutoff are lost;
    (2) every hop attempts a link pair on each unit that is free at both of its ends
    (``memory`` units per hop end; a stored pair, elementary or swapped, blocks one unit
    at each of its two end nodes), succeeding with ``p`` of Eq. 7 for its length;
    (3) swaps are done bottom-up along ``schedule`` (oldest pairs first), each succeeding
    with ``q``; a swapped pair is as old as the older of its inputs; a failure loses both;
    (4) end-to-end pairs are consumed at once. Swap processing is assumed to fit in a slot
    (the paper neglects classical delays); the latency of the swaps on the critical path
    and the final retrieval, ``(rounds + 1) * (t_mea + t_ret)``, is added to the time to
    the first pair. A slot lasts ``attempt_time_s`` (default: longest hop / speed).

    ``cutoff_s`` (optional) is the memory lifetime: a pair is discarded once it has been
    stored for ``floor(cutoff_s / attempt_time_s)`` slots. The reported time is the time
    until ``pairs_needed`` end-to-end pairs have been delivered (the first pair by
    default; e.g. one pair for each of several concurrent key agreements).
    """
    d = np.atleast_1d(np.asarray(distances_km, dtype=float))
    _check_chain_arguments(d, q, memory, schedule, slots, trials, alpha_db_per_km, cutoff_s, pairs_needed, warmup_slots)
    k = d.size
    m = int(memory)
    slots = int(slots)
    trials = int(trials)
    warm = slots // 10 if warmup_slots is None else int(warmup_slots)
    p_hops = np.asarray(physics.link_success_probability(d, alpha_db_per_km=alpha_db_per_km))
    if attempt_time_s is None:
        attempt_time_s = max(float(d.max()) / speed_km_per_s, 1e-12)
    cutoff_slots = None if cutoff_s is None else max(1, int(cutoff_s // attempt_time_s))
    tree = balanced_tree(k) if schedule == "nested" else sequential_tree(k)
    rounds = tree.rounds
    rng = make_rng(seed)
    delivered, first_slot = _PairStore(tree, trials, m).run(
        slots, warm=warm, cutoff_slots=cutoff_slots, p_hops=p_hops, q=q, pairs_needed=int(pairs_needed), rng=rng
    )
    rate = mean_ci(delivered / (slots - warm), level=level)
    swap_time_s = float(t_mea_s + t_ret_s)
    times = np.where(first_slot >= 0, (first_slot + 1) * attempt_time_s + (rounds + 1) * swap_time_s, np.nan)
    ok_times = times[~np.isnan(times)]
    first = mean_ci(ok_times, level=level) if ok_times.size >= 2 else None
    return ChainSimResult(
        distances_km=tuple(float(x) for x in d),
        p_hops=tuple(float(x) for x in p_hops),
        q=float(q),
        memory=m,
        schedule=schedule,
        cutoff_slots=cutoff_slots,
        slots=slots,
        warmup_slots=warm,
        trials=trials,
        attempt_time_s=float(attempt_time_s),
        swap_time_s=swap_time_s,
        seed=seed_of(seed),
        rate=rate,
        first_pair_time_s=times,
        first_pair=first,
        censored_fraction=float(np.mean(np.isnan(times))),
        rounds=rounds,
        pairs_needed=int(pairs_needed),
    )
