"""Egress records → JSON lines, written from the durable outbox to stdout or files."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import IO, Any, Protocol

from google.protobuf import message

from statefun import kafka_egress_pb2, kinesis_egress_pb2, request_reply_pb2
from statefun.local.codec import describe_bytes
from statefun.local.config import KAFKA_EGRESS, EgressSpec
from statefun.local.errors import ProtocolError
from statefun.local.store import Store

KAFKA_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
KINESIS_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def egress_line(
    spec: EgressSpec,
    argument: request_reply_pb2.TypedValue,
    value_class: type[message.Message] | None,
) -> str:
    """One JSON line for a record sent to a Kafka/Kinesis egress; the typename rules are Flink's."""
    fields: dict[str, Any] = {"egress": spec.id}
    try:
        if spec.kind == KAFKA_EGRESS:
            if argument.typename != KAFKA_RECORD_TYPENAME:
                raise ProtocolError(
                    f"egress {spec.id} is a Kafka egress and takes {KAFKA_RECORD_TYPENAME} "
                    f"(kafka_egress_message), got {argument.typename!r}"
                )
            kafka = kafka_egress_pb2.KafkaProducerRecord.FromString(argument.value)
            fields["topic"] = kafka.topic
            fields["key"] = kafka.key or None  # an empty key means no key, as in Flink
            fields.update(describe_bytes(kafka.value_bytes, value_class))
        else:
            if argument.typename != KINESIS_RECORD_TYPENAME:
                raise ProtocolError(
                    f"egress {spec.id} is a Kinesis egress and takes {KINESIS_RECORD_TYPENAME} "
                    f"(kinesis_egress_message), got {argument.typename!r}"
                )
            kinesis = kinesis_egress_pb2.KinesisEgressRecord.FromString(argument.value)
            fields["stream"] = kinesis.stream
            fields["partition_key"] = kinesis.partition_key
            if kinesis.explicit_hash_key:
                fields["explicit_hash_key"] = kinesis.explicit_hash_key
            fields.update(describe_bytes(kinesis.value_bytes, value_class))
    except message.DecodeError as error:
        raise ProtocolError(f"egress {spec.id}: the record does not parse: {error}") from None
    return _ENCODER.encode(fields)


class Sink(Protocol):
    def write_lines(self, lines: list[str]) -> None: ...

    def flush(self) -> None: ...


class StreamSink:
    """Appends JSON lines to a text stream (stdout, or a file opened for appending)."""

    def __init__(self, stream: IO[str], owned: bool) -> None:
        self.stream = stream
        self.owned = owned

    @staticmethod
    def open(path: str) -> "StreamSink":
        if path == "-":
            return StreamSink(sys.stdout, owned=False)
        stream = open(path, "a+", encoding="utf-8")
        if _ends_inside_a_line(path):
            # A crash in the middle of a write left a torn last line; end it, so the records
            # written again from the outbox start on lines of their own.
            stream.write("\n")
        return StreamSink(stream, owned=True)

    def write_lines(self, lines: list[str]) -> None:
        self.stream.write("".join(line + "\n" for line in lines))

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        if self.owned:
            self.stream.close()


def _ends_inside_a_line(path: str) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


class EgressWriter:
    """Drains the outbox after each commit; a row is deleted only after its line was flushed,
    so a crash in between writes it again on restart (at-least-once)."""

    def __init__(self, store: Store, sinks: dict[str, Sink], batch: int = 2000) -> None:
        self.store = store
        self.sinks = sinks
        self.batch = batch
        self.wakeup = asyncio.Event()
        self.pending = True  # there may be rows left from before a restart
        self.lines_written = 0

    def notify(self) -> None:
        self.pending = True
        self.wakeup.set()

    def drain(self) -> None:
        while True:
            rows = self.store.read_outbox(self.batch)
            if not rows:
                self.pending = False
                return
            by_sink: dict[str, list[str]] = {}
            for _, egress_id, line in rows:
                by_sink.setdefault(egress_id, []).append(line)
            for egress_id, lines in by_sink.items():
                self.sinks[egress_id].write_lines(lines)
            for egress_id in by_sink:
                self.sinks[egress_id].flush()
            self.store.delete_outbox_through(rows[-1][0])
            self.lines_written += len(rows)

    async def run(self) -> None:
        while True:
            self.wakeup.clear()
            self.drain()
            await self.wakeup.wait()
