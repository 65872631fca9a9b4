"""The declared schema of every design table: column name, dtype, unit, description.

This is the one place that says what the tables of a :class:`~planner.model.design.Design`
hold (in the manner of PyPSA's component attribute tables). It is read by

- :mod:`planner.stages.assemble`, which builds empty tables with the declared columns and
  gives declared float columns their dtype (:func:`conform`);
- :meth:`planner.model.design.Design.from_dict`, which rejects a ``design.json`` whose
  ``columns`` section contradicts a declared dtype (:func:`dtype_problems`);
- the reports, whose table headers carry each column's description and unit (:func:`header_title`);
- the documentation: ``docs/design_tables.md`` is :func:`markdown` (a test keeps them equal).

Dtypes are pandas dtype names: ``str`` (text; pandas before 3 keeps it as ``object``),
``float64``, ``int64``, ``bool``, and ``object`` for an integer column that may be empty.
A column's ``when`` says when the planner writes it: ``always``, or the stage or setting
that adds it. A table with no rows carries only its ``always`` columns, as ``object``.
The order of the columns here is the order of an empty table's columns; a filled table
keeps the order in which the stages produce its columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

ALWAYS = "always"


@dataclass(frozen=True)
class Column:
    """One declared column: name, pandas dtype name, unit ("" for text and counts), meaning, when written."""

    name: str
    dtype: str
    unit: str
    description: str
    when: str = ALWAYS


@dataclass(frozen=True)
class TableSchema:
    """One declared design table: its name, what one row is, its columns."""

    name: str
    description: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        """Every declared column name, in declared order."""
        return [c.name for c in self.columns]

    @property
    def core(self) -> list[str]:
        """The columns written for every design (``when == "always"``), in declared order."""
        return [c.name for c in self.columns if c.when == ALWAYS]

    def column(self, name: str) -> Column:
        """The declared column ``name``; KeyError naming the table when it is not declared."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"column '{name}' of table '{self.name}' is not declared in planner/model/schema.py")


# the declarations read as a table, one column a line
# fmt: off
_C = Column
_REP = "backbone.mode is repeaters or both"
_MEM = "memory.budget_units > 0 or memory.size_for_load"
_TRUST = "backbone.mode is trusted or both"

DESIGN_TABLES: dict[str, TableSchema] = {t.name: t for t in (
    TableSchema("sites", "one row per site of the input network", (
        _C("site_id", "str", "", "site id as in the network file"),
        _C("name", "str", "", "site name"),
        _C("kind", "str", "", "site kind: site, end, trusted, untrusted, backbone, repeater or external"),
        _C("lat", "float64", "deg", "latitude (WGS84)"),
        _C("lon", "float64", "deg", "longitude (WGS84)"),
        _C("role", "str", "", "master, slave or unassigned (standalone)"),
        _C("cluster", "str", "", "id of the site's cluster master; empty when unassigned"),
        _C("access_km", "float64", "km", "access fibre length to the master; 0 for masters and unassigned sites"),
        _C("access_db", "float64", "dB", "access fibre loss to the master"),
        _C("trusted", "bool", "", "chosen as a trusted relay"),
        _C("memory_units", "int64", "units", "quantum memory units placed at the site"),
        _C("position_source", "str", "", "where the coordinates come from: given, or how they were located"),
    )),
    TableSchema("clusters", "one row per access cluster (a master and its slaves)", (
        _C("cluster", "str", "", "cluster id (the master's id)"),
        _C("master", "str", "", "master site or candidate location id"),
        _C("master_name", "str", "", "master name"),
        _C("n_slaves", "int64", "", "number of slaves"),
        _C("slaves", "str", "", "slave site ids, ';'-joined"),
        _C("slave_names", "str", "", "slave names, ', '-joined"),
        _C("ekert_pairs", "int64", "", "Ekert pairs the cluster forms (half its slaves)"),
        _C("keys_per_attempt", "float64", "keys/attempt", "keys per attempt of the cluster (Eq. 6)"),
        _C("master_is_site", "bool", "", "the master is a site of the network (not a candidate location)",
           "a cluster exists"),
        _C("cost", "float64", "cost units", "cost of the master (access.master_cost)", "a cluster exists"),
        _C("access_km_mean", "float64", "km", "mean access fibre length of the slaves", "a cluster exists"),
        _C("access_km_max", "float64", "km", "longest access fibre of the slaves", "a cluster exists"),
        _C("access_db_mean", "float64", "dB", "mean access loss of the slaves", "a cluster exists"),
        _C("access_db_max", "float64", "dB", "largest access loss of the slaves", "a cluster exists"),
        _C("memory_master", "int64", "units", "memory units at the master", "a cluster exists"),
        _C("memory_slave", "int64", "units", "memory units at each slave", "a cluster exists"),
    )),
    TableSchema("links", "one row per backbone link between two clusters (or standalone sites)", (
        _C("link_id", "str", "", "link id 'u--v'"),
        _C("u", "str", "", "one end (master or standalone site id)"),
        _C("v", "str", "", "other end"),
        _C("length_km", "float64", "km", "fibre length of the link's route"),
        _C("route", "str", "", "site ids of the fibre route, ';'-joined (for maps)"),
        _C("u_name", "str", "", "name of u"),
        _C("v_name", "str", "", "name of v"),
        _C("repeaters", "int64", "", "quantum repeaters placed on the link"),
        _C("spacing_km", "float64", "km", "length of one elementary segment (the whole link without repeaters)"),
        _C("p_link", "float64", "probability", "success probability of one elementary segment (Eq. 7)"),
        _C("memory_units", "int64", "units", "memory units of the link"),
        _C("demands_using", "int64", "", "demands routed over the link"),
    )),
    TableSchema("demands", "one row per inter-cluster key demand", (
        _C("demand_id", "str", "", "demand id"),
        _C("source", "str", "", "source cluster (or standalone site) id"),
        _C("target", "str", "", "target cluster (or standalone site) id"),
        _C("path", "str", "", "clusters on the backbone path, ';'-joined"),
        _C("links", "str", "", "backbone link ids on the path, ';'-joined"),
        _C("length_km", "float64", "km", "fibre length of the path"),
        _C("source_name", "str", "", "name of the source"),
        _C("target_name", "str", "", "name of the target"),
        _C("hops", "int64", "", "elementary segments on the path", _REP),
        _C("p_worst", "float64", "probability", "success probability of the path's worst segment", _REP),
        _C("rate", "float64", "pairs/attempt", "distribution rate of end-to-end pairs (Eq. 9)", _REP),
        _C("latency_s", "float64", "s", "time to an end-to-end pair as Eq. 10 prints it", _REP),
        _C("rate_shortfall", "float64", "pairs/attempt",
           "rate the best repeater spacing leaves short of backbone.rate_target",
           "repeater placement cannot reach backbone.rate_target for a demand"),
        _C("rate_shared", "float64", "pairs/attempt", "rate when all demands share link memory", _MEM),
        _C("shortfall_full_load", "float64", "pairs/attempt",
           "backbone.rate_target minus rate_shared (0 when met)",
           _MEM + ", backbone.objective min_cost with a rate_target"),
        _C("security", "float64", "probability", "end-to-end security with SMR routing", _TRUST),
        _C("security_single_path", "float64", "probability", "security of the best single path", _TRUST),
        _C("trusted_on_path", "str", "", "trusted relays the demand's key passes, ';'-joined", _TRUST),
        _C("key_consumption", "int64", "bits/bit",
           "link-key bits consumed per delivered end-to-end key bit (hops of all SMR paths)", _TRUST),
        _C("latency_protocol_s", "float64", "s", "the protocol's time to one end-to-end pair", "rate and hops exist"),
    )),
    TableSchema("relays", "one row per site considered as a trusted relay", (
        _C("site_id", "str", "", "site id"),
        _C("name", "str", "", "site name"),
        _C("kind", "str", "", "site kind"),
        _C("trusted", "bool", "", "chosen as a trusted relay"),
        _C("p_untrusted", "float64", "probability", "security probability of the site as a relay"),
    )),
    TableSchema("fibre", "one row per site-level fibre link the design was planned on", (
        _C("link_id", "str", "", "fibre link id"),
        _C("u", "str", "", "one end (site id)"),
        _C("v", "str", "", "other end (site id)"),
        _C("length_km", "float64", "km", "fibre length"),
        _C("candidate", "bool", "", "generated candidate fibre (not in the input)"),
        _C("key_bits_per_round", "int64", "bits", "link-key bits one round of key requests draws", _TRUST),
        _C("key_pool_bits", "int64", "bits", "key pool of the link (security.key_pool_bits)", _TRUST),
        _C("rounds_supported", "object", "rounds",
           "rounds the pool serves with no request blocked (integer; empty when the link draws nothing)",
           _TRUST),
    )),
    TableSchema("access_pareto", "masters against keys per attempt (the balanced access rule), one row per budget", (
        _C("masters_budget", "int64", "", "most masters allowed in this solve"),
        _C("n_masters", "int64", "", "masters opened"),
        _C("master_cost", "float64", "cost units", "cost of the opened masters"),
        _C("keys_per_attempt", "float64", "keys/attempt", "keys per attempt of all clusters (Eq. 6)"),
        _C("bound", "float64", "keys/attempt", "solver bound on the keys (empty unless a max-keys solve)"),
        _C("gap", "float64", "", "relative MIP gap of the solve"),
        _C("status", "str", "", "solver status"),
        _C("point", "str", "", "how the budget was chosen (e.g. refine)"),
        _C("chosen", "bool", "", "the point the rule chose"),
    )),
)}
# fmt: on

TABLE_NAMES: tuple[str, ...] = tuple(DESIGN_TABLES)

# the dtype pandas gives a column of Python strings: "str" from pandas 3, "object" before
_TEXT_DTYPES = frozenset({"str", "object", str(pd.Series(["x"]).dtype)})


def table_schema(name: str) -> TableSchema:
    """The declared table ``name``; KeyError listing the tables otherwise."""
    try:
        return DESIGN_TABLES[name]
    except KeyError:
        raise KeyError(f"unknown design table '{name}'; tables are {', '.join(TABLE_NAMES)}") from None


def empty_table(name: str) -> pd.DataFrame:
    """A table of no rows with the ``always`` columns of ``name`` (``object`` dtype, declared order)."""
    return pd.DataFrame(columns=table_schema(name).core)


def dtype_fits(declared: str, actual: str, *, n_rows: int, strict: bool = False) -> bool:
    """Whether a column of pandas dtype ``actual`` fits the ``declared`` dtype.

    An ``object`` column always fits (a table of no rows, or a column whose values are all
    missing); text fits ``str`` as ``str`` or ``object``; unless ``strict``, an ``int64``
    column may be ``float64`` (pandas' integers with missing values); else they must be equal.
    """
    if actual == declared or actual == "object" or n_rows == 0:
        return True
    if declared == "int64" and actual == "float64" and not strict:
        return True
    return declared == "str" and actual in _TEXT_DTYPES


def dtype_problems(name: str, columns: list[tuple[str, str]], *, n_rows: int, strict: bool = False) -> list[str]:
    """Problems of one table's ``[(column, dtype), ...]`` against the declared schema.

    Lists every declared column whose dtype does not fit (:func:`dtype_fits`); columns
    that are not declared are not problems here (see :func:`undeclared`).
    """
    schema = table_schema(name)
    declared = {c.name: c.dtype for c in schema.columns}
    return [
        f"table '{name}', column '{col}': dtype {dtype} where {declared[col]} is declared"
        for col, dtype in columns
        if col in declared and not dtype_fits(declared[col], dtype, n_rows=n_rows, strict=strict)
    ]


def undeclared(name: str, columns: list[str]) -> list[str]:
    """Columns of table ``name`` that the schema does not declare, in the given order."""
    known = set(table_schema(name).names)
    return [c for c in columns if c not in known]


def conform(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as the design table ``name``: a frame of no columns becomes :func:`empty_table`;
    a declared ``float64`` column holding integers becomes ``float64``. Column order, values
    and every other column are kept."""
    if len(frame.columns) == 0:
        return empty_table(name)
    schema = table_schema(name)
    out = frame
    for col in schema.columns:
        if (
            col.dtype == "float64"
            and col.name in out.columns
            and len(out)
            and pd.api.types.is_integer_dtype(out[col.name].dtype)
        ):
            out = out.assign(**{col.name: out[col.name].astype("float64")})
    return out


def header_title(table: str, column: str) -> str:
    """Hover text of a report column header: description and unit; "" for an undeclared column."""
    schema = DESIGN_TABLES.get(table)
    if schema is None or column not in schema.names:
        return ""
    c = schema.column(column)
    return f"{c.description} [{c.unit}]" if c.unit else c.description


def markdown() -> str:
    """``docs/design_tables.md``: every declared table and column as Markdown tables."""
    lines = [
        "# Design tables",
        "",
        "<!-- generated from planner/model/schema.py by planner.model.schema.markdown(); do not edit -->",
        "",
        "The tables of a design (`design.json`, the CSV files of a run folder, `Design` in Python).",
        "Dtypes are pandas dtype names (`str` is `object` before pandas 3); `when` says when the",
        "planner writes the column. A table with no rows carries only its `always` columns.",
    ]
    for t in DESIGN_TABLES.values():
        lines += [
            "",
            f"## `{t.name}`",
            "",
            t.description[0].upper() + t.description[1:] + ".",
            "",
            "| column | dtype | unit | description | when |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| `{c.name}` | {c.dtype} | {c.unit} | {c.description} | {c.when} |" for c in t.columns]
    return "\n".join(lines) + "\n"
