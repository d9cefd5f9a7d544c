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
    """Runs each unit of work inside a savepoint of one shared transaction, so a failing unit
    rolls back alone; ``after_commit`` callbacks run in submission order once it is durable."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[_Work[Any]] = []
        self._wakeup = asyncio.Event()
        self.transactions = 0
        self.units = 0

    def submit(
        self, apply: Callable[[Store], T], after_commit: Callable[[T], None] | None = None
    ) -> "asyncio.Future[T]":
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Work(apply, after_commit, future))
        self._wakeup.set()
        return future

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

    def commit(self, work: list[_Work[Any]]) -> None:
        outcomes: list[tuple[_Work[Any], bool, Any]] = []
        with self.store.transaction():
            for unit in work:
                try:
                    with self.store.savepoint():
                        outcomes.append((unit, True, unit.apply(self.store)))
                except Exception as error:  # the unit's own failure goes to whoever submitted it
                    outcomes.append((unit, False, error))
        self.transactions += 1
        self.units += len(work)
        for unit, ok, value in outcomes:
            if ok and unit.after_commit is not None:
                unit.after_commit(value)
            if unit.future.cancelled():
                continue
            if ok:
                unit.future.set_result(value)
            else:
                unit.future.set_exception(value)
