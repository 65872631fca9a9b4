"""Parts of a clustering instance: restriction to some sites, and its reach components."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from solvers.clustering_data import (
    ClusteringData,
)

logger = logging.getLogger(__name__)


def restrict_to_sites(data: ClusteringData, sites: Iterable[str]) -> ClusteringData:
    """The instance on ``sites`` alone: those sites, the pairs that serve them, and the candidates
    those pairs name or that are among the sites. For a union of whole reach components (as
    :attr:`ClusteringInfeasible.sites`) this is exactly their part of the model: no pair or
    candidate of another component is lost or kept."""
    keep = {str(s) for s in sites}
    site_ids = data.sites.index.astype(str)
    pairs = data.pairs[data.pairs["site"].astype(str).isin(keep)]
    cands = keep | set(pairs["candidate"].astype(str))
    return ClusteringData(
        sites=data.sites[site_ids.isin(keep)],
        candidates=data.candidates[data.candidates.index.astype(str).isin(cands)],
        pairs=pairs,
    )


def reach_components(data: ClusteringData) -> list[ClusteringData]:
    """The connected components of the reach graph (a site and a candidate are linked when a pair
    lists them) that hold sites, each as an instance of its own, in the order of their component
    label. Without global budgets no constraint spans two of them and the objective is a sum over
    them; together they hold every site, every pair and every candidate reached by a pair or at a
    site (a candidate linked to nothing and at no site is in none)."""
    site_ids = np.asarray(data.sites.index.astype(str), dtype=object)
    cand_ids = np.asarray(data.candidates.index.astype(str), dtype=object)
    ids = pd.Index(np.unique(np.concatenate([site_ids, cand_ids])))
    a = ids.get_indexer(np.asarray(data.pairs["site"].astype(str), dtype=object))
    b = ids.get_indexer(np.asarray(data.pairs["candidate"].astype(str), dtype=object))
    _n, label = connected_components(
        sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids))), directed=False
    )
    site_label = label[ids.get_indexer(site_ids)]
    cand_label = label[ids.get_indexer(cand_ids)]
    pair_label = label[a]
    by_site, by_cand, by_pair = (np.argsort(x, kind="stable") for x in (site_label, cand_label, pair_label))
    out = []
    for comp in np.unique(site_label):
        rows = [
            order[np.searchsorted(lab[order], comp, "left") : np.searchsorted(lab[order], comp, "right")]
            for lab, order in ((site_label, by_site), (cand_label, by_cand), (pair_label, by_pair))
        ]
        out.append(
            ClusteringData(
                sites=data.sites.iloc[rows[0]], candidates=data.candidates.iloc[rows[1]], pairs=data.pairs.iloc[rows[2]]
            )
        )
    return out
