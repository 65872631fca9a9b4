"""Every summary figure of report.html and every CSV restates design.json.

Each number is recounted here from the raw records of ``design.json`` (read with
``json``, not through :class:`~planner.model.design.Design`), the way
``test_compare`` recounts its table: sums, counts, minima and maxima over the
design's own tables. The report prints 4 significant digits, so its cards are
compared to that precision; ``metrics`` in ``design.json`` and the CSVs are
compared to the 12 significant digits ``design.json`` keeps.
"""

from __future__ import annotations

import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers_net import write_sites_csv

from qkdplan.cli import main
from reports.html import MAX_TABLE_ROWS

TABLE_FILES = ("sites", "clusters", "links", "demands", "relays", "fibre")
# the report's summary cards: label -> the metric each restates
CARDS = {
    "sites": "n_sites",
    "clusters": "n_clusters",
    "standalone sites": "n_standalone",
    "keys / attempt (Eq. 6, all clusters)": "total_keys_per_attempt",
    "backbone links": "n_backbone_links",
    "backbone km": "backbone_km",
    "repeaters": "n_repeaters",
    "trusted relays": "n_trusted",
    "min demand rate (pairs/attempt)": "min_demand_rate",
    "max latency (s, Eq. 10 as printed)": "max_latency_s",
    "max latency (s, protocol: time to one pair)": "max_latency_protocol_s",
    "min security (SMR)": "min_security",
    "memory units": "memory_units_total",
}
ONE_TOWN = [("A1", 52.37, 4.89), ("A2", 52.40, 4.95), ("A3", 52.33, 4.80), ("A4", 52.45, 4.85)]
RUNS = {
    "trusted": (None, ["--set", "access.reach_km=40"]),
    "repeaters": (None, ["--set", "access.reach_km=40", "--set", "backbone.mode=repeaters"]),
    "one-cluster": (ONE_TOWN, []),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report-numbers")
    out = {}
    for name, (rows, args) in RUNS.items():
        sites = write_sites_csv(base / f"{name}.csv", rows)
        run = base / name
        assert (
            main(["plan", str(sites), "--out", str(run), "--seed", "2", "--set", "solver.time_limit_s=30", *args]) == 0
        )
        out[name] = run
    return out


def recount(d: dict[str, Any]) -> dict[str, float | int | None]:
    """The headline numbers, from the raw records of design.json."""
    sites, clusters, links, demands, relays = (d[t] for t in ("sites", "clusters", "links", "demands", "relays"))

    def col(rows: list[dict[str, Any]], key: str) -> list[float]:
        return [float(r[key]) for r in rows if r.get(key) is not None]

    def smallest(key: str) -> float | None:
        return min(col(demands, key)) if col(demands, key) else None

    def mean(key: str) -> float | None:
        return sum(col(demands, key)) / len(demands) if col(demands, key) else None

    roles = [s["role"] for s in sites]
    n_rep = sum(int(link["repeaters"]) for link in links)
    return {
        "n_sites": len(sites),
        "n_clusters": len(clusters),
        "n_masters": roles.count("master"),
        "n_slaves": roles.count("slave"),
        "n_standalone": roles.count("unassigned"),
        "total_keys_per_attempt": sum(col(clusters, "keys_per_attempt")),
        "n_backbone_links": len(links),
        "backbone_km": sum(col(links, "length_km")),
        "n_repeaters": n_rep,
        "repeater_cost": n_rep * d["scenario"]["backbone"]["repeater_cost"],
        "n_demands": len(demands),
        "min_demand_rate": smallest("rate"),
        "mean_demand_rate": mean("rate"),
        "max_latency_s": max(col(demands, "latency_s")) if col(demands, "latency_s") else None,
        "max_latency_protocol_s": _protocol_latency_max(demands, d["scenario"]["physics"]),
        "n_trusted": sum(1 for r in relays if r["trusted"] is True),
        "min_security": smallest("security"),
        "mean_security": mean("security"),
        "min_security_single_path": smallest("security_single_path"),
        "memory_units_total": sum(int(s["memory_units"]) for s in sites) + sum(int(x["memory_units"]) for x in links),
        "master_cost": len(clusters) * d["scenario"]["access"]["master_cost"],
    }


def _protocol_latency_max(demands: list[dict[str, Any]], ph: dict[str, Any]) -> float | None:
    """Largest time to one end-to-end pair, recomputed from each demand's hops, worst-hop p and rate:
    slot = max(attempt time, longest hop / light speed) with the hop from Eq. 7, about max(1, 1/rate)
    slots, then ceil(log2 hops) swap rounds and the retrieval at t_mea + t_ret each."""
    times = []
    for r in demands:
        if r.get("rate") is None or r.get("hops") is None or r.get("p_worst") is None:
            continue
        hop_km = -10.0 * math.log10(float(r["p_worst"])) / float(ph["alpha_db_per_km"])
        slot = max(float(ph["attempt_time_s"]), hop_km / float(ph["speed_km_per_s"]))
        k = int(r["hops"])
        rounds = 0 if k <= 1 else math.ceil(math.log2(k))
        times.append(
            slot * max(1.0, 1.0 / float(r["rate"])) + (rounds + 1) * (float(ph["t_mea_s"]) + float(ph["t_ret_s"]))
        )
    return max(times) if times else None


class ReportParser(HTMLParser):
    """Summary cards (label -> shown value) and, per section id, the body rows of its tables."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self.trusted_sentence = ""
        self._section = ""
        self._stack: list[tuple[str, str]] = []
        self._text: list[str] = []
        self._row: list[str] | None = None
        self._card_v = ""
        self._in_tbody = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id") or ""
        if tag == "tbody":
            self._in_tbody = True
        if tag == "tr" and self._in_tbody:
            self._row = []
        self._stack.append((tag, a.get("class") or ""))
        self._text = []

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text).strip()
        _, cls = self._stack.pop() if self._stack else ("", "")
        if tag == "div" and cls == "v":
            self._card_v = text
        elif tag == "div" and cls == "k":
            self.cards[text] = self._card_v
        elif tag == "td" and self._row is not None:
            self._row.append(text)
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self._section, []).append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "p" and self._section == "security" and "trusted relay(s) chosen" in text:
            self.trusted_sentence = text
        self._text = []

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def _parse(run: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed((run / "report.html").read_text(encoding="utf-8"))
    return parser


def _close_4_digits(shown: str, value: float | int | None) -> bool:
    """The card shows ``value`` to the report's 4 significant digits (empty for a missing value)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return shown == ""
    v = float(value)
    s = float(shown)
    return s == v if v == 0 or float(v).is_integer() and abs(v) < 1e4 else abs(s - v) <= 5e-4 * abs(v)


@pytest.mark.parametrize("case", list(RUNS))
def test_metrics_in_design_json_are_the_recount(runs: dict[str, Path], case: str) -> None:
    d = json.loads((runs[case] / "design.json").read_text(encoding="utf-8"))
    expected = recount(d)
    for key, value in expected.items():
        got = d["metrics"].get(key)
        if value is None:
            assert got is None, key
        else:
            assert got == pytest.approx(value, rel=1e-11, abs=1e-300), (key, got, value)


@pytest.mark.parametrize("case", list(RUNS))
def test_every_summary_card_restates_design_json(runs: dict[str, Path], case: str) -> None:
    d = json.loads((runs[case] / "design.json").read_text(encoding="utf-8"))
    expected = recount(d)
    report = _parse(runs[case])
    # every card is one this test recounts (a new card needs a recount here)
    assert set(report.cards) <= set(CARDS), f"cards without a recount: {set(report.cards) - set(CARDS)}"
    shown = {CARDS[label]: v for label, v in report.cards.items()}
    # the cards always shown, whatever the scenario
    assert {"n_sites", "n_clusters", "n_backbone_links", "n_repeaters", "memory_units_total"} <= set(shown)
    for key, text in shown.items():
        assert _close_4_digits(text, expected[key]), (case, key, text, expected[key])


def test_the_cards_name_the_planned_numbers(runs: dict[str, Path]) -> None:
    """The recount is not vacuous: the trusted run has trusted relays, demands and a security figure."""
    d = json.loads((runs["trusted"] / "design.json").read_text(encoding="utf-8"))
    r = recount(d)
    assert r["n_trusted"] > 0 and r["n_demands"] > 0 and r["min_security"] is not None
    cards = _parse(runs["trusted"]).cards
    assert int(cards["trusted relays"]) == r["n_trusted"] and int(cards["sites"]) == len(d["sites"])
    one = recount(json.loads((runs["one-cluster"] / "design.json").read_text(encoding="utf-8")))
    assert (one["n_clusters"], one["n_backbone_links"], one["n_demands"]) == (1, 0, 0)


@pytest.mark.parametrize("case", list(RUNS))
def test_report_tables_list_every_row_of_design_json(runs: dict[str, Path], case: str) -> None:
    d = json.loads((runs[case] / "design.json").read_text(encoding="utf-8"))
    report = _parse(runs[case])
    assert len(report.rows.get("clusters", [])) == len(d["clusters"])
    assert len(report.rows.get("backbone", [])) == len(d["links"])
    assert len(report.rows.get("demands", [])) == len(d["demands"])
    # the demands table is sorted by rate (worst first); its rate column is design.json's rates
    if d["demands"]:
        rate_col = 5  # source, target, length_km, hops, p_worst, rate, ...
        shown = [float(row[rate_col]) for row in report.rows["demands"]]
        for s, v in zip(shown, sorted(x["rate"] for x in d["demands"]), strict=True):
            assert abs(s - v) <= 5e-4 * abs(v), (s, v)
    trusted = [r for r in d["relays"] if r["trusted"] is True]
    if trusted:
        assert report.trusted_sentence.startswith(f"{len(trusted)} trusted relay(s) chosen")
        for r in trusted:
            assert r["name"] in report.trusted_sentence


def _assert_csv_restates(path: Path, records: list[dict[str, Any]], columns: list[str]) -> None:
    """The CSV has exactly these columns and one row per record with the record's values."""
    csv = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(csv.columns) == columns, (path.name, list(csv.columns), columns)
    assert len(csv) == len(records), path.name
    for i, rec in enumerate(records):
        for c in columns:
            cell, value = csv.at[i, c], rec.get(c)
            if value is None:
                assert cell in ("", "nan"), (path.name, i, c, cell)
            elif isinstance(value, bool):
                assert cell == str(value), (path.name, i, c, cell, value)
            elif isinstance(value, (int, float)):
                assert float(cell) == pytest.approx(value, rel=1e-11, abs=0), (path.name, i, c, cell, value)
            else:
                assert cell == str(value), (path.name, i, c, cell, value)


@pytest.mark.parametrize("case", list(RUNS))
@pytest.mark.parametrize("table", TABLE_FILES)
def test_every_csv_restates_its_design_json_table(runs: dict[str, Path], case: str, table: str) -> None:
    d = json.loads((runs[case] / "design.json").read_text(encoding="utf-8"))
    _assert_csv_restates(runs[case] / f"{table}.csv", d[table], [c for c, _ in d["columns"][table]])


def test_simulation_csvs_and_predictions_restate_the_json_files(runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["trusted"], run)
    assert main(["simulate", str(run)]) == 0
    d = json.loads((run / "design.json").read_text(encoding="utf-8"))
    sim = json.loads((run / "simulation.json").read_text(encoding="utf-8"))
    from planner.simulate.design_check import PAIR_COLUMNS

    _assert_csv_restates(run / "simulation_pairs.csv", sim["pairs"], list(PAIR_COLUMNS))
    _assert_csv_restates(
        run / "simulation_links.csv", sim["links"], ["u", "v", "pool_bits", "consumed_bits", "depletion", "pairs_using"]
    )
    cluster_cols = list(pd.read_csv(run / "simulation_clusters.csv", nrows=0).columns)
    assert set(cluster_cols) == {k for rec in sim["clusters"] for k in rec}
    _assert_csv_restates(run / "simulation_clusters.csv", sim["clusters"], cluster_cols)
    # what the simulation calls "predicted" is design.json's figure
    demands = {x["demand_id"]: x for x in d["demands"]}
    inter = [p for p in sim["pairs"] if p["kind"] == "inter-cluster"]
    assert sorted(p["pair"] for p in inter) == sorted(demands)
    for p in inter:
        dem = demands[p["pair"]]
        assert p["rate_predicted"] == pytest.approx(dem["rate"], rel=1e-11)
        assert p["security_predicted"] == pytest.approx(dem["security"], rel=1e-11)
        assert p["latency_predicted_s"] == pytest.approx(dem["latency_s"], rel=1e-11)
    keys = {c["cluster"]: c["keys_per_attempt"] for c in d["clusters"]}
    assert {c["cluster"]: c["keys_predicted"] for c in sim["clusters"]} == pytest.approx(keys, rel=1e-11)
    # the rewritten report lists the simulated pairs (at most 40) and keeps restating design.json
    report = _parse(run)
    assert len(report.rows["simulation"]) == min(MAX_TABLE_ROWS, len(sim["pairs"]))
    expected = recount(d)
    for label, text in report.cards.items():
        assert _close_4_digits(text, expected[CARDS[label]]), (label, text)
