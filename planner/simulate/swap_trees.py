"""Swap trees: the orders in which a repeater chain's entanglement swaps are done.

A :class:`SwapTree` is a binary tree over the hops of a chain; the simulators of
:mod:`planner.simulate.chain` build end-to-end pairs along one. :func:`balanced_tree`
(nested, minimum depth) and :func:`sequential_tree` (hop by hop) are fixed orders;
:func:`eq9_schedule` is the rotation of minimum-depth trees whose long-run rate is
Eq. 9 of the cluster paper, and :func:`eq9_bottleneck_hops` the hops that limit it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planner.errors import ProblemCollector

__all__ = [
    "SwapTree",
    "balanced_tree",
    "check_hops",
    "eq9_bottleneck_hops",
    "eq9_schedule",
    "sequential_tree",
]

Nested = int | tuple["Nested", "Nested"]


@dataclass(frozen=True)
class SwapTree:
    """A swap order over ``hops`` hops as a binary tree.

    Node 0 is the root and parents precede their children. A leaf holds one hop
    (``leaf_hop[v] >= 0``); an internal node swaps the pairs of its two children at the
    node between them. ``lo[v]``/``hi[v]`` are the chain nodes (0..hops) its pair spans.
    """

    hops: int
    left: tuple[int, ...]
    right: tuple[int, ...]
    leaf_hop: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @property
    def n_nodes(self) -> int:
        return len(self.left)

    def hop_depths(self) -> NDArray[np.int64]:
        """Number of swaps each hop's link pair goes through on its way to the root."""
        depth = np.zeros(self.n_nodes, dtype=np.int64)
        for v in range(self.n_nodes):
            for c in (self.left[v], self.right[v]):
                if c >= 0:
                    depth[c] = depth[v] + 1
        out = np.zeros(self.hops, dtype=np.int64)
        for v, h in enumerate(self.leaf_hop):
            if h >= 0:
                out[h] = depth[v]
        return out

    @property
    def rounds(self) -> int:
        """Depth of the tree: swap rounds on the longest root-to-leaf path."""
        return int(self.hop_depths().max())

    def leaf_of_hop(self) -> NDArray[np.int64]:
        out = np.full(self.hops, -1, dtype=np.int64)
        for v, h in enumerate(self.leaf_hop):
            if h >= 0:
                out[h] = v
        return out


def _from_nested(structure: Nested, hops: int) -> SwapTree:
    left: list[int] = []
    right: list[int] = []
    leaf: list[int] = []
    lo: list[int] = []
    hi: list[int] = []
    queue: list[Nested] = [structure]
    head = 0
    while head < len(queue):
        item = queue[head]
        head += 1
        if isinstance(item, int):
            left.append(-1)
            right.append(-1)
            leaf.append(item)
            lo.append(item)
            hi.append(item + 1)
        else:
            a, b = item
            idx_a = len(queue)
            queue.extend([a, b])
            left.append(idx_a)
            right.append(idx_a + 1)
            leaf.append(-1)
            lo.append(_span(a)[0])
            hi.append(_span(b)[1])
    return SwapTree(hops, tuple(left), tuple(right), tuple(leaf), tuple(lo), tuple(hi))


def _span(item: Nested) -> tuple[int, int]:
    if isinstance(item, int):
        return item, item + 1
    return _span(item[0])[0], _span(item[1])[1]


def check_hops(hops: int) -> int:
    """``hops`` as an int; raises ``ValidationError`` unless it is an integer >= 1."""
    pc = ProblemCollector("chain simulation")
    if isinstance(hops, bool) or int(hops) != hops or hops < 1:
        pc.add("hops", f"must be an integer >= 1, got {hops!r}", "pass the number of hops k")
    pc.raise_if_any()
    return int(hops)


def balanced_tree(hops: int) -> SwapTree:
    """The nested swap order: split the chain in halves (left half rounded up), recursively.

    Its depth is ``ceil(log2 k)``, the minimum; the hops in the deepest level are the
    bottleneck when this one tree is used for every pair.
    """
    k = check_hops(hops)

    def rec(a: int, b: int) -> Nested:
        if b - a == 1:
            return a
        mid = a + math.ceil((b - a) / 2)
        return (rec(a, mid), rec(mid, b))

    return _from_nested(rec(0, k), k)


def sequential_tree(hops: int) -> SwapTree:
    """Hop-by-hop order: extend the pair from the left end one hop per swap (depth k-1)."""
    k = check_hops(hops)
    item: Nested = 0
    for h in range(1, k):
        item = (item, h)
    return _from_nested(item, k)


def _tree_from_units(units: Sequence[Nested], hops: int) -> SwapTree:
    level = list(units)
    while len(level) > 1:
        level = [(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return _from_nested(level[0], hops)


def eq9_schedule(hops: int) -> list[SwapTree]:
    """The minimum-depth swap trees that Eq. 9's rate assumes, to be used with equal weight.

    With ``n = ceil(log2 k) - 1`` a minimum-depth tree has ``2**n`` units at depth ``n``,
    ``P = k - 2**n`` of which are a pair of adjacent hops swapped in a first round. Any
    placement of the ``P`` pairs gives a valid tree. The pairs are placed as one block of
    consecutive aligned pair slots, rotated cyclically over all slots: slots
    ``(0,1), (2,3), ...`` for even ``k``, and ``(1,2), (3,4), ...`` for odd ``k`` (hop 0
    then never pairs). Averaged over the rotations every hop of the bottleneck set
    (:func:`eq9_bottleneck_hops`) is in a first-round pair with the same frequency
    ``2P/k`` (even) or ``2P/(k-1)`` (odd), which is the least possible maximum; this
    balance is what Eq. 9 prices.
    """
    k = check_hops(hops)
    if k == 1:
        return [_from_nested(0, 1)]
    n = math.ceil(math.log2(k)) - 1
    n_pairs = k - 2**n
    first = 0 if k % 2 == 0 else 1
    slots = (k - first) // 2
    trees = []
    for r in range(slots):
        deep = {(r + i) % slots for i in range(n_pairs)}
        units: list[Nested] = []
        h = 0
        while h < k:
            s = (h - first) // 2 if h >= first else -1
            if s >= 0 and (h - first) % 2 == 0 and s in deep:
                units.append((h, h + 1))
                h += 2
            else:
                units.append(h)
                h += 1
        if len(units) != 2**n:  # pragma: no cover - construction invariant
            raise AssertionError(f"bad unit count {len(units)} for k={k}")
        trees.append(_tree_from_units(units, k))
    return trees


def eq9_bottleneck_hops(hops: int) -> NDArray[np.int64]:
    """Hops (0-based) whose load limits the rate of :func:`eq9_schedule`.

    All hops for even ``k`` (and ``k = 1``); for odd ``k`` the hops 1, 3, ..., k-2 (the
    paper's even positions): each first-round pair covers exactly one of them.
    """
    k = check_hops(hops)
    if k == 1 or k % 2 == 0:
        return np.arange(k)
    return np.arange(1, k - 1, 2)
