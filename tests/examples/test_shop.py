"""examples/shop, an application written against the generated code rather than for the tests:
the checked-in generated tree is current, the whole example passes ``mypy --strict``, and the
shop, served for real, runs a scripted session on statefun-local from its generated
module.yaml (wildcard endpoint, two Kafka ingresses, one egress with two topics, a delayed
reminder that checkout cancels)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "examples" / "shop"
MODULE = "examples/shop/module.yaml"
# The two topics of egress shop/orders carry different types: only orders-placed is protobuf.
ORDER_TYPE = "shop/orders:orders-placed=shop.OrderPlaced"
# The reminder delay of the fast server (the manifest's is an hour).
SHORT_REMINDER_S = 1.5


def _record(ingress: str, topic: str, key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"ingress": f"shop/{ingress}", "topic": topic, "key": key, "value": value}


def restock(sku: str, quantity: int, price: int) -> dict[str, Any]:
    value = {"sku": sku, "quantity": quantity, "unit_price_cents": price}
    return _record("warehouse", "restock", sku, value)


def add(customer: str, sku: str, quantity: int) -> dict[str, Any]:
    value = {"customer": customer, "sku": sku, "quantity": quantity}
    return _record("storefront", "add-to-cart", customer, value)


def remove(customer: str, sku: str) -> dict[str, Any]:
    return _record("storefront", "remove-from-cart", customer, {"customer": customer, "sku": sku})


def checkout(customer: str, coupon: str = "") -> dict[str, Any]:
    value = {"customer": customer, "coupon": coupon} if coupon else {"customer": customer}
    return _record("storefront", "checkout", customer, value)


# Day one. Every record is read before any is processed, so the carts' messages race the
# inventory's answers: alice and dave check out before their reservations are answered.
DAY_ONE = [
    restock("mug", 5, 1250),
    restock("tee", 2, 1999),
    restock("poster", 2, 500),
    add("alice", "tee", 1),
    add("alice", "mug", 2),
    checkout("alice", "welcome10"),
    add("bob", "poster", 3),  # only 2 in stock
    add("bob", "mug", 1),  # ... and bob never checks out
    checkout("carol"),  # an empty cart
    add("dave", "tee", 1),
    remove("dave", "tee"),  # the tee goes back to the inventory
    add("dave", "mug", 1),
    checkout("dave"),
]

# Day two, on the same database: the state of day one is still there.
DAY_TWO = [
    add("alice", "poster", 2),
    checkout("alice", "VIP25"),
    add("erin", "tee", 1),  # the tee dave gave back
    add("erin", "tee", 1),  # none left
    checkout("erin"),
]


def placed(order_id: str, customer: str, total: int, *lines: tuple[str, int, int]) -> Any:
    """The orders-placed record as --egress-type prints it (protobuf JSON: int64 as text)."""
    value = {
        "order_id": order_id,
        "customer": customer,
        "lines": [
            {"sku": sku, "quantity": quantity, "unit_price_cents": str(price)}
            for sku, quantity, price in lines
        ],
        "total_cents": str(total),
    }
    return ("shop/orders", "orders-placed", customer, value)


def receipt(
    order_id: str, customer: str, discount: int, *lines: tuple[str, int, int], coupon: str = ""
) -> Any:
    subtotal = sum(quantity * price for _, quantity, price in lines)
    value: dict[str, Any] = {
        "order_id": order_id,
        "customer": customer,
        "lines": [
            {
                "sku": sku,
                "quantity": quantity,
                "unit_price_cents": price,
                "line_total_cents": quantity * price,
            }
            for sku, quantity, price in lines
        ],
        "subtotal_cents": subtotal,
        "discount_cents": discount,
        "total_cents": subtotal - discount,
    }
    if coupon:
        value["coupon"] = coupon
    return ("shop/orders", "receipts", order_id, value)


def notification(customer: str, kind: str, text: str) -> Any:
    value = {"customer": customer, "kind": kind, "text": text}
    return ("shop/notifications", "customer-notifications", customer, value)


DAY_ONE_EGRESS = [
    placed("alice-1", "alice", 4050, ("mug", 2, 1250), ("tee", 1, 1999)),
    receipt("alice-1", "alice", 449, ("mug", 2, 1250), ("tee", 1, 1999), coupon="WELCOME10"),
    placed("dave-1", "dave", 1250, ("mug", 1, 1250)),
    receipt("dave-1", "dave", 0, ("mug", 1, 1250)),
    notification("bob", "out-of-stock", "poster: you asked for 3, 2 left"),
    notification("carol", "checkout-rejected", "your cart is empty"),
]
BOB_REMINDER = notification(
    "bob", "cart-reminder", "you left 1 item(s) worth 12.50 EUR in your cart"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, int]]:
    """The shop served twice, as `python -m examples.shop`: with the manifest's one-hour
    reminder ("default") and with SHOP_REMINDER_AFTER's short one ("fast")."""
    ports = {"default": free_port(), "fast": free_port()}
    processes = []
    try:
        for name, port in ports.items():
            env = {k: v for k, v in os.environ.items() if k != "SHOP_REMINDER_AFTER"}
            if name == "fast":
                env["SHOP_REMINDER_AFTER"] = str(SHORT_REMINDER_S)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "examples.shop", "--port", str(port)],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        yield ports
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def run_local(
    tmp_path: Path, port: int, records: list[dict[str, Any]], *options: str
) -> tuple[list[Any], str]:
    """statefun-local over the shop's own module.yaml; the egress records, decoded, and stderr."""
    session = tmp_path / f"session-{time.monotonic_ns()}.jsonl"
    session.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "statefun.local",
            MODULE,
            "--input",
            str(session),
            "--endpoint",
            f"shop/*=http://127.0.0.1:{port}/statefun",
            "--egress-type",
            ORDER_TYPE,
            "--wait-for-endpoints",
            "20",
            *options,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # The generated module.yaml is read without a complaint, but for the one the local runtime
    # owes: it cannot give the orders egress its exactly-once delivery.
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "egress shop/orders asks for exactly-once" in warnings[0]
    records_out = []
    for line in result.stdout.splitlines():
        record = json.loads(line)
        value = record["value"]
        if record["topic"] != "orders-placed":  # JSON types: their text
            value = json.loads(value)
        records_out.append((record["egress"], record["topic"], record["key"], value))
    return records_out, result.stderr


def by_content(records: list[Any]) -> list[Any]:
    """Records of different addresses are committed in no fixed order; each address's are."""
    return sorted(records, key=lambda record: json.dumps(record, sort_keys=True))


def test_a_shopping_day_then_the_next_on_the_same_database(
    tmp_path: Path, servers: dict[str, int]
) -> None:
    """The manifest's reminder delay (an hour): --until-idle ends the run with the reminders of
    abandoned carts pending; checkout cancelled alice's and dave's, so only bob's is left."""
    db = str(tmp_path / "shop.db")
    records, err = run_local(tmp_path, servers["default"], DAY_ONE, "--db", db, "--until-idle")
    assert by_content(records) == by_content(DAY_ONE_EGRESS)
    for order_id in ("alice-1", "dave-1"):  # the order before its receipt
        topics = [r[1] for r in records if r[0] == "shop/orders" and r[3]["order_id"] == order_id]
        assert topics == ["orders-placed", "receipts"]
    pending = re.compile(
        r"1 delayed message\(s\) pending \(the next due at \d\d:\d\d:\d\d "
        r"\(in (59 min 5\d s|1 h 0 min)\)\)"
    )
    assert pending.search(err), err

    # Day two: alice's second order is numbered 2, the posters bob could not have are there,
    # and dave's returned tee is the one erin gets.
    records, err = run_local(tmp_path, servers["default"], DAY_TWO, "--db", db, "--until-idle")
    assert by_content(records) == by_content(
        [
            placed("alice-2", "alice", 750, ("poster", 2, 500)),
            receipt("alice-2", "alice", 250, ("poster", 2, 500), coupon="VIP25"),
            notification("erin", "out-of-stock", "tee: you asked for 1, 0 left"),
            placed("erin-1", "erin", 1999, ("tee", 1, 1999)),
            receipt("erin-1", "erin", 0, ("tee", 1, 1999)),
        ]
    )
    assert pending.search(err), err  # still bob's alone


def test_an_abandoned_cart_is_reminded_and_a_checked_out_one_is_not(
    tmp_path: Path, servers: dict[str, int]
) -> None:
    """With a short reminder the run lasts until the reminders fire: bob is reminded of the
    mug he left; alice and dave, who checked out, are not."""
    started = time.monotonic()
    records, err = run_local(tmp_path, servers["fast"], DAY_ONE, "--db", ":memory:")
    assert time.monotonic() - started >= SHORT_REMINDER_S
    assert by_content(records) == by_content([*DAY_ONE_EGRESS, BOB_REMINDER])
    assert records[-1] == BOB_REMINDER  # it came last, after the delay
    assert "pending (the next due" not in err  # nothing was left for a next run
