"""Key-distribution routing in partially-trusted relay QKD networks.

Implements the routing half of Wang, Li, Xue et al., *A Segment-based Multipath
Distribution Method in Partially-Trusted Relay Quantum Networks* (IEEE Commun.
Mag. 2023, "the SMR paper") and the baselines it is compared with. Modules:

- :mod:`planner.routing.security` -- relay security probabilities
  (:class:`RelaySecurity`), the route result (:class:`SmrResult`) and its exact
  security (:func:`multipath_security`);
- :mod:`planner.routing.graph` -- rank topology (:class:`Topology`) and the
  deterministic node-weighted Dijkstra search;
- :mod:`planner.routing.exdijkstra` -- :func:`ex_dijkstra` and :class:`Router`, the
  per-request state shared by every method;
- :mod:`planner.routing.smr_routing` -- :func:`smr` (and :func:`route_smr` on a prepared router);
- :mod:`planner.routing.baselines` -- :func:`shortest_path_route`,
  :func:`disjoint_multipath`, :func:`msp`, :func:`msp_disjoint`;
- :mod:`planner.routing.request` -- :class:`RequestRouter`, one request routed many times.

Every method returns the same :class:`SmrResult`, so methods can be compared.
Interpretation choices that change results are listed in ``docs/smr_decisions.md``.

Routing many demands on one graph and trusted set: build the topology once and one
:class:`Router` per trusted set, then call :func:`route_smr` per demand::

    topo = Topology(graph)
    router = Router(graph, RelaySecurity(security, trusted), topo=topo)
    check_endpoints(graph, s, t)
    result = route_smr(router, s, t)

The result equals :func:`smr` on the same graph, trusted set and security.
"""

from planner.routing.baselines import disjoint_multipath, msp, msp_disjoint, shortest_path_route
from planner.routing.exdijkstra import Router, ex_dijkstra
from planner.routing.graph import Topology, edge_key
from planner.routing.request import RequestRouter
from planner.routing.security import (
    MAX_SHARED_RELAYS_EXACT,
    RelaySecurity,
    Segment,
    SmrResult,
    check_endpoints,
    check_trusted,
    multipath_security,
)
from planner.routing.smr_routing import route_smr, smr

__all__ = [
    "MAX_SHARED_RELAYS_EXACT",
    "RelaySecurity",
    "RequestRouter",
    "Router",
    "Segment",
    "SmrResult",
    "Topology",
    "check_endpoints",
    "check_trusted",
    "disjoint_multipath",
    "edge_key",
    "ex_dijkstra",
    "msp",
    "msp_disjoint",
    "multipath_security",
    "route_smr",
    "shortest_path_route",
    "smr",
]
