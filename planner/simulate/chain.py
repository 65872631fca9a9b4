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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner import physics
from planner.errors import ProblemCollector
from planner.simulate.stats import MeanCI, inverse_mean_ci, make_rng, mean_ci, seed_of

logger = logging.getLogger(__name__)

__all__ = [
    "SwapTree",
    "balanced_tree",
    "sequential_tree",
    "eq9_schedule",
    "eq9_bottleneck_hops",
    "ChainRateResult",
    "simulate_chain_rate",
    "ChainSimResult",
    "simulate_chain",
]

Schedule = Literal["nested", "sequential"]
Seed = int | np.random.Generator | None
Nested = int | tuple["Nested", "Nested"]


# ---------------------------------------------------------------------------------------
# swap trees
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwapTree:
    """A swap order over ``hops`` hops as a binary tree.

    Node 0 is the root and parents precede their children. A leaf holds one hop
    (``leaf_hop[v] >= 0``); an internal node swaps the pairs of its two children at the
    node between them. ``lo[v]``/``hi[v]`` are the chain nodes (0..hops) its pair spans.
    """

    hops: int
    left: tuple[int, ...]
    right: tuple[int, ...]
    leaf_hop: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @property
    def n_nodes(self) -> int:
        return len(self.left)

    def hop_depths(self) -> NDArray[np.int64]:
        """Number of swaps each hop's link pair goes through on its way to the root."""
        depth = np.zeros(self.n_nodes, dtype=np.int64)
        for v in range(self.n_nodes):
            for c in (self.left[v], self.right[v]):
                if c >= 0:
                    depth[c] = depth[v] + 1
        out = np.zeros(self.hops, dtype=np.int64)
        for v, h in enumerate(self.leaf_hop):
            if h >= 0:
                out[h] = depth[v]
        return out

    @property
    def rounds(self) -> int:
        """Depth of the tree: swap rounds on the longest root-to-leaf path."""
        return int(self.hop_depths().max())

    def leaf_of_hop(self) -> NDArray[np.int64]:
        out = np.full(self.hops, -1, dtype=np.int64)
        for v, h in enumerate(self.leaf_hop):
            if h >= 0:
                out[h] = v
        return out


def _from_nested(structure: Nested, hops: int) -> SwapTree:
    left: list[int] = []
    right: list[int] = []
    leaf: list[int] = []
    lo: list[int] = []
    hi: list[int] = []
    queue: list[Nested] = [structure]
    head = 0
    while head < len(queue):
        item = queue[head]
        head += 1
        if isinstance(item, int):
            left.append(-1)
            right.append(-1)
            leaf.append(item)
            lo.append(item)
            hi.append(item + 1)
        else:
            a, b = item
            idx_a = len(queue)
            queue.extend([a, b])
            left.append(idx_a)
            right.append(idx_a + 1)
            leaf.append(-1)
            lo.append(_span(a)[0])
            hi.append(_span(b)[1])
    return SwapTree(hops, tuple(left), tuple(right), tuple(leaf), tuple(lo), tuple(hi))


def _span(item: Nested) -> tuple[int, int]:
    if isinstance(item, int):
        return item, item + 1
    return _span(item[0])[0], _span(item[1])[1]


def _check_hops(hops: int) -> int:
    pc = ProblemCollector("chain simulation")
    if isinstance(hops, bool) or int(hops) != hops or hops < 1:
        pc.add("hops", f"must be an integer >= 1, got {hops!r}", "pass the number of hops k")
    pc.raise_if_any()
    return int(hops)


def balanced_tree(hops: int) -> SwapTree:
    """The nested swap order: split the chain in halves (left half rounded up), recursively.

    Its depth is ``ceil(log2 k)``, the minimum; the hops in the deepest level are the
    bottleneck when this one tree is used for every pair.
    """
    k = _check_hops(hops)

    def rec(a: int, b: int) -> Nested:
        if b - a == 1:
            return a
        mid = a + math.ceil((b - a) / 2)
        return (rec(a, mid), rec(mid, b))

    return _from_nested(rec(0, k), k)


def sequential_tree(hops: int) -> SwapTree:
    """Hop-by-hop order: extend the pair from the left end one hop per swap (depth k-1)."""
    k = _check_hops(hops)
    item: Nested = 0
    for h in range(1, k):
        item = (item, h)
    return _from_nested(item, k)


def _tree_from_units(units: Sequence[Nested], hops: int) -> SwapTree:
    level = list(units)
    while len(level) > 1:
        level = [(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return _from_nested(level[0], hops)


def eq9_schedule(hops: int) -> list[SwapTree]:
    """The minimum-depth swap trees that Eq. 9's rate assumes, to be used with equal weight.

    With ``n = ceil(log2 k) - 1`` a minimum-depth tree has ``2**n`` units at depth ``n``,
    ``P = k - 2**n`` of which are a pair of adjacent hops swapped in a first round. Any
    placement of the ``P`` pairs gives a valid tree. The pairs are placed as one block of
    consecutive aligned pair slots, rotated cyclically over all slots: slots
    ``(0,1), (2,3), ...`` for even ``k``, and ``(1,2), (3,4), ...`` for odd ``k`` (hop 0
    then never pairs). Averaged over the rotations every hop of the bottleneck set
    (:func:`eq9_bottleneck_hops`) is in a first-round pair with the same frequency
    ``2P/k`` (even) or ``2P/(k-1)`` (odd), which is the least possible maximum; this
    balance is what Eq. 9 prices.
    """
    k = _check_hops(hops)
    if k == 1:
        return [_from_nested(0, 1)]
    n = math.ceil(math.log2(k)) - 1
    n_pairs = k - 2**n
    first = 0 if k % 2 == 0 else 1
    slots = (k - first) // 2
    trees = []
    for r in range(slots):
        deep = {(r + i) % slots for i in range(n_pairs)}
        units: list[Nested] = []
        h = 0
        while h < k:
            s = (h - first) // 2 if h >= first else -1
            if s >= 0 and (h - first) % 2 == 0 and s in deep:
                units.append((h, h + 1))
                h += 2
            else:
                units.append(h)
                h += 1
        if len(units) != 2**n:  # pragma: no cover - construction invariant
            raise AssertionError(f"bad unit count {len(units)} for k={k}")
        trees.append(_tree_from_units(units, k))
    return trees


def eq9_bottleneck_hops(hops: int) -> NDArray[np.int64]:
    """Hops (0-based) whose load limits the rate of :func:`eq9_schedule`.

    All hops for even ``k`` (and ``k = 1``); for odd ``k`` the hops 1, 3, ..., k-2 (the
    paper's even positions): each first-round pair covers exactly one of them.
    """
    k = _check_hops(hops)
    if k == 1 or k % 2 == 0:
        return np.arange(k)
    return np.arange(1, k - 1, 2)


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
    pc = ProblemCollector("simulate_chain_rate")
    k = _check_hops(hops)
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
    hop_level = 1.0 - (1.0 - level) / k
    hop_rates: list[MeanCI] = []
    for h in range(k):
        col = slots[:, h]
        if np.all(col == col[0]):
            v = 1.0 / float(col[0])
            hop_rates.append(MeanCI(v, v, v, hop_level, cycles))
        else:
            hop_rates.append(inverse_mean_ci(col, level=hop_level))
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
    pc = ProblemCollector("simulate_chain")
    d = np.atleast_1d(np.asarray(distances_km, dtype=float))
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

    n_nodes = tree.n_nodes
    lmat, rmat = _segment_end_matrices(tree)
    leaf_of_hop = tree.leaf_of_hop()
    internal_bottom_up = [v for v in reversed(range(n_nodes)) if tree.left[v] >= 0]
    births = np.full((n_nodes, trials, m), np.inf)
    counts = np.zeros((n_nodes, trials), dtype=np.int64)
    unit = np.arange(m)
    delivered = np.zeros(trials, dtype=np.int64)
    cumulative = np.zeros(trials, dtype=np.int64)
    first_slot = np.full(trials, -1, dtype=np.int64)

    for t in range(slots):
        if cutoff_slots is not None:
            expired = births <= t - cutoff_slots
            if expired.any():
                births[expired] = np.inf
                counts -= expired.sum(axis=2)
                births.sort(axis=2)
        occ_l = counts.T @ lmat
        occ_r = counts.T @ rmat
        free = m - np.maximum(occ_l, occ_r)
        new = rng.binomial(free, p_hops[None, :])
        got = np.zeros(trials, dtype=np.int64)
        if n_nodes == 1:
            got = new[:, 0].copy()
        else:
            for h in range(k):
                v = leaf_of_hop[h]
                c = counts[v]
                add = new[:, h]
                mask = (unit[None, :] >= c[:, None]) & (unit[None, :] < (c + add)[:, None])
                births[v] = np.where(mask, float(t), births[v])
                counts[v] = c + add
            for v in internal_bottom_up:
                a, b = tree.left[v], tree.right[v]
                n_sw = np.minimum(counts[a], counts[b])
                if not n_sw.any():
                    continue
                take = unit[None, :] < n_sw[:, None]
                ok = take & (rng.random((trials, m)) < q)
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
                if v == 0:
                    got = n_ok
                else:
                    both = np.concatenate([births[v], merged], axis=1)
                    both.sort(axis=1)
                    births[v] = both[:, :m]
                    counts[v] += n_ok
        cumulative += got
        newly = (first_slot < 0) & (cumulative >= pairs_needed)
        first_slot[newly] = t
        if t >= warm:
            delivered += got

    measured = slots - warm
    rate = mean_ci(delivered / measured, level=level)
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
