"""The declared design-table schema (planner/model/schema.py) against planned designs, files and docs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from planner.errors import InputFormatError
from planner.io.bundled import bundled_path
from planner.io.readers import read_network
from planner.model import schema
from planner.model.design import TABLES, Design
from planner.model.scenario import default_scenario
from planner.pipeline import plan

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = Path(__file__).parent / "data" / "golden"


def _columns(design: Design) -> dict[str, tuple[int, list[tuple[str, str]]]]:
    """Table name -> (rows, [(column, dtype), ...]) of a design."""
    return {
        name: (
            len(design.table(name)),
            [(str(c), str(d)) for c, d in design.table(name).dtypes.items()],
        )
        for name in TABLES
    }


def _problems(columns: dict[str, tuple[int, list[tuple[str, str]]]]) -> list[str]:
    out: list[str] = []
    for name, (n_rows, cols) in columns.items():
        out += [f"table '{name}', column '{c}' is not declared" for c in schema.undeclared(name, [c for c, _ in cols])]
        out += schema.dtype_problems(name, cols, n_rows=n_rows, strict=True)
    return out


@pytest.fixture(scope="module")
def planned() -> dict[str, Design]:
    """Abilene (no clusters: backbone only) and Surfnet (clusters, access front, repeaters, trust, memory)."""
    sc = default_scenario()
    return {
        name: plan(read_network(bundled_path(f"topology-zoo/{name}.graphml")), sc, seed=1)
        for name in ("Abilene", "Surfnet")
    }


def test_the_design_tables_are_the_declared_tables() -> None:
    assert tuple(schema.DESIGN_TABLES) == TABLES
    for t in schema.DESIGN_TABLES.values():
        assert len(set(t.names)) == len(t.names), t.name
        assert t.core, t.name
        for c in t.columns:
            assert c.dtype in {"str", "float64", "int64", "bool", "object"}, (t.name, c.name)
            assert c.description and c.when, (t.name, c.name)


@pytest.mark.parametrize("name", ["Abilene", "Surfnet"])
def test_every_column_of_a_planned_design_is_declared_with_its_dtype(planned: dict[str, Design], name: str) -> None:
    d = planned[name]
    cols = _columns(d)
    assert _problems(cols) == []
    # the tables a planner fills: every declared "always" column is there
    for table, (n_rows, names) in cols.items():
        if n_rows:
            missing = set(schema.table_schema(table).core) - {c for c, _ in names}
            assert not missing, (table, missing)
    # and the check can fail: a float where an integer count is declared is found
    bad = dict(cols)
    n_rows, links = bad["links"]
    bad["links"] = (n_rows, [(c, "float64" if c == "repeaters" else t) for c, t in links])
    assert _problems(bad) == ["table 'links', column 'repeaters': dtype float64 where int64 is declared"]
    bad["links"] = (n_rows, [*links, ("mystery", "float64")])
    assert _problems(bad) == ["table 'links', column 'mystery' is not declared"]


def test_surfnet_fills_the_optional_tables(planned: dict[str, Design]) -> None:
    d = planned["Surfnet"]
    assert len(d.clusters) and len(d.access_pareto) and len(d.relays)
    # a table with no rows carries exactly the declared "always" columns, in declared order
    assert list(planned["Abilene"].clusters.columns) == schema.table_schema("clusters").core


@pytest.mark.parametrize("path", sorted(GOLDEN_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_committed_designs_fit_the_schema(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    cols = {name: (len(doc[name]), [(c, t) for c, t in doc["columns"][name]]) for name in TABLES}
    assert _problems(cols) == []


def test_empty_tables_and_conform() -> None:
    for name in TABLES:
        e = schema.empty_table(name)
        assert len(e) == 0 and list(e.columns) == schema.table_schema(name).core
        assert list(schema.conform(name, pd.DataFrame()).columns) == schema.table_schema(name).core
    links = pd.DataFrame({"link_id": ["a--b"], "length_km": [3], "repeaters": [2], "extra": [1]})
    out = schema.conform("links", links)
    assert list(out.columns) == [
        "link_id",
        "length_km",
        "repeaters",
        "extra",
    ]  # order and extra columns kept
    assert str(out["length_km"].dtype) == "float64" and out["length_km"].tolist() == [3.0]
    assert str(out["repeaters"].dtype) == "int64" and str(out["extra"].dtype) == "int64"
    assert str(links["length_km"].dtype) == "int64"  # the input is not changed


def test_dtype_fits_rules() -> None:
    assert schema.dtype_fits("str", "object", n_rows=3)
    assert schema.dtype_fits("int64", "object", n_rows=3)
    assert schema.dtype_fits("bool", "float64", n_rows=0)
    assert schema.dtype_fits("int64", "float64", n_rows=3)
    assert not schema.dtype_fits("int64", "float64", n_rows=3, strict=True)
    assert not schema.dtype_fits("float64", "int64", n_rows=3)
    assert not schema.dtype_fits("bool", "str", n_rows=3)
    with pytest.raises(KeyError, match="not declared"):
        schema.table_schema("sites").column("nope")
    with pytest.raises(KeyError, match="unknown design table"):
        schema.table_schema("nope")


def _design_doc(planned: dict[str, Design]) -> dict[str, Any]:
    return json.loads(planned["Abilene"].to_json())


def test_from_dict_rejects_a_dtype_that_contradicts_the_schema(planned: dict[str, Design]) -> None:
    doc = _design_doc(planned)
    doc["columns"]["sites"] = [[c, "str" if c == "lat" else t] for c, t in doc["columns"]["sites"]]
    with pytest.raises(InputFormatError, match=r"table 'sites', column 'lat': dtype str where float64 is declared"):
        Design.from_dict(doc, source="x/design.json")
    # an integer column with missing values (float64 in pandas) is accepted
    doc = _design_doc(planned)
    doc["columns"]["links"] = [[c, "float64" if c == "repeaters" else t] for c, t in doc["columns"]["links"]]
    doc["links"][0]["repeaters"] = None
    d = Design.from_dict(doc)
    assert d.links["repeaters"].isna().sum() == 1


def test_report_headers_carry_the_declared_description_and_unit(planned: dict[str, Design]) -> None:
    from reports.html import table_html

    text = table_html(planned["Abilene"].links, columns=["link_id", "length_km"], table="links")
    assert '<th class="" title="fibre length of the link&#x27;s route [km]">length_km</th>' in text
    assert schema.header_title("links", "link_id") == "link id 'u--v'"
    assert schema.header_title("links", "nope") == "" and schema.header_title("nope", "u") == ""


def test_committed_doc_is_the_generated_doc() -> None:
    doc = ROOT / "docs" / "design_tables.md"
    assert doc.read_text(encoding="utf-8") == schema.markdown(), (
        "docs/design_tables.md is out of date: regenerate it with "
        "python -c 'from planner.model.schema import markdown; print(markdown(), end=\"\")' > docs/design_tables.md"
    )
    for t in schema.DESIGN_TABLES.values():
        assert f"## `{t.name}`" in schema.markdown()
        for c in t.columns:
            assert f"| `{c.name}` | {c.dtype} |" in schema.markdown()
