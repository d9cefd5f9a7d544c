"""The seeds' Flask and aiohttp serving snippets, served on 127.0.0.1 and called over real HTTP."""

from __future__ import annotations

import asyncio
import threading
import typing
import urllib.error
import urllib.request

import pytest
from compat_support import (
    ANY_STATE_TYPENAME,
    GreetRequest,
    GreetResponse,
    SeenCount,
    address,
    from_function,
    to_function,
    typed,
    unpack_any_state,
)
from google.protobuf.any_pb2 import Any

import statefun.compat
from statefun import AsyncRequestReplyHandler, RequestReplyHandler, StatefulFunctions
from statefun import kafka_egress_record
from statefun.kafka_egress_pb2 import KafkaProducerRecord

TIMEOUT_SECONDS = 10


def walkthrough_functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("example/greeter", states=["seen_count"])
    def greet(context: typing.Any, greet_request: GreetRequest) -> None:
        state = context.state("seen_count").unpack(SeenCount)
        if not state:
            state = SeenCount()
            state.seen = 1
        else:
            state.seen += 1
        context.state("seen_count").pack(state)
        response = GreetResponse(name=greet_request.name, greeting=f"Hi #{state.seen}")
        egress_message = kafka_egress_record(topic="greetings", key=greet_request.name, value=response)
        context.pack_and_send_egress("example/greets", egress_message)

    return functions


def flask_app(handler: RequestReplyHandler) -> typing.Any:
    """The seed's Flask snippet, verbatim apart from the imports."""
    from flask import Flask, make_response, request

    app = Flask(__name__)

    @app.route('/statefun', methods=['POST'])
    def handle():  # type: ignore[no-untyped-def]
        response_data = handler(request.data)
        response = make_response(response_data)
        response.headers.set('Content-Type', 'application/octet-stream')
        return response

    return app


@pytest.fixture
def flask_url() -> typing.Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, flask_app(RequestReplyHandler(walkthrough_functions())))
    thread = threading.Thread(target=server.serve_forever, name="compat-flask", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/statefun"
    finally:
        server.shutdown()
        thread.join(TIMEOUT_SECONDS)


def post(url: str, body: bytes) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_flask_snippet_serves_the_walkthrough_greeter(flask_url: str) -> None:
    argument = typed(GreetRequest(name="Ann"), "com.googleapis/example.GreetRequest")

    status, content_type, body = post(flask_url, to_function("example/greeter", "Ann", [(None, argument)]))
    assert (status, content_type) == (200, "application/octet-stream")
    (missing,) = from_function(body).incomplete_invocation_context.missing_values
    assert (missing.state_name, missing.type_typename) == ("seen_count", ANY_STATE_TYPENAME)

    request = to_function("example/greeter", "Ann", [(None, argument)] * 2, state={"seen_count": None})
    status, content_type, body = post(flask_url, request)
    assert (status, content_type) == (200, "application/octet-stream")
    result = from_function(body).invocation_result
    (mutation,) = result.state_mutations
    assert unpack_any_state(mutation.state_value, SeenCount).seen == 2
    records = [KafkaProducerRecord.FromString(egress.argument.value) for egress in result.outgoing_egresses]
    assert [GreetResponse.FromString(record.value_bytes).greeting for record in records] == [
        "Hi #1",
        "Hi #2",
    ]
    assert {(record.topic, record.key) for record in records} == {("greetings", "Ann")}


def test_flask_snippet_turns_an_unexpected_message_into_a_server_error(flask_url: str) -> None:
    wrong = typed(SeenCount(seen=1))
    request = to_function("example/greeter", "Ann", [(None, wrong)], state={"seen_count": None})

    status, _, _ = post(flask_url, request)

    assert status == 500


def async_hello_functions() -> StatefulFunctions:
    functions = statefun.compat.StatefulFunctions()

    async def compute_greeting(message: Any) -> Any:
        await asyncio.sleep(0)
        greet_request = GreetRequest()
        message.Unpack(greet_request)
        reply = Any()
        reply.Pack(GreetResponse(name=greet_request.name, greeting=f"Hello {greet_request.name}"))
        return reply

    @functions.bind("example/hello")
    async def hello(context, message):  # type: ignore[no-untyped-def]
        response = await compute_greeting(message)
        context.reply(response)

    return functions


async def serve_and_call_aiohttp(bodies: list[bytes]) -> list[tuple[int, str, bytes]]:
    """The seed's aiohttp snippet on an ephemeral port, called concurrently by a real client."""
    import aiohttp
    from aiohttp import web

    handler = AsyncRequestReplyHandler(async_hello_functions())

    async def handle(request: web.Request) -> web.Response:
        req = await request.read()
        res = await handler(req)
        return web.Response(body=res, content_type="application/octet-stream")

    app = web.Application()
    app.add_routes([web.post('/statefun', handle)])

    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/statefun"
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def call(body: bytes) -> tuple[int, str, bytes]:
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/octet-stream"}
                ) as reply:
                    return reply.status, reply.headers["Content-Type"], await reply.read()

            return list(await asyncio.gather(*(call(body) for body in bodies)))
    finally:
        await runner.cleanup()


def test_aiohttp_snippet_serves_the_async_hello_concurrently() -> None:
    names = ["Ann", "Bob", "Cy"]
    callers = {name: address("example/caller", f"caller-{name}") for name in names}
    bodies = [
        to_function("example/hello", name, [(callers[name], typed(GreetRequest(name=name)))])
        for name in names
    ]

    replies = asyncio.run(asyncio.wait_for(serve_and_call_aiohttp(bodies), TIMEOUT_SECONDS * 2))

    for name, (status, content_type, body) in zip(names, replies):
        assert (status, content_type) == (200, "application/octet-stream")
        (outgoing,) = from_function(body).invocation_result.outgoing_messages
        assert outgoing.target == callers[name]
        assert GreetResponse.FromString(outgoing.argument.value).greeting == f"Hello {name}"


def test_aiohttp_snippet_fails_a_reply_to_an_ingress_message() -> None:
    body = to_function("example/hello", "Ann", [(None, typed(GreetRequest(name="Ann")))])

    ((status, _, _),) = asyncio.run(asyncio.wait_for(serve_and_call_aiohttp([body]), TIMEOUT_SECONDS * 2))

    assert status == 500
