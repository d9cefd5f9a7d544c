"""The runtime's HTTP/1.1 client against servers that answer in every way HTTP allows (and some
it does not): raw replies written byte for byte."""

from __future__ import annotations

import asyncio
import gzip
from typing import Awaitable, Callable

import pytest

from statefun.local.http11 import ConnectionPool, Disconnected, HttpError, Reply, Target

Responder = Callable[[bytes, int], bytes | None]  # (request, connection number) -> raw reply


async def exchange(
    responder: Responder, requests: int = 1, close_after_reply: bool = False
) -> tuple[list[Reply | BaseException], int, list[bytes]]:
    """Send `requests` POSTs one after another; the replies (or errors), the connections the
    server saw, and the requests it read."""
    connections = 0
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    [
                        line
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ][0].split(b":")[1]
                )
                request = head + await reader.readexactly(length)
                received.append(request)
                raw = responder(request, number)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = ConnectionPool()
    target = Target.parse(
        f"http://127.0.0.1:{port}/statefun?x=1", {"Content-Type": "application/octet-stream"}
    )
    results: list[Reply | BaseException] = []
    try:
        for _ in range(requests):
            try:
                results.append(await pool.post(target, b"body", 2.0, 1.0))
            except HttpError as error:
                results.append(error)
            await asyncio.sleep(0.01)
    finally:
        pool.close()
        server.close()
        await server.wait_closed()
    return results, connections, received


def run(coroutine: Awaitable[tuple[list[Reply | BaseException], int, list[bytes]]]):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)  # type: ignore[arg-type]


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello"


def test_requests_carry_the_path_host_and_length_and_reuse_the_connection() -> None:
    results, connections, received = run(exchange(lambda request, n: OK, requests=3))
    assert [(r.status, r.content_type, r.body) for r in results] == [  # type: ignore[union-attr]
        (200, "application/octet-stream", b"hello")
    ] * 3
    assert connections == 1
    first = received[0].decode()
    assert first.startswith("POST /statefun?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert "Content-Length: 4\r\n\r\nbody" in first


@pytest.mark.parametrize(
    "raw, body",
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\nTrailer: 1\r\n\r\n",
            b"hello",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b""),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
            % (len(gzip.compress(b"hello")), gzip.compress(b"hello")),
            b"hello",
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, b"hello"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
    ids=["chunked", "chunked-empty", "gzip", "100-continue", "204"],
)
def test_reply_bodies_in_every_framing(raw: bytes, body: bytes) -> None:
    results, connections, _ = run(exchange(lambda request, n: raw, requests=2))
    assert [r.body for r in results] == [body, body]  # type: ignore[union-attr]
    assert connections == 1


def test_a_reply_read_until_close_is_complete_and_the_next_request_reconnects() -> None:
    raw = b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\nuntil close"
    results, connections, _ = run(
        exchange(lambda request, n: raw, requests=2, close_after_reply=True)
    )
    assert [r.body for r in results] == [b"until close"] * 2  # type: ignore[union-attr]
    assert connections == 2


def test_a_kept_alive_connection_the_server_dropped_is_replaced_silently() -> None:
    # The server closes every connection after its reply although it said nothing about it.
    results, connections, _ = run(
        exchange(lambda request, n: OK, requests=3, close_after_reply=True)
    )
    assert all(isinstance(r, Reply) for r in results) and connections == 3


@pytest.mark.parametrize(
    "raw, problem",
    [
        (b"SPDY/3 200 OK\r\n\r\n", "not an HTTP/1.x reply"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", "larger than 32 MiB"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * 70_000, "header is larger than 64 KiB"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx",
            "unsupported Content-Encoding 'br'",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "closed the connection without a complete reply",
        ),
    ],
    ids=["not-http", "bad-length", "huge", "huge-header", "bad-chunk", "brotli", "cut-short"],
)
def test_broken_replies_are_errors_that_say_why(raw: bytes, problem: str) -> None:
    results, _, _ = run(exchange(lambda request, n: raw, close_after_reply=True))
    (error,) = results
    assert isinstance(error, HttpError) and problem in str(error), error


def test_a_server_that_closes_without_replying_is_a_disconnect() -> None:
    results, _, _ = run(exchange(lambda request, n: None))
    (error,) = results
    assert isinstance(error, Disconnected)
