"""Sweeps: spec validation, stable point keys, a 2-worker Dask LocalCluster run with error capture,
resume after lost lines, outputs; and the synthetic network generators they use."""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import planner.simulate.design_check  # noqa: F401  (the sweep's simulate step needs it)
from planner import geo
from planner.errors import ValidationError
from planner.runtime.progress import ProgressTask, Tracker, use_tracker
from planner.sweep.points import POINTS_FILE, read_points
from planner.sweep.runner import execute_sweep
from planner.sweep.spec import load_spec, spec_from_dict
from planner.topology.generators import (
    generate_network,
    grid_network,
    random_geometric_network,
    waxman_network,
)

# 6 sites on a 60 km grid plan in well under a second; access.max_masters = 1 with capacity 4
# cannot cover 6 sites (1 master + at most 4 slaves), so that point must fail while the others succeed.
SMALL = {
    "name": "small",
    "network": {"generator": "grid", "n_sites": 6, "extent_km": 60.0},
    "scenario": {"set": {"solver.threads": 1, "solver.time_limit_s": 20.0}},
    "grid": {"access.capacity": [4, 8], "access.max_masters": [0, 1]},
}


# ------------------------------------------------------------------ generators
@pytest.mark.parametrize("builder", [waxman_network, random_geometric_network, grid_network])
def test_generators_are_seeded_and_lengths_follow_the_route_factor(builder) -> None:
    a = builder(30, seed=4, extent_km=200.0, route_factor=1.5)
    b = builder(30, seed=4, extent_km=200.0, route_factor=1.5)
    assert len(a.sites) == 30 and a.sites.index.is_unique
    pd.testing.assert_frame_equal(a.links.drop(columns="geometry"), b.links.drop(columns="geometry"))
    lat, lon = a.sites["lat"], a.sites["lon"]
    gc = geo.haversine_km(
        lat[a.links["u"]].to_numpy(),
        lon[a.links["u"]].to_numpy(),
        lat[a.links["v"]].to_numpy(),
        lon[a.links["v"]].to_numpy(),
    )
    np.testing.assert_allclose(a.links["length_km"], np.maximum(gc * 1.5, 0.01), rtol=1e-12)
    # every site lies within the square: no pair is farther apart than its diagonal
    d = geo.pairwise_haversine_km(lat.to_numpy(), lon.to_numpy())
    assert d.max() <= 200.0 * math.sqrt(2) * 1.01


def test_waxman_is_connected_and_seed_changes_the_draw() -> None:
    g1 = waxman_network(20, seed=1).graph()
    g2 = waxman_network(20, seed=2).graph()
    assert nx.is_connected(g1) and nx.is_connected(g2)
    assert set(g1.edges()) != set(g2.edges())


def test_grid_spacing_and_degree() -> None:
    net = grid_network(16, extent_km=90.0, route_factor=1.0)  # 4 x 4, spacing 30 km
    g = net.graph()
    assert g.number_of_edges() == 2 * 4 * 3
    assert sorted(dict(g.degree()).values()).count(2) == 4  # the corners
    # positions are laid out on the WGS84 ellipsoid, lengths measured on the 6371 km sphere: <= 0.5 %
    np.testing.assert_allclose(net.links["length_km"], 30.0, rtol=5e-3)


def test_random_geometric_links_exactly_the_close_pairs() -> None:
    net = random_geometric_network(40, seed=3, extent_km=100.0, radius_km=25.0, route_factor=1.0)
    lat, lon = net.sites["lat"].to_numpy(), net.sites["lon"].to_numpy()
    d = geo.pairwise_haversine_km(lat, lon)
    close = {(i, j) for i in range(40) for j in range(i + 1, 40) if d[i, j] < 25.0 * 0.995}
    far = {(i, j) for i in range(40) for j in range(i + 1, 40) if d[i, j] > 25.0 * 1.005}
    ids = {s: k for k, s in enumerate(net.sites.index)}
    linked = {tuple(sorted((ids[u], ids[v]))) for u, v in zip(net.links["u"], net.links["v"], strict=True)}
    assert close <= linked and not (far & linked)


def test_generator_errors_name_the_problem() -> None:
    with pytest.raises(ValidationError, match="unknown generator 'ring'"):
        generate_network("ring", 10)
    with pytest.raises(ValidationError, match="n_sites=2"):
        grid_network(2)


# ------------------------------------------------------------------ spec
def test_spec_expands_grid_times_zip() -> None:
    spec = spec_from_dict({**SMALL, "zip": {"physics.q_swap": [0.5, 0.9], "seed": [1, 2]}})
    assert len(spec.points) == 2 * 2 * 2
    assert spec.varied == ["access.capacity", "access.max_masters", "physics.q_swap", "seed"]
    assert {(p["physics.q_swap"], p["seed"]) for p in spec.points} == {(0.5, 1), (0.9, 2)}


def test_point_keys_are_stable_and_depend_on_everything_fixed() -> None:
    a = spec_from_dict(SMALL)
    b = spec_from_dict(json.loads(json.dumps(SMALL)))
    p = a.points[0]
    assert a.point_key(p) == b.point_key(dict(reversed(list(p.items()))))
    assert len({a.point_key(q) for q in a.points}) == len(a.points)
    other = spec_from_dict({**SMALL, "scenario": {"set": {"solver.threads": 1, "physics.q_swap": 0.7}}})
    assert other.point_key(p) != a.point_key(p)


def test_bad_spec_reports_every_problem_with_its_key_path() -> None:
    bad = {
        "name": "bad",
        "colour": "red",
        "network": {"generator": "grid", "n_sites": 2, "size": 5},
        "scenario": {"set": {"physics.q_swap": 1.5}},
        "grid": {"access.capacity": [4, 1], "access.capasity": [3], "seed": [-1]},
        "zip": {"physics.alpha_db_per_km": [0.2, 0.3], "memory.edge_units": [2]},
    }
    with pytest.raises(ValidationError) as info:
        spec_from_dict(bad, source="bad.toml")
    text = str(info.value)
    for fragment in (
        "colour",
        "network.n_sites",
        "network.size",
        "physics.q_swap",
        '"access.capacity"[1]',
        "capasity",
        "seed[0]",
        "different lengths",
    ):
        assert fragment in text, fragment
    assert len(info.value.problems) >= 8


def test_network_source_must_be_exactly_one(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="exactly one of generator, file, bundled"):
        spec_from_dict({"network": {"generator": "grid", "bundled": "x", "n_sites": 5}})
    with pytest.raises(ValidationError, match="network file not found"):
        spec_from_dict({"network": {"file": "missing.csv"}}, base_dir=tmp_path)
    spec = spec_from_dict({"network": {"bundled": "topology-zoo/Abilene.graphml"}})
    assert spec.points == [{}]


def test_bundled_example_spec_is_valid(datasets_dir: Path) -> None:
    spec = load_spec(datasets_dir / "sweeps" / "example.toml")
    assert len(spec.points) >= 200
    assert "access.max_masters" in spec.varied


# ------------------------------------------------------------------ running
@pytest.fixture(scope="module")
def dask_run(tmp_path_factory: pytest.TempPathFactory):
    """The small sweep run once on a 2-worker LocalCluster."""
    out = tmp_path_factory.mktemp("sweep")
    spec = spec_from_dict(SMALL)
    seen: list[tuple[str, int, int]] = []
    result = execute_sweep(
        spec,
        out_dir=out,
        backend="dask",
        workers=2,
        on_point=lambda r, done, total: seen.append((r.key, done, total)),
    )
    return spec, out, result, seen


def test_dask_sweep_runs_every_point_and_captures_the_infeasible_one(dask_run) -> None:
    spec, out, result, seen = dask_run
    assert (result.n_points, result.n_run, result.n_resumed) == (4, 4, 0)
    assert sorted(k for k, _, _ in seen) == sorted(spec.point_key(p) for p in spec.points)
    assert [d for _, d, _ in seen] == [1, 2, 3, 4]
    table = result.table.set_index(["access.capacity", "access.max_masters"])
    failed = table.loc[(4, 1)]
    assert failed["status"] == "failed" and failed["error_type"] == "InfeasibleDesignError"
    assert "master-budget" in failed["error_message"] and "Traceback" not in failed["error_message"]
    assert result.n_failed == 1 and result.errors == {"InfeasibleDesignError": 1}
    ok = table[table["status"] == "ok"]
    assert len(ok) == 3
    # each successful point honours its own capacity / master budget
    for (cap, max_masters), row in ok.iterrows():
        assert row["n_sites"] == 6 and row["n_slaves"] + row["n_masters"] + row["n_standalone"] == 6
        assert row["n_slaves"] <= cap * row["n_masters"]
        assert max_masters == 0 or row["n_masters"] <= max_masters
        assert row["access.status"] == "optimal"
    # the workers were separate processes
    assert all(":" in w for w in ok["worker"])


def test_outputs_table_parquet_and_plots(dask_run) -> None:
    _, out, result, _ = dask_run
    csv = pd.read_csv(out / "results.csv")
    parquet = pd.read_parquet(out / "results.parquet")
    assert len(csv) == len(parquet) == 4
    assert list(parquet["point"]) == list(result.table["point"])
    for param in ("access.capacity", "access.max_masters"):
        assert (out / "plots" / f"{param}.png").stat().st_size > 1000
        assert (out / "plots" / f"{param}.svg").stat().st_size > 1000
    assert len((out / POINTS_FILE).read_text(encoding="utf-8").splitlines()) == 4
    assert "4 points" in result.summary() and "1 failed" in result.summary()


def test_resume_runs_only_the_missing_points(dask_run, tmp_path: Path) -> None:
    spec, out, first, _ = dask_run
    lines = (out / POINTS_FILE).read_text(encoding="utf-8").splitlines()
    kept, dropped = lines[:2], [json.loads(line) for line in lines[2:]]
    resume_dir = tmp_path / "resume"
    resume_dir.mkdir()
    # two lines lost, and an interrupted write left half a line behind
    (resume_dir / POINTS_FILE).write_text("\n".join(kept) + "\n" + lines[2][:40], encoding="utf-8")
    ran: list[str] = []
    started: list[ProgressTask] = []

    class Collect:
        def on_start(self, task: ProgressTask) -> None:
            started.append(task)

        def on_advance(self, task: ProgressTask) -> None:
            pass

        def on_finish(self, task: ProgressTask) -> None:
            pass

    with use_tracker(Tracker([Collect()])):
        again = execute_sweep(
            spec,
            out_dir=resume_dir,
            backend="serial",
            plots=False,
            on_point=lambda r, done, total: ran.append(r.key),
        )
    assert sorted(ran) == sorted(d["key"] for d in dropped)
    # progress: the resumed points count as done but not into the rate (the ETA is for the rest)
    sweeps = [t for t in started if t.name.startswith("sweep ")]
    assert len(sweeps) == 1 and sweeps[0].is_finished
    assert (sweeps[0].initial, sweeps[0].completed, sweeps[0].total) == (2, 4, 4)
    assert (again.n_run, again.n_resumed, again.n_points) == (2, 2, 4)
    # re-planned points give the same results as the first run (planning is deterministic per seed)
    cols = [c for c in first.table.columns if not c.startswith("time") and c not in ("worker",)]
    pd.testing.assert_frame_equal(
        again.table[cols].reset_index(drop=True),
        first.table[cols].reset_index(drop=True),
        check_dtype=False,
    )
    records = read_points(resume_dir / POINTS_FILE)
    assert len(records) == 4
    # a third run has nothing left to do
    third = execute_sweep(spec, out_dir=resume_dir, backend="serial", plots=False)
    assert (third.n_run, third.n_resumed) == (0, 4)


def test_run_sweep_from_a_toml_file_with_a_console(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from planner.sweep.runner import run_sweep

    spec_path = tmp_path / "s.toml"
    spec_path.write_text(
        '[network]\ngenerator = "grid"\nn_sites = 6\nextent_km = 60.0\n'
        '[scenario.set]\n"solver.threads" = 1\n[grid]\n"access.max_masters" = [0, 1]\n',
        encoding="utf-8",
    )
    buffer = io.StringIO()
    result = run_sweep(spec_path, out_dir=tmp_path / "out", console=Console(file=buffer), backend="serial")
    assert (result.n_points, result.n_failed) == (
        2,
        0,
    )  # capacity 8: one master serves all 5 slaves
    assert "2/2" in buffer.getvalue()
    with pytest.raises(ValidationError, match="--workers 0"):
        run_sweep(spec_path, out_dir=tmp_path / "out", workers=0)


# ------------------------------------------------------------------ benchmark runner
def test_bench_runner_needs_a_source_checkout(tmp_path: Path) -> None:
    from qkdplan.benchrunner import BenchmarksUnavailableError, find_benchmarks_dir

    fake_pkg = tmp_path / "site-packages" / "planner"
    fake_pkg.mkdir(parents=True)
    with pytest.raises(BenchmarksUnavailableError, match="source checkout"):
        find_benchmarks_dir(fake_pkg)
    assert (find_benchmarks_dir() / "__main__.py").is_file()


def test_growth_fit_recovers_a_known_power_law() -> None:
    from benchmarks.__main__ import PRACTICAL_LIMIT_S, fit_power

    n = np.array([10.0, 100.0, 1000.0, 5000.0])
    fit = fit_power(n, 2e-3 * n**1.5)
    assert fit is not None
    assert fit["a"] == pytest.approx(1.5) and fit["c"] == pytest.approx(2e-3) and fit["r2"] == pytest.approx(1.0)
    assert fit["n_at_limit"] == pytest.approx((PRACTICAL_LIMIT_S / 2e-3) ** (1 / 1.5))
    assert fit_power([10, 10], [1.0, 2.0]) is None


def test_simulate_adds_simulated_metrics(tmp_path: Path) -> None:
    spec = spec_from_dict({**SMALL, "simulate": True, "simulate_requests": 10, "grid": {"access.capacity": [8]}})
    result = execute_sweep(spec, out_dir=tmp_path, backend="serial", plots=False)
    row = result.table.iloc[0]
    assert row["status"] == "ok", row["error_message"]
    # the simulation served the demands it was asked for and checked the planner's predictions
    assert (
        row["sim.requests_served"] + row["sim.requests_refused_eps"] + row["sim.requests_blocked_pool"]
        == (row["sim.requests"])
    )
    assert row["sim.n_pairs"] >= row["n_demands"]
    assert row["sim.intra_keys_predicted_sum"] == pytest.approx(row["total_keys_per_attempt"])
