"""Builders for messages to the runtime's generic Kafka and Kinesis egresses."""

from __future__ import annotations

import struct
import typing

from statefun.core import Type
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.kinesis_egress_pb2 import KinesisEgressRecord
from statefun import wire
from statefun.messages import EgressMessage, egress_with_value
from statefun.utils import serialized

__all__ = ["kafka_egress_message", "kinesis_egress_message"]

# The runtime's generic egresses accept exactly these record typenames.
KAFKA_PRODUCER_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
KINESIS_EGRESS_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"

_BIG_ENDIAN_INT32 = struct.Struct(">i")
_BIG_ENDIAN_DOUBLE = struct.Struct(">d")


def _kafka_value_bytes(value: typing.Any, value_type: Type[typing.Any] | None) -> bytes:
    if value_type is not None:
        return serialized(value_type, value)
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
    if value_type is None and type(value) is str:
        value_bytes = value.encode("utf-8")
    else:
        value_bytes = _kafka_value_bytes(value, value_type)
    if type(topic) is str and (key is None or type(key) is str):
        record = wire.kafka_producer_record(key, value_bytes, topic)
    else:
        # Unusual argument types: let protobuf convert them or raise its own error.
        message = KafkaProducerRecord(topic=topic, value_bytes=value_bytes)
        if key is not None:
            message.key = key
        record = message.SerializeToString()
    return egress_with_value(typename, KAFKA_PRODUCER_RECORD_TYPENAME, record)


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
        value_bytes = serialized(value_type, value)
    elif isinstance(value, str):
        value_bytes = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        value_bytes = bytes(value)
    else:
        raise TypeError(
            f"Unable to convert value to bytes: {type(value).__name__} is not str or bytes; "
            "pass value_type= to serialize it"
        )
    if (
        type(stream) is str
        and type(partition_key) is str
        and (explicit_hash_key is None or type(explicit_hash_key) is str)
    ):
        record = wire.kinesis_egress_record(partition_key, value_bytes, stream, explicit_hash_key)
    else:
        message = KinesisEgressRecord(
            partition_key=partition_key, value_bytes=value_bytes, stream=stream
        )
        if explicit_hash_key is not None:
            message.explicit_hash_key = explicit_hash_key
        record = message.SerializeToString()
    return egress_with_value(typename, KINESIS_EGRESS_RECORD_TYPENAME, record)
