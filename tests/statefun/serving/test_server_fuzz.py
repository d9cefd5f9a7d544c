"""statefun-serve against hostile and broken HTTP clients, on both stacks.

A corpus of malformed requests (tests/statefun/serving/http_corpus/, one case
per file with the statuses it may get), seeded random mutations of valid
requests, slow clients, connection resets and pipelined floods. The server
answers 4xx (or closes), never crashes, keeps serving valid requests, and over
repeated rounds leaks no connections, no tasks and no memory.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import random
import socket
import sys
import time
import tracemalloc
import typing
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from server_harness import (  # noqa: E402
    STACK_IDS,
    STACKS,
    Client,
    ServerThread,
    chunked,
    exchange,
    post,
    request,
    sent_strings,
)

CORPUS = sorted((Path(__file__).parent / "http_corpus").glob("*.json"))
TIMEOUTS = {"header_timeout": 0.3, "body_timeout": 0.3, "keep_alive_timeout": 0.6}


def load_case(path: Path) -> tuple[bytes, list[list[typing.Any]], bool]:
    case = json.loads(path.read_text(encoding="utf-8"))
    raw = case["request"]
    if isinstance(raw, list):
        raw = "".join(text * count for text, count in raw)
    return raw.encode("latin-1"), case["expect"], bool(case.get("eof"))


def send_case(port: int, data: bytes, eof: bool) -> tuple[list[int], bool]:
    """Send ``data`` on a new connection; the statuses answered and whether the server closed."""
    client = Client(port, timeout=3)
    try:
        try:
            client.send(data)
            if eof:
                client.sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished sending: the responses are still there to read
        statuses = []
        while True:
            response = client.response()
            if response is None:
                return statuses, True
            statuses.append(response.status)
            if response.status >= 400:
                return statuses, client.is_closed_by_server(timeout=3)
    finally:
        client.close()


@pytest.fixture(scope="module", params=STACKS, ids=STACK_IDS)
def server(request: pytest.FixtureRequest) -> typing.Iterator[ServerThread]:
    running = ServerThread(stack=request.param, **TIMEOUTS)
    yield running
    running.stop()


@pytest.mark.parametrize("case", CORPUS, ids=[path.stem for path in CORPUS])
def test_malformed_requests_get_their_4xx_and_the_connection_closes(
    server: ServerThread, case: Path
) -> None:
    data, expected, eof = load_case(case)
    statuses, closed = send_case(server.port, data, eof)
    wanted = [entry for entry in expected if entry != ["close"]]
    assert len(statuses) == len(wanted), (statuses, expected)
    for status, allowed in zip(statuses, wanted):
        assert status in allowed, (statuses, expected)
    assert closed, f"{case.stem}: the connection stayed open after {statuses}"
    response = exchange(server.port, post(request(name="after")))
    assert response is not None and sent_strings(response.body) == ["Hello after #0"]


def _valid_requests() -> list[bytes]:
    body = request(name="fuzz")
    return [
        post(body),
        chunked(body),
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        post(body, headers="Expect: 100-continue\r\n"),
        post(body) + post(request("async-greeter")),
    ]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A valid request with a few random edits: flipped, inserted, deleted or duplicated bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        where = rng.randrange(len(out))
        action = rng.randrange(6)
        if action == 0:
            out[where] = rng.randrange(256)
        elif action == 1:
            out.insert(where, rng.choice(b"\r\n :;\x00\t0f"))
        elif action == 2:
            del out[where : where + rng.randint(1, 8)]
        elif action == 3:
            piece = out[where : where + rng.randint(1, 40)]
            out[where:where] = piece
        elif action == 4:
            out = out[: max(1, where)]
        else:
            out[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(out)


def fuzz_round(port: int, seed: int, count: int) -> list[int]:
    """Send ``count`` mutated requests (half-closed after sending); the statuses answered."""
    rng = random.Random(seed)
    valid = _valid_requests()
    seen = []
    for _ in range(count):
        data = mutate(rng.choice(valid), rng)
        client = Client(port, timeout=3)
        try:
            try:
                step = rng.choice([len(data), len(data), 7, 64])
                for start in range(0, len(data), step):
                    client.send(data[start : start + step])
                client.sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
            while True:
                response = client.response()
                if response is None:
                    break
                seen.append(response.status)
        except (ConnectionResetError, AssertionError, ValueError, IndexError):
            # A reset, or a response the mutated request legitimately cut short (HEAD-like).
            pass
        finally:
            client.close()
    return seen


def test_random_mutations_of_valid_requests(server: ServerThread) -> None:
    statuses = fuzz_round(server.port, seed=1, count=150)
    assert statuses, "no mutated request got any answer"
    assert set(statuses) <= {100, 200, 400, 404, 405, 413, 414, 417, 431, 500, 501, 505}
    response = exchange(server.port, post(request(name="after")))
    assert response is not None and sent_strings(response.body) == ["Hello after #0"]


def test_slow_clients_time_out(server: ServerThread) -> None:
    # Three slow clients at once: one trickles its head, one its body, one idles.
    head = Client(server.port)
    head.send(b"POST /statefun HTTP/1.1\r\nHost: x\r\n")
    body = Client(server.port)
    body.send(b"POST /statefun HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789")
    idle = Client(server.port)
    idle.send(post(request()))
    assert idle.response() is not None
    started = time.monotonic()
    for _ in range(12):  # a byte every 50 ms is progress, but the head deadline is total
        try:
            head.send(b"X")
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.05)
    timed_out_head = head.response()
    assert timed_out_head is not None and timed_out_head.status == 408
    assert b"head" in timed_out_head.body
    timed_out_body = body.response()
    assert timed_out_body is not None and timed_out_body.status == 408
    assert b"body" in timed_out_body.body
    assert idle.is_closed_by_server(timeout=3)
    assert time.monotonic() - started < 2.5
    for client in (head, body, idle):
        client.close()
    server.wait_for(lambda: server.connections() == 0)


def test_connection_resets_mid_request_and_mid_function(server: ServerThread) -> None:
    for data in (
        b"POST /statefun HTTP/1.1\r\nContent-Length: 50\r\n\r\nhalf",
        post(request("sleeper", delay_ms=50)),  # reset while the function runs
        b"GET /health HTT",
    ):
        client = Client(server.port)
        client.send(data)
        time.sleep(0.01)
        client.reset()
    server.wait_for(lambda: server.connections() == 0)
    time.sleep(0.1)  # the sleeper finishes, its response goes nowhere
    response = exchange(server.port, post(request(name="after")))
    assert response is not None and sent_strings(response.body) == ["Hello after #0"]


def test_a_client_that_does_not_read_its_responses(server: ServerThread) -> None:
    """Pipelined requests pile up responses; reading pauses, memory stays bounded, order holds."""
    client = Client(server.port, timeout=10)
    count = 3000
    payload = b"".join(post(request(name=f"p{i % 10}")) for i in range(count))
    client.sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 10
    while sent < len(payload) and time.monotonic() < deadline:
        try:
            sent += client.sock.send(payload[sent:])
        except BlockingIOError:
            time.sleep(0.01)  # the server stopped reading: its write buffer is full
    client.sock.setblocking(True)
    for i in range(count):
        response = client.response()
        assert response is not None and sent_strings(response.body) == [f"Hello p{i % 10} #0"]
    client.close()


def _round(server: ServerThread, seed: int) -> None:
    for case in CORPUS:
        data, _, eof = load_case(case)
        send_case(server.port, data, eof)
    fuzz_round(server.port, seed=seed, count=40)
    for _ in range(5):
        client = Client(server.port)
        client.send(post(request("sleeper", delay_ms=5))[:-3])
        client.reset()
    client = Client(server.port)
    client.send(post(request("sleeper", delay_ms=5)) * 3 + b"garbage\r\n\r\n")
    for _ in range(3):
        assert client.response() is not None
    client.close()
    server.wait_for(lambda: server.connections() == 0)


def test_no_leaks_over_repeated_rounds(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest keeps every log record of a test: silence the server's warnings, or they would
    # be the growth measured.
    monkeypatch.setattr(logging.getLogger("statefun.serving"), "disabled", True)
    _round(server, seed=100)  # warm up caches, the spare task, interned strings
    baseline_tasks = server.tasks()
    tracemalloc.start()
    try:
        sizes = []
        for seed in range(101, 105):
            _round(server, seed)
            gc.collect()
            sizes.append(tracemalloc.get_traced_memory()[0])
            assert server.connections() == 0
            assert server.tasks() <= baseline_tasks
    finally:
        tracemalloc.stop()
    # Allocations in the first rounds settle (caches, free lists); later rounds must not grow.
    assert sizes[-1] - sizes[1] < 64 * 1024, sizes
    response = exchange(server.port, post(request(name="after")))
    assert response is not None and sent_strings(response.body) == ["Hello after #0"]
