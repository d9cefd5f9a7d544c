"""The WSGI adapter served for real by wsgiref on 127.0.0.1, driven by urllib."""

from __future__ import annotations

import io
import threading
import typing
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from statefun.serving.wsgi import make_wsgi_app
from statefun_test_wire import (
    SCENARIO_LIMIT,
    good_request,
    run_adapter_scenario,
    scenario_handler,
    urllib_post,
)

TIMEOUT = 10.0


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: typing.Any) -> None:
        pass


class ServerThread:
    def __init__(self, app: typing.Any) -> None:
        self.server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(TIMEOUT)


def test_wsgiref_round_trip_and_bad_input(caplog: pytest.LogCaptureFixture) -> None:
    server = ServerThread(make_wsgi_app(scenario_handler(), max_request_bytes=SCENARIO_LIMIT))
    try:
        base = f"http://127.0.0.1:{server.port}"
        run_adapter_scenario(urllib_post(base + "/statefun"), caplog)
        status, _, body = urllib_post(base + "/elsewhere")(good_request())
        assert status == 404 and b"/statefun" in body
        status, _, _ = urllib_post(base + "/statefun", method="GET")(b"")
        assert status == 405
        assert urllib_post(base + "/statefun")(good_request())[0] == 200
    finally:
        server.close()


def call(app: typing.Any, environ: dict[str, typing.Any]) -> tuple[str, bytes]:
    captured: list[str] = []
    body = b"".join(app(environ, lambda status, headers: captured.append(status)))
    return captured[0], body


def test_content_length_edge_cases() -> None:
    app = make_wsgi_app(scenario_handler(), path=None, max_request_bytes=SCENARIO_LIMIT)
    base = {"REQUEST_METHOD": "POST", "PATH_INFO": "/any"}
    status, body = call(app, {**base, "CONTENT_LENGTH": "abc", "wsgi.input": io.BytesIO(b"")})
    assert status.startswith("400") and b"invalid Content-Length" in body
    status, body = call(app, {**base, "CONTENT_LENGTH": "100", "wsgi.input": io.BytesIO(b"short")})
    assert status.startswith("400") and b"truncated: got 5 of 100" in body
    chunked = {**base, "wsgi.input_terminated": True, "wsgi.input": io.BytesIO(good_request())}
    status, body = call(app, chunked)
    assert status == "200 OK" and body == scenario_handler().handle_sync(good_request())
    too_big = {
        **base,
        "wsgi.input_terminated": True,
        "wsgi.input": io.BytesIO(b"x" * (SCENARIO_LIMIT + 1)),
    }
    assert call(app, too_big)[0].startswith("413")


def test_a_function_name_template_serves_each_function_path() -> None:
    app = make_wsgi_app(scenario_handler(), path="/fn/{function.name}")
    for path, status in (("/fn/greeter", "200"), ("/fn/cart", "200"), ("/fn/a/b", "404")):
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(good_request())),
            "wsgi.input": io.BytesIO(good_request()),
        }
        assert call(app, environ)[0].startswith(status), path
