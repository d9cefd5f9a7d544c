"""Local ingress sources for Kafka/Kinesis ingresses: JSON-lines files, stdin, HTTP POST.

A record is one JSON object: ``{"ingress": "example/names", "topic": "names", "key": "Alice",
"value": ...}`` (``stream``/``partition_key`` are accepted for Kinesis). ``ingress`` may be left
out when the module has one ingress, ``topic`` when the ingress has one topic. The value becomes
the message's bytes: a string as UTF-8, ``value_base64`` as raw bytes, a JSON object through
json_format when the valueType's protobuf module is loaded, other JSON as UTF-8 JSON text.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import threading
from typing import Any, BinaryIO

from aiohttp import web

from statefun import request_reply_pb2 as pb
from statefun.local.codec import RecordError, encode_value
from statefun.local.config import KAFKA_INGRESS, ModuleConfig
from statefun.local.engine import Engine
from statefun.local.store import Address

Message = tuple[Address, Address | None, bytes]
_RECORD_KEYS = {"ingress", "topic", "stream", "key", "partition_key", "value", "value_base64"}


def record_messages(record: object, config: ModuleConfig) -> list[Message]:
    """The messages one ingress record turns into: one per target of its topic."""
    if not isinstance(record, dict):
        raise RecordError("a record must be a JSON object")
    if not record.keys() <= _RECORD_KEYS:
        unknown = sorted(set(record) - _RECORD_KEYS)
        raise RecordError(
            f"unknown record field(s) {', '.join(unknown)}; known: {', '.join(sorted(_RECORD_KEYS))}"
        )
    ingress_id = record.get("ingress")
    if ingress_id is None:
        if len(config.ingresses) != 1:
            raise RecordError(
                f"say which ingress with \"ingress\": one of {', '.join(sorted(config.ingresses)) or '(none defined)'}"
            )
        ingress = next(iter(config.ingresses.values()))
    else:
        found = config.ingresses.get(str(ingress_id))
        if found is None:
            raise RecordError(
                f"unknown ingress {ingress_id!r}; the module defines {', '.join(sorted(config.ingresses)) or 'none'}"
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
    value = encode_value(record, route.value_type)
    argument = pb.TypedValue(
        typename=route.value_type, has_value=True, value=value
    ).SerializeToString()
    return [((target, key), None, argument) for target in route.targets]


def parse_line(line: bytes, config: ModuleConfig) -> list[Message]:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        raise RecordError(f"not a JSON object: {error}") from None
    return record_messages(record, config)


class FileSource:
    """Reads a JSON-lines file from its committed offset; the offset of the next unread line is
    committed with the accepted messages, so a restart neither skips nor repeats a record."""

    def __init__(
        self,
        path: str,
        engine: Engine,
        follow: bool,
        chunk_lines: int = 2_000,
    ) -> None:
        self.path = path
        self.source = "file:" + os.path.abspath(path)
        self.engine = engine
        self.follow = follow
        self.chunk_lines = chunk_lines
        self.rejected = 0

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
            handle.seek(offset)
            while True:
                await self.engine.room_for_more()
                messages: list[Message] = []
                lines = 0
                while lines < self.chunk_lines:
                    line = handle.readline()
                    if not line:
                        break
                    if not line.endswith(b"\n") and self.follow:
                        handle.seek(offset)  # an incomplete last line: wait for the writer
                        break
                    lines += 1
                    start = offset
                    offset += len(line)
                    if not line.strip():
                        continue
                    try:
                        messages.extend(parse_line(line, self.engine.config))
                    except RecordError as error:
                        self.rejected += 1
                        self.engine.log(
                            f"{self.path}:{_line_of(self.path, start)}: record skipped: {error}"
                        )
                if lines:
                    position = (self.source, offset, head_digest(handle, offset))
                    await self.engine.accept(messages, position)
                    continue
                if not self.follow:
                    return
                await asyncio.sleep(0.05)


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


def _line_of(path: str, byte_offset: int) -> int:
    with open(path, "rb") as handle:
        return handle.read(byte_offset).count(b"\n") + 1


class StdinSource:
    """Reads JSON lines from stdin. A line is safe once accepted (committed); lines read but not
    yet committed when the process dies are lost, because stdin can not be replayed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rejected = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def read() -> None:
            for line in sys.stdin.buffer:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=read, name="statefun-local-stdin", daemon=True).start()
        number = 0
        done = False
        while not done:
            lines = [await queue.get()]
            while not queue.empty() and len(lines) < 2_000:
                lines.append(queue.get_nowait())
            messages: list[Message] = []
            for line in lines:
                if line is None:
                    done = True
                    break
                number += 1
                if not line.strip():
                    continue
                try:
                    messages.extend(parse_line(line, self.engine.config))
                except RecordError as error:
                    self.rejected += 1
                    self.engine.log(f"<stdin>:{number}: record skipped: {error}")
            if messages:
                await self.engine.room_for_more()
                await self.engine.accept(messages)


def http_ingress_app(engine: Engine) -> web.Application:
    """POST /ingress with one JSON record or JSON lines; 200 only after the records are durable."""

    async def ingest(request: web.Request) -> web.Response:
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
        if not records:
            return web.json_response({"error": "no record in the request body"}, status=400)
        await engine.room_for_more()  # a producer waits while the backlog is full
        if engine.failure is not None:
            return web.json_response({"error": str(engine.failure)}, status=503)
        await engine.accept(messages)
        return web.json_response({"accepted": records, "messages": len(messages)})

    app = web.Application(client_max_size=32 * 1024 * 1024)  # batches of records, not 1 MiB
    app.router.add_post("/ingress", ingest)
    return app


async def start_http_ingress(engine: Engine, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(http_ingress_app(engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses: list[Any] = list(runner.addresses)
    bound = int(addresses[0][1]) if addresses else port
    return runner, bound
