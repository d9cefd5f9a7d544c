from __future__ import annotations

import functools
import re
import typing

import pytest

from statefun.context import Context
from statefun.core import ValueSpec
from statefun.errors import FunctionNotFoundError, TypenameWarning
from statefun.messages import Message
from statefun.statefun_builder import StatefulFunctions
from statefun.wrapper_types import IntType


def test_bind_registers_and_returns_the_function() -> None:
    functions = StatefulFunctions()

    @functions.bind("ex/fn", [ValueSpec("seen", IntType)])
    def fn(context: Context, message: Message) -> None:
        pass

    registered = functions.for_typename("ex/fn")
    assert registered.fun is fn
    assert not registered.is_async
    assert [s.name for s in registered.storage_spec.specs] == ["seen"]
    assert "ex/fn" in functions and functions.typenames() == ["ex/fn"]


def test_async_functions_bound_methods_and_callables() -> None:
    functions = StatefulFunctions()

    async def coroutine(context: Context, message: Message) -> None:
        pass

    class Greeter:
        def greet(self, context: Context, message: Message) -> None:
            pass

        async def __call__(self, context: Context, message: Message) -> None:
            pass

    functions.register("ex/async", coroutine)
    functions.register("ex/method", Greeter().greet)
    functions.register("ex/callable", Greeter())
    functions.register("ex/partial", functools.partial(lambda tag, c, m: None, "tag"))
    functions.register("ex/defaults", lambda c, m, extra=1: None)
    functions.register("ex/varargs", lambda *args: None)
    assert functions.for_typename("ex/async").is_async
    assert not functions.for_typename("ex/method").is_async
    assert functions.for_typename("ex/callable").is_async
    assert not functions.for_typename("ex/partial").is_async


@pytest.mark.parametrize(
    "fun",
    [lambda: None, lambda c: None, lambda c, m, x: None, lambda *, c, m: None],
)
def test_functions_that_cannot_take_context_and_message_are_rejected(fun: typing.Any) -> None:
    with pytest.raises(ValueError, match="does not expect a context and a message"):
        StatefulFunctions().register("ex/fn", fun)


@pytest.mark.parametrize("typename", ["noslash", "/fn", "ex/", 3])
def test_unaddressable_typenames_are_registered_with_a_warning(typename: typing.Any) -> None:
    # Upstream registered any non-empty typename; such a function can never be invoked.
    functions = StatefulFunctions()
    with pytest.warns(TypenameWarning, match=re.escape(repr(typename))) as warned:
        functions.bind(typename)(lambda c, m: None)
    assert warned[0].filename == __file__
    assert typename in functions
    with pytest.warns(TypenameWarning, match="can never be invoked"):
        functions.register(typename, lambda c, m: None)


def test_missing_typename_is_a_value_error() -> None:
    for typename in ("", None):
        with pytest.raises(ValueError, match="function typename must be provided"):
            StatefulFunctions().register(typename, lambda c, m: None)  # type: ignore[arg-type]


def test_missing_function_and_non_callable() -> None:
    with pytest.raises(ValueError):
        StatefulFunctions().register("ex/fn", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not callable"):
        StatefulFunctions().register("ex/fn", 3)  # type: ignore[arg-type]
    # Upstream read spec.name: an AttributeError.
    with pytest.raises(AttributeError, match="expected a ValueSpec"):
        StatefulFunctions().register("ex/fn", lambda c, m: None, ["seen"])  # type: ignore[list-item]


def test_unknown_typename_is_a_key_error_listing_known_functions() -> None:
    functions = StatefulFunctions()
    functions.register("ex/known", lambda c, m: None)
    with pytest.raises(KeyError) as raised:
        functions.for_typename("ex/other")
    assert isinstance(raised.value, FunctionNotFoundError)
    assert (
        str(raised.value)
        == "no function is registered for typename 'ex/other' (registered: ex/known)"
    )


def test_reregistering_replaces() -> None:
    functions = StatefulFunctions()
    first, second = (lambda c, m: 1), (lambda c, m: 2)
    functions.register("ex/fn", first)
    functions.register("ex/fn", second)
    assert functions.for_typename("ex/fn").fun is second
