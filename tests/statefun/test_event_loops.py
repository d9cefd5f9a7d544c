from __future__ import annotations

import asyncio
import threading

import pytest

from statefun.event_loops import run_coroutine


async def record(into: list[str]) -> None:
    await asyncio.sleep(0)
    into.append(threading.current_thread().name)


def test_runs_on_the_calling_thread_without_a_running_loop() -> None:
    seen: list[str] = []
    run_coroutine(record(seen))
    run_coroutine(record(seen))
    assert seen == [threading.current_thread().name] * 2


def test_runs_on_a_worker_thread_under_a_running_loop() -> None:
    seen: list[str] = []

    async def main() -> None:
        run_coroutine(record(seen))

    asyncio.run(main())
    assert seen == ["statefun-handle-sync"]


def test_exceptions_propagate() -> None:
    async def fail() -> None:
        raise LookupError("inside")

    with pytest.raises(LookupError, match="inside"):
        run_coroutine(fail())

    async def main() -> None:
        run_coroutine(fail())

    with pytest.raises(LookupError, match="inside"):
        asyncio.run(main())
