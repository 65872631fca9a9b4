"""Trusted relays chosen for SMR security (what the design is verified and operated with).

The single-path MILP of :mod:`solvers.trust` maximises the worst *best single
path*; designs are judged by SMR multipath security
(:func:`planner.routing.smr`). This module evaluates relay sets with SMR and
improves them:

* :class:`SmrEvaluator` routes demands with SMR for a trusted set, sharing the
  rank topology and the classical distances between calls (they do not depend
  on the trusted set) and memoising per trusted set. Results equal
  :func:`planner.routing.smr` called per demand (checked in the tests); the
  router runs without the per-trusted-set path cache.
* :func:`choose_for_smr`: every start (the MILP set, greedy, betweenness,
  random, ...) is evaluated on the selection demands; the best by the chosen
  objective (``"min"``: minimum SMR security, then mean; ``"mean"``: mean,
  then minimum) starts a first-improvement local search (add while under the
  budget, else swap one trusted relay for a candidate), screened on a few
  demands (the worst ones; for ``"mean"`` also a fixed random sample) and
  accepted only on a strictly better full evaluation. So the result is never
  worse than any start on the selection demands, by construction.
* :func:`fewest_for_target`: the fewest relays (greedy cover, then dropping
  redundant relays) such that every demand's SMR security reaches ``eps``,
  or the demands that cannot reach it even with every candidate trusted.

Evaluation cost is bounded: the search stops at its deadline, and when the
demand set is too large to evaluate within the time budget the selection runs
on a fixed random sample of demands (recorded in the result).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np

from planner.routing import RelaySecurity, Router, Topology, route_smr
from planner.routing.security import relay_costs
from planner.runtime.parallel import Executor, map_chunks

logger = logging.getLogger(__name__)

SmrObjective = Literal["min", "mean"]


#: Fewer routings than this in one :meth:`SmrEvaluator.securities` call run in this process
#: (screens of the local search); more go through the executor (:func:`planner.runtime.parallel.map_chunks`).
MIN_PARALLEL_ROUTINGS = 200


@dataclass(frozen=True)
class _SmrTask:
    """What every routing of one :meth:`SmrEvaluator.securities` call shares (sent once per chunk)."""

    graph: nx.Graph
    topo: Any
    pairs: tuple[tuple[Hashable, Hashable], ...]
    security: Mapping[Hashable, float]
    trusted: frozenset[Hashable]
    keep_results: bool


_WORKER_DISTANCES: dict[int, tuple[Any, dict[Any, dict[int, float]]]] = {}
_WORKER_COSTS: dict[tuple[int, frozenset[Hashable]], tuple[Any, list[int]]] = {}


class _CostedRouter(Router):
    """A :class:`Router` whose relay costs were computed already (the same for every demand of a set)."""

    def __init__(self, graph: nx.Graph, relay: RelaySecurity, costs: list[int], **kwargs: Any) -> None:
        super().__init__(graph, relay, **kwargs)
        self._costs = costs

    @property
    def cost(self) -> list[int]:
        return self._costs


def _route_row(task: _SmrTask, row: int) -> tuple[float, Any]:
    """SMR of demand ``row`` for the task's trusted set: (security or 0 when undeliverable, result or None)."""
    # classical distances do not depend on the trusted set: shared by the calls on the same topology
    held = _WORKER_DISTANCES.get(id(task.topo))
    if held is None or held[0] is not task.topo:
        _WORKER_DISTANCES.clear()
        _WORKER_COSTS.clear()
        held = _WORKER_DISTANCES[id(task.topo)] = (task.topo, {})
    relay = RelaySecurity(task.security, task.trusted)
    # the relay costs depend on the trusted set only: computed once per set and topology
    key = (id(task.topo), task.trusted)
    costs = _WORKER_COSTS.get(key)
    if costs is None or costs[0] is not task.topo:
        if len(_WORKER_COSTS) >= 64:
            _WORKER_COSTS.clear()
        costs = _WORKER_COSTS[key] = (task.topo, relay_costs(task.topo, relay))
    router = _CostedRouter(task.graph, relay, costs[1], topo=task.topo, cache=None, distance_cache=held[1])
    s, t = task.pairs[row]
    res = route_smr(router, s, t, None, None)
    return (float(res.security) if res.delivered else 0.0), (res if task.keep_results else None)


class SmrEvaluator:
    """SMR security of a fixed list of demands for any trusted set (memoised per set).

    Calls with at least :data:`MIN_PARALLEL_ROUTINGS` demands run through
    :func:`planner.runtime.parallel.map_chunks` (the executor set with ``--workers`` /
    ``--scheduler``, or ``executor``); the results are the same on every
    executor (SMR routing is deterministic and each demand is routed alone).
    """

    def __init__(
        self,
        graph: nx.Graph,
        pairs: Sequence[tuple[Hashable, Hashable]],
        security: Mapping[Hashable, float],
        *,
        executor: Any = None,
    ) -> None:
        self.graph = graph
        self.pairs = list(pairs)
        self.security = dict(security)
        RelaySecurity(security).validate(graph)
        self.topo = Topology(graph)
        self.executor = executor
        self._memo: dict[tuple[frozenset[Hashable], tuple[int, ...] | None], np.ndarray] = {}
        #: with keep_results, every routing's SmrResult objects are memoised too (a later call
        #: asking for the routes of the same set and demands is then not routed again)
        self.keep_results = False
        self._routes: dict[tuple[frozenset[Hashable], tuple[int, ...] | None], list[Any]] = {}
        self.calls = 0

    def known(self, trusted: frozenset[Hashable], rows: Sequence[int]) -> bool:
        """Whether :meth:`securities` of ``trusted`` on ``rows`` is memoised (costs no routing)."""
        return (trusted, tuple(rows)) in self._memo or (trusted, None) in self._memo

    def securities(
        self, trusted: frozenset[Hashable], rows: Sequence[int] | None = None, results: list[Any] | None = None
    ) -> np.ndarray:
        """SMR end-to-end security of the demands ``rows`` (all when None); 0 when undeliverable.

        With a ``results`` list their :class:`planner.routing.SmrResult`
        objects are appended to it (routed again unless ``keep_results`` kept them).
        """
        key = (trusted, None if rows is None else tuple(rows))
        hit = self._memo.get(key)
        if hit is not None and results is None:
            return hit
        if hit is not None and results is not None and key in self._routes:
            results.extend(self._routes[key])
            return hit
        if rows is not None and results is None:
            full = self._memo.get((trusted, None))
            if full is not None:
                return full[np.asarray(rows, dtype=np.int64)]
        idx = list(range(len(self.pairs))) if rows is None else [int(i) for i in rows]
        task = _SmrTask(
            self.graph,
            self.topo,
            tuple(self.pairs),
            self.security,
            frozenset(trusted),
            results is not None or self.keep_results,
        )
        executor = self.executor if len(idx) >= MIN_PARALLEL_ROUTINGS else Executor()
        routed = map_chunks(_route_row, task, idx, executor=executor)
        out = np.array([sec for sec, _ in routed], dtype=float)
        if results is not None:
            results.extend(res for _, res in routed)
        if self.keep_results:
            self._routes[key] = [res for _, res in routed]
        self.calls += len(out)
        self._memo[key] = out
        return out


def smr_key(sec: np.ndarray, objective: SmrObjective) -> tuple[float, float]:
    """Order of SMR security vectors (larger is better), rounded so float noise is no improvement."""
    lo, mean = round(float(sec.min()), 12), round(float(sec.mean()), 12)
    return (lo, mean) if objective == "min" else (mean, lo)


@dataclass
class SmrChoice:
    """Outcome of :func:`choose_for_smr`: the set, its start, and how the search went."""

    trusted: list[Hashable]
    start: str
    key: tuple[float, float]
    start_keys: dict[str, tuple[float, float]]
    moves: int = 0
    evaluations: int = 0
    stopped: str = "local optimum"
    history: list[dict[str, Any]] = field(default_factory=list)


def _moves(
    ev: SmrEvaluator,
    current: frozenset[Hashable],
    worst_rows: list[int],
    pool: Sequence[Hashable],
    budget: int,
    rank: Callable[[Sequence[Hashable]], list[Hashable]] | None,
    max_candidates: int,
) -> list[frozenset[Hashable]]:
    """The local search's next moves from ``current``: add a candidate while under ``budget``, else swap
    one relay for one. Candidates (at most ``max_candidates``): relays on the SMR paths of the demands
    ``worst_rows`` first (they decide the minimum, up to half), then ``pool`` outside ``current`` in
    ``rank`` order."""
    outside = [v for v in pool if v not in current]
    ranked = rank(outside) if rank else outside
    routed: list[Any] = []
    ev.securities(current, worst_rows, results=routed)
    on_paths: dict[Hashable, int] = {}
    for res in routed:
        for seg in res.segments:
            for path in seg.paths:
                for v in path[1:-1]:
                    if v not in current:
                        on_paths[v] = on_paths.get(v, 0) + 1
    allowed = set(outside)
    first = [v for v in sorted(on_paths, key=lambda x: -on_paths[x]) if v in allowed]
    cands = list(dict.fromkeys(first[: max_candidates // 2] + list(ranked)))[:max_candidates]
    if len(current) < budget:
        return [current | {v} for v in cands]
    return [(current - {u}) | {v} for u in sorted(current, key=str) for v in cands]


def choose_for_smr(
    ev: SmrEvaluator,
    starts: Mapping[str, Sequence[Hashable]],
    pool: Sequence[Hashable],
    budget: int,
    *,
    objective: SmrObjective = "min",
    deadline: float,
    rows: Sequence[int] | None = None,
    screen: int = 24,
    max_candidates: int = 24,
    rank: Callable[[Sequence[Hashable]], list[Hashable]] | None = None,
    seed: int = 0,
) -> SmrChoice:
    """Best start by SMR ``objective`` on ``rows``, improved by add/swap local search until ``deadline``.

    Guarantees: the returned set has at most ``budget`` relays from ``pool``
    (plus what the starts contain) and its key on ``rows`` is >= every start's
    evaluated before ``deadline`` (the first always is; ``start_keys`` names them).
    ``rank`` orders candidate additions (default: nodes on the worst demands'
    single best paths are not known here, so ``pool`` order); at most
    ``max_candidates`` of them are tried per pass.
    """
    sel = None if rows is None else list(rows)
    n_sel = len(ev.pairs) if sel is None else len(sel)

    def full(s: frozenset[Hashable]) -> np.ndarray:
        return ev.securities(s, sel)

    start_keys: dict[str, tuple[float, float]] = {}
    best_name, best_set, best_vec = "", frozenset[Hashable](), np.zeros(0)
    for name, st in starts.items():
        if best_name and time.perf_counter() >= deadline:
            break  # the starts not evaluated are still compared by the caller's verification
        fs = frozenset(st)
        vec = full(fs)
        start_keys[name] = smr_key(vec, objective)
        if not best_name or start_keys[name] > smr_key(best_vec, objective):
            best_name, best_set, best_vec = name, fs, vec
    choice = SmrChoice(
        trusted=sorted(best_set, key=str), start=best_name, key=smr_key(best_vec, objective), start_keys=start_keys
    )
    rng = np.random.default_rng(seed)
    sample = rng.choice(n_sel, size=min(n_sel, screen), replace=False) if objective == "mean" else None
    current, vec = best_set, best_vec
    improved = True
    while improved:
        improved = False
        if time.perf_counter() >= deadline:
            choice.stopped = "time limit"
            break
        worst = np.argsort(vec, kind="stable")[: max(1, screen // (2 if sample is not None else 1))]
        screen_idx = worst if sample is None else np.unique(np.concatenate([worst, sample]))
        scr_rows = [int(i) if sel is None else sel[int(i)] for i in screen_idx]
        cur_scr = smr_key(vec[screen_idx], objective)
        worst_rows = [int(i) if sel is None else sel[int(i)] for i in worst[:3]]
        for move in _moves(ev, current, worst_rows, pool, budget, rank, max_candidates):
            if time.perf_counter() >= deadline:
                choice.stopped = "time limit"
                break
            scr = ev.securities(move, scr_rows)
            if smr_key(scr, objective) <= cur_scr and objective == "min":
                continue
            if objective == "mean" and smr_key(scr, objective) < cur_scr:
                continue
            new_vec = full(move)
            if smr_key(new_vec, objective) > smr_key(vec, objective):
                current, vec = move, new_vec
                choice.moves += 1
                choice.history.append(
                    {"move": choice.moves, "min_smr": float(vec.min()), "mean_smr": float(vec.mean())}
                )
                improved = True
                break
    choice.trusted = sorted(current, key=str)
    choice.key = smr_key(vec, objective)
    choice.evaluations = ev.calls
    return choice


@dataclass
class TargetChoice:
    """Outcome of :func:`fewest_for_target`."""

    trusted: list[Hashable]
    unreachable: list[int]  # demand rows that miss eps even with every candidate trusted
    met: int
    lower_bound: int  # a valid lower bound on the number of relays needed
    stopped: str = "done"


def fewest_for_target(
    ev: SmrEvaluator,
    pool: Sequence[Hashable],
    eps: float,
    *,
    order: Sequence[Hashable],
    deadline: float,
) -> TargetChoice:
    """Fewest trusted relays such that every reachable demand has SMR security >= ``eps``.

    Demands below ``eps`` with every candidate trusted are reported as
    unreachable and not pursued. Otherwise relays are added in ``order`` (a
    guide, e.g. the single-path greedy cover) choosing at each step, among the
    next candidates, the one that lets the most failing demands reach ``eps``;
    then every relay whose removal keeps all reachable demands at ``eps`` is
    dropped. ``lower_bound`` is 1 when some reachable demand misses ``eps``
    with no relay trusted, else 0 (the trivial valid bound).
    """
    tol = 1e-12
    everything = ev.securities(frozenset(pool))
    unreachable = [int(i) for i in np.nonzero(everything < eps - tol)[0]]
    target_rows = [i for i in range(len(ev.pairs)) if everything[i] >= eps - tol]
    none = ev.securities(frozenset())
    lower = int(any(none[i] < eps - tol for i in target_rows))
    chosen: list[Hashable] = []
    vec = none
    failing = [i for i in target_rows if vec[i] < eps - tol]
    stopped = "done"
    queue = [v for v in order if v in set(pool)] + [v for v in pool if v not in set(order)]
    while failing:
        if time.perf_counter() >= deadline:
            stopped = "time limit: trusting the rest of the order"
            chosen = chosen + [v for v in queue if v not in chosen]
            break
        best_v, best_n = None, -1
        for v in [q for q in queue if q not in chosen][:8]:
            sec = ev.securities(frozenset(chosen) | {v}, failing)
            n_ok = int((sec >= eps - tol).sum())
            if n_ok > best_n:
                best_v, best_n = v, n_ok
        if best_v is None:
            break
        chosen.append(best_v)
        vec = ev.securities(frozenset(chosen))
        failing = [i for i in target_rows if vec[i] < eps - tol]
    if not failing:
        for v in list(reversed(chosen)):
            if time.perf_counter() >= deadline:
                break
            trial = frozenset(chosen) - {v}
            sec = ev.securities(trial, target_rows)
            if bool((sec >= eps - tol).all()):
                chosen.remove(v)
    vec = ev.securities(frozenset(chosen))
    met = int((vec >= eps - tol).sum())
    return TargetChoice(trusted=chosen, unreachable=unreachable, met=met, lower_bound=lower, stopped=stopped)
