"""Progress with an ETA: a small tracker that stages and loops report to (shown by :mod:`planner.runtime.progress`).

A :class:`Tracker` holds the tasks that are running. Code that does long work
asks the process-wide tracker (:func:`current_tracker`) for a task and reports
to it::

    with current_tracker().task("SMR checks", total=len(items)) as t:
        for item in items:
            check(item)
            t.advance()

Two kinds of work get an ETA (:func:`estimate_eta`):

* counted work (``total`` known): the measured rate since the task started,
  ``remaining = elapsed * (total - done) / (done - initial)``;
* solver-bound work (``limit_s`` known, e.g. a MILP with a time limit): the
  solver stops by then, so at most ``limit_s - elapsed`` is left. When both
  are known the smaller one is shown.

Nothing is printed by the tracker itself: listeners (the renderers of
:mod:`planner.runtime.progress`, plain lines or a ``rich`` live bar, chosen by its
:func:`~planner.runtime.progress.display`) are told when a task starts, advances
and finishes. Without a tracker installed by
:func:`use_tracker` the default tracker has no listeners, so library calls stay
silent and reporting costs a lock and a few additions.

Thread safety: every method takes the tracker's lock, so a task may be advanced
from any thread. Work in worker processes is not reported from there: the
executor (:mod:`planner.runtime.parallel`) advances the task in this process as each
chunk's result arrives, which is what makes chunked work counted for free.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


def default_clock() -> float:
    """Seconds of :func:`time.perf_counter` (monotonic): the clock of a tracker unless a test passes another."""
    return time.perf_counter()


@dataclass(frozen=True)
class Eta:
    """An estimate of the time left of a task.

    ``seconds`` is ``None`` when nothing can be said yet (no work counted and no
    limit); ``bound`` is true when the figure is the solver's time limit (the
    task ends by then at the latest) rather than a rate extrapolation.
    """

    seconds: float | None
    bound: bool = False
    over_limit_s: float = 0.0


def estimate_eta(
    *, done: float, total: float | None, elapsed_s: float, limit_s: float | None = None, initial: float = 0.0
) -> Eta:
    """The time left of a task that has ``done`` of ``total`` units after ``elapsed_s`` seconds.

    Guarantees: with ``total`` known and ``done > initial`` (units counted since
    the start; ``initial`` units were done before it, e.g. resumed) the estimate
    is ``elapsed_s * (total - done) / (done - initial)`` (0 once ``done >= total``);
    with ``limit_s`` not yet passed it is at most ``limit_s - elapsed_s`` and
    ``bound`` is true if the limit is the smaller figure; past the limit only the
    rate figure is given and ``over_limit_s`` says by how much. Never negative.
    """
    rate_left: float | None = None
    if total is not None:
        if done >= total:
            rate_left = 0.0
        elif done > initial and elapsed_s > 0:
            rate_left = max(0.0, elapsed_s * (total - done) / (done - initial))
    if limit_s is None or not math.isfinite(limit_s):
        return Eta(rate_left)
    if elapsed_s > limit_s:  # past the limit: it bounds nothing now
        return Eta(rate_left, over_limit_s=elapsed_s - limit_s)
    limit_left = limit_s - elapsed_s
    if rate_left is None or limit_left < rate_left:
        return Eta(limit_left, bound=True)
    return Eta(rate_left)


def format_seconds(seconds: float) -> str:
    """``seconds`` as a short human duration: ``"7 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class ProgressTask:
    """One piece of work being tracked; made by :meth:`Tracker.task` (use it as a context manager).

    Public read-only state: ``name``, ``total`` (units, or ``None``), ``completed``,
    ``initial``, ``limit_s``, ``unit``, ``depth`` (how many tasks were open when it
    started), ``note`` (a short free text, e.g. a MIP gap), ``is_finished``, ``stopped``
    (the ``with`` block was left by an exception).
    """

    def __init__(
        self,
        tracker: Tracker,
        name: str,
        *,
        total: float | None,
        limit_s: float | None,
        unit: str,
        initial: float,
        depth: int,
        is_stage: bool,
    ) -> None:
        self.tracker = tracker
        self.name = name
        self.total = total
        self.limit_s = limit_s
        self.unit = unit
        self.initial = float(initial)
        self.completed = float(initial)
        self.depth = depth
        self.is_stage = is_stage
        self.note = ""
        self.stopped = False
        self.started_s = tracker.clock()
        self.finished_s: float | None = None

    # ------------------------------------------------------------- reporting
    def advance(self, n: float = 1) -> None:
        """Count ``n`` more units done (ignored once the task is finished)."""
        with self.tracker.lock:
            if self.finished_s is not None:
                return
            self.completed += n
        self.tracker._notify("advance", self)

    def set_total(self, total: float | None) -> None:
        """Set (or correct) the number of units of the whole task."""
        with self.tracker.lock:
            self.total = total
        self.tracker._notify("advance", self)

    def set_limit(self, limit_s: float | None) -> None:
        """Set the time limit (seconds from the task's start) within which the task ends."""
        with self.tracker.lock:
            self.limit_s = limit_s
        self.tracker._notify("advance", self)

    def set_note(self, note: str) -> None:
        """A short text shown after the ETA (e.g. ``"gap 2.1%"`` or ``"3 failed"``)."""
        with self.tracker.lock:
            self.note = note
        self.tracker._notify("advance", self)

    def done(self) -> None:
        """Finish the task (idempotent); tasks opened inside it and still open finish first."""
        self.tracker._finish(self)

    def __enter__(self) -> ProgressTask:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:  # left by an exception (an error or Ctrl-C): stopped, not done
            self.stopped = True
        self.done()

    # ------------------------------------------------------------- reading
    @property
    def is_finished(self) -> bool:
        """Whether :meth:`done` was called."""
        return self.finished_s is not None

    def elapsed_s(self) -> float:
        """Seconds since the task started (to its end once finished)."""
        end = self.finished_s if self.finished_s is not None else self.tracker.clock()
        return max(0.0, end - self.started_s)

    def eta(self) -> Eta:
        """The time left, from the measured rate and/or the time limit (:func:`estimate_eta`)."""
        with self.tracker.lock:
            return estimate_eta(
                done=self.completed,
                total=self.total,
                elapsed_s=self.elapsed_s(),
                limit_s=self.limit_s,
                initial=self.initial,
            )

    def status(self) -> str:
        """One line describing the task: counts, elapsed time, ETA or limit bound, note.

        E.g. ``"SMR checks: 120/480 items (25%), 4 s elapsed, ETA 12 s"`` or
        ``"access MILP: 20 s elapsed, at most 40 s left (solver limit 60 s)"``.
        """
        with self.tracker.lock:
            parts = [f"{self.name}:"]
            elapsed = self.elapsed_s()
            if self.total is not None:
                pct = 100.0 * self.completed / self.total if self.total else 100.0
                parts.append(f"{format_count(self.completed)}/{format_count(self.total)} {self.unit} ({pct:.0f}%),")
            if self.finished_s is not None:
                parts.append(f"{'stopped after' if self.stopped else 'done in'} {format_seconds(elapsed)}")
            else:
                eta = self.eta()
                parts.append(f"{format_seconds(elapsed)} elapsed")
                if eta.seconds is not None and eta.bound:
                    parts[-1] += ","
                    parts.append(
                        f"at most {format_seconds(eta.seconds)} left "
                        f"(solver limit {format_seconds(self.limit_s or 0.0)})"
                    )
                elif eta.seconds is not None:
                    parts[-1] += ","
                    parts.append(f"ETA {format_seconds(eta.seconds)}")
                elif self.total is not None:
                    parts[-1] += ","
                    parts.append("ETA after the first result")
                if eta.over_limit_s > 0:
                    parts[-1] += ","
                    parts.append(
                        f"solver limit {format_seconds(self.limit_s or 0.0)} passed "
                        "(the solver has stopped; building or checking goes on)"
                    )
            if self.note:
                parts[-1] += ","
                parts.append(self.note)
            return " ".join(parts)


def format_count(x: float) -> str:
    """A count of units as shown in status lines: ``"12"`` for whole numbers, else 3 significant digits."""
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


class ProgressListener(Protocol):
    """What a renderer implements; called with the tracker's lock released, from the reporting thread."""

    def on_start(self, task: ProgressTask) -> None: ...

    def on_advance(self, task: ProgressTask) -> None: ...

    def on_finish(self, task: ProgressTask) -> None: ...


class Tracker:
    """The tasks in progress and the listeners told about them (see the module docstring).

    ``clock`` returns seconds (monotonic); tests pass a fake one. Guarantees: a
    task's ``depth`` is the number of tasks open when it started; finishing a
    task first finishes every task opened after it that is still open; a
    listener that raises is logged and dropped, never failing the work.
    """

    def __init__(self, listeners: Sequence[ProgressListener] = (), *, clock: Clock = default_clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.listeners: list[ProgressListener] = list(listeners)
        self._open: list[ProgressTask] = []
        self._stage: ProgressTask | None = None

    def task(
        self,
        name: str,
        total: float | None = None,
        limit_s: float | None = None,
        *,
        unit: str = "items",
        initial: float = 0,
    ) -> ProgressTask:
        """Start a task of ``total`` units (``None``: unknown) that ends within ``limit_s`` seconds (if given).

        ``initial`` units count as done before the start (e.g. resumed sweep points)
        and do not enter the measured rate.
        """
        return self._start(name, total=total, limit_s=limit_s, unit=unit, initial=initial, is_stage=False)

    def stage(self, name: str, limit_s: float | None = None) -> ProgressTask:
        """Start the next stage of a run: the previous stage (and whatever it left open) finishes first."""
        self.end_stage()
        task = self._start(name, total=None, limit_s=limit_s, unit="items", initial=0, is_stage=True)
        with self.lock:
            self._stage = task
        return task

    def end_stage(self) -> None:
        """Finish the current stage, if any."""
        with self.lock:
            stage, self._stage = self._stage, None
        if stage is not None:
            stage.done()

    def current_stage(self) -> ProgressTask | None:
        """The stage started last by :meth:`stage`, while it is open."""
        with self.lock:
            return self._stage

    def open_tasks(self) -> list[ProgressTask]:
        """The tasks started and not finished, outermost first."""
        with self.lock:
            return list(self._open)

    def close(self) -> None:
        """Finish every open task (e.g. when a run ends or is interrupted)."""
        with self.lock:
            first = self._open[0] if self._open else None
        if first is not None:
            first.done()
        with self.lock:
            self._stage = None

    def _start(
        self, name: str, *, total: float | None, limit_s: float | None, unit: str, initial: float, is_stage: bool
    ) -> ProgressTask:
        with self.lock:
            task = ProgressTask(
                self,
                name,
                total=total,
                limit_s=limit_s,
                unit=unit,
                initial=initial,
                depth=len(self._open),
                is_stage=is_stage,
            )
            self._open.append(task)
        self._notify("start", task)
        return task

    def _finish(self, task: ProgressTask) -> None:
        with self.lock:
            if task.finished_s is not None:
                return
            inner: list[ProgressTask] = []
            if task in self._open:
                at = self._open.index(task)
                inner = self._open[at + 1 :][::-1]
                del self._open[at:]
            now = self.clock()
            for t in [*inner, task]:
                t.finished_s = now
                if t is self._stage:
                    self._stage = None
        for t in [*inner, task]:
            self._notify("finish", t)

    def _notify(self, event: str, task: ProgressTask) -> None:
        for listener in list(self.listeners):
            try:
                getattr(listener, f"on_{event}")(task)
            except Exception as exc:  # noqa: BLE001 - a display problem must never stop the work
                logger.debug("progress display %r failed (%s); it is switched off", listener, exc)
                self.listeners.remove(listener)


# ---------------------------------------------------------------------------
# the process-wide tracker
# ---------------------------------------------------------------------------

_CURRENT: list[Tracker] = [Tracker()]


def current_tracker() -> Tracker:
    """The tracker installed by :func:`use_tracker` (by default one without listeners: silent)."""
    return _CURRENT[-1]


@contextmanager
def use_tracker(tracker: Tracker) -> Iterator[Tracker]:
    """Make ``tracker`` the process-wide one for the enclosed block; its open tasks finish on exit."""
    _CURRENT.append(tracker)
    try:
        yield tracker
    finally:
        _CURRENT.remove(tracker)
        tracker.close()


def set_stage_limit(limit_s: float | None) -> None:
    """Give the current stage of the process-wide tracker a time limit (the stage's solver budget)."""
    stage = current_tracker().current_stage()
    if stage is not None:
        stage.set_limit(limit_s)


__all__ = [
    "Clock",
    "Eta",
    "default_clock",
    "ProgressListener",
    "ProgressTask",
    "Tracker",
    "current_tracker",
    "estimate_eta",
    "format_count",
    "format_seconds",
    "set_stage_limit",
    "use_tracker",
]
