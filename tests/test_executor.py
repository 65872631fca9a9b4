"""The process-wide executor (planner.runtime.parallel.use_executor / map_chunks) and the SMR checks on it."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from planner.routing import smr
from planner.runtime.parallel import Executor, current_executor, map_chunks, use_executor
from planner.stages.smr_checks import smr_rows


def _affine(context: tuple[int, int], x: int) -> int:
    a, b = context
    return a * x + b


@pytest.mark.parametrize("n", [0, 1, 5, 23])
def test_map_chunks_keeps_order_on_every_backend(n: int) -> None:
    items = list(range(n))
    expected = [3 * x + 1 for x in items]
    assert map_chunks(_affine, (3, 1), items) == expected  # default: serial
    assert map_chunks(_affine, (3, 1), items, executor=Executor("process", 2)) == expected
    with use_executor(workers=2) as ex:
        assert ex.backend == "process"
        assert map_chunks(_affine, (3, 1), items, chunks_per_worker=3) == expected


def _pid(context: None, x: int) -> int:
    import os

    return os.getpid()


def test_small_maps_stay_in_this_process() -> None:
    import os

    pids = map_chunks(_pid, None, list(range(10)), executor=Executor("process", 2), min_items_for_processes=11)
    assert set(pids) == {os.getpid()}
    pids = map_chunks(_pid, None, list(range(10)), executor=Executor("process", 2), min_items_for_processes=10)
    assert os.getpid() not in pids


def test_use_executor_nests_and_restores() -> None:
    assert current_executor() == Executor()
    with use_executor(scheduler_address="tcp://127.0.0.1:1") as outer:
        assert outer.backend == "dask" and current_executor() is outer
        with use_executor("serial") as inner:
            assert current_executor() is inner
        assert current_executor() is outer
    assert current_executor() == Executor()
    with pytest.raises(ValueError, match="unknown backend"), use_executor("threads"):  # type: ignore[arg-type]
        pass
    assert current_executor() == Executor()


def test_smr_rows_on_processes_equal_direct_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("planner.stages.smr_checks.MIN_PARALLEL_ROUTINGS", 0)  # use the processes even for 15
    rng = np.random.default_rng(5)
    g = nx.connected_watts_strogatz_graph(40, 4, 0.3, seed=5)
    g = nx.relabel_nodes(g, {v: f"n{v}" for v in g.nodes})
    nodes = sorted(g.nodes)
    trusted = {str(x) for x in rng.choice(nodes, 5, replace=False)}
    security = {v: float(rng.uniform(0.6, 0.95)) for v in nodes}
    pairs = [tuple(rng.choice(nodes, 2, replace=False)) for _ in range(15)]
    demands = pd.DataFrame(
        {
            "demand": [f"d{i}" for i in range(len(pairs))],
            "source": [a for a, _ in pairs],
            "target": [b for _, b in pairs],
        }
    )
    serial = smr_rows(g, demands, trusted, security)
    parallel = smr_rows(g, demands, trusted, security, executor=Executor("process", 2))
    pd.testing.assert_frame_equal(serial, parallel)
    for row, (a, b) in zip(serial.itertuples(index=False), pairs, strict=True):
        res = smr(g, a, b, trusted=trusted, security=security)
        assert row.security == (float(res.security) if res.delivered else 0.0)
        assert row.key_consumption == res.total_hops and row.paths == res.n_paths


def test_simulate_executor_resolution() -> None:
    from planner.simulate.demand_work import resolve_executor

    assert resolve_executor(None, None, None) == ("process", None, None)  # plain library call: local processes
    assert resolve_executor("serial", None, None) == ("serial", None, None)
    assert resolve_executor(None, 3, "tcp://h:1") == ("dask", 3, "tcp://h:1")
    with use_executor(scheduler_address="tcp://h:2", workers=4):
        assert resolve_executor(None, None, None) == ("dask", 4, "tcp://h:2")
    with use_executor(workers=1):
        assert resolve_executor(None, None, None) == ("serial", 1, None)


def test_cli_rejects_zero_workers(capsys: pytest.CaptureFixture[str]) -> None:
    from qkdplan.cli import main

    assert main(["simulate", "no-such-run", "--workers", "0"]) == 2
    assert "--workers 0" in capsys.readouterr().err
