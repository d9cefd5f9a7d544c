"""``RequestReplyHandler``: turns one serialized ``ToFunction`` batch into a serialized ``FromFunction``.

The response is byte-identical to upstream 3.3's for the same request: zero
bytes when the batch had no effect, state mutations in declaration order,
delayed sends and cancellations in call order in one list.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import typing

from google.protobuf.message import DecodeError

from statefun.context import UNRESOLVED_CALLER, BatchContext
from statefun.core import new_address
from statefun.errors import MalformedRequestError
from statefun import wire
from statefun.messages import EgressMessage, Message, received_message
from statefun.request_reply_pb2 import FromFunction, ToFunction
from statefun.statefun_builder import StatefulFunction, StatefulFunctions
from statefun.storage import resolve_cells

__all__ = ["RequestReplyHandler", "UserFacingContext"]

# Upstream's name for the concrete context.
UserFacingContext = BatchContext

_AFTER_INVOKE = FromFunction.ExpirationSpec.AFTER_INVOKE
_AFTER_WRITE = FromFunction.ExpirationSpec.AFTER_WRITE

_Batch = tuple[StatefulFunction, BatchContext, typing.Any]


class _ThreadLoop:
    """An event loop owned by one thread, closed when the thread's locals are dropped."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()


class _BackgroundLoop:
    """A loop in a daemon thread, for running coroutines while the caller's thread runs a loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="statefun-handle-sync", daemon=True
        )
        self.thread.start()


_thread_loops = threading.local()
_background_loop: _BackgroundLoop | None = None
_background_loop_lock = threading.Lock()


def _run_coroutine(coroutine: typing.Coroutine[typing.Any, typing.Any, typing.Any]) -> None:
    """Run ``coroutine`` to completion from synchronous code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        holder: _ThreadLoop | None = getattr(_thread_loops, "holder", None)
        if holder is None:
            holder = _thread_loops.holder = _ThreadLoop()
        holder.loop.run_until_complete(coroutine)
        return
    global _background_loop
    with _background_loop_lock:
        if _background_loop is None:
            _background_loop = _BackgroundLoop()
        loop = _background_loop.loop
    asyncio.run_coroutine_threadsafe(coroutine, loop).result()


_InvocationBatchRequest = ToFunction.InvocationBatchRequest


def _parse_sole_batch(request_bytes: bytes) -> ToFunction.InvocationBatchRequest | None:
    """Parse the batch directly when the request is exactly one ``invocation`` field.

    That is what the runtime sends; it saves building the ``ToFunction`` around
    it. Anything else (other fields, a repeated field to merge) returns None and
    takes the general path.
    """
    if request_bytes[:2] != b"\xa2\x06":
        return None
    # The batch's length: a varint of at most 4 bytes (the runtime's payload limit is 32 MiB).
    size = 0
    shift = 0
    for position in range(2, min(len(request_bytes), 6)):
        byte = request_bytes[position]
        size |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    else:
        return None
    position += 1
    if position + size != len(request_bytes):
        return None
    batch = _InvocationBatchRequest()
    try:
        batch.ParseFromString(request_bytes[position:])
    except DecodeError:
        return None  # the general path reports it
    return batch


def _parse_request(request_bytes: bytes) -> ToFunction.InvocationBatchRequest:
    if not isinstance(request_bytes, bytes):
        if isinstance(request_bytes, (bytearray, memoryview)):
            request_bytes = bytes(request_bytes)
        else:
            raise TypeError(
                f"the request must be the serialized ToFunction bytes, got "
                f"{type(request_bytes).__name__}"
            )
    if not request_bytes:
        raise MalformedRequestError("empty request body: expected a serialized ToFunction message")
    batch = _parse_sole_batch(request_bytes)
    if batch is not None:
        return batch
    to_function = ToFunction()
    try:
        to_function.ParseFromString(request_bytes)
    except DecodeError as error:
        raise MalformedRequestError(
            f"the request body ({len(request_bytes)} bytes) is not a ToFunction message: {error}"
        ) from None
    if not to_function.HasField("invocation"):
        raise MalformedRequestError(
            f"the request body ({len(request_bytes)} bytes) holds no invocation batch "
            "(ToFunction field 100)"
        )
    return to_function.invocation


def _missing_values_response(missing_specs: typing.Sequence[typing.Any]) -> bytes:
    response = FromFunction()
    missing_values = response.incomplete_invocation_context.missing_values
    for spec in missing_specs:
        missing = missing_values.add(state_name=spec.name, type_typename=spec.type.typename)
        expiration = missing.expiration_spec
        if spec.after_call:
            expiration.mode = _AFTER_INVOKE
            expiration.expire_after_millis = spec.duration
        elif spec.after_write:
            expiration.mode = _AFTER_WRITE
            expiration.expire_after_millis = spec.duration
        else:
            # Upstream always sends the spec, even when empty (`12 00` on the wire).
            expiration.SetInParent()
    return response.SerializeToString()


def _argument(message: Message | EgressMessage) -> bytes:
    typed_value = message._typed_value
    if typed_value is None:
        return wire.typed_value(message._value_typename, message._value)
    return typed_value.SerializeToString()


def _response(context: BatchContext) -> bytes:
    """The serialized ``FromFunction`` for what the batch did; ``b""`` if it did nothing.

    Written out by hand in one pass (see ``statefun.wire``): this runs once per
    batch and its cost is proportional to everything the batch sent.
    """
    parts: list[bytes] = []
    append = parts.append
    length = wire.length
    for name, cell in context._storage._cells.items():
        if cell.dirty:
            entry = wire.persisted_value_mutation(name, cell.tpe.typename, cell.encoded())
            append(b"\x0a" + length(entry) + entry)
    address = wire.address
    argument = _argument
    for message in context.messages:
        target = address(message.target_typename, message.target_id)
        value = argument(message)
        entry = b"\x0a" + length(target) + target + b"\x12" + length(value) + value
        append(b"\x12" + length(entry) + entry)
    for delayed in context.delayed_messages:
        delayed_message = delayed.message
        if delayed_message is None:
            entry = wire.delayed_cancellation(typing.cast(str, delayed.cancellation_token))
        else:
            entry = wire.delayed_invocation(
                delayed.duration,
                address(delayed_message.target_typename, delayed_message.target_id),
                argument(delayed_message),
                delayed.cancellation_token,
            )
        append(b"\x1a" + length(entry) + entry)
    egress_prefix = wire.egress_prefix
    for egress in context.egresses:
        value = argument(egress)
        entry = egress_prefix(egress.typename) + b"\x1a" + length(value) + value
        append(b"\x22" + length(entry) + entry)
    if not parts:
        # Upstream never sets the oneof when nothing happened: the body is empty.
        return b""
    body = b"".join(parts)
    return b"\xa2\x06" + length(body) + body


class RequestReplyHandler:
    """Serves the functions of a ``StatefulFunctions`` registry over the request-reply protocol.

    ``handle_sync`` calls sync functions directly and works inside a running
    event loop; ``handle_async`` awaits async functions and calls sync ones
    directly. Both raise the exceptions documented in ``statefun.errors`` for
    bad requests, and let a function's own exception propagate (the whole
    batch then has no effect).
    """

    __slots__ = ("functions",)

    def __init__(self, functions: StatefulFunctions) -> None:
        if not functions:
            raise ValueError("functions must be provided.")
        if not isinstance(functions, StatefulFunctions):
            raise TypeError(
                f"RequestReplyHandler expects a StatefulFunctions, got {type(functions).__name__}"
            )
        self.functions = functions

    def _begin(self, request_bytes: bytes) -> _Batch | bytes:
        batch = _parse_request(request_bytes)
        target = batch.target
        namespace, name, id = target.namespace, target.type, target.id
        if not namespace or not name:
            raise MalformedRequestError(
                f"the invocation batch has no target function type (got namespace={namespace!r}, "
                f"type={name!r})"
            )
        if not id:
            raise MalformedRequestError(
                f"the invocation batch for {namespace}/{name} has no target id"
            )
        typename = f"{namespace}/{name}"
        function = self.functions.for_typename(typename)
        storage_spec = function.storage_spec
        missing, cells = resolve_cells(storage_spec, batch.state)
        if missing is not None:
            return _missing_values_response(missing)
        storage = storage_spec.make_instance(typename, cells)
        context = BatchContext(new_address(namespace, name, id, typename), storage)
        return function, context, batch.invocations

    def handle_sync(self, request_bytes: bytes) -> bytes:
        """Handle one serialized ``ToFunction`` and return the serialized ``FromFunction``."""
        begun = self._begin(request_bytes)
        if isinstance(begun, bytes):
            return begun
        function, context, invocations = begun
        if function.is_async:
            _run_coroutine(_invoke_all_async(function, context, invocations))
            return _response(context)
        fun = function.fun
        address = context._address
        typename, id = address.typename, address.id
        for invocation in invocations:
            # context.set_invocation(invocation), inlined: this runs per invocation.
            context._invocation = invocation
            context._caller = UNRESOLVED_CALLER
            result = fun(context, received_message(typename, id, invocation.argument))
            if result is not None and inspect.isawaitable(result):
                _run_coroutine(_await(result))
        return _response(context)

    async def handle_async(self, request_bytes: bytes) -> bytes:
        """Handle one serialized ``ToFunction`` and return the serialized ``FromFunction``."""
        begun = self._begin(request_bytes)
        if isinstance(begun, bytes):
            return begun
        function, context, invocations = begun
        if function.is_async:
            await _invoke_all_async(function, context, invocations)
            return _response(context)
        # A sync function is called directly, as upstream does, without an extra coroutine.
        fun = function.fun
        address = context._address
        typename, id = address.typename, address.id
        for invocation in invocations:
            # context.set_invocation(invocation), inlined: this runs per invocation.
            context._invocation = invocation
            context._caller = UNRESOLVED_CALLER
            result = fun(context, received_message(typename, id, invocation.argument))
            if result is not None and inspect.isawaitable(result):
                await result
        return _response(context)


async def _await(awaitable: typing.Awaitable[typing.Any]) -> None:
    await awaitable


async def _invoke_all_async(
    function: StatefulFunction, context: BatchContext, invocations: typing.Any
) -> None:
    fun = function.fun
    address = context._address
    typename, id = address.typename, address.id
    for invocation in invocations:
        context._invocation = invocation
        context._caller = UNRESOLVED_CALLER
        result = fun(context, received_message(typename, id, invocation.argument))
        if result is not None and inspect.isawaitable(result):
            await result
