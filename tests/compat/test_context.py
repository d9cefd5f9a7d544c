"""The 2.x context facade: each 2.x call becomes the 3.x context call the handler serializes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from compat_support import GreetResponse, SeenCount, User, any_state, packed, type_url
from google.protobuf.any_pb2 import Any

from statefun.compat.context import LegacyContext
from statefun.compat.egress import KAFKA_RECORD_TYPENAME, kafka_egress_record
from statefun.compat.errors import UndeclaredStateError
from statefun.compat.state import state_specs
from statefun.context import BatchContext
from statefun.core import SdkAddress
from statefun.request_reply_pb2 import ToFunction, TypedValue
from statefun.storage import make_address_storage_spec, resolve

ANN = User(user_id="u1", name="Ann")
ME = SdkAddress("example", "greeter", "Ann", "example/greeter")
CALLER = SdkAddress("example", "caller", "c1", "example/caller")


def make_context(
    caller: SdkAddress | None = None, states: dict[str, TypedValue | None] | None = None
) -> tuple[LegacyContext, BatchContext]:
    states = states or {}
    specs = state_specs("example/greeter", list(states))
    received = [ToFunction.PersistedValue(state_name=name) for name in states]
    for persisted in received:
        value = states[persisted.state_name]
        if value is not None:
            persisted.state_value.CopyFrom(value)
    storage = resolve(make_address_storage_spec(specs), "example/greeter", received).storage
    assert storage is not None
    batch_context = BatchContext(ME, storage)
    batch_context.set_caller(caller)
    return LegacyContext(batch_context, "example/greeter", tuple(states)), batch_context


def test_addresses_in_2x_form() -> None:
    context, _ = make_context(caller=CALLER)

    assert (context.address.namespace, context.address.type, context.address.identity) == (
        "example",
        "greeter",
        "Ann",
    )
    assert context.address.typename() == "example/greeter"
    assert context.caller.typename() == "example/caller"
    assert context.caller.identity == "c1"
    assert not make_context()[0].caller


def test_send_and_pack_and_send_produce_typed_values() -> None:
    context, batch = make_context()

    context.send("example/hello", "u1", packed(ANN))
    context.pack_and_send("example/hello", "u2", ANN)

    assert [(m.target_typename, m.target_id) for m in batch.messages] == [
        ("example/hello", "u1"),
        ("example/hello", "u2"),
    ]
    for message in batch.messages:
        assert message.typed_value == TypedValue(
            typename=type_url(User), has_value=True, value=ANN.SerializeToString()
        )


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (
            lambda c: c.send("example/hello", "u1", ANN),
            TypeError,
            "send\\(\\) expects a google.protobuf.Any, got User; use pack_and_send\\(\\)",
        ),
        (
            lambda c: c.send("example/hello", "u1", None),
            ValueError,
            "send\\(\\): the message is missing",
        ),
        (lambda c: c.send("example/hello", "u1", Any()), ValueError, "the Any has no type_url"),
        (
            lambda c: c.send("hello", "u1", packed(ANN)),
            ValueError,
            "target typename of send\\(\\) must be of the form 'namespace/name', got 'hello'",
        ),
        (
            lambda c: c.send("example/hello", "", packed(ANN)),
            ValueError,
            "the target id must be a non-empty str",
        ),
        (
            lambda c: c.pack_and_send("example/hello", "u1", "Ann"),
            TypeError,
            "pack_and_send\\(\\) expects a protobuf message, got str",
        ),
        (
            lambda c: c.reply(packed(ANN)),
            ValueError,
            "came from an ingress, so there is no caller to reply to",
        ),
        (
            lambda c: c.send_egress("greets", packed(ANN)),
            ValueError,
            "egress typename of send_egress\\(\\)",
        ),
        (
            lambda c: c.send_after(5, "example/a", "1", packed(ANN)),
            TypeError,
            "send_after\\(\\) expects \\(delay: timedelta, typename, id, message\\)",
        ),
        (
            lambda c: c.send_after(timedelta(seconds=-1), "example/a", "1", packed(ANN)),
            ValueError,
            "the delay must not be negative",
        ),
    ],
)
def test_bad_calls_say_what_is_wrong(call: object, error: type[Exception], text: str) -> None:
    context, batch = make_context()

    with pytest.raises(error, match=text):
        call(context)  # type: ignore[operator]
    assert not batch.messages and not batch.delayed_messages and not batch.egresses


def test_reply_goes_to_the_caller() -> None:
    context, batch = make_context(caller=CALLER)

    context.pack_and_reply(ANN)

    (message,) = batch.messages
    assert (message.target_typename, message.target_id) == ("example/caller", "c1")
    assert User.FromString(message.typed_value.value) == ANN


def test_delayed_sends_in_either_argument_order() -> None:
    context, batch = make_context()

    context.send_after(timedelta(seconds=2), "example/a", "1", packed(ANN))
    context.pack_and_send_after("example/b", "2", timedelta(milliseconds=1500), ANN)

    assert [(d.duration, d.message.target_typename, d.message.target_id) for d in batch.delayed_messages] == [  # type: ignore[union-attr]
        (2000, "example/a", "1"),
        (1500, "example/b", "2"),
    ]


def test_egress_records_reach_the_generic_egress_typename() -> None:
    context, batch = make_context()
    record = kafka_egress_record("greetings", GreetResponse(name="Ann"), key="Ann")
    legacy_envelope = Any(
        type_url="type.googleapis.com/org.apache.flink.statefun.flink.io.KafkaProducerRecord",
        value=record.SerializeToString(),
    )

    context.pack_and_send_egress("example/greets", record)
    context.send_egress("example/greets", legacy_envelope)

    for egress in batch.egresses:
        assert egress.typename == "example/greets"
        assert egress.typed_value == TypedValue(
            typename=KAFKA_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()
        )


def test_item_access_reads_writes_and_deletes_any_state() -> None:
    context, batch = make_context(states={"count": any_state(SeenCount(seen=1)), "other": None})

    assert context["count"] == packed(SeenCount(seen=1))
    assert "count" in context and "other" not in context and "missing" not in context
    assert context["other"] is None
    context["other"] = packed(SeenCount(seen=9))
    del context["count"]

    assert batch.storage.other == packed(SeenCount(seen=9))
    assert batch.storage.count is None
    assert context.state("other") is context.state("other")
    assert context.storage is batch.storage


def test_an_undeclared_state_is_a_key_error_that_says_how_to_declare_it() -> None:
    context, _ = make_context(states={"count": None})

    with pytest.raises(KeyError) as raised:
        context["seen_count"]

    assert isinstance(raised.value, UndeclaredStateError)
    assert str(raised.value) == (
        "unknown state name 'seen_count' for the function example/greeter (declared: 'count'). "
        "States need to be declared when the function is bound, e.g. "
        "@functions.bind('example/greeter', states=['seen_count']); 2.x declared them in "
        "module.yaml, which the 3.x protocol no longer reads"
    )
    with pytest.raises(KeyError):
        context["seen_count"] = packed(ANN)
    with pytest.raises(KeyError):
        del context["seen_count"]
