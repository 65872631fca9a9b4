"""Key generation each fibre link needs for the demand set (trusted-relay layer).

A key request asks for :data:`REQUEST_KEY_BITS` bits of
end-to-end key. A demand routed by SMR (:func:`planner.routing.smr`) over the
design's trusted relays meets ``security.eps`` with ``m`` global keys per round of
flexible reconstruction (:func:`planner.keys.reconstruction.flexible_reconstruction`); one request
then draws ``block = 8 * ceil(REQUEST_KEY_BITS / m / 8)`` bits of one-time pad from
every path that crosses a fibre link, i.e. ``load x block`` bits of that link's key
pool. These are exactly the rules the key-pool traffic of ``qkdplan simulate`` uses.

:func:`link_key_bits_per_round` sums this over all demands: the link-key bits one
*round* of requests (every eps-capable demand asks for one key) consumes per link.
A link whose pool holds ``R x`` that figure serves ``R`` rounds with no request
blocked, whatever the order of requests (the total drawn from it is exactly ``R x``
the figure); with a request rate ``r`` per demand (requests/s) the link needs
``r x`` that figure in key bits/s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import networkx as nx
import pandas as pd

from planner.keys.reconstruction import flexible_reconstruction
from planner.routing import RelaySecurity, Router, SmrResult, check_endpoints, check_trusted, route_smr

#: Bits of key one request asks for (one AES-256 key); the simulation's requests are the same size.
REQUEST_KEY_BITS = 256


def request_block_bits(global_keys: int, request_key_bits: int) -> int:
    """Pad bits one request draws from each path when ``global_keys`` keys are made per round."""
    return 8 * math.ceil(request_key_bits / global_keys / 8)


def link_key_bits_per_round(
    graph: nx.Graph,
    demands: Iterable[tuple[str, str]],
    *,
    trusted: set[str],
    security: dict[str, float],
    eps: float,
    request_key_bits: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per fibre link and per demand: key bits one round of requests draws, eps-capable demands only.

    Routes every demand with SMR on one shared router (the same routes as
    :func:`planner.routing.smr` called per demand) and sums them with :func:`key_bits_from_routes`
    (see there for the tables returned).
    """
    pairs = list(demands)
    check_trusted(graph, trusted)
    relay = RelaySecurity(security, trusted)
    relay.validate(graph)
    router = Router(graph, relay)
    routes = []
    for s, t in pairs:
        check_endpoints(graph, s, t)
        routes.append(route_smr(router, s, t))
    return key_bits_from_routes(pairs, routes, eps=eps, request_key_bits=request_key_bits)


def key_bits_from_routes(
    pairs: Sequence[tuple[str, str]],
    routes: Sequence[SmrResult],
    *,
    eps: float,
    request_key_bits: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per fibre link and per demand: key bits one round of requests draws, from the SMR ``routes``
    of the demands ``pairs`` (one route per pair, same order).

    Returns ``(links, demands)``: ``links`` with columns ``u, v`` (sorted site ids),
    ``key_bits_per_round``, ``demands_using``; ``demands`` with ``source, target,
    eps_met, global_keys, block_bits``. Guarantees: a demand that cannot meet ``eps``
    draws nothing (its requests are refused, not served); the figures are exact sums over
    the demands given (a subset of a demand set gives a lower bound of its needs per link).
    """
    if request_key_bits is None:
        request_key_bits = REQUEST_KEY_BITS
    if len(pairs) != len(routes):
        raise ValueError(f"{len(pairs)} demands but {len(routes)} routes")
    need: dict[tuple[str, str], int] = {}
    users: dict[tuple[str, str], int] = {}
    rows = []
    for (s, t), route in zip(pairs, routes, strict=True):
        m = 0
        if route.delivered:
            m = flexible_reconstruction([list(seg.path_security) for seg in route.segments], eps).n_global_keys
        block = request_block_bits(m, request_key_bits) if m else 0
        rows.append({"source": s, "target": t, "eps_met": m > 0, "global_keys": m, "block_bits": block})
        if not m:
            continue
        for (u, v), load in route.link_load().items():
            key = (min(str(u), str(v)), max(str(u), str(v)))
            need[key] = need.get(key, 0) + int(load) * block
            users[key] = users.get(key, 0) + 1
    links = pd.DataFrame(
        [
            {"u": u, "v": v, "key_bits_per_round": b, "demands_using": users[(u, v)]}
            for (u, v), b in sorted(need.items())
        ],
        columns=["u", "v", "key_bits_per_round", "demands_using"],
    )
    return links, pd.DataFrame(rows, columns=["source", "target", "eps_met", "global_keys", "block_bits"])
