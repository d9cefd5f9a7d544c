"""The handler's hook for functions that are not 3.x-only, and the declaration of state on first use.

``StatefulFunction.dialect`` is ``None`` for a 3.x function: the handler then
runs it with the plain 3.x context and message. Otherwise it is a
``FunctionDialect``, which makes the handler build a ``DualContext`` (and,
for functions whose signature does not say 3.x or 2.x, ``DualMessage`` s), and
lets 2.x-style code use states nobody declared:

2.x declared states in module.yaml, which the 3.x runtime does not read. When
a function first reads or writes, in 2.x style (``context['x']``,
``context.state('x')``), a state it never declared, the state is declared for
that function (an ``Any`` state, ``type.googleapis.com/google.protobuf.Any``,
no expiration) and

* if the request carries it anyway (the runtime registered it before, for
  example before this process restarted), the function goes on with its value;
* otherwise the function is unwound (``StateDiscovery``) and the whole batch
  is answered with ``IncompleteInvocationContext`` listing the states the
  request lacks. The runtime registers them and sends the same batch again, so
  nothing the batch did before reaches the wire, and the body runs again once
  per state discovered this way.

The states a function discovered are kept with it (``function.storage_spec``
grows; guarded by a lock) and asked for up front in later batches.
"""

from __future__ import annotations

import threading
import typing

from statefun.compat.context import DualContext
from statefun.compat.disguise import presented_as
from statefun.compat.errors import UndeclaredStateError
from statefun.compat.message import dual_message, strict_dual_message
from statefun.compat.state import any_state
from statefun.context import BatchContext
from statefun.core import ValueSpec
from statefun.messages import Message, received_message, received_strict_message
from statefun.request_reply_pb2 import TypedValue
from statefun.responses import batch_response, missing_values_response
from statefun.statefun_builder import StatefulFunction
from statefun.storage import AddressScopedStorage, Cell, make_address_storage_spec, resolve_cells

__all__ = [
    "FunctionDialect",
    "StateDiscovery",
    "DUAL",
    "LEGACY",
    "dual_dialect",
    "legacy_dialect",
]

DUAL = "dual"
"""A function whose signature does not say: the 3.x message and context, plus 2.x members."""
LEGACY = "2.x"
"""A 2.x-style function (``states=``, a protobuf hint): hint dispatch, and the dual context."""

MessageFactory = typing.Callable[[str, str, TypedValue], Message]

_new = object.__new__
_init_batch_context = BatchContext.__init__


class StateDiscovery(BaseException):
    """Unwinds a function that touched a state the request does not carry.

    A ``BaseException``, so that the ``except Exception`` of user code lets it
    through; if user code swallows it anyway, the batch is still answered with
    ``IncompleteInvocationContext``.
    """

    def __init__(self, name: str, function_typename: str) -> None:
        super().__init__(
            f"the state {name!r} of {function_typename} was not declared; the runtime is asked "
            "for it and sends the batch again"
        )
        self.name = name


class _Received(typing.Protocol):
    """A state value of the request (``ToFunction.PersistedValue``)."""

    @property
    def state_name(self) -> str: ...

    @property
    def state_value(self) -> TypedValue: ...


@presented_as(DualContext)
class _DialectContext(DualContext):
    """``DualContext`` with what this module keeps per batch."""

    __slots__ = ("_function", "_received", "_missing")

    _function: StatefulFunction
    _received: typing.Sequence[_Received]
    _missing: bool


class FunctionDialect:
    """How the handler runs one function that is not 3.x-only (see the module docstring)."""

    __slots__ = ("kind", "make_message", "make_strict_message", "_lock")

    def __init__(
        self, kind: str, make_message: MessageFactory, make_strict_message: MessageFactory
    ) -> None:
        self.kind = kind
        self.make_message = make_message
        # What make_message makes, for a handler made with strict_message_types=True.
        self.make_strict_message = make_strict_message
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FunctionDialect({self.kind!r})"

    # -- called by RequestReplyHandler -----------------------------------------------------

    def begin(
        self,
        function: StatefulFunction,
        namespace: str,
        name: str,
        id: str,
        typename: str,
        storage: AddressScopedStorage,
        received: typing.Sequence[_Received],
    ) -> BatchContext:
        """The context of one batch (``received``: the request's state values)."""
        context: _DialectContext = _new(_DialectContext)
        _init_batch_context(context, None, storage)
        context._state_source = self
        context._function_typename = typename
        context._dual_target = (namespace, name, id)
        context._dual_address = None
        context._callers = None
        context._function = function
        context._received = received
        context._missing = False
        return context

    def absorbs(self, context: BatchContext, error: BaseException) -> bool:
        """Whether ``error`` ended a batch that discovered a state: it is then answered for that."""
        return typing.cast(_DialectContext, context)._missing and isinstance(
            error, (Exception, StateDiscovery)
        )

    def respond(self, context: BatchContext) -> bytes:
        """The serialized ``FromFunction`` of the batch."""
        dialect_context = typing.cast(_DialectContext, context)
        if not dialect_context._missing:
            return batch_response(context)
        received = {value.state_name for value in dialect_context._received}
        specs = dialect_context._function.storage_spec.specs
        return missing_values_response([spec for spec in specs if spec.name not in received])

    # -- called by DualContext -------------------------------------------------------------

    def discover(self, context: DualContext, name: object) -> Cell[typing.Any]:
        """The cell of ``name``, which this batch's storage lacks; declares it for the function."""
        dialect_context = typing.cast(_DialectContext, context)
        function = dialect_context._function
        spec = self._declare(function, name, context._function_typename)
        for value in dialect_context._received:
            if value.state_name == spec.name:
                return self._adopt(dialect_context, spec, value)
        dialect_context._missing = True
        raise StateDiscovery(spec.name, context._function_typename)

    def _declare(
        self, function: StatefulFunction, name: object, typename: str
    ) -> ValueSpec[typing.Any]:
        if not isinstance(name, str):
            raise UndeclaredStateError(
                name, typename, f"state names are strings, got {type(name).__name__}"
            )
        with self._lock:
            current = function.storage_spec
            for spec in current.specs:
                if spec.name == name:
                    return spec
            try:
                spec = any_state(name)
                # Also refuses names the storage object reserves for itself.
                function.storage_spec = make_address_storage_spec([*current.specs, spec])
            except ValueError as error:
                raise UndeclaredStateError(name, typename, str(error)) from None
            return spec

    @staticmethod
    def _adopt(
        context: _DialectContext, spec: ValueSpec[typing.Any], value: _Received
    ) -> Cell[typing.Any]:
        """Take the value the request carries for a state this batch's storage did not know."""
        missing, adopted = resolve_cells(make_address_storage_spec([spec]), [value])
        assert missing is None
        cells = context._storage._cells
        cells.update(adopted)
        # A storage object that also has the new state as an attribute (context.storage.x).
        known = [spec for spec in context._function.storage_spec.specs if spec.name in cells]
        context._storage = make_address_storage_spec(known).make_instance(
            context._function_typename, cells
        )
        return cells[spec.name]


def dual_dialect() -> FunctionDialect:
    """For a function whose signature does not say: it gets ``DualMessage`` s."""
    return FunctionDialect(DUAL, dual_message, strict_dual_message)


def legacy_dialect() -> FunctionDialect:
    """For a 2.x-style function: its adapter unpacks the plain received message."""
    return FunctionDialect(LEGACY, received_message, received_strict_message)
