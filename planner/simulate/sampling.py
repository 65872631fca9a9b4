"""Sample sizes, seeds and confidence intervals of the design check (:mod:`planner.simulate.design_check`).

Every constant here sets how much traffic a run simulates; :func:`stream_seed` derives one
integer seed per pair and purpose from the run's seed, so results do not depend on how pairs
are split between worker processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from planner.errors import ValidationError
from planner.keys.pools import REQUEST_KEY_BITS

__all__ = [
    "DEFAULT_TOLERANCE",
    "LEVEL",
    "REQUEST_KEY_BITS",
    "SampleSizes",
    "finite",
    "float_or_none",
    "sample_sizes",
    "stream_seed",
    "wilson_interval",
]

#: Confidence level of every interval.
LEVEL = 0.99
#: Relative rate tolerance and absolute security tolerance for flagging a pair.
DEFAULT_TOLERANCE: dict[str, float] = {"rate_rel": 0.05, "security_abs": 0.05}
#: Sample sizes per key request (see :func:`sample_sizes`).
CHAIN_CYCLES_PER_REQUEST = 64
ACCESS_SLOTS_PER_REQUEST = 50
EAVESDROPPERS_PER_REQUEST = 10
#: Eavesdropper draws per fresh real-byte key distribution of a demand. Whether a draw
#: leaks depends on the route, the plan and the compromised relays, never on the bytes,
#: so fresh bytes only re-check the distribution (keys agree, the byte-level attack
#: agrees with the symbolic one); a few per demand suffice.
DRAWS_PER_DISTRIBUTION = 500
MIN_CHAIN_CYCLES = 100
MAX_CHAIN_CYCLES = 1_000_000
MIN_ACCESS_SLOTS = 100
MAX_ACCESS_SLOTS = 1_000_000
#: Pairs (largest predicted latency first) that also get the slot-level physical simulation.
DEFAULT_LATENCY_PAIRS = 8
#: Trials of the slot-level physical simulation of one pair.
PHYSICAL_TRIALS = 40
PHYSICAL_MIN_SLOTS = 400
PHYSICAL_MAX_SLOTS = 20_000
#: Work budget of the physical simulations of one run, in hops x slots (about 10 s of CPU).
PHYSICAL_BUDGET_HOP_SLOTS = 200_000
#: Smallest link success probability the chain Monte Carlo is run for.
MIN_SIMULATED_P = 1e-9


@dataclass(frozen=True)
class SampleSizes:
    """How much traffic is simulated.

    ``requests``: key requests per inter-cluster pair (``None`` in duration mode,
    where each pair gets as many as its chain delivers in ``duration_s``);
    ``access_slots``: attempts simulated per cluster; ``chain_cycles``: end-to-end
    pairs simulated per chain (``None`` in duration mode: per pair);
    ``eavesdroppers_per_request``: eavesdropper draws per request.
    """

    requests: int | None
    duration_s: float | None
    access_slots: int
    chain_cycles: int | None
    eavesdroppers_per_request: int = EAVESDROPPERS_PER_REQUEST

    def for_pair(self, rate_predicted: float | None, attempt_time_s: float) -> tuple[int, int]:
        """(requests, chain cycles) of one inter-cluster pair."""
        if self.duration_s is None:
            assert self.requests is not None and self.chain_cycles is not None
            return self.requests, self.chain_cycles
        slots = self.duration_s / attempt_time_s
        pairs = slots * rate_predicted if rate_predicted and rate_predicted > 0 else 0.0
        cycles = int(min(MAX_CHAIN_CYCLES, max(MIN_CHAIN_CYCLES, round(pairs))))
        requests = max(2, int(pairs // REQUEST_KEY_BITS))
        return requests, cycles


def sample_sizes(*, requests: int, duration_s: float | None, attempt_time_s: float) -> SampleSizes:
    """Sample sizes of a run: from ``requests`` per pair, or from ``duration_s`` of traffic.

    With ``requests`` (default mode): every chain is simulated for
    ``64 * requests`` end-to-end pairs, every cluster for ``50 * requests`` attempts,
    and every request is attacked by 10 independent eavesdropper draws. With
    ``duration_s``: clusters get ``duration_s / attempt_time_s`` attempts and each
    chain the pairs it delivers in that time at its predicted rate (within
    [:data:`MIN_CHAIN_CYCLES`, :data:`MAX_CHAIN_CYCLES`]), each pair one request per
    :data:`REQUEST_KEY_BITS` delivered pairs (at least 2).
    """
    pc_problems = []
    if isinstance(requests, bool) or int(requests) != requests or requests < 2:
        pc_problems.append(f"requests={requests!r} must be an integer >= 2 (e.g. 200)")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        pc_problems.append(f"duration_s={duration_s!r} must be a finite number of seconds > 0 (or omitted)")
    if pc_problems:
        raise ValidationError("simulation settings: " + "; ".join(pc_problems), source="simulate")
    if duration_s is None:
        return SampleSizes(
            requests=int(requests),
            duration_s=None,
            access_slots=int(min(MAX_ACCESS_SLOTS, ACCESS_SLOTS_PER_REQUEST * requests)),
            chain_cycles=int(min(MAX_CHAIN_CYCLES, CHAIN_CYCLES_PER_REQUEST * requests)),
        )
    slots = int(min(MAX_ACCESS_SLOTS, max(MIN_ACCESS_SLOTS, round(duration_s / attempt_time_s))))
    return SampleSizes(requests=None, duration_s=float(duration_s), access_slots=slots, chain_cycles=None)


_STREAM = {"cluster": 1, "chain": 2, "keys": 3, "physical": 4, "traffic": 5}


def stream_seed(seed: int, stream: str, index: int) -> int:
    """An integer seed for one pair and one purpose, independent of batching."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(_STREAM[stream], int(index)))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def wilson_interval(successes: int, trials: int, *, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion at ``level``."""
    if trials <= 0:
        return (0.0, 1.0)
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def finite(x: Any) -> bool:
    """True if ``x`` converts to a finite float."""
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def float_or_none(x: Any) -> float | None:
    """``float(x)`` when finite, else None."""
    return float(x) if finite(x) else None
