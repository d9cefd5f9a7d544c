"""The Flask adapter served for real by werkzeug on 127.0.0.1, driven by urllib."""

from __future__ import annotations

import threading

import pytest

flask = pytest.importorskip("flask")
from werkzeug.serving import make_server  # noqa: E402

from statefun.serving.flask import add_statefun_route, make_flask_app  # noqa: E402
from statefun_test_wire import (  # noqa: E402
    SCENARIO_LIMIT,
    good_request,
    run_adapter_scenario,
    scenario_handler,
    urllib_post,
)

TIMEOUT = 10.0


def test_flask_round_trip_and_bad_input(caplog: pytest.LogCaptureFixture) -> None:
    app = make_flask_app(scenario_handler(), max_request_bytes=SCENARIO_LIMIT)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        run_adapter_scenario(urllib_post(f"http://127.0.0.1:{server.port}/statefun"), caplog)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def test_route_on_an_existing_app() -> None:
    app = flask.Flask("existing")
    add_statefun_route(app, scenario_handler(), path="/functions")
    reply = app.test_client().post("/functions", data=good_request())
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert reply.data == scenario_handler().handle_sync(good_request())


def test_a_function_name_template_becomes_a_route_variable() -> None:
    app = flask.Flask("templated")
    add_statefun_route(app, scenario_handler(), path="/fn/{function.name}")
    client = app.test_client()
    assert client.post("/fn/greeter", data=good_request()).status_code == 200
    assert client.post("/fn/a/b", data=good_request()).status_code == 404


def test_flask_route_syntax_in_a_path_still_works() -> None:
    app = flask.Flask("own-syntax")
    add_statefun_route(app, scenario_handler(), path="/tenants/<tenant>/statefun")
    assert app.test_client().post("/tenants/a/statefun", data=good_request()).status_code == 200
