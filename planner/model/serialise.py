"""The one JSON serialiser of qkdplan: plain JSON data from numpy, pandas and Python values.

Everything the planner writes as JSON (``design.json``, ``simulation.json``, sweep records,
``write_json`` files) goes through :func:`json_ready` or :func:`json_default`; nested
settings become dotted keys with :func:`flatten`.

- :func:`json_ready` turns a value into plain JSON data: dict keys as text, numpy/pandas
  scalars unwrapped, non-finite floats as ``None``, optionally floats rounded to
  ``digits`` significant digits (``design.json`` uses 12 so that it is the same on every
  platform). Enums, dataclasses, sets (sorted), arrays, frames, series, paths, timestamps
  and geometries are converted; any other value is its ``str`` or, with ``strict``, a
  :class:`~planner.errors.ValidationError`.
- :func:`json_default` is the ``default=`` hook of :func:`json.dumps` for records that are
  plain already apart from numpy scalars.
- :func:`dumps` is the deterministic text form: sorted keys, indent 2, no NaN.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from planner.errors import ValidationError

#: significant digits of the floats in ``design.json`` and ``simulation.json``
DESIGN_DIGITS = 12


def round_float(x: float, digits: int | None = DESIGN_DIGITS) -> float | None:
    """``x`` rounded to ``digits`` significant digits (unrounded when ``digits`` is None); None when not finite."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}") if digits is not None else float(x)


def json_ready(obj: Any, *, digits: int | None = None, strict: bool = False) -> Any:
    """``obj`` as plain JSON data (dict, list, str, int, float, bool, None); see the module docstring.

    Guarantees: the result passes ``json.dumps(..., allow_nan=False)``; equal inputs give
    equal results; bools stay bools (never ints); with ``strict`` an unknown type raises
    :class:`~planner.errors.ValidationError` instead of becoming its ``str``.
    """

    def conv(o: Any) -> Any:
        if isinstance(o, bool | np.bool_):
            return bool(o)
        if isinstance(o, int | np.integer):
            return int(o)
        if isinstance(o, float | np.floating):
            return round_float(float(o), digits)
        if o is None or isinstance(o, str):
            return o
        if isinstance(o, Mapping):
            return {str(k): conv(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [conv(v) for v in o]
        if o is pd.NA:
            return None
        if isinstance(o, enum.Enum):
            return conv(o.value)
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return conv(dataclasses.asdict(o))
        if isinstance(o, set | frozenset):
            return [conv(v) for v in sorted(o, key=str)]
        if isinstance(o, np.ndarray):
            return [conv(v) for v in o.tolist()]
        if isinstance(o, pd.DataFrame):
            frame = o.reset_index() if o.index.name else o
            return [conv(r) for r in frame.to_dict("records")]
        if isinstance(o, pd.Series):
            return {str(k): conv(v) for k, v in o.items()}
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        if hasattr(o, "isoformat"):
            return o.isoformat()
        if hasattr(o, "wkt") and hasattr(o, "geom_type"):  # shapely geometry
            return o.wkt
        if strict:
            raise ValidationError(f"value of type {type(o).__name__} cannot be written as JSON", source="write_json")
        return str(o)

    return conv(obj)


def json_default(obj: Any) -> Any:
    """``default=`` hook of :func:`json.dumps`: numpy scalars as Python values, anything else as ``str``."""
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def dumps(obj: Any, *, digits: int | None = None, ensure_ascii: bool = True) -> str:
    """Deterministic JSON text of ``obj``: :func:`json_ready` data, sorted keys, indent 2, a final newline."""
    data = json_ready(obj, digits=digits)
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=ensure_ascii) + "\n"


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys: ``{"a": {"b": 1}}`` and ``{"a.b": 1}`` both give ``{"a.b": 1}``.

    Values other than mappings are kept as they are (lists included).
    """
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out
