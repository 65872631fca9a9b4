"""Input of the repeater-spacing model: chain parameters, validated tables and design evaluation.

:class:`ChainParameters` carries the physical parameters and the Eq. 9 hop-factor
table ``g(k)`` (computed by the caller); :func:`prepare_spacing_data` validates the
``links`` and ``demands`` tables into :class:`SpacingData`; :func:`link_options` gives
the per-(link, repeaters) coefficients and :func:`evaluate_spacing` recomputes
Eqs. 7-10 for a design, independently of the model. See :mod:`solvers.repeaters`
for the formulation.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np
import pandas as pd

from solvers.base import ModelInfeasible
from solvers.base import show_value as _show

LN10 = math.log(10.0)


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


def chain_latency_from_segments_s(segments_km: Sequence[float], p: float, params: ChainParameters) -> float:
    """Eq. 10 latency of a chain whose hops have the given lengths, with rate from worst ``p``."""
    k = len(segments_km)
    total_t = sum(segment_time_s(d, params.alpha_db_per_km, params.speed_km_per_s) for d in segments_km)
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
        object.__setattr__(
            self, "length_of", dict(zip(self.links.index, self.links["length_km"].astype(float), strict=True))
        )
        object.__setattr__(
            self, "n_max_of", dict(zip(self.links.index, self.links["max_repeaters"].astype(int), strict=True))
        )


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
        problems.append("demands table: missing column 'paths' (list of candidate link-id paths) or 'path'")
    if require_targets and "rate_target" not in demands.columns:
        problems.append("demands table: missing column 'rate_target' (required in min_cost mode)")
    if problems:
        raise RepeaterInputError("; ".join(problems))

    lk = _check_links(links, problems)
    known = set(lk["link"])
    ids, paths, targets, limits = _check_demands(
        demands, known, problems, latency_limit_s=latency_limit_s, require_targets=require_targets
    )
    if not ids and not problems:
        problems.append("demands table is empty (give at least one demand)")
    if problems:
        raise RepeaterInputError("; ".join(problems))
    lk = lk.set_index("link")
    lk["max_repeaters"] = lk["max_repeaters"].astype(int)
    lk["length_km"] = lk["length_km"].astype(float)
    lk["cost_per_repeater"] = lk["cost_per_repeater"].astype(float)
    return SpacingData(lk, ids, paths, targets, limits, params)


def _check_links(links: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    """A copy of ``links`` with ``cost_per_repeater`` defaulted to 1; appends every invalid row to ``problems``."""
    lk = links.copy()
    if "cost_per_repeater" not in lk.columns:
        lk["cost_per_repeater"] = 1.0
    if lk["link"].duplicated().any():
        dup = lk.loc[lk["link"].duplicated(), "link"].tolist()
        problems.append(f"links table: duplicated link ids {dup} (make them unique)")
    for i, row in zip(lk.index, lk.to_dict("records"), strict=True):  # plain dicts: fast at 10^5 rows
        where = f"links table, row {i} (link {_show(row['link'])})"
        length = row["length_km"]
        if not (isinstance(length, (int, float, np.number)) and math.isfinite(length) and length > 0):
            problems.append(f"{where}: length_km={_show(length)} must be a finite number > 0")
        nmax = row["max_repeaters"]
        if (
            not (isinstance(nmax, (int, np.integer)) or (isinstance(nmax, float) and float(nmax).is_integer()))
            or nmax < 0
        ):
            problems.append(f"{where}: max_repeaters={_show(nmax)} must be an integer >= 0")
        cost = row["cost_per_repeater"]
        if not (isinstance(cost, (int, float, np.number)) and math.isfinite(cost) and cost >= 0):
            problems.append(f"{where}: cost_per_repeater={_show(cost)} must be a finite number >= 0")

    return lk


def _check_demands(
    demands: pd.DataFrame,
    known: set[Hashable],
    problems: list[str],
    *,
    latency_limit_s: float | None,
    require_targets: bool,
) -> tuple[list[Hashable], dict[Hashable, list[tuple[Hashable, ...]]], dict[Hashable, float], dict[Hashable, float]]:
    """Demand ids, candidate paths, rate targets and latency limits of ``demands``
    (links must be in ``known``); appends every invalid row to ``problems``."""
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
                problems.append(f"{where}: path uses unknown links {unknown} (add them to the links table)")
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
                problems.append(f"{where}: latency_limit_s={_show(lim)} must be a finite number > 0")
            else:
                limits[d] = float(lim)
    return ids, paths, targets, limits


def _as_paths(raw: Any) -> list[tuple[Hashable, ...]] | None:
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple, np.ndarray)):
        return None
    out = []
    for path in raw:
        if isinstance(path, (str, bytes)) or not isinstance(path, (list, tuple, np.ndarray)) or len(path) == 0:
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
                    "time_s": (n + 1) * segment_time_s(seg, par.alpha_db_per_km, par.speed_km_per_s),
                    "cost": n * row["cost_per_repeater"],
                }
            )
    table = pd.DataFrame(rows)
    table["p"] = np.exp(table["log_p"])
    return table


def hop_range(
    data: SpacingData, path: tuple[Hashable, ...], n_lo: Mapping[Hashable, int] | None = None
) -> tuple[int, int]:
    lo = len(path) + (sum(n_lo.get(lid, 0) for lid in path) if n_lo else 0)
    hi = len(path) + sum(data.n_max_of[lid] for lid in path)
    return int(lo), int(hi)


# ---------------------------------------------------------------------------
# Hop-factor table (log g(k))
# ---------------------------------------------------------------------------


def log_hop_table(k_max: int, params: ChainParameters) -> np.ndarray:
    """``log g(k)`` for ``k = 0..k_max`` (entry 0 is -inf, unused)."""
    params.hop_factor(k_max)  # raises when the table is too short
    table = np.full(k_max + 1, -np.inf)
    for k in range(1, k_max + 1):
        table[k] = math.log(params.hop_factors[k])
    return table


def max_chain_hops(data: SpacingData) -> int:
    n_max = data.n_max_of
    return max(len(path) + sum(n_max[lid] for lid in path) for d in data.demand_ids for path in data.paths[d])


def hop_factor_nonincreasing(k_max: int, params: ChainParameters) -> bool:
    """True when ``g(k+1) <= g(k)`` for every ``1 <= k < k_max`` (checked numerically)."""
    logg = log_hop_table(k_max, params)[1:]
    return bool(np.all(np.diff(logg) <= 1e-12))


def subset_demands(data: SpacingData, keep: Sequence[Hashable]) -> SpacingData:
    keep_set = set(keep)  # membership tests in O(1): keep may hold tens of thousands of demands
    return SpacingData(
        data.links,
        list(keep),
        {d: data.paths[d] for d in keep},
        {d: v for d, v in data.rate_target.items() if d in keep_set},
        {d: v for d, v in data.latency_limit_s.items() if d in keep_set},
        data.params,
    )


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
    links_out = pd.DataFrame(
        {
            "link": list(data.links.index),
            "repeaters": n_arr,
            "segment_km": seg_arr,
            "hops": n_arr + 1,
            "p": 10.0 ** (-par.alpha_db_per_km * seg_arr / 10.0),
            "cost": n_arr * data.links["cost_per_repeater"].to_numpy(float),
        }
    )
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
        raise RepeaterInputError(f"no backbone path from {_show(source)} to {_show(target)} (connect them)") from exc
    return [[graph[a][b]["link"] for a, b in itertools.pairwise(p)] for p in node_paths]
