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
from dataclasses import dataclass
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
    RawNetwork,
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


def read_csv(file: Path, *, crs: str | None, drop_external: bool) -> RawNetwork:
    """Raw sites of a CSV file (UTF-8, BOM allowed); see :func:`parse_csv_text`."""
    return parse_csv_text(read_text(file), str(file), crs=crs)


def parse_csv_text(text: str, src: str, *, crs: str | None) -> RawNetwork:
    """Sites from CSV text (see :mod:`planner.io.readers`); ``src`` names it in messages.

    Raises :class:`InputFormatError` listing every header problem, else every
    row problem; returns no links.
    """
    delimiter, numbered = _split_rows(text, src)
    _, header = numbered[0]
    cols = _Columns.from_header(header, src, crs)
    problems = ProblemCollector(source=src)
    sites: list[RawSite] = []
    for n, (line_no, row) in enumerate(numbered[1:], start=1):
        where = f"row {n} (line {line_no})"
        if len(row) != len(cols.names):
            problems.add(
                f"{src}, {where}",
                f"has {len(row)} fields but the header has {len(cols.names)}",
                f"give exactly {len(cols.names)} {delimiter!r}-separated fields per row (quote values holding the "
                "separator)",
            )
            continue
        site = cols.site(where, row, problems, src, crs)
        if site is not None:
            sites.append(site)
    raise_if_any(problems, InputFormatError)
    if not sites:
        raise InputFormatError("has a header but no data rows (fix: add one row per site)", source=src)
    return sites, [], {}


def _split_rows(text: str, src: str) -> tuple[str, list[tuple[int, list[str]]]]:
    """(delimiter, non-blank rows with the physical line each starts on); the first row is the header."""
    lines = text.splitlines()
    header_line = next((ln for ln in lines if ln.strip()), "")
    if not header_line:
        raise InputFormatError("file holds only blank lines (fix: add a header row and one row per site)", source=src)
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
        raise InputFormatError("no header row (fix: add a header such as 'name,lat,lon')", source=src)
    return delimiter, numbered


@dataclass
class _Columns:
    """Which header column holds what; ``x``/``y`` are used (with ``transformer``) only without lat/lon."""

    names: list[str]
    id_col: str | None
    name_col: str | None
    lat_col: str | None
    lon_col: str | None
    x_col: str | None
    y_col: str | None
    kind_col: str | None
    demand_col: str | None
    transformer: pyproj.Transformer | None = None
    use_xy: bool = False

    @classmethod
    def from_header(cls, header: list[str], src: str, crs: str | None) -> _Columns:
        """The columns of a header row; raises :class:`InputFormatError` listing every header problem."""
        names = [h.strip() for h in header]
        lower = [c.lower() for c in names]
        problems = ProblemCollector(source=src)
        dupes = sorted(c for c, n in Counter(lower).items() if n > 1 and c)
        if dupes:
            problems.add(f"{src}, header", f"duplicate column name(s) {dupes}", "give every column a unique name")
        if any(not c for c in lower):
            problems.add(f"{src}, header", "a column has an empty name", "name every column")
        cols = cls(
            names=names,
            id_col=first_key(names, ID_KEYS),
            name_col=first_key(names, NAME_KEYS),
            lat_col=first_key(names, LAT_KEYS),
            lon_col=first_key(names, LON_KEYS),
            x_col=first_key(names, ("x", "easting")),
            y_col=first_key(names, ("y", "northing")),
            kind_col=first_key(names, ("kind",)),
            demand_col=first_key(names, ("demand",)),
        )
        if cols.id_col is None and cols.name_col is None:
            problems.add(
                f"{src}, header",
                f"no 'name' column (found {names})",
                "add a 'name' column with a unique name per site",
            )
        if cols.lat_col is None or cols.lon_col is None:
            if cols.x_col is not None and cols.y_col is not None:
                cols.use_xy = True
                if crs is None:
                    problems.add(
                        f"{src}, header",
                        "coordinates are in 'x'/'y' columns but no CRS was given",
                        "give the CRS of x/y with --crs EPSG:.... (scenario: network.crs; Python: crs=), or give "
                        "'lat'/'lon' columns in degrees",
                    )
                else:
                    cols.transformer = _transformer(crs, src)
            else:
                problems.add(
                    f"{src}, header",
                    f"no coordinate columns (found {names})",
                    "add 'lat' and 'lon' columns in decimal degrees (EPSG:4326), or 'x'/'y' with --crs EPSG:.... "
                    "(scenario: network.crs; Python: crs=)",
                )
        raise_if_any(problems, InputFormatError)
        return cols

    def site(self, where: str, row: list[str], problems: ProblemCollector, src: str, crs: str | None) -> RawSite | None:
        """The raw site of one data row (as many fields as the header); None after recording an x/y problem."""
        named = (self.id_col, self.name_col, self.lat_col, self.lon_col, self.kind_col, self.demand_col)
        used = {c for c in named if c}
        if self.use_xy:
            used |= {self.x_col, self.y_col}  # type: ignore[arg-type]
        rec = dict(zip(self.names, (cell.strip() for cell in row), strict=True))
        sid = rec[self.id_col] if self.id_col else rec[self.name_col]  # type: ignore[index]
        nm = rec[self.name_col] if self.name_col else sid
        if self.use_xy:
            latlon = _xy_to_latlon(
                rec[self.x_col],  # type: ignore[index]
                rec[self.y_col],  # type: ignore[index]
                self.transformer,  # type: ignore[arg-type]
                problems,
                f"{src}, {where}",
                str(crs),
            )
            if latlon is None:
                return None
            lat: Any = latlon[0]
            lon: Any = latlon[1]
        else:
            lat, lon = rec[self.lat_col], rec[self.lon_col]  # type: ignore[index]
        return RawSite(
            where=where,
            site_id=sid,
            name=nm,
            lat=lat,
            lon=lon,
            kind=rec[self.kind_col] if self.kind_col else None,
            demand=rec[self.demand_col] if self.demand_col else None,
            extra={c: rec[c] for c in self.names if c not in used},
            missing_position=not self.use_xy and is_blank(lat) and is_blank(lon),
        )


def _transformer(crs: str, src: str) -> pyproj.Transformer:
    try:
        return pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(crs), CRS_WGS84, always_xy=True)
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
