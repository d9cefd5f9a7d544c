"""Messages between functions (``Message``) and to egresses (``EgressMessage``), and their builders."""

from __future__ import annotations

import typing

from statefun.core import Type
from statefun.errors import MessageTypeMismatchError
from statefun.request_reply_pb2 import TypedValue
from statefun.utils import to_typed_value
from statefun.wrapper_types import BoolType, DoubleType, FloatType, IntType, LongType, StringType

__all__ = ["Message", "EgressMessage", "message_builder", "egress_message_builder"]

T = typing.TypeVar("T")


class Message:
    """A message addressed to a function instance, carrying one typed value.

    The ``as_*`` accessors check the value's typename first: asking for a type
    the message does not carry raises ``MessageTypeMismatchError`` (a
    ``TypeError``) instead of decoding garbage.
    """

    __slots__ = ("target_typename", "target_id", "typed_value")

    def __init__(self, target_typename: str, target_id: str, typed_value: TypedValue) -> None:
        if not target_typename:
            raise ValueError("target_typename can not be missing")
        if not target_id:
            raise ValueError("target_id can not be missing")
        if not typed_value:
            raise ValueError("typed_value can not be missing")
        self.target_typename = target_typename
        self.target_id = target_id
        self.typed_value = typed_value

    def __repr__(self) -> str:
        return (
            f"Message(target_typename={self.target_typename!r}, target_id={self.target_id!r}, "
            f"value_typename={self.typed_value.typename!r})"
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
        return self.as_type(StringType)

    def is_type(self, tpe: Type[typing.Any]) -> bool:
        return bool(self.typed_value.typename == tpe.typename)

    def as_type(self, tpe: Type[T]) -> T | None:
        """Decode the value as ``tpe``; ``None`` if the message carries no value."""
        typed_value = self.typed_value
        if not typed_value.has_value:
            return None
        if typed_value.typename != tpe.typename:
            raise MessageTypeMismatchError(
                f"the message to {self.target_typename} carries a value of type "
                f"{typed_value.typename!r}, not {tpe.typename!r}"
            )
        return tpe.serializer().deserialize(typed_value.value)

    def value_typename(self) -> str:
        return self.typed_value.typename

    def raw_value(self) -> bytes | None:
        typed_value = self.typed_value
        return typed_value.value if typed_value.has_value else None


class EgressMessage:
    """A message to an egress identified by ``typename`` (``namespace/name``)."""

    __slots__ = ("typename", "typed_value")

    def __init__(self, typename: str, typed_value: TypedValue) -> None:
        if not typename:
            raise ValueError("typename is missing")
        if not typed_value:
            raise ValueError("value is missing")
        self.typename = typename
        self.typed_value = typed_value

    def __repr__(self) -> str:
        return (
            f"EgressMessage(typename={self.typename!r}, "
            f"value_typename={self.typed_value.typename!r})"
        )

    def value_typename(self) -> str:
        return self.typed_value.typename

    def raw_value(self) -> bytes | None:
        typed_value = self.typed_value
        return typed_value.value if typed_value.has_value else None


_BUILTIN_VALUE_KEYWORDS: dict[str, Type[typing.Any]] = {
    "int_value": IntType,
    "float_value": FloatType,
    "long_value": LongType,
    "str_value": StringType,
    "double_value": DoubleType,
    "bool_value": BoolType,
}


def message_builder(target_typename: str, target_id: str, **kwargs: typing.Any) -> Message:
    """Build a message to ``target_typename``/``target_id``.

    Give exactly one of ``int_value``, ``float_value``, ``long_value``,
    ``str_value``, ``double_value``, ``bool_value``, or both ``value`` and
    ``value_type``.
    """
    if len(kwargs) == 2:
        value, tpe = kwargs["value"], kwargs["value_type"]
    elif len(kwargs) == 1:
        ((keyword, value),) = kwargs.items()
        builtin = _BUILTIN_VALUE_KEYWORDS.get(keyword)
        if builtin is None:
            raise ValueError(
                f"Could not deduce the value type from {keyword!r}: use one of "
                f"{', '.join(_BUILTIN_VALUE_KEYWORDS)}, or value= together with value_type="
            )
        tpe = builtin
    else:
        raise TypeError(
            f"Wrong number of value keywords given: {sorted(kwargs)}. Expected one of "
            f"{', '.join(_BUILTIN_VALUE_KEYWORDS)}, or value= together with value_type="
        )
    if value is None:
        raise ValueError("value can not be missing")
    return Message(target_typename, target_id, to_typed_value(tpe, value))


def egress_message_builder(
    target_typename: str, value: typing.Any, value_type: Type[typing.Any]
) -> EgressMessage:
    """Build a message for a custom egress from a value and its type."""
    if not target_typename:
        raise ValueError("a target typename is missing")
    if value is None:
        raise ValueError("value can not be missing")
    return EgressMessage(target_typename, to_typed_value(value_type, value))
