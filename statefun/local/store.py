"""SQLite persistence: durable inbox, function state, timers, egress outbox, playground topics and
ingress offsets.

The inbox is the mailbox: messages wait here, not in memory, and each batch is read per address
in arrival order. Every call is synchronous and short; the engine runs them on the event-loop
thread and never awaits inside a transaction, so transactions can not interleave.

Inside a transaction the frequent writes (inbox rows added and removed, state values, outbox
rows) are collected and executed together just before COMMIT: one executemany per kind for the
whole group commit instead of a few statements per batch. Reads made inside a transaction
execute the collected writes first, so they see them.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from statefun.local.errors import ConfigError

Address = tuple[str, str]  # (function type "ns/name", id)
InboxRow = tuple[int, str | None, str | None, bytes]  # (seq, caller type, caller id, argument)
OutboxRow = tuple[int, str, str]  # (seq, egress id, JSON line)

EXPIRE_NONE = 0
EXPIRE_AFTER_WRITE = 1
EXPIRE_AFTER_INVOKE = 2

# Marks the file as ours ("SFLC"), so a SQLite file of another program is not written into.
_APPLICATION_ID = 0x53464C43
_TABLES = {"inbox", "state_spec", "state", "timers", "outbox", "ingress_offsets"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY,
    target_type TEXT NOT NULL, target_id TEXT NOT NULL,
    caller_type TEXT, caller_id TEXT,
    argument BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_target ON inbox (target_type, target_id, seq);
CREATE TABLE IF NOT EXISTS state_spec (
    function_type TEXT NOT NULL, name TEXT NOT NULL, typename TEXT NOT NULL,
    expire_mode INTEGER NOT NULL, expire_ms INTEGER NOT NULL,
    PRIMARY KEY (function_type, name)
);
CREATE TABLE IF NOT EXISTS state (
    function_type TEXT NOT NULL, function_id TEXT NOT NULL, name TEXT NOT NULL,
    value BLOB NOT NULL, written_ms INTEGER NOT NULL, touched_ms INTEGER NOT NULL,
    PRIMARY KEY (function_type, function_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timers (
    timer_id INTEGER PRIMARY KEY AUTOINCREMENT,
    fire_at_ms INTEGER NOT NULL,
    sender_type TEXT NOT NULL, sender_id TEXT NOT NULL, token TEXT,
    target_type TEXT NOT NULL, target_id TEXT NOT NULL,
    argument BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_by_token ON timers (sender_type, sender_id, token);
CREATE INDEX IF NOT EXISTS timers_by_time ON timers (fire_at_ms, timer_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    egress_id TEXT NOT NULL, line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ingress_offsets (
    source TEXT PRIMARY KEY, next_offset INTEGER NOT NULL, head_digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS playground_egress (
    seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS playground_by_topic ON playground_egress (topic, seq);
"""


_PUT_STATE = (
    "INSERT OR REPLACE INTO state (function_type, function_id, name, value, written_ms, touched_ms) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_INBOX = (
    "INSERT INTO inbox (seq, target_type, target_id, caller_type, caller_id, argument) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_OUTBOX = "INSERT INTO outbox (seq, egress_id, line) VALUES (?, ?, ?)"
_DELETE_CONSUMED = "DELETE FROM inbox WHERE target_type = ? AND target_id = ? AND seq <= ?"


@dataclass(frozen=True)
class StateSpec:
    name: str
    typename: str
    expire_mode: int
    expire_ms: int


@dataclass(frozen=True)
class StoredValue:
    value: bytes
    written_ms: int
    touched_ms: int


def _open_error(path: str, error: sqlite3.Error) -> ConfigError:
    detail = str(error)
    if "locked" in detail or "busy" in detail:
        return ConfigError(f"--db {path}: the database is in use by another statefun-local process")
    if "not a database" in detail:
        return ConfigError(
            f"--db {path}: the file is not a SQLite database ({detail}); it was not written by "
            "statefun-local — move it away or give another --db"
        )
    if "malformed" in detail or "corrupt" in detail:
        return ConfigError(
            f"--db {path}: the database is corrupt ({detail}); move it away (the state and "
            "pending messages in it are lost) or give another --db"
        )
    return ConfigError(
        f"--db {path}: can not open the database ({detail}); check that its directory exists "
        "and is writable, or give another --db"
    )


class Store:
    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        """Open (or create) the database and hold it for this process alone: a second runtime
        on the same file would break the at-most-one-request-per-address rule."""
        self.path = path
        self._in_transaction = False
        self._deferred_states: list[tuple[str, str, str, bytes, int, int]] = []
        self._deferred_inbox: list[tuple[int, str, str, str | None, str | None, bytes]] = []
        self._deferred_outbox: list[OutboxRow] = []
        self._deferred_consumed: list[tuple[str, str, int]] = []
        try:
            self.db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=0.5
            )
        except sqlite3.Error as error:
            raise _open_error(path, error) from None
        try:
            self._prepare(path, synchronous)
            # Sequence numbers are assigned here (this process owns the file) so that many rows
            # can be inserted with one executemany and their numbers known without asking.
            last = self.db.execute("SELECT MAX(seq) FROM inbox").fetchone()[0]
            self._next_seq = int(last or 0) + 1
            last_outbox = self.db.execute("SELECT MAX(seq) FROM outbox").fetchone()[0]
            self._next_outbox_seq = int(last_outbox or 0) + 1
        except sqlite3.Error as error:
            self.db.close()
            raise _open_error(path, error) from None
        except ConfigError:
            self.db.close()
            raise

    def _prepare(self, path: str, synchronous: str) -> None:
        if path != ":memory:":
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("BEGIN IMMEDIATE")  # takes the write lock; EXCLUSIVE mode keeps it
        try:
            application_id = int(self.db.execute("PRAGMA application_id").fetchone()[0])
            tables = {
                str(row[0])
                for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            tables.discard("sqlite_sequence")
            if application_id not in (0, _APPLICATION_ID) or (
                application_id == 0 and tables and not tables & _TABLES
            ):
                raise ConfigError(
                    f"--db {path}: a SQLite database of another program (tables: "
                    f"{', '.join(sorted(tables)) or 'none'}); give another --db"
                )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")  # EXCLUSIVE locking mode keeps the lock from here on
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA application_id={_APPLICATION_ID}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield
            self._write_deferred()
        except BaseException:
            self._in_transaction = False
            self._drop_deferred()
            self.db.execute("ROLLBACK")
            raise
        else:
            self._in_transaction = False
            self.db.execute("COMMIT")

    def _write_deferred(self) -> None:
        if self._deferred_states:
            self.db.executemany(_PUT_STATE, self._deferred_states)
        if self._deferred_inbox:
            self.db.executemany(_INSERT_INBOX, self._deferred_inbox)
        if self._deferred_outbox:
            self.db.executemany(_INSERT_OUTBOX, self._deferred_outbox)
        if self._deferred_consumed:
            self.db.executemany(_DELETE_CONSUMED, self._deferred_consumed)
        self._drop_deferred()

    def _drop_deferred(self) -> None:
        self._deferred_states.clear()
        self._deferred_inbox.clear()
        self._deferred_outbox.clear()
        self._deferred_consumed.clear()

    def _read(self) -> sqlite3.Connection:
        """The connection for a read: collected writes of the transaction go first."""
        if self._in_transaction:
            self._write_deferred()
        return self.db

    # --- inbox -------------------------------------------------------------------------
    def insert_inbox_many(self, messages: Sequence[tuple[Address, Address | None, bytes]]) -> int:
        """Append messages (target, caller, serialized TypedValue); the first one's seq."""
        first = self._next_seq
        self._next_seq += len(messages)
        rows = [
            (
                first + offset,
                target[0],
                target[1],
                caller[0] if caller else None,
                caller[1] if caller else None,
                argument,
            )
            for offset, (target, caller, argument) in enumerate(messages)
        ]
        if self._in_transaction:
            self._deferred_inbox += rows
        else:
            self.db.executemany(_INSERT_INBOX, rows)
        return first

    def fetch_batch(self, address: Address, limit: int) -> list[InboxRow]:
        """The oldest messages for an address, in arrival order."""
        return (
            self._read()
            .execute(
                "SELECT seq, caller_type, caller_id, argument FROM inbox "
                "WHERE target_type = ? AND target_id = ? ORDER BY seq LIMIT ?",
                (address[0], address[1], limit),
            )
            .fetchall()
        )

    def delete_inbox_through(self, address: Address, seq: int) -> None:
        """Remove a processed batch: the address's messages up to and including seq."""
        row = (address[0], address[1], seq)
        if self._in_transaction:
            self._deferred_consumed.append(row)
        else:
            self.db.execute(_DELETE_CONSUMED, row)

    def inbox_after(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        """(seq, target type, target id) of the messages after seq, in arrival order."""
        return (
            self._read()
            .execute(
                "SELECT seq, target_type, target_id FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
            .fetchall()
        )

    def inbox_size(self) -> int:
        return int(self._read().execute("SELECT COUNT(*) FROM inbox").fetchone()[0])

    # --- state -------------------------------------------------------------------------
    def load_specs(self) -> dict[str, dict[str, StateSpec]]:
        specs: dict[str, dict[str, StateSpec]] = {}
        for function_type, name, typename, mode, expire_ms in self.db.execute(
            "SELECT function_type, name, typename, expire_mode, expire_ms FROM state_spec ORDER BY rowid"
        ):
            specs.setdefault(function_type, {})[name] = StateSpec(name, typename, mode, expire_ms)
        return specs

    def register_spec(self, function_type: str, spec: StateSpec) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO state_spec (function_type, name, typename, expire_mode, expire_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (function_type, spec.name, spec.typename, spec.expire_mode, spec.expire_ms),
        )

    def read_state_rows(self, address: Address) -> list[tuple[str, bytes, int, int]]:
        """(name, value, written ms, touched ms) of an address's stored states."""
        return (
            self._read()
            .execute(
                "SELECT name, value, written_ms, touched_ms FROM state "
                "WHERE function_type = ? AND function_id = ?",
                address,
            )
            .fetchall()
        )

    def read_state(self, address: Address) -> dict[str, StoredValue]:
        return {
            name: StoredValue(bytes(value), written, touched)
            for name, value, written, touched in self.read_state_rows(address)
        }

    def put_states(
        self, address: Address, values: Iterable[tuple[str, bytes]], now_ms: int
    ) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO state (function_type, function_id, name, value, written_ms, touched_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(address[0], address[1], name, value, now_ms, now_ms) for name, value in values],
        )

    def put_state(self, address: Address, name: str, value: bytes, now_ms: int) -> None:
        self.put_states(address, [(name, value)], now_ms)

    def delete_state(self, address: Address, name: str) -> None:
        self.db.execute(
            "DELETE FROM state WHERE function_type = ? AND function_id = ? AND name = ?",
            (address[0], address[1], name),
        )

    def touch_state(self, address: Address, now_ms: int) -> None:
        self.db.execute(
            "UPDATE state SET touched_ms = ? WHERE function_type = ? AND function_id = ?",
            (now_ms, address[0], address[1]),
        )

    def scan_state(
        self, function_type: str, name: str, after_id: str, limit: int
    ) -> list[tuple[str, int, int]]:
        """(id, written ms, touched ms) of one state of a function type, ids after after_id."""
        return (
            self._read()
            .execute(
                "SELECT function_id, written_ms, touched_ms FROM state WHERE function_type = ? "
                "AND function_id > ? AND name = ? ORDER BY function_id LIMIT ?",
                (function_type, after_id, name, limit),
            )
            .fetchall()
        )

    def delete_states(self, function_type: str, name: str, ids: Iterable[str]) -> None:
        self.db.executemany(
            "DELETE FROM state WHERE function_type = ? AND function_id = ? AND name = ?",
            [(function_type, function_id, name) for function_id in ids],
        )

    # --- timers ------------------------------------------------------------------------
    def insert_timer(
        self, fire_at_ms: int, sender: Address, token: str | None, target: Address, argument: bytes
    ) -> int:
        cursor = self.db.execute(
            "INSERT INTO timers (fire_at_ms, sender_type, sender_id, token, target_type, target_id, argument) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (fire_at_ms, sender[0], sender[1], token, target[0], target[1], argument),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def cancel_timers(self, sender: Address, token: str) -> list[tuple[int, int]]:
        """Delete the pending delayed messages `sender` sent with `token`; their (fire time,
        timer id)."""
        where = "WHERE sender_type = ? AND sender_id = ? AND token = ?"
        key = (sender[0], sender[1], token)
        cancelled = [
            (int(fire_at), int(timer_id))
            for fire_at, timer_id in self.db.execute(
                f"SELECT fire_at_ms, timer_id FROM timers {where}", key
            )
        ]
        if cancelled:
            self.db.execute(f"DELETE FROM timers {where}", key)
        return cancelled

    def pending_tokens(self, sender: Address, tokens: Iterable[str]) -> dict[str, int]:
        """Of these tokens, those with a pending delayed message from `sender`: token → fire time."""
        found: dict[str, int] = {}
        for token in tokens:
            row = self.db.execute(
                "SELECT fire_at_ms FROM timers WHERE sender_type = ? AND sender_id = ? AND token = ?",
                (sender[0], sender[1], token),
            ).fetchone()
            if row is not None:
                found[token] = int(row[0])
        return found

    def timers_after(self, key: tuple[int, int], limit: int) -> list[tuple[int, int]]:
        """(fire time, timer id) of the timers ordered after `key`, earliest first."""
        return [
            (int(fire_at), int(timer_id))
            for fire_at, timer_id in self.db.execute(
                "SELECT fire_at_ms, timer_id FROM timers WHERE fire_at_ms > ? "
                "OR (fire_at_ms = ? AND timer_id > ?) ORDER BY fire_at_ms, timer_id LIMIT ?",
                (key[0], key[0], key[1], limit),
            )
        ]

    def pending_timers(self) -> list[tuple[int, int]]:
        return self.timers_after((-(2**62), 0), 2**62)

    def timer_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM timers").fetchone()[0])

    def fire_timer(self, timer_id: int) -> tuple[Address, int] | None:
        """Move a due timer's message into the inbox: (target, inbox seq), or None if the timer
        was cancelled."""
        row = self.db.execute(
            "SELECT sender_type, sender_id, target_type, target_id, argument FROM timers WHERE timer_id = ?",
            (timer_id,),
        ).fetchone()
        if row is None:
            return None
        self.db.execute("DELETE FROM timers WHERE timer_id = ?", (timer_id,))
        sender_type, sender_id, target_type, target_id, argument = row
        target = (target_type, target_id)
        return target, self.insert_inbox_many([(target, (sender_type, sender_id), bytes(argument))])

    # --- egress outbox -----------------------------------------------------------------
    def insert_outbox(self, records: Sequence[tuple[str, str]]) -> list[OutboxRow]:
        """Append (egress id, JSON line) records in order; the rows as written."""
        first = self._next_outbox_seq
        self._next_outbox_seq += len(records)
        rows = [
            (first + offset, egress_id, line) for offset, (egress_id, line) in enumerate(records)
        ]
        if self._in_transaction:
            self._deferred_outbox += rows
        else:
            self.db.executemany(_INSERT_OUTBOX, rows)
        return rows

    def read_outbox(self, limit: int, after: int = 0) -> list[OutboxRow]:
        """The oldest rows after seq `after`, as (seq, egress id, line) tuples."""
        return (
            self._read()
            .execute(
                "SELECT seq, egress_id, line FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            .fetchall()
        )

    def delete_outbox_through(self, seq: int) -> None:
        self.db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))

    # --- playground egress topics ------------------------------------------------------
    def push_playground(self, records: Sequence[tuple[str, bytes]]) -> None:
        self.db.executemany("INSERT INTO playground_egress (topic, payload) VALUES (?, ?)", records)

    def pop_playground(self, topic: str) -> bytes | None:
        """Remove and return the oldest payload of a topic."""
        row = self.db.execute(
            "SELECT seq, payload FROM playground_egress WHERE topic = ? ORDER BY seq LIMIT 1",
            (topic,),
        ).fetchone()
        if row is None:
            return None
        self.db.execute("DELETE FROM playground_egress WHERE seq = ?", (row[0],))
        return bytes(row[1])

    def playground_counts(self) -> dict[str, int]:
        return {
            str(topic): int(count)
            for topic, count in self.db.execute(
                "SELECT topic, COUNT(*) FROM playground_egress GROUP BY topic"
            )
        }

    # --- ingress offsets ---------------------------------------------------------------
    def get_offset(self, source: str) -> tuple[int, str]:
        """The next unread byte of a source and a digest of the file's head when it was read."""
        row = self.db.execute(
            "SELECT next_offset, head_digest FROM ingress_offsets WHERE source = ?", (source,)
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, "")

    def set_offset(self, source: str, next_offset: int, head_digest: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO ingress_offsets (source, next_offset, head_digest) "
            "VALUES (?, ?, ?)",
            (source, next_offset, head_digest),
        )
