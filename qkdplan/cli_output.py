"""What the ``qkdplan`` command prints: the consoles, ``-q`` / ``-v``, logging, the stage display, the summary.

The only place of the project that writes to the terminal; :mod:`qkdplan.cli` sets the
verbosity once per command with :func:`set_verbosity`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # a message is never cut inside a path

_QUIET = False
_VERBOSE = False


def set_verbosity(*, quiet: bool, verbose: bool) -> None:
    """Set ``-q`` (only errors and the final result line) and ``-v`` for what follows."""
    global _QUIET, _VERBOSE
    _QUIET, _VERBOSE = quiet, verbose


def is_quiet() -> bool:
    """Whether ``-q`` was given."""
    return _QUIET


def say(text: str) -> None:
    """Print a progress or summary line unless -q."""
    if not _QUIET:
        console.print(text)


def escape(text: str) -> str:
    """``text`` with rich markup escaped, to print it as it is."""
    from rich.markup import escape as _escape

    return _escape(text)


def configure_logging(verbosity: int) -> None:
    """Log to stderr: errors only below 0, warnings at 0, info at 1, debug from 2."""
    from rich.logging import RichHandler

    level = (
        logging.ERROR
        if verbosity < 0
        else logging.WARNING
        if verbosity == 0
        else logging.INFO
        if verbosity == 1
        else logging.DEBUG
    )
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)], force=True
    )
    logging.getLogger("pyomo").setLevel(logging.ERROR)
    logging.getLogger("distributed").setLevel(logging.WARNING if verbosity else logging.ERROR)


class StageProgress:
    """The progress display of a command (:func:`planner.runtime.progress.display`); calling it starts a stage.

    Each stage prints one line ``  - <stage>`` as it starts (flushed, so a caller
    watching the output knows the run is inside that stage). On a terminal a
    live bar below shows the open stage and the counted work inside it with
    elapsed time and ETA, or for a solver stage how much of its time budget is
    left at most; otherwise plain status lines are written (at 25/50/75 % of
    counted work and at least every 10 s, every 2 s with ``-v``). ``-q``: nothing.
    The display is gone when the block ends, before any result is printed.
    """

    def __init__(self) -> None:
        self._display: Any = None
        self._tracker: Any = None

    def __enter__(self) -> StageProgress:
        from planner.runtime.progress import display

        self._display = display(None if _QUIET else console, verbose=_VERBOSE)
        self._tracker = self._display.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._log_stage_time()
        self._display.__exit__(*exc)

    def _log_stage_time(self) -> None:
        prev = self._tracker.current_stage() if self._tracker is not None else None
        if prev is not None:
            logging.getLogger("qkdplan.cli").info("%s: took %.1f s", prev.name, prev.elapsed_s())

    def __call__(self, stage: str) -> None:
        self._log_stage_time()
        self._tracker.stage(stage)
        sys.stdout.flush()


def print_summary(design: Any, out: Path, elapsed_s: float) -> None:
    """The table of a planned design's headline figures and where it was written (one line with -q)."""
    m = design.metrics
    if _QUIET:
        console.print(f"wrote {out}/report.html")
        return
    t = Table(title=f"qkdplan design: {design.network_name}", show_header=False)
    rows = [
        ("sites / clusters / standalone", f"{m.get('n_sites')} / {m.get('n_clusters')} / {m.get('n_standalone')}"),
        ("keys per attempt (Eq. 6, all clusters)", f"{m.get('total_keys_per_attempt', 0):.4g}"),
        ("backbone links / km", f"{m.get('n_backbone_links')} / {m.get('backbone_km', 0):.1f}"),
        ("repeaters", str(m.get("n_repeaters"))),
        ("trusted relays", str(m.get("n_trusted"))),
        ("min demand rate (pairs/attempt)", _g(m.get("min_demand_rate"))),
        ("min security (SMR)", _g(m.get("min_security"))),
    ]
    for stage, s in design.solves.items():
        secs = design.timing.get(f"{stage}.solve_time_s")
        rows.append((f"solver: {stage}", f"{s.get('status')}, gap {_g(s.get('gap'))}, {_g(secs)} s"))
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    console.print(f"wrote [bold]{out}/report.html[/], design.json, design.gpkg and CSV tables in {elapsed_s:.1f} s")


def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)
