"""Small synthetic site sets shared by tests (no I/O beyond tmp files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SMALL_SITES = [
    # name, lat, lon: three towns with a few sites each, 60-120 km apart (Netherlands-like)
    ("A1", 52.37, 4.89),
    ("A2", 52.40, 4.95),
    ("A3", 52.33, 4.80),
    ("A4", 52.45, 4.85),
    ("B1", 52.09, 5.12),
    ("B2", 52.12, 5.20),
    ("B3", 52.05, 5.05),
    ("C1", 51.92, 4.48),
    ("C2", 51.95, 4.40),
    ("C3", 51.88, 4.55),
    ("C4", 51.90, 4.35),
    ("D1", 53.22, 6.57),
    ("D2", 53.25, 6.50),
    ("D3", 53.18, 6.62),
]


def write_sites_csv(path: Path, rows: list[tuple[str, float, float]] | None = None) -> Path:
    rows = SMALL_SITES if rows is None else rows
    lines = ["name,lat,lon"] + [f"{n},{lat},{lon}" for n, lat, lon in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def random_sites(
    n: int, *, seed: int = 0, lat0: float = 52.0, lon0: float = 5.0, span_deg: float = 2.0
) -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(seed)
    lat = lat0 + rng.uniform(-span_deg / 2, span_deg / 2, n)
    lon = lon0 + rng.uniform(-span_deg / 2, span_deg / 2, n)
    return [(f"S{i:04d}", float(a), float(b)) for i, (a, b) in enumerate(zip(lat, lon, strict=True))]
