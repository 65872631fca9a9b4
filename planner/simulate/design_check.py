"""Verify a planned design by simulation: predicted vs simulated, pair by pair.

:func:`simulate_design` runs key-request traffic over a :class:`~planner.model.design.Design`
with the simulators of this package and compares every figure with what the optimiser
predicted:

* **intra-cluster** (cluster paper Eq. 5-6): every access cluster is simulated with
  :func:`planner.simulate.access.simulate_cluster_keys_per_attempt` (its master's and
  slaves' memory, the scenario's key-generation ratios and memory lifetime); simulated
  key bits per attempt vs ``clusters.keys_per_attempt``.
* **inter-cluster, repeater chains** (Eq. 7-9): the chain of every demand is rebuilt
  from the *links* table (hops = sum of repeaters + 1 over the path's links, ``p`` of
  the longest segment from ``spacing_km`` and Eq. 7, memory of the path's links) and
  simulated with :func:`planner.simulate.chain.simulate_chain_rate` (Monte Carlo of the
  protocol Eq. 9 describes); simulated pairs per attempt vs ``demands.rate``. For the
  pairs with the longest predicted latency the slot-level physical protocol
  (:func:`planner.simulate.chain.simulate_chain`: real hop lengths, finite memory, one
  nested swap tree) also gives the time to the first end-to-end pair (vs Eq. 10) and
  the physical rate.
* **inter-cluster, trusted relays** (SMR paper): every demand is routed with
  :func:`planner.routing.smr` on the fibre graph with the design's trusted relays, and
  an eavesdropper compromising untrusted relays attacks the key distribution on real
  bytes (:func:`planner.simulate.keysim.leak_trials`); the fraction of draws in which
  the end-to-end key (all path keys combined) stays secret vs ``demands.security``.
  Flexible reconstruction at the scenario's ``eps`` decides how many global keys a
  request gets; requests of :data:`REQUEST_KEY_BITS` bits from every pair, in random
  order, then draw one-time pads from shared link key pools of
  ``security.key_pool_bits`` bits, which shows key-pool depletion.

A pair is **flagged** when the prediction lies outside the simulated 99% confidence
interval *and* the difference exceeds the tolerance (:data:`DEFAULT_TOLERANCE`), or
when the design's tables contradict each other (e.g. a demand's hop count differs
from its links). A flag means a bug in the model, the simulator or the pipeline's
prediction, never noise: the tolerances are several standard errors wide at the
default sample sizes.

Reproducibility: every random draw derives from ``seed`` through
:class:`numpy.random.SeedSequence` keyed by the pair, so results do not depend on how
pairs are split between worker processes; the returned dict is JSON-ready and holds no
wall-clock figures.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy import stats

from planner.errors import InputFormatError, ValidationError
from planner.keys.reconstruction import (
    GlobalKey,
    ReconstructionPlan,
    flexible_reconstruction,
    greedy_states,
)
from planner.model.design import Design
from planner.model.network import Network
from planner.model.scenario import Scenario, scenario_from_dict
from planner.runtime.parallel import Backend, map_tasks

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TOLERANCE",
    "LEVEL",
    "REPORT_COLUMNS",
    "REQUEST_KEY_BITS",
    "SampleSizes",
    "fibre_graph",
    "sample_sizes",
    "simulate_design",
    "summary_lines",
    "write_simulation_files",
]

SIM_SCHEMA_VERSION = 1
#: Confidence level of every interval.
LEVEL = 0.99
#: Relative rate tolerance and absolute security tolerance for flagging a pair.
DEFAULT_TOLERANCE: dict[str, float] = {"rate_rel": 0.05, "security_abs": 0.05}
#: Bits of key one request asks for (one AES-256 key).
REQUEST_KEY_BITS = 256
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
PHYSICAL_TRIALS = 40
PHYSICAL_MIN_SLOTS = 400
PHYSICAL_MAX_SLOTS = 20_000
#: Work budget of the physical simulations of one run, in hops x slots (about 10 s of CPU).
PHYSICAL_BUDGET_HOP_SLOTS = 200_000
#: Smallest link success probability the chain Monte Carlo is run for.
MIN_SIMULATED_P = 1e-9

PAIR_COLUMNS = [
    "pair",
    "kind",
    "source",
    "target",
    "rate_unit",
    "rate_predicted",
    "rate_simulated",
    "rate_ci_low",
    "rate_ci_high",
    "rate_rel_error",
    "security_predicted",
    "security_simulated",
    "security_ci_low",
    "security_ci_high",
    "security_abs_error",
    "flagged",
    "flag_reason",
    "hops",
    "p_worst",
    "memory",
    "chain_cycles",
    "rate_shared",
    "time_per_pair_s",
    "latency_predicted_s",
    "latency_first_pair_s",
    "latency_ci_low_s",
    "latency_ci_high_s",
    "rate_physical",
    "security_route",
    "paths",
    "segments",
    "eps_met",
    "global_keys",
    "security_eps_predicted",
    "security_eps_simulated",
    "security_trials",
    "requests",
    "requests_served",
    "requests_refused_eps",
    "requests_blocked_pool",
    "key_bits_delivered",
    "link_bits_consumed",
    "key_pool_depletion",
    "served_before_pool_block",
    "note",
]


# ---------------------------------------------------------------------------
# sample sizes and seeds
# ---------------------------------------------------------------------------


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
        pc_problems.append(
            f"duration_s={duration_s!r} must be a finite number of seconds > 0 (or omitted)"
        )
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
    return SampleSizes(
        requests=None, duration_s=float(duration_s), access_slots=slots, chain_cycles=None
    )


_STREAM = {"cluster": 1, "chain": 2, "keys": 3, "physical": 4, "traffic": 5}


def _seed(seed: int, stream: str, index: int) -> int:
    """An integer seed for one pair and one purpose, independent of batching."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(_STREAM[stream], int(index)))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# ---------------------------------------------------------------------------
# the fibre graph the trusted-relay routing runs on
# ---------------------------------------------------------------------------


def fibre_graph(
    design: Design, scenario: Scenario, *, network: Network | None = None
) -> tuple[nx.Graph, str, bool]:
    """The site-level fibre graph SMR routing ran on during planning, its origin, and exactness.

    In order: the ``network`` given (after the pipeline's candidate-link step:
    exact); a ``fibre`` table of the design (columns ``u, v``) if it has one; the
    bundled network file named by ``design.network_source`` if its sites are the
    design's (exact); the design's sites joined by the pipeline's generated
    candidate links, accepted when every backbone fibre route runs on them (exact for
    inputs without links, such as a CSV of sites); else the union of the backbone
    links' fibre routes (approximate: SMR may find fewer paths than during planning,
    so security is then reported but not flagged).
    """
    from planner.pipeline import prepare_network

    site_ids = set(design.sites["site_id"].astype(str)) if len(design.sites) else set()
    route_edges = _route_edges(design)
    if network is not None:
        prepared, _ = prepare_network(network, scenario)
        return prepared.graph(), "network given", True
    stored = getattr(design, "fibre", None)  # the design table of fibre links (u, v)
    if isinstance(stored, pd.DataFrame) and {"u", "v"} <= set(stored.columns) and len(stored):
        g = nx.Graph()
        g.add_nodes_from(sorted(site_ids))
        g.add_edges_from(zip(stored["u"].astype(str), stored["v"].astype(str), strict=True))
        return g, "the design's fibre table", True
    bundled = _bundled_file(design.network_source)
    if bundled is not None:
        from planner.io.readers import read_network

        try:
            net = read_network(
                bundled,
                route_factor=scenario.network.route_factor,
                drop_external=scenario.network.drop_external,
            )
            g = prepare_network(net, scenario)[0].graph()
            if {str(n) for n in g.nodes} == site_ids:
                return g, f"bundled network file {bundled.name}", True
            logger.info("bundled %s does not hold the design's sites", bundled.name)
        except (InputFormatError, ValidationError) as exc:  # pragma: no cover
            logger.warning("could not re-read bundled %s: %s", bundled.name, exc)
    rebuilt = _candidate_graph(design, scenario)
    if rebuilt is not None and all(rebuilt.has_edge(u, v) for u, v in route_edges):
        return rebuilt, "the design's sites with the pipeline's generated candidate links", True
    g = nx.Graph()
    g.add_nodes_from(sorted(site_ids))
    g.add_edges_from(route_edges)
    return g, "backbone fibre routes only (the full fibre graph is not stored in the design)", False


def _route_edges(design: Design) -> list[tuple[str, str]]:
    edges: list[tuple[str, str]] = []
    for route in design.links.get("route", pd.Series(dtype=str)):
        hops = [x for x in str(route).split(";") if x]
        edges.extend(zip(hops[:-1], hops[1:], strict=True))
    return edges


def _candidate_graph(design: Design, scenario: Scenario) -> nx.Graph | None:
    """The design's sites with the links the pipeline generates for a site list without links."""
    from planner.model.network import make_sites
    from planner.pipeline import prepare_network

    s = design.sites
    if len(s) < 3 or scenario.network.candidate_links == "none":
        return None
    frame = pd.DataFrame(
        {
            "name": s["name"].astype(str).to_numpy(),
            "kind": s["kind"].astype(str).to_numpy(),
            "demand": 0.0,
            "lat": s["lat"].astype(float).to_numpy(),
            "lon": s["lon"].astype(float).to_numpy(),
        },
        index=pd.Index(s["site_id"].astype(str), name="site_id"),
    )
    try:
        net = Network(
            name=design.network_name,
            sites=make_sites(frame),
            source=design.network_source,
            route_factor=scenario.network.route_factor,
        )
        return prepare_network(net, scenario)[0].graph()
    except (InputFormatError, ValidationError) as exc:
        logger.info("could not rebuild candidate links from the design's sites: %s", exc)
        return None


def _bundled_file(source: str) -> Path | None:
    from planner.io.bundled import bundled_networks

    if not source:
        return None
    try:
        files = bundled_networks()
    except InputFormatError:  # pragma: no cover - no bundled data installed
        return None
    return next((f for f in files if f.name == source), None)


# ---------------------------------------------------------------------------
# per-demand work (picklable, runs in worker processes)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _DemandSpec:
    index: int
    demand_id: str
    source: str
    target: str
    hops: int | None
    p_worst: float | None
    memory: float | None
    cycles: int
    security_trials: int
    distances_km: tuple[float, ...] | None
    physical_slots: int
    chain_seed: int
    key_seed: int
    physical_seed: int


@dataclass(frozen=True)
class _Context:
    graph: nx.Graph | None
    trusted: frozenset[str]
    security: Mapping[str, float]
    eps: float
    q: float
    alpha_db_per_km: float
    speed_km_per_s: float
    t_mea_s: float
    t_ret_s: float
    attempt_time_s: float
    level: float


@dataclass(frozen=True)
class _Batch:
    context: _Context
    specs: tuple[_DemandSpec, ...]


def _run_batch(batch: _Batch) -> list[dict[str, Any]]:
    """Simulate every demand of a batch (top-level so that worker processes can run it)."""
    router = _shared_router(batch.context)
    return [_simulate_demand(batch.context, spec, router) for spec in batch.specs]


def _shared_router(ctx: _Context) -> Any:
    """One SMR router for every demand of a batch (None without a fibre graph).

    The graph's rank topology, the relay costs and the shortest-path distances are
    built once and shared, as the planner's trust stage does; every route equals
    :func:`planner.routing.smr` on the same graph, trusted set and security.
    """
    from planner.routing import RelaySecurity, Router, check_trusted

    if ctx.graph is None:
        return None
    check_trusted(ctx.graph, ctx.trusted)
    relay = RelaySecurity(ctx.security, ctx.trusted)
    relay.validate(ctx.graph)
    return Router(ctx.graph, relay)


def _simulate_demand(ctx: _Context, spec: _DemandSpec, router: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": spec.index}
    if spec.hops is not None and spec.p_worst is not None and spec.memory is not None:
        out.update(_chain_rate(ctx, spec))
    if spec.distances_km is not None:
        out.update(_physical_chain(ctx, spec))
    if ctx.graph is not None:
        out.update(_key_level(ctx, spec, router if router is not None else _shared_router(ctx)))
    return out


def _chain_rate(ctx: _Context, spec: _DemandSpec) -> dict[str, Any]:
    from planner.simulate.chain import simulate_chain_rate

    assert spec.hops is not None and spec.p_worst is not None and spec.memory is not None
    if not spec.p_worst >= MIN_SIMULATED_P:
        return {
            "chain_note": f"rate not simulated: worst segment p = {spec.p_worst:.3g} is below "
            f"{MIN_SIMULATED_P:g} (the chain would deliver practically nothing)"
        }
    res = simulate_chain_rate(
        spec.hops,
        p=min(1.0, spec.p_worst),
        q=ctx.q,
        memory=max(1.0, spec.memory),
        cycles=spec.cycles,
        level=ctx.level,
        seed=spec.chain_seed,
    )
    return {
        "rate_simulated": res.rate.value,
        "rate_ci_low": res.rate.low,
        "rate_ci_high": res.rate.high,
    }


def _physical_chain(ctx: _Context, spec: _DemandSpec) -> dict[str, Any]:
    from planner.simulate.chain import simulate_chain

    assert spec.distances_km is not None and spec.memory is not None
    d = np.asarray(spec.distances_km, dtype=float)
    slot_s = max(ctx.attempt_time_s, float(d.max()) / ctx.speed_km_per_s)
    res = simulate_chain(
        d,
        q=ctx.q,
        memory=max(1, int(spec.memory)),
        alpha_db_per_km=ctx.alpha_db_per_km,
        schedule="nested",
        slots=spec.physical_slots,
        trials=PHYSICAL_TRIALS,
        attempt_time_s=slot_s,
        speed_km_per_s=ctx.speed_km_per_s,
        t_mea_s=ctx.t_mea_s,
        t_ret_s=ctx.t_ret_s,
        level=ctx.level,
        seed=spec.physical_seed,
    )
    out: dict[str, Any] = {
        "rate_physical": res.rate.value,
        "physical_censored": res.censored_fraction,
        "physical_slot_s": slot_s,
    }
    if res.first_pair is not None:
        out.update(
            latency_first_pair_s=res.first_pair.value,
            latency_ci_low_s=res.first_pair.low,
            latency_ci_high_s=res.first_pair.high,
        )
    return out


def combined_plan(route: Any) -> ReconstructionPlan:
    """One global key per round that combines every path key of every segment.

    Its security is the route's end-to-end security (``SmrResult.security``), the
    figure the design states as ``demands.security``.
    """
    keys = tuple(greedy_states(list(seg.path_security))[1] for seg in route.segments)
    sec = math.prod(k[0].security for k in keys)
    return ReconstructionPlan(0.0, keys, (GlobalKey(tuple(0 for _ in keys), sec),))


def _key_level(ctx: _Context, spec: _DemandSpec, router: Any) -> dict[str, Any]:
    """SMR route of the demand (on ``router``, see :func:`_shared_router`) and its eavesdropper trials."""
    from planner.routing import check_endpoints, route_smr
    from planner.simulate.keysim import leak_trials

    assert ctx.graph is not None
    rng = np.random.default_rng(spec.key_seed)
    check_endpoints(ctx.graph, spec.source, spec.target)
    route = route_smr(router, spec.source, spec.target, None, None)
    out: dict[str, Any] = {
        "security_route": float(route.security) if route.delivered else 0.0,
        "paths": int(route.n_paths),
        "segments": len(route.segments),
        "total_hops": int(route.total_hops),
        "security_trials": spec.security_trials,
    }
    if not route.delivered:
        out.update(
            security_simulated=0.0,
            security_ci_low=0.0,
            security_ci_high=0.0,
            eps_met=False,
            global_keys=0,
            link_load=[],
        )
        return out
    n = spec.security_trials
    stats_all = leak_trials(
        route,
        combined_plan(route),
        trusted=ctx.trusted,
        security=ctx.security,
        n_trials=n,
        rng=rng,
        fresh_keys_every=DRAWS_PER_DISTRIBUTION,
    )
    secure = n - int(stats_all.leaked_count[0])
    low, high = wilson_interval(secure, n, level=ctx.level)
    out.update(security_simulated=secure / n, security_ci_low=low, security_ci_high=high)
    plan = flexible_reconstruction([list(seg.path_security) for seg in route.segments], ctx.eps)
    out.update(eps_met=plan.n_global_keys > 0, global_keys=plan.n_global_keys)
    if plan.n_global_keys:
        st = leak_trials(
            route,
            plan,
            trusted=ctx.trusted,
            security=ctx.security,
            n_trials=n,
            rng=rng,
            fresh_keys_every=DRAWS_PER_DISTRIBUTION,
        )
        weakest = int(np.argmax(st.analytic_leak))
        ok = n - int(st.leaked_count[weakest])
        lo, hi = wilson_interval(ok, n, level=ctx.level)
        out.update(
            security_eps_predicted=float(plan.min_security),
            security_eps_simulated=ok / n,
            security_eps_ci_low=lo,
            security_eps_ci_high=hi,
        )
    out["link_load"] = sorted(([str(u), str(v), int(c)] for (u, v), c in route.link_load().items()))
    return out


def wilson_interval(successes: int, trials: int, *, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion at ``level``."""
    if trials <= 0:
        return (0.0, 1.0)
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(
        confidence_level=level, method="wilson"
    )
    return float(ci.low), float(ci.high)


# ---------------------------------------------------------------------------
# design -> tasks
# ---------------------------------------------------------------------------


def _scenario(design: Design) -> Scenario:
    try:
        return scenario_from_dict(design.scenario, source="design.json scenario")
    except (ValidationError, InputFormatError) as exc:
        raise InputFormatError(
            f"the design's scenario is not valid ({exc}); re-run 'qkdplan plan'",
            source="design.json",
        ) from None


def _chains(design: Design, scenario: Scenario) -> pd.DataFrame:
    """Per demand: hops, worst-segment p, memory and hop lengths rebuilt from the links table.

    Column ``problems`` names inconsistencies (a demand whose hop count or worst p in
    the demands table differs from its links); a link whose ``p_link`` is not Eq. 7 of
    its spacing is logged.
    """
    dem, links = design.demands, design.links
    alpha = scenario.physics.alpha_db_per_km
    problems: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    if len(links):
        lk = links.set_index(links["link_id"].astype(str))
        p_seg = 10.0 ** (-alpha * lk["spacing_km"].astype(float) / 10.0)
        bad = np.abs(p_seg - lk["p_link"].astype(float)) > 1e-9 * np.maximum(p_seg, 1e-300) + 1e-15
        for lid in lk.index[bad.to_numpy()]:
            logger.warning(
                "link %s: p_link %.6g is not Eq. 7 of spacing %.6g km",
                lid,
                lk.at[lid, "p_link"],
                lk.at[lid, "spacing_km"],
            )
    for rec in dem.itertuples(index=False):
        did = str(rec.demand_id)
        ids = [x for x in str(getattr(rec, "links", "")).split(";") if x]
        if not len(links) or not ids or any(x not in lk.index for x in ids):
            rows.append(
                {
                    "demand_id": did,
                    "hops": None,
                    "p_worst": None,
                    "memory": None,
                    "distances_km": None,
                    "rate_shared_factor": None,
                }
            )
            if ids:
                problems.setdefault(did, []).append("path uses links missing from the links table")
            continue
        sub = lk.loc[ids]
        reps = sub["repeaters"].astype(int).to_numpy()
        seg = sub["spacing_km"].astype(float).to_numpy()
        mem = sub["memory_units"].astype(float).to_numpy()
        use = (
            np.maximum(sub["demands_using"].astype(float).to_numpy(), 1.0)
            if "demands_using" in sub
            else np.ones(len(sub))
        )
        p = 10.0 ** (-alpha * seg / 10.0)
        hops = int((reps + 1).sum())
        p_worst = float(p.min())
        memory = float(mem.min())
        dist = tuple(float(s) for s, r in zip(seg, reps, strict=True) for _ in range(int(r) + 1))
        # memory time-shared equally between the demands of each link: bottleneck of m_l p_l / u_l
        shared = float((mem * p / use).min() / (memory * p_worst)) if memory * p_worst > 0 else None
        rows.append(
            {
                "demand_id": did,
                "hops": hops,
                "p_worst": p_worst,
                "memory": memory,
                "distances_km": dist,
                "rate_shared_factor": shared,
            }
        )
        if "hops" in dem.columns and _finite(getattr(rec, "hops", None)) and int(rec.hops) != hops:
            problems.setdefault(did, []).append(
                f"demands.hops = {int(rec.hops)} but its links give {hops}"
            )
        if (
            "p_worst" in dem.columns
            and _finite(getattr(rec, "p_worst", None))
            and not math.isclose(float(rec.p_worst), p_worst, rel_tol=1e-6)
        ):
            problems.setdefault(did, []).append(
                f"demands.p_worst = {float(rec.p_worst):.6g} but its links give {p_worst:.6g}"
            )
    table = pd.DataFrame(
        rows,
        columns=["demand_id", "hops", "p_worst", "memory", "distances_km", "rate_shared_factor"],
    )
    table["problems"] = ["; ".join(problems.get(d, [])) for d in table["demand_id"]]
    return table


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _float_or_none(x: Any) -> float | None:
    return float(x) if _finite(x) else None


# ---------------------------------------------------------------------------
# intra-cluster
# ---------------------------------------------------------------------------


def _simulate_clusters(
    design: Design, scenario: Scenario, sizes: SampleSizes, seed: int
) -> list[dict[str, Any]]:
    from planner import physics
    from planner.simulate.access import simulate_cluster_keys_per_attempt

    acc, mem, ph = scenario.access, scenario.memory, scenario.physics
    lifetime = math.inf if mem.lifetime_s <= 0 else float(mem.lifetime_s)
    rows = []
    for i, c in enumerate(design.clusters.itertuples(index=False)):
        n_slaves = int(c.n_slaves)
        m_master = int(getattr(c, "memory_master", mem.master_units))
        m_slave = int(getattr(c, "memory_slave", mem.slave_units))
        predicted = float(c.keys_per_attempt)
        row: dict[str, Any] = {
            "cluster": str(c.cluster),
            "master": str(c.master),
            "n_slaves": n_slaves,
            "ekert_pairs": int(c.ekert_pairs),
            "memory_master": m_master,
            "memory_slave": m_slave,
            "keys_predicted": predicted,
            "slots": sizes.access_slots,
            "lifetime_s": _float_or_none(lifetime),
        }
        problems = []
        if int(c.ekert_pairs) != n_slaves // 2:
            problems.append(
                f"ekert_pairs = {int(c.ekert_pairs)} but floor({n_slaves}/2) = {n_slaves // 2} (Eq. 5)"
            )
        if n_slaves < 2:
            problems.append(f"cluster has {n_slaves} slave(s); Eq. 5-6 need at least 2")
            row.update(
                keys_simulated=None,
                keys_ci_low=None,
                keys_ci_high=None,
                keys_eq6=None,
                keys_expected=None,
            )
        else:
            res = simulate_cluster_keys_per_attempt(
                n_slaves,
                r_mdi=acc.r_mdi,
                r_ekr=acc.r_ekr,
                memory_master=m_master,
                memory_slave=m_slave,
                lifetime_s=lifetime,
                epr_rate_hz=mem.epr_rate_hz,
                t_mea_s=ph.t_mea_s,
                t_ret_s=ph.t_ret_s,
                slots=sizes.access_slots,
                level=LEVEL,
                seed=_seed(seed, "cluster", i),
            )
            row.update(
                keys_simulated=res.keys.value,
                keys_ci_low=res.keys.low,
                keys_ci_high=res.keys.high,
                keys_mdi=res.keys_mdi,
                keys_ekert=res.keys_ekert,
                keys_expected=res.analytic,
                keys_eq6=float(
                    physics.cluster_keys_per_attempt(
                        n_slaves,
                        r_mdi=acc.r_mdi,
                        r_ekr=acc.r_ekr,
                        memory_master=m_master,
                        memory_slave=m_slave,
                    )
                ),
            )
        row["problems"] = "; ".join(problems)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# key-request traffic over shared link key pools
# ---------------------------------------------------------------------------


def _pool_traffic(
    results: list[dict[str, Any]], requests: list[int], pool_bits: int, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Serve every pair's requests in random order from shared link key pools.

    A request of an ``eps``-capable pair needs, on every link of its route, ``load x
    block`` pad bits (``block`` = path-key bits so that its global keys make
    :data:`REQUEST_KEY_BITS`); it is served only if every such link still holds them
    (no partial service), else blocked. Pairs that cannot meet ``eps`` refuse their
    requests. Returns per-pair outcomes (in ``results`` order) and per-link usage.
    """
    remaining: dict[tuple[str, str], int] = {}
    used_by: dict[tuple[str, str], int] = {}
    need: list[list[tuple[tuple[str, str], int]]] = []
    for res in results:
        m = int(res.get("global_keys", 0) or 0)
        if not res.get("eps_met") or m == 0:
            need.append([])
            continue
        block = 8 * math.ceil(REQUEST_KEY_BITS / m / 8)
        items = []
        for u, v, load in res.get("link_load", []):
            e = (u, v)
            remaining.setdefault(e, pool_bits)
            used_by[e] = used_by.get(e, 0) + 1
            items.append((e, int(load) * block))
        need.append(items)
    order = rng.permutation(np.repeat(np.arange(len(results)), requests))
    served = np.zeros(len(results), dtype=np.int64)
    blocked = np.zeros(len(results), dtype=np.int64)
    first_block: list[int | None] = [None] * len(results)
    consumed = np.zeros(len(results), dtype=np.int64)
    for i in order:
        items = need[i]
        if not items:
            continue
        if all(remaining[e] >= b for e, b in items):
            for e, b in items:
                remaining[e] -= b
            served[i] += 1
            consumed[i] += sum(b for _, b in items)
        else:
            blocked[i] += 1
            if first_block[i] is None:
                first_block[i] = int(served[i])
    pairs = []
    for i, items in enumerate(need):
        refused = requests[i] if not items else 0
        depletion = max(((pool_bits - remaining[e]) / pool_bits for e, _ in items), default=None)
        pairs.append(
            {
                "requests": int(requests[i]),
                "requests_served": int(served[i]),
                "requests_refused_eps": int(refused),
                "requests_blocked_pool": int(blocked[i]),
                "key_bits_delivered": int(served[i]) * REQUEST_KEY_BITS,
                "link_bits_consumed": int(consumed[i]),
                "key_pool_depletion": depletion,
                "served_before_pool_block": first_block[i],
            }
        )
    links = [
        {
            "u": e[0],
            "v": e[1],
            "pool_bits": pool_bits,
            "consumed_bits": pool_bits - r,
            "depletion": (pool_bits - r) / pool_bits,
            "pairs_using": used_by[e],
        }
        for e, r in sorted(remaining.items())
    ]
    return pairs, links


# ---------------------------------------------------------------------------
# the public entry points
# ---------------------------------------------------------------------------


def simulate_design(
    design: Design,
    *,
    requests: int = 200,
    duration_s: float | None = None,
    seed: int = 0,
    network: Network | None = None,
    tolerance: Mapping[str, float] | None = None,
    latency_pairs: int = DEFAULT_LATENCY_PAIRS,
    backend: Backend | None = None,
    workers: int | None = None,
    scheduler_address: str | None = None,
) -> dict[str, Any]:
    """Simulate key-request traffic over ``design`` and compare with its predictions.

    ``requests``: key requests per inter-cluster pair (sets every sample size, see
    :func:`sample_sizes`); ``duration_s``: simulated seconds of traffic instead;
    ``seed``: root of every random draw; ``network``: the network the design was
    planned on (else it is found by :func:`fibre_graph`); ``tolerance``: overrides of
    :data:`DEFAULT_TOLERANCE`; ``latency_pairs``: how many pairs (largest predicted
    latency first) also get the slot-level physical chain simulation; ``backend`` /
    ``workers`` / ``scheduler_address``: how the per-pair batches run
    (:func:`planner.runtime.parallel.map_tasks`; a scheduler address means Dask); by default
    the executor set with :func:`planner.runtime.parallel.use_executor` (the CLI's
    ``--workers`` / ``--scheduler``), else local processes on all cores.

    Returns a JSON-ready dict with ``pairs`` (one row per cluster and per demand;
    columns :data:`PAIR_COLUMNS`), ``clusters``, ``links`` (key-pool usage per fibre
    link), ``totals``, ``worst``, ``tolerance``, ``level``, ``samples``, ``seed``,
    ``notes``. Guarantees: the same design, arguments and seed give the same dict
    (independent of ``backend`` and ``workers``); every pair whose prediction lies
    outside the simulated 99% CI and differs by more than the tolerance, or whose
    tables are inconsistent, has ``flagged = True`` and a ``flag_reason``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValidationError(f"seed={seed!r} must be an integer >= 0", source="simulate")
    tol = dict(DEFAULT_TOLERANCE)
    for key, value in (tolerance or {}).items():
        if key not in tol or not (isinstance(value, int | float) and value >= 0):
            raise ValidationError(
                f"tolerance[{key!r}]={value!r}: use keys {sorted(tol)} with values >= 0",
                source="simulate",
            )
        tol[key] = float(value)
    if isinstance(latency_pairs, bool) or int(latency_pairs) != latency_pairs or latency_pairs < 0:
        raise ValidationError(
            f"latency_pairs={latency_pairs!r} must be an integer >= 0", source="simulate"
        )
    t0 = time.perf_counter()
    backend, workers, scheduler_address = _executor(backend, workers, scheduler_address)
    scenario = _scenario(design)
    ph, sec = scenario.physics, scenario.security
    sizes = sample_sizes(requests=requests, duration_s=duration_s, attempt_time_s=ph.attempt_time_s)
    notes: list[str] = []

    cluster_rows = _simulate_clusters(design, scenario, sizes, int(seed))

    dem = design.demands.reset_index(drop=True)
    has_rate = (
        len(dem) > 0 and "rate" in dem.columns and "links" in dem.columns and len(design.links) > 0
    )
    has_security = (
        len(dem) > 0
        and "security" in dem.columns
        and len(design.relays) > 0
        and "trusted" in design.relays.columns
    )
    chains = _chains(design, scenario) if len(dem) else pd.DataFrame()
    graph = None
    graph_exact = True
    trusted: frozenset[str] = frozenset()
    security: dict[str, float] = {}
    if has_security:
        graph, graph_source, graph_exact = fibre_graph(design, scenario, network=network)
        notes.append(f"SMR routing ran on: {graph_source}.")
        if not graph_exact:
            notes.append(
                "Security differences are reported but not flagged: the fibre graph is incomplete."
            )
        r = design.relays
        trusted = frozenset(r.loc[r["trusted"].astype(bool), "site_id"].astype(str))
        security = {str(s): float(p) for s, p in zip(r["site_id"], r["p_untrusted"], strict=True)}

    latency_slots = (
        _latency_selection(dem, chains, int(latency_pairs)) if has_rate and latency_pairs else {}
    )
    latency_ids = set(latency_slots)

    specs = []
    pair_requests = []
    for i, rec in enumerate(dem.itertuples(index=False)):
        ch = chains.iloc[i]
        rate_pred = _float_or_none(getattr(rec, "rate", None))
        n_req, cycles = sizes.for_pair(rate_pred, ph.attempt_time_s)
        pair_requests.append(n_req)
        use_chain = has_rate and ch["hops"] is not None and not pd.isna(ch["hops"])
        phys = use_chain and i in latency_ids
        slots = latency_slots.get(i, PHYSICAL_MIN_SLOTS)
        specs.append(
            _DemandSpec(
                index=i,
                demand_id=str(rec.demand_id),
                source=str(rec.source),
                target=str(rec.target),
                hops=int(ch["hops"]) if use_chain else None,
                p_worst=float(ch["p_worst"]) if use_chain else None,
                memory=float(ch["memory"]) if use_chain else None,
                cycles=cycles,
                security_trials=n_req * sizes.eavesdroppers_per_request,
                distances_km=ch["distances_km"] if phys else None,
                physical_slots=slots,
                chain_seed=_seed(seed, "chain", i),
                key_seed=_seed(seed, "keys", i),
                physical_seed=_seed(seed, "physical", i),
            )
        )
    ctx = _Context(
        graph=graph,
        trusted=trusted,
        security=security,
        eps=sec.eps,
        q=ph.q_swap,
        alpha_db_per_km=ph.alpha_db_per_km,
        speed_km_per_s=ph.speed_km_per_s,
        t_mea_s=ph.t_mea_s,
        t_ret_s=ph.t_ret_s,
        attempt_time_s=ph.attempt_time_s,
        level=LEVEL,
    )
    results = _run_batches(ctx, specs, backend=backend, workers=workers, scheduler_address=scheduler_address)

    pool_pairs: list[dict[str, Any]] = [{} for _ in results]
    pool_links: list[dict[str, Any]] = []
    if has_security:
        pool_pairs, pool_links = _pool_traffic(
            results,
            pair_requests,
            int(sec.key_pool_bits),
            np.random.default_rng(_seed(seed, "traffic", 0)),
        )

    pairs = [_cluster_pair_row(c, tol) for c in cluster_rows]
    for i, rec in enumerate(dem.itertuples(index=False)):
        pairs.append(
            _demand_pair_row(
                rec,
                chains.iloc[i],
                specs[i],
                results[i],
                pool_pairs[i],
                ph,
                tol,
                has_rate=has_rate,
                has_security=has_security,
                security_exact=graph_exact,
            )
        )
    if has_rate:
        notes.append(
            "Rates are end-to-end pairs per attempt (inter-cluster) and key bits per attempt "
            "(intra-cluster); the chain is rebuilt from the links table with p of its longest segment, "
            "as Eq. 9 is stated for a homogeneous chain."
        )
        if latency_ids:
            notes.append(
                f"Latency: {len(latency_ids)} pair(s) with the largest Eq. 10 latency (within a work budget) ran the "
                "slot-level physical protocol; Eq. 10 as printed divides Eq. 8 times (which contain 1/p) "
                "by the Eq. 9 rate (which contains p), so it exceeds the simulated time to the first "
                "pair by orders of magnitude (see docs/simulation_check.md)."
            )
    if not has_security and len(dem):
        notes.append(
            "No trusted-relay layer in this design: security, eps and key pools were not simulated."
        )
    n_flag = sum(1 for p in pairs if p["flagged"])
    logger.info(
        "simulated %d pairs in %.1f s; %d flagged", len(pairs), time.perf_counter() - t0, n_flag
    )
    sim = {
        "schema_version": SIM_SCHEMA_VERSION,
        "network": design.network_name,
        "scenario": scenario.name,
        "seed": int(seed),
        "level": LEVEL,
        "tolerance": tol,
        "samples": {
            "requests": sizes.requests,
            "duration_s": sizes.duration_s,
            "access_slots": sizes.access_slots,
            "chain_cycles": sizes.chain_cycles,
            "eavesdroppers_per_request": sizes.eavesdroppers_per_request,
            "request_key_bits": REQUEST_KEY_BITS,
            "latency_pairs": len(latency_ids),
            "physical_trials": PHYSICAL_TRIALS,
        },
        "pairs": pairs,
        "clusters": cluster_rows,
        "links": pool_links,
        "totals": {
            **_totals(pairs, pool_links),
            "security_verified": bool(has_security and graph_exact),
        },
        "worst": _worst(pairs),
        "notes": notes,
    }
    return _json_ready(sim)


def _latency_selection(dem: pd.DataFrame, chains: pd.DataFrame, n: int) -> dict[int, int]:
    """Pairs for the slot-level physical simulation and their slot counts.

    Largest predicted (Eq. 10) latency first; each gets ``ceil(8 / rate)`` slots (about
    eight pairs per trial, at least :data:`PHYSICAL_MIN_SLOTS`). Skipped: pairs that
    would need more than :data:`PHYSICAL_MAX_SLOTS` slots (their trials would end before
    a first pair) and pairs whose hops x slots exceed what is left of
    :data:`PHYSICAL_BUDGET_HOP_SLOTS`, so a run's cost stays bounded.
    """
    if "latency_s" not in dem.columns or "rate" not in dem.columns:
        return {}
    lat = pd.to_numeric(dem["latency_s"], errors="coerce")
    left = PHYSICAL_BUDGET_HOP_SLOTS
    chosen: dict[int, int] = {}
    for i in lat.dropna().sort_values(ascending=False, kind="mergesort").index:
        rate, hops = _float_or_none(dem.at[i, "rate"]), chains.at[i, "hops"]
        if not rate or rate <= 0 or hops is None or pd.isna(hops):
            continue
        if not float(chains.at[i, "p_worst"]) >= MIN_SIMULATED_P:
            continue
        if math.ceil(8.0 / rate) > PHYSICAL_MAX_SLOTS:  # the trials would end before a first pair
            continue
        slots = max(PHYSICAL_MIN_SLOTS, math.ceil(8.0 / rate))
        if slots * int(hops) > left:
            continue
        chosen[int(i)] = slots
        left -= slots * int(hops)
        if len(chosen) == n:
            break
    return chosen


def _executor(
    backend: Backend | None, workers: int | None, scheduler_address: str | None
) -> tuple[Backend, int | None, str | None]:
    """Resolve the simulation's executor: explicit arguments, else the process-wide one, else processes."""
    from planner.runtime.parallel import current_executor

    if scheduler_address:
        return "dask", workers, scheduler_address
    if backend is not None:
        return backend, workers, None
    ex = current_executor()
    if ex.backend != "serial" or ex.workers == 1:
        return ex.backend, workers or ex.workers, ex.scheduler_address
    return "process", workers or ex.workers, None


def _run_batches(
    ctx: _Context,
    specs: list[_DemandSpec],
    *,
    backend: Backend,
    workers: int | None,
    scheduler_address: str | None = None,
) -> list[dict[str, Any]]:
    if not specs:
        return []
    from planner.runtime.parallel import default_workers

    nw = workers or default_workers()
    n_batches = 1 if backend == "serial" or nw <= 1 else min(len(specs), 4 * nw)
    # interleave so that expensive pairs (the latency subset, long chains) spread over batches
    batches = [_Batch(ctx, tuple(specs[b::n_batches])) for b in range(n_batches)]
    done = map_tasks(
        _run_batch, batches, backend=backend, workers=workers, scheduler_address=scheduler_address
    )
    out: list[dict[str, Any]] = [{} for _ in specs]
    for chunk in done:
        for res in chunk:
            out[int(res["index"])] = res
    return out


def _flag_rate(
    pred: float | None, sim: float | None, low: float | None, high: float | None, tol: float
) -> tuple[float | None, str | None]:
    if pred is None or sim is None or low is None or high is None:
        return None, None
    rel = (sim - pred) / pred if pred > 0 else (math.inf if sim > 0 else 0.0)
    if not (low <= pred <= high) and abs(rel) > tol:
        return rel, (
            f"rate: predicted {pred:.4g} outside simulated 99% CI [{low:.4g}, {high:.4g}] "
            f"({100 * rel:+.1f}%)"
        )
    return rel, None


def _flag_security(
    label: str,
    pred: float | None,
    sim: float | None,
    low: float | None,
    high: float | None,
    tol: float,
) -> tuple[float | None, str | None]:
    if pred is None or sim is None or low is None or high is None:
        return None, None
    err = sim - pred
    if not (low - 1e-12 <= pred <= high + 1e-12) and abs(err) > tol:
        return err, (
            f"{label}: predicted {pred:.4g} outside simulated 99% CI [{low:.4g}, {high:.4g}] "
            f"({err:+.3f})"
        )
    return err, None


def _cluster_pair_row(c: dict[str, Any], tol: dict[str, float]) -> dict[str, Any]:
    pred, sim = c["keys_predicted"], c.get("keys_simulated")
    rel, reason = _flag_rate(
        pred, sim, c.get("keys_ci_low"), c.get("keys_ci_high"), tol["rate_rel"]
    )
    reasons = [x for x in (c.get("problems"), reason) if x]
    c["rate_rel_error"] = rel
    c["flagged"] = bool(reasons)
    c["flag_reason"] = "; ".join(reasons)
    row = dict.fromkeys(PAIR_COLUMNS)
    row.update(
        pair=f"cluster {c['cluster']}",
        kind="intra-cluster",
        source=c["master"],
        target=f"{c['n_slaves']} slaves",
        rate_unit="key bits/attempt",
        rate_predicted=pred,
        rate_simulated=sim,
        rate_ci_low=c.get("keys_ci_low"),
        rate_ci_high=c.get("keys_ci_high"),
        rate_rel_error=rel,
        flagged=bool(reasons),
        flag_reason="; ".join(reasons),
        memory=c["memory_master"],
        chain_cycles=None,
    )
    return row


def _demand_pair_row(
    rec: Any,
    chain: pd.Series,
    spec: _DemandSpec,
    res: dict[str, Any],
    pool: dict[str, Any],
    ph: Any,
    tol: dict[str, float],
    *,
    has_rate: bool,
    has_security: bool,
    security_exact: bool = True,
) -> dict[str, Any]:
    row = dict.fromkeys(PAIR_COLUMNS)
    reasons = [chain["problems"]] if chain.get("problems") else []
    rate_pred = _float_or_none(getattr(rec, "rate", None)) if has_rate else None
    sim = res.get("rate_simulated")
    rel, reason = _flag_rate(
        rate_pred, sim, res.get("rate_ci_low"), res.get("rate_ci_high"), tol["rate_rel"]
    )
    if reason:
        reasons.append(reason)
    sec_pred = _float_or_none(getattr(rec, "security", None)) if has_security else None
    err, sreason = _flag_security(
        "security",
        sec_pred,
        res.get("security_simulated"),
        res.get("security_ci_low"),
        res.get("security_ci_high"),
        tol["security_abs"],
    )
    if sreason and security_exact:
        reasons.append(sreason)
    if (
        security_exact
        and sec_pred is not None
        and res.get("security_route") is not None
        and not math.isclose(sec_pred, res["security_route"], rel_tol=1e-6, abs_tol=1e-9)
    ):
        reasons.append(
            f"security: SMR on the fibre graph gives {res['security_route']:.4g}, the design states "
            f"{sec_pred:.4g}"
        )
    single = _float_or_none(getattr(rec, "security_single_path", None)) if has_security else None
    if sec_pred is not None and single is not None and sec_pred < single - tol["security_abs"]:
        reasons.append(
            f"routing: SMR security {sec_pred:.4g} is below the best single path's {single:.4g} "
            f"(segments {res.get('segments')}, paths {res.get('paths')}: a segment lost its paths)"
        )
    _, ereason = _flag_security(
        "eps-key security",
        res.get("security_eps_predicted"),
        res.get("security_eps_simulated"),
        res.get("security_eps_ci_low"),
        res.get("security_eps_ci_high"),
        tol["security_abs"],
    )
    if ereason:
        reasons.append(ereason)
    # one attempt slot lasts the scenario's attempt time, but at least the longest hop's flight time
    hops_km = chain.get("distances_km")
    longest_km = max(hops_km) if isinstance(hops_km, tuple) and hops_km else 0.0
    slot_s = max(ph.attempt_time_s, longest_km / ph.speed_km_per_s)
    shared = chain.get("rate_shared_factor")
    row.update(
        pair=str(rec.demand_id),
        kind="inter-cluster",
        source=str(rec.source),
        target=str(rec.target),
        rate_unit="pairs/attempt",
        rate_predicted=rate_pred,
        rate_simulated=sim,
        rate_ci_low=res.get("rate_ci_low"),
        rate_ci_high=res.get("rate_ci_high"),
        rate_rel_error=rel,
        security_predicted=sec_pred,
        security_simulated=res.get("security_simulated"),
        security_ci_low=res.get("security_ci_low"),
        security_ci_high=res.get("security_ci_high"),
        security_abs_error=err,
        flagged=bool(reasons),
        flag_reason="; ".join(reasons),
        hops=spec.hops,
        p_worst=spec.p_worst,
        memory=spec.memory,
        chain_cycles=spec.cycles if spec.hops is not None else None,
        rate_shared=(sim * shared) if sim is not None and _finite(shared) else None,
        time_per_pair_s=(slot_s / sim) if sim else None,
        latency_predicted_s=_float_or_none(getattr(rec, "latency_s", None)) if has_rate else None,
        latency_first_pair_s=res.get("latency_first_pair_s"),
        latency_ci_low_s=res.get("latency_ci_low_s"),
        latency_ci_high_s=res.get("latency_ci_high_s"),
        rate_physical=res.get("rate_physical"),
        security_route=res.get("security_route"),
        paths=res.get("paths"),
        segments=res.get("segments"),
        eps_met=res.get("eps_met"),
        global_keys=res.get("global_keys"),
        security_eps_predicted=res.get("security_eps_predicted"),
        security_eps_simulated=res.get("security_eps_simulated"),
        security_trials=res.get("security_trials"),
    )
    row.update(pool)
    row["note"] = res.get("chain_note")
    return row


def _totals(pairs: list[dict[str, Any]], links: list[dict[str, Any]]) -> dict[str, Any]:
    df = pd.DataFrame(pairs, columns=PAIR_COLUMNS)
    inter = df[df["kind"] == "inter-cluster"]
    intra = df[df["kind"] == "intra-cluster"]

    def col(frame: pd.DataFrame, name: str) -> pd.Series:
        return pd.to_numeric(frame[name], errors="coerce")

    def agg(frame: pd.DataFrame, name: str, how: str) -> float | None:
        s = col(frame, name).dropna()
        return float(getattr(s, how)()) if len(s) else None

    def count(frame: pd.DataFrame, name: str) -> int:
        return int(col(frame, name).fillna(0).sum())

    return {
        "n_pairs": len(df),
        "n_inter_cluster": len(inter),
        "n_intra_cluster": len(intra),
        "n_flagged": int(df["flagged"].astype(bool).sum()) if len(df) else 0,
        "n_rate_not_simulated": int(
            (inter["rate_predicted"].notna() & inter["rate_simulated"].isna()).sum()
        ),
        "flagged_pairs": [str(p) for p in df.loc[df["flagged"].astype(bool), "pair"]]
        if len(df)
        else [],
        "inter_rate_predicted_sum": agg(inter, "rate_predicted", "sum"),
        "inter_rate_simulated_sum": agg(inter, "rate_simulated", "sum"),
        "inter_rate_shared_sum": agg(inter, "rate_shared", "sum"),
        "inter_rate_simulated_min": agg(inter, "rate_simulated", "min"),
        "intra_keys_predicted_sum": agg(intra, "rate_predicted", "sum"),
        "intra_keys_simulated_sum": agg(intra, "rate_simulated", "sum"),
        "max_abs_rate_rel_error": agg(df.assign(a=col(df, "rate_rel_error").abs()), "a", "max"),
        "max_abs_security_error": agg(df.assign(a=col(df, "security_abs_error").abs()), "a", "max"),
        "security_predicted_min": agg(inter, "security_predicted", "min"),
        "security_simulated_min": agg(inter, "security_simulated", "min"),
        "latency_predicted_max_s": agg(inter, "latency_predicted_s", "max"),
        "latency_first_pair_max_s": agg(inter, "latency_first_pair_s", "max"),
        "n_eps_met": int(inter["eps_met"].fillna(False).astype(bool).sum()) if len(inter) else 0,
        "requests": count(inter, "requests"),
        "requests_served": count(inter, "requests_served"),
        "requests_refused_eps": count(inter, "requests_refused_eps"),
        "requests_blocked_pool": count(inter, "requests_blocked_pool"),
        "key_bits_delivered": count(inter, "key_bits_delivered"),
        "link_bits_consumed": count(inter, "link_bits_consumed"),
        "fibre_links_used": len(links),
        "fibre_links_depleted_90pct": sum(1 for x in links if x["depletion"] >= 0.9),
        "max_link_depletion": max((x["depletion"] for x in links), default=None),
    }


def _worst(pairs: list[dict[str, Any]], n: int = 5) -> dict[str, list[dict[str, Any]]]:
    df = pd.DataFrame(pairs, columns=PAIR_COLUMNS)
    keep = [
        "pair",
        "kind",
        "rate_predicted",
        "rate_simulated",
        "rate_rel_error",
        "security_predicted",
        "security_simulated",
        "security_abs_error",
        "flagged",
    ]

    def top(frame: pd.DataFrame, key: pd.Series, ascending: bool) -> list[dict[str, Any]]:
        order = key.dropna().sort_values(ascending=ascending, kind="mergesort").index[:n]
        return frame.loc[order, keep].to_dict(orient="records")

    inter = df[df["kind"] == "inter-cluster"]
    return {
        "rate_gap": top(df, pd.to_numeric(df["rate_rel_error"], errors="coerce").abs(), False),
        "security_gap": top(
            df, pd.to_numeric(df["security_abs_error"], errors="coerce").abs(), False
        ),
        "lowest_rate": top(inter, pd.to_numeric(inter["rate_simulated"], errors="coerce"), True),
        "lowest_security": top(
            inter, pd.to_numeric(inter["security_simulated"], errors="coerce"), True
        ),
    }


#: Columns of ``pairs`` worth showing in a report table (the CSV has all of them).
REPORT_COLUMNS = [
    "pair",
    "kind",
    "rate_predicted",
    "rate_simulated",
    "rate_ci_low",
    "rate_ci_high",
    "rate_rel_error",
    "security_predicted",
    "security_simulated",
    "security_abs_error",
    "latency_predicted_s",
    "latency_first_pair_s",
    "eps_met",
    "requests_served",
    "key_pool_depletion",
    "flagged",
    "flag_reason",
]


def summary_lines(sim: Mapping[str, Any]) -> list[str]:
    """Plain-text sentences summarising a simulation (for reports and the CLI).

    Covers, where simulated: the rate and security agreement with their tolerances,
    eps, key-pool use, Eq. 10 vs the simulated first-pair time, the rate under full
    concurrent load, and the run's notes.
    """
    t, tol = sim.get("totals", {}), sim.get("tolerance", {})
    pairs = pd.DataFrame(sim.get("pairs", []), columns=PAIR_COLUMNS)
    out = [
        f"{t.get('n_flagged', 0)} of {t.get('n_pairs', len(pairs))} pairs flagged (prediction outside the "
        f"simulated 99% CI and more than {100 * tol.get('rate_rel', 0):g}% off in rate or "
        f"{tol.get('security_abs', 0):g} off in security, or inconsistent design tables)."
    ]
    if t.get("max_abs_rate_rel_error") is not None:
        out.append(
            f"Largest rate gap: {100 * t['max_abs_rate_rel_error']:.2f}% over "
            f"{t.get('n_intra_cluster', 0)} clusters and {t.get('n_inter_cluster', 0)} demands."
        )
    if t.get("max_abs_security_error") is not None:
        how = "" if t.get("security_verified", True) else " (fibre graph incomplete: not flagged)"
        out.append(
            f"Largest security gap: {t['max_abs_security_error']:.3f}{how}; lowest simulated security "
            f"{t.get('security_simulated_min', 0):.3g}."
        )
    if t.get("requests"):
        out.append(
            f"eps met by {t.get('n_eps_met', 0)} of {t.get('n_inter_cluster', 0)} demands; key requests "
            f"served {t.get('requests_served', 0)} of {t['requests']} ({t.get('requests_refused_eps', 0)} "
            f"refused: eps not met, {t.get('requests_blocked_pool', 0)} blocked: link key pool empty); "
            f"{t.get('fibre_links_depleted_90pct', 0)} of {t.get('fibre_links_used', 0)} fibre links used "
            "at least 90% of their pool."
        )
    lat = pairs.dropna(subset=["latency_first_pair_s", "latency_predicted_s"])
    if len(lat):
        ratio = lat["latency_predicted_s"].astype(float) / lat["latency_first_pair_s"].astype(float)
        out.append(
            f"Eq. 10 latency is {ratio.min():.3g} to {ratio.max():.3g} times the simulated time to the "
            f"first end-to-end pair ({len(lat)} pairs, slot-level protocol)."
        )
    if t.get("inter_rate_shared_sum") and t.get("inter_rate_predicted_sum"):
        out.append(
            f"With all demands active at once (each link's memory time-shared), the sum of demand rates is "
            f"{100 * t['inter_rate_shared_sum'] / t['inter_rate_predicted_sum']:.1f}% of the predicted sum."
        )
    if t.get("n_rate_not_simulated"):
        out.append(
            f"{t['n_rate_not_simulated']} demand rate(s) not simulated: a segment's success probability "
            f"is below {MIN_SIMULATED_P:g}, so the chain delivers practically nothing."
        )
    out.extend(str(n) for n in sim.get("notes", []))
    return out


def _json_ready(obj: Any) -> Any:
    """numpy scalars to Python, NaN/inf to None, floats rounded to 12 significant digits."""
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return float(f"{x:.12g}") if math.isfinite(x) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA:
        return None
    return str(obj)


def write_simulation_files(sim: dict[str, Any], folder: Path) -> list[Path]:
    """Write ``simulation.json`` (sorted keys) and ``simulation_pairs.csv``,
    ``simulation_clusters.csv``, ``simulation_links.csv`` into ``folder``; returns the paths.

    Guarantees: byte-identical files for identical ``sim`` dicts.
    """
    from planner.io.files import write_csv

    folder = Path(folder)
    if not folder.is_dir():
        raise InputFormatError(
            f"{folder}: not a folder; pass an existing output folder", source=str(folder)
        )
    data = _json_ready(sim)
    written = []
    p = folder / "simulation.json"
    p.write_text(
        json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
    )
    written.append(p)
    tables: Sequence[tuple[str, list[dict[str, Any]], list[str] | None]] = (
        ("simulation_pairs.csv", data.get("pairs", []), PAIR_COLUMNS),
        ("simulation_clusters.csv", data.get("clusters", []), None),
        (
            "simulation_links.csv",
            data.get("links", []),
            ["u", "v", "pool_bits", "consumed_bits", "depletion", "pairs_using"],
        ),
    )
    for name, records, columns in tables:
        p = folder / name
        write_csv(pd.DataFrame.from_records(records, columns=columns), p, index=False)
        written.append(p)
    return written
