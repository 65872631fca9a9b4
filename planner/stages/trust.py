"""Trusted-relay stage of the pipeline (SMR paper's partially-trusted relay network).

Chooses at most ``security.trusted_budget`` trusted relays among the network's
sites with :func:`solvers.trust.solve_trust` (max-min best single-path
security over the inter-cluster demands), then verifies the choice with SMR
routing (:func:`planner.routing.paths.smr`) on the full fibre graph, and compares it
with greedy, betweenness-centrality and random selections of the same size.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx
import numpy as np
import pandas as pd

from planner.errors import InfeasibleDesignError, ValidationError
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.stages.backbone import Backbone

if TYPE_CHECKING:
    from planner.pipeline import StageResult

logger = logging.getLogger(__name__)

NON_RELAY_KINDS = {"external"}


def trust_tables(network: Network, backbone: Backbone, scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``edges``, ``nodes`` and ``demands`` tables of the trust model.

    A site's security probability is its ``p_untrusted`` column when the
    network file gives one, else ``security.p_untrusted``.
    """
    sec = scenario.security
    g = network.graph()
    edges = pd.DataFrame([(u, v) for u, v in g.edges()], columns=["u", "v"])
    sites = network.sites
    p_u = sites["p_untrusted"].astype(float) if "p_untrusted" in sites.columns else pd.Series(sec.p_untrusted, index=sites.index)
    nodes = pd.DataFrame({
        "node": sites.index.astype(str),
        "p_u": p_u.fillna(sec.p_untrusted).to_numpy(float),
        "cost": sec.trusted_cost,
        "candidate": ~sites["kind"].astype(str).isin(NON_RELAY_KINDS).to_numpy(),
    })
    demands = pd.DataFrame({"demand": backbone.demands["demand_id"], "source": backbone.demands["source"],
                            "target": backbone.demands["target"]})
    return edges, nodes, demands


def smr_check(network: Network, demands: pd.DataFrame, trusted: set[str], security: dict[str, float]) -> pd.DataFrame:
    """SMR routing of every demand with the given trusted set: security, paths, key consumption.

    ``key_consumption`` is the number of link-key bits consumed per delivered
    end-to-end key bit when all path keys of all segments are combined (the sum
    of the hop counts of every path).
    """
    from planner.stages.smr_checks import smr_rows

    # runs on the executor set by the CLI (--workers / --scheduler); serial otherwise
    return smr_rows(network.graph(), demands, trusted, security)


def _smr_table(demands: pd.DataFrame, rows: list[int] | None, results: list[Any]) -> pd.DataFrame:
    """The :func:`smr_check` columns for the routed demands ``rows`` (all when None)."""
    idx = range(len(demands)) if rows is None else rows
    out = []
    for i, res in zip(idx, results, strict=True):
        out.append({
            "demand_id": demands["demand"].iloc[i],
            "security": float(res.security) if res.delivered else 0.0,
            "segments": len(res.segments),
            "paths": int(res.n_paths),
            "key_consumption": int(res.total_hops),
            "trusted_on_path": ";".join(str(x) for x in res.segment_nodes[1:-1]),
        })
    return pd.DataFrame(out, columns=["demand_id", "security", "segments", "paths", "key_consumption",
                                      "trusted_on_path"])


def _probe_seconds(ev: Any, seed: int) -> float:
    """Seconds per demand of SMR routing, timed on up to 10 demands."""
    import time

    n = len(ev.pairs)
    probe = sorted(np.random.default_rng(seed).choice(n, size=min(n, 10), replace=False).tolist())
    t0 = time.perf_counter()
    ev.securities(frozenset(), probe, results=[])
    return max(1e-4, (time.perf_counter() - t0) / len(probe))


def _selection_rows(ev: Any, single_costs: list[np.ndarray], n_starts: int, time_s: float,
                    seed: int) -> tuple[list[int] | None, float]:
    """Demands the SMR selection evaluates: all when that fits in ``time_s``, else a sample.

    Times SMR on a few demands first. The sample holds the demands worst by
    single-path security under any start (they decide the minimum) and a
    fixed random draw (for the mean). Returns the rows (None = all) and the
    measured seconds per demand.
    """

    n = len(ev.pairs)
    rng = np.random.default_rng(seed)
    per = _probe_seconds(ev, seed)
    affordable = int(time_s / per / (n_starts + 12))
    if affordable >= n:
        return None, per
    k = max(20, affordable)
    worst: list[int] = []
    for costs in single_costs:
        worst.extend(np.argsort(-costs, kind="stable")[: k // (2 * max(1, len(single_costs)))].tolist())
    rows = set(worst)
    rest = [i for i in range(n) if i not in rows]
    rows.update(rng.choice(rest, size=min(len(rest), max(0, k - len(rows))), replace=False).tolist())
    return sorted(int(i) for i in rows), per


MODEL_SHARE = 0.5
"""Share of the trust stage's remaining time handed to the single-path model (the SMR search gets the rest)."""


class _StageClock:
    """What is left of the trust stage's time: the open stage budget when there is one (limits
    already handed and wall time both count), else ``total_s`` minus what this clock handed out
    and the wall time since it was made. Never negative."""

    def __init__(self, total_s: float) -> None:
        import time

        from solvers.base import current_budget

        self.total_s = max(0.0, float(total_s))
        self.budget = current_budget()
        self.start = time.perf_counter()
        self.handed_s = 0.0

    def left_s(self) -> float:
        import time

        if self.budget is not None:
            return self.budget.left_s()
        return max(0.0, min(self.total_s - self.handed_s, self.total_s - (time.perf_counter() - self.start)))

    def options(self, opts: Any, *, fraction: float = 1.0) -> Any:
        """``opts`` with a time limit of ``fraction`` of what is left (the solver records it)."""
        import dataclasses

        limit = max(0.0, min(float(opts.time_limit_s), fraction * self.left_s()))
        if self.budget is None:
            self.handed_s += limit
        return dataclasses.replace(opts, time_limit_s=limit)

    def hand_out(self) -> float:
        """All that is left, handed to a search that is not a solver run (recorded as a limit)."""
        from solvers.base import note_time_limit

        limit = self.left_s()
        note_time_limit(limit)
        if self.budget is None:
            self.handed_s += limit
        return limit


def plan_trust(network: Network, backbone: Backbone, scenario: Scenario, *, seed: int = 0) -> StageResult:
    """Trusted-relay choice for SMR security, verification and comparison with simpler selections.

    Steps: the single-path max-min model (:func:`solvers.trust.solve_trust`)
    gives a bound and a start; greedy, betweenness and random selections are
    further starts; :func:`planner.stages.trust_smr.choose_for_smr` picks the best by
    ``security.trust_objective`` ("min" or "mean" SMR security) and improves
    it by local search within ``solver.time_limit_s``. Every selection is then
    verified with SMR on all demands, and the chosen set is the best of all by
    that verification, so it is never worse than a baseline on the objective.
    ``trust_objective = "target"`` picks the fewest relays that give every
    demand SMR security ``security.eps`` and names the demands that cannot.
    """
    import time

    from planner.pipeline import StageResult, _split_timing, _summary, solver_options
    from planner.stages.trust_smr import SmrEvaluator, choose_for_smr, fewest_for_target, smr_key
    from solvers.trust import (
        TrustInfeasible,
        TrustInputError,
        centrality_trust,
        evaluate_costs,
        greedy_trust,
        prepare_trust_data,
        random_trust,
        solve_trust,
    )

    out = StageResult()
    sec = scenario.security
    objective = str(getattr(sec, "trust_objective", "min"))
    if len(backbone.demands) == 0:
        out.tables["relays"] = pd.DataFrame(columns=["site_id", "name", "kind", "trusted", "p_untrusted"])
        return out
    edges, nodes, demands = trust_tables(network, backbone, scenario)
    budget = int(sec.trusted_budget)
    # Time: the stage has solver.time_limit_s in all (the open stage budget when the pipeline runs
    # it). The single-path model gets at most MODEL_SHARE of what is left, the SMR search what is
    # left after it; both draw from the same remaining time, so neither can overrun the stage.
    stage_s = float(scenario.solver.time_limit_s)
    stage_clock = _StageClock(stage_s)
    opts = stage_clock.options(solver_options(scenario, seed=seed), fraction=MODEL_SHARE)
    try:
        result = solve_trust(edges, nodes, demands, mode="max_min_security", max_relays=budget, options=opts)
        data = prepare_trust_data(edges, nodes, demands)
    except TrustInfeasible as exc:
        raise InfeasibleDesignError("No trusted-relay choice meets the security settings.",
                                    conflicts=[str(c) for c in exc.conflicts[:10]], details=exc.details) from None
    except TrustInputError as exc:
        raise ValidationError(f"trust tables: {exc}", source="scenario") from None
    if not result.has_solution:
        raise InfeasibleDesignError(f"the trusted-relay model ended with status '{result.status}' and no solution",
                                    details=["fix: raise solver.time_limit_s or lower security.trusted_budget"])
    out.solves["trust"] = _split_timing(_summary(result, "trusted-relay model (max-min single-path security)"),
                                        out.timing, "trust")
    security = dict(zip(nodes["node"], nodes["p_u"], strict=True))
    pool = [str(v) for v, c, p in zip(nodes["node"], nodes["candidate"], nodes["p_u"], strict=True)
            if c and p < 1]
    g = network.graph()
    ev = SmrEvaluator(g, list(zip(demands["source"], demands["target"], strict=True)), security)
    starts: dict[str, list[str]] = {"MILP (max-min single-path security)":
                                    [str(x) for x in result.tables["relays"]["node"]]}
    if budget > 0:
        starts["greedy"] = [str(x) for x in greedy_trust(edges, nodes, demands, max_relays=budget)
                            .tables["relays"]["node"]]
        starts["betweenness centrality"] = [str(x) for x in centrality_trust(
            edges, nodes, demands, max_relays=budget).tables["relays"]["node"]]
        starts["random"] = [str(x) for x in random_trust(edges, nodes, demands, max_relays=budget,
                                                           rng=np.random.default_rng(seed)).tables["relays"]["node"]]
    bc = nx.betweenness_centrality(g)
    by_bc = sorted(pool, key=lambda v: (-bc.get(v, 0.0), v))
    order_rank = {v: i for i, v in enumerate(by_bc)}
    t_sel = time.perf_counter()
    search_s = stage_clock.hand_out()  # recorded like a solver's limit
    deadline = t_sel + search_s
    single = {name: evaluate_costs(data, s) for name, s in starts.items()}
    smr_info: dict[str, Any] = {"objective": objective}
    if objective == "target":
        tgt = fewest_for_target(ev, pool, float(sec.eps), order=by_bc, deadline=deadline)
        chosen_name = "fewest relays for eps (SMR)"
        chosen = [str(v) for v in tgt.trusted]
        unreachable = [str(demands["demand"].iloc[i]) for i in tgt.unreachable]
        smr_info.update(eps=float(sec.eps), met=tgt.met, n_demands=len(demands), unreachable=unreachable[:50],
                        n_unreachable=len(unreachable), lower_bound_relays=tgt.lower_bound, stopped=tgt.stopped,
                        n_trusted=len(chosen), over_budget=len(chosen) > budget)
        rows = None
        # baselines of the same size for the comparison
        k = len(chosen)
        if k > 0:
            starts["greedy"] = [str(x) for x in greedy_trust(edges, nodes, demands, max_relays=k)
                                .tables["relays"]["node"]]
            starts["betweenness centrality"] = by_bc[:k]
    else:
        rows, per_demand_s = _selection_rows(ev, list(single.values()), len(starts),
                                             0.5 * search_s, seed)
        choice = choose_for_smr(ev, starts, pool, budget, objective="mean" if objective == "mean" else "min",
                                deadline=deadline, rows=rows,
                                rank=lambda vs: sorted(vs, key=lambda v: order_rank.get(str(v), 0)), seed=seed)
        chosen_name = f"SMR local search ({objective} SMR security)"
        chosen = [str(v) for v in choice.trusted]
        smr_info.update(start=choice.start, moves=choice.moves, stopped=choice.stopped,
                        selection_demands=len(demands) if rows is None else len(rows),
                        smr_seconds_per_demand=round(per_demand_s, 5), history=choice.history)
    smr_info["selection_time_s"] = time.perf_counter() - t_sel
    # verification of every selection on the same demands (memoised: a set met twice is routed once);
    # all demands when that fits in ten time limits at the measured SMR speed, else a fixed sample
    n_dem = len(demands)
    per = float(smr_info.get("smr_seconds_per_demand") or 0.0) or _probe_seconds(ev, seed)
    n_sets = len({frozenset(v) for v in [chosen, *starts.values()]})
    verify_budget_s = 10.0 * float(scenario.solver.time_limit_s)
    vrows: list[int] | None = None
    if n_sets * n_dem * per > verify_budget_s:
        k = max(min(n_dem, 50), int(verify_budget_s / per / max(1, n_sets)))
        picked = set(rows or [])
        rng = np.random.default_rng(seed + 1)
        rest = [i for i in range(n_dem) if i not in picked]
        picked.update(rng.choice(rest, size=min(len(rest), max(0, k - len(picked))), replace=False).tolist())
        vrows = sorted(int(i) for i in picked)[: max(k, len(rows or []))]
    smr_info["verified_demands"] = n_dem if vrows is None else len(vrows)
    selections = {chosen_name: chosen, **starts}
    results: list[Any] = []
    full = {chosen_name: ev.securities(frozenset(chosen), vrows, results=results)}
    full.update({name: ev.securities(frozenset(s), vrows) for name, s in starts.items()})
    key_of: Literal["min", "mean"] = "mean" if objective == "mean" else "min"
    if objective != "target":
        best = max(selections, key=lambda name: (smr_key(full[name], key_of), name == chosen_name))
        if best != chosen_name:
            smr_info["replaced_by"] = best  # the sampled search lost to a start on the verified demands
            chosen = selections[best]
            selections[chosen_name] = chosen
            full[chosen_name] = full[best]
            results = []
            ev.securities(frozenset(chosen), vrows, results=results)
    out.metrics["trust_smr_search"] = smr_info
    comparison = []
    for method, tset in selections.items():
        costs = single.get(method)
        if costs is None:
            costs = evaluate_costs(data, tset)
        sp = np.exp(-costs)
        check = full[method]
        comparison.append({
            "method": method,
            "trusted": len(tset),
            "min_single_path_security": float(sp.min()),
            "mean_single_path_security": float(sp.mean()),
            "min_smr_security": float(check.min()),
            "mean_smr_security": float(check.mean()),
            "eps_met": int((check >= float(sec.eps) - 1e-12).sum()),
            "smr_demands": len(check),
        })
    smr_chosen = _smr_table(demands, vrows, results)
    for row in comparison:
        if row["method"] == chosen_name:
            row["mean_key_consumption"] = float(smr_chosen["key_consumption"].mean())
    out.metrics["trust_comparison"] = comparison
    chosen_costs = evaluate_costs(data, chosen)
    dem = pd.DataFrame({"demand_id": demands["demand"].to_numpy(),
                        "security_single_path": np.exp(-chosen_costs)})
    dem = dem.merge(smr_chosen, on="demand_id", how="left")
    out.tables["demands"] = dem
    names = network.sites["name"].astype(str)
    kinds = network.sites["kind"].astype(str)
    out.tables["relays"] = pd.DataFrame({
        "site_id": nodes["node"],
        "name": [names.get(n, n) for n in nodes["node"]],
        "kind": [kinds.get(n, "") for n in nodes["node"]],
        "trusted": nodes["node"].isin(chosen).to_numpy(),
        "p_untrusted": nodes["p_u"].to_numpy(float),
    })
    by_name = {row["method"]: row for row in comparison}
    out.metrics["trust_objectives"] = {
        "objective": objective,
        "chosen": chosen_name,
        "min_single_path_security": by_name[chosen_name]["min_single_path_security"],
        "mean_single_path_security": by_name[chosen_name]["mean_single_path_security"],
        "min_smr_security": by_name[chosen_name]["min_smr_security"],
        "mean_smr_security": by_name[chosen_name]["mean_smr_security"],
        "single_path_bound": result.bound,
    }
    out.baselines["trust"] = {
        "method": "greedy (same budget)",
        "objective": by_name["greedy"]["min_smr_security"] if "greedy" in by_name else None,
        "milp_objective": by_name[chosen_name]["min_smr_security"],
        "measure": "minimum SMR security",
    }
    return out
