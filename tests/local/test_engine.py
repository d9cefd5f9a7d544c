"""Request-reply semantics of the dispatcher against fake functions on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Awaitable, Callable

import pytest
from aiohttp import web

from local_support import (
    INT_TYPE,
    FakeFunctions,
    greeter_handler,
    int_value,
    kafka_egress,
    missing_state,
    read_int,
    reply,
    state_of,
    wait_until,
    write_module,
)
from statefun import request_reply_pb2 as pb
from statefun.local.config import load_module
from statefun.local.engine import Engine
from statefun.local.errors import FunctionCallError, ProtocolError
from statefun.local.ingress import record_messages
from statefun.local.store import Store


class ListSink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)

    def flush(self) -> None:
        pass

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines]


Scenario = Callable[[Engine, FakeFunctions, ListSink], Awaitable[None]]


def run(
    tmp_path,
    handlers,
    scenario: Scenario,
    db: str = ":memory:",
    sink: ListSink | None = None,
    **module_options: object,
) -> None:
    async def main() -> None:
        fake = await FakeFunctions(handlers=handlers).start()
        config = load_module(write_module(str(tmp_path), fake.port, **module_options))  # type: ignore[arg-type]
        store = Store(db)
        sink_ = sink or ListSink()
        engine = Engine(config, store, {"example/greets": sink_}, log=lambda text: None)
        await engine.start()
        try:
            await asyncio.wait_for(scenario(engine, fake, sink_), timeout=20)
        finally:
            await engine.close()
            store.close()
            await fake.stop()

    asyncio.run(main())


async def send(engine: Engine, key: str, value: str = "hi") -> None:
    record = {"ingress": "example/names", "topic": "names", "key": key, "value": value}
    await engine.accept(record_messages(record, engine.config))


async def idle(engine: Engine, timeout: float = 5.0) -> None:
    await wait_until(lambda: engine.is_idle() or engine.failure is not None, timeout)


def test_state_is_registered_on_demand_and_carried_between_batches(tmp_path) -> None:
    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        for _ in range(3):
            await send(engine, "alice", "Alice")
            await idle(engine)
        await send(engine, "bob", "Bob")
        await idle(engine)
        assert engine.failure is None
        seen = [(r["key"], json.loads(str(r["value"]))["seen"]) for r in sink.records()]
        assert seen == [("alice", 1), ("alice", 2), ("alice", 3), ("bob", 1)]
        first, resent = fake.batches("greeter")[:2]
        # The first request carries no state; after registration the same batch is resent with
        # the state attached as a PersistedValue without a value.
        assert list(first.state) == []
        assert [v.state_name for v in resent.state] == ["seen"] and not resent.state[0].HasField(
            "state_value"
        )
        assert list(resent.invocations) == list(first.invocations)
        assert not resent.invocations[0].HasField("caller")
        last = fake.batches("greeter")[-2]
        assert (
            last.state[0].state_value.typename == INT_TYPE
            and read_int(last.state[0].state_value) == 2
        )

    run(tmp_path, {"greeter": greeter_handler()}, scenario)


def test_backlog_is_batched_while_a_request_is_in_flight(tmp_path) -> None:
    release = asyncio.Event()

    async def slow_greeter(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        await release.wait()
        return await greeter_handler()(request)

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice", "first")
        await wait_until(lambda: len(fake.requests) == 1)
        for index in range(7):
            await send(engine, "alice", f"m{index}")
        await asyncio.sleep(0.1)
        assert len(fake.requests) == 1, "a second request went out while one was in flight"
        release.set()
        await idle(engine)
        sizes = [len(batch.invocations) for batch in fake.batches("greeter")]
        # first (1), its resend after registration (1), then the backlog in batches of at most 3.
        assert sizes == [1, 1, 3, 3, 1]
        assert [json.loads(str(r["value"]))["seen"] for r in sink.records()] == list(range(1, 9))

    run(tmp_path, {"greeter": slow_greeter}, scenario, max_batch=3)


def test_server_errors_are_retried_within_the_call_timeout(tmp_path) -> None:
    failures = {"left": 3}

    async def flaky(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        if failures["left"]:
            failures["left"] -= 1
            return web.Response(status=503, text="warming up")
        return await greeter_handler()(request)

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice")
        await idle(engine)
        assert engine.failure is None
        assert len(sink.lines) == 1 and failures["left"] == 0

    run(tmp_path, {"greeter": flaky}, scenario)


def test_a_4xx_fails_fast_with_okhttp_and_keeps_the_message(tmp_path) -> None:
    async def not_found(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        return web.Response(status=404, text="no such function")

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        started = time.monotonic()
        await send(engine, "alice")
        await asyncio.wait_for(engine.failed.wait(), 5)
        assert time.monotonic() - started < 1.0  # the call timeout is 10 s: no retries happened
        assert isinstance(engine.failure, FunctionCallError)
        assert "HTTP 404" in str(engine.failure) and "no such function" in str(engine.failure)
        assert len(fake.requests) == 1
        assert engine.store.inbox_size() == 1

    run(tmp_path, {"greeter": not_found}, scenario, call="10s", transport="okhttp")


def test_connection_refused_is_retried_until_the_call_timeout(tmp_path) -> None:
    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await fake.stop()  # nothing listens on the endpoint's port any more
        started = time.monotonic()
        await send(engine, "alice")
        await asyncio.wait_for(engine.failed.wait(), 5)
        elapsed = time.monotonic() - started
        assert 0.9 < elapsed < 3.0, elapsed
        assert "within the call timeout of 1 s" in str(engine.failure)
        assert engine.store.inbox_size() == 1

    run(tmp_path, {"greeter": greeter_handler()}, scenario, call="1s")


def test_a_type_clash_on_registration_is_an_error(tmp_path) -> None:
    calls = {"n": 0}

    async def changing(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        calls["n"] += 1
        state = state_of(request)
        if "seen" not in state:
            return missing_state(("seen", INT_TYPE, 0, 0))
        return missing_state(("seen", "io.statefun.types/string", 0, 0))

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice")
        await asyncio.wait_for(engine.failed.wait(), 5)
        assert isinstance(engine.failure, ProtocolError)
        assert "registered with type io.statefun.types/int" in str(engine.failure)

    run(tmp_path, {"greeter": changing}, scenario)


def test_states_discovered_one_at_a_time_converge_however_many_there_are(tmp_path) -> None:
    # 2.x-style functions ask for each undeclared state on its first use: one round per state.
    names = [f"s{position}" for position in range(12)]

    async def discovering(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        state = state_of(request)
        for name in names:
            if name not in state:
                return missing_state((name, INT_TYPE, 0, 0))
        return await greeter_handler()(request)

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice")
        await idle(engine)
        assert engine.failure is None and len(sink.lines) == 1
        # One round per name, and one for the greeter's own 'seen'.
        assert engine.registrations_requested == len(names) + 1

    run(tmp_path, {"greeter": discovering}, scenario)


def test_asking_again_for_a_state_the_request_carried_is_an_error(tmp_path) -> None:
    async def forgetful(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        return missing_state(("seen", INT_TYPE, 0, 0))

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice")
        await asyncio.wait_for(engine.failed.wait(), 5)
        assert isinstance(engine.failure, ProtocolError)
        assert "(seen) although the request carried every state" in str(engine.failure)
        assert len(fake.requests) == 2 and engine.store.inbox_size() == 1

    run(tmp_path, {"greeter": forgetful}, scenario)


def test_messages_delays_and_cancellation(tmp_path) -> None:
    async def router(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        response = pb.FromFunction()
        result = response.invocation_result
        target = pb.Address(namespace="example", type="greeter", id="alice")
        for invocation in request.invocations:
            text = invocation.argument.value.decode()
            if text == "now":
                result.outgoing_messages.add(target=target, argument=invocation.argument)
            elif text == "later":
                result.delayed_invocations.add(
                    delay_in_ms=600, target=target, argument=invocation.argument
                )
            elif text == "cancelled":
                result.delayed_invocations.add(
                    delay_in_ms=600,
                    target=target,
                    argument=invocation.argument,
                    cancellation_token="tok",
                )
            elif text == "cancel":
                result.delayed_invocations.add(
                    is_cancellation_request=True, cancellation_token="tok"
                )
        return reply(response)

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        for text in ("now", "later", "cancelled"):
            await send(engine, "r1", text)
        await wait_until(lambda: len(sink.lines) == 1)
        await send(engine, "r1", "cancel")
        started = time.monotonic()
        await idle(engine)
        assert time.monotonic() - started > 0.4  # waited for the timer
        assert [json.loads(str(r["value"]))["name"] for r in sink.records()] == ["now", "later"]
        greeter_calls = fake.batches("greeter")
        assert greeter_calls[0].invocations[0].caller == pb.Address(
            namespace="example", type="router", id="r1"
        )

    run(
        tmp_path,
        {"greeter": greeter_handler(), "router": router},
        scenario,
        targets="[example/router]",
    )


@pytest.mark.parametrize("mode", [1, 2])  # AFTER_WRITE, AFTER_INVOKE
def test_expired_state_is_not_sent(tmp_path, mode: int) -> None:
    async def handler(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        state = state_of(request)
        if "seen" not in state:
            return missing_state(("seen", INT_TYPE, mode, 1000))
        return await greeter_handler()(request)

    async def no_write(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        return reply(pb.FromFunction())

    handlers = {"greeter": handler}

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice")
        await idle(engine)
        # Invocations that do not write: they keep after-invoke state alive, not after-write state.
        handlers["greeter"] = no_write
        for _ in range(4):
            await asyncio.sleep(0.3)
            await send(engine, "alice")
            await idle(engine)
        handlers["greeter"] = handler
        await send(engine, "alice")
        await idle(engine)
        last_seen = json.loads(str(sink.records()[-1]["value"]))["seen"]
        assert last_seen == (1 if mode == 1 else 2)

    run(tmp_path, handlers, scenario)


def test_state_and_timers_survive_a_restart(tmp_path) -> None:
    db = str(tmp_path / "state.db")

    async def router(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        response = pb.FromFunction()
        target = pb.Address(namespace="example", type="greeter", id="alice")
        for invocation in request.invocations:
            if invocation.argument.value == b"later":
                response.invocation_result.delayed_invocations.add(
                    delay_in_ms=300, target=target, argument=invocation.argument
                )
            else:
                response.invocation_result.outgoing_messages.add(
                    target=target, argument=invocation.argument
                )
        return reply(response)

    async def first(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "r", "now")
        await send(engine, "r", "later")
        await wait_until(
            lambda: len(sink.lines) == 1
            and engine.store.inbox_size() == 0
            and len(engine.timer_heap) == 1
        )

    async def second(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        assert len(engine.timer_heap) == 1
        await idle(engine)  # the timer from the first run fires in this one
        await send(engine, "r", "again")
        await idle(engine)
        assert [(json.loads(str(r["value"])), r["key"]) for r in sink.records()] == [
            ({"name": "later", "seen": 2}, "alice"),
            ({"name": "again", "seen": 3}, "alice"),
        ]
        # The state was registered in the first run: no renegotiation after the restart.
        assert all(len(batch.state) == 1 for batch in fake.batches("greeter"))

    handlers = {"greeter": greeter_handler(), "router": router}
    run(tmp_path, handlers, first, db=db, targets="[example/router]")
    run(tmp_path, handlers, second, db=db, targets="[example/router]")


@pytest.mark.parametrize(
    "breakage, problem",
    [
        ("undeclared-state", "mutated state 'ghost', which it never declared"),
        ("unknown-egress", "sent to egress 'example/nowhere', which"),
        ("unserved-target", "sent a message to 'nobody/home', which no endpoint"),
        (
            "wrong-state-type",
            "wrote state 'seen' as io.statefun.types/string, but it is registered as io.statefun.types/int",
        ),
    ],
)
def test_replies_the_module_can_not_honour_stop_the_runtime(
    tmp_path, breakage: str, problem: str
) -> None:
    async def broken(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        if "seen" not in state_of(request):
            return missing_state(("seen", INT_TYPE, 0, 0))
        response = pb.FromFunction()
        result = response.invocation_result
        if breakage == "undeclared-state":
            result.state_mutations.add(
                mutation_type=1, state_name="ghost", state_value=int_value(1)
            )
        elif breakage == "unknown-egress":
            kafka_egress(response, "example/nowhere", "t", "k", b"v")
        elif breakage == "unserved-target":
            result.outgoing_messages.add(
                target=pb.Address(namespace="nobody", type="home", id="x"), argument=int_value(1)
            )
        else:
            result.state_mutations.add(
                mutation_type=1,
                state_name="seen",
                state_value=pb.TypedValue(
                    typename="io.statefun.types/string", has_value=True, value=b""
                ),
            )
        return reply(response)

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice")
        await asyncio.wait_for(engine.failed.wait(), 5)
        assert isinstance(engine.failure, ProtocolError)
        assert problem in str(engine.failure)
        assert engine.store.inbox_size() == 1 and sink.lines == []

    run(tmp_path, {"greeter": broken}, scenario)


def test_a_function_without_effects_may_reply_with_an_empty_body(tmp_path) -> None:
    async def silent(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        return reply(pb.FromFunction())  # zero bytes, as the Python SDK sends

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice")
        await idle(engine)
        assert engine.failure is None and engine.store.inbox_size() == 0

    run(tmp_path, {"greeter": silent}, scenario)


def test_cancellation_follows_call_order_and_frees_the_run(tmp_path) -> None:
    async def scheduler(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        response = pb.FromFunction()
        result = response.invocation_result
        target = pb.Address(namespace="example", type="greeter", id="alice")
        for invocation in request.invocations:
            text = invocation.argument.value.decode()
            if text == "send-then-cancel":  # cancelled: the send came first
                result.delayed_invocations.add(
                    delay_in_ms=100,
                    target=target,
                    argument=invocation.argument,
                    cancellation_token="a",
                )
                result.delayed_invocations.add(is_cancellation_request=True, cancellation_token="a")
            elif text == "cancel-then-send":  # kept: the cancellation came first
                result.delayed_invocations.add(is_cancellation_request=True, cancellation_token="b")
                result.delayed_invocations.add(
                    delay_in_ms=100,
                    target=target,
                    argument=invocation.argument,
                    cancellation_token="b",
                )
            elif text == "in-an-hour":
                result.delayed_invocations.add(
                    delay_in_ms=3_600_000,
                    target=target,
                    argument=invocation.argument,
                    cancellation_token="c",
                )
            elif text == "cancel-c":
                result.delayed_invocations.add(is_cancellation_request=True, cancellation_token="c")
        return reply(response)

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        for text in ("send-then-cancel", "cancel-then-send", "in-an-hour"):
            await send(engine, "s", text)
        await wait_until(lambda: len(sink.lines) == 1)
        await send(engine, "s", "cancel-c")
        await idle(engine, timeout=3)  # the hour-long timer, once cancelled, is not waited for
        assert engine.is_idle()
        assert [json.loads(str(r["value"]))["name"] for r in sink.records()] == ["cancel-then-send"]
        assert engine.store.pending_timers() == []

    run(
        tmp_path,
        {"greeter": greeter_handler(), "scheduler": scheduler},
        scenario,
        targets="[example/scheduler]",
    )


def test_http_ingress_acknowledges_after_commit_and_refuses_bad_requests_whole(tmp_path) -> None:
    import aiohttp

    from statefun.local.ingress import start_http_ingress

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        runner, port = await start_http_ingress(engine, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{port}/ingress"
        try:
            async with aiohttp.ClientSession() as session:
                good = '{"key": "ann", "value": "Ann"}\n{"key": "bo", "value": "Bo"}\n'
                async with session.post(url, data=good) as response:
                    assert response.status == 200
                    assert await response.json() == {"accepted": 2, "messages": 2}
                bad = '{"key": "cy", "value": "Cy"}\n{"value": "no key"}\n'
                async with session.post(url, data=bad) as response:
                    assert response.status == 400
                    assert "line 2" in (await response.json())["error"]
            await idle(engine)
            assert sorted(str(r["key"]) for r in sink.records()) == ["ann", "bo"]
        finally:
            await runner.cleanup()

    run(tmp_path, {"greeter": greeter_handler()}, scenario)


class CrashingSink(ListSink):
    """Writes, then dies before the writer can delete the rows from the outbox."""

    def flush(self) -> None:
        raise RuntimeError("simulated crash between writing egress and clearing the outbox")


def test_egress_written_before_a_crash_is_written_again_identically(tmp_path) -> None:
    db = str(tmp_path / "state.db")
    crashing = CrashingSink()

    async def first(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice", "Alice")
        await asyncio.wait_for(engine.failed.wait(), 5)
        assert len(sink.lines) == 1

    async def second(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await idle(engine)
        await send(engine, "alice", "Alice")
        await idle(engine)

    run(tmp_path, {"greeter": greeter_handler()}, first, db=db, sink=crashing)
    after_restart = ListSink()
    run(tmp_path, {"greeter": greeter_handler()}, second, db=db, sink=after_restart)
    # The record is repeated byte for byte; the message was processed once (seen 1, then 2).
    assert after_restart.lines[0] == crashing.lines[0]
    assert [json.loads(str(r["value"]))["seen"] for r in after_restart.records()] == [1, 2]


def test_a_batch_in_flight_at_a_crash_is_sent_again_with_the_old_state(tmp_path) -> None:
    db = str(tmp_path / "state.db")
    hold = asyncio.Event()
    greet = greeter_handler()

    async def stuck(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        if len(request.invocations) and request.invocations[0].argument.value == b"second":
            await hold.wait()  # the reply never arrives before the "crash"
        return await greet(request)

    async def first(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await send(engine, "alice", "first")
        await idle(engine)
        await send(engine, "alice", "second")
        await wait_until(
            lambda: any(
                b.invocations[0].argument.value == b"second" for b in fake.batches("greeter")
            )
        )
        await engine.close()  # the "crash": the call is abandoned, nothing of it is committed
        hold.set()  # lets the fake server finish its (now unanswered) request and shut down

    async def second(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await idle(engine)
        resent = fake.batches("greeter")[-1]
        assert [i.argument.value for i in resent.invocations] == [b"second"]
        assert read_int(resent.state[0].state_value) == 1  # the state before the lost reply

    first_sink, second_sink = ListSink(), ListSink()
    run(tmp_path, {"greeter": stuck}, first, db=db, sink=first_sink)
    run(tmp_path, {"greeter": stuck}, second, db=db, sink=second_sink)
    seen = [
        json.loads(str(r["value"]))["seen"] for r in first_sink.records() + second_sink.records()
    ]
    assert seen == [1, 2]


def test_waiting_for_a_pooled_connection_does_not_count_against_the_call_timeout(tmp_path) -> None:
    from statefun.local.client import FunctionClient

    async def slow(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        await asyncio.sleep(0.2)
        return reply(pb.FromFunction())

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await engine.client.close()
        engine.client = FunctionClient(pool_size=2)  # 10 addresses, 2 connections
        await engine.client.start()
        for index in range(10):
            await send(engine, f"user{index}")
        await idle(engine, timeout=10)
        # Five rounds of 0.2 s each; the later calls queue for 0.8 s, longer than the 0.5 s
        # call timeout, and still succeed because the clock starts with the call.
        assert engine.failure is None
        assert len(fake.requests) == 10

    run(tmp_path, {"greeter": slow}, scenario, call="500ms")


def test_http_ingress_waits_while_the_backlog_is_full(tmp_path) -> None:
    import aiohttp

    from statefun.local.ingress import start_http_ingress

    release = asyncio.Event()

    async def blocked(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        await release.wait()
        return reply(pb.FromFunction())

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        engine.max_backlog = 3
        runner, port = await start_http_ingress(engine, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{port}/ingress"
        body = "".join(f'{{"key": "k{i}", "value": "v"}}\n' for i in range(3))
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(url, data=body) as response:
                    assert response.status == 200  # room: accepted at once
                second = asyncio.ensure_future(session.post(url, data=body))
                await asyncio.sleep(0.3)
                assert not second.done(), "accepted while 3 + 3 messages (> 3) would wait"
                release.set()
                response = await asyncio.wait_for(second, 5)
                assert response.status == 200
                response.release()
            await idle(engine)
            assert len(fake.requests) == 6
        finally:
            await runner.cleanup()

    run(tmp_path, {"greeter": blocked}, scenario)


def test_a_second_pending_delayed_message_with_the_same_token_fails_as_on_flink(tmp_path) -> None:
    async def scheduler(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        response = pb.FromFunction()
        target = pb.Address(namespace="example", type="greeter", id="alice")
        for invocation in request.invocations:
            text = invocation.argument.value.decode()
            if text.startswith("cancel"):
                response.invocation_result.delayed_invocations.add(
                    is_cancellation_request=True, cancellation_token="t"
                )
            else:
                response.invocation_result.delayed_invocations.add(
                    delay_in_ms=60_000,
                    target=target,
                    argument=invocation.argument,
                    cancellation_token="t",
                )
        return reply(response)

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        # Send, cancel, send again: allowed (one pending at a time), also within one batch.
        for text in ("first", "cancel", "again"):
            await send(engine, "s", text)
            await idle_but_timers(engine)
        assert engine.timers_pending == 1 and engine.failure is None
        await send(engine, "s", "third")  # a second pending one with token "t"
        await asyncio.wait_for(engine.failed.wait(), 5)
        assert isinstance(engine.failure, ProtocolError)
        text = str(engine.failure)
        assert (
            "sent a delayed message with cancellation token 't' while one with that token is still pending"
            in text
        )
        assert "Flink fails the job here" in text
        assert engine.timers_pending == 1 and engine.store.inbox_size() == 1  # nothing committed
        # Another sender may use the same token.
        assert "(id 's')" in text

    run(
        tmp_path,
        {"greeter": greeter_handler(), "scheduler": scheduler},
        scenario,
        targets="[example/scheduler]",
    )


async def idle_but_timers(engine: Engine) -> None:
    await wait_until(
        lambda: engine.is_idle() or engine.only_timers_pending() or engine.failure is not None
    )


def test_expired_state_is_reclaimed_in_the_background(tmp_path) -> None:
    async def handler(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        if "seen" not in state_of(request):
            return missing_state(("seen", INT_TYPE, 1, 300))  # AFTER_WRITE, 300 ms
        return await greeter_handler()(request)

    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        for key in ("a", "b", "c"):
            await send(engine, key)
        await idle(engine)
        assert len(engine.store.scan_state("example/greeter", "seen", "", 10)) == 3
        calls = len(fake.requests)
        # No address is invoked again, and still the expired rows go.
        await wait_until(
            lambda: not engine.store.scan_state("example/greeter", "seen", "", 10), timeout=3
        )
        assert len(fake.requests) == calls

    run(tmp_path, {"greeter": handler}, scenario)


def test_a_cold_start_sends_one_registration_round_trip_per_function_type(tmp_path) -> None:
    async def scenario(engine: Engine, fake: FakeFunctions, sink: ListSink) -> None:
        await engine.accept(
            [
                message
                for key in range(50)
                for message in record_messages({"key": f"user{key}", "value": "hi"}, engine.config)
            ]
        )
        await idle(engine)
        assert len(sink.lines) == 50
        # The first call comes back asking for the state; the other 49 wait for it instead of
        # going out without the state and being sent again.
        assert len(fake.requests) == 51 and engine.registrations_requested == 1

    run(tmp_path, {"greeter": greeter_handler()}, scenario)


def test_requests_are_encoded_as_protobuf_encodes_them(tmp_path) -> None:
    """ToFunction bytes are built by hand (stored arguments embedded as they are); they are the
    same bytes the generated classes produce."""
    from statefun.local.engine import _TypeWire
    from statefun.local.store import StateSpec

    async def main() -> None:
        config = load_module(write_module(str(tmp_path), 1))
        store = Store(":memory:")
        engine = Engine(config, store, {}, log=lambda text: None)
        specs = {
            "seen": StateSpec("seen", INT_TYPE, 0, 0),
            "name": StateSpec("name", "io.statefun.types/string", 2, 60_000),
            "empty": StateSpec("empty", "x/empty", 0, 0),
        }
        engine._set_specs("example/greeter", specs)
        assert isinstance(engine._wire["example/greeter"], _TypeWire)
        address = ("example/greeter", "ü" * 70)
        with store.transaction():
            store.put_state(address, "seen", int_value(5).value, 10**13)
            store.put_state(address, "empty", b"", 10**13)
        long_argument = pb.TypedValue(typename="t/long", has_value=True, value=b"x" * 300)
        rows = [
            (1, None, None, int_value(1).SerializeToString()),
            (2, "example/caller", "", long_argument.SerializeToString()),  # an empty caller id
            (
                3,
                "other/caller",
                "id-3",
                pb.TypedValue(typename="t/e", has_value=True).SerializeToString(),
            ),
        ]
        body, expired = engine._build_request(address, rows, 10**13)
        expected = pb.ToFunction()
        batch = expected.invocation
        batch.target.CopyFrom(pb.Address(namespace="example", type="greeter", id="ü" * 70))
        batch.state.add(state_name="seen", state_value=int_value(5))
        batch.state.add(state_name="name")
        batch.state.add(
            state_name="empty",
            state_value=pb.TypedValue(typename="x/empty", has_value=True, value=b""),
        )
        batch.invocations.add(argument=int_value(1))
        batch.invocations.add(
            caller=pb.Address(namespace="example", type="caller"), argument=long_argument
        )
        batch.invocations.add(
            caller=pb.Address(namespace="other", type="caller", id="id-3"),
            argument=pb.TypedValue(typename="t/e", has_value=True),
        )
        assert body == expected.SerializeToString() and expired == []
        store.close()

    asyncio.run(main())
