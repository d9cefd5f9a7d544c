from __future__ import annotations

import typing

import pytest

from statefun import types_pb2
from statefun.core import Type
from statefun.wrapper_types import BoolType, DoubleType, FloatType, IntType, LongType, StringType


@pytest.mark.parametrize(
    "tpe, value, encoded",
    [
        (BoolType, True, "0801"),
        (BoolType, False, ""),
        (IntType, 1, "0d01000000"),
        (IntType, -1, "0dffffffff"),
        (IntType, 0, ""),
        (LongType, 2**45, "090000000000200000"),
        (LongType, 0, ""),
        (FloatType, 0.5, "0d0000003f"),
        (DoubleType, 0.1, "099a9999999999b93f"),
        (StringType, "hi", "0a026869"),
        (StringType, "", ""),
    ],
)
def test_reference_byte_examples(tpe: Type[typing.Any], value: typing.Any, encoded: str) -> None:
    serializer = tpe.serializer()
    assert serializer.serialize(value).hex() == encoded
    assert serializer.deserialize(bytes.fromhex(encoded)) == value


def test_typenames() -> None:
    assert [
        t.typename for t in (BoolType, IntType, LongType, FloatType, DoubleType, StringType)
    ] == [
        "io.statefun.types/bool",
        "io.statefun.types/int",
        "io.statefun.types/long",
        "io.statefun.types/float",
        "io.statefun.types/double",
        "io.statefun.types/string",
    ]


@pytest.mark.parametrize(
    "tpe, wrapper, values",
    [
        (IntType, types_pb2.IntWrapper, [1, -1, 2**31 - 1, -(2**31), 7, 0]),
        (LongType, types_pb2.LongWrapper, [2**63 - 1, -(2**63), 1, 0, -5]),
        (BoolType, types_pb2.BooleanWrapper, [True, False]),
        (
            StringType,
            types_pb2.StringWrapper,
            ["", "a", "ä€😀", "x" * 127, "x" * 128, "y" * 100000],
        ),
    ],
)
def test_fast_paths_match_protobuf_encoding(
    tpe: Type[typing.Any], wrapper: typing.Any, values: list[typing.Any]
) -> None:
    serializer = tpe.serializer()
    for value in values:
        expected = wrapper(value=value).SerializeToString()
        assert serializer.serialize(value) == expected
        assert serializer.deserialize(expected) == value


def test_out_of_range_and_wrong_python_types_are_rejected() -> None:
    with pytest.raises(ValueError, match="out of range"):
        IntType.serializer().serialize(2**31)
    with pytest.raises(ValueError, match="out of range"):
        LongType.serializer().serialize(2**63)
    with pytest.raises(TypeError):
        IntType.serializer().serialize(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        StringType.serializer().serialize(3)  # type: ignore[arg-type]


def test_empty_payload_decodes_to_default() -> None:
    assert IntType.serializer().deserialize(b"") == 0
    assert StringType.serializer().deserialize(b"") == ""
    assert BoolType.serializer().deserialize(b"") is False
    assert DoubleType.serializer().deserialize(b"") == 0.0


def test_decoding_tolerates_unknown_fields_via_protobuf() -> None:
    # field 1 = 5 followed by an unknown varint field 2: the fast path must fall back.
    data = bytes.fromhex("0d05000000") + bytes.fromhex("1001")
    assert IntType.serializer().deserialize(data) == 5
