"""Report figures drawn for many items stay readable: measured on the drawn matplotlib figure."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

from reports import figures


def _comparison(n: int) -> list[dict[str, object]]:
    """``n`` trusted-relay selections with long names and known securities."""
    rng = np.random.default_rng(5)
    names = ["SMR local search (min SMR security)", "MILP (max-min single-path security)", "betweenness centrality"]
    return [
        {
            "method": f"{names[i % len(names)]} #{i}",
            "trusted": 3 + i % 2,
            "min_smr_security": float(rng.uniform(0.1, 0.5)),
            "mean_smr_security": float(rng.uniform(0.5, 0.9)),
            "min_single_path_security": float(rng.uniform(0.05, 0.4)),
        }
        for i in range(n)
    ]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The figures the next ``*_figure`` call serialises (kept open until the test ends)."""
    kept: list[Any] = []
    monkeypatch.setattr(figures, "to_svg", lambda fig: kept.append(fig) or "")
    yield kept
    for fig in kept:
        plt.close(fig)


@pytest.mark.parametrize("n", [5, 12])
def test_trust_selection_labels_do_not_overlap(drawn: list[Any], n: int) -> None:
    comp = _comparison(n)
    figures.trust_selection_figure(comp, eps=0.9)
    (fig,) = drawn
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = [a for a in fig.axes if a.get_title()]
    # every selection is named by exactly one tick label, in the order of the comparison
    ticks = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text().strip()]
    named = [t for t in ticks if any(str(c["method"]) in t.get_text() for c in comp)]
    assert len(named) == n
    for t, c in zip(sorted(named, key=lambda t: t.get_position()[1]), comp, strict=True):
        assert str(c["method"]) in t.get_text() and f"{c['trusted']} trusted" in t.get_text()
    boxes = [t.get_window_extent(renderer) for t in named]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    # the bars' lengths are the compared securities (min SMR, mean SMR, min single path per selection)
    lengths = sorted(round(p.get_width(), 9) for p in ax.patches)
    expect = sorted(
        round(float(c[k]), 9)  # type: ignore[arg-type]
        for c in comp
        for k in ("min_smr_security", "mean_smr_security", "min_single_path_security")
    )
    assert lengths == expect
