"""The six built-in types (``io.statefun.types/*``), each a proto3 wrapper whose field 1 holds the value.

The common cases (a plain ``int``/``str``/``bool``) are encoded and decoded
directly, producing exactly the bytes protobuf's canonical serialization
would; anything else goes through the protobuf wrapper message so that
conversions and errors are protobuf's own.
"""

from __future__ import annotations

import struct
import typing

from google.protobuf.message import Message as _ProtoMessage

from statefun import types_pb2
from statefun.types_pb2 import (  # noqa: F401 - upstream exposed the wrapper messages here
    BooleanWrapper,
    DoubleWrapper,
    FloatWrapper,
    IntWrapper,
    LongWrapper,
    StringWrapper,
)
from statefun.core import Type, TypeSerializer

__all__ = [
    "ProtobufWrappingType",
    "BoolType",
    "IntType",
    "LongType",
    "FloatType",
    "DoubleType",
    "StringType",
    "PY_TYPE_TO_WRAPPER_TYPE",
    "WRAPPER_TYPE_TO_PY_TYPE",
    "ProtobufWrappingTypeSerializer",
    "BooleanWrapper",
    "DoubleWrapper",
    "FloatWrapper",
    "IntWrapper",
    "LongWrapper",
    "StringWrapper",
]

T = typing.TypeVar("T")

_INT32 = struct.Struct("<i")
_INT64 = struct.Struct("<q")
_ONE_BYTE = [bytes((n,)) for n in range(0x80)]


class _WrapperSerializer(TypeSerializer[T]):
    """Generic path: set ``wrapper.value`` and serialize; parse and read ``.value`` back.

    ``ASSIGNED_TYPE`` is the one Python type whose values read back unchanged
    after a round trip through this serializer (``None``: no such promise, e.g.
    float32 narrows doubles). The storage uses it to skip decoding right
    after an assignment.
    """

    __slots__ = ("_wrapper_cls",)

    ASSIGNED_TYPE: typing.ClassVar[type | None] = None

    def __init__(self, wrapper_cls: type[_ProtoMessage]) -> None:
        self._wrapper_cls = wrapper_cls

    def serialize(self, value: T) -> bytes:
        wrapper: typing.Any = self._wrapper_cls()
        wrapper.value = value
        return typing.cast(bytes, wrapper.SerializeToString())

    def deserialize(self, data: bytes) -> T:
        wrapper: typing.Any = self._wrapper_cls()
        wrapper.ParseFromString(data)
        return typing.cast(T, wrapper.value)


class _IntSerializer(_WrapperSerializer[int]):
    """sfixed32: tag ``0d`` and 4 little-endian bytes; zero is omitted."""

    __slots__ = ()

    ASSIGNED_TYPE = int

    def serialize(self, value: int) -> bytes:
        if type(value) is int and -0x80000000 <= value <= 0x7FFFFFFF:
            return b"\x0d" + _INT32.pack(value) if value else b""
        return super().serialize(value)

    def deserialize(self, data: bytes) -> int:
        if len(data) == 5 and data[0] == 0x0D:
            value: int = _INT32.unpack_from(data, 1)[0]
            return value
        if not data:
            return 0
        return super().deserialize(data)


class _LongSerializer(_WrapperSerializer[int]):
    """sfixed64: tag ``09`` and 8 little-endian bytes; zero is omitted."""

    __slots__ = ()

    ASSIGNED_TYPE = int

    def serialize(self, value: int) -> bytes:
        if type(value) is int and -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
            return b"\x09" + _INT64.pack(value) if value else b""
        return super().serialize(value)

    def deserialize(self, data: bytes) -> int:
        if len(data) == 9 and data[0] == 0x09:
            value: int = _INT64.unpack_from(data, 1)[0]
            return value
        if not data:
            return 0
        return super().deserialize(data)


class _BoolSerializer(_WrapperSerializer[bool]):
    __slots__ = ()

    ASSIGNED_TYPE = bool

    def serialize(self, value: bool) -> bytes:
        if value is True:
            return b"\x08\x01"
        if value is False:
            return b""
        return super().serialize(value)

    def deserialize(self, data: bytes) -> bool:
        if data == b"\x08\x01":
            return True
        if not data:
            return False
        return super().deserialize(data)


class _StringSerializer(_WrapperSerializer[str]):
    """Field 1, length-delimited UTF-8; the empty string is omitted.

    Anything the fast paths do not cover (long strings, lone surrogates,
    invalid UTF-8, other wire shapes) goes through protobuf, so its errors
    are protobuf's own.
    """

    __slots__ = ()

    ASSIGNED_TYPE = str

    def serialize(self, value: str) -> bytes:
        if type(value) is str:
            if not value:
                return b""
            try:
                encoded = value.encode("utf-8")
            except UnicodeEncodeError:
                pass  # a lone surrogate: protobuf decides what that raises
            else:
                size = len(encoded)
                if size < 0x80:
                    return b"\x0a" + _ONE_BYTE[size] + encoded
        return super().serialize(value)

    def deserialize(self, data: bytes) -> str:
        if len(data) >= 2 and data[0] == 0x0A and data[1] < 0x80 and len(data) == data[1] + 2:
            try:
                return data[2:].decode("utf-8")
            except UnicodeDecodeError:
                pass  # protobuf reports bad UTF-8 as a DecodeError
        elif not data:
            return ""
        return super().deserialize(data)


class _DoubleSerializer(_WrapperSerializer[float]):
    """A double reads back bit for bit (NaN payloads and -0.0 included)."""

    __slots__ = ()

    ASSIGNED_TYPE = float


# Upstream's name for the generic wrapper serializer.
ProtobufWrappingTypeSerializer = _WrapperSerializer


class ProtobufWrappingType(Type[T]):
    """A built-in type backed by one of the ``io.statefun.sdk.types`` wrapper messages."""

    __slots__ = ("wrapper", "_serializer")

    def __init__(
        self,
        typename: str,
        wrapper: type[_ProtoMessage],
        serializer: TypeSerializer[T] | None = None,
    ) -> None:
        super().__init__(typename)
        self.wrapper = wrapper
        self._serializer: TypeSerializer[T] = (
            serializer if serializer is not None else _WrapperSerializer(wrapper)
        )

    def serializer(self) -> TypeSerializer[T]:
        return self._serializer


BoolType: Type[bool] = ProtobufWrappingType(
    "io.statefun.types/bool", types_pb2.BooleanWrapper, _BoolSerializer(types_pb2.BooleanWrapper)
)
IntType: Type[int] = ProtobufWrappingType(
    "io.statefun.types/int", types_pb2.IntWrapper, _IntSerializer(types_pb2.IntWrapper)
)
LongType: Type[int] = ProtobufWrappingType(
    "io.statefun.types/long", types_pb2.LongWrapper, _LongSerializer(types_pb2.LongWrapper)
)
FloatType: Type[float] = ProtobufWrappingType("io.statefun.types/float", types_pb2.FloatWrapper)
DoubleType: Type[float] = ProtobufWrappingType(
    "io.statefun.types/double", types_pb2.DoubleWrapper, _DoubleSerializer(types_pb2.DoubleWrapper)
)
StringType: Type[str] = ProtobufWrappingType(
    "io.statefun.types/string", types_pb2.StringWrapper, _StringSerializer(types_pb2.StringWrapper)
)

# Kept for code that imported them from upstream's module; the SDK itself does not use them.
PY_TYPE_TO_WRAPPER_TYPE: dict[type, Type[typing.Any]] = {
    int: IntType,
    bool: BoolType,
    float: FloatType,
    str: StringType,
}
WRAPPER_TYPE_TO_PY_TYPE: dict[Type[typing.Any], type] = {
    IntType: int,
    BoolType: bool,
    FloatType: float,
    StringType: str,
    LongType: int,
    DoubleType: float,
}
