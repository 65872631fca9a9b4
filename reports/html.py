"""The self-contained HTML design report (``report.html``).

:func:`render_report` turns a :class:`~planner.model.design.Design` (and, when
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

from planner.model.design import Design
from planner.model.scenario import scenario_from_dict, scenario_to_toml
from planner.model.schema import header_title
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


#: Longest table shown in the report; the full tables are the CSV files of the run folder.
MAX_TABLE_ROWS = 30


def file_link(name: str, files: set[str] | None) -> str:
    """``name`` as a relative link when the file is in the run folder (``files``), else as code text."""
    if files is not None and name in files:
        return f'<a href="{html.escape(name)}"><code>{html.escape(name)}</code></a>'
    return f"<code>{html.escape(name)}</code>"


def table_html(
    df: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    labels: dict[str, str] | None = None,
    left: tuple[str, ...] = (),
    max_rows: int = MAX_TABLE_ROWS,
    csv: str | None = None,
    files: set[str] | None = None,
    table: str | None = None,
) -> str:
    """An HTML table of selected columns with escaped, formatted cells (first ``max_rows`` rows).

    When rows are left out, a note says how many and links ``csv`` (the full table). With
    ``table`` (a design table name), each header's hover text is the column's declared
    description and unit (:func:`planner.model.schema.header_title`).
    """
    if df is None or len(df) == 0:
        return '<p class="note">(none)</p>'
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    labels = labels or {}

    def th(c: str) -> str:
        hover = header_title(table, c) if table else ""
        title = f' title="{html.escape(hover)}"' if hover else ""
        return f'<th class="{"l" if c in left else ""}"{title}>{html.escape(labels.get(c, c))}</th>'

    head = "".join(th(c) for c in cols)
    rows = []
    for rec in df[cols].head(max_rows).itertuples(index=False):
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{html.escape(fmt(v))}</td>' for c, v in zip(cols, rec, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    where = file_link(csv, files) if csv else "the CSV tables"
    more = (
        f'<p class="note">Showing {max_rows} of {len(df)} rows; all rows are in {where}.</p>'
        if len(df) > max_rows
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _cards(d: Design) -> list[tuple[str, str, str]]:
    m = d.metrics
    keys = [
        ("sites", "n_sites"),
        ("clusters", "n_clusters"),
        ("standalone sites", "n_standalone"),
        ("keys / attempt (Eq. 6, all clusters)", "total_keys_per_attempt"),
        ("backbone links", "n_backbone_links"),
        ("backbone km", "backbone_km"),
        ("repeaters", "n_repeaters"),
        ("trusted relays", "n_trusted"),
        ("min demand rate (pairs/attempt)", "min_demand_rate"),
        ("min security (SMR)", "min_security"),
        ("memory units", "memory_units_total"),
    ]
    cards = [(label, fmt(m.get(k)), "") for label, k in keys if m.get(k) is not None]
    return cards + latency_cards(d)


def _latency_model(d: Design) -> str:
    return str(d.scenario.get("backbone", {}).get("latency_model", "eq10"))


#: Labels of the two latency cards (stable: tests and readers look them up).
EQ10_CARD = "max latency (s, Eq. 10 as printed)"
PROTOCOL_CARD = "max latency (s, protocol: time to one pair)"


def latency_cards(d: Design) -> list[tuple[str, str, str]]:
    """Headline cards for latency: Eq. 10 as printed and the protocol latency, always together, as
    ``(label, value, tag)``; the tag of the one that ``backbone.latency_model`` picks says whether it
    constrains the design (``backbone.max_latency_s``)."""
    m = d.metrics
    if m.get("max_latency_s") is None and m.get("max_latency_protocol_s") is None:
        return []
    model = _latency_model(d)
    limit = float(d.scenario.get("backbone", {}).get("max_latency_s", 0.0) or 0.0)
    tag = f"constrains: max {limit:g} s" if limit > 0 else "latency model (no limit set)"
    return [
        (EQ10_CARD, fmt(m.get("max_latency_s")), tag if model == "eq10" else ""),
        (PROTOCOL_CARD, fmt(m.get("max_latency_protocol_s")), tag if model == "protocol" else ""),
    ]


def latency_headline(d: Design) -> str:
    """One sentence under the headline cards: how far Eq. 10 is above the protocol latency here."""
    dem = d.demands
    if not len(dem) or "latency_s" not in dem or "latency_protocol_s" not in dem:
        return ""
    e10 = pd.to_numeric(dem["latency_s"], errors="coerce")
    pro = pd.to_numeric(dem["latency_protocol_s"], errors="coerce")
    ok = e10.notna() & pro.notna() & (pro > 0)
    if not ok.any():
        return ""
    ratio = e10[ok] / pro[ok]
    return (
        f"Latency: Eq. 10 as printed is {fmt(float(ratio.min()))} to {fmt(float(ratio.max()))} times the "
        "protocol's time to one end-to-end pair on these demands (it counts the link loss twice); "
        "see the Latency section."
    )


def latency_html(d: Design, simulation: dict[str, Any] | None) -> str:
    """Side-by-side latency summary: Eq. 10, the derived protocol latency, their ratio and the simulated check."""
    dem = d.demands
    if not len(dem) or "latency_s" not in dem or "latency_protocol_s" not in dem:
        return '<p class="note">No repeater-chain latencies in this design (backbone mode "trusted").</p>'
    e10 = pd.to_numeric(dem["latency_s"], errors="coerce")
    pro = pd.to_numeric(dem["latency_protocol_s"], errors="coerce")
    ok = e10.notna() & pro.notna() & (pro > 0)
    model = _latency_model(d)
    limit = float(d.scenario.get("backbone", {}).get("max_latency_s", 0.0) or 0.0)
    rows = pd.DataFrame(
        [
            {
                "latency": "Eq. 10 as printed (cluster paper)",
                "max_s": e10.max(),
                "median_s": e10.median(),
                "limits": "yes" if model == "eq10" and limit > 0 else ("chosen model" if model == "eq10" else "no"),
            },
            {
                "latency": "protocol: time to one end-to-end pair (derived)",
                "max_s": pro.max(),
                "median_s": pro.median(),
                "limits": "yes"
                if model == "protocol" and limit > 0
                else ("chosen model" if model == "protocol" else "no"),
            },
        ]
    )
    parts = [table_html(rows, left=("latency", "limits"))]
    if ok.any():
        ratio = e10[ok] / pro[ok]
        parts.append(
            f"<p>Eq. 10 is {fmt(float(ratio.min()))} to {fmt(float(ratio.max()))} times the derived "
            "protocol latency on these demands. Eq. 10 counts the link loss twice (its t_i already holds "
            "1/p_i and the rate holds p again), so it grows like 1/p&sup2;; the project's chain simulation "
            "finds it above the simulated time to the first pair.</p>"
        )
    if simulation:
        pairs = pd.DataFrame(simulation.get("pairs", []))
        if {"latency_first_pair_s", "latency_predicted_s"} <= set(pairs.columns):
            lat = pairs.dropna(subset=["latency_first_pair_s", "latency_predicted_s"])
            if len(lat):
                r = lat["latency_predicted_s"].astype(float) / lat["latency_first_pair_s"].astype(float)
                parts.append(
                    f"<p>Simulation check: on {len(lat)} simulated chains Eq. 10 is {fmt(float(r.min()))} "
                    f"to {fmt(float(r.max()))} times the simulated time to the first pair.</p>"
                )
    parts.append(
        f'<p class="note">The scenario key <code>backbone.latency_model</code> = "{html.escape(model)}" '
        "chooses which of the two <code>backbone.max_latency_s</code> limits"
        + (f" (limit {limit:g} s)." if limit > 0 else " (no limit is set: max_latency_s = 0).")
        + "</p>"
    )
    return "".join(parts)


def _solves_table(d: Design) -> str:
    rows = []
    for stage, s in d.solves.items():
        rows.append({"stage": stage, **s})
    if not rows:
        return '<p class="note">(no optimisation models were solved)</p>'
    df = pd.DataFrame(rows)
    cols = [
        "stage",
        "model",
        "status",
        "objective",
        "bound",
        "gap",
        "solve_time_s",
        "build_time_s",
        "n_variables",
        "n_constraints",
        "n_binaries",
    ]
    out = table_html(df, columns=cols, left=("stage", "model", "status"))
    status_note = []
    for stage, s in d.solves.items():
        st = str(s.get("status", ""))
        if st not in ("optimal", "heuristic", "enumerated"):
            status_note.append(
                f"<li class='warn'>{html.escape(stage)}: status {html.escape(st)} — not proven optimal; "
                f"gap {html.escape(fmt(s.get('gap')))}</li>"
            )
    if status_note:
        out += "<ul>" + "".join(status_note) + "</ul>"
    return out


def _baselines(d: Design) -> str:
    if not d.baselines:
        return ""
    rows = [{"stage": k, **v} for k, v in d.baselines.items()]
    fig = figures.baselines_figure(d.baselines)
    return (f'<div class="fig">{fig}</div>' if fig else "") + table_html(pd.DataFrame(rows), left=("stage", "method"))


def _security(d: Design, files: set[str] | None = None) -> str:
    r = d.relays
    if r is None or len(r) == 0 or "trusted" not in r:
        return '<p class="note">Trusted relays were not part of this scenario (backbone mode "repeaters").</p>'
    chosen = r[r["trusted"].astype(bool)]
    parts = [
        f"<p>{len(chosen)} trusted relay(s) chosen: "
        + ", ".join(html.escape(str(x)) for x in chosen.get("name", chosen["site_id"]))
        + ".</p>"
    ]
    obj = d.metrics.get("trust_objectives")
    if obj:
        parts.append(
            f"<p>Chosen for {html.escape(str(obj['objective']))} SMR security ({html.escape(str(obj['chosen']))}): "
            f"SMR security min {obj['min_smr_security']:.4g}, mean {obj['mean_smr_security']:.4g}; "
            f"best single path min {obj['min_single_path_security']:.4g}, mean "
            f"{obj['mean_single_path_security']:.4g}.</p>"
        )
    comp = d.metrics.get("trust_comparison")
    if comp:
        parts.append("<h3>Chosen set vs other selections of the same size (SMR verification)</h3>")
        eps = float(d.scenario.get("security", {}).get("eps", 0.9))
        parts.append(f'<div class="fig">{figures.trust_selection_figure(comp, eps)}</div>')
        parts.append(table_html(pd.DataFrame(comp), left=("method",)))
    parts.append(
        table_html(
            chosen,
            columns=["site_id", "name", "kind", "p_untrusted"],
            left=("site_id", "name", "kind"),
            csv="relays.csv",
            files=files,
            table="relays",
        )
    )
    return "".join(parts)


def _simulation(sim: dict[str, Any] | None, files: set[str] | None = None) -> tuple[str, str]:
    if not sim:
        return (
            '<p class="note">No simulation yet. Run <code>qkdplan simulate RUN_DIR</code> to verify this design by '
            "simulation; the report is then rewritten with this section filled in.</p>",
            "",
        )
    from planner.simulate.design_check import REPORT_COLUMNS, summary_lines

    pairs = pd.DataFrame(sim.get("pairs", []))
    n_flag = int(pairs["flagged"].astype(bool).sum()) if "flagged" in pairs else 0
    cls = "ok" if n_flag == 0 else "bad"
    lines = summary_lines(sim)
    head = (
        (
            f"<p class='{cls}'>{html.escape(lines[0])}</p><ul class='note'>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in lines[1:])
            + "</ul>"
        )
        if lines
        else ""
    )
    fig = figures.simulation_figure(pairs) if len(pairs) else ""
    if len(pairs):
        err = pd.to_numeric(pairs.get("rate_rel_error"), errors="coerce").abs().fillna(0)
        ordered = pairs.assign(_ok=~pairs["flagged"].astype(bool), _e=err).sort_values(
            ["_ok", "_e"], ascending=[True, False], kind="mergesort"
        )
        body = table_html(
            ordered,
            columns=REPORT_COLUMNS,
            left=("pair", "kind", "flag_reason"),
            csv="simulation_pairs.csv",
            files=files,
        )
    else:
        body = ""
    return head + f'<div class="fig">{fig}</div><div class="scroll">{body}</div>', fig


def assumptions(d: Design) -> list[str]:
    """Plain-language list of the modelling assumptions behind the numbers."""
    sc = d.scenario
    ph = sc["physics"]
    return [
        f"Fibre attenuation alpha = {ph['alpha_db_per_km']} dB/km; link success p = 10^(-alpha d / 10) (cluster "
        "paper Eq. 7).",
        f"Entanglement swapping succeeds with probability q = {ph['q_swap']}; end-to-end distribution ratio from Eq. 9 "
        "with k = hops and p = the worst hop (homogeneous-chain simplification; k = 1 is defined as m p).",
        f"Latency (Eq. 10) uses t_mea = {ph['t_mea_s']} s, t_ret = {ph['t_ret_s']} s, light speed in fibre "
        f"{ph['speed_km_per_s']} km/s. Eq. 10 counts the link loss twice and overstates the time to a pair; the "
        "protocol latency beside it is max(attempt time, longest hop / light speed) x max(1, 1/rate) slots plus "
        "(ceil(log2 hops) + 1) x (t_mea + t_ret) of swaps and retrieval (planner/stages/latency.py).",
        "Access keys per attempt per cluster follow Eq. 5-6: r_mdi x N_m + r_ekr x N_s x floor(|V|/2) for |V| slaves "
        f"(r_mdi = {sc['access']['r_mdi']}, r_ekr = {sc['access']['r_ekr']}); a cluster needs at least "
        f"{sc['access']['min_slaves']} slaves and at most {sc['access']['capacity']}.",
        f"Access reach {sc['access']['reach_km']} km of access fibre ({sc['access']['distance']} distance; geodesic "
        f"lengths are multiplied by the route factor {sc['network']['route_factor']}).",
        "Repeaters on a backbone link are equally spaced; a demand follows its shortest backbone path.",
        f"Demands: {d.metrics.get('demand_model', 'all pairs of the backbone nodes')}.",
        f"Untrusted relays are secure with probability p_u = {sc['security']['p_untrusted']} independently (SMR "
        "paper); "
        "trusted relays and end points count 1. Security of a demand is the SMR end-to-end security with the chosen "
        "trusted relays.",
        "Memory units are integers; with a memory budget an edge's units are shared by the demands routed over it.",
    ]


#: Files of a run folder the report links when present, with what they hold.
RUN_FILES = (
    ("design.json", "the whole design (tables, metrics, solver summaries, scenario); input of simulate/compare"),
    ("design.gpkg", "GeoPackage: sites, links, clusters, repeaters, fibre, access_links, demand_routes, metadata"),
    ("sites.csv", "every site with its role, cluster, access distance and memory"),
    ("clusters.csv", "every access cluster"),
    ("links.csv", "every backbone link with repeaters and memory"),
    ("demands.csv", "every demand with rate, both latencies and security"),
    ("relays.csv", "trusted-relay choice"),
    ("fibre.csv", "the site-level fibre links planned on (candidate = generated)"),
    ("simulation.json", "simulation check summary"),
    ("simulation_pairs.csv", "simulation check per pair"),
    ("simulation_clusters.csv", "simulation check per cluster"),
    ("simulation_links.csv", "simulation check per link"),
)


def worst_demands(demands: pd.DataFrame, n: int = MAX_TABLE_ROWS) -> pd.DataFrame:
    """The ``n`` worst demands: lowest rate first (ties: lowest security), else lowest security."""
    if "rate" in demands and pd.to_numeric(demands["rate"], errors="coerce").notna().any():
        keys = ["rate"] + (["security"] if "security" in demands else [])
    elif "security" in demands:
        keys = ["security"]
    else:
        return demands.head(n)
    tmp = demands.assign(**{f"_k{i}": pd.to_numeric(demands[k], errors="coerce") for i, k in enumerate(keys)})
    return tmp.sort_values([f"_k{i}" for i in range(len(keys))], kind="mergesort", na_position="first").head(n)


def _with_protocol_latency(d: Design) -> Design:
    """``d`` with the ``latency_protocol_s`` column and metric filled in when an older design lacks them."""
    from planner.stages.latency import demand_protocol_latency_s

    dem = d.demands
    if "latency_protocol_s" in dem or not {"hops", "p_worst", "rate"} <= set(dem.columns) or not len(dem):
        return d
    from dataclasses import replace

    dem = dem.assign(latency_protocol_s=demand_protocol_latency_s(dem, d.scenario["physics"]))
    metrics = dict(d.metrics)
    v = pd.to_numeric(dem["latency_protocol_s"], errors="coerce")
    metrics["max_latency_protocol_s"] = float(v.max()) if v.notna().any() else None
    return replace(d, demands=dem, metrics=metrics)


def heatmaps_html(d: Design) -> str:
    """Cluster x cluster heat maps of the worst rate and the worst security (empty when there are no demands)."""
    from reports.heatmaps import cluster_matrix

    if not len(d.demands):
        return ""
    parts = []
    if "rate" in d.demands and pd.to_numeric(d.demands["rate"], errors="coerce").notna().any():
        mat = cluster_matrix(d, "rate", how="min")
        parts.append(
            figures.heatmap_figure(
                mat, title="Worst demand rate between clusters", log=True, cbar_label="pairs per attempt (Eq. 9)"
            )
        )
    if "security" in d.demands and pd.to_numeric(d.demands["security"], errors="coerce").notna().any():
        mat = cluster_matrix(d, "security", how="min")
        parts.append(
            figures.heatmap_figure(
                mat,
                title="Worst SMR security between clusters",
                log=False,
                vmin=0.0,
                vmax=1.0,
                cbar_label="security probability",
            )
        )
    return "".join(f'<div class="fig heat">{p}</div>' for p in parts)


def render_report(design: Design, out_path: str | Path, *, simulation: dict[str, Any] | None = None) -> Path:
    """Write the HTML report for ``design`` to ``out_path`` and return the path.

    Guarantees: the file is self-contained (inline SVG, inline CSS, no scripts
    or external URLs; raster layers of large maps are data URIs inside the SVG),
    its links to data files are relative and only to files present beside it,
    tables show at most :data:`MAX_TABLE_ROWS` rows (the CSVs hold all), and it
    is written in one ``write_text`` call into the caller's (temporary) output folder.
    """
    d = _with_protocol_latency(design)
    out = Path(out_path)
    files = {f.name for f in out.parent.iterdir() if f.is_file()} if out.parent.is_dir() else set()
    files.discard(out.name)
    figs = {
        "map": figures.map_figure(d),
        "clusters": figures.cluster_figure(d),
        "access_pareto": figures.access_pareto_figure(d),
        "rate": figures.rate_vs_distance_figure(d),
        "demands": figures.demand_figure(d),
        "memory": figures.memory_figure(d),
        "heatmaps": heatmaps_html(d),
    }
    clusters_sorted = (
        d.clusters.sort_values("keys_per_attempt", kind="mergesort") if "keys_per_attempt" in d.clusters else d.clusters
    )
    links_sorted = (
        d.links.sort_values("demands_using", ascending=False, kind="mergesort")
        if "demands_using" in d.links
        else d.links
    )
    tables = {
        "clusters": table_html(
            clusters_sorted,
            columns=[
                "cluster",
                "master_name",
                "n_slaves",
                "ekert_pairs",
                "keys_per_attempt",
                "access_km_mean",
                "access_km_max",
                "access_db_max",
                "memory_master",
                "memory_slave",
                "slave_names",
            ],
            left=("cluster", "master_name", "slave_names"),
            csv="clusters.csv",
            files=files,
            table="clusters",
        ),
        "links": table_html(
            links_sorted,
            columns=[
                "link_id",
                "u_name",
                "v_name",
                "length_km",
                "repeaters",
                "spacing_km",
                "p_link",
                "memory_units",
                "demands_using",
            ],
            left=("link_id", "u_name", "v_name"),
            csv="links.csv",
            files=files,
            table="links",
        ),
        "demands": table_html(
            worst_demands(d.demands, len(d.demands)),
            columns=[
                "source_name",
                "target_name",
                "length_km",
                "hops",
                "p_worst",
                "rate",
                "rate_shared",
                "shortfall_full_load",
                "latency_s",
                "latency_protocol_s",
                "security_single_path",
                "security",
                "trusted_on_path",
            ],
            labels={"latency_s": "latency_s (Eq. 10)", "latency_protocol_s": "latency_s (protocol)"},
            left=("source_name", "target_name", "trusted_on_path"),
            csv="demands.csv",
            files=files,
            table="demands",
        ),
        "solves": _solves_table(d),
    }
    sim_html, _ = _simulation(simulation, files)
    # findings, plan-verify rounds, repeater sites and key pools (reports/verify_sections.py)
    from reports import verify_sections as vs

    verify_html = {
        "findings": vs.findings_html(d, simulation),
        "rounds": vs.verify_rounds_html(d),
        "repeater_sites": vs.repeater_sites_html(d),
        "key_pools": vs.key_pools_html(d),
    }
    try:
        scenario_toml = scenario_to_toml(scenario_from_dict(d.scenario))
    except Exception:  # noqa: BLE001 - an edited design.json still renders
        scenario_toml = str(d.scenario)
    file_rows = [(file_link(name, files), what) for name, what in RUN_FILES if name in files]
    text = _ENV.get_template("report.html.j2").render(
        d=d,
        cards=_cards(d),
        figs=figs,
        tables=tables,
        security_html=_security(d, files),
        baselines_html=_baselines(d),
        simulation_html=sim_html,
        verify_html=verify_html,
        assumptions=assumptions(d),
        scenario_toml=scenario_toml,
        latency_html=latency_html(d, simulation),
        file_rows=file_rows,
        latency_headline=latency_headline(d),
        links={name: file_link(name, files) for name, _ in RUN_FILES},
        demand_note=(
            f"The {MAX_TABLE_ROWS} worst demands (lowest rate first). Rate = Eq. 9 distribution ratio "
            "(pairs per attempt); latency: Eq. 10 as printed and the protocol's time to one pair; "
            "security = end-to-end security of SMR routing over the partially-trusted network."
        ),
    )
    out.write_text(text, encoding="utf-8")
    return out
