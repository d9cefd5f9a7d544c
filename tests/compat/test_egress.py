"""kafka_egress_record / kinesis_egress_record build what the 3.x runtime's generic egresses accept."""

from __future__ import annotations

import pytest
from compat_support import GreetResponse, packed

from statefun.compat.egress import (
    KAFKA_RECORD_TYPENAME,
    KINESIS_RECORD_TYPENAME,
    egress_typename,
    kafka_egress_record,
    kinesis_egress_record,
)
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.kinesis_egress_pb2 import KinesisEgressRecord

GREETING = GreetResponse(name="Ann", greeting="Hi")


def test_kafka_record_bytes_are_key_value_topic() -> None:
    record = kafka_egress_record(topic="greetings", key="Ann", value=GREETING)

    assert isinstance(record, KafkaProducerRecord)
    assert record.SerializeToString() == bytes.fromhex(
        "0a 03 41 6e 6e"  # key = "Ann"
        "12 09 0a 03 41 6e 6e 12 02 48 69"  # value_bytes = GreetResponse{name, greeting}
        "1a 09 67 72 65 65 74 69 6e 67 73"  # topic = "greetings"
    )


def test_packed_records_carry_the_typenames_the_runtime_requires() -> None:
    kafka = packed(kafka_egress_record("greetings", GREETING))
    kinesis = packed(kinesis_egress_record("stream", GREETING, "pk"))

    assert kafka.type_url == KAFKA_RECORD_TYPENAME
    assert KAFKA_RECORD_TYPENAME == "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
    assert kinesis.type_url == KINESIS_RECORD_TYPENAME
    assert KINESIS_RECORD_TYPENAME == (
        "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"
    )


def test_kafka_record_without_key_has_no_key_and_accepts_raw_values() -> None:
    assert kafka_egress_record("t", GREETING).SerializeToString() == (
        b"\x12\x09" + GREETING.SerializeToString() + b"\x1a\x01t"
    )
    assert kafka_egress_record("t", b"\x00\x01").value_bytes == b"\x00\x01"
    assert kafka_egress_record("t", bytearray(b"ab")).value_bytes == b"ab"
    assert kafka_egress_record("t", "héllo").value_bytes == "héllo".encode("utf-8")


@pytest.mark.parametrize(
    ("arguments", "error", "text"),
    [
        (("", GREETING), ValueError, "a destination Kafka topic is missing, got ''"),
        (("t", None), ValueError, "the record value is missing"),
        (("t", 42), TypeError, "must be a protobuf message \\(as in 2.x\\), bytes or str, got int"),
        (("t", GREETING, 7), TypeError, "key must be a str, got int"),
    ],
)
def test_kafka_record_rejects_bad_arguments(
    arguments: tuple[object, ...], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        kafka_egress_record(*arguments)  # type: ignore[arg-type]


def test_kinesis_record_fields() -> None:
    record = kinesis_egress_record("stream", GREETING, "pk", explicit_hash_key="42")

    assert isinstance(record, KinesisEgressRecord)
    assert (record.stream, record.partition_key, record.explicit_hash_key) == ("stream", "pk", "42")
    assert record.value_bytes == GREETING.SerializeToString()
    assert not kinesis_egress_record("s", GREETING, "pk").explicit_hash_key


@pytest.mark.parametrize(
    ("arguments", "error", "text"),
    [
        (("", GREETING, "pk"), ValueError, "a destination Kinesis stream is missing"),
        (("s", None, "pk"), ValueError, "the record value is missing"),
        (("s", GREETING, ""), ValueError, "a partition key is missing"),
        (("s", GREETING, None), ValueError, "a partition key is missing"),
        (("s", 1.5, "pk"), TypeError, "got float"),
    ],
)
def test_kinesis_record_rejects_bad_arguments(
    arguments: tuple[object, ...], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        kinesis_egress_record(*arguments)  # type: ignore[arg-type]


def test_records_packed_from_2x_generated_classes_are_renamed() -> None:
    assert (
        egress_typename(
            "type.googleapis.com/org.apache.flink.statefun.flink.io.KafkaProducerRecord"
        )
        == KAFKA_RECORD_TYPENAME
    )
    assert (
        egress_typename(
            "type.googleapis.com/org.apache.flink.statefun.flink.io.KinesisEgressRecord"
        )
        == KINESIS_RECORD_TYPENAME
    )
    assert egress_typename("type.googleapis.com/example.GreetResponse") == (
        "type.googleapis.com/example.GreetResponse"
    )
