"""`qkdplan plan --time-limit S` bounds the whole run: the plan gets what reading left, less time to write."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from helpers_net import random_sites, write_sites_csv

import planner.pipeline
from planner.stages.budget import WRITE_S_PER_SITE
from qkdplan import cli
from qkdplan.cli import main


def test_plan_gets_the_limit_less_reading_and_writing(tmp_path, monkeypatch):
    sites = write_sites_csv(tmp_path / "s.csv", random_sites(30, seed=2))
    handed: list[float | None] = []
    real_plan = planner.pipeline.plan

    def spy(network, scenario, **kw):
        handed.append(kw.get("time_limit_s"))
        return real_plan(network, scenario, **kw)

    monkeypatch.setattr(planner.pipeline, "plan", spy)
    code = main(["plan", str(sites), "--out", str(tmp_path / "out"), "--time-limit", "40", "-q"])
    assert code == 0 and len(handed) == 1
    assert handed[0] is not None and 0 < handed[0] <= 40 - WRITE_S_PER_SITE * 30
    assert (tmp_path / "out" / "design.json").is_file()


def test_an_overrun_is_said_with_the_stages_over_budget(capsys):
    design = SimpleNamespace(
        timing={"access.stage_s": 30.0, "access.budget_s": 20.0, "trust.stage_s": 10.0, "trust.budget_s": 40.0}
    )
    cli._say_overrun(design, 50.0, 70.0)
    err = capsys.readouterr().err
    assert "20 s over --time-limit 50" in err and "access 30 s of 20 s" in err and "trust" not in err
    cli._say_overrun(design, 50.0, 50.5)  # within a second: nothing to say
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("limit", ["0", "-3", "inf"])
def test_a_limit_that_is_not_a_positive_number_is_refused(tmp_path, limit):
    sites = write_sites_csv(tmp_path / "s.csv", random_sites(10, seed=1))
    assert main(["plan", str(sites), "--out", str(tmp_path / "o"), "--time-limit", limit]) == 2
