"""3.x code in an unannotated function sees exactly what it sees with 3.x annotations.

An unannotated function gets the dual message and context; an annotated one
(``context: Context, message: Message``) the plain 3.x objects, whose
behaviour tests/statefun pins to upstream 3.3.0. Each body below is 3.x code,
right or wrong; it runs both ways on the same requests, and everything it
observes (values, ``repr`` s, errors with their text) and the response bytes (or
the exception leaving the handler) must be identical.
"""

from __future__ import annotations

import asyncio
import re
import typing
from datetime import timedelta

import pytest
from compat_support import User, address, to_function, typed

from statefun import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    SdkAddress,
    StatefulFunctions,
    StringType,
    egress_message_builder,
    kafka_egress_message,
    kinesis_egress_message,
    make_protobuf_type,
    message_builder,
)
from statefun.request_reply_pb2 import TypedValue

Seen = list[object]
Body = typing.Callable[[typing.Any, typing.Any, Seen], None]
ANN = User(user_id="u1", name="Ann")
UserType = make_protobuf_type(User)


def attempt(seen: Seen, call: typing.Callable[[], object]) -> None:
    """Record what ``call`` returns, or the type and text of what it raises."""
    try:
        seen.append(call())
    except Exception as error:
        seen.append((type(error).__name__, str(error)))


def route_to_caller(context: typing.Any, message: typing.Any, seen: Seen) -> None:
    if context.caller is None:
        seen.append("from an ingress")
        return
    context.send(
        message_builder(
            target_typename=context.caller.typename,
            target_id=context.caller.id,
            str_value=f"hello {message.as_string()}",
        )
    )
    context.send_egress(kafka_egress_message("example/out", "topic", message.as_string(), key="k"))
    context.send_egress(kinesis_egress_message("example/kin", "stream", "v", "pk"))
    context.send_egress(egress_message_builder("example/custom", 5, IntType))


def keyword_calls(context: typing.Any, message: typing.Any, seen: Seen) -> None:
    context.send(message=message_builder("example/a", "1", int_value=1))
    context.send_after(
        duration=timedelta(seconds=3),
        message=message_builder("example/a", "2", int_value=2),
        cancellation_token="tok",
    )
    context.send_after(
        timedelta(milliseconds=5), message_builder("example/a", "3", bool_value=True)
    )
    context.send_after(timedelta(0), message_builder("example/a", "4", long_value=4), None)
    context.cancel_delayed_message(cancellation_token="tok")
    context.send_egress(message=kafka_egress_message("example/out", "t", b"raw"))


def observe_everything(context: typing.Any, message: typing.Any, seen: Seen) -> None:
    me = context.address
    seen += [repr(me), str(me), me == SdkAddress("example", "fn", "Ann", "example/fn"), hash(me)]
    seen += [me.namespace, me.name, me.id, me.typename, isinstance(me, SdkAddress)]
    caller = context.caller
    seen += [caller is None, repr(caller)]
    if caller is not None:
        seen += [
            caller.typename,
            caller.id,
            caller == SdkAddress(*caller.typename.split("/"), caller.id, caller.typename),
        ]
    seen += [type(context).__name__, isinstance(context, Context), repr(context)]
    seen += [repr(message), str(message), type(message).__name__, isinstance(message, Message)]
    seen += [message.target_typename, message.target_id, message.value_typename()]
    seen += [message.raw_value(), message.typed_value, message.is_string(), message.is_int()]
    seen += [message.is_type(UserType), hasattr(message, "as_type"), hasattr(context, "storage")]
    for accessor in ("as_string", "as_int", "as_long", "as_bool", "as_double", "as_float"):
        attempt(seen, getattr(message, accessor))
    attempt(seen, lambda: message.as_type(UserType))
    seen.append(repr(context.storage))


def wrong_3x_code(context: typing.Any, message: typing.Any, seen: Seen) -> None:
    attempt(seen, lambda: context.storage.seen)
    attempt(seen, lambda: setattr(context.storage, "seen", 1))
    attempt(seen, lambda: delattr(context.storage, "seen"))
    attempt(seen, lambda: message.nonsense)
    attempt(seen, lambda: context.nonsense)
    attempt(seen, lambda: context.send("not a message"))
    attempt(seen, lambda: context.send(None))
    attempt(seen, lambda: context.send(message=42))
    attempt(seen, lambda: context.send_after(5, message_builder("example/a", "1", int_value=1)))
    attempt(seen, lambda: context.send_after(timedelta(1), "not a message"))
    attempt(seen, lambda: context.send_after(timedelta(1), "not a message", "token"))
    attempt(seen, lambda: context.send_egress("not an egress message"))
    attempt(seen, lambda: context.send_egress(message=None))
    attempt(seen, lambda: context.cancel_delayed_message(""))
    attempt(seen, lambda: context.send(message_builder("noslash", "1", int_value=1)))
    attempt(seen, lambda: message_builder("example/a", "1"))
    attempt(seen, lambda: message_builder("example/a", "1", nonsense=1))


def raises_after_sending(context: typing.Any, message: typing.Any, seen: Seen) -> None:
    context.send(message_builder("example/a", "1", int_value=1))
    raise KeyError("the user's own error")


def bad_typename_at_response(context: typing.Any, message: typing.Any, seen: Seen) -> None:
    context.send_egress(kafka_egress_message("noslash", "topic", "v"))


BODIES = [
    route_to_caller,
    keyword_calls,
    observe_everything,
    wrong_3x_code,
    raises_after_sending,
    bad_typename_at_response,
]

INVOCATIONS = [
    [(None, typed(ANN))],
    [
        (
            address("example/caller", "c1"),
            TypedValue(typename=StringType.typename, has_value=True, value=b"\x0a\x03Ann"),
        )
    ],
    [
        (
            address("example/caller", "c1"),
            TypedValue(typename=StringType.typename, has_value=True, value=b"\x0a\x03Bob"),
        ),
        (None, TypedValue(typename=StringType.typename, has_value=False)),
        (
            address("other/caller", "c2"),
            TypedValue(typename=IntType.typename, has_value=True, value=b"\x0d\x05\x00\x00\x00"),
        ),
    ],
]


def registries(
    body: Body, seen: Seen, is_async: bool
) -> tuple[StatefulFunctions, StatefulFunctions]:
    annotated, unannotated = StatefulFunctions(), StatefulFunctions()
    if is_async:

        async def current_async(context: Context, message: Message) -> None:
            await asyncio.sleep(0)
            seen.append("called")
            body(context, message, seen)

        async def plain_async(context, message):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0)
            seen.append("called")
            body(context, message, seen)

        annotated.register("example/fn", current_async)
        unannotated.register("example/fn", plain_async)
    else:

        def current(context: Context, message: Message) -> None:
            seen.append("called")
            body(context, message, seen)

        def plain(context, message):  # type: ignore[no-untyped-def]
            seen.append("called")
            body(context, message, seen)

        annotated.register("example/fn", current)
        unannotated.register("example/fn", plain)
    assert annotated.for_typename("example/fn").dialect is None
    assert unannotated.for_typename("example/fn").dialect is not None
    return annotated, unannotated


def outcome(functions: StatefulFunctions, request: bytes, entry: str) -> object:
    handler = RequestReplyHandler(functions)
    try:
        if entry == "handle_async":
            return asyncio.run(handler.handle_async(request))
        return handler.handle_sync(request)
    except Exception as error:
        return type(error).__name__, str(error)


def normalized(seen: Seen) -> list[object]:
    """Object ids differ between the two runs; everything else must not."""
    return [re.sub(r"0x[0-9a-f]+", "0x…", item) if isinstance(item, str) else item for item in seen]


@pytest.mark.parametrize("entry", ["handle_sync", "handle_async"])
@pytest.mark.parametrize("is_async", [False, True], ids=["def", "async-def"])
@pytest.mark.parametrize("invocations", INVOCATIONS, ids=["ingress", "caller", "batch"])
@pytest.mark.parametrize("body", BODIES, ids=[body.__name__ for body in BODIES])
def test_unannotated_3x_code_behaves_as_annotated_3x_code(
    body: Body, invocations: typing.Any, is_async: bool, entry: str
) -> None:
    request = to_function("example/fn", "Ann", invocations)
    seen_annotated: Seen = []
    seen_unannotated: Seen = []
    annotated, _ = registries(body, seen_annotated, is_async)
    _, unannotated = registries(body, seen_unannotated, is_async)

    expected = outcome(annotated, request, entry)
    actual = outcome(unannotated, request, entry)

    assert actual == expected
    assert normalized(seen_unannotated) == normalized(seen_annotated)
    assert seen_annotated.count("called") >= 1
