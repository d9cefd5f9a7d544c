"""The ASGI adapter, driven directly through the ASGI interface.

No ASGI server (uvicorn, hypercorn) is a dependency of this project, so the
callable is exercised with hand-made ``receive``/``send`` channels exactly as
a server would call it.
"""

from __future__ import annotations

import asyncio
import logging
import typing

import pytest

from statefun.serving.asgi import make_asgi_app
from statefun_test_wire import SCENARIO_LIMIT, good_request, run_adapter_scenario, scenario_handler


async def drive(
    app: typing.Any,
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/statefun",
    chunk: int = 1000,
    declare_length: bool = True,
) -> tuple[int, dict[bytes, bytes], bytes]:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    incoming = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    sent: list[dict[str, typing.Any]] = []

    async def receive() -> dict[str, typing.Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, typing.Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/octet-stream")]
    if declare_length:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    start, content = sent
    return start["status"], dict(start["headers"]), content["body"]


def test_asgi_scenario(caplog: pytest.LogCaptureFixture) -> None:
    app = make_asgi_app(scenario_handler(), max_request_bytes=SCENARIO_LIMIT)

    def post(body: bytes) -> tuple[int, str, bytes]:
        status, headers, payload = asyncio.run(drive(app, body))
        return status, headers[b"content-type"].decode(), payload

    run_adapter_scenario(post, caplog)


def test_asgi_streamed_body_limit_path_and_method() -> None:
    app = make_asgi_app(scenario_handler(), max_request_bytes=SCENARIO_LIMIT)
    status, _, body = asyncio.run(drive(app, good_request(), chunk=7, declare_length=False))
    assert status == 200 and body == scenario_handler().handle_sync(good_request())
    status, _, _ = asyncio.run(drive(app, b"x" * (SCENARIO_LIMIT + 10), declare_length=False))
    assert status == 413
    assert asyncio.run(drive(app, good_request(), path="/other"))[0] == 404
    status, headers, _ = asyncio.run(drive(app, b"", method="GET"))
    assert status == 405 and headers[b"allow"] == b"POST"


def test_asgi_lifespan() -> None:
    app = make_asgi_app(scenario_handler())
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, typing.Any]] = []

    async def receive() -> dict[str, typing.Any]:
        return incoming.pop(0)

    async def send(message: dict[str, typing.Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app({"type": "lifespan"}, receive, send), timeout=10))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_asgi_serves_each_function_path_of_a_function_name_template() -> None:
    app = make_asgi_app(scenario_handler(), path="/fn/{function.name}")
    expected = scenario_handler().handle_sync(good_request())
    for path in ("/fn/greeter", "/fn/other-name"):
        status, _, body = asyncio.run(drive(app, good_request(), path=path))
        assert (status, body) == (200, expected), path
    for path in ("/fn/", "/fn/a/b", "/statefun"):
        assert asyncio.run(drive(app, good_request(), path=path))[0] == 404, path
    with pytest.raises(ValueError, match="only placeholder"):
        make_asgi_app(scenario_handler(), path="/fn/{name}")
