"""The dispatcher: per-address batches read from the durable inbox, request-reply calls, and
committing their results.

Messages wait in the SQLite inbox, not in memory. In memory there is only which addresses have
messages waiting (at most `max_tracked` of them; beyond that the inbox is scanned for the rest),
so neither a large backlog nor a restart with a full inbox grows the process. At most one request
is in flight per address; what arrives meanwhile goes out as its next batch (up to
maxNumBatchRequests), read oldest first. A batch's effects — state mutations, outgoing and
delayed messages, cancellations, egress records and the removal of the consumed inbox rows — are
committed in one transaction before the address takes its next batch.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import sqlite3
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from google.protobuf import message

from statefun import request_reply_pb2 as pb
from statefun.local.client import FunctionClient, rules_for
from statefun.local.committer import Committer
from statefun.local.config import (
    PLAYGROUND_EGRESS,
    FunctionEndpoint,
    ModuleConfig,
)
from statefun.local.egress import EgressWriter, Sink, egress_line, playground_record
from statefun.local.errors import LocalRuntimeError, ProtocolError
from statefun.local.store import (
    EXPIRE_AFTER_INVOKE,
    EXPIRE_AFTER_WRITE,
    EXPIRE_NONE,
    Address,
    InboxRow,
    OutboxRow,
    StateSpec,
    Store,
)
from statefun.local.wire import encode_address, encode_field, encode_invocation, typed_value

UNSET_TYPENAME = "io.statefun.types/unset"
# Each round must register at least one new state, so a function converges after as many rounds
# as it has states (2.x-style functions discover theirs one at a time); the cap only bounds a
# function that keeps inventing new names.
_MAX_REGISTRATION_ROUNDS = 1000
DEFAULT_MAX_BACKLOG = 1_000_000
DEFAULT_MAX_TRACKED = 200_000
_TIMER_WINDOW = 10_000
_PLAYGROUND_TOPIC_CAPACITY = 1 << 20  # the playground's queue size per topic
_SCAN_ROWS = 5_000

# An address's place in the dispatcher (absent: nothing of it waits, or it is not tracked).
_QUEUED = 1  # waits in `ready`
_RUNNING = 2  # a batch is in flight
_RUNNING_MORE = 3  # in flight, and messages arrived meanwhile
_PARKED = 4  # waits for its function type's first call to settle the state registration

Message = tuple[Address, Address | None, bytes]


def tune_garbage_collector() -> None:
    """The dispatcher makes many short-lived objects and few cycles: collecting the young
    generation every 50,000 allocations instead of 700 cuts its CPU per message by about a fifth."""
    gc.set_threshold(50_000, 20, 100)


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_address(address: pb.Address) -> Address:
    return (f"{address.namespace}/{address.type}", address.id)


def to_pb_address(address: Address) -> pb.Address:
    namespace, _, name = address[0].partition("/")
    return pb.Address(namespace=namespace, type=name, id=address[1])


@dataclass
class BatchEffects:
    """What one function reply asks for, checked against the module before it is committed."""

    address: Address
    consumed: int  # messages of the batch
    last_seq: int  # inbox seq of the batch's last message
    writes: list[tuple[str, bytes]]
    deletes: list[str]
    messages: list[Message]
    # In the function's call order: a delayed send (delay ms, token, target, argument), or the
    # token of a cancellation; a cancellation affects only the sends before it.
    delayed: list[tuple[int, str | None, Address, bytes] | str]
    egress: list[tuple[str, str]]
    playground: list[tuple[str, bytes]]
    expired: list[str]
    touch: bool  # the type has after-invoke states: every invocation refreshes them


@dataclass
class Committed:
    first_seq: int
    messages: list[Message]
    timers: list[tuple[int, int]]
    cancelled: list[tuple[int, int]]
    outbox: list[OutboxRow]
    playground: list[tuple[str, bytes]]
    consumed: int


def is_expired(spec: StateSpec, written_ms: int, touched_ms: int, at_ms: int) -> bool:
    if spec.expire_mode == EXPIRE_AFTER_WRITE:
        return at_ms - written_ms >= spec.expire_ms
    if spec.expire_mode == EXPIRE_AFTER_INVOKE:
        return at_ms - max(written_ms, touched_ms) >= spec.expire_ms
    return False


class _TypeWire:
    """Per function type: the registered states and their pre-encoded request fields."""

    def __init__(self, specs: dict[str, StateSpec]) -> None:
        self.specs = specs
        self.fields = [(spec, encode_field(1, spec.name.encode())) for spec in specs.values()]
        self.expiring = any(spec.expire_mode != EXPIRE_NONE for spec in specs.values())
        self.touch = any(spec.expire_mode == EXPIRE_AFTER_INVOKE for spec in specs.values())


class Engine:
    def __init__(
        self,
        config: ModuleConfig,
        store: Store,
        sinks: dict[str, Sink],
        egress_types: dict[str, type[message.Message]] | None = None,
        log: Callable[[str], None] | None = None,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        max_tracked: int = DEFAULT_MAX_TRACKED,
        egress_topic_types: dict[str, dict[str, type[message.Message]]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.log = log or (
            lambda text: print(f"statefun-local: {text}", file=sys.stderr, flush=True)
        )
        self.client = FunctionClient(log=self.log)
        self.committer = Committer(store)
        self.egress_writer = EgressWriter(store, sinks)
        self.committer.also_in_each_transaction(self.egress_writer.cleanup)
        self.committer.after_each_transaction(self._write_egress)
        self._endpoints: dict[str, FunctionEndpoint | None] = {}
        self.egress_types = egress_types or {}
        # egress id -> topic (Kinesis: stream) -> message, for egresses with a type per topic
        self.egress_topic_types = egress_topic_types or {}
        self.specs: dict[str, dict[str, StateSpec]] = {}
        self._wire: dict[str, _TypeWire] = {}
        self.max_backlog = max_backlog  # accepted messages not yet processed, before ingress waits
        self.max_tracked = max_tracked
        # Dispatch: which addresses have messages waiting, and the state of each.
        self.tracked: dict[Address, int] = {}
        self.ready: deque[Address] = deque()
        self._untracked_after: int | None = None  # inbox rows after this seq may be untracked
        self._known_types: set[str] = set()  # state registration settled
        self._probing: set[str] = set()
        self._parked: dict[str, list[Address]] = {}
        self.workers = 0
        self.concurrency = self.client.pool_size
        self._worker_tasks: set[asyncio.Task[None]] = set()
        # Backlog and admission of ingress.
        self.inbox_rows = 0
        self.reserved = 0
        self._admission: deque[tuple[int, asyncio.Future[None]]] = deque()
        # Timers: the earliest pending ones in memory, the rest in the database.
        self.timer_heap: list[tuple[int, int]] = []
        self._timer_horizon: tuple[int, int] | None = None  # heap holds every key <= this
        self._cancelled_timers: set[int] = set()
        self.timers_pending = 0
        self.timer_wakeup = asyncio.Event()
        self._playground_counts: dict[str, int] = {}
        self._dropped_playground = 0
        self.failure: LocalRuntimeError | None = None
        self.failed = asyncio.Event()
        self.progress = asyncio.Event()
        self.messages_processed = 0
        self.registrations_requested = 0  # replies asking for state registration
        self._tasks: list[asyncio.Task[None]] = []
        self._cleanup_scheduled = False
        self._closing = False

    @property
    def backlog(self) -> int:
        """Messages accepted (or admitted) and not yet processed."""
        return self.inbox_rows + self.reserved

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Recover: registered states, unwritten egress, pending messages and timers."""
        await self.client.start()
        for function_type, specs in self.store.load_specs().items():
            self._set_specs(function_type, specs)
            self._known_types.add(function_type)
        rewritten = self.egress_writer.recover()
        self.inbox_rows = self.store.inbox_size()
        self.timers_pending = self.store.timer_count()
        self._load_timers(None)
        if self.config.playground_egress is not None:
            self._playground_counts = self.store.playground_counts()
        if self.inbox_rows or self.timers_pending or rewritten:
            self.log(
                f"recovered {self.inbox_rows} unprocessed messages and {self.timers_pending} "
                "pending timers"
                + (f"; wrote {rewritten} egress records again" if rewritten else "")
            )
        if self.inbox_rows:
            self._untracked_after = 0  # found by scanning the inbox, a window at a time
            self._pump()
        for job in (self.committer.run(), self._run_timers(), self._sweep_expired_state()):
            task = asyncio.create_task(job)
            task.add_done_callback(self._background_done)
            self._tasks.append(task)

    async def close(self) -> None:
        """Stop: calls in flight are abandoned (their batches are sent again next time), but
        replies already received and waiting for the next group commit are committed."""
        self._closing = True
        tasks = self._tasks + list(self._worker_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, waiter in self._admission:
            waiter.cancel()
        if self.failure is None:
            try:
                self.committer.commit_queued()
            except sqlite3.Error as error:
                self.fail(self._describe_failure(error, "committing at shutdown"))
        await self.client.close()

    def _background_done(self, task: "asyncio.Task[None]") -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.fail(self._describe_failure(error, "internal failure"))

    def _describe_failure(self, error: BaseException, context: str) -> LocalRuntimeError:
        if isinstance(error, LocalRuntimeError):
            return error
        if isinstance(error, sqlite3.Error):
            return LocalRuntimeError(
                f"--db {self.store.path}: the database failed ({type(error).__name__}: {error}); "
                "if it is corrupt, move it away (its state and pending messages are lost) or "
                "give another --db"
            )
        return LocalRuntimeError(f"{context}: {type(error).__name__}: {error}")

    def fail(self, error: LocalRuntimeError) -> None:
        if self.failure is None:
            self.failure = error
            self.failed.set()
            self.progress.set()
            while self._admission:
                _, waiter = self._admission.popleft()
                if not waiter.done():
                    waiter.set_exception(error)

    def is_idle(self) -> bool:
        return self._nothing_but_timers() and self.timers_pending == 0

    def only_timers_pending(self) -> bool:
        return self._nothing_but_timers() and self.timers_pending > 0

    def _nothing_but_timers(self) -> bool:
        return (
            self.inbox_rows == 0
            and self.reserved == 0
            and not self.tracked
            and not self.committer.busy
            and not self.egress_writer.pending
        )

    def next_timer_ms(self) -> int | None:
        """When the earliest pending delayed message fires (epoch ms)."""
        self._skip_cancelled_timers()
        return self.timer_heap[0][0] if self.timer_heap else None

    # --- accepting messages ------------------------------------------------------------
    def _fits(self, count: int) -> bool:
        backlog = self.backlog
        return backlog + count <= self.max_backlog or backlog == 0

    async def admit(self, count: int) -> None:
        """Reserve room for `count` ingress messages, waiting (in arrival order) while the
        backlog is full; pass the same count to accept(). One request larger than the whole
        bound is admitted when the backlog is empty."""
        if self.failure is not None:
            raise self.failure
        if not self._admission and self._fits(count):
            self.reserved += count
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._admission.append((count, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.reserved -= count  # admitted just as it was cancelled
            else:
                self._admission = deque(
                    entry for entry in self._admission if entry[1] is not waiter
                )
            self._admit_waiting()
            raise

    def release(self, count: int) -> None:
        """Give back admitted room that will not be used (a request refused after admission)."""
        self.reserved -= count
        self._admit_waiting()

    def _admit_waiting(self) -> None:
        while self._admission:
            count, waiter = self._admission[0]
            if waiter.done():
                self._admission.popleft()
                continue
            if not self._fits(count):
                return
            self._admission.popleft()
            self.reserved += count
            waiter.set_result(None)

    async def room_for_more(self) -> None:
        """Wait until the backlog is below its bound (before reading more input)."""
        await self.admit(1)
        self.release(1)

    def accept(
        self,
        messages: Sequence[Message],
        offset: tuple[str, int, str] | None = None,
        admitted: int = 0,
    ) -> "asyncio.Future[int]":
        """Make messages durable (with the source position (source, next offset, head digest),
        in the same transaction); they are dispatched once committed. Await the result before
        acknowledging them to a producer. `admitted` is what admit() reserved for them."""

        def apply(store: Store) -> int:
            first = store.insert_inbox_many(messages) if messages else 0
            if offset is not None:
                store.set_offset(*offset)
            return first

        def after(first: int) -> None:
            self.reserved -= admitted
            self.inbox_rows += len(messages)
            for position, (target, _, _) in enumerate(messages):
                self.note_pending(target, first + position)
            self._admit_waiting()

        return self.committer.submit(apply, after)

    # --- dispatching -------------------------------------------------------------------
    def note_pending(self, address: Address, seq: int) -> None:
        """A message for `address` was committed to the inbox with sequence number `seq`."""
        flags = self.tracked.get(address)
        if flags is None:
            if len(self.tracked) >= self.max_tracked:
                if self._untracked_after is None:
                    self._untracked_after = seq - 1
                return
            self.tracked[address] = _QUEUED
            self.ready.append(address)
            self._pump()
        elif flags == _RUNNING:
            self.tracked[address] = _RUNNING_MORE

    def _track_untracked(self) -> None:
        """Find, in arrival order, addresses with waiting messages that are not tracked."""
        cursor = self._untracked_after
        assert cursor is not None
        room = self.max_tracked - len(self.tracked)
        if room <= 0:
            return
        limit = min(_SCAN_ROWS, max(room * 2, 256))
        rows = self.store.inbox_after(cursor, limit)
        for seq, target_type, target_id in rows:
            address = (target_type, target_id)
            if address not in self.tracked:
                if len(self.tracked) >= self.max_tracked:
                    self._untracked_after = cursor
                    return
                self.tracked[address] = _QUEUED
                self.ready.append(address)
            cursor = seq
        self._untracked_after = None if len(rows) < limit else cursor

    def _pump(self) -> None:
        if self._closing:
            return
        if (
            self._untracked_after is not None
            and len(self.ready) < self.concurrency
            and len(self.tracked) < self.max_tracked
        ):
            self._track_untracked()
        while self.ready and self.workers < self.concurrency and self.failure is None:
            self.workers += 1
            task = asyncio.create_task(self._work())
            self._worker_tasks.add(task)
            task.add_done_callback(self._worker_tasks.discard)

    async def _work(self) -> None:
        try:
            while self.failure is None:
                if not self.ready and self._untracked_after is not None:
                    self._track_untracked()
                if not self.ready:
                    return
                await self._run_batch(self.ready.popleft())
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.fail(self._describe_failure(error, "internal failure while dispatching"))
        finally:
            self.workers -= 1

    async def _run_batch(self, address: Address) -> None:
        function_type = address[0]
        endpoint = self.endpoint_for(function_type)
        if endpoint is None:
            raise ProtocolError(
                f"no endpoint in {self.config.file} serves function type {function_type!r}"
            )
        probe = function_type not in self._known_types
        if probe:
            if function_type in self._probing:
                # Until its first call settles which states the type has, every other call
                # would only come back asking for them: wait for it instead.
                self.tracked[address] = _PARKED
                self._parked.setdefault(function_type, []).append(address)
                return
            self._probing.add(function_type)
        self.tracked[address] = _RUNNING
        try:
            rows = self.store.fetch_batch(address, endpoint.max_batch)
            if rows:
                effects = await self._invoke(address, endpoint, rows)
                await self.committer.submit(self._apply_effects(effects), self._after_effects)
                self.messages_processed += len(rows)
                if probe:
                    self._known_types.add(function_type)
        finally:
            if probe:
                self._probing.discard(function_type)
                for parked in self._parked.pop(function_type, []):
                    self.tracked[parked] = _QUEUED
                    self.ready.append(parked)
        flags = self.tracked.get(address)
        if flags == _RUNNING_MORE or (rows and len(rows) == endpoint.max_batch):
            self.tracked[address] = _QUEUED
            self.ready.append(address)
        else:
            del self.tracked[address]
        self.progress.set()
        self._pump()

    def _set_specs(self, function_type: str, specs: dict[str, StateSpec]) -> None:
        self.specs[function_type] = specs
        self._wire[function_type] = _TypeWire(specs)

    def _build_request(
        self, address: Address, rows: list[InboxRow], at_ms: int
    ) -> tuple[bytes, list[str]]:
        """The ToFunction bytes (encoded here: the stored arguments are embedded as they are)."""
        parts = [encode_field(1, encode_address(address))]
        expired: list[str] = []
        wire = self._wire.get(address[0])
        if wire is not None and wire.fields:
            stored = {row[0]: row for row in self.store.read_state_rows(address)}
            for spec, name_field in wire.fields:
                current = stored.get(spec.name)
                if current is not None and wire.expiring:
                    if is_expired(spec, current[2], current[3], at_ms):
                        expired.append(spec.name)
                        current = None
                if current is None:
                    parts.append(encode_field(2, name_field))
                else:
                    value = encode_field(2, typed_value(spec.typename, current[1]))
                    parts.append(encode_field(2, name_field + value))
        for _, caller_type, caller_id, argument in rows:
            caller = None if caller_type is None else encode_address((caller_type, str(caller_id)))
            parts.append(encode_invocation(argument, caller))
        return encode_field(100, b"".join(parts)), expired

    async def _invoke(
        self, address: Address, endpoint: FunctionEndpoint, rows: list[InboxRow]
    ) -> BatchEffects:
        url = endpoint.url_for(address[0])
        rules = rules_for(endpoint.transport)
        for _ in range(_MAX_REGISTRATION_ROUNDS):
            at_ms = now_ms()
            body, expired = self._build_request(address, rows, at_ms)
            response = await self.client.call(
                url,
                body,
                endpoint.call_timeout_s,
                endpoint.connect_timeout_s,
                rules,
                endpoint.read_timeout_s,
            )
            if response.HasField("incomplete_invocation_context"):
                self.registrations_requested += 1
                missing = response.incomplete_invocation_context.missing_values
                if not self._register(address[0], missing, url):
                    names = ", ".join(sorted(spec.state_name for spec in missing)) or "none"
                    raise ProtocolError(
                        f"{url} reports missing state for {address[0]} ({names}) although the "
                        "request carried every state it asked for before"
                    )
                continue
            return self._effects(address, rows, response.invocation_result, expired, url)
        raise ProtocolError(
            f"{url} still reports missing state for {address[0]} after {_MAX_REGISTRATION_ROUNDS} registrations"
        )

    def _register(
        self, function_type: str, missing: Iterable[pb.FromFunction.PersistedValueSpec], url: str
    ) -> bool:
        """Register the states not registered yet; whether there were any."""
        registered = dict(self.specs.get(function_type, {}))
        new_specs: list[StateSpec] = []
        for value_spec in missing:
            typename = value_spec.type_typename or UNSET_TYPENAME
            mode = int(value_spec.expiration_spec.mode)
            expire_ms = (
                int(value_spec.expiration_spec.expire_after_millis) if mode != EXPIRE_NONE else 0
            )
            existing = registered.get(value_spec.state_name)
            if existing is not None:
                if existing.typename != typename:
                    raise ProtocolError(
                        f"{url}: state '{value_spec.state_name}' of {function_type} is registered with type "
                        f"{existing.typename}, but the function now declares {typename}"
                    )
                continue  # like Flink: an existing state keeps its expiration
            new_specs.append(StateSpec(value_spec.state_name, typename, mode, expire_ms))
        with self.store.transaction():
            for spec in new_specs:
                self.store.register_spec(function_type, spec)
        for spec in new_specs:
            registered[spec.name] = spec
        self._set_specs(function_type, registered)
        return bool(new_specs)

    def _effects(
        self,
        address: Address,
        rows: list[InboxRow],
        result: pb.FromFunction.InvocationResponse,
        expired: list[str],
        url: str,
    ) -> BatchEffects:
        registered = self.specs.get(address[0], {})
        writes: list[tuple[str, bytes]] = []
        deletes: list[str] = []
        for mutation in result.state_mutations:
            spec = registered.get(mutation.state_name)
            if spec is None:
                raise ProtocolError(
                    f"{url}: {address[0]} mutated state '{mutation.state_name}', which it never declared"
                )
            if mutation.mutation_type == pb.FromFunction.PersistedValueMutation.MODIFY:
                if mutation.state_value.typename != spec.typename:
                    raise ProtocolError(
                        f"{url}: {address[0]} wrote state '{spec.name}' as {mutation.state_value.typename}, "
                        f"but it is registered as {spec.typename}"
                    )
                writes.append((spec.name, mutation.state_value.value))
            else:
                deletes.append(spec.name)
        messages: list[Message] = []
        for outgoing in result.outgoing_messages:
            target = self._checked_target(outgoing.target, address, url)
            messages.append((target, address, outgoing.argument.SerializeToString()))
        delayed = self._delayed(address, result.delayed_invocations, url)
        egress: list[tuple[str, str]] = []
        playground: list[tuple[str, bytes]] = []
        for record in result.outgoing_egresses:
            egress_id = f"{record.egress_namespace}/{record.egress_type}"
            spec_egress = self.config.egresses.get(egress_id)
            if spec_egress is None:
                raise ProtocolError(
                    f"{url}: {address[0]} sent to egress {egress_id!r}, which {self.config.file} does not define"
                )
            if spec_egress.kind == PLAYGROUND_EGRESS:
                playground.append(playground_record(spec_egress, record.argument))
                continue
            egress.append(
                (
                    egress_id,
                    egress_line(
                        spec_egress,
                        record.argument,
                        self.egress_types.get(egress_id),
                        self.egress_topic_types.get(egress_id),
                    ),
                )
            )
        wire = self._wire.get(address[0])
        return BatchEffects(
            address,
            len(rows),
            rows[-1][0],
            writes,
            deletes,
            messages,
            delayed,
            egress,
            self._within_playground_capacity(playground),
            expired,
            wire is not None and wire.touch,
        )

    def _delayed(
        self,
        sender: Address,
        invocations: Iterable[pb.FromFunction.DelayedInvocation],
        url: str,
    ) -> list[tuple[int, str | None, Address, bytes] | str]:
        delayed: list[tuple[int, str | None, Address, bytes] | str] = []
        for later in invocations:
            if later.is_cancellation_request:
                if not later.cancellation_token:
                    raise ProtocolError(
                        f"{url}: a cancellation request without a cancellation token"
                    )
                delayed.append(later.cancellation_token)
                continue
            target = self._checked_target(later.target, sender, url)
            delayed.append(
                (
                    max(int(later.delay_in_ms), 0),
                    later.cancellation_token or None,
                    target,
                    later.argument.SerializeToString(),
                )
            )
        tokens = {op[1] for op in delayed if not isinstance(op, str) and op[1] is not None}
        if tokens:
            # Flink keeps one pending delayed message per (sender, token) and fails the job when
            # a second one is sent: a program relying on two would break there.
            pending = self.store.pending_tokens(sender, tokens)
            at_ms = now_ms()
            for op in delayed:
                if isinstance(op, str):
                    pending.pop(op, None)
                    continue
                delay, token = op[0], op[1]
                if token is None:
                    continue
                if token in pending:
                    raise ProtocolError(
                        f"{url}: {sender[0]} (id {sender[1]!r}) sent a delayed message with "
                        f"cancellation token {token!r} while one with that token is still "
                        f"pending (due at {_clock(pending[token])}); Flink fails the job here "
                        '("Trying to associate a message with cancellation token ... but a message '
                        'with the same cancellation token exists"): cancel the first one or use '
                        "another token"
                    )
                pending[token] = at_ms + delay
        return delayed

    def _within_playground_capacity(
        self, records: list[tuple[str, bytes]]
    ) -> list[tuple[str, bytes]]:
        kept: list[tuple[str, bytes]] = []
        for topic, payload in records:
            if self._playground_counts.get(topic, 0) >= _PLAYGROUND_TOPIC_CAPACITY:
                self._dropped_playground += 1
                if self._dropped_playground % 10_000 == 1:
                    self.log(
                        f"playground topic {topic!r} holds {_PLAYGROUND_TOPIC_CAPACITY:,} "
                        "records nobody fetched; dropping new ones, as the playground does "
                        f"({self._dropped_playground} so far)"
                    )
                continue
            kept.append((topic, payload))
        return kept

    def _checked_target(self, target: pb.Address, sender: Address, url: str) -> Address:
        address = parse_address(target)
        if self.endpoint_for(address[0]) is None:
            raise ProtocolError(
                f"{url}: {sender[0]} sent a message to {address[0]!r}, which no endpoint in {self.config.file} serves"
            )
        return address

    def _apply_effects(self, effects: BatchEffects) -> Callable[[Store], Committed]:
        def apply(store: Store) -> Committed:
            at_ms = now_ms()
            address = effects.address
            for name in effects.expired:
                store.delete_state(address, name)
            if effects.touch:
                store.touch_state(address, at_ms)
            if effects.writes:
                store.put_states(address, effects.writes, at_ms)
            for name in effects.deletes:
                store.delete_state(address, name)
            first = store.insert_inbox_many(effects.messages) if effects.messages else 0
            cancelled: list[tuple[int, int]] = []
            timers: list[tuple[int, int]] = []
            for operation in effects.delayed:
                if isinstance(operation, str):
                    cancelled += store.cancel_timers(address, operation)
                    continue
                delay, token, target, argument = operation
                fire_at = at_ms + delay
                timers.append(
                    (fire_at, store.insert_timer(fire_at, address, token, target, argument))
                )
            outbox = store.insert_outbox(_joined(effects.egress)) if effects.egress else []
            if effects.playground:
                store.push_playground(effects.playground)
            store.delete_inbox_through(address, effects.last_seq)
            return Committed(
                first,
                effects.messages,
                timers,
                cancelled,
                outbox,
                effects.playground,
                effects.consumed,
            )

        return apply

    def _after_effects(self, committed: Committed) -> None:
        self.inbox_rows += len(committed.messages) - committed.consumed
        for position, (target, _, _) in enumerate(committed.messages):
            self.note_pending(target, committed.first_seq + position)
        self._timers_committed(committed.timers, committed.cancelled)
        if committed.outbox:
            self.egress_writer.add(committed.outbox)
        for topic, _ in committed.playground:
            self._playground_counts[topic] = self._playground_counts.get(topic, 0) + 1
        self._admit_waiting()

    def _write_egress(self) -> None:
        self.egress_writer.write_added()
        if self.egress_writer.pending:
            self._schedule_cleanup()

    def endpoint_for(self, function_type: str) -> FunctionEndpoint | None:
        if function_type in self._endpoints:
            return self._endpoints[function_type]
        endpoint = self._endpoints[function_type] = self.config.endpoint_for(function_type)
        return endpoint

    def _schedule_cleanup(self) -> None:
        """Delete the outbox rows of written lines: with the next transaction, or in one of their
        own when nothing else is being committed."""
        if self._cleanup_scheduled:
            return
        self._cleanup_scheduled = True

        def check() -> None:
            self._cleanup_scheduled = False
            if self.egress_writer.pending and not self.committer.busy and not self._closing:
                self.committer.submit(lambda store: None).add_done_callback(
                    lambda _: self.progress.set()
                )

        asyncio.get_running_loop().call_soon(check)

    # --- the playground's topics ------------------------------------------------------
    def pop_playground(self, topic: str) -> bytes | None:
        """The oldest record of a playground egress topic, removed (GET /<topic>)."""
        if not self._playground_counts.get(topic):
            return None
        payload = self.store.pop_playground(topic)
        if payload is not None:
            self._playground_counts[topic] -= 1
        return payload

    # --- timers ------------------------------------------------------------------------
    def _load_timers(self, after: tuple[int, int] | None) -> None:
        rows = self.store.timers_after(after or (-(2**62), 0), _TIMER_WINDOW)
        self.timer_heap = rows  # sorted, hence a heap
        self._timer_horizon = rows[-1] if len(rows) == _TIMER_WINDOW else None
        self._cancelled_timers.clear()

    def _timers_committed(
        self, added: list[tuple[int, int]], cancelled: list[tuple[int, int]]
    ) -> None:
        if not added and not cancelled:
            return
        self.timers_pending += len(added) - len(cancelled)
        horizon = self._timer_horizon
        for key in cancelled:
            if horizon is None or key <= horizon:
                self._cancelled_timers.add(key[1])
        for key in added:
            if horizon is None or key <= horizon:
                heapq.heappush(self.timer_heap, key)
        if len(self.timer_heap) > 2 * _TIMER_WINDOW:
            # Keep the earliest in memory; the later ones are read again when their turn comes.
            kept = sorted(self.timer_heap)[:_TIMER_WINDOW]
            self.timer_heap = kept
            self._timer_horizon = kept[-1]
            self._cancelled_timers &= {timer_id for _, timer_id in kept}
        self.timer_wakeup.set()

    def _skip_cancelled_timers(self) -> None:
        while True:
            while self.timer_heap and self.timer_heap[0][1] in self._cancelled_timers:
                self._cancelled_timers.discard(heapq.heappop(self.timer_heap)[1])
            if self.timer_heap or self._timer_horizon is None:
                return
            self._load_timers(self._timer_horizon)

    async def _run_timers(self) -> None:
        while True:
            self.timer_wakeup.clear()
            self._skip_cancelled_timers()
            if not self.timer_heap:
                await self.timer_wakeup.wait()
                continue
            wait_s = (self.timer_heap[0][0] - now_ms()) / 1000
            if wait_s > 0:
                try:
                    await asyncio.wait_for(self.timer_wakeup.wait(), timeout=wait_s)
                except asyncio.TimeoutError:
                    pass
                continue
            due: list[int] = []
            at_ms = now_ms()
            while self.timer_heap and self.timer_heap[0][0] <= at_ms and len(due) < 5_000:
                timer_id = heapq.heappop(self.timer_heap)[1]
                if timer_id in self._cancelled_timers:
                    self._cancelled_timers.discard(timer_id)
                else:
                    due.append(timer_id)

            def fire(store: Store, due: list[int] = due) -> list[tuple[Address, int]]:
                fired: list[tuple[Address, int]] = []
                for timer_id in due:
                    moved = store.fire_timer(timer_id)
                    if moved is not None:
                        fired.append(moved)
                return fired

            def after(fired: list[tuple[Address, int]]) -> None:
                self.timers_pending -= len(fired)
                self.inbox_rows += len(fired)
                for target, seq in fired:
                    self.note_pending(target, seq)

            await self.committer.submit(fire, after)
            self.progress.set()

    # --- expiration --------------------------------------------------------------------
    async def _sweep_expired_state(self) -> None:
        """Delete expired state in the background, as Flink's state TTL cleanup does, instead of
        keeping it until its address is invoked again."""
        while True:
            ttls = [
                spec.expire_ms
                for specs in self.specs.values()
                for spec in specs.values()
                if spec.expire_mode != EXPIRE_NONE
            ]
            await asyncio.sleep(min(max(min(ttls) / 2000, 0.1), 60.0) if ttls else 1.0)
            for function_type, specs in list(self.specs.items()):
                for spec in specs.values():
                    if spec.expire_mode != EXPIRE_NONE:
                        await self._sweep_state(function_type, spec)

    async def _sweep_state(self, function_type: str, spec: StateSpec) -> None:
        after = ""
        while True:
            rows = self.store.scan_state(function_type, spec.name, after, 1_000)
            if not rows:
                return
            after = rows[-1][0]
            at_ms = now_ms()
            # An address with a batch waiting or in flight is left to it: its call decides
            # whether the state is still alive when it is read.
            expired = [
                function_id
                for function_id, written, touched in rows
                if is_expired(spec, written, touched, at_ms)
                and (function_type, function_id) not in self.tracked
            ]
            if expired:

                def delete(store: Store, ids: list[str] = expired) -> None:
                    store.delete_states(function_type, spec.name, ids)

                await self.committer.submit(delete)
            else:
                await asyncio.sleep(0)


def _joined(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Consecutive lines for the same egress as one outbox row (one row per batch, typically),
    keeping their order."""
    rows: list[tuple[str, str]] = []
    for egress_id, line in lines:
        if rows and rows[-1][0] == egress_id:
            rows[-1] = (egress_id, rows[-1][1] + "\n" + line)
        else:
            rows.append((egress_id, line))
    return rows


def _clock(epoch_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_ms / 1000))


def describe_wait(epoch_ms: int) -> str:
    """'18:42:10 (in 4 min 59 s)' for a log line about a pending timer."""
    seconds = max(0, round(epoch_ms / 1000 - time.time()))
    if seconds >= 3600:
        span = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    elif seconds >= 60:
        span = f"{seconds // 60} min {seconds % 60} s"
    else:
        span = f"{seconds} s"
    return f"{_clock(epoch_ms)} (in {span})"
