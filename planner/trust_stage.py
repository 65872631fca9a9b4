"""Trusted-relay stage of the pipeline (SMR paper's partially-trusted relay network).

Chooses at most ``security.trusted_budget`` trusted relays among the network's
sites with :func:`solvers.trust.solve_trust` (max-min best single-path
security over the inter-cluster demands), then verifies the choice with SMR
routing (:func:`planner.routing.smr`) on the full fibre graph, and compares it
with greedy, betweenness-centrality and random selections of the same size.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from planner.backbone import Backbone
from planner.errors import InfeasibleDesignError, ValidationError
from planner.network import Network
from planner.scenario import Scenario

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
    from planner.smr_checks import smr_rows

    # runs on the executor set by the CLI (--workers / --scheduler); serial otherwise
    return smr_rows(network.graph(), demands, trusted, security)


def plan_trust(network: Network, backbone: Backbone, scenario: Scenario, *, seed: int = 0) -> StageResult:
    """Trusted-relay choice, SMR verification and comparison with simpler selections."""
    from planner.pipeline import StageResult, _split_timing, _summary, solver_options
    from solvers.trust import (
        TrustInfeasible,
        TrustInputError,
        centrality_trust,
        greedy_trust,
        random_trust,
        solve_trust,
    )

    out = StageResult()
    sec = scenario.security
    if len(backbone.demands) == 0:
        out.tables["relays"] = pd.DataFrame(columns=["site_id", "name", "kind", "trusted", "p_untrusted"])
        return out
    edges, nodes, demands = trust_tables(network, backbone, scenario)
    budget = int(sec.trusted_budget)
    try:
        result = solve_trust(edges, nodes, demands, mode="max_min_security", max_relays=budget,
                             options=solver_options(scenario, seed=seed))
    except TrustInfeasible as exc:
        raise InfeasibleDesignError("No trusted-relay choice meets the security settings.",
                                    conflicts=[str(c) for c in exc.conflicts[:10]], details=exc.details) from None
    except TrustInputError as exc:
        raise ValidationError(f"trust tables: {exc}", source="scenario") from None
    if not result.has_solution:
        raise InfeasibleDesignError(f"the trusted-relay model ended with status '{result.status}' and no solution",
                                    details=["fix: raise solver.time_limit_s or lower security.trusted_budget"])
    out.solves["trust"] = _split_timing(_summary(result, "trusted-relay MILP (max-min security)"), out.timing, "trust")
    chosen = [str(x) for x in result.tables["relays"]["node"]]
    security = dict(zip(nodes["node"], nodes["p_u"], strict=True))

    # verification with SMR and comparison with other selections of the same size
    selections: dict[str, Any] = {"MILP (max-min single-path security)": result}
    if budget > 0:
        selections["greedy"] = greedy_trust(edges, nodes, demands, max_relays=budget)
        selections["betweenness centrality"] = centrality_trust(edges, nodes, demands, max_relays=budget)
        selections["random"] = random_trust(edges, nodes, demands, max_relays=budget,
                                            rng=np.random.default_rng(seed))
    comparison = []
    smr_chosen = None
    for method, res in selections.items():
        tset = {str(x) for x in res.tables["relays"]["node"]}
        check = smr_check(network, demands, tset, security)
        if smr_chosen is None:
            smr_chosen = check
        single = res.tables["demands"]["security"].astype(float)
        comparison.append({
            "method": method,
            "trusted": len(tset),
            "min_single_path_security": float(single.min()),
            "min_smr_security": float(check["security"].min()),
            "mean_smr_security": float(check["security"].mean()),
            "mean_key_consumption": float(check["key_consumption"].mean()),
        })
    out.metrics["trust_comparison"] = comparison
    assert smr_chosen is not None
    sol_d = result.tables["demands"].set_index("demand")
    dem = smr_chosen.copy()
    dem["security_single_path"] = [float(sol_d.at[d, "security"]) for d in dem["demand_id"]]
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
    out.baselines["trust"] = {
        "method": "greedy (same budget)", "objective": comparison[1]["min_single_path_security"] if budget > 0 else None,
        "milp_objective": comparison[0]["min_single_path_security"],
    }
    return out
