"""Raw site and link records as a reader finds them, and the parsing helpers every reader shares.

Each format reader (:mod:`planner.io.csv_sites`, :mod:`planner.io.gis`,
:mod:`planner.io.graphs`, :mod:`planner.io.sndlib`, :mod:`planner.io.qman`)
turns a file into :class:`RawSite`/:class:`RawLink` records without judging
their values; :func:`planner.io.build.build_network` validates them. Problems
are collected and raised together by :func:`raise_if_any`.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry.base import BaseGeometry

from planner.errors import InputFormatError, Problem, ProblemCollector, ValidationError

log = logging.getLogger(__name__)


# column / property / attribute names accepted for each field (matched case-insensitively, first wins)
ID_KEYS = ("site_id", "id")
NAME_KEYS = ("name", "label")
LAT_KEYS = ("lat", "latitude")
LON_KEYS = ("lon", "lng", "long", "longitude")
U_KEYS = ("u", "source", "node1", "from")
V_KEYS = ("v", "target", "node2", "to")


# --------------------------------------------------------------------------- raw records
@dataclass
class RawSite:
    """One site as found in a file, before validation. ``where`` names it for messages."""

    where: str
    site_id: Any
    name: Any
    lat: Any
    lon: Any
    kind: Any = None
    demand: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    missing_position: bool = False
    junction: bool = False
    position_source: str = "given"


@dataclass
class RawLink:
    """One link as found in a file, before validation; u/v are site ids."""

    where: str
    u: Any
    v: Any
    length_km: Any = None
    geometry: BaseGeometry | None = None
    extra: dict[str, Any] = field(default_factory=dict)


RawNetwork = tuple[list[RawSite], list[RawLink], dict[str, Any]]
"""What a reader returns: raw sites, raw links and metadata (``name``: the network's name in the file, or None)."""


MAX_REPORTED_PROBLEMS = 50
"""At most this many problems are listed in one error; the rest are counted."""


def raise_if_any(problems: ProblemCollector, exc_type: type[ValidationError]) -> None:
    """Raise every collected problem at once (the first MAX_REPORTED_PROBLEMS listed, the rest counted)."""
    if not problems:
        return
    listed = problems.problems[:MAX_REPORTED_PROBLEMS]
    rest = len(problems.problems) - len(listed)
    if rest:
        listed = [
            *listed,
            Problem(problems.source, f"... and {rest} more problem(s) of the kinds above"),
        ]
    raise exc_type(listed, source=problems.source)


# --------------------------------------------------------------------------- text helpers
def read_text(file: Path) -> str:
    """The file decoded as UTF-8 (a BOM is allowed); non-UTF-8 bytes give an error naming the line."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InputFormatError(f"cannot read the file: {exc.strerror}", source=str(file)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputFormatError(
            f"line {line}: byte 0x{raw[exc.start]:02x} at offset {exc.start} is not valid UTF-8"
            " (fix: save the file as UTF-8)",
            source=str(file),
        ) from None


def load_json(file: Path) -> Any:
    text = read_text(file)
    if not text.strip():
        raise InputFormatError("file holds only whitespace (fix: give a non-empty file)", source=str(file))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg} (fix: repair the JSON syntax)",
            source=str(file),
        ) from None
    except RecursionError:
        raise InputFormatError("JSON nested too deeply (fix: flatten the structure)", source=str(file)) from None


def to_float(value: Any) -> float | None:
    """A float from a number or numeric text; None when absent or not numeric (bools are not numbers)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def first_key(keys: Iterable[str], candidates: tuple[str, ...]) -> str | None:
    lookup = {k.strip().lower(): k for k in keys}
    for cand in candidates:
        if cand in lookup:
            return lookup[cand]
    return None


def plain(value: Any) -> Any:
    """A scalar suitable for a table column (nested structures become JSON text)."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, np.generic):
        return value.item()
    return value


def short_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def logging_warnings(src: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a third-party reader; its Python warnings are logged, never raised or shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    for w in caught:
        log.warning("%s: %s", src, w.message)
    return result
