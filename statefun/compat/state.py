"""2.x state: every value is a ``google.protobuf.Any``, held in a 3.x ``ValueSpec``.

On the wire each 2.x state is a 3.x state of type
``type.googleapis.com/google.protobuf.Any`` (``make_protobuf_type(Any)``) whose
bytes are the serialized ``Any``, the same bytes 2.x stored. Declaring states
(2.x did it in module.yaml) happens at bind time, ``states=["seen_count"]``,
or on first access (``statefun.compat.dialect``); either way the SDK asks the
runtime for them through ``IncompleteInvocationContext``.
"""

from __future__ import annotations

import typing
from datetime import timedelta

from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message as ProtobufMessage

from statefun.compat.envelope import as_envelope, holds, packed
from statefun.core import Type, ValueSpec
from statefun.storage import Cell
from statefun.utils import make_protobuf_type

__all__ = [
    "ANY_STATE_TYPE",
    "ANY_STATE_TYPENAME",
    "StateDeclaration",
    "any_state",
    "state_specs",
    "write_any",
    "AnyStateHandle",
]

ANY_STATE_TYPE: Type[Any] = make_protobuf_type(Any)
ANY_STATE_TYPENAME: str = ANY_STATE_TYPE.typename

StateDeclaration = typing.Union[str, ValueSpec[Any]]

M = typing.TypeVar("M", bound=ProtobufMessage)


def any_state(
    name: str,
    expire_after_call: timedelta | None = None,
    expire_after_write: timedelta | None = None,
) -> ValueSpec[Any]:
    """A 2.x state with an expiration (2.x configured it in module.yaml)."""
    return ValueSpec(name, ANY_STATE_TYPE, expire_after_call, expire_after_write)


def state_specs(
    function_typename: str, states: typing.Iterable[StateDeclaration]
) -> list[ValueSpec[Any]]:
    """The 3.x specs of a 2.x function's ``states=``: names, or specs made by ``any_state``."""
    if isinstance(states, (str, bytes)):
        raise TypeError(
            f"states= of {function_typename} must be a list of state names, got the string "
            f"{states!r}; write states=[{states!r}]"
        )
    specs: list[ValueSpec[Any]] = []
    for declaration in states:
        if isinstance(declaration, str):
            try:
                specs.append(any_state(declaration))
            except ValueError as error:
                raise ValueError(f"state {declaration!r} of {function_typename}: {error}") from None
        elif isinstance(declaration, ValueSpec):
            if declaration.type.typename != ANY_STATE_TYPENAME:
                raise TypeError(
                    f"state {declaration.name!r} of {function_typename} has type "
                    f"{declaration.type.typename}; a 2.x state holds a google.protobuf.Any: "
                    "declare it with statefun.compat.any_state(name, ...), or register the "
                    "function 3.x-style with specs=[...]"
                )
            specs.append(declaration)
        else:
            raise TypeError(
                f"states= of {function_typename} holds {type(declaration).__name__} "
                f"{declaration!r}; expected state names or statefun.compat.any_state(...)"
            )
    return specs


def write_any(cell: Cell[typing.Any], name: str, value: object) -> None:
    """Store the ``Any`` (or a received message, as one) ``value`` in the state ``name``."""
    if value is None:
        raise ValueError(
            f"state {name!r}: can not store None; to clear it use del context[{name!r}]"
        )
    cell.set(as_envelope(value, f"state {name!r}", f"use context.state({name!r}).pack(message)"))


class AnyStateHandle:
    """One state of the current function instance, as 2.x's ``context.state(name)``."""

    __slots__ = ("_cell", "_name")

    def __init__(self, cell: Cell[typing.Any], name: str) -> None:
        self._cell = cell
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def value(self) -> Any | None:
        """The state's ``Any``, or ``None`` when it has no value."""
        return typing.cast(typing.Optional[Any], self._cell.get())

    @value.setter
    def value(self, value: Any) -> None:
        write_any(self._cell, self._name, value)

    @value.deleter
    def value(self) -> None:
        self._cell.delete()

    @property
    def modified(self) -> bool:
        """Whether this batch wrote or deleted the state."""
        return bool(self._cell.dirty)

    @property
    def deleted(self) -> bool:
        """Whether this batch deleted the state (and did not write it again)."""
        return bool(self._cell.dirty) and self._cell.get() is None

    def unpack(self, into_class: type[M]) -> M | None:
        """The value unpacked as ``into_class``, or ``None`` when the state has no value.

        A value of another type raises ``TypeError`` (2.x returned an empty message).
        """
        current: Any | None = self._cell.get()
        if current is None:
            return None
        if not holds(current, into_class):
            raise TypeError(
                f"state {self._name!r} holds {current.type_url}, not "
                f"{into_class.DESCRIPTOR.full_name}"
            )
        message = into_class()
        message.ParseFromString(current.value)
        return message

    def pack(self, message: ProtobufMessage) -> None:
        """Store ``message`` packed in an ``Any``."""
        self._cell.set(packed(message, f"state {self._name!r}: pack()"))

    def bytes(self) -> bytes | None:
        """The serialized ``Any`` as it is persisted, or ``None`` when the state has no value."""
        current = self.value
        return None if current is None else current.SerializeToString()

    def __repr__(self) -> str:
        current = self.value
        held = "no value" if current is None else current.type_url
        return f"AnyStateHandle({self._name!r}: {held})"
