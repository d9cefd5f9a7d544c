"""Building the serialized ``FromFunction`` of a batch, byte-identical to upstream 3.3's.

Zero bytes when the batch had no effect, state mutations in declaration order,
delayed sends and cancellations in call order in one list, the expiration spec
always present in missing values.
"""

from __future__ import annotations

import typing

from statefun import wire
from statefun.context import BatchContext, DelayedMessage
from statefun.messages import EgressMessage, Message
from statefun.core import parse_typename
from statefun.request_reply_pb2 import FromFunction, TypedValue

__all__ = ["missing_values_response", "batch_response"]

# Module-level names for what the hot path reads: one dictionary lookup instead of two.
_ONE_BYTE = wire.ONE_BYTE
_varint = wire.varint
_VALUE_PREFIXES = wire._typed_value_prefixes
_value_prefix = wire.typed_value_prefix
_ADDRESS_PREFIXES = wire._address_prefixes
_address_prefix = wire.address_prefix

_AFTER_INVOKE = FromFunction.ExpirationSpec.AFTER_INVOKE
_AFTER_WRITE = FromFunction.ExpirationSpec.AFTER_WRITE


def missing_values_response(missing_specs: typing.Sequence[typing.Any]) -> bytes:
    response = FromFunction()
    missing_values = response.incomplete_invocation_context.missing_values
    for spec in missing_specs:
        missing = missing_values.add(state_name=spec.name, type_typename=spec.type.typename)
        expiration = missing.expiration_spec
        if spec.after_call:
            expiration.mode = _AFTER_INVOKE
            expiration.expire_after_millis = spec.duration
        elif spec.after_write:
            expiration.mode = _AFTER_WRITE
            expiration.expire_after_millis = spec.duration
        else:
            # Upstream always sends the spec, even when empty (`12 00` on the wire).
            expiration.SetInParent()
    return response.SerializeToString()


def batch_response(context: BatchContext) -> bytes:
    """The serialized ``FromFunction`` for what the batch did; ``b""`` if it did nothing.

    Written out by hand in one pass (see ``statefun.wire``) into one list of
    parts joined at the end. The messages and egress records the SDK's
    builders make (typename and bytes, short fields) are written inline, their
    fields straight into that list with the lengths added up rather than
    measured on intermediate byte strings: this is the per-invocation hot
    path, and every call and concatenation there was a measurable share of it.
    Everything else goes through ``_invocation_entry`` and friends; values the
    hand encoder does not take (an ``int`` id, a ``typed_value`` that is not a
    ``TypedValue``) through protobuf as upstream's did, so they fail, or not,
    exactly as there.
    """
    parts: list[bytes] = []
    extend = parts.extend
    one_byte = _ONE_BYTE
    varint = _varint
    for name, cell in context.storage._cells.items():
        if cell.dirty:
            entry = wire.persisted_value_mutation(name, cell._codec.typename, cell._data)
            size = len(entry)
            extend((b"\x0a", one_byte[size] if size < 0x80 else varint(size), entry))
    address_prefixes = _ADDRESS_PREFIXES
    value_prefixes = _VALUE_PREFIXES
    for message in context.messages:
        target_id = message.target_id
        if message._typed_value is None and type(target_id) is str:
            typename = message.target_typename
            prefix = address_prefixes.get(typename) or _address_prefix(typename)
            encoded_id = target_id.encode("utf-8")
            typename = message._value_typename
            value_prefix = value_prefixes.get(typename) or _value_prefix(typename)
            raw = message._value
            id_size, raw_size = len(encoded_id), len(raw)
            target_size = len(prefix) + id_size + 2
            value_size = len(value_prefix) + raw_size + 2
            size = target_size + value_size + 4
            if size < 0x80 and id_size and raw_size:
                extend(
                    (
                        b"\x12",
                        one_byte[size],
                        b"\x0a",
                        one_byte[target_size],
                        prefix,
                        b"\x1a",
                        one_byte[id_size],
                        encoded_id,
                        b"\x12",
                        one_byte[value_size],
                        value_prefix,
                        b"\x1a",
                        one_byte[raw_size],
                        raw,
                    )
                )
                continue
        entry = _invocation_entry(message)
        size = len(entry)
        extend((b"\x12", one_byte[size] if size < 0x80 else varint(size), entry))
    for delayed in context.delayed_messages:
        entry = _delayed_entry(delayed)
        size = len(entry)
        extend((b"\x1a", one_byte[size] if size < 0x80 else varint(size), entry))
    for egress in context.egresses:
        if egress._typed_value is None:
            typename = egress.typename
            prefix = address_prefixes.get(typename) or _address_prefix(typename)
            typename = egress._value_typename
            value_prefix = value_prefixes.get(typename) or _value_prefix(typename)
            raw = egress._value
            raw_size = len(raw)
            value_size = len(value_prefix) + raw_size + 2
            size = len(prefix) + value_size + 2
            if size < 0x80 and raw_size:
                extend(
                    (
                        b"\x22",
                        one_byte[size],
                        prefix,
                        b"\x1a",
                        one_byte[value_size],
                        value_prefix,
                        b"\x1a",
                        one_byte[raw_size],
                        raw,
                    )
                )
                continue
        entry = _egress_entry(egress)
        size = len(entry)
        extend((b"\x22", one_byte[size] if size < 0x80 else varint(size), entry))
    if not parts:
        # Upstream never sets the oneof when nothing happened: the body is empty.
        return b""
    body = b"".join(parts)
    size = len(body)
    return b"\xa2\x06" + (one_byte[size] if size < 0x80 else varint(size)) + body


def _hand_encodable(message: Message | EgressMessage) -> bool:
    """Whether ``message``'s value is one the hand encoder takes (bytes, or a ``TypedValue``)."""
    typed_value = message._typed_value
    return typed_value is None or type(typed_value) is TypedValue


def _invocation_entry(message: Message) -> bytes:
    """The ``FromFunction.Invocation`` of any sent message."""
    if type(message.target_id) is not str or not _hand_encodable(message):
        return _protobuf_invocation(message)
    return wire.outgoing_invocation(
        wire.address(message.target_typename, message.target_id), _argument(message)
    )


def _delayed_entry(delayed: DelayedMessage) -> bytes:
    """The ``FromFunction.DelayedInvocation`` of a delayed send or a cancellation."""
    message = delayed.message
    if message is None:
        return wire.delayed_cancellation(typing.cast(str, delayed.cancellation_token))
    if type(message.target_id) is not str or not _hand_encodable(message):
        return _protobuf_delayed(message, delayed.duration, delayed.cancellation_token)
    return wire.delayed_invocation(
        delayed.duration,
        wire.address(message.target_typename, message.target_id),
        _argument(message),
        delayed.cancellation_token,
    )


def _egress_entry(egress: EgressMessage) -> bytes:
    """The ``FromFunction.EgressMessage`` of any egress record."""
    if not _hand_encodable(egress):
        return _protobuf_egress(egress)
    return wire.egress_message(egress.typename, _argument(egress))


def _argument(message: Message | EgressMessage) -> bytes:
    typed_value = message._typed_value
    if typed_value is None:
        return wire.typed_value(message._value_typename, message._value)
    return typed_value.SerializeToString()


# Upstream's own way of filling the response, for values the hand encoder does not take:
# the protobuf field assignments accept and refuse exactly what they did there.


def _protobuf_target(target: typing.Any, typename: str, target_id: typing.Any) -> None:
    namespace, name = parse_typename(typename)
    target.namespace = namespace
    target.type = name
    target.id = target_id


def _protobuf_invocation(message: Message) -> bytes:
    invocation = FromFunction.Invocation()
    _protobuf_target(invocation.target, message.target_typename, message.target_id)
    invocation.argument.CopyFrom(message.typed_value)
    return invocation.SerializeToString()


def _protobuf_delayed(message: Message, duration: int, cancellation_token: str | None) -> bytes:
    delayed = FromFunction.DelayedInvocation()
    _protobuf_target(delayed.target, message.target_typename, message.target_id)
    delayed.delay_in_ms = duration
    delayed.argument.CopyFrom(message.typed_value)
    if cancellation_token is not None:
        delayed.cancellation_token = cancellation_token
    return delayed.SerializeToString()


def _protobuf_egress(message: EgressMessage) -> bytes:
    egress = FromFunction.EgressMessage()
    egress.egress_namespace, egress.egress_type = parse_typename(message.typename)
    egress.argument.CopyFrom(message.typed_value)
    return egress.SerializeToString()
