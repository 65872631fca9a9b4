"""Output folders: nothing qkdplan did not write is ever deleted or overwritten.

Real runs of the CLI into folders holding the user's files and subfolders,
``--out`` equal to the input's folder, ``--out .``, ``simulate`` into a run
folder with subfolders, and the other commands' ``--out``; plus the rules of
:func:`planner.io.atomic.atomic_output_dir` on their own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_net import write_sites_csv

from planner.io.atomic import MANIFEST, OutputFolderError, atomic_output_dir, read_manifest
from qkdplan.cli import main

FAST = ["--set", 'backbone.mode="repeaters"']


def _user_files(folder: Path) -> dict[str, bytes]:
    """The user's own files: a note, a nested subfolder and an empty subfolder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes", encoding="utf-8")
    (folder / "data" / "raw").mkdir(parents=True)
    (folder / "data" / "raw" / "survey.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (folder / "empty").mkdir()
    return _tree(folder)


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file and folder under ``folder`` (folders map to b'<dir>')."""
    return {str(p.relative_to(folder)): (b"<dir>" if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def _subset(old: dict[str, bytes], new: dict[str, bytes]) -> None:
    for key, value in old.items():
        assert key in new, f"{key} was deleted"
        assert new[key] == value, f"{key} was overwritten"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out + err


# ----------------------------------------------------------------------------- real runs
def test_plan_into_user_folder_and_dot_and_simulate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole life of a project folder: refuse, --force beside the user's files, re-plan, simulate."""
    proj = tmp_path / "proj"
    user = _user_files(proj)
    write_sites_csv(proj / "cities.csv")
    user = _tree(proj)
    monkeypatch.chdir(proj)
    # 1. a folder of the user's: refused, nothing written
    code, text = _run(["plan", "cities.csv", "--out", ".", *FAST], capsys)
    assert code == 2 and "not written by qkdplan" in text and "--force" in text and "Traceback" not in text
    assert _tree(proj) == user
    # 2. --force: qkdplan's files beside the user's, the input (in the output folder) untouched
    code, text = _run(["plan", "cities.csv", "--out", ".", "--force", *FAST], capsys)
    assert code == 0, text
    after = _tree(proj)
    _subset(user, after)
    ours = read_manifest(proj)
    assert ours is not None and {"design.json", "sites.csv", "report.html", "design.gpkg"} <= ours
    assert not ours & {"notes.txt", "data", "empty", "cities.csv"}
    assert set(after) - set(user) - {MANIFEST} == {n for n in after if n.split("/")[0] in ours}
    assert not [p for p in proj.iterdir() if p.name.startswith(".qkdplan-tmp")]
    # 3. plan again: now a previous run; no --force needed, ours replaced, the user's kept
    (proj / "data" / "raw" / "later.txt").write_text("added after the first run", encoding="utf-8")
    user = {k: v for k, v in _tree(proj).items() if k.split("/")[0] not in ours and k != MANIFEST}
    code, text = _run(["plan", "cities.csv", "--out", ".", "--seed", "1", *FAST], capsys)
    assert code == 0, text
    _subset(user, _tree(proj))
    assert json.loads((proj / "design.json").read_text(encoding="utf-8"))["seed"] == 1
    # 4. simulate into the run folder holding subfolders: they stay, the design is unchanged
    design_before = (proj / "design.json").read_bytes()
    before = _tree(proj)
    code, text = _run(["simulate", ".", "--requests", "20"], capsys)
    assert code == 0, text
    after = _tree(proj)
    _subset({k: v for k, v in before.items() if k not in ("report.html", MANIFEST)}, after)
    assert (proj / "design.json").read_bytes() == design_before
    assert "simulation.json" in after and "simulation.json" in (read_manifest(proj) or set())
    assert after["report.html"] != before["report.html"]


def test_out_equal_to_the_input_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``plan proj/sites.csv --out proj``: refused; with --force still refused (it would overwrite sites.csv)."""
    proj = tmp_path / "proj"
    user = _user_files(proj)
    write_sites_csv(proj / "sites.csv")
    user = _tree(proj)
    code, text = _run(["plan", str(proj / "sites.csv"), "--out", str(proj), *FAST], capsys)
    assert code == 2 and "not written by qkdplan" in text
    code, text = _run(["plan", str(proj / "sites.csv"), "--out", str(proj), "--force", *FAST], capsys)
    assert code == 2 and "sites.csv" in text and "did not write" in text and "Traceback" not in text
    assert _tree(proj) == user
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_input_inside_a_previous_run_is_never_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    sites = write_sites_csv(tmp_path / "in.csv")
    assert main(["plan", str(sites), "--out", str(run), *FAST]) == 0
    before = _tree(run)
    capsys.readouterr()
    # the run's own sites.csv (written by qkdplan) as the input of a plan into the same run
    code, text = _run(["plan", str(run / "sites.csv"), "--out", str(run), *FAST], capsys)
    assert code == 2 and "input" in text and "inside the output folder" in text
    assert _tree(run) == before
    # compare into one of its own inputs is refused too
    code, text = _run(["compare", str(run), "--out", str(run)], capsys)
    assert code == 2 and "also an input" in text
    assert _tree(run) == before


def test_other_commands_refuse_a_user_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mine"
    user = _user_files(folder)
    spec = tmp_path / "spec.toml"
    spec.write_text("name = 'x'\n", encoding="utf-8")
    for args in (
        ["compare", str(tmp_path / "no-run"), "--out", str(folder)],
        ["reproduce", "cluster", "--quick", "--out", str(folder)],
        ["sweep", str(spec), "--out", str(folder)],
    ):
        code, text = _run(args, capsys)
        assert code == 2, (args, text)
        assert "not written by qkdplan" in text and "Traceback" not in text, (args, text)
        assert _tree(folder) == user


def test_out_dot_in_an_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    sites = write_sites_csv(tmp_path / "s.csv")
    monkeypatch.chdir(work)
    code, text = _run(["plan", str(sites), "--out", ".", *FAST], capsys)
    assert code == 0, text
    assert Path.cwd() == work and work.is_dir()  # the working folder itself was not swapped away
    names = {p.name for p in work.iterdir()}
    assert {"design.json", "report.html", MANIFEST} <= names
    assert names - {MANIFEST} == read_manifest(work)


# ----------------------------------------------------------------------------- the rules on their own
def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_previous_run_is_replaced_and_stale_entries_of_ours_go(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with atomic_output_dir(out) as tmp:
        _write(tmp, {"a.txt": "1", "old.txt": "stale", "sub/x.txt": "x"})
    assert read_manifest(out) == {"a.txt", "old.txt", "sub"}
    (out / "user.txt").write_text("u", encoding="utf-8")
    with atomic_output_dir(out) as tmp:
        _write(tmp, {"a.txt": "2", "sub": "now a file"})
    assert (out / "a.txt").read_text(encoding="utf-8") == "2"
    assert (out / "sub").read_text(encoding="utf-8") == "now a file"
    assert not (out / "old.txt").exists()  # ours and no longer written
    assert (out / "user.txt").read_text(encoding="utf-8") == "u"
    assert read_manifest(out) == {"a.txt", "sub"}
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "a.txt", "sub", "user.txt"])


def test_keep_previous_adds_without_removing(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with atomic_output_dir(out) as tmp:
        _write(tmp, {"design.json": "d", "report.html": "r1"})
    with atomic_output_dir(out, keep_previous=True) as tmp:
        _write(tmp, {"report.html": "r2", "simulation.json": "s"})
    assert _tree(out)["design.json"] == b"d" and _tree(out)["report.html"] == b"r2"
    assert read_manifest(out) == {"design.json", "report.html", "simulation.json"}


def test_a_name_clash_found_at_commit_leaves_everything(tmp_path: Path) -> None:
    out = tmp_path / "o"
    user = _user_files(out)
    with pytest.raises(OutputFolderError, match="notes.txt"), atomic_output_dir(out, force=True) as tmp:
        _write(tmp, {"notes.txt": "qkdplan's", "ok.txt": "fine"})
    assert _tree(out) == user
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_failure_inside_the_block_leaves_the_previous_run(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with atomic_output_dir(out) as tmp:
        _write(tmp, {"a.txt": "1"})
    before = _tree(out)
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        _write(tmp, {"a.txt": "2"})
        raise RuntimeError("boom")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_a_design_json_without_manifest_from_an_older_qkdplan_counts_as_a_run(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "design.json").write_text(json.dumps({"schema_version": 1, "qkdplan_version": "0.1"}), encoding="utf-8")
    (out / "mine.txt").write_text("m", encoding="utf-8")
    with atomic_output_dir(out) as tmp:
        _write(tmp, {"design.json": "{}"})
    assert (out / "mine.txt").read_text(encoding="utf-8") == "m"
    assert (out / "design.json").read_text(encoding="utf-8") == "{}"
    # but a design.json that is not a qkdplan design does not make a folder a run
    other = tmp_path / "p"
    other.mkdir()
    (other / "design.json").write_text('{"mine": true}', encoding="utf-8")
    with pytest.raises(OutputFolderError, match="not written by qkdplan"), atomic_output_dir(other):
        pass
    assert (other / "design.json").read_text(encoding="utf-8") == '{"mine": true}'


def test_an_existing_file_as_target_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="not a folder"), atomic_output_dir(f):
        pass
    assert f.read_text(encoding="utf-8") == "x"
