"""Wire-level tests: requests in, exact response bytes out (the reference's §2 examples included)."""

from __future__ import annotations

import asyncio
import struct
import typing
from datetime import timedelta

import pytest
from google.protobuf.message import DecodeError

from statefun import (
    Context,
    FloatType,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    kafka_egress_message,
    make_json_type,
    message_builder,
)
from statefun.errors import (
    FunctionNotFoundError,
    InvalidRequestError,
    MalformedRequestError,
    MessageTypeMismatchError,
    StateTypeMismatchError,
)
from statefun.request_reply_pb2 import Address, FromFunction, ToFunction, TypedValue
from statefun.utils import to_typed_value

from statefun_test_wire import request, response, typed

INT = "io.statefun.types/int"
STRING = "io.statefun.types/string"


def hello(name: str = "alice") -> typing.Any:
    return to_typed_value(StringType, name)


def handler_for(
    fun: typing.Callable[..., typing.Any], specs: list[ValueSpec[typing.Any]] | None = None
) -> RequestReplyHandler:
    functions = StatefulFunctions()
    functions.register("ex/fn", fun, specs)
    return RequestReplyHandler(functions)


def test_missing_state_reference_bytes() -> None:
    handler = handler_for(
        lambda c, m: None,
        [
            ValueSpec("seen", IntType),
            ValueSpec("name", StringType, expire_after_call=timedelta(seconds=5)),
        ],
    )
    expected = (
        "aa064a"
        "0a1f"
        + "0a04"
        + b"seen".hex()
        + "1200"
        + "1a15"
        + INT.encode().hex()
        + "0a27"
        + "0a04"
        + b"name".hex()
        + "1205"
        + "0802"
        + "108827"
        + "1a18"
        + STRING.encode().hex()
    )
    assert handler.handle_sync(request("ex/fn", "a", [hello()])).hex() == expected


def test_missing_state_lists_only_the_missing_specs_with_write_expiry() -> None:
    handler = handler_for(
        lambda c, m: None,
        [
            ValueSpec("seen", IntType),
            ValueSpec("name", StringType, expire_after_write=timedelta(minutes=1)),
        ],
    )
    data = handler.handle_sync(request("ex/fn", "a", [hello()], state={"seen": None}))
    missing = response(data).incomplete_invocation_context.missing_values
    assert [
        (
            m.state_name,
            m.type_typename,
            m.expiration_spec.mode,
            m.expiration_spec.expire_after_millis,
        )
        for m in missing
    ] == [("name", STRING, FromFunction.ExpirationSpec.AFTER_WRITE, 60000)]


def test_modify_reference_bytes() -> None:
    def count(context: Context, message: Message) -> None:
        context.storage.seen = (context.storage.seen or 0) + 1

    handler = handler_for(count, [ValueSpec("seen", IntType)])
    data = handler.handle_sync(
        request("ex/fn", "a", [hello()], state={"seen": to_typed_value(IntType, 1)})
    )
    assert (
        data.hex()
        == "a2062c0a2a080112047365656e1a200a15696f2e737461746566756e2e74797065732f696e7410011a050d02000000"
    )


def test_no_effect_gives_an_empty_body() -> None:
    handler = handler_for(lambda c, m: c.storage.seen, [ValueSpec("seen", IntType)])
    assert (
        handler.handle_sync(request("ex/fn", "a", [hello(), hello()], state={"seen": None})) == b""
    )
    assert handler.handle_sync(request("ex/fn", "a", [], state={"seen": None})) == b""


def test_delete_carries_only_the_state_name_even_if_already_absent() -> None:
    def forget(context: Context, message: Message) -> None:
        del context.storage.seen

    handler = handler_for(forget, [ValueSpec("seen", IntType)])
    data = handler.handle_sync(request("ex/fn", "a", [hello()], state={"seen": None}))
    assert data.hex() == "a20608" + "0a06" + "1204" + b"seen".hex()


def test_mutations_follow_declaration_order_not_write_order() -> None:
    def write(context: Context, message: Message) -> None:
        context.storage.b = "x"
        context.storage.a = 0

    handler = handler_for(
        write, [ValueSpec("a", IntType), ValueSpec("b", StringType), ValueSpec("c", IntType)]
    )
    data = handler.handle_sync(
        request("ex/fn", "a", [hello()], state={"a": None, "b": None, "c": None})
    )
    mutations = response(data).invocation_result.state_mutations
    assert [(m.state_name, m.mutation_type) for m in mutations] == [("a", 1), ("b", 1)]
    # 0 encodes to zero bytes but has_value=true still tells the runtime it is present.
    assert mutations[0].state_value.has_value and mutations[0].state_value.value == b""


def test_delayed_sends_and_cancellations_share_one_list_in_call_order() -> None:
    def schedule(context: Context, message: Message) -> None:
        context.send_after(timedelta(seconds=2), message_builder("ex/a", "1", int_value=1), "t1")
        context.cancel_delayed_message("t0")
        context.send_after(timedelta(milliseconds=5), message_builder("ex/b", "2", int_value=2))

    handler = handler_for(schedule)
    data = handler.handle_sync(request("ex/fn", "a", [hello()]))
    first = (
        "08d00f"  # delay_in_ms 2000
        + "120a"
        + "0a02"
        + b"ex".hex()
        + "1201"
        + b"a".hex()
        + "1a01"
        + b"1".hex()
        + "1a20"
        + "0a15"
        + INT.encode().hex()
        + "1001"
        + "1a05"
        + "0d01000000"
        + "5a02"
        + b"t1".hex()
    )
    cancel = "5001" + "5a02" + b"t0".hex()
    second = (
        "0805"
        + "120a"
        + "0a02"
        + b"ex".hex()
        + "1201"
        + b"b".hex()
        + "1a01"
        + b"2".hex()
        + "1a20"
        + "0a15"
        + INT.encode().hex()
        + "1001"
        + "1a05"
        + "0d02000000"
    )
    body = "".join(
        "1a" + bytes([len(bytes.fromhex(part))]).hex() + part for part in (first, cancel, second)
    )
    assert data.hex() == "a206" + bytes([len(bytes.fromhex(body))]).hex() + body


def test_greeter_response_matches_field_by_field_construction() -> None:
    def greet(context: Context, message: Message) -> None:
        seen = context.storage.seen or 0
        context.storage.seen = seen + 1
        name = message.as_string()
        context.send(message_builder("ex/inbox", name or "", str_value=f"hi {name} #{seen}"))
        context.send_egress(kafka_egress_message("ex/out", "greetings", f"hi {name}", key=name))

    handler = handler_for(greet, [ValueSpec("seen", IntType)])
    data = handler.handle_sync(
        request(
            "ex/fn", "bob", [hello("bob"), hello("eve")], state={"seen": to_typed_value(IntType, 7)}
        )
    )

    # Built the way upstream's collect_* functions build it.
    expected = FromFunction()
    result = expected.invocation_result
    mutation = result.state_mutations.add()
    mutation.mutation_type = FromFunction.PersistedValueMutation.MODIFY
    mutation.state_name = "seen"
    mutation.state_value.CopyFrom(to_typed_value(IntType, 9))
    for seen, name in ((7, "bob"), (8, "eve")):
        outgoing = result.outgoing_messages.add()
        outgoing.target.namespace = "ex"
        outgoing.target.type = "inbox"
        outgoing.target.id = name
        outgoing.argument.CopyFrom(to_typed_value(StringType, f"hi {name} #{seen}"))
    for name in ("bob", "eve"):
        egress = result.outgoing_egresses.add()
        egress.egress_namespace = "ex"
        egress.egress_type = "out"
        egress.argument.CopyFrom(
            kafka_egress_message("ex/out", "greetings", f"hi {name}", key=name).typed_value
        )
    assert data == expected.SerializeToString()


def test_context_is_shared_across_the_batch_and_caller_is_per_invocation() -> None:
    seen: list[tuple[int, typing.Any]] = []

    def record(context: Context, message: Message) -> None:
        caller = context.caller
        seen.append((id(context), None if caller is None else (caller.typename, caller.id)))
        assert context.address.typename == "ex/fn" and context.address.id == "a"
        assert message.target_typename == "ex/fn" and message.target_id == "a"

    handler = handler_for(record)
    callers = [None, Address(namespace="ex", type="other", id="7"), Address()]
    handler.handle_sync(request("ex/fn", "a", [hello()] * 3, callers=callers))
    assert [c for _, c in seen] == [None, ("ex/other", "7"), None]
    assert len({ctx for ctx, _ in seen}) == 1


def test_async_functions_via_both_entry_points() -> None:
    async def count(context: Context, message: Message) -> None:
        await asyncio.sleep(0)
        context.storage.seen = (context.storage.seen or 0) + 1

    handler = handler_for(count, [ValueSpec("seen", IntType)])
    body = request("ex/fn", "a", [hello()] * 3, state={"seen": None})
    via_sync = handler.handle_sync(body)
    via_async = asyncio.run(handler.handle_async(body))
    assert via_sync == via_async
    assert (
        response(via_sync).invocation_result.state_mutations[0].state_value.value
        == b"\x0d\x03\x00\x00\x00"
    )


def test_handle_sync_works_inside_a_running_event_loop() -> None:
    async def send(context: Context, message: Message) -> None:
        context.send(message_builder("ex/b", "1", int_value=1))

    functions = StatefulFunctions()
    functions.register("ex/async", send)
    functions.register("ex/sync", lambda c, m: c.send(message_builder("ex/b", "1", int_value=1)))
    handler = RequestReplyHandler(functions)

    async def main() -> tuple[bytes, bytes]:
        return (
            handler.handle_sync(request("ex/async", "a", [hello()])),
            handler.handle_sync(request("ex/sync", "a", [hello()])),
        )

    from_async, from_sync = asyncio.run(main())
    assert from_async == from_sync != b""


def test_sync_handle_async_entry_point_calls_sync_functions() -> None:
    handler = handler_for(lambda c, m: c.send(message_builder("ex/b", "1", int_value=1)))
    data = asyncio.run(handler.handle_async(request("ex/fn", "a", [hello()])))
    assert len(response(data).invocation_result.outgoing_messages) == 1


def test_user_exception_propagates_and_nothing_is_returned() -> None:
    class Boom(Exception):
        pass

    calls = []

    def fail_second(context: Context, message: Message) -> None:
        calls.append(1)
        context.send(message_builder("ex/b", "1", int_value=1))
        if len(calls) == 2:
            raise Boom("second invocation")

    handler = handler_for(fail_second)
    with pytest.raises(Boom):
        handler.handle_sync(request("ex/fn", "a", [hello()] * 3))
    assert len(calls) == 2


@pytest.mark.parametrize(
    "body, fragment, upstream",
    [
        (b"", "empty request body", AttributeError),
        (b"\xff\xff\xff", "not a ToFunction message", DecodeError),
        (request("ex/fn", "a", [hello()])[:-3], "not a ToFunction message", DecodeError),
        (ToFunction().SerializeToString() + b"\x08\x01", "no invocation batch", AttributeError),
        (b"\xa2\x06\x00", "no target address", AttributeError),
    ],
)
def test_malformed_bodies(body: bytes, fragment: str, upstream: type[Exception]) -> None:
    # Each is also the exception upstream raised for the same body.
    handler = handler_for(lambda c, m: None)
    with pytest.raises(MalformedRequestError, match=fragment) as raised:
        handler.handle_sync(body)
    assert isinstance(raised.value, upstream)
    with pytest.raises(upstream, match=fragment):
        asyncio.run(handler.handle_async(body))


def test_target_without_type_or_id_is_malformed_as_upstreams_key_and_value_errors() -> None:
    handler = handler_for(lambda c, m: None)
    no_type = ToFunction()
    no_type.invocation.target.namespace = "ex"
    no_type.invocation.target.id = "a"
    with pytest.raises(MalformedRequestError, match="no target function type") as key_error:
        handler.handle_sync(no_type.SerializeToString())
    assert isinstance(key_error.value, KeyError) and key_error.value.args == ("ex/",)
    with pytest.raises(MalformedRequestError, match="no target id") as value_error:
        handler.handle_sync(request("ex/fn", "", [hello()]))
    assert isinstance(value_error.value, ValueError)
    # Upstream only failed when it made the first Message: without invocations, or with state
    # missing, the same request is answered.
    assert handler.handle_sync(request("ex/fn", "", [])) == b""
    counting = handler_for(lambda c, m: None, [ValueSpec("seen", IntType)])
    response = FromFunction.FromString(counting.handle_sync(request("ex/fn", "", [hello()])))
    assert response.HasField("incomplete_invocation_context")


def test_unknown_function() -> None:
    handler = handler_for(lambda c, m: None)
    with pytest.raises(FunctionNotFoundError, match="'ex/other'"):
        handler.handle_sync(request("ex/other", "a", [hello()]))


def test_state_of_another_type_is_an_invalid_request() -> None:
    handler = handler_for(lambda c, m: c.storage.seen, [ValueSpec("seen", IntType)])
    body = request("ex/fn", "a", [hello()], state={"seen": to_typed_value(StringType, "x")})
    with pytest.raises(StateTypeMismatchError) as raised:
        handler.handle_sync(body)
    assert isinstance(raised.value, InvalidRequestError)


def test_non_bytes_requests() -> None:
    handler = handler_for(lambda c, m: c.send(message_builder("ex/b", "1", int_value=1)))
    body = request("ex/fn", "a", [hello()])
    assert handler.handle_sync(bytearray(body)) == handler.handle_sync(memoryview(body)) != b""  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got str"):
        handler.handle_sync("text")  # type: ignore[arg-type]


def test_handler_requires_functions() -> None:
    with pytest.raises(ValueError):
        RequestReplyHandler(None)  # type: ignore[arg-type]
    RequestReplyHandler(StatefulFunctions())


def test_argument_without_value_reaches_the_function() -> None:
    received = []
    handler = handler_for(lambda c, m: received.append((m.raw_value(), m.as_int())))
    handler.handle_sync(request("ex/fn", "a", [typed(INT, None)]))
    assert received == [(None, None)]


def test_states_sent_in_another_order_still_mutate_in_declaration_order() -> None:
    def write(context: Context, message: Message) -> None:
        context.storage.b = "x"
        context.storage.a = context.storage.a + 1

    handler = handler_for(write, [ValueSpec("a", IntType), ValueSpec("b", StringType)])
    in_order = request("ex/fn", "a", [hello()], state={"a": to_typed_value(IntType, 1), "b": None})
    reversed_order = request(
        "ex/fn", "a", [hello()], state={"b": None, "a": to_typed_value(IntType, 1)}
    )
    with_extra = request(
        "ex/fn", "a", [hello()], state={"zz": None, "b": None, "a": to_typed_value(IntType, 1)}
    )
    expected = handler.handle_sync(in_order)
    assert [m.state_name for m in response(expected).invocation_result.state_mutations] == [
        "a",
        "b",
    ]
    assert handler.handle_sync(reversed_order) == expected
    assert handler.handle_sync(with_extra) == expected


def test_handle_sync_from_many_threads_runs_async_functions_on_per_thread_loops() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    loops: set[int] = set()
    lock = threading.Lock()

    async def count(context: Context, message: Message) -> None:
        with lock:
            loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0.001)
        context.storage.seen = (context.storage.seen or 0) + 1

    handler = handler_for(count, [ValueSpec("seen", IntType)])
    body = request("ex/fn", "a", [hello()] * 2, state={"seen": to_typed_value(IntType, 5)})
    expected = handler.handle_sync(body)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: handler.handle_sync(body), range(16)))
    assert results == [expected] * 16
    assert 2 <= len(loops) <= 5


def test_mutated_requests_give_a_response_or_a_documented_error() -> None:
    """Bit flips, cuts and insertions in a valid request never surface as a stray exception."""
    import random

    def count(context: Context, message: Message) -> None:
        context.storage.seen = (context.storage.seen or 0) + 1
        context.send(message_builder("ex/b", "1", int_value=1))

    handler = handler_for(count, [ValueSpec("seen", IntType)])
    valid = request("ex/fn", "a", [hello()] * 2, state={"seen": to_typed_value(IntType, 3)})
    generator = random.Random(7)
    outcomes: dict[str, int] = {}
    for _ in range(400):
        body = bytearray(valid)
        for _ in range(generator.randint(1, 3)):
            position = generator.randrange(len(body))
            choice = generator.random()
            if choice < 0.5:
                body[position] ^= 1 << generator.randrange(8)
            elif choice < 0.75:
                del body[position:]
                if not body:
                    break
            else:
                body[position:position] = generator.randbytes(generator.randint(1, 4))
        try:
            handler.handle_sync(bytes(body))
            outcome = "response"
        except (MalformedRequestError, FunctionNotFoundError, InvalidRequestError) as error:
            outcome = type(error).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("MalformedRequestError", 0) > 100
    assert outcomes.get("response", 0) > 10


def test_requests_that_are_not_a_single_batch_field_follow_protobuf_merging() -> None:
    received: list[str | None] = []
    handler = handler_for(lambda c, m: received.append(m.as_string()))
    first = request("ex/fn", "a", [hello("x")])
    second = request("ex/fn", "a", [hello("y")])
    # Two occurrences of the (singular) invocation field merge; their invocation lists concatenate.
    handler.handle_sync(first + second)
    assert received == ["x", "y"]
    # An unknown top-level field next to the batch is skipped.
    received.clear()
    handler.handle_sync(b"\x08\x01" + first)
    assert received == ["x"]


@pytest.mark.parametrize("size", [0, 100, 200, 20_000, 3_000_000])
def test_batches_of_every_length_prefix_size_are_read(size: int) -> None:
    received: list[int] = []
    handler = handler_for(lambda c, m: received.append(len(m.as_string() or "")))
    handler.handle_sync(request("ex/fn", "a", [hello("x" * size)]))
    assert received == [size]


def test_what_a_function_sends_does_not_depend_on_the_batching() -> None:
    # Upstream stored each value at its assignment, so a read always saw the round trip; the
    # same invocations give the same messages whether the runtime sends them together or not.
    ratio_type, doc_type = FloatType, make_json_type("ex/doc")

    def accumulate(context: Context, message: Message) -> None:
        ratio = context.storage.ratio or 0.0
        context.storage.ratio = ratio + 0.1
        doc = context.storage.doc or {"seen": []}
        doc["seen"].append((message.as_string(), ratio))
        context.storage.doc = doc
        doc["seen"].append("changed after the assignment: not stored")
        context.send(message_builder("ex/out", "1", value=context.storage.doc, value_type=doc_type))

    specs = [ValueSpec("ratio", ratio_type), ValueSpec("doc", doc_type)]
    handler = handler_for(accumulate, specs)
    names = [f"n{position}" for position in range(6)]

    def run(batches: list[list[str]]) -> list[bytes]:
        state: dict[str, typing.Any] = {"ratio": None, "doc": None}
        sent = []
        for batch in batches:
            result = response(handler.handle_sync(request("ex/fn", "a", map(hello, batch), state)))
            sent += [m.argument.value for m in result.invocation_result.outgoing_messages]
            for mutation in result.invocation_result.state_mutations:
                state[mutation.state_name] = mutation.state_value
        return sent

    together = run([names])
    assert together == run([[name] for name in names]) == run([names[:2], names[2:5], names[5:]])
    seen = doc_type.serializer().deserialize(together[-1])["seen"]
    # Tuples come back as lists, ratios as float32 values, the late change is not there.
    assert [name for name, _ in seen] == names
    assert seen[1][1] == 0.10000000149011612
    assert all(ratio == struct.unpack("<f", struct.pack("<f", ratio))[0] for _, ratio in seen)


def test_strict_message_types_are_opt_in_on_the_registry_or_the_handler() -> None:
    doc = make_json_type("ex/doc")
    labelled = TypedValue(typename=STRING, has_value=True, value=b'{"name": "alice"}')
    seen: list[object] = []

    def read(context: Context, message: Message) -> None:
        try:
            seen.append(message.as_type(doc))
        except MessageTypeMismatchError as error:
            seen.append(type(error))

    def run(functions: StatefulFunctions, **options: typing.Any) -> object:
        functions.register("ex/fn", read)
        handler = RequestReplyHandler(functions, **options)
        handler.handle_sync(request("ex/fn", "a", [labelled]))
        asyncio.run(handler.handle_async(request("ex/fn", "a", [labelled])))
        assert seen[0] == seen[1]
        result = seen[0]
        seen.clear()
        return result

    # Upstream's default: the JSON the playground's ingress labels as a string is read.
    assert run(StatefulFunctions()) == {"name": "alice"}
    assert not RequestReplyHandler(StatefulFunctions()).strict_message_types
    assert run(StatefulFunctions(strict_message_types=True)) is MessageTypeMismatchError
    assert run(StatefulFunctions(), strict_message_types=True) is MessageTypeMismatchError
    assert run(StatefulFunctions(strict_message_types=True), strict_message_types=False) == {
        "name": "alice"
    }
