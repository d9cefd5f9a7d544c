"""Type-hint dispatch: which class a message is unpacked into, and the error when none fits."""

from __future__ import annotations

import typing

import pytest
from compat_support import Admin, GreetRequest, User, packed, typed
from google.protobuf.any_pb2 import Any

from statefun.compat.dispatch import (
    NOT_ANNOTATED,
    MessageHint,
    envelope_of,
    holds,
    message_hint,
    payload_for,
)
from statefun.compat.errors import UndecodableMessageError, UnknownMessageTypeError
from statefun.messages import Message
from statefun.request_reply_pb2 import TypedValue

ANN = User(user_id="u1", name="Ann")


@pytest.mark.parametrize(
    ("annotation", "classes", "accepts_envelope"),
    [
        (NOT_ANNOTATED, (), True),
        (typing.Any, (), True),
        (Any, (), True),
        (User, (User,), False),
        (typing.Union[User, Admin], (User, Admin), False),
        (User | Admin, (User, Admin), False),
        (typing.Optional[User], (User,), False),
        (typing.Union[User, Any], (User,), True),
    ],
)
def test_hints_a_2x_function_may_carry(
    annotation: object, classes: tuple[type, ...], accepts_envelope: bool
) -> None:
    assert message_hint(annotation) == MessageHint(
        classes=classes, accepts_envelope=accepts_envelope
    )


@pytest.mark.parametrize("annotation", [str, Message, typing.Union[User, str], "User"])
def test_hints_that_are_not_2x_hints(annotation: object) -> None:
    assert message_hint(annotation) is None


def test_envelope_carries_the_typename_as_type_url() -> None:
    envelope = envelope_of(typed(ANN))

    assert envelope == packed(ANN)
    assert envelope_of(TypedValue(typename="ex/t", has_value=False)) == Any(type_url="ex/t")


def test_ingress_type_urls_match_on_the_full_name() -> None:
    envelope = envelope_of(typed(GreetRequest(name="Ann"), "com.googleapis/example.GreetRequest"))

    assert holds(envelope, GreetRequest)
    assert not holds(envelope, User)
    assert not holds(Any(type_url="example.GreetRequest"), GreetRequest)


def test_payload_is_the_first_matching_class_else_the_envelope() -> None:
    union = MessageHint(classes=(Admin, User), accepts_envelope=False)
    fallback = MessageHint(classes=(Admin,), accepts_envelope=True)

    assert payload_for(union, packed(ANN), "ex/fn") == ANN
    assert payload_for(fallback, packed(ANN), "ex/fn") == packed(ANN)


def test_an_unmatched_type_names_the_function_and_what_it_accepts() -> None:
    hint = MessageHint(classes=(User, Admin), accepts_envelope=False)

    with pytest.raises(UnknownMessageTypeError) as raised:
        payload_for(hint, packed(GreetRequest(name="x")), "ex/fn")

    assert isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(
        "Unknown message type type.googleapis.com/example.GreetRequest:"
    )
    assert "the function ex/fn accepts only example.User, example.Admin" in str(raised.value)


def test_bytes_that_do_not_parse_as_the_named_type_are_reported() -> None:
    hint = MessageHint(classes=(User,), accepts_envelope=False)
    broken = Any(type_url="type.googleapis.com/example.User", value=b"\x0a\x05ab")

    with pytest.raises(UndecodableMessageError, match="could not be parsed as example.User"):
        payload_for(hint, broken, "ex/fn")
