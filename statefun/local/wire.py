"""The pieces of a ToFunction request the runtime encodes by hand.

Stored message arguments are serialized TypedValues already; embedding their bytes as they are
saves parsing and re-serializing every message of every batch. The SDK's own canonical encoders
(statefun.wire) do the fields; the output is the encoding protobuf itself produces, which the
tests check against the generated classes.
"""

from __future__ import annotations

from statefun.local.store import Address
from statefun.wire import ONE_BYTE, address, message_field, typed_value, varint

__all__ = ["encode_address", "encode_field", "encode_invocation", "typed_value"]

_TAGS = {number: varint(number << 3 | 2) for number in (1, 2, 3, 100)}


def encode_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a present submessage, or bytes), written even when empty."""
    return message_field(_TAGS[number], payload)


def encode_address(function_address: Address) -> bytes:
    """Address{namespace, type, id} of ("namespace/type", id)."""
    return address(function_address[0], function_address[1])


def encode_invocation(argument: bytes, caller: bytes | None) -> bytes:
    """InvocationBatchRequest.invocations entry: Invocation{caller, argument} as field 3."""
    size = len(argument)
    if caller is None and size < 126:  # both lengths fit one byte: the common case, inline
        return b"\x1a" + ONE_BYTE[size + 2] + b"\x12" + ONE_BYTE[size] + argument
    call = encode_field(2, argument)
    if caller is not None:
        call = encode_field(1, caller) + call
    return encode_field(3, call)
