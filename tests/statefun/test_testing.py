from __future__ import annotations

from datetime import timedelta

import pytest

from statefun import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    kafka_egress_message,
    kinesis_egress_message,
    make_json_type,
    message_builder,
)
from statefun.testing import (
    DelayedMessage,
    EgressRecord,
    FunctionHarness,
    KafkaRecord,
    KinesisRecord,
    SentMessage,
)

Profile = make_json_type("ex/profile")


def build() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("ex/greeter", [ValueSpec("seen_count", IntType), ValueSpec("profile", Profile)])
    async def greet(context: Context, message: Message) -> None:
        name = message.as_string()
        seen = context.storage.seen_count or 0
        context.storage.seen_count = seen + 1
        context.send(
            message_builder(
                "ex/inbox", name or "?", str_value=f"Hello {name} for the {seen}th time!"
            )
        )
        context.send_egress(kafka_egress_message("ex/kafka", "greetings", f"hi {name}", key=name))
        if context.caller is not None:
            context.send_egress(kinesis_egress_message("ex/kinesis", "s", b"raw", "pk"))
        context.send_egress(egress_message_builder("ex/custom", {"to": name}, Profile))

    @functions.bind("ex/scheduler", [ValueSpec("profile", Profile)])
    def schedule(context: Context, message: Message) -> None:
        del context.storage.profile
        context.send_after(
            timedelta(minutes=1),
            message_builder("ex/b", "1", value={"a": 1}, value_type=Profile),
            "t",
        )
        context.cancel_delayed_message("old")

    return functions


def test_greeter_round_trip_gives_plain_values() -> None:
    harness = FunctionHarness(build(), "ex/greeter")
    result = harness.invoke("alice", "bob", id="x", state={"seen_count": 3})
    assert result.state == {"seen_count": 5, "profile": None}
    assert result.state_changes == {"seen_count": 5}
    assert result.messages == [
        SentMessage(
            "ex/inbox", "alice", "io.statefun.types/string", "Hello alice for the 3th time!"
        ),
        SentMessage("ex/inbox", "bob", "io.statefun.types/string", "Hello bob for the 4th time!"),
    ]
    assert result.egress[0] == KafkaRecord("ex/kafka", "greetings", "alice", b"hi alice")
    assert result.egress[1] == EgressRecord("ex/custom", "ex/profile", {"to": "alice"})
    assert len(result.egress) == 4
    assert result.response_bytes


def test_caller_and_kinesis() -> None:
    result = FunctionHarness(build(), "ex/greeter").invoke("a", caller=("ex/other", "7"))
    assert KinesisRecord("ex/kinesis", "s", "pk", None, b"raw") in result.egress


def test_delays_cancellations_and_deletes() -> None:
    result = FunctionHarness(build(), "ex/scheduler").invoke(
        ("x", StringType), state={"profile": {"n": 1}}
    )
    assert result.state == {"profile": None}
    assert result.state_changes == {"profile": None}
    assert result.delayed == [
        DelayedMessage(timedelta(minutes=1), "ex/b", "1", "ex/profile", {"a": 1}, "t")
    ]
    assert result.cancellations == ["old"]


def test_unknown_types_come_back_as_bytes_unless_registered() -> None:
    functions = StatefulFunctions()
    Point = make_json_type("ex/point")
    functions.register(
        "ex/fn", lambda c, m: c.send(message_builder("ex/b", "1", value=[1, 2], value_type=Point))
    )
    assert FunctionHarness(functions, "ex/fn").invoke(1).messages[0].value == b"[1, 2]"
    assert FunctionHarness(functions, "ex/fn", types=[Point]).invoke(1).messages[0].value == [1, 2]


def test_bad_harness_input() -> None:
    harness = FunctionHarness(build(), "ex/greeter")
    with pytest.raises(ValueError, match="not declared by ex/greeter"):
        harness.invoke("a", state={"nope": 1})
    with pytest.raises(TypeError, match="cannot send float"):
        harness.invoke(1.5)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        FunctionHarness(build(), "ex/unknown")


def test_user_exceptions_propagate() -> None:
    functions = StatefulFunctions()

    def fail(context: Context, message: Message) -> None:
        raise LookupError("nope")

    functions.register("ex/fn", fail)
    with pytest.raises(LookupError, match="nope"):
        FunctionHarness(functions, "ex/fn").invoke("x")


def test_invoke_async_runs_on_the_callers_loop() -> None:
    import asyncio

    functions = StatefulFunctions()
    loops: list[object] = []

    async def record(context: Context, message: Message) -> None:
        loops.append(asyncio.get_running_loop())
        context.storage.seen_count = (context.storage.seen_count or 0) + 1

    functions.register("ex/fn", record, [ValueSpec("seen_count", IntType)])
    harness = FunctionHarness(functions, "ex/fn")

    async def main() -> tuple[object, dict[str, object]]:
        result = await harness.invoke_async("a", "b", state={"seen_count": 1})
        return asyncio.get_running_loop(), result.state

    loop, state = asyncio.run(main())
    assert loops == [loop, loop]
    assert state == {"seen_count": 3}
