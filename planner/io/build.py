"""Validate raw site and link records into a :class:`Network`, collecting every problem.

Shared by all readers (:func:`planner.io.readers.read_network`): checks names,
coordinates, kinds, demands and link ends, computes link lengths (stated, from
the geometry, or great circle x route factor) and collapses parallel links to
the shortest.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import geopandas as gpd
import pandas as pd

from planner import geo
from planner.errors import InputFormatError, ProblemCollector, ValidationError
from planner.io.records import (
    RawLink,
    RawSite,
    is_blank,
    plain,
    raise_if_any,
    to_float,
)
from planner.model.network import (
    SITE_KINDS,
    Network,
    empty_links,
    make_links,
    make_sites,
)

log = logging.getLogger(__name__)


def build_network(
    source: str,
    name: str,
    raw_sites: list[RawSite],
    raw_links: list[RawLink],
    *,
    route_factor: float,
) -> Network:
    """Validate raw records (collecting every problem) and build the Network.

    Raises :class:`InputFormatError` when there are no sites and
    :class:`ValidationError` listing every bad site and link (sites first,
    in file order); the result passes :meth:`Network.validate`.
    """
    problems = ProblemCollector(source=source)
    if not raw_sites:
        raise InputFormatError("contains no sites (fix: add at least one site/node with coordinates)", source=source)
    seen: dict[str, str] = {}
    rows = [row for s in raw_sites if (row := _site_row(source, s, seen, problems)) is not None]
    link_rows = [row for i, lk in enumerate(raw_links) if (row := _link_row(source, i, lk, seen, problems)) is not None]
    if problems:
        raise_if_any(problems, ValidationError)

    frame = pd.DataFrame(rows).set_index("site_id")
    sites = make_sites(frame)
    links = _build_links(sites, link_rows, route_factor=route_factor)
    network = Network(name=name, sites=sites, links=links, source=source, route_factor=float(route_factor))
    network.validate()
    n_comp = len(network.connected_components())
    if n_comp > 1 and len(links):
        log.info("%s: the link graph has %d connected components", source, n_comp)
    return network


def _site_row(source: str, s: RawSite, seen: dict[str, str], problems: ProblemCollector) -> dict[str, Any] | None:
    """The sites-table row of one raw site, or None after recording its problems.

    ``seen`` maps every site id met so far to its ``where``; a new id is added.
    """
    where = f"{source}, {s.where}"
    ok = True
    if is_blank(s.site_id):
        problems.add(where, "site has no name/id", "give every site a non-empty name")
        ok = False
        sid = ""
    else:
        sid = str(s.site_id).strip()
        if sid in seen:
            problems.add(
                where,
                f"duplicate site name {sid!r} (also at {seen[sid]})",
                "give every site a unique name",
            )
            ok = False
        else:
            seen[sid] = s.where
    coords: dict[str, float] = {}
    for axis, value, limit in (("lat", s.lat, 90.0), ("lon", s.lon, 180.0)):
        num = _coordinate(where, axis, value, limit, problems)
        if num is None:
            ok = False
        else:
            coords[axis] = num
    kind = "site" if is_blank(s.kind) else str(s.kind).strip().lower()
    if kind not in SITE_KINDS:
        problems.add(where, f"unknown kind {s.kind!r}", f"use one of {sorted(SITE_KINDS)}")
        ok = False
    dem_ok, dem = _optional_non_negative(where, "demand", s.demand, "give a demand weight >= 0 (default 1)", problems)
    ok = ok and dem_ok
    demand = 1.0 if dem is None else dem
    if not ok:
        return None
    site_name = sid if is_blank(s.name) else str(s.name).strip()
    row = {"site_id": sid, "name": site_name, "kind": kind, "demand": demand, **coords}
    for key, value in s.extra.items():
        if key not in row and key != "geometry":
            row[key] = plain(value)
    return row


def _optional_non_negative(
    where: str, label: str, value: Any, fix: str, problems: ProblemCollector
) -> tuple[bool, float | None]:
    """An optional number >= 0: ``(True, None)`` when blank, ``(True, number)`` when valid, else
    ``(False, None)`` after recording the problem (``label`` names the value, ``fix`` says how to mend it)."""
    if is_blank(value):
        return True, None
    num = to_float(value)
    if num is None or not math.isfinite(num) or num < 0:
        problems.add(where, f"{label} {value!r} is not a finite number >= 0", fix)
        return False, None
    return True, num


def _coordinate(where: str, axis: str, value: Any, limit: float, problems: ProblemCollector) -> float | None:
    """A latitude (``axis`` "lat") or longitude in degrees within +-``limit``; None after recording a problem."""
    label = "latitude" if axis == "lat" else "longitude"
    num = to_float(value)
    if is_blank(value):
        problems.add(where, f"{label} is missing", f"give the {label} in decimal degrees")
    elif num is None:
        problems.add(
            where,
            f"{label} {value!r} is not a number",
            f"give the {label} in decimal degrees",
        )
    elif not math.isfinite(num):
        problems.add(
            where,
            f"{label} {value!r} is not finite",
            f"give a finite {label} in decimal degrees",
        )
    elif abs(num) > limit:
        problems.add(
            where,
            f"{label} {num:g} is outside [-{limit:g}, {limit:g}]",
            "check that latitude and longitude are not swapped and are in degrees (EPSG:4326);"
            " for projected x/y columns name them x/y and give their CRS with --crs EPSG:.... (scenario: "
            "network.crs; Python: crs=)",
        )
    else:
        return num
    return None


def _link_row(
    source: str, i: int, lk: RawLink, seen: dict[str, str], problems: ProblemCollector
) -> dict[str, Any] | None:
    """The checked ends and stated length of raw link number ``i``, or None after recording its problems."""
    where = f"{source}, {lk.where}"
    ok = True
    u = None if is_blank(lk.u) else str(lk.u).strip()
    v = None if is_blank(lk.v) else str(lk.v).strip()
    for end, value in (("first", u), ("second", v)):
        if value is None:
            problems.add(where, f"link has no {end} end site", "name both end sites of every link")
            ok = False
        elif value not in seen:
            problems.add(where, f"link names unknown site {value!r}", "add that site or correct the name")
            ok = False
    if ok and u == v:
        problems.add(where, f"link is a self-loop on {u!r}", "remove the link or correct one of its ends")
        ok = False
    length_ok, stated = _optional_non_negative(
        where,
        "stated length",
        lk.length_km,
        "give the fibre length in km, or leave it out to use the geodesic distance x route factor",
        problems,
    )
    ok = ok and length_ok
    if not ok:
        return None
    return {"i": i, "u": u, "v": v, "stated": stated, "geometry": lk.geometry, "extra": lk.extra}


def _build_links(sites: gpd.GeoDataFrame, link_rows: list[dict[str, Any]], *, route_factor: float) -> gpd.GeoDataFrame:
    if not link_rows:
        return empty_links()
    lat = sites["lat"]
    lon = sites["lon"]
    records: list[dict[str, Any]] = []
    for r in link_rows:
        u, v = r["u"], r["v"]
        if r["stated"] is not None:
            length, src = r["stated"], "stated"
        elif r["geometry"] is not None:
            length, src = geo.line_length_km(r["geometry"]), "geometry"
        else:
            gc = float(geo.haversine_km(lat[u], lon[u], lat[v], lon[v]))
            length, src = gc * route_factor, "geodesic_x_route_factor"
        rec = {
            "u": u,
            "v": v,
            "length_km": float(length),
            "length_source": src,
            "candidate": False,
            "geometry": r["geometry"],
        }
        for key, value in r["extra"].items():
            if key not in rec and key not in ("link_id", "geometry"):
                rec[key] = plain(value)
        rec["_order"] = r["i"]
        records.append(rec)
    # collapse parallel links (same unordered pair) to the shortest; the first one wins a tie
    best: dict[frozenset[str], dict[str, Any]] = {}
    dropped = 0
    for rec in records:
        key = frozenset((rec["u"], rec["v"]))
        if key in best:
            dropped += 1
            if rec["length_km"] < best[key]["length_km"]:
                best[key] = rec
        else:
            best[key] = rec
    if dropped:
        log.info("collapsed %d parallel link(s) to the shortest of each pair", dropped)
    kept = sorted(best.values(), key=lambda rec: rec["_order"])
    for n, rec in enumerate(kept):
        rec["link_id"] = f"L{n}"
        del rec["_order"]
    return make_links(pd.DataFrame(kept), sites)
