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


def test_argument_types_are_checked() -> None:
    context = make_context()
    with pytest.raises(TypeError, match="expects a Message"):
        context.send("ex/fn")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timedelta"):
        context.send_after(5, message_builder("ex/a", "1", int_value=1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty cancellation token"):
        context.cancel_delayed_message("")
