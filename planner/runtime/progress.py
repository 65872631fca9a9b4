"""Showing progress: plain status lines or a live ``rich`` bar, and :func:`display`, which picks one.

The tracker that stages and loops report to, with its ETA arithmetic, is
:mod:`planner.runtime.tracker`; its names are importable from here too, so code
that shows progress needs one import. A renderer is a listener of a
:class:`~planner.runtime.tracker.Tracker`: :class:`LineRenderer` writes plain lines
(logs, pipes, CI), :class:`RichRenderer` a live bar on a terminal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from planner.runtime.tracker import (
    Clock,
    Eta,
    ProgressListener,
    ProgressTask,
    Tracker,
    current_tracker,
    default_clock,
    estimate_eta,
    format_count,
    format_seconds,
    set_stage_limit,
    use_tracker,
)

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# plain lines (logs, pipes, CI): the renderer for output that is not a terminal
# ---------------------------------------------------------------------------

QUARTERS = (0.25, 0.5, 0.75)
#: Seconds a repeated task runs before its plain progress lines are written (without ``verbose``).
QUIET_S = 5.0


class LineRenderer:
    """Writes progress as plain lines, for output that is not a terminal.

    * a stage start: ``"  - <stage>"`` (indented two more spaces per level);
    * counted work: a status line (:meth:`ProgressTask.status`, with its ETA) when
      it passes 25 %, 50 % and 75 %, and one at its end;
    * the innermost open task (what the run is doing now): a status line at least
      every ``interval_s`` seconds, written by :meth:`tick` (called from a timer
      thread), so a long MILP shows how much of its time limit is left.

    With ``verbose`` the starts of inner tasks are written too. Without it, a task that
    repeats one seen before (same name, e.g. the blocks of routing checks of a large run)
    stays silent until it has run :data:`QUIET_S` seconds (its quarter lines before then
    are skipped, and its end line is written only if it wrote a line before), so many
    short repeats do not flood a log; the first task of a name is always shown.
    ``write`` gets one line at a time without a newline; calls are
    serialised.
    """

    def __init__(self, write: Callable[[str], None], *, interval_s: float = 10.0, verbose: bool = False) -> None:
        self.write = write
        self.interval_s = interval_s
        self.verbose = verbose
        self._lock = threading.Lock()
        self._last_line_s: dict[int, float] = {}
        self._quarters: dict[int, int] = {}
        self._tasks: dict[int, ProgressTask] = {}
        self._spoke: set[int] = set()
        self._names: set[str] = set()
        self._repeats: set[int] = set()

    def _quiet(self, task: ProgressTask) -> bool:
        """True while ``task``'s lines are held back (see the class notes)."""
        if self.verbose or id(task) not in self._repeats:
            return False
        return task.tracker.clock() - task.started_s < QUIET_S

    def _emit(self, task: ProgressTask, text: str) -> None:
        with self._lock:
            self._last_line_s[id(task)] = task.tracker.clock()
            self._spoke.add(id(task))
            self.write("  " * (task.depth + 1) + text)

    def on_start(self, task: ProgressTask) -> None:
        with self._lock:
            self._tasks[id(task)] = task
            self._quarters[id(task)] = 0
            if not task.is_stage and task.name in self._names:
                self._repeats.add(id(task))
            self._names.add(task.name)
            self._last_line_s[id(task)] = task.started_s
        if task.is_stage:
            self._emit(task, f"- {task.name}")
        elif self.verbose:
            self._emit(
                task,
                f"{task.name}: started"
                + (f" ({format_count(task.total)} {task.unit})" if task.total is not None else ""),
            )

    def on_advance(self, task: ProgressTask) -> None:
        if not task.total:
            return
        frac = task.completed / task.total
        passed = sum(1 for q in QUARTERS if frac >= q)
        with self._lock:
            seen = self._quarters.get(id(task), 0)
            if passed <= seen or frac >= 1.0:
                if passed > seen:
                    self._quarters[id(task)] = passed
                return
            self._quarters[id(task)] = passed
        if not self._quiet(task):
            self._emit(task, task.status())

    def on_finish(self, task: ProgressTask) -> None:
        with self._lock:
            self._tasks.pop(id(task), None)
            self._quarters.pop(id(task), None)
            self._last_line_s.pop(id(task), None)
            spoke = id(task) in self._spoke
            quiet = self._quiet(task)
            self._spoke.discard(id(task))
            self._repeats.discard(id(task))
        if task.total is not None and (self.verbose or task.total > 1) and (spoke or not quiet):
            self._emit(task, task.status())
            with self._lock:  # the id of a finished task may be reused by the next one
                self._spoke.discard(id(task))

    def tick(self) -> None:
        """Write a status line for the innermost open task if it has had none for ``interval_s`` seconds."""
        with self._lock:
            tasks = list(self._tasks.values())
        if not tasks:
            return
        # the innermost open task is what the run is doing now; its parents wait for it
        inner = max(tasks, key=lambda t: (t.depth, t.started_s))
        with self._lock:
            due = inner.tracker.clock() - self._last_line_s.get(id(inner), inner.started_s) >= self.interval_s
        if due and not inner.is_finished:
            self._emit(inner, inner.status())


@contextmanager
def ticking(renderer: LineRenderer, *, every_s: float = 1.0) -> Iterator[None]:
    """Call ``renderer.tick()`` every ``every_s`` seconds from a daemon thread while the block runs."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            try:
                renderer.tick()
            except Exception as exc:  # noqa: BLE001 - a display problem must never stop the work
                logger.debug("progress ticker stopped: %s", exc)
                return

    thread = threading.Thread(target=run, name="qkdplan-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5.0)


# ---------------------------------------------------------------------------
# a live bar on a terminal (rich), and the choice between the displays
# ---------------------------------------------------------------------------


class RichRenderer:
    """Shows the open tasks as a live ``rich`` progress display (bar, count, elapsed, ETA).

    A stage start is also printed as a line ``"  - <stage>"`` above the display,
    so the scroll-back keeps the stages a run went through. The display is
    transient: it disappears when the block ends, leaving the output clean.
    """

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        count, eta = _rich_columns()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            count,
            TimeElapsedColumn(),
            eta,
            console=console,
            transient=True,
        )
        self._ids: dict[int, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RichRenderer:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_start(self, task: ProgressTask) -> None:
        from rich.markup import escape

        if task.is_stage:
            self.console.print("  " * (task.depth + 1) + f"- {escape(task.name)}", highlight=False)
        with self._lock:
            self._ids[id(task)] = self.progress.add_task(
                "  " * task.depth + escape(task.name), total=task.total, completed=int(task.completed), ptask=task
            )

    def on_advance(self, task: ProgressTask) -> None:
        with self._lock:
            tid = self._ids.get(id(task))
        if tid is not None:
            self.progress.update(tid, completed=task.completed, total=task.total)

    def on_finish(self, task: ProgressTask) -> None:
        with self._lock:
            tid = self._ids.pop(id(task), None)
        if tid is not None:
            self.progress.remove_task(tid)


def _rich_columns() -> list[Any]:
    """The count and ETA columns of :class:`RichRenderer` (rich is imported only when a bar is shown)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class CountColumn(ProgressColumn):
        """``done/total unit`` for counted tasks, nothing otherwise."""

        def render(self, task: Any) -> Text:
            ptask = task.fields.get("ptask")
            if ptask is None or ptask.total is None:
                return Text("")
            return Text(f"{format_count(ptask.completed)}/{format_count(ptask.total)} {ptask.unit}")

    class EtaColumn(ProgressColumn):
        """``ETA 12 s``, or ``at most 40 s left (solver limit 60 s)``, and the task's note."""

        def render(self, task: Any) -> Text:
            ptask = task.fields.get("ptask")
            if ptask is None:
                return Text("")
            eta = ptask.eta()
            if eta.seconds is None:
                text = ""
            elif eta.bound:
                text = f"at most {format_seconds(eta.seconds)} left (solver limit {format_seconds(ptask.limit_s or 0)})"
            else:
                text = f"ETA {format_seconds(eta.seconds)}"
            if eta.over_limit_s > 0:
                over = f"solver limit {format_seconds(ptask.limit_s or 0)} passed"
                text = f"{text}, {over}" if text else over
            if ptask.note:
                text = f"{text}, {ptask.note}" if text else ptask.note
            return Text(text, style="cyan")

    return [CountColumn(), EtaColumn()]


@contextmanager
def display(
    console: Any | None, *, verbose: bool = False, interval_s: float | None = None, clock: Clock = default_clock
) -> Iterator[Tracker]:
    """Install a process-wide tracker shown on ``console`` (a ``rich`` console) for the block.

    ``None``: a silent tracker (``-q``). A console on a terminal: a live bar
    (:class:`RichRenderer`). Otherwise (a pipe, a file, CI logs): plain lines
    (:class:`LineRenderer`, a status line at least every ``interval_s`` seconds;
    default 10, 2 with ``verbose``). Guarantees: the display is gone and its
    timer thread stopped when the block ends, also on Ctrl-C, so output printed
    after the block is never mixed with progress.
    """
    if console is None:
        with use_tracker(Tracker(clock=clock)) as tracker:
            yield tracker
        return
    if console.is_terminal and not console.is_dumb_terminal:
        with RichRenderer(console) as live, use_tracker(Tracker([live], clock=clock)) as tracker:
            yield tracker
        return

    def write(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.file.flush()

    every = interval_s if interval_s is not None else (2.0 if verbose else 10.0)
    lines = LineRenderer(write, interval_s=every, verbose=verbose)
    with ticking(lines, every_s=min(1.0, every)), use_tracker(Tracker([lines], clock=clock)) as tracker:
        yield tracker


__all__ = [
    "Clock",
    "Eta",
    "LineRenderer",
    "ProgressListener",
    "ProgressTask",
    "Tracker",
    "RichRenderer",
    "current_tracker",
    "display",
    "default_clock",
    "estimate_eta",
    "format_count",
    "format_seconds",
    "set_stage_limit",
    "ticking",
    "use_tracker",
]
