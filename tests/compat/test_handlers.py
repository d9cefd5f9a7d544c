"""The handlers called the 2.x way: ``handler(bytes)`` and ``await async_handler(bytes)``."""

from __future__ import annotations

import asyncio

import pytest
from compat_support import User, address, from_function, to_function, typed

import statefun.compat
from statefun import AsyncRequestReplyHandler, RequestReplyHandler, StatefulFunctions

ANN = User(user_id="u1", name="Ann")


def echo_functions() -> StatefulFunctions:
    functions = statefun.compat.StatefulFunctions()

    @functions.bind("example/echo")
    async def echo(context, message: User):  # type: ignore[no-untyped-def]
        # Yield to the loop so concurrent batches interleave.
        await asyncio.sleep(0.01)
        context.pack_and_reply(message)

    return functions


def echo_request(name: str) -> bytes:
    return to_function(
        "example/echo", name, [(address("example/caller", name), typed(User(name=name)))]
    )


def test_the_sync_handler_is_callable_with_the_request_bytes() -> None:
    handler = RequestReplyHandler(echo_functions())

    assert handler(echo_request("Ann")) == handler.handle_sync(echo_request("Ann")) != b""


def test_concurrent_async_batches_do_not_share_a_context() -> None:
    handler = AsyncRequestReplyHandler(echo_functions())
    names = ["Ann", "Bob", "Cy", "Dee"]

    async def serve_all() -> list[bytes]:
        return list(await asyncio.gather(*(handler(echo_request(name)) for name in names)))

    responses = asyncio.run(asyncio.wait_for(serve_all(), 10))

    for name, response in zip(names, responses):
        (outgoing,) = from_function(response).invocation_result.outgoing_messages
        assert outgoing.target == address("example/caller", name)
        assert User.FromString(outgoing.argument.value).name == name


def test_async_handler_also_answers_handle_async() -> None:
    handler = AsyncRequestReplyHandler(echo_functions())

    async def both() -> tuple[bytes, bytes]:
        return await handler(echo_request("Ann")), await handler.handle_async(echo_request("Ann"))

    first, second = asyncio.run(both())
    assert first == second != b""


def test_async_handler_checks_its_registry() -> None:
    with pytest.raises(
        TypeError, match="RequestReplyHandler expects a StatefulFunctions, got object"
    ):
        AsyncRequestReplyHandler(object())  # type: ignore[arg-type]
