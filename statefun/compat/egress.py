"""2.x egress records (``kafka_egress_record``/``kinesis_egress_record``) as the 3.x runtime expects them.

2.x built ``org.apache.flink.statefun.flink.io.KafkaProducerRecord`` (and the
Kinesis twin) and sent it packed in an ``Any``. The 3.x runtime's generic
Kafka/Kinesis egresses accept only the TypedValue typenames
``type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord`` /
``…KinesisEgressRecord``. The records built here are the 3.x messages, so
``Any.Pack`` already yields those names; a record packed from a 2.x generated
class (identical field numbers) is renamed on its way out by ``egress_typename``.
"""

from __future__ import annotations

from google.protobuf.message import Message as ProtobufMessage

from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.kinesis_egress_pb2 import KinesisEgressRecord

__all__ = [
    "KAFKA_RECORD_TYPENAME",
    "KINESIS_RECORD_TYPENAME",
    "kafka_egress_record",
    "kinesis_egress_record",
    "egress_typename",
]

KAFKA_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
KINESIS_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"

_LEGACY_RECORD_TYPENAMES = {
    "type.googleapis.com/org.apache.flink.statefun.flink.io.KafkaProducerRecord": (
        KAFKA_RECORD_TYPENAME
    ),
    "type.googleapis.com/org.apache.flink.statefun.flink.io.KinesisEgressRecord": (
        KINESIS_RECORD_TYPENAME
    ),
}


def _value_bytes(value: object, function: str) -> bytes:
    if value is None:
        raise ValueError(f"{function}: the record value is missing")
    if isinstance(value, ProtobufMessage):
        return value.SerializeToString()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(
        f"{function}: the record value must be a protobuf message (as in 2.x), bytes or str, "
        f"got {type(value).__name__}"
    )


def _optional_str(value: object, function: str, parameter: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{function}: {parameter} must be a str, got {type(value).__name__}")


def kafka_egress_record(topic: str, value: object, key: str | None = None) -> KafkaProducerRecord:
    """A record for the runtime's generic Kafka egress; send it with ``pack_and_send_egress``.

    ``value`` is a protobuf message (serialized), or ``bytes``/``str`` (UTF-8)
    as an extension of 2.x; ``key`` is optional (an empty key means no key).
    """
    if not topic or not isinstance(topic, str):
        raise ValueError(
            f"kafka_egress_record: a destination Kafka topic is missing, got {topic!r}"
        )
    value_bytes = _value_bytes(value, "kafka_egress_record")
    record = KafkaProducerRecord(topic=topic, value_bytes=value_bytes)
    checked_key = _optional_str(key, "kafka_egress_record", "key")
    if checked_key is not None:
        record.key = checked_key
    return record


def kinesis_egress_record(
    stream: str, value: object, partition_key: str, explicit_hash_key: str | None = None
) -> KinesisEgressRecord:
    """A record for the runtime's generic Kinesis egress; send it with ``pack_and_send_egress``."""
    if not stream or not isinstance(stream, str):
        raise ValueError(
            f"kinesis_egress_record: a destination Kinesis stream is missing, got {stream!r}"
        )
    value_bytes = _value_bytes(value, "kinesis_egress_record")
    if not partition_key or not isinstance(partition_key, str):
        raise ValueError(
            f"kinesis_egress_record: a partition key is missing, got {partition_key!r}"
        )
    record = KinesisEgressRecord(
        stream=stream, value_bytes=value_bytes, partition_key=partition_key
    )
    checked_hash_key = _optional_str(
        explicit_hash_key, "kinesis_egress_record", "explicit_hash_key"
    )
    if checked_hash_key is not None:
        record.explicit_hash_key = checked_hash_key
    return record


def egress_typename(type_url: str) -> str:
    """The TypedValue typename for an egress payload packed with ``type_url``.

    Records packed from the 2.x generated classes are renamed to what the 3.x
    generic egresses require; every other payload keeps its type URL.
    """
    return _LEGACY_RECORD_TYPENAMES.get(type_url, type_url)
