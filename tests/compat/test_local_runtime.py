"""2.x-style programs under statefun.local, the embedded runtime, which negotiates state as Flink does.

Each program declares none of its states. The runtime reads the ingress records,
calls the functions over HTTP, registers each state the SDK asks for, sends the
batch again, keeps the state between calls and writes the Kafka egress: what it
writes must be what the program means, each record once.
"""

from __future__ import annotations

import pathlib
import typing

import pytest
from compat_support import (
    ANY_STATE_TYPENAME,
    Admin,
    SeenCount,
    Total,
    User,
    any_state,
    declared,
    packed,
    typed,
    unpacked,
)
from runtime_support import Delivery, describe, effects_of, run_local, serve_aiohttp, serve_wsgi

from statefun import RequestReplyHandler, StatefulFunctions, kafka_egress_record

ANY = ANY_STATE_TYPENAME


@pytest.fixture(autouse=True)
def local_extra() -> None:
    for needed in ("statefun.local", "yaml", "aiohttp", "flask"):
        pytest.importorskip(needed)


def visits_program() -> StatefulFunctions:
    """Three states, each first touched after the previous one exists."""
    functions = StatefulFunctions()

    @functions.bind("example/visits")
    def visits(context, message):  # type: ignore[no-untyped-def]
        user = User()
        message.Unpack(user)
        count = unpacked(context["count"], Total) or Total()
        count.value += 1
        context["count"] = packed(count)
        if count.value >= 2:
            first = context.state("first_seen").unpack(User)
            if first is None:
                context.state("first_seen").pack(user)
            if count.value >= 3:
                context["regular"] = packed(user)
        text = f"{user.name} #{count.value} regular={context['regular'] is not None}"
        context.pack_and_send_egress(
            "example/greets", kafka_egress_record("greetings", text, key=user.name)
        )

    return functions


def test_states_found_one_after_another(tmp_path: pathlib.Path) -> None:
    functions = visits_program()
    app = _flask_app(functions)
    names = ["Ann", "Ann", "Bob", "Ann", "Ann", "Bob"]
    deliveries = [Delivery("example/visits", name, typed(User(name=name))) for name in names]

    with serve_wsgi(app) as served:
        written = run_local(deliveries, served, tmp_path)
        effects = effects_of(served.recorded.exchanges)

    assert sorted((key, value.decode()) for _, key, value in written) == sorted(
        [
            ("Ann", "Ann #1 regular=False"),
            ("Ann", "Ann #2 regular=False"),
            ("Ann", "Ann #3 regular=True"),
            ("Ann", "Ann #4 regular=True"),
            ("Bob", "Bob #1 regular=False"),
            ("Bob", "Bob #2 regular=False"),
        ]
    )
    assert effects.registered == {
        "example/visits": [f"count: {ANY}", f"regular: {ANY}", f"first_seen: {ANY}"]
    }
    assert effects.state == {
        "example/visits/Ann": {
            "count": describe(any_state(Total(value=4))),
            "regular": describe(any_state(User(name="Ann"))),
            "first_seen": describe(any_state(User(name="Ann"))),
        },
        "example/visits/Bob": {
            "count": describe(any_state(Total(value=2))),
            "first_seen": describe(any_state(User(name="Bob"))),
        },
    }
    assert declared(functions, "example/visits") == [
        "count",
        "regular",
        "first_seen",
    ]


def audit_program() -> StatefulFunctions:
    """A state only admins' messages touch: found in a later call, possibly late in a batch."""
    functions = StatefulFunctions()

    @functions.bind("example/audit")
    def audit(context, message):  # type: ignore[no-untyped-def]
        if message.Is(Admin.DESCRIPTOR):
            admin = Admin()
            message.Unpack(admin)
            seen = context.state("admins").unpack(SeenCount) or SeenCount()
            seen.seen += 1
            context.state("admins").pack(seen)
            text = f"admin {admin.name} ({seen.seen})"
        else:
            text = f"user {message.TypeName()}"
        context.pack_and_send_egress(
            "example/greets", kafka_egress_record("audit", text, key=context.address.id)
        )

    return functions


def test_a_state_found_in_a_later_call_and_nothing_written_twice(tmp_path: pathlib.Path) -> None:
    values = [User(name="a"), User(name="b"), Admin(name="root"), User(name="c"), Admin(name="op")]
    deliveries = [Delivery("example/audit", "store", typed(value)) for value in values]

    with serve_wsgi(_flask_app(audit_program())) as served:
        written = run_local(deliveries, served, tmp_path)
        effects = effects_of(served.recorded.exchanges)

    # One record per message, in order (one instance: the runtime keeps one call in flight).
    assert [value.decode() for _, _, value in written] == [
        "user example.User",
        "user example.User",
        "admin root (1)",
        "user example.User",
        "admin op (2)",
    ]
    assert effects.registered == {"example/audit": [f"admins: {ANY}"]}


def async_program() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("example/async")
    async def greet(context, message):  # type: ignore[no-untyped-def]
        import asyncio

        await asyncio.sleep(0)
        user = User()
        message.Unpack(user)
        names = unpacked(context["names"], User) or User()
        await asyncio.sleep(0)
        names.name = f"{names.name},{user.name}" if names.name else user.name
        context["names"] = packed(names)
        last = context.state("last").unpack(User)
        context.state("last").pack(user)
        text = f"{names.name} after {last.name if last else '-'}"
        context.pack_and_send_egress(
            "example/greets", kafka_egress_record("greetings", text, key=context.address.id)
        )

    return functions


def test_an_async_program_served_by_aiohttp(tmp_path: pathlib.Path) -> None:
    from statefun.serving.aiohttp import make_app

    deliveries = [Delivery("example/async", "room", typed(User(name=n))) for n in "xyz"]

    with serve_aiohttp(make_app(RequestReplyHandler(async_program()))) as served:
        written = run_local(deliveries, served, tmp_path)
        effects = effects_of(served.recorded.exchanges)

    assert [value.decode() for _, _, value in written] == [
        "x after -",
        "x,y after x",
        "x,y,z after y",
    ]
    assert effects.registered == {"example/async": [f"names: {ANY}", f"last: {ANY}"]}
    assert effects.incomplete == 2


def _flask_app(functions: StatefulFunctions) -> typing.Any:
    from statefun.serving.flask import make_flask_app

    return make_flask_app(RequestReplyHandler(functions))
