"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repalloc_dir() -> Path:
    """Folder with the (unbundled) RepAlloc instance files; skips when absent."""
    path = SHARED_DATA / "repalloc"
    if not (path / "Surfnet.gml").is_file():
        pytest.skip("RepAlloc instance files not present (../shared/data/repalloc)")
    return path


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    from planner.bundled import datasets_dir as _dd

    return _dd()
