"""Helpers shared by the SDK tests: build ToFunction requests and read FromFunction responses."""

from __future__ import annotations

import logging
import random
import typing
import urllib.error
import urllib.request

from statefun import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    message_builder,
)
from statefun.request_reply_pb2 import Address, FromFunction, ToFunction, TypedValue
from statefun.utils import to_typed_value


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


# --- A small scenario run against every serving adapter -------------------------------------


# A limit small enough that the scenario can exceed it cheaply.
SCENARIO_LIMIT = 4096

Post = typing.Callable[[bytes], tuple[int, str, bytes]]


def scenario_handler() -> RequestReplyHandler:
    functions = StatefulFunctions()

    @functions.bind("ex/greeter", [ValueSpec("seen", IntType)])
    def greet(context: Context, message: Message) -> None:
        seen = context.storage.seen or 0
        context.storage.seen = seen + 1
        context.send(
            message_builder("ex/inbox", message.as_string() or "?", str_value=f"hello #{seen}")
        )

    @functions.bind("ex/failing")
    def failing(context: Context, message: Message) -> None:
        context.send(message_builder("ex/inbox", "x", str_value="lost"))
        raise RuntimeError("boom from user code")

    return RequestReplyHandler(functions)


def good_request() -> bytes:
    return request(
        "ex/greeter",
        "alice",
        [to_typed_value(StringType, "alice")],
        state={"seen": to_typed_value(IntType, 41)},
    )


def run_adapter_scenario(post: Post, caplog: typing.Any) -> None:
    """Drive an adapter through good and bad requests; it must answer each and keep serving."""
    handler = scenario_handler()
    expected = handler.handle_sync(good_request())
    assert expected

    def check(body: bytes, status: int, fragment: str = "") -> bytes:
        got_status, content_type, payload = post(body)
        assert got_status == status, (got_status, payload[:300])
        if status == 200:
            assert content_type == "application/octet-stream"
        else:
            assert content_type.startswith("text/plain")
            assert fragment in payload.decode("utf-8"), payload
        return payload

    assert check(good_request(), 200) == expected
    missing = check(request("ex/greeter", "bob", [to_typed_value(StringType, "bob")]), 200)
    assert response(missing).incomplete_invocation_context.missing_values[0].state_name == "seen"
    check(b"", 400, "empty request body")
    generator = random.Random(20260112)
    for _ in range(3):
        check(bytes(generator.getrandbits(8) for _ in range(64)), 400)
    for cut in (1, 7, len(good_request()) // 2, len(good_request()) - 1):
        check(good_request()[:cut], 400, "not a ToFunction message")
    check(request("ex/nobody", "a", [to_typed_value(StringType, "a")]), 404, "'ex/nobody'")
    wrong_state = request(
        "ex/greeter",
        "a",
        [to_typed_value(StringType, "a")],
        state={"seen": to_typed_value(StringType, "x")},
    )
    check(wrong_state, 400, "Type mismatch")
    with caplog.at_level(logging.ERROR, logger="statefun.serving"):
        failed = check(
            request("ex/failing", "a", [to_typed_value(StringType, "a")]), 500, "RuntimeError"
        )
    assert b"boom" not in failed and b"Traceback" not in failed
    assert any(
        "boom from user code" in (r.exc_text or "") or (r.exc_info and "boom" in str(r.exc_info[1]))
        for r in caplog.records
    )
    check(b"\x00" * (SCENARIO_LIMIT + 1), 413, "too large")
    assert check(good_request(), 200) == expected


def urllib_post(url: str, method: str = "POST") -> typing.Callable[[bytes], tuple[int, str, bytes]]:
    def post(body: bytes) -> tuple[int, str, bytes]:
        request = urllib.request.Request(
            url,
            data=body if method == "POST" else None,
            method=method,
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10.0) as reply:
                return reply.status, reply.headers.get("Content-Type", ""), reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()

    return post
