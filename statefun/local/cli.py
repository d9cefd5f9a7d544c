"""``statefun-local``: run a module.yaml locally, check it, or emit Flink deployment files."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sqlite3
import sys
import time
from typing import Sequence

from aiohttp import web
from google.protobuf import message

from statefun.local.codec import (
    discover_proto_modules,
    import_proto_modules,
    require_message_class,
)
from statefun.local.config import (
    PLAYGROUND_EGRESS,
    ModuleConfig,
    load_module,
    override_endpoints,
)
from statefun.local.durations import DurationError, parse_duration_ms
from statefun.local.egress import Sink, StreamSink
from statefun.local.endpoints import check_endpoints
from statefun.local.engine import DEFAULT_MAX_BACKLOG, Engine, describe_wait, tune_garbage_collector
from statefun.local.errors import ConfigError, LocalRuntimeError
from statefun.local.ingress import (
    FileSource,
    LineParser,
    StdinSource,
    envelope_parser,
    keyed_parser,
    playground_egress_app,
    playground_ingress_app,
    serve,
    start_http_ingress,
)
from statefun.local.store import Store

_COMMANDS = ("run", "check", "deploy")
# Exit code of a run that finished but skipped input records it could not use.
EXIT_RECORDS_SKIPPED = 3


def _log(text: str) -> None:
    print(f"statefun-local: {text}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statefun-local",
        description="Run Stateful Functions on one machine: module.yaml + HTTP functions + SQLite. "
        "Commands: run (default), check, deploy.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve a module (the default command)")
    run.add_argument("module", help="module.yaml (3.1+ kinds, or legacy version 3.0)")
    run.add_argument(
        "--db",
        default="statefun-local.db",
        help="SQLite file for state, inbox, timers and outbox (default: %(default)s; "
        "':memory:' keeps nothing across runs)",
    )
    run.add_argument(
        "--sync",
        choices=("normal", "full"),
        default="normal",
        help="SQLite synchronous mode: normal survives a crash of this process, full also "
        "a power loss (default: %(default)s)",
    )
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="FILE",
        help="JSON-lines ingress records to read ('-' for stdin); repeatable",
    )
    run.add_argument(
        "--key-field",
        metavar="FIELD",
        help='--input lines are a producer\'s raw JSON values (e.g. {"name": "Bob"}), not '
        "{key, value} records: the key is FIELD of each (a.b for a nested field)",
    )
    run.add_argument(
        "--topic",
        metavar="TOPIC",
        help="with --key-field: the ingress topic (or Kinesis stream) the lines go to, when the "
        "module has more than one",
    )
    run.add_argument(
        "--follow",
        action="store_true",
        help="keep reading --input files as they grow (like tail -f) instead of stopping at the end",
    )
    run.add_argument(
        "--http-ingress",
        metavar="HOST:PORT",
        help="also accept records by POST http://HOST:PORT/ingress (port 0 picks a free port)",
    )
    run.add_argument(
        "--playground-host",
        default="127.0.0.1",
        metavar="HOST",
        help="where the ports of io.statefun.playground.v1 ingress/egress listen "
        "(default: %(default)s; the playground image listens on 0.0.0.0)",
    )
    run.add_argument(
        "--egress",
        action="append",
        default=[],
        metavar="ID=PATH",
        help="write egress ID to PATH ('-' for stdout); repeatable",
    )
    run.add_argument(
        "--egress-dir",
        metavar="DIR",
        help="write each egress not given by --egress to DIR/<namespace>.<name>.jsonl "
        "(default: all egress to stdout)",
    )
    run.add_argument(
        "--proto-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a _pb2 module so JSON ingress values of its message types are "
        "converted with json_format; repeatable. Without it, the *_pb2.py modules of the "
        "package holding module.yaml are imported",
    )
    run.add_argument(
        "--egress-type",
        action="append",
        default=[],
        metavar="ID[:TOPIC]=MESSAGE",
        help="decode the values written to egress ID (with :TOPIC, only those of that Kafka "
        "topic or Kinesis stream) as protobuf MESSAGE and print them as JSON; repeatable",
    )
    run.add_argument(
        "--wait-for-endpoints",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long to wait for function endpoints to accept connections at start",
    )
    run.add_argument(
        "--call-timeout",
        metavar="DURATION",
        help="override every endpoint's call timeout (e.g. 10s), so a function that keeps "
        "failing with 5xx stops the run sooner than the runtime's default of minutes",
    )
    run.add_argument(
        "--no-endpoint-check",
        action="store_true",
        help="start without checking that the function endpoints are reachable",
    )
    run.add_argument(
        "--max-backlog",
        type=int,
        default=DEFAULT_MAX_BACKLOG,
        metavar="N",
        help="accepted but unprocessed messages (kept in --db, not in memory) before ingress "
        "waits: files and stdin are read no further, HTTP producers are answered later "
        "(default: %(default)s)",
    )
    run.add_argument(
        "--until-idle",
        action="store_true",
        help="end the run once its input is processed even if delayed messages are still "
        "pending (they stay in --db for the next run)",
    )
    _endpoint_option(run)

    check = commands.add_parser(
        "check", help="validate a module.yaml and that its endpoints are reachable"
    )
    check.add_argument("module")
    check.add_argument("--no-endpoint-check", action="store_true")
    check.add_argument("--wait-for-endpoints", type=float, default=0.0, metavar="SECONDS")
    _endpoint_option(check)

    deploy = commands.add_parser(
        "deploy", help="emit a Dockerfile and docker-compose.yml for Flink StateFun"
    )
    from statefun.local.deploy import add_arguments

    add_arguments(deploy)
    return parser


def _endpoint_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="PATTERN=URL",
        help="call the functions PATTERN matches ('*', 'ns/*' or 'ns/name') at URL instead of "
        "the module's urlPathTemplate, e.g. 'example/*=http://127.0.0.1:8000/statefun' for a "
        "module written for docker hosts; a URL without a path keeps the module's path, a bare "
        "HOST:PORT replaces only those; repeatable",
    )


def _key_value(option: str, text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise ConfigError(f"{option} {text!r}: expected ID=VALUE")
    return key, value


def _egress_paths(args: argparse.Namespace, config: ModuleConfig) -> dict[str, str]:
    """Where each egress is written ('-' is stdout), from --egress and --egress-dir."""
    chosen: dict[str, str] = {}
    for text in args.egress:
        egress_id, path = _key_value("--egress", text)
        if egress_id not in config.egresses:
            raise ConfigError(f"--egress {text!r}: the module defines no egress {egress_id!r}")
        if config.egresses[egress_id].kind == PLAYGROUND_EGRESS:
            raise ConfigError(
                f"--egress {text!r}: the playground egress is read over HTTP (GET /<topic> on "
                "its port), not written to a file"
            )
        chosen[egress_id] = path
    paths: dict[str, str] = {}
    for egress_id, spec in config.egresses.items():
        if spec.kind == PLAYGROUND_EGRESS:
            continue
        default = (
            "-"
            if args.egress_dir is None
            else os.path.join(args.egress_dir, egress_id.replace("/", ".") + ".jsonl")
        )
        paths[egress_id] = chosen.get(egress_id, default)
    return paths


def _open_sinks(paths: dict[str, str]) -> dict[str, Sink]:
    sinks: dict[str, Sink] = {}
    for egress_id, path in paths.items():
        try:
            sinks[egress_id] = StreamSink.open(path)
        except OSError as error:
            for sink in sinks.values():
                if isinstance(sink, StreamSink):
                    sink.close()
            raise ConfigError(
                f"egress {egress_id}: can not open {path}: {error.strerror or error}"
            ) from None
    return sinks


def _egress_types(
    args: argparse.Namespace, config: ModuleConfig
) -> tuple[dict[str, type[message.Message]], dict[str, dict[str, type[message.Message]]]]:
    """The messages of --egress-type: per egress (``ID=MESSAGE``), and per topic or Kinesis
    stream (``ID:TOPIC=MESSAGE``), for an egress that carries a different message on each."""
    types: dict[str, type[message.Message]] = {}
    topic_types: dict[str, dict[str, type[message.Message]]] = {}
    for text in args.egress_type:
        key, name = _key_value("--egress-type", text)
        if key in config.egresses:  # an id holding ':' is still the egress itself
            types[key] = require_message_class(name, f"--egress-type {text}")
            continue
        egress_id, colon, topic = key.rpartition(":")
        if not colon or not topic or egress_id not in config.egresses:
            raise ConfigError(f"--egress-type {text!r}: the module defines no egress {key!r}")
        topic_types.setdefault(egress_id, {})[topic] = require_message_class(
            name, f"--egress-type {text}"
        )
    return types, topic_types


def _with_call_timeout(config: ModuleConfig, text: str) -> ModuleConfig:
    try:
        seconds = parse_duration_ms(text) / 1000
    except DurationError as error:
        raise ConfigError(f"--call-timeout {text!r}: {error}") from None
    if seconds <= 0:
        raise ConfigError(f"--call-timeout {text!r}: must be greater than zero")
    endpoints = tuple(
        dataclasses.replace(
            endpoint,
            call_timeout_s=seconds,
            connect_timeout_s=min(endpoint.connect_timeout_s, seconds),
            read_timeout_s=(
                None if endpoint.read_timeout_s is None else min(endpoint.read_timeout_s, seconds)
            ),
        )
        for endpoint in config.endpoints
    )
    return dataclasses.replace(config, endpoints=endpoints)


def _load(module: str, endpoints: list[str]) -> ModuleConfig:
    config = override_endpoints(load_module(module), endpoints)
    for warning in config.warnings:
        _log(f"warning: {warning}")
    return config


def _inputs(paths: list[str]) -> list[str]:
    """--input values, each file once (a file given twice would be read twice)."""
    chosen: list[str] = []
    seen: set[str] = set()
    for path in paths:
        if path != "-" and not os.path.isfile(path):
            raise ConfigError(f"--input {path}: no such file")
        identity = path if path == "-" else os.path.realpath(path)
        if identity in seen:
            if path == "-":
                raise ConfigError("--input -: stdin can be read only once")
            _log(f"warning: --input {path} is given more than once; it is read once")
            continue
        seen.add(identity)
        chosen.append(path)
    return chosen


def _line_parser(args: argparse.Namespace, config: ModuleConfig) -> LineParser:
    if args.key_field is None:
        if args.topic is not None:
            raise ConfigError("--topic goes with --key-field (records name their topic)")
        return envelope_parser(config)
    if not args.key_field.strip():
        raise ConfigError("--key-field: give the name of the field holding the key")
    return keyed_parser(config, args.key_field, args.topic)


async def _run(args: argparse.Namespace) -> int:
    config = _load(args.module, args.endpoint)
    if args.call_timeout is not None:
        config = _with_call_timeout(config, args.call_timeout)
    if args.max_backlog < 1:
        raise ConfigError("--max-backlog must be at least 1")
    if args.proto_module:
        import_proto_modules(args.proto_module)
    else:
        loaded, warnings = discover_proto_modules(args.module)
        for warning in warnings:
            _log(f"warning: {warning}")
        if loaded:
            _log(f"protobuf modules loaded: {', '.join(loaded)}")
    egress_types, egress_topic_types = _egress_types(args, config)
    egress_paths = _egress_paths(args, config)
    inputs = _inputs(args.input)
    parser = _line_parser(args, config)
    http_host, http_port = "", 0
    if args.http_ingress:
        http_host, _, port_text = args.http_ingress.rpartition(":")
        if not port_text.isdigit():
            raise ConfigError(f"--http-ingress {args.http_ingress!r}: expected HOST:PORT")
        http_host, http_port = http_host or "127.0.0.1", int(port_text)
    playground = config.playground_ingress is not None or config.playground_egress is not None
    serving = bool(args.follow or args.http_ingress or playground)
    if args.until_idle and serving:
        raise ConfigError(
            "--until-idle ends a run once its input is processed; a run with --follow, "
            "--http-ingress or the playground ingress/egress serves until interrupted"
        )
    if not args.no_endpoint_check:
        await check_endpoints(config, args.wait_for_endpoints)
    if args.egress_dir:
        os.makedirs(args.egress_dir, exist_ok=True)
    store = Store(args.db, args.sync.upper())
    try:
        sinks = _open_sinks(egress_paths)
    except ConfigError:
        store.close()
        raise
    tune_garbage_collector()
    engine = Engine(
        config,
        store,
        sinks,
        egress_types,
        _log,
        max_backlog=args.max_backlog,
        egress_topic_types=egress_topic_types,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runners: list[web.AppRunner] = []
    sources: list[FileSource | StdinSource] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await engine.start()
        for path in inputs:
            source: FileSource | StdinSource = (
                StdinSource(engine, parser)
                if path == "-"
                else FileSource(path, engine, args.follow, parser=parser)
            )
            sources.append(source)
            tasks.append(asyncio.create_task(source.run()))
        if args.http_ingress:
            runner, bound = await start_http_ingress(engine, http_host, http_port)
            runners.append(runner)
            _log(f"HTTP ingress listening on http://{http_host}:{bound}/ingress")
        runners += await _start_playground(engine, config, args.playground_host)
        _log(
            f"running {config.file} ({len(config.endpoints)} endpoint(s), {len(config.ingresses)} "
            f"ingress(es), {len(config.egresses)} egress(es)); state in {args.db}"
        )
        noted_wait: tuple[int | None, float] = (None, 0.0)
        while True:
            if engine.failure is not None:  # ingress sources stop with it, the cause is here
                try:
                    waiting = store.inbox_size()
                except sqlite3.Error:  # the database itself may be what failed
                    waiting = 0
                if waiting and args.db != ":memory:":
                    _log(
                        f"{waiting} message(s) wait in {args.db} and are delivered again on the "
                        "next run"
                    )
                raise engine.failure
            for task in tasks:
                failure = task.exception() if task.done() else None
                if isinstance(failure, LocalRuntimeError):
                    raise failure
                if failure is not None:
                    raise LocalRuntimeError(f"ingress failed: {type(failure).__name__}: {failure}")
            if stop.is_set():
                _log("stopping; unprocessed messages stay in the inbox for the next run")
                return _finish(sources)
            if not serving and all(task.done() for task in tasks):
                if engine.is_idle():
                    _log(
                        f"done: {engine.messages_processed} messages processed, "
                        f"{engine.egress_writer.lines_written} egress records written"
                    )
                    return _finish(sources)
                if engine.only_timers_pending():
                    noted_wait = _note_timers(engine, args, noted_wait)
                    if args.until_idle:
                        return _finish(sources)
            engine.progress.clear()
            waiters = [
                asyncio.ensure_future(engine.progress.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            await asyncio.wait(waiters, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for runner in runners:
            await runner.cleanup()
        await engine.close()
        for sink in sinks.values():
            sink.flush()
            if isinstance(sink, StreamSink):
                sink.close()
        store.close()


async def _start_playground(engine: Engine, config: ModuleConfig, host: str) -> list[web.AppRunner]:
    runners: list[web.AppRunner] = []
    ingress, egress = config.playground_ingress, config.playground_egress
    if ingress is not None:
        runner, port = await serve(
            playground_ingress_app(engine), host, ingress.port, "playground ingress"
        )
        runners.append(runner)
        _log(
            f"playground ingress listening on http://{host}:{port} "
            "(PUT /<namespace>/<type>/<id>, Content-Type: application/vnd.<typename>)"
        )
    if egress is not None:
        runner, port = await serve(
            playground_egress_app(engine, egress.topics), host, egress.port, "playground egress"
        )
        runners.append(runner)
        _log(
            f"playground egress listening on http://{host}:{port} (GET /<topic>; topics: "
            f"{', '.join(egress.topics) or 'none'})"
        )
    return runners


def _note_timers(
    engine: Engine, args: argparse.Namespace, noted: tuple[int | None, float]
) -> tuple[int | None, float]:
    """Say that only delayed messages keep the run going, and when the next one fires."""
    next_ms = engine.next_timer_ms()
    pending = engine.timers_pending
    if args.until_idle:
        kept = (
            "they are lost with --db :memory:"
            if args.db == ":memory:"
            else f"they stay in {args.db} for the next run"
        )
        _log(
            f"done: {engine.messages_processed} messages processed, "
            f"{engine.egress_writer.lines_written} egress records written; {pending} delayed "
            f"message(s) pending (the next due at {describe_wait(next_ms or 0)}): {kept}"
        )
        return noted
    if next_ms is None or (next_ms == noted[0] and time.monotonic() - noted[1] < 60):
        return noted
    if next_ms != noted[0] or time.monotonic() - noted[1] >= 60:
        _log(
            f"input done; waiting only for {pending} delayed message(s), the next fires at "
            f"{describe_wait(next_ms)} (--until-idle ends a run here and keeps them for the "
            "next run)"
        )
    return next_ms, time.monotonic()


def _finish(sources: list[FileSource | StdinSource]) -> int:
    skipped = sum(source.rejected for source in sources)
    if skipped:
        _log(f"{skipped} input record(s) were skipped (see the messages above); exit code 3")
        return EXIT_RECORDS_SKIPPED
    return 0


async def _check(args: argparse.Namespace) -> int:
    config = _load(args.module, args.endpoint)
    if not args.no_endpoint_check:
        await check_endpoints(config, args.wait_for_endpoints)
    print(
        f"{config.file}: ok — {len(config.endpoints)} endpoint(s), {len(config.ingresses)} ingress(es), "
        f"{len(config.egresses)} egress(es)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] not in _COMMANDS and arguments[0] not in ("-h", "--help"):
        arguments.insert(0, "run")
    args = _parser().parse_args(arguments)
    try:
        if args.command == "run":
            return asyncio.run(_run(args))
        if args.command == "check":
            return asyncio.run(_check(args))
        from statefun.local.deploy import deploy

        return deploy(args)
    except LocalRuntimeError as error:
        _log(f"error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        return 130
