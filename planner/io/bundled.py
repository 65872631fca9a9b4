"""Locate the bundled data folder (``datasets/`` in the source tree).

In an installed wheel the folder is shipped beside the packages as
``qkdplan_datasets``; in an editable install or a source checkout it is
``datasets/`` at the repository root. :func:`datasets_dir` returns whichever
exists.
"""

from __future__ import annotations

from pathlib import Path

from planner.errors import InputFormatError

_HERE = Path(__file__).resolve().parent

DEFAULT_NETWORK = "topology-zoo/Surfnet.graphml"
DEFAULT_SCENARIO = "scenarios/default.toml"


def datasets_dir() -> Path:
    """Return the directory holding the bundled data; raises if none is found."""
    for candidate in (_HERE.parents[1] / "qkdplan_datasets", _HERE.parents[1] / "datasets"):
        if (candidate / "PROVENANCE.md").is_file():
            return candidate
    raise InputFormatError(
        "bundled data folder not found (looked for qkdplan_datasets/ beside the planner package and datasets/)",
        source="qkdplan installation",
    )


def bundled_path(relative: str) -> Path:
    """Return the path of a bundled file, e.g. ``bundled_path("topology-zoo/Abilene.graphml")``."""
    path = datasets_dir() / relative
    if not path.exists():
        raise InputFormatError(
            f"bundled file '{relative}' does not exist in {datasets_dir()}",
            source="qkdplan installation",
        )
    return path


def bundled_networks() -> list[Path]:
    """Every bundled network file (Topology Zoo GraphML and the Beijing QMAN JSON), sorted."""
    root = datasets_dir()
    files = sorted((root / "topology-zoo").glob("*.graphml")) + sorted((root / "beijing_qman").glob("*.json"))
    return files
