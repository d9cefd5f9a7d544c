"""SQLite persistence: durable inbox, function state, timers, egress outbox and ingress offsets.

Every call is synchronous and short; the engine runs them on the event-loop thread and never
awaits inside a transaction, so transactions can not interleave.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

from statefun.local.errors import ConfigError

Address = tuple[str, str]  # (function type "ns/name", id)

EXPIRE_NONE = 0
EXPIRE_AFTER_WRITE = 1
EXPIRE_AFTER_INVOKE = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY,
    target_type TEXT NOT NULL, target_id TEXT NOT NULL,
    caller_type TEXT, caller_id TEXT,
    argument BLOB NOT NULL
);
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
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    egress_id TEXT NOT NULL, line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ingress_offsets (
    source TEXT PRIMARY KEY, next_offset INTEGER NOT NULL, head_digest TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Envelope:
    """A message waiting in the inbox for its target function."""

    seq: int
    target: Address
    caller: Address | None
    argument: bytes  # a serialized TypedValue


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


OutboxRow = tuple[int, str, str]  # (seq, egress id, JSON line)


class Store:
    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        """Open (or create) the database and hold it for this process alone: a second runtime
        on the same file would break the at-most-one-request-per-address rule."""
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.5)
        try:
            if path != ":memory:":
                self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous}")
            self.db.execute("BEGIN IMMEDIATE")  # takes the write lock; EXCLUSIVE mode keeps it
            self.db.execute("COMMIT")
            self.db.executescript(_SCHEMA)
        except sqlite3.OperationalError as error:
            self.db.close()
            if "locked" in str(error):
                raise ConfigError(
                    f"{path}: the database is in use by another statefun-local process"
                ) from None
            raise ConfigError(f"{path}: can not open the SQLite database: {error}") from None
        # Sequence numbers are assigned here (this process owns the file) so that many
        # messages can be inserted with one executemany.
        last = self.db.execute("SELECT MAX(seq) FROM inbox").fetchone()[0]
        self._next_seq = int(last or 0) + 1

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._in_transaction = False

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit inside a transaction that can fail alone."""
        self.db.execute("SAVEPOINT unit")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO unit")
            self.db.execute("RELEASE unit")
            raise
        else:
            self.db.execute("RELEASE unit")

    # --- inbox -------------------------------------------------------------------------
    def insert_inbox(self, target: Address, caller: Address | None, argument: bytes) -> Envelope:
        return self.insert_inbox_many([(target, caller, argument)])[0]

    def insert_inbox_many(
        self, messages: list[tuple[Address, Address | None, bytes]]
    ) -> list[Envelope]:
        first = self._next_seq
        self._next_seq += len(messages)
        envelopes = [
            Envelope(first + offset, target, caller, argument)
            for offset, (target, caller, argument) in enumerate(messages)
        ]
        self.db.executemany(
            "INSERT INTO inbox (seq, target_type, target_id, caller_type, caller_id, argument) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    e.seq,
                    e.target[0],
                    e.target[1],
                    e.caller[0] if e.caller else None,
                    e.caller[1] if e.caller else None,
                    e.argument,
                )
                for e in envelopes
            ],
        )
        return envelopes

    def delete_inbox(self, seqs: Iterable[int]) -> None:
        self.db.executemany("DELETE FROM inbox WHERE seq = ?", ((seq,) for seq in seqs))

    def pending_inbox(self) -> list[Envelope]:
        rows = self.db.execute(
            "SELECT seq, target_type, target_id, caller_type, caller_id, argument FROM inbox ORDER BY seq"
        ).fetchall()
        return [
            Envelope(
                seq, (t_type, t_id), (c_type, c_id) if c_type is not None else None, bytes(arg)
            )
            for seq, t_type, t_id, c_type, c_id, arg in rows
        ]

    def inbox_size(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])

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

    def read_state(self, address: Address) -> dict[str, StoredValue]:
        return {
            name: StoredValue(bytes(value), written, touched)
            for name, value, written, touched in self.db.execute(
                "SELECT name, value, written_ms, touched_ms FROM state "
                "WHERE function_type = ? AND function_id = ?",
                address,
            )
        }

    def put_state(self, address: Address, name: str, value: bytes, now_ms: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO state (function_type, function_id, name, value, written_ms, touched_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (address[0], address[1], name, value, now_ms, now_ms),
        )

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

    def cancel_timers(self, sender: Address, token: str) -> list[int]:
        """Delete the pending delayed messages `sender` sent with `token`; their timer ids."""
        where = "WHERE sender_type = ? AND sender_id = ? AND token = ?"
        key = (sender[0], sender[1], token)
        ids = [int(row[0]) for row in self.db.execute(f"SELECT timer_id FROM timers {where}", key)]
        if ids:
            self.db.execute(f"DELETE FROM timers {where}", key)
        return ids

    def pending_timers(self) -> list[tuple[int, int]]:
        return [
            (int(fire_at), int(timer_id))
            for timer_id, fire_at in self.db.execute("SELECT timer_id, fire_at_ms FROM timers")
        ]

    def fire_timer(self, timer_id: int) -> Envelope | None:
        """Move a due timer into the inbox; None when it was cancelled meanwhile."""
        row = self.db.execute(
            "SELECT sender_type, sender_id, target_type, target_id, argument FROM timers WHERE timer_id = ?",
            (timer_id,),
        ).fetchone()
        if row is None:
            return None
        self.db.execute("DELETE FROM timers WHERE timer_id = ?", (timer_id,))
        sender_type, sender_id, target_type, target_id, argument = row
        return self.insert_inbox(
            (target_type, target_id), (sender_type, sender_id), bytes(argument)
        )

    # --- egress outbox -----------------------------------------------------------------
    def insert_outbox(self, records: list[tuple[str, str]]) -> None:
        """Append (egress id, JSON line) records in order."""
        self.db.executemany("INSERT INTO outbox (egress_id, line) VALUES (?, ?)", records)

    def read_outbox(self, limit: int) -> list[OutboxRow]:
        """The oldest rows, as (seq, egress id, line) tuples."""
        return self.db.execute(
            "SELECT seq, egress_id, line FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()

    def delete_outbox_through(self, seq: int) -> None:
        self.db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))

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
