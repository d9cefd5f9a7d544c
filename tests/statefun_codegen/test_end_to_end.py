"""Generate, import, bind bodies, and drive them through RequestReplyHandler with real ToFunctions."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from statefun import RequestReplyHandler, StatefulFunctions, kafka_egress_pb2, kinesis_egress_pb2
from statefun import request_reply_pb2 as rr


@pytest.fixture
def rich(generate: Callable[..., Path]) -> Iterator[ModuleType]:
    out = generate("rich", out="rich_e2e_pkg")
    sys.path.insert(0, str(out.parent))
    try:
        yield importlib.import_module("rich_e2e_pkg.generated")
    finally:
        sys.path.remove(str(out.parent))
        for name in [n for n in sys.modules if n.startswith("rich_e2e_pkg")]:
            del sys.modules[name]


def _request(
    typename: str,
    target_id: str,
    states: dict[str, tuple[str, bytes] | None],
    *arguments: tuple[str, bytes],
) -> bytes:
    namespace, _, name = typename.partition("/")
    request = rr.ToFunction()
    invocation = request.invocation
    invocation.target.namespace, invocation.target.type, invocation.target.id = (
        namespace,
        name,
        target_id,
    )
    for state_name, value in states.items():
        state = invocation.state.add(state_name=state_name)
        if value is not None:
            state.state_value.typename, state.state_value.value = value
            state.state_value.has_value = True
    for arg_typename, payload in arguments:
        entry = invocation.invocations.add()
        entry.argument.typename, entry.argument.value, entry.argument.has_value = (
            arg_typename,
            payload,
            True,
        )
    return request.SerializeToString()


RICH_STATES: dict[str, tuple[str, bytes] | None] = {
    "total": None,
    "list": None,
    "profile": None,
    "last_seen": None,
}


def _bind_rich(generated: ModuleType, seen: list[Any]) -> RequestReplyHandler:
    orders = generated.acme_orders_orders_pb2
    money = generated.acme_common_money_pb2

    async def order_tracker(ctx: Any, message: Any) -> None:
        seen.append(message)
        if isinstance(message, orders.Order):
            ctx.storage.total = message.total
            ctx.storage.list_ = (ctx.storage.list_ or 0) + len(message.items)
            ctx.storage.profile = {"customer": ctx.address.id, "orders": 1}
            ctx.storage.last_seen = message.placed_at
            ctx.send_audit_string("log", f"order {message.id}")
            ctx.send_receipts(message.total, key=message.id)
            ctx.send_events(b"placed", partition_key=message.id)
        else:
            del ctx.storage.total
            ctx.send_audit_acme_orders_money(
                "log", orders.Money(text=f"shipped {message.order_id}")
            )

    def audit(ctx: Any, message: Any) -> None:  # a plain def works too
        ctx.storage.lines = (ctx.storage.lines or 0) + 1

    functions = StatefulFunctions()
    generated.register_functions(functions, order_tracker=order_tracker, audit=audit)
    assert money.Money  # the module is importable through the package
    return RequestReplyHandler(functions)


def test_typed_state_sends_and_egress_reach_the_wire(rich: ModuleType) -> None:
    orders = rich.acme_orders_orders_pb2
    money = rich.acme_common_money_pb2
    seen: list[Any] = []
    handler = _bind_rich(rich, seen)
    order = orders.Order(
        id="o-1",
        total=money.Money(currency="EUR", units=1250),
        placed_at=timestamp_pb2.Timestamp(seconds=7),
        items=[orders.Order.Item(sku="a"), orders.Order.Item(sku="b")],
    )
    body = _request(
        "acme/order-tracker",
        "ann",
        RICH_STATES,
        (rich.ORDER_TYPE.typename, order.SerializeToString()),
    )
    result = rr.FromFunction.FromString(handler.handle_sync(body)).invocation_result
    assert seen == [order]
    mutations = {m.state_name: m for m in result.state_mutations}
    assert mutations["total"].state_value.typename == "com.acme/money"  # renamed in the manifest
    assert money.Money.FromString(mutations["total"].state_value.value) == order.total
    assert mutations["list"].state_value.typename == "io.statefun.types/long"
    assert mutations["profile"].state_value.typename == "acme/profile"
    assert json.loads(mutations["profile"].state_value.value) == {"customer": "ann", "orders": 1}
    assert (
        mutations["last_seen"].state_value.typename
        == "type.googleapis.com/google.protobuf.Timestamp"
    )
    (sent,) = result.outgoing_messages
    assert (sent.target.namespace, sent.target.type, sent.target.id) == ("acme", "audit", "log")
    assert sent.argument.typename == "io.statefun.types/string"
    kafka, kinesis = result.outgoing_egresses
    assert (kafka.egress_namespace, kafka.egress_type) == ("acme", "receipts")
    record = kafka_egress_pb2.KafkaProducerRecord.FromString(kafka.argument.value)
    assert (record.topic, record.key) == ("receipts", "o-1")
    assert money.Money.FromString(record.value_bytes) == order.total
    stream_record = kinesis_egress_pb2.KinesisEgressRecord.FromString(kinesis.argument.value)
    assert (stream_record.stream, stream_record.partition_key, stream_record.value_bytes) == (
        "events",
        "o-1",
        b"placed",
    )


def test_dispatch_on_the_second_input_type_and_delete(rich: ModuleType) -> None:
    orders = rich.acme_orders_orders_pb2
    seen: list[Any] = []
    handler = _bind_rich(rich, seen)
    states = dict(RICH_STATES, total=("com.acme/money", b"\n\x03EUR"))
    shipped = orders.Shipped(order_id="o-1")
    body = _request(
        "acme/order-tracker",
        "ann",
        states,
        (rich.SHIPPED_TYPE.typename, shipped.SerializeToString()),
    )
    result = rr.FromFunction.FromString(handler.handle_sync(body)).invocation_result
    assert seen == [shipped]
    (mutation,) = result.state_mutations
    assert (mutation.state_name, mutation.mutation_type) == (
        "total",
        rr.FromFunction.PersistedValueMutation.DELETE,
    )
    (sent,) = result.outgoing_messages
    assert sent.argument.typename == "type.googleapis.com/acme.orders.Money"


def test_an_unexpected_message_type_is_a_clear_error(rich: ModuleType) -> None:
    handler = _bind_rich(rich, [])
    body = _request("acme/order-tracker", "ann", RICH_STATES, ("io.statefun.types/int", b""))
    with pytest.raises(
        TypeError,
        match=r"acme/order-tracker accepts type.googleapis.com/acme.orders.Order "
        r"or type.googleapis.com/acme.orders.Shipped, but got a message of type "
        r"'io.statefun.types/int'",
    ):
        handler.handle_sync(body)


def test_missing_state_asks_for_the_declared_specs(rich: ModuleType) -> None:
    handler = _bind_rich(rich, [])
    order = rich.acme_orders_orders_pb2.Order(id="o-2")
    body = _request(
        "acme/order-tracker", "bo", {}, (rich.ORDER_TYPE.typename, order.SerializeToString())
    )
    missing = rr.FromFunction.FromString(
        handler.handle_sync(body)
    ).incomplete_invocation_context.missing_values
    specs = {
        m.state_name: (
            m.type_typename,
            m.expiration_spec.mode,
            m.expiration_spec.expire_after_millis,
        )
        for m in missing
    }
    Mode = rr.FromFunction.ExpirationSpec.ExpireMode
    assert specs == {
        "total": ("com.acme/money", Mode.NONE, 0),
        "list": ("io.statefun.types/long", Mode.NONE, 0),
        "profile": ("acme/profile", Mode.AFTER_WRITE, 86_400_000),
        "last_seen": (
            "type.googleapis.com/google.protobuf.Timestamp",
            Mode.AFTER_INVOKE,
            5_400_000,
        ),
    }


def test_the_greeter_example_greets_and_counts() -> None:
    from examples.greeter.__main__ import make_handler
    from examples.greeter.generated import GREET_REQUEST_TYPE, SEEN_COUNT_TYPE, messages_pb2

    handler = make_handler()
    ann = messages_pb2.GreetRequest(name="Ann").SerializeToString()
    seen_twice = messages_pb2.SeenCount(seen=2).SerializeToString()
    body = _request(
        "example/greeter",
        "Ann",
        {"seen_count": (SEEN_COUNT_TYPE.typename, seen_twice)},
        (GREET_REQUEST_TYPE.typename, ann),
        (GREET_REQUEST_TYPE.typename, ann),
    )
    result = rr.FromFunction.FromString(handler.handle_sync(body)).invocation_result
    (mutation,) = result.state_mutations
    assert messages_pb2.SeenCount.FromString(mutation.state_value.value).seen == 4
    greetings = []
    for egress in result.outgoing_egresses:
        assert (egress.egress_namespace, egress.egress_type) == ("example", "greets")
        record = kafka_egress_pb2.KafkaProducerRecord.FromString(egress.argument.value)
        assert (record.topic, record.key) == ("greetings", "Ann")
        greetings.append(messages_pb2.GreetResponse.FromString(record.value_bytes).greeting)
    assert greetings == ["Third time is a charm Ann", "Nice to see you at the 4-nth time Ann!"]


def test_delayed_sends_and_cancellation_reach_the_wire(rich: ModuleType) -> None:
    from datetime import timedelta

    async def order_tracker(ctx: Any, message: Any) -> None:
        ctx.send_after_audit_string(timedelta(seconds=90), "log", "later", "token-1")
        ctx.cancel_delayed_message("token-0")

    functions = StatefulFunctions()
    rich.register_functions(functions, order_tracker=order_tracker, audit=lambda ctx, msg: None)
    order = rich.acme_orders_orders_pb2.Order(id="o-3")
    body = _request(
        "acme/order-tracker",
        "cy",
        RICH_STATES,
        (rich.ORDER_TYPE.typename, order.SerializeToString()),
    )
    result = rr.FromFunction.FromString(RequestReplyHandler(functions).handle_sync(body))
    delayed, cancelled = result.invocation_result.delayed_invocations
    assert (delayed.delay_in_ms, delayed.cancellation_token, delayed.target.type) == (
        90_000,
        "token-1",
        "audit",
    )
    assert delayed.argument.typename == "io.statefun.types/string"
    assert (cancelled.is_cancellation_request, cancelled.cancellation_token) == (True, "token-0")


def test_a_renamed_namespace_keeps_make_protobuf_type(
    generate: Callable[..., Path], tmp_path: Path
) -> None:
    schema = tmp_path / "ns_schema"
    schema.mkdir()
    (schema / "ev.proto").write_text(
        'syntax = "proto3";\npackage ev;\nmessage Ping { int32 n = 1; }\n'
    )
    (schema / "statefun.yaml").write_text(
        "namespace: ev\nendpoint: http://localhost:8000/x\n"
        "types:\n  Ping:\n    typename: com.example.events/ev.Ping\n"
        "functions:\n  f:\n    input: Ping\n"
    )
    from statefun_codegen.cli import run

    out = tmp_path / "ns_pkg"
    assert run([str(schema), "-o", str(out), "-q"]) == 0
    types_py = (out / "generated" / "types.py").read_text()
    assert 'namespace="com.example.events",' in types_py
    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module("ns_pkg.generated")
        assert generated.PING_TYPE.typename == "com.example.events/ev.Ping"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("ns_pkg")]:
            del sys.modules[name]


def test_a_plain_def_body_is_registered_as_a_plain_function(rich: ModuleType) -> None:
    functions = StatefulFunctions()

    async def order_tracker(ctx: Any, message: Any) -> None:
        return None

    rich.register_functions(functions, order_tracker=order_tracker, audit=lambda ctx, msg: "oops")
    assert functions.for_typename("acme/order-tracker").is_async
    assert not functions.for_typename("acme/audit").is_async
    body = _request("acme/audit", "a", {"lines": None}, ("io.statefun.types/string", b"\n\x01x"))
    with pytest.raises(
        TypeError, match="the body of acme/audit returned a value; write 'async def'"
    ):
        RequestReplyHandler(functions).handle_sync(body)


@pytest.fixture
def features(generate: Callable[..., Path]) -> Iterator[ModuleType]:
    out = generate("features", out="features_e2e_pkg")
    (out / "shapes.py").write_text(
        (Path(__file__).parent / "schemas" / "features" / "shapes.py").read_text()
    )
    sys.path.insert(0, str(out.parent))
    try:
        yield importlib.import_module("features_e2e_pkg.generated")
    finally:
        sys.path.remove(str(out.parent))
        for name in [n for n in sys.modules if n.startswith("features_e2e_pkg")]:
            del sys.modules[name]


def test_typed_sends_delays_tokens_and_egress_keys_reach_the_wire(features: ModuleType) -> None:
    """The issue-11 helpers as the runtime sees them: the default delay and token of a delayed
    send and their cancellation, a typed send, per-topic egress helpers keyed by a field."""
    shop = features.shop_shop_pb2

    async def cart(ctx: Any, message: Any) -> None:
        if isinstance(message, shop.AddItem):
            ctx.send_inventory(message.sku, shop.StockChanged(sku=message.sku, delta=-1))
            ctx.send_after_cart(ctx.address.id, {"customer": message.customer, "sent": 1})
        else:
            ctx.cancel_send_after_cart()
            ctx.send_orders_orders_placed(shop.OrderPlaced(order_id=7, customer=message.customer))
            ctx.send_orders_receipts({"order": 7, "status": "paid"})
            ctx.send_audit(message)

    functions = StatefulFunctions()
    features.register_functions(functions, cart=cart, inventory=lambda ctx, message: None)
    handler = RequestReplyHandler(functions)
    add = shop.AddItem(customer="ann", sku="tea", quantity=1).SerializeToString()
    checkout = shop.Checkout(customer="ann").SerializeToString()
    body = _request(
        "shop/cart",
        "ann",
        {"cart": None},
        (features.ADD_ITEM_TYPE.typename, add),
        (features.CHECKOUT_TYPE.typename, checkout),
    )
    result = rr.FromFunction.FromString(handler.handle_sync(body)).invocation_result
    (sent,) = result.outgoing_messages
    assert (sent.target.type, sent.target.id, sent.argument.typename) == (
        "inventory",
        "tea",
        features.STOCK_CHANGED_TYPE.typename,
    )
    delayed, cancelled = result.delayed_invocations
    assert (delayed.delay_in_ms, delayed.cancellation_token) == (3_600_000, "abandoned-cart")
    assert json.loads(delayed.argument.value) == {"customer": "ann", "sent": 1}
    assert (cancelled.is_cancellation_request, cancelled.cancellation_token) == (
        True,
        "abandoned-cart",
    )
    placed, receipt, audit = result.outgoing_egresses
    placed_record = kafka_egress_pb2.KafkaProducerRecord.FromString(placed.argument.value)
    assert (placed_record.topic, placed_record.key) == ("orders-placed", "ann")
    receipt_record = kafka_egress_pb2.KafkaProducerRecord.FromString(receipt.argument.value)
    assert (receipt_record.topic, receipt_record.key) == ("receipts", "7")
    assert json.loads(receipt_record.value_bytes) == {"order": 7, "status": "paid"}
    audit_record = kinesis_egress_pb2.KinesisEgressRecord.FromString(audit.argument.value)
    assert (audit_record.stream, audit_record.partition_key) == ("audit", "ann")
