from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from statefun.errors import MessageTypeMismatchError
from statefun.messages import (
    EgressMessage,
    Message,
    StrictMessage,
    egress_message_builder,
    message_builder,
    received_strict_message,
)
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


def test_as_type_decodes_whatever_the_typename_as_upstream() -> None:
    # The playground's HTTP ingress labels JSON io.statefun.types/string; functions read it
    # with as_type(make_json_type(...)).
    doc = make_json_type("ex/doc")
    labelled_string = Message(
        "ex/fn",
        "id",
        TypedValue(typename="io.statefun.types/string", has_value=True, value=b'{"a": [1, 2]}'),
    )
    assert labelled_string.is_string() and not labelled_string.is_type(doc)
    assert labelled_string.as_type(doc) == {"a": [1, 2]}
    # Upstream's documented oddity: a string read as an int skips the field of the other wire type.
    message = message_builder("ex/fn", "id", str_value="hi")
    assert not message.is_int()
    assert message.as_int() == 0
    assert message.as_string() == "hi"
    assert message_builder("ex/fn", "id", int_value=7).as_string() == ""
    raw = Message("ex/fn", "id", TypedValue(typename="io.statefun.types/string", value=b"\xff"))
    raw.typed_value.has_value = True
    with pytest.raises(DecodeError):
        raw.as_string()


def test_strict_messages_refuse_a_different_typename() -> None:
    doc = make_json_type("ex/doc")
    built = message_builder("ex/fn", "id", str_value="hi")
    received = Message("ex/fn", "id", built.typed_value)
    for message in (built, received):
        strict = strict_copy(message)
        assert strict.as_string() == "hi"
        with pytest.raises(
            MessageTypeMismatchError,
            match="'io.statefun.types/string', not 'io.statefun.types/int'",
        ):
            strict.as_int()
        with pytest.raises(TypeError):
            strict.as_type(doc)
    absent = strict_copy(Message("ex/fn", "id", TypedValue(typename="ex/doc", has_value=False)))
    assert absent.as_int() is None


def strict_copy(message: Message) -> Message:
    if message._typed_value is None:
        strict: Message = object.__new__(StrictMessage)
        strict.target_typename, strict.target_id = message.target_typename, message.target_id
        strict._typed_value = None
        strict._value_typename, strict._value = message._value_typename, message._value
        return strict
    return received_strict_message(message.target_typename, message.target_id, message.typed_value)


def test_absent_value_reads_as_none() -> None:
    message = Message("ex/fn", "id", TypedValue(typename="io.statefun.types/int", has_value=False))
    assert message.as_int() is None
    assert message.raw_value() is None
    # With no value there is nothing to mis-decode, so the typename is not checked.
    assert message.as_string() is None


def test_float_values_read_back_narrowed_to_float32() -> None:
    assert message_builder("ex/fn", "id", float_value=0.1).as_float() == 0.10000000149011612
    assert message_builder("ex/fn", "id", double_value=0.1).as_double() == 0.1


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
    with pytest.raises(ValueError, match="value_type is missing"):
        message_builder("ex/fn", "id", value=1, value_type=None)
    with pytest.raises(ValueError, match="out of range"):
        message_builder("ex/fn", "id", int_value=2**31)
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
