"""``AsyncRequestReplyHandler``: the 2.x asynchronous handler, ``await handler(request_bytes)``.

The synchronous 2.x form, ``RequestReplyHandler(functions)(request_bytes)``, is
the SDK's own handler being called.
"""

from __future__ import annotations

from statefun.request_reply_v3 import RequestReplyHandler
from statefun.statefun_builder import StatefulFunctions

__all__ = ["AsyncRequestReplyHandler"]


class AsyncRequestReplyHandler:
    """Serves ``StatefulFunctions`` from a coroutine: ``response = await handler(request)``."""

    __slots__ = ("_handler",)

    def __init__(self, functions: StatefulFunctions) -> None:
        self._handler = RequestReplyHandler(functions)

    async def __call__(self, request_bytes: bytes) -> bytes:
        return await self._handler.handle_async(request_bytes)

    async def handle_async(self, request_bytes: bytes) -> bytes:
        """The 3.x spelling, so code moving on to 3.x can switch call style first."""
        return await self._handler.handle_async(request_bytes)
