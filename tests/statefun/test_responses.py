from __future__ import annotations

import random
from datetime import timedelta

import pytest

from statefun.context import BatchContext
from statefun.core import SdkAddress, ValueSpec
from statefun.messages import Message, egress_with_value, message_with_value
from statefun.request_reply_pb2 import FromFunction, ToFunction, TypedValue
from statefun.responses import batch_response, missing_values_response
from statefun.storage import make_address_storage_spec, resolve
from statefun.utils import to_typed_value
from statefun.wrapper_types import IntType, StringType

PersistedValue = ToFunction.PersistedValue


def test_missing_values_reference_bytes() -> None:
    data = missing_values_response(
        [
            ValueSpec("seen", IntType),
            ValueSpec("name", StringType, expire_after_call=timedelta(seconds=5)),
        ]
    )
    assert data.hex() == (
        "aa064a0a1f0a047365656e12001a15696f2e737461746566756e2e74797065732f696e74"
        "0a270a046e616d6512050802108827"
        "1a18696f2e737461746566756e2e74797065732f737472696e67"
    )


def test_a_batch_without_effects_is_empty_and_reads_do_not_count() -> None:
    storage = resolve(
        make_address_storage_spec([ValueSpec("a", IntType)]), "ex/fn", [_Value()]
    ).storage
    assert storage is not None
    context = BatchContext(SdkAddress("ex", "fn", "1", "ex/fn"), storage)
    _ = context.storage.a
    assert batch_response(context) == b""
    context.storage.a = 2
    assert batch_response(context).startswith(b"\xa2\x06")


class _Value:
    state_name = "a"
    state_value = None


def _sizes(generator: random.Random) -> int:
    # Around the one-byte length limit, where the inline paths hand over to the general one.
    return generator.choice([0, 1, 2, 40, 60, 100, 110, 120, 125, 126, 127, 128, 129, 300])


def _text(generator: random.Random, size: int) -> str:
    return "".join(generator.choice("ab/é😀") for _ in range(size))


@pytest.mark.parametrize("seed", range(60))
def test_batch_responses_match_protobuf_at_every_field_size(seed: int) -> None:
    generator = random.Random(seed)
    specs = [ValueSpec("s", StringType)]
    storage = resolve(make_address_storage_spec(specs), "ex/fn", [PersistedValue(state_name="s")])
    assert storage.storage is not None
    context = BatchContext(SdkAddress("ex", "fn", "id", "ex/fn"), storage.storage)
    expected = FromFunction()
    result = expected.invocation_result
    if generator.random() < 0.7:
        value = "x" * _sizes(generator)
        context.storage.s = value  # type: ignore[attr-defined]
        mutation = result.state_mutations.add(mutation_type=1, state_name="s")
        mutation.state_value.CopyFrom(to_typed_value(StringType, value))
    for _ in range(generator.randint(0, 5)):
        target = "ns" * generator.randint(1, 30) + "/" + "n" * generator.randint(1, 30)
        target_id = _text(generator, _sizes(generator)) or "i"
        value_typename = "t/" + "v" * _sizes(generator)
        raw = generator.randbytes(_sizes(generator))
        if generator.random() < 0.2:
            sent = Message(target, target_id, TypedValue(typename=value_typename, value=raw))
        else:
            sent = message_with_value(target, target_id, value_typename, raw)
        context.send(sent)
        outgoing = result.outgoing_messages.add()
        outgoing.target.namespace, outgoing.target.type = target.rsplit("/", 1)
        outgoing.target.id = target_id
        outgoing.argument.CopyFrom(sent.typed_value)
    for _ in range(generator.randint(0, 5)):
        target = "e" * generator.randint(1, 60) + "/" + "g" * generator.randint(1, 60)
        value_typename = "t/" + "v" * _sizes(generator)
        raw = generator.randbytes(_sizes(generator))
        record = egress_with_value(target, value_typename, raw)
        context.send_egress(record)
        egress = result.outgoing_egresses.add()
        egress.egress_namespace, egress.egress_type = target.rsplit("/", 1)
        egress.argument.CopyFrom(record.typed_value)
    assert batch_response(context) == expected.SerializeToString()


def test_batch_responses_match_protobuf_across_the_one_byte_length_limit() -> None:
    storage = resolve(make_address_storage_spec([]), "ex/fn", []).storage
    assert storage is not None
    context = BatchContext(SdkAddress("ex", "fn", "id", "ex/fn"), storage)
    expected = FromFunction().invocation_result
    # Every id and value size from 1 to 140 bytes: entries of every size around 128.
    for size in range(1, 141):
        for target_id, raw in (("i" * size, b"v"), ("i", b"v" * size)):
            context.send(message_with_value("ex/to", target_id, "ex/t", raw))
            outgoing = expected.outgoing_messages.add()
            outgoing.target.namespace, outgoing.target.type, outgoing.target.id = (
                "ex",
                "to",
                target_id,
            )
            outgoing.argument.CopyFrom(TypedValue(typename="ex/t", has_value=True, value=raw))
        context.send_egress(egress_with_value("ex/out", "ex/t", b"v" * size))
        egress = expected.outgoing_egresses.add(egress_namespace="ex", egress_type="out")
        egress.argument.CopyFrom(TypedValue(typename="ex/t", has_value=True, value=b"v" * size))
    response = FromFunction()
    response.invocation_result.CopyFrom(expected)
    assert batch_response(context) == response.SerializeToString()
