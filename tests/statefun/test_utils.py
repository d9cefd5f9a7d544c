from __future__ import annotations

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from statefun.errors import StateTypeMismatchError
from statefun.request_reply_pb2 import TypedValue
from statefun.utils import from_typed_value, make_json_type, make_protobuf_type, to_typed_value
from statefun.wrapper_types import IntType, StringType


def test_make_protobuf_type_names_and_round_trips() -> None:
    tpe = make_protobuf_type(StringValue)
    assert tpe.typename == "type.googleapis.com/google.protobuf.StringValue"
    assert (
        make_protobuf_type(StringValue, namespace="ex").typename == "ex/google.protobuf.StringValue"
    )
    data = tpe.serializer().serialize(StringValue(value="x"))
    assert data == b"\x0a\x01x"
    assert tpe.serializer().deserialize(data) == StringValue(value="x")
    with pytest.raises(ValueError):
        make_protobuf_type(None)  # type: ignore[arg-type]


def test_make_json_type_uses_utf8_without_ascii_escapes() -> None:
    tpe = make_json_type("ex/doc")
    assert tpe.typename == "ex/doc"
    assert tpe.serializer().serialize({"n": "ä"}) == '{"n": "ä"}'.encode()
    assert tpe.serializer().deserialize('{"n": "ä"}'.encode()) == {"n": "ä"}


def test_to_typed_value() -> None:
    assert to_typed_value(IntType, None) == TypedValue(typename="io.statefun.types/int")
    assert to_typed_value(IntType, 1) == TypedValue(
        typename="io.statefun.types/int", has_value=True, value=b"\x0d\x01\x00\x00\x00"
    )


def test_from_typed_value() -> None:
    assert from_typed_value(IntType, None) is None
    assert from_typed_value(IntType, TypedValue(typename="io.statefun.types/int")) is None
    assert from_typed_value(IntType, to_typed_value(IntType, 7)) == 7
    with pytest.raises(
        TypeError, match="Type mismatch: type io.statefun.types/string \\(remote\\)"
    ) as raised:
        from_typed_value(IntType, to_typed_value(StringType, "x"))
    assert isinstance(raised.value, StateTypeMismatchError)
