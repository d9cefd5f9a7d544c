"""The seeds' serving code on 127.0.0.1, called over real HTTP.

``seed_snippets/p003_full_application.py`` is the walkthrough's full Flask
application and ``seed_snippets/p002_async.py`` the aiohttp snippet, each kept
as the page prints it (see ``seed_snippets/README.md``).
"""

from __future__ import annotations

import asyncio
import types
import typing

import pytest
from runtime_support import TIMEOUT_SECONDS, post, serve_wsgi
from compat_support import (
    ANY_STATE_TYPENAME,
    GreetRequest,
    GreetResponse,
    SeenCount,
    address,
    from_function,
    load_snippet,
    to_function,
    typed,
    unpack_any_state,
)

from statefun.kafka_egress_pb2 import KafkaProducerRecord


def load_seed(name: str) -> types.ModuleType:
    return load_snippet({"walkthrough": "p003_full_application", "async": "p002_async"}[name])


@pytest.fixture
def flask_url() -> typing.Iterator[str]:
    with serve_wsgi(load_seed("walkthrough").app) as served:
        yield served.url


# What the walkthrough's Kafka ingress delivers: its typeUrl and the raw GreetRequest bytes.
ANN_ARRIVES = typed(GreetRequest(name="Ann"), "com.googleapis/example.GreetRequest")


def test_flask_walkthrough_greets_through_kafka_and_counts(flask_url: str) -> None:
    status, content_type, body = post(
        flask_url, to_function("example/greeter", "Ann", [(None, ANN_ARRIVES)])
    )
    assert (status, content_type) == (200, "application/octet-stream")
    (missing,) = from_function(body).incomplete_invocation_context.missing_values
    assert (missing.state_name, missing.type_typename) == ("seen_count", ANY_STATE_TYPENAME)

    # The runtime registers the state and re-sends; here two requests arrived meanwhile.
    request = to_function(
        "example/greeter", "Ann", [(None, ANN_ARRIVES)] * 2, state={"seen_count": None}
    )
    status, content_type, body = post(flask_url, request)
    assert (status, content_type) == (200, "application/octet-stream")
    result = from_function(body).invocation_result
    (mutation,) = result.state_mutations
    assert unpack_any_state(mutation.state_value, SeenCount).seen == 2
    greetings = []
    for egress in result.outgoing_egresses:
        assert (egress.egress_namespace, egress.egress_type) == ("example", "greets")
        assert (
            egress.argument.typename
            == "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
        )
        record = KafkaProducerRecord.FromString(egress.argument.value)
        assert (record.topic, record.key) == ("greetings", "Ann")
        greetings.append(GreetResponse.FromString(record.value_bytes).greeting)
    assert greetings == ["Welcome Ann", "Nice to see you again Ann"]

    request = to_function(
        "example/greeter", "Ann", [(None, ANN_ARRIVES)], state={"seen_count": mutation.state_value}
    )
    (egress,) = from_function(post(flask_url, request)[2]).invocation_result.outgoing_egresses
    record = KafkaProducerRecord.FromString(egress.argument.value)
    assert GreetResponse.FromString(record.value_bytes).greeting == "Third time is a charm Ann"


def test_flask_walkthrough_answers_an_unexpected_message_with_a_server_error(
    flask_url: str,
) -> None:
    request = to_function(
        "example/greeter", "Ann", [(None, typed(SeenCount(seen=1)))], state={"seen_count": None}
    )

    status, _, _ = post(flask_url, request)

    assert status == 500


async def serve_and_call_aiohttp(bodies: list[bytes]) -> list[tuple[int, str, bytes]]:
    """The seed's aiohttp app on an ephemeral port, called concurrently by a real client."""
    import aiohttp
    from aiohttp import web

    runner = web.AppRunner(load_seed("async").app)
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


def test_aiohttp_snippet_replies_to_each_caller_concurrently() -> None:
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
        assert outgoing.argument.typename == "type.googleapis.com/example.GreetResponse"
        assert GreetResponse.FromString(outgoing.argument.value) == GreetResponse(
            name=name, greeting=f"Hello {name}"
        )


def test_aiohttp_snippet_fails_a_reply_to_an_ingress_message() -> None:
    body = to_function("example/hello", "Ann", [(None, typed(GreetRequest(name="Ann")))])

    ((status, _, _),) = asyncio.run(
        asyncio.wait_for(serve_and_call_aiohttp([body]), TIMEOUT_SECONDS * 2)
    )

    assert status == 500


def test_the_sdks_flask_adapter_reports_an_unexpected_message_type_as_a_bad_request() -> None:
    from statefun.serving.flask import make_flask_app

    greeter = load_seed("walkthrough")
    with serve_wsgi(make_flask_app(greeter.handler)) as served:
        wrong = to_function(
            "example/greeter", "Ann", [(None, typed(SeenCount(seen=1)))], state={"seen_count": None}
        )
        status, content_type, body = post(served.url, wrong)
        ok_status, _, _ = post(
            served.url,
            to_function(
                "example/greeter", "Ann", [(None, ANN_ARRIVES)], state={"seen_count": None}
            ),
        )

    assert (status, content_type) == (400, "text/plain; charset=utf-8")
    assert body.decode("utf-8").startswith(
        "Unknown message type type.googleapis.com/example.SeenCount: the function example/greeter "
        "accepts only example.GreetRequest"
    )
    assert ok_status == 200
