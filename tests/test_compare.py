"""``qkdplan plan --alternatives``, ``qkdplan simulate`` and ``qkdplan compare`` end to end on a small site set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers_net import write_sites_csv

from planner.errors import InputFormatError
from planner.model.design import Design
from qkdplan.cli import main
from reports.compare import COLUMNS, write_comparison

ALTERNATIVES = """
[[alternative]]
name = "three-trusted"
access.reach_km = 40.0
security.trusted_budget = 3

[[alternative]]
name = "no-trusted"
[alternative.access]
reach_km = 40.0
[alternative.security]
trusted_budget = 0
p_untrusted = 0.7
"""


@pytest.fixture(scope="module")
def alternatives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("alt")
    sites = write_sites_csv(base / "sites.csv")
    spec = base / "alternatives.toml"
    spec.write_text(ALTERNATIVES, encoding="utf-8")
    out = base / "out"
    assert (
        main(["plan", str(sites), "--alternatives", str(spec), "--out", str(out), "--set", "solver.time_limit_s=30"])
        == 0
    )
    return out


def test_alternatives_are_planned_and_compared(alternatives: Path) -> None:
    for name in ("three-trusted", "no-trusted"):
        assert (alternatives / name / "design.json").is_file()
        assert (alternatives / name / "report.html").is_file()
    table = pd.read_csv(alternatives / "comparison" / "comparison.csv")
    assert list(table["alternative"]) == ["three-trusted", "no-trusted"]
    assert list(table.columns) == list(COLUMNS)
    # each row restates its design: recount from the design tables, not the metrics
    for row in table.itertuples(index=False):
        d = Design.read(alternatives / row.alternative)
        masters = int((d.sites["role"] == "master").sum())
        repeaters = int(d.links["repeaters"].sum())
        trusted = int(d.relays["trusted"].astype(bool).sum())
        assert (row.masters, row.repeaters, row.trusted_relays) == (masters, repeaters, trusted)
        assert row.cost == pytest.approx(masters + repeaters + trusted)  # unit costs are 1 by default
        assert row.min_key_rate == pytest.approx(d.demands["rate"].astype(float).min())
        assert row.min_security == pytest.approx(d.demands["security"].astype(float).min())
        assert row.max_latency_s == pytest.approx(d.demands["latency_s"].astype(float).max())
        solve = sum(v for k, v in d.timing.items() if k.endswith(".solve_time_s"))
        assert row.solve_time_s == pytest.approx(solve)
        assert row.run_dir == f"../{row.alternative}"  # relative: valid after the output folder is renamed
    assert table.loc[1, "trusted_relays"] == 0 and table.loc[0, "trusted_relays"] > 0
    assert table.loc[0, "min_security"] >= table.loc[1, "min_security"]


def test_comparison_html_is_self_contained(alternatives: Path) -> None:
    text = (alternatives / "comparison" / "comparison.html").read_text(encoding="utf-8")
    assert "three-trusted" in text and "no-trusted" in text
    assert text.count("<svg") >= 4
    assert "security.trusted_budget" in text and "security.p_untrusted" in text  # settings that differ
    assert "access.reach_km" not in text  # the same in both: not listed
    assert "<script" not in text and "<link" not in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text)


def test_simulate_then_compare_via_the_cli(alternatives: Path, tmp_path: Path) -> None:
    run = alternatives / "no-trusted"
    assert main(["simulate", str(run), "--requests", "20", "--seed", "4"]) == 0
    sim = json.loads((run / "simulation.json").read_text(encoding="utf-8"))
    assert sim["seed"] == 4 and sim["samples"]["requests"] == 20 and sim["totals"]["n_flagged"] == 0
    assert "Simulation check" in (run / "report.html").read_text(encoding="utf-8")
    out = tmp_path / "cmp"
    assert main(["compare", str(alternatives / "three-trusted"), str(run), "--out", str(out)]) == 0
    table = pd.read_csv(out / "comparison.csv").set_index("alternative")
    assert bool(table.loc["no-trusted", "simulated"]) and not bool(table.loc["three-trusted", "simulated"])
    assert table.loc["no-trusted", "sim_flagged_pairs"] == 0
    assert table.loc["no-trusted", "sim_min_security"] == pytest.approx(sim["totals"]["security_simulated_min"])
    assert pd.isna(table.loc["three-trusted", "sim_flagged_pairs"])
    html = (out / "comparison.html").read_text(encoding="utf-8")
    assert "Not simulated yet: three-trusted" in html


def test_same_folder_names_get_unique_labels(alternatives: Path, tmp_path: Path) -> None:
    import shutil

    a, b = tmp_path / "x" / "run", tmp_path / "y" / "run"
    shutil.copytree(alternatives / "three-trusted", a)
    shutil.copytree(alternatives / "no-trusted", b)
    table = write_comparison([a, b], tmp_path / "out")
    assert list(table["alternative"]) == ["x/run", "y/run"]


def test_bad_run_folders_are_named(alternatives: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(InputFormatError, match="nope"):
        write_comparison([alternatives / "three-trusted", missing], tmp_path / "o1")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputFormatError, match="empty.*design.json"):
        write_comparison([empty], tmp_path / "o2")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "design.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputFormatError, match="broken"):
        write_comparison([broken], tmp_path / "o3")
    import shutil

    bad_sim = tmp_path / "badsim"
    shutil.copytree(alternatives / "three-trusted", bad_sim)
    (bad_sim / "simulation.json").write_text('{"pairs": 3}', encoding="utf-8")
    with pytest.raises(InputFormatError, match="simulation.json"):
        write_comparison([bad_sim], tmp_path / "o4")
    with pytest.raises(InputFormatError):
        write_comparison([], tmp_path / "o5")
    # the CLI turns it into exit code 2 and writes nothing
    assert main(["compare", str(missing), "--out", str(tmp_path / "o6")]) == 2
    assert not (tmp_path / "o6").exists()
