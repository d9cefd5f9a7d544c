"""Serve a ``RequestReplyHandler`` from any WSGI server.

    app = statefun.serving.wsgi.make_wsgi_app(handler)

then serve ``app`` with gunicorn (``gunicorn module:app``) or, for development,
``wsgiref.simple_server.make_server("", 8000, app).serve_forever()``.
"""

from __future__ import annotations

import typing

from statefun.request_reply_v3 import RequestReplyHandler
from statefun.serving import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_PATH,
    PathMatcher,
    HttpReply,
    serve_sync,
    too_large_reply,
)

__all__ = ["make_wsgi_app", "WSGIApp"]

StartResponse = typing.Callable[..., typing.Any]
WSGIApp = typing.Callable[[dict[str, typing.Any], StartResponse], typing.Iterable[bytes]]


def _text(
    status: str, message: str, extra: list[tuple[str, str]] | None = None
) -> tuple[str, list[tuple[str, str]], bytes]:
    body = (message + "\n").encode("utf-8")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return status, headers + (extra or []), body


def _from_reply(reply: HttpReply) -> tuple[str, list[tuple[str, str]], bytes]:
    headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
    return reply.status_line, headers, reply.body


def _read_body(environ: dict[str, typing.Any], limit: int) -> bytes | HttpReply:
    stream = environ["wsgi.input"]
    raw_length = environ.get("CONTENT_LENGTH") or ""
    if raw_length.strip():
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            return HttpReply(
                400,
                "text/plain; charset=utf-8",
                f"invalid Content-Length {raw_length!r}\n".encode(),
            )
        if length > limit:
            return too_large_reply(length, limit)
        body = typing.cast(bytes, stream.read(length)) if length else b""
        if len(body) < length:
            return HttpReply(
                400,
                "text/plain; charset=utf-8",
                f"request body truncated: got {len(body)} of {length} bytes\n".encode(),
            )
        return body
    if environ.get("wsgi.input_terminated"):
        body = typing.cast(bytes, stream.read(limit + 1))
        if len(body) > limit:
            return too_large_reply(None, limit)
        return body
    return b""


def make_wsgi_app(
    handler: RequestReplyHandler,
    *,
    path: str | None = DEFAULT_PATH,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> WSGIApp:
    """A WSGI application serving ``handler`` on ``POST path`` (any path if ``path`` is None;
    with ``{function.name}`` in it, each function's path)."""
    matches = PathMatcher(path) if path is not None else None

    def app(
        environ: dict[str, typing.Any], start_response: StartResponse
    ) -> typing.Iterable[bytes]:
        if matches is not None and not matches(environ.get("PATH_INFO", "")):
            status, headers, body = _text(
                "404 Not Found", f"statefun functions are served at {path}"
            )
        elif environ.get("REQUEST_METHOD") != "POST":
            status, headers, body = _text(
                "405 Method Not Allowed", "statefun functions accept POST only", [("Allow", "POST")]
            )
        else:
            read = _read_body(environ, max_request_bytes)
            reply = read if isinstance(read, HttpReply) else serve_sync(handler, read)
            status, headers, body = _from_reply(reply)
        start_response(status, headers)
        return [body]

    return app
