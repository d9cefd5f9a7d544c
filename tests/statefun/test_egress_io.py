from __future__ import annotations

import pytest

from statefun.egress_io import kafka_egress_message, kinesis_egress_message
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.kinesis_egress_pb2 import KinesisEgressRecord
from statefun.wrapper_types import IntType


def kafka_record(data: bytes | None) -> KafkaProducerRecord:
    record = KafkaProducerRecord()
    record.ParseFromString(data or b"")
    return record


@pytest.mark.parametrize(
    "value, expected",
    [
        ("hé", "hé".encode()),
        (b"\x00\x01", b"\x00\x01"),
        (bytearray(b"ab"), b"ab"),
        (1, b"\x00\x00\x00\x01"),
        (True, b"\x00\x00\x00\x01"),
        (0.5, bytes.fromhex("3fe0000000000000")),
    ],
)
def test_kafka_value_conversion(value: object, expected: bytes) -> None:
    message = kafka_egress_message("ex/kafka", "topic", value)
    assert message.typename == "ex/kafka"
    assert (
        message.value_typename() == "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
    )
    record = kafka_record(message.raw_value())
    assert record.value_bytes == expected
    assert record.topic == "topic"
    assert record.key == ""


def test_kafka_key_and_value_type() -> None:
    message = kafka_egress_message("ex/kafka", "t", 3, value_type=IntType, key="k")
    assert (
        message.raw_value()
        == KafkaProducerRecord(
            key="k", value_bytes=b"\x0d\x03\x00\x00\x00", topic="t"
        ).SerializeToString()
    )


def test_kafka_errors() -> None:
    with pytest.raises(ValueError):
        kafka_egress_message("ex/kafka", "", "v")
    with pytest.raises(ValueError):
        kafka_egress_message("ex/kafka", "t", None)
    with pytest.raises(TypeError, match="Unable to convert value to bytes"):
        kafka_egress_message("ex/kafka", "t", object())


def test_kinesis() -> None:
    message = kinesis_egress_message("ex/kin", "s", "v", "pk", explicit_hash_key="h")
    assert (
        message.value_typename() == "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"
    )
    assert (
        message.raw_value()
        == KinesisEgressRecord(
            partition_key="pk", value_bytes=b"v", stream="s", explicit_hash_key="h"
        ).SerializeToString()
    )
    typed = kinesis_egress_message("ex/kin", "s", 7, "pk", value_type=IntType)
    record = KinesisEgressRecord()
    record.ParseFromString(typed.raw_value() or b"")
    assert record.value_bytes == b"\x0d\x07\x00\x00\x00"


def test_kinesis_errors() -> None:
    with pytest.raises(ValueError):
        kinesis_egress_message("ex/kin", "", "v", "pk")
    with pytest.raises(ValueError):
        kinesis_egress_message("ex/kin", "s", None, "pk")
    with pytest.raises(ValueError):
        kinesis_egress_message("ex/kin", "s", "v", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kinesis_egress_message("ex/kin", "s", 1, "pk")
