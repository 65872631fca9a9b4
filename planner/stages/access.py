"""Stage 2 of the pipeline: cluster assignment and master placement.

:func:`plan_access` builds the access tables (:mod:`planner.stages.access_tables`), solves the
clustering (:mod:`solvers.clustering`, warm-started and compared with :mod:`solvers.heuristics`;
by default the balanced rule of :mod:`planner.stages.access_pareto`) and returns the tables
``assignment`` and ``clusters``.

Time: every solve gets at most what is left of the stage's budget
(:func:`solvers.base.stage_budget`; the whole ``solver.time_limit_s`` without one), so the stage
keeps its budget, and ``qkdplan plan --time-limit`` the plan's. Large instances are solved one reach
component at a time; the heuristics and results of components already solved are kept across the
stage's attempts (:func:`solvers.clustering.component_cache`) and not redone.

Sites the clustering cannot serve join the backbone as standalone sites, each with its reason:

* too few sites within reach (found while building the tables);
* no feasible cluster contains them (the fewest such sites, by the elastic model of
  :func:`solvers.clustering.unservable_sites_by_component`; a whole infeasible reach component when
  that search has no answer in time);
* their reach component got no clustering within its time (neither the MILP nor the heuristic):
  the mended greedy (:func:`solvers.heuristics.unservable_sites_heuristic`) clusters it without a
  few of its sites, which are left out; failing that the whole component is left out. The design
  then clusters the other sites and the bound still covers the left-out sites for ``max_keys``
  (see :func:`solvers.clustering.solve_clustering_by_component`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Literal

import pandas as pd

from planner.errors import InfeasibleDesignError, ValidationError
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.stages import access_pareto as _access_pareto
from planner.stages.access_tables import AccessTables, build_access_tables
from planner.stages.result import AccessResult, solver_options
from solvers import clustering as _clustering
from solvers import clustering_fallback as _clustering_fallback
from solvers.base import SolveResult, SolverOptions, current_budget

logger = logging.getLogger(__name__)

STRONG_LINKING_MAX_PAIRS = 20_000
"""Up to this many pairs the clustering MILP gets the per-pair linking rows x <= y: a much tighter
root LP on small and medium instances (SURFnet: 5 s instead of 24 s), but they stall the root LP
at thousands of sites."""

ACCESS_ATTEMPTS = 8
"""Most solves of the stage: after the first, each further one follows progress (unservable sites
dropped, or a clustering of a component found by the elastic model), and components solved before
are not redone."""


def plan_access(network: Network, scenario: Scenario, *, seed: int = 0) -> tuple[AccessResult, AccessTables]:
    """Cluster assignment and master placement: the stage's :class:`AccessResult` (also as tables
    ``assignment`` and ``clusters``) and the access tables (whose ``standalone`` lists every site
    left out of the clusters).

    Guarantees: the solver limits handed out sum to at most the open stage budget (or
    ``solver.time_limit_s``); every clustered site is in exactly one cluster satisfying the
    scenario's constraints; every other site is standalone and a note gives its reason. With a
    master/cost budget and no clustering found in time, the heuristics' best clustering within
    the budgets is returned (:func:`solvers.clustering_fallback.budget_fallback`, a few sites
    possibly left standalone). Raises :class:`~planner.errors.InfeasibleDesignError` only for
    conflicts that leaving sites out cannot mend (master/cost budgets), or when a model with such a
    global budget finds no clustering in time and neither do the heuristics, and
    :class:`~planner.errors.ValidationError` for malformed access tables.
    """
    tables = build_access_tables(network, scenario)
    options = _clustering_options(scenario, tables, seed)
    run = _AccessRun(scenario, options, tables, solver_options(scenario, seed=seed))
    with _clustering.component_cache() as cache:
        run.attempts()
    logger.info(
        "access: %d heuristic run(s), %d component MILP run(s), %d reused from earlier attempts",
        cache.heuristic_runs,
        cache.milp_runs,
        cache.hits,
    )
    if run.result is not None and not run.result.has_solution and run.global_budget:
        run.budget_fallback()
    return _finish(network, scenario, run)


def _clustering_options(scenario: Scenario, tables: AccessTables, seed: int) -> _clustering.ClusteringOptions:
    """The clustering options of the scenario's access and memory sections."""
    acc, mem = scenario.access, scenario.memory
    return _clustering.ClusteringOptions(
        objective="min_cost" if acc.objective == "min_cost" else "max_keys",
        min_slaves=acc.min_slaves,
        max_masters=acc.max_masters or None,
        max_cost=acc.cost_budget or None,
        r_mdi=acc.r_mdi,
        r_ekr=acc.r_ekr,
        memory_master=mem.master_units,
        memory_slave=mem.slave_units,
        min_cluster_keys=acc.min_keys_per_cluster,
        heuristic_seed=seed,
        loss_weight=acc.loss_weight or None,
        strong_linking=len(tables.pairs) <= STRONG_LINKING_MAX_PAIRS,
    )


class _AccessRun:
    """The solves of one access stage (at most :data:`ACCESS_ATTEMPTS`) and what they found: the
    tables still to cluster, the sites left out and why, the last result and its mode."""

    def __init__(
        self,
        scenario: Scenario,
        options: _clustering.ClusteringOptions,
        tables: AccessTables,
        sopts: SolverOptions,
    ) -> None:
        self.scenario = scenario
        self.options = options
        self.tables = tables
        self.sopts = sopts
        self.budget = current_budget()
        self.balanced = scenario.access.objective == "balanced"
        self.global_budget = options.max_masters is not None or options.max_cost is not None
        self.pareto: pd.DataFrame | None = None
        self.unservable: list[str] = []  # no feasible cluster contains them (fewest, by the elastic model)
        self.infeasible_comp: list[str] = []  # infeasible components whose fewest sites were not found in time
        self.fallback_trimmed: list[str] = []  # left out by the budget fallback's mended greedy
        self.result: SolveResult | None = None
        # large instances (solved per component) leave a component without a clustering in time out
        # from the start; a small one is solved whole first, and per component once that found nothing
        self.mode: Literal["stop", "standalone"] = (
            "standalone"
            if len(tables.sites) >= _clustering.COMPONENT_SOLVE_MIN_SITES and not self.global_budget
            else "stop"
        )

    def limited(self, fraction: float = 1.0) -> SolverOptions:
        """``fraction`` of what is left of the stage's budget (of the whole limit without one)."""
        if self.budget is not None:
            return self.budget.options(self.sopts, fraction=fraction)
        return dataclasses.replace(self.sopts, time_limit_s=fraction * self.sopts.time_limit_s)

    def data(self) -> _clustering.ClusteringData:
        t = self.tables
        return _clustering.ClusteringData(
            sites=t.sites, candidates=t.candidates, pairs=t.pairs.rename(columns={"master": "candidate"})
        )

    def solve(self, data: _clustering.ClusteringData, opts: SolverOptions) -> SolveResult:
        """One solve of the stage's objective (looked up on the modules at call time, so a test can
        stand in for any of them)."""
        acc = self.scenario.access
        if self.balanced:  # cost-aware default: fewest masters for most of the keys (planner.stages.access_pareto)
            res, self.pareto = _access_pareto.balanced_access(
                data, self.options, opts, keys_fraction=acc.keys_fraction, points=acc.pareto_points, unsolved=self.mode
            )
            return res
        if self.mode == "standalone" or len(data.sites) >= _clustering.COMPONENT_SOLVE_MIN_SITES:
            return _clustering.solve_clustering_by_component(data, self.options, opts, unsolved=self.mode)
        return _clustering.solve_clustering(data, self.options, opts)

    def attempts(self) -> None:
        """Solve until a clustering of every site still in the tables is found, or nothing more
        can be done in time; sites found unservable are dropped between attempts."""
        for attempt in range(ACCESS_ATTEMPTS):
            if len(self.tables.sites) == 0:
                return
            data = self.data()
            try:
                # the first attempt leaves 30 % of the budget for the search for unservable sites
                self.result = self.solve(data, self.limited(0.7 if attempt == 0 else 1.0))
                if not self.after_solve(data, last=attempt == ACCESS_ATTEMPTS - 1):
                    return
            except _clustering.ClusteringInfeasible as exc:
                self.on_infeasible(data, exc)
            except _clustering.ClusteringInputError as exc:
                raise ValidationError(f"access tables: {exc}", source="scenario") from None

    def after_solve(self, data: _clustering.ClusteringData, *, last: bool) -> bool:
        """What follows a solve; True when another attempt is worth making."""
        res = self.result
        assert res is not None
        left_out = res.info.get("standalone_sites") if res.has_solution else res.info.get("component_sites")
        if res.has_solution and not left_out:
            return False
        if not isinstance(left_out, list):  # a whole-instance solve found nothing in time
            if self.global_budget or self.mode == "standalone" or last:
                return False
            self.mode = "standalone"  # again, per component, leaving an unsolvable component out
            return True
        if last or (self.budget is not None and self.budget.left_s() <= 0.0):
            return False  # keep the components left out as standalone sites
        # components without a clustering in time: does one exist? The elastic model
        # answers (keeping its clustering for the next attempt), or names unservable sites
        found = _clustering.unservable_sites_by_component(
            _clustering.restrict_to_sites(data, left_out), self.options, self.limited(0.5)
        )
        if found is None:
            return False  # no answer in time either: they stay standalone
        self.unservable += found
        self.tables = _without_sites(self.tables, set(found))
        self.mode = "standalone"
        return True

    def on_infeasible(self, data: _clustering.ClusteringData, exc: _clustering.ClusteringInfeasible) -> None:
        """Sites that no cluster can serve (e.g. the fourth site of a chain of four within reach)
        join the backbone directly, as standalone sites, rather than failing the plan; any other
        conflict (budgets, capacity) is the user's to resolve. The fewest such sites are sought one
        reach component at a time (only components the greedy heuristic cannot cluster get the
        elastic MILP). When the search was split by reach component, the exception names the
        infeasible components' sites: only those get the elastic MILP, and when it has no answer in
        time they are left out whole."""
        where = data if exc.sites is None else _clustering.restrict_to_sites(data, exc.sites)
        found = (
            _clustering.unservable_sites_by_component(where, self.options, self.limited(1.0))
            if exc.sites is not None or set(exc.conflicts) <= {"assign-once", "cluster-size-max"}
            else None
        )
        if not found and exc.sites is not None:
            self.infeasible_comp += list(exc.sites)
            found = list(exc.sites)
        if not found:
            raise InfeasibleDesignError(
                "No access clustering satisfies the scenario.",
                conflicts=[str(c) for c in exc.conflicts],
                details=[
                    *exc.details,
                    "fix: raise access.reach_km or access.capacity, lower "
                    "access.min_slaves, or relax the master/cost budget",
                ],
            ) from None
        self.unservable += [s for s in found if s not in set(self.infeasible_comp)]
        self.tables = _without_sites(self.tables, set(found))
        self.result = None

    def budget_fallback(self) -> None:
        """No clustering in time under a master/cost budget: the heuristics' best within the budgets
        (sites the mended greedy leaves out become standalone); an error that says so when there is none."""
        res = _clustering_fallback.budget_fallback(self.data(), self.options, deadline=time.perf_counter())
        if not res.has_solution:
            raise InfeasibleDesignError(
                f"the clustering model found no clustering within {self.scenario.solver.time_limit_s:g} s, and "
                "neither did the greedy heuristics within the master/cost budget",
                details=["fix: raise solver.time_limit_s, or relax access.max_masters / access.cost_budget"],
            )
        self.fallback_trimmed = [str(s) for s in res.info.get("trimmed_sites", []) or []]
        self.tables = _without_sites(self.tables, set(self.fallback_trimmed))
        self.result = res


def _finish(network: Network, scenario: Scenario, run: _AccessRun) -> tuple[AccessResult, AccessTables]:
    """The stage's result from the last solve: tables, notes on standalone sites, solver summary."""
    out = AccessResult()
    if run.pareto is not None:
        out.tables["access_pareto"] = run.pareto
    tables, result = run.tables, run.result
    unsolved_sites: list[str] = []
    trimmed: list[str] = list(run.fallback_trimmed)
    if result is not None and run.mode == "standalone":
        unsolved_sites = [str(s) for s in result.info.get("standalone_sites", []) or []]
        trimmed += [str(s) for s in result.info.get("trimmed_sites", []) or []]
        tables = _without_sites(tables, set(unsolved_sites) | set(trimmed))
    reasons = {
        "too_few_neighbours_or_unservable": sorted(
            (set(tables.standalone) | set(run.unservable))
            - set(unsolved_sites)
            - set(run.infeasible_comp)
            - set(trimmed)
        ),
        "infeasible_component_out_of_time": sorted(run.infeasible_comp),
        "no_clustering_in_time": sorted(unsolved_sites),
        "left_out_by_mended_greedy": sorted(trimmed),
    }
    standalone = sorted({s for ids in reasons.values() for s in ids})
    tables = AccessTables(sites=tables.sites, candidates=tables.candidates, pairs=tables.pairs, standalone=standalone)
    out.standalone = standalone
    out.standalone_reasons = reasons
    out.notes += _standalone_notes(network, scenario, *reasons.values())
    if run.infeasible_comp or unsolved_sites or trimmed:  # (only then: the usual reasons are in the notes)
        out.metrics["access_standalone"] = {k: len(v) for k, v in reasons.items()}
    if result is not None and not result.has_solution and unsolved_sites:
        result = None  # every component was left out
    if result is None:
        out.set_clustering(
            pd.DataFrame(columns=["site", "master", "role", "distance_km", "loss_db"]),
            pd.DataFrame(columns=["master", "n_slaves", "ekert_pairs", "keys_per_attempt"]),
        )
        if not unsolved_sites:
            out.notes.append(
                "No cluster can be formed: no site has enough neighbours within the access reach. "
                "Raise access.reach_km to form clusters."
            )
        return out, tables
    if not result.has_solution:
        raise InfeasibleDesignError(
            f"the clustering model ended with status '{result.status}' and no solution "
            f"within {scenario.solver.time_limit_s:g} s",
            details=["fix: raise solver.time_limit_s or solver.mip_gap"],
        )
    _record(out, scenario, result, balanced=run.balanced)
    out.set_clustering(result.tables["assignment"], result.tables["clusters"])
    return out, tables


def _record(out: AccessResult, scenario: Scenario, result: SolveResult, *, balanced: bool) -> None:
    """The solver summary of the chosen clustering, and the heuristic baseline it is compared with."""
    source = str(result.info.get("source", "milp"))
    model_name = "clustering MILP" if source == "milp" else f"clustering ({source})"
    if balanced:
        model_name += f", balanced: {result.info.get('rule', '')}"
    summary = out.record_solve("access", result, model_name)
    for key in ("standalone_sites", "trimmed_sites", "component_sites"):  # listed in sites.csv (role) and
        summary.pop(key, None)  # in the notes
    heur = result.info.get("heuristic_objective")
    if heur is not None:
        out.baselines["access"] = {
            "method": "greedy + local search heuristic (warm start)",
            "objective": float(heur),
            "optimised_objective": result.objective,  # type: ignore[arg-type]
            "improvement_pct": _pct(
                result.objective,
                float(heur),  # type: ignore[arg-type]
                maximise=scenario.access.objective != "min_cost",
            ),
        }


def _standalone_notes(
    network: Network,
    scenario: Scenario,
    unservable: list[str],
    infeasible_comp: list[str],
    unsolved: list[str],
    trimmed: list[str],
) -> list[str]:
    """One note per reason sites were left standalone (see the module docstring)."""
    acc = scenario.access
    notes: list[str] = []

    def some(ids: list[str]) -> str:
        return ", ".join(_names(network, ids[:12])) + (" ..." if len(ids) > 12 else "")

    if unservable:
        notes.append(
            f"{len(unservable)} site(s) cannot be served by any cluster (fewer than {acc.min_slaves} "
            f"other sites within the access reach of {acc.reach_km:g} km, or no feasible cluster "
            "contains them) and join the backbone directly as standalone sites: " + some(unservable)
        )
    if infeasible_comp:
        notes.append(
            f"{len(infeasible_comp)} site(s) form reach components that no clustering can serve whole; "
            "the fewest of them to leave out were not found within the stage's time, so all of them join "
            "the backbone directly as standalone sites (more time, solver.time_limit_s or --time-limit, "
            "keeps more of them in clusters): " + some(infeasible_comp)
        )
    if trimmed:
        notes.append(
            f"{len(trimmed)} site(s) are standalone because their reach component had no clustering within "
            "the stage's time and the mended greedy heuristic clustered it without them (not proven the "
            "fewest; more time lets the exact search decide): " + some(trimmed)
        )
    if unsolved:
        notes.append(
            f"{len(unsolved)} site(s) are standalone because no clustering of their reach component was "
            "found within the stage's time (neither by the MILP nor by the heuristic); the access bound "
            "still covers them. More time (solver.time_limit_s or --time-limit) clusters them: " + some(unsolved)
        )
    return notes


def _without_sites(tables: AccessTables, drop: set[str]) -> AccessTables:
    """Access tables with the given sites removed (as sites and as candidate masters)."""
    pairs = tables.pairs[~tables.pairs["site"].isin(drop) & ~tables.pairs["master"].isin(drop)]
    return AccessTables(
        sites=tables.sites[~tables.sites.index.isin(drop)],
        candidates=tables.candidates[~tables.candidates.index.isin(drop)],
        pairs=pairs.reset_index(drop=True),
        standalone=tables.standalone,
    )


def _pct(milp: float, heur: float, *, maximise: bool) -> float | None:
    if not (math.isfinite(milp) and math.isfinite(heur)) or heur == 0:
        return None
    return 100.0 * ((milp - heur) / abs(heur) if maximise else (heur - milp) / abs(heur))


def _names(network: Network, ids: list[str]) -> list[str]:
    names = network.sites["name"].astype(str)
    return [f"{names.get(i, i)}" for i in ids]
