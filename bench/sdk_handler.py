"""Handler throughput: this SDK beside upstream apache-flink-statefun 3.3.0 and the protobuf floor.

    .venv/bin/python bench/sdk_handler.py [--rounds 3] [--seconds 0.3] [--repeats 5]

Measures invocations per second of a greeter-like function (reads and writes
an int state, sends a message, sends a Kafka egress record) for batches of 1
and of 50 invocations, for:

* floor    — ``ToFunction.ParseFromString`` of the request plus
             ``SerializeToString`` of a prebuilt response: the protobuf work
             any SDK must do, with no SDK logic at all;
* upstream — apache-flink-statefun 3.3.0, installed with ``--no-deps`` into
             ``bench/.work/upstream-venv`` on the same protobuf version;
* ours     — this repository's ``statefun``.

Each handler is measured through ``handle_async`` awaited in a loop (how an
aiohttp server calls it) and through ``handle_sync``. All figures come from one
run on one machine; only the ratios are meaningful. The script also checks
that upstream and ours return byte-identical responses for the benchmark
requests. It is not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import typing
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, ".work")
UPSTREAM_VENV = os.path.join(WORK, "upstream-venv")
UPSTREAM_VERSION = "3.3.0"
BATCH_SIZES = (1, 50)
SUBPROCESS_TIMEOUT = 600


def build_request(batch_size: int) -> bytes:
    from statefun.request_reply_pb2 import ToFunction, TypedValue

    request = ToFunction()
    batch = request.invocation
    batch.target.namespace, batch.target.type, batch.target.id = "bench", "greeter", "user-1"
    batch.state.add(
        state_name="seen",
        state_value=TypedValue(
            typename="io.statefun.types/int", has_value=True, value=b"\x0d\x07\x00\x00\x00"
        ),
    )
    for position in range(batch_size):
        name = f"user-{position % 7}"
        invocation = batch.invocations.add(
            argument=TypedValue(
                typename="io.statefun.types/string",
                has_value=True,
                value=b"\x0a" + bytes((len(name),)) + name.encode(),
            )
        )
        invocation.caller.namespace, invocation.caller.type = "bench", "caller"
        invocation.caller.id = str(position)
    return request.SerializeToString()


def build_handler() -> typing.Any:
    """The greeter, written against the API both SDKs share."""
    from statefun import (
        IntType,
        RequestReplyHandler,
        StatefulFunctions,
        ValueSpec,
        kafka_egress_message,
        message_builder,
    )

    functions = StatefulFunctions()

    @functions.bind(typename="bench/greeter", specs=[ValueSpec(name="seen", type=IntType)])
    def greet(context: typing.Any, message: typing.Any) -> None:
        name = message.as_string()
        seen = context.storage.seen or 0
        context.storage.seen = seen + 1
        context.send(
            message_builder(
                target_typename="bench/inbox", target_id=name, str_value=f"Hello {name} #{seen}"
            )
        )
        context.send_egress(
            kafka_egress_message(
                typename="bench/greets", topic="greetings", key=name, value=f"Hello {name}"
            )
        )

    return RequestReplyHandler(functions)


def time_calls(call: typing.Callable[[int], None], seconds: float, repeats: int) -> float:
    """Best seconds-per-call over ``repeats`` rounds of about ``seconds`` each."""
    rounds = 1
    while True:
        started = time.perf_counter()
        call(rounds)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds / 4:
            break
        rounds *= 4
    rounds = max(1, int(rounds * seconds / elapsed))
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call(rounds)
        best = min(best, (time.perf_counter() - started) / rounds)
    return best


def measure_handler(seconds: float, repeats: int) -> dict[str, typing.Any]:
    handler = build_handler()
    results: dict[str, typing.Any] = {"responses": {}}
    loop = asyncio.new_event_loop()
    for batch_size in BATCH_SIZES:
        request = build_request(batch_size)
        results["responses"][str(batch_size)] = handler.handle_sync(request).hex()

        def run_async(rounds: int, request: bytes = request) -> None:
            async def many() -> None:
                for _ in range(rounds):
                    await handler.handle_async(request)

            loop.run_until_complete(many())

        def run_sync(rounds: int, request: bytes = request) -> None:
            handle = handler.handle_sync
            for _ in range(rounds):
                handle(request)

        results[f"async/{batch_size}"] = batch_size / time_calls(run_async, seconds, repeats)
        results[f"sync/{batch_size}"] = batch_size / time_calls(run_sync, seconds, repeats)
    loop.close()
    return results


def measure_floor(seconds: float, repeats: int) -> dict[str, typing.Any]:
    from statefun.request_reply_pb2 import FromFunction, ToFunction

    handler = build_handler()
    results: dict[str, typing.Any] = {}
    for batch_size in BATCH_SIZES:
        request = build_request(batch_size)
        prebuilt = FromFunction()
        prebuilt.ParseFromString(handler.handle_sync(request))

        def run(rounds: int, request: bytes = request, prebuilt: typing.Any = prebuilt) -> None:
            for _ in range(rounds):
                ToFunction().ParseFromString(request)
                prebuilt.SerializeToString()

        results[f"floor/{batch_size}"] = batch_size / time_calls(run, seconds, repeats)
    return results


def upstream_python() -> str:
    """Create (once) the upstream venv on this interpreter's protobuf version; return its python."""
    import google.protobuf

    python = os.path.join(UPSTREAM_VENV, "bin", "python")
    marker = os.path.join(
        UPSTREAM_VENV, f".installed-{UPSTREAM_VERSION}-{google.protobuf.__version__}"
    )
    if os.path.exists(marker):
        return python
    print(
        f"setting up {UPSTREAM_VENV} (apache-flink-statefun=={UPSTREAM_VERSION}, "
        f"protobuf=={google.protobuf.__version__}) ...",
        file=sys.stderr,
    )
    venv.create(UPSTREAM_VENV, clear=True, with_pip=True)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(
        pip + [f"protobuf=={google.protobuf.__version__}"], check=True, timeout=SUBPROCESS_TIMEOUT
    )
    # --no-deps: upstream pins protobuf<4, although its code runs on current protobuf.
    subprocess.run(
        pip + ["--no-deps", f"apache-flink-statefun=={UPSTREAM_VERSION}"],
        check=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    with open(marker, "w") as handle:
        handle.write("ok\n")
    return python


def run_worker(python: str, kind: str, seconds: float, repeats: int) -> dict[str, typing.Any]:
    # -I: isolated mode, so the upstream interpreter cannot pick this repository's statefun up
    # (ours is installed in .venv, so it is still found there).
    completed = subprocess.run(
        [
            python,
            "-I",
            os.path.abspath(__file__),
            "--worker",
            kind,
            "--seconds",
            str(seconds),
            "--repeats",
            str(repeats),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    return typing.cast(dict[str, typing.Any], json.loads(completed.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="target length of one timing")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds; the best is kept")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds of upstream/ours/floor; the best of each is kept",
    )
    parser.add_argument("--worker", choices=["handler", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        import statefun

        if args.worker == "floor":
            result = measure_floor(args.seconds, args.repeats)
        else:
            result = measure_handler(args.seconds, args.repeats)
        result["module"] = statefun.__file__
        print(json.dumps(result))
        return

    import google.protobuf
    from google.protobuf.internal import api_implementation

    import statefun

    upstream_interpreter = upstream_python()
    upstream: dict[str, typing.Any] = {}
    ours: dict[str, typing.Any] = {}
    floor: dict[str, typing.Any] = {}

    def keep_best(best: dict[str, typing.Any], new: dict[str, typing.Any]) -> None:
        for key, value in new.items():
            best[key] = max(best[key], value) if isinstance(value, float) and key in best else value

    # The machine may be shared: alternate the three measurements so that a burst of
    # load elsewhere does not fall on one of them only.
    for round in range(args.rounds):
        print(f"round {round + 1}/{args.rounds} ...", file=sys.stderr)
        keep_best(upstream, run_worker(upstream_interpreter, "handler", args.seconds, args.repeats))
        keep_best(ours, run_worker(sys.executable, "handler", args.seconds, args.repeats))
        keep_best(floor, run_worker(sys.executable, "floor", args.seconds, args.repeats))
    assert "upstream-venv" in upstream["module"], upstream["module"]
    assert os.path.dirname(ours["module"]) == os.path.dirname(statefun.__file__), ours["module"]

    identical = all(
        ours["responses"][size] == upstream["responses"][size] for size in ours["responses"]
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"protobuf {google.protobuf.__version__} ({api_implementation.Type()})"
    )
    print(
        f"ours: {os.path.dirname(statefun.__file__)}; upstream {UPSTREAM_VERSION}: {os.path.dirname(upstream['module'])}"
    )
    print(f"responses byte-identical to upstream: {'yes' if identical else 'NO'}")
    print()
    header = (
        f"{'batch':>5}  {'entry':<12}{'floor inv/s':>13}{'upstream inv/s':>16}{'ours inv/s':>12}"
        f"{'ours/upstream':>15}{'floor/ours':>12}"
    )
    print(header)
    print("-" * len(header))
    for batch_size in BATCH_SIZES:
        floor_rate = floor[f"floor/{batch_size}"]
        for entry in ("async", "sync"):
            key = f"{entry}/{batch_size}"
            print(
                f"{batch_size:>5}  {'handle_' + entry:<12}{floor_rate:>13,.0f}{upstream[key]:>16,.0f}"
                f"{ours[key]:>12,.0f}{ours[key] / upstream[key]:>14.2f}x{floor_rate / ours[key]:>11.2f}x"
            )
    if not identical:
        sys.exit("responses differ from upstream")


if __name__ == "__main__":
    main()
