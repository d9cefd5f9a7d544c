"""A test harness for user functions: invoke a registered function in-process, get plain values back.

    harness = FunctionHarness(functions, "com.example/greeter")
    result = harness.invoke("alice", id="alice", state={"seen_count": 3})
    assert result.state == {"seen_count": 4}
    assert result.messages[0].value == "Hello alice for the 3th time!"

Each call goes through the real ``RequestReplyHandler`` and the wire format:
the harness encodes the state and messages into a ``ToFunction`` request and
decodes the ``FromFunction`` response, so what the test sees is what the
runtime would receive. Values whose typename is a built-in type, a state's
type or one of ``types`` come back decoded; other values come back as bytes.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import timedelta

from statefun.core import Type, validate_typename
from statefun.egress_io import KAFKA_PRODUCER_RECORD_TYPENAME, KINESIS_EGRESS_RECORD_TYPENAME
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.kinesis_egress_pb2 import KinesisEgressRecord
from statefun.messages import Message
from statefun.request_reply_pb2 import FromFunction, ToFunction, TypedValue
from statefun.request_reply_v3 import RequestReplyHandler
from statefun.statefun_builder import StatefulFunctions
from statefun.utils import to_typed_value
from statefun.wrapper_types import BoolType, DoubleType, FloatType, IntType, LongType, StringType

__all__ = [
    "FunctionHarness",
    "InvocationResult",
    "SentMessage",
    "DelayedMessage",
    "EgressRecord",
    "KafkaRecord",
    "KinesisRecord",
]

Argument = typing.Union[Message, tuple[typing.Any, Type[typing.Any]], str, bool, int]


@dataclass(frozen=True)
class SentMessage:
    """A message the function sent with ``send``."""

    target_typename: str
    target_id: str
    value_typename: str
    value: typing.Any
    """Decoded when the harness knows the type, else the raw bytes; ``None`` without a value."""


@dataclass(frozen=True)
class DelayedMessage:
    """A message the function sent with ``send_after``."""

    delay: timedelta
    target_typename: str
    target_id: str
    value_typename: str
    value: typing.Any
    cancellation_token: str | None


@dataclass(frozen=True)
class EgressRecord:
    """A message to an egress other than the generic Kafka/Kinesis ones."""

    egress_typename: str
    value_typename: str
    value: typing.Any


@dataclass(frozen=True)
class KafkaRecord:
    """A record for a Kafka egress (built with ``kafka_egress_message``)."""

    egress_typename: str
    topic: str
    key: str | None
    value: bytes


@dataclass(frozen=True)
class KinesisRecord:
    """A record for a Kinesis egress (built with ``kinesis_egress_message``)."""

    egress_typename: str
    stream: str
    partition_key: str
    explicit_hash_key: str | None
    value: bytes


@dataclass(frozen=True)
class InvocationResult:
    """Everything one batch did, as plain values."""

    state: dict[str, typing.Any]
    """Every declared state after the batch; ``None`` for a state without a value."""
    state_changes: dict[str, typing.Any]
    """Only the states the batch wrote or deleted; a deleted state maps to ``None``."""
    messages: list[SentMessage] = field(default_factory=list)
    delayed: list[DelayedMessage] = field(default_factory=list)
    cancellations: list[str] = field(default_factory=list)
    egress: list[EgressRecord | KafkaRecord | KinesisRecord] = field(default_factory=list)
    response_bytes: bytes = b""
    """The serialized ``FromFunction`` the runtime would have received."""


_BUILTINS: tuple[Type[typing.Any], ...] = (
    BoolType,
    IntType,
    LongType,
    FloatType,
    DoubleType,
    StringType,
)


class FunctionHarness:
    """Invoke one registered function with given state and messages."""

    def __init__(
        self,
        functions: StatefulFunctions,
        typename: str,
        *,
        types: typing.Iterable[Type[typing.Any]] = (),
    ) -> None:
        validate_typename(typename, "the function typename")
        self._function = functions.for_typename(typename)
        self._handler = RequestReplyHandler(functions)
        self._namespace, self._name = typename.rsplit("/", 1)
        self.typename = typename
        self._specs = {spec.name: spec for spec in self._function.storage_spec.specs}
        known: dict[str, Type[typing.Any]] = {t.typename: t for t in _BUILTINS}
        known.update({spec.type.typename: spec.type for spec in self._specs.values()})
        known.update({t.typename: t for t in types})
        self._types = known

    def invoke(
        self,
        *arguments: Argument,
        id: str = "test-id",
        state: typing.Mapping[str, typing.Any] | None = None,
        caller: tuple[str, str] | None = None,
    ) -> InvocationResult:
        """Run one batch of ``arguments`` against the instance ``id`` holding ``state``.

        An argument is a ``Message`` (its value is used), a ``(value, Type)``
        pair, or a bare ``str``/``bool``/``int`` (string/bool/int built-in type).
        ``caller`` is ``(typename, id)`` of the sending function, or ``None``
        for a message from an ingress. Async functions run on a private event
        loop; from async tests use ``invoke_async`` to run them on yours.
        """
        request, initial = self._request(arguments, id, state, caller)
        return self._result(self._handler.handle_sync(request), initial)

    async def invoke_async(
        self,
        *arguments: Argument,
        id: str = "test-id",
        state: typing.Mapping[str, typing.Any] | None = None,
        caller: tuple[str, str] | None = None,
    ) -> InvocationResult:
        """``invoke`` through ``handle_async``, on the running event loop."""
        request, initial = self._request(arguments, id, state, caller)
        return self._result(await self._handler.handle_async(request), initial)

    def _request(
        self,
        arguments: typing.Sequence[Argument],
        id: str,
        state: typing.Mapping[str, typing.Any] | None,
        caller: tuple[str, str] | None,
    ) -> tuple[bytes, dict[str, typing.Any]]:
        initial = dict(state or {})
        unknown = sorted(set(initial) - set(self._specs))
        if unknown:
            raise ValueError(
                f"state {unknown} is not declared by {self.typename}; "
                f"declared: {sorted(self._specs)}"
            )
        if caller is not None:
            validate_typename(caller[0], "the caller typename")
        request = ToFunction()
        batch = request.invocation
        batch.target.namespace, batch.target.type, batch.target.id = self._namespace, self._name, id
        for name, spec in self._specs.items():
            persisted = batch.state.add(state_name=name)
            if initial.get(name) is not None:
                persisted.state_value.CopyFrom(to_typed_value(spec.type, initial[name]))
        for argument in arguments:
            invocation = batch.invocations.add(argument=self._typed_argument(argument))
            if caller is not None:
                caller_typename, caller_id = caller
                namespace, name = caller_typename.rsplit("/", 1)
                invocation.caller.namespace, invocation.caller.type = namespace, name
                invocation.caller.id = caller_id
        return request.SerializeToString(), {name: initial.get(name) for name in self._specs}

    @staticmethod
    def _typed_argument(argument: Argument) -> TypedValue:
        if isinstance(argument, Message):
            return argument.typed_value
        if isinstance(argument, tuple):
            value, tpe = argument
            return to_typed_value(tpe, value)
        if isinstance(argument, bool):
            return to_typed_value(BoolType, argument)
        if isinstance(argument, str):
            return to_typed_value(StringType, argument)
        if isinstance(argument, int):
            return to_typed_value(IntType, argument)
        raise TypeError(
            f"cannot send {type(argument).__name__} {argument!r}: pass a Message, a (value, Type) "
            "pair, or a str/bool/int"
        )

    def _decode(self, typed_value: TypedValue) -> typing.Any:
        if not typed_value.has_value:
            return None
        tpe = self._types.get(typed_value.typename)
        if tpe is None:
            return typed_value.value
        return tpe.serializer().deserialize(typed_value.value)

    def _result(self, data: bytes, state: dict[str, typing.Any]) -> InvocationResult:
        response = FromFunction()
        response.ParseFromString(data)
        if response.HasField("incomplete_invocation_context"):
            missing = [v.state_name for v in response.incomplete_invocation_context.missing_values]
            raise AssertionError(f"the handler asked for state the harness did not send: {missing}")
        result = response.invocation_result
        changes: dict[str, typing.Any] = {}
        for mutation in result.state_mutations:
            spec = self._specs[mutation.state_name]
            if mutation.mutation_type == FromFunction.PersistedValueMutation.DELETE:
                changes[mutation.state_name] = None
            else:
                changes[mutation.state_name] = spec.type.serializer().deserialize(
                    mutation.state_value.value
                )
        state.update(changes)
        messages = [
            SentMessage(
                target_typename=f"{m.target.namespace}/{m.target.type}",
                target_id=m.target.id,
                value_typename=m.argument.typename,
                value=self._decode(m.argument),
            )
            for m in result.outgoing_messages
        ]
        delayed: list[DelayedMessage] = []
        cancellations: list[str] = []
        for d in result.delayed_invocations:
            if d.is_cancellation_request:
                cancellations.append(d.cancellation_token)
                continue
            delayed.append(
                DelayedMessage(
                    delay=timedelta(milliseconds=d.delay_in_ms),
                    target_typename=f"{d.target.namespace}/{d.target.type}",
                    target_id=d.target.id,
                    value_typename=d.argument.typename,
                    value=self._decode(d.argument),
                    cancellation_token=d.cancellation_token or None,
                )
            )
        egress = [self._egress(e) for e in result.outgoing_egresses]
        return InvocationResult(
            state=state,
            state_changes=changes,
            messages=messages,
            delayed=delayed,
            cancellations=cancellations,
            egress=egress,
            response_bytes=data,
        )

    def _egress(
        self, egress: FromFunction.EgressMessage
    ) -> EgressRecord | KafkaRecord | KinesisRecord:
        typename = f"{egress.egress_namespace}/{egress.egress_type}"
        argument = egress.argument
        if argument.typename == KAFKA_PRODUCER_RECORD_TYPENAME:
            kafka = KafkaProducerRecord()
            kafka.ParseFromString(argument.value)
            return KafkaRecord(typename, kafka.topic, kafka.key or None, kafka.value_bytes)
        if argument.typename == KINESIS_EGRESS_RECORD_TYPENAME:
            kinesis = KinesisEgressRecord()
            kinesis.ParseFromString(argument.value)
            return KinesisRecord(
                typename,
                kinesis.stream,
                kinesis.partition_key,
                kinesis.explicit_hash_key or None,
                kinesis.value_bytes,
            )
        return EgressRecord(typename, argument.typename, self._decode(argument))
