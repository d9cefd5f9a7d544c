from __future__ import annotations

import typing
from dataclasses import dataclass

import pytest

from statefun.core import Type, TypeSerializer, ValueSpec
from statefun.errors import (
    InvalidRequestError,
    StateDecodingError,
    StateEncodingError,
    StateTypeMismatchError,
)
from statefun.request_reply_pb2 import TypedValue
from statefun.storage import Cell, make_address_storage_spec, resolve
from statefun.utils import to_typed_value
from statefun.wrapper_types import IntType, StringType


@dataclass
class PersistedValueLike:
    state_name: str
    state_value: TypedValue | None


class CountingSerializer(TypeSerializer[int]):
    def __init__(self) -> None:
        self.serialized = 0
        self.deserialized = 0

    def serialize(self, value: int) -> bytes:
        self.serialized += 1
        return str(value).encode()

    def deserialize(self, data: bytes) -> int:
        self.deserialized += 1
        return int(data)


class CountingType(Type[int]):
    def __init__(self) -> None:
        super().__init__("ex/counted")
        self.counting = CountingSerializer()

    def serializer(self) -> TypeSerializer[int]:
        return self.counting


SPECS = [ValueSpec("a", IntType), ValueSpec("b", StringType)]


def test_resolve_reports_missing_specs_in_declaration_order() -> None:
    spec = make_address_storage_spec([ValueSpec("x", IntType), *SPECS])
    resolution = resolve(spec, "ex/fn", [PersistedValueLike("a", None)])
    assert resolution.storage is None
    assert [s.name for s in resolution.missing_specs or []] == ["x", "b"]


def test_resolved_storage_reads_writes_and_deletes() -> None:
    spec = make_address_storage_spec(SPECS)
    resolution = resolve(
        spec,
        "ex/fn",
        [
            PersistedValueLike("b", TypedValue(typename="io.statefun.types/string")),
            PersistedValueLike("a", to_typed_value(IntType, 4)),
            PersistedValueLike("ignored", None),
        ],
    )
    assert resolution.missing_specs is None
    storage: typing.Any = resolution.storage
    assert storage.a == 4
    assert storage.b is None
    storage.a = 5
    assert storage.a == 5
    del storage.b
    cells = storage._cells
    assert cells["a"].dirty and cells["b"].dirty
    assert cells["a"].typed_value == to_typed_value(IntType, 5)
    assert cells["b"].typed_value is None


def test_unknown_state_attribute_errors_name_the_function_and_declared_states() -> None:
    message = "'nope' is not a registered ValueSpec for the function 'ex/fn' \\(declared: a, b\\)"
    storage: typing.Any = resolve(
        make_address_storage_spec(SPECS),
        "ex/fn",
        [PersistedValueLike("a", None), PersistedValueLike("b", None)],
    ).storage
    with pytest.raises(AttributeError, match=message):
        storage.nope
    with pytest.raises(AttributeError, match=message):
        storage.nope = 1
    with pytest.raises(AttributeError, match=message):
        del storage.nope
    empty: typing.Any = resolve(make_address_storage_spec([]), "ex/fn", []).storage
    with pytest.raises(AttributeError, match="\\(declared: none\\)"):
        empty.nope


def test_duplicate_and_reserved_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate registered value name: a"):
        make_address_storage_spec([ValueSpec("a", IntType), ValueSpec("a", StringType)])
    for reserved in ("_cells", "_typename", "__init__", "__getattr__"):
        with pytest.raises(ValueError, match="reserved"):
            make_address_storage_spec([ValueSpec(reserved, IntType)])


def test_assigning_none_is_rejected() -> None:
    cell: Cell[int] = Cell(IntType, None)
    with pytest.raises(ValueError, match="To delete a value, please use del"):
        cell.set(None)  # type: ignore[arg-type]


def test_state_is_decoded_once_and_encoded_once_per_batch() -> None:
    counted = CountingType()
    cell = Cell(counted, TypedValue(typename="ex/counted", has_value=True, value=b"1"))
    for _ in range(10):
        cell.set((cell.get() or 0) + 1)
    assert counted.counting.deserialized == 1
    assert counted.counting.serialized == 0
    assert cell.encoded() == b"11"
    assert counted.counting.serialized == 1


def test_untouched_cell_keeps_the_received_value() -> None:
    received = to_typed_value(IntType, 3)
    cell = Cell(IntType, received)
    assert not cell.dirty
    assert cell.typed_value is received
    assert cell.encoded() == received.value


def test_mismatched_state_type_raises_on_read() -> None:
    cell = Cell(IntType, to_typed_value(StringType, "x"))
    with pytest.raises(StateTypeMismatchError, match="io.statefun.types/string \\(remote\\)"):
        cell.get()


def test_unencodable_value_names_type_and_value() -> None:
    cell = Cell(IntType, None)
    cell.set("seven")  # type: ignore[arg-type]
    with pytest.raises(
        StateEncodingError, match="cannot store str value 'seven' as io.statefun.types/int"
    ):
        cell.encoded()


def test_undecodable_state_value_is_an_invalid_request_naming_the_state() -> None:
    corrupt = TypedValue(typename="io.statefun.types/int", has_value=True, value=b"\x09\x03\x00")
    cell = Cell(IntType, corrupt, "seen")
    with pytest.raises(
        StateDecodingError,
        match="cannot decode the value of state 'seen' as io.statefun.types/int \\(3 bytes\\)",
    ) as raised:
        cell.get()
    assert isinstance(raised.value, InvalidRequestError)
