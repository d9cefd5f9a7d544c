"""Which dialect a function speaks, and turning a 2.x-style function into a 3.x one.

The rule, first match wins:

1. ``specs=`` given: 3.x (``specs=`` together with ``states=`` is an error).
2. ``states=`` given (even ``[]``): 2.x.
3. The message parameter is annotated ``statefun.Message``, or the context
   parameter ``statefun.Context``: 3.x.
4. The message parameter is annotated with a protobuf message class, a union
   of them, or ``google.protobuf.any_pb2.Any``: 2.x.
5. Otherwise the registry's default: **dual** for ``statefun.StatefulFunctions``,
   2.x for ``statefun.compat.StatefulFunctions``.

A 3.x function runs exactly as in upstream 3.x. A dual function gets a
``DualMessage`` and a ``DualContext``: the 3.x objects with the 2.x members
added. A 2.x function is wrapped in a plain ``(context, message)`` function (a
coroutine function if the original is one), which unpacks the message by type
hint and hands the 2.x function the ``DualContext``. Dual and 2.x functions
declare the states they use in 2.x style on first use (``statefun.compat.dialect``).
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass

from google.protobuf.any_pb2 import Any

from statefun.compat.dialect import DUAL, LEGACY, FunctionDialect, dual_dialect, legacy_dialect
from statefun.compat.dispatch import (
    MessageHint,
    annotation_of,
    envelope_of,
    message_hint,
    message_parameters,
    payload_for,
    protobuf_hint_classes,
)
from statefun.compat.errors import LegacyFunctionError
from statefun.compat.state import StateDeclaration, state_specs
from statefun.context import Context
from statefun.core import ValueSpec
from statefun.messages import Message

__all__ = [
    "LEGACY_FUNCTION_ATTRIBUTE",
    "CURRENT",
    "DUAL",
    "LEGACY",
    "function_style",
    "adapt_legacy_function",
    "route_function",
]

CURRENT = "3.x"
"""A 3.x function: the plain 3.x message and context, as in upstream 3.x."""

LEGACY_FUNCTION_ATTRIBUTE = "__statefun_legacy_function__"

CurrentFunction = typing.Callable[[Context, Message], typing.Any]
Specs = typing.Optional[typing.Sequence[ValueSpec[typing.Any]]]


@dataclass(frozen=True)
class _Parameters:
    """The context and message parameters of a function, when it has exactly two positional ones."""

    context: inspect.Parameter
    message: inspect.Parameter


def _call_parameters(fun: typing.Callable[..., object]) -> _Parameters | None:
    parameters = message_parameters(fun)
    if parameters is None:
        return None
    positional = [
        parameter
        for parameter in parameters
        if parameter.kind
        in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) < 2:
        return None
    return _Parameters(context=positional[0], message=positional[1])


def _is_subclass(annotation: object, base: type) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, base)


def function_style(
    fun: typing.Callable[..., object],
    specs: Specs,
    states: typing.Iterable[StateDeclaration] | None,
    legacy_by_default: bool,
) -> str:
    """``CURRENT``, ``DUAL`` or ``LEGACY`` for ``fun`` (see the module docstring for the rule)."""
    if specs is not None:
        return CURRENT
    if states is not None:
        return LEGACY
    default = LEGACY if legacy_by_default else DUAL
    parameters = _call_parameters(fun)
    if parameters is None:
        return default
    message_annotation = annotation_of(parameters.message)
    if _is_subclass(message_annotation, Message) or _is_subclass(
        annotation_of(parameters.context), Context
    ):
        return CURRENT
    if protobuf_hint_classes(message_annotation) is not None:
        return LEGACY
    return default


def _is_coroutine_callable(fun: typing.Callable[..., object]) -> bool:
    while isinstance(fun, functools.partial):
        fun = fun.func
    if inspect.iscoroutinefunction(fun):
        return True
    return not inspect.isfunction(fun) and inspect.iscoroutinefunction(
        getattr(type(fun), "__call__", None)
    )


def _legacy_hint(typename: str, fun: typing.Callable[..., object]) -> MessageHint:
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError):
        return MessageHint(classes=(), accepts_envelope=True)
    try:
        signature.bind(None, None)
    except TypeError:
        raise LegacyFunctionError(
            f"the 2.x-style function {typename} must take two arguments, a context and a "
            f"message, but takes {list(signature.parameters)}"
        ) from None
    parameters = _call_parameters(fun)
    if parameters is None:
        return MessageHint(classes=(), accepts_envelope=True)
    annotation = annotation_of(parameters.message)
    hint = message_hint(annotation)
    if hint is None:
        shown = (
            annotation
            if isinstance(annotation, str)
            else getattr(annotation, "__qualname__", repr(annotation))
        )
        unresolved = (
            " (a string hint that could not be resolved: define or import the class at module "
            "level)"
            if isinstance(annotation, str)
            else ""
        )
        raise LegacyFunctionError(
            f"the message parameter {parameters.message.name!r} of the 2.x-style function "
            f"{typename} is annotated {shown}{unresolved}; a 2.x message hint must be a protobuf "
            "message class, a Union of them, or google.protobuf.any_pb2.Any. A 3.x function "
            "takes message: statefun.Message and declares state with specs=[ValueSpec(...)]"
        )
    return hint


def _mark(adapter: typing.Callable[..., typing.Any], fun: typing.Callable[..., object]) -> None:
    setattr(adapter, LEGACY_FUNCTION_ATTRIBUTE, fun)
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        value = getattr(fun, attribute, None)
        if value is not None:
            setattr(adapter, attribute, value)


def adapt_legacy_function(
    typename: str,
    fun: typing.Callable[..., object],
    states: typing.Iterable[StateDeclaration] | None,
) -> tuple[CurrentFunction, list[ValueSpec[Any]]]:
    """The 3.x function running the 2.x ``fun``, and the specs of its ``Any`` states."""
    if fun is None or not callable(fun):
        raise LegacyFunctionError(
            f"the function registered for {typename} is not callable: {fun!r}"
        )
    specs = state_specs(typename, states if states is not None else ())
    hint = _legacy_hint(typename, fun)

    # The context is the handler's DualContext (the function's dialect is LEGACY).
    adapter: CurrentFunction
    if _is_coroutine_callable(fun):

        async def run_legacy_coroutine(context: Context, message: Message) -> None:
            payload = payload_for(hint, envelope_of(message.typed_value), typename)
            await typing.cast(typing.Awaitable[object], fun(context, payload))

        adapter = run_legacy_coroutine
    else:

        def run_legacy_function(context: Context, message: Message) -> None:
            result = fun(context, payload_for(hint, envelope_of(message.typed_value), typename))
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise LegacyFunctionError(
                    f"the function {typename} returned an awaitable but is not declared "
                    "'async def'; declare it async so the handler awaits it"
                )

        adapter = run_legacy_function
    _mark(adapter, fun)
    return adapter, specs


def route_function(
    typename: str,
    fun: typing.Callable[..., object],
    specs: Specs,
    states: typing.Iterable[StateDeclaration] | None,
    legacy_by_default: bool = False,
) -> tuple[typing.Callable[..., typing.Any], Specs, FunctionDialect | None]:
    """What the 3.x registry stores for ``fun``: the function, its specs and its dialect hook.

    ``None`` as the hook means a 3.x function; a 2.x function is replaced by its adapter
    and the specs of its ``Any`` states.
    """
    if specs is not None and states is not None:
        raise ValueError(
            f"{typename}: give either specs= (3.x ValueSpecs) or states= (2.x Any states), not both"
        )
    if fun is None:
        return fun, specs, None
    if hasattr(fun, LEGACY_FUNCTION_ATTRIBUTE):
        # Already an adapter (registered again, or by statefun.compat.StatefulFunctions).
        return fun, specs, legacy_dialect()
    style = function_style(fun, specs, states, legacy_by_default)
    if style == CURRENT:
        return fun, specs, None
    if style == DUAL:
        return fun, specs, dual_dialect()
    adapter, any_specs = adapt_legacy_function(typename, fun, states)
    return adapter, any_specs, legacy_dialect()
