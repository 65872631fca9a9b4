"""Machinery of the real-site plan probe (benchmarks/plan_real.py): caps, statuses, fits; no timing asserts."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from benchmarks.plan_real import REAL_SETS, growth_fits, render_md, run_capped, select_sizes


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_capped_reports_ok_timeout_oom_and_error() -> None:
    rows, status, _ = run_capped(_py('print("noise"); print(\'{"a": 1}\')'), timeout_s=60, mem_gb=2)
    assert (rows, status) == ([{"a": 1}], "ok")
    rows, status, wall = run_capped(
        _py('import time; print(\'{"phase": "plan"}\', flush=True); time.sleep(60)'), timeout_s=2, mem_gb=2
    )
    assert status.startswith("timeout") and rows == [{"phase": "plan"}] and wall < 30
    _, status, _ = run_capped(_py("x = bytearray(3 * 1024**3)"), timeout_s=60, mem_gb=1)
    assert status.startswith("oom")
    _, status, _ = run_capped(_py("raise SystemExit('bad input')"), timeout_s=60, mem_gb=2)
    assert status == "error: bad input"


def test_select_sizes() -> None:
    assert select_sizes(None, None) == sorted(REAL_SETS)
    assert select_sizes([243], ["nl-100"]) == [100, 243]
    with pytest.raises(SystemExit, match="known sizes"):
        select_sizes([7], None)
    with pytest.raises(SystemExit, match="unknown set"):
        select_sizes(None, ["xx-1"])


def test_growth_fit_recovers_a_known_exponent() -> None:
    n = [100, 243, 692, 1139]
    frame = pd.DataFrame(
        {
            "set": [REAL_SETS[x] for x in n],
            "n": n,
            "status": ["ok"] * 3 + ["timeout > 9 s"],
            "time_s": [2.0 * x**1.5 for x in n],
            "trust_build_s": [0.1 * x for x in n],
            "trust_solve_s": [0.1 * x for x in n],
        }
    )
    fits = {f["benchmark"]: f for f in growth_fits(frame)}
    assert fits["plan-real: plan total"]["a"] == pytest.approx(1.5)
    assert fits["plan-real: plan total"]["points"] == 3  # the timed-out run is not fitted
    assert fits["plan-real: plan stage trust"]["a"] == pytest.approx(1.0)
    text = render_md(frame, list(fits.values()))
    assert "| nl-100 | 100 | ok |" in text and "timeout > 9 s" in text
