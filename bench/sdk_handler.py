"""Handler throughput: this SDK beside upstream apache-flink-statefun 3.3.0 and the protobuf floor.

    .venv/bin/python bench/sdk_handler.py [--rounds 3] [--seconds 0.3] [--repeats 5]

Measures invocations per second of a greeter-like function (reads and writes
an int state, sends a message, sends a Kafka egress record) for batches of 1
and of 50 invocations, for:

* floor    — ``ToFunction.ParseFromString`` of the request plus
             ``SerializeToString`` of a prebuilt response: the protobuf work
             any SDK must do, with no SDK logic at all;
* upstream — apache-flink-statefun 3.3.0, installed with ``--no-deps`` into
             ``.venv-upstream/`` on the same protobuf version
             (``scripts/upstream_statefun.py``);
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

HERE = os.path.dirname(os.path.abspath(__file__))
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


def greeter_body() -> typing.Callable[[typing.Any, typing.Any], None]:
    """The greeter, written against the API both SDKs share."""
    from statefun import kafka_egress_message, message_builder

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

    return greet


def build_handler() -> typing.Any:
    from statefun import IntType, RequestReplyHandler, StatefulFunctions, ValueSpec

    functions = StatefulFunctions()
    functions.register(
        "bench/greeter", greeter_body(), specs=[ValueSpec(name="seen", type=IntType)]
    )
    return RequestReplyHandler(functions)


def build_protobuf_handler() -> typing.Callable[[bytes], bytes]:
    """The greeter's work written directly against the protobuf classes, no SDK at all.

    The best a handler that builds protobuf objects can do: decode the int state
    once, and per invocation decode the name, add the outgoing message and the
    Kafka egress record; then the state mutation, and serialize.
    """
    from statefun.kafka_egress_pb2 import KafkaProducerRecord
    from statefun.request_reply_pb2 import FromFunction, ToFunction
    from statefun.types_pb2 import IntWrapper, StringWrapper

    modify = FromFunction.PersistedValueMutation.MODIFY
    kafka_typename = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"

    def handle(request: bytes) -> bytes:
        batch = ToFunction.FromString(request).invocation
        seen = 0
        for state in batch.state:
            if state.state_name == "seen" and state.state_value.has_value:
                seen = IntWrapper.FromString(state.state_value.value).value
        response = FromFunction()
        result = response.invocation_result
        outgoing, egresses = result.outgoing_messages, result.outgoing_egresses
        for invocation in batch.invocations:
            name = StringWrapper.FromString(invocation.argument.value).value
            message = outgoing.add()
            message.target.namespace, message.target.type, message.target.id = (
                "bench",
                "inbox",
                name,
            )
            argument = message.argument
            argument.typename, argument.has_value = "io.statefun.types/string", True
            argument.value = StringWrapper(value=f"Hello {name} #{seen}").SerializeToString()
            egress = egresses.add(egress_namespace="bench", egress_type="greets")
            argument = egress.argument
            argument.typename, argument.has_value = kafka_typename, True
            argument.value = KafkaProducerRecord(
                topic="greetings", key=name, value_bytes=f"Hello {name}".encode()
            ).SerializeToString()
            seen += 1
        mutation = result.state_mutations.add(mutation_type=modify, state_name="seen")
        value = mutation.state_value
        value.typename, value.has_value = "io.statefun.types/int", True
        value.value = IntWrapper(value=seen).SerializeToString()
        return response.SerializeToString()

    return handle


class _StubStorage:
    __slots__ = ("seen",)
    seen: int


class _StubMessage:
    """Stands for a received message: ``as_string`` returns the already decoded name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def as_string(self) -> str:
        return self.name


class _StubContext:
    """The least a context can be: a storage object and two list appends."""

    __slots__ = ("storage", "sent", "send", "send_egress")

    def __init__(self) -> None:
        self.storage = _StubStorage()
        self.sent: list[typing.Any] = []
        self.send = self.send_egress = self.sent.append


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
    """The three baselines without an SDK: floor, floor + body, hand-written protobuf handler."""
    from statefun.request_reply_pb2 import FromFunction, ToFunction

    handler = build_handler()
    body = greeter_body()
    protobuf_handler = build_protobuf_handler()
    results: dict[str, typing.Any] = {"responses": {}}
    for batch_size in BATCH_SIZES:
        request = build_request(batch_size)
        expected = handler.handle_sync(request)
        results["responses"][str(batch_size)] = protobuf_handler(request).hex()
        prebuilt = FromFunction()
        prebuilt.ParseFromString(expected)
        names = [f"user-{position % 7}" for position in range(batch_size)]

        def run(rounds: int, request: bytes = request, prebuilt: typing.Any = prebuilt) -> None:
            for _ in range(rounds):
                ToFunction().ParseFromString(request)
                prebuilt.SerializeToString()

        def run_body(
            rounds: int,
            request: bytes = request,
            prebuilt: typing.Any = prebuilt,
            names: list[str] = names,
        ) -> None:
            for _ in range(rounds):
                ToFunction().ParseFromString(request)
                context = _StubContext()
                context.storage.seen = 7
                for name in names:
                    body(context, _StubMessage(name))
                prebuilt.SerializeToString()

        def run_protobuf(rounds: int, request: bytes = request) -> None:
            for _ in range(rounds):
                protobuf_handler(request)

        results[f"floor/{batch_size}"] = batch_size / time_calls(run, seconds, repeats)
        results[f"body/{batch_size}"] = batch_size / time_calls(run_body, seconds, repeats)
        results[f"protobuf/{batch_size}"] = batch_size / time_calls(run_protobuf, seconds, repeats)
    return results


def upstream_python() -> str:
    """The python of the upstream venv (scripts/upstream_statefun.py sets it up once)."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
    from upstream_statefun import upstream_python as setup

    return setup()


def run_worker(
    python: str, kind: str, seconds: float, repeats: int, statefun_path: str | None = None
) -> dict[str, typing.Any]:
    # -I: isolated mode, so the upstream interpreter cannot pick this repository's statefun up
    # (ours is installed in .venv, so it is still found there).
    command = [
        python,
        "-I",
        os.path.abspath(__file__),
        "--worker",
        kind,
        "--seconds",
        str(seconds),
        "--repeats",
        str(repeats),
    ]
    if statefun_path:
        command += ["--statefun-path", statefun_path]
    completed = subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
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
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also measure the statefun package in DIR (e.g. an earlier commit: "
        "git archive REV statefun | tar -x -C DIR) and print ours against it",
    )
    parser.add_argument("--worker", choices=["handler", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--statefun-path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if args.statefun_path:
            sys.path.insert(0, args.statefun_path)
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
    baseline_path = os.path.abspath(args.baseline) if args.baseline else None
    upstream: dict[str, typing.Any] = {}
    ours: dict[str, typing.Any] = {}
    before: dict[str, typing.Any] = {}
    floor: dict[str, typing.Any] = {}

    def keep_best(best: dict[str, typing.Any], new: dict[str, typing.Any]) -> None:
        for key, value in new.items():
            best[key] = max(best[key], value) if isinstance(value, float) and key in best else value

    # The machine may be shared: alternate the measurements so that a burst of
    # load elsewhere does not fall on one of them only.
    for round in range(args.rounds):
        print(f"round {round + 1}/{args.rounds} ...", file=sys.stderr)
        keep_best(upstream, run_worker(upstream_interpreter, "handler", args.seconds, args.repeats))
        keep_best(ours, run_worker(sys.executable, "handler", args.seconds, args.repeats))
        if baseline_path:
            keep_best(
                before,
                run_worker(sys.executable, "handler", args.seconds, args.repeats, baseline_path),
            )
        keep_best(floor, run_worker(sys.executable, "floor", args.seconds, args.repeats))
    assert ".venv-upstream" in upstream["module"], upstream["module"]
    assert os.path.dirname(ours["module"]) == os.path.dirname(statefun.__file__), ours["module"]
    if baseline_path:
        assert before["module"].startswith(baseline_path), before["module"]

    sizes = list(ours["responses"])
    identical = all(ours["responses"][size] == upstream["responses"][size] for size in sizes)
    # The hand-written protobuf handler must do the same work: it has to produce the same bytes.
    protobuf_identical = all(ours["responses"][size] == floor["responses"][size] for size in sizes)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"protobuf {google.protobuf.__version__} ({api_implementation.Type()})"
    )
    print(
        f"ours: {os.path.dirname(statefun.__file__)}; upstream {UPSTREAM_VERSION}: "
        f"{os.path.dirname(upstream['module'])}"
    )
    if baseline_path:
        print(f"before: {os.path.dirname(before['module'])}")
    print(f"responses byte-identical to upstream: {'yes' if identical else 'NO'}")
    print(
        "hand-written protobuf handler's responses identical to ours: "
        f"{'yes' if protobuf_identical else 'NO'}"
    )
    print()
    print("invocations/s (best of the rounds):")
    header = f"{'batch':>5}  {'subject':<26}{'inv/s':>12}"
    print(header)
    print("-" * len(header))
    for batch_size in BATCH_SIZES:
        rows = [
            ("floor (parse + serialize)", floor[f"floor/{batch_size}"]),
            ("floor + body", floor[f"body/{batch_size}"]),
            ("hand-written protobuf", floor[f"protobuf/{batch_size}"]),
        ]
        for entry in ("async", "sync"):
            key = f"{entry}/{batch_size}"
            rows.append((f"upstream handle_{entry}", upstream[key]))
            if baseline_path:
                rows.append((f"before handle_{entry}", before[key]))
            rows.append((f"ours handle_{entry}", ours[key]))
        for label, rate in rows:
            print(f"{batch_size:>5}  {label:<26}{rate:>12,.0f}")
    print()
    columns = ["ours/upstream"] + (["ours/before"] if baseline_path else [])
    columns += ["floor/ours", "(floor+body)/ours", "protobuf/ours"]
    header = f"{'batch':>5}  {'entry':<12}" + "".join(f"{column:>19}" for column in columns)
    print(header)
    print("-" * len(header))
    for batch_size in BATCH_SIZES:
        for entry in ("async", "sync"):
            key = f"{entry}/{batch_size}"
            rate = ours[key]
            ratios = [rate / upstream[key]] + ([rate / before[key]] if baseline_path else [])
            ratios += [
                floor[f"floor/{batch_size}"] / rate,
                floor[f"body/{batch_size}"] / rate,
                floor[f"protobuf/{batch_size}"] / rate,
            ]
            print(
                f"{batch_size:>5}  {'handle_' + entry:<12}"
                + "".join(f"{ratio:>18.2f}x" for ratio in ratios)
            )
    if not identical:
        sys.exit("responses differ from upstream")
    if not protobuf_identical:
        sys.exit("the hand-written protobuf handler's responses differ from ours")


if __name__ == "__main__":
    main()
