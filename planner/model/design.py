"""Design: the chosen network as tables plus metrics, with a JSON round trip.

A :class:`Design` is what :func:`planner.pipeline.plan` returns and what the
reports, the simulator and ``qkdplan compare`` read. It holds plain pandas
tables (no geometry objects) so that it serialises exactly.

The tables (``sites``, ``clusters``, ``links``, ``demands``, ``relays``, ``fibre``,
``access_pareto``) and every column's dtype, unit and meaning are declared in
:mod:`planner.model.schema` (rendered as ``docs/design_tables.md``).

Every table keeps its column names, their order and their pandas dtypes through
:meth:`Design.to_dict` / :meth:`Design.from_dict` (the ``columns`` section of the
JSON), so an empty table comes back with its columns and an all-missing float
column comes back as floats. Floats are written with 12 significant digits.

``solves`` maps a stage name to its solver summary (status, objective, bound,
gap, time, model size); ``baselines`` holds heuristic results for comparison;
``timing`` holds wall-clock figures, kept apart so that everything else is
byte-identical for the same input, scenario and seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputFormatError
from planner.model.schema import TABLE_NAMES, dtype_problems, empty_table
from planner.model.serialise import DESIGN_DIGITS, json_ready

SCHEMA_VERSION = 1
#: the design tables, declared column by column in :mod:`planner.model.schema`
TABLES = TABLE_NAMES


@dataclass
class Design:
    """A planned network: tables, metrics, solver summaries and provenance."""

    network_name: str
    network_source: str
    scenario: dict[str, Any]
    seed: int
    version: str
    sites: pd.DataFrame
    clusters: pd.DataFrame
    links: pd.DataFrame
    demands: pd.DataFrame
    relays: pd.DataFrame
    fibre: pd.DataFrame = field(default_factory=lambda: empty_table("fibre"))
    # the balanced access rule's Pareto front (planner.stages.access_pareto); empty for other objectives
    access_pareto: pd.DataFrame = field(default_factory=lambda: empty_table("access_pareto"))
    metrics: dict[str, Any] = field(default_factory=dict)
    solves: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        """One of the tables named in :data:`TABLES`."""
        if name not in TABLES:
            raise KeyError(f"unknown table '{name}'; tables are {', '.join(TABLES)}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; deterministic apart from the ``timing`` section."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "qkdplan_version": self.version,
            "network": {"name": self.network_name, "source": self.network_source},
            "seed": self.seed,
            "scenario": self.scenario,
            "metrics": _clean(self.metrics),
            "solves": _clean(self.solves),
            "baselines": _clean(self.baselines),
            "notes": list(self.notes),
        }
        for name in TABLES:
            out[name] = _records(getattr(self, name))
        out["columns"] = {name: _column_schema(getattr(self, name)) for name in TABLES}
        out["timing"] = _clean(self.timing)
        return out

    def to_json(self) -> str:
        """JSON text with sorted keys and a fixed float format."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "design.json") -> Design:
        """Inverse of :meth:`to_dict`; raises :class:`InputFormatError` on a malformed file."""
        try:
            if data.get("schema_version") != SCHEMA_VERSION:
                raise InputFormatError(
                    f"{source}: schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}; "
                    "re-run 'qkdplan plan' with this version of qkdplan",
                    source=source,
                )
            schema = data.get("columns") or {}
            if not isinstance(schema, dict):
                raise InputFormatError(
                    f"{source}: 'columns' must map table names to [name, dtype] pairs", source=source
                )
            tables = {
                name: _table(data[name], schema.get(name), name=name, source=source) for name in TABLES if name in data
            }
            return cls(
                network_name=data["network"]["name"],
                network_source=data["network"]["source"],
                scenario=data["scenario"],
                seed=int(data["seed"]),
                version=data["qkdplan_version"],
                metrics=data.get("metrics", {}),
                solves=data.get("solves", {}),
                baselines=data.get("baselines", {}),
                notes=list(data.get("notes", [])),
                timing=data.get("timing", {}),
                **tables,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, InputFormatError):
                raise
            raise InputFormatError(
                f"{source}: not a qkdplan design file (missing or malformed {exc}); "
                "point to a folder written by 'qkdplan plan'",
                source=source,
            ) from None

    @classmethod
    def read(cls, path: str | Path) -> Design:
        """Read ``design.json`` (or a run folder containing it)."""
        p = Path(path)
        if p.is_dir():
            p = p / "design.json"
        if not p.is_file():
            raise InputFormatError(f"{p}: no design file here; run 'qkdplan plan --out DIR' first", source=str(p))
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFormatError(
                f"{p}: not valid JSON ({exc}); the file may be truncated or edited", source=str(p)
            ) from None
        if not isinstance(data, dict):
            raise InputFormatError(f"{p}: not a qkdplan design file", source=str(p))
        return cls.from_dict(data, source=str(p))


def _clean(obj: Any) -> Any:
    """``obj`` as JSON data with floats rounded to 12 significant digits (:mod:`planner.model.serialise`)."""
    return json_ready(obj, digits=DESIGN_DIGITS)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [_clean(rec) for rec in df.to_dict(orient="records")]


def _column_schema(df: pd.DataFrame) -> list[list[str]]:
    """``[[column, dtype], ...]`` in the table's column order (JSON objects lose the order)."""
    return [[str(col), str(dtype)] for col, dtype in df.dtypes.items()]


# the dtype pandas gives a column of Python strings: "str" from pandas 3, object before
_STRING_IS_OBJECT = pd.api.types.is_object_dtype(pd.Series(["x"]).dtype)
_STRING_DTYPE = pd.Series(["x"]).dtype


def _table(records: Any, schema: Any, *, name: str, source: str) -> pd.DataFrame:
    """Rebuild one table from its records and its ``[[column, dtype], ...]`` schema.

    Guarantees the schema's columns in the schema's order with the schema's dtypes, each fitting
    the dtype declared in :mod:`planner.model.schema` (:func:`~planner.model.schema.dtype_fits`)
    (columns found only in the records follow, with inferred dtypes); without a
    schema (files written before it existed) the columns are inferred from the records.
    Raises :class:`InputFormatError` naming the table and column when a value does
    not fit its dtype.
    """
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputFormatError(f"{source}: table '{name}' must be a list of records", source=source)
    if schema is None:
        return pd.DataFrame.from_records(records)
    if not isinstance(schema, list) or not all(
        isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c) for c in schema
    ):
        raise InputFormatError(f"{source}: columns.{name} must be a list of [name, dtype] pairs", source=source)
    declared = [c for c, _ in schema]
    extra = sorted({k for r in records for k in r} - set(declared))
    # built column by column as plain objects, so that pandas infers nothing the schema does not say
    frame = pd.DataFrame(
        {col: pd.Series([r.get(col) for r in records], dtype=object) for col in declared},
        index=pd.RangeIndex(len(records)),
    )
    for col in extra:
        frame[col] = pd.Series([r.get(col) for r in records], dtype=object).infer_objects()
    contradictions = dtype_problems(name, [(c, d) for c, d in schema], n_rows=len(records))
    if contradictions:
        raise InputFormatError(
            f"{source}: {contradictions[0]} (see docs/design_tables.md); the file may have "
            "been edited by hand or written by another program",
            source=source,
        )
    for col, dtype in schema:
        try:
            frame[col] = _as_dtype(frame[col], dtype)
        except (TypeError, ValueError) as exc:
            raise InputFormatError(
                f"{source}: table '{name}', column '{col}': values do not fit dtype {dtype} "
                f"({exc}); the file may have been edited by hand",
                source=source,
            ) from None
    return frame


def _as_dtype(values: pd.Series, dtype: str) -> pd.Series:
    """Cast one column to the dtype named in the schema; missing values only where the dtype allows them."""
    if dtype == "bool" or dtype.startswith(("int", "uint")):
        if values.isna().any():
            raise ValueError("missing value in a column that cannot hold one")
        return values.astype(dtype)
    if dtype == "str":
        # pandas before 3 has no "str" dtype (and its astype(str) turns None into "None")
        return values.astype(object) if _STRING_IS_OBJECT else values.astype(_STRING_DTYPE)
    return values.astype(dtype)
