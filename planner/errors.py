"""Domain exceptions of qkdplan.

Every exception a user can trigger with bad input is one of these. Each carries
enough context (file, row or key, a fix hint) to be shown as one clear message;
the CLI turns them into exit code 2 and never prints a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One problem found in an input.

    ``where`` names the file and the row/key (e.g. ``"sites.csv, row 7, column 'lat'"``
    or ``"scenario.toml: access.capacity"``); ``what`` says what is wrong and
    ``fix`` says how to fix it.
    """

    where: str
    what: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class QkdplanError(Exception):
    """Base class of every qkdplan domain error."""


class ValidationError(QkdplanError, ValueError):
    """Input data or settings are invalid; lists every problem found at once."""

    def __init__(self, problems: Problem | Sequence[Problem] | str, *, source: str = "") -> None:
        if isinstance(problems, str):
            where = source or "input"
            # a message that already starts with its source is not prefixed twice
            what = problems[len(where) + 2 :] if problems.startswith(f"{where}: ") else problems
            problems = [Problem(where, what)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        head = f"{len(self.problems)} problems found" + (f" in {self.source}" if self.source else "")
        return head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


class InputFormatError(ValidationError):
    """A file could not be read: missing, unknown format, or malformed content."""


class InfeasibleDesignError(QkdplanError, RuntimeError):
    """No design satisfies the constraints.

    ``conflicts`` names the constraint families (or data) that conflict, e.g.
    ``["cluster-size-min", "master-budget"]``; ``details`` explains them.
    """

    def __init__(self, message: str, *, conflicts: Iterable[str] = (), details: Sequence[str] = ()) -> None:
        self.conflicts: list[str] = list(conflicts)
        self.details: list[str] = list(details)
        text = message
        if self.conflicts:
            text += " Conflicting: " + ", ".join(self.conflicts) + "."
        if self.details:
            text += "\n" + "\n".join(f"  - {d}" for d in self.details)
        super().__init__(text)


class SolverUnavailableError(QkdplanError, RuntimeError):
    """The requested optimisation solver is not installed or not licensed."""


@dataclass
class ProblemCollector:
    """Collects problems while validating, then raises them all at once."""

    source: str = ""
    problems: list[Problem] = field(default_factory=list)

    def add(self, where: str, what: str, fix: str = "") -> None:
        self.problems.append(Problem(where, what, fix))

    def raise_if_any(self, exc_type: type[ValidationError] = ValidationError) -> None:
        if self.problems:
            raise exc_type(self.problems, source=self.source)

    def __bool__(self) -> bool:
        return bool(self.problems)
