"""Helpers shared by the SDK tests: build ToFunction requests and read FromFunction responses."""

from __future__ import annotations

import typing

from statefun.request_reply_pb2 import Address, FromFunction, ToFunction, TypedValue


def typed(typename: str, value: bytes | None) -> TypedValue:
    if value is None:
        return TypedValue(typename=typename, has_value=False)
    return TypedValue(typename=typename, has_value=True, value=value)


def request(
    typename: str,
    id: str,
    arguments: typing.Sequence[TypedValue],
    state: dict[str, TypedValue | None] | None = None,
    callers: typing.Sequence[Address | None] | None = None,
) -> bytes:
    """A serialized ToFunction; a state mapped to None is attached without a value."""
    namespace, name = typename.rsplit("/", 1)
    to_function = ToFunction()
    batch = to_function.invocation
    batch.target.CopyFrom(Address(namespace=namespace, type=name, id=id))
    for state_name, value in (state or {}).items():
        persisted = batch.state.add(state_name=state_name)
        if value is not None:
            persisted.state_value.CopyFrom(value)
    for position, argument in enumerate(arguments):
        invocation = batch.invocations.add(argument=argument)
        caller = callers[position] if callers else None
        if caller is not None:
            invocation.caller.CopyFrom(caller)
    return to_function.SerializeToString()


def response(data: bytes) -> FromFunction:
    parsed = FromFunction()
    parsed.ParseFromString(data)
    return parsed
