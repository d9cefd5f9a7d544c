from __future__ import annotations

import json
import math
import typing
from dataclasses import dataclass

import pytest
from google.protobuf.message import DecodeError
from google.protobuf.wrappers_pb2 import StringValue

from statefun.core import Type, TypeSerializer, ValueSpec, simple_type
from statefun.errors import (
    InvalidRequestError,
    StateDecodingError,
    StateEncodingError,
    StateTypeMismatchError,
)
from statefun.request_reply_pb2 import TypedValue
from statefun.types_pb2 import IntWrapper
from statefun.storage import Cell, make_address_storage_spec, resolve
from statefun.utils import make_json_type, make_protobuf_type, to_typed_value
from statefun.wrapper_types import DoubleType, FloatType, IntType, LongType, StringType


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


def test_every_lowercase_name_but_the_storages_own_is_a_state_name() -> None:
    # Upstream's storage object had only _cells and _typename of its own (and dunders).
    spec = make_address_storage_spec(
        [ValueSpec("_private", IntType), ValueSpec("unknown", IntType)]
    )
    storage: typing.Any = resolve(
        spec, "ex/fn", [PersistedValueLike("_private", None), PersistedValueLike("unknown", None)]
    ).storage
    storage._private, storage.unknown = 1, 2
    assert (storage._private, storage.unknown) == (1, 2)


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


def test_each_assignment_encodes_once_and_user_types_decode_on_every_read() -> None:
    # A Type of the user's own may have any deserializer: nothing it returns is kept.
    counted = CountingType()
    cell = Cell(counted, TypedValue(typename="ex/counted", has_value=True, value=b"1"))
    for _ in range(10):
        cell.set((cell.get() or 0) + 1)
    assert counted.counting.deserialized == 10
    assert counted.counting.serialized == 10
    assert cell.encoded() == b"11"
    assert counted.counting.serialized == 10


@pytest.mark.parametrize(
    "tpe, assigned, read_back",
    [
        (FloatType, 0.1, 0.10000000149011612),
        (FloatType, 1e39, math.inf),
        (FloatType, 3, 3.0),
        (DoubleType, 3, 3.0),
        (LongType, 2**40, 2**40),
    ],
)
def test_reads_after_assignment_see_the_round_trip(
    tpe: Type[typing.Any], assigned: typing.Any, read_back: typing.Any
) -> None:
    cell = Cell(tpe, None)
    cell.set(assigned)
    value = cell.get()
    assert value == read_back and type(value) is type(read_back)


def test_a_bool_in_an_int_state_is_what_protobuf_makes_of_it() -> None:
    # protobuf 5.26 stores True as 1, later versions refuse it: either way, as upstream.
    wrapper = IntWrapper()
    try:
        wrapper.value = True
    except TypeError:
        with pytest.raises(TypeError):
            Cell(IntType, None).set(True)
        return
    cell = Cell(IntType, None)
    cell.set(True)
    value = cell.get()
    assert value == 1 and type(value) is int


def test_json_values_read_back_as_the_serializer_round_trip() -> None:
    doc = make_json_type("ex/doc")
    cell = Cell(doc, None)
    cell.set({1: (2, 3), "b": [None, True]})
    assert cell.get() == {"1": [2, 3], "b": [None, True]}
    sorted_doc = simple_type(
        "ex/sorted",
        serialize_fn=lambda value: json.dumps(value, sort_keys=True).encode(),
        deserialize_fn=json.loads,
    )
    cell = Cell(sorted_doc, None)
    cell.set({"b": 1, "a": 2})
    assert list(typing.cast(dict[str, int], cell.get())) == ["a", "b"]


@pytest.mark.parametrize(
    "tpe, value",
    [
        (make_json_type("ex/doc"), {"a": [1]}),
        (make_protobuf_type(StringValue), StringValue(value="x")),
        (simple_type("ex/list", serialize_fn=bytes, deserialize_fn=list), [1, 2]),
    ],
    ids=["json", "protobuf", "simple_type"],
)
def test_mutable_values_are_fresh_on_every_read_and_not_stored_by_mutation(
    tpe: Type[typing.Any], value: typing.Any
) -> None:
    def mutate(target: typing.Any) -> None:
        if isinstance(target, StringValue):
            target.value += "!"
        elif isinstance(target, dict):
            target["new"] = True
        else:
            target.append(3)

    received = to_typed_value(tpe, value)
    cell = Cell(tpe, received)
    first, second = cell.get(), cell.get()
    assert first == second == value and first is not second
    mutate(first)
    assert cell.get() == value and not cell.dirty
    # Changing the assigned object after the assignment changes nothing either.
    assigned = cell.get()
    cell.set(assigned)
    mutate(assigned)
    assert cell.get() == value
    assert cell.encoded() == received.value


def test_immutable_builtin_values_are_kept_once_decoded() -> None:
    counting: list[bytes] = []
    real = IntType.serializer().deserialize

    class Spy(TypeSerializer[int]):
        def serialize(self, value: int) -> bytes:
            return IntType.serializer().serialize(value)

        def deserialize(self, data: bytes) -> int:
            counting.append(data)
            return real(data)

    cell = Cell(IntType, to_typed_value(IntType, 41), "n")
    cell._codec.serializer = Spy()
    assert cell.get() == 41 and cell.get() == 41
    assert len(counting) == 1
    cell.set(42)  # an exact int reads back as itself: no decode
    assert cell.get() == 42 and cell.encoded() == b"\x0d\x2a\x00\x00\x00"
    assert len(counting) == 1


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


@pytest.mark.parametrize(
    "tpe, value, upstream",
    [
        (IntType, "seven", TypeError),
        (IntType, 2**31, ValueError),
        (LongType, 2**63, ValueError),
        (FloatType, 10**400, OverflowError),
        (StringType, "\ud800", UnicodeEncodeError),
        (make_json_type("ex/doc"), {1, 2}, TypeError),
    ],
)
def test_unencodable_values_fail_at_the_assignment_as_upstreams_error(
    tpe: Type[typing.Any], value: typing.Any, upstream: type[Exception]
) -> None:
    cell = Cell(tpe, to_typed_value(tpe, None), "n")
    with pytest.raises(upstream) as raised:
        cell.set(value)
    assert isinstance(raised.value, StateEncodingError)
    assert f"in state 'n' as {tpe.typename}" in str(raised.value)
    assert isinstance(raised.value.__cause__, upstream)
    # The failed assignment changed nothing.
    assert not cell.dirty and cell.get() is None


def test_undecodable_state_value_is_an_invalid_request_naming_the_state() -> None:
    corrupt = TypedValue(typename="io.statefun.types/int", has_value=True, value=b"\x09\x03\x00")
    cell = Cell(IntType, corrupt, "seen")
    with pytest.raises(
        StateDecodingError,
        match="cannot decode the value of state 'seen' as io.statefun.types/int \\(3 bytes\\)",
    ) as raised:
        cell.get()
    assert isinstance(raised.value, InvalidRequestError)
    # Upstream let protobuf's DecodeError through: code catching it still does.
    assert isinstance(raised.value, DecodeError)


def test_undecodable_json_is_a_json_decode_error() -> None:
    doc = make_json_type("ex/doc")
    cell = Cell(doc, TypedValue(typename="ex/doc", has_value=True, value=b'{"a":'), "doc")
    with pytest.raises(json.JSONDecodeError) as raised:
        cell.get()
    assert isinstance(raised.value, StateDecodingError)
    assert raised.value.pos == 5
