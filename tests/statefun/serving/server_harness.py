"""Helpers of the statefun-serve tests: an in-process server on its own loop thread, raw clients.

The server runs for real (a listening socket on 127.0.0.1, the chosen loop and
parser); the tests talk to it over plain sockets, so every byte on the wire is
theirs to choose, malformed ones included.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import socket
import struct
import threading
import time
import typing
from dataclasses import dataclass, field

from statefun import IntType, RequestReplyHandler, StatefulFunctions, ValueSpec, message_builder
from statefun.request_reply_pb2 import FromFunction, ToFunction, TypedValue
from statefun.serving.server import HttpServer, ServerConfig, choose_loop

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None
HAVE_HTTPTOOLS = importlib.util.find_spec("httptools") is not None

# (loop, parser): the fast path where installed, and the pure-Python fallback everywhere.
STACKS = [
    pytest_param
    for pytest_param in [("uvloop", "httptools"), ("asyncio", "python")]
    if pytest_param == ("asyncio", "python") or (HAVE_UVLOOP and HAVE_HTTPTOOLS)
]
STACK_IDS = [f"{loop}+{http}" for loop, http in STACKS]


def build_functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("test/greeter", specs=[ValueSpec(name="seen", type=IntType)])
    def greeter(context: typing.Any, message: typing.Any) -> None:
        seen = context.storage.seen or 0
        context.storage.seen = seen + 1
        name = message.as_string()
        context.send(
            message_builder(
                target_typename="test/inbox", target_id=name, str_value=f"Hello {name} #{seen}"
            )
        )

    @functions.bind("test/async-greeter")
    async def async_greeter(context: typing.Any, message: typing.Any) -> None:
        name = message.as_string()
        context.send(
            message_builder(target_typename="test/inbox", target_id=name, str_value=f"Hello {name}")
        )

    @functions.bind("test/sleeper")
    async def sleeper(context: typing.Any, message: typing.Any) -> None:
        # The message is the delay in milliseconds; the reply says which task ran us.
        before = asyncio.current_task()
        await asyncio.sleep(message.as_int() / 1000)
        after = asyncio.current_task()
        same = "same task" if before is after and before is not None else "different tasks"
        context.send(message_builder(target_typename="test/inbox", target_id="x", str_value=same))

    @functions.bind("test/fails")
    def fails(context: typing.Any, message: typing.Any) -> None:
        raise RuntimeError("the function failed on purpose")

    return functions


def build_handler() -> RequestReplyHandler:
    return RequestReplyHandler(build_functions())


def request(function: str = "greeter", *, name: str = "Ann", delay_ms: int | None = None) -> bytes:
    """A serialized ToFunction for ``test/<function>``."""
    to_function = ToFunction()
    batch = to_function.invocation
    batch.target.namespace, batch.target.type, batch.target.id = "test", function, "id-1"
    if function == "greeter":
        batch.state.add(state_name="seen")
    if delay_ms is not None:
        argument = TypedValue(
            typename="io.statefun.types/int",
            has_value=True,
            value=b"\x0d" + struct.pack("<i", delay_ms),
        )
    else:
        encoded = name.encode()
        argument = TypedValue(
            typename="io.statefun.types/string",
            has_value=True,
            value=b"\x0a" + bytes((len(encoded),)) + encoded,
        )
    batch.invocations.add(argument=argument)
    return to_function.SerializeToString()


def sent_strings(body: bytes) -> list[str]:
    """The string values of the outgoing messages in a FromFunction."""
    from statefun.types_pb2 import StringWrapper

    result = FromFunction.FromString(body).invocation_result
    return [StringWrapper.FromString(m.argument.value).value for m in result.outgoing_messages]


def post(body: bytes, path: str = "/statefun", headers: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


def chunked(body: bytes, pieces: int = 3, path: str = "/statefun") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    out = head.encode()
    step = max(1, len(body) // pieces)
    for start in range(0, len(body), step):
        piece = body[start : start + step]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_head: bytes = b""
    extra: list[tuple[str, str]] = field(default_factory=list)


class Client:
    """A raw HTTP/1.1 client on one connection: send bytes, read whole responses."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buffer += data
        return True

    def response(self, head_only: bool = False) -> Response | None:
        """The next response, or None if the server closed the connection first."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                return None
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only or status < 200 else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                raise AssertionError(f"the response body was cut short: {self.buffer!r}")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(status, headers, body, head)

    def is_closed_by_server(self, timeout: float = 2.0) -> bool:
        """True if the server closes (EOF or reset) within ``timeout`` without sending more."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buffer += data
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


def exchange(port: int, data: bytes, timeout: float = 5.0) -> Response | None:
    client = Client(port, timeout)
    try:
        client.send(data)
        return client.response()
    finally:
        client.close()


class ServerThread:
    """An HttpServer on its own event loop in a thread (the loop and parser of ``stack``)."""

    def __init__(
        self,
        handler: typing.Any = None,
        stack: tuple[str, str] = ("asyncio", "python"),
        **config: typing.Any,
    ) -> None:
        loop_name, http = stack
        _, new_loop = choose_loop(loop_name)
        self.loop = new_loop()
        self.config = ServerConfig(port=0, loop=loop_name, http=http, **config)
        self.handler = handler if handler is not None else build_handler()
        self.tasks_created = 0
        started: concurrent.futures.Future[HttpServer] = concurrent.futures.Future()

        def count_tasks(
            loop: asyncio.AbstractEventLoop, coro: typing.Any, **kwargs: typing.Any
        ) -> typing.Any:
            self.tasks_created += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        async def main() -> None:
            asyncio.get_running_loop().set_task_factory(count_tasks)
            server = HttpServer(self.handler, self.config)
            await server.start()
            started.set_result(server)
            await server.wait_drained()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(main())
            except BaseException as error:  # noqa: BLE001 - reported by start()
                if not started.done():
                    started.set_exception(error)
                raise
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        self.server = started.result(timeout=10)
        self.port = self.server.port

    def call(self, function: typing.Callable[[], typing.Any]) -> typing.Any:
        """Run ``function`` on the server's loop and return its result."""
        result: concurrent.futures.Future[typing.Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(function())
            except BaseException as error:  # noqa: BLE001
                result.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return result.result(timeout=10)

    def connections(self) -> int:
        return typing.cast(int, self.call(lambda: len(self.server.connections)))

    def tasks(self) -> int:
        return typing.cast(int, self.call(lambda: len(asyncio.all_tasks(self.loop))))

    def wait_for(self, condition: typing.Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out waiting for the server"
            time.sleep(0.01)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.drain)
            self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the server did not stop"
