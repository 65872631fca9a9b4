"""One key request end to end on the design's graph: SMR route, flexible reconstruction, block size.

:func:`route_and_reconstruct` is what the network verifier does per request; with
``simulate_bytes`` the distribution of :mod:`planner.simulate.keysim` runs on real bytes
and one eavesdropper draw decides which global keys leak.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from planner.errors import ValidationError
from planner.keys.reconstruction import ReconstructionPlan, flexible_reconstruction
from planner.routing import RelaySecurity, SmrResult, smr
from planner.simulate.keysim import (
    DEFAULT_POOL_BITS,
    LinkKeyPools,
    distribute_keys,
    draw_compromised,
    eavesdrop,
    max_block_bits,
)

__all__ = ["RequestOutcome", "route_and_reconstruct"]


@dataclass(frozen=True)
class RequestOutcome:
    """Result of routing and reconstructing keys for one request.

    ``block_bits``: bits each path key carries; ``delivered_key_bits``: global
    key bits the end points obtain (``n_global_keys * block_bits``, capped at
    the requested ``key_bits``); ``consumed_key_bits``: link-pool bits used
    (``total_hops * block_bits``; 0 when nothing is delivered, since the
    central server then does not start the distribution);
    ``security``: security of the least secure global key (0 if none);
    ``end_to_end_security``: security when all path keys are combined;
    ``consumed_bits_per_link``: link (sorted node pair) -> bits used;
    ``leaked``: per global key, from one eavesdropper draw on real bytes
    (only when ``simulate_bytes=True``).
    """

    route: SmrResult
    plan: ReconstructionPlan
    block_bits: int
    delivered_key_bits: int
    consumed_key_bits: int
    security: float
    end_to_end_security: float
    consumed_bits_per_link: Mapping[tuple[Any, Any], int] = field(default_factory=dict)
    leaked: tuple[bool, ...] | None = None

    @property
    def n_global_keys(self) -> int:
        return self.plan.n_global_keys


def route_and_reconstruct(
    graph: nx.Graph,
    source: Any,
    target: Any,
    *,
    trusted: Collection[Any],
    security: Mapping[Any, float] | float,
    eps: float,
    key_bits: int | None = None,
    rng: np.random.Generator | None = None,
    pool_bits: int = DEFAULT_POOL_BITS,
    available_bits: Mapping[tuple[Any, Any], int] | None = None,
    simulate_bytes: bool = False,
) -> RequestOutcome:
    """Route a key request with SMR, plan flexible reconstruction at ``eps``, and size it.

    ``key_bits`` (optional) is the demand: path blocks are shrunk to
    ``ceil(key_bits / m)`` (rounded up to whole bytes) when that is below the
    pool limit, so only the needed link key is consumed. ``available_bits``
    gives the remaining key of each link (sorted node pair -> bits; missing
    links hold ``pool_bits``), so a traffic simulation can deduct
    ``consumed_bits_per_link`` request by request. With
    ``simulate_bytes=True`` the distribution is run on real bytes (``rng``:
    seeded simulation-only generator, or ``secrets`` when None) and one
    eavesdropper draw decides ``leaked``.
    """
    if key_bits is not None and key_bits < 0:
        raise ValidationError(f"key_bits={key_bits} must be >= 0", source="key request")
    route = smr(graph, source, target, trusted=trusted, security=security)
    plan = flexible_reconstruction([list(seg.path_security) for seg in route.segments], eps)
    m = plan.n_global_keys
    block = max_block_bits(route, pool_bits=pool_bits, available_bits=available_bits) if m else 0
    if m and key_bits is not None:
        block = min(block, 8 * math.ceil(key_bits / m / 8))
    delivered = m * block
    if key_bits is not None:
        delivered = min(delivered, key_bits)
    consumed = route.total_hops * block if m else 0
    per_link = {link: n * block for link, n in route.link_load().items()} if m and block else {}
    leaked: tuple[bool, ...] | None = None
    if simulate_bytes and m and block:
        pools = LinkKeyPools(pool_bits=pool_bits, rng=rng)
        tr = distribute_keys(route, plan, block_bytes=block // 8, pools=pools, rng=rng)
        if not tr.keys_agree:
            raise RuntimeError("end points disagree on the global keys: simulator bug")
        relay = RelaySecurity(security, trusted)
        draw_rng = rng if rng is not None else np.random.default_rng(secrets.randbits(64))
        leaked = tuple(bool(x) for x in eavesdrop(tr, draw_compromised(tr.relays, relay, draw_rng)))
    return RequestOutcome(
        route=route,
        plan=plan,
        block_bits=block,
        delivered_key_bits=delivered,
        consumed_key_bits=consumed,
        security=plan.min_security,
        end_to_end_security=route.security,
        consumed_bits_per_link=per_link,
        leaked=leaked,
    )
