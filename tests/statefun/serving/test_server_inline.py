"""statefun.serving.inline: coroutines run inline until they suspend, then in the spare task."""

from __future__ import annotations

import asyncio
import contextvars
import typing

import pytest

from statefun.serving.inline import PENDING, InlineRunner

variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="unset")


def run_in_callback(
    body: typing.Callable[[InlineRunner, asyncio.Future[typing.Any]], None],
) -> typing.Any:
    """Call ``body`` from a plain loop callback (where protocols run) and wait for its future."""

    async def main() -> typing.Any:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[typing.Any] = loop.create_future()
        runner = InlineRunner(loop)
        loop.call_soon(body, runner, outcome)
        result = await outcome
        runner.cancel()
        return result

    return asyncio.run(main())


def test_a_coroutine_that_does_not_suspend_returns_inline_under_a_current_task() -> None:
    async def work() -> tuple[bool, str]:
        variable.set("changed")
        return asyncio.current_task() is not None, variable.get()

    def body(runner: InlineRunner, outcome: asyncio.Future[typing.Any]) -> None:
        first = runner.start(work(), lambda *_: None)
        outcome.set_result((first, variable.get(), asyncio.current_task()))

    first, after, current = run_in_callback(body)
    assert first == (True, "changed")
    assert after == "unset" and current is None  # the context and the current task are restored


def test_a_suspending_coroutine_finishes_in_the_task_it_saw_first() -> None:
    async def work() -> str:
        before = asyncio.current_task()
        variable.set("mine")
        await asyncio.sleep(0.001)
        await asyncio.sleep(0)
        assert asyncio.current_task() is before and variable.get() == "mine"
        return "done"

    def body(runner: InlineRunner, outcome: asyncio.Future[typing.Any]) -> None:
        started = runner.start(work(), lambda result, error: outcome.set_result((result, error)))
        assert started is PENDING

    assert run_in_callback(body) == ("done", None)


def test_errors_inline_raise_and_errors_later_are_reported() -> None:
    async def fails_at_once() -> None:
        raise KeyError("at once")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("later")

    def body(runner: InlineRunner, outcome: asyncio.Future[typing.Any]) -> None:
        with pytest.raises(KeyError):
            runner.start(fails_at_once(), lambda *_: None)
        runner.start(fails_later(), lambda result, error: outcome.set_result(error))

    assert isinstance(run_in_callback(body), ValueError)


def test_a_timeout_reaches_the_adopted_coroutine() -> None:
    async def waits() -> str:
        try:
            await asyncio.wait_for(asyncio.sleep(10), 0.01)
        except asyncio.TimeoutError:
            return "timed out"
        return "slept"

    def body(runner: InlineRunner, outcome: asyncio.Future[typing.Any]) -> None:
        runner.start(waits(), lambda result, error: outcome.set_result(result))

    assert run_in_callback(body) == "timed out"


def test_inside_a_task_it_falls_back_to_a_task_of_its_own() -> None:
    async def main() -> typing.Any:
        loop = asyncio.get_running_loop()
        runner = InlineRunner(loop)
        outcome: asyncio.Future[typing.Any] = loop.create_future()

        async def work() -> str:
            return "ran"

        assert runner.start(work(), lambda result, error: outcome.set_result(result)) is PENDING
        result = await outcome
        runner.cancel()
        return result

    assert asyncio.run(main()) == "ran"
