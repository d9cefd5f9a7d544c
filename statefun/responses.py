"""Building the serialized ``FromFunction`` of a batch, byte-identical to upstream 3.3's.

Zero bytes when the batch had no effect, state mutations in declaration order,
delayed sends and cancellations in call order in one list, the expiration spec
always present in missing values.
"""

from __future__ import annotations

import typing

from statefun import wire
from statefun.context import BatchContext
from statefun.messages import EgressMessage, Message
from statefun.core import parse_typename
from statefun.request_reply_pb2 import FromFunction, TypedValue

__all__ = ["missing_values_response", "batch_response"]

# Module-level names for what the hot path reads: one dictionary lookup instead of two.
_ONE_BYTE = wire.ONE_BYTE
_varint = wire.varint
_ADDRESS_PREFIXES = wire._address_prefixes
_address_prefix = wire.address_prefix
_MODIFY_PREFIXES = wire._modify_prefixes

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
    parts joined at the end. The prefix caches are read and length prefixes
    written inline (`one_byte[n] if n < 0x80 else varint(n)`): this is the
    per-message hot path, and a function call per field was a measurable
    share of it. Messages whose fields are not what the SDK's builders make (an
    ``int`` id, a ``typed_value`` that is not a ``TypedValue``) go through
    protobuf as upstream's did, so they fail, or not, exactly as there.
    """
    parts: list[bytes] = []
    extend = parts.extend
    one_byte = _ONE_BYTE
    varint = _varint
    typed_value = wire.typed_value
    for name, cell in context.storage._cells.items():
        if cell.dirty:
            data = cell._data
            if data is None:
                # DELETE is enum 0: only the state name is written.
                entry = wire.string_field(b"\x12", name)
                size = len(entry)
                extend((b"\x0a", one_byte[size] if size < 0x80 else varint(size), entry))
                continue
            prefix = _MODIFY_PREFIXES.get(name) or wire.modify_prefix(name)
            extend(_entry_with_value(b"\x0a", prefix, typed_value(cell._codec.typename, data)))
    address_prefixes = _ADDRESS_PREFIXES
    address_prefix = _address_prefix
    for message in context.messages:
        target_id = message.target_id
        received = message._typed_value
        if type(target_id) is not str or (
            received is not None and type(received) is not TypedValue
        ):
            entry = _protobuf_invocation(message)
            size = len(entry)
            extend((b"\x12", one_byte[size] if size < 0x80 else varint(size), entry))
            continue
        typename = message.target_typename
        target = address_prefixes.get(typename) or address_prefix(typename)
        if target_id:
            encoded_id = target_id.encode("utf-8")
            size = len(encoded_id)
            target += b"\x1a" + (one_byte[size] if size < 0x80 else varint(size)) + encoded_id
        if received is None:
            value = typed_value(message._value_typename, message._value)
        else:
            value = received.SerializeToString()
        target_size, value_size = len(target), len(value)
        if target_size < 0x80 and value_size < 0x80:
            size = target_size + value_size + 4
            extend(
                (
                    b"\x12",
                    one_byte[size] if size < 0x80 else varint(size),
                    b"\x0a",
                    one_byte[target_size],
                    target,
                    b"\x12",
                    one_byte[value_size],
                    value,
                )
            )
        else:
            entry = wire.outgoing_invocation(target, value)
            extend((b"\x12", varint(len(entry)), entry))
    for delayed in context.delayed_messages:
        delayed_message = delayed.message
        if delayed_message is None:
            entry = wire.delayed_cancellation(typing.cast(str, delayed.cancellation_token))
        elif type(delayed_message.target_id) is not str or (
            delayed_message._typed_value is not None
            and type(delayed_message._typed_value) is not TypedValue
        ):
            entry = _protobuf_delayed(delayed_message, delayed.duration, delayed.cancellation_token)
        else:
            entry = wire.delayed_invocation(
                delayed.duration,
                wire.address(delayed_message.target_typename, delayed_message.target_id),
                _argument(delayed_message),
                delayed.cancellation_token,
            )
        size = len(entry)
        extend((b"\x1a", one_byte[size] if size < 0x80 else varint(size), entry))
    for egress in context.egresses:
        received = egress._typed_value
        if received is None:
            value = typed_value(egress._value_typename, egress._value)
        elif type(received) is TypedValue:
            value = received.SerializeToString()
        else:
            entry = _protobuf_egress(egress)
            size = len(entry)
            extend((b"\x22", one_byte[size] if size < 0x80 else varint(size), entry))
            continue
        typename = egress.typename
        extend(
            _entry_with_value(
                b"\x22", address_prefixes.get(typename) or address_prefix(typename), value
            )
        )
    if not parts:
        # Upstream never sets the oneof when nothing happened: the body is empty.
        return b""
    body = b"".join(parts)
    size = len(body)
    return b"\xa2\x06" + (one_byte[size] if size < 0x80 else varint(size)) + body


def _entry_with_value(tag: bytes, prefix: bytes, value: bytes) -> tuple[bytes, ...]:
    """The parts of a sub-message ``tag`` holding the fields ``prefix`` and then ``value`` as field 3.

    A state mutation (mode and name, then the TypedValue) and an egress message
    (namespace and type, then the TypedValue) have this shape.
    """
    value_size = len(value)
    size = len(prefix) + value_size + 1 + (1 if value_size < 0x80 else len(_varint(value_size)))
    return (
        tag,
        _ONE_BYTE[size] if size < 0x80 else _varint(size),
        prefix,
        b"\x1a",
        _ONE_BYTE[value_size] if value_size < 0x80 else _varint(value_size),
        value,
    )


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
