"""User-facing diagnostics: ``path:line:col: error: message`` (or ``warning:``), collected and sorted.

Errors stop generation (exit 1). Warnings are for input that is legal but
probably wrong: they are printed, generation goes on (exit 0), and ``--strict``
turns them into errors. A hint, where one helps, follows as a ``note:`` line at
the same position, so editors and CI annotators read every line alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True, order=True)
class Location:
    """A one-based position in a user's file."""

    path: str
    line: int = 1
    column: int = 1

    def format(self) -> str:
        return f"{self.path}:{max(self.line, 1)}:{max(self.column, 1)}"


@dataclass(frozen=True, order=True)
class Diagnostic:
    location: Location
    message: str
    severity: str = ERROR
    hint: str = ""

    def format(self) -> str:
        where = self.location.format()
        text = f"{where}: {self.severity}: {self.message}"
        if self.hint:
            text += f"\n{where}: note: {self.hint}"
        return text

    def with_hint(self, hint: str) -> Diagnostic:
        return replace(self, hint=f"{self.hint}; {hint}" if self.hint else hint)

    def as_error(self) -> Diagnostic:
        return replace(self, severity=ERROR)


def format_all(diagnostics: Iterable[Diagnostic]) -> str:
    return "".join(d.format() + "\n" for d in sorted(set(diagnostics)))


class GenerationError(Exception):
    """Raised with every problem found in the user's input; never a traceback for users.

    It carries the warnings found on the way too, so the user sees everything at once.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(set(diagnostics)))
        super().__init__(self.format())

    def format(self) -> str:
        return format_all(self.diagnostics)


class InternalError(Exception):
    """Our own output broke one of our own rules: a bug to report (exit 123), not a user error."""


class Collector:
    """Accumulates diagnostics so validation reports everything at once."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, location: Location, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(location, message, ERROR, hint))

    def warning(self, location: Location, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(location, message, WARNING, hint))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == WARNING]

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise GenerationError(self.diagnostics)
