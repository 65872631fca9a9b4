"""design.json round trip: every table keeps its columns, their order, dtypes and values, empty or not."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_design import assert_same_design
from helpers_net import write_sites_csv

from planner.errors import InputFormatError
from planner.io.readers import read_network
from planner.model.design import TABLES, Design
from planner.model.scenario import default_scenario
from planner.pipeline import plan

FAST = default_scenario().with_overrides({"solver.time_limit_s": 30.0})


def _via_json(design: Design) -> Design:
    """What a reader of the written file gets: text, parsed, rebuilt."""
    return Design.from_dict(json.loads(design.to_json()))


def _hand_made() -> Design:
    """A design whose tables cover every dtype and the awkward cases (empty, all-missing, missing strings)."""
    sites = pd.DataFrame(
        {
            "site_id": ["a", "b", "c"],
            "lat": [52.1, 52.2, 1 / 3],
            "role": ["master", "slave", "unassigned"],
            "trusted": [True, False, False],
            "memory_units": np.array([3, 0, 7], dtype="int64"),
            "access_km": [0.0, 12.5, float("nan")],
            "note": pd.Series(["x", None, "z"], dtype=object),
        }
    )
    clusters = pd.DataFrame(
        {
            "cluster": ["a"],
            "n_slaves": np.array([1], dtype="int64"),
            "keys_per_attempt": [math.pi * 1e-7],
            "all_missing": [float("nan")],
        }
    )
    # an empty table with columns of several dtypes (the one-cluster case: no backbone links)
    links = pd.DataFrame(
        {
            "link_id": pd.Series([], dtype=object),
            "u": pd.Series([], dtype=object),
            "length_km": pd.Series([], dtype="float64"),
            "repeaters": pd.Series([], dtype="int64"),
            "candidate": pd.Series([], dtype="bool"),
        }
    )
    demands = pd.DataFrame(columns=["demand_id", "source", "target", "rate"])
    relays = pd.DataFrame({"site_id": ["a", "b"], "trusted": [True, False], "p_untrusted": [0.5, 1e-300]})
    return Design(
        network_name="hand",
        network_source="hand.csv",
        scenario={"name": "t"},
        seed=1,
        version="0",
        sites=sites,
        clusters=clusters,
        links=links,
        demands=demands,
        relays=relays,
    )


def test_hand_made_design_round_trips_every_column_and_dtype() -> None:
    d = _hand_made()
    again = _via_json(d)
    assert_same_design(d, again)
    assert list(again.links.columns) == ["link_id", "u", "length_km", "repeaters", "candidate"]
    assert str(again.links["repeaters"].dtype) == "int64" and str(again.links["candidate"].dtype) == "bool"
    assert str(again.clusters["all_missing"].dtype) == "float64" and again.clusters["all_missing"].isna().all()
    assert again.sites["note"].isna().tolist() == [False, True, False]
    # the fibre table was left at its default (empty, declared columns): it survives too
    assert list(again.fibre.columns) == ["link_id", "u", "v", "length_km", "candidate"] and again.fibre.empty
    # a second trip is exact (the first one rounded floats to 12 significant digits)
    assert_same_design(again, _via_json(again), exact=True)


def test_round_trip_keeps_12_significant_digits_only() -> None:
    d = _hand_made()
    again = _via_json(d)
    x, y = float(d.clusters.at[0, "keys_per_attempt"]), float(again.clusters.at[0, "keys_per_attempt"])
    assert y == float(f"{math.pi * 1e-7:.12g}") and abs(x - y) <= 1e-11 * abs(x)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Design]:
    base = tmp_path_factory.mktemp("rt")
    many = write_sites_csv(base / "sites.csv")
    one = write_sites_csv(
        base / "one.csv", [("A1", 52.37, 4.89), ("A2", 52.40, 4.95), ("A3", 52.33, 4.80), ("A4", 52.45, 4.85)]
    )
    return {
        "repeaters": plan(
            read_network(many), FAST.with_overrides({"backbone.mode": "repeaters", "access.reach_km": 40.0}), seed=3
        ),
        "default": plan(read_network(many), FAST.with_overrides({"access.reach_km": 40.0}), seed=3),
        "one-cluster": plan(read_network(one), FAST, seed=0),
    }


@pytest.mark.parametrize("case", ["repeaters", "default", "one-cluster"])
def test_planned_design_round_trips_table_by_table(planned: dict[str, Design], case: str) -> None:
    d = planned[case]
    assert_same_design(d, Design.from_dict(d.to_dict()))
    assert_same_design(d, _via_json(d))


def test_one_cluster_plan_keeps_the_empty_backbone_tables(planned: dict[str, Design], tmp_path: Path) -> None:
    d = planned["one-cluster"]
    assert len(d.clusters) == 1 and d.links.empty and d.demands.empty  # the case this test is about
    assert len(d.links.columns) >= 12
    (tmp_path / "design.json").write_text(d.to_json(), encoding="utf-8")
    again = Design.read(tmp_path)
    assert list(again.links.columns) == list(d.links.columns)
    assert list(again.demands.columns) == list(d.demands.columns)
    assert_same_design(d, again)


def test_files_without_a_column_schema_still_read() -> None:
    d = _hand_made()
    data = json.loads(d.to_json())
    del data["columns"]
    again = Design.from_dict(data)
    # without the schema the columns come back in the file's (sorted) key order, and empty tables have none
    assert sorted(again.relays.columns) == ["p_untrusted", "site_id", "trusted"] and again.links.empty


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda data: data["columns"].update(sites=[["site_id", "str"], ["memory_units"]]), "columns.sites"),
        (lambda data: data["sites"][1].update(memory_units=None), "column 'memory_units'"),
        (lambda data: data["sites"][0].update(lat="north"), "column 'lat'"),
        (lambda data: data.update(columns=["sites"]), "'columns'"),
        (lambda data: data.update(links={"link_id": []}), "table 'links'"),
    ],
)
def test_a_hand_edited_schema_or_value_is_named(edit, message: str) -> None:
    data = json.loads(_hand_made().to_json())
    edit(data)
    with pytest.raises(InputFormatError) as info:
        Design.from_dict(data, source="run/design.json")
    assert "run/design.json" in str(info.value) and message in str(info.value), str(info.value)


def test_schema_lists_every_table() -> None:
    data = json.loads(_hand_made().to_json())
    assert set(data["columns"]) == set(TABLES)
    assert data["columns"]["links"][3] == ["repeaters", "int64"]
