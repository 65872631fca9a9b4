"""All-or-nothing output folders that never delete or overwrite what qkdplan did not write.

:func:`atomic_output_dir` gives a fresh temporary folder; only when the
``with`` block finishes without error are its entries put in place. On an
error, Ctrl-C or SIGTERM the temporary folder is removed and the target is
left exactly as it was.

Every output folder holds a manifest, :data:`MANIFEST` (``.qkdplan-run.json``),
listing the top-level entries (files and folders) qkdplan wrote there. The
rules, checked by :func:`check_output_dir` before any work starts and again
when the output is committed:

* a missing or empty target is created;
* a target holding a previous run (a manifest, or a ``design.json`` written by
  qkdplan before manifests existed) is updated: the entries of the previous
  run are replaced, every other entry (the user's files and folders) is kept;
* any other non-empty folder is refused (:class:`OutputFolderError`, exit 2)
  unless ``force`` is given; with ``force`` qkdplan writes its entries beside
  the user's and still refuses when one of its names is already taken by an
  entry it did not write;
* an input file inside the target is never replaced: if a new entry would
  replace it, the output is refused.

When the target holds only a previous run and is neither the working folder
nor one of its parents, it is replaced as a whole with two renames (atomic).
Otherwise (user entries present, ``--out .``) each entry is moved in with its
own rename, so every file is replaced atomically and the user's entries are
never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from planner.errors import InputFormatError

logger = logging.getLogger(__name__)

MANIFEST = ".qkdplan-run.json"
"""Name of the manifest file that marks a folder written by qkdplan."""

_TMP_PREFIX = ".qkdplan-tmp-"
_LEGACY_NAMES = frozenset(
    {
        "design.json",
        "design.gpkg",
        "report.html",
        "sites.csv",
        "clusters.csv",
        "links.csv",
        "demands.csv",
        "relays.csv",
        "fibre.csv",
        "simulation.json",
        "simulation_pairs.csv",
        "simulation_clusters.csv",
        "simulation_links.csv",
    }
)


SWEEP_ENTRIES = ("points.jsonl", "spec.json", "results.csv", "results.parquet", "plots")
"""What ``qkdplan sweep`` writes into its folder (it adds to the folder while it runs, to resume)."""


class OutputFolderError(InputFormatError):
    """The output folder cannot be written without deleting or overwriting something qkdplan did not write."""


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


# --------------------------------------------------------------------------- state of a folder
@dataclass(frozen=True)
class FolderState:
    """What an existing output folder holds: qkdplan's entries and everyone else's."""

    exists: bool
    previous_run: bool
    ours: frozenset[str]
    foreign: frozenset[str]


def read_manifest(folder: Path) -> set[str] | None:
    """The entry names listed in ``folder``'s manifest, or None when it has none (or it is unreadable)."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        return None
    return {str(e) for e in data["entries"] if isinstance(e, str) and e and "/" not in e and e not in (".", "..")}


def _legacy_run(folder: Path) -> bool:
    """True for a run folder written before manifests: a design.json holding a qkdplan design."""
    try:
        data = json.loads((folder / "design.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "schema_version" in data and "qkdplan_version" in data


def folder_state(target: str | Path) -> FolderState:
    """Classify the entries of ``target`` (see the module docstring)."""
    target = Path(target)
    if not target.is_dir():
        return FolderState(False, False, frozenset(), frozenset())
    names = {p.name for p in target.iterdir() if not p.name.startswith(_TMP_PREFIX)} - {MANIFEST}
    listed = read_manifest(target)
    if listed is not None:
        ours = names & listed
        return FolderState(True, True, frozenset(ours), frozenset(names - ours))
    if _legacy_run(target):
        ours = names & _LEGACY_NAMES
        return FolderState(True, True, frozenset(ours), frozenset(names - ours))
    if {"points.jsonl", "spec.json"} <= names:  # a sweep folder written before manifests
        ours = names & set(SWEEP_ENTRIES)
        return FolderState(True, True, frozenset(ours), frozenset(names - ours))
    return FolderState(True, False, frozenset(), frozenset(names))


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _top_entry(path: Path, folder: Path) -> str | None:
    """The name of the entry of ``folder`` that holds ``path`` (None when outside)."""
    if not _is_within(path, folder) or path == folder:
        return None
    return path.relative_to(folder).parts[0]


def check_output_dir(
    target: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    force: bool = False,
    expected: Iterable[str] = (),
    keep_previous: bool = False,
    option: str = "--out",
) -> FolderState:
    """Refuse an output folder that would lose the user's data; returns its state.

    ``inputs`` are the files the command reads; ``expected`` the top-level
    names it is going to write (when known in advance, so that a clash is
    reported before any work); ``keep_previous``: the previous run's entries
    are kept, not removed. Raises :class:`OutputFolderError` naming the
    entries at stake and the fix.
    """
    target = Path(target)
    shown = str(target)
    if target.exists() and not target.is_dir():
        raise OutputFolderError(f"{shown}: exists and is not a folder (fix: choose another {option})", source=shown)
    state = folder_state(target)
    resolved = target.resolve()
    if state.foreign and not state.previous_run and not force:
        listing = ", ".join(sorted(state.foreign)[:8]) + (" ..." if len(state.foreign) > 8 else "")
        raise OutputFolderError(
            f"{shown}: the folder is not empty and was not written by qkdplan (it holds {listing}); "
            f"nothing was written (fix: choose a new or empty {option} folder, or pass --force to write "
            "qkdplan's files beside these; qkdplan never deletes or overwrites files it did not write)",
            source=shown,
        )
    expected = set(expected)
    clash = expected & state.foreign
    if clash:
        raise OutputFolderError(
            f"{shown}: qkdplan would overwrite {', '.join(sorted(clash))}, which it did not write; nothing was "
            f"written (fix: choose another {option} folder, or move those files away)",
            source=shown,
        )
    for inp in inputs:
        if Path(inp).resolve() == resolved:
            raise OutputFolderError(
                f"{shown}: the output folder is also an input ({inp}); nothing was written (fix: choose another "
                f"{option} folder)",
                source=shown,
            )
        entry = _top_entry(Path(inp).resolve(), resolved)
        if entry is not None and (entry in expected or (entry in state.ours and not keep_previous)):
            raise OutputFolderError(
                f"{shown}: the input {inp} lies inside the output folder and would be replaced; nothing was "
                f"written (fix: choose another {option} folder, or copy the input elsewhere first)",
                source=shown,
            )
    return state


def mark_output_dir(target: str | Path, entries: Iterable[str]) -> None:
    """Create ``target`` if needed and add ``entries`` to its manifest (for folders written in place).

    Call :func:`check_output_dir` first: this only records names, it does not check them.
    """
    target = Path(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        _write_manifest(target, (read_manifest(target) or set()) | folder_state(target).ours | set(entries))
    except OSError as exc:
        raise OutputFolderError(
            f"{target}: cannot write the output folder ({exc.strerror}); choose a writable --out", source=str(target)
        ) from None


# --------------------------------------------------------------------------- writing
@contextlib.contextmanager
def atomic_output_dir(
    target: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    force: bool = False,
    keep_previous: bool = False,
    option: str = "--out",
) -> Iterator[Path]:
    """Yield an empty temporary folder whose entries are put into ``target`` only on success.

    Guarantees: ``target`` is never seen half-written; on failure it is
    unchanged; no entry qkdplan did not write is deleted or overwritten (see
    the module docstring); a manifest of qkdplan's entries is written.
    ``keep_previous`` keeps the previous run's entries that the new output
    does not replace (``qkdplan simulate`` adds to a run folder).
    """
    target = Path(target)
    inputs = list(inputs)
    check_output_dir(target, inputs=inputs, force=force, keep_previous=keep_previous, option=option)
    resolved = target.resolve()
    try:
        if _merge_needed(resolved):
            resolved.mkdir(parents=True, exist_ok=True)
        else:
            resolved.parent.mkdir(parents=True, exist_ok=True)
        work_dir = resolved if _merge_needed(resolved) else resolved.parent
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=work_dir))
    except OSError as exc:
        raise OutputFolderError(
            f"{target}: cannot create output folder ({exc.strerror}); choose a writable {option}", source=str(target)
        ) from None
    try:
        with sigterm_as_interrupt():
            yield tmp
            new = {p.name for p in tmp.iterdir()} - {MANIFEST}
            state = check_output_dir(
                target, inputs=inputs, force=force, expected=new, keep_previous=keep_previous, option=option
            )
            _normalise_permissions(tmp)
            _commit(tmp, resolved, new, state, keep_previous=keep_previous)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _merge_needed(target: Path) -> bool:
    """True when the target cannot be swapped as a whole: it is the working folder or one of its parents."""
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return True
    return _is_within(cwd, target)


def _write_manifest(folder: Path, entries: Iterable[str]) -> None:
    data = {
        "tool": "qkdplan",
        "note": "entries written by qkdplan; everything else here is left alone",
        "entries": sorted(set(entries)),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, folder / MANIFEST)


def _commit(tmp: Path, target: Path, new: set[str], state: FolderState, *, keep_previous: bool) -> None:
    entries = set(new) | (set(state.ours) if keep_previous else set())
    inside = tmp.parent == target
    if not state.exists or (
        not state.foreign and not inside and not _merge_needed(target) and not (keep_previous and state.ours - new)
    ):
        # whole-folder swap: the target holds nothing but a previous run (or does not exist)
        _write_manifest(tmp, entries)
        _swap_dir(tmp, target)
        logger.info("wrote %s", target)
        return
    # entry by entry: the user's entries stay where they are
    _write_manifest(target, set(state.ours) | new)  # a crash mid-way still marks every entry of ours
    trash = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + "old-", dir=target))
    try:
        for name in sorted(new):
            dest = target / name
            if (dest.exists() or dest.is_symlink()) and (dest.is_dir() or (tmp / name).is_dir()):
                os.replace(dest, trash / name)
            os.replace(tmp / name, dest)
        if not keep_previous:
            for name in sorted(set(state.ours) - new):
                dest = target / name
                if dest.exists() or dest.is_symlink():
                    os.replace(dest, trash / name)
        _write_manifest(target, entries)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote %d entries into %s", len(new), target)


def _normalise_permissions(folder: Path) -> None:
    """Give the folder and its files the usual permissions (temporary files are created private)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _swap_dir(tmp: Path, target: Path) -> None:
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
