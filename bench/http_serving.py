"""HTTP serving throughput: statefun-serve beside upstream 3.3.0 + aiohttp and our adapters.

    flock /tmp/statefun-bench.lock .venv/bin/python bench/http_serving.py [--seconds 5] [--rounds 2]

One run serves the same greeter-like function (bench/sdk_handler.py: reads and
writes an int state, sends a message and a Kafka egress record) behind:

* (a) upstream   — apache-flink-statefun 3.3.0 behind the aiohttp snippet of
                   upstream's documentation (installed with --no-deps into
                   bench/.work/upstream-venv, with our aiohttp and protobuf);
* (b) aiohttp    — our ``statefun.serving.aiohttp.make_app`` under ``web.run_app``;
* (c) asgi       — our ``make_asgi_app`` under uvicorn (uvloop + httptools,
                   access log off, as one would deploy it);
* (d) serve      — ``python -m statefun.serving http_serving:greeter_handler``;

and, to explain the figures: statefun-serve with an ``async def`` function,
with one task per request (``--dispatch task``), and on the pure-Python
fallback (asyncio + statefun.serving.http1); and the HTTP floors, a server
answering a prebuilt response with no SDK at all: statefun-serve's stack and
a bare aiohttp handler.

Every server process is pinned to core 0 (taskset) and the load comes from a
separate process pinned to core 1: wrk (Debian's package) with a Lua script
that POSTs the protobuf body, or, where wrk is missing, a Python load
generator (slower: it may then be the bottleneck, and the output says so).
Each measurement is repeated ``--rounds`` times, servers alternating, and the
best kept. Before loading, each server answers every benchmark request once
and the responses (status, content type, body) are checked byte-identical
across servers; our three adapters are also checked on error requests.
Figures are ratios against (a) measured in the same run; the machine load
(load average, CPU used by other processes while measuring) is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import typing

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import sdk_handler  # noqa: E402 - bench/ is put on sys.path just above

BATCH_SIZES = sdk_handler.BATCH_SIZES
SERVER_CORE = "0"
LOAD_CORE = "1"
PATH = "/statefun"

LUA_SCRIPT = """
local file = io.open(os.getenv("STATEFUN_BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/octet-stream"
"""


# ---------------------------------------------------------------------------------------------
# What the servers serve


def _functions(async_function: bool = False) -> typing.Any:
    from statefun import IntType, StatefulFunctions, ValueSpec

    body = sdk_handler.greeter_body()
    functions = StatefulFunctions()
    if async_function:

        async def greet(context: typing.Any, message: typing.Any) -> None:
            body(context, message)

        functions.register("bench/greeter", greet, specs=[ValueSpec(name="seen", type=IntType)])
    else:
        functions.register("bench/greeter", body, specs=[ValueSpec(name="seen", type=IntType)])
    return functions


def greeter_handler() -> typing.Any:
    """statefun-serve's target: ``http_serving:greeter_handler``."""
    return sdk_handler.build_handler()


def async_greeter_functions() -> typing.Any:
    """The same greeter as an ``async def`` function: ``http_serving:async_greeter_functions``."""
    return _functions(async_function=True)


class PrebuiltHandler:
    """The floor: answers each benchmark request with its response, computed once, no SDK."""

    def __init__(self) -> None:
        handler = sdk_handler.build_handler()
        self._responses = {}
        for size in BATCH_SIZES:
            request = sdk_handler.build_request(size)
            self._responses[len(request)] = handler.handle_sync(request)

    async def handle_async(self, request: bytes) -> bytes:
        response: bytes = self._responses[len(request)]
        return response


def floor_handler() -> PrebuiltHandler:
    return PrebuiltHandler()


def serve(kind: str, port: int) -> None:
    """Run one of the servers that is not statefun-serve itself (in its own process)."""
    if kind == "upstream":
        # Upstream's documented snippet, verbatim but for the function and the port.
        from aiohttp import web

        from statefun import RequestReplyHandler

        handler = RequestReplyHandler(_functions())

        async def handle(request: typing.Any) -> typing.Any:
            req = await request.read()
            res = await handler.handle_async(req)
            return web.Response(body=res, content_type="application/octet-stream")

        app = web.Application()
        app.add_routes([web.post(PATH, handle)])
        web.run_app(app, port=port, print=None)
    elif kind == "aiohttp":
        from aiohttp import web

        from statefun.serving.aiohttp import make_app

        web.run_app(make_app(greeter_handler(), path=PATH), port=port, print=None)
    elif kind == "asgi":
        import uvicorn

        from statefun.serving.asgi import make_asgi_app

        uvicorn.run(
            make_asgi_app(greeter_handler(), path=PATH),
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
        )
    elif kind == "aiohttp-floor":
        from aiohttp import web

        prebuilt = PrebuiltHandler()

        async def answer(request: typing.Any) -> typing.Any:
            body = await prebuilt.handle_async(await request.read())
            response = web.Response(body=body)
            response.headers["Content-Type"] = "application/octet-stream"
            return response

        app = web.Application()
        app.add_routes([web.post(PATH, answer)])
        web.run_app(app, port=port, print=None)
    else:
        raise SystemExit(f"unknown server kind {kind!r}")


# ---------------------------------------------------------------------------------------------
# The servers of one run


class Server(typing.NamedTuple):
    key: str
    label: str
    command: typing.Callable[[int], list[str]]
    in_ratio: bool = True


def _serve_command(
    python: str, kind: str, isolated: bool = False
) -> typing.Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        flags = ["-I"] if isolated else []
        return [python, *flags, os.path.abspath(__file__), "--serve", kind, "--port", str(port)]

    return command


def _cli_command(target: str, *options: str) -> typing.Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "statefun.serving",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *options,
            target,
        ]

    return command


def servers(upstream_python: str) -> list[Server]:
    return [
        Server(
            "floor",
            "floor: statefun-serve stack, prebuilt response",
            _cli_command("http_serving:floor_handler"),
            False,
        ),
        Server(
            "aiohttp-floor",
            "floor: aiohttp, prebuilt response",
            _serve_command(sys.executable, "aiohttp-floor"),
            False,
        ),
        # -I: the upstream interpreter must not find this repository's statefun.
        Server(
            "upstream",
            "(a) upstream 3.3.0 + aiohttp snippet",
            _serve_command(upstream_python, "upstream", isolated=True),
        ),
        Server("aiohttp", "(b) ours: aiohttp adapter", _serve_command(sys.executable, "aiohttp")),
        Server("asgi", "(c) ours: ASGI under uvicorn", _serve_command(sys.executable, "asgi")),
        Server("serve", "(d) ours: statefun-serve", _cli_command("http_serving:greeter_handler")),
        Server(
            "serve-async",
            "(d) with an async def function",
            _cli_command("http_serving:async_greeter_functions"),
        ),
        Server(
            "serve-task",
            "(d) one task per request",
            _cli_command("http_serving:greeter_handler", "--dispatch", "task"),
        ),
        Server(
            "serve-fallback",
            "(d) asyncio + pure-Python parser",
            _cli_command("http_serving:greeter_handler", "--loop", "asyncio", "--http", "python"),
        ),
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def post(port: int, body: bytes, path: str = PATH) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/octet-stream"}
        )
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


class Running:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = free_port()
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *server.command(self.port)],
            cwd=HERE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        request = sdk_handler.build_request(1)
        while True:
            try:
                post(self.port, request)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    error = self.process.stderr.read().decode() if self.process.stderr else ""
                    self.stop()
                    raise SystemExit(f"{server.label} did not start:\n{error}")
                time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU time of the server process and its children so far (from /proc)."""
        total = 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        pids = [self.process.pid]
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as handle:
                pids += [int(pid) for pid in handle.read().split()]
        except OSError:
            pass
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
            except OSError:
                pass
        return total

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (from /proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Load generators


def run_wrk(port: int, body_path: str, seconds: float, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA_SCRIPT)
    try:
        completed = subprocess.run(
            [
                "taskset",
                "-c",
                LOAD_CORE,
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}{PATH}",
            ],
            env={**os.environ, "STATEFUN_BENCH_BODY": body_path},
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(script.name)
    output = completed.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if rate is None or count is None:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = int(bad.group(1)) if bad else 0
    failed += sum(int(value) for value in errors.groups()) if errors else 0
    return {"rate": float(rate.group(1)), "requests": int(count.group(1)), "failed": failed}


async def _python_load(port: int, body: bytes, seconds: float, connections: int) -> tuple[int, int]:
    request = (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (PATH.encode(), len(body), body)
    )
    deadline = time.monotonic() + seconds
    counts = [0, 0]

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                counts[0 if head.startswith(b"HTTP/1.1 200") else 1] += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return counts[0], counts[1]


def run_python_load(
    port: int, body_path: str, seconds: float, connections: int
) -> dict[str, float]:
    completed = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            sys.executable,
            os.path.abspath(__file__),
            "--load",
            str(port),
            body_path,
            str(seconds),
            str(connections),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return typing.cast(dict[str, float], json.loads(completed.stdout))


def python_load_main(port: int, body_path: str, seconds: float, connections: int) -> None:
    with open(body_path, "rb") as handle:
        body = handle.read()
    started = time.monotonic()
    try:
        import uvloop
    except ImportError:
        ok, failed = asyncio.run(_python_load(port, body, seconds, connections))
    else:
        ok, failed = uvloop.run(_python_load(port, body, seconds, connections))
    elapsed = time.monotonic() - started
    print(json.dumps({"rate": ok / elapsed, "requests": ok + failed, "failed": failed}))


# ---------------------------------------------------------------------------------------------
# The run


def error_requests() -> dict[str, bytes]:
    from statefun.request_reply_pb2 import ToFunction

    unknown = ToFunction()
    unknown.invocation.target.namespace, unknown.invocation.target.type = "bench", "nobody"
    unknown.invocation.target.id = "x"
    unknown.invocation.invocations.add()
    return {
        "malformed": b"\xff\xff\xff",
        "empty": b"",
        "unknown function": unknown.SerializeToString(),
    }


def check_responses(running: dict[str, Running]) -> list[str]:
    """Problems: responses that differ between servers (none expected)."""
    problems = []
    for size in BATCH_SIZES:
        request = sdk_handler.build_request(size)
        answers = {key: post(process.port, request) for key, process in running.items()}
        reference = answers["upstream"]
        if reference[0] != 200 or reference[1] != "application/octet-stream":
            problems.append(f"batch {size}: upstream answered {reference[:2]}")
        for key, answer in answers.items():
            if answer != reference:
                problems.append(f"batch {size}: {key} answered differently from upstream")
    for name, request in error_requests().items():
        answers = {key: post(running[key].port, request) for key in ("aiohttp", "asgi", "serve")}
        if len(set(answers.values())) != 1:
            problems.append(f"{name} request: our adapters answer differently: {answers}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, servers alternating")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument(
        "--generator", choices=["auto", "wrk", "python"], default="auto", help="load generator"
    )
    parser.add_argument("--only", help="comma-separated server keys to measure (default: all)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.load:
        port, body_path, seconds, connections = args.load
        python_load_main(int(port), body_path, float(seconds), int(connections))
        return

    import aiohttp
    import google.protobuf

    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the server and the load")
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    load = run_wrk if generator == "wrk" else run_python_load

    upstream_python = sdk_handler.upstream_python()
    probe = subprocess.run([upstream_python, "-I", "-c", "import aiohttp"], capture_output=True)
    if probe.returncode:
        subprocess.run(
            [upstream_python, "-m", "pip", "install", "-q", f"aiohttp=={aiohttp.__version__}"],
            check=True,
        )
    chosen = servers(upstream_python)
    if args.only:
        keys = set(args.only.split(",")) | {"upstream"}
        chosen = [server for server in chosen if server.key in keys]

    bodies = {}
    work = tempfile.mkdtemp(prefix="statefun-http-bench-")
    for size in BATCH_SIZES:
        bodies[size] = os.path.join(work, f"request-{size}.bin")
        with open(bodies[size], "wb") as handle:
            handle.write(sdk_handler.build_request(size))

    load_before = os.getloadavg()
    print(f"checking responses of {len(chosen)} servers ...", file=sys.stderr)
    running = {server.key: Running(server) for server in chosen}
    try:
        problems = check_responses(running) if {"aiohttp", "asgi", "serve"} <= set(running) else []
    finally:
        for process in running.values():
            process.stop()
    results: dict[tuple[str, int], dict[str, float]] = {}
    other_load: list[float] = []
    for round_number in range(args.rounds):
        # Each round starts at another server, so that no server always follows the same one.
        shift = round_number * len(chosen) // max(1, args.rounds)
        for server in chosen[shift:] + chosen[:shift]:
            print(f"round {round_number + 1}/{args.rounds}: {server.label} ...", file=sys.stderr)
            process = Running(server)
            try:
                for size in BATCH_SIZES:
                    load(process.port, bodies[size], 1.0, args.connections)  # warm up
                    cpu, busy = process.cpu_seconds(), machine_busy_seconds()
                    children = resource.getrusage(resource.RUSAGE_CHILDREN)
                    started = time.monotonic()
                    measured = load(process.port, bodies[size], args.seconds, args.connections)
                    elapsed = time.monotonic() - started
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    load_cpu = (after.ru_utime + after.ru_stime) - (
                        children.ru_utime + children.ru_stime
                    )
                    server_cpu = process.cpu_seconds() - cpu
                    other = machine_busy_seconds() - busy - server_cpu - load_cpu
                    other_load.append(max(0.0, other) / elapsed)
                    measured["server_cpu"] = server_cpu / elapsed
                    measured["load_cpu"] = load_cpu / elapsed
                    measured["cpu_us"] = server_cpu / max(1, measured["requests"]) * 1e6
                    key = (server.key, size)
                    best = results.setdefault(key, dict(measured))
                    # Best throughput, and (separately) the least server CPU per request: on a
                    # shared core the first suffers from other work, the second much less.
                    if measured["rate"] > best["rate"]:
                        best.update(measured, cpu_us=best["cpu_us"])
                    best["cpu_us"] = min(best["cpu_us"], measured["cpu_us"])
            finally:
                process.stop()
    load_after = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"protobuf {google.protobuf.__version__}, aiohttp {aiohttp.__version__}"
    )
    print(
        f"server on core {SERVER_CORE}, load ({generator}, {args.connections} connections) on core "
        f"{LOAD_CORE}; {args.rounds} rounds of {args.seconds:g} s, best kept"
    )
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; CPU used by other "
        f"processes while measuring: mean {sum(other_load) / len(other_load):.2f} cores, "
        f"max {max(other_load):.2f}"
    )
    print(f"responses byte-identical across servers: {'yes' if not problems else 'NO'}")
    for problem in problems:
        print(f"  {problem}")
    print()
    header = (
        f"{'batch':>5}  {'server':<44}{'req/s':>9}{'inv/s':>11}{'vs (a)':>8}"
        f"{'cpu µs/req':>11}{'vs (a)':>8}{'srv cpu':>8}{'load cpu':>9}{'failed':>7}"
    )
    print(header)
    print("-" * len(header))
    for size in BATCH_SIZES:
        baseline = results[("upstream", size)]
        for server in chosen:
            measured = results[(server.key, size)]
            print(
                f"{size:>5}  {server.label:<44}{measured['rate']:>9,.0f}"
                f"{measured['rate'] * size:>11,.0f}{measured['rate'] / baseline['rate']:>7.2f}x"
                f"{measured['cpu_us']:>11,.1f}{baseline['cpu_us'] / measured['cpu_us']:>7.2f}x"
                f"{measured['server_cpu']:>8.0%}{measured['load_cpu']:>9.0%}"
                f"{measured['failed']:>7.0f}"
            )
    if generator == "python":
        print("\n(the Python load generator may limit the fastest servers: install wrk)")
    goals = {1: 3.0, 50: 2.5}
    if "serve" in {server.key for server in chosen}:
        print()
        for size, goal in goals.items():
            ratio = results[("serve", size)]["rate"] / results[("upstream", size)]["rate"]
            print(
                f"goal batch {size}: (d) >= {goal}x (a): {ratio:.2f}x {'met' if ratio >= goal else 'NOT met'}"
            )
    if problems or any(measured["failed"] for measured in results.values()):
        sys.exit("responses differ between servers, or requests failed")


if __name__ == "__main__":
    main()
