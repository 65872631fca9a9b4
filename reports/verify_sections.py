"""Report sections for verification figures: findings, plan-verify rounds, repeater sites, key pools.

Each function returns an HTML fragment (empty string when the design or simulation
has nothing to show), built with :func:`reports.tables.table_html`, so the report
template only includes them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

from planner.model.design import Design
from reports.tables import table_html

#: A simulation serving fewer than this share of key requests is a finding of the summary.
SERVED_FINDING_SHARE = 0.90


def findings(design: Design, sim: Mapping[str, Any] | None) -> list[str]:
    """Plain sentences for the summary: requests served below 90 %, full-load shortfalls, an unmet verify loop."""
    out: list[str] = []
    t = (sim or {}).get("totals", {})
    req = int(t.get("requests") or 0)
    if req:
        served = int(t.get("requests_served") or 0)
        if served < SERVED_FINDING_SHARE * req:
            out.append(
                f"Only {served} of {req} simulated key requests ({100 * served / req:.1f}%) were served: "
                f"{int(t.get('requests_refused_eps') or 0)} refused because the demand cannot reach eps, "
                f"{int(t.get('requests_blocked_pool') or 0)} blocked by empty link key pools. Below "
                f"{100 * SERVED_FINDING_SHARE:g}% this design does not carry its demand set "
                "(run qkdplan plan --verify to adjust it)."
            )
    n_short = design.metrics.get("n_demands_short_full_load")
    if n_short:
        out.append(
            f"{n_short} demand(s) miss the rate target with all demands active (shortfall_full_load "
            "column of the demands table)."
        )
    verdict = design.metrics.get("verify_verdict")
    if verdict and "NOT met" in str(verdict[0]):
        out.append(str(verdict[0]))
    return out


def findings_html(design: Design, sim: Mapping[str, Any] | None) -> str:
    items = findings(design, sim)
    if not items:
        return ""
    return "<h3>Findings</h3><ul>" + "".join(f"<li class='bad'>{html.escape(x)}</li>" for x in items) + "</ul>"


def verify_rounds_html(design: Design) -> str:
    """Table of the plan-verify rounds and the verdict (``qkdplan plan --verify``)."""
    rounds = design.metrics.get("verify_rounds")
    if not rounds:
        return ""
    df = pd.DataFrame(rounds)
    cols = [
        "round",
        "change",
        "trusted_budget",
        "n_trusted",
        "key_pool_bits",
        "demands_meeting_eps",
        "n_demands",
        "requests_served",
        "requests",
        "min_rate",
        "min_rate_full_load",
        "demands_short_full_load",
        "met",
    ]
    verdict = "".join(f"<li>{html.escape(str(v))}</li>" for v in design.metrics.get("verify_verdict", []))
    return (
        "<h3>Plan-verify rounds</h3>"
        + table_html(df, columns=cols, left=("change",))
        + (f"<ul class='note'>{verdict}</ul>" if verdict else "")
    )


def repeater_sites_html(design: Design) -> str:
    """Chosen repeater sites of the placement model (``backbone.repeaters = "placement"``)."""
    sites = design.metrics.get("placement_repeater_sites")
    if design.metrics.get("repeater_model") != "placement":
        return ""
    l_max = design.metrics.get("placement_max_link_km")
    head = (
        f"<h3>Repeater sites (placement model)</h3><p class='note'>Repeaters only at existing sites; at most "
        f"{design.metrics.get('placement_max_repeaters_per_path')} per demand path; elementary links of at most "
        f"{'unbounded' if l_max is None else f'{float(l_max):.4g} km'} (longest hop whose Eq. 9 rate meets the "
        "rate target). Sessions = demand paths through the site.</p>"
    )
    return head + table_html(
        pd.DataFrame(sites or []), columns=["site_id", "name", "sessions"], left=("site_id", "name")
    )


def key_pools_html(design: Design) -> str:
    """Per fibre link: key bits one round of requests needs vs the pool available."""
    f = design.fibre
    if "key_bits_per_round" not in f.columns:
        return ""
    used = f[f["key_bits_per_round"].astype(int) > 0].sort_values(
        "key_bits_per_round", ascending=False, kind="mergesort"
    )
    return (
        "<h3>Key generation each link needs</h3><p class='note'>Link-key bits one round of key requests (one "
        "256-bit key per eps-capable demand) draws from each fibre link's pool, the pool available, and the "
        "rounds it serves with no request blocked; with r requests per second per demand a link needs r x "
        "key_bits_per_round key bits/s.</p>"
        + table_html(
            used,
            columns=["link_id", "u", "v", "key_bits_per_round", "key_pool_bits", "rounds_supported"],
            left=("link_id", "u", "v"),
            max_rows=60,
            table="fibre",
        )
    )
