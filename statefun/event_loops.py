"""Running coroutines from synchronous code: ``handle_sync`` with async functions.

Each thread gets its own event loop, reused across requests (creating a loop
per request, as ``asyncio.run`` does, costs more than a typical batch). When the
calling thread already runs a loop, where ``run_until_complete`` is not
allowed, the coroutine runs on a private loop in a daemon worker thread and the
caller waits for it.
"""

from __future__ import annotations

import asyncio
import threading
import typing

__all__ = ["run_coroutine"]


class _ThreadLoop:
    """An event loop owned by one thread, closed when the thread's locals are dropped."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()


class _BackgroundLoop:
    """A loop in a daemon thread, for running coroutines while the caller's thread runs a loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="statefun-handle-sync", daemon=True
        )
        self.thread.start()


_thread_loops = threading.local()
_background_loop: _BackgroundLoop | None = None
_background_loop_lock = threading.Lock()


def run_coroutine(coroutine: typing.Coroutine[typing.Any, typing.Any, typing.Any]) -> None:
    """Run ``coroutine`` to completion from synchronous code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        holder: _ThreadLoop | None = getattr(_thread_loops, "holder", None)
        if holder is None:
            holder = _thread_loops.holder = _ThreadLoop()
        holder.loop.run_until_complete(coroutine)
        return
    global _background_loop
    with _background_loop_lock:
        if _background_loop is None:
            _background_loop = _BackgroundLoop()
        loop = _background_loop.loop
    asyncio.run_coroutine_threadsafe(coroutine, loop).result()
