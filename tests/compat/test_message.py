"""``DualMessage``: the 3.x ``Message`` plus the ``google.protobuf.Any`` members 2.x code calls."""

from __future__ import annotations

import copy
import pickle
import typing

import pytest
from compat_support import Admin, GreetRequest, User, packed, typed
from google.protobuf.any_pb2 import Any

from statefun import Message, make_protobuf_type
from statefun.compat.message import DualMessage, dual_message
from statefun.messages import received_message
from statefun.request_reply_pb2 import TypedValue
from statefun.wrapper_types import IntType, StringType

ANN = User(user_id="u1", name="Ann")

VALUES = [
    typed(ANN),
    typed(GreetRequest(name="Ann"), "com.googleapis/example.GreetRequest"),  # a Kafka ingress URL
    TypedValue(typename=StringType.typename, has_value=True, value=b"\x0a\x03Ann"),
    TypedValue(typename="type.googleapis.com/example.User", has_value=False),
    TypedValue(typename="noslash", has_value=True, value=ANN.SerializeToString()),
    TypedValue(typename="", has_value=True, value=b""),
]


def as_any(value: TypedValue) -> Any:
    return Any(type_url=value.typename, value=value.value if value.has_value else b"")


@pytest.mark.parametrize("value", VALUES, ids=lambda v: v.typename or "empty")
def test_the_any_members_answer_as_an_any_with_the_same_type_url_and_bytes_would(
    value: TypedValue,
) -> None:
    message, envelope = dual_message("example/fn", "1", value), as_any(value)

    assert message.type_url == envelope.type_url
    assert message.value == envelope.value
    assert message.TypeName() == envelope.TypeName()
    for descriptor in (User.DESCRIPTOR, GreetRequest.DESCRIPTOR, Admin.DESCRIPTOR):
        assert message.Is(descriptor) == envelope.Is(descriptor)
    for cls in (User, GreetRequest, Admin):
        from_message, from_envelope = cls(name="before"), cls(name="before")
        assert message.Unpack(from_message) == envelope.Unpack(from_envelope)
        assert from_message == from_envelope


def test_unpack_fills_the_message_and_says_false_on_a_mismatch() -> None:
    message = dual_message("example/fn", "1", typed(ANN))

    user, admin = User(), Admin(name="untouched")
    assert message.Unpack(user) is True and user == ANN
    assert message.Unpack(admin) is False and admin == Admin(name="untouched")
    assert message.Is(User.DESCRIPTOR) and not message.Is(Admin.DESCRIPTOR)
    assert (message.TypeName(), message.type_url) == (
        "example.User",
        "type.googleapis.com/example.User",
    )
    assert message.value == ANN.SerializeToString()


def outcome(call: typing.Callable[[Message], object], message: Message) -> object:
    """What ``call`` returns, or the type and text of what it raises."""
    try:
        return call(message)
    except Exception as error:
        return type(error), str(error)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: v.typename or "empty")
def test_the_3x_members_give_what_the_3x_message_gives(value: TypedValue) -> None:
    dual, plain = dual_message("example/fn", "1", value), received_message("example/fn", "1", value)
    user_type = make_protobuf_type(User)

    calls: list[typing.Callable[[Message], object]] = [
        lambda m: m.value_typename(),
        lambda m: m.raw_value(),
        lambda m: m.typed_value,
        lambda m: (m.target_typename, m.target_id),
        lambda m: m.is_string(),
        lambda m: m.as_string(),
        lambda m: m.is_int(),
        lambda m: m.as_int(),
        lambda m: m.is_type(user_type),
        lambda m: m.as_type(user_type),
        lambda m: m.as_type(IntType),
        lambda m: repr(m),
        lambda m: str(m),
        lambda m: type(m).__name__,
        lambda m: isinstance(m, Message),
        lambda m: m.nonsense,  # type: ignore[attr-defined]
        lambda m: hasattr(m, "as_double"),
    ]
    for call in calls:
        assert outcome(call, dual) == outcome(call, plain)


def test_it_is_a_message_and_survives_copy_and_pickle() -> None:
    message = dual_message("example/fn", "1", typed(ANN))

    assert isinstance(message, Message) and isinstance(message, DualMessage)
    assert not isinstance(message, Any)
    for clone in (copy.copy(message), copy.deepcopy(message)):
        assert type(clone) is DualMessage
        assert clone.typed_value == message.typed_value and clone.Is(User.DESCRIPTOR)
    # Pickling fails as for the 3.x Message (protoc's flat module names), not on the class.
    plain = received_message("example/fn", "1", typed(ANN))
    assert outcome(pickle.dumps, message) == outcome(pickle.dumps, plain)


def test_other_any_members_say_what_the_message_offers() -> None:
    message = dual_message("example/fn", "1", typed(ANN))

    with pytest.raises(AttributeError) as raised:
        message.Pack(ANN)  # type: ignore[attr-defined]
    assert str(raised.value) == (
        "message.Pack: the message of a function whose message parameter is not annotated is "
        "the 3.x Message with the google.protobuf.Any members 2.x code reads (Unpack, Is, "
        "TypeName, type_url, value); to receive a real google.protobuf.Any, annotate the "
        "parameter: message: google.protobuf.any_pb2.Any"
    )
    assert not hasattr(message, "SerializeToString")
    assert packed(ANN).value == message.value


def test_a_dual_message_holds_what_the_handlers_3x_message_holds() -> None:
    # dual_message repeats received_message's assignments; every slot must agree.
    missing = object()
    for value in VALUES:
        dual = dual_message("example/fn", "1", value)
        plain = received_message("example/fn", "1", value)
        slots = [slot for cls in type(plain).__mro__ for slot in getattr(cls, "__slots__", ())]
        assert slots
        for slot in slots:
            assert getattr(dual, slot, missing) == getattr(plain, slot, missing), slot


@pytest.mark.parametrize("strict", [False, True])
def test_strict_message_types_hold_for_functions_that_get_the_dual_message(strict: bool) -> None:
    from compat_support import to_function

    from statefun import RequestReplyHandler, StatefulFunctions
    from statefun.errors import MessageTypeMismatchError

    seen: list[typing.Any] = []
    functions = StatefulFunctions(strict_message_types=strict)

    @functions.bind("example/fn")
    def fn(context, message):  # type: ignore[no-untyped-def]  # says neither 3.x nor 2.x
        user = User()
        seen.append(message.Unpack(user) and user.name)
        try:
            seen.append(message.as_int())
        except MessageTypeMismatchError as error:
            seen.append(type(error))

    RequestReplyHandler(functions).handle_sync(to_function("example/fn", "1", [(None, typed(ANN))]))

    # Upstream decodes whatever the typename (the user's bytes parse as an IntWrapper with no
    # field 1: 0); strict mode refuses, for dual messages as for 3.x ones.
    assert seen == ["Ann", MessageTypeMismatchError if strict else 0]
