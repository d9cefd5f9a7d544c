"""Exception types raised by the SDK, and the HTTP status each one maps to.

Serving adapters map ``InvalidRequestError`` (and its subclasses) to 400 and
``FunctionNotFoundError`` to 404; any other exception escaping a user function
is the user's own and becomes a 500. Each type also derives from the builtin
exception that upstream 3.3 raised in the same situation, so code written
against upstream that catches ``KeyError``/``TypeError``/``ValueError`` still
works.
"""

from __future__ import annotations

__all__ = [
    "StatefunError",
    "InvalidRequestError",
    "MalformedRequestError",
    "StateTypeMismatchError",
    "StateDecodingError",
    "FunctionNotFoundError",
    "TypenameError",
    "MessageTypeMismatchError",
    "StateEncodingError",
]


class StatefunError(Exception):
    """Base class of every error the SDK raises on its own account."""


class InvalidRequestError(StatefunError):
    """The request is well formed protobuf but cannot be served (HTTP 400)."""


class MalformedRequestError(InvalidRequestError):
    """The body is empty, not a ``ToFunction`` message, or lacks an invocation batch (HTTP 400)."""


class StateTypeMismatchError(InvalidRequestError, TypeError):
    """The runtime sent a state value whose typename differs from its ``ValueSpec`` (HTTP 400).

    This means the runtime registered the state with another type, e.g. after
    the spec's type was changed without migrating the state.
    """


class StateDecodingError(InvalidRequestError, ValueError):
    """A state value the runtime sent cannot be decoded by its ``ValueSpec``'s type (HTTP 400).

    Retrying cannot help: the stored bytes are what they are. The cause is chained.
    """


class FunctionNotFoundError(StatefunError, KeyError):
    """The request targets a function typename that is not registered (HTTP 404).

    It is a ``KeyError`` because upstream raised ``KeyError(typename)`` here.
    """

    def __init__(self, typename: str, known: tuple[str, ...] = ()) -> None:
        super().__init__(typename)
        self.typename = typename
        self.known = known

    def __str__(self) -> str:
        known = ", ".join(self.known) if self.known else "none"
        return f"no function is registered for typename {self.typename!r} (registered: {known})"


class TypenameError(StatefunError, ValueError):
    """A typename is not of the form ``namespace/name``."""


class MessageTypeMismatchError(StatefunError, TypeError):
    """``Message.as_type`` (or ``as_int`` …) was asked for a type the message does not carry."""


class StateEncodingError(StatefunError, TypeError, ValueError):
    """A value assigned to a state could not be serialized with the state's type.

    Upstream raised the serializer's ``TypeError`` or ``ValueError`` at assignment;
    this type is both, so either ``except`` clause still catches it.
    """
