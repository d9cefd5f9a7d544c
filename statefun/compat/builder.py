"""``statefun.compat.StatefulFunctions``: a registry for whole 2.x programs.

It differs from ``statefun.StatefulFunctions`` in one default only: a
function with no hint on its message parameter is 2.x-style (it receives the
``google.protobuf.Any`` itself, where ``statefun.StatefulFunctions`` gives it
the 3.x message with the ``Any`` members 2.x code calls), as every function of
a 2.x program was. 3.x functions (``specs=``,
or ``message: statefun.Message``) can still be registered in it.
"""

from __future__ import annotations

import typing

from statefun.compat.registration import route_function
from statefun.compat.state import StateDeclaration
from statefun.core import ValueSpec, validate_typename
from statefun.statefun_builder import StatefulFunctions as CurrentStatefulFunctions

__all__ = ["StatefulFunctions"]

F = typing.TypeVar("F", bound=typing.Callable[..., typing.Any])


class StatefulFunctions(CurrentStatefulFunctions):
    """Functions by typename; unannotated functions are 2.x-style here."""

    __slots__ = ()

    def register(
        self,
        typename: str,
        fun: typing.Callable[..., typing.Any],
        specs: typing.Sequence[ValueSpec[typing.Any]] | None = None,
        states: typing.Sequence[StateDeclaration] | None = None,
    ) -> None:
        """Register ``fun(context, message)``; 2.x states are declared with ``states=[...]``."""
        if not typename:
            raise ValueError("function typename must be provided")
        validate_typename(typename, "a function typename")
        routed, routed_specs, _ = route_function(
            typename, fun, specs, states, legacy_by_default=True
        )
        super().register(typename, routed, routed_specs)

    def bind(
        self,
        typename: str,
        specs: typing.Sequence[ValueSpec[typing.Any]] | None = None,
        states: typing.Sequence[StateDeclaration] | None = None,
    ) -> typing.Callable[[F], F]:
        """Decorator form of ``register``; returns the function unchanged."""
        validate_typename(typename, "a function typename")

        def wrapper(function: F) -> F:
            self.register(typename, function, specs, states)
            return function

        return wrapper
