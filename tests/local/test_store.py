"""SQLite store: ordering, ownership and what survives reopening."""

from __future__ import annotations

import pytest

from statefun.local.errors import ConfigError
from statefun.local.store import StateSpec, Store


def test_inbox_order_state_and_outbox_survive_reopening(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    store = Store(path)
    with store.transaction():
        store.insert_inbox_many(
            [(("a/f", "1"), None, b"one"), (("a/f", "2"), ("a/g", "x"), b"two")]
        )
        store.register_spec("a/f", StateSpec("seen", "io.statefun.types/int", 2, 500))
        store.put_state(("a/f", "1"), "seen", b"\x01", 1000)
        store.insert_outbox([("a/out", '{"n": 1}'), ("a/out", '{"n": 2}')])
    store.close()

    reopened = Store(path)
    assert [(e.target, e.caller, e.argument) for e in reopened.pending_inbox()] == [
        (("a/f", "1"), None, b"one"),
        (("a/f", "2"), ("a/g", "x"), b"two"),
    ]
    assert reopened.load_specs() == {
        "a/f": {"seen": StateSpec("seen", "io.statefun.types/int", 2, 500)}
    }
    assert reopened.read_state(("a/f", "1"))["seen"].value == b"\x01"
    assert [line for _, _, line in reopened.read_outbox(10)] == ['{"n": 1}', '{"n": 2}']
    # New messages are ordered after the recovered ones.
    with reopened.transaction():
        later = reopened.insert_inbox(("a/f", "1"), None, b"three")
    assert later.seq > max(e.seq for e in reopened.pending_inbox()[:2])
    reopened.close()


def test_a_database_has_one_owner_at_a_time(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    first = Store(path)
    with pytest.raises(
        ConfigError, match="the database is in use by another statefun-local process"
    ):
        Store(path)
    first.close()
    Store(path).close()


def test_a_failed_transaction_leaves_nothing_behind(tmp_path) -> None:
    store = Store(str(tmp_path / "s.db"))
    try:
        with store.transaction():
            store.insert_inbox(("a/f", "1"), None, b"x")
            raise RuntimeError("crash inside the transaction")
    except RuntimeError:
        pass
    assert store.pending_inbox() == []
    store.close()
