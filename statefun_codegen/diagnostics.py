"""User-facing errors: ``path:line:col: error: message``, collected and sorted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A one-based position in a user's file; ``line == 0`` means "the file as a whole"."""

    path: str
    line: int = 0
    column: int = 0

    def format(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{max(self.column, 1)}"


@dataclass(frozen=True, order=True)
class Diagnostic:
    location: Location
    message: str

    def format(self) -> str:
        return f"{self.location.format()}: error: {self.message}"


class GenerationError(Exception):
    """Raised with every problem found in the user's input; never a traceback for users."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(set(diagnostics)))
        super().__init__(self.format())

    def format(self) -> str:
        return "".join(d.format() + "\n" for d in self.diagnostics)


class Collector:
    """Accumulates diagnostics so validation reports everything at once."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, location: Location, message: str) -> None:
        self.diagnostics.append(Diagnostic(location, message))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise GenerationError(self.diagnostics)
