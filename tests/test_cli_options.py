"""Command-line options: --crs, inferred positions in the outputs, -v/-q anywhere, --version, exit codes,
an unreachable Dask scheduler."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj
import pytest
from helpers_net import SMALL_SITES, write_sites_csv

from qkdplan.cli import COMMANDS, EXIT_CODES_HELP, main
from qkdplan.cli_parser import build_parser

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
FAST = ["--set", 'backbone.mode="repeaters"']


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out + err


def _rd_new_csv(path: Path) -> Path:
    """The small site list with x/y in EPSG:28992 (Dutch RD New, metres) instead of lat/lon."""
    to_rd = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)
    lines = ["name,x,y"]
    for name, lat, lon in SMALL_SITES:
        x, y = to_rd.transform(lon, lat)
        lines.append(f"{name},{x:.3f},{y:.3f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_crs_option_and_scenario_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = _rd_new_csv(tmp_path / "rd.csv")
    code, text = _run(["plan", str(csv), "--out", str(tmp_path / "r0"), *FAST], capsys)
    assert code == 2 and "--crs" in text and "network.crs" in text and "Traceback" not in text
    assert not (tmp_path / "r0").exists()
    code, text = _run(["plan", str(csv), "--crs", "EPSG:28992", "--out", str(tmp_path / "r1"), *FAST], capsys)
    assert code == 0, text
    sites = pd.read_csv(tmp_path / "r1" / "sites.csv").set_index("site_id")
    for name, lat, lon in SMALL_SITES:  # back to the degrees the x/y were made from
        assert sites.at[name, "lat"] == pytest.approx(lat, abs=1e-6)
        assert sites.at[name, "lon"] == pytest.approx(lon, abs=1e-6)
    # a shapefile without .prj (no CRS stored): the scenario's network.crs says what it is
    to_rd = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)
    xs, ys = to_rd.transform([s[2] for s in SMALL_SITES], [s[1] for s in SMALL_SITES])
    shp = tmp_path / "rd.shp"
    with pytest.warns(UserWarning, match="crs"):  # written without a CRS on purpose
        gpd.GeoDataFrame({"name": [s[0] for s in SMALL_SITES]}, geometry=gpd.points_from_xy(xs, ys)).to_file(shp)
    assert not shp.with_suffix(".prj").exists()
    code, text = _run(["plan", str(shp), "--out", str(tmp_path / "r2"), *FAST], capsys)
    assert code == 2 and "--crs" in text
    code, text = _run(
        ["plan", str(shp), "--set", 'network.crs="EPSG:28992"', "--out", str(tmp_path / "r2"), *FAST], capsys
    )
    assert code == 0, text
    got = pd.read_csv(tmp_path / "r2" / "sites.csv").set_index("site_id")
    assert (got.loc[sites.index, ["lat", "lon"]] - sites[["lat", "lon"]]).abs().max().max() < 1e-6


def test_inferred_positions_reach_sites_csv_gpkg_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, text = _run(["plan", str(DATA / "topology-zoo" / "Aconet.graphml"), "--out", str(out), *FAST], capsys)
    assert code == 0, text
    sites = pd.read_csv(out / "sites.csv", keep_default_na=False)  # the junction's Zoo label is "None"
    assert sites["position_source"].value_counts().to_dict() == {"given": 17, "junction": 1}
    layer = pyogrio.read_dataframe(out / "design.gpkg", layer="sites")
    assert (layer["position_source"] == "junction").sum() == 1
    junction = sites.loc[sites["position_source"] == "junction", "name"].iloc[0]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "inferred" in report and f"{junction} (junction)" in report
    design = json.loads((out / "design.json").read_text(encoding="utf-8"))
    assert any("inferred" in n for n in design["notes"])
    # --strict-coordinates restores the refusal: exit 2, message, no output
    code, text = _run(
        [
            "plan",
            str(DATA / "topology-zoo" / "Aconet.graphml"),
            "--strict-coordinates",
            "--out",
            str(tmp_path / "strict"),
            *FAST,
        ],
        capsys,
    )
    assert code == 2 and "no coordinates" in text and not (tmp_path / "strict").exists()


def test_verbosity_anywhere_version_and_exit_codes_in_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_sites_csv(tmp_path / "s.csv")
    for args in (["-v", "plan", str(f)], ["plan", "-v", str(f)], ["plan", str(f), "-q"], ["-q", "plan", str(f)]):
        # a bad --set ends the run before any planning: enough to see that the option is accepted
        code, text = _run([*args, "--out", str(tmp_path / "o"), "--set", "nonsense"], capsys)
        assert code == 2 and "KEY=VALUE" in text, (args, text)
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and "qkdplan" in capsys.readouterr().out
    for args in (["--help"], ["plan", "--help"]):
        with pytest.raises(SystemExit):
            main(args)
        out = " ".join(capsys.readouterr().out.split())
        for code_line in ("2 bad input", "3 infeasible", "4 solver unavailable", "130 interrupted", "1 internal error"):
            assert code_line in out, (args, code_line)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for n in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 4 |", "| 130 |"):
        assert n in readme
    assert "130" in EXIT_CODES_HELP


#: The positional arguments each subcommand needs to parse.
_POSITIONALS = {"simulate": ["run"], "compare": ["a", "b"], "reproduce": ["smr"], "sweep": ["spec.toml"]}


def test_every_subcommand_has_a_handler_verbosity_and_the_exit_codes() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == set(COMMANDS)
    for name, subparser in sub.choices.items():
        assert subparser.epilog == EXIT_CODES_HELP, name
        args = parser.parse_args([name, *_POSITIONALS.get(name, []), "-vv", "-q"])
        assert (args.command, args.verbose, args.quiet) == (name, 2, 1), name
        before = parser.parse_args(["-v", name, *_POSITIONALS.get(name, [])])
        assert (before.verbose, before.quiet) == (1, 0), name


def test_internal_error_is_one_message_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import planner.pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(planner.pipeline, "plan", broken)
    code, text = _run(["plan", str(write_sites_csv(tmp_path / "s.csv")), "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "internal error" in text and "simulated bug" in text and "Traceback" not in text
    assert not (tmp_path / "o").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_scheduler_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    spec = REPO / "datasets" / "sweeps" / "example.toml"
    port = _closed_port()
    env_path = str(REPO)
    for extra in (["--scheduler", f"tcp://127.0.0.1:{port}"], ["--scheduler-file", "SCHED"]):
        if extra[0] == "--scheduler-file":
            sched = tmp_path / "scheduler.json"
            sched.write_text(json.dumps({"address": f"tcp://127.0.0.1:{port}"}), encoding="utf-8")
            extra = ["--scheduler-file", str(sched)]
        proc = subprocess.run(
            [sys.executable, "-m", "qkdplan.cli", "sweep", str(spec), "--out", str(tmp_path / "sw"), *extra],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
        )
        text = " ".join((proc.stdout + proc.stderr).split())  # rich wraps long lines
        assert proc.returncode == 2, text
        assert "cannot reach the Dask scheduler" in text and str(port) in text and "Traceback" not in text
        # the limit is the probe's own timeout (3 s), far below Dask's 30 s; the rest is interpreter start-up
        assert "waited at most 3 s" in text
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "qkdplan.cli",
            "sweep",
            str(spec),
            "--scheduler-file",
            str(bad),
            "--out",
            str(tmp_path / "sw2"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "no 'address'" in " ".join((proc.stdout + proc.stderr).split())
