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

from statefun.context import BatchContext
from statefun.core import SdkAddress, parse_typename
from statefun.errors import MalformedRequestError
from statefun.messages import Message
from statefun.request_reply_pb2 import Address, FromFunction, ToFunction, TypedValue
from statefun.statefun_builder import StatefulFunction, StatefulFunctions
from statefun.storage import AddressScopedStorage, resolve

__all__ = ["RequestReplyHandler", "UserFacingContext"]

# Upstream's name for the concrete context.
UserFacingContext = BatchContext

_MODIFY = FromFunction.PersistedValueMutation.MODIFY
_DELETE = FromFunction.PersistedValueMutation.DELETE
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


def _caller_address(invocation: ToFunction.Invocation) -> SdkAddress | None:
    caller = invocation.caller
    namespace, name, id = caller.namespace, caller.type, caller.id
    if not namespace and not name and not id:
        return None
    return SdkAddress(namespace, name, id, f"{namespace}/{name}")


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


def _target(typename: str, id: str) -> Address:
    namespace, name = parse_typename(typename)
    return Address(namespace=namespace, type=name, id=id)


def _response(context: BatchContext) -> bytes:
    cells = context.storage._cells
    dirty = [(name, cell) for name, cell in cells.items() if cell.dirty]
    messages = context.messages
    delayed_messages = context.delayed_messages
    egresses = context.egresses
    if not (dirty or messages or delayed_messages or egresses):
        # Upstream never sets the oneof when nothing happened: the body is empty.
        return b""
    response = FromFunction()
    result = response.invocation_result
    if dirty:
        mutations = result.state_mutations
        for name, cell in dirty:
            data = cell.encoded()
            if data is None:
                mutations.add(mutation_type=_DELETE, state_name=name)
            else:
                mutations.add(
                    mutation_type=_MODIFY,
                    state_name=name,
                    state_value=TypedValue(typename=cell.tpe.typename, has_value=True, value=data),
                )
    if messages:
        outgoing = result.outgoing_messages
        for message in messages:
            outgoing.add(
                target=_target(message.target_typename, message.target_id),
                argument=message.typed_value,
            )
    if delayed_messages:
        delayed_invocations = result.delayed_invocations
        for delayed in delayed_messages:
            if delayed.is_cancellation:
                delayed_invocations.add(
                    is_cancellation_request=True, cancellation_token=delayed.cancellation_token
                )
            else:
                message = typing.cast(Message, delayed.message)
                entry = delayed_invocations.add(
                    delay_in_ms=delayed.duration,
                    target=_target(message.target_typename, message.target_id),
                    argument=message.typed_value,
                )
                if delayed.cancellation_token:
                    entry.cancellation_token = delayed.cancellation_token
    if egresses:
        outgoing_egresses = result.outgoing_egresses
        for egress in egresses:
            namespace, name = parse_typename(egress.typename)
            outgoing_egresses.add(
                egress_namespace=namespace, egress_type=name, argument=egress.typed_value
            )
    return response.SerializeToString()


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
            raise MalformedRequestError(f"the invocation batch for {namespace}/{name} has no target id")
        typename = f"{namespace}/{name}"
        function = self.functions.for_typename(typename)
        resolution = resolve(function.storage_spec, typename, batch.state)
        if resolution.missing_specs:
            return _missing_values_response(resolution.missing_specs)
        storage = typing.cast(AddressScopedStorage, resolution.storage)
        context = BatchContext(SdkAddress(namespace, name, id, typename), storage)
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
            context._caller = _caller_address(invocation)
            result = fun(context, Message(typename, id, invocation.argument))
            if result is not None and inspect.isawaitable(result):
                _run_coroutine(_await(result))
        return _response(context)

    async def handle_async(self, request_bytes: bytes) -> bytes:
        """Handle one serialized ``ToFunction`` and return the serialized ``FromFunction``."""
        begun = self._begin(request_bytes)
        if isinstance(begun, bytes):
            return begun
        function, context, invocations = begun
        await _invoke_all_async(function, context, invocations)
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
        context._caller = _caller_address(invocation)
        result = fun(context, Message(typename, id, invocation.argument))
        if result is not None and inspect.isawaitable(result):
            await result
