"""Cheap necessary-condition checks of a clustering instance, run before solving
(:func:`diagnose`): counting arguments that prove the model infeasible and name the conflicting
constraint families, without a solver."""

from __future__ import annotations

import numpy as np

from solvers.clustering_data import ClusteringIndex, ClusteringOptions


def diagnose(idx: ClusteringIndex, options: ClusteringOptions) -> tuple[list[str], list[str]]:
    """Cheap necessary-condition checks run before solving.

    Returns ``(conflicts, details)``; both empty when no obvious conflict was found (the MILP
    may still be infeasible; then :func:`solve_clustering` runs an elastic relaxation).
    """
    conflicts: list[str] = []
    details: list[str] = []
    n_cover = np.bincount(idx.pair_site, minlength=idx.n_sites)
    lonely = np.flatnonzero((n_cover == 0) & (idx.site_cand < 0))
    if len(lonely):
        names = [str(s) for s in idx.site_ids[lonely[:10]]]
        conflicts.append("assign-once")
        details.append(
            f"{len(lonely)} site(s) have no candidate master within reach and cannot be masters "
            f"themselves: {names}; raise the access reach or add candidates near them"
        )
    n_reach = np.bincount(idx.pair_cand, minlength=idx.n_cands)
    usable_cap = np.minimum(idx.capacity, n_reach)
    cannot_open = (idx.min_size > idx.capacity) | (idx.min_size > n_reach)
    bad_fixed = np.flatnonzero(cannot_open & idx.fixed)
    if len(bad_fixed):
        names = [str(c) for c in idx.cand_ids[bad_fixed[:10]]]
        conflicts += ["fixed-master", "cluster-size-min"]
        if np.any(idx.min_size[bad_fixed] > idx.capacity[bad_fixed]):
            conflicts.append("cluster-size-max")
        if options.min_cluster_keys > 0:
            conflicts.append("cluster-key-target")
        details.append(
            f"fixed master(s) {names} cannot serve the least cluster size "
            f"{int(idx.min_size[bad_fixed].max())} (capacity or sites within reach too small)"
        )
    openable = ~cannot_open
    if not np.any(openable) and idx.n_sites > 0:
        conflicts += ["cluster-size-min", "cluster-size-max"]
        if options.min_cluster_keys > 0:
            conflicts.append("cluster-key-target")
        details.append(
            f"no candidate can hold the least cluster size {int(idx.min_size.max())}: "
            f"largest capacity {int(idx.capacity.max(initial=0))}, largest number of sites "
            f"within reach of one candidate {int(n_reach.max(initial=0))}"
        )
    # sites served by a master: its slaves plus its own site if it is a site
    served = usable_cap + (idx.cand_site >= 0)
    served = np.where(openable, served, 0)
    n_fixed = int(idx.fixed.sum())
    if options.max_masters is not None and n_fixed > options.max_masters:
        conflicts += ["master-budget", "fixed-master"]
        details.append(f"{n_fixed} fixed masters exceed the master budget {options.max_masters}")
    fixed_cost = float(idx.cost[idx.fixed].sum())
    if options.max_cost is not None and fixed_cost > options.max_cost + 1e-9:
        conflicts += ["cost-budget", "fixed-master"]
        details.append(f"fixed masters cost {fixed_cost:g} > cost budget {options.max_cost:g}")
    total = float(served.sum())
    if total < idx.n_sites:
        conflicts.append("cluster-size-max")
        details.append(
            f"all candidates together can serve at most {int(total)} of {idx.n_sites} sites "
            "(capacity and reach); raise capacities or add candidates"
        )
    elif options.max_masters is not None:
        k = options.max_masters
        top = np.sort(served[~idx.fixed])[::-1][: max(0, k - n_fixed)].sum() + served[idx.fixed].sum()
        if top < idx.n_sites:
            conflicts += ["master-budget", "cluster-size-max"]
            details.append(
                f"{k} masters with the largest capacities serve at most {int(top)} of "
                f"{idx.n_sites} sites; raise the master budget or the capacity"
            )
    if options.max_cost is not None and options.max_cost >= 0:
        _cost_budget_check(idx, options.max_cost, served, fixed_cost, conflicts, details)
    return list(dict.fromkeys(conflicts)), details


def _cost_budget_check(
    idx: ClusteringIndex,
    max_cost: float,
    served: np.ndarray,
    fixed_cost: float,
    conflicts: list[str],
    details: list[str],
) -> None:
    """``cost-budget`` against the least cost to serve every site (a fractional knapsack lower
    bound over what each candidate can serve); appends to ``conflicts`` and ``details``."""
    # least cost to serve every site: fractional knapsack lower bound
    free = ~idx.fixed & (served > 0)
    ratio = np.where(served[free] > 0, idx.cost[free] / np.maximum(served[free], 1), np.inf)
    order = np.argsort(ratio)
    need = idx.n_sites - float(served[idx.fixed].sum())
    least = fixed_cost
    for c in order:
        if need <= 0:
            break
        take = min(need, float(served[free][c]))
        least += ratio[c] * take
        need -= take
    if need <= 0 and least > max_cost + 1e-9:
        conflicts += ["cost-budget", "cluster-size-max"]
        details.append(f"serving all {idx.n_sites} sites costs at least {least:.6g} > cost budget {max_cost:g}")
