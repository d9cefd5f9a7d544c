"""``RequestReplyHandler``: turns one serialized ``ToFunction`` batch into a serialized ``FromFunction``.

Parsing lives in ``statefun.request_parsing``, response building (byte-identical
to upstream 3.3's) in ``statefun.responses``, and running coroutines from
``handle_sync`` in ``statefun.event_loops``.
"""

from __future__ import annotations

import inspect
import typing

from statefun.context import UNRESOLVED_CALLER, BatchContext, batch_context
from statefun.event_loops import run_coroutine
from statefun.messages import Message, received_message, received_strict_message
from statefun.request_reply_pb2 import TypedValue
from statefun.request_parsing import malformed, parse_request
from statefun.responses import batch_response, missing_values_response
from statefun.statefun_builder import StatefulFunction, StatefulFunctions
from statefun.storage import resolve_cells

__all__ = ["RequestReplyHandler", "UserFacingContext"]

# Upstream's name for the concrete context.
UserFacingContext = BatchContext

_MessageFactory = typing.Callable[[str, str, TypedValue], Message]
# The function, its context, the invocations, the target's typename and id, and what makes
# the message of each invocation.
_Batch = tuple[StatefulFunction, BatchContext, typing.Any, str, str, _MessageFactory]


class RequestReplyHandler:
    """Serves the functions of a ``StatefulFunctions`` registry over the request-reply protocol.

    ``handle_sync`` calls sync functions directly and works inside a running
    event loop; ``handle_async`` awaits async functions and calls sync ones
    directly. Both raise the exceptions documented in ``statefun.errors`` for
    bad requests, and let a function's own exception propagate (the whole
    batch then has no effect).

    ``strict_message_types=True`` makes the functions receive ``StrictMessage``s,
    whose ``as_type``/``as_int``/… refuse a value of another typename; the
    default (``None``) follows the registry's own ``strict_message_types``.
    """

    __slots__ = ("_registry", "_functions", "_strict", "_make_message")

    def __init__(
        self, functions: StatefulFunctions, *, strict_message_types: bool | None = None
    ) -> None:
        if not functions:
            raise ValueError("functions must be provided.")
        if not isinstance(functions, StatefulFunctions) and not hasattr(functions, "for_typename"):
            raise TypeError(
                f"RequestReplyHandler expects a StatefulFunctions, got {type(functions).__name__}"
            )
        self._strict = strict_message_types
        self.functions = functions

    @property
    def functions(self) -> StatefulFunctions:
        return self._registry

    @functions.setter
    def functions(self, functions: StatefulFunctions) -> None:
        self._registry = functions
        # The registry's own dict, read directly per request (for_typename reports misses).
        # Any object with for_typename() serves, as upstream; its lookups then go through it.
        self._functions: dict[str, StatefulFunction] = (
            functions._functions if isinstance(functions, StatefulFunctions) else {}
        )
        strict = self._strict
        if strict is None:
            strict = bool(getattr(functions, "strict_message_types", False))
        self._make_message: _MessageFactory = (
            received_strict_message if strict else received_message
        )

    @property
    def strict_message_types(self) -> bool:
        """Whether functions receive ``StrictMessage``s (see the class docstring)."""
        return self._make_message is received_strict_message

    def __call__(self, request_bytes: bytes) -> bytes:
        """The 2.x calling convention, ``handler(request_bytes)``: the same as ``handle_sync``."""
        return self.handle_sync(request_bytes)

    def _begin(self, request_bytes: bytes) -> _Batch | bytes:
        batch = parse_request(request_bytes)
        target = batch.target
        namespace, name, id = target.namespace, target.type, target.id
        if not namespace and not name and not id:
            raise malformed(
                AttributeError("'NoneType' object has no attribute 'typename'"),
                "the invocation batch has no target address",
            )
        typename = f"{namespace}/{name}"
        function = self._functions.get(typename)
        if function is None:
            if not namespace or not name:
                # Upstream looked the typename up as it was, and raised its KeyError.
                raise malformed(
                    KeyError(typename),
                    f"the invocation batch has no target function type (got "
                    f"namespace={namespace!r}, type={name!r})",
                )
            function = self.functions.for_typename(typename)
        storage_spec = function.storage_spec
        missing, cells = resolve_cells(storage_spec, batch.state)
        if missing is not None:
            return missing_values_response(missing)
        invocations: typing.Sequence[typing.Any] = batch.invocations
        if len(invocations) == 1:
            # Iterating protobuf's repeated field costs about a microsecond more than this.
            invocations = (invocations[0],)
        if not id and invocations:
            # Upstream's Message(...) for the first invocation raised this, before any ran.
            raise malformed(
                ValueError("target_id can not be missing"),
                f"the invocation batch for {typename} has no target id",
            )
        storage = storage_spec.make_instance(typename, cells)
        dialect = function.dialect
        if dialect is None:
            context = batch_context(namespace, name, id, typename, storage)
            return function, context, invocations, typename, id, self._make_message
        # statefun.compat: a function not declared 3.x-only gets the dual context and message.
        context = dialect.begin(function, namespace, name, id, typename, storage, batch.state)
        strict = self._make_message is received_strict_message
        make_message = dialect.make_strict_message if strict else dialect.make_message
        return function, context, invocations, typename, id, make_message

    def handle_sync(self, request_bytes: bytes) -> bytes:
        """Handle one serialized ``ToFunction`` and return the serialized ``FromFunction``."""
        begun = self._begin(request_bytes)
        if isinstance(begun, bytes):
            return begun
        function, context, invocations, typename, id, make_message = begun
        dialect = function.dialect
        try:
            if function.is_async:
                run_coroutine(
                    _invoke_all_async(function, context, invocations, typename, id, make_message)
                )
            else:
                fun = function.fun
                for invocation in invocations:
                    # context.set_invocation(invocation), inlined: this runs per invocation.
                    context._invocation = invocation
                    context._caller = UNRESOLVED_CALLER
                    result = fun(context, make_message(typename, id, invocation.argument))
                    if result is not None and inspect.isawaitable(result):
                        run_coroutine(_await(result))
        except BaseException as error:
            # statefun.compat: a 2.x-style access to an undeclared state ends the batch early.
            if dialect is None or not dialect.absorbs(context, error):
                raise
        return batch_response(context) if dialect is None else dialect.respond(context)

    async def handle_async(self, request_bytes: bytes) -> bytes:
        """Handle one serialized ``ToFunction`` and return the serialized ``FromFunction``."""
        begun = self._begin(request_bytes)
        if isinstance(begun, bytes):
            return begun
        function, context, invocations, typename, id, make_message = begun
        dialect = function.dialect
        try:
            if function.is_async:
                await _invoke_all_async(function, context, invocations, typename, id, make_message)
            else:
                # A sync function is called directly, as upstream does, without an extra coroutine.
                fun = function.fun
                for invocation in invocations:
                    # context.set_invocation(invocation), inlined: this runs per invocation.
                    context._invocation = invocation
                    context._caller = UNRESOLVED_CALLER
                    result = fun(context, make_message(typename, id, invocation.argument))
                    if result is not None and inspect.isawaitable(result):
                        await result
        except BaseException as error:
            # statefun.compat: a 2.x-style access to an undeclared state ends the batch early.
            if dialect is None or not dialect.absorbs(context, error):
                raise
        return batch_response(context) if dialect is None else dialect.respond(context)


async def _await(awaitable: typing.Awaitable[typing.Any]) -> None:
    await awaitable


async def _invoke_all_async(
    function: StatefulFunction,
    context: BatchContext,
    invocations: typing.Any,
    typename: str,
    id: str,
    make_message: _MessageFactory,
) -> None:
    fun = function.fun
    for invocation in invocations:
        context._invocation = invocation
        context._caller = UNRESOLVED_CALLER
        result = fun(context, make_message(typename, id, invocation.argument))
        if result is not None and inspect.isawaitable(result):
            await result
