"""CSV site lists: one row per site, coordinates in degrees or in projected x/y with a CRS.

Columns are described in :mod:`planner.io.readers`. Every row is named by its
data-row number and the physical line it starts on.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyproj

from planner.errors import InputFormatError, ProblemCollector
from planner.io.records import (
    ID_KEYS,
    LAT_KEYS,
    LON_KEYS,
    NAME_KEYS,
    RawLink,
    RawSite,
    first_key,
    is_blank,
    raise_if_any,
    read_text,
    to_float,
)
from planner.model.network import (
    CRS_WGS84,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- CSV
def read_csv(
    file: Path, *, crs: str | None, drop_external: bool
) -> tuple[list[RawSite], list[RawLink], dict[str, Any]]:
    return parse_csv_text(read_text(file), str(file), crs=crs)


def parse_csv_text(
    text: str, src: str, *, crs: str | None
) -> tuple[list[RawSite], list[RawLink], dict[str, Any]]:
    """Sites from CSV text (see the module docstring); ``src`` names it in messages."""
    lines = text.splitlines()
    header_line = next((ln for ln in lines if ln.strip()), "")
    if not header_line:
        raise InputFormatError(
            "file holds only blank lines (fix: add a header row and one row per site)", source=src
        )
    delimiter = max((",", ";", "\t"), key=header_line.count)
    if "\x00" in text:
        raise InputFormatError(
            "file contains NUL bytes; it is not a text CSV (fix: export it as UTF-8 CSV)",
            source=src,
        )
    # one pass; each row is numbered by the physical line it starts on (quoted cells may span lines)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    numbered: list[tuple[int, list[str]]] = []
    previous_line = 0
    try:
        for row in reader:
            numbered.append((previous_line + 1, row))
            previous_line = reader.line_num
    except csv.Error as exc:
        raise InputFormatError(
            f"line {reader.line_num}: malformed CSV: {exc} (fix: check quoting)", source=src
        ) from None
    numbered = [(ln, row) for ln, row in numbered if any(cell.strip() for cell in row)]
    if not numbered:
        raise InputFormatError(
            "no header row (fix: add a header such as 'name,lat,lon')", source=src
        )
    _, header = numbered[0]
    cols = [h.strip() for h in header]
    lower = [c.lower() for c in cols]
    problems = ProblemCollector(source=src)
    dupes = sorted(c for c, n in Counter(lower).items() if n > 1 and c)
    if dupes:
        problems.add(
            f"{src}, header", f"duplicate column name(s) {dupes}", "give every column a unique name"
        )
    if any(not c for c in lower):
        problems.add(f"{src}, header", "a column has an empty name", "name every column")
    id_col = first_key(cols, ID_KEYS)
    name_col = first_key(cols, NAME_KEYS)
    lat_col = first_key(cols, LAT_KEYS)
    lon_col = first_key(cols, LON_KEYS)
    x_col = first_key(cols, ("x", "easting"))
    y_col = first_key(cols, ("y", "northing"))
    kind_col = first_key(cols, ("kind",))
    demand_col = first_key(cols, ("demand",))
    if id_col is None and name_col is None:
        problems.add(
            f"{src}, header",
            f"no 'name' column (found {cols})",
            "add a 'name' column with a unique name per site",
        )
    transformer: pyproj.Transformer | None = None
    use_xy = False
    if lat_col is None or lon_col is None:
        if x_col is not None and y_col is not None:
            use_xy = True
            if crs is None:
                problems.add(
                    f"{src}, header",
                    "coordinates are in 'x'/'y' columns but no CRS was given",
                    "give the CRS of x/y with --crs EPSG:.... (scenario: network.crs; Python: crs=), or give 'lat'/'lon' columns in degrees",
                )
            else:
                transformer = _transformer(crs, src)
        else:
            problems.add(
                f"{src}, header",
                f"no coordinate columns (found {cols})",
                "add 'lat' and 'lon' columns in decimal degrees (EPSG:4326), or 'x'/'y' with --crs EPSG:.... (scenario: network.crs; Python: crs=)",
            )
    raise_if_any(problems, InputFormatError)
    used = {c for c in (id_col, name_col, lat_col, lon_col, kind_col, demand_col) if c}
    if use_xy:
        used |= {x_col, y_col}  # type: ignore[arg-type]
    index = {c: i for i, c in enumerate(cols)}
    sites: list[RawSite] = []
    for n, (line_no, row) in enumerate(numbered[1:], start=1):
        where = f"row {n} (line {line_no})"
        if len(row) != len(cols):
            problems.add(
                f"{src}, {where}",
                f"has {len(row)} fields but the header has {len(cols)}",
                f"give exactly {len(cols)} {delimiter!r}-separated fields per row (quote values holding the separator)",
            )
            continue
        rec = {c: row[index[c]].strip() for c in cols}
        sid = rec[id_col] if id_col else rec[name_col]  # type: ignore[index]
        nm = rec[name_col] if name_col else sid
        if use_xy:
            latlon = _xy_to_latlon(
                rec[x_col],  # type: ignore[index]
                rec[y_col],  # type: ignore[index]
                transformer,  # type: ignore[arg-type]
                problems,
                f"{src}, {where}",
                str(crs),
            )
            if latlon is None:
                continue
            lat: Any = latlon[0]
            lon: Any = latlon[1]
        else:
            lat, lon = rec[lat_col], rec[lon_col]  # type: ignore[index]
        extra = {c: rec[c] for c in cols if c not in used}
        sites.append(
            RawSite(
                where=where,
                site_id=sid,
                name=nm,
                lat=lat,
                lon=lon,
                kind=rec[kind_col] if kind_col else None,
                demand=rec[demand_col] if demand_col else None,
                extra=extra,
                missing_position=not use_xy and is_blank(lat) and is_blank(lon),
            )
        )
    raise_if_any(problems, InputFormatError)
    if not sites:
        raise InputFormatError(
            "has a header but no data rows (fix: add one row per site)", source=src
        )
    return sites, [], {}


def _transformer(crs: str, src: str) -> pyproj.Transformer:
    try:
        return pyproj.Transformer.from_crs(
            pyproj.CRS.from_user_input(crs), CRS_WGS84, always_xy=True
        )
    except pyproj.exceptions.CRSError as exc:
        raise InputFormatError(
            f"crs {crs!r} is not understood ({exc}) (fix: give e.g. 'EPSG:32631')", source=src
        ) from None


def _xy_to_latlon(
    x: Any,
    y: Any,
    transformer: pyproj.Transformer,
    problems: ProblemCollector,
    where: str,
    crs: str,
) -> tuple[float, float] | None:
    """Transform one x/y pair to (lat, lon); records a problem naming the x/y column and returns None."""
    ok = True
    for column, value in (("x", x), ("y", y)):
        num = to_float(value)
        if num is None or not math.isfinite(num):
            problems.add(
                where,
                f"{column} {value!r} is not a finite number",
                f"give {column} in the units of {crs}",
            )
            ok = False
    if not ok:
        return None
    with np.errstate(all="ignore"):
        lon, lat = transformer.transform(to_float(x), to_float(y))
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        problems.add(
            where,
            f"x/y ({x}, {y}) lies outside the area where {crs} is defined",
            "check the x/y values and that --crs (network.crs, crs=) names their CRS",
        )
        return None
    return float(lat), float(lon)

