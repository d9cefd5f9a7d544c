"""The context of a function that is not 3.x-only: the 3.x context plus the 2.x calls.

``DualContext`` is the 3.x batch context (``storage``, ``address``,
``caller``, ``cancel_delayed_message`` and the 3.x forms of ``send``,
``send_after`` and ``send_egress`` behave exactly as there) with the 2.x
members added: ``send(typename, id, any)``, ``pack_and_send``, ``reply``,
``pack_and_reply``, ``send_after(delay, typename, id, any)``,
``pack_and_send_after``, ``send_egress(typename, any)``,
``pack_and_send_egress``, ``context['x']`` (get, set, ``del``, ``in``) and
``state('x')``. The shared names tell the two forms apart by their arguments: a
call that binds to the 3.x signature is a 3.x call, passed on unchanged (so 3.x
code, right or wrong, sees exactly the 3.x context); one that binds to the 2.x
signature is a 2.x call; a call that fits neither is a ``TypeError`` showing both.

Every 2.x call becomes the 3.x call with ``TypedValue{typename = Any.type_url,
value = Any.value}``, so the 3.x handler builds the response. A 2.x-style
access to a state the function has not declared declares it (see
``statefun.compat.dialect``).
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from datetime import timedelta

from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message as ProtobufMessage

from statefun.compat.address import DualAddress, dual_address
from statefun.compat.disguise import presented_as
from statefun.compat.egress import egress_typename
from statefun.compat.envelope import as_envelope, packed, typed_value_of
from statefun.compat.state import AnyStateHandle, write_any
from statefun.context import BatchContext
from statefun.core import SdkAddress, validate_typename
from statefun.messages import EgressMessage, Message
from statefun.request_reply_pb2 import TypedValue
from statefun.storage import Cell

__all__ = ["DualContext"]

_send = BatchContext.send
# No argument given (a positional-only parameter cannot say so otherwise).
_NOTHING: typing.Any = object()
_send_after = BatchContext.send_after
_send_egress = BatchContext.send_egress


class _StateSource(typing.Protocol):
    """What the context asks when a 2.x-style access names a state it does not hold."""

    def discover(self, context: DualContext, name: object) -> Cell[typing.Any]: ...


def _typed_value(message: object, method: str) -> TypedValue:
    envelope = as_envelope(message, f"{method}()", f"use pack_and_{method}()")
    return typed_value_of(envelope, f"{method}()")


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


def _legacy_delay(first: object, third: object) -> bool:
    """Whether a 2.x ``send_after`` has its delay first (the API) or third (the 2.x docs)."""
    return isinstance(first, timedelta) or isinstance(third, timedelta)


def _signature(*names: str) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(name, kind) for name in names])


def _current_signature(method: typing.Callable[..., object]) -> inspect.Signature:
    """The 3.x context method's own signature, without ``self``: what a 3.x call binds to."""
    signature = inspect.signature(method)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


@dataclass(frozen=True)
class _CallForms:
    """The 3.x and the 2.x form of one context method, and how to tell a call's form.

    A call is 3.x if it binds to the 3.x signature; it is 2.x if it binds to the 2.x
    one and ``legacy_fits`` its arguments; otherwise it is a ``TypeError`` showing both.
    """

    method: str
    current: inspect.Signature
    current_shown: str
    legacy: inspect.Signature
    legacy_shown: str
    legacy_fits: typing.Callable[[dict[str, typing.Any]], bool]

    def legacy_arguments(
        self, args: tuple[typing.Any, ...], kwargs: dict[str, typing.Any]
    ) -> dict[str, typing.Any] | None:
        """The 2.x arguments by name; ``None`` for a 3.x call (one that binds to the 3.x form)."""
        try:
            self.current.bind(*args, **kwargs)
        except TypeError:
            pass
        else:
            return None
        try:
            bound = self.legacy.bind(*args, **kwargs)
        except TypeError:
            bound = None
        if bound is not None and self.legacy_fits(bound.arguments):
            return dict(bound.arguments)
        shown = ", ".join(
            [type(value).__name__ for value in args]
            + [f"{key}={type(value).__name__}" for key, value in kwargs.items()]
        )
        raise TypeError(
            f"{self.method}() takes either the 3.x form {self.method}({self.current_shown}) or "
            f"the 2.x form {self.method}({self.legacy_shown}); got {self.method}({shown})"
        )


_SEND = _CallForms(
    "send",
    _current_signature(_send),
    "message: statefun.Message",
    _signature("typename", "id", "message"),
    "typename: str, id: str, message: google.protobuf.Any",
    lambda arguments: isinstance(arguments["typename"], str),
)
_SEND_AFTER = _CallForms(
    "send_after",
    _current_signature(_send_after),
    "duration: timedelta, message: statefun.Message, cancellation_token: str = ''",
    _signature("delay", "typename", "id", "message"),
    "delay: timedelta, typename: str, id: str, message: google.protobuf.Any",
    lambda arguments: _legacy_delay(arguments["delay"], arguments["id"]),
)
_SEND_EGRESS = _CallForms(
    "send_egress",
    _current_signature(_send_egress),
    "message: statefun.EgressMessage",
    _signature("typename", "message"),
    "typename: str, message: google.protobuf.Any",
    lambda arguments: isinstance(arguments["typename"], str),
)


@presented_as(BatchContext)
class DualContext(BatchContext):
    """The batch context of a function whose signature does not say 3.x: both dialects.

    It presents itself as the 3.x class (class name, ``repr``, ``isinstance``).
    """

    __slots__ = ("_state_source", "_function_typename", "_dual_target", "_dual_address", "_callers")

    _state_source: _StateSource
    _function_typename: str
    _dual_target: tuple[str, str, str]
    _dual_address: DualAddress | None
    _callers: tuple[SdkAddress, DualAddress] | None

    # -- addresses: SdkAddress that also answer 2.x's type, identity and typename() -------

    @property
    def address(self) -> DualAddress:
        address = self._dual_address
        if address is None:
            address = self._dual_address = dual_address(*self._dual_target)
        return address

    @property
    def caller(self) -> DualAddress | None:
        """The sender, ``None`` for a message from an ingress (as in 3.x)."""
        caller = super().caller
        if caller is None or type(caller) is DualAddress:
            return caller
        known = self._callers
        if known is not None and known[0] is caller:
            return known[1]
        dual = dual_address(caller.namespace, caller.name, caller.id)
        self._callers = (caller, dual)
        return dual

    # -- 2.x state -------------------------------------------------------------------------

    def _cell(self, name: object) -> Cell[typing.Any]:
        cell = self._storage._cells.get(name)  # type: ignore[call-overload]
        if cell is None:
            return self._state_source.discover(self, name)
        return typing.cast(Cell[typing.Any], cell)

    def state(self, name: str) -> AnyStateHandle:
        """The 2.x handle of the state ``name`` (``.value``, ``.unpack``, ``.pack``, ...)."""
        cell = self._storage._cells.get(name)
        return AnyStateHandle(
            self._state_source.discover(self, name) if cell is None else cell, name
        )

    # Context declares these NoReturn: on a 3.x context they explain the 2.x call.
    def __getitem__(self, name: str) -> Any | None:  # type: ignore[override]
        return typing.cast(typing.Optional[Any], self._cell(name).get())

    def __setitem__(self, name: str, value: Any) -> None:  # type: ignore[override]
        write_any(self._cell(name), name, value)

    def __delitem__(self, name: str) -> None:  # type: ignore[override]
        self._cell(name).delete()

    def __contains__(self, name: object) -> bool:  # type: ignore[override]
        """Whether the state ``name`` has a value."""
        return self._cell(name).get() is not None

    # -- messages: the 3.x form, or else the 2.x one -------------------------------------
    #
    # The usual shapes are told apart by position alone (3.x: send(message),
    # send_after(duration, message[, token]), send_egress(message); 2.x: three, four and two
    # positional arguments); keyword calls and odd shapes go through _CallForms. The first
    # argument is positional-only so that send(message) is one check away from the 3.x
    # method: this runs for every message a 3.x-style body sends.

    def send(
        self, first: typing.Any = _NOTHING, /, *rest: typing.Any, **kwargs: typing.Any
    ) -> None:
        """``send(message)`` (3.x) or ``send(typename, id, any)`` (2.x)."""
        if not rest and not kwargs and first is not _NOTHING:
            _send(self, first)
        elif len(rest) == 2 and not kwargs and isinstance(first, str):
            self._send_2x(first, rest[0], rest[1])
        else:
            args = rest if first is _NOTHING else (first, *rest)
            arguments = _SEND.legacy_arguments(args, kwargs)
            if arguments is None:
                _send(self, *args, **kwargs)
            else:
                self._send_2x(arguments["typename"], arguments["id"], arguments["message"])

    def _send_2x(self, typename: object, id: object, message: object) -> None:
        target = validate_typename(typename, "the target typename of send()")
        _send(self, Message(target, _target_id(id, "send"), _typed_value(message, "send")))

    def pack_and_send(self, typename: str, id: str, message: ProtobufMessage) -> None:
        """Pack ``message`` into an ``Any`` and ``send`` it (2.x)."""
        self._send_2x(typename, id, packed(message, "pack_and_send()"))

    def reply(self, message: Any) -> None:
        """Send an ``Any`` back to the function that sent the current message (2.x)."""
        value = _typed_value(message, "reply")
        caller = self.caller
        if caller is None:
            raise ValueError(
                "reply(): the current message came from an ingress, so there is no caller to "
                "reply to; use send(typename, id, message) with an explicit address"
            )
        _send(self, Message(str(caller.typename), caller.id, value))

    def pack_and_reply(self, message: ProtobufMessage) -> None:
        self.reply(packed(message, "pack_and_reply()"))

    def send_after(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        """``send_after(duration, message[, token])`` (3.x) or ``(delay, typename, id, any)`` (2.x)."""
        if 2 <= len(args) <= 3 and not kwargs:
            _send_after(self, *args)
        elif len(args) == 4 and not kwargs and _legacy_delay(args[0], args[2]):
            self._send_after_2x(*args)
        else:
            arguments = _SEND_AFTER.legacy_arguments(args, kwargs)
            if arguments is None:
                _send_after(self, *args, **kwargs)
            else:
                self._send_after_2x(
                    arguments["delay"], arguments["typename"], arguments["id"], arguments["message"]
                )

    def _send_after_2x(
        self,
        delay: object,
        typename: object,
        id: object,
        message: object,
        method: str = "send_after",
    ) -> None:
        duration, target, target_id = _delay_and_target(delay, typename, id, method)
        _send_after(self, duration, Message(target, target_id, _typed_value(message, method)))

    def pack_and_send_after(
        self,
        delay: timedelta | str,
        typename: str | timedelta,
        id: str | timedelta,
        message: ProtobufMessage,
    ) -> None:
        """``send_after`` of ``message`` packed into an ``Any`` (2.x; either argument order)."""
        envelope = packed(message, "pack_and_send_after()")
        self._send_after_2x(delay, typename, id, envelope, "pack_and_send_after")

    def send_egress(
        self, first: typing.Any = _NOTHING, /, *rest: typing.Any, **kwargs: typing.Any
    ) -> None:
        """``send_egress(message)`` (3.x) or ``send_egress(typename, any)`` (2.x).

        A 2.x Kafka/Kinesis record reaches the 3.x generic egress typename.
        """
        if not rest and not kwargs and first is not _NOTHING:
            _send_egress(self, first)
        elif len(rest) == 1 and not kwargs and isinstance(first, str):
            self._send_egress_2x(first, rest[0])
        else:
            args = rest if first is _NOTHING else (first, *rest)
            arguments = _SEND_EGRESS.legacy_arguments(args, kwargs)
            if arguments is None:
                _send_egress(self, *args, **kwargs)
            else:
                self._send_egress_2x(arguments["typename"], arguments["message"])

    def _send_egress_2x(self, typename: object, message: object) -> None:
        target = validate_typename(typename, "the egress typename of send_egress()")
        value = _typed_value(message, "send_egress")
        value.typename = egress_typename(value.typename)
        _send_egress(self, EgressMessage(target, value))

    def pack_and_send_egress(self, typename: str, message: ProtobufMessage) -> None:
        self._send_egress_2x(typename, packed(message, "pack_and_send_egress()"))
