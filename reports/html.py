"""The self-contained HTML design report (``report.html``).

:func:`render_report` turns a :class:`~planner.design.Design` (and, when
present, the simulation check) into one HTML file with inline SVG figures and
no external resources, so it can be sent to a colleague and opened offline.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from planner.design import Design
from planner.scenario import scenario_from_dict, scenario_to_toml
from reports import figures

_ENV = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))


def fmt(x: Any) -> str:
    """Human formatting of a table cell: 4 significant digits, no 'nan'."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if not math.isfinite(x):
            return ""
        if x == 0:
            return "0"
        if abs(x) >= 1e4 or abs(x) < 1e-3:
            return f"{x:.3e}"
        return f"{x:.4g}"
    return str(x)


def table_html(df: pd.DataFrame, *, columns: list[str] | None = None, labels: dict[str, str] | None = None,
               left: tuple[str, ...] = (), max_rows: int = 2000) -> str:
    """An HTML table of selected columns with escaped, formatted cells."""
    if df is None or len(df) == 0:
        return '<p class="note">(none)</p>'
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    labels = labels or {}
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(labels.get(c, c))}</th>' for c in cols)
    rows = []
    for rec in df[cols].head(max_rows).itertuples(index=False):
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{html.escape(fmt(v))}</td>' for c, v in zip(cols, rec, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    more = f'<p class="note">{len(df) - max_rows} more rows in the CSV.</p>' if len(df) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _cards(d: Design) -> list[tuple[str, str]]:
    m = d.metrics
    keys = [
        ("sites", "n_sites"), ("clusters", "n_clusters"), ("standalone sites", "n_standalone"),
        ("keys / attempt (Eq. 6, all clusters)", "total_keys_per_attempt"),
        ("backbone links", "n_backbone_links"), ("backbone km", "backbone_km"),
        ("repeaters", "n_repeaters"), ("trusted relays", "n_trusted"),
        ("min demand rate (pairs/attempt)", "min_demand_rate"), ("max latency (s, Eq. 10)", "max_latency_s"),
        ("min security (SMR)", "min_security"), ("memory units", "memory_units_total"),
    ]
    return [(label, fmt(m.get(k))) for label, k in keys if k in m]


def _solves_table(d: Design) -> str:
    rows = []
    for stage, s in d.solves.items():
        rows.append({"stage": stage, **s})
    if not rows:
        return '<p class="note">(no optimisation models were solved)</p>'
    df = pd.DataFrame(rows)
    cols = ["stage", "model", "status", "objective", "bound", "gap", "solve_time_s", "build_time_s",
            "n_variables", "n_constraints", "n_binaries"]
    out = table_html(df, columns=cols, left=("stage", "model", "status"))
    status_note = []
    for stage, s in d.solves.items():
        st = str(s.get("status", ""))
        if st not in ("optimal", "heuristic", "enumerated"):
            status_note.append(f"<li class='warn'>{html.escape(stage)}: status {html.escape(st)} — not proven optimal; "
                               f"gap {html.escape(fmt(s.get('gap')))}</li>")
    if status_note:
        out += "<ul>" + "".join(status_note) + "</ul>"
    return out


def _baselines(d: Design) -> str:
    if not d.baselines:
        return ""
    rows = [{"stage": k, **v} for k, v in d.baselines.items()]
    return table_html(pd.DataFrame(rows), left=("stage", "method"))


def _security(d: Design) -> str:
    r = d.relays
    if r is None or len(r) == 0 or "trusted" not in r:
        return '<p class="note">Trusted relays were not part of this scenario (backbone mode "repeaters").</p>'
    chosen = r[r["trusted"].astype(bool)]
    parts = [f"<p>{len(chosen)} trusted relay(s) chosen: "
             + ", ".join(html.escape(str(x)) for x in chosen.get("name", chosen["site_id"])) + ".</p>"]
    comp = d.metrics.get("trust_comparison")
    if comp:
        parts.append("<h3>Chosen set vs other selections of the same size (SMR verification)</h3>")
        parts.append(table_html(pd.DataFrame(comp), left=("method",)))
    parts.append(table_html(chosen, columns=["site_id", "name", "kind", "p_untrusted"], left=("site_id", "name", "kind")))
    return "".join(parts)


def _simulation(sim: dict[str, Any] | None) -> tuple[str, str]:
    if not sim:
        return ('<p class="note">No simulation yet. Run <code>qkdplan simulate RUN_DIR</code> to verify this design by '
                'simulation; the report is then rewritten with this section filled in.</p>', "")
    from planner.simulate.network import REPORT_COLUMNS, summary_lines

    pairs = pd.DataFrame(sim.get("pairs", []))
    n_flag = int(pairs["flagged"].astype(bool).sum()) if "flagged" in pairs else 0
    cls = "ok" if n_flag == 0 else "bad"
    lines = summary_lines(sim)
    head = (f"<p class='{cls}'>{html.escape(lines[0])}</p><ul class='note'>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in lines[1:]) + "</ul>") if lines else ""
    fig = figures.simulation_figure(pairs) if len(pairs) else ""
    if len(pairs):
        err = pd.to_numeric(pairs.get("rate_rel_error"), errors="coerce").abs().fillna(0)
        ordered = pairs.assign(_ok=~pairs["flagged"].astype(bool), _e=err).sort_values(
            ["_ok", "_e"], ascending=[True, False], kind="mergesort")
        body = table_html(ordered.head(40), columns=REPORT_COLUMNS, left=("pair", "kind", "flag_reason"))
    else:
        body = ""
    return head + f'<div class="fig">{fig}</div><div class="scroll">{body}</div>', fig


def assumptions(d: Design) -> list[str]:
    """Plain-language list of the modelling assumptions behind the numbers."""
    sc = d.scenario
    ph = sc["physics"]
    return [
        f"Fibre attenuation alpha = {ph['alpha_db_per_km']} dB/km; link success p = 10^(-alpha d / 10) (cluster paper Eq. 7).",
        f"Entanglement swapping succeeds with probability q = {ph['q_swap']}; end-to-end distribution ratio from Eq. 9 "
        "with k = hops and p = the worst hop (homogeneous-chain simplification; k = 1 is defined as m p).",
        f"Latency (Eq. 10) uses t_mea = {ph['t_mea_s']} s, t_ret = {ph['t_ret_s']} s, light speed in fibre "
        f"{ph['speed_km_per_s']} km/s.",
        "Access keys per attempt per cluster follow Eq. 5-6: r_mdi x N_m + r_ekr x N_s x floor(|V|/2) for |V| slaves "
        f"(r_mdi = {sc['access']['r_mdi']}, r_ekr = {sc['access']['r_ekr']}); a cluster needs at least "
        f"{sc['access']['min_slaves']} slaves and at most {sc['access']['capacity']}.",
        f"Access reach {sc['access']['reach_km']} km of access fibre ({sc['access']['distance']} distance; geodesic "
        f"lengths are multiplied by the route factor {sc['network']['route_factor']}).",
        "Repeaters on a backbone link are equally spaced; a demand follows its shortest backbone path.",
        f"Demands: {d.metrics.get('demand_model', 'all pairs of the backbone nodes')}.",
        f"Untrusted relays are secure with probability p_u = {sc['security']['p_untrusted']} independently (SMR paper); "
        "trusted relays and end points count 1. Security of a demand is the SMR end-to-end security with the chosen "
        "trusted relays.",
        "Memory units are integers; with a memory budget an edge's units are shared by the demands routed over it.",
    ]


def render_report(design: Design, out_path: str | Path, *, simulation: dict[str, Any] | None = None) -> Path:
    """Write the HTML report for ``design`` to ``out_path`` and return the path.

    Guarantees: the file is self-contained (inline SVG, inline CSS, no scripts
    or external URLs) and written in one ``write_text`` call into the caller's
    (temporary) output folder.
    """
    d = design
    figs = {
        "map": figures.map_figure(d),
        "clusters": figures.cluster_figure(d),
        "rate": figures.rate_vs_distance_figure(d),
        "demands": figures.demand_figure(d),
        "memory": figures.memory_figure(d),
    }
    tables = {
        "clusters": table_html(d.clusters, columns=["cluster", "master_name", "n_slaves", "ekert_pairs", "keys_per_attempt",
                                                    "access_km_mean", "access_km_max", "access_db_max", "memory_master",
                                                    "memory_slave", "slave_names"],
                               left=("cluster", "master_name", "slave_names")),
        "links": table_html(d.links, columns=["link_id", "u_name", "v_name", "length_km", "repeaters", "spacing_km",
                                              "p_link", "memory_units", "demands_using"],
                            left=("link_id", "u_name", "v_name")),
        "demands": table_html(d.demands.sort_values("rate") if "rate" in d.demands else d.demands,
                              columns=["source_name", "target_name", "length_km", "hops", "p_worst", "rate",
                                       "latency_s", "security_single_path", "security", "trusted_on_path"],
                              left=("source_name", "target_name", "trusted_on_path")),
        "solves": _solves_table(d),
    }
    sim_html, _ = _simulation(simulation)
    try:
        scenario_toml = scenario_to_toml(scenario_from_dict(d.scenario))
    except Exception:  # noqa: BLE001 - an edited design.json still renders
        scenario_toml = str(d.scenario)
    text = _ENV.get_template("report.html.j2").render(
        d=d, cards=_cards(d), figs=figs, tables=tables, security_html=_security(d), baselines_html=_baselines(d),
        simulation_html=sim_html, assumptions=assumptions(d), scenario_toml=scenario_toml,
        demand_note=("Demands are listed worst rate first. Rate = Eq. 9 distribution ratio (pairs per attempt); latency "
                     "= Eq. 10; security = end-to-end security of SMR routing over the partially-trusted network."),
    )
    out = Path(out_path)
    out.write_text(text, encoding="utf-8")
    return out
