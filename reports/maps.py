"""The design map of the report: sites by cluster, masters, backbone routes, repeaters and trusted
relays over the bundled Natural Earth country outlines, with a scale bar (SVG text, like
:mod:`reports.figures`)."""

from __future__ import annotations

import json
import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection

from planner.io.bundled import bundled_path
from planner.model.design import Design
from reports.figures import LABEL_CLUSTERS_UP_TO, PALETTE, RASTER_ABOVE, to_svg


def _site_xy(design: Design) -> dict[str, tuple[float, float]]:
    s = design.sites
    return {str(r.site_id): (float(r.lon), float(r.lat)) for r in s.itertuples(index=False)}


def country_outlines() -> list[np.ndarray]:
    """Exterior and hole rings (lon/lat arrays) of the bundled Natural Earth 1:110m countries."""
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


def _map_bounds(sites: pd.DataFrame) -> tuple[tuple[float, float], tuple[float, float]]:
    """The map's lon and lat limits: the sites' extent with a 5% margin (at least 0.05 degrees)."""
    lon = sites["lon"].astype(float)
    lat = sites["lat"].astype(float)
    pad_x = max(0.05 * float(lon.max() - lon.min()), 0.05)
    pad_y = max(0.05 * float(lat.max() - lat.min()), 0.05)
    xlim = (float(lon.min()) - pad_x, float(lon.max()) + pad_x)
    ylim = (float(lat.min()) - pad_y, float(lat.max()) + pad_y)
    return xlim, ylim


def _draw_basemap(ax: plt.Axes, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """Country outlines within 5 degrees of the limits over a water background (nothing when the
    bundled basemap cannot be read)."""
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


def _draw_access_links(
    ax: plt.Axes, sites: pd.DataFrame, xy: dict[str, tuple[float, float]], colour: dict[str, Any], big: bool
) -> None:
    """Master-to-slave access links in the cluster's colour."""
    acc = []
    acc_c = []
    for r in sites.itertuples(index=False):
        if r.role == "slave" and r.cluster in xy:
            acc.append([xy[r.cluster], xy[str(r.site_id)]])
            acc_c.append(colour.get(r.cluster, "grey"))
    if acc:
        ax.add_collection(LineCollection(acc, colors=acc_c, linewidths=0.8, alpha=0.6, zorder=1, rasterized=big))


def _draw_backbone(ax: plt.Axes, design: Design, xy: dict[str, tuple[float, float]], big: bool) -> bool:
    """Backbone routes and their repeaters (equally spaced along each route); True when any repeater was drawn."""
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
    return bool(rep_pts)


def _draw_sites(ax: plt.Axes, sites: pd.DataFrame, colour: dict[str, Any], big: bool) -> pd.DataFrame:
    """Slaves, standalone sites, masters (stars) and trusted relays (squares); returns the masters."""
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
    return masters


def map_figure(design: Design, *, width_in: float = 8.0) -> str:
    """Map of sites (coloured by cluster), masters, backbone routes, repeaters and trusted relays,
    over the bundled Natural Earth country outlines, with a scale bar.

    Coordinates are drawn in an equirectangular projection scaled by cos(mean
    latitude), so distances look right locally. Large designs (more than
    :data:`RASTER_ABOVE` sites) draw their dense layers as an embedded raster so
    the SVG stays small; master names are written for at most
    :data:`LABEL_CLUSTERS_UP_TO` clusters.
    """
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
        xlim, ylim = _map_bounds(sites)
        _draw_basemap(ax, xlim, ylim)
    _draw_access_links(ax, sites, xy, colour, big)
    any_repeaters = _draw_backbone(ax, design, xy, big)
    masters = _draw_sites(ax, sites, colour, big)
    if len(design.links):
        ax.plot([], [], color="black", lw=1.6, label="backbone route")
    if any_repeaters:
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
