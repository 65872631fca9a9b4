"""``simulation.json`` and its CSV tables stay byte-identical to the committed ones (behaviour unchanged).

The designs are the committed golden ``design.json`` files of ``tests/data/golden/`` (read, not
re-planned); each is simulated serially with a fixed seed and small sample sizes, once by request
count and once by simulated duration, and every file :func:`write_simulation_files` writes is
compared byte for byte with ``tests/data/simulation_golden/<case>/``. Simulation results hold no
wall-clock figures, so nothing is masked. After a deliberate change of behaviour, regenerate with
``QKDPLAN_UPDATE_GOLDEN=1 pytest tests/test_simulate_golden.py`` and commit the diff together with
the change that explains it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from planner.model.design import Design
from planner.simulate.design_check import simulate_design, write_simulation_files

DESIGNS = Path(__file__).parent / "data" / "golden"
GOLDEN = Path(__file__).parent / "data" / "simulation_golden"
#: case name -> (golden design, simulate_design keyword arguments)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "Kreonet-requests": ("Kreonet", {"requests": 20, "seed": 5, "latency_pairs": 2}),
    "qman-duration": ("beijing_qman_topology", {"duration_s": 1.0, "seed": 7, "latency_pairs": 3}),
}


def _design(name: str) -> Design:
    data = json.loads((DESIGNS / f"{name}.json").read_text(encoding="utf-8"))
    data["qkdplan_version"] = "golden"  # the golden files drop the version string
    return Design.from_dict(data, source=f"{name}.json")


@pytest.mark.parametrize("case", sorted(CASES))
def test_simulation_files_unchanged(case: str, tmp_path: Path) -> None:
    name, kwargs = CASES[case]
    sim = simulate_design(_design(name), backend="serial", **kwargs)
    written = write_simulation_files(sim, tmp_path)
    expected_dir = GOLDEN / case
    if os.environ.get("QKDPLAN_UPDATE_GOLDEN"):
        expected_dir.mkdir(parents=True, exist_ok=True)
        for p in written:
            (expected_dir / p.name).write_bytes(p.read_bytes())
    assert sorted(p.name for p in written) == sorted(p.name for p in expected_dir.iterdir())
    for p in written:
        assert p.read_bytes() == (expected_dir / p.name).read_bytes(), f"{case}: {p.name} changed"
