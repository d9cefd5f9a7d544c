"""Per-address state storage: one ``Cell`` per declared ``ValueSpec``, resolved from a request.

Values behave exactly as upstream's: an assignment serializes the value at
once (an unstorable value fails right there, and changing the assigned
object afterwards changes nothing), and a read returns what decoding the
current bytes gives: ``0.1`` stored as a ``FloatType`` reads back as
``0.10000000149011612``, a tuple stored as JSON reads back as a list, and a
mutable value is a fresh object on every read, so changing it in place is
not stored unless it is assigned again.

Work is skipped only where its result is provably the same: a decoded value
is kept, instead of decoding again on the next read, only when the type's
deserializer is one of the SDK's own (deterministic, no side effects) and
the value is immutable (``int``, ``float``, ``bool``, ``str``, ``bytes``,
``None``); and an assigned value is kept as its own read-back value only when
the round trip provably gives it back (an exact ``int`` for ``IntType`` and
``LongType``, ``bool`` for ``BoolType``, ``str`` for ``StringType``,
``float`` for ``DoubleType``). Each assignment encodes once; the response
reuses those bytes.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from statefun.core import SimpleType, Type, TypeSerializer, ValueSpec
from statefun.errors import (
    StateDecodingError,
    StateEncodingError,
    StateTypeMismatchError,
    derived_error,
)
from statefun.request_reply_pb2 import TypedValue
from statefun.utils import JsonType, JsonTypeSerializer, ProtobufType
from statefun.wrapper_types import (
    ProtobufWrappingType,
    _BoolSerializer,
    _DoubleSerializer,
    _IntSerializer,
    _LongSerializer,
    _StringSerializer,
    _WrapperSerializer,
)

__all__ = [
    "ValueSpec",
    "Cell",
    "AddressScopedStorage",
    "StorageSpec",
    "Resolution",
    "StateCodec",
    "make_address_storage_spec",
    "resolve",
    "resolve_cells",
]

T = typing.TypeVar("T")


class _PersistedValueLike(typing.Protocol):
    @property
    def state_name(self) -> str: ...

    @property
    def state_value(self) -> TypedValue | None: ...


# Types whose serializer() always returns the same object, so it can be fetched once.
_FIXED_SERIALIZER_TYPES = (ProtobufWrappingType, JsonType, ProtobufType, SimpleType)
# Deserializers that are deterministic and have no side effects: decoding the same bytes
# again gives an equal value, so an immutable result can be kept.
_PURE_SERIALIZERS = frozenset(
    {
        _WrapperSerializer,
        _IntSerializer,
        _LongSerializer,
        _BoolSerializer,
        _StringSerializer,
        _DoubleSerializer,
        JsonTypeSerializer,
    }
)
_IMMUTABLE = frozenset({int, float, bool, str, bytes, type(None)})


class StateCodec:
    """What the storage knows about one state's type, worked out once at registration."""

    __slots__ = ("typename", "serializer", "serialize", "pure", "assigned_type")

    def __init__(self, tpe: Type[typing.Any]) -> None:
        self.typename = tpe.typename
        serializer = tpe.serializer() if type(tpe) in _FIXED_SERIALIZER_TYPES else None
        # None: a Type of the user's own, whose serializer() is called on every use as upstream did.
        self.serializer: TypeSerializer[typing.Any] | None = serializer
        self.serialize: typing.Callable[[typing.Any], bytes] | None = (
            serializer.serialize if serializer is not None else None
        )
        self.pure = serializer is not None and type(serializer) in _PURE_SERIALIZERS
        self.assigned_type: type | None = (
            serializer.ASSIGNED_TYPE
            if self.pure and isinstance(serializer, _WrapperSerializer)
            else None
        )


def _as_bytes(typename: str, data: typing.Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"the serializer of {typename} returned {type(data).__name__}, expected bytes")


class Cell(typing.Generic[T]):
    """The value of one state for the current batch.

    ``dirty`` tells whether the function changed it; ``typed_value`` is the
    value as it goes on the wire (``None`` once deleted).
    """

    __slots__ = ("tpe", "name", "dirty", "_codec", "_received", "_data", "_value", "_cached")

    def __init__(
        self,
        tpe: Type[T],
        typed_value: TypedValue | None,
        name: str = "",
        codec: StateCodec | None = None,
    ) -> None:
        self.tpe = tpe
        self.name = name
        self.dirty = False
        self._codec = codec if codec is not None else StateCodec(tpe)
        self._received = typed_value
        self._data: bytes | None = None
        self._value: T | None = None
        self._cached = False

    def get(self) -> T | None:
        """The state's value: what decoding its current bytes gives (``None`` when absent)."""
        if self._cached:
            return self._value
        codec = self._codec
        if self.dirty:
            data = self._data
            if data is None:
                self._value, self._cached = None, True
                return None
        else:
            received = self._received
            if received is None or not received.has_value:
                self._value, self._cached = None, True
                return None
            if received.typename != codec.typename:
                # Raised on every read, as upstream did; nothing is kept.
                raise StateTypeMismatchError(
                    f"Type mismatch: type {received.typename} (remote), yet it is specified "
                    f"locally as {codec.typename} "
                )
            data = received.value
        serializer = codec.serializer or self.tpe.serializer()
        try:
            value: T = serializer.deserialize(data)
        except Exception as error:
            raise derived_error(
                StateDecodingError,
                error,
                f"cannot decode the value of state {self.name or '?'!r} as {codec.typename} "
                f"({len(data)} bytes): {type(error).__name__}: {error}",
            ) from error
        if codec.pure and type(value) in _IMMUTABLE:
            self._value, self._cached = value, True
        return value

    def set(self, val: T) -> None:
        """Serialize ``val`` now, as upstream did; its encoding errors are raised here."""
        if val is None:
            raise ValueError("provided value must not be None. To delete a value, please use del.")
        codec = self._codec
        serialize = codec.serialize or self.tpe.serializer().serialize
        try:
            data = serialize(val)
            if type(data) is not bytes:
                data = _as_bytes(codec.typename, data)
        except Exception as error:
            raise _encoding_error(self, val, error) from error
        self._data = data
        self._received = None
        self.dirty = True
        if type(val) is codec.assigned_type:
            self._value, self._cached = val, True
        else:
            self._cached = False

    def delete(self) -> None:
        self._data = None
        self._received = None
        self.dirty = True
        self._value, self._cached = None, True

    def encoded(self) -> bytes | None:
        """The wire bytes of the current value, or ``None`` if it has no value."""
        if self.dirty:
            return self._data
        received = self._received
        if received is None or not received.has_value:
            return None
        return received.value

    @property
    def typed_value(self) -> TypedValue | None:
        if not self.dirty:
            return self._received
        data = self._data
        if data is None:
            return None
        return TypedValue(typename=self._codec.typename, has_value=True, value=data)

    @typed_value.setter
    def typed_value(self, typed_value: TypedValue | None) -> None:
        self._received = typed_value
        self.dirty = False
        self._data = None
        self._value, self._cached = None, False


def _encoding_error(cell: Cell[typing.Any], value: typing.Any, error: Exception) -> BaseException:
    shown = repr(value)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return derived_error(
        StateEncodingError,
        error,
        f"cannot store {type(value).__name__} value {shown} in state {cell.name or '?'!r} as "
        f"{cell._codec.typename}: {type(error).__name__}: {error}",
    )


_new = object.__new__


def _received_cell(
    tpe: Type[typing.Any], name: str, codec: StateCodec, received: TypedValue | None
) -> Cell[typing.Any]:
    # Cell.__init__'s work without its call: this runs for every state of every request.
    cell: Cell[typing.Any] = _new(Cell)
    cell.tpe = tpe
    cell.name = name
    cell.dirty = False
    cell._codec = codec
    cell._received = received
    cell._cached = False
    return cell


def _unknown_state(storage: AddressScopedStorage, name: str) -> AttributeError:
    # A function, not a method: the storage's only non-dunder attributes are _cells and
    # _typename, as upstream's, so every other lower-case name can be a state.
    declared = ", ".join(storage._cells) or "none"
    return AttributeError(
        f"'{name}' is not a registered ValueSpec for the function '{storage._typename}' "
        f"(declared: {declared})"
    )


class AddressScopedStorage:
    """Attribute access to the states of the current function instance.

    ``storage.name`` reads (``None`` when absent), ``storage.name = v`` writes
    and ``del storage.name`` deletes. Each function gets a subclass with one
    property per declared ``ValueSpec``.
    """

    __slots__ = ("_cells", "_typename")

    _cells: dict[str, Cell[typing.Any]]
    _typename: str

    def __init__(self, typename: str, cells: dict[str, Cell[typing.Any]]) -> None:
        object.__setattr__(self, "_typename", typename)
        object.__setattr__(self, "_cells", cells)

    def __getattr__(self, name: str) -> typing.Any:
        raise _unknown_state(self, name)

    def __setattr__(self, name: str, value: typing.Any) -> None:
        # Every state write lands here (a __setattr__ override takes precedence over the
        # properties' setters).
        cell = self._cells.get(name)
        if cell is None:
            raise _unknown_state(self, name)
        cell.set(value)

    def __delattr__(self, name: str) -> None:
        if name not in self._cells:
            raise _unknown_state(self, name)
        object.__delattr__(self, name)

    def __repr__(self) -> str:
        return f"<storage of {self._typename}: {', '.join(self._cells)}>"


def _state_property(name: str) -> property:
    def get(self: AddressScopedStorage) -> typing.Any:
        # Cell.get's first test, inlined: this runs for every state read.
        cell = self._cells[name]
        return cell._value if cell._cached else cell.get()

    def set(self: AddressScopedStorage, value: typing.Any) -> None:
        self._cells[name].set(value)

    def delete(self: AddressScopedStorage) -> None:
        self._cells[name].delete()

    return property(get, set, delete, doc=f"The state {name!r}")


# The slot descriptors, called directly: AddressScopedStorage overrides __setattr__.
_set_cells = AddressScopedStorage.__dict__["_cells"].__set__
_set_typename = AddressScopedStorage.__dict__["_typename"].__set__

_RESERVED_NAMES = frozenset(dir(AddressScopedStorage)) | {"_cells", "_typename"}


@dataclass(frozen=True)
class StorageSpec:
    """The storage layout of one function: its specs in declaration order."""

    make_instance: typing.Callable[[str, dict[str, Cell[typing.Any]]], AddressScopedStorage]
    """``make_instance(typename, cells)`` (upstream's was its storage class, ``(cells, typename)``)."""
    names: frozenset[str]
    specs: list[ValueSpec[typing.Any]]
    codecs: list[StateCodec] = field(default_factory=list)
    """One per spec, in the same order."""


def make_address_storage_spec(specs: typing.Sequence[ValueSpec[typing.Any]]) -> StorageSpec:
    """Build the storage class for a function from its ``ValueSpec`` list."""
    properties: dict[str, typing.Any] = {"__slots__": ()}
    for spec in specs:
        if not isinstance(spec, ValueSpec) and not hasattr(spec, "name"):
            # Upstream read spec.name here too.
            raise AttributeError(f"expected a ValueSpec, got {type(spec).__name__} {spec!r}")
        if spec.name in properties:
            raise ValueError(f"duplicate registered value name: {spec.name}")
        if spec.name in _RESERVED_NAMES:
            raise ValueError(
                f"the state name {spec.name!r} is reserved by the SDK's storage object; "
                "choose another name"
            )
        properties[spec.name] = _state_property(spec.name)
    storage_class = type("GeneratedAddressedScopedStorage", (AddressScopedStorage,), properties)

    def make_instance(typename: str, cells: dict[str, Cell[typing.Any]]) -> AddressScopedStorage:
        storage: AddressScopedStorage = _new(storage_class)
        _set_typename(storage, typename)
        _set_cells(storage, cells)
        return storage

    return StorageSpec(
        make_instance=make_instance,
        names=frozenset(spec.name for spec in specs),
        specs=list(specs),
        codecs=[StateCodec(spec.type) for spec in specs],
    )


class Resolution(typing.NamedTuple):
    """Either the specs missing from the request (declaration order) or the ready storage."""

    missing_specs: list[ValueSpec[typing.Any]] | None
    storage: AddressScopedStorage | None


def resolve_cells(
    storage_spec: StorageSpec, values: typing.Sequence[_PersistedValueLike]
) -> tuple[list[ValueSpec[typing.Any]] | None, dict[str, Cell[typing.Any]]]:
    """The specs missing from ``values`` (declaration order), or else one cell per spec.

    The runtime sends the states in the order it registered them, which is the
    declaration order, so that case is checked first without building an index.
    Extra values are ignored; of repeated names the last counts, as upstream.
    """
    specs = storage_spec.specs
    codecs = storage_spec.codecs
    if len(codecs) != len(specs):
        codecs = [StateCodec(spec.type) for spec in specs]
    cells: dict[str, Cell[typing.Any]] = {}
    if len(values) == len(specs):
        position = 0
        for spec in specs:
            value = values[position]
            name = spec.name
            if value.state_name != name:
                break
            # _received_cell(...), inlined: this runs for every state of every request.
            cell: Cell[typing.Any] = _new(Cell)
            cell.tpe = spec.type
            cell.name = name
            cell.dirty = False
            cell._codec = codecs[position]
            cell._received = value.state_value
            cell._cached = False
            cells[name] = cell
            position += 1
        else:
            return None, cells
        cells = {}
    received = {value.state_name: value for value in values}
    missing: list[ValueSpec[typing.Any]] | None = None
    for spec, codec in zip(specs, codecs):
        found = received.get(spec.name)
        if found is None:
            if missing is None:
                missing = []
            missing.append(spec)
        elif missing is None:
            cells[spec.name] = _received_cell(spec.type, spec.name, codec, found.state_value)
    return missing, cells


def resolve(
    storage_spec: StorageSpec, typename: str, values: typing.Iterable[_PersistedValueLike]
) -> Resolution:
    """Match the state values a request carries against the declared specs."""
    missing, cells = resolve_cells(
        storage_spec, values if isinstance(values, typing.Sequence) else list(values)
    )
    if missing is not None:
        return Resolution(missing_specs=missing, storage=None)
    return Resolution(missing_specs=None, storage=storage_spec.make_instance(typename, cells))
