"""Serving adapters: expose a ``RequestReplyHandler`` over HTTP in a few lines.

* ``statefun.serving.aiohttp.make_app(handler)`` — an aiohttp ``web.Application``;
* ``statefun.serving.wsgi.make_wsgi_app(handler)`` — a WSGI callable (gunicorn, wsgiref, …);
* ``statefun.serving.flask.make_flask_app(handler)`` / ``add_statefun_route(app, handler)``;
* ``statefun.serving.asgi.make_asgi_app(handler)`` — an ASGI 3 callable.

Every adapter answers ``POST`` with ``Content-Type: application/octet-stream``
exactly (the runtime's OkHttp client rejects any parameter), maps the SDK's
errors to HTTP statuses, and refuses bodies over ``max_request_bytes``
(default 32 MiB, the runtime's own payload limit) with 413:

======================================  ======
``MalformedRequestError``,               400
``InvalidRequestError`` (e.g. state of
another type)
``FunctionNotFoundError``               404
body larger than the limit              413
any exception from a user function      500 (traceback logged, nothing of the batch returned)
======================================  ======

The modules import their framework lazily on use of this package's submodule,
so ``import statefun`` never needs aiohttp or Flask.
"""

from __future__ import annotations

import http
import logging
import typing
from dataclasses import dataclass

from statefun.errors import FunctionNotFoundError, InvalidRequestError

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_PATH",
    "HttpReply",
    "reply_for_error",
    "too_large_reply",
    "not_found_reply",
    "method_not_allowed_reply",
    "serve_sync",
    "serve_async",
    "FUNCTION_NAME",
    "PathMatcher",
]

CONTENT_TYPE = "application/octet-stream"
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
DEFAULT_PATH = "/statefun"

# module.yaml's urlPathTemplate placeholder: one path segment, the function's name
FUNCTION_NAME = "{function.name}"

logger = logging.getLogger("statefun.serving")


class PathMatcher:
    """Which request paths are the functions': ``path`` itself, or, where it holds
    ``{function.name}`` (a urlPathTemplate giving each function a path of its own), any
    path with a non-empty segment of no ``/`` in its place. The handler finds the function
    from the request itself, so every such path reaches it."""

    def __init__(self, path: str) -> None:
        if path.count("{") != path.count(FUNCTION_NAME) or path.count("}") != path.count(
            FUNCTION_NAME
        ):
            raise ValueError(
                f"path {path!r}: the only placeholder a path may hold is {FUNCTION_NAME}"
            )
        if path.count(FUNCTION_NAME) > 1:
            raise ValueError(f"path {path!r}: {FUNCTION_NAME} may appear once")
        self.path = path
        head, placeholder, tail = path.partition(FUNCTION_NAME)
        self._parts = (head, tail) if placeholder else None

    @property
    def templated(self) -> bool:
        return self._parts is not None

    def __call__(self, path: str) -> bool:
        if self._parts is None:
            return path == self.path
        head, tail = self._parts
        if len(path) <= len(head) + len(tail) or not path.startswith(head):
            return False
        if not path.endswith(tail):
            return False
        name = path[len(head) : len(path) - len(tail)]
        return "/" not in name


class _Handler(typing.Protocol):
    def handle_sync(self, request_bytes: bytes) -> bytes: ...

    async def handle_async(self, request_bytes: bytes) -> bytes: ...


@dataclass(frozen=True)
class HttpReply:
    """What an adapter sends back: a status, a content type and a body."""

    status: int
    content_type: str
    body: bytes

    @property
    def status_line(self) -> str:
        return f"{self.status} {http.HTTPStatus(self.status).phrase}"


def _text(status: int, message: str) -> HttpReply:
    return HttpReply(status, "text/plain; charset=utf-8", (message + "\n").encode("utf-8"))


def reply_for_error(error: Exception) -> HttpReply:
    """The HTTP reply for an exception raised by the handler; logs it."""
    if isinstance(error, FunctionNotFoundError):
        logger.warning("statefun request rejected (404): %s", error)
        return _text(404, str(error))
    if isinstance(error, InvalidRequestError):
        logger.warning("statefun request rejected (400): %s", error)
        return _text(400, str(error))
    logger.error("statefun function failed; the batch is not acknowledged", exc_info=error)
    return _text(
        500,
        f"the function failed with {type(error).__name__}; see the function's log for the traceback",
    )


def too_large_reply(size: int | None, limit: int) -> HttpReply:
    shown = "more than" if size is None else f"{size} bytes,"
    logger.warning("statefun request rejected (413): body of %s limit %d", shown, limit)
    return _text(413, f"request body too large: {shown} limit is {limit} bytes")


def not_found_reply(path: str) -> HttpReply:
    return _text(404, f"statefun functions are served at {path}")


def method_not_allowed_reply() -> HttpReply:
    return _text(405, "statefun functions accept POST only")


def serve_sync(handler: _Handler, body: bytes) -> HttpReply:
    try:
        return HttpReply(200, CONTENT_TYPE, handler.handle_sync(body))
    except Exception as error:  # noqa: BLE001 - every failure becomes an HTTP status
        return reply_for_error(error)


async def serve_async(handler: _Handler, body: bytes) -> HttpReply:
    try:
        return HttpReply(200, CONTENT_TYPE, await handler.handle_async(body))
    except Exception as error:  # noqa: BLE001 - every failure becomes an HTTP status
        return reply_for_error(error)
