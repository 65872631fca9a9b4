"""Input of the repeater-spacing model: chain tables, validated tables and design evaluation.

:class:`ChainTables` carries the numbers of the physics (per link option and per hop
count, computed by the caller: the planner's :mod:`planner.stages.repeater_tables`);
:func:`prepare_spacing_data` validates the ``links`` and ``demands`` tables into
:class:`SpacingData`; :func:`link_options` gives the per-(link, repeaters) coefficients
and :func:`evaluate_spacing` recomputes each demand's rate and latency for a design
from the tables, independently of the model. See :mod:`solvers.repeaters` for the
formulation.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx
import numpy as np
import pandas as pd

from solvers.base import ModelInfeasible
from solvers.base import show_value as _show


def log_rate(rate: Any) -> Any:
    """A rate (target, bound) in the model's log space: the natural log (``-inf`` for 0), element-wise.

    The model is linear in log rates (``log p_worst + log f(k)``); this and :func:`rate_of_log` are
    the only conversions between the two scales in :mod:`solvers.repeaters` (no physics)."""
    if isinstance(rate, (float, int)):
        return math.log(rate) if rate > 0 else -math.inf
    with np.errstate(divide="ignore"):
        out = np.log(rate)
    return float(out) if np.ndim(out) == 0 else out


def rate_of_log(value: Any) -> Any:
    """A log rate (objective, bound) back on the rate scale: ``exp``, element-wise (see :func:`log_rate`)."""
    if isinstance(value, (float, int)):
        return math.exp(value)
    out = np.exp(value)
    return float(out) if np.ndim(out) == 0 else out


SpacingMode = Literal["min_cost", "max_min_rate"]


class RepeaterInputError(ValueError):
    """The tables handed to the spacing model are invalid; the message names the row and the fix."""


class RepeaterInfeasible(ModelInfeasible):
    """No repeater spacing meets the targets.

    ``conflicts`` lists the demand ids that cannot meet their target (alone, or
    together as a minimal conflicting set); ``details`` explains each one.
    """

    conflict_label = "Conflicting demands"


@dataclass(frozen=True, eq=False)
class ChainTables:
    """What the spacing model knows of the physics: numbers per link option and per hop count.

    The caller computes them (the planner's :mod:`planner.stages.repeater_tables`, from its one
    physics parameter object); this package evaluates no formula of the physics. It looks the
    numbers up and combines them only as the model states: a chain's rate is its worst segment's
    ``p`` times the factor of its hop count ``k`` (Eq. 9 for a homogeneous chain, a lower bound
    for an inhomogeneous one), and its latency is the segment times summed over the chain,
    divided by that rate, plus the swap latency of ``k`` hops (Eq. 10).

    ``options``: one row per (``link``, ``repeaters`` ``n`` = 0..the link's ``max_repeaters``;
    further rows are ignored) with ``p`` (success probability of one attempt on one of the link's
    ``n + 1`` equal segments, Eq. 7), ``log_p`` (its natural log, given on its own so that a
    segment whose ``p`` underflows keeps a finite log) and ``time_s`` (expected time to entangle
    one segment, Eq. 8, summed over the link's ``n + 1`` segments). ``p`` must not fall as ``n``
    grows.

    Per hop count ``k = 0..K`` (entry 0 is not used): ``rate_factor[k]`` (pairs per attempt of a
    ``k``-hop chain per unit worst-segment ``p``, Eq. 9's ``m g(k)``), ``log_rate_factor[k]`` (its
    natural log) and ``swap_latency_s[k]`` (Eq. 10's ``k (t_mea + t_ret)``). ``K`` must cover the
    longest chain of any candidate path (its links' ``max_repeaters + 1`` summed).
    """

    options: pd.DataFrame
    rate_factor: np.ndarray
    log_rate_factor: np.ndarray
    swap_latency_s: np.ndarray

    def __post_init__(self) -> None:
        problems = []
        missing = [c for c in ("link", "repeaters", "p", "log_p", "time_s") if c not in self.options.columns]
        if missing:
            problems.append(f"options table: missing columns {missing}")
        sizes = {len(self.rate_factor), len(self.log_rate_factor), len(self.swap_latency_s)}
        if len(sizes) != 1 or min(sizes) < 2:
            problems.append("rate_factor, log_rate_factor and swap_latency_s must cover the same k = 0..K, K >= 1")
        else:
            rf, lrf, sl = (np.asarray(a, dtype=float)[1:] for a in self.hop_arrays())
            if not (np.all(np.isfinite(rf)) and np.all(rf > 0) and np.all(np.isfinite(lrf))):
                problems.append("rate_factor[k] must be a finite number > 0 with a finite log for every k >= 1")
            if not (np.all(np.isfinite(sl)) and np.all(sl >= 0)):
                problems.append("swap_latency_s[k] must be a finite number >= 0 for every k >= 1")
        if problems:
            raise RepeaterInputError("chain tables: " + "; ".join(problems))

    def hop_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rate_factor, log_rate_factor, swap_latency_s)`` as float arrays."""
        return (
            np.asarray(self.rate_factor, dtype=float),
            np.asarray(self.log_rate_factor, dtype=float),
            np.asarray(self.swap_latency_s, dtype=float),
        )

    @property
    def max_hops(self) -> int:
        """The largest ``k`` the per-hop-count tables cover."""
        return len(self.rate_factor) - 1


@dataclass(frozen=True, eq=False)
class OptionArrays:
    """The option table as arrays by (link position, repeaters), padded with NaN past a link's
    ``max_repeaters``; ``log_p_rows`` holds each link's ``log_p`` row as a list (for bisection)."""

    p: np.ndarray
    log_p: np.ndarray
    time_s: np.ndarray
    log_p_rows: dict[Hashable, list[float]]


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
    tables: ChainTables
    options: OptionArrays  # ``tables.options`` by link position (row of ``links``) and repeaters
    # plain-dict views of ``links`` for the Python loops (no per-row pandas access)
    length_of: dict[Hashable, float] = dataclasses.field(init=False, repr=False, compare=False)
    n_max_of: dict[Hashable, int] = dataclasses.field(init=False, repr=False, compare=False)
    link_pos: dict[Hashable, int] = dataclasses.field(init=False, repr=False, compare=False)  # row of ``links``

    def __post_init__(self) -> None:
        object.__setattr__(self, "link_pos", {lid: i for i, lid in enumerate(self.links.index)})
        object.__setattr__(
            self, "length_of", dict(zip(self.links.index, self.links["length_km"].astype(float), strict=True))
        )
        object.__setattr__(
            self, "n_max_of", dict(zip(self.links.index, self.links["max_repeaters"].astype(int), strict=True))
        )

    def log_rate_factors(self, k_max: int) -> np.ndarray:
        """``log_rate_factor[k]`` for ``k = 0..k_max`` (entry 0 is -inf, unused)."""
        table = np.array(self.tables.log_rate_factor[: k_max + 1], dtype=float)
        table[0] = -np.inf
        return table


def prepare_spacing_data(
    links: pd.DataFrame,
    demands: pd.DataFrame,
    tables: ChainTables,
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
    ``tables`` (:class:`ChainTables`) must hold every link option and cover every chain.
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
    data = SpacingData(lk, ids, paths, targets, limits, tables, option_arrays(lk, tables))
    k_max = max_chain_hops(data)
    if k_max > tables.max_hops:
        raise RepeaterInputError(
            f"chain tables cover k = 1..{tables.max_hops} hops but a candidate path can form a chain of {k_max}; "
            "give the per-hop-count tables up to the sum over links of (max_repeaters + 1)"
        )
    return data


def option_arrays(links: pd.DataFrame, tables: ChainTables) -> OptionArrays:
    """The rows of ``tables.options`` for ``links`` (indexed by link id) as :class:`OptionArrays`.

    Raises :class:`RepeaterInputError` when an option ``0..max_repeaters`` of a link is missing or
    given twice, or when a value is invalid (``p`` outside [0, 1], ``log_p`` positive,
    ``time_s`` negative, ``p`` falling as repeaters are added).
    """
    opts = tables.options
    n_max = links["max_repeaters"].to_numpy(int)
    pos = links.index.get_indexer(opts["link"])
    reps = opts["repeaters"].to_numpy()
    keep = (pos >= 0) & (reps >= 0) & (reps <= np.where(pos >= 0, n_max[pos], -1))
    pos, reps = pos[keep], reps[keep].astype(int)
    shape = (len(links), int(n_max.max(initial=0)) + 1)
    filled = np.zeros(shape, dtype=int)
    np.add.at(filled, (pos, reps), 1)
    valid = np.arange(shape[1])[None, :] <= n_max[:, None]
    problems = []
    if np.any(filled[valid] != 1):
        bad = [str(links.index[i]) for i in np.flatnonzero(np.any((filled != 1) & valid, axis=1))[:5]]
        problems.append(f"every link needs exactly one option row per repeater count 0..max_repeaters (links {bad})")
    arrays = []
    for col in ("p", "log_p", "time_s"):
        arr = np.full(shape, np.nan)
        arr[pos, reps] = opts[col].to_numpy(float)[keep]
        arrays.append(arr)
    p, log_p, time_s = arrays
    if not problems:
        with np.errstate(invalid="ignore"):
            if not (np.all((p[valid] >= 0) & (p[valid] <= 1)) and np.all(log_p[valid] <= 0)):
                problems.append("p must be in [0, 1] and log_p <= 0")
            if not np.all(time_s[valid] >= 0):  # inf where a segment's time overflows
                problems.append("time_s must be a number >= 0")
            if np.any(np.diff(np.where(valid, log_p, np.inf), axis=1) < 0):
                problems.append("p must not fall as repeaters are added to a link")
    if problems:
        raise RepeaterInputError("chain tables: " + "; ".join(problems))
    rows = {lid: log_p[i, : n_max[i] + 1].tolist() for i, lid in enumerate(links.index)}
    return OptionArrays(p, log_p, time_s, rows)


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
    """One row per (link, repeaters) option: segment_km, hops, log_p, p, time_s (from the chain tables), cost."""
    n_max = data.links["max_repeaters"].to_numpy(int)
    pos = np.repeat(np.arange(len(n_max)), n_max + 1)
    reps = np.concatenate([np.arange(n + 1) for n in n_max]) if len(n_max) else np.zeros(0, dtype=int)
    length = data.links["length_km"].to_numpy(float)[pos]
    opt = data.options
    return pd.DataFrame(
        {
            "link": data.links.index.to_numpy()[pos],
            "repeaters": reps,
            "segment_km": length / (reps + 1),
            "hops": reps + 1,
            "log_p": opt.log_p[pos, reps],
            "p": opt.p[pos, reps],
            "time_s": opt.time_s[pos, reps],
            "cost": reps * data.links["cost_per_repeater"].to_numpy(float)[pos],
        }
    )


def hop_range(
    data: SpacingData, path: tuple[Hashable, ...], n_lo: Mapping[Hashable, int] | None = None
) -> tuple[int, int]:
    lo = len(path) + (sum(n_lo.get(lid, 0) for lid in path) if n_lo else 0)
    hi = len(path) + sum(data.n_max_of[lid] for lid in path)
    return int(lo), int(hi)


def max_chain_hops(data: SpacingData) -> int:
    n_max = data.n_max_of
    return max(len(path) + sum(n_max[lid] for lid in path) for d in data.demand_ids for path in data.paths[d])


def rate_factor_nonincreasing(data: SpacingData, k_max: int) -> bool:
    """True when the chain tables' ``rate_factor[k+1] <= rate_factor[k]`` for every ``1 <= k < k_max``
    (checked numerically on the logs)."""
    logf = data.log_rate_factors(k_max)[1:]
    return bool(np.all(np.diff(logf) <= 1e-12))


def subset_demands(data: SpacingData, keep: Sequence[Hashable]) -> SpacingData:
    keep_set = set(keep)  # membership tests in O(1): keep may hold tens of thousands of demands
    return SpacingData(
        data.links,
        list(keep),
        {d: data.paths[d] for d in keep},
        {d: v for d, v in data.rate_target.items() if d in keep_set},
        {d: v for d, v in data.latency_limit_s.items() if d in keep_set},
        data.tables,
        data.options,
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
    ``repeaters`` get 0. Rates and latencies are recomputed from the chain tables
    (see :class:`ChainTables`), independently of the model.
    """
    opt = data.options
    rate_factor, _, swap_latency_s = data.tables.hop_arrays()
    n_arr = np.array([int(repeaters.get(lid, 0)) for lid in data.links.index], dtype=int)
    at = (np.arange(len(n_arr)), n_arr)
    seg_arr = data.links["length_km"].to_numpy(float) / (n_arr + 1)
    links_out = pd.DataFrame(
        {
            "link": list(data.links.index),
            "repeaters": n_arr,
            "segment_km": seg_arr,
            "hops": n_arr + 1,
            "p": opt.p[at],
            "cost": n_arr * data.links["cost_per_repeater"].to_numpy(float),
        }
    )
    hops_of = dict(zip(links_out["link"], (n_arr + 1).tolist(), strict=True))
    p_of = dict(zip(links_out["link"], links_out["p"].tolist(), strict=True))
    time_of = dict(zip(links_out["link"], opt.time_s[at].tolist(), strict=True))  # summed over the link's segments
    drows = []
    for d in data.demand_ids:
        j = int((path_choice or {}).get(d, 0))
        path = data.paths[d][j]
        k = sum(hops_of[lid] for lid in path)
        p_worst = min(p_of[lid] for lid in path)
        rate = p_worst * float(rate_factor[k])
        total_t = sum(time_of[lid] for lid in path)
        latency = (total_t / rate if rate > 0 else math.inf) + float(swap_latency_s[k])
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
