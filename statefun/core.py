"""Core types: addresses, the ``Type``/``TypeSerializer`` abstraction, ``ValueSpec`` and typenames."""

from __future__ import annotations

import abc
import keyword
import typing
from dataclasses import dataclass
from datetime import timedelta

from statefun.errors import TypenameError

__all__ = [
    "SdkAddress",
    "TypeSerializer",
    "Type",
    "SimpleType",
    "UserTypeSerializer",
    "simple_type",
    "ValueSpec",
    "parse_typename",
    "validate_typename",
]

T = typing.TypeVar("T")


@dataclass(repr=True, eq=True, order=False, frozen=True)
class SdkAddress:
    """The address of a function instance: its typename parts and its id."""

    namespace: str
    name: str
    id: str
    typename: str


_new = object.__new__
_set = object.__setattr__


def new_address(namespace: str, name: str, id: str, typename: str) -> SdkAddress:
    """An ``SdkAddress`` without the frozen dataclass's per-field ``__init__`` cost."""
    address: SdkAddress = _new(SdkAddress)
    _set(
        address, "__dict__", {"namespace": namespace, "name": name, "id": id, "typename": typename}
    )
    return address


class TypeSerializer(abc.ABC, typing.Generic[T]):
    """Turns values of one type into bytes and back."""

    __slots__ = ()

    @abc.abstractmethod
    def serialize(self, value: T) -> bytes:
        """Return the wire bytes of ``value``."""

    @abc.abstractmethod
    def deserialize(self, data: bytes) -> T:
        """Return the value encoded by ``data``."""


class Type(abc.ABC, typing.Generic[T]):
    """A StateFun type: a logical typename plus the serializer for its values."""

    __slots__ = ("typename",)

    def __init__(self, typename: str) -> None:
        if not typename:
            raise ValueError("typename can not be missing")
        self.typename = typename

    @abc.abstractmethod
    def serializer(self) -> TypeSerializer[T]:
        """Return the serializer of this type's values."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.typename!r})"


class _FunctionSerializer(TypeSerializer[T]):
    __slots__ = ("_serialize", "_deserialize")

    def __init__(
        self, serialize_fn: typing.Callable[[T], bytes], deserialize_fn: typing.Callable[[bytes], T]
    ) -> None:
        self._serialize = serialize_fn
        self._deserialize = deserialize_fn

    def serialize(self, value: T) -> bytes:
        data: bytes | str = self._serialize(value)
        # The upstream docs' own example passes json.dumps, which returns str.
        if isinstance(data, str):
            return data.encode("utf-8")
        return data

    def deserialize(self, data: bytes) -> T:
        return self._deserialize(data)


# Upstream's name for the serializer of a simple_type.
UserTypeSerializer = _FunctionSerializer


class SimpleType(Type[T]):
    """A type defined by a pair of plain serialize/deserialize functions."""

    __slots__ = ("_serializer",)

    def __init__(
        self,
        typename: str,
        serialize_fn: typing.Callable[[T], bytes],
        deserialize_fn: typing.Callable[[bytes], T],
    ) -> None:
        super().__init__(typename)
        self._serializer: TypeSerializer[T] = _FunctionSerializer(serialize_fn, deserialize_fn)

    def serializer(self) -> TypeSerializer[T]:
        return self._serializer


def simple_type(
    typename: str | None = None,
    serialize_fn: typing.Callable[[T], bytes] | None = None,
    deserialize_fn: typing.Callable[[bytes], T] | None = None,
) -> Type[T]:
    """Define a type from a serialize function (value -> bytes) and a deserialize function.

    A ``serialize_fn`` that returns ``str`` (such as ``json.dumps``) is accepted:
    its result is encoded as UTF-8 before it goes on the wire.
    """
    if not typename:
        raise ValueError("typename can not be missing")
    if serialize_fn is None:
        raise ValueError("serialize_fn can not be missing")
    if deserialize_fn is None:
        raise ValueError("deserialize_fn can not be missing")
    return SimpleType(typename, serialize_fn, deserialize_fn)


class ValueSpec(typing.Generic[T]):
    """Declares one persisted value of a function: its name, type and optional expiration.

    At most one of ``expire_after_call`` and ``expire_after_write`` may be given.
    """

    __slots__ = ("name", "type", "duration", "after_call", "after_write")

    def __init__(
        self,
        name: str,
        type: Type[T],
        expire_after_call: timedelta | None = None,
        expire_after_write: timedelta | None = None,
    ) -> None:
        if not name:
            raise ValueError("name can not be missing.")
        if not name.isidentifier():
            raise ValueError(
                f"invalid name {name!r}. A ValueSpec name can only contain alphanumeric characters "
                "and underscores, and can not start with a digit."
            )
        if keyword.iskeyword(name):
            raise ValueError(
                f"invalid name {name!r}. A ValueSpec name can not be a Python keyword: "
                f"{', '.join(keyword.kwlist)}"
            )
        if not name.islower():
            raise ValueError(f"invalid name {name!r}. A ValueSpec name should only be lower case")
        if not type:
            raise ValueError("type can not be missing.")
        if not isinstance(type, Type):
            raise TypeError("type is not a StateFun type.")
        if expire_after_call and expire_after_write:
            raise ValueError(
                "Either expire_after_call or expire_after_write can be set, but not both."
            )
        self.name = name
        self.type: Type[T] = type
        if expire_after_call:
            self.duration = int(expire_after_call.total_seconds() * 1000.0)
            self.after_call = True
            self.after_write = False
        elif expire_after_write:
            self.duration = int(expire_after_write.total_seconds() * 1000.0)
            self.after_call = False
            self.after_write = True
        else:
            self.duration = 0
            self.after_call = False
            self.after_write = False

    def __repr__(self) -> str:
        expiry = ""
        if self.after_call:
            expiry = f", expire_after_call={self.duration}ms"
        elif self.after_write:
            expiry = f", expire_after_write={self.duration}ms"
        return f"ValueSpec({self.name!r}, {self.type.typename!r}{expiry})"


def _split_typename(typename: typing.Any, what: str) -> tuple[str, str]:
    # Upstream's algorithm, so that every input fails with upstream's exception class:
    # None and malformed strings a ValueError, other objects whatever .rfind raises.
    if typename is None:
        raise TypenameError(f"{what} is missing: expected 'namespace/name', got None")
    try:
        position = typename.rfind("/")
    except (AttributeError, TypeError) as error:
        raise type(error)(
            f"{what} must be a 'namespace/name' string, got {type(typename).__name__} "
            f"{typename!r}"
        ) from None
    if position < 0:
        raise TypenameError(f"{what} must be of the form 'namespace/name', got {typename!r}")
    namespace, name = typename[:position], typename[position + 1 :]
    if not namespace:
        raise TypenameError(f"{what} has an empty namespace: {typename!r}")
    if not name:
        raise TypenameError(f"{what} has an empty name: {typename!r}")
    return namespace, name


def parse_typename(typename: str) -> tuple[str, str]:
    """Split ``namespace/name`` at the last ``/``; raise ``ValueError`` when either part is empty."""
    return _split_typename(typename, "function type")


# Typenames that passed validate_typename; hot paths check membership before calling it.
VALID_TYPENAMES: set[str] = set()
_VALID_TYPENAMES_LIMIT = 4096


def validate_typename(typename: object, what: str) -> str:
    """Return ``typename`` if it is a ``namespace/name`` string, else raise naming ``what`` and the value.

    The exception is the one upstream raised when it parsed the same typename
    (later, while building the response): a ``TypenameError`` (``ValueError``)
    for ``None`` and malformed strings, ``AttributeError``/``TypeError`` for
    objects that are not strings.
    """
    if type(typename) is str and typename in VALID_TYPENAMES:
        return typename
    _split_typename(typename, what)
    if type(typename) is not str:
        # Upstream would have passed a str subclass or a str-like object through;
        # only exact strings are remembered.
        return typing.cast(str, typename)
    if len(VALID_TYPENAMES) >= _VALID_TYPENAMES_LIMIT:
        VALID_TYPENAMES.clear()
    VALID_TYPENAMES.add(typename)
    return typename
