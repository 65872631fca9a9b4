"""Monte Carlo of one access cluster (cluster paper Sect. 3, Eq. 5-6, Fig. 6b).

Protocol of one key-agreement attempt (one time slot), as simulated here:

* ``M = floor(|V|/2)`` disjoint slave pairs run Ekert91 in parallel (Eq. 5); one slave
  pair runs MDI-QKD through the master at the same time.
* For each Ekert pair the master distributes EPR pairs into the ``memory_slave`` units
  of the two slaves; arrivals form a Poisson process of rate ``epr_rate_hz``. For
  MDI-QKD the two slaves send qubits into the ``memory_master`` units of the master at
  the same rate. The attempt fills the memory (the paper's assumption in Theorem 2).
* Once full, the stored qubits are measured one at a time, newest first (which keeps the
  most qubits alive), each measurement taking ``t_mea_s + t_ret_s`` (Bell-state
  measurement plus label-based retrieval). A qubit is usable only if its measurement
  ends within ``lifetime_s`` of its arrival; it then yields a key bit with probability
  ``r_ekr`` (Ekert91) or ``r_mdi`` (MDI-QKD).

With an infinite lifetime every stored qubit is measured and the expected key bits per
attempt are exactly Eq. 6, ``r_mdi*N_m + r_ekr*N_s*M``. With a finite lifetime the
``j``-th newest qubit survives iff ``Gamma(j-1, rate) + j*(t_mea+t_ret) <= lifetime``,
which :func:`cluster_keys_analytic` evaluates exactly: the key count first grows
linearly with the lifetime and saturates at Eq. 6 (the trend of the paper's Fig. 6b).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from planner import physics
from planner.errors import ProblemCollector
from planner.simulate.stats import MeanCI, Seed, make_rng, mean_ci, seed_of

logger = logging.getLogger(__name__)

__all__ = ["ClusterSimResult", "simulate_cluster_keys_per_attempt", "cluster_keys_analytic"]


@dataclass(frozen=True)
class ClusterSimResult:
    """Key bits per attempt (time slot) of one access cluster, with CIs."""

    n_slaves: int
    ekert_pairs: int
    r_mdi: float
    r_ekr: float
    memory_master: int
    memory_slave: int
    lifetime_s: float
    epr_rate_hz: float
    t_mea_s: float
    t_ret_s: float
    slots: int
    seed: int | None
    keys: MeanCI
    """Total key bits per attempt (MDI-QKD + Ekert91)."""
    keys_mdi: float
    keys_ekert: float
    analytic: float
    """:func:`cluster_keys_analytic` for the same parameters."""

    @property
    def eq6(self) -> float:
        """Eq. 6 (infinite lifetime) for the same parameters."""
        return float(
            physics.cluster_keys_per_attempt(
                self.n_slaves,
                r_mdi=self.r_mdi,
                r_ekr=self.r_ekr,
                memory_master=self.memory_master,
                memory_slave=self.memory_slave,
            )
        )


def _validate(
    n_slaves: int,
    r_mdi: float,
    r_ekr: float,
    memory_master: int,
    memory_slave: int,
    lifetime_s: float,
    epr_rate_hz: float,
    t_mea_s: float,
    t_ret_s: float,
) -> None:
    pc = ProblemCollector("access cluster")
    if isinstance(n_slaves, bool) or int(n_slaves) != n_slaves or n_slaves < 2:
        pc.add("n_slaves", f"must be an integer >= 2, got {n_slaves!r}", "a cluster needs 2 slaves")
    for name, val in (("r_mdi", r_mdi), ("r_ekr", r_ekr)):
        if not 0.0 <= val <= 1.0:
            pc.add(name, f"must be in [0, 1], got {val!r}", "use a key-generation ratio")
    for name, ival in (("memory_master", memory_master), ("memory_slave", memory_slave)):
        if isinstance(ival, bool) or int(ival) != ival or ival < 0:
            pc.add(name, f"must be an integer >= 0, got {ival!r}", "use a number of units")
    if not lifetime_s > 0:
        pc.add("lifetime_s", f"must be > 0 (inf allowed), got {lifetime_s!r}", "e.g. 0.01")
    if not (epr_rate_hz > 0 and math.isfinite(epr_rate_hz)):
        pc.add("epr_rate_hz", f"must be a finite rate > 0, got {epr_rate_hz!r}", "e.g. 1e4")
    for name, val in (("t_mea_s", t_mea_s), ("t_ret_s", t_ret_s)):
        if not (val >= 0 and math.isfinite(val)):
            pc.add(name, f"must be >= 0, got {val!r}", "use seconds, e.g. 100e-6")
    pc.raise_if_any()


def _survival_probabilities(memory: int, lifetime_s: float, rate_hz: float, t_q: float) -> NDArray[np.float64]:
    """P(the j-th newest of ``memory`` stored qubits is measured in time), j = 1..memory."""
    j = np.arange(1, memory + 1, dtype=float)
    if math.isinf(lifetime_s):
        return np.ones(memory)
    slack = lifetime_s - j * t_q
    # waiting for the newer arrivals: Gamma(j - 1, rate); j = 1 waits nothing
    prob = np.where(
        j == 1,
        (slack >= 0).astype(float),
        stats.gamma.cdf(np.maximum(slack, 0.0), a=np.maximum(j - 1, 1), scale=1.0 / rate_hz),
    )
    return np.where(slack < 0, 0.0, prob)


def cluster_keys_analytic(
    n_slaves: int,
    *,
    r_mdi: float,
    r_ekr: float,
    memory_master: int,
    memory_slave: int,
    lifetime_s: float = math.inf,
    epr_rate_hz: float = 1e4,
    t_mea_s: float = physics.PAPER_NV_PHYSICS.t_mea_s,
    t_ret_s: float = physics.PAPER_NV_PHYSICS.t_ret_s,
) -> float:
    """Exact expected key bits per attempt of the protocol in this module's docstring.

    Equals Eq. 6 for ``lifetime_s = inf``; non-decreasing in ``lifetime_s`` and in
    ``epr_rate_hz``.
    """
    _validate(
        n_slaves,
        r_mdi,
        r_ekr,
        memory_master,
        memory_slave,
        lifetime_s,
        epr_rate_hz,
        t_mea_s,
        t_ret_s,
    )
    t_q = t_mea_s + t_ret_s
    m_pairs = int(n_slaves) // 2
    mdi = r_mdi * _survival_probabilities(int(memory_master), lifetime_s, epr_rate_hz, t_q).sum()
    ekr = r_ekr * _survival_probabilities(int(memory_slave), lifetime_s, epr_rate_hz, t_q).sum()
    return float(mdi + m_pairs * ekr)


def _simulate_store(
    rng: np.random.Generator,
    slots: int,
    groups: int,
    memory: int,
    lifetime_s: float,
    rate_hz: float,
    t_q: float,
    ratio: float,
) -> NDArray[np.int64]:
    """Key bits per slot from ``groups`` independent memories of ``memory`` units each."""
    if memory == 0 or groups == 0:
        return np.zeros(slots, dtype=np.int64)
    if math.isinf(lifetime_s):
        alive = np.full((slots, groups), memory, dtype=np.int64)
    else:
        gaps = rng.exponential(1.0 / rate_hz, size=(slots, groups, memory))
        arrival = np.cumsum(gaps, axis=2)
        # newest first: the j-th newest waits for the newer arrivals, then j measurements
        newest_first = arrival[..., ::-1]
        wait = arrival[..., -1:] - newest_first + np.arange(1, memory + 1) * t_q
        alive = np.sum(wait <= lifetime_s, axis=2)
    keys = rng.binomial(alive, ratio)
    return keys.sum(axis=1)


def simulate_cluster_keys_per_attempt(
    n_slaves: int,
    *,
    r_mdi: float,
    r_ekr: float,
    memory_master: int,
    memory_slave: int,
    lifetime_s: float = math.inf,
    epr_rate_hz: float = 1e4,
    t_mea_s: float = physics.PAPER_NV_PHYSICS.t_mea_s,
    t_ret_s: float = physics.PAPER_NV_PHYSICS.t_ret_s,
    slots: int = 10_000,
    level: float = 0.95,
    seed: Seed = 0,
) -> ClusterSimResult:
    """Monte Carlo key bits per attempt (time slot) of one access cluster.

    Simulates ``slots`` independent attempts of the protocol in this module's docstring
    (Poisson EPR arrivals, newest-first measurement, lifetime cut, Bernoulli sifting with
    the key-generation ratios). The mean has expectation :func:`cluster_keys_analytic`,
    which is Eq. 6 for an infinite lifetime; the CI is at ``level``.
    """
    # the exact expectation first: it checks the cluster's parameters (raising ValidationError)
    analytic = cluster_keys_analytic(
        n_slaves,
        r_mdi=r_mdi,
        r_ekr=r_ekr,
        memory_master=memory_master,
        memory_slave=memory_slave,
        lifetime_s=lifetime_s,
        epr_rate_hz=epr_rate_hz,
        t_mea_s=t_mea_s,
        t_ret_s=t_ret_s,
    )
    if int(slots) != slots or slots < 2:
        pc = ProblemCollector("access cluster")
        pc.add("slots", f"must be an integer >= 2, got {slots!r}", "e.g. 10000")
        pc.raise_if_any()
    rng = make_rng(seed)
    t_q = t_mea_s + t_ret_s
    m_pairs = int(n_slaves) // 2
    mdi = _simulate_store(rng, int(slots), 1, int(memory_master), lifetime_s, epr_rate_hz, t_q, r_mdi)
    ekr = _simulate_store(rng, int(slots), m_pairs, int(memory_slave), lifetime_s, epr_rate_hz, t_q, r_ekr)
    total = mdi + ekr
    if np.all(total == total[0]):
        v = float(total[0])
        keys = MeanCI(v, v, v, level, int(slots))
    else:
        keys = mean_ci(total, level=level)
    return ClusterSimResult(
        n_slaves=int(n_slaves),
        ekert_pairs=m_pairs,
        r_mdi=float(r_mdi),
        r_ekr=float(r_ekr),
        memory_master=int(memory_master),
        memory_slave=int(memory_slave),
        lifetime_s=float(lifetime_s),
        epr_rate_hz=float(epr_rate_hz),
        t_mea_s=float(t_mea_s),
        t_ret_s=float(t_ret_s),
        slots=int(slots),
        seed=seed_of(seed),
        keys=keys,
        keys_mdi=float(np.mean(mdi)),
        keys_ekert=float(np.mean(ekr)),
        analytic=analytic,
    )
