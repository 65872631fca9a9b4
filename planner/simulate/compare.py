"""Comparison of a design's predictions with their simulation: pair rows, flags, totals, worst pairs.

A pair is **flagged** when its prediction lies outside the simulated confidence interval
*and* differs by more than the tolerance, or when the design's tables contradict each other.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from planner.physics import PhysicsParameters
from planner.simulate.demand_work import DemandSpec
from planner.simulate.sampling import finite, float_or_none

__all__ = ["PAIR_COLUMNS", "cluster_pair_row", "demand_pair_row", "totals", "worst_pairs"]

#: Columns of the ``pairs`` table of a simulation (one row per cluster and per demand).
PAIR_COLUMNS = [
    "pair",
    "kind",
    "source",
    "target",
    "rate_unit",
    "rate_predicted",
    "rate_simulated",
    "rate_ci_low",
    "rate_ci_high",
    "rate_rel_error",
    "security_predicted",
    "security_simulated",
    "security_ci_low",
    "security_ci_high",
    "security_abs_error",
    "flagged",
    "flag_reason",
    "hops",
    "p_worst",
    "memory",
    "chain_cycles",
    "rate_shared",
    "time_per_pair_s",
    "latency_predicted_s",
    "latency_first_pair_s",
    "latency_ci_low_s",
    "latency_ci_high_s",
    "rate_physical",
    "security_route",
    "paths",
    "segments",
    "eps_met",
    "global_keys",
    "security_eps_predicted",
    "security_eps_simulated",
    "security_trials",
    "requests",
    "requests_served",
    "requests_refused_eps",
    "requests_blocked_pool",
    "key_bits_delivered",
    "link_bits_consumed",
    "key_pool_depletion",
    "served_before_pool_block",
    "note",
]


def _flag_rate(
    pred: float | None, sim: float | None, low: float | None, high: float | None, tol: float
) -> tuple[float | None, str | None]:
    if pred is None or sim is None or low is None or high is None:
        return None, None
    rel = (sim - pred) / pred if pred > 0 else (math.inf if sim > 0 else 0.0)
    if not (low <= pred <= high) and abs(rel) > tol:
        return rel, (f"rate: predicted {pred:.4g} outside simulated 99% CI [{low:.4g}, {high:.4g}] ({100 * rel:+.1f}%)")
    return rel, None


def _flag_security(
    label: str,
    pred: float | None,
    sim: float | None,
    low: float | None,
    high: float | None,
    tol: float,
) -> tuple[float | None, str | None]:
    if pred is None or sim is None or low is None or high is None:
        return None, None
    err = sim - pred
    if not (low - 1e-12 <= pred <= high + 1e-12) and abs(err) > tol:
        return err, (f"{label}: predicted {pred:.4g} outside simulated 99% CI [{low:.4g}, {high:.4g}] ({err:+.3f})")
    return err, None


def cluster_pair_row(c: dict[str, Any], tol: dict[str, float]) -> dict[str, Any]:
    """The ``pairs`` row of cluster row ``c`` (which gets ``rate_rel_error``, ``flagged`` and
    ``flag_reason`` too)."""
    pred, sim = c["keys_predicted"], c.get("keys_simulated")
    rel, reason = _flag_rate(pred, sim, c.get("keys_ci_low"), c.get("keys_ci_high"), tol["rate_rel"])
    reasons = [x for x in (c.get("problems"), reason) if x]
    c["rate_rel_error"] = rel
    c["flagged"] = bool(reasons)
    c["flag_reason"] = "; ".join(reasons)
    row = dict.fromkeys(PAIR_COLUMNS)
    row.update(
        pair=f"cluster {c['cluster']}",
        kind="intra-cluster",
        source=c["master"],
        target=f"{c['n_slaves']} slaves",
        rate_unit="key bits/attempt",
        rate_predicted=pred,
        rate_simulated=sim,
        rate_ci_low=c.get("keys_ci_low"),
        rate_ci_high=c.get("keys_ci_high"),
        rate_rel_error=rel,
        flagged=bool(reasons),
        flag_reason="; ".join(reasons),
        memory=c["memory_master"],
        chain_cycles=None,
    )
    return row


def _security_reasons(
    rec: Any,
    res: dict[str, Any],
    sec_pred: float | None,
    tol: dict[str, float],
    *,
    has_security: bool,
    security_exact: bool,
) -> tuple[float | None, list[str]]:
    """Security error (simulated - predicted) of a demand and its security flag reasons, in order:
    outside the CI (only on an exact fibre graph), SMR route disagreeing with the design, SMR below
    the best single path, eps-key security outside its CI."""
    reasons = []
    err, sreason = _flag_security(
        "security",
        sec_pred,
        res.get("security_simulated"),
        res.get("security_ci_low"),
        res.get("security_ci_high"),
        tol["security_abs"],
    )
    if sreason and security_exact:
        reasons.append(sreason)
    if (
        security_exact
        and sec_pred is not None
        and res.get("security_route") is not None
        and not math.isclose(sec_pred, res["security_route"], rel_tol=1e-6, abs_tol=1e-9)
    ):
        reasons.append(
            f"security: SMR on the fibre graph gives {res['security_route']:.4g}, the design states {sec_pred:.4g}"
        )
    single = float_or_none(getattr(rec, "security_single_path", None)) if has_security else None
    if sec_pred is not None and single is not None and sec_pred < single - tol["security_abs"]:
        reasons.append(
            f"routing: SMR security {sec_pred:.4g} is below the best single path's {single:.4g} "
            f"(segments {res.get('segments')}, paths {res.get('paths')}: a segment lost its paths)"
        )
    _, ereason = _flag_security(
        "eps-key security",
        res.get("security_eps_predicted"),
        res.get("security_eps_simulated"),
        res.get("security_eps_ci_low"),
        res.get("security_eps_ci_high"),
        tol["security_abs"],
    )
    if ereason:
        reasons.append(ereason)
    return err, reasons


def demand_pair_row(
    rec: Any,
    chain: pd.Series,
    spec: DemandSpec,
    res: dict[str, Any],
    pool: dict[str, Any],
    ph: PhysicsParameters,
    tol: dict[str, float],
    *,
    has_rate: bool,
    has_security: bool,
    security_exact: bool = True,
) -> dict[str, Any]:
    """The ``pairs`` row (columns :data:`PAIR_COLUMNS`) of demand ``rec``: its predictions from the
    demands table, the simulated figures ``res`` and key-pool outcome ``pool``, and its flags."""
    row = dict.fromkeys(PAIR_COLUMNS)
    reasons = [chain["problems"]] if chain.get("problems") else []
    rate_pred = float_or_none(getattr(rec, "rate", None)) if has_rate else None
    sim = res.get("rate_simulated")
    rel, reason = _flag_rate(rate_pred, sim, res.get("rate_ci_low"), res.get("rate_ci_high"), tol["rate_rel"])
    if reason:
        reasons.append(reason)
    sec_pred = float_or_none(getattr(rec, "security", None)) if has_security else None
    err, sec_reasons = _security_reasons(
        rec, res, sec_pred, tol, has_security=has_security, security_exact=security_exact
    )
    reasons.extend(sec_reasons)
    # one attempt slot lasts the scenario's attempt time, but at least the longest hop's flight time
    hops_km = chain.get("distances_km")
    longest_km = max(hops_km) if isinstance(hops_km, tuple) and hops_km else 0.0
    slot_s = max(ph.attempt_time_s, longest_km / ph.speed_km_per_s)
    shared = chain.get("rate_shared_factor")
    row.update(
        pair=str(rec.demand_id),
        kind="inter-cluster",
        source=str(rec.source),
        target=str(rec.target),
        rate_unit="pairs/attempt",
        rate_predicted=rate_pred,
        rate_simulated=sim,
        rate_ci_low=res.get("rate_ci_low"),
        rate_ci_high=res.get("rate_ci_high"),
        rate_rel_error=rel,
        security_predicted=sec_pred,
        security_simulated=res.get("security_simulated"),
        security_ci_low=res.get("security_ci_low"),
        security_ci_high=res.get("security_ci_high"),
        security_abs_error=err,
        flagged=bool(reasons),
        flag_reason="; ".join(reasons),
        hops=spec.hops,
        p_worst=spec.p_worst,
        memory=spec.memory,
        chain_cycles=spec.cycles if spec.hops is not None else None,
        rate_shared=(sim * shared) if sim is not None and finite(shared) else None,
        time_per_pair_s=(slot_s / sim) if sim else None,
        latency_predicted_s=float_or_none(getattr(rec, "latency_s", None)) if has_rate else None,
        latency_first_pair_s=res.get("latency_first_pair_s"),
        latency_ci_low_s=res.get("latency_ci_low_s"),
        latency_ci_high_s=res.get("latency_ci_high_s"),
        rate_physical=res.get("rate_physical"),
        security_route=res.get("security_route"),
        paths=res.get("paths"),
        segments=res.get("segments"),
        eps_met=res.get("eps_met"),
        global_keys=res.get("global_keys"),
        security_eps_predicted=res.get("security_eps_predicted"),
        security_eps_simulated=res.get("security_eps_simulated"),
        security_trials=res.get("security_trials"),
    )
    row.update(pool)
    row["note"] = res.get("chain_note")
    return row


def totals(pairs: list[dict[str, Any]], links: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, sums and extremes over the ``pairs`` rows and key-pool ``links`` of a run."""
    df = pd.DataFrame(pairs, columns=PAIR_COLUMNS)
    inter = df[df["kind"] == "inter-cluster"]
    intra = df[df["kind"] == "intra-cluster"]

    def col(frame: pd.DataFrame, name: str) -> pd.Series:
        return pd.to_numeric(frame[name], errors="coerce")

    def agg(frame: pd.DataFrame, name: str, how: str) -> float | None:
        s = col(frame, name).dropna()
        return float(getattr(s, how)()) if len(s) else None

    def count(frame: pd.DataFrame, name: str) -> int:
        return int(col(frame, name).fillna(0).sum())

    return {
        "n_pairs": len(df),
        "n_inter_cluster": len(inter),
        "n_intra_cluster": len(intra),
        "n_flagged": int(df["flagged"].astype(bool).sum()) if len(df) else 0,
        "n_rate_not_simulated": int((inter["rate_predicted"].notna() & inter["rate_simulated"].isna()).sum()),
        "flagged_pairs": [str(p) for p in df.loc[df["flagged"].astype(bool), "pair"]] if len(df) else [],
        "inter_rate_predicted_sum": agg(inter, "rate_predicted", "sum"),
        "inter_rate_simulated_sum": agg(inter, "rate_simulated", "sum"),
        "inter_rate_shared_sum": agg(inter, "rate_shared", "sum"),
        "inter_rate_simulated_min": agg(inter, "rate_simulated", "min"),
        "intra_keys_predicted_sum": agg(intra, "rate_predicted", "sum"),
        "intra_keys_simulated_sum": agg(intra, "rate_simulated", "sum"),
        "max_abs_rate_rel_error": agg(df.assign(a=col(df, "rate_rel_error").abs()), "a", "max"),
        "max_abs_security_error": agg(df.assign(a=col(df, "security_abs_error").abs()), "a", "max"),
        "security_predicted_min": agg(inter, "security_predicted", "min"),
        "security_simulated_min": agg(inter, "security_simulated", "min"),
        "latency_predicted_max_s": agg(inter, "latency_predicted_s", "max"),
        "latency_first_pair_max_s": agg(inter, "latency_first_pair_s", "max"),
        "n_eps_met": int(inter["eps_met"].fillna(False).astype(bool).sum()) if len(inter) else 0,
        "requests": count(inter, "requests"),
        "requests_served": count(inter, "requests_served"),
        "requests_refused_eps": count(inter, "requests_refused_eps"),
        "requests_blocked_pool": count(inter, "requests_blocked_pool"),
        "key_bits_delivered": count(inter, "key_bits_delivered"),
        "link_bits_consumed": count(inter, "link_bits_consumed"),
        "fibre_links_used": len(links),
        "fibre_links_depleted_90pct": sum(1 for x in links if x["depletion"] >= 0.9),
        "max_link_depletion": max((x["depletion"] for x in links), default=None),
    }


def worst_pairs(pairs: list[dict[str, Any]], n: int = 5) -> dict[str, list[dict[str, Any]]]:
    """The ``n`` pairs with the largest rate and security gaps and the lowest simulated figures."""
    df = pd.DataFrame(pairs, columns=PAIR_COLUMNS)
    keep = [
        "pair",
        "kind",
        "rate_predicted",
        "rate_simulated",
        "rate_rel_error",
        "security_predicted",
        "security_simulated",
        "security_abs_error",
        "flagged",
    ]

    def top(frame: pd.DataFrame, key: pd.Series, ascending: bool) -> list[dict[str, Any]]:
        order = key.dropna().sort_values(ascending=ascending, kind="mergesort").index[:n]
        return frame.loc[order, keep].to_dict(orient="records")

    inter = df[df["kind"] == "inter-cluster"]
    return {
        "rate_gap": top(df, pd.to_numeric(df["rate_rel_error"], errors="coerce").abs(), False),
        "security_gap": top(df, pd.to_numeric(df["security_abs_error"], errors="coerce").abs(), False),
        "lowest_rate": top(inter, pd.to_numeric(inter["rate_simulated"], errors="coerce"), True),
        "lowest_security": top(inter, pd.to_numeric(inter["security_simulated"], errors="coerce"), True),
    }
