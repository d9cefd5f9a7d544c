"""Messages between functions (``Message``) and to egresses (``EgressMessage``), and their builders."""

from __future__ import annotations

import typing

from statefun.core import Type
from statefun.errors import MessageTypeMismatchError
from statefun.legacy_hints import add_message_hints
from statefun.utils import serialized
from statefun.request_reply_pb2 import TypedValue
from statefun.wrapper_types import BoolType, DoubleType, FloatType, IntType, LongType, StringType

__all__ = [
    "Message",
    "StrictMessage",
    "EgressMessage",
    "message_builder",
    "egress_message_builder",
]

T = typing.TypeVar("T")


class _Payload:
    """What a ``Message`` and an ``EgressMessage`` share: the one typed value they carry.

    It is either a protobuf ``TypedValue`` (received, or built by the user) or
    just the typename and bytes of one (built by the SDK's builders); the
    protobuf object is only made if someone asks for ``typed_value``.
    """

    __slots__ = ("_typed_value", "_value_typename", "_value")

    _typed_value: TypedValue | None
    _value_typename: str
    _value: bytes

    @property
    def typed_value(self) -> TypedValue:
        typed_value = self._typed_value
        if typed_value is None:
            typed_value = self._typed_value = TypedValue(
                typename=self._value_typename, has_value=True, value=self._value
            )
        return typed_value

    @typed_value.setter
    def typed_value(self, typed_value: TypedValue) -> None:
        self._typed_value = typed_value

    def value_typename(self) -> str:
        typed_value = self._typed_value
        return self._value_typename if typed_value is None else typed_value.typename

    def raw_value(self) -> bytes | None:
        typed_value = self._typed_value
        if typed_value is None:
            return self._value
        return typed_value.value if typed_value.has_value else None


class Message(_Payload):
    """A message addressed to a function instance, carrying one typed value.

    As upstream, ``as_type``/``as_int``/… decode the payload with the type
    asked for whatever typename the message carries (the playground's HTTP
    ingress labels JSON as ``io.statefun.types/string``, and functions read it
    with ``as_type(make_json_type(...))``); ``is_type``/``is_int``/… tell the
    typename. ``StrictMessage`` (``StatefulFunctions(strict_message_types=True)``)
    checks it instead.
    """

    __slots__ = ("target_typename", "target_id")

    def __init__(self, target_typename: str, target_id: str, typed_value: TypedValue) -> None:
        if not target_typename:
            raise ValueError("target_typename can not be missing")
        if not target_id:
            raise ValueError("target_id can not be missing")
        if not typed_value:
            raise ValueError("typed_value can not be missing")
        self.target_typename = target_typename
        self.target_id = target_id
        self._typed_value = typed_value
        self._value_typename = ""
        self._value = b""

    def __repr__(self) -> str:
        return (
            f"Message(target_typename={self.target_typename!r}, target_id={self.target_id!r}, "
            f"value_typename={self.value_typename()!r})"
        )

    def is_bool(self) -> bool:
        return self.is_type(BoolType)

    def as_bool(self) -> bool | None:
        return self.as_type(BoolType)

    def is_int(self) -> bool:
        return self.is_type(IntType)

    def as_int(self) -> int | None:
        return self.as_type(IntType)

    def is_long(self) -> bool:
        return self.is_type(LongType)

    def as_long(self) -> int | None:
        return self.as_type(LongType)

    def is_float(self) -> bool:
        return self.is_type(FloatType)

    def as_float(self) -> float | None:
        return self.as_type(FloatType)

    def is_double(self) -> bool:
        return self.is_type(DoubleType)

    def as_double(self) -> float | None:
        return self.as_type(DoubleType)

    def is_string(self) -> bool:
        return self.is_type(StringType)

    def as_string(self) -> str | None:
        typed_value = self._typed_value
        # The common case, a received value, without the generic path's indirections.
        if typed_value is not None:
            return _deserialize_string(typed_value.value) if typed_value.has_value else None
        return _deserialize_string(self._value)

    def is_type(self, tpe: Type[typing.Any]) -> bool:
        return self.value_typename() == tpe.typename

    def as_type(self, tpe: Type[T]) -> T | None:
        """Decode the value as ``tpe``, whatever its typename; ``None`` if the message has no value."""
        typed_value = self._typed_value
        if typed_value is None:
            return tpe.serializer().deserialize(self._value)
        if not typed_value.has_value:
            return None
        return tpe.serializer().deserialize(typed_value.value)


# message.Unpack(...) and the other 2.x calls explain themselves (statefun.legacy_hints).
add_message_hints(Message)


class StrictMessage(Message):
    """A ``Message`` whose ``as_type``/``as_int``/… insist on the typename asked for.

    Asking for a type the message does not carry raises ``MessageTypeMismatchError``
    (a ``TypeError``) instead of decoding the bytes as that type. Functions
    receive these when the registry (or the handler) was made with
    ``strict_message_types=True``.
    """

    __slots__ = ()

    def as_string(self) -> str | None:
        return self.as_type(StringType)

    def as_type(self, tpe: Type[T]) -> T | None:
        typed_value = self._typed_value
        if typed_value is None:
            typename, value = self._value_typename, self._value
        else:
            if not typed_value.has_value:
                return None
            typename, value = typed_value.typename, typed_value.value
        if typename != tpe.typename:
            raise MessageTypeMismatchError(
                f"the message to {self.target_typename} carries a value of type "
                f"{typename!r}, not {tpe.typename!r}"
            )
        return tpe.serializer().deserialize(value)


class EgressMessage(_Payload):
    """A message to an egress identified by ``typename`` (``namespace/name``)."""

    __slots__ = ("typename",)

    def __init__(self, typename: str, typed_value: TypedValue) -> None:
        if not typename:
            raise ValueError("typename is missing")
        if not typed_value:
            raise ValueError("value is missing")
        self.typename = typename
        self._typed_value = typed_value
        self._value_typename = ""
        self._value = b""

    def __repr__(self) -> str:
        return (
            f"EgressMessage(typename={self.typename!r}, value_typename={self.value_typename()!r})"
        )


_new = object.__new__
_deserialize_string = StringType.serializer().deserialize


def received_message(target_typename: str, target_id: str, typed_value: TypedValue) -> Message:
    """A ``Message`` around a value the runtime sent; the handler has validated the target."""
    message: Message = _new(Message)
    message.target_typename = target_typename
    message.target_id = target_id
    message._typed_value = typed_value
    return message


def received_strict_message(
    target_typename: str, target_id: str, typed_value: TypedValue
) -> Message:
    """``received_message``, as a ``StrictMessage``."""
    message: Message = _new(StrictMessage)
    message.target_typename = target_typename
    message.target_id = target_id
    message._typed_value = typed_value
    return message


def message_with_value(
    target_typename: str, target_id: str, value_typename: str, value: bytes
) -> Message:
    """A ``Message`` holding an already serialized value (``has_value`` true)."""
    if not target_typename:
        raise ValueError("target_typename can not be missing")
    if not target_id:
        raise ValueError("target_id can not be missing")
    message: Message = _new(Message)
    message.target_typename = target_typename
    message.target_id = target_id
    message._typed_value = None
    message._value_typename = value_typename
    message._value = value
    return message


def egress_with_value(typename: str, value_typename: str, value: bytes) -> EgressMessage:
    """An ``EgressMessage`` holding an already serialized value (``has_value`` true)."""
    if not typename:
        raise ValueError("typename is missing")
    message: EgressMessage = _new(EgressMessage)
    message.typename = typename
    message._typed_value = None
    message._value_typename = value_typename
    message._value = value
    return message


_BUILTIN_VALUE_KEYWORDS: dict[str, Type[typing.Any]] = {
    "int_value": IntType,
    "float_value": FloatType,
    "long_value": LongType,
    "str_value": StringType,
    "double_value": DoubleType,
    "bool_value": BoolType,
}


_BUILTIN_SERIALIZERS: dict[str, tuple[str, typing.Callable[[typing.Any], bytes]]] = {
    keyword: (tpe.typename, tpe.serializer().serialize)
    for keyword, tpe in _BUILTIN_VALUE_KEYWORDS.items()
}


_STRING_TYPENAME = StringType.typename
# Field 1's tag and a one-byte length: the start of a short StringWrapper.
_STRING_FIELDS = [b"\x0a" + bytes((size,)) for size in range(0x80)]


def _builtin_value(keyword: str, value: typing.Any) -> tuple[str, bytes]:
    """The typename and bytes of ``int_value=...``, ``str_value=...``, …"""
    builtin = _BUILTIN_SERIALIZERS.get(keyword)
    if builtin is None:
        raise ValueError(
            f"Could not deduce the value type from {keyword!r}: use one of "
            f"{', '.join(_BUILTIN_VALUE_KEYWORDS)}, or value= together with value_type="
        )
    if value is None:
        raise ValueError("value can not be missing")
    value_typename, serialize = builtin
    return value_typename, serialize(value)


def message_builder(target_typename: str, target_id: str, **kwargs: typing.Any) -> Message:
    """Build a message to ``target_typename``/``target_id``.

    Give exactly one of ``int_value``, ``float_value``, ``long_value``,
    ``str_value``, ``double_value``, ``bool_value``, or both ``value`` and
    ``value_type``.
    """
    if len(kwargs) == 1:
        (keyword,) = kwargs
        value = kwargs[keyword]
        if keyword == "str_value" and type(value) is str and value.isascii() and len(value) < 0x80:
            # StringType's encoding of a short ASCII string, inlined: the most common message.
            data = _STRING_FIELDS[len(value)] + value.encode("ascii") if value else b""
            value_typename = _STRING_TYPENAME
        else:
            value_typename, data = _builtin_value(keyword, value)
    elif len(kwargs) == 2:
        value, tpe = kwargs["value"], kwargs["value_type"]
        if value is None:
            raise ValueError("value can not be missing")
        if not tpe:
            raise ValueError("value_type is missing: pass value=<the value>, value_type=<its Type>")
        value_typename, data = tpe.typename, serialized(tpe, value)
    else:
        raise TypeError(
            f"Wrong number of value keywords given: {sorted(kwargs)}. Expected one of "
            f"{', '.join(_BUILTIN_VALUE_KEYWORDS)}, or value= together with value_type="
        )
    return message_with_value(target_typename, target_id, value_typename, data)


def egress_message_builder(
    target_typename: str, value: typing.Any, value_type: Type[typing.Any]
) -> EgressMessage:
    """Build a message for a custom egress from a value and its type."""
    if not target_typename:
        raise ValueError("a target typename is missing")
    if value is None:
        raise ValueError("value can not be missing")
    return egress_with_value(target_typename, value_type.typename, serialized(value_type, value))
