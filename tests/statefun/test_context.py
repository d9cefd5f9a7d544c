from __future__ import annotations

from datetime import timedelta

import pytest

from statefun.context import BatchContext, Context
from statefun.core import SdkAddress
from statefun.errors import TypenameError
from statefun.messages import Message, message_builder
from statefun.egress_io import kafka_egress_message
from statefun.request_reply_pb2 import TypedValue
from statefun.storage import make_address_storage_spec, resolve


def make_context() -> BatchContext:
    storage = resolve(make_address_storage_spec([]), "ex/fn", []).storage
    assert storage is not None
    return BatchContext(SdkAddress("ex", "fn", "id", "ex/fn"), storage)


def test_context_is_abstract() -> None:
    with pytest.raises(TypeError):
        Context()  # type: ignore[abstract]


def test_context_exposes_address_and_collects_in_order() -> None:
    context = make_context()
    assert context.address.typename == "ex/fn"
    assert context.caller is None
    first = message_builder("ex/a", "1", int_value=1)
    second = message_builder("ex/b", "2", int_value=2)
    context.send(first)
    context.send_after(timedelta(seconds=1.5), second, "token")
    context.cancel_delayed_message("token")
    context.send_egress(kafka_egress_message("ex/out", "t", "v"))
    assert context.messages == [first]
    assert [
        (d.is_cancellation, d.duration, d.cancellation_token) for d in context.delayed_messages
    ] == [
        (False, 1500, "token"),
        (True, 0, "token"),
    ]
    assert len(context.egresses) == 1


def test_bad_typenames_are_refused_when_sending() -> None:
    context = make_context()
    bad = Message("no-slash", "id", TypedValue())
    with pytest.raises(
        TypenameError,
        match="the target typename of a sent message must be of the form 'namespace/name', got 'no-slash'",
    ):
        context.send(bad)
    with pytest.raises(TypenameError, match="'no-slash'"):
        context.send_after(timedelta(seconds=1), bad)
    with pytest.raises(TypenameError, match="the egress typename .* got 'out'"):
        context.send_egress(kafka_egress_message("out", "t", "v"))
    assert not context.messages and not context.delayed_messages and not context.egresses


def test_wrong_arguments_raise_upstreams_exception_classes() -> None:
    # Upstream appended whatever it was given and failed reading it: an AttributeError for a
    # non-message or a duration without total_seconds(), protobuf's TypeError for a token.
    context = make_context()
    message = message_builder("ex/a", "1", int_value=1)
    with pytest.raises(AttributeError, match="send\\(\\) expects a Message"):
        context.send("ex/fn")  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="send_egress\\(\\) expects an EgressMessage"):
        context.send_egress(message)  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="timedelta"):
        context.send_after(5, message)  # type: ignore[arg-type]
    # upstream's parse_typename read .rfind of whatever it was given
    unhashable = message_builder("ex/a", "1", int_value=1)
    unhashable.target_typename = ["ex/a"]  # type: ignore[assignment]
    with pytest.raises(AttributeError, match="must be a 'namespace/name' string, got list"):
        context.send(unhashable)
    for token in (5, None, 1.5):
        with pytest.raises(TypeError, match="expects a str cancellation token"):
            context.cancel_delayed_message(token)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects a str cancellation token, got int 7"):
        context.send_after(timedelta(seconds=1), message, 7)  # type: ignore[arg-type]
    # The runtime fails the job on an empty cancellation token: refused here instead.
    with pytest.raises(ValueError, match="non-empty cancellation token"):
        context.cancel_delayed_message("")
    assert not context.messages and not context.delayed_messages and not context.egresses


def test_arguments_upstream_accepted_are_accepted() -> None:
    context = make_context()
    message = message_builder("ex/a", "1", int_value=1)

    class Duration:
        def total_seconds(self) -> float:
            return 0.25

    class LooksLikeAMessage:
        target_typename = "ex/b"
        target_id = "2"
        typed_value = TypedValue(typename="io.statefun.types/int", has_value=True)

    context.send_after(Duration(), message, b"token")  # type: ignore[arg-type]
    context.send_after(timedelta(seconds=1), message, None)
    context.cancel_delayed_message(b"token")  # type: ignore[arg-type]
    context.send(LooksLikeAMessage())  # type: ignore[arg-type]
    assert [(d.duration, d.cancellation_token) for d in context.delayed_messages] == [
        (250, "token"),
        (1000, None),
        (0, "token"),
    ]
    (sent,) = context.messages
    assert (sent.target_typename, sent.target_id) == ("ex/b", "2")
    assert sent.typed_value is LooksLikeAMessage.typed_value
