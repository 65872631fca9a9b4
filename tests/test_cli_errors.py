"""Bad input on the command line: one clear message, exit code 2, no traceback, no output folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_net import write_sites_csv

from qkdplan.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out + err


def _assert_clean_failure(code: int, text: str, out_dir: Path, *needles: str, exit_code: int = 2) -> None:
    assert code == exit_code
    assert "Traceback" not in text
    for n in needles:
        assert n in text, f"{n!r} not in message: {text}"
    assert not out_dir.exists()


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, text = _run(["plan", str(tmp_path / "nope.csv"), "--out", str(out)], capsys)
    _assert_clean_failure(code, text, out, "nope.csv", "not found")


def test_unknown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "sites.xyz"
    f.write_text("hello\n", encoding="utf-8")
    out = tmp_path / "run"
    code, text = _run(["plan", str(f), "--out", str(out)], capsys)
    _assert_clean_failure(code, text, out, "sites.xyz")


def test_csv_without_coordinates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "sites.csv"
    f.write_text("name,town\nA,x\nB,y\n", encoding="utf-8")
    out = tmp_path / "run"
    code, text = _run(["plan", str(f), "--out", str(out)], capsys)
    _assert_clean_failure(code, text, out, "sites.csv", "lat")


def test_latitude_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_sites_csv(tmp_path / "sites.csv", [("A", 52.0, 4.0), ("B", 200.0, 4.1), ("C", 52.1, 4.2)])
    out = tmp_path / "run"
    code, text = _run(["plan", str(f), "--out", str(out)], capsys)
    _assert_clean_failure(code, text, out, "sites.csv", "200")


def test_duplicate_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_sites_csv(tmp_path / "sites.csv", [("A", 52.0, 4.0), ("A", 52.1, 4.1), ("C", 52.1, 4.2)])
    out = tmp_path / "run"
    code, text = _run(["plan", str(f), "--out", str(out)], capsys)
    _assert_clean_failure(code, text, out, "sites.csv", "A")


def test_scenario_typo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_sites_csv(tmp_path / "sites.csv")
    sc = tmp_path / "s.toml"
    sc.write_text("[access]\ncapasity = 4\n", encoding="utf-8")
    out = tmp_path / "run"
    code, text = _run(["plan", str(f), "--scenario", str(sc), "--out", str(out)], capsys)
    _assert_clean_failure(code, text, out, "s.toml", "access.capasity", "access.capacity")


def test_capacity_one_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_sites_csv(tmp_path / "sites.csv")
    sc = tmp_path / "s.toml"
    sc.write_text("[access]\ncapacity = 1\n", encoding="utf-8")
    out = tmp_path / "run"
    code, text = _run(["plan", str(f), "--scenario", str(sc), "--out", str(out)], capsys)
    _assert_clean_failure(code, text, out, "access.capacity", "at least 2")


def test_infeasible_master_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Four separate towns cannot be served by one master within 40 km: the conflict is named."""
    f = write_sites_csv(tmp_path / "sites.csv")
    out = tmp_path / "run"
    code, text = _run(
        [
            "plan",
            str(f),
            "--out",
            str(out),
            "--set",
            "access.max_masters=1",
            "--set",
            "access.reach_km=40",
            "--set",
            'backbone.mode="repeaters"',
        ],
        capsys,
    )
    _assert_clean_failure(code, text, out, "infeasible", "master-budget", exit_code=3)  # 3 = infeasible


def test_bad_override_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, text = _run(["plan", "--out", str(out), "--set", "access.capacity"], capsys)
    _assert_clean_failure(code, text, out, "KEY=VALUE")


def test_failed_run_keeps_previous_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "design.json").write_text("{}", encoding="utf-8")
    code = main(["plan", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert code == 2
    assert (out / "design.json").read_text(encoding="utf-8") == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_error_source_is_named_once() -> None:
    """A message that already starts with its source gets no second prefix; others get one."""
    from planner.errors import ValidationError

    assert str(ValidationError("out: the folder is not empty", source="out")) == "out: the folder is not empty"
    assert str(ValidationError("the folder is not empty", source="out")) == "out: the folder is not empty"
    assert str(ValidationError("outer: x", source="out")) == "out: outer: x"
