"""Scenario loading: defaults, round trip, and every problem reported at once with its key path."""

from __future__ import annotations

import tomllib
import typing
from collections import Counter
from dataclasses import fields, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.errors import InputFormatError, ValidationError
from planner.io.bundled import DEFAULT_SCENARIO, bundled_path
from planner.model.scenario import (
    default_scenario,
    load_scenario,
    scenario_from_dict,
    scenario_to_toml,
)


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
    f.write_text(
        "[acess]\nreach_km = 3\n[access]\ncapacity = 1\nreech_km = 2\n"
        '[physics]\nq_swap = 1.5\nalpha_db_per_km = "x"\n[memory]\nmaster_units = 0\n',
        encoding="utf-8",
    )
    with pytest.raises(ValidationError) as info:
        load_scenario(f)
    text = str(info.value)
    for needle in (
        "acess",
        "did you mean 'access'",
        "access.capacity",
        "access.reech_km",
        "access.reach_km",
        "physics.q_swap",
        "physics.alpha_db_per_km",
        "memory.master_units",
        str(f),
    ):
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


SECTIONS = ["physics", "access", "memory", "backbone", "security", "solver", "network"]
KNOWN_KEYS = {sec: {f.name: f for f in fields(getattr(default_scenario(), sec))} for sec in SECTIONS}
# keys whose problem may be reported on another key of the same check (see scenario._check_cross)
CROSS_CHECKED = {
    "access.capacity",
    "access.min_slaves",
    "backbone.objective",
    "backbone.mode",
    "backbone.repeater_budget",
}
ANY_VALUE = st.one_of(
    st.integers(),
    st.integers(0, 12),
    st.floats(allow_nan=True),
    st.floats(0, 1),
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
)


@st.composite
def scenario_settings(draw: st.DrawFn) -> tuple[str, str, object]:
    """A section, a key (mostly a real one) and a value (often the right type, sometimes a legal option)."""
    section = draw(st.sampled_from(SECTIONS))
    if draw(st.sampled_from(["known", "known", "known", "random"])) == "known":  # 3 in 4 real keys
        key = draw(st.sampled_from(sorted(KNOWN_KEYS[section])))
    else:
        key = draw(st.text(min_size=1, max_size=12))
    if key in KNOWN_KEYS[section] and draw(st.sampled_from(["typed", "typed", "any"])) == "typed":
        hint = typing.get_type_hints(type(getattr(default_scenario(), section)))[key]
        if typing.get_origin(hint) is typing.Literal:
            return section, key, draw(st.sampled_from(typing.get_args(hint)))
        return section, key, draw(_near_default(getattr(getattr(default_scenario(), section), key)))
    return section, key, draw(ANY_VALUE)


def _near_default(default: object) -> st.SearchStrategy[object]:
    """Values of the default's type close to it (most of them legal)."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(max(default - 1, 0), default + 2)
    if isinstance(default, float):
        return st.floats(0.5, 1.0).map(lambda f: default * f)
    return st.just(default)


def test_fuzz_scenario_values_never_crash() -> None:
    """Any key/value either validates into a scenario holding that value (and the defaults elsewhere)
    or raises ValidationError naming the key path; both outcomes must occur often."""
    outcomes: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=scenario_settings())
    def prop(case: tuple[str, str, object]) -> None:
        section, key, value = case
        try:
            s = scenario_from_dict({section: {key: value}})
        except ValidationError as exc:
            path = f"{section}.{key}"
            assert path in str(exc) or (path in CROSS_CHECKED and f"{section}." in str(exc)), str(exc)
            outcomes["rejected"] += 1
            return
        outcomes["valid"] += 1
        assert key in KNOWN_KEYS[section], f"unknown key {section}.{key} was accepted"
        default = getattr(default_scenario(), section)
        got = getattr(getattr(s, section), key)
        # ints are accepted for float settings (and become floats); everything else is kept as given
        expected = float(value) if isinstance(getattr(default, key), float) and isinstance(value, int) else value
        assert got == expected and type(got) is type(expected), (section, key, value, got)
        assert getattr(s, section) == replace(default, **{key: got})  # nothing else changed
        assert s == replace(default_scenario(), **{section: getattr(s, section)})

    prop()
    total = sum(outcomes.values())
    # measured on three runs: 39-45 % valid, 55-61 % rejected
    assert outcomes["valid"] >= 0.2 * total and outcomes["rejected"] >= 0.3 * total, dict(outcomes)
