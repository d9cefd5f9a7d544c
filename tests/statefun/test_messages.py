from __future__ import annotations

import pytest

from statefun.errors import MessageTypeMismatchError
from statefun.messages import EgressMessage, Message, egress_message_builder, message_builder
from statefun.request_reply_pb2 import TypedValue
from statefun.utils import make_json_type
from statefun.wrapper_types import BoolType, DoubleType, FloatType, IntType, LongType, StringType


@pytest.mark.parametrize(
    "keyword, value, is_name, as_name",
    [
        ("int_value", 5, "is_int", "as_int"),
        ("long_value", 2**40, "is_long", "as_long"),
        ("str_value", "hi", "is_string", "as_string"),
        ("bool_value", True, "is_bool", "as_bool"),
        ("float_value", 0.5, "is_float", "as_float"),
        ("double_value", 0.1, "is_double", "as_double"),
    ],
)
def test_builtin_round_trip(keyword: str, value: object, is_name: str, as_name: str) -> None:
    message = message_builder("ex/fn", "id", **{keyword: value})
    assert getattr(message, is_name)()
    assert getattr(message, as_name)() == value
    assert message.target_typename == "ex/fn" and message.target_id == "id"


def test_custom_type_round_trip() -> None:
    doc = make_json_type("ex/doc")
    message = message_builder("ex/fn", "id", value={"a": 1}, value_type=doc)
    assert message.is_type(doc)
    assert message.value_typename() == "ex/doc"
    assert message.raw_value() == b'{"a": 1}'
    assert message.as_type(doc) == {"a": 1}


def test_as_type_refuses_a_different_typename() -> None:
    message = message_builder("ex/fn", "id", str_value="hi")
    assert not message.is_int()
    with pytest.raises(
        MessageTypeMismatchError, match="'io.statefun.types/string', not 'io.statefun.types/int'"
    ):
        message.as_int()
    with pytest.raises(TypeError):
        message.as_type(make_json_type("ex/doc"))


def test_absent_value_reads_as_none() -> None:
    message = Message("ex/fn", "id", TypedValue(typename="io.statefun.types/int", has_value=False))
    assert message.as_int() is None
    assert message.raw_value() is None
    # With no value there is nothing to mis-decode, so the typename is not checked.
    assert message.as_string() is None


def test_message_builder_errors() -> None:
    with pytest.raises(ValueError, match="Could not deduce the value type"):
        message_builder("ex/fn", "id", text="x")
    with pytest.raises(TypeError, match="Wrong number of value keywords"):
        message_builder("ex/fn", "id")
    with pytest.raises(TypeError, match="Wrong number of value keywords"):
        message_builder("ex/fn", "id", int_value=1, str_value="", bool_value=True)
    with pytest.raises(KeyError):
        message_builder("ex/fn", "id", int_value=1, str_value="x")
    with pytest.raises(ValueError, match="value can not be missing"):
        message_builder("ex/fn", "id", int_value=None)
    with pytest.raises(ValueError):
        message_builder("", "id", int_value=1)
    with pytest.raises(ValueError):
        message_builder("ex/fn", "", int_value=1)


def test_egress_message_builder() -> None:
    message = egress_message_builder("ex/out", 3, IntType)
    assert isinstance(message, EgressMessage)
    assert message.typename == "ex/out"
    assert message.value_typename() == "io.statefun.types/int"
    assert message.raw_value() == b"\x0d\x03\x00\x00\x00"
    with pytest.raises(ValueError):
        egress_message_builder("", 3, IntType)
    with pytest.raises(ValueError):
        egress_message_builder("ex/out", None, IntType)


def test_egress_message_requires_typename_and_value() -> None:
    with pytest.raises(ValueError, match="typename is missing"):
        EgressMessage("", TypedValue())
    with pytest.raises(ValueError, match="value is missing"):
        EgressMessage("ex/out", None)  # type: ignore[arg-type]
