"""Scenario loading: defaults, round trip, and every problem reported at once with its key path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.bundled import DEFAULT_SCENARIO, bundled_path
from planner.errors import InputFormatError, ValidationError
from planner.scenario import default_scenario, load_scenario, scenario_from_dict, scenario_to_toml


def test_bundled_default_equals_builtin_defaults() -> None:
    s = load_scenario(bundled_path(DEFAULT_SCENARIO))
    assert s.to_dict() | {"name": "default"} == default_scenario().to_dict()


def test_toml_round_trip() -> None:
    s = default_scenario().with_overrides({"access.capacity": 5, "physics.q_swap": 0.9, "backbone.mode": "trusted"})
    again = scenario_from_dict(tomllib.loads(scenario_to_toml(s)))
    assert again == s
    assert again.access.capacity == 5 and again.backbone.mode == "trusted"


def test_all_problems_reported_with_key_paths(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('[acess]\nreach_km = 3\n[access]\ncapacity = 1\nreech_km = 2\n'
                 '[physics]\nq_swap = 1.5\nalpha_db_per_km = "x"\n[memory]\nmaster_units = 0\n', encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_scenario(f)
    text = str(info.value)
    for needle in ("acess", "did you mean 'access'", "access.capacity", "access.reech_km", "access.reach_km",
                   "physics.q_swap", "physics.alpha_db_per_km", "memory.master_units", str(f)):
        assert needle in text
    assert len(info.value.problems) == 6


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="not found"):
        load_scenario(tmp_path / "nope.toml")
    bad = tmp_path / "broken.toml"
    bad.write_text("[access\ncapacity = 3", encoding="utf-8")
    with pytest.raises(InputFormatError, match="not valid TOML"):
        load_scenario(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes("name = 'Zürich'".encode("latin-1"))
    with pytest.raises(InputFormatError, match="UTF-8"):
        load_scenario(latin)


def test_cross_checks() -> None:
    with pytest.raises(ValidationError, match="access.capacity"):
        scenario_from_dict({"access": {"capacity": 3, "min_slaves": 4}})
    with pytest.raises(ValidationError, match="repeater_budget"):
        scenario_from_dict({"backbone": {"objective": "max_min_rate", "mode": "repeaters"}})
    with pytest.raises(ValidationError, match=r"demands.pairs\[0\]"):
        scenario_from_dict({"demands": {"mode": "list", "pairs": [["a", "a"]]}})


_RANGED = {
    "physics.alpha_db_per_km": (-1.0, "outside"),
    "physics.q_swap": (0.0, "outside"),
    "security.p_untrusted": (1.5, "outside"),
    "security.eps": (1.0, "outside"),
    "memory.edge_units": (0, "outside"),
    "access.reach_km": (-5.0, "outside"),
    "solver.threads": (0, "outside"),
}


@pytest.mark.parametrize(("key", "bad"), [(k, v[0]) for k, v in _RANGED.items()])
def test_out_of_physical_range(key: str, bad: float) -> None:
    with pytest.raises(ValidationError) as info:
        default_scenario().with_overrides({key: bad})
    assert key in str(info.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    section=st.sampled_from(["physics", "access", "memory", "backbone", "security", "solver", "network"]),
    key=st.text(min_size=1, max_size=12),
    value=st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.booleans(),
                    st.lists(st.integers(), max_size=3)),
)
def test_fuzz_scenario_values_never_crash(section: str, key: str, value: object) -> None:
    """Any key/value either validates into a scenario or raises ValidationError naming the key path."""
    try:
        s = scenario_from_dict({section: {key: value}})
    except ValidationError as exc:
        assert f"{section}." in str(exc)
    else:
        assert getattr(s, section) is not None
