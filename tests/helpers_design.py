"""Table-by-table comparison of two designs (used by the JSON round-trip tests)."""

from __future__ import annotations

import pandas as pd

from planner.model.design import TABLES, Design

# design.json keeps 12 significant digits of every float
JSON_RTOL = 1e-11


def assert_same_design(a: Design, b: Design, *, exact: bool = False) -> None:
    """Every table of ``b`` has ``a``'s columns (same order), dtypes and values; so do the scalars."""
    for name in TABLES:
        ta, tb = a.table(name), b.table(name)
        assert list(tb.columns) == list(ta.columns), (name, list(ta.columns), list(tb.columns))
        assert [str(t) for t in tb.dtypes] == [str(t) for t in ta.dtypes], (name, dict(ta.dtypes), dict(tb.dtypes))
        assert len(tb) == len(ta), name
        pd.testing.assert_frame_equal(
            tb.reset_index(drop=True),
            ta.reset_index(drop=True),
            check_exact=exact,
            rtol=0 if exact else JSON_RTOL,
            atol=0,
            obj=f"table {name}",
        )
    for attr in ("network_name", "network_source", "scenario", "seed", "version", "notes"):
        assert getattr(b, attr) == getattr(a, attr), attr
