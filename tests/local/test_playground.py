"""The playground kinds (io.statefun.playground.v1/ingress and /egress) over real HTTP, as the
apache/flink-statefun-playground image serves them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from local_support import FakeFunctions, reply, spawn_server, stop
from statefun import request_reply_pb2 as pb
from statefun.local.config import load_module
from statefun.local.engine import Engine
from statefun.local.errors import ProtocolError
from statefun.local.ingress import playground_egress_app, playground_ingress_app, serve
from statefun.local.store import Store

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PUBLISHED = os.path.join(HERE, "published")

MODULE = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: http://127.0.0.1:{port}/{{function.name}}
  transport:
    call: 2s
---
kind: io.statefun.playground.v1/ingress
spec:
  port: 0
---
kind: io.statefun.playground.v1/egress
spec:
  port: 0
  topics: [greetings, other]
"""


def egress_record(topic: object, payload: object, **extra: object) -> pb.TypedValue:
    return pb.TypedValue(
        typename="io.statefun.playground/EgressRecord",
        has_value=True,
        value=json.dumps({"topic": topic, "payload": payload, **extra}).encode(),
    )


def echo_to_playground(
    record: Callable[[bytes], pb.TypedValue],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    async def handle(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        response = pb.FromFunction()
        for invocation in request.invocations:
            response.invocation_result.outgoing_egresses.add(
                egress_namespace="io.statefun.playground",
                egress_type="egress",
                argument=record(invocation.argument.value),
            )
        return reply(response)

    return handle


Scenario = Callable[[Engine, FakeFunctions, str, str], Awaitable[None]]


def run(tmp_path, handlers, scenario: Scenario, db: str = ":memory:") -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        fake = await FakeFunctions(handlers=handlers).start()
        (tmp_path / "module.yaml").write_text(MODULE.format(port=fake.port))
        config = load_module(str(tmp_path / "module.yaml"))
        store = Store(db)
        engine = Engine(config, store, {}, log=lambda text: None)
        await engine.start()
        assert config.playground_egress is not None
        ingress, ingress_port = await serve(playground_ingress_app(engine), "127.0.0.1", 0, "in")
        egress, egress_port = await serve(
            playground_egress_app(engine, config.playground_egress.topics), "127.0.0.1", 0, "out"
        )
        try:
            await asyncio.wait_for(
                scenario(
                    engine,
                    fake,
                    f"http://127.0.0.1:{ingress_port}",
                    f"http://127.0.0.1:{egress_port}",
                ),
                20,
            )
        finally:
            await ingress.cleanup()
            await egress.cleanup()
            await engine.close()
            store.close()
            await fake.stop()

    asyncio.run(main())


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def first_record(session: aiohttp.ClientSession, url: str) -> bytes:
    for _ in range(200):
        status, body = await fetch(session, url)
        if status == 200:
            return body
        assert status == 404
        await asyncio.sleep(0.02)
    raise AssertionError("no record arrived")


def test_ingress_addresses_messages_by_path_and_types_them_by_content_type(tmp_path) -> None:  # type: ignore[no-untyped-def]
    handlers = {
        "person": echo_to_playground(lambda value: egress_record("greetings", value.decode())),
    }

    async def scenario(engine: Engine, fake: FakeFunctions, ingress: str, egress: str) -> None:
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Type": "application/vnd.example/GreetRequest"}
            async with session.put(
                f"{ingress}/example/person/Bob", data=b'{"name": "Bob"}', headers=headers
            ) as response:
                assert response.status == 200 and await response.read() == b""
            # No application/vnd. type: io.statefun.types/string; a trailing slash is fine.
            async with session.put(f"{ingress}/example/person/Ann/", data=b"plain") as response:
                assert response.status == 200
            assert await first_record(session, f"{egress}/greetings") == b'{"name": "Bob"}'
            assert await first_record(session, f"{egress}/greetings") == b"plain"
            assert await fetch(session, f"{egress}/greetings") == (404, b"")
            assert (await fetch(session, f"{egress}/other"))[0] == 404
            assert (await fetch(session, f"{egress}/unknown"))[0] == 405
            for path in ("/example/person", "/example/person/Bob/extra", "/", "/example//Bob"):
                async with session.put(f"{ingress}{path}", data=b"x") as response:
                    assert response.status == 500, path
                    assert (
                        "Invalid URL. Please specify '/namespace/function_type/function_id"
                        in await response.text()
                    )
            async with session.put(f"{ingress}/nobody/home/x", data=b"x") as response:
                assert response.status == 500
                assert "serves function type nobody/home" in await response.text()
        arguments = [
            (
                request.target.id,
                invocation.argument.typename,
                invocation.argument.value,
                invocation.HasField("caller"),
            )
            for _, request in fake.requests
            for invocation in request.invocations
        ]
        assert arguments == [
            ("Bob", "example/GreetRequest", b'{"name": "Bob"}', False),
            ("Ann", "io.statefun.types/string", b"plain", False),
        ]

    run(tmp_path, handlers, scenario)


def test_egress_records_wait_durably_until_fetched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    handlers = {
        "person": echo_to_playground(lambda value: egress_record("greetings", value.decode()))
    }
    db = str(tmp_path / "state.db")

    async def produce(engine: Engine, fake: FakeFunctions, ingress: str, egress: str) -> None:
        async with aiohttp.ClientSession() as session:
            for text in ("one", "two", "three"):
                async with session.put(f"{ingress}/example/person/k", data=text) as response:
                    assert response.status == 200
        deadline = time.monotonic() + 5
        while not engine.is_idle():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)

    async def consume(engine: Engine, fake: FakeFunctions, ingress: str, egress: str) -> None:
        async with aiohttp.ClientSession() as session:
            got = [(await fetch(session, f"{egress}/greetings")) for _ in range(4)]
        assert got == [(200, b"one"), (200, b"two"), (200, b"three"), (404, b"")]

    run(tmp_path, handlers, produce, db=db)
    run(tmp_path, handlers, consume, db=db)  # after a restart


@pytest.mark.parametrize(
    "record, problem",
    [
        (
            lambda v: egress_record("nowhere", "x"),
            "message was targeted to unknown topic 'nowhere'",
        ),
        (lambda v: egress_record("greetings", "x", extra=1), "unknown EgressRecord field(s) extra"),
        (lambda v: egress_record("greetings", {"a": 1}), "payload must be a string, got dict"),
        (
            lambda v: pb.TypedValue(typename="example/Other", has_value=True, value=b"{}"),
            "takes io.statefun.playground/EgressRecord values",
        ),
    ],
    ids=["unknown-topic", "unknown-field", "payload-object", "wrong-type"],
)
def test_records_the_playground_would_reject_stop_the_run(tmp_path, record, problem: str) -> None:  # type: ignore[no-untyped-def]
    handlers = {"person": echo_to_playground(record)}

    async def scenario(engine: Engine, fake: FakeFunctions, ingress: str, egress: str) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.put(f"{ingress}/example/person/k", data="x") as response:
                assert response.status == 200
        await asyncio.wait_for(engine.failed.wait(), 5)
        assert isinstance(engine.failure, ProtocolError) and problem in str(engine.failure)

    run(tmp_path, handlers, scenario)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_published_playground_greeter_serves_until_interrupted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The playground flavour of the published greeter: its module.yaml (ports moved to free
    ones, as two tests may share the machine), its functions, curl-like requests."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    functions, functions_port = spawn_server(
        os.path.join(PUBLISHED, "functions.py"), "--egress", "playground"
    )
    runtime = None
    try:
        ingress_port, egress_port = free_port(), free_port()
        with open(os.path.join(PUBLISHED, "playground", "module.yaml")) as handle:
            module = handle.read()
        module = module.replace("port: 8090", f"port: {ingress_port}").replace(
            "port: 8091", f"port: {egress_port}"
        )
        (tmp_path / "module.yaml").write_text(module)
        log = open(tmp_path / "runtime.log", "w+")
        runtime = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "statefun.local",
                "module.yaml",
                "--db",
                "state.db",
                "--endpoint",
                f"example/*=http://127.0.0.1:{functions_port}/statefun",
            ],
            cwd=tmp_path,
            stderr=log,
            env=env,
        )
        deadline = time.monotonic() + 20
        while "playground egress listening" not in open(tmp_path / "runtime.log").read():
            assert runtime.poll() is None, open(tmp_path / "runtime.log").read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ingress, egress = f"http://127.0.0.1:{ingress_port}", f"http://127.0.0.1:{egress_port}"
        typed = {"Content-Type": "application/vnd.example/GreetRequest"}
        for _ in range(2):
            assert http("PUT", f"{ingress}/example/person/Bob", b'{"name": "Bob"}', typed) == (
                200,
                b"",
            )
        greetings = []
        deadline = time.monotonic() + 20
        while len(greetings) < 2:
            status, body = http("GET", f"{egress}/greetings")
            assert status in (200, 404) and time.monotonic() < deadline
            if status == 200:
                greetings.append(body.decode())
            else:
                time.sleep(0.05)
        assert greetings == ["Welcome Bob", "Nice to see you again Bob"]
        assert http("GET", f"{egress}/greetings")[0] == 404
        assert http("GET", f"{egress}/elsewhere")[0] == 405
        status, body = http("PUT", f"{ingress}/not-an-address", b"x")
        assert status == 500 and b"Invalid URL" in body
        time.sleep(0.3)
        assert runtime.poll() is None, "the runtime stopped although it serves until interrupted"
        runtime.send_signal(signal.SIGINT)
        assert runtime.wait(timeout=20) == 0
        text = open(tmp_path / "runtime.log").read()
        assert re.search(rf"playground ingress listening on http://127.0.0.1:{ingress_port}", text)
    finally:
        stop(runtime, functions)
