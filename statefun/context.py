"""The ``Context`` a function receives, and the concrete context shared by one invocation batch."""

from __future__ import annotations

import abc
import typing
from datetime import timedelta

from statefun.core import VALID_TYPENAMES, SdkAddress, new_address, validate_typename
from statefun.legacy_hints import context_attribute_error, context_subscript_error
from statefun.messages import EgressMessage, Message
from statefun.storage import AddressScopedStorage

__all__ = ["Context", "BatchContext", "DelayedMessage", "batch_context", "caller_address"]


class Context(abc.ABC):
    """What a function can see and do while handling a message."""

    __slots__ = ()

    # These only run where a lookup has already failed; they explain 2.x-style calls
    # (context.state('x'), context['x'], context.pack_and_send(...)) on a 3.x context.
    def __getattr__(self, name: str) -> typing.NoReturn:
        raise context_attribute_error(self, name)

    def __getitem__(self, name: str) -> typing.NoReturn:
        raise context_subscript_error(name, "context[{name}]")

    def __setitem__(self, name: str, value: typing.Any) -> typing.NoReturn:
        raise context_subscript_error(name, "context[{name}] = ...")

    def __delitem__(self, name: str) -> typing.NoReturn:
        raise context_subscript_error(name, "del context[{name}]")

    def __contains__(self, name: object) -> typing.NoReturn:
        raise context_subscript_error(name, "{name} in context")

    @property
    @abc.abstractmethod
    def address(self) -> SdkAddress:
        """The address of the function instance being invoked."""

    @property
    @abc.abstractmethod
    def storage(self) -> AddressScopedStorage:
        """The instance's declared states, as attributes."""

    @property
    @abc.abstractmethod
    def caller(self) -> SdkAddress | None:
        """The function that sent the current message, ``None`` if it came from an ingress."""

    def send(self, message: Message) -> None:
        """Send ``message`` to the function it is addressed to."""

    def send_after(
        self, duration: timedelta, message: Message, cancellation_token: str = ""
    ) -> None:
        """Send ``message`` after ``duration``; a non-empty token allows cancelling it."""

    def cancel_delayed_message(self, cancellation_token: str) -> None:
        """Cancel a delayed message sent with ``cancellation_token``."""

    def send_egress(self, message: EgressMessage) -> None:
        """Send ``message`` to the egress it is addressed to."""


class DelayedMessage(typing.NamedTuple):
    """A delayed send (``message`` set) or a cancellation (``message`` is ``None``)."""

    is_cancellation: bool
    duration: int
    message: Message | None
    cancellation_token: str | None


class _CallerSource(typing.Protocol):
    """What the context needs of the current invocation: its ``caller`` address fields."""

    @property
    def caller(self) -> typing.Any: ...


def caller_address(invocation: _CallerSource) -> SdkAddress | None:
    """The invocation's caller, ``None`` when it came from an ingress (all fields empty)."""
    caller = invocation.caller
    namespace, name, id = caller.namespace, caller.type, caller.id
    if not namespace and not name and not id:
        return None
    return new_address(namespace, name, id, f"{namespace}/{name}")


# The caller of the current invocation, until the function asks for it.
UNRESOLVED_CALLER: typing.Any = object()


def batch_context(
    namespace: str, name: str, id: str, typename: str, storage: AddressScopedStorage
) -> BatchContext:
    """A ``BatchContext`` for the target ``namespace/name`` ``id``; its ``SdkAddress`` is made lazily."""
    # BatchContext.__init__'s work without its call: this runs once per request.
    context: BatchContext = _new(BatchContext)
    context._address = None
    context._target = (namespace, name, id, typename)
    context._storage = storage
    context._caller = None
    context._invocation = None
    context.messages = []
    context.delayed_messages = []
    context.egresses = []
    return context


_new = object.__new__


class BatchContext(Context):
    """The context shared by every invocation of one batch; collects what the function does.

    The handler points it at each invocation in turn (``set_invocation``); the
    caller's address is only built if the function asks for it.
    """

    __slots__ = (
        "_address",
        "_target",
        "_storage",
        "_caller",
        "_invocation",
        "messages",
        "delayed_messages",
        "egresses",
    )

    def __init__(self, address: SdkAddress | None, storage: AddressScopedStorage) -> None:
        self._address = address
        self._target: tuple[str, str, str, str] | None = None
        self._storage = storage
        self._caller: SdkAddress | None = None
        self._invocation: _CallerSource | None = None
        self.messages: list[Message] = []
        self.delayed_messages: list[DelayedMessage] = []
        self.egresses: list[EgressMessage] = []

    @property
    def address(self) -> SdkAddress:
        address = self._address
        if address is None:
            # Built on first use: most functions never look at their own address.
            namespace, name, id, typename = typing.cast(tuple[str, str, str, str], self._target)
            address = self._address = new_address(namespace, name, id, typename)
        return address

    @property
    def storage(self) -> AddressScopedStorage:
        return self._storage

    @property
    def caller(self) -> SdkAddress | None:
        caller = self._caller
        if caller is UNRESOLVED_CALLER:
            caller = self._caller = caller_address(typing.cast(_CallerSource, self._invocation))
        return caller

    def set_invocation(self, invocation: _CallerSource) -> None:
        """Make ``invocation`` the current one (its caller becomes ``caller``)."""
        self._invocation = invocation
        self._caller = UNRESOLVED_CALLER

    def set_caller(self, caller: SdkAddress | None) -> None:
        """Set the caller directly, for contexts driven without a protobuf invocation."""
        self._invocation = None
        self._caller = caller

    def send(self, message: Message) -> None:
        if not isinstance(message, Message):
            raise TypeError(f"send() expects a Message, got {type(message).__name__}")
        if message.target_typename not in VALID_TYPENAMES:
            validate_typename(message.target_typename, "the target typename of a sent message")
        self.messages.append(message)

    def send_after(
        self, duration: timedelta, message: Message, cancellation_token: str | None = ""
    ) -> None:
        if not isinstance(message, Message):
            raise TypeError(f"send_after() expects a Message, got {type(message).__name__}")
        if not isinstance(duration, timedelta):
            raise TypeError(
                f"send_after() expects a timedelta duration, got {type(duration).__name__}"
            )
        validate_typename(message.target_typename, "the target typename of a delayed message")
        milliseconds = int(duration.total_seconds() * 1000.0)
        self.delayed_messages.append(
            DelayedMessage(False, milliseconds, message, cancellation_token)
        )

    def cancel_delayed_message(self, cancellation_token: str) -> None:
        if not cancellation_token or not isinstance(cancellation_token, str):
            raise ValueError(
                "cancel_delayed_message() needs the non-empty cancellation token the message was "
                f"sent with, got {cancellation_token!r}"
            )
        self.delayed_messages.append(DelayedMessage(True, 0, None, cancellation_token))

    def send_egress(self, message: EgressMessage) -> None:
        if not isinstance(message, EgressMessage):
            raise TypeError(f"send_egress() expects an EgressMessage, got {type(message).__name__}")
        if message.typename not in VALID_TYPENAMES:
            validate_typename(message.typename, "the egress typename")
        self.egresses.append(message)
