"""What the runtime holds stays bounded, and what it acknowledged or consumed is never lost:
an HTTP flood, stdin under kill -9, a restart with a full inbox."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import aiohttp
from aiohttp import web

from local_support import (
    JSON_GREETER,
    FakeFunctions,
    json_greeter_module,
    reply,
    spawn_server,
    stop,
    write_module,
)
from statefun import request_reply_pb2 as pb
from statefun.local.config import load_module
from statefun.local.engine import Engine
from statefun.local.store import Store
from statefun.local.wire import typed_value

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ENV = {**os.environ, "PYTHONPATH": ROOT}


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def peak_memory_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        found = re.search(r"VmHWM:\s+(\d+) kB", handle.read())
    assert found is not None
    return int(found.group(1)) / 1024


def wait_for_log(path: str, pattern: str, process: subprocess.Popen[str]) -> re.Match[str]:
    deadline = time.monotonic() + 20
    while True:
        with open(path) as handle:
            found = re.search(pattern, handle.read())
        if found:
            return found
        assert process.poll() is None and time.monotonic() < deadline, open(path).read()
        time.sleep(0.05)


def test_an_http_flood_is_admitted_only_as_far_as_it_fits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """100 producers post 2,000 records of 1 KB each at once while the function is down: the
    runtime takes in --max-backlog of them, acknowledges exactly what it committed, and holds
    little of the rest (reading all 200 MB of bodies, as it once did, took it past 400 MB)."""
    (tmp_path / "module.yaml").write_text(json_greeter_module(unused_port(), max_batch=20))
    log_path = str(tmp_path / "runtime.log")
    log = open(log_path, "w")
    runtime = subprocess.Popen(
        [sys.executable, "-m", "statefun.local", "module.yaml", "--db", "state.db"]
        + ["--http-ingress", "127.0.0.1:0", "--max-backlog", "10000"]
        + ["--no-endpoint-check", "--call-timeout", "60s"],
        cwd=tmp_path,
        stderr=log,
        text=True,
        env=ENV,
    )
    try:
        url = wait_for_log(log_path, r"HTTP ingress listening on (http://\S+)", runtime).group(1)
        idle = peak_memory_mb(runtime.pid)
        padding = "x" * 1000
        body = "".join(
            json.dumps({"key": f"k{i % 500}", "value": {"name": f"n{i}", "note": padding}}) + "\n"
            for i in range(2000)
        ).encode()

        async def flood() -> list[int]:
            acknowledged: list[int] = []
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

                async def post() -> None:
                    async with session.post(url, data=body) as response:
                        assert response.status == 200, await response.text()
                        acknowledged.append((await response.json())["accepted"])

                tasks = [asyncio.ensure_future(post()) for _ in range(100)]
                # Five requests fill the backlog; give the runtime time to take them, then a
                # while longer to show that it takes no more.
                deadline = time.monotonic() + 20
                while sum(acknowledged) < 10000 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return acknowledged

        acknowledged = asyncio.run(flood())
        peak = peak_memory_mb(runtime.pid)
        runtime.kill()
        runtime.wait(timeout=10)
    finally:
        stop(runtime)
    with sqlite3.connect(tmp_path / "state.db") as db:
        stored = db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
    assert sum(acknowledged) == 10000, acknowledged  # five requests fit, the rest waited
    assert stored == 10000  # every acknowledged record is durable; nothing past the bound
    assert peak - idle < 90, f"the runtime grew from {idle:.0f} to {peak:.0f} MB"


def test_stdin_is_consumed_only_as_it_becomes_durable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """kill -9 while lines stream through a pipe: every line the runtime took out of the pipe
    is in its database (inbox, outbox) or already written to egress; the rest is still in the
    pipe. (Reading ahead of commits, as a thread feeding a queue does, loses lines here.)"""
    server, port = spawn_server(JSON_GREETER)
    (tmp_path / "module.yaml").write_text(json_greeter_module(port, max_batch=20))
    total = 6000
    lines = [
        (json.dumps({"key": f"k{i % 7}", "value": {"name": f"k{i % 7}", "seq": i}}) + "\n").encode()
        for i in range(total)
    ]
    read_end, write_end = os.pipe()
    runtime = subprocess.Popen(
        [sys.executable, "-m", "statefun.local", "module.yaml", "--db", "state.db"]
        + ["--input", "-", "--egress", "example/greets=out.jsonl", "--max-backlog", "200"],
        cwd=tmp_path,
        stdin=read_end,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )

    def write_all() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            for line in lines:
                pipe.write(line)
                pipe.flush()

    writer = threading.Thread(target=write_all, daemon=True)
    try:
        writer.start()
        out = tmp_path / "out.jsonl"
        deadline = time.monotonic() + 30
        while not out.exists() or out.read_text().count("\n") < 600:
            assert runtime.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        runtime.send_signal(signal.SIGKILL)
        runtime.wait(timeout=10)
        # The pipe outlives the runtime here (this process holds its read end too): what the
        # runtime did not take is still in it.
        left = b""
        with os.fdopen(read_end, "rb") as pipe:
            while chunk := pipe.read(65536):
                left += chunk
        writer.join(10)
    finally:
        stop(runtime, server)
    still_in_pipe = {json.loads(line)["value"]["seq"] for line in left.splitlines()}
    taken: set[int] = set()
    for line in (tmp_path / "out.jsonl").read_text().splitlines():
        taken.add(json.loads(json.loads(line)["value"])["seq"])
    with sqlite3.connect(tmp_path / "state.db") as db:
        for (argument,) in db.execute("SELECT argument FROM inbox"):
            taken.add(json.loads(pb.TypedValue.FromString(argument).value)["seq"])
        for (lines,) in db.execute("SELECT line FROM outbox"):  # one row: a batch's lines
            for line in lines.splitlines():
                taken.add(json.loads(json.loads(line)["value"])["seq"])
    assert taken | still_in_pipe == set(range(total)), sorted(
        set(range(total)) - taken - still_in_pipe
    )[:10]
    assert 600 <= len(taken) < total
    # Committed but not yet taken from the pipe when the kill came: at most one read's worth.
    assert len(taken & still_in_pipe) <= 2000


def test_a_restart_with_a_full_inbox_holds_a_window_of_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """4,000 waiting messages for 2,000 addresses, the engine allowed to track 50 addresses: all
    are processed, each address's messages in order, never more than 50 tracked."""
    db = str(tmp_path / "state.db")
    store = Store(db)
    with store.transaction():
        store.insert_inbox_many(
            [
                (("example/greeter", f"user{i % 2000}"), None, typed_value("t/x", str(i).encode()))
                for i in range(4000)
            ]
        )
    store.close()
    seen: dict[str, list[int]] = {}

    async def record(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        for invocation in request.invocations:
            seen.setdefault(request.target.id, []).append(int(invocation.argument.value))
        return reply(pb.FromFunction())

    async def main() -> int:
        fake = await FakeFunctions(handlers={"greeter": record}).start()
        config = load_module(write_module(str(tmp_path), fake.port))
        store = Store(db)
        engine = Engine(config, store, {}, log=lambda text: None, max_tracked=50)
        most = 0
        try:
            await engine.start()
            deadline = time.monotonic() + 20
            while not engine.is_idle():
                most = max(most, len(engine.tracked))
                assert engine.failure is None and time.monotonic() < deadline
                await asyncio.sleep(0.001)
            assert store.inbox_size() == 0
        finally:
            await engine.close()
            store.close()
            await fake.stop()
        return most

    most = asyncio.run(main())
    assert most <= 50
    assert len(seen) == 2000
    assert all(values == [int(key[4:]), int(key[4:]) + 2000] for key, values in seen.items())
