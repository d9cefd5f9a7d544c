"""The dual context: the 3.x context's behaviour, plus the 2.x calls, told apart by their arguments.

Every test runs a function body through the real handler: the function is
registered unannotated in ``statefun.StatefulFunctions`` (so it gets the
``DualContext``) and the decoded ``FromFunction`` is checked.
"""

from __future__ import annotations

import re
import typing
from datetime import timedelta

import pytest
from compat_support import (
    ANY_STATE_TYPENAME,
    GreetResponse,
    SeenCount,
    User,
    address,
    any_state,
    from_function,
    packed,
    to_function,
    type_url,
    typed,
)
from google.protobuf.any_pb2 import Any

from statefun import (
    Context,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    kafka_egress_message,
    message_builder,
)
from statefun.compat.context import DualContext
from statefun.compat.egress import KAFKA_RECORD_TYPENAME, kafka_egress_record
from statefun.context import BatchContext
from statefun.core import SdkAddress
from statefun.request_reply_pb2 import FromFunction, TypedValue
from statefun.wrapper_types import StringType

ANN = User(user_id="u1", name="Ann")
Body = typing.Callable[[typing.Any, typing.Any], None]


def run(
    body: Body,
    *,
    caller: tuple[str, str] | None = None,
    state: dict[str, TypedValue | None] | None = None,
) -> FromFunction:
    """Run ``body`` as the unannotated function example/greeter, instance Ann."""
    functions = StatefulFunctions()

    def greeter(context, message):  # type: ignore[no-untyped-def]
        body(context, message)

    functions.register("example/greeter", greeter)
    sender = None if caller is None else address(*caller)
    request = to_function("example/greeter", "Ann", [(sender, typed(ANN))], state=state)
    return from_function(RequestReplyHandler(functions)(request))


def result_of(body: Body, **keywords: typing.Any) -> FromFunction.InvocationResponse:
    response = run(body, **keywords)
    assert response.WhichOneof("response") in ("invocation_result", None)
    return response.invocation_result


def test_it_is_the_3x_context_to_isinstance_and_repr() -> None:
    seen: list[object] = []
    result_of(lambda context, message: seen.append(context))

    (context,) = seen
    assert isinstance(context, DualContext)
    assert isinstance(context, BatchContext) and isinstance(context, Context)
    assert type(context).__name__ == BatchContext.__name__
    assert re.fullmatch(r"<statefun\.context\.BatchContext object at 0x[0-9a-f]+>", repr(context))


def test_addresses_read_in_both_dialects() -> None:
    seen: list[object] = []

    def body(context: typing.Any, message: typing.Any) -> None:
        seen.extend([context.address, context.caller])

    result_of(body, caller=("example/caller", "c1"))

    me, caller = seen
    assert me == SdkAddress("example", "greeter", "Ann", "example/greeter")
    assert (me.type, me.identity, me.typename()) == ("greeter", "Ann", "example/greeter")  # type: ignore[attr-defined]
    assert caller == SdkAddress("example", "caller", "c1", "example/caller")
    assert caller.typename() == "example/caller" and caller.identity == "c1"  # type: ignore[attr-defined]


def test_an_ingress_message_has_no_caller_as_in_3x() -> None:
    seen: list[object] = []
    result_of(lambda context, message: seen.append(context.caller))
    assert seen == [None]


# -- 2.x sends ----------------------------------------------------------------------------------


def test_send_and_pack_and_send_produce_typed_values() -> None:
    def body(context: typing.Any, message: typing.Any) -> None:
        context.send("example/hello", "u1", packed(ANN))
        context.pack_and_send("example/hello", "u2", ANN)
        context.send(typename="example/hello", id="u3", message=packed(ANN))
        context.send("example/hello", "u4", message)  # the received message is an Any too

    result = result_of(body)

    assert [(m.target, m.argument) for m in result.outgoing_messages] == [
        (address("example/hello", id), typed(ANN)) for id in ("u1", "u2", "u3", "u4")
    ]


def test_reply_goes_to_the_caller() -> None:
    result = result_of(
        lambda context, message: context.pack_and_reply(ANN), caller=("example/caller", "c1")
    )

    (message,) = result.outgoing_messages
    assert message.target == address("example/caller", "c1")
    assert message.argument == typed(ANN)


def test_delayed_sends_in_either_argument_order() -> None:
    def body(context: typing.Any, message: typing.Any) -> None:
        context.send_after(timedelta(seconds=2), "example/a", "1", packed(ANN))
        context.pack_and_send_after("example/b", "2", timedelta(milliseconds=1500), ANN)
        context.send_after(delay=timedelta(0), typename="example/c", id="3", message=packed(ANN))

    result = result_of(body)

    assert [(d.delay_in_ms, d.target, d.argument) for d in result.delayed_invocations] == [
        (2000, address("example/a", "1"), typed(ANN)),
        (1500, address("example/b", "2"), typed(ANN)),
        (0, address("example/c", "3"), typed(ANN)),
    ]


def test_egress_records_reach_the_generic_egress_typename() -> None:
    record = kafka_egress_record("greetings", GreetResponse(name="Ann"), key="Ann")
    legacy_envelope = Any(
        type_url="type.googleapis.com/org.apache.flink.statefun.flink.io.KafkaProducerRecord",
        value=record.SerializeToString(),
    )

    def body(context: typing.Any, message: typing.Any) -> None:
        context.pack_and_send_egress("example/greets", record)
        context.send_egress("example/greets", legacy_envelope)

    result = result_of(body)

    assert len(result.outgoing_egresses) == 2
    for egress in result.outgoing_egresses:
        assert (egress.egress_namespace, egress.egress_type) == ("example", "greets")
        assert egress.argument == TypedValue(
            typename=KAFKA_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()
        )


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (
            lambda c: c.send("example/hello", "u1", ANN),
            TypeError,
            "send() expects a google.protobuf.Any, got User; use pack_and_send() to pass a User",
        ),
        (
            lambda c: c.send("example/hello", "u1", None),
            ValueError,
            "send(): the message is missing",
        ),
        (lambda c: c.send("example/hello", "u1", Any()), ValueError, "the Any has no type_url"),
        (
            lambda c: c.send("hello", "u1", packed(ANN)),
            ValueError,
            "target typename of send() must be of the form 'namespace/name', got 'hello'",
        ),
        (
            lambda c: c.send("example/hello", "", packed(ANN)),
            ValueError,
            "the target id must be a non-empty str",
        ),
        (
            lambda c: c.pack_and_send("example/hello", "u1", "Ann"),
            TypeError,
            "pack_and_send() expects a protobuf message, got str",
        ),
        (
            lambda c: c.reply(packed(ANN)),
            ValueError,
            "came from an ingress, so there is no caller to reply to",
        ),
        (
            lambda c: c.send_egress("greets", packed(ANN)),
            ValueError,
            "egress typename of send_egress()",
        ),
        (
            lambda c: c.send_after(timedelta(seconds=-1), "example/a", "1", packed(ANN)),
            ValueError,
            "the delay must not be negative",
        ),
        (
            lambda c: c.pack_and_send_after("example/a", "1", 5, ANN),
            TypeError,
            "pack_and_send_after() expects (delay: timedelta, typename, id, message)",
        ),
    ],
)
def test_bad_2x_calls_say_what_is_wrong(call: Body, error: type[Exception], text: str) -> None:
    def body(context: typing.Any, message: typing.Any) -> None:
        call(context)  # type: ignore[call-arg]

    with pytest.raises(error) as raised:
        run(body)
    assert text in str(raised.value)


# -- calls that fit neither form ----------------------------------------------------------------

BOTH_SEND = (
    "send() takes either the 3.x form send(message: statefun.Message) or the 2.x form "
    "send(typename: str, id: str, message: google.protobuf.Any); got send("
)
BOTH_SEND_AFTER = (
    "send_after() takes either the 3.x form send_after(duration: timedelta, message: "
    "statefun.Message, cancellation_token: str = '') or the 2.x form send_after(delay: "
    "timedelta, typename: str, id: str, message: google.protobuf.Any); got send_after("
)
BOTH_SEND_EGRESS = (
    "send_egress() takes either the 3.x form send_egress(message: statefun.EgressMessage) or "
    "the 2.x form send_egress(typename: str, message: google.protobuf.Any); got send_egress("
)


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda c: c.send(), BOTH_SEND + ")"),
        (lambda c: c.send("example/hello", packed(ANN)), BOTH_SEND + "str, Any)"),
        (lambda c: c.send(1, "u1", packed(ANN)), BOTH_SEND + "int, str, Any)"),
        (lambda c: c.send("a/b", "1", packed(ANN), "x"), BOTH_SEND + "str, str, Any, str)"),
        (lambda c: c.send(msg=packed(ANN)), BOTH_SEND + "msg=Any)"),
        (lambda c: c.send_after(timedelta(1)), BOTH_SEND_AFTER + "timedelta)"),
        (
            lambda c: c.send_after("example/a", "1", "soon", packed(ANN)),
            BOTH_SEND_AFTER + "str, str, str, Any)",
        ),
        (lambda c: c.send_egress(), BOTH_SEND_EGRESS + ")"),
        (lambda c: c.send_egress(1, packed(ANN)), BOTH_SEND_EGRESS + "int, Any)"),
        (
            lambda c: c.send_egress("example/out", packed(ANN), "extra"),
            BOTH_SEND_EGRESS + "str, Any, str)",
        ),
    ],
)
def test_a_call_that_fits_neither_form_shows_both(call: Body, text: str) -> None:
    def body(context: typing.Any, message: typing.Any) -> None:
        call(context)  # type: ignore[call-arg]

    with pytest.raises(TypeError) as raised:
        run(body)
    assert str(raised.value) == text


def test_3x_and_2x_sends_mix_in_one_batch_in_call_order() -> None:
    def body(context: typing.Any, message: typing.Any) -> None:
        context.send(message_builder("example/a", "1", str_value="3.x"))
        context.send("example/a", "2", packed(ANN))
        context.send(message=message_builder("example/a", "3", int_value=3))
        context.send_after(
            timedelta(seconds=1), message_builder("example/b", "1", str_value="x"), "t"
        )
        context.pack_and_send_after(timedelta(seconds=2), "example/b", "2", ANN)
        context.cancel_delayed_message("t")
        context.send_egress(kafka_egress_message("example/out", "topic", "3.x"))
        context.pack_and_send_egress("example/out", kafka_egress_record("topic", ANN))

    result = result_of(body)

    assert [(m.target.id, m.argument.typename) for m in result.outgoing_messages] == [
        ("1", StringType.typename),
        ("2", type_url(User)),
        ("3", "io.statefun.types/int"),
    ]
    assert [
        (d.is_cancellation_request, d.delay_in_ms, d.cancellation_token)
        for d in result.delayed_invocations
    ] == [(False, 1000, "t"), (False, 2000, ""), (True, 0, "t")]
    assert [e.argument.typename for e in result.outgoing_egresses] == [KAFKA_RECORD_TYPENAME] * 2


# -- 2.x state access -------------------------------------------------------------------------


def test_item_access_reads_writes_and_deletes_any_state() -> None:
    seen: list[object] = []

    def body(context: typing.Any, message: typing.Any) -> None:
        seen.extend([context["count"], "count" in context, "other" in context, context["other"]])
        context["other"] = packed(SeenCount(seen=9))
        del context["count"]
        seen.extend([context.storage.other, context.storage.count])
        seen.append(context.state("other").unpack(SeenCount))

    result = result_of(body, state={"count": any_state(SeenCount(seen=1)), "other": None})

    assert seen == [
        packed(SeenCount(seen=1)),
        True,
        False,
        None,
        packed(SeenCount(seen=9)),
        None,
        SeenCount(seen=9),
    ]
    mutations = {m.state_name: m for m in result.state_mutations}
    assert mutations["count"].mutation_type == FromFunction.PersistedValueMutation.DELETE
    assert mutations["other"].state_value == any_state(SeenCount(seen=9))
    assert mutations["other"].state_value.typename == ANY_STATE_TYPENAME


def test_a_received_message_can_be_stored_as_an_any_state() -> None:
    result = result_of(
        lambda context, message: context.__setitem__("last", message), state={"last": None}
    )

    (mutation,) = result.state_mutations
    assert mutation.state_value == any_state(ANN)


def test_3x_storage_access_to_an_undeclared_state_is_upstreams_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'count' is not a registered ValueSpec"):
        run(lambda context, message: context.storage.count)
