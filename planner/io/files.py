"""Write single result files atomically and deterministically: GeoPackage, CSV and JSON.

Each writer writes to a temporary file in the target folder and then
``os.replace``-s it, so a reader never sees a half-written file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from planner.errors import ValidationError
from planner.io.records import is_blank
from planner.model.serialise import json_ready

log = logging.getLogger(__name__)


def _atomic_target(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(final path, temp path in the same folder) — same folder so os.replace is atomic."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
    os.close(fd)
    return final, Path(tmp)


def _commit(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write_geopackage(layers: Mapping[str, gpd.GeoDataFrame], path: str | os.PathLike[str]) -> None:
    """Write layers into one GeoPackage atomically (temp file, then ``os.replace``).

    Each value must be a GeoDataFrame with a CRS; object columns holding
    mixed or non-text values are written as text so every layer is storable.
    Layers are written in sorted name order.
    """
    if not layers:
        raise ValidationError("no layers to write (fix: pass at least one GeoDataFrame)", source=str(path))
    final, tmp = _atomic_target(path)
    tmp.unlink()  # the GPKG driver creates the file itself
    try:
        for name in sorted(layers):
            frame = layers[name]
            if not isinstance(frame, gpd.GeoDataFrame):
                raise ValidationError(
                    f"layer {name!r} is a {type(frame).__name__}, not a GeoDataFrame",
                    source=str(path),
                )
            frame = _storable(frame)
            frame.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        _commit(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _storable(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = frame.copy()
    if out.index.name is not None:
        out = out.reset_index()
    geom_col = out.geometry.name
    for col in out.columns:
        if col == geom_col:
            continue
        series = out[col]
        if series.dtype == object or str(series.dtype).startswith(("str", "string")):
            values = [None if is_blank(v) else v for v in series]
            if not all(v is None or isinstance(v, str) for v in values):
                out[col] = [
                    None
                    if v is None
                    else (
                        json.dumps(json_ready(v, strict=True), sort_keys=True)
                        if isinstance(v, dict | list | tuple | set)
                        else str(v)
                    )
                    for v in values
                ]
    return out


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], *, index: bool | None = None) -> None:
    """Write a table as UTF-8 CSV atomically; byte-identical for identical tables.

    The index is written when it has a name (e.g. ``site_id``) unless
    ``index`` says otherwise; geometries are written as WKT; floats use
    Python's shortest round-trip repr; line ends are ``\\n``.
    """
    frame = df.copy()
    if isinstance(frame, gpd.GeoDataFrame):
        geom_col = frame.geometry.name
        frame = pd.DataFrame(frame)
        frame[geom_col] = [None if g is None else g.wkt for g in frame[geom_col]]
    if index is None:
        index = frame.index.name is not None or any(n is not None for n in frame.index.names)
    final, tmp = _atomic_target(path)
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=index, lineterminator="\n")
        _commit(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as UTF-8 JSON atomically and deterministically.

    Keys are sorted, indentation is 2, floats use Python's shortest round-trip
    repr, non-finite floats become ``null``; numpy/pandas values, dataclasses,
    enums, sets (sorted) and paths are converted to plain JSON.
    """
    text = (
        json.dumps(json_ready(obj, strict=True), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )
    final, tmp = _atomic_target(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        _commit(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
