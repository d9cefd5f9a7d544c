"""Group commit: work submitted while a transaction is being written shares the next one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from statefun.local.store import Store

T = TypeVar("T")


@dataclass
class _Work(Generic[T]):
    apply: Callable[[Store], T]
    after_commit: Callable[[T], None] | None
    future: "asyncio.Future[T]"


class Committer:
    """Runs the units of work submitted in one event-loop turn inside one transaction;
    ``after_commit`` callbacks run in submission order once it is durable.

    A unit's checks happen before it is submitted, so a unit fails only when the database does;
    then the whole transaction is rolled back and every unit in it gets the error.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[_Work[Any]] = []
        self._wakeup = asyncio.Event()
        self._before_commit: list[Callable[[Store], None]] = []
        self._after_commit: list[Callable[[], None]] = []
        self.transactions = 0
        self.units = 0

    def submit(
        self, apply: Callable[[Store], T], after_commit: Callable[[T], None] | None = None
    ) -> "asyncio.Future[T]":
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Work(apply, after_commit, future))
        self._wakeup.set()
        return future

    def also_in_each_transaction(self, work: Callable[[Store], None]) -> None:
        """Run `work` at the end of every transaction (housekeeping that may ride along)."""
        self._before_commit.append(work)

    def after_each_transaction(self, work: Callable[[], None]) -> None:
        """Run `work` after the callbacks of every committed transaction."""
        self._after_commit.append(work)

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            # Let the other ready tasks add their work first: that is what groups commits.
            await asyncio.sleep(0)
            self._wakeup.clear()
            work, self._queue = self._queue, []
            if work:
                self.commit(work)

    def commit_queued(self) -> None:
        """Commit what is queued now (at shutdown, when run() no longer runs)."""
        work, self._queue = self._queue, []
        if work:
            self.commit(work)

    def commit(self, work: list[_Work[Any]]) -> None:
        results: list[Any] = []
        try:
            with self.store.transaction():
                for unit in work:
                    results.append(unit.apply(self.store))
                for housekeeping in self._before_commit:
                    housekeeping(self.store)
        except Exception as error:
            for unit in work:
                if not unit.future.done():
                    unit.future.set_exception(error)
            return
        self.transactions += 1
        self.units += len(work)
        for unit, value in zip(work, results):
            if unit.after_commit is not None:
                unit.after_commit(value)
            if not unit.future.done():
                unit.future.set_result(value)
        for work_after in self._after_commit:
            work_after()
