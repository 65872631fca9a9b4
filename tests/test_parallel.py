"""The executor layer: order, error capture, retries, on_result, on every backend (Dask: a 2-worker LocalCluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.runtime.parallel import TaskError, map_tasks


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x + 100


def flaky(path_str: str) -> str:
    """Fails the first time it sees a path (marker file absent), succeeds afterwards."""
    path = Path(path_str)
    if not path.exists():
        path.write_text("seen", encoding="utf-8")
        raise RuntimeError("first attempt fails")
    return "ok"


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_results_in_item_order_and_callback_sees_each_once(backend: str) -> None:
    seen: dict[int, int] = {}
    out = map_tasks(square, range(7), backend=backend, workers=2, on_result=lambda i, r: seen.__setitem__(i, r))
    assert out == [i * i for i in range(7)]
    assert seen == {i: i * i for i in range(7)}


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_exceptions_propagate_without_capture(backend: str) -> None:
    with pytest.raises(ValueError, match="bad item 3"):
        map_tasks(fail_on_three, range(5), backend=backend, workers=2)


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_capture_errors_records_type_and_message_and_continues(backend: str) -> None:
    out = map_tasks(fail_on_three, range(5), backend=backend, workers=2, capture_errors=True)
    assert out[:3] == [100, 101, 102] and out[4] == 104
    err = out[3]
    assert isinstance(err, TaskError)
    assert (err.error_type, err.message) == ("ValueError", "bad item 3")
    assert "Traceback" not in str(err)


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_retries_rerun_a_failing_task(backend: str, tmp_path: Path) -> None:
    paths = [str(tmp_path / f"m{i}") for i in range(3)]
    assert map_tasks(flaky, paths, backend=backend, workers=2, retries=1) == ["ok"] * 3
    fresh = [str(tmp_path / f"n{i}") for i in range(2)]
    out = map_tasks(flaky, fresh, backend=backend, workers=2, capture_errors=True)
    assert all(isinstance(o, TaskError) and o.error_type == "RuntimeError" for o in out)


def test_long_messages_are_cut() -> None:
    err = TaskError.from_exception(ValueError("x" * 5000))
    assert len(err.message) <= 500 and err.message.endswith("...")


def test_unknown_backend_and_empty_input() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        map_tasks(square, [1], backend="threads")  # type: ignore[arg-type]
    assert map_tasks(square, [], backend="dask") == []


def test_dask_local_cluster_order_and_capture(tmp_path: Path) -> None:
    seen: list[int] = []
    out = map_tasks(
        fail_on_three,
        range(6),
        backend="dask",
        workers=2,
        capture_errors=True,
        on_result=lambda i, r: seen.append(i),
    )
    assert [o for i, o in enumerate(out) if i != 3] == [100, 101, 102, 104, 105]
    assert isinstance(out[3], TaskError) and out[3].message == "bad item 3"
    assert sorted(seen) == list(range(6))


def _slow_unless_zero(args: tuple[int, str]) -> int:
    """Task 0 returns at once; the others block for a while and then leave a marker file."""
    import time

    x, folder = args
    if x:
        time.sleep(20.0)
        Path(folder, f"ran-{x}").write_text("finished", encoding="utf-8")
    return x


def test_interrupted_process_map_stops_running_tasks(tmp_path: Path) -> None:
    """Ctrl-C during a process map kills the workers: running and queued tasks do not go on."""
    import multiprocessing

    def interrupt(_i: int, _value: object) -> None:
        raise KeyboardInterrupt

    items = [(0, str(tmp_path)), (1, str(tmp_path)), (2, str(tmp_path)), (3, str(tmp_path))]
    with pytest.raises(KeyboardInterrupt):
        map_tasks(_slow_unless_zero, items, backend="process", workers=2, on_result=interrupt)
    assert multiprocessing.active_children() == []
    assert list(tmp_path.iterdir()) == []  # no blocked task was left to finish
