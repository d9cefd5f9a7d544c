"""statefun-serve's HTTP/1.1 server, served for real on 127.0.0.1 on both stacks.

Every test runs on uvloop + httptools (where installed) and on the fallback,
plain asyncio + statefun.serving.http1, through the same protocol code.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import typing

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from server_harness import (  # noqa: E402
    STACK_IDS,
    STACKS,
    Client,
    ServerThread,
    build_handler,
    chunked,
    exchange,
    post,
    request,
    sent_strings,
)

from statefun import RequestReplyHandler, StatefulFunctions, message_builder  # noqa: E402
from statefun.serving import HttpReply, serve_async  # noqa: E402
from statefun.serving.asgi import make_asgi_app  # noqa: E402
from statefun.serving.server import ServerConfig, choose_loop, choose_parser  # noqa: E402


@pytest.fixture(params=STACKS, ids=STACK_IDS)
def stack(request: pytest.FixtureRequest) -> tuple[str, str]:
    return typing.cast(tuple[str, str], request.param)


@pytest.fixture
def server(stack: tuple[str, str]) -> typing.Iterator[ServerThread]:
    running = ServerThread(stack=stack)
    yield running
    running.stop()


def _asgi_reply(body: bytes, path: str = "/statefun", method: str = "POST") -> HttpReply:
    """What the ASGI adapter answers, driven as an ASGI server would."""
    sent: list[dict[str, typing.Any]] = []

    async def drive() -> None:
        app = make_asgi_app(build_handler())
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, typing.Any]:
            return messages.pop(0)

        async def send(message: dict[str, typing.Any]) -> None:
            sent.append(message)

        headers = [(b"content-length", str(len(body)).encode())]
        await app(
            {"type": "http", "path": path, "method": method, "headers": headers}, receive, send
        )

    asyncio.run(drive())
    headers = dict(sent[0]["headers"])
    return HttpReply(sent[0]["status"], headers[b"content-type"].decode(), sent[1]["body"])


@pytest.mark.parametrize(
    "body",
    [
        request("greeter"),
        request("async-greeter"),
        request("sleeper", delay_ms=1),
        request("fails"),
        request("nobody"),
        b"\xff\xff\xff",
        b"",
    ],
    ids=["sync", "async", "suspending", "function-fails", "unknown-function", "malformed", "empty"],
)
def test_responses_are_those_of_the_other_adapters(server: ServerThread, body: bytes) -> None:
    expected = asyncio.run(serve_async(build_handler(), body))
    assert expected == _asgi_reply(body)
    response = exchange(server.port, post(body))
    assert response is not None
    assert (response.status, response.headers["content-type"], response.body) == (
        expected.status,
        expected.content_type,
        expected.body,
    )
    assert response.headers["content-length"] == str(len(expected.body))
    assert "date" in response.headers


def test_the_success_content_type_is_exactly_octet_stream(server: ServerThread) -> None:
    response = exchange(server.port, post(request()))
    assert response is not None and response.status == 200
    assert b"\r\nContent-Type: application/octet-stream\r\n" in response.raw_head + b"\r\n"
    assert sent_strings(response.body) == ["Hello Ann #0"]


def test_wrong_path_method_and_the_health_check(server: ServerThread) -> None:
    expected_404 = _asgi_reply(b"", path="/elsewhere")
    expected_405 = _asgi_reply(b"", method="GET")
    client = Client(server.port)
    client.send(post(request(), path="/elsewhere"))
    client.send(b"GET /statefun HTTP/1.1\r\nHost: x\r\n\r\n")
    client.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    client.send(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    client.send(b"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n")
    client.send(post(request(), path="/statefun?via=query"))
    not_found, wrong_method = client.response(), client.response()
    assert not_found is not None and wrong_method is not None
    assert (not_found.status, not_found.body) == (404, expected_404.body)
    assert (wrong_method.status, wrong_method.body) == (405, expected_405.body)
    assert wrong_method.headers["allow"] == "POST"
    health = client.response()
    assert health is not None and (health.status, health.body) == (200, b"ok\n")
    head = client.response(head_only=True)
    assert head is not None and head.status == 200 and head.headers["content-length"] == "3"
    health_post = client.response()
    assert health_post is not None and health_post.status == 405
    assert health_post.headers["allow"] == "GET, HEAD"
    with_query = client.response()
    assert with_query is not None and with_query.status == 200
    # HEAD answers carry no body, whatever their status: the next response must still parse.
    client.send(b"HEAD /statefun HTTP/1.1\r\n\r\nHEAD /elsewhere HTTP/1.1\r\n\r\n")
    client.send(b"GET /health HTTP/1.1\r\n\r\n")
    for status in (405, 404):
        head_only = client.response(head_only=True)
        assert head_only is not None and head_only.status == status
    health = client.response()
    assert health is not None and (health.status, health.body) == (200, b"ok\n")
    client.close()


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server: ServerThread) -> None:
    # Suspending requests between inline ones: responses must still come back in order.
    bodies = []
    for position in range(12):
        if position % 3 == 1:
            bodies.append(request("sleeper", delay_ms=20 - position))
        else:
            bodies.append(request("greeter", name=f"n{position}"))
    client = Client(server.port)
    client.send(b"".join(post(body) for body in bodies))
    for position, body in enumerate(bodies):
        response = client.response()
        assert response is not None and response.status == 200, position
        if position % 3 == 1:
            assert sent_strings(response.body) == ["same task"]
        else:
            assert sent_strings(response.body) == [f"Hello n{position} #0"]
    # The connection is still usable afterwards.
    client.send(post(request(name="again")))
    again = client.response()
    assert again is not None and sent_strings(again.body) == ["Hello again #0"]
    client.close()


def test_chunked_bodies_and_split_writes(server: ServerThread) -> None:
    body = request(name="chunky")
    client = Client(server.port)
    for data in (chunked(body, pieces=1), chunked(body, pieces=5)):
        for position in range(0, len(data), 7):  # dribbled in small writes
            client.send(data[position : position + 7])
            time.sleep(0.001)
        response = client.response()
        assert response is not None and sent_strings(response.body) == ["Hello chunky #0"]
    client.send(chunked(body).replace(b"0\r\n\r\n", b"0\r\nX-Trailer: yes\r\n\r\n"))
    response = client.response()
    assert response is not None and response.status == 200
    client.close()


def test_expect_100_continue(server: ServerThread) -> None:
    body = request(name="expecting")
    client = Client(server.port)
    head, _, payload = post(body, headers="Expect: 100-continue\r\n").partition(b"\r\n\r\n")
    client.send(head + b"\r\n\r\n")
    interim = client.response()
    assert interim is not None and interim.status == 100
    client.send(payload)
    final = client.response()
    assert final is not None and sent_strings(final.body) == ["Hello expecting #0"]
    client.close()
    # A body that would be refused is refused at once, and never asked for.
    too_large = Client(server.port)
    too_large.send(
        b"POST /statefun HTTP/1.1\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n"
    )
    refused = too_large.response()
    assert refused is not None and refused.status == 413
    assert too_large.is_closed_by_server()
    too_large.close()
    wrong_path = Client(server.port)
    wrong_path.send(b"POST /nope HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
    refused = wrong_path.response()
    assert refused is not None and refused.status == 404
    assert wrong_path.is_closed_by_server()
    wrong_path.close()


def test_oversized_bodies_get_413_before_they_are_read(stack: tuple[str, str]) -> None:
    server = ServerThread(stack=stack, max_request_bytes=1000)
    try:
        # Declared too large: answered from the head alone; the body is never sent.
        client = Client(server.port)
        client.send(b"POST /statefun HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
        response = client.response()
        assert response is not None and response.status == 413
        assert b"1001 bytes" in response.body
        assert response.headers["connection"] == "close"
        assert client.is_closed_by_server()
        client.close()
        # Chunked: refused at the chunk that crosses the limit, the rest unread.
        client = Client(server.port)
        client.send(b"POST /statefun HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        client.send(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        client.send(b"1\r\nx\r\n")
        response = client.response()
        assert response is not None and response.status == 413
        assert client.is_closed_by_server()
        client.close()
        # At the limit exactly: served (a malformed body, so 400, not 413).
        response = exchange(server.port, post(b"\x08" * 1000))
        assert response is not None and response.status == 400
    finally:
        server.stop()


def test_http10_and_connection_close(server: ServerThread) -> None:
    client = Client(server.port)
    client.send(post(request()).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    response = client.response()
    assert response is not None and response.status == 200
    assert response.headers["connection"] == "close"
    assert client.is_closed_by_server()
    client = Client(server.port)
    client.send(
        post(request(), headers="Connection: keep-alive\r\n").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    )
    response = client.response()
    assert response is not None and response.headers["connection"] == "keep-alive"
    client.send(post(request(), headers="Connection: close\r\n"))
    response = client.response()
    assert response is not None and response.headers["connection"] == "close"
    assert client.is_closed_by_server()


def test_functions_that_do_not_suspend_create_no_task(server: ServerThread) -> None:
    client = Client(server.port)
    # (asyncio's loop makes a task per accepted connection: counted from the first response on.)
    client.send(post(request()))
    assert client.response() is not None
    for function in ("greeter", "async-greeter"):
        created = server.tasks_created
        for _ in range(50):
            client.send(post(request(function)))
            response = client.response()
            assert response is not None and response.status == 200
        # At most the one spare task that stands ready for a function that suspends.
        assert server.tasks_created - created <= 1, function
    created = server.tasks_created
    for _ in range(5):
        client.send(post(request("sleeper", delay_ms=1)))
        response = client.response()
        assert response is not None and sent_strings(response.body) == ["same task"]
    # One task per request that suspended: each takes the spare, and a new spare is made.
    assert 4 <= server.tasks_created - created <= 5
    client.close()


def test_async_functions_see_a_task_timeouts_and_their_own_context(stack: tuple[str, str]) -> None:
    import contextvars

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")
    functions = StatefulFunctions()

    @functions.bind("test/timeouts")
    async def timeouts(context: typing.Any, message: typing.Any) -> None:
        seen_before = request_id.get()
        request_id.set(message.as_string())
        task = asyncio.current_task()
        outcomes = [f"task={task is not None}", f"context={seen_before}"]
        try:  # wait_for needs a current task on 3.12+, and must cancel the sleep
            await asyncio.wait_for(asyncio.sleep(5), 0.01)
        except asyncio.TimeoutError:
            outcomes.append("wait_for timed out")
        if sys.version_info >= (3, 11):
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(5)
            except TimeoutError:
                outcomes.append("timeout timed out")
        outcomes.append(f"same={asyncio.current_task() is task}")
        for outcome in outcomes:
            context.send(
                message_builder(target_typename="test/x", target_id="1", str_value=outcome)
            )

    server = ServerThread(RequestReplyHandler(functions), stack=stack)
    try:
        body = request("timeouts", name="r1")
        started = time.monotonic()
        for _ in range(2):
            response = exchange(server.port, post(body))
            assert response is not None and response.status == 200
            expected = ["task=True", "context=unset", "wait_for timed out"]
            expected += ["timeout timed out"] if sys.version_info >= (3, 11) else []
            assert sent_strings(response.body) == expected + ["same=True"]
        assert time.monotonic() - started < 3
    finally:
        server.stop()


def test_draining_finishes_requests_in_flight_and_closes_idle_connections(
    stack: tuple[str, str],
) -> None:
    server = ServerThread(stack=stack)
    idle = Client(server.port)
    idle.send(post(request()))
    assert idle.response() is not None
    busy = Client(server.port)
    busy.send(post(request("sleeper", delay_ms=300)))
    server.wait_for(lambda: server.call(lambda: any(c.busy for c in server.server.connections)))
    server.loop.call_soon_threadsafe(server.server.drain)
    assert idle.is_closed_by_server()
    response = busy.response()
    assert response is not None and response.status == 200
    assert response.headers["connection"] == "close"
    assert sent_strings(response.body) == ["same task"]
    idle.close()
    busy.close()
    server.thread.join(timeout=5)
    assert not server.thread.is_alive()


def test_the_fallbacks_are_chosen_where_uvloop_and_httptools_are_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    monkeypatch.setitem(sys.modules, "httptools", None)
    assert choose_loop("auto")[0] == "asyncio"
    assert choose_parser("auto", 1024).name == "python"
    with pytest.raises(ImportError):
        choose_loop("uvloop")
    with pytest.raises(ImportError):
        choose_parser("httptools", 1024)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"path": "statefun"}, "path must be an absolute path"),
        ({"health_path": "/statefun"}, "both '/statefun'"),
        ({"header_timeout": 0}, "header_timeout must be positive"),
        ({"loop": "trio"}, "loop must be"),
        ({"path": "/statefun/{name}"}, "the only placeholder a path may hold"),
        ({"path": "/{function.name}/{function.name}"}, "may appear once"),
    ],
)
def test_bad_configurations_are_refused(options: dict[str, typing.Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerConfig(**options)


def test_a_function_name_template_serves_each_function_on_its_own_path(
    stack: tuple[str, str],
) -> None:
    """module.yaml's urlPathTemplate http://host/fn/{function.name} calls /fn/<name> for each
    function; statefun-serve --path /fn/{function.name} answers every one of them."""
    running = ServerThread(stack=stack, path="/fn/{function.name}")
    try:
        client = Client(running.port)
        for path in ("/fn/greeter", "/fn/async-greeter", "/fn/greeter?x=1"):
            client.send(post(request("greeter"), path=path))
            answer = client.response()
            assert answer is not None and answer.status == 200, path
            assert sent_strings(answer.body)
        for path in ("/fn/", "/fn", "/fn/a/b", "/other/greeter"):
            client.send(post(request("greeter"), path=path))
            answer = client.response()
            assert answer is not None and answer.status == 404, path
        client.close()
    finally:
        running.stop()
