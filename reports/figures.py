"""Figures of a design report, rendered with matplotlib (Agg) to inline SVG text.

Each ``*_figure`` function takes a :class:`planner.model.design.Design` and returns
SVG markup (a string) that can be embedded in HTML as is, so the report needs
no network access and no separate image files. The map is in :mod:`reports.maps`.
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

from planner import physics  # noqa: E402
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


#: Above this many sites/links, dense map layers are drawn as one embedded raster image (bounded SVG size).
RASTER_ABOVE = 400
#: Master names are written on the map only up to this many clusters.
LABEL_CLUSTERS_UP_TO = 40


def rate_vs_distance_figure(design: Design) -> str:
    """Demand rate (pairs per attempt) vs end-to-end distance, with Eq. 9 curves and the PLOB bound."""
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


_TRUST_MEASURES = (
    ("min_smr_security", "min SMR security"),
    ("mean_smr_security", "mean SMR security"),
    ("min_single_path_security", "min single-path security"),
)


def trust_selection_axes(comparison: list[dict[str, object]], eps: float) -> plt.Figure:
    """The figure of :func:`trust_selection_figure`, not yet serialised (the caller closes it).

    Horizontal grouped bars, one group per selection from top to bottom in ``comparison`` order, so
    the selection names are y tick labels one above the other and never overlap however many there
    are or however long their names; the figure grows 0.55 in per selection.
    """
    df = pd.DataFrame(comparison)
    cols = [(c, lab) for c, lab in _TRUST_MEASURES if c in df]
    n = len(df)
    height_in = 1.6 + 0.55 * max(n, 1)
    fig, ax = plt.subplots(figsize=(8, height_in))
    y = np.arange(n)
    h = 0.8 / max(len(cols), 1)
    for k, (c, lab) in enumerate(cols):
        vals = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        bars = ax.barh(y + (k - (len(cols) - 1) / 2) * h, vals, height=h, label=lab)
        for b, v in zip(bars, vals, strict=True):
            if np.isfinite(v):
                ax.text(v + 0.01, b.get_y() + b.get_height() / 2, f"{v:.2f}", ha="left", va="center", fontsize=6)
    ax.axvline(eps, ls=":", color="crimson", lw=1, label=f"eps = {eps:g}")
    trusted = df["trusted"] if "trusted" in df else pd.Series([None] * n, index=df.index)
    labels = [f"{m} ({t} trusted)" if t is not None else str(m) for m, t in zip(df["method"], trusted, strict=True)]
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(n - 0.5, -0.5)  # first selection (the chosen one) on top
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("security probability")
    ax.set_title("Trusted-relay selections of the same size, verified with SMR routing", fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0.0, 0.35 / height_in, 1.0, 1.0))  # the legend's strip below the axes
    return fig


def trust_selection_figure(comparison: list[dict[str, object]], eps: float) -> str:
    """Grouped bars: min/mean SMR security and min single-path security of each trusted-relay selection
    (:func:`trust_selection_axes`), as SVG."""
    return to_svg(trust_selection_axes(comparison, eps))


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
