"""Parsing a request body into the ``InvocationBatchRequest`` it carries, with errors that say what is wrong."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from statefun.errors import MalformedRequestError, derived_error
from statefun.request_reply_pb2 import ToFunction

__all__ = ["parse_request", "malformed"]

_parse_to_function = ToFunction.FromString
# The tag of ToFunction.invocation (field 100, length-delimited): what the runtime's requests start with.
_INVOCATION_TAG = b"\xa2\x06"


def parse_request(request_bytes: bytes) -> ToFunction.InvocationBatchRequest:
    """The invocation batch of a serialized ``ToFunction``.

    Errors are ``MalformedRequestError``s that are also what upstream raised for
    the same body: protobuf's ``DecodeError`` for bytes that do not parse, an
    ``AttributeError`` for a body without an invocation batch (upstream went on
    with an empty target and failed reading ``None.typename``).
    """
    if type(request_bytes) is not bytes:
        if isinstance(request_bytes, (bytes, bytearray, memoryview)):
            request_bytes = bytes(request_bytes)
        else:
            raise TypeError(
                f"the request must be the serialized ToFunction bytes, got "
                f"{type(request_bytes).__name__}"
            )
    if not request_bytes:
        raise malformed(
            AttributeError("'NoneType' object has no attribute 'typename'"),
            "empty request body: expected a serialized ToFunction message",
        )
    try:
        to_function = _parse_to_function(request_bytes)
    except DecodeError as error:
        raise malformed(
            error,
            f"the request body ({len(request_bytes)} bytes) is not a ToFunction message: {error}",
        ) from None
    # A body that parsed and starts with the invocation's tag has it: skip HasField then.
    if request_bytes[:2] != _INVOCATION_TAG and not to_function.HasField("invocation"):
        raise malformed(
            AttributeError("'NoneType' object has no attribute 'typename'"),
            f"the request body ({len(request_bytes)} bytes) holds no invocation batch "
            "(ToFunction field 100)",
        )
    return to_function.invocation


def malformed(upstream: Exception, message: str) -> BaseException:
    """A ``MalformedRequestError`` reading as ``message`` that is also an instance of ``upstream``'s class."""
    return derived_error(MalformedRequestError, upstream, message)
