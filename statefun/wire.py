"""Hand-written canonical protobuf encoding of the messages the SDK sends.

Building ``FromFunction`` through protobuf objects costs microseconds per
nested message, more than everything else the SDK does for an invocation.
These functions write the same bytes directly: fields in field-number order,
proto3 defaults omitted, present sub-messages always written (even when
empty), exactly what ``SerializeToString`` produces for the messages upstream
builds. The tests compare both encodings on randomized inputs.
"""

from __future__ import annotations

import typing

from statefun.core import parse_typename

__all__ = [
    "varint",
    "length",
    "egress_prefix",
    "string_field",
    "bytes_field",
    "typed_value_prefix",
    "address_prefix",
    "address",
    "modify_prefix",
    "typed_value",
    "persisted_value_mutation",
    "outgoing_invocation",
    "delayed_invocation",
    "delayed_cancellation",
    "egress_message",
    "invocation_response",
    "kafka_producer_record",
    "kinesis_egress_record",
]

# The one-byte varints; hot paths write `ONE_BYTE[n] if n < 0x80 else varint(n)` inline.
ONE_BYTE = _ONE_BYTE = [bytes((n,)) for n in range(0x80)]
_UINT64 = 1 << 64
# Tag and one-byte length of KafkaProducerRecord's key (field 1) and value_bytes (field 2).
_KEY_PREFIXES = [b"\x0a" + length for length in _ONE_BYTE]
_VALUE_PREFIXES = [b"\x12" + length for length in _ONE_BYTE]


def varint(value: int) -> bytes:
    """Base-128 varint; negative numbers as their 64-bit two's complement (int64 semantics)."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += _UINT64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length(payload: bytes) -> bytes:
    """The varint length prefix of ``payload``."""
    size = len(payload)
    if size < 0x80:
        return _ONE_BYTE[size]
    return varint(size)


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    size = len(payload)
    if size < 0x80:
        return tag + _ONE_BYTE[size] + payload
    return tag + varint(size) + payload


def string_field(tag: bytes, value: str) -> bytes:
    """A proto3 string field; empty strings are omitted."""
    if not value:
        return b""
    return _length_delimited(tag, value.encode("utf-8"))


def bytes_field(tag: bytes, value: bytes) -> bytes:
    """A proto3 bytes field; empty values are omitted."""
    if not value:
        return b""
    return _length_delimited(tag, value)


def message_field(tag: bytes, payload: bytes) -> bytes:
    """A present sub-message field: written even when its payload is empty."""
    return _length_delimited(tag, payload)


_PREFIX_CACHE_LIMIT = 4096
_typed_value_prefixes: dict[str, bytes] = {}
_address_prefixes: dict[str, bytes] = {}
_kafka_topics: dict[str, bytes] = {}
_modify_prefixes: dict[str, bytes] = {}


def typed_value_prefix(typename: str) -> bytes:
    """``TypedValue.typename`` and ``has_value = true``, the part shared by every value of a type."""
    prefix = _typed_value_prefixes.get(typename)
    if prefix is None:
        prefix = string_field(b"\x0a", typename) + b"\x10\x01"
        if len(_typed_value_prefixes) >= _PREFIX_CACHE_LIMIT:
            _typed_value_prefixes.clear()
        _typed_value_prefixes[typename] = prefix
    return prefix


def typed_value(typename: str, value: bytes) -> bytes:
    """A ``TypedValue`` with ``has_value = true``."""
    prefix = _typed_value_prefixes.get(typename) or typed_value_prefix(typename)
    if not value:
        return prefix
    size = len(value)
    return prefix + b"\x1a" + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + value


def address_prefix(typename: str) -> bytes:
    """The ``namespace`` and ``type`` fields of an ``Address`` for ``namespace/name``."""
    prefix = _address_prefixes.get(typename)
    if prefix is None:
        namespace, name = parse_typename(typename)
        prefix = string_field(b"\x0a", namespace) + string_field(b"\x12", name)
        if len(_address_prefixes) >= _PREFIX_CACHE_LIMIT:
            _address_prefixes.clear()
        _address_prefixes[typename] = prefix
    return prefix


def address(typename: str, id: str) -> bytes:
    """An ``Address`` for the function type ``namespace/name`` and ``id``."""
    prefix = _address_prefixes.get(typename) or address_prefix(typename)
    if not id:
        return prefix
    encoded_id = id.encode("utf-8")
    size = len(encoded_id)
    return prefix + b"\x1a" + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + encoded_id


def modify_prefix(state_name: str) -> bytes:
    """``mutation_type = MODIFY`` and ``state_name`` of a ``PersistedValueMutation``."""
    prefix = _modify_prefixes.get(state_name)
    if prefix is None:
        prefix = b"\x08\x01" + string_field(b"\x12", state_name)
        if len(_modify_prefixes) >= _PREFIX_CACHE_LIMIT:
            _modify_prefixes.clear()
        _modify_prefixes[state_name] = prefix
    return prefix


def persisted_value_mutation(state_name: str, typename: str, value: bytes | None) -> bytes:
    """MODIFY with the value, or DELETE (enum 0, so only the state name) when ``value`` is None."""
    if value is None:
        return string_field(b"\x12", state_name)
    prefix = _modify_prefixes.get(state_name) or modify_prefix(state_name)
    state_value = typed_value(typename, value)
    size = len(state_value)
    return prefix + b"\x1a" + (_ONE_BYTE[size] if size < 0x80 else varint(size)) + state_value


def outgoing_invocation(target: bytes, argument: bytes) -> bytes:
    """``FromFunction.Invocation`` from an encoded address and an encoded TypedValue."""
    return message_field(b"\x0a", target) + message_field(b"\x12", argument)


def delayed_invocation(
    delay_in_ms: int, target: bytes, argument: bytes, cancellation_token: str | None
) -> bytes:
    return (
        (b"\x08" + varint(delay_in_ms) if delay_in_ms else b"")
        + message_field(b"\x12", target)
        + message_field(b"\x1a", argument)
        + (string_field(b"\x5a", cancellation_token) if cancellation_token else b"")
    )


def delayed_cancellation(cancellation_token: str) -> bytes:
    return b"\x50\x01" + string_field(b"\x5a", cancellation_token)


def egress_prefix(typename: str) -> bytes:
    """``egress_namespace`` and ``egress_type`` of an ``EgressMessage`` to ``typename``.

    The same fields (1 and 2, strings) as an ``Address``'s namespace and type.
    """
    return _address_prefixes.get(typename) or address_prefix(typename)


def egress_message(typename: str, argument: bytes) -> bytes:
    return egress_prefix(typename) + message_field(b"\x1a", argument)


def invocation_response(
    mutations: typing.Iterable[bytes],
    outgoing: typing.Iterable[bytes],
    delayed: typing.Iterable[bytes],
    egresses: typing.Iterable[bytes],
) -> bytes:
    """A ``FromFunction`` whose ``invocation_result`` holds the given encoded entries."""
    body = b"".join(
        [message_field(b"\x0a", m) for m in mutations]
        + [message_field(b"\x12", o) for o in outgoing]
        + [message_field(b"\x1a", d) for d in delayed]
        + [message_field(b"\x22", e) for e in egresses]
    )
    return message_field(b"\xa2\x06", body)


def kafka_producer_record(key: str | None, value: bytes, topic: str) -> bytes:
    topic_field = _kafka_topics.get(topic)
    if topic_field is None:
        topic_field = string_field(b"\x1a", topic)
        if len(_kafka_topics) >= _PREFIX_CACHE_LIMIT:
            _kafka_topics.clear()
        _kafka_topics[topic] = topic_field
    if key:
        encoded_key = key.encode("utf-8")
        size = len(encoded_key)
        key_prefix = _KEY_PREFIXES[size] if size < 0x80 else b"\x0a" + varint(size)
    else:
        encoded_key = key_prefix = b""
    if value:
        size = len(value)
        value_prefix = _VALUE_PREFIXES[size] if size < 0x80 else b"\x12" + varint(size)
    else:
        value_prefix = b""
    return b"".join((key_prefix, encoded_key, value_prefix, value, topic_field))


def kinesis_egress_record(
    partition_key: str, value: bytes, stream: str, explicit_hash_key: str | None
) -> bytes:
    return (
        string_field(b"\x0a", partition_key)
        + bytes_field(b"\x12", value)
        + string_field(b"\x1a", stream)
        + (string_field(b"\x22", explicit_hash_key) if explicit_hash_key else b"")
    )
