"""Seeded, connected Waxman random graphs (Waxman 1988; Salama's variant).

Nodes are placed uniformly at random in the unit square; each pair (u, v) at
Euclidean distance ``d`` is joined independently with probability

    P(u, v) = beta * exp(-d / (alpha * L))

where ``L`` is the largest distance between any two placed nodes. This is the
convention of :func:`networkx.waxman_graph` (``alpha`` scales the distance,
``beta`` the density). The SMR paper uses Waxman-Salama topologies of 100 nodes
without stating alpha/beta; qkdplan's defaults ``alpha=0.15, beta=0.6`` give a
mean degree of about 8 at 100 nodes.

Connectivity is ensured by rejection: a disconnected draw is discarded and the
same generator draws again, so the result is a sample of the Waxman model
conditioned on being connected and is fully determined by the generator state.
"""

from __future__ import annotations

import logging

import networkx as nx
import numpy as np

from planner.errors import ValidationError

logger = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.15
DEFAULT_BETA = 0.6


def waxman_graph(
    n_nodes: int,
    rng: np.random.Generator,
    *,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    max_attempts: int = 1000,
    largest_component: bool = False,
) -> nx.Graph:
    """A connected Waxman graph with nodes ``0..n_nodes-1``.

    Node attribute ``pos`` holds (x, y) in the unit square; edge attribute
    ``length`` holds the Euclidean length (unit-square units). Guarantees: the
    graph is connected, simple, and identical for identical generator states.
    For large graphs (more than 2 000 nodes) candidate pairs are restricted to
    distances below ``alpha * L * 12`` (the omitted probability is below
    ``beta * exp(-12)``), which keeps memory linear in the number of edges.

    With ``largest_component=True`` no redraw happens: the largest connected
    component of one draw is returned (fewer nodes; used for very large sparse
    graphs, where isolated nodes make a fully connected draw improbable).

    Raises ``ValidationError`` for bad parameters and when no connected graph
    was drawn in ``max_attempts`` tries (parameters too sparse).
    """
    if n_nodes < 2:
        raise ValidationError(f"n_nodes={n_nodes} must be at least 2")
    if not (alpha > 0 and 0 < beta <= 1):
        raise ValidationError(
            f"Waxman parameters alpha={alpha}, beta={beta} out of range",
            source="waxman_graph (need alpha > 0 and 0 < beta <= 1)",
        )
    for attempt in range(max_attempts):
        graph = _draw(n_nodes, rng, alpha=alpha, beta=beta)
        if largest_component:
            nodes = max(nx.connected_components(graph), key=len)
            return graph.subgraph(nodes).copy()
        if nx.is_connected(graph):
            if attempt:
                logger.debug("Waxman graph connected after %d redraws", attempt)
            return graph
    raise ValidationError(
        f"no connected Waxman graph with n={n_nodes}, alpha={alpha}, beta={beta} "
        f"in {max_attempts} draws; increase alpha or beta"
    )


def _draw(n_nodes: int, rng: np.random.Generator, *, alpha: float, beta: float) -> nx.Graph:
    pos = rng.random((n_nodes, 2))
    if n_nodes <= 2000:
        diff = pos[:, None, :] - pos[None, :, :]
        dist = np.sqrt((diff**2).sum(axis=-1))
        max_dist = float(dist.max())
        iu, ju = np.triu_indices(n_nodes, k=1)
        d = dist[iu, ju]
    else:
        from scipy.spatial import cKDTree

        max_dist = _max_pairwise_distance(pos)
        tree = cKDTree(pos)
        pairs = tree.query_pairs(r=alpha * max_dist * 12.0, output_type="ndarray")
        iu, ju = pairs[:, 0], pairs[:, 1]
        order = np.lexsort((ju, iu))
        iu, ju = iu[order], ju[order]
        d = np.sqrt(((pos[iu] - pos[ju]) ** 2).sum(axis=1))
    prob = beta * np.exp(-d / (alpha * max_dist))
    keep = rng.random(d.shape[0]) < prob
    graph = nx.Graph()
    graph.add_nodes_from((i, {"pos": (float(pos[i, 0]), float(pos[i, 1]))}) for i in range(n_nodes))
    graph.add_edges_from(
        (int(u), int(v), {"length": float(w)}) for u, v, w in zip(iu[keep], ju[keep], d[keep], strict=True)
    )
    return graph


def _max_pairwise_distance(pos: np.ndarray) -> float:
    """Diameter of a point set (exact, via its convex hull)."""
    from scipy.spatial import ConvexHull

    hull = pos[ConvexHull(pos).vertices]
    diff = hull[:, None, :] - hull[None, :, :]
    return float(np.sqrt((diff**2).sum(axis=-1)).max())
