"""The cost of the 2.x adaptation: one greeter written 3.x-style and 2.x-style, same handler.

    .venv/bin/python bench/compat.py [--rounds 3] [--seconds 0.3] [--repeats 5] [--batch 10]

The greeters do the same work per invocation: read a protobuf state
(``Int32Value``), increment it and write it back, send a protobuf message
(``StringValue``) to another function and a Kafka egress record.

* ``3.x``: a protobuf ``ValueSpec``, ``message_builder``, ``kafka_egress_message``;
* ``2.x, hint + states=``: registered on ``statefun.compat.StatefulFunctions`` with
  ``states=["seen"]`` (a ``google.protobuf.Any`` state) and a protobuf type hint,
  ``context.state(...)``, ``pack_and_send``, ``kafka_egress_record``;
* ``2.x, unannotated``: the same body as the seeds write it, on
  ``statefun.StatefulFunctions``, no hint and no declared state (the dual message
  and context; ``message.Unpack``; the state was found on first use, before timing).

Two stateless functions measure what the dual objects cost 3.x code: the same
3.x body (``as_type``, ``send``, ``send_egress``) annotated ``Context``/``Message``
(the plain 3.x objects) and unannotated (the dual ones).

All are driven through ``RequestReplyHandler.handle_sync`` with batches of
``--batch`` invocations, alternately in the same process; the best of each is
kept, and the ratios are against the 3.x subject of the same run. Times are this
process's CPU time unless ``--clock wall``: on a shared machine other work then
counts less (it still costs caches). Before timing,
the script checks that the greeters send the same messages and egress records. It
is not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import typing

from google.protobuf.any_pb2 import Any
from google.protobuf.wrappers_pb2 import Int32Value, StringValue

from statefun import (
    Context,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    ValueSpec,
    kafka_egress_message,
    make_protobuf_type,
    message_builder,
)
from statefun import compat
from statefun.request_reply_pb2 import FromFunction, ToFunction, TypedValue

SEEN_TYPE = make_protobuf_type(Int32Value)
GREETING_TYPE = make_protobuf_type(StringValue)
ANY_TYPENAME = "type.googleapis.com/google.protobuf.Any"


def handler_3x() -> RequestReplyHandler:
    functions = StatefulFunctions()

    @functions.bind("bench/greeter", specs=[ValueSpec(name="seen", type=SEEN_TYPE)])
    def greet(context: typing.Any, message: typing.Any) -> None:
        name = message.as_type(GREETING_TYPE).value
        seen = context.storage.seen or Int32Value()
        seen.value += 1
        context.storage.seen = seen
        greeting = StringValue(value=f"Hello {name} #{seen.value}")
        context.send(
            message_builder(
                target_typename="bench/inbox",
                target_id=name,
                value=greeting,
                value_type=GREETING_TYPE,
            )
        )
        context.send_egress(
            kafka_egress_message(
                typename="bench/greets",
                topic="greetings",
                key=name,
                value=greeting.SerializeToString(),
            )
        )

    return RequestReplyHandler(functions)


def greet_2x(context: typing.Any, name: str) -> None:
    """The 2.x greeter's body: ``context.state``, ``pack_and_send``, ``kafka_egress_record``."""
    state = context.state("seen").unpack(Int32Value)
    if not state:
        state = Int32Value()
    state.value += 1
    context.state("seen").pack(state)
    greeting = StringValue(value=f"Hello {name} #{state.value}")
    context.pack_and_send("bench/inbox", name, greeting)
    record = compat.kafka_egress_record(topic="greetings", key=name, value=greeting)
    context.pack_and_send_egress("bench/greets", record)


def handler_2x() -> RequestReplyHandler:
    functions = compat.StatefulFunctions()

    @functions.bind("bench/greeter", states=["seen"])
    def greet(context: typing.Any, request: StringValue) -> None:
        greet_2x(context, request.value)

    return RequestReplyHandler(functions)


def handler_2x_unannotated() -> RequestReplyHandler:
    functions = StatefulFunctions()

    @functions.bind("bench/greeter")
    def greet(context, message):  # type: ignore[no-untyped-def]
        request = StringValue()
        message.Unpack(request)
        greet_2x(context, request.value)

    return RequestReplyHandler(functions)


def stateless_body(context: typing.Any, message: typing.Any) -> None:
    name = message.as_type(GREETING_TYPE).value
    greeting = StringValue(value=f"Hello {name}")
    context.send(
        message_builder(
            target_typename="bench/inbox", target_id=name, value=greeting, value_type=GREETING_TYPE
        )
    )
    context.send_egress(
        kafka_egress_message(
            typename="bench/greets", topic="greetings", key=name, value=greeting.SerializeToString()
        )
    )


def handler_stateless(annotated: bool) -> RequestReplyHandler:
    def current(context: Context, message: Message) -> None:
        stateless_body(context, message)

    def unannotated(context, message):  # type: ignore[no-untyped-def]
        stateless_body(context, message)

    functions = StatefulFunctions()
    functions.register("bench/greeter", current if annotated else unannotated)
    assert (functions.for_typename("bench/greeter").dialect is None) == annotated
    return RequestReplyHandler(functions)


def build_request(batch_size: int, state: TypedValue) -> bytes:
    request = ToFunction()
    batch = request.invocation
    batch.target.namespace, batch.target.type, batch.target.id = "bench", "greeter", "user-1"
    batch.state.add(state_name="seen", state_value=state)
    for position in range(batch_size):
        invocation = batch.invocations.add(
            argument=TypedValue(
                typename=GREETING_TYPE.typename,
                has_value=True,
                value=StringValue(value=f"user-{position % 7}").SerializeToString(),
            )
        )
        invocation.caller.namespace, invocation.caller.type = "bench", "caller"
        invocation.caller.id = str(position)
    return request.SerializeToString()


def requests(batch_size: int) -> tuple[bytes, bytes]:
    """The same batch for each function: the seen count 7, stored the 3.x way and the 2.x way."""
    seen = Int32Value(value=7)
    state_3x = TypedValue(
        typename=SEEN_TYPE.typename, has_value=True, value=seen.SerializeToString()
    )
    packed = Any()
    packed.Pack(seen)
    state_2x = TypedValue(typename=ANY_TYPENAME, has_value=True, value=packed.SerializeToString())
    return build_request(batch_size, state_3x), build_request(batch_size, state_2x)


def check_same_effects(response_3x: bytes, response_2x: bytes, batch_size: int) -> None:
    """Both send the same messages and records, and both store the seen count 7 + batch_size."""
    result_3x = FromFunction.FromString(response_3x).invocation_result
    result_2x = FromFunction.FromString(response_2x).invocation_result
    assert list(result_3x.outgoing_messages) == list(result_2x.outgoing_messages)
    assert list(result_3x.outgoing_egresses) == list(result_2x.outgoing_egresses)
    assert len(result_3x.outgoing_messages) == batch_size
    (mutation_3x,) = result_3x.state_mutations
    (mutation_2x,) = result_2x.state_mutations
    stored = Any.FromString(mutation_2x.state_value.value)
    unpacked = Int32Value()
    assert stored.Unpack(unpacked)
    assert Int32Value.FromString(mutation_3x.state_value.value) == unpacked
    assert unpacked.value == 7 + batch_size


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = time.process_time


def load_after() -> str:
    try:
        return " ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


def time_calls(call: typing.Callable[[int], None], seconds: float, repeats: int) -> float:
    """Best seconds-per-call over ``repeats`` rounds of about ``seconds`` each (on ``clock``)."""
    rounds = 1
    while True:
        started = clock()
        call(rounds)
        elapsed = clock() - started
        if elapsed >= seconds / 4:
            break
        rounds *= 4
    rounds = max(1, int(rounds * seconds / elapsed))
    best = float("inf")
    for _ in range(repeats):
        started = clock()
        call(rounds)
        best = min(best, (clock() - started) / rounds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="target length of one timing")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds; the best is kept")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of 3.x/2.x")
    parser.add_argument("--batch", type=int, default=10, help="invocations per request")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: this process's CPU time, so that other work on a shared machine counts less "
        "(default); wall: elapsed time",
    )
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]

    request_3x, request_2x = requests(args.batch)
    subjects = {
        "3.x": (handler_3x(), request_3x),
        "2.x, hint + states=": (handler_2x(), request_2x),
        "2.x, unannotated": (handler_2x_unannotated(), request_2x),
        "3.x stateless, annotated": (handler_stateless(True), request_3x),
        "3.x stateless, unannotated": (handler_stateless(False), request_3x),
    }
    responses = {
        label: handler.handle_sync(request) for label, (handler, request) in subjects.items()
    }
    for label in ("2.x, hint + states=", "2.x, unannotated"):
        check_same_effects(responses["3.x"], responses[label], args.batch)
    assert responses["3.x stateless, annotated"] == responses["3.x stateless, unannotated"]

    load_before = load_after()
    best: dict[str, float] = {}
    for round in range(args.rounds):
        print(f"round {round + 1}/{args.rounds} ...", file=sys.stderr)
        for label, (handler, request) in subjects.items():

            def run(
                rounds: int, handle: typing.Any = handler.handle_sync, request: bytes = request
            ) -> None:
                for _ in range(rounds):
                    handle(request)

            rate = args.batch / time_calls(run, args.seconds, args.repeats)
            best[label] = max(best.get(label, 0.0), rate)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.clock} time; load average before/after: {load_before} / {load_after()}"
    )
    print(
        f"batches of {args.batch} invocations through handle_sync; the greeters send the same "
        "messages and records, the stateless functions the same bytes: yes"
    )
    width = max(len(label) for label in subjects)
    for label in subjects:
        print(f"{label:<{width}}  {best[label]:>10,.0f} invocations/s")
    print(f"3.x / (2.x, hint + states=): {best['3.x'] / best['2.x, hint + states=']:.2f}x")
    print(f"3.x / (2.x, unannotated):    {best['3.x'] / best['2.x, unannotated']:.2f}x")
    print(
        "3.x stateless, annotated / unannotated (what the dual objects cost 3.x code): "
        f"{best['3.x stateless, annotated'] / best['3.x stateless, unannotated']:.3f}x"
    )


if __name__ == "__main__":
    main()
