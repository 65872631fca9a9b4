"""An interrupted run (SIGTERM or SIGINT mid-way) leaves the old complete output or none, and says so.

The run is made to wait inside a stage (the stage function is wrapped so that
it blocks after the CLI has printed the stage-started line), so the signal
always arrives while the plan is busy, however fast the machine is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_net import random_sites, write_sites_csv

from planner.io.atomic import MANIFEST

REPO = Path(__file__).resolve().parents[1]

# Runs the real CLI with one function wrapped so that it blocks (until a signal) at a known point.
# SIGINT gets Python's default handler first: a child started with SIGINT ignored (a CI job run in
# the background by a non-interactive shell) would otherwise never see the signal an interactive
# Ctrl-C delivers.
_DRIVER = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import {module} as mod
original = mod.{func}
def blocking(*args, **kwargs):
    if {after}:
        result = original(*args, **kwargs)
    print("BLOCKED-IN-{func}", flush=True)
    time.sleep(600)
    return result if {after} else original(*args, **kwargs)
mod.{func} = blocking
from qkdplan.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start(args: list[str], cwd: Path, *, module: str, func: str, after: bool) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    code = _DRIVER.format(module=module, func=func, after=after)
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(proc: subprocess.Popen[str], needle: str, timeout_s: float = 240.0) -> str:
    """Read output lines until ``needle`` appears (the run is then blocked inside a stage)."""
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    proc.kill()
    proc.communicate()
    raise AssertionError(f"{needle!r} never appeared; output: {''.join(seen)}")


def _previous_run(out: Path) -> dict[str, str]:
    """A folder holding a previous qkdplan run plus a file and a folder of the user's; returns its files."""
    out.mkdir()
    (out / "design.json").write_text('{"previous": true}', encoding="utf-8")
    (out / MANIFEST).write_text(json.dumps({"tool": "qkdplan", "entries": ["design.json"]}), encoding="utf-8")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "gis").mkdir()
    (out / "gis" / "layer.qml").write_text("<qgis/>", encoding="utf-8")
    return _snapshot(out)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize(
    ("module", "func", "after", "needle"),
    [
        ("planner.pipeline", "plan_access", False, "access clusters"),  # blocked while planning
        ("planner.io.writers", "write_design_files", True, "writing outputs"),  # blocked after writing files
    ],
)
def test_interrupt_mid_run_keeps_previous_output(
    tmp_path: Path, sig: signal.Signals, module: str, func: str, after: bool, needle: str
) -> None:
    sites = write_sites_csv(tmp_path / "sites.csv", random_sites(12, seed=1, span_deg=1.0))
    out = tmp_path / "run"
    before = _previous_run(out)
    proc = _start(["plan", str(sites), "--out", str(out)], tmp_path, module=module, func=func, after=after)
    _wait_for(proc, needle)  # the stage-started line printed by the CLI
    _wait_for(proc, f"BLOCKED-IN-{func}")  # ... and the stage is now waiting for the signal
    proc.send_signal(sig)
    try:
        rest, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate()
        raise AssertionError(f"the run ignored {sig.name} for 120 s; output: {rest}") from None
    assert proc.returncode == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert _snapshot(out) == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("run", "sites.csv")]
    assert leftovers == []
    assert [p.name for p in out.iterdir() if p.name.startswith(".qkdplan-tmp")] == []
