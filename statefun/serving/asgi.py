"""Serve a ``RequestReplyHandler`` from any ASGI 3 server (uvicorn, hypercorn, …).

    app = statefun.serving.asgi.make_asgi_app(handler)

then run e.g. ``uvicorn module:app``. Async functions are awaited on the
server's loop; sync functions are called directly, as in ``handle_async``.
"""

from __future__ import annotations

import typing

from statefun.request_reply_v3 import RequestReplyHandler
from statefun.serving import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_PATH,
    PathMatcher,
    HttpReply,
    serve_async,
    too_large_reply,
)

__all__ = ["make_asgi_app", "ASGIApp"]

Scope = dict[str, typing.Any]
Receive = typing.Callable[[], typing.Awaitable[dict[str, typing.Any]]]
Send = typing.Callable[[dict[str, typing.Any]], typing.Awaitable[None]]
ASGIApp = typing.Callable[[Scope, Receive, Send], typing.Awaitable[None]]


def _text(status: int, message: str) -> HttpReply:
    return HttpReply(status, "text/plain; charset=utf-8", (message + "\n").encode("utf-8"))


async def _send_reply(
    send: Send, reply: HttpReply, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", reply.content_type.encode("latin-1")),
        (b"content-length", str(len(reply.body)).encode("latin-1")),
    ]
    await send(
        {"type": "http.response.start", "status": reply.status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": reply.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def make_asgi_app(
    handler: RequestReplyHandler,
    *,
    path: str | None = DEFAULT_PATH,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> ASGIApp:
    """An ASGI application serving ``handler`` on ``POST path`` (any path if ``path`` is None;
    with ``{function.name}`` in it, each function's path)."""
    matches = PathMatcher(path) if path is not None else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"statefun's ASGI app serves HTTP only, not {scope['type']!r}")
        if matches is not None and not matches(scope.get("path") or ""):
            await _send_reply(send, _text(404, f"statefun functions are served at {path}"))
            return
        if scope.get("method") != "POST":
            await _send_reply(
                send, _text(405, "statefun functions accept POST only"), [(b"allow", b"POST")]
            )
            return
        declared = _declared_length(scope)
        if declared is not None and declared > max_request_bytes:
            await _send_reply(send, too_large_reply(declared, max_request_bytes))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_request_bytes:
                await _send_reply(send, too_large_reply(None, max_request_bytes))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await _send_reply(send, await serve_async(handler, b"".join(chunks)))

    return app
