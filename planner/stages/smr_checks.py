"""SMR verification of many demands, spread over the process-wide executor.

The trusted-relay stage checks every demand with :func:`planner.routing.smr`
for its chosen relays and for each comparison selection; on a national plan
that is thousands of routings on a graph of thousands of sites. :func:`smr_rows`
runs them through :func:`planner.runtime.parallel.map_chunks`, so ``--workers`` and
``--scheduler tcp://...`` spread them over local processes or a Dask cluster;
without an executor set it runs serially, exactly as a plain loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pandas as pd

from planner.routing import smr
from planner.runtime.parallel import Executor, map_chunks

#: Fewer routings than this run in this process even when local worker processes are set.
MIN_PARALLEL_ROUTINGS = 200

SMR_COLUMNS = ["demand_id", "security", "segments", "paths", "key_consumption", "trusted_on_path"]


@dataclass(frozen=True)
class SmrContext:
    """What every check shares: the fibre graph, the trusted relays and each site's security."""

    graph: nx.Graph
    trusted: frozenset[str]
    security: Mapping[str, float]


def smr_row(ctx: SmrContext, demand: tuple[str, Any, Any]) -> dict[str, Any]:
    """SMR routing of one ``(demand_id, source, target)``: security, segments, paths, key consumption.

    ``key_consumption`` is the number of link-key bits consumed per delivered
    end-to-end key bit when all path keys of all segments are combined (the
    sum of the hop counts of every path); ``security`` is 0 when no key can
    be delivered.
    """
    demand_id, source, target = demand
    res = smr(ctx.graph, source, target, trusted=ctx.trusted, security=ctx.security)
    return {
        "demand_id": demand_id,
        "security": float(res.security) if res.delivered else 0.0,
        "segments": len(res.segments),
        "paths": int(res.n_paths),
        "key_consumption": int(res.total_hops),
        "trusted_on_path": ";".join(str(x) for x in res.segment_nodes[1:-1]),
    }


def smr_rows(
    graph: nx.Graph,
    demands: pd.DataFrame,
    trusted: set[str],
    security: Mapping[str, float],
    *,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """One :func:`smr_row` per row of ``demands`` (columns ``demand, source, target``), in row order."""
    ctx = SmrContext(graph, frozenset(trusted), dict(security))
    items = list(zip(demands["demand"], demands["source"], demands["target"], strict=True))
    rows = map_chunks(smr_row, ctx, items, executor=executor, min_items_for_processes=MIN_PARALLEL_ROUTINGS)
    return pd.DataFrame(rows, columns=SMR_COLUMNS)
