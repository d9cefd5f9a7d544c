"""The aiohttp adapter served for real on 127.0.0.1, driven by an aiohttp client."""

from __future__ import annotations

import asyncio
import threading
import typing

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

from statefun.serving.aiohttp import make_app, make_request_handler  # noqa: E402
from statefun_test_wire import (
    SCENARIO_LIMIT,
    good_request,
    run_adapter_scenario,
    scenario_handler,
)  # noqa: E402

TIMEOUT = 10.0


class BackgroundServer:
    """An aiohttp app served by a loop in a thread, on an ephemeral port."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app)
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(TIMEOUT)

    async def _start(self) -> int:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = typing.cast(typing.Any, site._server)  # aiohttp exposes the bound port only here
        return int(server.sockets[0].getsockname()[1])

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


def client_post(url: str) -> typing.Callable[[bytes], tuple[int, str, bytes]]:
    async def post(body: bytes) -> tuple[int, str, bytes]:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            headers = {"Content-Type": "application/octet-stream"}
            async with session.post(url, data=body, headers=headers) as reply:
                return reply.status, reply.headers.get("Content-Type", ""), await reply.read()

    return lambda body: asyncio.run(post(body))


def test_make_app_round_trip_and_bad_input(caplog: pytest.LogCaptureFixture) -> None:
    server = BackgroundServer(make_app(scenario_handler(), max_request_bytes=SCENARIO_LIMIT))
    try:
        run_adapter_scenario(client_post(f"http://127.0.0.1:{server.port}/statefun"), caplog)
    finally:
        server.close()


def test_request_handler_mounts_in_an_existing_app_and_default_limit_allows_big_bodies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/fn/{name}", make_request_handler(scenario_handler()))
    server = BackgroundServer(app)
    try:
        post = client_post(f"http://127.0.0.1:{server.port}/fn/greeter")
        status, content_type, body = post(good_request())
        assert (status, content_type) == (200, "application/octet-stream")
        assert body == scenario_handler().handle_sync(good_request())
        # 1 MiB of garbage is under the 32 MiB default: rejected as malformed, not as too large.
        status, _, _ = post(b"\xff" * (1024 * 1024))
        assert status == 400
    finally:
        server.close()


def test_chunked_bodies_are_limited_too() -> None:
    server = BackgroundServer(make_app(scenario_handler(), max_request_bytes=SCENARIO_LIMIT))

    async def post_chunked(body: bytes) -> int:
        async def chunks() -> typing.AsyncIterator[bytes]:
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            url = f"http://127.0.0.1:{server.port}/statefun"
            async with session.post(url, data=chunks()) as reply:
                await reply.read()
                return reply.status

    try:
        assert asyncio.run(post_chunked(good_request())) == 200
        assert asyncio.run(post_chunked(b"\x00" * (SCENARIO_LIMIT * 3))) == 413
        assert asyncio.run(post_chunked(good_request())) == 200
    finally:
        server.close()


def test_a_function_name_template_becomes_a_route_variable() -> None:
    server = BackgroundServer(make_app(scenario_handler(), path="/fn/{function.name}"))
    try:
        for path, status in (("/fn/greeter", 200), ("/fn/cart", 200), ("/fn/a/b", 404)):
            post = client_post(f"http://127.0.0.1:{server.port}{path}")
            assert post(good_request())[0] == status, path
    finally:
        server.close()
