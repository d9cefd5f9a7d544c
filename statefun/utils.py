"""Type factories for protobuf and JSON values, and TypedValue conversion helpers."""

from __future__ import annotations

import json
import typing

from google.protobuf.message import Message as _ProtoMessage

from statefun.core import Type, TypeSerializer, simple_type  # noqa: F401 - upstream re-exported it
from statefun.errors import StateTypeMismatchError
from statefun.request_reply_pb2 import TypedValue

__all__ = [
    "ProtobufTypeSerializer",
    "ProtobufType",
    "make_protobuf_type",
    "JsonTypeSerializer",
    "JsonType",
    "make_json_type",
    "to_typed_value",
    "from_typed_value",
    "serialized",
    "simple_type",
]

T = typing.TypeVar("T")
M = typing.TypeVar("M", bound=_ProtoMessage)


class ProtobufTypeSerializer(TypeSerializer[M]):
    __slots__ = ("_cls",)

    def __init__(self, cls: type[M]) -> None:
        self._cls = cls

    def serialize(self, value: M) -> bytes:
        return value.SerializeToString()

    def deserialize(self, data: bytes) -> M:
        message = self._cls()
        message.ParseFromString(data)
        return message


class ProtobufType(Type[M]):
    """A type whose values are instances of one generated protobuf message class."""

    __slots__ = ("_serializer",)

    def __init__(self, typename: str, cls: type[M]) -> None:
        super().__init__(typename)
        self._serializer = ProtobufTypeSerializer(cls)

    def serializer(self) -> TypeSerializer[M]:
        return self._serializer


def make_protobuf_type(cls: type[M], namespace: str | None = None) -> Type[M]:
    """Type for a generated protobuf message class, named ``{namespace}/{full message name}``.

    ``namespace`` defaults to ``type.googleapis.com``, the prefix the runtime's
    protobuf ingresses and egresses use.
    """
    if not cls:
        raise ValueError("message class can not be missing")
    if not namespace:
        namespace = "type.googleapis.com"
    full_name = cls().DESCRIPTOR.full_name
    if not full_name:
        raise TypeError(f"unable to deduce the protobuf message full name of {cls!r}")
    return ProtobufType(f"{namespace}/{full_name}", cls)


class JsonTypeSerializer(TypeSerializer[typing.Any]):
    __slots__ = ()

    def serialize(self, value: typing.Any) -> bytes:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")

    def deserialize(self, data: bytes) -> typing.Any:
        return json.loads(data)


class JsonType(Type[typing.Any]):
    """A type whose values are JSON documents (whatever ``json.dumps`` accepts)."""

    __slots__ = ()

    _serializer = JsonTypeSerializer()

    def serializer(self) -> TypeSerializer[typing.Any]:
        return self._serializer


def make_json_type(typename: str) -> Type[typing.Any]:
    """Type whose values are serialized as UTF-8 JSON."""
    return JsonType(typename)


def to_typed_value(type: Type[T], value: T | None) -> TypedValue:
    """Wrap ``value`` in a ``TypedValue``; ``None`` gives one with ``has_value`` false."""
    if value is None:
        return TypedValue(typename=type.typename, has_value=False)
    return TypedValue(
        typename=type.typename, has_value=True, value=type.serializer().serialize(value)
    )


def from_typed_value(tpe: Type[T], typed_value: TypedValue | None) -> T | None:
    """Decode ``typed_value`` with ``tpe``; ``None`` when absent, an error when the typenames differ."""
    if not typed_value or not typed_value.has_value:
        return None
    if typed_value.typename != tpe.typename:
        raise StateTypeMismatchError(
            f"Type mismatch: type {typed_value.typename} (remote), yet it is specified locally "
            f"as {tpe.typename} "
        )
    return tpe.serializer().deserialize(typed_value.value)


def serialized(tpe: Type[T], value: T) -> bytes:
    """``value`` serialized with ``tpe``, insisting on bytes as protobuf's ``value`` field does."""
    data = tpe.serializer().serialize(value)
    if type(data) is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        f"the serializer of {tpe.typename} returned {type(data).__name__}, expected bytes"
    )
