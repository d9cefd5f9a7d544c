"""Builders for messages to the runtime's generic Kafka and Kinesis egresses."""

from __future__ import annotations

import struct
import typing

from statefun.core import Type
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.kinesis_egress_pb2 import KinesisEgressRecord
from statefun.messages import EgressMessage
from statefun.request_reply_pb2 import TypedValue

__all__ = ["kafka_egress_message", "kinesis_egress_message"]

# The runtime's generic egresses accept exactly these record typenames.
KAFKA_PRODUCER_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
KINESIS_EGRESS_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"

_BIG_ENDIAN_INT32 = struct.Struct(">i")
_BIG_ENDIAN_DOUBLE = struct.Struct(">d")


def _kafka_value_bytes(value: typing.Any, value_type: Type[typing.Any] | None) -> bytes:
    if value_type is not None:
        return value_type.serializer().serialize(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    # The same layouts as Kafka's IntegerSerializer and DoubleSerializer.
    if isinstance(value, int):
        return _BIG_ENDIAN_INT32.pack(value)
    if isinstance(value, float):
        return _BIG_ENDIAN_DOUBLE.pack(value)
    raise TypeError(
        f"Unable to convert value to bytes: {type(value).__name__} is not str, bytes, int or "
        "float; pass value_type= to serialize it"
    )


def kafka_egress_message(
    typename: str,
    topic: str,
    value: typing.Any,
    value_type: Type[typing.Any] | None = None,
    key: str | None = None,
) -> EgressMessage:
    """A record for the Kafka egress ``typename``, to ``topic`` with an optional ``key``.

    Without ``value_type``, ``str`` is UTF-8 encoded, ``bytes`` are sent as-is,
    ``int`` is 4 big-endian bytes and ``float`` 8 big-endian bytes.
    """
    if not typename:
        raise ValueError("typename is missing")
    if not topic:
        raise ValueError("topic is missing")
    if value is None:
        raise ValueError("value is missing")
    record = KafkaProducerRecord(topic=topic, value_bytes=_kafka_value_bytes(value, value_type))
    if key is not None:
        record.key = key
    typed_value = TypedValue(
        typename=KAFKA_PRODUCER_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()
    )
    return EgressMessage(typename, typed_value)


def kinesis_egress_message(
    typename: str,
    stream: str,
    value: typing.Any,
    partition_key: str,
    value_type: Type[typing.Any] | None = None,
    explicit_hash_key: str | None = None,
) -> EgressMessage:
    """A record for the Kinesis egress ``typename``, to ``stream`` under ``partition_key``.

    Without ``value_type``, the value must be ``str`` (UTF-8 encoded) or ``bytes``.
    """
    if not typename:
        raise ValueError("typename is missing")
    if not stream:
        raise ValueError("stream is missing")
    if value is None:
        raise ValueError("value is missing")
    if partition_key is None:
        raise ValueError("partition_key is missing")
    if value_type is not None:
        value_bytes = value_type.serializer().serialize(value)
    elif isinstance(value, str):
        value_bytes = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        value_bytes = bytes(value)
    else:
        raise TypeError(
            f"Unable to convert value to bytes: {type(value).__name__} is not str or bytes; "
            "pass value_type= to serialize it"
        )
    record = KinesisEgressRecord(
        partition_key=partition_key, value_bytes=value_bytes, stream=stream
    )
    if explicit_hash_key is not None:
        record.explicit_hash_key = explicit_hash_key
    typed_value = TypedValue(
        typename=KINESIS_EGRESS_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()
    )
    return EgressMessage(typename, typed_value)
