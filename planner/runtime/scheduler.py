"""Find and check a Dask scheduler before a run depends on it.

:func:`resolve_scheduler` turns ``--scheduler ADDRESS`` or ``--scheduler-file
FILE`` into an address and checks within :data:`CONNECT_TIMEOUT_S` seconds that
something listens there, so an unreachable scheduler gives one clear message
instead of a connection error after Dask's own (30 s) timeout.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from urllib.parse import urlsplit

from planner.errors import InputFormatError, ValidationError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
DEFAULT_PORT = 8786


def scheduler_from_file(path: str | Path) -> str:
    """The ``address`` in a Dask scheduler file (``dask scheduler --scheduler-file FILE`` writes one)."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFormatError(
            f"{file}: scheduler file not found (fix: give the file the scheduler wrote with --scheduler-file)",
            source=str(file),
        ) from None
    except (OSError, ValueError) as exc:
        raise InputFormatError(
            f"{file}: not a Dask scheduler file ({exc}) (fix: give the JSON file written by "
            "'dask scheduler --scheduler-file FILE')",
            source=str(file),
        ) from None
    address = data.get("address") if isinstance(data, dict) else None
    if not isinstance(address, str) or not address:
        raise InputFormatError(
            f"{file}: has no 'address' entry (fix: give the JSON file written by "
            "'dask scheduler --scheduler-file FILE')",
            source=str(file),
        )
    return address


def check_reachable(address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`ValidationError` unless a TCP connection to ``address`` opens within ``timeout_s``.

    Addresses other than ``tcp://`` (e.g. ``inproc://``, ``ucx://``) are not checked.
    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        logger.info("scheduler address %s not checked (scheme %s)", address, parts.scheme)
        return
    host = parts.hostname or ""
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValidationError(
            f"--scheduler {address!r}: the port is not a number (fix: give e.g. tcp://host:8786)", source="command line"
        ) from None
    if not host:
        raise ValidationError(
            f"--scheduler {address!r}: no host name (fix: give e.g. tcp://host:8786)", source="command line"
        )
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ValidationError(
            f"cannot reach the Dask scheduler at {address} ({reason}, waited at most {timeout_s:g} s) "
            "(fix: check the address and that the scheduler is running, e.g. 'dask scheduler'; or leave out "
            "--scheduler to run on a local cluster)",
            source="command line",
        ) from None


def resolve_scheduler(address: str | None, scheduler_file: str | None) -> str | None:
    """The scheduler address from ``--scheduler`` or ``--scheduler-file`` (not both), checked; None for local."""
    if address and scheduler_file:
        raise ValidationError("give --scheduler or --scheduler-file, not both", source="command line")
    if scheduler_file:
        address = scheduler_from_file(scheduler_file)
    if address:
        check_reachable(address)
    return address or None
