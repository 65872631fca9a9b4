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
  bytes (:func:`planner.simulate.leaks.leak_trials`); the fraction of draws in which
  the end-to-end key (all path keys combined) stays secret vs ``demands.security``.
  Flexible reconstruction at the scenario's ``eps`` decides how many global keys a
  request gets; requests of :data:`REQUEST_KEY_BITS` bits from every pair, in random
  order, then draw one-time pads from shared link key pools of
  ``security.key_pool_bits`` bits, which shows key-pool depletion.

The work is split by job: sample sizes and seeds (:mod:`~planner.simulate.sampling`), the
fibre graph (:mod:`~planner.simulate.fibre`), chains rebuilt from the links table
(:mod:`~planner.simulate.chain_table`), clusters (:mod:`~planner.simulate.clusters`),
per-demand chain and key-level work in worker processes (:mod:`~planner.simulate.demand_work`),
key-pool traffic (:mod:`~planner.simulate.traffic`), comparison and flags
(:mod:`~planner.simulate.compare`) and the typed result (:mod:`~planner.simulate.result`);
this module prepares a run, runs those jobs in order and assembles the result.

A pair is **flagged** when the prediction lies outside the simulated 99% confidence
interval *and* the difference exceeds the tolerance (:data:`DEFAULT_TOLERANCE`), or
when the design's tables contradict each other (e.g. a demand's hop count differs
from its links). A flag means a bug in the model, the simulator or the pipeline's
prediction, never noise: the tolerances are several standard errors wide at the
default sample sizes.

Reproducibility: every random draw derives from ``seed`` through
:class:`numpy.random.SeedSequence` keyed by the pair, so results do not depend on how
pairs are split between worker processes; the returned
:class:`~planner.simulate.result.SimulationResult` is JSON-ready and holds no wall-clock figures.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from planner.errors import InputFormatError, ValidationError
from planner.model.design import Design
from planner.model.network import Network
from planner.model.scenario import Scenario, scenario_from_dict
from planner.physics import PhysicsParameters
from planner.runtime.parallel import Backend
from planner.simulate.chain_table import chains_from_links
from planner.simulate.clusters import simulate_clusters
from planner.simulate.compare import (
    PAIR_COLUMNS,
    cluster_pair_row,
    demand_pair_row,
    totals,
    worst_pairs,
)
from planner.simulate.demand_work import (
    DemandContext,
    DemandSpec,
    resolve_executor,
    run_batches,
)
from planner.simulate.fibre import fibre_graph
from planner.simulate.result import (
    REPORT_COLUMNS,
    SimulationResult,
    SimulationSamples,
    summary_lines,
    write_simulation_files,
)
from planner.simulate.sampling import (
    DEFAULT_LATENCY_PAIRS,
    DEFAULT_TOLERANCE,
    LEVEL,
    MIN_SIMULATED_P,
    PHYSICAL_BUDGET_HOP_SLOTS,
    PHYSICAL_MAX_SLOTS,
    PHYSICAL_MIN_SLOTS,
    PHYSICAL_TRIALS,
    REQUEST_KEY_BITS,
    SampleSizes,
    float_or_none,
    sample_sizes,
    stream_seed,
    wilson_interval,
)
from planner.simulate.traffic import pool_traffic

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TOLERANCE",
    "LEVEL",
    "PAIR_COLUMNS",
    "REPORT_COLUMNS",
    "REQUEST_KEY_BITS",
    "SampleSizes",
    "SimulationResult",
    "SimulationSamples",
    "fibre_graph",
    "sample_sizes",
    "simulate_design",
    "summary_lines",
    "wilson_interval",
    "write_simulation_files",
]


def _scenario(design: Design) -> Scenario:
    """The design's scenario, validated; a bad one is a bad design file."""
    try:
        return scenario_from_dict(design.scenario, source="design.json scenario")
    except (ValidationError, InputFormatError) as exc:
        raise InputFormatError(
            f"the design's scenario is not valid ({exc}); re-run 'qkdplan plan'",
            source="design.json",
        ) from None


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
) -> SimulationResult:
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

    Returns a :class:`SimulationResult` (JSON form :meth:`SimulationResult.to_dict`, also
    readable as a mapping) with ``pairs`` (one row per cluster and per demand; columns
    :data:`PAIR_COLUMNS`), ``clusters``, ``links`` (key-pool usage per fibre link),
    ``totals``, ``worst``, ``tolerance``, ``level``, ``samples``, ``seed``, ``notes``.
    Guarantees: the same design, arguments and seed give the same result (independent of
    ``backend`` and ``workers``); every pair whose prediction lies outside the simulated
    99% CI and differs by more than the tolerance, or whose tables are inconsistent, has
    ``flagged = True`` and a ``flag_reason``.
    """
    tol = _checked_arguments(seed, tolerance, latency_pairs)
    t0 = time.perf_counter()
    backend, workers, scheduler_address = resolve_executor(backend, workers, scheduler_address)
    scenario = _scenario(design)
    ph, sec = scenario.physics, scenario.security
    sizes = sample_sizes(requests=requests, duration_s=duration_s, attempt_time_s=ph.attempt_time_s)

    cluster_rows = simulate_clusters(design, scenario, sizes, int(seed))

    dem = design.demands.reset_index(drop=True)
    layers = _layers(design, dem)
    chains = chains_from_links(design, scenario) if len(dem) else pd.DataFrame()
    relays = _relay_layer(design, scenario, network) if layers.security else _RelayLayer()

    latency_slots = _latency_selection(dem, chains, int(latency_pairs)) if layers.rate and latency_pairs else {}
    specs, pair_requests = _demand_specs(
        dem, chains, sizes, ph.attempt_time_s, int(seed), has_rate=layers.rate, latency_slots=latency_slots
    )
    ctx = DemandContext(
        graph=relays.graph, trusted=relays.trusted, security=relays.security, eps=sec.eps, physics=ph, level=LEVEL
    )
    results = run_batches(ctx, specs, backend=backend, workers=workers, scheduler_address=scheduler_address)

    pool_pairs, pool_links = (
        _pool_traffic(results, pair_requests, int(sec.key_pool_bits), seed)
        if layers.security
        else ([{} for _ in results], [])
    )
    pairs = [cluster_pair_row(c, tol) for c in cluster_rows]
    pairs += _demand_pair_rows(dem, chains, specs, results, pool_pairs, ph, tol, layers=layers, relays=relays)
    n_flag = sum(1 for p in pairs if p["flagged"])
    logger.info("simulated %d pairs in %.1f s; %d flagged", len(pairs), time.perf_counter() - t0, n_flag)
    return SimulationResult.create(
        network=design.network_name,
        scenario=scenario.name,
        seed=int(seed),
        level=LEVEL,
        tolerance=tol,
        samples=_samples(sizes, n_latency=len(latency_slots)),
        pairs=pairs,
        clusters=cluster_rows,
        links=pool_links,
        totals={**totals(pairs, pool_links), "security_verified": bool(layers.security and relays.exact)},
        worst=worst_pairs(pairs),
        notes=[*relays.notes, *_run_notes(layers, n_demands=len(dem), n_latency=len(latency_slots))],
    )


def _pool_traffic(
    results: list[dict[str, Any]], pair_requests: list[int], pool_bits: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`~planner.simulate.traffic.pool_traffic` on the run's own random stream (``"traffic"``)."""
    return pool_traffic(results, pair_requests, pool_bits, np.random.default_rng(stream_seed(seed, "traffic", 0)))


def _demand_pair_rows(
    dem: pd.DataFrame,
    chains: pd.DataFrame,
    specs: list[DemandSpec],
    results: list[dict[str, Any]],
    pool_pairs: list[dict[str, Any]],
    ph: PhysicsParameters,
    tol: dict[str, float],
    *,
    layers: _Layers,
    relays: _RelayLayer,
) -> list[dict[str, Any]]:
    """One compared and flagged row per demand (in table order; columns :data:`PAIR_COLUMNS`)."""
    return [
        demand_pair_row(
            rec,
            chains.iloc[i],
            specs[i],
            results[i],
            pool_pairs[i],
            ph,
            tol,
            has_rate=layers.rate,
            has_security=layers.security,
            security_exact=relays.exact,
        )
        for i, rec in enumerate(dem.itertuples(index=False))
    ]


def _samples(sizes: SampleSizes, *, n_latency: int) -> SimulationSamples:
    """What a run with ``sizes`` simulated, ``n_latency`` pairs of them with the physical protocol."""
    return SimulationSamples(
        requests=sizes.requests,
        duration_s=sizes.duration_s,
        access_slots=sizes.access_slots,
        chain_cycles=sizes.chain_cycles,
        eavesdroppers_per_request=sizes.eavesdroppers_per_request,
        request_key_bits=REQUEST_KEY_BITS,
        latency_pairs=n_latency,
        physical_trials=PHYSICAL_TRIALS,
    )


def _checked_arguments(seed: int, tolerance: Mapping[str, float] | None, latency_pairs: int) -> dict[str, float]:
    """Check ``seed`` and ``latency_pairs``; the tolerances with ``tolerance``'s overrides applied."""
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
        raise ValidationError(f"latency_pairs={latency_pairs!r} must be an integer >= 0", source="simulate")
    return tol


@dataclass(frozen=True)
class _Layers:
    """Which layers of the design can be checked: repeater-chain rates, trusted-relay security."""

    rate: bool
    security: bool


def _layers(design: Design, dem: pd.DataFrame) -> _Layers:
    rate = len(dem) > 0 and "rate" in dem.columns and "links" in dem.columns and len(design.links) > 0
    security = (
        len(dem) > 0 and "security" in dem.columns and len(design.relays) > 0 and "trusted" in design.relays.columns
    )
    return _Layers(rate=bool(rate), security=bool(security))


@dataclass(frozen=True)
class _RelayLayer:
    """The trusted-relay layer of a run: fibre graph (None: not checked), whether it is exact,
    the trusted relays, every relay's probability of being honest, and notes about them."""

    graph: nx.Graph | None = None
    exact: bool = True
    trusted: frozenset[str] = frozenset()
    security: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _relay_layer(design: Design, scenario: Scenario, network: Network | None) -> _RelayLayer:
    graph, graph_source, exact = fibre_graph(design, scenario, network=network)
    notes = [f"SMR routing ran on: {graph_source}."]
    if not exact:
        notes.append("Security differences are reported but not flagged: the fibre graph is incomplete.")
    r = design.relays
    return _RelayLayer(
        graph=graph,
        exact=exact,
        trusted=frozenset(r.loc[r["trusted"].astype(bool), "site_id"].astype(str)),
        security={str(s): float(p) for s, p in zip(r["site_id"], r["p_untrusted"], strict=True)},
        notes=tuple(notes),
    )


def _demand_specs(
    dem: pd.DataFrame,
    chains: pd.DataFrame,
    sizes: SampleSizes,
    attempt_time_s: float,
    seed: int,
    *,
    has_rate: bool,
    latency_slots: dict[int, int],
) -> tuple[list[DemandSpec], list[int]]:
    """One :class:`DemandSpec` per demand (in table order) and each demand's number of key requests."""
    specs = []
    pair_requests = []
    for i, rec in enumerate(dem.itertuples(index=False)):
        ch = chains.iloc[i]
        rate_pred = float_or_none(getattr(rec, "rate", None))
        n_req, cycles = sizes.for_pair(rate_pred, attempt_time_s)
        pair_requests.append(n_req)
        use_chain = has_rate and ch["hops"] is not None and not pd.isna(ch["hops"])
        phys = use_chain and i in latency_slots
        specs.append(
            DemandSpec(
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
                physical_slots=latency_slots.get(i, PHYSICAL_MIN_SLOTS),
                chain_seed=stream_seed(seed, "chain", i),
                key_seed=stream_seed(seed, "keys", i),
                physical_seed=stream_seed(seed, "physical", i),
            )
        )
    return specs, pair_requests


def _run_notes(layers: _Layers, *, n_demands: int, n_latency: int) -> list[str]:
    """What the rates mean, what the latency check ran, and which layers were not checked."""
    notes = []
    if layers.rate:
        notes.append(
            "Rates are end-to-end pairs per attempt (inter-cluster) and key bits per attempt "
            "(intra-cluster); the chain is rebuilt from the links table with p of its longest segment, "
            "as Eq. 9 is stated for a homogeneous chain."
        )
        if n_latency:
            notes.append(
                f"Latency: {n_latency} pair(s) with the largest Eq. 10 latency (within a work budget) ran the "
                "slot-level physical protocol; Eq. 10 as printed divides Eq. 8 times (which contain 1/p) "
                "by the Eq. 9 rate (which contains p), so it exceeds the simulated time to the first "
                "pair by orders of magnitude (see docs/simulation_check.md)."
            )
    if not layers.security and n_demands:
        notes.append("No trusted-relay layer in this design: security, eps and key pools were not simulated.")
    return notes


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
        rate, hops = float_or_none(dem.at[i, "rate"]), chains.at[i, "hops"]
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
