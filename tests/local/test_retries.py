"""Each transport's retry rules, against a server that fails on purpose (a script of faults,
then proper replies): what is retried, how the backoff grows, and what the final error says."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from local_support import serve_app, write_module
from statefun import request_reply_pb2 as pb
from statefun.local.config import load_module
from statefun.local.engine import Engine
from statefun.local.errors import FunctionCallError, ProtocolError
from statefun.local.ingress import record_messages
from statefun.local.store import Store

Fault = tuple[str, object]


class FaultyServer:
    """Answers request n with faults[n] while there are faults, then with an empty result."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = list(faults)
        self.arrivals: list[float] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> "FaultyServer":
        async def handle(request: web.Request) -> web.StreamResponse:
            await request.read()
            self.arrivals.append(time.monotonic())
            if not self.faults:
                return web.Response(body=b"", content_type="application/octet-stream")
            kind, detail = self.faults.pop(0)
            if kind == "status":
                return web.Response(status=int(str(detail)), text=f"fault {detail}")
            if kind == "content-type":
                response = web.Response(body=pb.FromFunction().SerializeToString())
                response.headers["Content-Type"] = str(detail)
                return response
            if kind == "garbage":
                return web.Response(body=b"\xff\xff\xff", content_type="application/octet-stream")
            if kind == "disconnect":
                assert request.transport is not None
                request.transport.close()
                return web.Response()
            await asyncio.sleep(float(str(detail)))  # "slow"
            return web.Response(body=b"", content_type="application/octet-stream")

        app = web.Application()
        app.router.add_post("/{name}", handle)
        self.runner, self.port = await serve_app(app)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


V1_MODULE = """\
kind: io.statefun.endpoints.v1/http
spec:
  functions: example/*
  urlPathTemplate: http://127.0.0.1:{port}/{{function.name}}
  timeouts:
    call: {call}
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  topics:
    - topic: names
      valueType: io.statefun.types/string-raw
      targets: [example/greeter]
"""


async def deliver(
    tmp_path,
    faults: list[Fault],
    transport: str,
    call: str = "3s",
    stop_server: bool = False,
    read: str = "",
) -> tuple[Engine | None, FaultyServer, float, BaseException | None]:  # type: ignore[no-untyped-def]
    server = await FaultyServer(faults).start()
    if transport == "v1":
        path = tmp_path / "module.yaml"
        path.write_text(V1_MODULE.format(port=server.port, call=call))
        module = str(path)
    else:
        module = write_module(str(tmp_path), server.port, call=call, transport=transport, read=read)
    store = Store(":memory:")
    engine = Engine(load_module(module), store, {}, log=lambda text: None)
    await engine.start()
    if stop_server:
        await server.stop()
    started = time.monotonic()
    try:
        record = {"key": "k", "value": "v"}
        await engine.accept(record_messages(record, engine.config))
        deadline = time.monotonic() + 15
        while not engine.is_idle() and engine.failure is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        return engine, server, time.monotonic() - started, engine.failure
    finally:
        await engine.close()
        store.close()
        await server.stop()


EVERY_FAULT: list[Fault] = [
    ("disconnect", None),
    ("status", 400),
    ("status", 404),
    ("content-type", "text/html"),
    ("content-type", "application/octet-stream; charset=utf-8"),
    ("garbage", None),
    ("status", 500),
]


def test_the_async_transport_retries_every_failure_with_a_growing_backoff(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, server, _, failure = asyncio.run(deliver(tmp_path, EVERY_FAULT, "async"))
    assert failure is None
    assert len(server.arrivals) == len(EVERY_FAULT) + 1
    gaps = [later - earlier for earlier, later in zip(server.arrivals, server.arrivals[1:])]
    # 2 ms * 2^n: 4, 8, 16, ... ms apart; the first is quick, the last several times longer.
    assert gaps[0] < 0.2 and gaps[-1] >= 0.2 and gaps[-1] > 2 * gaps[0]


@pytest.mark.parametrize("transport", ["okhttp", "v1"])
def test_okhttp_retries_its_statuses_and_connection_errors(tmp_path, transport: str) -> None:  # type: ignore[no-untyped-def]
    faults: list[Fault] = [("status", code) for code in (500, 503, 408, 409, 420, 429, 499)]
    faults.append(("disconnect", None))
    engine, server, _, failure = asyncio.run(deliver(tmp_path, faults, transport))
    assert failure is None and len(server.arrivals) == len(faults) + 1


@pytest.mark.parametrize(
    "fault, error_type, problem",
    [
        (("status", 400), FunctionCallError, "failed with HTTP 400 Bad Request: fault 400"),
        (("status", 404), FunctionCallError, "failed with HTTP 404 Not Found: fault 404"),
        (("content-type", "text/html"), ProtocolError, "Content-Type 'text/html'"),
        (
            ("content-type", "application/octet-stream; charset=utf-8"),
            ProtocolError,
            "Content-Type 'application/octet-stream; charset=utf-8'",
        ),
        (("garbage", None), ProtocolError, "not a FromFunction"),
    ],
    ids=["400", "404", "text-html", "charset", "garbage"],
)
@pytest.mark.parametrize("transport", ["okhttp", "v1"])
def test_okhttp_fails_at_once_on_anything_else(tmp_path, transport: str, fault: Fault, error_type: type, problem: str) -> None:  # type: ignore[no-untyped-def]
    engine, server, elapsed, failure = asyncio.run(
        deliver(tmp_path, [fault], transport, call="10s")
    )
    assert isinstance(failure, error_type), failure
    assert problem in str(
        failure
    ) and "not retried by the io.statefun.transports.v1/okhttp transport" in str(failure)
    assert len(server.arrivals) == 1 and elapsed < 2
    assert engine is not None and engine.store is not None


@pytest.mark.parametrize("transport", ["async", "okhttp"])
def test_the_final_error_names_the_last_real_failure(tmp_path, transport: str) -> None:  # type: ignore[no-untyped-def]
    always_500: list[Fault] = [("status", 500)] * 1000
    _, server, elapsed, failure = asyncio.run(
        deliver(tmp_path, always_500, transport, call="600ms")
    )
    assert isinstance(failure, FunctionCallError)
    text = str(failure)
    assert "did not succeed within the call timeout of 0.6 s" in text
    assert "last failure: HTTP 500 Internal Server Error: fault 500" in text
    assert f"{transport} retry rules" in text and len(server.arrivals) > 3
    assert 0.5 < elapsed < 3

    # Failing, then too slow: the timeout cut the last attempt, the failure before it is named.
    faults: list[Fault] = [("status", 503), ("status", 503), ("slow", 1.2)]
    _, _, _, failure = asyncio.run(deliver(tmp_path, faults, transport, call="600ms"))
    assert (
        "last failure: HTTP 503 Service Unavailable: fault 503; the last attempt was cut off"
        in str(failure)
    )

    # Only slow: that is the failure.
    _, _, _, failure = asyncio.run(deliver(tmp_path, [("slow", 1.2)], transport, call="400ms"))
    assert "last failure: no reply within" in str(failure)


def test_a_refused_connection_is_named_as_such(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, server, elapsed, failure = asyncio.run(
        deliver(tmp_path, [], "async", call="500ms", stop_server=True)
    )
    assert isinstance(failure, FunctionCallError)
    assert f"last failure: connection refused by 127.0.0.1:{server.port}" in str(failure)


@pytest.mark.parametrize("transport, attempts", [("okhttp", 2), ("async", 1)])
def test_okhttp_gives_up_an_attempt_after_its_read_timeout(tmp_path, transport: str, attempts: int) -> None:  # type: ignore[no-untyped-def]
    """A reply slower than OkHttp's read timeout: OkHttp abandons the attempt and retries; the
    async transport waits for it within the call timeout."""
    _, server, _, failure = asyncio.run(
        deliver(tmp_path, [("slow", 0.6)], transport, call="3s", read="300ms")
    )
    assert failure is None and len(server.arrivals) == attempts
