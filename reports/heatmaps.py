"""Cluster x cluster aggregation of a design's demands, for heat maps of bounded size.

Clusters are put in the order of their master's position along a Hilbert
space-filling curve (so neighbouring rows are neighbouring places), then cut
into at most ``max_groups`` consecutive groups of (almost) equal size. A cell
holds an aggregate (by default the *worst*, i.e. minimum) of a demand column
over all demands between the two groups; NaN where no demand joins them. The
matrix is symmetric because demands are unordered pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.model.design import Design

#: Largest number of rows/columns of a heat map; more clusters are grouped.
MAX_GROUPS = 40
_HILBERT_BITS = 16


def hilbert_index(x: np.ndarray, y: np.ndarray, bits: int = _HILBERT_BITS) -> np.ndarray:
    """Position along a Hilbert curve of integer grid points ``0 <= x, y < 2**bits`` (vectorised)."""
    x = np.asarray(x, dtype=np.int64).copy()
    y = np.asarray(y, dtype=np.int64).copy()
    d = np.zeros_like(x)
    n = 1 << bits
    s = n >> 1
    while s > 0:
        rx = ((x & s) > 0).astype(np.int64)
        ry = ((y & s) > 0).astype(np.int64)
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant
        flip = ry == 0
        swap_x = np.where(flip & (rx == 1), n - 1 - x, x)
        swap_y = np.where(flip & (rx == 1), n - 1 - y, y)
        x, y = np.where(flip, swap_y, swap_x), np.where(flip, swap_x, swap_y)
        s >>= 1
    return d


def cluster_order(design: Design, ids: list[str]) -> list[str]:
    """``ids`` (cluster/site ids) sorted along a Hilbert curve over their lon/lat; unknown ids go last, by name."""
    s = design.sites
    pos = {str(r.site_id): (float(r.lon), float(r.lat)) for r in s.itertuples(index=False)}
    known = [i for i in ids if i in pos]
    unknown = sorted(i for i in ids if i not in pos)
    if not known:
        return unknown
    lon = np.array([pos[i][0] for i in known])
    lat = np.array([pos[i][1] for i in known])
    span = max(float(np.ptp(lon)), float(np.ptp(lat)), 1e-9)
    scale = ((1 << _HILBERT_BITS) - 1) / span
    h = hilbert_index(np.round((lon - lon.min()) * scale), np.round((lat - lat.min()) * scale))
    order = np.lexsort((np.array(known, dtype=object).astype(str), h))
    return [known[i] for i in order] + unknown


@dataclass(frozen=True)
class ClusterMatrix:
    """A symmetric group x group matrix of a demand column and how clusters were grouped."""

    values: np.ndarray  # shape (g, g); NaN = no demand between the two groups
    groups: list[list[str]]  # cluster ids of each group, in curve order
    labels: list[str]  # one label per group
    column: str
    how: str


def cluster_matrix(design: Design, column: str, *, max_groups: int = MAX_GROUPS, how: str = "min") -> ClusterMatrix:
    """Aggregate ``design.demands[column]`` over the (grouped) source x target clusters.

    ``how`` is "min" (worst rate / security; default), "max" or "mean". Guarantees:
    at most ``max_groups`` rows; every demand endpoint is in exactly one group;
    ``values[i, j] == values[j, i]``.
    """
    if how not in ("min", "max", "mean"):
        raise ValueError(f"how={how!r}: use 'min', 'max' or 'mean'")
    d = design.demands
    src = d["source"].astype(str).to_numpy() if len(d) else np.array([], dtype=str)
    tgt = d["target"].astype(str).to_numpy() if len(d) else np.array([], dtype=str)
    ids = sorted(set(src) | set(tgt))
    order = cluster_order(design, ids)
    n = len(order)
    g = max(1, min(int(max_groups), n))
    group_of = {c: (i * g) // max(n, 1) for i, c in enumerate(order)}
    groups: list[list[str]] = [[] for _ in range(g)]
    for c in order:
        groups[group_of[c]].append(c)
    names = _names(design)
    labels = [
        (names.get(grp[0], grp[0]) if len(grp) == 1 else f"{names.get(grp[0], grp[0])} +{len(grp) - 1}") if grp else ""
        for grp in groups
    ]
    values = np.full((g, g), np.nan)
    if len(d) and column in d.columns:
        v = pd.to_numeric(d[column], errors="coerce").to_numpy(dtype=float)
        a = np.array([group_of[x] for x in src])
        b = np.array([group_of[x] for x in tgt])
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        frame = pd.DataFrame({"lo": lo, "hi": hi, "v": v}).dropna(subset=["v"])
        agg = frame.groupby(["lo", "hi"])["v"].agg(how)
        for (i, j), val in agg.items():
            values[i, j] = values[j, i] = float(val)
    return ClusterMatrix(values=values, groups=groups, labels=labels, column=column, how=how)


def _names(design: Design) -> dict[str, str]:
    s = design.sites
    if "name" not in s:
        return {}
    return {str(i): str(n) for i, n in zip(s["site_id"], s["name"], strict=True)}
