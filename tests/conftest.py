"""Shared fixtures, and the CI rule that a test may not skip for want of something that is there.

Tests that need the unbundled RepAlloc files (fixture ``repalloc_dir``) or a
Chromium binary (fixture ``chromium`` in ``test_report_browser.py``) skip when
those are absent. ``.ci/run`` looks for them itself and, when it finds them,
sets ``QKDPLAN_EXPECT_REPALLOC=1`` / ``QKDPLAN_EXPECT_CHROMIUM=1``; a skip of
such a test is then reported as a failure, so a broken lookup cannot hide
behind a skip.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI runs in a fresh clone with shared/ beside it; QKDPLAN_SHARED_DATA points elsewhere (e.g. a worktree)
SHARED_DATA = Path(os.environ.get("QKDPLAN_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")

# fixture name -> (what it needs, the variable .ci/run sets when it found it)
EXPECTED_RESOURCES = {
    "repalloc_dir": ("the RepAlloc files", "QKDPLAN_EXPECT_REPALLOC"),
    "chromium": ("Chromium", "QKDPLAN_EXPECT_CHROMIUM"),
}


@pytest.fixture(scope="session")
def repalloc_dir() -> Path:
    """Folder with the (unbundled) RepAlloc instance files; skips when absent."""
    path = SHARED_DATA / "repalloc"
    if not (path / "Surfnet.gml").is_file():
        pytest.skip(f"RepAlloc instance files not present ({path}; set QKDPLAN_SHARED_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    from planner.io.bundled import datasets_dir as _dd

    return _dd()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """Turn the skip of a test whose resource ``.ci/run`` found into a failure that says so."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    for fixture in getattr(item, "fixturenames", ()):
        if fixture in EXPECTED_RESOURCES:
            what, env = EXPECTED_RESOURCES[fixture]
            if os.environ.get(env) == "1":
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
                report.outcome = "failed"
                report.longrepr = f"{item.nodeid} skipped although {env}=1 ({what} present for CI): {reason}"
                return
