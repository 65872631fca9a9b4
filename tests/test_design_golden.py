"""``design.json`` of bundled networks stays byte-identical to the committed one (behaviour unchanged).

A refactoring that changes no behaviour must leave every planned ``design.json`` identical. The
committed files in ``tests/data/golden/`` were written by this test; compared are the files
without what is a wall-clock measurement by nature:

- the ``timing`` table, the SMR search's and verification's seconds (``selection_time_s``,
  ``verification_time_s``, ``*seconds_per_demand``) and the trust model's measured load time
  (``estimated_load_s``);
- the solver ``bound`` and ``gap`` of a solve or front point that stopped at its time limit
  (status other than ``optimal``): how far the bound got depends on the machine's speed;
- the version string.

The scenario gives every stage 600 s and solves the balanced access front only at its two ends,
so no solve of these networks stops at a limit it would pass on a faster or less loaded machine
(with 120 s, a front point's share of about 24 s was not always enough to prove optimality on a
busy 2-core machine; a proven solve stops long before its limit, so the larger limit costs nothing). Surfnet,
Abilene, Kreonet, Nsfnet and the Beijing QMAN network plan in seconds and always run; the three
large Zoo networks (Cernet, Geant2010, Uninett2010: minutes each) run with
``QKDPLAN_GOLDEN_ALL=1``. After a deliberate change of behaviour, regenerate with
``QKDPLAN_UPDATE_GOLDEN=1 QKDPLAN_GOLDEN_ALL=1 pytest tests/test_design_golden.py`` and commit the
diff together with the change that explains it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from planner.io.bundled import bundled_networks
from planner.io.readers import read_network
from planner.model.scenario import default_scenario
from planner.pipeline import plan

# the balanced access front only at its two ends: its optional middle points share what is left of
# the access stage's time, so whether they prove optimality depends on the machine's load
SCENARIO = default_scenario().with_overrides({"solver.time_limit_s": 600.0, "access.pareto_points": 2})
GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
LARGE = {"Cernet", "Geant2010", "Uninett2010"}
_CLOCK_KEY = re.compile(r"(^|_)(selection_time_s|verification_time_s|seconds_per_demand|estimated_load_s)$")


def _without_clock(value: Any) -> Any:
    """``value`` with every wall-clock entry removed (recursively); everything else untouched."""
    if isinstance(value, dict):
        limit_stopped = "status" in value and value["status"] != "optimal"
        return {
            k: _without_clock(v)
            for k, v in value.items()
            if not _CLOCK_KEY.search(k) and not (limit_stopped and k in ("bound", "gap"))
        }
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def normalised_design_json(text: str) -> str:
    """``design.json`` text without its wall-clock entries and version, in a fixed layout."""
    doc = json.loads(text)
    doc.pop("timing", None)
    doc.pop("qkdplan_version", None)
    return json.dumps(_without_clock(doc), indent=1, sort_keys=True, allow_nan=False) + "\n"


def test_normalisation_keeps_everything_but_the_clock() -> None:
    doc = {
        "timing": {"total_s": 1.0},
        "qkdplan_version": "x",
        "metrics": {"a": 1, "selection_time_s": 2.0},
        "solves": {
            "t": {"status": "feasible", "bound": 3.0, "gap": 0.1, "objective": 2.0},
            "r": {"status": "optimal", "bound": 5.0, "gap": 0.0},
        },
    }
    got = json.loads(normalised_design_json(json.dumps(doc)))
    assert got == {
        "metrics": {"a": 1},
        "solves": {"t": {"status": "feasible", "objective": 2.0}, "r": {"status": "optimal", "bound": 5.0, "gap": 0.0}},
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", bundled_networks(), ids=lambda p: p.stem)
def test_design_json_matches_the_committed_one(path: Path) -> None:
    name = path.stem
    if name in LARGE and os.environ.get("QKDPLAN_GOLDEN_ALL") != "1":
        pytest.skip(f"{name} plans in minutes: set QKDPLAN_GOLDEN_ALL=1 to compare it")
    got = normalised_design_json(plan(read_network(path), SCENARIO, seed=0).to_json())
    golden = GOLDEN_DIR / f"{name}.json"
    if os.environ.get("QKDPLAN_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got)
    assert golden.is_file(), f"no golden design for {name}: run with QKDPLAN_UPDATE_GOLDEN=1 to write it"
    want = golden.read_text()
    if got != want:
        got_lines, want_lines = got.splitlines(), want.splitlines()
        first = next(
            (i for i, (a, b) in enumerate(zip(got_lines, want_lines, strict=False)) if a != b),
            min(len(got_lines), len(want_lines)),
        )
        raise AssertionError(
            f"design.json of {name} differs from tests/data/golden/{golden.name} from line {first + 1}: "
            f"got {got_lines[first : first + 3]!r}, committed {want_lines[first : first + 3]!r}"
        )
