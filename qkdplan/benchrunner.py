"""``qkdplan bench``: run the benchmark suite of a source checkout.

The suite lives in the top-level ``benchmarks/`` folder, which is not part of
the installed package, so this module never imports it: it finds the folder
next to the ``planner`` package and runs ``python -m benchmarks`` there in a
subprocess. From an installed wheel (no ``benchmarks/`` beside ``planner``) it
raises :class:`BenchmarksUnavailableError` with a clear message.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from planner.errors import QkdplanError

logger = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent


class BenchmarksUnavailableError(QkdplanError, RuntimeError):
    """The benchmark suite is not available (installed from a wheel, not a source checkout)."""


class BenchmarkRunError(QkdplanError, RuntimeError):
    """The benchmark suite ran but failed."""


def find_benchmarks_dir(package_dir: Path = _PACKAGE_DIR) -> Path:
    """The ``benchmarks/`` folder of the source checkout holding ``package_dir``; raises if absent."""
    candidate = package_dir.parent / "benchmarks"
    if (candidate / "__main__.py").is_file() and (candidate / "__init__.py").is_file():
        return candidate
    raise BenchmarksUnavailableError(
        "the benchmark suite needs a source checkout of qkdplan: this installation has no "
        f"'benchmarks' folder next to the planner package ({package_dir}). Clone the repository and run "
        "'qkdplan bench' (or 'python -m benchmarks') from its root."
    )


def run_benchmarks(
    *,
    quick: bool = False,
    out_dir: Path | None = None,
    console: Any = None,
    package_dir: Path = _PACKAGE_DIR,
) -> Path:
    """Run ``python -m benchmarks`` of the source checkout and return the path of ``results.md``.

    ``out_dir`` defaults to the ``benchmarks/`` folder itself (the committed
    results). Each line the suite prints goes to ``console`` (a ``rich``
    console) when given, else to the log. Raises
    :class:`BenchmarksUnavailableError` outside a source checkout and
    :class:`BenchmarkRunError` when the suite exits with an error.
    """
    bench_dir = find_benchmarks_dir(package_dir)
    root = bench_dir.parent
    out = (out_dir or bench_dir).resolve()
    cmd = [sys.executable, "-m", "benchmarks", "--out", str(out)]
    if quick:
        cmd.append("--quick")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p),
    }
    logger.info("running %s in %s", " ".join(cmd), root)
    tail: list[str] = []
    with subprocess.Popen(
        cmd,
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-20:]
            if console is not None:
                console.print(line, markup=False, highlight=False)
            else:
                logger.info("%s", line)
        rc = proc.wait()
    if rc != 0:
        raise BenchmarkRunError(f"the benchmark suite exited with status {rc}; last output:\n" + "\n".join(tail))
    path = out / "results.md"
    if not path.is_file():
        raise BenchmarkRunError(f"the benchmark suite finished but wrote no {path}")
    return path
