"""Errors raised by the 2.x programming-model layer.

Each derives from the builtin exception the 2.x SDK raised in the same
situation, so 2.x code that catches ``KeyError``/``ValueError``/``TypeError``
keeps working, and from the SDK's own hierarchy so the serving adapters can
map them to an HTTP status.
"""

from __future__ import annotations

from statefun.errors import InvalidRequestError, StatefunError

__all__ = [
    "UnknownMessageTypeError",
    "UndecodableMessageError",
    "UndeclaredStateError",
    "LegacyFunctionError",
]


class UnknownMessageTypeError(InvalidRequestError, ValueError):
    """A message's type matches none of the 2.x function's message type hints.

    2.x raised ``ValueError("Unknown message type <type_url>")``; the text
    still starts that way, then names the function and the accepted types.
    """

    def __init__(self, type_url: str, function_typename: str, accepted: tuple[str, ...]) -> None:
        super().__init__(
            f"Unknown message type {type_url}: the function {function_typename} accepts only "
            f"{', '.join(accepted)} (from the type hint of its message parameter)"
        )
        self.type_url = type_url
        self.function_typename = function_typename
        self.accepted = accepted


class UndecodableMessageError(InvalidRequestError, ValueError):
    """A message names a type the 2.x function accepts, but its bytes do not parse as that type."""


class UndeclaredStateError(StatefunError, KeyError):
    """A 2.x-style access to a state name that cannot be declared as a 3.x state.

    Undeclared names are otherwise declared on first access (see
    ``statefun.compat.dialect``); this is raised for names the 3.x protocol
    cannot carry, as 2.x raised ``KeyError`` for names missing from module.yaml.
    """

    def __init__(self, name: object, function_typename: str, reason: str) -> None:
        super().__init__(name)
        self.name = name
        self.function_typename = function_typename
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"the state name {self.name!r} of the function {self.function_typename} can not be "
            f"declared: {self.reason}"
        )


class LegacyFunctionError(StatefunError, TypeError):
    """A function registered as 2.x-style cannot be adapted (bad signature, hint or states)."""
