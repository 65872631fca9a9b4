"""Rate and latency formulas of the cluster paper (Li, Xue et al. 2022, Eq. 5-10) and the
PLOB repeaterless bound (Pirandola et al. 2017).

Every function is vectorised with numpy: scalar inputs give a Python ``float``, array
inputs give a ``numpy.ndarray`` broadcast over all arguments. Bad input raises
:class:`planner.errors.ValidationError` naming the argument and the allowed range;
all problems of one call are reported together.

Symbols follow the paper: ``k`` hops in a repeater chain, ``m`` memory units per edge,
``p`` link (entanglement-distribution) success probability per attempt, ``q``
entanglement-swapping success probability, ``n = ceil(log2 k) - 1``.

What Eq. 9 is (derived in ``docs/cluster_model_vs_simulation.md`` and checked by
``planner.simulate.chain``): the long-run number of end-to-end pairs per attempt slot of
a nested (balanced-binary-tree) swapping schedule with unlimited storage, where every
edge produces ``m*p`` link pairs per slot, a failed swap loses both input pairs, and the
schedule time-shares between minimum-depth swap trees whose top ``n`` levels are
complete (``2**n`` units at depth ``n``, each a hop or a first-round pair of hops) so
that the load on the most loaded edges is balanced. For even ``k`` the ``2*(k - 2**n)`` hops that take part in the
first swap round can be spread evenly over all ``k`` edges; for odd ``k`` the even-position
edges are the bottleneck (every first-round pair covers exactly one of them), which is
where the ``k - 1`` of the odd branch comes from.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from planner.errors import ProblemCollector

__all__ = [
    "PAPER_NV_PHYSICS",
    "SPEED_OF_LIGHT_FIBRE_KM_PER_S",
    "PhysicsParameters",
    "ekert_pairs_per_attempt",
    "cluster_keys_per_attempt",
    "link_success_probability",
    "log_link_success_probability",
    "link_entanglement_time_s",
    "chain_distribution_ratio",
    "chain_factor",
    "log_chain_factor",
    "chain_latency_s",
    "plob_bound",
    "max_hop_km_for_rate",
    "swap_tree_depth",
]

SPEED_OF_LIGHT_FIBRE_KM_PER_S = 2e5
"""Speed of light in optical fibre used by Eq. 8 and Eq. 10 (km/s). The paper names the
speed s but gives no value; 2e5 km/s (refractive index about 1.5) is chosen here."""

_WHERE = "physics"
_LN10 = math.log(10.0)


@dataclass(frozen=True)
class PhysicsParameters:
    """The physical layer (cluster paper, Sect. 3-4): the one parameter object of qkdplan.

    The planner reads it from the scenario (``[physics]``, where it is
    :class:`planner.model.scenario.PhysicsSettings`), the design check hands it to the
    simulators, and the paper reproductions start from :data:`PAPER_NV_PHYSICS`; a use that
    needs other values states them with :meth:`with_values`.

    Defaults: standard telecom fibre ``alpha_db_per_km`` 0.2 dB/km (the paper's NV-platform
    value is 0.4 dB/km); swap success ``q_swap`` 0.6; joint measurement ``t_mea_s`` 100 us,
    retrieval ``t_ret_s`` 1040 us and ``attempt_time_s`` 145 us per attempt as in the paper;
    light in fibre ``speed_km_per_s`` 2e5 km/s. Ranges are checked where the values are read
    (the scenario loader, the formulas below).
    """

    alpha_db_per_km: float = 0.2
    speed_km_per_s: float = SPEED_OF_LIGHT_FIBRE_KM_PER_S
    q_swap: float = 0.6
    t_mea_s: float = 100e-6
    t_ret_s: float = 1040e-6
    attempt_time_s: float = 145e-6

    def with_values(self, **values: float) -> PhysicsParameters:
        """A copy with the named fields replaced (unknown names raise ``TypeError``)."""
        return dataclasses.replace(self, **values)


PAPER_NV_PHYSICS = PhysicsParameters(alpha_db_per_km=0.4)
"""The cluster paper's nitrogen-vacancy platform (Sect. 4): fibre loss 0.4 dB/km, t_mea 100 us,
t_ret 1040 us, 145 us per attempt; the photon speed (not stated in the paper) is
:data:`SPEED_OF_LIGHT_FIBRE_KM_PER_S`. Its ``q_swap`` is the planner default: every figure
states its own ``q``."""


def _out(value: NDArray[Any], *inputs: ArrayLike) -> Any:
    """Return a float if every input was a scalar, else the array."""
    if all(np.ndim(x) == 0 for x in inputs):
        return float(np.asarray(value).reshape(()))
    return value


def _array(
    name: str,
    value: ArrayLike,
    problems: ProblemCollector,
    *,
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
    integer: bool = False,
    allow_inf: bool = False,
) -> NDArray[np.float64]:
    """Convert ``value`` to a float array and record every range violation under ``name``."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        problems.add(f"{_WHERE}: {name}", f"must be numeric, got {value!r}", "pass a number or array")
        return np.full(np.shape(value) if np.ndim(value) else (), np.nan)
    bad_nan = np.isnan(arr) | (~allow_inf & np.isinf(arr))
    if np.any(bad_nan):
        problems.add(f"{_WHERE}: {name}", "must be finite", "remove NaN/inf values")
        return arr
    if integer and np.any(np.isfinite(arr) & (arr != np.round(arr))):
        problems.add(f"{_WHERE}: {name}", f"must be an integer, got {value!r}", "pass whole numbers")
    if low is not None:
        below = arr <= low if low_open else arr < low
        if np.any(below):
            rel = ">" if low_open else ">="
            problems.add(
                f"{_WHERE}: {name}",
                f"must be {rel} {low:g}, got {np.min(arr):g}",
                f"use a value {rel} {low:g}",
            )
    if high is not None and np.any(arr > high):
        problems.add(
            f"{_WHERE}: {name}",
            f"must be <= {high:g}, got {np.max(arr):g}",
            f"use a value <= {high:g}",
        )
    return arr


def ekert_pairs_per_attempt(n_slaves: ArrayLike) -> Any:
    """Eq. 5: number ``M = floor(|V|/2)`` of slave pairs that run Ekert91 in one attempt.

    ``n_slaves`` is the number of slave nodes ``|V| >= 0`` (integer) of one access cluster.
    Returns a float (or array) holding an integer value; 0 and 1 slaves give 0 pairs.
    """
    pc = ProblemCollector(_WHERE)
    v = _array("n_slaves", n_slaves, pc, low=0, integer=True)
    pc.raise_if_any()
    return _out(np.floor(v / 2.0), n_slaves)


def cluster_keys_per_attempt(
    n_slaves: ArrayLike,
    *,
    r_mdi: ArrayLike,
    r_ekr: ArrayLike,
    memory_master: ArrayLike,
    memory_slave: ArrayLike,
) -> Any:
    """Eq. 6: secret-key bits per key-agreement attempt of one access cluster.

    ``Key_total = r_mdi * memory_master + r_ekr * memory_slave * M`` with ``M`` from Eq. 5.
    ``r_mdi`` and ``r_ekr`` are key-generation ratios in [0, 1] (key bits per stored
    qubit/pair) of MDI-QKD (one slave pair, measured at the master) and Ekert91 (``M``
    disjoint slave pairs in parallel); ``memory_master``/``memory_slave`` are memory units
    (>= 0) that the paper assumes are filled in every attempt. A cluster needs at least
    2 slaves (``n_slaves >= 2``), otherwise no slave pair exists.
    """
    pc = ProblemCollector(_WHERE)
    v = _array("n_slaves", n_slaves, pc, low=2, integer=True)
    rm = _array("r_mdi", r_mdi, pc, low=0, high=1)
    re = _array("r_ekr", r_ekr, pc, low=0, high=1)
    nm = _array("memory_master", memory_master, pc, low=0)
    ns = _array("memory_slave", memory_slave, pc, low=0)
    pc.raise_if_any()
    value = rm * nm + re * ns * np.floor(v / 2.0)
    return _out(value, n_slaves, r_mdi, r_ekr, memory_master, memory_slave)


def link_success_probability(distance_km: ArrayLike, *, alpha_db_per_km: ArrayLike) -> Any:
    """Eq. 7: success probability ``p = 10**(-alpha*d/10)`` of one link-entanglement attempt.

    ``distance_km >= 0`` is the hop length, ``alpha_db_per_km >= 0`` the loss (the paper uses
    0.4 dB/km for the NV platform; standard telecom fibre is 0.2 dB/km). Result in (0, 1].
    """
    pc = ProblemCollector(_WHERE)
    d = _array("distance_km", distance_km, pc, low=0)
    a = _array("alpha_db_per_km", alpha_db_per_km, pc, low=0)
    pc.raise_if_any()
    return _out(10.0 ** (-a * d / 10.0), distance_km, alpha_db_per_km)


def log_link_success_probability(distance_km: ArrayLike, *, alpha_db_per_km: ArrayLike) -> Any:
    """Natural log of Eq. 7: ``log p = -alpha * d * ln(10) / 10`` (<= 0).

    Finite for every finite hop, also where :func:`link_success_probability` underflows to 0;
    ``exp`` of it is that probability. Same arguments and checks.
    """
    pc = ProblemCollector(_WHERE)
    d = _array("distance_km", distance_km, pc, low=0)
    a = _array("alpha_db_per_km", alpha_db_per_km, pc, low=0)
    pc.raise_if_any()
    return _out(-a * d / 10.0 * _LN10, distance_km, alpha_db_per_km)


def link_entanglement_time_s(
    distance_km: ArrayLike,
    *,
    alpha_db_per_km: ArrayLike,
    speed_km_per_s: ArrayLike = SPEED_OF_LIGHT_FIBRE_KM_PER_S,
) -> Any:
    """Eq. 8: expected time (s) to the first successful link entanglement over one hop.

    ``t = d * 10**(alpha*d/10) / s``: one attempt lasts ``d/s`` seconds and succeeds with
    ``p`` of Eq. 7, so the expected time is ``(d/s)/p``. Zero for ``d = 0``; ``inf`` where it
    exceeds the float range (a hop of thousands of dB).
    """
    pc = ProblemCollector(_WHERE)
    d = _array("distance_km", distance_km, pc, low=0)
    a = _array("alpha_db_per_km", alpha_db_per_km, pc, low=0)
    s = _array("speed_km_per_s", speed_km_per_s, pc, low=0, low_open=True)
    pc.raise_if_any()
    with np.errstate(over="ignore"):
        value = d * 10.0 ** (a * d / 10.0) / s
    return _out(value, distance_km, alpha_db_per_km, speed_km_per_s)


def swap_tree_depth(hops: ArrayLike) -> Any:
    """Depth ``n + 1 = ceil(log2 k)`` of a minimum-depth (balanced) swap tree over ``k`` hops.

    This is the number of nested swap rounds Eq. 9 assumes; 0 for a single hop.
    """
    pc = ProblemCollector(_WHERE)
    k = _array("hops", hops, pc, low=1, integer=True)
    pc.raise_if_any()
    return _out(_ceil_log2(k), hops)


def _ceil_log2(k: NDArray[np.float64]) -> NDArray[np.float64]:
    # exact for integers: frexp gives k = f * 2**e with f in [0.5, 1)
    f, e = np.frexp(k)
    return np.where(f == 0.5, e - 1, e).astype(float)


def _g(k: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Chain factor g(k, q) = lam / (m * p) of Eq. 9 (1 for k = 1)."""
    k, q = np.broadcast_arrays(k, q)
    n = _ceil_log2(k) - 1.0
    two_n = 2.0**n
    even = np.mod(k, 2) == 0
    num = np.where(even, k, k - 1.0) * q ** (n + 1.0)
    den = 2.0 * (k - two_n) + q * (2.0 ** (n + 1.0) - k - np.where(even, 0.0, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = num / den
    return np.where(k == 1, 1.0, g)


def chain_factor(hops: ArrayLike, *, q: ArrayLike) -> Any:
    """Chain factor ``g(k, q) = lam / (m*p)`` of Eq. 9, in (0, 1].

    ``g = 1`` for ``k = 1`` (no swap; our definition, Eq. 9 does not cover it) and for
    ``q = 1``; ``g(2, q) = q``; ``g(2**j, q) = q**j``.
    """
    pc = ProblemCollector(_WHERE)
    k = _array("hops", hops, pc, low=1, integer=True)
    qq = _array("q", q, pc, low=0, low_open=True, high=1)
    pc.raise_if_any()
    return _out(_g(k, qq), hops, q)


def log_chain_factor(k: ArrayLike, q: ArrayLike) -> Any:
    """Natural log of :func:`chain_factor`: ``log g(k, q)``, so that
    ``log lam = log m + log p + log g(k, q)`` (linear in a one-hot choice of ``k``)."""
    return _out(np.log(np.asarray(chain_factor(k, q=q), dtype=float)), k, q)


def chain_distribution_ratio(hops: ArrayLike, *, p: ArrayLike, q: ArrayLike, memory: ArrayLike) -> Any:
    """Eq. 9: end-to-end entanglement distribution ratio ``lam`` (pairs per attempt slot).

    With ``n = ceil(log2 k) - 1``:
    even ``k``: ``lam = m*k*p*q**(n+1) / (2*(k-2**n) + q*(2**(n+1)-k))``;
    odd ``k``: ``lam = m*(k-1)*p*q**(n+1) / (2*(k-2**n) + q*(2**(n+1)-k-1))``.
    ``k = 1`` (a single hop, no swap) is not covered by the paper's formula; it is defined
    here as ``m*p``. Guarantees: ``q = 1`` gives ``m*p`` for every ``k``; ``k = 2`` gives
    ``m*p*q``; ``k = 2**j`` gives ``m*p*q**j``; non-increasing in ``k`` for ``k >= 2`` at
    fixed ``p``, increasing in ``p``, ``q`` and ``m``.

    ``hops`` is an integer ``k >= 1``; ``p`` and ``q`` are probabilities in (0, 1];
    ``memory`` is ``m >= 1`` memory units per edge (non-integers are read as an average).
    """
    pc = ProblemCollector(_WHERE)
    k = _array("hops", hops, pc, low=1, integer=True)
    pp = _array("p", p, pc, low=0, low_open=True, high=1)
    qq = _array("q", q, pc, low=0, low_open=True, high=1)
    m = _array("memory", memory, pc, low=1)
    pc.raise_if_any()
    return _out(m * pp * _g(k, qq), hops, p, q, memory)


def chain_latency_s(
    distances_km: ArrayLike,
    *,
    q: ArrayLike,
    memory: ArrayLike,
    alpha_db_per_km: ArrayLike,
    speed_km_per_s: ArrayLike = SPEED_OF_LIGHT_FIBRE_KM_PER_S,
    t_mea_s: ArrayLike = PhysicsParameters.t_mea_s,
    t_ret_s: ArrayLike = PhysicsParameters.t_ret_s,
) -> Any:
    """Eq. 10: latency (s) of establishing one end-to-end pair over a chain, as printed.

    ``T = sum_i t_i / lam + k * (t_mea + t_ret)`` with ``t_i`` of Eq. 8 for every hop and
    ``lam`` of Eq. 9. ``distances_km`` holds the hop lengths along its last axis (``k`` =
    its length, >= 1); leading axes are independent chains. Eq. 9 assumes a homogeneous
    chain; here ``p`` in ``lam`` is the success probability of the **worst (longest) hop**,
    which makes the result conservative for unequal hops. Defaults are those of
    :class:`PhysicsParameters` (the paper's ``t_mea = 100 us`` Bell-state measurement and
    ``t_ret = 1040 us`` retrieval).

    Note: ``t_i`` already contains ``1/p_i`` and ``lam`` contains ``p`` again, so the formula
    as printed scales like ``1/p**2``; ``docs/cluster_model_vs_simulation.md`` compares
    it with the simulated time to the first end-to-end pair.
    """
    pc = ProblemCollector(_WHERE)
    d = _array("distances_km", distances_km, pc, low=0)
    if np.ndim(d) == 0 or (np.ndim(d) >= 1 and np.shape(d)[-1] == 0):
        pc.add(f"{_WHERE}: distances_km", "must list at least one hop length", "pass e.g. [10.0, 10.0]")
    qq = _array("q", q, pc, low=0, low_open=True, high=1)
    m = _array("memory", memory, pc, low=1)
    a = _array("alpha_db_per_km", alpha_db_per_km, pc, low=0)
    s = _array("speed_km_per_s", speed_km_per_s, pc, low=0, low_open=True)
    tm = _array("t_mea_s", t_mea_s, pc, low=0)
    tr = _array("t_ret_s", t_ret_s, pc, low=0)
    pc.raise_if_any()
    a_ = a[..., None] if np.ndim(a) else a
    s_ = s[..., None] if np.ndim(s) else s
    k = float(d.shape[-1])
    t_link = d * 10.0 ** (a_ * d / 10.0) / s_
    p_worst = 10.0 ** (-a * np.max(d, axis=-1) / 10.0)
    lam = m * p_worst * _g(np.asarray(k), qq)
    total = np.sum(t_link, axis=-1) / lam + k * (tm + tr)
    scalar = np.ndim(distances_km) == 1 and all(
        np.ndim(x) == 0 for x in (q, memory, alpha_db_per_km, speed_km_per_s, t_mea_s, t_ret_s)
    )
    return float(total) if scalar else np.asarray(total)


def plob_bound(distance_km: ArrayLike, *, alpha_db_per_km: ArrayLike) -> Any:
    """PLOB repeaterless capacity ``-log2(1 - eta)`` (secret bits per channel use), with
    ``eta = 10**(-alpha*L/10)`` the transmissivity of ``L = distance_km`` of fibre.

    ``inf`` at ``L = 0`` (lossless channel); about ``1.44 * eta`` for small ``eta``.
    """
    pc = ProblemCollector(_WHERE)
    d = _array("distance_km", distance_km, pc, low=0)
    a = _array("alpha_db_per_km", alpha_db_per_km, pc, low=0)
    pc.raise_if_any()
    eta = 10.0 ** (-a * d / 10.0)
    with np.errstate(divide="ignore"):
        value = -np.log2(np.maximum(1.0 - eta, 0.0))
    return _out(value, distance_km, alpha_db_per_km)


def max_hop_km_for_rate(
    target_ratio: ArrayLike,
    *,
    hops: ArrayLike,
    q: ArrayLike,
    memory: ArrayLike,
    alpha_db_per_km: ArrayLike,
) -> Any:
    """Longest hop (km) for which Eq. 9 still reaches ``target_ratio`` pairs per slot.

    Solves ``m * p(d) * g(k, q) >= target`` for ``d``:
    ``d_max = 10 * log10(m * g / target) / alpha``. Returns ``nan`` where the target is
    unreachable even with zero-length hops (``target > m * g``) and ``inf`` where
    ``alpha = 0`` and the target is reachable.
    """
    pc = ProblemCollector(_WHERE)
    t = _array("target_ratio", target_ratio, pc, low=0, low_open=True)
    k = _array("hops", hops, pc, low=1, integer=True)
    qq = _array("q", q, pc, low=0, low_open=True, high=1)
    m = _array("memory", memory, pc, low=1)
    a = _array("alpha_db_per_km", alpha_db_per_km, pc, low=0)
    pc.raise_if_any()
    best = m * _g(k, qq)
    margin_db = 10.0 * np.log10(best / t)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(a > 0, margin_db / np.where(a > 0, a, 1.0), np.inf)
    d = np.where(margin_db < 0, np.nan, d)
    return _out(d, target_ratio, hops, q, memory, alpha_db_per_km)
