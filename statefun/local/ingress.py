"""Local ingress sources for Kafka/Kinesis ingresses: JSON-lines files, stdin, HTTP POST.

A record is one JSON object: ``{"ingress": "example/names", "topic": "names", "key": "Alice",
"value": ...}`` (``stream``/``partition_key`` are accepted for Kinesis). ``ingress`` may be left
out when the module has one ingress, ``topic`` when the ingress has one topic. The value becomes
the message's bytes: a string as UTF-8, ``value_base64`` as raw bytes, a JSON object through
json_format when the valueType's protobuf module is loaded, other JSON as UTF-8 JSON text.

With ``--key-field FIELD`` a line is a producer's raw JSON value instead (``{"name": "Bob"}``),
and the key is that field of it.

Every source reads only as fast as its records become durable: it waits for room in the backlog
before reading more, and an HTTP request is answered after its records are committed.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import select
import stat
import sys
import threading
from dataclasses import dataclass
from urllib.parse import unquote
from typing import Any, BinaryIO, Callable

from aiohttp import web

from statefun.local.codec import RecordError, encode_value
from statefun.local.config import KAFKA_INGRESS, PLAYGROUND_INGRESS, IngressRoute, ModuleConfig
from statefun.local.engine import Engine, Message
from statefun.local.errors import ConfigError
from statefun.local.wire import typed_value

_RECORD_KEYS = {"ingress", "topic", "stream", "key", "partition_key", "value", "value_base64"}
LineParser = Callable[[bytes], list[Message]]


def _route_messages(route: IngressRoute, key: str, value_bytes: bytes) -> list[Message]:
    argument = typed_value(route.value_type, value_bytes)
    return [((target, key), None, argument) for target in route.targets]


def record_messages(record: object, config: ModuleConfig) -> list[Message]:
    """The messages one ingress record turns into: one per target of its topic."""
    if not isinstance(record, dict):
        raise RecordError("a record must be a JSON object")
    if not record.keys() <= _RECORD_KEYS:
        unknown = sorted(set(record) - _RECORD_KEYS)
        raise RecordError(
            f"unknown record field(s) {', '.join(unknown)}; known: {', '.join(sorted(_RECORD_KEYS))}"
            " (for a producer's raw JSON values use --key-field)"
        )
    routable = {i: spec for i, spec in config.ingresses.items() if spec.kind != PLAYGROUND_INGRESS}
    ingress_id = record.get("ingress")
    if ingress_id is None:
        if len(routable) != 1:
            raise RecordError(
                f"say which ingress with \"ingress\": one of {', '.join(sorted(routable)) or '(none defined)'}"
            )
        ingress = next(iter(routable.values()))
    else:
        found = routable.get(str(ingress_id))
        if found is None:
            raise RecordError(
                f"unknown ingress {ingress_id!r}; the module defines {', '.join(sorted(routable)) or 'none'}"
            )
        ingress = found
    topic_field = "topic" if ingress.kind == KAFKA_INGRESS else "stream"
    topic = record.get(topic_field, record.get("topic"))
    route = ingress.route(None if topic is None else str(topic))
    if route is None:
        names = ", ".join(route.topic for route in ingress.routes)
        raise RecordError(
            f'ingress {ingress.id}: give "{topic_field}", one of {names}'
            if topic is None
            else f"ingress {ingress.id} has no {topic_field} {topic!r}; it has {names}"
        )
    key = record.get("key", record.get("partition_key"))
    if not isinstance(key, str) or not key:
        raise RecordError('a record needs a non-empty string "key" (it becomes the function id)')
    return _route_messages(route, key, encode_value(record, route.value_type))


def parse_line(line: bytes, config: ModuleConfig) -> list[Message]:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        raise RecordError(f"not a JSON object: {error}") from None
    return record_messages(record, config)


def envelope_parser(config: ModuleConfig) -> LineParser:
    return lambda line: parse_line(line, config)


def keyed_parser(config: ModuleConfig, key_field: str, topic: str | None) -> LineParser:
    """--key-field: each line is the record's value (as a producer sends it), the key one of its
    fields (``a.b`` reaches into nested objects when there is no field named ``a.b``)."""
    routes = [
        route
        for spec in config.ingresses.values()
        if spec.kind != PLAYGROUND_INGRESS
        for route in spec.routes
        if topic is None or route.topic == topic
    ]
    if len(routes) != 1:
        every = [
            route.topic
            for spec in config.ingresses.values()
            if spec.kind != PLAYGROUND_INGRESS
            for route in spec.routes
        ]
        if not every:
            raise ConfigError("--key-field: the module has no Kafka or Kinesis ingress to feed")
        if topic is None:
            raise ConfigError(
                f"--key-field: the module's ingresses have {len(every)} topics/streams "
                f"({', '.join(every)}); say which with --topic"
            )
        raise ConfigError(
            f"--topic {topic!r}: "
            + (
                f"no ingress has it; topics/streams: {', '.join(every)}"
                if not routes
                else "more than one ingress has a topic/stream of that name"
            )
        )
    (route,) = routes
    path = key_field.split(".")

    def key_of(value: dict[str, Any]) -> object:
        if key_field in value:
            return value[key_field]
        current: object = value
        for part in path:
            if not isinstance(current, dict) or part not in current:
                return None
            current = current[part]
        return current

    def parse(line: bytes) -> list[Message]:
        try:
            value = json.loads(line)
        except (ValueError, UnicodeDecodeError) as error:
            raise RecordError(f"not JSON: {error}") from None
        if not isinstance(value, dict):
            raise RecordError(f"--key-field {key_field}: the line is not a JSON object")
        key = key_of(value)
        if not isinstance(key, str) or not key:
            found = "missing" if key is None else f"{type(key).__name__} {key!r}"
            raise RecordError(
                f"--key-field {key_field}: the key must be a non-empty string, it is {found}"
            )
        return _route_messages(route, key, encode_value({"value": value}, route.value_type))

    return parse


class SkipReport:
    """Reports records that are skipped, naming source and line; after the first 100 of a
    source only counts them, so a file of bad lines does not flood the terminal."""

    SHOWN = 100

    def __init__(self, name: str, log: Callable[[str], None]) -> None:
        self.name = name
        self.log = log
        self.count = 0

    def skip(self, line_number: int, error: Exception) -> None:
        self.count += 1
        if self.count <= self.SHOWN:
            self.log(f"{self.name}:{line_number}: record skipped: {error}")
        if self.count == self.SHOWN:
            self.log(f"{self.name}: further skipped records are counted, not shown")


def _parse_lines(
    lines: list[bytes], first_number: int, parser: LineParser, report: SkipReport
) -> list[Message]:
    messages: list[Message] = []
    for number, line in enumerate(lines, start=first_number):
        if not line.strip():
            continue
        try:
            messages.extend(parser(line))
        except RecordError as error:
            report.skip(number, error)
    return messages


async def _commit(engine: Engine, messages: list[Message], position: Any = None) -> None:
    """Wait for room, then make the messages durable. Once submitted they are committed even if
    the caller goes away (an HTTP client hanging up): the commit settles the admitted room."""
    count = len(messages)
    await engine.admit(count)
    await asyncio.shield(engine.accept(messages, position, admitted=count))


class FileSource:
    """Reads a JSON-lines file from its committed offset; the offset of the next unread line is
    committed with the accepted messages, so a restart neither skips nor repeats a record."""

    def __init__(
        self,
        path: str,
        engine: Engine,
        follow: bool,
        chunk_lines: int = 2_000,
        parser: LineParser | None = None,
    ) -> None:
        self.path = path
        self.source = "file:" + os.path.abspath(path)
        self.engine = engine
        self.follow = follow
        self.chunk_lines = chunk_lines
        self.parser = parser or envelope_parser(engine.config)
        self.report = SkipReport(path, engine.log)

    @property
    def rejected(self) -> int:
        return self.report.count

    async def run(self) -> None:
        offset, digest = self.engine.store.get_offset(self.source)
        with open(self.path, "rb") as handle:
            if offset and head_digest(handle, offset) != digest:
                # Not the file that was read before (rewritten, truncated, replaced): resuming
                # at the old byte offset would skip or split records.
                self.engine.log(
                    f"{self.path} is not the file read up to byte {offset} before (its beginning "
                    "differs); reading it from the start"
                )
                offset = 0
            # The line number of the first unread line, counted once, only if a line is bad.
            line_number: int | None = 1 if offset == 0 else None
            handle.seek(offset)
            while True:
                await self.engine.room_for_more()
                lines: list[bytes] = []
                start = offset
                while len(lines) < self.chunk_lines:
                    line = handle.readline()
                    if not line:
                        break
                    if not line.endswith(b"\n") and self.follow:
                        handle.seek(offset)  # an incomplete last line: wait for the writer
                        break
                    lines.append(line)
                    offset += len(line)
                if lines:
                    if line_number is None:
                        line_number = _count_lines(handle, start)
                    messages = _parse_lines(lines, line_number, self.parser, self.report)
                    line_number += len(lines)
                    position = (self.source, offset, head_digest(handle, offset))
                    await _commit(self.engine, messages, position)
                    continue
                if not self.follow:
                    return
                await asyncio.sleep(0.05)


def _count_lines(handle: BinaryIO, end: int) -> int:
    """1 + the number of newlines before byte `end` (the line number starting there)."""
    position = handle.tell()
    handle.seek(0)
    count, remaining = 1, end
    while remaining > 0:
        block = handle.read(min(remaining, 1 << 20))
        if not block:
            break
        count += block.count(b"\n")
        remaining -= len(block)
    handle.seek(position)
    return count


_HEAD_BYTES = 4096


def head_digest(handle: BinaryIO, offset: int) -> str:
    """A digest of the file's first bytes read so far (at most 4 KiB), to recognise the file."""
    position = handle.tell()
    handle.seek(0)
    head = handle.read(min(offset, _HEAD_BYTES))
    handle.seek(position)
    if len(head) < min(offset, _HEAD_BYTES):
        return ""  # shorter than what was read before: not the same file
    return hashlib.sha256(head).hexdigest()


# --- stdin -----------------------------------------------------------------------------------
_SPLICE_F_NONBLOCK = 2
_F_SETPIPE_SZ = 1031
_F_GETPIPE_SZ = 1032


def _libc_tee() -> Callable[[int, int, int, int], int] | None:
    """tee(2): copy the bytes buffered in one pipe to another *without consuming them*."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).tee
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
    function.restype = ctypes.c_ssize_t
    return function


class StdinSource:
    """Reads JSON lines from stdin, and only as fast as they become durable.

    When stdin is a pipe (on Linux), lines are looked at with tee(2), committed, and only then
    taken out of the pipe: a kill -9 at any moment loses no line the runtime consumed (lines
    still in the pipe go with it, as they would with any reader). A line longer than the pipe's
    buffer has to be taken before its end is seen. Other stdins (a file, a terminal) are read a
    chunk at a time after the previous chunk was committed.
    """

    def __init__(
        self, engine: Engine, parser: LineParser | None = None, chunk_lines: int = 2_000
    ) -> None:
        self.engine = engine
        self.parser = parser or envelope_parser(engine.config)
        self.chunk_lines = chunk_lines
        self.report = SkipReport("<stdin>", engine.log)
        self.lines_read = 0

    @property
    def rejected(self) -> int:
        return self.report.count

    async def run(self) -> None:
        try:
            fd = sys.stdin.fileno()
            mode = os.fstat(fd).st_mode
        except (OSError, ValueError, AttributeError):
            return  # no stdin at all: nothing to read
        tee = _libc_tee()
        if stat.S_ISFIFO(mode) and tee is not None:
            await self._run_tee(fd, tee)
        elif stat.S_ISREG(mode):
            await self._run_file(fd)
        else:
            await self._run_lines(fd)

    async def _take(self, lines: list[bytes]) -> None:
        messages = _parse_lines(lines, self.lines_read + 1, self.parser, self.report)
        self.lines_read += len(lines)
        await _commit(self.engine, messages)

    async def _run_tee(self, fd: int, tee: Callable[[int, int, int, int], int]) -> None:
        loop = asyncio.get_running_loop()
        peek_read, peek_write = os.pipe()
        try:
            os.set_blocking(peek_read, False)
            try:
                fcntl.fcntl(peek_write, _F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
            try:
                capacity = fcntl.fcntl(fd, _F_GETPIPE_SZ)
            except OSError:
                capacity = 65536
            carry = b""  # the start of a line longer than the pipe, already taken
            while True:
                await self.engine.room_for_more()
                await _readable(loop, fd)
                copied = tee(fd, peek_write, 1 << 20, _SPLICE_F_NONBLOCK)
                if copied < 0:
                    code = ctypes.get_errno()
                    if code in (errno.EAGAIN, errno.EINTR):
                        continue
                    raise OSError(code, f"reading stdin: {os.strerror(code)}")
                if copied == 0:  # end of input
                    if carry:
                        await self._take([carry])
                    return
                data = _read_exactly(peek_read, copied)
                end = data.rfind(b"\n")
                if end < 0:
                    if _writer_gone(fd):
                        # The last line, without a newline: the writer has closed the pipe.
                        await self._take([carry + data])
                        _consume(fd, copied)
                        carry = b""
                    elif copied >= capacity:
                        carry += _consume(fd, copied)  # one line fills the pipe: take it
                    else:
                        await asyncio.sleep(0.005)  # the rest of the line is on its way
                    continue
                complete = data[: end + 1]
                lines = complete.splitlines(keepends=True)
                if carry:
                    lines[0] = carry + lines[0]
                    carry = b""
                await self._take(lines)
                _consume(fd, len(complete))
        finally:
            os.close(peek_read)
            os.close(peek_write)

    async def _run_file(self, fd: int) -> None:
        with os.fdopen(os.dup(fd), "rb") as handle:
            while True:
                await self.engine.room_for_more()
                lines: list[bytes] = []
                while len(lines) < self.chunk_lines:
                    line = handle.readline()
                    if not line:
                        break
                    lines.append(line)
                if not lines:
                    return
                await self._take(lines)

    async def _run_lines(self, fd: int) -> None:
        """A terminal or anything else that can block: one line at a time, each read by a
        daemon thread only when asked for (it must not keep the process alive at exit)."""
        loop = asyncio.get_running_loop()
        asked = threading.Semaphore(0)
        lines: asyncio.Queue[bytes] = asyncio.Queue()
        handle = os.fdopen(os.dup(fd), "rb", buffering=0)

        def read() -> None:
            while True:
                asked.acquire()
                line = _read_line(handle)
                loop.call_soon_threadsafe(lines.put_nowait, line)
                if not line:
                    return

        threading.Thread(target=read, name="statefun-local-stdin", daemon=True).start()
        while True:
            await self.engine.room_for_more()
            asked.release()
            line = await lines.get()
            if not line:
                return
            await self._take([line])


def _read_line(handle: BinaryIO) -> bytes:
    """One line, read a byte at a time so that nothing after it is taken from the input."""
    data = bytearray()
    while True:
        try:
            byte = handle.read(1)
        except OSError:
            byte = b""
        if not byte:
            return bytes(data)
        data += byte
        if byte == b"\n":
            return bytes(data)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _read_exactly(fd: int, count: int) -> bytes:
    parts: list[bytes] = []
    while count > 0:
        try:
            part = os.read(fd, count)
        except BlockingIOError:
            continue
        if not part:
            break
        parts.append(part)
        count -= len(part)
    return b"".join(parts)


def _consume(fd: int, count: int) -> bytes:
    """Take `count` bytes that tee() showed are in the pipe."""
    return _read_exactly(fd, count)


def _writer_gone(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & select.POLLHUP for _, events in poller.poll(0))


# --- HTTP ------------------------------------------------------------------------------------
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_RECORDS_PER_REQUEST = 100_000
_BODY_BUDGET_BYTES = 4 * 1024 * 1024
_MAX_WAITING_REQUESTS = 256
_HANDLER_ARGS = {"read_bufsize": 16 * 1024}


class BodyBudget:
    """Bounds the request bodies held in memory at once (read, parsed, waiting for room):
    requests take their share in arrival order; one larger than the whole budget waits until
    it has it all."""

    def __init__(self, capacity: int = _BODY_BUDGET_BYTES) -> None:
        self.capacity = capacity
        self.used = 0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def acquire(self, size: int) -> int:
        size = min(size, self.capacity)
        if not self._waiting and self.used + size <= self.capacity:
            self.used += size
            return size
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((size, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(size)
            else:
                self._waiting = [entry for entry in self._waiting if entry[1] is not waiter]
            raise
        return size

    def release(self, size: int) -> None:
        self.used -= size
        while self._waiting:
            want, waiter = self._waiting[0]
            if self.used + want > self.capacity:
                return
            self._waiting.pop(0)
            self.used += want
            waiter.set_result(None)


@dataclass
class HttpLimits:
    budget: BodyBudget
    max_waiting: int = _MAX_WAITING_REQUESTS


def http_ingress_app(engine: Engine, limits: HttpLimits | None = None) -> web.Application:
    """POST /ingress with one JSON record or JSON lines; 200 only after the records are durable."""
    limits = limits or HttpLimits(BodyBudget())

    async def ingest(request: web.Request) -> web.Response:
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            return web.json_response({"error": "the body is larger than 32 MiB"}, status=413)
        if limits.budget.waiting >= limits.max_waiting:
            return web.json_response(
                {"error": "too many requests are waiting; retry later"},
                status=503,
                headers={"Retry-After": "1"},
            )
        held = await limits.budget.acquire(length if length is not None else MAX_BODY_BYTES)
        try:
            body = await request.read()
            messages: list[Message] = []
            records = 0
            for number, line in enumerate(body.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    messages.extend(parse_line(line, engine.config))
                except RecordError as error:
                    return web.json_response({"error": f"line {number}: {error}"}, status=400)
                records += 1
                if records > MAX_RECORDS_PER_REQUEST:
                    return web.json_response(
                        {"error": f"more than {MAX_RECORDS_PER_REQUEST:,} records; split them"},
                        status=413,
                    )
            if not records:
                return web.json_response({"error": "no record in the request body"}, status=400)
            if len(messages) > engine.max_backlog:
                return web.json_response(
                    {
                        "error": f"{len(messages):,} messages are more than the backlog bound "
                        f"(--max-backlog {engine.max_backlog:,}); split them"
                    },
                    status=413,
                )
            try:
                await _commit(engine, messages)  # a producer waits while the backlog is full
            except Exception:
                if engine.failure is None:
                    raise
                return web.json_response({"error": str(engine.failure)}, status=503)
            return web.json_response({"accepted": records, "messages": len(messages)})
        finally:
            limits.budget.release(held)

    # Batches of records, not 1 MiB; a small read buffer per connection, so that connections
    # waiting for their turn hold little of their bodies in memory.
    app = web.Application(client_max_size=MAX_BODY_BYTES, handler_args=_HANDLER_ARGS)
    app.router.add_post("/ingress", ingest)
    return app


def playground_ingress_app(engine: Engine, limits: HttpLimits | None = None) -> web.Application:
    """The playground ingress: ``PUT /<namespace>/<type>/<id>`` (any method, as there) with the
    message as body; its typename from ``Content-Type: application/vnd.<typename>``, else
    io.statefun.types/string. 200 once the message is durable; 500 with the reason otherwise."""
    limits = limits or HttpLimits(BodyBudget())

    async def deliver(request: web.Request) -> web.Response:
        path = request.raw_path.partition("?")[0]
        parts = path[1:].split("/")
        while parts and parts[-1] == "":  # as Java's String.split drops trailing empty parts
            parts.pop()
        if len(parts) != 3 or not all(parts):
            return web.Response(
                status=500,
                text="Invalid URL. Please specify '/namespace/function_type/function_id'\n",
            )
        namespace, name, key = (unquote(part) for part in parts)
        function_type = f"{namespace}/{name}"
        if engine.config.endpoint_for(function_type) is None:
            return web.Response(
                status=500,
                text=f"No endpoint in {engine.config.file} serves function type {function_type}\n",
            )
        typename = "io.statefun.types/string"
        for value in request.headers.getall("Content-Type", []):
            if value.startswith("application/vnd."):
                typename = value[len("application/vnd.") :]
                break
        length = request.content_length
        held = await limits.budget.acquire(length if length is not None else MAX_BODY_BYTES)
        try:
            body = await request.read()
            try:
                await _commit(engine, [((function_type, key), None, typed_value(typename, body))])
            except Exception:
                if engine.failure is None:
                    raise
                return web.Response(status=500, text=f"{engine.failure}\n")
        finally:
            limits.budget.release(held)
        return web.Response(status=200)

    app = web.Application(client_max_size=MAX_BODY_BYTES, handler_args=_HANDLER_ARGS)
    app.router.add_route("*", "/{tail:.*}", deliver)
    return app


def playground_egress_app(engine: Engine, topics: tuple[str, ...]) -> web.Application:
    """The playground egress: ``GET /<topic>`` returns the oldest record's payload and removes
    it; 404 when the topic is empty, 405 for a topic the module does not define."""
    known = set(topics)

    async def fetch(request: web.Request) -> web.Response:
        topic = request.path[1:]
        if topic not in known:
            return web.Response(status=405)
        payload = engine.pop_playground(topic)
        if payload is None:
            return web.Response(status=404)
        return web.Response(status=200, body=payload)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fetch)
    return app


async def serve(app: web.Application, host: str, port: int, what: str) -> tuple[web.AppRunner, int]:
    """Start an aiohttp app; (runner, bound port). A port in use is a one-line error."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise ConfigError(
            f"{what}: can not listen on {host}:{port}: {error.strerror or error}"
        ) from None
    addresses: list[Any] = list(runner.addresses)
    bound = int(addresses[0][1]) if addresses else port
    return runner, bound


async def start_http_ingress(engine: Engine, host: str, port: int) -> tuple[web.AppRunner, int]:
    return await serve(http_ingress_app(engine), host, port, "--http-ingress")
