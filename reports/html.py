"""The self-contained HTML design report (``report.html``).

:func:`render_report` turns a :class:`~planner.model.design.Design` (and, when
present, the simulation check) into one HTML file with inline SVG figures and
no external resources, so it can be sent to a colleague and opened offline.
"""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from planner.model.design import Design
from planner.model.scenario import scenario_from_dict, scenario_to_toml
from planner.stages.latency import demand_protocol_latency_s
from reports import figures, maps
from reports import verify_sections as vs
from reports.heatmaps import cluster_matrix
from reports.tables import MAX_TABLE_ROWS, file_link, fmt, table_html

__all__ = [
    "render_report",
    "MAX_TABLE_ROWS",
    "fmt",
    "file_link",
    "table_html",
    "latency_cards",
    "latency_headline",
    "latency_html",
    "assumptions",
    "worst_demands",
    "heatmaps_html",
    "EQ10_CARD",
    "PROTOCOL_CARD",
    "RUN_FILES",
]

_ENV = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))


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
    limit = _latency_limit_s(d)
    tag = f"constrains: max {limit:g} s" if limit > 0 else "latency model (no limit set)"
    return [
        (EQ10_CARD, fmt(m.get("max_latency_s")), tag if model == "eq10" else ""),
        (PROTOCOL_CARD, fmt(m.get("max_latency_protocol_s")), tag if model == "protocol" else ""),
    ]


def _latency_limit_s(d: Design) -> float:
    """``backbone.max_latency_s`` of the design's scenario (0: no limit)."""
    return float(d.scenario.get("backbone", {}).get("max_latency_s", 0.0) or 0.0)


def _latencies(d: Design) -> tuple[pd.Series, pd.Series, pd.Series] | None:
    """The demands' Eq. 10 and protocol latencies (numeric) and Eq. 10 / protocol where both are known
    and the protocol latency is positive; None when the design has no repeater-chain latencies."""
    dem = d.demands
    if not len(dem) or "latency_s" not in dem or "latency_protocol_s" not in dem:
        return None
    e10 = pd.to_numeric(dem["latency_s"], errors="coerce")
    pro = pd.to_numeric(dem["latency_protocol_s"], errors="coerce")
    ok = e10.notna() & pro.notna() & (pro > 0)
    return e10, pro, e10[ok] / pro[ok]


def latency_headline(d: Design) -> str:
    """One sentence under the headline cards: how far Eq. 10 is above the protocol latency here."""
    lat = _latencies(d)
    if lat is None or not len(lat[2]):
        return ""
    ratio = lat[2]
    return (
        f"Latency: Eq. 10 as printed is {fmt(float(ratio.min()))} to {fmt(float(ratio.max()))} times the "
        "protocol's time to one end-to-end pair on these demands (it counts the link loss twice); "
        "see the Latency section."
    )


def _limits(which: str, model: str, limit_s: float) -> str:
    """Whether latency ``which`` limits the design: "yes", "chosen model" (no limit set) or "no"."""
    if model != which:
        return "no"
    return "yes" if limit_s > 0 else "chosen model"


def latency_html(d: Design, simulation: dict[str, Any] | None) -> str:
    """Side-by-side latency summary: Eq. 10, the derived protocol latency, their ratio and the simulated check."""
    lat = _latencies(d)
    if lat is None:
        return '<p class="note">No repeater-chain latencies in this design (backbone mode "trusted").</p>'
    e10, pro, ratio = lat
    model = _latency_model(d)
    limit = _latency_limit_s(d)
    rows = pd.DataFrame(
        [
            {
                "latency": "Eq. 10 as printed (cluster paper)",
                "max_s": e10.max(),
                "median_s": e10.median(),
                "limits": _limits("eq10", model, limit),
            },
            {
                "latency": "protocol: time to one end-to-end pair (derived)",
                "max_s": pro.max(),
                "median_s": pro.median(),
                "limits": _limits("protocol", model, limit),
            },
        ]
    )
    parts = [table_html(rows, left=("latency", "limits"))]
    if len(ratio):
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
    # Lazy on purpose: planner.simulate.result loads the simulators and scipy.stats (about 3 s), which
    # a report without a simulation (``qkdplan compare``, a plan without --simulate) does not need.
    from planner.simulate.result import REPORT_COLUMNS, summary_lines

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


def _has_values(df: pd.DataFrame, column: str) -> bool:
    """Whether ``df`` has ``column`` with at least one numeric value."""
    return column in df and bool(pd.to_numeric(df[column], errors="coerce").notna().any())


def worst_demands(demands: pd.DataFrame, n: int = MAX_TABLE_ROWS) -> pd.DataFrame:
    """The ``n`` worst demands: lowest rate first (ties: lowest security), else lowest security."""
    if _has_values(demands, "rate"):
        keys = ["rate"] + (["security"] if "security" in demands else [])
    elif "security" in demands:
        keys = ["security"]
    else:
        return demands.head(n)
    tmp = demands.assign(**{f"_k{i}": pd.to_numeric(demands[k], errors="coerce") for i, k in enumerate(keys)})
    return tmp.sort_values([f"_k{i}" for i in range(len(keys))], kind="mergesort", na_position="first").head(n)


def _with_protocol_latency(d: Design) -> Design:
    """``d`` with the ``latency_protocol_s`` column and metric filled in when an older design lacks them."""
    dem = d.demands
    if "latency_protocol_s" in dem or not {"hops", "p_worst", "rate"} <= set(dem.columns) or not len(dem):
        return d
    dem = dem.assign(latency_protocol_s=demand_protocol_latency_s(dem, d.scenario["physics"]))
    metrics = dict(d.metrics)
    v = pd.to_numeric(dem["latency_protocol_s"], errors="coerce")
    metrics["max_latency_protocol_s"] = float(v.max()) if v.notna().any() else None
    return replace(d, demands=dem, metrics=metrics)


#: The report's heat maps: demand column and the keywords of :func:`reports.figures.heatmap_figure`.
_HEATMAPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("rate", dict(title="Worst demand rate between clusters", log=True, cbar_label="pairs per attempt (Eq. 9)")),
    (
        "security",
        dict(
            title="Worst SMR security between clusters",
            log=False,
            vmin=0.0,
            vmax=1.0,
            cbar_label="security probability",
        ),
    ),
)


def heatmaps_html(d: Design) -> str:
    """Cluster x cluster heat maps of the worst rate and the worst security (empty when there are no demands)."""
    if not len(d.demands):
        return ""
    parts = [
        figures.heatmap_figure(cluster_matrix(d, column, how="min"), **kw)
        for column, kw in _HEATMAPS
        if _has_values(d.demands, column)
    ]
    return "".join(f'<div class="fig heat">{p}</div>' for p in parts)


def _figures(d: Design) -> dict[str, str]:
    """The report's figures as SVG markup, by template slot."""
    return {
        "map": maps.map_figure(d),
        "clusters": figures.cluster_figure(d),
        "access_pareto": figures.access_pareto_figure(d),
        "rate": figures.rate_vs_distance_figure(d),
        "demands": figures.demand_figure(d),
        "memory": figures.memory_figure(d),
        "heatmaps": heatmaps_html(d),
    }


#: The columns of the report's cluster, link and demand tables, in order.
_CLUSTER_COLUMNS = [
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
]
_LINK_COLUMNS = [
    "link_id",
    "u_name",
    "v_name",
    "length_km",
    "repeaters",
    "spacing_km",
    "p_link",
    "memory_units",
    "demands_using",
]
_DEMAND_COLUMNS = [
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
]


def _tables(d: Design, files: set[str]) -> dict[str, str]:
    """The report's tables: clusters (fewest keys first), links (most used first), demands (worst first),
    solver runs; each bounded to :data:`MAX_TABLE_ROWS` rows with a link to its CSV."""
    clusters = d.clusters
    if "keys_per_attempt" in clusters:
        clusters = clusters.sort_values("keys_per_attempt", kind="mergesort")
    links = d.links
    if "demands_using" in links:
        links = links.sort_values("demands_using", ascending=False, kind="mergesort")
    return {
        "clusters": table_html(
            clusters,
            columns=_CLUSTER_COLUMNS,
            left=("cluster", "master_name", "slave_names"),
            csv="clusters.csv",
            files=files,
            table="clusters",
        ),
        "links": table_html(
            links,
            columns=_LINK_COLUMNS,
            left=("link_id", "u_name", "v_name"),
            csv="links.csv",
            files=files,
            table="links",
        ),
        "demands": table_html(
            worst_demands(d.demands, len(d.demands)),
            columns=_DEMAND_COLUMNS,
            labels={"latency_s": "latency_s (Eq. 10)", "latency_protocol_s": "latency_s (protocol)"},
            left=("source_name", "target_name", "trusted_on_path"),
            csv="demands.csv",
            files=files,
            table="demands",
        ),
        "solves": _solves_table(d),
    }


def _verify_sections(d: Design, simulation: dict[str, Any] | None) -> dict[str, str]:
    """Findings, plan-verify rounds, repeater sites and key pools (:mod:`reports.verify_sections`)."""
    return {
        "findings": vs.findings_html(d, simulation),
        "rounds": vs.verify_rounds_html(d),
        "repeater_sites": vs.repeater_sites_html(d),
        "key_pools": vs.key_pools_html(d),
    }


def _scenario_toml(d: Design) -> str:
    """The design's scenario as TOML (its raw text when an edited design.json no longer validates)."""
    try:
        return scenario_to_toml(scenario_from_dict(d.scenario))
    except Exception:  # noqa: BLE001 - an edited design.json still renders
        return str(d.scenario)


_DEMAND_NOTE = (
    f"The {MAX_TABLE_ROWS} worst demands (lowest rate first). Rate = Eq. 9 distribution ratio "
    "(pairs per attempt); latency: Eq. 10 as printed and the protocol's time to one pair; "
    "security = end-to-end security of SMR routing over the partially-trusted network."
)


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
    figs = _figures(d)
    tables = _tables(d, files)
    sim_html, _ = _simulation(simulation, files)
    verify_html = _verify_sections(d, simulation)
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
        scenario_toml=_scenario_toml(d),
        latency_html=latency_html(d, simulation),
        file_rows=[(file_link(name, files), what) for name, what in RUN_FILES if name in files],
        latency_headline=latency_headline(d),
        links={name: file_link(name, files) for name, _ in RUN_FILES},
        demand_note=_DEMAND_NOTE,
    )
    out.write_text(text, encoding="utf-8")
    return out
