"""Egress records → JSON lines, written from the durable outbox to stdout or files."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import IO, Any, Protocol

from google.protobuf import message

from statefun import kafka_egress_pb2, kinesis_egress_pb2, request_reply_pb2
from statefun.local.codec import describe_bytes
from statefun.local.config import KAFKA_EGRESS, PLAYGROUND_EGRESS_RECORD, EgressSpec
from statefun.local.errors import ProtocolError
from statefun.local.store import OutboxRow, Store

KAFKA_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
KINESIS_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"
_ENCODER = json.JSONEncoder(ensure_ascii=False)
_quote = json.encoder.encode_basestring  # what _ENCODER does to a string, without the dict walk


def _kafka_line_as_text(
    spec: EgressSpec, kafka: kafka_egress_pb2.KafkaProducerRecord
) -> str | None:
    """The line _ENCODER would write for a Kafka record whose value is UTF-8 text, built
    directly (most records); None otherwise."""
    try:
        text = kafka.value_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return None
    key = _quote(kafka.key) if kafka.key else "null"
    return (
        f'{{"egress": {_quote(spec.id)}, "topic": {_quote(kafka.topic)}, "key": {key}, '
        f'"value": {_quote(text)}}}'
    )


def egress_line(
    spec: EgressSpec,
    argument: request_reply_pb2.TypedValue,
    value_class: type[message.Message] | None,
    topic_classes: Mapping[str, type[message.Message]] | None = None,
) -> str:
    """One JSON line for a record sent to a Kafka/Kinesis egress; the typename rules are Flink's.

    ``value_class`` decodes the values of every topic (stream), except those of a topic
    ``topic_classes`` names: one egress may carry a different message per topic."""
    fields: dict[str, Any] = {"egress": spec.id}
    try:
        if spec.kind == KAFKA_EGRESS:
            if argument.typename != KAFKA_RECORD_TYPENAME:
                raise ProtocolError(
                    f"egress {spec.id} is a Kafka egress and takes {KAFKA_RECORD_TYPENAME} "
                    f"(kafka_egress_message), got {argument.typename!r}"
                )
            kafka = kafka_egress_pb2.KafkaProducerRecord.FromString(argument.value)
            if topic_classes:
                value_class = topic_classes.get(kafka.topic, value_class)
            if value_class is None:
                line = _kafka_line_as_text(spec, kafka)
                if line is not None:
                    return line
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
            if topic_classes:
                value_class = topic_classes.get(kinesis.stream, value_class)
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
    """Writes egress lines after their commit, in commit order; a line's outbox row is deleted
    only after the line was flushed (in a later transaction), so a crash in between writes it
    again on restart (at-least-once). Rows left from an earlier run are written first."""

    def __init__(self, store: Store, sinks: dict[str, Sink], batch: int = 2000) -> None:
        self.store = store
        self.sinks = sinks
        self.batch = batch
        self.lines_written = 0
        self.written_through = 0  # outbox seq of the last line flushed
        self.deleted_through = 0  # outbox seq of the last row deleted (committed)
        self._added: list[OutboxRow] = []

    @property
    def pending(self) -> bool:
        """Flushed lines whose outbox rows are not yet deleted."""
        return self.written_through > self.deleted_through

    def recover(self) -> int:
        """Write the rows a previous run committed but did not finish writing."""
        recovered = 0
        while True:
            rows = self.store.read_outbox(self.batch, after=self.written_through)
            if not rows:
                break
            self.write(rows)
            recovered += len(rows)
        if self.pending:
            self.store.delete_outbox_through(self.written_through)
            self.deleted_through = self.written_through
        return recovered

    def add(self, rows: list[OutboxRow]) -> None:
        """Lines of one unit of a transaction; written together by write_added()."""
        self._added.extend(rows)

    def write_added(self) -> None:
        """After a commit: write its lines, in commit order, one write per sink."""
        if self._added:
            rows, self._added = self._added, []
            self.write(rows)

    def write(self, rows: list[OutboxRow]) -> None:
        by_sink: dict[str, list[str]] = {}
        written = 0
        for _, egress_id, text in rows:
            lines = by_sink.get(egress_id)
            if lines is None:
                lines = by_sink[egress_id] = []
            # A row holds the lines of one batch for one egress; JSON lines hold no raw newline.
            batch = text.split("\n")
            lines += batch
            written += len(batch)
        for egress_id, lines in by_sink.items():
            self.sinks[egress_id].write_lines(lines)
        for egress_id in by_sink:
            self.sinks[egress_id].flush()
        self.written_through = rows[-1][0]
        self.lines_written += written

    def cleanup(self, store: Store) -> None:
        """Part of a transaction: delete the rows of the lines flushed so far."""
        through = self.written_through
        if through > self.deleted_through:
            store.delete_outbox_through(through)
            self.deleted_through = through


def playground_record(
    spec: EgressSpec, argument: request_reply_pb2.TypedValue
) -> tuple[str, bytes]:
    """(topic, payload bytes) of a record sent to the playground egress, read as the playground
    reads it: an io.statefun.playground/EgressRecord JSON object {"topic", "payload"}."""
    if argument.typename != PLAYGROUND_EGRESS_RECORD:
        raise ProtocolError(
            f"egress {spec.id} takes {PLAYGROUND_EGRESS_RECORD} values (JSON "
            f'{{"topic": ..., "payload": ...}}), got {argument.typename!r}'
        )
    try:
        record = json.loads(argument.value)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"egress {spec.id}: the EgressRecord is not JSON: {error}") from None
    if not isinstance(record, dict):
        raise ProtocolError(f"egress {spec.id}: the EgressRecord is not a JSON object")
    unknown = sorted(set(record) - {"topic", "payload"})
    if unknown:  # the playground's plain Jackson ObjectMapper fails on unknown properties
        raise ProtocolError(
            f"egress {spec.id}: unknown EgressRecord field(s) {', '.join(unknown)}; it has "
            "topic and payload"
        )
    topic, payload = record.get("topic"), record.get("payload")
    if not isinstance(topic, str) or topic not in spec.topics:
        raise ProtocolError(
            f"egress {spec.id}: message was targeted to unknown topic {topic!r}; the module "
            f"defines {', '.join(spec.topics) or 'no topics'}"
        )
    if isinstance(payload, bool):
        payload = "true" if payload else "false"  # Jackson reads JSON scalars into a String
    elif isinstance(payload, (int, float)):
        payload = json.dumps(payload)
    if not isinstance(payload, str):
        raise ProtocolError(
            f"egress {spec.id}: the EgressRecord's payload must be a string, got "
            f"{'nothing' if payload is None else type(payload).__name__}"
        )
    return topic, payload.encode("utf-8")
