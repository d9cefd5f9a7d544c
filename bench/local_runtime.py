"""Benchmark: ingress → function → egress through the embedded runtime (statefun.local).

The greeter-like function (bench/local_greeter_server.py, SDK + aiohttp) runs in its own
process on 127.0.0.1. In the same run this measures, so the figures read as ratios:

* baseline A — raw HTTP: one invocation per request, as fast as the server answers (the rate
  a runtime without batching could reach);
* baseline B — raw batched HTTP: requests of --batch invocations (the server's ceiling);
* runtime throughput — records accepted (durable in SQLite) → function → egress line written,
  with a full backlog, batching per address; SQLite file in a temp dir, WAL, synchronous=NORMAL;
* runtime latency — p50/p99 from acceptance to egress at a paced rate (--paced-rate).

    .venv/bin/python bench/local_runtime.py [--records 20000] [--keys 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import aiohttp

from statefun import request_reply_pb2 as pb
from statefun.local.config import load_module
from statefun.local.engine import Engine, tune_garbage_collector
from statefun.local.ingress import record_messages
from statefun.local.store import Store

HERE = os.path.dirname(os.path.abspath(__file__))

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
      valueType: example/GreetRequest
      targets: [example/greeter]
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/greets
"""


_SEQ = re.compile(r'seq\\": (\d+)')


class TimingSink:
    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}

    def write_lines(self, lines: list[str]) -> None:
        now = time.perf_counter()
        for line in lines:
            found = _SEQ.search(line)
            assert found is not None, line
            self.arrived.setdefault(int(found.group(1)), now)

    def flush(self) -> None:
        pass


def request_body(key: str, invocations: int, seq: int) -> bytes:
    request = pb.ToFunction()
    batch = request.invocation
    batch.target.CopyFrom(pb.Address(namespace="example", type="greeter", id=key))
    batch.state.add(state_name="seen_count")
    for index in range(invocations):
        batch.invocations.add().argument.CopyFrom(
            pb.TypedValue(
                typename="example/GreetRequest",
                has_value=True,
                value=json.dumps({"name": key, "seq": seq + index}).encode(),
            )
        )
    return request.SerializeToString()


async def raw_rate(url: str, invocations: int, seconds: float, concurrency: int) -> float:
    """Messages/s the server handles when posted to directly, `invocations` per request."""
    bodies = [request_body(f"user{k}", invocations, 0) for k in range(concurrency)]
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        stop_at = time.perf_counter() + seconds

        async def worker(body: bytes) -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/octet-stream"}
                ) as response:
                    await response.read()
                    assert response.status == 200, response.status
                done += invocations

        started = time.perf_counter()
        await asyncio.gather(*(worker(body) for body in bodies))
        return done / (time.perf_counter() - started)


async def runtime_run(
    module: str, db: str, records: int, keys: int, rate: float | None
) -> tuple[float, list[float], int, int]:
    config = load_module(module)
    store = Store(db)
    sink = TimingSink()
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
                messages += record_messages(
                    {"key": key, "value": {"name": key, "seq": seq}}, config
                )
                submitted[seq] = now
            pending.append(engine.accept(messages))
            while rate is None and engine.backlog > 20_000:
                engine.progress.clear()
                await engine.progress.wait()
        await asyncio.gather(*pending)
        deadline = time.perf_counter() + 300
        while len(sink.arrived) < records:
            if engine.failure is not None:
                raise engine.failure
            assert time.perf_counter() < deadline, "the benchmark did not finish"
            await asyncio.sleep(0.005)
        elapsed = max(sink.arrived.values()) - started
        latencies = [sink.arrived[seq] - submitted[seq] for seq in range(records)]
        return (
            records / elapsed,
            latencies,
            engine.client.requests_sent,
            engine.committer.transactions,
        )
    finally:
        await engine.close()
        store.close()


def cli_rate(module: str, directory: str, records: int, keys: int) -> float:
    """Records/s of the statefun-local command itself: a JSON-lines file in, an egress file out
    (process start-up and module loading included)."""
    names = os.path.join(directory, "names.jsonl")
    with open(names, "w") as handle:
        for seq in range(records):
            key = f"user{seq % keys}"
            handle.write(json.dumps({"key": key, "value": {"name": key, "seq": seq}}) + "\n")
    out = os.path.join(directory, "greets.jsonl")
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "statefun.local",
            module,
            "--db",
            os.path.join(directory, "cli.db"),
            "--input",
            names,
            "--egress",
            f"example/greets={out}",
        ],
        check=True,
        timeout=600,
        stderr=subprocess.DEVNULL,
    )
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


async def main_async(args: argparse.Namespace) -> None:
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "local_greeter_server.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/statefun"
        with tempfile.TemporaryDirectory() as directory:
            module = os.path.join(directory, "module.yaml")
            with open(module, "w") as handle:
                handle.write(MODULE.format(port=port, batch=args.batch))
            await raw_rate(url, 1, 0.5, 8)  # warm-up
            single = await raw_rate(url, 1, args.seconds, args.concurrency)
            batched = await raw_rate(url, args.batch, args.seconds, args.concurrency)
            server_cpu, own_cpu = process_cpu_s(server.pid), time.process_time()
            throughput, full_latencies, requests, commits = await runtime_run(
                module, os.path.join(directory, "bench.db"), args.records, args.keys, None
            )
            server_cpu = process_cpu_s(server.pid) - server_cpu
            own_cpu = time.process_time() - own_cpu
            command_rate = cli_rate(module, directory, args.records, args.keys)
            paced = []
            for index, rate in enumerate(args.paced_rate or [250.0, throughput / 2]):
                _, latencies, _, _ = await runtime_run(
                    module,
                    os.path.join(directory, f"paced{index}.db"),
                    min(args.records, int(rate * 4)),
                    args.keys,
                    rate,
                )
                paced.append((rate, latencies))
        print(
            f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; function server: own process, SDK + aiohttp"
        )
        print(
            f"baseline A  raw HTTP, 1 invocation/request, {args.concurrency} connections: {single:9,.0f} msg/s"
        )
        print(
            f"baseline B  raw HTTP, {args.batch} invocations/request:                     {batched:9,.0f} msg/s"
        )
        print(
            f"runtime     {args.records:,} records, {args.keys} keys, backlog, durable:      {throughput:9,.0f} msg/s"
            f"  ({throughput / single:.1f}x A, {throughput / batched:.2f}x B; "
            f"{args.records / requests:.1f} msg/request, {args.records / max(commits, 1):.1f} msg/commit)"
        )
        print(
            f"command     statefun-local, {args.records:,}-line file → egress file, start-up included: "
            f"{command_rate:9,.0f} msg/s"
        )
        print(
            f"cpu         runtime {own_cpu / args.records * 1e6:.0f} us/msg (incl. this harness), "
            f"function server {server_cpu / args.records * 1e6:.0f} us/msg"
        )
        for rate, latencies in paced:
            print(
                f"latency     paced at {rate:,.0f} msg/s: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
            )
        print(
            f"latency     under full backlog (queueing included): p50 {percentile(full_latencies, 0.5) * 1000:.0f} ms, "
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
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=100, help="distinct names (function ids)")
    parser.add_argument(
        "--batch", type=int, default=100, help="maxNumBatchRequests, and baseline B's batch"
    )
    parser.add_argument("--concurrency", type=int, default=32)
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
