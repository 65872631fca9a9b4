"""Repeater placement on candidate sites as a backbone option (``backbone.repeaters = "placement"``).

Instead of equally spaced repeaters on every backbone link (:func:`planner.stages.repeaters.plan_repeaters`),
repeaters stand only at existing sites of the input network (RepAlloc setting,
:mod:`solvers.placement`). End nodes are the backbone nodes (cluster masters and
standalone sites); every other site is a candidate repeater site. Every pair of end
nodes gets one path ``s, r_1, ..., r_m, t`` with ``m <= N_max =
backbone.placement_max_repeaters``; consecutive nodes form an *elementary link* of
at most ``L_max`` km of shortest fibre route.

**Longest elementary link from the physics.** A path of ``k = m + 1 <= N_max + 1``
hops whose longest hop is ``d`` delivers, by Eq. 9 with Eq. 7 for ``p``,
``lam = M * p(d) * g(k, q)`` end-to-end pairs per attempt (``M`` = memory units per
link, ``p(d) = 10**(-alpha d / 10)``). ``g`` is non-increasing in ``k`` (``g(1) = 1 >=
g(2) = q >= g(3) >= ...``) and ``p`` decreases in ``d``, so every admissible path has
``lam >= M * p(L_max) * g(N_max + 1, q)``. Choosing

    ``L_max = 10 * log10(M * g(N_max + 1, q) / rate_target) / alpha``

(:func:`planner.physics.max_hop_km_for_rate`) is therefore the longest link for which
*every* path the model may choose still meets ``backbone.rate_target``, and no longer
uniform limit guarantees that (a path of ``N_max + 1`` hops with one hop longer than
``L_max`` misses the target). When ``M * g(N_max + 1, q) < rate_target`` no path of
that many hops can meet the target even with zero-length hops (the Eq. 9 bound); the
limit is then taken for the largest hop count that can, and the plan says so.

The stage replaces the backbone's links by the elementary links the paths use (each
a link with 0 repeaters between two sites; the repeater sites become its ends) and
routes each demand over its own placement path, so the design tables, the memory
stage and the simulator read the chain exactly as the placement model built it.
"""

from __future__ import annotations

import logging
import math

import networkx as nx
import numpy as np
import pandas as pd

from planner.errors import InfeasibleDesignError
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.physics import (
    chain_distribution_ratio,
    chain_latency_s,
    link_success_probability,
    max_hop_km_for_rate,
)
from planner.stages.backbone import Backbone
from planner.stages.result import PlacementResult, solver_errors, solver_options
from solvers.base import SolveResult
from solvers.placement import PlacementData, PlacementInputError, PlacementOptions, solve_placement

logger = logging.getLogger(__name__)


def placement_max_link_km(scenario: Scenario, *, memory_units: int | None = None) -> tuple[float, int]:
    """``(L_max km, N_max)``: the longest elementary link whose Eq. 9 rate still meets the target.

    ``N_max`` is ``backbone.placement_max_repeaters`` lowered, when needed, to the largest
    repeater count whose chains can meet ``backbone.rate_target`` at all. Returns
    ``(nan, -1)`` when not even a single hop of zero length meets the target
    (``M < rate_target``). A zero rate target gives an unbounded link (``inf``).
    """
    bbs, ph = scenario.backbone, scenario.physics
    m = scenario.memory.edge_units if memory_units is None else memory_units
    if bbs.rate_target <= 0:
        return math.inf, bbs.placement_max_repeaters
    for n_max in range(bbs.placement_max_repeaters, -1, -1):
        d = float(
            max_hop_km_for_rate(
                bbs.rate_target, hops=n_max + 1, q=ph.q_swap, memory=m, alpha_db_per_km=ph.alpha_db_per_km
            )
        )
        if not math.isnan(d):
            return d, n_max
    return math.nan, -1


def _distance_table(network: Network) -> pd.DataFrame:
    g = network.graph()
    rows = []
    for a, dist in nx.all_pairs_dijkstra_path_length(g, weight="length_km"):
        for b, d in dist.items():
            if str(a) < str(b):
                rows.append((str(a), str(b), float(d)))
    return pd.DataFrame(rows, columns=["node_a", "node_b", "distance_km"])


def plan_placement(
    network: Network, backbone: Backbone, scenario: Scenario, *, seed: int = 0
) -> tuple[Backbone, PlacementResult]:
    """Place repeaters at existing sites; returns the backbone of elementary links and the stage result.

    Guarantees: every returned demand's path alternates end node, repeater sites, end
    node; every elementary link is at most ``L_max`` km of shortest fibre route (see the
    module docstring), so each demand's Eq. 9 rate with ``memory.edge_units`` meets
    ``backbone.rate_target`` (the tests check every stage result with an independent
    validator, ``tests/oracles/placement_check.py``). A
    :class:`~planner.stages.result.PlacementResult`: the chain figures per elementary link
    and per demand as typed fields and as the tables ``links`` (``link, repeaters,
    segment_km, p``) and ``demands`` (``demand, hops, p_worst, rate, latency_s``), as the
    spacing model reports them; the repeater sites' sessions (also the table
    ``repeater_sites``: ``site_id, name, sessions``), ``L_max`` and ``N_max``.
    """
    out = PlacementResult()
    bbs, ph = scenario.backbone, scenario.physics
    m = scenario.memory.edge_units
    if len(backbone.demands) == 0 or len(backbone.nodes) < 2:
        out.set_chains(
            pd.DataFrame({"link": backbone.links["link_id"], "repeaters": 0}), pd.DataFrame(columns=["demand"])
        )
        return backbone, out
    l_max, n_max = placement_max_link_km(scenario)
    if math.isnan(l_max):
        raise InfeasibleDesignError(
            "No repeater placement can meet the backbone rate target.",
            conflicts=["backbone.rate_target"],
            details=[
                f"Eq. 9 bound: even a single zero-length hop gives M = {m} pairs per attempt "
                f"< rate_target {bbs.rate_target:g}",
                "fix: lower backbone.rate_target or raise memory.edge_units",
            ],
        )
    if n_max < bbs.placement_max_repeaters:
        out.notes.append(
            f"Repeater placement: chains of more than {n_max} repeater(s) cannot meet the rate target "
            f"{bbs.rate_target:g} even with zero-length hops (Eq. 9 bound with M = {m}, q = {ph.q_swap}), "
            f"so paths use at most {n_max} instead of {bbs.placement_max_repeaters}."
        )
    result = _solve(network, backbone, scenario, l_max, n_max, seed)
    repeaters, paths = result.tables["repeaters"], result.tables["paths"]
    out.record_solve("repeaters", result, "repeater placement MILP (sites, RepAlloc-style)")
    links, path_of = _elementary_links(network, paths)
    demands, rate_rows = _demand_rows(backbone, links, path_of, scenario)
    seg = links["length_km"].astype(float).to_numpy()
    link_rows = {
        "link": links["link_id"],
        "repeaters": 0,
        "segment_km": np.maximum(seg, 0.0),
        "p": link_success_probability(seg, alpha_db_per_km=ph.alpha_db_per_km),
    }
    out.set_chains(pd.DataFrame(link_rows), pd.DataFrame(rate_rows))
    out.repeater_sessions = pd.Series(
        repeaters["sessions"].astype(int).to_numpy(), index=repeaters["node"].astype(str).to_numpy(), dtype=int
    )
    out.max_link_km, out.max_repeaters_per_path = l_max, n_max
    _record_sites(out, network, repeaters, scenario)
    logger.info("placement: %d repeater sites, %d elementary links, L_max %.4g km", len(repeaters), len(links), l_max)
    return Backbone(nodes=sorted({*backbone.nodes, *links["u"], *links["v"]}), links=links, demands=demands), out


def _record_sites(out: PlacementResult, network: Network, repeaters: pd.DataFrame, scenario: Scenario) -> None:
    """The table ``repeater_sites`` (``site_id, name, sessions``), the metrics and the note of a placement
    whose repeaters (``node, sessions``) stand at ``network``'s sites; ``out.max_link_km`` and
    ``out.max_repeaters_per_path`` are set."""
    bbs, ph, m = scenario.backbone, scenario.physics, scenario.memory.edge_units
    l_max, n_max = out.max_link_km, out.max_repeaters_per_path
    names = network.sites["name"].astype(str)
    out.tables["repeater_sites"] = pd.DataFrame(
        {
            "site_id": repeaters["node"].astype(str),
            "name": [names.get(x, x) for x in repeaters["node"].astype(str)],
            "sessions": repeaters["sessions"].astype(int),
        }
    )
    n_rep = len(repeaters)
    out.metrics.update(
        {
            "n_repeaters": n_rep,
            "repeater_cost": n_rep * bbs.repeater_cost,
            "repeater_model": "placement",
            "placement_max_link_km": None if math.isinf(l_max) else l_max,
            "placement_max_repeaters_per_path": n_max,
            "placement_repeater_sites": out.tables["repeater_sites"].to_dict(orient="records"),
        }
    )
    out.notes.append(
        f"Repeaters stand at {n_rep} existing site(s) (placement model): at most {n_max} per demand path, elementary "
        f"links of at most {l_max:.4g} km (the longest hop whose Eq. 9 rate with M = {m}, q = {ph.q_swap} and "
        f"{n_max + 1} hops meets the target {bbs.rate_target:g}). Backbone links below are these elementary links."
    )


def _solve(
    network: Network, backbone: Backbone, scenario: Scenario, l_max: float, n_max: int, seed: int
) -> SolveResult:
    """Solve the placement model for elementary links of at most ``l_max`` km and at most ``n_max``
    repeaters per path; raises :class:`~planner.errors.InfeasibleDesignError` without a solution."""
    bbs, ph, m = scenario.backbone, scenario.physics, scenario.memory.edge_units
    big = 1e6 if math.isinf(l_max) else l_max
    ends = sorted(str(x) for x in backbone.nodes)
    nodes = [str(x) for x in network.sites.index]
    dist = _distance_table(network)
    n_pairs = len(ends) * (len(ends) - 1) // 2
    # length only breaks ties between designs with the fewest repeaters (lexicographic solve)
    alpha = 0.5 / (n_pairs * (n_max + 1) * big)
    opts = PlacementOptions(
        max_link_km=big,
        max_repeaters_per_path=n_max,
        capacity_sessions=max(n_pairs, 1),
        robustness_paths=1,
        alpha_per_km=alpha,
    )
    data = PlacementData(nodes=nodes, end_nodes=ends, distance_km=dist)
    with solver_errors(
        "placement", PlacementInputError, infeasible="No repeater placement on existing sites meets the rate target."
    ):
        result = solve_placement(data, opts, solver_options(scenario, seed=seed))
    if not result.has_solution:
        pairs = str(result.info.get("infeasible_pairs", ""))
        raise InfeasibleDesignError(
            f"No repeater placement on existing sites meets the rate target (model status '{result.status}').",
            conflicts=["backbone.rate_target", "backbone.placement_max_repeaters"],
            details=[
                f"longest elementary link L_max = {l_max:.4g} km (Eq. 9 with M = {m}, q = {ph.q_swap}, "
                f"k = {n_max + 1} hops, target {bbs.rate_target:g})",
                *([f"pairs with no path of <= {n_max} repeaters within L_max: {pairs[:400]}"] if pairs else []),
                "fix: lower backbone.rate_target, raise memory.edge_units or backbone.placement_max_repeaters, "
                'or use backbone.repeaters = "spacing"',
            ],
        )
    return result


def _elementary_links(
    network: Network, paths: pd.DataFrame
) -> tuple[pd.DataFrame, dict[tuple[str, str], tuple[str, ...]]]:
    """The elementary links of the model's paths (``link_id, u, v, length_km, route``: shortest fibre
    route, sorted by id) and each end pair's node sequence, both directions."""
    g = network.graph()
    link_rows: dict[str, dict[str, object]] = {}
    path_of: dict[tuple[str, str], tuple[str, ...]] = {}
    for rec in paths.itertuples(index=False):
        seq = tuple(str(x) for x in rec.nodes)
        a, b = str(rec.node_a), str(rec.node_b)
        path_of[(a, b)] = seq
        path_of[(b, a)] = tuple(reversed(seq))
        for u, v in zip(seq[:-1], seq[1:], strict=True):
            lo, hi = min(u, v), max(u, v)
            lid = f"{lo}--{hi}"
            if lid not in link_rows:
                length, route = nx.single_source_dijkstra(g, lo, hi, weight="length_km")
                link_rows[lid] = {
                    "link_id": lid,
                    "u": lo,
                    "v": hi,
                    "length_km": float(length),
                    "route": ";".join(map(str, route)),
                }
    links = pd.DataFrame(list(link_rows.values()), columns=["link_id", "u", "v", "length_km", "route"])
    return links.sort_values("link_id", kind="mergesort").reset_index(drop=True), path_of


def _demand_rows(
    backbone: Backbone, links: pd.DataFrame, path_of: dict[tuple[str, str], tuple[str, ...]], scenario: Scenario
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """The backbone demands over the elementary links, and per demand its hops, worst hop's success
    probability, Eq. 9 rate and Eq. 10 latency with ``memory.edge_units``."""
    ph, m = scenario.physics, scenario.memory.edge_units
    length_of = dict(zip(links["link_id"], links["length_km"].astype(float), strict=True))
    dem_rows, rate_rows = [], []
    for d in backbone.demands.itertuples(index=False):
        seq = path_of[(str(d.source), str(d.target))]
        lids = [f"{min(u, v)}--{max(u, v)}" for u, v in zip(seq[:-1], seq[1:], strict=True)]
        hops_km = [length_of[x] for x in lids]
        dem_rows.append(
            {
                "demand_id": d.demand_id,
                "source": d.source,
                "target": d.target,
                "path": ";".join(seq),
                "links": ";".join(lids),
                "length_km": float(sum(hops_km)),
            }
        )
        p_worst = float(link_success_probability(max(hops_km), alpha_db_per_km=ph.alpha_db_per_km))
        k = len(hops_km)
        rate_rows.append(
            {
                "demand": d.demand_id,
                "hops": k,
                "p_worst": p_worst,
                "rate": float(chain_distribution_ratio(k, p=p_worst, q=ph.q_swap, memory=m)),
                "latency_s": float(
                    chain_latency_s(
                        hops_km,
                        q=ph.q_swap,
                        memory=m,
                        alpha_db_per_km=ph.alpha_db_per_km,
                        speed_km_per_s=ph.speed_km_per_s,
                        t_mea_s=ph.t_mea_s,
                        t_ret_s=ph.t_ret_s,
                    )
                ),
            }
        )
    demands = pd.DataFrame(dem_rows, columns=["demand_id", "source", "target", "path", "links", "length_km"])
    return demands, rate_rows
