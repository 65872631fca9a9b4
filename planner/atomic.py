"""All-or-nothing output folders.

:func:`atomic_output_dir` gives a fresh temporary folder next to the target;
only when the ``with`` block finishes without error is it moved into place
(replacing an older complete output). On an error, Ctrl-C or SIGTERM the
temporary folder is removed and the target is left exactly as it was: either
the previous complete output or nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from planner.errors import InputFormatError

logger = logging.getLogger(__name__)


class Interrupted(KeyboardInterrupt):
    """Raised inside an output block when SIGTERM arrives, so clean-up runs."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"terminated by signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Interrupted` for the duration of the block (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    except ValueError:  # not in the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_output_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` only on success.

    Guarantees: ``target`` is never seen half-written. If it existed before and
    the block fails, it is unchanged. The parent folder is created if needed;
    an existing *file* at ``target`` is an error.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise InputFormatError(f"{target}: exists and is not a folder; choose another --out", source=str(target))
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    except OSError as exc:
        raise InputFormatError(f"{target}: cannot create output folder ({exc.strerror}); choose a writable --out",
                               source=str(target)) from None
    try:
        with sigterm_as_interrupt():
            yield tmp
            _normalise_permissions(tmp)
            _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _normalise_permissions(folder: Path) -> None:
    """Give the folder and its files the usual permissions (temporary files are created private)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target``, replacing an existing folder with two renames."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    logger.info("wrote %s", target)
