"""Per-address state storage: one ``Cell`` per declared ``ValueSpec``, resolved from a request.

A cell decodes the value the runtime sent on first read and keeps the Python
value; an assignment only records the new value. The value is encoded once,
when the response is built (``Cell.typed_value`` / ``Cell.encoded``), so a
batch costs at most one decode and one encode per state however often the
function reads or writes it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from statefun.core import Type, ValueSpec
from statefun.errors import StateDecodingError, StateEncodingError
from statefun.request_reply_pb2 import TypedValue
from statefun.utils import from_typed_value, serialized

__all__ = [
    "ValueSpec",
    "Cell",
    "AddressScopedStorage",
    "StorageSpec",
    "Resolution",
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


class Cell(typing.Generic[T]):
    """The value of one state for the current batch.

    ``dirty`` tells whether the function changed it; ``typed_value`` is the
    value as it goes on the wire (``None`` once deleted).
    """

    __slots__ = ("tpe", "name", "dirty", "_received", "_value", "_decoded")

    def __init__(self, tpe: Type[T], typed_value: TypedValue | None, name: str = "") -> None:
        self.tpe = tpe
        self.name = name
        self.dirty = False
        self._received = typed_value
        self._value: T | None = None
        self._decoded = False

    def get(self) -> T | None:
        if not self._decoded:
            received = self._received
            if (
                received is not None
                and received.has_value
                and received.typename == self.tpe.typename
            ):
                try:
                    self._value = self.tpe.serializer().deserialize(received.value)
                except Exception as error:
                    raise StateDecodingError(
                        f"cannot decode the value of state {self.name or '?'!r} as "
                        f"{self.tpe.typename} ({len(received.value)} bytes): "
                        f"{type(error).__name__}: {error}"
                    ) from error
            else:
                # Absent, or the runtime's type differs: from_typed_value says which.
                self._value = from_typed_value(self.tpe, received)
            self._decoded = True
        return self._value

    def set(self, val: T) -> None:
        if val is None:
            raise ValueError("provided value must not be None. To delete a value, please use del.")
        self._value = val
        self._decoded = True
        self.dirty = True

    def delete(self) -> None:
        self._value = None
        self._decoded = True
        self.dirty = True

    def encoded(self) -> bytes | None:
        """The wire bytes of the current value, or ``None`` if it has no value."""
        if self.dirty and self._decoded:
            value = self._value
            if value is None:
                return None
            try:
                data = self.tpe.serializer().serialize(value)
                return data if type(data) is bytes else serialized(self.tpe, value)
            except (TypeError, ValueError, OverflowError) as error:
                raise StateEncodingError(
                    f"cannot store {type(value).__name__} value {value!r} as "
                    f"{self.tpe.typename}: {error}"
                ) from error
        received = self._received
        if received is None or not received.has_value:
            return None
        return received.value

    @property
    def typed_value(self) -> TypedValue | None:
        if not (self.dirty and self._decoded):
            return self._received
        data = self.encoded()
        if data is None:
            return None
        return TypedValue(typename=self.tpe.typename, has_value=True, value=data)

    @typed_value.setter
    def typed_value(self, typed_value: TypedValue | None) -> None:
        self._received = typed_value
        self._value = None
        self._decoded = False


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

    def _unknown(self, name: str) -> AttributeError:
        declared = ", ".join(self._cells) or "none"
        return AttributeError(
            f"'{name}' is not a registered ValueSpec for the function '{self._typename}' "
            f"(declared: {declared})"
        )

    def __getattr__(self, name: str) -> typing.Any:
        raise self._unknown(name)

    def __setattr__(self, name: str, value: typing.Any) -> None:
        # The state property's setter, inlined: going through object.__setattr__ and the
        # property cost a second Python call on every state write.
        cell = self._cells.get(name)
        if cell is None:
            raise self._unknown(name)
        if value is None:
            raise ValueError("provided value must not be None. To delete a value, please use del.")
        cell._value = value
        cell._decoded = True
        cell.dirty = True

    def __delattr__(self, name: str) -> None:
        if name not in self._cells:
            raise self._unknown(name)
        object.__delattr__(self, name)

    def __repr__(self) -> str:
        return f"<storage of {self._typename}: {', '.join(self._cells)}>"


def _state_property(name: str) -> property:
    # get/set repeat Cell.get/Cell.set's fast paths: these run for every state access.
    def get(self: AddressScopedStorage) -> typing.Any:
        cell = self._cells[name]
        return cell._value if cell._decoded else cell.get()

    def set(self: AddressScopedStorage, value: typing.Any) -> None:
        if value is None:
            raise ValueError("provided value must not be None. To delete a value, please use del.")
        cell = self._cells[name]
        cell._value = value
        cell._decoded = True
        cell.dirty = True

    def delete(self: AddressScopedStorage) -> None:
        self._cells[name].delete()

    return property(get, set, delete, doc=f"The state {name!r}")


_new = object.__new__
# The slot descriptors, called directly: AddressScopedStorage overrides __setattr__.
_set_cells = AddressScopedStorage.__dict__["_cells"].__set__
_set_typename = AddressScopedStorage.__dict__["_typename"].__set__

_RESERVED_NAMES = frozenset(dir(AddressScopedStorage)) | {"_cells", "_typename"}


@dataclass(frozen=True)
class StorageSpec:
    """The storage layout of one function: its specs in declaration order."""

    make_instance: typing.Callable[[str, dict[str, Cell[typing.Any]]], AddressScopedStorage]
    names: frozenset[str]
    specs: list[ValueSpec[typing.Any]]


def make_address_storage_spec(specs: typing.Sequence[ValueSpec[typing.Any]]) -> StorageSpec:
    """Build the storage class for a function from its ``ValueSpec`` list."""
    properties: dict[str, typing.Any] = {"__slots__": ()}
    for spec in specs:
        if not isinstance(spec, ValueSpec):
            raise TypeError(f"expected a ValueSpec, got {type(spec).__name__} {spec!r}")
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
    """
    specs = storage_spec.specs
    cells: dict[str, Cell[typing.Any]] = {}
    if len(values) == len(specs):
        position = 0
        for spec in specs:
            value = values[position]
            if value.state_name != spec.name:
                break
            cells[spec.name] = Cell(spec.type, value.state_value, spec.name)
            position += 1
        else:
            return None, cells
        cells = {}
    received = {value.state_name: value for value in values}
    missing: list[ValueSpec[typing.Any]] | None = None
    for spec in specs:
        found = received.get(spec.name)
        if found is None:
            if missing is None:
                missing = []
            missing.append(spec)
        elif missing is None:
            cells[spec.name] = Cell(spec.type, found.state_value, spec.name)
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
