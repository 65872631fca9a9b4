"""Progress tracking: the ETA arithmetic on a fake clock, the plain-line display, and the counted maps.

No test sleeps or reads the wall clock: every tracker here runs on a clock the
test moves by hand.
"""

from __future__ import annotations

import pytest

from planner.runtime.parallel import Executor, map_chunks, map_tasks
from planner.runtime.progress import LineRenderer
from planner.runtime.tracker import (
    ProgressTask,
    Tracker,
    current_tracker,
    estimate_eta,
    format_seconds,
    set_stage_limit,
    use_tracker,
)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A listener that records events as ``(event, name, completed)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    def on_start(self, task: ProgressTask) -> None:
        self.events.append(("start", task.name, task.completed))

    def on_advance(self, task: ProgressTask) -> None:
        self.events.append(("advance", task.name, task.completed))

    def on_finish(self, task: ProgressTask) -> None:
        self.events.append(("finish", task.name, task.completed))


# ------------------------------------------------------------------ estimate_eta
@pytest.mark.parametrize(
    ("done", "total", "elapsed", "expected"),
    [
        (1, 4, 10.0, 30.0),  # 10 s per unit, 3 units left
        (3, 4, 30.0, 10.0),
        (50, 200, 5.0, 15.0),
        (4, 4, 30.0, 0.0),  # finished
        (5, 4, 30.0, 0.0),  # over-counted: still never negative
    ],
)
def test_rate_eta_extrapolates_the_mean_rate(done: float, total: float, elapsed: float, expected: float) -> None:
    # independent: time per unit is elapsed/done, the units left are total-done
    eta = estimate_eta(done=done, total=total, elapsed_s=elapsed)
    assert eta.seconds == pytest.approx(expected) and not eta.bound


def test_no_eta_before_the_first_unit_or_without_a_total() -> None:
    assert estimate_eta(done=0, total=10, elapsed_s=5.0).seconds is None
    assert estimate_eta(done=3, total=None, elapsed_s=5.0).seconds is None


def test_limit_bounds_the_eta() -> None:
    # a MILP with a 60 s limit after 20 s: at most 40 s left
    eta = estimate_eta(done=0, total=None, elapsed_s=20.0, limit_s=60.0)
    assert eta.seconds == pytest.approx(40.0) and eta.bound
    # counted work slower than the limit allows: the limit is the smaller figure
    eta = estimate_eta(done=1, total=10, elapsed_s=20.0, limit_s=60.0)
    assert eta.seconds == pytest.approx(40.0) and eta.bound
    # faster than the limit: the rate wins
    eta = estimate_eta(done=8, total=10, elapsed_s=20.0, limit_s=60.0)
    assert eta.seconds == pytest.approx(5.0) and not eta.bound
    # past the limit (the solver stopped, checks go on): the limit bounds nothing any more
    eta = estimate_eta(done=0, total=None, elapsed_s=90.0, limit_s=60.0)
    assert eta.seconds is None and not eta.bound and eta.over_limit_s == pytest.approx(30.0)
    eta = estimate_eta(done=3, total=4, elapsed_s=90.0, limit_s=60.0)
    assert eta.seconds == pytest.approx(30.0) and not eta.bound and eta.over_limit_s == pytest.approx(30.0)


def test_resumed_units_do_not_enter_the_rate() -> None:
    # 80 of 100 points were done before the start; 5 more in 50 s -> 10 s each, 15 left
    eta = estimate_eta(done=85, total=100, elapsed_s=50.0, initial=80)
    assert eta.seconds == pytest.approx(150.0)
    assert estimate_eta(done=80, total=100, elapsed_s=50.0, initial=80).seconds is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "0 s"),
        (7.0, "7 s"),
        (59.4, "59 s"),
        (65.0, "1 min 05 s"),
        (3725.0, "1 h 02 min"),
        (-3.0, "0 s"),
    ],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


# ------------------------------------------------------------------ the tracker
def test_task_eta_follows_the_fake_clock() -> None:
    clock = FakeClock()
    tracker = Tracker(clock=clock)
    with tracker.task("checks", total=8) as t:
        clock.tick(4.0)
        t.advance(2)
        assert t.eta().seconds == pytest.approx(12.0)  # 2 s per item, 6 left
        assert t.status() == "checks: 2/8 items (25%), 4 s elapsed, ETA 12 s"
        clock.tick(8.0)  # slower now: 12 s for 2 -> 6 s per item
        assert t.eta().seconds == pytest.approx(36.0)
        t.advance(6)
        assert t.eta().seconds == 0.0
    clock.tick(100.0)
    assert t.is_finished and t.elapsed_s() == pytest.approx(12.0)  # frozen at its end
    t.advance(5)  # ignored once finished
    assert t.completed == 8


def test_a_task_left_by_an_exception_is_stopped_not_done() -> None:
    clock = FakeClock()
    tracker = Tracker(clock=clock)
    with pytest.raises(KeyboardInterrupt), tracker.task("batches", total=8, unit="tasks") as t:
        clock.tick(6.0)
        t.advance(4)
        raise KeyboardInterrupt
    assert t.is_finished and t.stopped
    assert t.status() == "batches: 4/8 tasks (50%), stopped after 6 s"


def test_solver_bound_status_line() -> None:
    clock = FakeClock()
    tracker = Tracker(clock=clock)
    t = tracker.task("trust MILP", limit_s=60.0)
    clock.tick(20.0)
    t.set_note("gap 2.0%")
    assert t.status() == "trust MILP: 20 s elapsed, at most 40 s left (solver limit 1 min 00 s), gap 2.0%"
    clock.tick(50.0)
    assert t.status() == (
        "trust MILP: 1 min 10 s elapsed, solver limit 1 min 00 s passed (the solver has "
        "stopped; building or checking goes on), gap 2.0%"
    )


def test_stages_replace_each_other_and_finish_inner_tasks() -> None:
    clock = FakeClock()
    rec = Recorder()
    tracker = Tracker([rec], clock=clock)
    access = tracker.stage("access")
    inner = tracker.task("components", total=3)
    assert inner.depth == 1 and access.depth == 0
    inner.advance()
    trust = tracker.stage("trust")  # access ends, and the task left open inside it first
    assert inner.is_finished and access.is_finished and not trust.is_finished
    assert tracker.current_stage() is trust
    assert [e for e in rec.events if e[0] == "finish"] == [("finish", "components", 1), ("finish", "access", 0)]
    with use_tracker(tracker):
        set_stage_limit(30.0)
    assert trust.limit_s == 30.0
    assert trust.is_finished  # use_tracker closes what is open
    assert tracker.open_tasks() == []


def test_set_stage_limit_without_a_stage_is_harmless() -> None:
    tracker = Tracker(clock=FakeClock())
    with use_tracker(tracker):
        set_stage_limit(10.0)
        assert tracker.current_stage() is None


def test_a_failing_display_never_stops_the_work() -> None:
    class Broken(Recorder):
        def on_advance(self, task: ProgressTask) -> None:
            raise OSError("broken pipe")

    rec, broken = Recorder(), Broken()
    tracker = Tracker([broken, rec], clock=FakeClock())
    with tracker.task("x", total=3) as t:
        t.advance()
        t.advance()
    assert broken not in tracker.listeners
    assert [e for e in rec.events if e[0] == "advance"] == [("advance", "x", 1), ("advance", "x", 2)]


# ------------------------------------------------------------------ plain lines
def test_line_renderer_writes_quarters_with_eta_and_periodic_lines() -> None:
    clock = FakeClock()
    lines: list[str] = []
    renderer = LineRenderer(lines.append, interval_s=10.0)
    tracker = Tracker([renderer], clock=clock)
    tracker.stage("simulating")
    assert lines == ["  - simulating"]
    task = tracker.task("batches", total=8, unit="tasks")
    for _ in range(8):
        clock.tick(3.0)
        task.advance()
    task.done()
    # a line as 25 %, 50 % and 75 % are passed, and one at the end; none in between
    assert lines[1:] == [
        "    batches: 2/8 tasks (25%), 6 s elapsed, ETA 18 s",
        "    batches: 4/8 tasks (50%), 12 s elapsed, ETA 12 s",
        "    batches: 6/8 tasks (75%), 18 s elapsed, ETA 6 s",
        "    batches: 8/8 tasks (100%), done in 24 s",
    ]
    # the stage has been quiet since it started (24 s ago): one status line per tick when due
    lines.clear()
    renderer.tick()
    assert lines == ["  simulating: 24 s elapsed"]
    clock.tick(5.0)
    renderer.tick()
    assert len(lines) == 1  # not due yet
    clock.tick(5.0)
    renderer.tick()
    assert lines[-1] == "  simulating: 34 s elapsed"


def test_ticks_report_the_innermost_task_with_its_limit() -> None:
    clock = FakeClock()
    lines: list[str] = []
    renderer = LineRenderer(lines.append, interval_s=10.0)
    tracker = Tracker([renderer], clock=clock)
    tracker.stage("trust", limit_s=60.0)
    milp = tracker.task("relay MILP", limit_s=45.0)
    clock.tick(15.0)
    renderer.tick()
    assert lines[1:] == ["    relay MILP: 15 s elapsed, at most 30 s left (solver limit 45 s)"]
    milp.done()
    clock.tick(10.0)
    renderer.tick()
    assert lines[-1] == "  trust: 25 s elapsed, at most 35 s left (solver limit 1 min 00 s)"


def test_verbose_lines_show_inner_starts() -> None:
    lines: list[str] = []
    tracker = Tracker([LineRenderer(lines.append, verbose=True)], clock=FakeClock())
    tracker.task("checks", total=5)
    assert lines == ["  checks: started (5 items)"]


# ------------------------------------------------------------------ the maps count
def _square(ctx: int, x: int) -> int:
    return ctx * x * x


def _double(x: int) -> int:
    return 2 * x


@pytest.mark.parametrize("executor", [Executor("serial"), Executor("process", workers=2)])
def test_map_chunks_counts_every_item(executor: Executor) -> None:
    rec = Recorder()
    items = list(range(23))
    with use_tracker(Tracker([rec])):
        out = map_chunks(_square, 3, items, executor=executor, progress="squares")
    assert out == [3 * x * x for x in items]
    starts = [e for e in rec.events if e[0] == "start"]
    assert starts == [("start", "squares", 0)]
    advances = [e[2] for e in rec.events if e[0] == "advance"]
    assert advances == sorted(advances) and advances[-1] == 23  # counted up to every item, once
    assert rec.events[-1] == ("finish", "squares", 23)


def test_map_tasks_counts_tasks_and_can_be_silenced() -> None:
    rec = Recorder()
    with use_tracker(Tracker([rec])):
        assert map_tasks(_double, [1, 2, 3], backend="serial") == [2, 4, 6]
        assert map_tasks(_double, [4], backend="serial", progress=False) == [8]
    assert [e for e in rec.events if e[0] != "advance"] == [("start", "double", 0), ("finish", "double", 3)]


def test_default_tracker_is_silent_and_empty() -> None:
    tracker = current_tracker()
    assert tracker.listeners == []
    assert map_chunks(_square, 1, [1, 2], executor=Executor("serial")) == [1, 4]
    assert tracker.open_tasks() == []


def test_short_repeats_of_a_task_stay_silent_long_ones_speak() -> None:
    clock = FakeClock()
    lines: list[str] = []
    tracker = Tracker([LineRenderer(lines.append, interval_s=10.0)], clock=clock)
    tracker.stage("trust")

    def run(step_s: float) -> None:
        task = tracker.task("route row", total=4)
        for _ in range(4):
            clock.tick(step_s)
            task.advance()
        task.done()

    run(0.1)  # the first task of a name is shown
    first = len(lines)
    assert first > 1 and all("route row" in x for x in lines[1:])
    for _ in range(20):  # short repeats: nothing
        run(0.1)
    assert len(lines) == first
    run(3.0)  # a repeat that runs past QUIET_S speaks again from then on, and ends with a line
    assert len(lines) > first and lines[-1].endswith("done in 12 s")
    verbose: list[str] = []
    vt = Tracker([LineRenderer(verbose.append, verbose=True)], clock=clock)
    for _ in range(3):
        task = vt.task("route row", total=2)
        task.advance(2)
        task.done()
    assert sum("route row: started" in x for x in verbose) == 3  # -v still shows every task
