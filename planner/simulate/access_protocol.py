"""Protocol-level Monte Carlo of one access cluster at infinite memory lifetime.

Checks Eq. 6 of the cluster paper (``Key = R_mdi N_m + R_ekr N_s M``) against a
simulation that does not draw ``Binomial(N, R)`` but plays the protocol attempt by
attempt and qubit by qubit:

* **Ekert91**, each of the ``M = floor(|V|/2)`` slave pairs: the master's source makes
  ``attempts`` attempts per key agreement; in each, the two photons of an EPR pair reach
  their slaves with probability ``p_transmit`` each, and the pair is stored if both
  arrive and a memory unit is free (``memory_slave`` units). Every stored pair is
  measured by both slaves (each detection succeeds with ``p_detect``) in a basis each
  slave picks uniformly from two; a key bit results when both detect and the bases match
  (sifting).
* **MDI-QKD**, one slave pair through the master: per attempt both slaves send a qubit,
  each arriving with ``p_transmit``; the master stores the pair if both arrive and a
  unit is free (``memory_master`` units), performs a Bell-state measurement that succeeds
  with ``p_bsm``, and a key bit results when it succeeds and the slaves' random bases
  match.

The lifetime is infinite: every stored qubit is measured. With enough attempts to fill
the memory, the expected key bits equal Eq. 6 with ``R_ekr = p_detect**2 / 2`` and
``R_mdi = p_bsm / 2``; with too few attempts the memory is not filled and Eq. 6
overstates the key (:func:`access_protocol_expected` gives the exact expectation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from planner import physics
from planner.errors import ProblemCollector
from planner.simulate.stats import MeanCI, Seed, make_rng, mean_ci, seed_of

logger = logging.getLogger(__name__)

__all__ = [
    "AccessProtocolResult",
    "simulate_access_protocol",
    "access_protocol_expected",
    "protocol_key_ratios",
]


@dataclass(frozen=True)
class AccessProtocolResult:
    """Key bits per key agreement of the protocol-level simulation, with its CI."""

    n_slaves: int
    memory_master: int
    memory_slave: int
    attempts: int
    p_transmit: float
    p_detect: float
    p_bsm: float
    trials: int
    seed: int | None
    keys: MeanCI
    """Total key bits per key agreement (MDI-QKD + Ekert91), mean over trials."""
    fill_fraction: float
    """Mean fraction of the memory units filled (all pairs, MDI and Ekert91)."""
    expected: float
    """:func:`access_protocol_expected` for the same parameters (exact)."""
    eq6: float
    """Eq. 6 with the ratios of :func:`protocol_key_ratios`."""


def protocol_key_ratios(*, p_detect: float, p_bsm: float) -> tuple[float, float]:
    """(R_mdi, R_ekr) of the simulated protocol per stored qubit pair: a Bell-state
    measurement or two detections, times the 1/2 chance that two random bases match."""
    return p_bsm / 2.0, p_detect**2 / 2.0


def _expected_stored(attempts: int, p_pair: float, memory: int) -> float:
    """E[min(Binomial(attempts, p_pair), memory)], summed exactly over the pmf."""
    k = np.arange(attempts + 1)
    return float(np.sum(np.minimum(k, memory) * stats.binom.pmf(k, attempts, p_pair)))


def access_protocol_expected(
    n_slaves: int,
    *,
    memory_master: int,
    memory_slave: int,
    attempts: int,
    p_transmit: float,
    p_detect: float,
    p_bsm: float,
) -> float:
    """Exact expected key bits per key agreement of the protocol of this module.

    Stored pairs are ``min(Binomial(attempts, p_transmit**2), N)`` per memory; every
    stored pair yields a key bit independently with the ratio of
    :func:`protocol_key_ratios`. Equals Eq. 6 when ``attempts`` is large enough that the
    memories are always filled.
    """
    r_mdi, r_ekr = protocol_key_ratios(p_detect=p_detect, p_bsm=p_bsm)
    p_pair = p_transmit**2
    m_pairs = n_slaves // 2
    mdi = r_mdi * _expected_stored(attempts, p_pair, memory_master)
    ekr = r_ekr * _expected_stored(attempts, p_pair, memory_slave)
    return float(mdi + m_pairs * ekr)


def _store(rng: np.random.Generator, trials: int, attempts: int, p_transmit: float, memory: int) -> NDArray[np.int64]:
    """Pairs stored per trial, attempt by attempt: both photons arrive, a unit is free."""
    both = (rng.random((trials, attempts)) < p_transmit) & (rng.random((trials, attempts)) < p_transmit)
    filled = np.cumsum(both, axis=1)
    stored = both & (filled <= memory)  # an arriving pair finds a free unit
    return stored.sum(axis=1)


def _sifted_keys(
    rng: np.random.Generator, stored: NDArray[np.int64], memory: int, success: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """Key bits per trial from ``stored`` pairs: measurement ``success`` per unit and
    random basis choices of the two slaves (a bit only when the bases match)."""
    trials = stored.size
    used = np.arange(memory)[None, :] < stored[:, None]
    basis_a = rng.integers(0, 2, size=(trials, memory))
    basis_b = rng.integers(0, 2, size=(trials, memory))
    return (used & success & (basis_a == basis_b)).sum(axis=1)


def simulate_access_protocol(
    n_slaves: int,
    *,
    memory_master: int,
    memory_slave: int,
    attempts: int,
    p_transmit: float,
    p_detect: float = 1.0,
    p_bsm: float = 0.5,
    trials: int = 4000,
    level: float = 0.99,
    seed: Seed = 0,
) -> AccessProtocolResult:
    """Simulate ``trials`` independent key agreements of one access cluster.

    Guarantees: the mean's expectation is :func:`access_protocol_expected`; it is
    Eq. 6 (with :func:`protocol_key_ratios`) exactly when the memories always fill.
    Bad parameters raise ``ValidationError`` naming each one.
    """
    pc = ProblemCollector("simulate_access_protocol")
    for name, val in (("n_slaves", n_slaves), ("attempts", attempts), ("trials", trials)):
        low = 2
        if isinstance(val, bool) or int(val) != val or val < low:
            pc.add(name, f"must be an integer >= {low}, got {val!r}", "e.g. 4")
    for name, val in (("memory_master", memory_master), ("memory_slave", memory_slave)):
        if isinstance(val, bool) or int(val) != val or val < 0:
            pc.add(name, f"must be an integer >= 0, got {val!r}", "e.g. 10")
    for pname, prob in (("p_transmit", p_transmit), ("p_detect", p_detect), ("p_bsm", p_bsm)):
        if not 0.0 <= float(prob) <= 1.0:
            pc.add(pname, f"must be a probability in [0, 1], got {prob!r}", "e.g. 0.5")
    pc.raise_if_any()
    rng = make_rng(seed)
    m_pairs = int(n_slaves) // 2
    nm, ns, att = int(memory_master), int(memory_slave), int(attempts)
    stored_m = _store(rng, trials, att, p_transmit, nm)
    keys = _sifted_keys(rng, stored_m, nm, rng.random((trials, nm)) < p_bsm)
    filled = stored_m.astype(float)
    for _ in range(m_pairs):
        stored_s = _store(rng, trials, att, p_transmit, ns)
        det = (rng.random((trials, ns)) < p_detect) & (rng.random((trials, ns)) < p_detect)
        keys = keys + _sifted_keys(rng, stored_s, ns, det)
        filled = filled + stored_s
    capacity = nm + m_pairs * ns
    r_mdi, r_ekr = protocol_key_ratios(p_detect=p_detect, p_bsm=p_bsm)
    return AccessProtocolResult(
        n_slaves=int(n_slaves),
        memory_master=nm,
        memory_slave=ns,
        attempts=att,
        p_transmit=float(p_transmit),
        p_detect=float(p_detect),
        p_bsm=float(p_bsm),
        trials=int(trials),
        seed=seed_of(seed),
        keys=mean_ci(keys, level=level),
        fill_fraction=float(filled.mean() / capacity) if capacity else 1.0,
        expected=access_protocol_expected(
            int(n_slaves),
            memory_master=nm,
            memory_slave=ns,
            attempts=att,
            p_transmit=p_transmit,
            p_detect=p_detect,
            p_bsm=p_bsm,
        ),
        eq6=float(
            physics.cluster_keys_per_attempt(int(n_slaves), r_mdi=r_mdi, r_ekr=r_ekr, memory_master=nm, memory_slave=ns)
        ),
    )
