"""The 2.x ``context`` facade over a 3.x ``Context``.

Every 2.x call is translated into the 3.x context's ``send``/``send_after``/
``send_egress`` with ``TypedValue{typename = Any.type_url, value = Any.value}``,
so the 3.x handler stays the only engine and builds the response.
"""

from __future__ import annotations

import typing
from datetime import timedelta

from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message as ProtobufMessage

from statefun.compat.address import Address, address_from_sdk
from statefun.compat.egress import egress_typename
from statefun.compat.errors import UndeclaredStateError
from statefun.compat.state import AnyStateHandle
from statefun.context import Context
from statefun.core import validate_typename
from statefun.messages import EgressMessage, Message
from statefun.request_reply_pb2 import TypedValue
from statefun.storage import AddressScopedStorage

__all__ = ["LegacyContext"]


def _typed_value(envelope: object, method: str) -> TypedValue:
    if envelope is None:
        raise ValueError(f"{method}(): the message is missing")
    if not isinstance(envelope, Any):
        hint = (
            f"; use pack_and_{method}() to send a {type(envelope).__name__}"
            if isinstance(envelope, ProtobufMessage)
            else ""
        )
        raise TypeError(
            f"{method}() expects a google.protobuf.Any, got {type(envelope).__name__}{hint}"
        )
    if not envelope.type_url:
        raise ValueError(f"{method}(): the Any has no type_url; Pack() a message into it first")
    return TypedValue(typename=envelope.type_url, has_value=True, value=envelope.value)


def _packed(message: object, method: str) -> Any:
    if message is None:
        raise ValueError(f"{method}(): the message is missing")
    if not isinstance(message, ProtobufMessage):
        raise TypeError(f"{method}() expects a protobuf message, got {type(message).__name__}")
    envelope = Any()
    envelope.Pack(message)
    return envelope


def _target_id(id: object, method: str) -> str:
    if not id or not isinstance(id, str):
        raise ValueError(f"{method}(): the target id must be a non-empty str, got {id!r}")
    return id


def _delay_and_target(
    first: object, second: object, third: object, method: str
) -> tuple[timedelta, str, str]:
    """``(delay, typename, id)``, also from the 2.x docs' order ``(typename, id, delay)``.

    The upstream docs' delayed-message example passes the delay third; the
    types tell the two orders apart, so both work.
    """
    if isinstance(first, timedelta):
        delay, typename, id = first, second, third
    elif isinstance(third, timedelta):
        typename, id, delay = first, second, third
    else:
        raise TypeError(
            f"{method}() expects (delay: timedelta, typename, id, message), got "
            f"({type(first).__name__}, {type(second).__name__}, {type(third).__name__}, ...)"
        )
    if delay < timedelta(0):
        raise ValueError(f"{method}(): the delay must not be negative, got {delay}")
    checked_typename = validate_typename(typename, f"the target typename of {method}()")
    return delay, checked_typename, _target_id(id, method)


class LegacyContext:
    """What a 2.x function receives as ``context``; wraps the 3.x context of the batch."""

    __slots__ = ("_context", "_function_typename", "_state_names", "_handles")

    def __init__(
        self, context: Context, function_typename: str, state_names: tuple[str, ...]
    ) -> None:
        self._context = context
        self._function_typename = function_typename
        self._state_names = state_names
        self._handles: dict[str, AnyStateHandle] = {}

    # -- addresses ------------------------------------------------------------------------

    @property
    def address(self) -> Address:
        """This function instance: ``namespace``, ``type``, ``identity``, ``typename()``."""
        return address_from_sdk(self._context.address)

    @property
    def caller(self) -> Address:
        """The sender; for an ingress message an empty, falsy address."""
        return address_from_sdk(self._context.caller)

    @property
    def storage(self) -> AddressScopedStorage:
        """The 3.x storage of the declared states (each an ``Any``), for code being migrated."""
        return self._context.storage

    # -- state ----------------------------------------------------------------------------

    def state(self, name: str) -> AnyStateHandle:
        handle = self._handles.get(name)
        if handle is None:
            if name not in self._state_names:
                raise UndeclaredStateError(name, self._function_typename, self._state_names)
            handle = AnyStateHandle(self._context.storage, name)
            self._handles[name] = handle
        return handle

    def __getitem__(self, name: str) -> Any | None:
        return self.state(name).value

    def __setitem__(self, name: str, value: Any) -> None:
        self.state(name).value = value

    def __delitem__(self, name: str) -> None:
        del self.state(name).value

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a declared state that currently has a value."""
        return isinstance(name, str) and name in self._state_names and self[name] is not None

    # -- messages -------------------------------------------------------------------------

    def send(self, typename: str, id: str, message: Any) -> None:
        """Send an ``Any`` to the function ``typename`` (``namespace/name``) with ``id``."""
        target = validate_typename(typename, "the target typename of send()")
        self._context.send(Message(target, _target_id(id, "send"), _typed_value(message, "send")))

    def pack_and_send(self, typename: str, id: str, message: ProtobufMessage) -> None:
        self.send(typename, id, _packed(message, "pack_and_send"))

    def reply(self, message: Any) -> None:
        """Send an ``Any`` back to the function that sent the current message."""
        value = _typed_value(message, "reply")
        caller = self.caller
        if not caller:
            raise ValueError(
                "reply(): the current message came from an ingress, so there is no caller to "
                "reply to; use send(typename, id, message) with an explicit address"
            )
        self._context.send(Message(caller.typename(), caller.identity, value))

    def pack_and_reply(self, message: ProtobufMessage) -> None:
        self.reply(_packed(message, "pack_and_reply"))

    def send_after(
        self,
        delay: timedelta | str,
        typename: str,
        id: str | timedelta,
        message: Any,
    ) -> None:
        """Send an ``Any`` after ``delay``: ``send_after(delay, typename, id, message)``."""
        duration, target, target_id = _delay_and_target(delay, typename, id, "send_after")
        self._context.send_after(
            duration, Message(target, target_id, _typed_value(message, "send_after"))
        )

    def pack_and_send_after(
        self,
        delay: timedelta | str,
        typename: str,
        id: str | timedelta,
        message: ProtobufMessage,
    ) -> None:
        duration, target, target_id = _delay_and_target(delay, typename, id, "pack_and_send_after")
        self.send_after(duration, target, target_id, _packed(message, "pack_and_send_after"))

    def send_egress(self, typename: str, message: Any) -> None:
        """Send an ``Any`` to the egress ``typename``; Kafka/Kinesis records reach the generic egresses."""
        target = validate_typename(typename, "the egress typename of send_egress()")
        value = _typed_value(message, "send_egress")
        value.typename = egress_typename(value.typename)
        self._context.send_egress(EgressMessage(target, value))

    def pack_and_send_egress(self, typename: str, message: ProtobufMessage) -> None:
        self.send_egress(typename, _packed(message, "pack_and_send_egress"))

    def __repr__(self) -> str:
        return f"LegacyContext({self.address!r})"
