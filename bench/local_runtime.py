"""Benchmark: ingress → function → egress through the embedded runtime (statefun.local).

The function runs in its own process on 127.0.0.1: by default the greeter example
(``python -m examples.greeter``: protobuf GreetRequest in, SeenCount state, GreetResponse to
Kafka egress), or with ``--function json`` the JSON greeter-like bench/local_greeter_server.py.
In the same run this measures, so the figures read as ratios:

* baseline A — raw HTTP: one invocation per request, as fast as the server answers (the rate
  a runtime without batching could reach);
* baseline B — raw batched HTTP: requests of --batch invocations (the server's ceiling);
* runtime throughput — records accepted (durable in SQLite) → function → egress line written,
  with a full backlog, batching per address; SQLite file in a temp dir, WAL, synchronous=NORMAL;
* the statefun-local command on a JSON-lines file (process start-up included);
* runtime latency — p50/p99 from acceptance to egress at paced rates (--paced-rate).

    .venv/bin/python bench/local_runtime.py [--records 20000] [--keys 100] [--function greeter|json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from statefun import request_reply_pb2 as pb
from statefun.local.config import load_module
from statefun.local.engine import Engine, tune_garbage_collector
from statefun.local.ingress import record_messages
from statefun.local.store import Store

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MODULE = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: http://127.0.0.1:{port}/statefun
  maxNumBatchRequests: {batch}
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  topics:
    - topic: names
      valueType: {value_type}
      targets: [example/greeter]
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/greets
"""

_SEQ = re.compile(r'seq\\": (\d+)')
# The greeter's GreetResponse, read as text: "<name>...<greeting>"; the greeting says which visit.
_GREETING = re.compile(
    r"(?:(Welcome|Nice to see you again|Third time is a charm) (\S+)"
    r"|Nice to see you at the (\d+)-nth time (\S+)!)$"
)
_FIXED_COUNTS = {"Welcome": 1, "Nice to see you again": 2, "Third time is a charm": 3}


@dataclass
class Workload:
    """How records look for one function server, and how an egress line maps back to a record."""

    name: str
    value_type: str
    submitted: dict[tuple[str, int], int] = field(default_factory=dict)  # (key, nth) -> seq
    counts: dict[str, int] = field(default_factory=dict)
    encoded: dict[str, str] = field(default_factory=dict)

    def json_value(self, key: str, seq: int) -> dict[str, Any]:
        """The value as a user writes it in a JSON-lines file."""
        return {"name": key, "seq": seq} if self.name == "json" else {"name": key}

    def record(self, key: str, seq: int) -> dict[str, Any]:
        """The record the in-process runs accept. For the greeter the GreetRequest bytes are
        given pre-encoded, so json_format's conversion cost (measured by the command line run)
        does not hide the runtime's own."""
        if self.name == "json":
            return {"key": key, "value": self.json_value(key, seq)}
        if key not in self.encoded:
            self.encoded[key] = base64.b64encode(self.argument(key)).decode()
        return {"key": key, "value_base64": self.encoded[key]}

    def note(self, key: str, seq: int) -> None:
        if self.name != "json":
            self.counts[key] = self.counts.get(key, 0) + 1
            self.submitted[(key, self.counts[key])] = seq

    def seq_of(self, line: str) -> int:
        if self.name == "json":
            found = _SEQ.search(line)
            assert found is not None, line
            return int(found.group(1))
        # Per key, visits are processed in order, so (name, visit) names the record.
        match = _GREETING.search(json.loads(line)["value"])
        assert match is not None, line
        if match.group(1):
            return self.submitted[(match.group(2), _FIXED_COUNTS[match.group(1)])]
        return self.submitted[(match.group(4), int(match.group(3)))]

    def argument(self, key: str) -> bytes:
        if self.name == "json":
            return json.dumps({"name": key, "seq": 0}).encode()
        from examples.greeter.generated import messages_pb2

        return messages_pb2.GreetRequest(name=key).SerializeToString()


def greeter_egress_types() -> dict[str, Any]:
    from examples.greeter.generated import messages_pb2

    return {"example/greets": messages_pb2.GreetResponse}


class TimingSink:
    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.arrived: dict[int, float] = {}

    def write_lines(self, lines: list[str]) -> None:
        now = time.perf_counter()
        for line in lines:
            self.arrived.setdefault(self.workload.seq_of(line), now)

    def flush(self) -> None:
        pass


def request_body(workload: Workload, key: str, invocations: int) -> bytes:
    request = pb.ToFunction()
    batch = request.invocation
    batch.target.CopyFrom(pb.Address(namespace="example", type="greeter", id=key))
    batch.state.add(state_name="seen_count")
    argument = pb.TypedValue(
        typename=workload.value_type, has_value=True, value=workload.argument(key)
    )
    for _ in range(invocations):
        batch.invocations.add().argument.CopyFrom(argument)
    return request.SerializeToString()


async def raw_rate(
    workload: Workload,
    url: str,
    invocations: int,
    seconds: float,
    concurrency: int,
    keys: int | None = None,
) -> float:
    """Messages/s the server handles when posted to directly, `invocations` per request, the
    requests going to `keys` distinct ids in turn (default: one per connection)."""
    distinct = min(keys or concurrency, 5_000)
    bodies = [request_body(workload, f"user{k}", invocations) for k in range(distinct)]
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        stop_at = time.perf_counter() + seconds

        async def worker(first: int) -> None:
            nonlocal done
            index = first
            while time.perf_counter() < stop_at:
                async with session.post(
                    url,
                    data=bodies[index % distinct],
                    headers={"Content-Type": "application/octet-stream"},
                ) as response:
                    await response.read()
                    assert response.status == 200, response.status
                done += invocations
                index += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(first) for first in range(concurrency)))
        return done / (time.perf_counter() - started)


async def runtime_run(
    workload: Workload, module: str, db: str, records: int, keys: int, rate: float | None
) -> tuple[float, list[float], int, int]:
    config = load_module(module)
    store = Store(db)
    workload.submitted.clear()
    workload.counts.clear()
    sink = TimingSink(workload)
    engine = Engine(config, store, {"example/greets": sink}, log=lambda text: None)
    await engine.start()
    submitted: dict[int, float] = {}
    chunk = 500 if rate is None else max(1, int(rate / 100))
    started = time.perf_counter()
    try:
        pending = []
        for first in range(0, records, chunk):
            if rate is not None:
                delay = started + first / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            messages = []
            now = time.perf_counter()
            for seq in range(first, min(first + chunk, records)):
                key = f"user{seq % keys}"
                messages += record_messages(workload.record(key, seq), config)
                workload.note(key, seq)
                submitted[seq] = now
            pending.append(engine.accept(messages))
            if rate is None:
                await engine.room_for_more()
        await asyncio.gather(*pending)
        deadline = time.perf_counter() + 300
        while len(sink.arrived) < records:
            if engine.failure is not None:
                raise engine.failure
            assert time.perf_counter() < deadline, "the benchmark did not finish"
            await asyncio.sleep(0.005)
        elapsed = max(sink.arrived.values()) - started
        latencies = [sink.arrived[seq] - submitted[seq] for seq in range(records)]
        requests, commits = engine.client.requests_sent, engine.committer.transactions
        return records / elapsed, latencies, requests, commits
    finally:
        await engine.close()
        store.close()


class CountingSink:
    def __init__(self) -> None:
        self.lines = 0

    def write_lines(self, lines: list[str]) -> None:
        self.lines += len(lines)

    def flush(self) -> None:
        pass


@dataclass
class ManyKeys:
    keys: int
    records: int
    rate: float
    runtime_cpu_us: float
    server_cpu_us: float
    requests: int
    registrations: int


async def many_keys_run(
    workload: Workload, module: str, db: str, keys: int, per_key: int, server_pid: int
) -> ManyKeys:
    """`per_key` messages for each of `keys` ids, round-robin (a key's messages as far apart as
    they can be), submitted as fast as ingress admits them; records are built before the clock
    starts, so the CPU figure is the runtime's own."""
    config = load_module(module)
    records = keys * per_key
    messages = []
    for seq in range(records):
        key = f"user{seq % keys}"
        messages += record_messages(workload.record(key, seq), config)
    store = Store(db)
    sink = CountingSink()
    engine = Engine(config, store, {"example/greets": sink}, log=lambda text: None)
    await engine.start()
    try:
        server_cpu, own_cpu = process_cpu_s(server_pid), time.process_time()
        started = time.perf_counter()
        pending = []
        for first in range(0, len(messages), 2_000):
            chunk = messages[first : first + 2_000]
            await engine.admit(len(chunk))
            pending.append(engine.accept(chunk, admitted=len(chunk)))
        await asyncio.gather(*pending)
        deadline = time.perf_counter() + 600
        while sink.lines < records:
            if engine.failure is not None:
                raise engine.failure
            assert time.perf_counter() < deadline, "the benchmark did not finish"
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        own_cpu = time.process_time() - own_cpu
        server_cpu = process_cpu_s(server_pid) - server_cpu
        return ManyKeys(
            keys,
            records,
            records / elapsed,
            own_cpu / records * 1e6,
            server_cpu / records * 1e6,
            engine.client.requests_sent,
            engine.registrations_requested,
        )
    finally:
        await engine.close()
        store.close()


def cli_rate(workload: Workload, module: str, directory: str, records: int, keys: int) -> float:
    """Records/s of the statefun-local command itself: a JSON-lines file in, an egress file out
    (process start-up and module loading included)."""
    names = os.path.join(directory, "names.jsonl")
    with open(names, "w") as handle:
        for seq in range(records):
            key = f"user{seq % keys}"
            handle.write(json.dumps({"key": key, "value": workload.json_value(key, seq)}) + "\n")
    out = os.path.join(directory, "greets.jsonl")
    command = [sys.executable, "-m", "statefun.local", module, "--db"]
    command += [os.path.join(directory, "cli.db"), "--input", names]
    command += ["--egress", f"example/greets={out}"]
    if workload.name == "greeter":
        command += ["--proto-module", "examples.greeter.generated.messages_pb2"]
        command += ["--egress-type", "example/greets=example.GreetResponse"]
    started = time.perf_counter()
    subprocess.run(command, check=True, timeout=600, stderr=subprocess.DEVNULL, cwd=ROOT)
    elapsed = time.perf_counter() - started
    with open(out) as handle:
        assert sum(1 for _ in handle) >= records
    return records / elapsed


def process_cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start_server(workload: Workload) -> tuple[subprocess.Popen[str], int]:
    if workload.name == "json":
        server = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "local_greeter_server.py")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        return server, int(server.stdout.readline())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.greeter", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "greeter did not start"
            time.sleep(0.05)


async def main_async(args: argparse.Namespace) -> None:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    value_type = (
        "example/GreetRequest"
        if args.function == "json"
        else "type.googleapis.com/example.GreetRequest"
    )
    workload = Workload(args.function, value_type)
    if args.function == "greeter":
        greeter_egress_types()  # imports the message types, so JSON values convert
    server, port = start_server(workload)
    try:
        url = f"http://127.0.0.1:{port}/statefun"
        with tempfile.TemporaryDirectory() as directory:
            module = os.path.join(directory, "module.yaml")
            with open(module, "w") as handle:
                handle.write(MODULE.format(port=port, batch=args.batch, value_type=value_type))
            await raw_rate(workload, url, 1, 0.5, 8)  # warm-up
            single = await raw_rate(workload, url, 1, args.seconds, args.concurrency)
            batched = await raw_rate(workload, url, args.batch, args.seconds, args.concurrency)
            server_cpu, own_cpu = process_cpu_s(server.pid), time.process_time()
            throughput, full_latencies, requests, commits = await runtime_run(
                workload, module, os.path.join(directory, "bench.db"), args.records, args.keys, None
            )
            server_cpu = process_cpu_s(server.pid) - server_cpu
            own_cpu = time.process_time() - own_cpu
            command_rate = cli_rate(workload, module, directory, args.records, args.keys)
            many: list[tuple[float, int, ManyKeys]] = []
            for keys in args.many_keys:
                for per_key in args.per_key:
                    single_here = await raw_rate(
                        workload, url, 1, args.seconds, args.concurrency, keys=keys
                    )
                    db = os.path.join(directory, f"keys{keys}x{per_key}.db")
                    result = await many_keys_run(workload, module, db, keys, per_key, server.pid)
                    many.append((single_here, per_key, result))
            paced = []
            for index, rate in enumerate(args.paced_rate or [250.0, throughput / 2]):
                db = os.path.join(directory, f"paced{index}.db")
                count = min(args.records, int(rate * 4))
                _, latencies, _, _ = await runtime_run(workload, module, db, count, args.keys, rate)
                paced.append((rate, latencies))
        load = os.getloadavg()[0]
        server_kind = "examples.greeter" if args.function == "greeter" else "local_greeter_server"
        print(
            f"machine     {os.cpu_count()} CPUs, load average {load:.1f}, Python "
            f"{sys.version.split()[0]}; function: {server_kind} in its own process"
        )
        print(
            f"baseline A  raw HTTP, 1 invocation/request, {args.concurrency} connections: "
            f"{single:9,.0f} msg/s"
        )
        print(
            f"baseline B  raw HTTP, {args.batch} invocations/request:              "
            f"{batched:9,.0f} msg/s"
        )
        print(
            f"runtime     {args.records:,} records, {args.keys} keys, backlog, durable:   "
            f"{throughput:9,.0f} msg/s  ({throughput / single:.1f}x A, {throughput / batched:.2f}x B;"
            f" {args.records / requests:.1f} msg/request, "
            f"{args.records / max(commits, 1):.0f} msg/commit)"
        )
        print(
            f"command     statefun-local on a {args.records:,}-line file, start-up included: "
            f"{command_rate:9,.0f} msg/s"
        )
        print(
            f"cpu         runtime {own_cpu / args.records * 1e6:.0f} us/msg (incl. this harness), "
            f"function server {server_cpu / args.records * 1e6:.0f} us/msg"
        )
        for single_here, per_key, result in many:
            print(
                f"many keys   {result.keys:,} keys x {per_key} = {result.records:,} records "
                f"(round-robin), backlog, durable: {result.rate:9,.0f} msg/s "
                f"({result.rate / single_here:.2f}x A over these keys = {single_here:,.0f} msg/s; "
                f"{result.records / result.requests:.2f} msg/request, "
                f"{result.registrations} state registration round trip(s); cpu runtime "
                f"{result.runtime_cpu_us:.0f} us/msg, server {result.server_cpu_us:.0f} us/msg)"
            )
        for rate, latencies in paced:
            print(
                f"latency     paced at {rate:,.0f} msg/s: p50 {percentile(latencies, 0.5) * 1000:.1f}"
                f" ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
            )
        print(
            f"latency     whole backlog at once (queueing): p50 "
            f"{percentile(full_latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(full_latencies, 0.99) * 1000:.0f} ms"
        )
    finally:
        server.kill()
        server.wait(timeout=10)


def main() -> None:
    tune_garbage_collector()  # as the statefun-local command does
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--function", choices=("greeter", "json"), default="greeter")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=100, help="distinct names (function ids)")
    parser.add_argument(
        "--batch", type=int, default=100, help="maxNumBatchRequests, and baseline B's batch"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--many-keys",
        type=lambda text: [int(part) for part in text.split(",") if part],
        default=[10_000, 100_000],
        help="distinct keys of the many-keys runs, comma-separated (default: 10000,100000)",
    )
    parser.add_argument(
        "--per-key",
        type=lambda text: [int(part) for part in text.split(",") if part],
        default=[1, 3],
        help="messages per key in the many-keys runs, comma-separated (default: 1,3); with one "
        "message per key no batch can hold two, so baseline A is the ceiling",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each baseline")
    parser.add_argument(
        "--paced-rate",
        type=float,
        action="append",
        help="msg/s for a latency run; repeatable (default: 250 and half the throughput)",
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
