"""Repeater spacing on backbone links (cluster paper, Eqs. 7-10).

For every backbone link the model chooses how many equally spaced
entanglement repeaters it gets (one-hot options ``0..max_repeaters``). A link
of length ``L`` with ``n`` repeaters has ``n + 1`` segments of ``L / (n + 1)``
km, each with the Eq. 7 success probability ``p = 10**(-alpha * L / (n+1) / 10)``.

Every demand runs over one backbone path, fixed or chosen among its candidate
paths. Its chain has ``k`` = the total number of segments (hops) along the
path and its distribution ratio follows Eq. 9, ``lam = m * p * g(k)`` with
``g`` the hop factor (a table the caller computes, :class:`ChainParameters`) and ``p`` the success probability of
the *worst* (longest) segment on the path: Eq. 9 is stated for a homogeneous
chain, and using the worst segment for every hop makes the prediction a lower
bound for an inhomogeneous one.

Both nonlinearities are exact in the model:

* ``log g(k)`` through a one-hot choice of ``k`` per demand, tied to the
  link options by ``sum_k k * z[d,k] = sum_{l on path} (n_l + 1)``;
* ``log p_worst`` through ``y[d] <= log p_l(n_l)`` for every link on the path
  (``log p_l(n_l)`` is linear in the one-hot link option), which is tight
  because every constraint and objective asks for a large ``y``.

The Eq. 10 latency limit ``sum_i t_i / lam + k * (t_mea + t_ret) <= T`` is
linearised exactly as ``sum_i t_i <= sum_k (T - k (t_mea + t_ret)) m g(k) w[d,k]``
with ``w[d,k] = z[d,k] * p_lin[d]`` (product of a binary and a continuous
variable in [0, 1]; only the upper McCormick inequalities are needed because
the constraint asks for a large ``w``).

Modes: ``"min_cost"`` (least repeater cost such that every demand meets its
rate target and latency limit) and ``"max_min_rate"`` (maximise the minimum
rate, in log space, under a repeater budget), see :func:`solve_spacing`.

Speed on real networks (hundreds of demands) comes from three exact steps and
one heuristic: :func:`drop_dominated_demands` removes demands whose path is a
subset of another's with no higher target (valid because ``g(k)`` is
non-increasing, which is checked); :func:`presolve_spacing` removes link
options too short of the targets and hop counts that cannot reach them;
links no demand uses never enter the model; and :func:`heuristic_spacing`
finds a good design in well under a second, which is the MIP start and the
answer whenever the MILP finds nothing better within its time limit.

At national scale (tens of thousands of demands) the stage stays near-linear:
input tables are read as plain dicts (no per-row pandas access); dominance
uses per-link bit masks of the kept demands; the heuristic runs on the
reduced demands, evaluates whole designs with numpy and re-evaluates only the
demands using a changed link during greedy removal; the per-demand pre-check
runs only when the heuristic finds no design (a design meeting every target
proves each demand reachable). The model is never built blind: when the
heuristic's cost equals the exact presolve bound (every link's least useful
repeater count) it is optimal and no model is built; otherwise the size is
estimated (:func:`estimate_spacing_size`) and, if it exceeds ``max_nonzeros``
or its build would not fit in the time left, the heuristic design is returned
with that bound. Measured on 1 139 German cities (71 253 demands): over 15
minutes before, 23 s after (see ``benchmarks/results_scale_real.md``).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np
import pandas as pd
import pyomo.environ as pyo

from solvers.base import (
    ModelInfeasible,
    RawSolve,
    SolveResult,
    SolverOptions,
    SolveStatus,
    relative_gap,
)
from solvers.base import (
    show_value as _show,
)
from solvers.highs_driver import solve_model

logger = logging.getLogger(__name__)


LN10 = math.log(10.0)
# Pyomo builds the spacing model at roughly this many nonzeros per second on one core (measured
# on the real site lists, conservative); used to decide whether a build fits the time left.
BUILD_NONZEROS_PER_S = 40_000.0
MIN_SOLVE_S = 1.0  # below this, solving is not attempted: the heuristic design stands
SpacingMode = Literal["min_cost", "max_min_rate"]


class RepeaterInputError(ValueError):
    """The tables handed to the spacing model are invalid; the message names the row and the fix."""


class RepeaterInfeasible(ModelInfeasible):
    """No repeater spacing meets the targets.

    ``conflicts`` lists the demand ids that cannot meet their target (alone, or
    together as a minimal conflicting set); ``details`` explains each one.
    """

    conflict_label = "Conflicting demands"


@dataclass(frozen=True)
class ChainParameters:
    """Physical parameters of the backbone chains (cluster paper, Sec. 3.3).

    ``alpha_db_per_km``: fibre loss (Eq. 7; the paper uses 0.4 dB/km for the NV
    platform); ``q``: entanglement swapping success probability; ``memory``: m,
    memory units per edge (Eq. 9); ``speed_km_per_s``: photon speed in fibre
    (Eq. 8); ``t_mea_s`` / ``t_ret_s``: joint measurement and retrieval delay (Eq. 10).
    ``hop_factors``: the Eq. 9 hop factor ``g(k) = lam / (m p)`` of a ``k``-hop chain
    with swapping probability ``q``, for ``k = 0..K`` (entry 0 is not used), computed by
    the caller (the planner's physics layer); this package does not restate Eq. 9.
    ``K`` must cover every chain the model can form: the sum over the links of
    (``max_repeaters`` + 1), plus 1.
    """

    alpha_db_per_km: float = 0.4
    q: float = 0.9
    memory: float = 1.0
    speed_km_per_s: float = 2.0e5
    t_mea_s: float = 100e-6
    t_ret_s: float = 1040e-6
    hop_factors: tuple[float, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.alpha_db_per_km) and self.alpha_db_per_km >= 0):
            problems.append(f"alpha_db_per_km={self.alpha_db_per_km} must be a finite number >= 0")
        if not (0 < self.q <= 1):
            problems.append(f"q={self.q} must be in (0, 1]")
        if not (math.isfinite(self.memory) and self.memory > 0):
            problems.append(f"memory={self.memory} must be > 0")
        if not (math.isfinite(self.speed_km_per_s) and self.speed_km_per_s > 0):
            problems.append(f"speed_km_per_s={self.speed_km_per_s} must be > 0")
        if not (self.t_mea_s >= 0 and self.t_ret_s >= 0):
            problems.append("t_mea_s and t_ret_s must be >= 0")
        g = self.hop_factors[1:]
        if len(g) == 0:
            problems.append("hop_factors (Eq. 9 g(k) for k = 0..K) must be given")
        elif g[0] != 1.0 or not all(0 < x <= 1 for x in g):
            problems.append("hop_factors must have g(1) = 1 and every g(k) in (0, 1]")
        if problems:
            raise RepeaterInputError("chain parameters: " + "; ".join(problems))

    @property
    def max_hops(self) -> int:
        """The largest ``k`` whose hop factor is known."""
        return len(self.hop_factors) - 1

    def hop_factor(self, hops: int) -> float:
        """``g(k)`` from the table; raises :class:`RepeaterInputError` beyond it."""
        k = int(hops)
        if not 1 <= k <= self.max_hops:
            raise RepeaterInputError(
                f"hops={hops}: the hop factor table covers k = 1..{self.max_hops}; "
                "give hop_factors up to the sum over links of (max_repeaters + 1), plus 1"
            )
        return self.hop_factors[k]


# ---------------------------------------------------------------------------
# Eqs. 7, 8 and 10 per segment (Eq. 9's hop factor comes as a table in ChainParameters)
# ---------------------------------------------------------------------------


def segment_probability(segment_km: float, alpha_db_per_km: float) -> float:
    """Eq. 7: success probability of one entanglement attempt over ``segment_km``."""
    return float(10.0 ** (-alpha_db_per_km * segment_km / 10.0))


def segment_time_s(segment_km: float, alpha_db_per_km: float, speed_km_per_s: float) -> float:
    """Eq. 8: expected time to one successful link entanglement over ``segment_km``."""
    return float(segment_km * 10.0 ** (alpha_db_per_km * segment_km / 10.0) / speed_km_per_s)


def chain_rate(hops: int, p: float, params: ChainParameters) -> float:
    """Eq. 9 distribution ratio ``lam = m * p * g(k)``."""
    return params.memory * p * params.hop_factor(hops)


def chain_latency_from_segments_s(
    segments_km: Sequence[float], p: float, params: ChainParameters
) -> float:
    """Eq. 10 latency of a chain whose hops have the given lengths, with rate from worst ``p``."""
    k = len(segments_km)
    total_t = sum(
        segment_time_s(d, params.alpha_db_per_km, params.speed_km_per_s) for d in segments_km
    )
    return total_t / chain_rate(k, p, params) + k * (params.t_mea_s + params.t_ret_s)


# ---------------------------------------------------------------------------
# Input tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpacingData:
    """Validated, indexed input of the spacing model."""

    links: pd.DataFrame  # index: link; columns length_km, cost_per_repeater, max_repeaters
    demand_ids: list[Hashable]
    paths: dict[Hashable, list[tuple[Hashable, ...]]]
    rate_target: dict[Hashable, float]
    latency_limit_s: dict[Hashable, float]
    params: ChainParameters
    # plain-dict views of ``links`` for the Python loops (no per-row pandas access)
    length_of: dict[Hashable, float] = dataclasses.field(init=False, repr=False, compare=False)
    n_max_of: dict[Hashable, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "length_of", dict(zip(self.links.index, self.links["length_km"].astype(float), strict=True)))
        object.__setattr__(self, "n_max_of", dict(zip(self.links.index, self.links["max_repeaters"].astype(int), strict=True)))


def prepare_spacing_data(
    links: pd.DataFrame,
    demands: pd.DataFrame,
    params: ChainParameters,
    *,
    latency_limit_s: float | None = None,
    require_targets: bool = False,
) -> SpacingData:
    """Validate the ``links`` and ``demands`` tables; raises :class:`RepeaterInputError` listing every problem.

    ``links`` columns: ``link``, ``length_km``, ``cost_per_repeater`` (default 1),
    ``max_repeaters``. ``demands`` columns: ``demand``, ``paths`` (a list of
    candidate paths, each a list of link ids; a single path may be given in a
    ``path`` column instead), ``rate_target`` (required in min-cost mode),
    optional ``latency_limit_s`` (NaN = none; else the keyword value applies).
    """
    problems: list[str] = []
    for col in ("link", "length_km", "max_repeaters"):
        if col not in links.columns:
            problems.append(f"links table: missing column '{col}' (add it)")
    if "demand" not in demands.columns:
        problems.append("demands table: missing column 'demand' (add it)")
    if "paths" not in demands.columns and "path" not in demands.columns:
        problems.append(
            "demands table: missing column 'paths' (list of candidate link-id paths) or 'path'"
        )
    if require_targets and "rate_target" not in demands.columns:
        problems.append("demands table: missing column 'rate_target' (required in min_cost mode)")
    if problems:
        raise RepeaterInputError("; ".join(problems))

    lk = links.copy()
    if "cost_per_repeater" not in lk.columns:
        lk["cost_per_repeater"] = 1.0
    if lk["link"].duplicated().any():
        dup = lk.loc[lk["link"].duplicated(), "link"].tolist()
        problems.append(f"links table: duplicated link ids {dup} (make them unique)")
    for i, row in zip(lk.index, lk.to_dict("records"), strict=True):  # plain dicts: fast at 10^5 rows
        where = f"links table, row {i} (link {_show(row['link'])})"
        length = row["length_km"]
        if not (
            isinstance(length, (int, float, np.number)) and math.isfinite(length) and length > 0
        ):
            problems.append(f"{where}: length_km={_show(length)} must be a finite number > 0")
        nmax = row["max_repeaters"]
        if (
            not (
                isinstance(nmax, (int, np.integer))
                or (isinstance(nmax, float) and float(nmax).is_integer())
            )
            or nmax < 0
        ):
            problems.append(f"{where}: max_repeaters={_show(nmax)} must be an integer >= 0")
        cost = row["cost_per_repeater"]
        if not (isinstance(cost, (int, float, np.number)) and math.isfinite(cost) and cost >= 0):
            problems.append(
                f"{where}: cost_per_repeater={_show(cost)} must be a finite number >= 0"
            )
    known = set(lk["link"])

    ids: list[Hashable] = []
    paths: dict[Hashable, list[tuple[Hashable, ...]]] = {}
    targets: dict[Hashable, float] = {}
    limits: dict[Hashable, float] = {}
    if demands["demand"].duplicated().any():
        dup = demands.loc[demands["demand"].duplicated(), "demand"].tolist()
        problems.append(f"demands table: duplicated demand ids {dup} (make them unique)")
    for i, row in zip(demands.index, demands.to_dict("records"), strict=True):
        d = row["demand"]
        where = f"demands table, row {i} (demand {_show(d)})"
        raw = row["paths"] if "paths" in demands.columns else [row["path"]]
        cand = _as_paths(raw)
        if cand is None or not cand:
            problems.append(f"{where}: paths must be a non-empty list of non-empty link-id lists")
            continue
        for path in cand:
            unknown = [lid for lid in path if lid not in known]
            if unknown:
                problems.append(
                    f"{where}: path uses unknown links {unknown} (add them to the links table)"
                )
            if len(set(path)) != len(path):
                problems.append(f"{where}: path {list(path)} repeats a link (give simple paths)")
        ids.append(d)
        paths[d] = cand
        if "rate_target" in demands.columns:
            tgt = row["rate_target"]
            ok = isinstance(tgt, (int, float, np.number)) and (math.isnan(tgt) or tgt > 0)
            if not ok or (require_targets and math.isnan(tgt)):
                problems.append(f"{where}: rate_target={_show(tgt)} must be a number > 0")
            elif not math.isnan(tgt):
                targets[d] = float(tgt)
        lim = row["latency_limit_s"] if "latency_limit_s" in demands.columns else math.nan
        if lim is None or (isinstance(lim, float) and math.isnan(lim)):
            lim = latency_limit_s if latency_limit_s is not None else math.nan
        if not math.isnan(lim):
            if not (lim > 0 and math.isfinite(lim)):
                problems.append(
                    f"{where}: latency_limit_s={_show(lim)} must be a finite number > 0"
                )
            else:
                limits[d] = float(lim)
    if not ids and not problems:
        problems.append("demands table is empty (give at least one demand)")
    if problems:
        raise RepeaterInputError("; ".join(problems))
    lk = lk.set_index("link")
    lk["max_repeaters"] = lk["max_repeaters"].astype(int)
    lk["length_km"] = lk["length_km"].astype(float)
    lk["cost_per_repeater"] = lk["cost_per_repeater"].astype(float)
    return SpacingData(lk, ids, paths, targets, limits, params)


def _as_paths(raw: Any) -> list[tuple[Hashable, ...]] | None:
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple, np.ndarray)):
        return None
    out = []
    for path in raw:
        if (
            isinstance(path, (str, bytes))
            or not isinstance(path, (list, tuple, np.ndarray))
            or len(path) == 0
        ):
            return None
        out.append(tuple(path.tolist() if isinstance(path, np.ndarray) else path))
    return out


# ---------------------------------------------------------------------------
# Coefficients
# ---------------------------------------------------------------------------


def link_options(data: SpacingData) -> pd.DataFrame:
    """One row per (link, repeaters) option: segment_km, hops, log_p, p, time_s (Eqs. 7, 8)."""
    par = data.params
    rows = []
    for lid, row in data.links.iterrows():
        for n in range(int(row["max_repeaters"]) + 1):
            seg = row["length_km"] / (n + 1)
            rows.append(
                {
                    "link": lid,
                    "repeaters": n,
                    "segment_km": seg,
                    "hops": n + 1,
                    "log_p": -par.alpha_db_per_km * seg / 10.0 * LN10,
                    "time_s": (n + 1)
                    * segment_time_s(seg, par.alpha_db_per_km, par.speed_km_per_s),
                    "cost": n * row["cost_per_repeater"],
                }
            )
    table = pd.DataFrame(rows)
    table["p"] = np.exp(table["log_p"])
    return table


def _hop_range(
    data: SpacingData, path: tuple[Hashable, ...], n_lo: Mapping[Hashable, int] | None = None
) -> tuple[int, int]:
    lo = len(path) + (sum(n_lo.get(lid, 0) for lid in path) if n_lo else 0)
    hi = len(path) + sum(data.n_max_of[lid] for lid in path)
    return int(lo), int(hi)


# ---------------------------------------------------------------------------
# Exact presolve
# ---------------------------------------------------------------------------


def _log_hop_table(k_max: int, params: ChainParameters) -> np.ndarray:
    """``log g(k)`` for ``k = 0..k_max`` (entry 0 is -inf, unused)."""
    params.hop_factor(k_max)  # raises when the table is too short
    table = np.full(k_max + 1, -np.inf)
    for k in range(1, k_max + 1):
        table[k] = math.log(params.hop_factors[k])
    return table


def _max_hops(data: SpacingData) -> int:
    n_max = data.n_max_of
    return max(len(path) + sum(n_max[lid] for lid in path) for d in data.demand_ids for path in data.paths[d])


def hop_factor_nonincreasing(k_max: int, params: ChainParameters) -> bool:
    """True when ``g(k+1) <= g(k)`` for every ``1 <= k < k_max`` (checked numerically)."""
    logg = _log_hop_table(k_max, params)[1:]
    return bool(np.all(np.diff(logg) <= 1e-12))


def _fewest_repeaters(data: SpacingData, lid: Hashable, need_log_p: float) -> int:
    """Fewest repeaters on ``lid`` with segment ``log p >= need_log_p`` (its maximum if none)."""
    alpha = data.params.alpha_db_per_km
    n_max = data.n_max_of[lid]
    if need_log_p >= 0 or alpha <= 0:
        return n_max if need_log_p > 0 else 0
    seg_max_km = -need_log_p * 10.0 / (alpha * LN10)
    n = math.ceil(data.length_of[lid] / seg_max_km - 1e-12) - 1
    return int(min(max(n, 0), n_max))


def presolve_spacing(
    data: SpacingData, *, mode: SpacingMode, rate_floor: float | None = None, hop_counts: bool = True
) -> tuple[dict[Hashable, int], dict[Hashable, set[int]]]:
    """Exact reductions: lowest useful option per link and allowed hop counts per demand.

    Every demand ``d`` with a required rate ``r_d`` (its target in
    ``min_cost`` mode; ``rate_floor`` for every demand in ``max_min_rate``
    mode) needs ``m * p_worst * g(k) >= r_d``. Hence, with ``G = max g``:
    every link on a demand's only path needs ``p_l(n) >= r_d / (m G)``, which
    gives the lowest option ``n_lo[l]``; and a hop count ``k`` is possible only
    if ``m * p_best * g(k) >= r_d`` on some candidate path, ``p_best`` the
    worst link's best probability. No feasible design (no design at least as
    good as ``rate_floor``) is cut off. Small relative slack (1e-6) keeps
    designs on the boundary. With ``hop_counts=False`` only ``n_lo`` is
    computed (the hop-count sets are returned empty).
    """
    par = data.params
    k_max = _max_hops(data)
    logg = _log_hop_table(k_max, par)
    required: dict[Hashable, float] = {}
    if mode == "min_cost":
        required = dict(data.rate_target)
    elif rate_floor is not None and rate_floor > 0:
        required = {d: float(rate_floor) for d in data.demand_ids}
    slack = 1e-6
    n_lo: dict[Hashable, int] = {}
    singles = [(d, r, data.paths[d][0]) for d, r in required.items() if len(data.paths[d]) == 1]
    changed = True
    while changed:  # fixed point: more repeaters -> more hops -> lower best g -> more repeaters
        changed = False
        for _d, r, path in singles:
            k_lo = _hop_range(data, path, n_lo)[0]
            log_gmax = float(np.max(logg[k_lo:]))
            need_log_p = math.log(r) - math.log(par.memory) - log_gmax - slack
            for lid in path:
                n_new = _fewest_repeaters(data, lid, need_log_p)
                if n_new > n_lo.get(lid, 0):
                    n_lo[lid] = n_new
                    changed = True
    ks_allowed: dict[Hashable, set[int]] = {}
    for d, r in (required.items() if hop_counts else ()):
        allowed: set[int] = set()
        for path in data.paths[d]:
            lo, hi = _hop_range(data, path, n_lo)
            lengths = np.array([data.length_of[lid] for lid in path])
            n_max = np.array([data.n_max_of[lid] for lid in path])
            ks = np.arange(lo, hi + 1)
            need_log_p_k = math.log(r) - math.log(par.memory) - logg[ks] - slack  # per k
            # fewest repeaters per link reaching need_log_p_k at this k; k must fit their hops
            log_p_opt = -par.alpha_db_per_km * lengths / (n_max + 1) / 10.0 * LN10
            reachable = need_log_p_k <= log_p_opt.min()
            with np.errstate(divide="ignore", invalid="ignore"):
                seg_max_km = np.where(
                    need_log_p_k < 0, -need_log_p_k * 10.0 / max(par.alpha_db_per_km, 1e-300) / LN10, 0
                )
                fewest = np.ceil(lengths[None, :] / seg_max_km[:, None] - 1e-12) - 1
            fewest = np.clip(np.nan_to_num(fewest, nan=0.0, posinf=1e9), 0, n_max[None, :])
            ok = reachable & ((fewest + 1).sum(axis=1) <= ks)
            allowed.update(int(k) for k in ks[ok])
        ks_allowed[d] = allowed
    return n_lo, ks_allowed


def drop_dominated_demands(data: SpacingData, *, mode: SpacingMode) -> tuple[SpacingData, int]:
    """Remove demands whose constraints are implied by another demand's (exact).

    Demand ``d`` (one fixed path) is dominated by ``e`` (one fixed path) when
    ``d``'s links are a subset of ``e``'s, ``d``'s target is at most ``e``'s
    (``min_cost``) and ``d`` has no latency limit or one at least ``e``'s.
    Then ``d`` has no more hops, no worse worst segment and no more segment
    time than ``e``; with ``g`` non-increasing in ``k`` (checked, else nothing
    is dropped) its Eq. 9 rate is at least ``e``'s and its Eq. 10 latency at
    most ``e``'s, so ``d`` meets whatever ``e`` meets and never sets the
    minimum rate alone. Returns the reduced data and the number dropped.
    """
    if not hop_factor_nonincreasing(_max_hops(data), data.params):
        return data, 0
    single = [d for d in data.demand_ids if len(data.paths[d]) == 1]
    if len(single) < 2:
        return data, 0
    tgt = data.rate_target if mode == "min_cost" else {}
    inf = math.inf

    def order(d: Hashable) -> tuple[float, float, float]:
        return (-len(data.paths[d][0]), -tgt.get(d, 0.0), data.latency_limit_s.get(d, inf))

    kept: list[tuple[float, float]] = []
    dropped: set[Hashable] = set()
    # kept demands per link as bit masks (bit i = kept demand i): intersections run in C
    by_link: dict[Hashable, int] = {}
    # sorted order puts a demand after every demand it could be dominated by, so with equal
    # targets and limits any kept demand covering d dominates it
    uniform = len({tgt.get(d, 0.0) for d in single}) <= 1 and len({data.latency_limit_s.get(d, inf) for d in single}) <= 1
    for d in sorted(single, key=order):
        links = data.paths[d][0]
        t_d = tgt.get(d, 0.0)
        lim_d = data.latency_limit_s.get(d, inf)
        cand = -1
        for lid in links:
            cand &= by_link.get(lid, 0)
            if not cand:
                break
        dominated = False
        if cand:
            if uniform:
                dominated = True
            else:
                while cand and not dominated:
                    low = cand & -cand
                    t_e, lim_e = kept[low.bit_length() - 1]
                    dominated = t_d <= t_e and lim_d >= lim_e
                    cand ^= low
        if dominated:
            dropped.add(d)
            continue
        kept.append((t_d, lim_d))
        bit = 1 << (len(kept) - 1)
        for lid in links:
            by_link[lid] = by_link.get(lid, 0) | bit
    if not dropped:
        return data, 0
    return _subset(data, [d for d in data.demand_ids if d not in dropped]), len(dropped)


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------


def estimate_spacing_size(
    data: SpacingData, n_lo: Mapping[Hashable, int], ks_allowed: Mapping[Hashable, set[int]]
) -> dict[str, int]:
    """Variables, constraints and nonzeros :func:`build_spacing_model` would create (upper estimate).

    Counts follow the formulation: one-hot options of every used link above its
    presolve floor, one-hot hop counts per demand, path choices, the worst
    segment variable, and per (demand, path) the hop-linking and per (demand,
    path, link) the worst-segment rows (each over the link's options).
    """
    n_opt = {lid: data.n_max_of[lid] - int(n_lo.get(lid, 0)) + 1 for lid in data.length_of}
    used: set[Hashable] = set()
    n_k = n_dp = n_dpl = nz = 0
    for d in data.demand_ids:
        ks: set[int] = set()
        for path in data.paths[d]:
            lo, hi = _hop_range(data, path, n_lo)
            if not ks_allowed.get(d):
                ks.update(range(lo, hi + 1))
            used.update(path)
            opt_sum = sum(n_opt[lid] for lid in path)
            n_dpl += len(path)
            nz += 3 * opt_sum + 3 * len(path)
        k = len(ks_allowed[d] if ks_allowed.get(d) else ks)
        n_k += k
        n_dp += len(data.paths[d])
        nz += (2 * len(data.paths[d]) + 2) * k
    n_x = sum(n_opt[lid] for lid in used)
    n_vars = n_x + n_k + len(data.demand_ids) + (n_dp if n_dp > len(data.demand_ids) else 0)
    n_cons = len(used) + 2 * len(data.demand_ids) + 2 * n_dp + n_dpl
    return {"n_variables": int(n_vars), "n_constraints": int(n_cons), "n_nonzeros": int(nz + 2 * n_x)}


def _fallback_bound(data: SpacingData, n_lo: Mapping[Hashable, int], *, mode: SpacingMode,
                    max_demands: int = 200) -> float:
    """A valid bound on the MILP optimum without solving it.

    ``min_cost``: the cost of the presolve floors (every link needs at least
    ``n_lo`` repeaters in any feasible design: exact presolve). ``max_min_rate``
    (log space): the log of the lowest best-alone rate of up to ``max_demands``
    demands with the longest paths (no design gives any demand more than its
    best rate alone, so the minimum rate cannot exceed it).
    """
    if mode == "min_cost":
        cost = data.links["cost_per_repeater"].to_dict()
        return float(sum(float(cost[lid]) * int(n) for lid, n in n_lo.items()))
    longest = sorted(data.demand_ids, key=lambda d: -max(len(p) for p in data.paths[d]))[:max_demands]
    best = min(best_single_rate(data, d) for d in longest)
    return math.log(best) if best > 0 else -math.inf


def build_spacing_model(
    data: SpacingData,
    *,
    mode: SpacingMode = "min_cost",
    budget: float | None = None,
    rate_floor: float | None = None,
    presolved: tuple[dict[Hashable, int], dict[Hashable, set[int]]] | None = None,
) -> pyo.ConcreteModel:
    """Build the spacing MILP from validated data (see the module docstring for the formulation).

    The model is presolved exactly (see :func:`presolve_spacing`): link options
    and hop counts that cannot reach a demand's rate target (in ``max_min_rate``
    mode: ``rate_floor``, the minimum rate of a known design, if given) are left
    out. ``data`` should already be reduced by :func:`drop_dominated_demands`
    where wanted.

    Sets: ``LO`` (link, option), ``DP`` (demand, path index), ``DK`` (demand, hops).
    Variables: ``x`` one-hot link options, ``u`` path choice (only for demands
    with several candidate paths), ``z`` one-hot hops, ``y`` log of the worst
    segment probability, and for latency limits ``p_lin`` and ``w``.
    """
    if mode not in ("min_cost", "max_min_rate"):
        raise RepeaterInputError(f"mode={_show(mode)} must be 'min_cost' or 'max_min_rate'")
    if mode == "max_min_rate" and budget is not None and not (budget >= 0):
        raise RepeaterInputError(f"budget={_show(budget)} must be >= 0")
    m = pyo.ConcreteModel(name=f"repeater-spacing-{mode}")
    m._data = data
    m._mode = mode
    n_lo, ks_allowed = presolved or presolve_spacing(data, mode=mode, rate_floor=rate_floor)
    m._n_lo = n_lo
    m._ks_allowed = ks_allowed
    define_link_options(m, data)
    define_path_choice(m, data)
    define_hop_count(m, data)
    define_worst_segment(m, data)
    if mode == "min_cost":
        define_rate_target(m, data)
    else:
        define_min_rate(m, data)
        if budget is not None:
            define_repeater_budget(m, data, budget)
    if data.latency_limit_s:
        define_latency_limit(m, data)
    define_objective(m, data, mode)
    return m


def define_link_options(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``link-option-once``: each used link takes exactly one repeater count."""
    used = sorted({lid for d in data.demand_ids for path in data.paths[d] for lid in path}, key=str)
    m._used_links = used
    opts = link_options(data)
    opts = opts[opts["link"].isin(used)]
    lowest = opts["link"].map(lambda lid: m._n_lo.get(lid, 0))
    opts = opts[opts["repeaters"] >= lowest]
    m._opts = opts.set_index(["link", "repeaters"])
    # plain dicts of the option coefficients (the constraint rules read them per term)
    m._coef = {col: dict(zip(m._opts.index, m._opts[col].astype(float), strict=True))
               for col in ("log_p", "p", "time_s", "cost")}
    m.LO = pyo.Set(initialize=list(m._opts.index), dimen=2, ordered=True)
    m.x = pyo.Var(m.LO, domain=pyo.Binary)
    by_link: dict[Hashable, list[tuple[Hashable, int]]] = {}
    for lid, n in m.LO:
        by_link.setdefault(lid, []).append((lid, n))
    m._by_link = by_link
    m.L = pyo.Set(initialize=used, ordered=True)
    m.link_option_once = pyo.Constraint(
        m.L, rule=lambda mm, lid: sum(mm.x[i] for i in by_link[lid]) == 1
    )


def _sel(m: pyo.ConcreteModel, d: Hashable, j: int) -> Any:
    """1 for a demand's only path, else the path-choice variable."""
    return m.u[d, j] if (d, j) in m._dp_var else 1


def define_path_choice(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``path-choice-once``: a demand with several candidate paths uses exactly one."""
    dp = [(d, j) for d in data.demand_ids for j in range(len(data.paths[d]))]
    m.DP = pyo.Set(initialize=dp, dimen=2, ordered=True)
    multi = [(d, j) for d, j in dp if len(data.paths[d]) > 1]
    m._dp_var = set(multi)
    m.DPv = pyo.Set(initialize=multi, dimen=2, ordered=True)
    m.u = pyo.Var(m.DPv, domain=pyo.Binary)
    multi_d = [d for d in data.demand_ids if len(data.paths[d]) > 1]
    m.Dmulti = pyo.Set(initialize=multi_d, ordered=True)
    m.path_choice_once = pyo.Constraint(
        m.Dmulti, rule=lambda mm, d: sum(mm.u[d, j] for j in range(len(data.paths[d]))) == 1
    )


def _path_hops_expr(m: pyo.ConcreteModel, path: tuple[Hashable, ...]) -> Any:
    return sum((n + 1) * m.x[lid, n] for lid in path for (_, n) in m._by_link[lid])


def define_hop_count(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``hops-once`` and ``hops-link``: one-hot total hop count k tied to the chosen path's link options."""
    dk: list[tuple[Hashable, int]] = []
    for d in data.demand_ids:
        ks: set[int] = set()
        for path in data.paths[d]:
            lo, hi = _hop_range(data, path, m._n_lo)
            ks.update(range(lo, hi + 1))
        allowed = m._ks_allowed.get(d)
        if allowed is not None and ks & allowed:
            ks &= allowed
        dk.extend((d, k) for k in sorted(ks))
    m.DK = pyo.Set(initialize=dk, dimen=2, ordered=True)
    m.z = pyo.Var(m.DK, domain=pyo.Binary)
    ks_of: dict[Hashable, list[int]] = {}
    for d, k in dk:
        ks_of.setdefault(d, []).append(k)
    m._ks_of = ks_of
    m.D = pyo.Set(initialize=data.demand_ids, ordered=True)
    m.hops_once = pyo.Constraint(m.D, rule=lambda mm, d: sum(mm.z[d, k] for k in ks_of[d]) == 1)

    def k_expr(mm: pyo.ConcreteModel, d: Hashable) -> Any:
        return sum(k * mm.z[d, k] for k in ks_of[d])

    def upper(mm: pyo.ConcreteModel, d: Hashable, j: int) -> Any:
        path = data.paths[d][j]
        big = max(0, max(ks_of[d]) - _hop_range(data, path, m._n_lo)[0])
        return k_expr(mm, d) <= _path_hops_expr(mm, path) + big * (1 - _sel(mm, d, j))

    def lower(mm: pyo.ConcreteModel, d: Hashable, j: int) -> Any:
        path = data.paths[d][j]
        big = max(0, _hop_range(data, path, m._n_lo)[1] - min(ks_of[d]))
        return k_expr(mm, d) >= _path_hops_expr(mm, path) - big * (1 - _sel(mm, d, j))

    m.hops_link_upper = pyo.Constraint(m.DP, rule=upper)
    m.hops_link_lower = pyo.Constraint(m.DP, rule=lower)


def define_worst_segment(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``worst-segment``: ``y[d] <= log p`` of every link segment on the chosen path."""
    log_p = m._coef["log_p"]
    worst = {lid: log_p[m._by_link[lid][0]] for lid in m._used_links}
    lo_y = {d: min(worst[lid] for path in data.paths[d] for lid in path) for d in data.demand_ids}
    m.y = pyo.Var(m.D, bounds=lambda mm, d: (lo_y[d], 0.0))
    rows = [(d, j, lid) for d, j in m.DP for lid in data.paths[d][j]]
    m.DPL = pyo.Set(initialize=rows, dimen=3, ordered=True)

    def rule(mm: pyo.ConcreteModel, d: Hashable, j: int, lid: Hashable) -> Any:
        logp = sum(log_p[i] * mm.x[i] for i in m._by_link[lid])
        big = -worst[lid]  # relaxes to y <= 0 when the path is not chosen
        return mm.y[d] <= logp + big * (1 - _sel(mm, d, j))

    m.worst_segment = pyo.Constraint(m.DPL, rule=rule)


def _log_rate_expr(m: pyo.ConcreteModel, data: SpacingData, d: Hashable) -> Any:
    return (
        math.log(data.params.memory)
        + m.y[d]
        + sum(math.log(data.params.hop_factor(k)) * m.z[d, k] for k in m._ks_of[d])
    )


def define_rate_target(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``rate-target``: ``log m + log p_worst + log g(k) >= log target`` (exact, Eq. 9)."""
    with_target = [d for d in data.demand_ids if d in data.rate_target]
    m.Dtarget = pyo.Set(initialize=with_target, ordered=True)
    m.rate_target = pyo.Constraint(
        m.Dtarget, rule=lambda mm, d: _log_rate_expr(mm, data, d) >= math.log(data.rate_target[d])
    )


def define_min_rate(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``min-rate``: ``eta <= log rate`` of every demand."""
    lo = min(m.y[d].lb for d in data.demand_ids) + math.log(data.params.memory)
    lo += min(math.log(data.params.hop_factor(k)) for d in data.demand_ids for k in m._ks_of[d])
    m.eta = pyo.Var(bounds=(lo - 1.0, math.log(data.params.memory) + 1.0))
    m.min_rate = pyo.Constraint(m.D, rule=lambda mm, d: mm.eta <= _log_rate_expr(mm, data, d))


def _cost_expr(m: pyo.ConcreteModel) -> Any:
    cost = m._coef["cost"]
    return sum(cost[i] * m.x[i] for i in m.LO if cost[i] != 0)


def define_repeater_budget(m: pyo.ConcreteModel, data: SpacingData, budget: float) -> None:
    """``repeater-budget``: total repeater cost <= budget."""
    m.repeater_budget = pyo.Constraint(expr=_cost_expr(m) <= budget)


def define_latency_limit(m: pyo.ConcreteModel, data: SpacingData) -> None:
    """``latency-limit``: Eq. 10 latency <= limit, linear after scaling by the limit.

    ``sum_i t_i / T <= sum_k ((T - k c) / T) m g(k) w[d,k]`` with ``w <= z``,
    ``w <= p_lin`` and ``p_lin[d] <= p`` of every segment on the chosen path.
    Options whose own segment time already exceeds the limit are excluded for
    the paths they would sit on (``latency-option-excluded``).
    """
    par = data.params
    per_hop = par.t_mea_s + par.t_ret_s
    dl = [d for d in data.demand_ids if d in data.latency_limit_s]
    m.Dlat = pyo.Set(initialize=dl, ordered=True)
    m.p_lin = pyo.Var(m.Dlat, bounds=(0.0, 1.0))
    dk = [(d, k) for d in dl for k in m._ks_of[d]]
    m.DKlat = pyo.Set(initialize=dk, dimen=2, ordered=True)
    m.w = pyo.Var(m.DKlat, bounds=(0.0, 1.0))
    m.latency_w_hops = pyo.Constraint(m.DKlat, rule=lambda mm, d, k: mm.w[d, k] <= mm.z[d, k])
    m.latency_w_p = pyo.Constraint(m.DKlat, rule=lambda mm, d, k: mm.w[d, k] <= mm.p_lin[d])
    forbidden_k = [(d, k) for d, k in dk if data.latency_limit_s[d] - k * per_hop <= 0]
    m.latency_hops_excluded = pyo.Constraint(
        pyo.Set(initialize=forbidden_k, dimen=2, ordered=True),
        rule=lambda mm, d, k: mm.z[d, k] == 0,
    )
    rows = [(d, j, lid) for d in dl for j in range(len(data.paths[d])) for lid in data.paths[d][j]]
    m.DPLlat = pyo.Set(initialize=rows, dimen=3, ordered=True)

    def p_rule(mm: pyo.ConcreteModel, d: Hashable, j: int, lid: Hashable) -> Any:
        p = sum(m._coef["p"][i] * mm.x[i] for i in m._by_link[lid])
        return mm.p_lin[d] <= p + (1 - _sel(mm, d, j))

    m.latency_worst_segment = pyo.Constraint(m.DPLlat, rule=p_rule)

    excluded = []
    for d, j, lid in rows:
        for i in m._by_link[lid]:
            if m._coef["time_s"][i] > data.latency_limit_s[d]:
                excluded.append((d, j, i[0], i[1]))
    m.latency_option_excluded = pyo.Constraint(
        pyo.Set(initialize=excluded, dimen=4, ordered=True),
        rule=lambda mm, d, j, lid, n: (
            mm.x[lid, n] + _sel(mm, d, j) <= 1 if (d, j) in m._dp_var else mm.x[lid, n] == 0
        ),
    )

    def lat_rule(mm: pyo.ConcreteModel, d: Hashable, j: int) -> Any:
        limit = data.latency_limit_s[d]
        path = data.paths[d][j]
        # clipped scaled times: an option above the limit is excluded on this path anyway
        coef = {
            i: min(m._coef["time_s"][i] / limit, 1.0 + 1e-9)
            for lid in path
            for i in m._by_link[lid]
        }
        big = sum(max(coef[i] for i in m._by_link[lid]) for lid in path)
        lhs = sum(c * mm.x[i] for i, c in coef.items())
        rhs = sum(
            max(0.0, (limit - k * per_hop) / limit) * par.memory * par.hop_factor(k) * mm.w[d, k]
            for k in m._ks_of[d]
        )
        return lhs <= rhs + big * (1 - _sel(mm, d, j))

    m.DPlat = pyo.Set(
        initialize=[(d, j) for d in dl for j in range(len(data.paths[d]))], dimen=2, ordered=True
    )
    m.latency_limit = pyo.Constraint(m.DPlat, rule=lat_rule)


def define_objective(m: pyo.ConcreteModel, data: SpacingData, mode: SpacingMode) -> None:
    """``min_cost``: minimise total repeater cost; ``max_min_rate``: maximise eta (log of the minimum rate)."""
    if mode == "min_cost":
        m.objective = pyo.Objective(expr=_cost_expr(m), sense=pyo.minimize)
    else:
        m.objective = pyo.Objective(expr=m.eta, sense=pyo.maximize)


# ---------------------------------------------------------------------------
# Evaluation (independent of the model: recomputes Eqs. 7-10 from a design)
# ---------------------------------------------------------------------------


def evaluate_spacing(
    data: SpacingData,
    repeaters: Mapping[Hashable, int],
    path_choice: Mapping[Hashable, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Result tables for a given design: repeaters per link and path index per demand.

    Returns ``(links, demands)``: links with ``link, repeaters, segment_km, hops,
    p, cost``; demands with ``demand, path_index, path, hops, p_worst, rate,
    latency_s, rate_target, latency_limit_s, meets_target``. Links missing in
    ``repeaters`` get 0. Rates and latencies are recomputed from Eqs. 7-10.
    """
    par = data.params
    n_arr = np.array([int(repeaters.get(lid, 0)) for lid in data.links.index], dtype=int)
    seg_arr = data.links["length_km"].to_numpy(float) / (n_arr + 1)
    links_out = pd.DataFrame({
        "link": list(data.links.index),
        "repeaters": n_arr,
        "segment_km": seg_arr,
        "hops": n_arr + 1,
        "p": 10.0 ** (-par.alpha_db_per_km * seg_arr / 10.0),
        "cost": n_arr * data.links["cost_per_repeater"].to_numpy(float),
    })
    seg_of = dict(zip(links_out["link"], seg_arr.tolist(), strict=True))
    hops_of = dict(zip(links_out["link"], (n_arr + 1).tolist(), strict=True))
    p_of = dict(zip(links_out["link"], links_out["p"].tolist(), strict=True))
    time_of = {lid: segment_time_s(seg, par.alpha_db_per_km, par.speed_km_per_s) for lid, seg in seg_of.items()}
    drows = []
    for d in data.demand_ids:
        j = int((path_choice or {}).get(d, 0))
        path = data.paths[d][j]
        k = sum(hops_of[lid] for lid in path)
        p_worst = min(p_of[lid] for lid in path)
        rate = chain_rate(k, p_worst, par)
        # Eq. 10 as in chain_latency_from_segments_s, one term per link (its hops are equal)
        total_t = sum(hops_of[lid] * time_of[lid] for lid in path)
        latency = total_t / rate + k * (par.t_mea_s + par.t_ret_s)
        target = data.rate_target.get(d, math.nan)
        limit = data.latency_limit_s.get(d, math.nan)
        ok_rate = math.isnan(target) or rate >= target * (1 - 1e-6)
        ok_lat = math.isnan(limit) or latency <= limit * (1 + 1e-6)
        drows.append(
            {
                "demand": d,
                "path_index": j,
                "path": list(path),
                "hops": k,
                "p_worst": p_worst,
                "rate": rate,
                "latency_s": latency,
                "rate_target": target,
                "latency_limit_s": limit,
                "meets_target": bool(ok_rate and ok_lat),
            }
        )
    return links_out, pd.DataFrame(drows)


# ---------------------------------------------------------------------------
# Heuristic (fast feasible designs; MIP start)
# ---------------------------------------------------------------------------


@dataclass
class HeuristicDesign:
    """A design found by :func:`heuristic_spacing` with its objective (cost, or log min rate)."""

    repeaters: dict[Hashable, int]
    path_choice: dict[Hashable, int]
    objective: float
    time_s: float


class _DesignEvaluator:
    """Vectorised Eqs. 7-10 for every (demand, candidate path) row of a design.

    Agrees with :func:`evaluate_spacing` (the tests compare the designs it
    accepts against that function).
    """

    def __init__(self, data: SpacingData):
        par = data.params
        self.data = data
        self.links = list(data.links.index)
        pos = {lid: i for i, lid in enumerate(self.links)}
        self.length = data.links["length_km"].to_numpy(float)
        self.cost = data.links["cost_per_repeater"].to_numpy(float)
        self.n_max = data.links["max_repeaters"].to_numpy(int)
        rows = [(d, j, path) for d in data.demand_ids for j, path in enumerate(data.paths[d])]
        width = max(len(path) for _, _, path in rows)
        n_links = len(self.links)
        self.index = np.full((len(rows), width), n_links, dtype=int)  # n_links = padding
        for r, (_, _, path) in enumerate(rows):
            self.index[r, : len(path)] = [pos[lid] for lid in path]
        dpos = {d: i for i, d in enumerate(data.demand_ids)}
        self.row_demand = np.array([dpos[d] for d, _, _ in rows], dtype=int)
        self.row_path = np.array([j for _, j, _ in rows], dtype=int)
        self.n_demands = len(data.demand_ids)
        self.log_target = np.array(
            [
                math.log(data.rate_target.get(d, math.nan)) if d in data.rate_target else -np.inf
                for d, _, _ in rows
            ]
        )
        self.limit = np.array([data.latency_limit_s.get(d, np.inf) for d, _, _ in rows])
        self.logg = _log_hop_table(int(np.sum(self.n_max + 1)) + 1, par)
        self.log_m = math.log(par.memory)
        self.alpha = par.alpha_db_per_km
        self.speed = par.speed_km_per_s
        self.per_hop = par.t_mea_s + par.t_ret_s
        # rows using each link, as CSR (users_ptr[i]:users_ptr[i+1] into users_rows)
        flat_link = self.index.ravel()
        flat_row = np.repeat(np.arange(len(rows)), width)
        real = flat_link < n_links
        order = np.argsort(flat_link[real], kind="stable")
        self.users_rows = flat_row[real][order]  # paths are simple: each row once per link
        counts = np.bincount(flat_link[real], minlength=n_links)
        self.users_ptr = np.concatenate([[0], np.cumsum(counts)])

    def users(self, i: int) -> np.ndarray:
        """Rows (demand, path) whose path uses link ``i``."""
        return self.users_rows[self.users_ptr[i]:self.users_ptr[i + 1]]

    def rows_ok(self, n: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``row_ok`` restricted to ``rows`` (same formula, fewer rows)."""
        seg = self.length / (n + 1)
        log_p = np.append(-self.alpha * seg / 10.0 * LN10, 0.0)
        hops = np.append(n + 1, 0)
        time_s = np.append((n + 1) * seg * 10.0 ** (self.alpha * seg / 10.0) / self.speed, 0.0)
        idx = self.index[rows]
        k = hops[idx].sum(axis=1)
        log_rate = self.log_m + log_p[idx].min(axis=1) + self.logg[k]
        with np.errstate(over="ignore"):
            latency = time_s[idx].sum(axis=1) / np.exp(log_rate) + k * self.per_hop
        return (log_rate >= self.log_target[rows] + math.log1p(-1e-9)) & (latency <= self.limit[rows] * (1 - 1e-9))

    def row_metrics(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log rate, latency_s) of every row for repeaters ``n`` per link."""
        seg = self.length / (n + 1)
        log_p = np.append(-self.alpha * seg / 10.0 * LN10, 0.0)
        hops = np.append(n + 1, 0)
        time_s = np.append((n + 1) * seg * 10.0 ** (self.alpha * seg / 10.0) / self.speed, 0.0)
        k = hops[self.index].sum(axis=1)
        log_rate = self.log_m + log_p[self.index].min(axis=1) + self.logg[k]
        with np.errstate(over="ignore"):
            latency = time_s[self.index].sum(axis=1) / np.exp(log_rate) + k * self.per_hop
        return log_rate, latency

    def demand_log_rate(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best log rate per demand over its paths meeting their latency limit, and the row chosen."""
        log_rate, latency = self.row_metrics(n)
        usable = np.where(latency <= self.limit * (1 - 1e-9), log_rate, -np.inf)
        best = np.full(self.n_demands, -np.inf)
        np.maximum.at(best, self.row_demand, usable)
        chosen = np.full(self.n_demands, -1)
        for r in np.flatnonzero(usable >= best[self.row_demand]):
            if chosen[self.row_demand[r]] < 0 and np.isfinite(usable[r]):
                chosen[self.row_demand[r]] = r
        return best, chosen

    def row_ok(self, n: np.ndarray) -> np.ndarray:
        log_rate, latency = self.row_metrics(n)
        return (log_rate >= self.log_target + math.log1p(-1e-9)) & (
            latency <= self.limit * (1 - 1e-9)
        )

    def feasible(self, n: np.ndarray) -> bool:
        """Every demand has a candidate path meeting its target and latency limit."""
        ok = np.zeros(self.n_demands, dtype=bool)
        np.logical_or.at(ok, self.row_demand, self.row_ok(n))
        return bool(ok.all())

    def choice(self, n: np.ndarray, *, by_rate: bool) -> dict[Hashable, int]:
        if by_rate:
            _, chosen = self.demand_log_rate(n)
        else:
            ok = self.row_ok(n)
            chosen = np.full(self.n_demands, -1)
            for r in np.flatnonzero(ok)[::-1]:
                chosen[self.row_demand[r]] = r
        return {
            d: int(self.row_path[r]) if r >= 0 else 0
            for d, r in zip(self.data.demand_ids, chosen, strict=True)
        }


def _uniform_designs(ev: _DesignEvaluator, used: np.ndarray, deadline: float = math.inf) -> list[np.ndarray]:
    """Designs with a common maximum segment length (one per distinct option segment length,
    longest first; past ``deadline``, a ``time.perf_counter()`` value, only those made so far)."""
    lengths = sorted(
        {
            float(ev.length[i] / (n + 1))
            for i in np.flatnonzero(used)
            for n in range(ev.n_max[i] + 1)
        },
        reverse=True,
    )
    designs: list[np.ndarray] = []
    for s in lengths:
        if time.perf_counter() > deadline:
            logger.warning("repeater heuristic: %d of %d uniform designs made before the time limit",
                           len(designs), len(lengths))
            break
        n = np.ceil(ev.length / s * (1 - 1e-12)).astype(int) - 1
        designs.append(np.where(used, np.clip(n, 0, ev.n_max), 0))
    return designs


def _greedy_remove_feasible(ev: _DesignEvaluator, n: np.ndarray, deadline: float = math.inf) -> np.ndarray:
    """:func:`_greedy_remove` with ``keep = ev.feasible``, re-evaluating only the rows that use
    the changed link (same moves, same result; near-linear instead of links x rows per move).
    Past ``deadline`` (a ``time.perf_counter()`` value) it stops with the design so far (still feasible)."""
    n = n.copy()
    ok = ev.row_ok(n)
    n_ok = np.bincount(ev.row_demand, weights=ok, minlength=ev.n_demands)
    order = np.argsort(-ev.cost, kind="stable")
    changed = True
    while changed:
        changed = False
        for i in order:
            if ev.cost[i] <= 0:
                continue
            if time.perf_counter() > deadline:
                logger.warning("repeater heuristic: greedy removal stopped at the time limit")
                return n
            rows = ev.users(i)
            while n[i] > 0:
                n[i] -= 1
                new_ok = ev.rows_ok(n, rows)
                delta = new_ok.astype(float) - ok[rows]
                trial = n_ok.copy()
                np.add.at(trial, ev.row_demand[rows], delta)
                if np.all(trial[ev.row_demand[rows]] > 0.5):
                    ok[rows] = new_ok
                    n_ok = trial
                    changed = True
                else:
                    n[i] += 1
                    break
    return n


def _greedy_remove(ev: _DesignEvaluator, n: np.ndarray, keep: Any, deadline: float = math.inf) -> np.ndarray:
    """Remove repeaters one at a time, largest cost saving first, while ``keep(n)`` holds
    (stopping with the design so far past ``deadline``, a ``time.perf_counter()`` value)."""
    n = n.copy()
    order = np.argsort(-ev.cost, kind="stable")
    changed = True
    while changed:
        changed = False
        for i in order:
            if ev.cost[i] <= 0:
                continue
            if time.perf_counter() > deadline:
                return n
            while n[i] > 0:
                n[i] -= 1
                if keep(n):
                    changed = True
                else:
                    n[i] += 1
                    break
    return n


def heuristic_spacing(
    data: SpacingData, *, mode: SpacingMode, budget: float | None = None, deadline: float = math.inf
) -> HeuristicDesign | None:
    """A good feasible design fast, or None when none is found.

    ``min_cost``: the cheapest design with a common maximum segment length
    (every distinct option length is tried) that lets every demand meet its
    target and latency limit, then greedy removal of repeaters (largest cost
    saving first) while all of them still hold. ``max_min_rate``: the best
    common-segment-length design within the budget, then greedy marginal
    allocation (the affordable repeater that most raises the worst demand's
    log rate, else lowers the number of demands at that rate), then greedy
    removal while the minimum rate does not drop. Feasibility is checked with
    Eqs. 7-10 (the result is re-evaluated by the caller). Past ``deadline`` (a
    ``time.perf_counter()`` value) each phase stops: the best design so far is
    returned, or None when none was found yet.
    """
    t0 = time.perf_counter()
    ev = _DesignEvaluator(data)
    used = np.zeros(len(ev.links), dtype=bool)
    used[np.unique(ev.index[ev.index < len(ev.links)])] = True
    designs = _uniform_designs(ev, used, deadline)
    designs.append(np.zeros(len(ev.links), dtype=int))
    designs.append(np.where(used, ev.n_max, 0))
    if mode == "min_cost":  # the lowest useful option of every link (exact presolve bound)
        n_lo, _ = presolve_spacing(data, mode=mode, hop_counts=False)
        designs.append(np.array([n_lo.get(lid, 0) for lid in ev.links], dtype=int))

    def cost_of(n: np.ndarray) -> float:
        return float(np.dot(ev.cost, n))

    if mode == "min_cost":
        # the cheapest feasible candidate (the first in list order among equals): try them in
        # stable cost order and stop at the first feasible one
        start = None
        for cand in sorted(designs, key=cost_of):
            if ev.feasible(cand):
                start = cand
                break
            if time.perf_counter() > deadline:
                logger.warning("repeater heuristic: no feasible design found before the time limit")
                break
        if start is None:
            return None
        n = _greedy_remove_feasible(ev, start, deadline)
        return HeuristicDesign(
            dict(zip(ev.links, n.tolist(), strict=True)),
            ev.choice(n, by_rate=False),
            cost_of(n),
            time.perf_counter() - t0,
        )

    limit = math.inf if budget is None else float(budget) + 1e-9

    def score(n: np.ndarray) -> tuple[float, int]:
        best, _ = ev.demand_log_rate(n)
        worst = float(best.min())
        return worst, -int(np.sum(best <= worst + 1e-12))

    affordable = [n for n in designs if cost_of(n) <= limit]
    n = max(affordable, key=lambda a: (score(a)[0], -cost_of(a)))
    current = score(n)
    while time.perf_counter() <= deadline:
        best_move, best_score = None, current
        spent = cost_of(n)
        for i in np.flatnonzero(used & (n < ev.n_max)):
            if spent + ev.cost[i] > limit:
                continue
            n[i] += 1
            sc = score(n)
            n[i] -= 1
            if sc > best_score:
                best_move, best_score = i, sc
        if best_move is None:
            break
        n[best_move] += 1
        current = best_score
    floor = current[0]
    n = _greedy_remove(ev, n, lambda a: score(a)[0] >= floor - 1e-12, deadline)
    worst = score(n)[0]
    if not math.isfinite(worst):
        return None
    return HeuristicDesign(
        dict(zip(ev.links, n.tolist(), strict=True)),
        ev.choice(n, by_rate=True),
        worst,
        time.perf_counter() - t0,
    )


def set_warm_start(m: pyo.ConcreteModel, design: HeuristicDesign) -> None:
    """Set every model variable to the values of ``design`` (one-hot, hops, worst segment, eta)."""
    data: SpacingData = m._data
    par = data.params
    for lid, n in m.LO:
        m.x[lid, n].set_value(1 if design.repeaters.get(lid, 0) == n else 0)
    for d, j in m.DPv:
        m.u[d, j].set_value(1 if design.path_choice.get(d, 0) == j else 0)
    log_rates = []
    for d in m.D:
        path = data.paths[d][design.path_choice.get(d, 0)]
        reps = [design.repeaters.get(lid, 0) for lid in path]
        k = sum(n + 1 for n in reps)
        for kk in m._ks_of[d]:
            m.z[d, kk].set_value(1 if kk == k else 0)
        log_p = min(
            -par.alpha_db_per_km * data.length_of[lid] / (n + 1) / 10.0 * LN10
            for lid, n in zip(path, reps, strict=True)
        )
        m.y[d].set_value(min(0.0, max(m.y[d].lb, log_p)))
        log_rates.append(math.log(par.memory) + log_p + math.log(par.hop_factor(k)))
        if hasattr(m, "p_lin") and d in m.Dlat:
            m.p_lin[d].set_value(math.exp(log_p))
            for kk in m._ks_of[d]:
                m.w[d, kk].set_value(math.exp(log_p) if kk == k else 0.0)
    if hasattr(m, "eta"):
        eta = min(log_rates)
        m.eta.set_value(min(max(eta, m.eta.lb), m.eta.ub))


# ---------------------------------------------------------------------------
# Infeasibility diagnosis
# ---------------------------------------------------------------------------


def best_single_rate(data: SpacingData, d: Hashable) -> float:
    """Highest Eq. 9 rate demand ``d`` can reach on its own (over its paths and all spacings).

    Exact: for each candidate worst-segment probability ``theta`` (one of the
    option probabilities) every link on the path needs at least the fewest
    repeaters reaching ``theta``, and any total hop count between that minimum
    and the path's maximum is possible; the best is the maximum of
    ``m * theta * g(k)`` over these. Latency limits are ignored here.
    """
    par = data.params
    best = 0.0
    for path in data.paths[d]:
        opts = {
            lid: [
                segment_probability(data.length_of[lid] / (n + 1), par.alpha_db_per_km)
                for n in range(data.n_max_of[lid] + 1)
            ]
            for lid in path
        }
        thetas = sorted({p for ps in opts.values() for p in ps})
        k_max = sum(len(ps) for ps in opts.values())
        g = [0.0] + [par.hop_factor(k) for k in range(1, k_max + 1)]
        for theta in thetas:
            need = 0
            ok = True
            for ps in opts.values():
                n_min = next((n for n, p in enumerate(ps) if p >= theta * (1 - 1e-12)), None)
                if n_min is None:
                    ok = False
                    break
                need += n_min + 1
            if ok:
                best = max(best, par.memory * theta * max(g[need : k_max + 1]))
    return best


def rate_upper_bounds(data: SpacingData) -> np.ndarray:
    """An upper bound on the Eq. 9 rate each demand can reach on its own, in ``data.demand_ids`` order.

    Vectorised, one pass over the (demand, path) rows. On a path of ``h``
    links, a link with ``n`` repeaters bounds the worst segment's success
    probability by its own ``p(L / (n + 1))`` and the chain has at least
    ``n + h`` hops, so the rate is at most
    ``m * max_n p(L / (n + 1)) * max_{k >= n + h} g(k)`` for every link of the
    path; the path's bound is the smallest over its links, the demand's the
    largest over its paths. Latency limits are ignored. Guarantees: every
    value is >= :func:`best_single_rate` (a demand whose bound is below its
    target cannot reach it with any spacing), and equal to it for a one-link
    path when ``g`` is nonincreasing.
    """
    par = data.params
    links = list(data.links.index)
    pos = {lid: i for i, lid in enumerate(links)}
    length = data.links["length_km"].to_numpy(float)
    n_max = data.links["max_repeaters"].to_numpy(int)
    rows = [(i, path) for i, d in enumerate(data.demand_ids) for path in data.paths[d]]
    if not rows:
        return np.zeros(len(data.demand_ids))
    width = max(len(path) for _, path in rows)
    top = int(n_max.max()) if len(n_max) else 0
    logg = _log_hop_table(top + width, par)
    suffix_max = np.maximum.accumulate(logg[::-1])[::-1]  # max log g(k') over k' >= k
    # bound[l, h]: max over n <= n_max[l] of log p(L_l / (n + 1)) + max_{k >= n + h} log g(k)
    h = np.arange(width + 1)
    bound = np.full((len(links) + 1, width + 1), -np.inf)
    for n in range(top + 1):
        log_p = -par.alpha_db_per_km * length / (n + 1) / 10.0 * LN10
        term = log_p[:, None] + suffix_max[np.minimum(n + np.maximum(h, 1), top + width)][None, :]
        bound[:-1] = np.where((n <= n_max)[:, None], np.maximum(bound[:-1], term), bound[:-1])
    bound[-1] = np.inf  # padding column of short paths
    index = np.full((len(rows), width), len(links), dtype=int)
    for r, (_, path) in enumerate(rows):
        index[r, : len(path)] = [pos[lid] for lid in path]
    n_hops = np.array([len(path) for _, path in rows], dtype=int)
    row_log = math.log(par.memory) + bound[index, n_hops[:, None]].min(axis=1)
    best = np.full(len(data.demand_ids), -np.inf)
    np.maximum.at(best, np.array([i for i, _ in rows], dtype=int), row_log)
    return np.exp(best)


def unreachable_demands(data: SpacingData) -> dict[Hashable, float]:
    """Demands whose rate target is above :func:`rate_upper_bounds` (no spacing reaches it), with that bound.

    Fast (one vectorised pass); sound but not complete: a demand it does not
    list may still be unreachable (:func:`best_single_rate` is exact).
    """
    if not data.rate_target:
        return {}
    upper = rate_upper_bounds(data)
    return {d: float(u) for d, u in zip(data.demand_ids, upper, strict=True)
            if d in data.rate_target and u < data.rate_target[d] * (1 - 1e-9)}


def _unreachable_error(data: SpacingData, bad: Mapping[Hashable, float]) -> RepeaterInfeasible:
    worst = sorted(bad, key=lambda d: bad[d] / data.rate_target[d])
    return RepeaterInfeasible(
        f"Repeater spacing cannot meet the rate targets: {len(bad)} demand(s) cannot reach theirs "
        "even with the maximum repeaters on every link.",
        conflicts=worst,
        details=[f"demand {_show(d)}: at most {bad[d]:.4g} (any spacing, any candidate path) against the "
                 f"target {data.rate_target[d]:.4g}; lower the target or allow more repeaters" for d in worst],
    )


def _precheck_min_cost(data: SpacingData, deadline: float = math.inf) -> None:
    """Raise :class:`RepeaterInfeasible` naming the demands that cannot reach their targets alone.

    The fast bound (:func:`unreachable_demands`) first; then the exact
    :func:`best_single_rate` per remaining demand until ``deadline``
    (``time.perf_counter()`` value), after which the check stops undecided.
    """
    bad = unreachable_demands(data)
    if bad:
        raise _unreachable_error(data, bad)
    conflicts, details = [], []
    for d, target in data.rate_target.items():
        if time.perf_counter() > deadline:
            logger.warning("repeater pre-check stopped at the time limit; not every demand was checked")
            break
        best = best_single_rate(data, d)
        if best < target * (1 - 1e-9):
            conflicts.append(d)
            details.append(
                f"demand {_show(d)}: best reachable rate {best:.4g} (any spacing, any candidate path) "
                f"is below the target {target:.4g}; lower the target or allow more repeaters"
            )
    if conflicts:
        raise RepeaterInfeasible(
            "Repeater spacing cannot meet the rate targets.", conflicts=conflicts, details=details
        )


def _subset(data: SpacingData, keep: Sequence[Hashable]) -> SpacingData:
    keep_set = set(keep)  # membership tests in O(1): keep may hold tens of thousands of demands
    return SpacingData(
        data.links,
        list(keep),
        {d: data.paths[d] for d in keep},
        {d: v for d, v in data.rate_target.items() if d in keep_set},
        {d: v for d, v in data.latency_limit_s.items() if d in keep_set},
        data.params,
    )


def _feasible(
    data: SpacingData, mode: SpacingMode, budget: float | None, options: SolverOptions,
    left_s: list[float] | None = None,
) -> bool:
    """Whether ``data`` has a feasible design; with ``left_s`` (a one-element budget, updated)
    each solve gets half of what is left, so all of them together stay within it."""
    if left_s is not None:
        limit = 0.5 * left_s[0]
        left_s[0] -= limit
        options = dataclasses.replace(options, time_limit_s=min(options.time_limit_s, limit))
    raw = solve_model(build_spacing_model(data, mode=mode, budget=budget), options)
    if raw.status is SolveStatus.TIME_LIMIT_NO_SOLUTION or raw.status is SolveStatus.ERROR:
        return True  # undecided: do not blame this subset
    return raw.status is not SolveStatus.INFEASIBLE


def diagnose_infeasible(
    data: SpacingData, *, mode: SpacingMode, budget: float | None, options: SolverOptions
) -> tuple[list[Hashable], list[str]]:
    """Demands to blame when the full model is infeasible.

    First the demands infeasible on their own (solved one by one); if there are
    none, a deletion filter returns a minimal set of demands that conflict
    jointly (each removal makes the remaining set feasible).
    """
    left = [float(options.time_limit_s)]  # all the diagnosis solves share one limit
    alone = [d for d in data.demand_ids if not _feasible(_subset(data, [d]), mode, budget, options, left)]
    if alone:
        return alone, [
            f"demand {_show(d)} cannot meet its rate target / latency limit on its own"
            for d in alone
        ]
    keep = list(data.demand_ids)
    for d in list(keep):
        trial = [e for e in keep if e != d]
        if trial and not _feasible(_subset(data, trial), mode, budget, options, left):
            keep = trial
    return keep, [
        f"demands {', '.join(map(repr, keep))} cannot meet their targets together (shared links)"
    ]


# ---------------------------------------------------------------------------
# Solve
# ---------------------------------------------------------------------------


def solve_spacing(
    links: pd.DataFrame,
    demands: pd.DataFrame,
    params: ChainParameters,
    *,
    mode: SpacingMode = "min_cost",
    budget: float | None = None,
    latency_limit_s: float | None = None,
    tie_break_cost: bool = True,
    diagnose: bool = True,
    use_heuristic: bool = True,
    presolve: bool = True,
    options: SolverOptions | None = None,
    max_nonzeros: int = 4_000_000,
    plan_reachable: bool = False,
) -> SolveResult:
    """Choose repeaters per link; returns a :class:`SolveResult` with tables ``links`` and ``demands``.

    ``mode="min_cost"``: least total ``cost_per_repeater * repeaters`` such that
    every demand with a ``rate_target`` reaches it (Eq. 9) and, where given, its
    Eq. 10 latency stays within ``latency_limit_s``. ``objective`` is the cost.
    ``mode="max_min_rate"``: maximise the minimum demand rate under
    ``budget`` (total repeater cost; None = unlimited), then (with
    ``tie_break_cost``) the least cost at that rate; ``objective`` is the
    minimum rate and ``info["objective_log"]`` its logarithm.

    With ``use_heuristic`` a design from :func:`heuristic_spacing` is the MIP
    start; when the MILP ends without a better solution (time limit) that
    design is returned with status HEURISTIC, ``info["source"] == "heuristic"``
    and the gap to the MILP's bound, so a found design is never lost.
    ``presolve`` applies the exact reductions (dominated demands, useless
    options and hop counts). ``info`` also reports ``heuristic_objective``,
    ``heuristic_time_s``, ``n_demands_dominated`` and ``milp_status``.

    ``options.time_limit_s`` covers everything (validation, heuristic,
    presolve, model build and solve). The model's size is estimated first
    (:func:`estimate_spacing_size`); when it exceeds ``max_nonzeros`` or its
    build would not fit in the time left, the MILP is not built and the
    heuristic design is returned with the exact presolve bound
    (:func:`_fallback_bound`) and ``info["milp_skipped"]`` saying why.

    ``mode="min_cost"`` first finds, in one vectorised pass
    (:func:`unreachable_demands`), the demands that cannot reach their target
    even with the maximum repeaters on every link. By default they raise
    :class:`RepeaterInfeasible` at once; with ``plan_reachable`` the others are
    planned, the unreachable ones are evaluated on the resulting design (with
    ``meets_target`` False) and listed in ``info["unreachable"]`` (demand ->
    upper bound on its rate), and the demands table gets a ``shortfall``
    column (target minus rate, 0 where met).

    Raises :class:`RepeaterInfeasible` naming the demands that cannot meet
    their targets (a pre-check of each demand's best reachable rate, then, if
    the MILP is infeasible, no heuristic design exists and ``diagnose``,
    single-demand solves and a deletion filter); :class:`RepeaterInputError`
    for invalid tables.
    """
    opts = options or SolverOptions()
    t0 = time.perf_counter()
    data = prepare_spacing_data(
        links,
        demands,
        params,
        latency_limit_s=latency_limit_s,
        require_targets=(mode == "min_cost"),
    )
    if mode not in ("min_cost", "max_min_rate"):
        raise RepeaterInputError(f"mode={_show(mode)} must be 'min_cost' or 'max_min_rate'")
    if mode == "max_min_rate" and budget is not None and not (budget >= 0):
        raise RepeaterInputError(f"budget={_show(budget)} must be >= 0")
    deadline = t0 + opts.time_limit_s  # the limit covers preparing, building and solving
    full = data
    unreachable = unreachable_demands(data) if mode == "min_cost" else {}
    if unreachable:
        if not plan_reachable or len(unreachable) == len(data.demand_ids):
            raise _unreachable_error(data, unreachable)
        logger.warning("repeater spacing: %d demand(s) cannot reach their rate target with any spacing; "
                       "planning the other %d", len(unreachable), len(data.demand_ids) - len(unreachable))
        data = _subset(data, [d for d in data.demand_ids if d not in unreachable])
    reduced, n_dropped = drop_dominated_demands(data, mode=mode) if presolve else (data, 0)
    # the heuristic runs on the reduced demands: a design meets every reduced demand's target
    # exactly when it meets every demand's (exact dominance), and the minimum rate is the same
    heur = heuristic_spacing(reduced, mode=mode, budget=budget, deadline=deadline) if use_heuristic else None
    if heur is not None:
        logger.info("repeater heuristic: objective %.6g in %.2fs", heur.objective, heur.time_s)
    elif mode == "min_cost":
        # a design meeting every target proves each demand reachable, so the per-demand
        # pre-check is only needed when no design is known
        _precheck_min_cost(data, deadline)
    floor = math.exp(heur.objective) if heur is not None and mode == "max_min_rate" else None
    skip_reason = None
    size = {"n_variables": 0, "n_constraints": 0, "n_nonzeros": 0}
    if heur is not None and mode == "min_cost":
        n_lo_only, _ = presolve_spacing(reduced, mode=mode, hop_counts=False)
        floor_bound = _fallback_bound(reduced, n_lo_only, mode="min_cost")
        if heur.objective <= floor_bound + 1e-9 * max(1.0, abs(floor_bound)):
            skip_reason = "model not built: the heuristic design costs no more than the presolve bound (optimal)"
            presolved: tuple[dict[Hashable, int], dict[Hashable, set[int]]] = (n_lo_only, {})
    if skip_reason is None:
        presolved = presolve_spacing(reduced, mode=mode, rate_floor=floor)
        size = estimate_spacing_size(reduced, *presolved)
    left_s = deadline - time.perf_counter()
    if heur is not None and skip_reason is None:
        if size["n_nonzeros"] > max_nonzeros:
            skip_reason = (f"model not built: about {size['n_nonzeros']:,} nonzeros "
                           f"({size['n_variables']:,} variables) exceed the limit of {max_nonzeros:,}")
        elif size["n_nonzeros"] / BUILD_NONZEROS_PER_S + MIN_SOLVE_S > left_s:
            skip_reason = (f"model not built: building about {size['n_nonzeros']:,} nonzeros would not "
                           f"fit in the {max(left_s, 0.0):.1f} s left of the time limit")
    info: dict[str, Any] = {}
    if heur is None and size["n_nonzeros"] / BUILD_NONZEROS_PER_S + MIN_SOLVE_S > left_s:
        # no design and no time to build the model: stop at the limit instead of overrunning it
        logger.warning("repeater spacing: no design found and no time left to build the model "
                       "(about %s nonzeros, %.1f s left)", f"{size['n_nonzeros']:,}", max(left_s, 0.0))
        return SolveResult(status=SolveStatus.TIME_LIMIT_NO_SOLUTION, build_time_s=time.perf_counter() - t0,
                           solver="none", info={"milp_skipped": "no time left to build the model",
                                                "unreachable": dict(unreachable)})
    first_limit_s = 0.0
    if skip_reason is not None:
        assert heur is not None
        # proven optimal by the presolve bound is good news (info); a size or time skip is a warning
        level = logging.INFO if skip_reason.endswith("(optimal)") else logging.WARNING
        logger.log(level, "repeater spacing: %s; the heuristic design is returned with a bound", skip_reason)
        info["milp_skipped"] = skip_reason
        bound = _fallback_bound(reduced, presolved[0], mode=mode)
        raw = RawSolve(status=SolveStatus.TIME_LIMIT_NO_SOLUTION, objective=math.nan, bound=bound,
                       gap=math.nan, solve_time_s=0.0, solver="none")
        model = None
        n_vars, n_cons = size["n_variables"], size["n_constraints"]
        build_time = time.perf_counter() - t0
    else:
        model = build_spacing_model(reduced, mode=mode, budget=budget, rate_floor=floor, presolved=presolved)
        if heur is not None:
            set_warm_start(model, heur)
        build_time = time.perf_counter() - t0
        n_vars, n_cons = model.nvariables(), model.nconstraints()
        left_s = max(0.0, deadline - time.perf_counter())
        if mode == "max_min_rate" and tie_break_cost:
            left_s *= 0.75  # a quarter is kept for the cost tie-break
        first_limit_s = min(opts.time_limit_s, left_s)
        raw = solve_model(model, dataclasses.replace(opts, time_limit_s=first_limit_s))
    solve_time = raw.solve_time_s
    if raw.status is SolveStatus.INFEASIBLE and heur is None:
        conflicts, details = (
            diagnose_infeasible(data, mode=mode, budget=budget, options=dataclasses.replace(
                opts, time_limit_s=max(0.0, opts.time_limit_s - first_limit_s)))
            if diagnose
            else ([], [])
        )
        raise RepeaterInfeasible(
            "Repeater spacing has no feasible design.", conflicts=conflicts, details=details
        )
    info.update({
        "mode": mode,
        "n_variables": n_vars,
        "n_constraints": n_cons,
        "n_nonzeros_estimate": size["n_nonzeros"],
        "n_links": len(data.links),
        "n_demands": len(data.demand_ids),
        "n_demands_dominated": n_dropped,
        "milp_status": "not built" if skip_reason is not None else str(raw.status),
    })
    if heur is not None:
        info["heuristic_objective"] = (
            heur.objective if mode == "min_cost" else math.exp(heur.objective)
        )
        info["heuristic_time_s"] = heur.time_s
    milp_ok = raw.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    if milp_ok and heur is not None:
        better = (
            raw.objective <= heur.objective + 1e-9 * max(1.0, abs(heur.objective))
            if mode == "min_cost"
            else raw.objective >= heur.objective - 1e-9
        )
        milp_ok = better or raw.status is SolveStatus.OPTIMAL
    if not milp_ok and heur is None:
        return SolveResult(
            status=raw.status,
            solve_time_s=solve_time,
            build_time_s=build_time,
            solver=raw.solver,
            info=info,
        )
    if raw.status is SolveStatus.INFEASIBLE:
        logger.warning("the MILP reports infeasible but the heuristic design is feasible")
    bound = raw.bound
    if skip_reason is not None and heur is not None and mode == "min_cost" and \
            heur.objective <= bound + 1e-9 * max(1.0, abs(bound)):
        raw = dataclasses.replace(raw, status=SolveStatus.OPTIMAL)  # proven by the bound
    if milp_ok:
        objective, status, gap = raw.objective, raw.status, raw.gap
        info["source"] = "milp"
        assert model is not None
        repeaters = {lid: 0 for lid in data.links.index}
        for lid, n in model.LO:
            if pyo.value(model.x[lid, n]) > 0.5:
                repeaters[lid] = n
        choice = {}
        for d, j in model.DPv:
            if pyo.value(model.u[d, j]) > 0.5:
                choice[d] = j
        # dominated demands (not in the model) keep their only path: index 0
    else:
        assert heur is not None
        objective = heur.objective
        status = SolveStatus.OPTIMAL if raw.status is SolveStatus.OPTIMAL else SolveStatus.HEURISTIC
        gap = relative_gap(objective, bound)
        info["source"] = "heuristic"
        repeaters = {lid: 0 for lid in data.links.index}
        repeaters.update(heur.repeaters)
        choice = dict(heur.path_choice)
    if mode == "max_min_rate":
        info["objective_log"] = objective
        info["bound_log"] = bound
        objective, bound = (
            math.exp(objective),
            math.exp(bound) if math.isfinite(bound) else math.nan,
        )
        gap = relative_gap(objective, bound)
        # the limits handed to the solver sum to at most the time limit
        left_s = min(deadline - time.perf_counter(), opts.time_limit_s - first_limit_s)
        if tie_break_cost and status is SolveStatus.OPTIMAL and model is not None and left_s >= MIN_SOLVE_S:
            eta_star = float(pyo.value(model.eta))
            model.eta.setlb(eta_star - 1e-7)
            model.objective.deactivate()
            model.cost_objective = pyo.Objective(expr=_cost_expr(model), sense=pyo.minimize)
            # the tie-break gets what is left of the time limit (skipped when too little is left)
            raw2 = solve_model(model, dataclasses.replace(opts, time_limit_s=left_s))
            solve_time += raw2.solve_time_s
            if raw2.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
                # no incumbent was loaded, so the variables still hold the first solution
                logger.warning(
                    "cost tie-break solve ended with %s; keeping the first solution", raw2.status
                )
            info["tie_break_status"] = str(raw2.status)
            for lid, n in model.LO:
                if pyo.value(model.x[lid, n]) > 0.5:
                    repeaters[lid] = n
            for d, j in model.DPv:
                if pyo.value(model.u[d, j]) > 0.5:
                    choice[d] = j

    links_out, demands_out = evaluate_spacing(full, repeaters, choice)
    if unreachable:
        info["unreachable"] = dict(unreachable)
        demands_out["shortfall"] = np.maximum(demands_out["rate_target"] - demands_out["rate"], 0.0)
    if mode == "min_cost" and not demands_out.loc[~demands_out["demand"].isin(list(unreachable)),
                                                  "meets_target"].all():
        bad = demands_out.loc[~demands_out["meets_target"] & ~demands_out["demand"].isin(list(unreachable)),
                              "demand"].tolist()
        logger.warning("solution misses targets for %s after re-evaluation (solver tolerance)", bad)
    info["total_repeaters"] = int(links_out["repeaters"].sum())
    info["total_cost"] = float(links_out["cost"].sum())
    info["min_rate"] = float(demands_out["rate"].min())
    return SolveResult(
        status=status,
        objective=objective,
        bound=bound,
        gap=gap,
        solve_time_s=solve_time,
        build_time_s=build_time,
        solver=raw.solver,
        tables={"links": links_out, "demands": demands_out},
        info=info,
    )


# ---------------------------------------------------------------------------
# Helpers for callers
# ---------------------------------------------------------------------------


def candidate_link_paths(
    edges: pd.DataFrame,
    source: Hashable,
    target: Hashable,
    *,
    k: int = 1,
    weight: str = "length_km",
) -> list[list[Hashable]]:
    """Up to ``k`` shortest simple paths (by ``weight``) from ``source`` to ``target`` as link-id lists.

    ``edges`` columns: ``link``, ``u``, ``v`` and the weight column. Raises
    :class:`RepeaterInputError` when an end point is unknown or unreachable.
    """
    graph = nx.Graph()
    for row in edges.itertuples(index=False):
        a, b = row.u, row.v
        w = float(getattr(row, weight))
        if graph.has_edge(a, b) and graph[a][b][weight] <= w:
            continue
        graph.add_edge(a, b, **{weight: w, "link": row.link})
    for end in (source, target):
        if end not in graph:
            raise RepeaterInputError(f"node {_show(end)} is not an end point of any backbone link")
    try:
        gen = nx.shortest_simple_paths(graph, source, target, weight=weight)
        node_paths = list(itertools.islice(gen, k))
    except nx.NetworkXNoPath as exc:
        raise RepeaterInputError(
            f"no backbone path from {_show(source)} to {_show(target)} (connect them)"
        ) from exc
    return [[graph[a][b]["link"] for a, b in itertools.pairwise(p)] for p in node_paths]
