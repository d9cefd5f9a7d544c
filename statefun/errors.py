"""Exception types raised by the SDK, and the HTTP status each one maps to.

Serving adapters map ``InvalidRequestError`` (and its subclasses) to 400 and
``FunctionNotFoundError`` to 404; any other exception escaping a user function
is the user's own and becomes a 500.

Every exception the SDK raises is also an instance of the exception upstream
3.3 raised in the same situation, so ``except`` clauses written against
upstream keep working. Where upstream's exception depends on the path (a
malformed request is a protobuf ``DecodeError``, an ``AttributeError`` or a
``KeyError`` there, depending on what is wrong) or on user code (a state's
serializer may raise anything), the SDK raises an instance of a class derived
from both its own type and upstream's exact class (``derived_error``): the
error then says what is wrong and where, and is still caught by
``except DecodeError``, ``except json.JSONDecodeError`` and so on.
"""

from __future__ import annotations

import typing

__all__ = [
    "StatefunError",
    "InvalidRequestError",
    "MalformedRequestError",
    "StateTypeMismatchError",
    "StateDecodingError",
    "FunctionNotFoundError",
    "TypenameError",
    "TypenameWarning",
    "MessageTypeMismatchError",
    "StateEncodingError",
    "derived_error",
]


class StatefunError(Exception):
    """Base class of every error the SDK raises on its own account."""


class InvalidRequestError(StatefunError):
    """The request is well formed protobuf but cannot be served (HTTP 400)."""


class MalformedRequestError(InvalidRequestError):
    """The body is not a ``ToFunction`` with a targeted invocation batch (HTTP 400).

    The raised instance is also what upstream raised for the same body:
    protobuf's ``DecodeError`` for bytes that do not parse, ``AttributeError``
    for a body without a target (upstream read ``None.typename``),
    ``KeyError`` for a target without a namespace or type (upstream looked
    ``'/'`` up), ``ValueError`` for a target without an id.
    """


class StateTypeMismatchError(InvalidRequestError, TypeError):
    """The runtime sent a state value whose typename differs from its ``ValueSpec`` (HTTP 400).

    This means the runtime registered the state with another type, e.g. after
    the spec's type was changed without migrating the state.
    """


class StateDecodingError(InvalidRequestError):
    """A state value cannot be decoded by its ``ValueSpec``'s type (HTTP 400).

    Raised when the function reads the state. The raised instance is also an
    instance of the deserializer's own exception (protobuf's ``DecodeError``,
    ``json.JSONDecodeError``, …), which is chained as the cause. Retrying
    cannot help: the stored bytes are what they are.
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
    """A typename is missing or not of the form ``namespace/name`` (upstream: ``ValueError``)."""


class TypenameWarning(UserWarning):
    """A function was registered under a typename the runtime can never address.

    Upstream accepted any non-empty typename at registration, so this is a
    warning rather than an error: such a function is simply never invoked.
    """


class MessageTypeMismatchError(StatefunError, TypeError):
    """``as_type``/``as_int``/… asked for a type the message does not carry.

    Only raised when strict message types are switched on
    (``StatefulFunctions(strict_message_types=True)``); by default, as upstream,
    the payload is decoded whatever its typename.
    """


class StateEncodingError(StatefunError):
    """A value assigned to a state cannot be serialized with the state's type.

    Raised at the assignment, as upstream raised there. The raised instance is
    also an instance of the serializer's own exception (``ValueError: Value
    out of range``, ``TypeError``, ``OverflowError``, …), chained as the cause.
    """


E = typing.TypeVar("E", bound=StatefunError)

# (SDK class, upstream's class) -> the class deriving from both.
_derived_classes: dict[tuple[type[StatefunError], type[BaseException]], type[BaseException]] = {}
_DERIVED_CLASSES_LIMIT = 1024


def _derived_str(error: BaseException) -> str:
    return typing.cast(str, error.__dict__.get("_statefun_message", ""))


def _derived_reduce(error: BaseException) -> tuple[typing.Any, ...]:
    base, cause_class = _bases_of(type(error))
    return (_rebuild, (base, cause_class, error.args, dict(error.__dict__)))


def _bases_of(cls: type[BaseException]) -> tuple[type[StatefunError], type[BaseException]]:
    base, cause_class = cls.__bases__
    return typing.cast(type[StatefunError], base), cause_class


def _rebuild(
    base: type[StatefunError],
    cause_class: type[BaseException],
    args: tuple[typing.Any, ...],
    state: dict[str, typing.Any],
) -> BaseException:
    cls = _derived_class(base, cause_class)
    error = cls.__new__(cls, *args) if cls is not None else cause_class.__new__(cause_class, *args)
    error.__dict__.update(state)
    return error


def _derived_class(
    base: type[StatefunError], cause_class: type[BaseException]
) -> type[BaseException] | None:
    key = (base, cause_class)
    derived = _derived_classes.get(key)
    if derived is None:
        try:
            derived = type(
                base.__name__,
                (base, cause_class),
                {
                    "__module__": base.__module__,
                    "__qualname__": base.__qualname__,
                    "__doc__": base.__doc__,
                    "__str__": _derived_str,
                    "__reduce__": _derived_reduce,
                },
            )
        except TypeError:
            # A class that cannot be combined with ours (a final class, or an
            # incompatible instance layout).
            return None
        if len(_derived_classes) >= _DERIVED_CLASSES_LIMIT:
            _derived_classes.clear()
        _derived_classes[key] = derived
    return derived


def derived_error(base: type[E], cause: BaseException, message: str) -> E | BaseException:
    """An error that is a ``base`` and also an instance of ``type(cause)``, reading as ``message``.

    ``cause``'s arguments and attributes are carried over (``JSONDecodeError``'s
    ``pos``, ``UnicodeDecodeError``'s ``start``, …), so handlers written for the
    cause's class work unchanged; raise it ``from cause``. If the two classes
    cannot be combined, ``cause`` itself is returned: being catchable as
    upstream's exception matters more than the SDK's type.
    """
    cause_class = type(cause)
    if issubclass(cause_class, base):
        return cause
    if issubclass(base, cause_class):
        error: BaseException = base(message)
        return error
    derived = _derived_class(base, cause_class)
    if derived is None:
        return cause
    try:
        error = derived.__new__(derived, *cause.args)
    except Exception:  # noqa: BLE001 - a __new__ that wants other arguments: keep the cause
        return cause
    try:
        # Restores C-level state (UnicodeDecodeError's fields, OSError's errno);
        # classes whose __init__ takes other arguments keep theirs in __dict__.
        cause_class.__init__(error, *cause.args)
    except Exception:  # noqa: BLE001
        pass
    error.__dict__.update(cause.__dict__)
    error.__dict__["_statefun_message"] = message
    return error
