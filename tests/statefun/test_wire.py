"""The hand-written encoder against protobuf's own serialization, on randomized responses."""

from __future__ import annotations

import random
import typing

import pytest

from statefun import wire
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.kinesis_egress_pb2 import KinesisEgressRecord
from statefun.request_reply_pb2 import FromFunction, TypedValue

ALPHABET = "abcxyz09_.-/äß€😀"


def text(generator: random.Random, allow_empty: bool = True, alphabet: str = ALPHABET) -> str:
    # 130 and 17000 characters need 2- and 3-byte length varints.
    size = generator.choice([0, 1, 5, 60, 130, 200, 17000] if allow_empty else [1, 5, 130, 17000])
    head = "".join(generator.choice(alphabet) for _ in range(min(size, 40)))
    return head + generator.choice(alphabet) * (size - len(head))


def blob(generator: random.Random) -> bytes:
    return generator.randbytes(generator.choice([0, 1, 127, 128, 300]))


def typename(generator: random.Random) -> str:
    part = ALPHABET.replace("/", "")
    return text(generator, False, part) + "/" + text(generator, False, part)


def argument(generator: random.Random) -> tuple[TypedValue, bytes]:
    """A TypedValue and its wire bytes, built the way the SDK builds one."""
    value_typename, value = typename(generator), blob(generator)
    if generator.random() < 0.3:
        # A user-built protobuf TypedValue, possibly without a value: serialized by protobuf.
        typed_value = TypedValue(
            typename=value_typename, has_value=generator.random() < 0.5, value=value
        )
        return typed_value, typed_value.SerializeToString()
    return TypedValue(typename=value_typename, has_value=True, value=value), wire.typed_value(
        value_typename, value
    )


@pytest.mark.parametrize("seed", range(40))
def test_invocation_response_matches_protobuf(seed: int) -> None:
    generator = random.Random(seed)
    expected = FromFunction()
    result = expected.invocation_result
    mutations, outgoing, delayed, egresses = [], [], [], []
    for _ in range(generator.randint(0, 3)):
        name, state_typename = text(generator, allow_empty=False), typename(generator)
        value = None if generator.random() < 0.3 else blob(generator)
        mutation = result.state_mutations.add()
        mutation.state_name = name
        if value is None:
            mutation.mutation_type = FromFunction.PersistedValueMutation.DELETE
        else:
            mutation.mutation_type = FromFunction.PersistedValueMutation.MODIFY
            mutation.state_value.CopyFrom(
                TypedValue(typename=state_typename, has_value=True, value=value)
            )
        mutations.append(wire.persisted_value_mutation(name, state_typename, value))
    for _ in range(generator.randint(0, 4)):
        target, id = typename(generator), text(generator, allow_empty=False)
        typed_value, encoded = argument(generator)
        message = result.outgoing_messages.add()
        namespace, name = target.rsplit("/", 1)
        message.target.namespace, message.target.type, message.target.id = namespace, name, id
        message.argument.CopyFrom(typed_value)
        outgoing.append(wire.outgoing_invocation(wire.address(target, id), encoded))
    for _ in range(generator.randint(0, 4)):
        entry = result.delayed_invocations.add()
        token = generator.choice([None, "", text(generator)])
        if generator.random() < 0.3:
            token = text(generator, allow_empty=False)
            entry.is_cancellation_request = True
            entry.cancellation_token = token
            delayed.append(wire.delayed_cancellation(token))
            continue
        target, id = typename(generator), text(generator, allow_empty=False)
        delay = generator.choice([0, 1, 127, 128, 2**40, -1, -(2**40)])
        typed_value, encoded = argument(generator)
        namespace, name = target.rsplit("/", 1)
        entry.target.namespace, entry.target.type, entry.target.id = namespace, name, id
        entry.delay_in_ms = delay
        entry.argument.CopyFrom(typed_value)
        if token is not None:
            entry.cancellation_token = token
        delayed.append(wire.delayed_invocation(delay, wire.address(target, id), encoded, token))
    for _ in range(generator.randint(0, 3)):
        target = typename(generator)
        typed_value, encoded = argument(generator)
        egress = result.outgoing_egresses.add()
        egress.egress_namespace, egress.egress_type = target.rsplit("/", 1)
        egress.argument.CopyFrom(typed_value)
        egresses.append(wire.egress_message(target, encoded))
    assert (
        wire.invocation_response(mutations, outgoing, delayed, egresses)
        == expected.SerializeToString()
    )


@pytest.mark.parametrize("seed", range(20))
def test_egress_records_match_protobuf(seed: int) -> None:
    generator = random.Random(seed)
    key = generator.choice([None, "", text(generator)])
    value, topic = blob(generator), text(generator, allow_empty=False)
    kafka = KafkaProducerRecord(topic=topic, value_bytes=value)
    if key is not None:
        kafka.key = key
    assert wire.kafka_producer_record(key, value, topic) == kafka.SerializeToString()
    hash_key = generator.choice([None, "", text(generator)])
    partition_key = text(generator)
    kinesis = KinesisEgressRecord(partition_key=partition_key, value_bytes=value, stream=topic)
    if hash_key is not None:
        kinesis.explicit_hash_key = hash_key
    assert (
        wire.kinesis_egress_record(partition_key, value, topic, hash_key)
        == kinesis.SerializeToString()
    )


def test_varint() -> None:
    assert wire.varint(0) == b"\x00"
    assert wire.varint(300) == b"\xac\x02"
    assert wire.varint(-1) == b"\xff" * 9 + b"\x01"
