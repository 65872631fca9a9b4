"""Figures of a design report, rendered with matplotlib (Agg) to inline SVG text.

Each ``*_figure`` function takes a :class:`planner.design.Design` and returns
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

from planner.design import Design  # noqa: E402

plt.rcParams.update({
    "figure.dpi": 100,
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.fonttype": "none",
    "svg.hashsalt": "qkdplan",  # deterministic ids in SVG output
})

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


def map_figure(design: Design, *, width_in: float = 8.0) -> str:
    """Map of sites (coloured by cluster), masters, backbone routes, repeaters and trusted relays.

    Coordinates are drawn in an equirectangular projection scaled by cos(mean
    latitude), so distances look right locally. No basemap is used.
    """
    sites = design.sites
    xy = _site_xy(design)
    lat0 = float(np.nanmean(sites["lat"])) if len(sites) else 0.0
    kx = math.cos(math.radians(lat0))
    fig, ax = plt.subplots(figsize=(width_in, width_in * 0.75))
    ax.set_aspect(1.0 / max(kx, 0.05))
    clusters = sorted(c for c in sites["cluster"].astype(str).unique() if c)
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(clusters)}
    # access links master -> slave
    for r in sites.itertuples(index=False):
        if r.role == "slave" and r.cluster in xy:
            (x0, y0), (x1, y1) = xy[r.cluster], xy[str(r.site_id)]
            ax.plot([x0, x1], [y0, y1], color=colour.get(r.cluster, "grey"), lw=0.8, alpha=0.6, zorder=1)
    # backbone routes
    for r in design.links.itertuples(index=False):
        route = [xy[s] for s in str(r.route).split(";") if s in xy]
        if len(route) >= 2:
            xs, ys = zip(*route, strict=True)
            ax.plot(xs, ys, color="black", lw=1.6, alpha=0.8, zorder=2)
            reps = int(getattr(r, "repeaters", 0) or 0)
            if reps > 0:
                pts = _points_along(np.array(route), reps)
                ax.scatter(pts[:, 0], pts[:, 1], marker="|", s=40, color="crimson", zorder=3, linewidths=1.2)
    for role, marker, size in (("slave", "o", 18), ("unassigned", "x", 30)):
        sub = sites[sites["role"] == role]
        if len(sub):
            ax.scatter(sub["lon"], sub["lat"], s=size, marker=marker, zorder=4,
                       c=[colour.get(str(c), (0.4, 0.4, 0.4)) for c in sub["cluster"]],
                       edgecolors="white" if marker == "o" else None,
                       linewidths=0.4, label={"slave": "slave", "unassigned": "standalone site"}[role])
    masters = sites[sites["role"] == "master"]
    if len(masters):
        ax.scatter(masters["lon"], masters["lat"], s=120, marker="*", zorder=5,
                   c=[colour.get(str(c), "black") for c in masters["cluster"]], edgecolors="black",
                   linewidths=0.6, label="master (EPR source)")
    trusted = sites[sites["trusted"].astype(bool)] if "trusted" in sites else sites.iloc[0:0]
    if len(trusted):
        ax.scatter(trusted["lon"], trusted["lat"], s=70, marker="s", facecolors="none", edgecolors="darkgreen",
                   linewidths=1.5, zorder=6, label="trusted relay")
    if len(design.links):
        ax.plot([], [], color="black", lw=1.6, label="backbone route")
    if len(design.links) and int(design.links.get("repeaters", pd.Series([0])).sum()) > 0:
        ax.scatter([], [], marker="|", color="crimson", label="entanglement repeater")
    for r in masters.itertuples(index=False):
        ax.annotate(str(r.name), (float(r.lon), float(r.lat)), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(f"{design.network_name}: {len(clusters)} clusters, {len(sites)} sites")
    ax.legend(loc="best", fontsize=7, framealpha=0.85)
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
    dist = np.linspace(1.0, max(50.0, float(design.demands["length_km"].max()) * 1.1) if len(design.demands) else 500.0, 300)
    ax.semilogy(dist, physics.plob_bound(dist, alpha_db_per_km=alpha), "k--", lw=1.2,
                label=f"PLOB repeaterless bound (alpha={alpha:g} dB/km)")
    ax.semilogy(dist, m * physics.link_success_probability(dist, alpha_db_per_km=alpha), color="grey", lw=1,
                label=f"direct link, m={m} (Eq. 7)")
    for spacing in (25.0, 50.0):
        hops = np.maximum(1, np.ceil(dist / spacing)).astype(int)
        p = physics.link_success_probability(dist / hops, alpha_db_per_km=alpha)
        lam = np.array([physics.chain_distribution_ratio(int(k), p=float(pp), q=q, memory=m) for k, pp in zip(hops, p, strict=True)])
        ax.semilogy(dist, lam, lw=1, alpha=0.8, label=f"repeater chain, spacing <= {spacing:g} km (Eq. 9, q={q:g})")
    d = design.demands
    if len(d) and "rate" in d:
        ok = d["rate"].astype(float) > 0
        ax.scatter(d.loc[ok, "length_km"].astype(float), d.loc[ok, "rate"].astype(float), s=14, color="crimson",
                   zorder=5, label="planned demands")
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
            axes[0].semilogy(np.arange(1, len(r) + 1), np.where(r > 0, r, np.nan), ".-", ms=3)
        axes[0].set_title("predicted rate per demand (sorted)")
        axes[0].set_xlabel("demand rank")
        axes[0].set_ylabel("pairs per attempt")
        for col, label in (("security", "with chosen trusted relays (SMR)"), ("security_single_path", "best single path")):
            if col in d and d[col].notna().any():
                sv = np.sort(d[col].astype(float).dropna().to_numpy())
                axes[1].plot(np.arange(1, len(sv) + 1), sv, ".-", ms=3, label=label)
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
    ax.plot(t["n_masters"].astype(int), t["keys_per_attempt"].astype(float), "o-", color="steelblue",
            label="most keys per attempt for the masters (MILP)")
    bound = t["bound"].astype(float)
    if bound.notna().any():
        ax.plot(t["n_masters"].astype(int), bound, "_", color="grey", markersize=12, label="bound")
    chosen = t[t["chosen"].astype(bool)]
    if len(chosen):
        ax.plot(chosen["n_masters"].astype(int), chosen["keys_per_attempt"].astype(float), "*", color="crimson",
                markersize=14, label="chosen")
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
            ax.text(i, totals[i], f"{int(totals[i])} units\n({len(g[1])} x mean {np.mean(g[1]):.1f})",
                    ha="center", va="bottom", fontsize=7)
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
        ax.loglog(x[ok & ~flagged], y[ok & ~flagged], "o", ms=4, label="within tolerance")
        if (ok & flagged).any():
            ax.loglog(x[ok & flagged], y[ok & flagged], "x", color="crimson", ms=6, label="flagged")
        lo, hi = float(min(x[ok].min(), y[ok].min())), float(max(x[ok].max(), y[ok].max()))
        ax.loglog([lo, hi], [lo, hi], "k--", lw=1, label="simulated = predicted")
        ax.legend(fontsize=7)
    ax.set_xlabel("predicted rate")
    ax.set_ylabel("simulated rate")
    ax.set_title("Predicted vs simulated")
    return to_svg(fig)
