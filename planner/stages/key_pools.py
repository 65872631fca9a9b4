"""Key generation each fibre link needs from the trusted-relay layer, within the memory stage's time.

The figures (:mod:`planner.keys.pools`) are sums over the SMR routes of the backbone
demands for the design's trusted relays. Routing every demand is cheap on the bundled
networks and can take many minutes on national site lists (SMR on a 10 000-site fibre
graph costs about 0.1 s per demand), so the demands are routed in blocks, in a fixed random
order (``seed``), while the routing speed measured so far says the next block ends within
the stage's time (:func:`solvers.base.current_budget`). When time runs out the table is
summed over the demands routed (at least the first :data:`FIRST_BLOCK`): a uniform sample,
and a lower bound of every link's needs (the design says so, with the counts). Blocks of
:data:`planner.stages.trust_smr.MIN_PARALLEL_ROUTINGS` demands or more go through the
project's executor (``--workers`` / ``--scheduler``).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.keys.pools import key_bits_from_routes
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.routing import SmrResult
from planner.stages.backbone import Backbone
from planner.stages.result import StageResult
from planner.stages.trust_smr import SmrEvaluator
from solvers.base import current_budget

#: Demands routed before the routing speed is known.
FIRST_BLOCK = 8


@dataclass
class KeyPoolTable:
    """Per fibre link key needs (``links``: ``u, v, key_bits_per_round, demands_using, key_pool_bits,
    rounds_supported``) summed over ``routed`` of the ``total`` backbone demands."""

    links: pd.DataFrame
    routed: int
    total: int

    @property
    def complete(self) -> bool:
        """True when every demand was routed (the figures are exact, not lower bounds)."""
        return self.routed == self.total


def _route_in_blocks(
    ev: SmrEvaluator, trusted: frozenset[str], order: list[int], deadline: float | None
) -> tuple[list[int], list[SmrResult]]:
    """SMR routes of the demands ``order`` (in that order) for ``trusted`` while the next block fits
    before ``deadline`` (None: all). Returns the rows routed and their routes (same order)."""
    rows: list[int] = []
    routes: list[SmrResult] = []
    per_s = 0.0
    lo = 0
    while lo < len(order):
        size = FIRST_BLOCK if not rows else max(FIRST_BLOCK, len(rows))  # doubling blocks
        if deadline is not None and rows:
            fit = int((deadline - time.perf_counter()) / max(per_s, 1e-6))
            size = min(size, fit)
            if size < 1:
                break
        part = order[lo : lo + size]
        t0 = time.perf_counter()
        ev.securities(trusted, part, results=routes)
        rows.extend(part)
        lo += len(part)
        per_s = max(per_s, (time.perf_counter() - t0) / len(part))
    return rows, routes


def key_pool_table(
    network: Network, backbone: Backbone, trust: StageResult | None, scenario: Scenario, *, seed: int = 0
) -> KeyPoolTable | None:
    """Per fibre link: key bits one round of requests needs, pool bits available, rounds the pool serves.

    None without a trusted-relay layer or demands. Guarantees: with ``routed == total`` the
    figures are exact; otherwise ``key_bits_per_round`` is summed over a uniform random sample
    of the demands (``seed``) and is a lower bound of each link's needs, so ``rounds_supported``
    is an upper bound.
    """
    if trust is None or "relays" not in trust.tables or len(backbone.demands) == 0:
        return None
    r = trust.tables["relays"]
    trusted = frozenset(r.loc[r["trusted"].astype(bool), "site_id"].astype(str))
    security: dict[Hashable, float] = {str(s): float(x) for s, x in zip(r["site_id"], r["p_untrusted"], strict=True)}
    pairs = [(str(s), str(t)) for s, t in zip(backbone.demands["source"], backbone.demands["target"], strict=True)]
    ev = SmrEvaluator(network.graph(), pairs, security)
    order = [int(i) for i in np.random.default_rng(seed).permutation(len(pairs))]
    budget = current_budget()
    deadline = None if budget is None else time.perf_counter() + budget.left_s()
    rows, routes = _route_in_blocks(ev, trusted, order, deadline)
    kept = sorted(range(len(rows)), key=lambda i: rows[i])  # in demand order, however many were routed
    links, _ = key_bits_from_routes(
        [pairs[rows[i]] for i in kept], [routes[i] for i in kept], eps=scenario.security.eps
    )
    pool = int(scenario.security.key_pool_bits)
    links["key_pool_bits"] = pool
    per = links["key_bits_per_round"].astype(int)
    links["rounds_supported"] = pd.Series(
        [int(pool // b) if b > 0 else None for b in per], dtype=object, index=links.index
    )
    return KeyPoolTable(links, len(rows), len(pairs))
