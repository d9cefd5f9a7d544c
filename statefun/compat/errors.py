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
    """A 2.x function accessed a state it did not declare with ``states=[...]``."""

    def __init__(self, name: str, function_typename: str, declared: tuple[str, ...]) -> None:
        super().__init__(name)
        self.name = name
        self.function_typename = function_typename
        self.declared = declared

    def __str__(self) -> str:
        declared = ", ".join(repr(name) for name in self.declared) if self.declared else "none"
        return (
            f"unknown state name {self.name!r} for the function {self.function_typename} "
            f"(declared: {declared}). States need to be declared when the function is bound, "
            f"e.g. @functions.bind({self.function_typename!r}, states=[{self.name!r}]); "
            "2.x declared them in module.yaml, which the 3.x protocol no longer reads"
        )


class LegacyFunctionError(StatefunError, TypeError):
    """A function registered as 2.x-style cannot be adapted (bad signature, hint or states)."""
