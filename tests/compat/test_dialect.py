"""State nobody declared: 2.x-style access asks the runtime for it, and the batch runs again.

The programs here are 2.x-style code of the kinds real applications have, not
the pages': several states found one after another, a state only some
messages touch (found in a later invocation of a batch), async functions,
long batches, user code that catches exceptions broadly, concurrent batches.
They run against ``MiniRuntime``, which registers what the SDK asks for and
sends the batch again, through every in-process entry point.
"""

from __future__ import annotations

import asyncio
import threading
import typing
from collections import Counter
from datetime import timedelta

import pytest
from compat_support import (
    ANY_STATE_TYPENAME,
    Admin,
    Item,
    SeenCount,
    Total,
    User,
    any_state,
    declared,
    from_function,
    packed,
    to_function,
    typed,
    unpacked,
)
from google.protobuf.any_pb2 import Any
from runtime_support import IN_PROCESS, MiniRuntime, describe, effects_of, in_process_call

import statefun.compat
from statefun import (
    Context,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    ValueSpec,
    IntType,
    message_builder,
)
from statefun.compat import StateDiscovery, UndeclaredStateError
from statefun.compat.state import any_state as any_state_spec
from statefun.request_reply_pb2 import FromFunction, TypedValue

ANN = User(user_id="u1", name="Ann")
ANY = ANY_STATE_TYPENAME


def state_text(message: typing.Any) -> str:
    return describe(any_state(message))


@pytest.fixture(params=IN_PROCESS)
def drive(request: pytest.FixtureRequest) -> typing.Iterator[typing.Callable[..., MiniRuntime]]:
    """``drive(functions)``: a MiniRuntime calling them through one in-process entry point."""
    loop = asyncio.new_event_loop()

    def make(functions: StatefulFunctions) -> MiniRuntime:
        return MiniRuntime(
            in_process_call(functions, request.param, loop), set(functions.typenames())
        )

    yield make
    loop.close()


# -- a program that finds three states one after another --------------------------------------


def visit_tracker(calls: Counter[str]) -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("shop/visits")
    def track(context, message):  # type: ignore[no-untyped-def]
        calls["body"] += 1
        user = User()
        message.Unpack(user)
        visits = unpacked(context["visits"], Total) or Total()
        visits.value += 1
        context["visits"] = packed(visits)
        if visits.value > 1:
            previous = context.state("last_seen").unpack(User)
            context.send(
                message_builder("shop/log", user.name, str_value=f"again, was {previous.name}")
            )
        context.state("last_seen").pack(user)
        if context["vip"] is None and visits.value >= 2:
            context["vip"] = packed(user)

    return functions


def test_several_states_are_found_one_after_another_and_then_asked_for_up_front(
    drive: typing.Callable[..., MiniRuntime],
) -> None:
    calls: Counter[str] = Counter()
    functions = visit_tracker(calls)
    runtime = drive(functions)

    runtime.send("shop/visits", "Ann", [typed(ANN)])
    first = effects_of(runtime.exchanges)
    # visits, then last_seen, then vip: each was asked for when first touched.
    assert first.registered == {
        "shop/visits": [f"visits: {ANY}", f"last_seen: {ANY}", f"vip: {ANY}"]
    }
    assert first.incomplete == 3
    assert calls["body"] == 4  # once per state found, and once to completion
    assert first.messages == []

    runtime.send("shop/visits", "Ann", [typed(ANN)])
    runtime.send("shop/visits", "Bob", [typed(User(name="Bob"))])
    later = effects_of(runtime.exchanges)
    assert later.incomplete == 3  # nothing more: the function asks for all three up front
    assert calls["body"] == 6
    assert later.messages == [f"shop/log/Ann <- io.statefun.types/string:b'\\n\\x0eagain, was Ann'"]
    assert later.state == {
        "shop/visits/Ann": {
            "visits": state_text(Total(value=2)),
            "last_seen": state_text(ANN),
            "vip": state_text(ANN),
        },
        "shop/visits/Bob": {
            "visits": state_text(Total(value=1)),
            "last_seen": state_text(User(name="Bob")),
        },
    }
    specs = functions.for_typename("shop/visits").storage_spec.specs
    assert [(spec.name, spec.type.typename, spec.duration) for spec in specs] == [
        ("visits", ANY, 0),
        ("last_seen", ANY, 0),
        ("vip", ANY, 0),
    ]


def test_the_missing_state_is_asked_for_with_the_any_typename_and_no_expiration() -> None:
    functions = visit_tracker(Counter())

    response = RequestReplyHandler(functions)(
        to_function("shop/visits", "Ann", [(None, typed(ANN))])
    )

    # FromFunction{incomplete_invocation_context{missing_values{state_name, expiration_spec{},
    # type_typename}}}, as upstream 3.x writes a ValueSpec without expiration.
    spec = b"\x0a\x06visits\x12\x00\x1a" + bytes((len(ANY),)) + ANY.encode()
    assert response == b"\xaa\x06" + bytes((len(spec) + 2,)) + b"\x0a" + bytes((len(spec),)) + spec


# -- a state only some messages touch: found late in a batch ----------------------------------


def audit_functions(calls: Counter[str]) -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("shop/audit")
    def audit(context, message):  # type: ignore[no-untyped-def]
        calls[message.TypeName()] += 1
        if message.Is(Admin.DESCRIPTOR):
            admin = Admin()
            message.Unpack(admin)
            log = unpacked(context["admin_log"], Total) or Total()
            log.value += 1
            context["admin_log"] = packed(log)
            context.pack_and_send_egress("shop/alerts", admin)
        else:
            context.send("shop/users", message.TypeName(), message)  # 2.x form, forwarding

    return functions


def test_a_state_found_in_a_later_invocation_discards_the_batch_and_nothing_goes_out_twice(
    drive: typing.Callable[..., MiniRuntime],
) -> None:
    calls: Counter[str] = Counter()
    runtime = drive(audit_functions(calls))
    batch = [typed(ANN), typed(ANN), typed(Admin(name="root")), typed(ANN), typed(Admin(name="op"))]

    runtime.send("shop/audit", "store-1", batch)

    effects = effects_of(runtime.exchanges)
    assert effects.incomplete == 1
    # The first two invocations ran twice (their effects the first time were discarded) ...
    assert calls == Counter({"example.User": 5, "example.Admin": 3})
    # ... but each invocation's message and egress reached the wire exactly once.
    assert effects.messages == [f"shop/users/example.User <- {describe(ANN)}"] * 3
    assert effects.egress == sorted(
        f"shop/alerts <- {describe(typed(Admin(name=name)))}" for name in ("root", "op")
    )
    assert effects.state == {"shop/audit/store-1": {"admin_log": state_text(Total(value=2))}}


def test_a_long_batch_finds_its_states_wherever_they_are_first_touched(
    drive: typing.Callable[..., MiniRuntime],
) -> None:
    functions = StatefulFunctions()

    @functions.bind("shop/counter")
    def count(context, message):  # type: ignore[no-untyped-def]
        item = Item()
        message.Unpack(item)
        total = unpacked(context["total"], Total) or Total()
        total.value += item.quantity
        context["total"] = packed(total)
        if item.quantity % 50 == 0:  # rare items: a state of their own, first touched late
            rare = unpacked(context[f"rare_{item.sku}"], Total) or Total()
            rare.value += 1
            context[f"rare_{item.sku}"] = packed(rare)

    runtime = drive(functions)
    items = [typed(Item(sku="a" if n % 2 else "b", quantity=n)) for n in range(1, 201)]

    runtime.send("shop/counter", "cart", items)

    effects = effects_of(runtime.exchanges)
    assert effects.registered == {"shop/counter": [f"total: {ANY}", f"rare_b: {ANY}"]}
    assert effects.state == {
        "shop/counter/cart": {
            "total": state_text(Total(value=sum(range(1, 201)))),
            "rare_b": state_text(Total(value=4)),  # 50, 100, 150, 200
        }
    }


# -- async, and the 3.x and 2.x calls in one function ----------------------------------------


def test_an_async_function_mixing_dialects(drive: typing.Callable[..., MiniRuntime]) -> None:
    functions = StatefulFunctions()

    @functions.bind("shop/greeter")
    async def greet(context, message):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        user = User()
        if not message.Unpack(user):  # a string sent by a 3.x function
            user.name = message.as_string()
        seen = context.state("seen").unpack(SeenCount) or SeenCount()
        await asyncio.sleep(0)
        seen.seen += 1
        context.state("seen").pack(seen)
        context.send(message_builder("shop/log", user.name, int_value=seen.seen))  # 3.x
        if context.caller is not None:
            context.pack_and_reply(SeenCount(seen=seen.seen))  # 2.x
        await asyncio.sleep(0)
        if seen.seen == 2:
            context.send_after(timedelta(minutes=1), "shop/greeter", user.name, packed(user))
            context["second_visit"] = message

    runtime = drive(functions)
    runtime.send("shop/greeter", "Ann", [typed(ANN)])
    runtime.send(
        "shop/greeter",
        "Ann",
        [TypedValue(typename="io.statefun.types/string", has_value=True, value=b"\x0a\x03Ann")],
        caller=("shop/front", "f1"),
    )

    effects = effects_of(runtime.exchanges)
    assert effects.registered == {"shop/greeter": [f"seen: {ANY}", f"second_visit: {ANY}"]}
    assert effects.incomplete == 2
    assert sorted(effects.messages) == sorted(
        [
            "shop/log/Ann <- io.statefun.types/int:b'\\r\\x01\\x00\\x00\\x00'",
            "shop/log/Ann <- io.statefun.types/int:b'\\r\\x02\\x00\\x00\\x00'",
            f"shop/front/f1 <- {describe(SeenCount(seen=2))}",
        ]
    )
    assert effects.delayed == [f"shop/greeter/Ann after 60000 ms <- {describe(User(name='Ann'))}"]
    assert effects.state["shop/greeter/Ann"]["seen"] == state_text(SeenCount(seen=2))
    assert effects.state["shop/greeter/Ann"]["second_visit"] == describe(
        TypedValue(
            typename=ANY,
            has_value=True,
            value=Any(
                type_url="io.statefun.types/string", value=b"\x0a\x03Ann"
            ).SerializeToString(),
        )
    )


def test_2x_style_functions_with_hints_or_states_find_undeclared_states_too(
    drive: typing.Callable[..., MiniRuntime],
) -> None:
    functions = StatefulFunctions()

    @functions.bind("shop/typed")
    def typed_greeter(context, message: User):  # type: ignore[no-untyped-def]
        context["names"] = packed(message)

    @functions.bind(
        "shop/declared", states=[any_state_spec("count", expire_after_call=timedelta(days=1))]
    )
    def declaring(context, message):  # type: ignore[no-untyped-def]
        context["count"] = packed(Total(value=1))
        context["extra"] = message

    compat_functions = statefun.compat.StatefulFunctions()

    @compat_functions.bind("shop/untyped")
    def untyped(context, message: typing.Any):  # type: ignore[no-untyped-def]
        assert isinstance(message, Any)  # a real Any here
        context["last"] = message

    cases = [
        (functions, "shop/typed", ["names"]),
        (functions, "shop/declared", ["count", "extra"]),
        (compat_functions, "shop/untyped", ["last"]),
    ]
    for registry, typename, names in cases:
        runtime = drive(registry)
        runtime.send(typename, "x", [typed(ANN)])
        assert list(runtime.registered[typename]) == names
        assert list(effects_of(runtime.exchanges).state[f"{typename}/x"]) == names


def test_declared_states_keep_their_expiration_and_come_first() -> None:
    functions = StatefulFunctions()

    @functions.bind(
        "shop/declared", states=[any_state_spec("count", expire_after_call=timedelta(days=1))]
    )
    def declaring(context, message):  # type: ignore[no-untyped-def]
        context["extra"] = message
        context["count"] = packed(Total(value=1))

    handler = RequestReplyHandler(functions)
    first = from_function(handler(to_function("shop/declared", "x", [(None, typed(ANN))])))
    ((count,),) = [first.incomplete_invocation_context.missing_values]
    assert (count.state_name, count.expiration_spec.mode) == (
        "count",
        FromFunction.ExpirationSpec.AFTER_INVOKE,
    )
    second = from_function(
        handler(to_function("shop/declared", "x", [(None, typed(ANN))], state={"count": None}))
    )
    (extra,) = second.incomplete_invocation_context.missing_values
    assert (extra.state_name, extra.expiration_spec.mode) == (
        "extra",
        FromFunction.ExpirationSpec.NONE,
    )


# -- the runtime already has the state ----------------------------------------------------------


def test_a_state_the_request_carries_is_taken_without_a_round_trip(
    drive: typing.Callable[..., MiniRuntime],
) -> None:
    # As after a restart of the SDK's process: the runtime registered the state long ago.
    calls: Counter[str] = Counter()
    functions = visit_tracker(calls)
    runtime = drive(functions)
    for name in ("visits", "last_seen", "vip"):
        runtime.registered.setdefault("shop/visits", {})[name] = FromFunction.PersistedValueSpec(
            state_name=name, type_typename=ANY
        )
    runtime.values[("shop/visits", "Ann")] = {
        "visits": any_state(Total(value=4)),
        "last_seen": any_state(ANN),
    }

    runtime.send("shop/visits", "Ann", [typed(ANN)])

    effects = effects_of(runtime.exchanges)
    assert effects.incomplete == 0 and calls["body"] == 1
    assert effects.state["shop/visits/Ann"]["visits"] == state_text(Total(value=5))
    assert declared(functions, "shop/visits") == [
        "visits",
        "last_seen",
        "vip",
    ]


def test_a_state_taken_from_the_request_is_also_on_context_storage() -> None:
    functions = StatefulFunctions()
    seen: list[object] = []

    @functions.bind("shop/mixed")
    def mixed(context, message):  # type: ignore[no-untyped-def]
        seen.append(context["visits"])
        seen.append(context.storage.visits)

    RequestReplyHandler(functions)(
        to_function(
            "shop/mixed", "x", [(None, typed(ANN))], state={"visits": any_state(Total(value=1))}
        )
    )
    assert seen == [packed(Total(value=1))] * 2


# -- user code that catches broadly ---------------------------------------------------------------


def catching(kind: str) -> typing.Callable[[typing.Any, typing.Any], None]:
    def body(context, message):  # type: ignore[no-untyped-def]
        context.send(message_builder("shop/out", "1", str_value="before"))
        if kind == "except Exception":
            try:
                value = context["x"]
            except Exception:  # the discovery is not an Exception: it passes
                value = None
        elif kind == "except KeyError":
            try:
                value = context["x"]
            except KeyError:  # 2.x raised KeyError for unknown names
                value = None
        elif kind == "bare except":
            try:
                value = context["x"]
            except:  # noqa: E722 - swallowed, yet the batch is still answered for the state
                value = None
        else:
            try:
                value = context["x"]
            except BaseException as error:
                raise RuntimeError("wrapped") from error
        context["x"] = packed(Total(value=0 if value is None else 1))
        context.send(message_builder("shop/out", "2", str_value="after"))

    return body


@pytest.mark.parametrize(
    "kind", ["except Exception", "except KeyError", "bare except", "re-raised"]
)
def test_catching_the_discovery_still_asks_for_the_state(
    kind: str, drive: typing.Callable[..., MiniRuntime]
) -> None:
    functions = StatefulFunctions()
    functions.register("shop/catcher", catching(kind))
    runtime = drive(functions)

    runtime.send("shop/catcher", "1", [typed(ANN)])

    effects = effects_of(runtime.exchanges)
    assert effects.incomplete == 1
    assert len(effects.messages) == 2  # "before" and "after", once each
    assert effects.state == {"shop/catcher/1": {"x": state_text(Total(value=0))}}


def test_the_discovery_is_not_an_exception_and_says_what_happens() -> None:
    assert issubclass(StateDiscovery, BaseException) and not issubclass(StateDiscovery, Exception)
    seen: list[BaseException] = []
    functions = StatefulFunctions()

    @functions.bind("shop/x")
    def peek(context, message):  # type: ignore[no-untyped-def]
        try:
            context["x"]
        except BaseException as error:
            seen.append(error)
            raise

    RequestReplyHandler(functions)(to_function("shop/x", "1", [(None, typed(ANN))]))
    (error,) = seen
    assert str(error) == (
        "the state 'x' of shop/x was not declared; the runtime is asked for it and sends the "
        "batch again"
    )


def test_an_error_before_any_discovery_propagates_unchanged() -> None:
    functions = StatefulFunctions()

    @functions.bind("shop/fails")
    def fails(context, message):  # type: ignore[no-untyped-def]
        raise LookupError("the user's own")

    with pytest.raises(LookupError, match="the user's own"):
        RequestReplyHandler(functions)(to_function("shop/fails", "1", [(None, typed(ANN))]))


# -- names that can not be declared, and 3.x functions ------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("seenCount", "invalid name 'seenCount'. A ValueSpec name should only be lower case"),
        ("seen-count", "invalid name 'seen-count'. A ValueSpec name can only contain"),
        ("class", "invalid name 'class'. A ValueSpec name can not be a Python keyword"),
        ("_cells", "the state name '_cells' is reserved by the SDK's storage object"),
        (3, "state names are strings, got int"),
    ],
)
def test_a_name_the_3x_protocol_can_not_carry_is_a_key_error(name: object, reason: str) -> None:
    functions = StatefulFunctions()

    @functions.bind("shop/x")
    def touch(context, message):  # type: ignore[no-untyped-def]
        context[name]

    with pytest.raises(KeyError) as raised:
        RequestReplyHandler(functions)(to_function("shop/x", "1", [(None, typed(ANN))]))

    assert isinstance(raised.value, UndeclaredStateError)
    assert str(raised.value).startswith(
        f"the state name {name!r} of the function shop/x can not be declared: {reason}"
    )
    assert declared(functions, "shop/x") == []


def test_3x_functions_keep_upstreams_behaviour_for_undeclared_state() -> None:
    functions = StatefulFunctions()

    @functions.bind("shop/current")
    def current(context: Context, message: Message) -> None:
        context.storage.visits

    @functions.bind("shop/declared", specs=[ValueSpec("seen", IntType)])
    def declaring(context, message):  # type: ignore[no-untyped-def]
        context.storage.visits

    handler = RequestReplyHandler(functions)
    with pytest.raises(AttributeError, match="'visits' is not a registered ValueSpec"):
        handler(to_function("shop/current", "1", [(None, typed(ANN))]))
    with pytest.raises(AttributeError, match="'visits' is not a registered ValueSpec"):
        handler(to_function("shop/declared", "1", [(None, typed(ANN))], state={"seen": None}))
    assert declared(functions, "shop/current") == []


# -- per function, and safe under concurrency -----------------------------------------------------


def test_states_are_remembered_per_function() -> None:
    functions = StatefulFunctions()
    for typename in ("shop/a", "shop/b"):
        functions.register(typename, lambda context, message: context.__setitem__("x", message))
    runtime = MiniRuntime(RequestReplyHandler(functions), set(functions.typenames()))

    runtime.send("shop/a", "1", [typed(ANN)])

    assert declared(functions, "shop/a") == ["x"]
    assert declared(functions, "shop/b") == []
    # Registering the function again starts from what it declares.
    functions.register("shop/a", lambda context, message: None)
    assert declared(functions, "shop/a") == []


NAMES = [f"s{n}" for n in range(12)]


def many_states(context, message):  # type: ignore[no-untyped-def]
    # Each instance touches the states in its own order.
    offset = int(context.address.id)
    for step in range(len(NAMES)):
        name = NAMES[(offset + step) % len(NAMES)]
        context[name] = packed(Total(value=offset))


def test_threads_discovering_the_same_states_declare_each_once() -> None:
    functions = StatefulFunctions()
    functions.register("shop/many", many_states)
    handler = RequestReplyHandler(functions)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def instance(id: int) -> None:
        try:
            barrier.wait()
            runtime = MiniRuntime(handler, {"shop/many"})
            runtime.send("shop/many", str(id), [typed(ANN)])
            assert effects_of(runtime.exchanges).state[f"shop/many/{id}"] == {
                name: state_text(Total(value=id)) for name in NAMES
            }
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=instance, args=(id,)) for id in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    names = declared(functions, "shop/many")
    assert sorted(names) == sorted(NAMES)


def test_concurrent_async_batches_discover_and_complete() -> None:
    functions = StatefulFunctions()

    @functions.bind("shop/slow")
    async def slow(context, message):  # type: ignore[no-untyped-def]
        for name in ("a", "b", "c"):
            await asyncio.sleep(0.001)
            context[name] = message

    handler = RequestReplyHandler(functions)

    async def one(id: str) -> dict[str, str]:
        state: dict[str, TypedValue | None] = {}
        for _ in range(10):
            response = from_function(
                await handler.handle_async(
                    to_function("shop/slow", id, [(None, typed(ANN))], state=state)
                )
            )
            if response.HasField("incomplete_invocation_context"):
                for spec in response.incomplete_invocation_context.missing_values:
                    state[spec.state_name] = None
                continue
            return {
                m.state_name: describe(m.state_value)
                for m in response.invocation_result.state_mutations
            }
        raise AssertionError("no answer")

    async def all_of_them() -> list[dict[str, str]]:
        return list(await asyncio.gather(*(one(str(id)) for id in range(20))))

    results = asyncio.run(asyncio.wait_for(all_of_them(), 30))
    assert all(result == {name: state_text(ANN) for name in "abc"} for result in results)
