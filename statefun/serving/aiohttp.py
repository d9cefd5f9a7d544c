"""Serve a ``RequestReplyHandler`` with aiohttp.

    app = statefun.serving.aiohttp.make_app(handler)
    aiohttp.web.run_app(app, port=8000)

or add ``make_request_handler(handler)`` as a POST route of an existing app.
"""

from __future__ import annotations

import typing

from aiohttp import web

from statefun.request_reply_v3 import RequestReplyHandler
from statefun.serving import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_PATH,
    FUNCTION_NAME,
    HttpReply,
    serve_async,
    too_large_reply,
)

__all__ = ["make_app", "make_request_handler"]

RequestHandler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]


def _response(reply: HttpReply) -> web.Response:
    response = web.Response(status=reply.status, body=reply.body)
    # Set the header directly: aiohttp's content_type would add a charset parameter
    # to text types, and the runtime wants exactly application/octet-stream.
    response.headers["Content-Type"] = reply.content_type
    return response


def make_request_handler(
    handler: RequestReplyHandler, *, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
) -> RequestHandler:
    """An aiohttp request handler that serves ``handler``'s functions."""

    async def serve(request: web.Request) -> web.StreamResponse:
        declared = request.content_length
        if declared is not None and declared > max_request_bytes:
            return _response(too_large_reply(declared, max_request_bytes))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _response(too_large_reply(None, max_request_bytes))
        if len(body) > max_request_bytes:
            return _response(too_large_reply(len(body), max_request_bytes))
        return _response(await serve_async(handler, body))

    return serve


def make_app(
    handler: RequestReplyHandler,
    *,
    path: str = DEFAULT_PATH,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> web.Application:
    """An aiohttp application serving ``handler`` on ``POST path``."""
    app = web.Application(client_max_size=max_request_bytes)
    # one path segment per function; the framework's own route syntax stays usable
    route = path.replace(FUNCTION_NAME, "{function_name}")
    app.router.add_post(route, make_request_handler(handler, max_request_bytes=max_request_bytes))
    return app
