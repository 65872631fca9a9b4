"""Each demand's repeater chain, rebuilt from a design's links table (cluster paper Eq. 7-9).

The design check does not trust the demands table's own chain figures: hops, the worst
segment's success probability and the memory of a demand come from the links its path
uses, with Eq. 7 evaluated by :func:`planner.physics.link_success_probability`. Where the
demands table disagrees, the demand's ``problems`` say so.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from planner import physics
from planner.errors import InputFormatError, ValidationError
from planner.model.design import Design
from planner.model.scenario import Scenario
from planner.simulate.sampling import finite

logger = logging.getLogger(__name__)

__all__ = ["CHAIN_COLUMNS", "chains_from_links"]

#: Columns of :func:`chains_from_links` (plus ``problems``).
CHAIN_COLUMNS = ["demand_id", "hops", "p_worst", "memory", "distances_km", "rate_shared_factor"]


def _eq7(spacing_km: Any, alpha_db_per_km: float) -> Any:
    """Eq. 7 of the design's spacings; a spacing that is not a finite length >= 0 is a bad design file."""
    try:
        return np.asarray(physics.link_success_probability(spacing_km, alpha_db_per_km=alpha_db_per_km))
    except ValidationError as exc:
        raise InputFormatError(
            f"design.json links: spacing_km is not a length >= 0 ({exc}); re-run 'qkdplan plan'",
            source="design.json",
        ) from None


def _log_links_off_eq7(lk: pd.DataFrame, alpha_db_per_km: float) -> None:
    """Log every link whose ``p_link`` is not Eq. 7 of its ``spacing_km``."""
    p_seg = _eq7(lk["spacing_km"].astype(float).to_numpy(), alpha_db_per_km)
    p_link = lk["p_link"].astype(float).to_numpy()
    bad = np.abs(p_seg - p_link) > 1e-9 * np.maximum(p_seg, 1e-300) + 1e-15
    for lid in lk.index[bad]:
        logger.warning(
            "link %s: p_link %.6g is not Eq. 7 of spacing %.6g km",
            lid,
            lk.at[lid, "p_link"],
            lk.at[lid, "spacing_km"],
        )


def _chain_row(demand_id: str, sub: pd.DataFrame, alpha_db_per_km: float) -> dict[str, Any]:
    """The chain over the links ``sub`` (in path order): hops, worst p, memory, hop lengths, sharing."""
    reps = sub["repeaters"].astype(int).to_numpy()
    seg = sub["spacing_km"].astype(float).to_numpy()
    mem = sub["memory_units"].astype(float).to_numpy()
    use = (
        np.maximum(sub["demands_using"].astype(float).to_numpy(), 1.0) if "demands_using" in sub else np.ones(len(sub))
    )
    p = _eq7(seg, alpha_db_per_km)
    hops = int((reps + 1).sum())
    p_worst = float(p.min())
    memory = float(mem.min())
    dist = tuple(float(s) for s, r in zip(seg, reps, strict=True) for _ in range(int(r) + 1))
    # memory time-shared equally between the demands of each link: bottleneck of m_l p_l / u_l
    shared = float((mem * p / use).min() / (memory * p_worst)) if memory * p_worst > 0 else None
    return {
        "demand_id": demand_id,
        "hops": hops,
        "p_worst": p_worst,
        "memory": memory,
        "distances_km": dist,
        "rate_shared_factor": shared,
    }


def _disagreements(rec: Any, row: dict[str, Any], columns: pd.Index) -> list[str]:
    """Where the demands table's ``hops`` / ``p_worst`` differ from the rebuilt chain ``row``."""
    out = []
    hops, p_worst = row["hops"], row["p_worst"]
    if "hops" in columns and finite(getattr(rec, "hops", None)) and int(rec.hops) != hops:
        out.append(f"demands.hops = {int(rec.hops)} but its links give {hops}")
    if (
        "p_worst" in columns
        and finite(getattr(rec, "p_worst", None))
        and not math.isclose(float(rec.p_worst), p_worst, rel_tol=1e-6)
    ):
        out.append(f"demands.p_worst = {float(rec.p_worst):.6g} but its links give {p_worst:.6g}")
    return out


def chains_from_links(design: Design, scenario: Scenario) -> pd.DataFrame:
    """Per demand: hops, worst-segment p, memory and hop lengths rebuilt from the links table.

    One row per demand in table order (columns :data:`CHAIN_COLUMNS`; None where the
    demand's path names no links or links missing from the table). Column ``problems``
    names inconsistencies (a demand whose hop count or worst p in the demands table
    differs from its links); a link whose ``p_link`` is not Eq. 7 of its spacing is logged.
    """
    dem, links = design.demands, design.links
    alpha = scenario.physics.alpha_db_per_km
    problems: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    lk = links.set_index(links["link_id"].astype(str)) if len(links) else links
    if len(links):
        _log_links_off_eq7(lk, alpha)
    for rec in dem.itertuples(index=False):
        did = str(rec.demand_id)
        ids = [x for x in str(getattr(rec, "links", "")).split(";") if x]
        if not len(links) or not ids or any(x not in lk.index for x in ids):
            rows.append(dict.fromkeys(CHAIN_COLUMNS) | {"demand_id": did})
            if ids:
                problems.setdefault(did, []).append("path uses links missing from the links table")
            continue
        row = _chain_row(did, lk.loc[ids], alpha)
        rows.append(row)
        problems.setdefault(did, []).extend(_disagreements(rec, row, dem.columns))
    table = pd.DataFrame(rows, columns=CHAIN_COLUMNS)
    table["problems"] = ["; ".join(problems.get(d, [])) for d in table["demand_id"]]
    return table
