"""Figures of a design report, rendered with matplotlib (Agg) to inline SVG text.

Each ``*_figure`` function takes a :class:`planner.model.design.Design` and returns
SVG markup (a string) that can be embedded in HTML as is, so the report needs
no network access and no separate image files.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from planner.model.design import Design  # noqa: E402
from reports.heatmaps import ClusterMatrix  # noqa: E402

plt.rcParams.update(
    {
        "figure.dpi": 100,
        "font.size": 9,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "svg.fonttype": "none",
        "svg.hashsalt": "qkdplan",  # deterministic ids in SVG output
    }
)

PALETTE = [plt.get_cmap("tab20")(i) for i in range(20)]


def to_svg(fig: plt.Figure) -> str:
    """Serialise and close a figure; returns the ``<svg>`` element only."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "qkdplan"})
    plt.close(fig)
    text = buf.getvalue()
    start = text.find("<svg")
    text = text[start:] if start >= 0 else text
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def _site_xy(design: Design) -> dict[str, tuple[float, float]]:
    s = design.sites
    return {str(r.site_id): (float(r.lon), float(r.lat)) for r in s.itertuples(index=False)}


#: Above this many sites/links, dense map layers are drawn as one embedded raster image (bounded SVG size).
RASTER_ABOVE = 400
#: Master names are written on the map only up to this many clusters.
LABEL_CLUSTERS_UP_TO = 40


def country_outlines() -> list[np.ndarray]:
    """Exterior and hole rings (lon/lat arrays) of the bundled Natural Earth 1:110m countries."""
    import json

    from planner.io.bundled import bundled_path

    data = json.loads(bundled_path("natural-earth/countries-110m.geojson").read_text(encoding="utf-8"))
    rings: list[np.ndarray] = []
    for feat in data["features"]:
        geom = feat.get("geometry") or {}
        polys = geom.get("coordinates", [])
        if geom.get("type") == "Polygon":
            polys = [polys]
        for poly in polys:
            rings.extend(np.asarray(r, dtype=float) for r in poly if len(r) >= 3)
    return rings


def scale_bar_km(span_km: float) -> float:
    """A round scale-bar length (1, 2 or 5 x 10^n km) of about a fifth of ``span_km``."""
    target = max(span_km / 5.0, 1e-3)
    exp = math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10**exp <= target:
            return m * 10**exp
    return 10.0**exp


def _draw_scale_bar(ax: plt.Axes, lat0: float, kx: float) -> float:
    """Draw a scale bar in the lower-right corner of a lon/lat axis; returns its length in km."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    km_per_deg_lon = 111.32 * kx
    span_km = (x1 - x0) * km_per_deg_lon
    bar_km = scale_bar_km(span_km)
    bar_deg = bar_km / km_per_deg_lon
    xe = x1 - 0.04 * (x1 - x0)
    yb = y0 + 0.05 * (y1 - y0)
    ax.plot([xe - bar_deg, xe], [yb, yb], color="black", lw=3, solid_capstyle="butt", zorder=8)
    ax.text(
        xe - bar_deg / 2,
        yb + 0.015 * (y1 - y0),
        f"{bar_km:g} km",
        ha="center",
        va="bottom",
        fontsize=7,
        zorder=8,
        bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1},
    )
    return bar_km


def map_figure(design: Design, *, width_in: float = 8.0) -> str:
    """Map of sites (coloured by cluster), masters, backbone routes, repeaters and trusted relays,
    over the bundled Natural Earth country outlines, with a scale bar.

    Coordinates are drawn in an equirectangular projection scaled by cos(mean
    latitude), so distances look right locally. Large designs (more than
    :data:`RASTER_ABOVE` sites) draw their dense layers as an embedded raster so
    the SVG stays small; master names are written for at most
    :data:`LABEL_CLUSTERS_UP_TO` clusters.
    """
    from matplotlib.collections import LineCollection

    sites = design.sites
    xy = _site_xy(design)
    lat0 = float(np.nanmean(sites["lat"])) if len(sites) else 0.0
    kx = math.cos(math.radians(lat0))
    big = len(sites) > RASTER_ABOVE
    fig, ax = plt.subplots(figsize=(width_in, width_in * 0.75))
    ax.set_aspect(1.0 / max(kx, 0.05))
    clusters = sorted(c for c in sites["cluster"].astype(str).unique() if c)
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(clusters)}
    if len(sites):
        lon = sites["lon"].astype(float)
        lat = sites["lat"].astype(float)
        pad_x = max(0.05 * float(lon.max() - lon.min()), 0.05)
        pad_y = max(0.05 * float(lat.max() - lat.min()), 0.05)
        xlim = (float(lon.min()) - pad_x, float(lon.max()) + pad_x)
        ylim = (float(lat.min()) - pad_y, float(lat.max()) + pad_y)
        try:
            rings = country_outlines()
        except Exception:  # noqa: BLE001 - a missing basemap must not stop the report
            rings = []
        near = [
            r
            for r in rings
            if r[:, 0].max() >= xlim[0] - 5
            and r[:, 0].min() <= xlim[1] + 5
            and r[:, 1].max() >= ylim[0] - 5
            and r[:, 1].min() <= ylim[1] + 5
        ]
        if near:
            ax.set_facecolor("#e4eef6")  # water
            ax.grid(False)
        for r in near:
            ax.fill(r[:, 0], r[:, 1], facecolor="#f3f3ee", edgecolor="#9aa39a", lw=0.6, zorder=0)
    # access links master -> slave
    acc = []
    acc_c = []
    for r in sites.itertuples(index=False):
        if r.role == "slave" and r.cluster in xy:
            acc.append([xy[r.cluster], xy[str(r.site_id)]])
            acc_c.append(colour.get(r.cluster, "grey"))
    if acc:
        ax.add_collection(LineCollection(acc, colors=acc_c, linewidths=0.8, alpha=0.6, zorder=1, rasterized=big))
    # backbone routes
    routes = []
    rep_pts = []
    for r in design.links.itertuples(index=False):
        route = [xy[s] for s in str(r.route).split(";") if s in xy]
        if len(route) >= 2:
            routes.append(route)
            reps = int(getattr(r, "repeaters", 0) or 0)
            if reps > 0:
                rep_pts.append(_points_along(np.array(route), reps))
    if routes:
        ax.add_collection(
            LineCollection(
                routes, colors="black", linewidths=1.6 if not big else 0.9, alpha=0.8, zorder=2, rasterized=big
            )
        )
    if rep_pts:
        pts = np.vstack(rep_pts)
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            marker="|",
            s=40 if not big else 10,
            color="crimson",
            zorder=3,
            linewidths=1.2,
            rasterized=big,
        )
    for role, marker, size in (("slave", "o", 18), ("unassigned", "x", 30)):
        sub = sites[sites["role"] == role]
        if len(sub):
            ax.scatter(
                sub["lon"],
                sub["lat"],
                s=size if not big else size / 4,
                marker=marker,
                zorder=4,
                c=[colour.get(str(c), (0.4, 0.4, 0.4)) for c in sub["cluster"]],
                edgecolors="white" if marker == "o" and not big else None,
                rasterized=big,
                linewidths=0.4,
                label={"slave": "slave", "unassigned": "standalone site"}[role],
            )
    masters = sites[sites["role"] == "master"]
    if len(masters):
        ax.scatter(
            masters["lon"],
            masters["lat"],
            s=120 if not big else 30,
            marker="*",
            zorder=5,
            c=[colour.get(str(c), "black") for c in masters["cluster"]],
            edgecolors="black",
            linewidths=0.6 if not big else 0.3,
            label="master (EPR source)",
            rasterized=big,
        )
    trusted = sites[sites["trusted"].astype(bool)] if "trusted" in sites else sites.iloc[0:0]
    if len(trusted):
        ax.scatter(
            trusted["lon"],
            trusted["lat"],
            s=70,
            marker="s",
            facecolors="none",
            edgecolors="darkgreen",
            linewidths=1.5,
            zorder=6,
            label="trusted relay",
        )
    if len(design.links):
        ax.plot([], [], color="black", lw=1.6, label="backbone route")
    if rep_pts:
        ax.scatter([], [], marker="|", color="crimson", label="entanglement repeater")
    if len(clusters) <= LABEL_CLUSTERS_UP_TO:
        for r in masters.itertuples(index=False):
            ax.annotate(
                str(r.name), (float(r.lon), float(r.lat)), fontsize=7, xytext=(4, 4), textcoords="offset points"
            )
    if len(sites):
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        _draw_scale_bar(ax, lat0, kx)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(f"{design.network_name}: {len(clusters)} clusters, {len(sites)} sites")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.85)
    return to_svg(fig)


def _points_along(route: np.ndarray, n: int) -> np.ndarray:
    """``n`` equally spaced interior points along a polyline (planar, for drawing only)."""
    seg = np.linalg.norm(np.diff(route, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    if total <= 0:
        return np.repeat(route[:1], n, axis=0)
    targets = total * np.arange(1, n + 1) / (n + 1)
    x = np.interp(targets, cum, route[:, 0])
    y = np.interp(targets, cum, route[:, 1])
    return np.column_stack([x, y])


def rate_vs_distance_figure(design: Design) -> str:
    """Demand rate (pairs per attempt) vs end-to-end distance, with Eq. 9 curves and the PLOB bound."""
    from planner import physics

    sc = design.scenario
    alpha = float(sc["physics"]["alpha_db_per_km"])
    q = float(sc["physics"]["q_swap"])
    m = int(sc["memory"]["edge_units"])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    dist = np.linspace(
        1.0, max(50.0, float(design.demands["length_km"].max()) * 1.1) if len(design.demands) else 500.0, 300
    )
    ax.semilogy(
        dist,
        physics.plob_bound(dist, alpha_db_per_km=alpha),
        "k--",
        lw=1.2,
        label=f"PLOB repeaterless bound (alpha={alpha:g} dB/km)",
    )
    ax.semilogy(
        dist,
        m * physics.link_success_probability(dist, alpha_db_per_km=alpha),
        color="grey",
        lw=1,
        label=f"direct link, m={m} (Eq. 7)",
    )
    for spacing in (25.0, 50.0):
        hops = np.maximum(1, np.ceil(dist / spacing)).astype(int)
        p = physics.link_success_probability(dist / hops, alpha_db_per_km=alpha)
        lam = np.asarray(physics.chain_distribution_ratio(hops, p=p, q=q, memory=m), dtype=float)
        ax.semilogy(dist, lam, lw=1, alpha=0.8, label=f"repeater chain, spacing <= {spacing:g} km (Eq. 9, q={q:g})")
    d = design.demands
    if len(d) and "rate" in d:
        ok = d["rate"].astype(float) > 0
        many = int(ok.sum()) > RASTER_ABOVE
        ax.scatter(
            d.loc[ok, "length_km"].astype(float),
            d.loc[ok, "rate"].astype(float),
            s=14 if not many else 3,
            color="crimson",
            zorder=5,
            label="planned demands",
            rasterized=many,
        )
        target = float(sc["backbone"]["rate_target"])
        if sc["backbone"]["objective"] == "min_cost" and target > 0:
            ax.axhline(target, color="crimson", ls=":", lw=1, label=f"rate target {target:g}")
    ax.set_xlabel("end-to-end fibre distance (km)")
    ax.set_ylabel("entangled pairs per attempt")
    ax.set_title("Rate vs distance")
    ax.legend(fontsize=7, loc="lower left")
    return to_svg(fig)


def demand_figure(design: Design) -> str:
    """Per-demand predicted rate and security (sorted), side by side."""
    d = design.demands
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    if len(d):
        if "rate" in d:
            r = np.sort(d["rate"].astype(float).to_numpy())
            axes[0].semilogy(
                np.arange(1, len(r) + 1), np.where(r > 0, r, np.nan), ".-", ms=3, rasterized=len(r) > RASTER_ABOVE
            )
        axes[0].set_title("predicted rate per demand (sorted)")
        axes[0].set_xlabel("demand rank")
        axes[0].set_ylabel("pairs per attempt")
        for col, label in (
            ("security", "with chosen trusted relays (SMR)"),
            ("security_single_path", "best single path"),
        ):
            if col in d and d[col].notna().any():
                sv = np.sort(d[col].astype(float).dropna().to_numpy())
                axes[1].plot(np.arange(1, len(sv) + 1), sv, ".-", ms=3, label=label, rasterized=len(sv) > RASTER_ABOVE)
        eps = float(design.scenario["security"]["eps"])
        axes[1].axhline(eps, ls=":", color="crimson", lw=1, label=f"eps = {eps:g}")
        axes[1].set_ylim(0, 1.02)
        axes[1].set_title("end-to-end security per demand (sorted)")
        axes[1].set_xlabel("demand rank")
        axes[1].set_ylabel("security probability")
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    return to_svg(fig)


def cluster_figure(design: Design) -> str:
    """Cluster sizes and Eq. 6 keys per attempt."""
    c = design.clusters
    fig, ax = plt.subplots(figsize=(7, 3.4))
    if len(c) > LABEL_CLUSTERS_UP_TO:
        sizes = c["n_slaves"].astype(int).to_numpy()
        keys = c["keys_per_attempt"].astype(float).to_numpy()
        bins = [float(b) - 0.5 for b in range(int(sizes.min()), int(sizes.max()) + 2)]
        ax.hist(sizes, bins=bins, color="steelblue", label="clusters")
        ax.set_xlabel("slaves per cluster")
        ax.set_ylabel("clusters")
        ax.set_title(
            f"Access clusters: {len(c)} clusters, keys per attempt (Eq. 6) {keys.min():.3g} to "
            f"{keys.max():.3g} per cluster"
        )
        fig.tight_layout()
        return to_svg(fig)
    if len(c):
        order = c.sort_values("keys_per_attempt", ascending=False)
        x = np.arange(len(order))
        ax.bar(x, order["keys_per_attempt"].astype(float), color="steelblue", label="keys per attempt (Eq. 6)")
        ax2 = ax.twinx()
        ax2.plot(x, order["n_slaves"].astype(int), "o", color="darkorange", label="slaves")
        ax2.set_ylabel("slaves")
        ax2.grid(False)
        labels = [str(v) for v in order["master_name"]] if "master_name" in order else [str(v) for v in order["master"]]
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("keys per attempt")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")
    ax.set_title("Access clusters")
    fig.tight_layout()
    return to_svg(fig)


def access_pareto_figure(design: Design) -> str:
    """Masters against Eq. 6 keys per attempt at several master budgets (the balanced access rule's
    Pareto front, ``design.access_pareto``), with the chosen point marked; "" when there is no front."""
    t = getattr(design, "access_pareto", None)
    if t is None or len(t) == 0:
        return ""
    t = t.sort_values("n_masters")
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(
        t["n_masters"].astype(int),
        t["keys_per_attempt"].astype(float),
        "o-",
        color="steelblue",
        label="most keys per attempt for the masters (MILP)",
    )
    bound = t["bound"].astype(float)
    if bound.notna().any():
        ax.plot(t["n_masters"].astype(int), bound, "_", color="grey", markersize=12, label="bound")
    chosen = t[t["chosen"].astype(bool)]
    if len(chosen):
        ax.plot(
            chosen["n_masters"].astype(int),
            chosen["keys_per_attempt"].astype(float),
            "*",
            color="crimson",
            markersize=14,
            label="chosen",
        )
    ax.set_xlabel("masters")
    ax.set_ylabel("keys per attempt (Eq. 6)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Access: masters against keys")
    fig.tight_layout()
    return to_svg(fig)


def memory_figure(design: Design) -> str:
    """Memory units allocated to masters, slaves and backbone links."""
    s = design.sites
    links = design.links
    groups: list[tuple[str, Sequence[float]]] = []
    if "memory_units" in s:
        for role in ("master", "slave"):
            groups.append((role + "s", s.loc[s["role"] == role, "memory_units"].astype(float).to_numpy()))
    if "memory_units" in links:
        groups.append(("backbone links", links["memory_units"].astype(float).to_numpy()))
    fig, ax = plt.subplots(figsize=(6, 3.0))
    names = [g[0] for g in groups]
    totals = [float(np.sum(g[1])) for g in groups]
    ax.bar(names, totals, color=["#4c72b0", "#55a868", "#c44e52"][: len(names)])
    for i, g in enumerate(groups):
        if len(g[1]):
            ax.text(
                i,
                totals[i],
                f"{int(totals[i])} units\n({len(g[1])} x mean {np.mean(g[1]):.1f})",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_ylabel("memory units")
    ax.set_title("Quantum memory allocation")
    fig.tight_layout()
    return to_svg(fig)


def simulation_figure(pairs: pd.DataFrame) -> str:
    """Predicted vs simulated rate per pair (log-log) with the identity line."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    if len(pairs):
        x = pairs["rate_predicted"].astype(float)
        y = pairs["rate_simulated"].astype(float)
        flagged = pairs["flagged"].astype(bool) if "flagged" in pairs else pd.Series(False, index=pairs.index)
        ok = (x > 0) & (y > 0)
        many = len(pairs) > RASTER_ABOVE
        ax.loglog(
            x[ok & ~flagged], y[ok & ~flagged], "o", ms=4 if not many else 2, label="within tolerance", rasterized=many
        )
        if (ok & flagged).any():
            ax.loglog(x[ok & flagged], y[ok & flagged], "x", color="crimson", ms=6, label="flagged", rasterized=many)
        lo, hi = float(min(x[ok].min(), y[ok].min())), float(max(x[ok].max(), y[ok].max()))
        ax.loglog([lo, hi], [lo, hi], "k--", lw=1, label="simulated = predicted")
        ax.legend(fontsize=7)
    ax.set_xlabel("predicted rate")
    ax.set_ylabel("simulated rate")
    ax.set_title("Predicted vs simulated")
    return to_svg(fig)


def heatmap_figure(
    matrix: ClusterMatrix,
    *,
    title: str,
    log: bool,
    vmin: float | None = None,
    vmax: float | None = None,
    cbar_label: str = "",
) -> str:
    """A group x group heat map (bounded size: at most :data:`reports.heatmaps.MAX_GROUPS` rows).

    ``log`` colours by log10 of the value; empty cells (no demand) stay white.
    """
    vals = matrix.values
    g = vals.shape[0]
    shown = np.where(vals > 0, np.log10(np.where(vals > 0, vals, 1.0)), np.nan) if log else vals
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    im = ax.imshow(
        np.ma.masked_invalid(shown), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal"
    )
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label(("log10 " if log else "") + cbar_label, fontsize=8)
    step = max(1, math.ceil(g / 20))
    ticks = list(range(0, g, step))
    ax.set_xticks(ticks, [matrix.labels[i] for i in ticks], rotation=70, ha="right", fontsize=6)
    ax.set_yticks(ticks, [matrix.labels[i] for i in ticks], fontsize=6)
    ax.grid(False)
    if g <= 12:
        for i in range(g):
            for j in range(g):
                if np.isfinite(vals[i, j]):
                    ax.text(j, i, f"{vals[i, j]:.2g}", ha="center", va="center", fontsize=6, color="white")
    grouped = any(len(grp) > 1 for grp in matrix.groups)
    sub = (
        f"{sum(len(grp) for grp in matrix.groups)} clusters in {g} groups along a Hilbert curve"
        if grouped
        else f"{g} clusters ordered along a Hilbert curve"
    )
    ax.set_title(f"{title}\n({matrix.how} over the demands of a cell; {sub})", fontsize=9)
    fig.tight_layout()
    return to_svg(fig)


def trust_selection_figure(comparison: list[dict[str, object]], eps: float) -> str:
    """Grouped bars: min/mean SMR security and min single-path security of each trusted-relay selection."""
    df = pd.DataFrame(comparison)
    cols = [
        ("min_smr_security", "min SMR security"),
        ("mean_smr_security", "mean SMR security"),
        ("min_single_path_security", "min single-path security"),
    ]
    cols = [(c, lab) for c, lab in cols if c in df]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    x = np.arange(len(df))
    w = 0.8 / max(len(cols), 1)
    for k, (c, lab) in enumerate(cols):
        vals = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        bars = ax.bar(x + (k - (len(cols) - 1) / 2) * w, vals, width=w, label=lab)
        for b, v in zip(bars, vals, strict=True):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=6)
    ax.axhline(eps, ls=":", color="crimson", lw=1, label=f"eps = {eps:g}")
    labels = [
        f"{m}\n({t} trusted)" if "trusted" in df else str(m)
        for m, t in zip(df["method"], df.get("trusted", pd.Series([""] * len(df))), strict=True)
    ]
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("security probability")
    ax.set_title("Trusted-relay selections of the same size, verified with SMR routing")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return to_svg(fig)


def baselines_figure(baselines: dict[str, dict[str, object]]) -> str:
    """One panel per stage: the heuristic baseline's objective next to the optimiser's."""
    rows = []
    for stage, b in baselines.items():
        opt = b.get("optimised_objective", b.get("milp_objective"))
        base = b.get("objective")
        if isinstance(opt, (int, float)) and isinstance(base, (int, float)):
            rows.append((stage, str(b.get("method", "baseline")), float(base), float(opt)))
    if not rows:
        return ""
    fig, axes = plt.subplots(1, len(rows), figsize=(3.3 * len(rows), 3.0), squeeze=False)
    for ax, (stage, method, base, opt) in zip(axes[0], rows, strict=True):
        bars = ax.bar(["optimiser", "baseline"], [opt, base], color=["#4c72b0", "#bbbbbb"])
        for b, v in zip(bars, (opt, base), strict=True):
            ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.4g}", ha="center", va="bottom", fontsize=7)
        ax.set_title(f"{stage}\nbaseline: {method}", fontsize=8)
        ax.set_ylabel("objective")
    fig.tight_layout()
    return to_svg(fig)
