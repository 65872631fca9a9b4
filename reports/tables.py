"""HTML tables of the reports: cell formatting, bounded tables with a link to the full CSV, file links.

Shared by the design report (:mod:`reports.html`), its verification sections
(:mod:`reports.verify_sections`) and the comparison report (:mod:`reports.compare`).
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from planner.model.schema import header_title


def fmt(x: Any) -> str:
    """Human formatting of a table cell: 4 significant digits, no 'nan'."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if not math.isfinite(x):
            return ""
        if x == 0:
            return "0"
        if abs(x) >= 1e4 or abs(x) < 1e-3:
            return f"{x:.3e}"
        return f"{x:.4g}"
    return str(x)


#: Longest table shown in the report; the full tables are the CSV files of the run folder.
MAX_TABLE_ROWS = 30


def file_link(name: str, files: set[str] | None) -> str:
    """``name`` as a relative link when the file is in the run folder (``files``), else as code text."""
    if files is not None and name in files:
        return f'<a href="{html.escape(name)}"><code>{html.escape(name)}</code></a>'
    return f"<code>{html.escape(name)}</code>"


def table_html(
    df: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    labels: dict[str, str] | None = None,
    left: tuple[str, ...] = (),
    max_rows: int = MAX_TABLE_ROWS,
    csv: str | None = None,
    files: set[str] | None = None,
    table: str | None = None,
) -> str:
    """An HTML table of selected columns with escaped, formatted cells (first ``max_rows`` rows).

    When rows are left out, a note says how many and links ``csv`` (the full table). With
    ``table`` (a design table name), each header's hover text is the column's declared
    description and unit (:func:`planner.model.schema.header_title`).
    """
    if df is None or len(df) == 0:
        return '<p class="note">(none)</p>'
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    labels = labels or {}

    def th(c: str) -> str:
        hover = header_title(table, c) if table else ""
        title = f' title="{html.escape(hover)}"' if hover else ""
        return f'<th class="{"l" if c in left else ""}"{title}>{html.escape(labels.get(c, c))}</th>'

    head = "".join(th(c) for c in cols)
    rows = []
    for rec in df[cols].head(max_rows).itertuples(index=False):
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{html.escape(fmt(v))}</td>' for c, v in zip(cols, rec, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    where = file_link(csv, files) if csv else "the CSV tables"
    more = (
        f'<p class="note">Showing {max_rows} of {len(df)} rows; all rows are in {where}.</p>'
        if len(df) > max_rows
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
