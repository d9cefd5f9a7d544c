"""Run a coroutine to its first suspension inline, and only then hand it to a task.

Most requests complete without ever suspending: every sync function, and async
functions that do not await I/O. Creating an ``asyncio.Task`` for each of them
costs a task object, a loop iteration to start it and another to deliver its
result (about 5 µs on uvloop, a quarter of a small request's whole cost).
``InlineRunner.start`` instead drives the coroutine with ``send(None)``
directly from the protocol callback; when it finishes there, its result is
returned at once.

The inline step still runs *inside a task*, as far as the function can tell:
a spare task, created ahead and idle, is made the loop's current task for the
step (``asyncio.current_task()`` returns it, so ``asyncio.timeout``, aiohttp's
client timeouts and ``wait_for`` work), and each step runs in a fresh copy of
the context, as a task's would (``ContextVar.set`` does not leak between
requests). If the coroutine suspends, that same spare task adopts it: it
awaits what the coroutine was waiting for and keeps driving it, so a timeout
or a cancellation aimed at the task captured during the inline step reaches
the coroutine. A new spare is made for the next request. The spare that just
finished an inline step is reused, so no task is created per request.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
import typing

__all__ = ["InlineRunner", "PENDING"]

PENDING: typing.Final = object()
"""``InlineRunner.start``'s answer when the coroutine suspended: ``done`` will be called."""

Done = typing.Callable[[typing.Any, typing.Optional[BaseException]], None]
_Handoff = tuple[
    typing.Coroutine[typing.Any, typing.Any, typing.Any], typing.Any, contextvars.Context, Done
]

# Private, but stable since 3.7 and what the loop itself uses around each task step (and 3.12's
# eager tasks around their inline first step).
from asyncio.tasks import _enter_task, _leave_task


@types.coroutine
def _continue(
    coroutine: typing.Coroutine[typing.Any, typing.Any, typing.Any],
    yielded: typing.Any,
    context: contextvars.Context,
) -> typing.Generator[typing.Any, typing.Any, typing.Any]:
    """``yield from coroutine`` for a coroutine already started, each step in its own context."""
    send, throw = coroutine.send, coroutine.throw
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as error:  # the task delivers cancellations and failed awaits
            try:
                yielded = context.run(throw, error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = context.run(send, sent)
            except StopIteration as stop:
                return stop.value


async def _adopt(handoff: asyncio.Future[_Handoff]) -> None:
    try:
        coroutine, yielded, context, done = await handoff
    except asyncio.CancelledError:
        return  # an unused spare, at shutdown
    try:
        result = await _continue(coroutine, yielded, context)
    except BaseException as error:
        done(None, error)
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
    else:
        done(result, None)


class _Spare:
    __slots__ = ("handoff", "task")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, active: set[asyncio.Task[typing.Any]]
    ) -> None:
        self.handoff: asyncio.Future[_Handoff] = loop.create_future()
        self.task = loop.create_task(_adopt(self.handoff))
        active.add(self.task)
        self.task.add_done_callback(active.discard)


class InlineRunner:
    """Starts coroutines inline on ``loop`` (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, inline: bool = True) -> None:
        self._loop = loop
        self._inline = inline
        self._active: set[asyncio.Task[typing.Any]] = set()
        self._spare: _Spare | None = None

    @property
    def tasks(self) -> set[asyncio.Task[typing.Any]]:
        """The runner's tasks: those driving suspended coroutines, and the idle spare."""
        return self._active

    def start(
        self, coroutine: typing.Coroutine[typing.Any, typing.Any, typing.Any], done: Done
    ) -> typing.Any:
        """Run ``coroutine`` until it finishes or suspends.

        Returns its result, raises its exception, or returns ``PENDING``; then
        ``done(result, error)`` is called from a task when it finishes. Must be
        called outside any task (from a protocol or loop callback).
        """
        if not self._inline:
            return self._start_task(coroutine, done)
        spare = self._spare
        if spare is None or spare.task.done():
            spare = self._spare = _Spare(self._loop, self._active)
        context = contextvars.copy_context()
        loop, task = self._loop, spare.task
        try:
            _enter_task(loop, task)
        except RuntimeError:  # called from inside a task after all: no inline step then
            return self._start_task(coroutine, done)
        try:
            yielded = context.run(coroutine.send, None)
        except StopIteration as stop:
            return stop.value
        finally:
            _leave_task(loop, task)
        self._spare = None
        spare.handoff.set_result((coroutine, yielded, context, done))
        return PENDING

    def _start_task(
        self, coroutine: typing.Coroutine[typing.Any, typing.Any, typing.Any], done: Done
    ) -> typing.Any:
        """What servers usually do, one task per request: kept to measure the inline step."""

        def finished(task: asyncio.Task[typing.Any]) -> None:
            self._active.discard(task)
            if task.cancelled():
                done(None, asyncio.CancelledError())
            else:
                error = task.exception()
                done(None if error else task.result(), error)

        task = self._loop.create_task(coroutine)
        self._active.add(task)
        task.add_done_callback(finished)
        return PENDING

    def cancel(self) -> None:
        """Cancel every coroutine still running, and the spare."""
        for task in list(self._active):
            task.cancel()
