"""Hand-encoded pieces of the request-reply protobuf messages, for building a ToFunction.

Stored message arguments are serialized TypedValues already; embedding their bytes as they are
saves parsing and re-serializing every message of every batch. The output is the canonical
encoding protobuf itself produces (fields in number order, defaults left out), which the tests
check against the generated classes.
"""

from __future__ import annotations

from statefun.local.store import Address

_HAS_VALUE = b"\x10\x01"  # TypedValue.has_value = true


def varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_TAGS = {number: varint(number << 3 | 2) for number in (1, 2, 3, 100)}


def encode_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a submessage)."""
    size = len(payload)
    return _TAGS[number] + (bytes((size,)) if size < 0x80 else varint(size)) + payload


_type_fields: dict[str, bytes] = {}


def encode_address(address: Address) -> bytes:
    """Address{namespace, type, id} of ("namespace/type", id)."""
    prefix = _type_fields.get(address[0])
    if prefix is None:
        namespace, _, name = address[0].partition("/")
        prefix = encode_field(1, namespace.encode()) if namespace else b""
        prefix += encode_field(2, name.encode()) if name else b""
        if len(_type_fields) < 10_000:
            _type_fields[address[0]] = prefix
    return prefix + encode_field(3, address[1].encode()) if address[1] else prefix


def encode_invocation(argument: bytes, caller: bytes | None) -> bytes:
    """InvocationBatchRequest.invocations entry: Invocation{caller, argument} as field 3."""
    size = len(argument)
    if caller is None and size < 126:  # both lengths fit one byte: the common case, inline
        return b"\x1a" + bytes((size + 2,)) + b"\x12" + bytes((size,)) + argument
    call = encode_field(2, argument)
    if caller is not None:
        call = encode_field(1, caller) + call
    return encode_field(3, call)


def encode_typed_value(value: bytes) -> bytes:
    """What follows the typename field of a TypedValue with has_value set."""
    return _HAS_VALUE + encode_field(3, value) if value else _HAS_VALUE


def typed_value(typename: str, value: bytes) -> bytes:
    """A serialized TypedValue{typename, has_value=true, value}."""
    return encode_field(1, typename.encode()) + encode_typed_value(value)
