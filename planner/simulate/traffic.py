"""Key-request traffic over shared link key pools (the design check's key-pool layer)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from planner.simulate.sampling import REQUEST_KEY_BITS

__all__ = ["pool_traffic"]


def pool_traffic(
    results: list[dict[str, Any]], requests: list[int], pool_bits: int, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Serve every pair's requests in random order from shared link key pools.

    A request of an ``eps``-capable pair needs, on every link of its route, ``load x
    block`` pad bits (``block`` = path-key bits so that its global keys make
    :data:`REQUEST_KEY_BITS`); it is served only if every such link still holds them
    (no partial service), else blocked. Pairs that cannot meet ``eps`` refuse their
    requests. Returns per-pair outcomes (in ``results`` order) and per-link usage.
    """
    remaining: dict[tuple[str, str], int] = {}
    used_by: dict[tuple[str, str], int] = {}
    need: list[list[tuple[tuple[str, str], int]]] = []
    for res in results:
        m = int(res.get("global_keys", 0) or 0)
        if not res.get("eps_met") or m == 0:
            need.append([])
            continue
        block = 8 * math.ceil(REQUEST_KEY_BITS / m / 8)
        items = []
        for u, v, load in res.get("link_load", []):
            e = (u, v)
            remaining.setdefault(e, pool_bits)
            used_by[e] = used_by.get(e, 0) + 1
            items.append((e, int(load) * block))
        need.append(items)
    order = rng.permutation(np.repeat(np.arange(len(results)), requests))
    served = np.zeros(len(results), dtype=np.int64)
    blocked = np.zeros(len(results), dtype=np.int64)
    first_block: list[int | None] = [None] * len(results)
    consumed = np.zeros(len(results), dtype=np.int64)
    for i in order:
        items = need[i]
        if not items:
            continue
        if all(remaining[e] >= b for e, b in items):
            for e, b in items:
                remaining[e] -= b
            served[i] += 1
            consumed[i] += sum(b for _, b in items)
        else:
            blocked[i] += 1
            if first_block[i] is None:
                first_block[i] = int(served[i])
    pairs = []
    for i, items in enumerate(need):
        refused = requests[i] if not items else 0
        depletion = max(((pool_bits - remaining[e]) / pool_bits for e, _ in items), default=None)
        pairs.append(
            {
                "requests": int(requests[i]),
                "requests_served": int(served[i]),
                "requests_refused_eps": int(refused),
                "requests_blocked_pool": int(blocked[i]),
                "key_bits_delivered": int(served[i]) * REQUEST_KEY_BITS,
                "link_bits_consumed": int(consumed[i]),
                "key_pool_depletion": depletion,
                "served_before_pool_block": first_block[i],
            }
        )
    links = [
        {
            "u": e[0],
            "v": e[1],
            "pool_bits": pool_bits,
            "consumed_bits": pool_bits - r,
            "depletion": (pool_bits - r) / pool_bits,
            "pairs_using": used_by[e],
        }
        for e, r in sorted(remaining.items())
    ]
    return pairs, links
