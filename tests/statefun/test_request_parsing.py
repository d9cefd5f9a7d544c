from __future__ import annotations

import pytest

from statefun.errors import MalformedRequestError
from statefun.request_parsing import parse_request
from statefun.request_reply_pb2 import ToFunction
from statefun.utils import to_typed_value
from statefun.wrapper_types import StringType

from statefun_test_wire import request


@pytest.mark.parametrize("size", [0, 1, 127, 128, 20000])
def test_the_runtime_shaped_request_and_the_general_path_agree(size: int) -> None:
    body = request("ex/fn", "id", [to_typed_value(StringType, "x" * size)])
    via_protobuf = ToFunction()
    via_protobuf.ParseFromString(body)
    assert parse_request(body) == via_protobuf.invocation
    # With a trailing unknown field the fast path does not apply; the result is the same.
    assert parse_request(body + b"\x08\x01") == via_protobuf.invocation


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "empty request body"),
        (b"\xa2\x06", "is not a ToFunction message"),
        (b"\xa2\x06\x05\x0a", "is not a ToFunction message"),
        (b"\x08\x01", "holds no invocation batch"),
    ],
)
def test_errors_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(MalformedRequestError, match=message):
        parse_request(body)


def test_only_bytes_like_requests() -> None:
    body = request("ex/fn", "id", [])
    assert parse_request(bytearray(body)) == parse_request(memoryview(body)) == parse_request(body)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got str"):
        parse_request("text")  # type: ignore[arg-type]
