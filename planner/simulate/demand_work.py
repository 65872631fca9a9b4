"""Per-demand simulation work of the design check: picklable tasks that run in worker processes.

A :class:`DemandSpec` says what to simulate for one demand (its repeater chain, the
slot-level physical protocol for the latency subset, its trusted-relay key distribution);
:class:`DemandContext` holds what every demand shares (fibre graph, trusted relays, the
scenario's :class:`~planner.physics.PhysicsParameters`). :func:`run_batches` spreads the
specs over :func:`planner.runtime.parallel.map_tasks`; every random draw comes from the
spec's own seeds, so the results do not depend on the batching.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from planner.keys.reconstruction import (
    GlobalKey,
    ReconstructionPlan,
    flexible_reconstruction,
    greedy_states,
)
from planner.physics import PhysicsParameters
from planner.routing import RelaySecurity, Router, check_endpoints, check_trusted, route_smr
from planner.runtime.parallel import Backend, current_executor, default_workers, map_tasks
from planner.simulate.chain import simulate_chain, simulate_chain_rate
from planner.simulate.leaks import leak_trials
from planner.simulate.sampling import MIN_SIMULATED_P, PHYSICAL_TRIALS, wilson_interval

__all__ = [
    "DRAWS_PER_DISTRIBUTION",
    "DemandContext",
    "DemandSpec",
    "MIN_SIMULATED_P",
    "PHYSICAL_TRIALS",
    "combined_plan",
    "resolve_executor",
    "run_batches",
    "shared_router",
    "simulate_demand",
]

#: Eavesdropper draws per fresh real-byte key distribution of a demand. Whether a draw
#: leaks depends on the route, the plan and the compromised relays, never on the bytes,
#: so fresh bytes only re-check the distribution (keys agree, the byte-level attack
#: agrees with the symbolic one); a few per demand suffice.
DRAWS_PER_DISTRIBUTION = 500


@dataclass(frozen=True)
class DemandSpec:
    """What to simulate for one demand (index ``index`` of the demands table).

    ``hops``/``p_worst``/``memory``: the rebuilt repeater chain (None: no chain rate);
    ``cycles``: end-to-end pairs of its Monte Carlo; ``security_trials``: eavesdropper draws;
    ``distances_km``: hop lengths for the slot-level physical protocol (None: not in the
    latency subset) run for ``physical_slots`` slots; the three seeds drive the three parts.
    """

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
class DemandContext:
    """What every demand of a run shares: the fibre graph (None: no trusted-relay layer), the
    trusted relays, each relay's probability of being honest (``security``), the scenario's
    ``eps``, its physics and the confidence ``level``."""

    graph: nx.Graph | None
    trusted: frozenset[str]
    security: Mapping[str, float]
    eps: float
    physics: PhysicsParameters
    level: float


@dataclass(frozen=True)
class DemandBatch:
    """A share of a run's demands, the unit of work of one task."""

    context: DemandContext
    specs: tuple[DemandSpec, ...]


def run_batch(batch: DemandBatch) -> list[dict[str, Any]]:
    """Simulate every demand of a batch (top-level so that worker processes can run it)."""
    router = shared_router(batch.context)
    return [simulate_demand(batch.context, spec, router) for spec in batch.specs]


def shared_router(ctx: DemandContext) -> Any:
    """One SMR router for every demand of a batch (None without a fibre graph).

    The graph's rank topology, the relay costs and the shortest-path distances are
    built once and shared, as the planner's trust stage does; every route equals
    :func:`planner.routing.smr` on the same graph, trusted set and security.
    """
    if ctx.graph is None:
        return None
    check_trusted(ctx.graph, ctx.trusted)
    relay = RelaySecurity(ctx.security, ctx.trusted)
    relay.validate(ctx.graph)
    return Router(ctx.graph, relay)


def simulate_demand(ctx: DemandContext, spec: DemandSpec, router: Any = None) -> dict[str, Any]:
    """Every simulation ``spec`` asks for: chain rate, physical protocol, key level (keyed by ``index``)."""
    out: dict[str, Any] = {"index": spec.index}
    if spec.hops is not None and spec.p_worst is not None and spec.memory is not None:
        out.update(_chain_rate(ctx, spec))
    if spec.distances_km is not None:
        out.update(_physical_chain(ctx, spec))
    if ctx.graph is not None:
        out.update(_key_level(ctx, spec, router if router is not None else shared_router(ctx)))
    return out


def _chain_rate(ctx: DemandContext, spec: DemandSpec) -> dict[str, Any]:
    """Monte Carlo of the demand's homogeneous chain (Eq. 9 protocol): pairs per attempt with its CI."""
    assert spec.hops is not None and spec.p_worst is not None and spec.memory is not None
    if not spec.p_worst >= MIN_SIMULATED_P:
        return {
            "chain_note": f"rate not simulated: worst segment p = {spec.p_worst:.3g} is below "
            f"{MIN_SIMULATED_P:g} (the chain would deliver practically nothing)"
        }
    res = simulate_chain_rate(
        spec.hops,
        p=min(1.0, spec.p_worst),
        q=ctx.physics.q_swap,
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


def _physical_chain(ctx: DemandContext, spec: DemandSpec) -> dict[str, Any]:
    """Slot-level physical protocol on the real hop lengths: rate and time to the first pair."""
    assert spec.distances_km is not None and spec.memory is not None
    d = np.asarray(spec.distances_km, dtype=float)
    slot_s = max(ctx.physics.attempt_time_s, float(d.max()) / ctx.physics.speed_km_per_s)
    res = simulate_chain(
        d,
        q=ctx.physics.q_swap,
        memory=max(1, int(spec.memory)),
        alpha_db_per_km=ctx.physics.alpha_db_per_km,
        schedule="nested",
        slots=spec.physical_slots,
        trials=PHYSICAL_TRIALS,
        attempt_time_s=slot_s,
        speed_km_per_s=ctx.physics.speed_km_per_s,
        t_mea_s=ctx.physics.t_mea_s,
        t_ret_s=ctx.physics.t_ret_s,
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


def _key_level(ctx: DemandContext, spec: DemandSpec, router: Any) -> dict[str, Any]:
    """SMR route of the demand (on ``router``, see :func:`shared_router`) and its eavesdropper trials."""
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


def resolve_executor(
    backend: Backend | None, workers: int | None, scheduler_address: str | None
) -> tuple[Backend, int | None, str | None]:
    """Resolve the simulation's executor: explicit arguments, else the process-wide one, else processes."""
    if scheduler_address:
        return "dask", workers, scheduler_address
    if backend is not None:
        return backend, workers, None
    ex = current_executor()
    if ex.backend != "serial" or ex.workers == 1:
        return ex.backend, workers or ex.workers, ex.scheduler_address
    return "process", workers or ex.workers, None


def run_batches(
    ctx: DemandContext,
    specs: list[DemandSpec],
    *,
    backend: Backend,
    workers: int | None,
    scheduler_address: str | None = None,
) -> list[dict[str, Any]]:
    """:func:`simulate_demand` of every spec on the executor, in ``specs`` order."""
    if not specs:
        return []
    nw = workers or default_workers()
    n_batches = 1 if backend == "serial" or nw <= 1 else min(len(specs), 4 * nw)
    # interleave so that expensive pairs (the latency subset, long chains) spread over batches
    batches = [DemandBatch(ctx, tuple(specs[b::n_batches])) for b in range(n_batches)]
    done = map_tasks(
        run_batch,
        batches,
        backend=backend,
        workers=workers,
        scheduler_address=scheduler_address,
        progress="simulating demand batches",
    )
    out: list[dict[str, Any]] = [{} for _ in specs]
    for chunk in done:
        for res in chunk:
            out[int(res["index"])] = res
    return out
