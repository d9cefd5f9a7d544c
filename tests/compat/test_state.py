"""2.x ``Any`` state over the 3.x storage: declarations, ``AnyStateHandle``, 3.x-typed states."""

from __future__ import annotations

from datetime import timedelta

import pytest
from compat_support import ANY_STATE_TYPENAME, SeenCount, User, any_state as stored, packed

from statefun.compat.state import (
    ANY_STATE_TYPE,
    AnyStateHandle,
    any_state,
    state_specs,
)
from statefun.core import ValueSpec
from statefun.request_reply_pb2 import ToFunction, TypedValue
from statefun.storage import AddressScopedStorage, make_address_storage_spec, resolve
from statefun.wrapper_types import IntType


def storage_with(values: dict[str, TypedValue | None]) -> AddressScopedStorage:
    specs = state_specs("ex/fn", list(values))
    received = []
    for name, value in values.items():
        persisted = ToFunction.PersistedValue(state_name=name)
        if value is not None:
            persisted.state_value.CopyFrom(value)
        received.append(persisted)
    storage = resolve(make_address_storage_spec(specs), "ex/fn", received).storage
    assert storage is not None
    return storage


def handle_of(storage: AddressScopedStorage, name: str = "seen") -> AnyStateHandle:
    return AnyStateHandle(storage._cells[name], name)


def test_state_names_become_any_typed_value_specs() -> None:
    (spec,) = state_specs("ex/fn", ["seen_count"])

    assert spec.name == "seen_count"
    assert spec.type.typename == ANY_STATE_TYPENAME == ANY_STATE_TYPE.typename
    assert (spec.duration, spec.after_call, spec.after_write) == (0, False, False)


def test_any_state_carries_an_expiration() -> None:
    spec = any_state("seen_count", expire_after_call=timedelta(minutes=1))
    (declared,) = state_specs("ex/fn", [spec])

    assert declared is spec
    assert (spec.duration, spec.after_call) == (60000, True)


@pytest.mark.parametrize(
    ("states", "error", "text"),
    [
        (
            "count",
            TypeError,
            "states= of ex/fn must be a list of state names.*states=\\['count'\\]",
        ),
        (["seenCount"], ValueError, "state 'seenCount' of ex/fn: invalid name 'seenCount'"),
        ([ValueSpec("seen", IntType)], TypeError, "has type io.statefun.types/int; a 2.x state"),
        ([3], TypeError, "holds int 3; expected state names"),
    ],
)
def test_bad_declarations_say_what_and_where(
    states: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        state_specs("ex/fn", states)  # type: ignore[arg-type]


def test_an_absent_state_reads_as_none() -> None:
    handle = handle_of(storage_with({"seen": None}))

    assert handle.value is None
    assert handle.unpack(SeenCount) is None
    assert handle.bytes() is None
    assert not handle.modified and not handle.deleted


def test_a_stored_state_unpacks_into_its_class() -> None:
    handle = handle_of(storage_with({"seen": stored(SeenCount(seen=3))}))

    assert handle.value == packed(SeenCount(seen=3))
    assert handle.unpack(SeenCount) == SeenCount(seen=3)
    assert handle.bytes() == packed(SeenCount(seen=3)).SerializeToString()


def test_pack_set_and_delete_mark_the_handle_and_the_storage() -> None:
    storage = storage_with({"seen": stored(SeenCount(seen=3))})
    handle = handle_of(storage)

    handle.pack(SeenCount(seen=4))
    assert handle.modified and not handle.deleted
    assert storage.seen == packed(SeenCount(seen=4))

    del handle.value
    assert handle.modified and handle.deleted
    assert storage.seen is None and handle.value is None

    handle.value = packed(SeenCount(seen=1))
    assert not handle.deleted
    assert handle.unpack(SeenCount) == SeenCount(seen=1)


def test_wrong_values_are_refused_with_a_hint() -> None:
    handle = handle_of(storage_with({"seen": stored(User(name="Ann"))}))

    with pytest.raises(
        TypeError,
        match="state 'seen' holds type.googleapis.com/example.User, not example.SeenCount",
    ):
        handle.unpack(SeenCount)
    with pytest.raises(
        TypeError,
        match="state .seen. expects a google.protobuf.Any, got SeenCount; use context.state\\(.seen.\\).pack\\(message\\) to pass a SeenCount",
    ):
        handle.value = SeenCount(seen=1)  # type: ignore[assignment]
    with pytest.raises(
        ValueError, match="can not store None; to clear it use del context\\['seen'\\]"
    ):
        handle.value = None  # type: ignore[assignment]
    with pytest.raises(TypeError, match="pack\\(\\) expects a protobuf message, got int"):
        handle.pack(5)  # type: ignore[arg-type]
