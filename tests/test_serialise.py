"""The one JSON serialiser (planner/model/serialise.py), checked against values written out by hand."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from planner.errors import ValidationError
from planner.model.serialise import dumps, flatten, json_default, json_ready, round_float


class Colour(enum.Enum):
    RED = "red"


@dataclass
class Point2:
    x: float
    tags: tuple[str, ...]


def test_scalars_become_plain_python() -> None:
    out = json_ready({"a": np.int64(3), "b": np.float32(0.5), "c": np.bool_(True), 4: None, "e": pd.NA})
    assert out == {"a": 3, "b": 0.5, "c": True, "4": None, "e": None}
    assert type(out["a"]) is int and type(out["b"]) is float and type(out["c"]) is bool
    assert json_ready(True) is True and json_ready(np.bool_(False)) is False  # bools stay bools


def test_non_finite_floats_become_none_and_digits_round() -> None:
    assert json_ready([math.nan, math.inf, -math.inf, np.float64("nan")]) == [
        None,
        None,
        None,
        None,
    ]
    assert json_ready(1 / 3) == 1 / 3  # unrounded by default
    assert json_ready(1 / 3, digits=12) == 0.333333333333
    assert json_ready(123456789.123456789, digits=12) == 123456789.123
    assert round_float(2.5e-13, 12) == 2.5e-13 and round_float(math.nan) is None


def test_containers_and_rich_types() -> None:
    frame = pd.DataFrame({"k": ["a", "b"], "v": [1.0, math.nan]})
    out = json_ready(
        {
            "enum": Colour.RED,
            "dc": Point2(1.5, ("t",)),
            "set": {"b", "a", 3},
            "arr": np.array([[1, 2], [3, 4]]),
            "frame": frame,
            "indexed": frame.set_index("k"),
            "series": pd.Series([1, 2], index=["x", "y"]),
            "path": Path("a") / "b.json",
            "when": pd.Timestamp("2020-01-02T03:04:05"),
            "tuple": (1, "x"),
        }
    )
    assert out == {
        "enum": "red",
        "dc": {"x": 1.5, "tags": ["t"]},
        "set": [3, "a", "b"],
        "arr": [[1, 2], [3, 4]],
        "frame": [{"k": "a", "v": 1.0}, {"k": "b", "v": None}],
        "indexed": [{"k": "a", "v": 1.0}, {"k": "b", "v": None}],
        "series": {"x": 1, "y": 2},
        "path": str(Path("a") / "b.json"),
        "when": "2020-01-02T03:04:05",
        "tuple": [1, "x"],
    }
    json.dumps(out, allow_nan=False)


def test_unknown_types_are_text_or_an_error_when_strict() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd!"

    assert json_ready({"o": Odd()}) == {"o": "odd!"}
    with pytest.raises(ValidationError, match="value of type Odd cannot be written as JSON"):
        json_ready({"o": Odd()}, strict=True)


def test_dumps_is_deterministic_text() -> None:
    assert (
        dumps({"b": np.float64(0.1), "a": [np.int32(1), math.nan]})
        == '{\n  "a": [\n    1,\n    null\n  ],\n  "b": 0.1\n}\n'
    )


def test_json_default_hook() -> None:
    text = json.dumps(
        {"n": np.int64(7), "f": np.float32(0.25), "p": Path("x")},
        default=json_default,
        sort_keys=True,
    )
    assert text == '{"f": 0.25, "n": 7, "p": "x"}'


def test_flatten_nested_and_dotted_keys_agree() -> None:
    nested = {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}
    assert flatten(nested) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}
    assert flatten({"a.b": 1, "a": {"c": {"d": [1, 2]}}, "e": "x"}) == flatten(nested)
    assert flatten({}) == {} and flatten({"a": {}}) == {}
    assert flatten({"x": 1}, prefix="p.") == {"p.x": 1}


def _retired_simulation_normaliser(obj: Any) -> Any:
    """The normaliser ``simulation.json`` had before it moved to :func:`json_ready` (kept as the oracle)."""
    if isinstance(obj, dict):
        return {str(k): _retired_simulation_normaliser(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_retired_simulation_normaliser(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return float(f"{x:.12g}") if math.isfinite(x) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA:
        return None
    return str(obj)


def test_the_simulation_normaliser_is_json_ready_with_design_digits() -> None:
    """``simulation.json`` goes through :func:`json_ready` at 12 digits, as its retired copy did: no byte changes."""
    from planner.model.serialise import DESIGN_DIGITS

    sample = {
        "a": [
            np.float64(1 / 3),
            math.nan,
            np.int16(-2),
            np.bool_(True),
            None,
            "x",
            (1.5e300, -0.0),
        ],
        5: {"b": pd.NA, "c": 2.0000000000004, "d": True},
    }
    assert json_ready(sample, digits=DESIGN_DIGITS) == _retired_simulation_normaliser(sample)
    assert (
        dumps(sample, digits=DESIGN_DIGITS)
        == json.dumps(_retired_simulation_normaliser(sample), indent=2, sort_keys=True, allow_nan=False) + "\n"
    )
