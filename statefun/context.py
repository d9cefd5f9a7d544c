"""The ``Context`` a function receives, and the concrete context shared by one invocation batch."""

from __future__ import annotations

import abc
import typing
from datetime import timedelta

from statefun.core import VALID_TYPENAMES, SdkAddress, new_address, validate_typename
from statefun.legacy_hints import add_context_hints, context_subscript_error
from statefun.messages import EgressMessage, Message
from statefun.request_reply_pb2 import FromFunction
from statefun.storage import AddressScopedStorage

__all__ = ["Context", "BatchContext", "DelayedMessage", "batch_context", "caller_address"]


class Context(abc.ABC):
    """What a function can see and do while handling a message."""

    __slots__ = ()

    # These explain 2.x-style calls (context['x'], and with add_context_hints below
    # context.state('x'), context.pack_and_send(...)) on a 3.x context.
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


add_context_hints(Context)


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
    context.storage = storage
    context._caller = None
    context._invocation = None
    context.messages = []
    context.delayed_messages = []
    context.egresses = []
    return context


_new = object.__new__
DelayedInvocation = FromFunction.DelayedInvocation


class BatchContext(Context):
    """The context shared by every invocation of one batch; collects what the function does.

    The handler points it at each invocation in turn (``set_invocation``); the
    caller's address is only built if the function asks for it.
    """

    __slots__ = (
        "_address",
        "_target",
        # A plain attribute, not a property as in Context: functions read it for every state
        # access, and a property costs a Python call each time.
        "storage",
        "_caller",
        "_invocation",
        "messages",
        "delayed_messages",
        "egresses",
    )

    def __init__(self, address: SdkAddress | None, storage: AddressScopedStorage) -> None:
        self._address = address
        self._target: tuple[str, str, str, str] | None = None
        self.storage: AddressScopedStorage = storage
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
    def _storage(self) -> AddressScopedStorage:
        # The attribute's earlier name, which statefun.compat reads and replaces.
        return self.storage

    @_storage.setter
    def _storage(self, storage: AddressScopedStorage) -> None:
        self.storage = storage

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
        if type(message) is not Message and not isinstance(message, Message):
            message = _foreign_message(message, "send")
        typename = message.target_typename
        # The type test first: an unhashable typename must fail as upstream's parse did.
        if type(typename) is not str or typename not in VALID_TYPENAMES:
            validate_typename(typename, "the target typename of a sent message")
        self.messages.append(message)

    def send_after(
        self, duration: timedelta, message: Message, cancellation_token: str | None = ""
    ) -> None:
        milliseconds = _milliseconds(duration)
        if type(message) is not Message and not isinstance(message, Message):
            message = _foreign_message(message, "send_after")
        validate_typename(message.target_typename, "the target typename of a delayed message")
        if cancellation_token is not None and type(cancellation_token) is not str:
            cancellation_token = _token(cancellation_token, "send_after")
        self.delayed_messages.append(
            DelayedMessage(False, milliseconds, message, cancellation_token)
        )

    def cancel_delayed_message(self, cancellation_token: str) -> None:
        if type(cancellation_token) is not str:
            cancellation_token = _token(cancellation_token, "cancel_delayed_message")
        if not cancellation_token:
            # Upstream sent it, and the runtime then failed the job with
            # "Can not handle a cancellation request without a cancellation token".
            raise ValueError(
                "cancel_delayed_message() needs the non-empty cancellation token the message was "
                "sent with, got ''"
            )
        self.delayed_messages.append(DelayedMessage(True, 0, None, cancellation_token))

    def send_egress(self, message: EgressMessage) -> None:
        if type(message) is not EgressMessage and not isinstance(message, EgressMessage):
            message = _foreign_egress(message)
        typename = message.typename
        if type(typename) is not str or typename not in VALID_TYPENAMES:
            validate_typename(typename, "the egress typename")
        self.egresses.append(message)


def _milliseconds(duration: timedelta) -> int:
    # Upstream: int(duration.total_seconds() * 1000.0), so anything with total_seconds() works
    # and anything else is an AttributeError.
    try:
        total_seconds = duration.total_seconds
    except AttributeError:
        raise AttributeError(
            f"send_after() expects a timedelta duration, got {type(duration).__name__} "
            f"{duration!r}"
        ) from None
    return int(total_seconds() * 1000.0)


_token_field = DelayedInvocation()


def _token(token: typing.Any, method: str) -> str:
    """A token that is not a ``str``, converted as upstream's protobuf field did (or its error)."""
    try:
        _token_field.cancellation_token = token
    except TypeError:
        raise TypeError(
            f"{method}() expects a str cancellation token, got {type(token).__name__} {token!r}"
        ) from None
    converted: str = _token_field.cancellation_token
    _token_field.Clear()
    return converted


def _attributes(value: typing.Any, names: tuple[str, ...], expected: str) -> list[typing.Any]:
    """``value``'s attributes ``names``; the ``AttributeError`` upstream raised if one is missing.

    Upstream took any object for a message and read these attributes when it
    built the response; here they are read at the call.
    """
    try:
        return [getattr(value, name) for name in names]
    except AttributeError as error:
        raise AttributeError(f"{expected}, got {type(value).__name__}: {error}") from None


def _foreign_message(message: typing.Any, method: str) -> Message:
    """A ``Message`` with the attributes of an object that only looks like one."""
    converted: Message = _new(Message)
    converted.target_typename, converted.target_id, converted._typed_value = _attributes(
        message,
        ("target_typename", "target_id", "typed_value"),
        f"{method}() expects a Message (see message_builder)",
    )
    return converted


def _foreign_egress(message: typing.Any) -> EgressMessage:
    """An ``EgressMessage`` with the attributes of an object that only looks like one."""
    converted: EgressMessage = _new(EgressMessage)
    converted.typename, converted._typed_value = _attributes(
        message,
        ("typename", "typed_value"),
        "send_egress() expects an EgressMessage (see kafka_egress_message, "
        "kinesis_egress_message, egress_message_builder)",
    )
    return converted
