"""A runtime's view of remote functions, for the compat tests: drive, serve, observe.

* ``MiniRuntime`` does what the Flink runtime does with a function endpoint, in
  process: it attaches every registered state to each request, registers what
  an ``IncompleteInvocationContext`` asks for and sends the same batch again,
  applies state mutations (refusing, as the runtime does, one for a state that
  is not registered or of another type) and delivers messages to the functions
  it serves. Delayed messages and egress are recorded, not delivered.
* ``effects_of`` turns the request/response pairs of a run (the ``MiniRuntime`` s,
  or those recorded at an HTTP server the embedded runtime called) into what a
  user can observe: messages, delayed messages, egress, final state, the states
  the runtime was asked for, and how many batches were answered incomplete.
  Values are shown as text (``describe``), so failures read well.
* ``serve_wsgi``/``serve_aiohttp`` run an app on 127.0.0.1 in a thread and record
  every request and response body; ``post`` calls one.
* ``run_local`` runs ``statefun.local`` on ingress records against a served app.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import pathlib
import signal
import subprocess
import sys
import time
import threading
import typing
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field

from compat_support import CLASSES_BY_NAME
from google.protobuf import text_format
from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message as ProtobufMessage

from statefun import AsyncRequestReplyHandler, RequestReplyHandler
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.kinesis_egress_pb2 import KinesisEgressRecord
from statefun.request_reply_pb2 import Address, FromFunction, ToFunction, TypedValue

TIMEOUT_SECONDS = 20
KAFKA_RECORD = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
MAX_REGISTRATION_ROUNDS = 20

Exchange = tuple[bytes, bytes]
Call = typing.Callable[[bytes], bytes]

_RECORD_CLASSES: dict[str, type[ProtobufMessage]] = {
    "io.statefun.sdk.egress.KafkaProducerRecord": KafkaProducerRecord,
    "io.statefun.sdk.egress.KinesisEgressRecord": KinesisEgressRecord,
    "google.protobuf.Any": Any,
}


def _text(message: ProtobufMessage) -> str:
    return text_format.MessageToString(message, as_one_line=True)


def _describe_bytes(type_url: str, value: bytes) -> str:
    full_name = type_url.rpartition("/")[2]
    cls = CLASSES_BY_NAME.get(full_name) or _RECORD_CLASSES.get(full_name)
    if cls is None:
        return f"{type_url}:{value!r}"
    message = cls.FromString(value)
    if isinstance(message, Any):
        return f"Any({_describe_bytes(message.type_url, message.value)})"
    if isinstance(message, (KafkaProducerRecord, KinesisEgressRecord)):
        # The record's value is a message of the page's; show it decoded where it parses.
        inner = message.value_bytes
        message.ClearField("value_bytes")
        return f"{full_name.rpartition('.')[2]}({_text(message)} value: {_guess(inner)})"
    return f"{full_name}{{{_text(message)}}}"


def _guess(value: bytes) -> str:
    for cls in CLASSES_BY_NAME.values():
        try:
            message = cls.FromString(value)
        except Exception:
            continue
        if message.SerializeToString() == value and message.ListFields():
            return f"{cls.DESCRIPTOR.full_name}{{{_text(message)}}}"
    return repr(value)


def describe(value: TypedValue | ProtobufMessage | None) -> str:
    """A value as text: its type and its fields (``None`` for an absent value)."""
    if value is None:
        return "None"
    if isinstance(value, TypedValue):
        if not value.has_value:
            return f"{value.typename}:(no value)"
        return _describe_bytes(value.typename, value.value)
    return f"{value.DESCRIPTOR.full_name}{{{_text(value)}}}"


def _typename(address: Address) -> str:
    return f"{address.namespace}/{address.type}"


@dataclass
class Effects:
    """What a run did, as a user sees it; lists hold text, sorted where order is not defined."""

    messages: list[str] = field(default_factory=list)
    delayed: list[str] = field(default_factory=list)
    egress: list[str] = field(default_factory=list)
    state: dict[str, dict[str, str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    incomplete: int = 0


def effects_of(exchanges: typing.Iterable[Exchange]) -> Effects:
    effects = Effects()
    state: dict[str, dict[str, str]] = {}
    for request_bytes, response_bytes in exchanges:
        target = ToFunction.FromString(request_bytes).invocation.target
        function = _typename(target)
        response = FromFunction.FromString(response_bytes)
        if response.HasField("incomplete_invocation_context"):
            effects.incomplete += 1
            asked = effects.registered.setdefault(function, [])
            for spec in response.incomplete_invocation_context.missing_values:
                entry = f"{spec.state_name}: {spec.type_typename}"
                if entry not in asked:
                    asked.append(entry)
            continue
        result = response.invocation_result
        instance = f"{function}/{target.id}"
        values = state.setdefault(instance, {})
        for mutation in result.state_mutations:
            if mutation.mutation_type == FromFunction.PersistedValueMutation.DELETE:
                values.pop(mutation.state_name, None)
                effects.deleted.append(f"{instance} {mutation.state_name}")
            else:
                values[mutation.state_name] = describe(mutation.state_value)
        for message in result.outgoing_messages:
            effects.messages.append(
                f"{_typename(message.target)}/{message.target.id} <- {describe(message.argument)}"
            )
        for delayed in result.delayed_invocations:
            if delayed.is_cancellation_request:
                effects.delayed.append(f"cancel {delayed.cancellation_token}")
                continue
            effects.delayed.append(
                f"{_typename(delayed.target)}/{delayed.target.id} after {delayed.delay_in_ms} ms "
                f"<- {describe(delayed.argument)}"
            )
        for egress in result.outgoing_egresses:
            effects.egress.append(
                f"{egress.egress_namespace}/{egress.egress_type} <- {describe(egress.argument)}"
            )
    effects.state = {instance: values for instance, values in state.items() if values}
    for listing in (effects.messages, effects.delayed, effects.egress, effects.deleted):
        listing.sort()
    return effects


@dataclass
class MiniRuntime:
    """The runtime's side of the request-reply protocol, in process (see the module docstring)."""

    call: Call
    served: typing.Container[str]
    registered: dict[str, dict[str, FromFunction.PersistedValueSpec]] = field(default_factory=dict)
    values: dict[tuple[str, str], dict[str, TypedValue]] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)

    def send(
        self,
        typename: str,
        id: str,
        arguments: typing.Sequence[TypedValue],
        caller: tuple[str, str] | None = None,
    ) -> None:
        """Deliver ``arguments`` to ``typename``/``id`` as one batch, then what follows from it."""
        queue: deque[tuple[str, str, list[tuple[Address | None, TypedValue]]]] = deque()
        sender = None if caller is None else _address(*caller)
        queue.append((typename, id, [(sender, argument) for argument in arguments]))
        while queue:
            target, target_id, invocations = queue.popleft()
            result = self._invoke(target, target_id, invocations)
            for message in result.outgoing_messages:
                destination = _typename(message.target)
                if destination in self.served:
                    queue.append(
                        (
                            destination,
                            message.target.id,
                            [(_address(target, target_id), message.argument)],
                        )
                    )

    def _invoke(
        self, typename: str, id: str, invocations: list[tuple[Address | None, TypedValue]]
    ) -> FromFunction.InvocationResponse:
        for _ in range(MAX_REGISTRATION_ROUNDS):
            request = ToFunction()
            batch = request.invocation
            batch.target.CopyFrom(_address(typename, id))
            stored = self.values.setdefault((typename, id), {})
            for name in self.registered.get(typename, {}):
                persisted = batch.state.add(state_name=name)
                if name in stored:
                    persisted.state_value.CopyFrom(stored[name])
            for sender, argument in invocations:
                invocation = batch.invocations.add(argument=argument)
                if sender is not None:
                    invocation.caller.CopyFrom(sender)
            request_bytes = request.SerializeToString()
            response_bytes = self.call(request_bytes)
            self.exchanges.append((request_bytes, response_bytes))
            response = FromFunction.FromString(response_bytes)
            if response.HasField("incomplete_invocation_context"):
                self._register(typename, response.incomplete_invocation_context.missing_values)
                continue
            result = response.invocation_result
            self._apply(typename, stored, result.state_mutations)
            return result
        raise AssertionError(
            f"{typename} still asked for state after {MAX_REGISTRATION_ROUNDS} registrations"
        )

    def _register(
        self, typename: str, missing: typing.Iterable[FromFunction.PersistedValueSpec]
    ) -> None:
        known = self.registered.setdefault(typename, {})
        for spec in missing:
            existing = known.get(spec.state_name)
            if existing is not None:
                # The runtime keeps a registered state; another type would be an error.
                assert existing.type_typename == spec.type_typename, (existing, spec)
                continue
            known[spec.state_name] = spec

    def _apply(
        self,
        typename: str,
        stored: dict[str, TypedValue],
        mutations: typing.Iterable[FromFunction.PersistedValueMutation],
    ) -> None:
        known = self.registered.get(typename, {})
        for mutation in mutations:
            # The runtime refuses a mutation of a state it has not registered, or of another type.
            assert mutation.state_name in known, f"{typename} wrote unregistered {mutation}"
            if mutation.mutation_type == FromFunction.PersistedValueMutation.DELETE:
                stored.pop(mutation.state_name, None)
            else:
                assert (
                    mutation.state_value.typename == known[mutation.state_name].type_typename
                ), mutation
                stored[mutation.state_name] = mutation.state_value


def _address(typename: str, id: str) -> Address:
    namespace, name = typename.rsplit("/", 1)
    return Address(namespace=namespace, type=name, id=id)


# -- in process -------------------------------------------------------------------------------


def in_process_call(functions: typing.Any, driver: str, loop: asyncio.AbstractEventLoop) -> Call:
    """The ``driver`` of ``IN_PROCESS`` serving ``functions``; async ones run on ``loop``."""
    if driver in ("handler(bytes)", "handler(bytes), batched"):
        return typing.cast(Call, RequestReplyHandler(functions))
    if driver == "handle_sync":
        return RequestReplyHandler(functions).handle_sync
    if driver == "await AsyncRequestReplyHandler":
        async_handler = AsyncRequestReplyHandler(functions)
        return lambda body: loop.run_until_complete(async_handler(body))
    assert driver == "handle_async"
    handler = RequestReplyHandler(functions)
    return lambda body: loop.run_until_complete(handler.handle_async(body))


IN_PROCESS = [
    "handler(bytes)",
    "handler(bytes), batched",
    "handle_sync",
    "handle_async",
    "await AsyncRequestReplyHandler",
]


# -- HTTP -------------------------------------------------------------------------------------


class Recorded:
    """The request and response bodies an HTTP server exchanged (status 200 only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []

    def add(self, request: bytes, response: bytes) -> None:
        with self._lock:
            self._exchanges.append((request, response))

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)


@dataclass
class Served:
    url: str
    recorded: Recorded


WsgiApp = typing.Callable[..., typing.Iterable[bytes]]


def _recording_wsgi(app: WsgiApp, recorded: Recorded) -> WsgiApp:
    def recording(environ: dict[str, typing.Any], start_response: typing.Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        statuses: list[str] = []

        def remember(status: str, headers: typing.Any, *rest: typing.Any) -> typing.Any:
            statuses.append(status)
            return start_response(status, headers, *rest)

        chunks = list(app(environ, remember))
        if statuses and statuses[0].startswith("200"):
            recorded.add(body, b"".join(chunks))
        return chunks

    return recording


def serve_wsgi(app: WsgiApp) -> typing.ContextManager[Served]:
    """Serve a WSGI (Flask) app on 127.0.0.1 in a thread, recording its exchanges."""
    import contextlib

    from werkzeug.serving import make_server

    @contextlib.contextmanager
    def serving() -> typing.Iterator[Served]:
        recorded = Recorded()
        server = make_server("127.0.0.1", 0, _recording_wsgi(app, recorded), threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="compat-wsgi", daemon=True)
        thread.start()
        try:
            yield Served(f"http://127.0.0.1:{server.server_port}/statefun", recorded)
        finally:
            server.shutdown()
            thread.join(TIMEOUT_SECONDS)

    return serving()


def serve_aiohttp(app: typing.Any) -> typing.ContextManager[Served]:
    """Serve an aiohttp app on 127.0.0.1 on a loop in its own thread, recording its exchanges."""
    import contextlib

    from aiohttp import web

    @contextlib.contextmanager
    def serving() -> typing.Iterator[Served]:
        recorded = Recorded()

        @web.middleware
        async def record(request: typing.Any, handler: typing.Any) -> typing.Any:
            body = await request.read()
            response = await handler(request)
            if response.status == 200:
                recorded.add(body, response.body)
            return response

        app.middlewares.append(record)
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        started = threading.Event()
        address: list[str] = []

        async def start() -> None:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            address.append(f"http://{host}:{port}/statefun")
            started.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(start())
            loop.run_forever()

        thread = threading.Thread(target=run, name="compat-aiohttp", daemon=True)
        thread.start()
        try:
            assert started.wait(TIMEOUT_SECONDS), "the aiohttp app did not start"
            yield Served(address[0], recorded)
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(TIMEOUT_SECONDS)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(TIMEOUT_SECONDS)
            loop.close()

    return serving()


def post(url: str, body: bytes) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def http_call(url: str) -> Call:
    """A ``Call`` that POSTs to ``url`` and insists on the runtime's 200/octet-stream."""

    def call(body: bytes) -> bytes:
        status, content_type, reply = post(url, body)
        assert (status, content_type) == (200, "application/octet-stream"), (status, reply[:300])
        return reply

    return call


# -- statefun.local ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """An ingress record: a value for the function instance ``typename``/``id``."""

    typename: str
    id: str
    value: TypedValue


def module_yaml(url: str, topics: dict[tuple[str, str], str]) -> str:
    """Both namespaces the snippets use served at ``url``; one ingress topic per route."""
    routes = "".join(
        f"    - topic: {topic}\n      valueType: {value_type}\n      targets:\n        - {target}\n"
        for (value_type, target), topic in topics.items()
    )
    endpoints = "---\n".join(
        f"kind: io.statefun.endpoints.v2/http\nspec:\n  functions: {namespace}/*\n"
        f"  urlPathTemplate: {url}\n"
        for namespace in ("example", "walkthrough")
    )
    return (
        f"{endpoints}---\n"
        "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: example/in\n"
        "  address: kafka-broker:9092\n  consumerGroupId: compat\n  topics:\n"
        f"{routes}---\n"
        "kind: io.statefun.kafka.v1/egress\nspec:\n  id: example/greets\n"
        "  address: kafka-broker:9092\n  deliverySemantic:\n    type: exactly-once\n"
        "    transactionTimeout: 15min\n"
    )


def answered(exchanges: typing.Iterable[tuple[bytes, bytes]]) -> int:
    """How many calls got a final answer (not IncompleteInvocationContext, tag ``aa 06``)."""
    return sum(1 for _, response in exchanges if not response.startswith(b"\xaa\x06"))


def run_local(
    deliveries: typing.Sequence[Delivery],
    served: Served,
    tmp_path: pathlib.Path,
    stop_after_answers: int | None = None,
) -> list[tuple[str, str, bytes]]:
    """Run statefun.local on ``deliveries`` (as ingress records) against the functions ``served``.

    Returns the (topic, key, value) records it wrote to the Kafka egress ``example/greets``, in
    the order written.
    ``stop_after_answers``: the run would wait for a delayed message; stop it once the
    functions answered that many calls.
    """
    topics = {
        route: f"t{index}"
        for index, route in enumerate(sorted({(d.value.typename, d.typename) for d in deliveries}))
    }
    module = tmp_path / "module.yaml"
    module.write_text(module_yaml(served.url, topics), encoding="utf-8")
    records = tmp_path / "in.jsonl"
    records.write_text(
        "".join(
            json.dumps(
                {
                    "ingress": "example/in",
                    "topic": topics[(d.value.typename, d.typename)],
                    "key": d.id,
                    "value_base64": base64.b64encode(d.value.value).decode(),
                }
            )
            + "\n"
            for d in deliveries
        ),
        encoding="utf-8",
    )
    egress = tmp_path / "greets.jsonl"
    command = [sys.executable, "-m", "statefun.local", str(module), "--db", ":memory:"]
    command += ["--input", str(records), "--egress", f"example/greets={egress}"]
    command += ["--call-timeout", "10s"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if stop_after_answers is not None:
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while answered(served.recorded.exchanges) < stop_after_answers:
                assert time.monotonic() < deadline, "statefun.local did not call the functions"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT_SECONDS * 3)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if stop_after_answers is None:
        assert process.returncode == 0, stderr
    written = []
    for line in egress.read_text(encoding="utf-8").splitlines() if egress.exists() else []:
        record = json.loads(line)
        # The runtime shows bytes as text when they are valid UTF-8, else as base64.
        value = (
            base64.b64decode(record["value_base64"])
            if "value_base64" in record
            else record["value"].encode("utf-8")
        )
        written.append((record["topic"], record.get("key", ""), value))
    return written


def kafka_records(exchanges: typing.Iterable[tuple[bytes, bytes]]) -> list[KafkaProducerRecord]:
    records = []
    for _, response in exchanges:
        for egress in FromFunction.FromString(response).invocation_result.outgoing_egresses:
            assert egress.argument.typename == KAFKA_RECORD
            records.append(KafkaProducerRecord.FromString(egress.argument.value))
    return records
