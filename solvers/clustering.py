"""Access clustering and master placement (cluster paper, Eq. 5/6).

Every site is either a master or a slave assigned to exactly one open master
within access reach. A cluster with ``|V|`` slaves runs ``M = floor(|V|/2)``
concurrent Ekert91 pairs per attempt (Eq. 5) and yields
``R_mdi*N_m + R_ekr*N_s*M`` keys per attempt (Eq. 6).

The MILP (sparse: assignment variables only for site/candidate pairs listed
in the ``pairs`` table, i.e. within reach):

* ``y[c]`` binary: candidate ``c`` is an open master;
* ``x[p]`` binary: for pair ``p = (site i, candidate c)``, site ``i`` is a slave of ``c``;
* ``ekert[c]`` integer: Ekert91 pairs of cluster ``c`` (the floor of Eq. 5 via ``2*ekert <= size``).

Constraint families (names as used in diagnoses): ``assign-once``,
``assign-open``, ``cluster-size-min``, ``cluster-size-max``, ``ekert-floor``,
``master-budget``, ``cost-budget``, ``cluster-key-target``, ``fixed-master``.

Objectives: ``"max_keys"`` maximises the total Eq. 6 keys per attempt,
``"min_cost"`` minimises the total master cost (with an optional per-cluster
key target); both subtract/add a demand-weighted access-loss tie-break.

Two interchangeable builders give the same model: :func:`build_clustering_model`
(Pyomo, readable, solved through :func:`solvers.highs_driver.solve_model`) and
:func:`build_clustering_arrays` (sparse arrays passed to HiGHS through
``highspy``; used for large instances where Pyomo's build time dominates).

This module is the interface; the work is done in modules with one job each:

* :mod:`solvers.clustering_data` — tables, options, the prepared index, diagnosis, solutions;
* :mod:`solvers.clustering_model` / :mod:`solvers.clustering_arrays` — the two builders;
* :mod:`solvers.clustering_bounds` — bounds that need no MILP;
* :mod:`solvers.clustering_solve` — :func:`solve_clustering` on one instance;
* :mod:`solvers.clustering_parts` — restriction to sites, reach components;
* :mod:`solvers.clustering_cache` — work kept across the solves of one stage;
* :mod:`solvers.clustering_components` — :func:`solve_clustering_by_component`;
* :mod:`solvers.clustering_unservable` — the fewest sites to leave out;
* :mod:`solvers.heuristics` — the greedy + local search heuristic (warm start, fallback).
"""

from __future__ import annotations

from solvers.clustering_arrays import ArrayModel, RowBlock, build_clustering_arrays, solve_arrays
from solvers.clustering_bounds import cost_lower_bound, fallback_bound, integral_cost_bound, keys_upper_bound
from solvers.clustering_cache import ComponentCache, component_cache, component_key, current_component_cache
from solvers.clustering_components import (
    COMPONENT_MIN_S,
    COMPONENT_SOLVE_MIN_SITES,
    solve_clustering_by_component,
)
from solvers.clustering_data import (
    FAMILIES,
    Backend,
    ClusteringData,
    ClusteringIndex,
    ClusteringInfeasible,
    ClusteringInputError,
    ClusteringOptions,
    ClusteringSolution,
    Objective,
    check_solution,
    prepare,
    result_from_solution,
    solution_from_values,
    solution_tables,
    solution_terms,
    solution_vector,
    validate_options,
)
from solvers.clustering_diagnose import diagnose
from solvers.clustering_model import (
    build_clustering_model,
    define_assign_once,
    define_assign_open,
    define_budgets,
    define_cluster_size,
    define_ekert_floor,
    define_fixed_masters,
    define_key_target,
    define_objective,
    define_variables,
)
from solvers.clustering_parts import reach_components, restrict_to_sites
from solvers.clustering_solve import elastic_diagnosis, solve_clustering
from solvers.clustering_unservable import ELASTIC_MAX_PAIRS, unservable_sites, unservable_sites_by_component

__all__ = [
    "FAMILIES",
    "Backend",
    "ClusteringData",
    "ClusteringIndex",
    "ClusteringInfeasible",
    "ClusteringInputError",
    "ClusteringOptions",
    "ClusteringSolution",
    "Objective",
    "check_solution",
    "diagnose",
    "prepare",
    "result_from_solution",
    "solution_from_values",
    "solution_tables",
    "solution_terms",
    "solution_vector",
    "validate_options",
    "COMPONENT_MIN_S",
    "ComponentCache",
    "component_cache",
    "component_key",
    "current_component_cache",
    "COMPONENT_SOLVE_MIN_SITES",
    "ELASTIC_MAX_PAIRS",
    "ArrayModel",
    "RowBlock",
    "build_clustering_arrays",
    "build_clustering_model",
    "cost_lower_bound",
    "define_assign_once",
    "define_assign_open",
    "define_budgets",
    "define_cluster_size",
    "define_ekert_floor",
    "define_fixed_masters",
    "define_key_target",
    "define_objective",
    "define_variables",
    "elastic_diagnosis",
    "fallback_bound",
    "integral_cost_bound",
    "keys_upper_bound",
    "reach_components",
    "restrict_to_sites",
    "solve_arrays",
    "solve_clustering",
    "solve_clustering_by_component",
    "unservable_sites",
    "unservable_sites_by_component",
]
