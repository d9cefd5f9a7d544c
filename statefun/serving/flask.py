"""Serve a ``RequestReplyHandler`` from Flask.

    app = statefun.serving.flask.make_flask_app(handler)

or add the route to an existing app with ``add_statefun_route(app, handler)``.
"""

from __future__ import annotations

import flask

from statefun.request_reply_v3 import RequestReplyHandler
from statefun.serving import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_PATH,
    FUNCTION_NAME,
    HttpReply,
    serve_sync,
    too_large_reply,
)

__all__ = ["make_flask_app", "add_statefun_route"]


def _response(reply: HttpReply) -> flask.Response:
    return flask.Response(
        reply.body, status=reply.status, headers={"Content-Type": reply.content_type}
    )


def add_statefun_route(
    app: flask.Flask,
    handler: RequestReplyHandler,
    *,
    path: str = DEFAULT_PATH,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    endpoint: str = "statefun",
) -> None:
    """Serve ``handler`` on ``POST path`` of ``app``."""

    def serve(**_function_name: str) -> flask.Response:  # the name is in the request itself
        declared = flask.request.content_length
        if declared is not None and declared > max_request_bytes:
            return _response(too_large_reply(declared, max_request_bytes))
        body = flask.request.stream.read(max_request_bytes + 1)
        if len(body) > max_request_bytes:
            return _response(too_large_reply(None, max_request_bytes))
        return _response(serve_sync(handler, body))

    # one path segment per function; the framework's own route syntax stays usable
    rule = path.replace(FUNCTION_NAME, "<function_name>")
    app.add_url_rule(rule, endpoint=endpoint, view_func=serve, methods=["POST"])


def make_flask_app(
    handler: RequestReplyHandler,
    *,
    path: str = DEFAULT_PATH,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    import_name: str = "statefun",
) -> flask.Flask:
    """A Flask application serving ``handler`` on ``POST path``."""
    app = flask.Flask(import_name)
    add_statefun_route(app, handler, path=path, max_request_bytes=max_request_bytes)
    return app
