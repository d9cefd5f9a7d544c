"""``StatefulFunctions``: the registry of functions a handler serves."""

from __future__ import annotations

import functools
import inspect
import sys
import typing
import warnings

from statefun.context import Context
from statefun.core import ValueSpec, validate_typename
from statefun.errors import FunctionNotFoundError, TypenameWarning
from statefun.messages import Message
from statefun.storage import StorageSpec, make_address_storage_spec

if typing.TYPE_CHECKING:
    from statefun.compat.dialect import FunctionDialect

__all__ = ["StatefulFunction", "StatefulFunctions"]

UserFunction = typing.Callable[[Context, Message], typing.Any]
F = typing.TypeVar("F", bound=typing.Callable[..., typing.Any])


class StatefulFunction:
    """A registered function: the callable, its storage layout and whether it is a coroutine.

    Constructed as upstream's: ``StatefulFunction(fun, specs, is_async)``.
    """

    # dialect: None for a 3.x function; statefun.compat's hook for the others (2.x-style, or
    # a signature that does not say), which the handler asks for their context and message.
    __slots__ = ("fun", "storage_spec", "is_async", "typename", "dialect")

    def __init__(
        self, fun: UserFunction, specs: StorageSpec, is_async: bool, typename: str = ""
    ) -> None:
        if fun is None:
            raise ValueError("function code is missing.")
        if specs is None:
            raise ValueError("storage spec is missing.")
        self.fun = fun
        self.storage_spec = specs
        self.is_async = is_async
        self.typename = typename
        self.dialect: FunctionDialect | None = None

    def __repr__(self) -> str:
        kind = "async " if self.is_async else ""
        return f"StatefulFunction({self.typename!r}, {kind}{self.fun!r})"


def _is_coroutine_callable(fun: typing.Callable[..., typing.Any]) -> bool:
    if inspect.iscoroutinefunction(fun):
        return True
    while isinstance(fun, functools.partial):
        fun = fun.func
        if inspect.iscoroutinefunction(fun):
            return True
    call = getattr(type(fun), "__call__", None)
    return not inspect.isfunction(fun) and inspect.iscoroutinefunction(call)


def _warn_if_unaddressable(typename: str) -> None:
    """Warn about a typename the runtime cannot address; upstream registered it silently."""
    try:
        validate_typename(typename, "the function typename")
    except (ValueError, AttributeError, TypeError) as error:
        # Point at the user's register() or @bind line, however deep inside this module we are.
        frame, level = sys._getframe(), 1
        while frame.f_back is not None and frame.f_code.co_filename == __file__:
            frame, level = frame.f_back, level + 1
        warnings.warn(
            f"{error}: the runtime addresses functions as namespace/name, so this function "
            "can never be invoked",
            TypenameWarning,
            stacklevel=level,
        )


def _check_accepts_context_and_message(
    typename: str, fun: typing.Callable[..., typing.Any]
) -> None:
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError):
        return  # Some builtins have no introspectable signature; trust the caller.
    try:
        signature.bind(None, None)
    except TypeError:
        raise ValueError(
            f"The registered function {typename} does not expect a context and a message but "
            f"rather {list(signature.parameters)}"
        ) from None


class StatefulFunctions:
    """Functions by typename, each with the state it declares.

    ``strict_message_types=True`` (off by default, as upstream) makes every
    handler serving this registry give its functions ``StrictMessage``s:
    ``message.as_type(T)`` (and ``as_int()``, …) then raise
    ``MessageTypeMismatchError`` for a value of another typename instead of
    decoding its bytes as ``T``.
    """

    __slots__ = ("_functions", "strict_message_types")

    def __init__(self, *, strict_message_types: bool = False) -> None:
        self._functions: dict[str, StatefulFunction] = {}
        self.strict_message_types = strict_message_types

    def register(
        self,
        typename: str,
        fun: UserFunction,
        specs: typing.Sequence[ValueSpec[typing.Any]] | None = None,
        states: typing.Sequence[str | ValueSpec[typing.Any]] | None = None,
    ) -> None:
        """Register ``fun(context, message)`` under ``typename`` (``namespace/name``).

        ``fun`` may be a plain or ``async`` function, a bound method or any
        callable object. Registering a typename again replaces the previous function.
        A function not declared 3.x (``specs=``, or ``Message``/``Context`` hints)
        runs through ``statefun.compat``: it also speaks the 2.x dialect; see
        docs/compat-2x.md.
        """
        if fun is None:
            raise ValueError("function code is missing.")
        if not typename:
            raise ValueError("function typename must be provided")
        _warn_if_unaddressable(typename)
        if not callable(fun):
            raise TypeError(f"the function registered for {typename} is not callable: {fun!r}")
        # Imported here because statefun.compat builds on this module.
        from statefun.compat.registration import route_function

        fun, specs, dialect = route_function(typename, fun, specs, states)
        _check_accepts_context_and_message(typename, fun)
        storage_spec = make_address_storage_spec(list(specs) if specs else [])
        function = StatefulFunction(
            fun=fun, specs=storage_spec, is_async=_is_coroutine_callable(fun), typename=typename
        )
        function.dialect = dialect
        self._functions[typename] = function

    def bind(
        self,
        typename: str,
        specs: typing.Sequence[ValueSpec[typing.Any]] | None = None,
        states: typing.Sequence[str | ValueSpec[typing.Any]] | None = None,
    ) -> typing.Callable[[F], F]:
        """Decorator form of ``register``; returns the function unchanged."""

        def wrapper(function: F) -> F:
            self.register(typename, function, specs, states)
            return function

        return wrapper

    def for_typename(self, typename: str) -> StatefulFunction:
        """The function registered under ``typename``; ``FunctionNotFoundError`` (a ``KeyError``) if none."""
        try:
            return self._functions[typename]
        except KeyError:
            raise FunctionNotFoundError(typename, tuple(sorted(self._functions))) from None

    def typenames(self) -> list[str]:
        """The registered typenames, sorted."""
        return sorted(self._functions)

    def __contains__(self, typename: object) -> bool:
        return typename in self._functions

    def __len__(self) -> int:
        return len(self._functions)

    def __bool__(self) -> bool:
        # An empty registry is still a registry: RequestReplyHandler accepts it as upstream did.
        return True
