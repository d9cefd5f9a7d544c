"""Fake remote functions on 127.0.0.1 for the local runtime's tests (raw protocol, no SDK)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import web

from statefun import kafka_egress_pb2, request_reply_pb2 as pb, types_pb2

INT_TYPE = "io.statefun.types/int"
KAFKA_RECORD = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"

Handler = Callable[[pb.ToFunction.InvocationBatchRequest], Awaitable[web.StreamResponse]]


def reply(response: pb.FromFunction) -> web.Response:
    return web.Response(body=response.SerializeToString(), content_type="application/octet-stream")


def missing_state(*specs: tuple[str, str, int, int]) -> web.Response:
    response = pb.FromFunction()
    context = response.incomplete_invocation_context
    for name, typename, mode, millis in specs:
        spec = context.missing_values.add(state_name=name, type_typename=typename)
        spec.expiration_spec.mode = mode  # type: ignore[assignment]
        spec.expiration_spec.expire_after_millis = millis
    return reply(response)


def state_of(request: pb.ToFunction.InvocationBatchRequest) -> dict[str, pb.TypedValue | None]:
    return {
        value.state_name: (value.state_value if value.HasField("state_value") else None)
        for value in request.state
    }


def int_value(value: int) -> pb.TypedValue:
    return pb.TypedValue(
        typename=INT_TYPE,
        has_value=True,
        value=types_pb2.IntWrapper(value=value).SerializeToString(),
    )


def read_int(value: pb.TypedValue | None) -> int:
    return types_pb2.IntWrapper.FromString(value.value).value if value is not None else 0


def kafka_egress(
    response: pb.FromFunction, egress: str, topic: str, key: str, value: bytes
) -> None:
    namespace, _, name = egress.partition("/")
    record = kafka_egress_pb2.KafkaProducerRecord(topic=topic, key=key, value_bytes=value)
    response.invocation_result.outgoing_egresses.add(
        egress_namespace=namespace,
        egress_type=name,
        argument=pb.TypedValue(
            typename=KAFKA_RECORD, has_value=True, value=record.SerializeToString()
        ),
    )


@dataclass
class FakeFunctions:
    """An aiohttp app serving /{name}; records every request it decodes."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    requests: list[tuple[str, pb.ToFunction.InvocationBatchRequest]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> "FakeFunctions":
        async def handle(request: web.Request) -> web.StreamResponse:
            name = request.match_info["name"]
            message = pb.ToFunction.FromString(await request.read())
            self.requests.append((name, message.invocation))
            return await self.handlers[name](message.invocation)

        app = web.Application()
        app.router.add_post("/{name}", handle)
        self.runner, self.port = await serve_app(app)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def batches(self, name: str) -> list[pb.ToFunction.InvocationBatchRequest]:
        return [request for target, request in self.requests if target == name]


def greeter_handler(max_state: str = "seen") -> Handler:
    """Counts each id's messages in int state `seen` and greets on egress example/greets."""

    async def handle(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        state = state_of(request)
        if max_state not in state:
            return missing_state((max_state, INT_TYPE, 0, 0))
        seen = read_int(state[max_state])
        response = pb.FromFunction()
        for invocation in request.invocations:
            seen += 1
            name = invocation.argument.value.decode()
            kafka_egress(
                response,
                "example/greets",
                "greetings",
                request.target.id,
                json.dumps({"name": name, "seen": seen}).encode(),
            )
        response.invocation_result.state_mutations.add(
            mutation_type=pb.FromFunction.PersistedValueMutation.MODIFY,
            state_name=max_state,
            state_value=int_value(seen),
        )
        return reply(response)

    return handle


def write_module(
    directory: str,
    port: int,
    extra: str = "",
    functions: str = "example/*",
    targets: str = "[example/greeter]",
    max_batch: int = 1000,
    call: str = "2s",
    transport: str = "async",
    read: str = "",
) -> str:
    timeouts = (
        f"    call: {call}\n    connect: 1s\n"
        if transport == "async"
        else f"    timeouts:\n      call: {call}\n      connect: 200ms\n"
        + (f"      read: {read}\n" if read else "")
    )
    text = (
        "kind: io.statefun.endpoints.v2/http\n"
        "spec:\n"
        f"  functions: {functions}\n"
        f"  urlPathTemplate: http://127.0.0.1:{port}/{{function.name}}\n"
        f"  maxNumBatchRequests: {max_batch}\n"
        "  transport:\n"
        f"    type: io.statefun.transports.v1/{transport}\n" + timeouts + textwrap.dedent(f"""\
        ---
        kind: io.statefun.kafka.v1/ingress
        spec:
          id: example/names
          address: kafka:9092
          topics:
            - topic: names
              valueType: io.statefun.types/string-raw
              targets: {targets}
        ---
        kind: io.statefun.kafka.v1/egress
        spec:
          id: example/greets
          address: kafka:9092
        """) + extra
    )
    path = os.path.join(directory, "module.yaml")
    with open(path, "w") as handle:
        handle.write(text)
    return path


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached within the time limit")
        await asyncio.sleep(0.01)


class ThreadedFunctions:
    """FakeFunctions on an event loop of their own thread, for tests that run the CLI's main()
    (which runs its own loop) in the test thread."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        import threading

        self.fake = FakeFunctions(handlers=handlers)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeFunctions:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JSON_GREETER = os.path.join(ROOT, "bench", "local_greeter_server.py")
# The JSON greeter of bench/local_greeter_server.py behind a Kafka ingress and egress.
JSON_GREETER_MODULE = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: http://127.0.0.1:{port}/statefun
  maxNumBatchRequests: {max_batch}
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  topics:
    - topic: names
      valueType: example/GreetRequest
      targets: [example/greeter]
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/greets
"""


def json_greeter_module(port: int, max_batch: int = 1000) -> str:
    return JSON_GREETER_MODULE.format(port=port, max_batch=max_batch)


def spawn_server(*command: str) -> tuple["subprocess.Popen[str]", int]:
    """Start a server process that prints its port on its first stdout line."""
    server = subprocess.Popen(
        [sys.executable, *command],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert server.stdout is not None
    return server, int(server.stdout.readline())


def stop(*processes: "subprocess.Popen[str] | subprocess.Popen[bytes] | None") -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def serve_app(app: web.Application) -> tuple[web.AppRunner, int]:
    """Run an aiohttp app on a free port of 127.0.0.1."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
