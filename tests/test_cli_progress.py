"""The CLI shows progress with an ETA (plain lines when the output is not a terminal), -q silences it,
and the files a run writes are the same either way."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers_net import random_sites, write_sites_csv

from qkdplan.cli import main

# (design.json is left out: it records solve times and the bounds HiGHS reports, which vary run to run)
# a status line of counted work: "<name>: k/n <unit> (p%), <elapsed> elapsed, ETA <time>"
ETA_LINE = re.compile(r"^\s+(?P<name>[^:]+): (?P<k>\d+)/(?P<n>\d+) \w+ \((?P<pct>\d+)%\), .+ elapsed, ETA \d+")
TABLES = ("sites.csv", "clusters.csv", "demands.csv", "links.csv", "relays.csv")
PLAN_ARGS = ("--set", 'backbone.mode="repeaters"')  # no trusted-relay MILP: a quicker plan
SIM_FILES = ("simulation.json", "simulation_pairs.csv", "simulation_clusters.csv", "simulation_links.csv")


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # five clusters, ten backbone demands: several simulation batches on two workers
    return write_sites_csv(tmp_path_factory.mktemp("net") / "sites.csv", random_sites(30, seed=1, span_deg=2.0))


@pytest.fixture(scope="module")
def quiet_run(sites: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "quiet"
    assert main(["plan", str(sites), "--out", str(out), "-q", *PLAN_ARGS]) == 0
    return out


def _stage_lines(text: str) -> list[str]:
    return [line.strip()[2:] for line in text.splitlines() if line.startswith("  - ")]


@pytest.mark.slow
def test_plan_prints_stage_lines_and_writes_the_same_files_as_quiet(
    sites: Path, quiet_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = tmp_path / "loud"
    assert main(["plan", str(sites), "--out", str(out), *PLAN_ARGS]) == 0
    text = capsys.readouterr().out
    stages = _stage_lines(text)
    assert stages[:3] == [
        "reading network",
        "access clusters: assignment and master placement (MILP)",
        "backbone: contracting the network onto clusters",
    ]
    assert "memory allocation" in stages and stages[-1] == "writing outputs"
    for name in TABLES:
        assert (out / name).read_bytes() == (quiet_run / name).read_bytes(), name


@pytest.mark.slow
def test_simulate_shows_counted_batches_with_eta_and_quiet_shows_none(
    quiet_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loud, quiet = tmp_path / "loud", tmp_path / "quiet"
    shutil.copytree(quiet_run, loud)
    shutil.copytree(quiet_run, quiet)
    capsys.readouterr()
    args = ["--requests", "10", "--workers", "2", "--seed", "3"]
    assert main(["simulate", str(loud), *args]) == 0
    text = capsys.readouterr().out
    assert _stage_lines(text)[:2] == ["simulating key traffic", "writing the report"]
    counted = [m for m in map(ETA_LINE.match, text.splitlines()) if m]
    assert counted, text
    batches = [m for m in counted if m["name"] == "simulating demand batches"]
    assert batches, text
    n = int(batches[0]["n"])
    assert n >= 2  # several batches on two workers
    # the lines come as 25 / 50 / 75 % are passed, each with its count and ETA
    pcts = [int(m["pct"]) for m in batches]
    assert pcts == sorted(pcts) and all(25 <= p < 100 for p in pcts)
    assert re.search(rf"simulating demand batches: {n}/{n} tasks \(100%\), done in", text)

    assert main(["simulate", str(quiet), *args, "-q"]) == 0
    qtext = capsys.readouterr().out
    assert "ETA" not in qtext and not _stage_lines(qtext) and "elapsed" not in qtext
    for name in SIM_FILES:
        assert (loud / name).read_bytes() == (quiet / name).read_bytes(), name
