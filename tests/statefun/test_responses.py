from __future__ import annotations

from datetime import timedelta

from statefun.context import BatchContext
from statefun.core import SdkAddress, ValueSpec
from statefun.responses import batch_response, missing_values_response
from statefun.storage import make_address_storage_spec, resolve
from statefun.wrapper_types import IntType, StringType


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
