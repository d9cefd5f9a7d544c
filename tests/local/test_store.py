"""SQLite store: ordering, ownership, what survives reopening, and files it must not use."""

from __future__ import annotations

import sqlite3

import pytest

from statefun.local.errors import ConfigError
from statefun.local.store import StateSpec, Store


def test_inbox_order_state_and_outbox_survive_reopening(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    store = Store(path)
    with store.transaction():
        store.insert_inbox_many(
            [
                (("a/f", "1"), None, b"one"),
                (("a/f", "2"), ("a/g", "x"), b"two"),
                (("a/f", "1"), None, b"three"),
            ]
        )
        store.register_spec("a/f", StateSpec("seen", "io.statefun.types/int", 2, 500))
        store.put_state(("a/f", "1"), "seen", b"\x01", 1000)
        store.insert_outbox([("a/out", '{"n": 1}'), ("a/out", '{"n": 2}')])
    store.close()

    reopened = Store(path)
    # Batches are read per address, oldest first.
    assert [
        (caller, bytes(arg)) for _, caller, _, arg in reopened.fetch_batch(("a/f", "1"), 10)
    ] == [
        (None, b"one"),
        (None, b"three"),
    ]
    assert [(c_type, c_id) for _, c_type, c_id, _ in reopened.fetch_batch(("a/f", "2"), 10)] == [
        ("a/g", "x")
    ]
    assert reopened.load_specs() == {
        "a/f": {"seen": StateSpec("seen", "io.statefun.types/int", 2, 500)}
    }
    assert reopened.read_state(("a/f", "1"))["seen"].value == b"\x01"
    assert [line for _, _, line in reopened.read_outbox(10)] == ['{"n": 1}', '{"n": 2}']
    # New messages are ordered after the recovered ones; a batch is removed as a prefix.
    with reopened.transaction():
        later = reopened.insert_inbox_many([(("a/f", "1"), None, b"four")])
        first_seq = reopened.fetch_batch(("a/f", "1"), 1)[0][0]
        reopened.delete_inbox_through(("a/f", "1"), first_seq)
    assert later > first_seq
    assert [bytes(row[3]) for row in reopened.fetch_batch(("a/f", "1"), 10)] == [b"three", b"four"]
    assert reopened.inbox_size() == 3
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
            store.insert_inbox_many([(("a/f", "1"), None, b"x")])
            raise RuntimeError("crash inside the transaction")
    except RuntimeError:
        pass
    assert store.inbox_size() == 0
    store.close()


def _corrupt_copy(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A real statefun-local database with its pages overwritten past the header."""
    path = str(tmp_path / "corrupt.db")
    store = Store(path)
    with store.transaction():
        store.insert_inbox_many([(("a/f", str(i)), None, b"x" * 200) for i in range(200)])
    store.close()
    with open(path, "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * 8192)
    return path


@pytest.mark.parametrize(
    "make, problem",
    [
        (
            lambda tmp: _write(tmp / "text.db", b"not a database at all, just text\n" * 50),
            "is not a SQLite database",
        ),
        (lambda tmp: str(tmp / "missing-dir" / "state.db"), "check that its directory exists"),
        (lambda tmp: str(tmp), "check that its directory exists"),  # a directory
        (_corrupt_copy, "corrupt"),
        (
            lambda tmp: _foreign(tmp / "app.db"),
            "a SQLite database of another program (tables: users)",
        ),
    ],
    ids=["not-sqlite", "no-directory", "a-directory", "corrupt", "another-program"],
)
def test_an_unusable_db_file_is_one_clear_error(tmp_path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(ConfigError) as caught:
        store = Store(path)
        # Corruption past the first page shows when the data is read.
        store.inbox_size()
        store.fetch_batch(("a/f", "1"), 10)
        store.close()
    message = str(caught.value)
    assert message.startswith(f"--db {path}: ") and problem in message
    assert "\n" not in message


def _write(path, data: bytes) -> str:  # type: ignore[no-untyped-def]
    path.write_bytes(data)
    return str(path)


def _foreign(path) -> str:  # type: ignore[no-untyped-def]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    return str(path)
