"""The SMR paper reproduction: outputs, determinism, per-run consistency."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from planner.errors import ValidationError
from reports.reproduce_smr import (
    CSV_COLUMNS,
    EPS_VALUES,
    METHODS,
    N_TRUSTED_SWEEP,
    P_UNTRUSTED_SWEEP,
    SmrExperiment,
    reproduce_smr,
    run_one,
)


def _rows(path):
    with path.open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smr")
    paths = reproduce_smr(out, runs=6, seed=3, workers=1)
    return out, paths


def test_outputs_written(small_run):
    out, paths = small_run
    names = {p.name for p in paths}
    assert {"smr_untrusted_sweep.csv", "smr_trusted_sweep.csv", "README.md"} <= names
    for fig in (
        "5a_security_consumption",
        "5b_key_length",
        "6a_security_consumption",
        "6b_key_length",
    ):
        png = out / f"smr_fig{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    readme = (out / "README.md").read_text()
    assert "waxman_alpha" in readme and "seed | 3" in readme


def test_tables_have_one_row_per_method_point_eps(small_run):
    out, _ = small_run
    a = _rows(out / "smr_untrusted_sweep.csv")
    b = _rows(out / "smr_trusted_sweep.csv")
    assert len(a) == len(METHODS) * len(P_UNTRUSTED_SWEEP) * len(EPS_VALUES)
    assert len(b) == len(METHODS) * len(N_TRUSTED_SWEEP) * len(EPS_VALUES)
    assert {r["method"] for r in a} == set(METHODS)
    assert {float(r["p_untrusted"]) for r in a} == set(P_UNTRUSTED_SWEEP)
    assert {int(r["n_trusted"]) for r in b} == set(N_TRUSTED_SWEEP)
    for row in a + b:
        assert int(row["runs"]) == 6
        assert 0.0 <= float(row["security_mean"]) <= 1.0
        assert float(row["key_length_mean"]) >= 0.0
    # security is per routing, not per eps; key length falls as eps rises
    for method in METHODS:
        for p in P_UNTRUSTED_SWEEP:
            sel = [r for r in a if r["method"] == method and float(r["p_untrusted"]) == p]
            assert len({r["security_mean"] for r in sel}) == 1
            lengths = [float(r["key_length_mean"]) for r in sorted(sel, key=lambda r: float(r["eps"]))]
            assert lengths == sorted(lengths, reverse=True)


def test_parallel_run_is_identical(small_run, tmp_path):
    out, _ = small_run
    reproduce_smr(tmp_path, runs=6, seed=3, workers=2)
    for name in ("smr_untrusted_sweep.csv", "smr_trusted_sweep.csv"):
        assert (tmp_path / name).read_text() == (out / name).read_text()


def test_run_one_is_consistent_with_its_definitions():
    exp = SmrExperiment(runs=2, seed=0)
    metrics = run_one(exp, np.random.SeedSequence(99))
    n_pts = len(exp.points())
    assert metrics.security.shape == (n_pts, len(METHODS))
    assert metrics.key_bits.shape == (n_pts, len(METHODS), len(EPS_VALUES))
    # key bits are whole multiples of a block and never grow with eps
    assert np.all(np.diff(metrics.key_bits, axis=2) <= 0)
    assert not np.isnan(metrics.consumption).any()
    smr_i, sp_i = METHODS.index("SMR"), METHODS.index("shortest")
    # the shortest path uses the fewest hops of all methods
    assert np.all(metrics.consumption[:, sp_i, 0] <= metrics.consumption[:, smr_i, 0])
    assert math.isfinite(metrics.mean_degree)


def test_rejects_too_few_runs(tmp_path):
    with pytest.raises(ValidationError, match="runs"):
        reproduce_smr(tmp_path, runs=1)
