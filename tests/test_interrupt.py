"""An interrupted run (SIGTERM or SIGINT mid-way) leaves the old complete output or none, and says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_net import random_sites, write_sites_csv

REPO = Path(__file__).resolve().parents[1]


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-m", "planner.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(proc: subprocess.Popen[str], needle: str, timeout_s: float = 120.0) -> str:
    """Read output lines until ``needle`` appears (the run is then mid-way)."""
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
    raise AssertionError(f"{needle!r} never appeared; output: {''.join(seen)}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_mid_run_keeps_previous_output(tmp_path: Path, sig: signal.Signals) -> None:
    # large enough that the run is still busy when the signal arrives
    sites = write_sites_csv(tmp_path / "sites.csv", random_sites(400, seed=1, span_deg=3.0))
    out = tmp_path / "run"
    out.mkdir()
    marker = out / "design.json"
    marker.write_text('{"previous": true}', encoding="utf-8")
    proc = _start(["plan", str(sites), "--out", str(out), "--set", 'backbone.mode="trusted"'], tmp_path)
    _wait_for(proc, "access clusters")
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert marker.read_text(encoding="utf-8") == '{"previous": true}'
    assert sorted(p.name for p in out.iterdir()) == ["design.json"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")]
    assert leftovers == []
