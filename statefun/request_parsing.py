"""Parsing a request body into the ``InvocationBatchRequest`` it carries, with errors that say what is wrong."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from statefun.errors import MalformedRequestError
from statefun.request_reply_pb2 import ToFunction

__all__ = ["parse_request"]

_InvocationBatchRequest = ToFunction.InvocationBatchRequest


def _parse_sole_batch(request_bytes: bytes) -> ToFunction.InvocationBatchRequest | None:
    """Parse the batch directly when the request is exactly one ``invocation`` field.

    That is what the runtime sends; it saves building the ``ToFunction`` around
    it. Anything else (other fields, a repeated field to merge) returns None and
    takes the general path.
    """
    if request_bytes[:2] != b"\xa2\x06":
        return None
    # The batch's length: a varint of at most 4 bytes (the runtime's payload limit is 32 MiB).
    size = 0
    shift = 0
    for position in range(2, min(len(request_bytes), 6)):
        byte = request_bytes[position]
        size |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    else:
        return None
    position += 1
    if position + size != len(request_bytes):
        return None
    batch = _InvocationBatchRequest()
    try:
        batch.ParseFromString(request_bytes[position:])
    except DecodeError:
        return None  # the general path reports it
    return batch


def parse_request(request_bytes: bytes) -> ToFunction.InvocationBatchRequest:
    if not isinstance(request_bytes, bytes):
        if isinstance(request_bytes, (bytearray, memoryview)):
            request_bytes = bytes(request_bytes)
        else:
            raise TypeError(
                f"the request must be the serialized ToFunction bytes, got "
                f"{type(request_bytes).__name__}"
            )
    if not request_bytes:
        raise MalformedRequestError("empty request body: expected a serialized ToFunction message")
    batch = _parse_sole_batch(request_bytes)
    if batch is not None:
        return batch
    to_function = ToFunction()
    try:
        to_function.ParseFromString(request_bytes)
    except DecodeError as error:
        raise MalformedRequestError(
            f"the request body ({len(request_bytes)} bytes) is not a ToFunction message: {error}"
        ) from None
    if not to_function.HasField("invocation"):
        raise MalformedRequestError(
            f"the request body ({len(request_bytes)} bytes) holds no invocation batch "
            "(ToFunction field 100)"
        )
    return to_function.invocation
