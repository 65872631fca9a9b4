"""The small CLI commands: --version, doctor, help, and the paper reproductions in quick mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import __version__
from qkdplan.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "plan" in capsys.readouterr().out


def test_doctor_reports_solver_and_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "HiGHS available" in out
    assert "Surfnet.graphml" in out
    assert "pyomo" in out


def test_reproduce_cluster_quick(tmp_path: Path) -> None:
    out = tmp_path / "cluster"
    assert main(["reproduce", "cluster", "--quick", "--out", str(out)]) == 0
    for fig in ("fig5", "fig6a", "fig6b", "fig6c", "fig7a", "fig7b"):
        assert (out / f"{fig}.csv").is_file() and (out / f"{fig}.png").is_file()
    assert (out / "README.md").is_file()


def test_reproduce_smr_quick(tmp_path: Path) -> None:
    out = tmp_path / "smr"
    assert main(["reproduce", "smr", "--quick", "--runs", "10", "--workers", "1", "--out", str(out)]) == 0
    for name in ("smr_untrusted_sweep.csv", "smr_trusted_sweep.csv", "README.md"):
        assert (out / name).is_file()
    header = (out / "smr_untrusted_sweep.csv").read_text(encoding="utf-8").splitlines()[0]
    assert (
        header
        == "method,p_untrusted,n_trusted,eps,runs,security_mean,security_ci,key_consumption_mean,key_length_mean,"
        "link_bits_per_key_bit,paths_mean"
    )
