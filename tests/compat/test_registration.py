"""Which functions are 2.x-style, and 2.x and 3.x functions side by side in one registry."""

from __future__ import annotations

import typing

import pytest
from compat_support import (
    Admin,
    User,
    address,
    from_function,
    packed,
    to_function,
    typed,
    type_url,
)
from google.protobuf.any_pb2 import Any

import statefun
import statefun.compat
from statefun import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    ValueSpec,
    make_protobuf_type,
    message_builder,
)
from statefun.compat.errors import LegacyFunctionError
from statefun.compat.message import DualMessage
from statefun.compat.registration import (
    CURRENT,
    DUAL,
    LEGACY,
    LEGACY_FUNCTION_ATTRIBUTE,
    route_function,
)

UserType = make_protobuf_type(User)
ANN = User(user_id="u1", name="Ann")


def style_of(functions: StatefulFunctions, typename: str) -> str:
    """CURRENT (no dialect hook), DUAL or LEGACY, checked against how the function is stored."""
    function = functions.for_typename(typename)
    adapted = hasattr(function.fun, LEGACY_FUNCTION_ATTRIBUTE)
    if function.dialect is None:
        assert not adapted
        return CURRENT
    assert adapted == (function.dialect.kind == LEGACY)
    return function.dialect.kind


def is_legacy(functions: StatefulFunctions, typename: str) -> bool:
    return style_of(functions, typename) == LEGACY


def untyped(context, message):  # type: ignore[no-untyped-def]
    pass


def typed_as_user(context, message: User):  # type: ignore[no-untyped-def]
    pass


def typed_as_any(context, message: Any):  # type: ignore[no-untyped-def]
    pass


def typed_as_anything(context, message: typing.Any):  # type: ignore[no-untyped-def]
    pass


def typed_as_object(context, message: object):  # type: ignore[no-untyped-def]
    pass


def current_style(context: Context, message: Message) -> None:
    pass


def context_annotated_only(context: Context, message):  # type: ignore[no-untyped-def]
    pass


@pytest.mark.parametrize(
    ("registry", "fun", "keywords", "style"),
    [
        (StatefulFunctions, untyped, {}, DUAL),
        (statefun.compat.StatefulFunctions, untyped, {}, LEGACY),
        (StatefulFunctions, untyped, {"states": []}, LEGACY),
        (StatefulFunctions, untyped, {"states": ["count"]}, LEGACY),
        (StatefulFunctions, untyped, {"specs": []}, CURRENT),
        (StatefulFunctions, untyped, {"specs": [ValueSpec("seen", IntType)]}, CURRENT),
        (statefun.compat.StatefulFunctions, untyped, {"specs": []}, CURRENT),
        (StatefulFunctions, typed_as_user, {}, LEGACY),
        (StatefulFunctions, typed_as_user, {"specs": []}, CURRENT),
        (StatefulFunctions, typed_as_any, {}, LEGACY),
        (StatefulFunctions, typed_as_anything, {}, DUAL),
        (StatefulFunctions, typed_as_object, {}, DUAL),
        (StatefulFunctions, typing.cast(typing.Any, lambda context, message: None), {}, DUAL),
        (StatefulFunctions, current_style, {}, CURRENT),
        (StatefulFunctions, context_annotated_only, {}, CURRENT),
        (statefun.compat.StatefulFunctions, typed_as_anything, {}, LEGACY),
        (statefun.compat.StatefulFunctions, current_style, {}, CURRENT),
        (statefun.compat.StatefulFunctions, context_annotated_only, {}, CURRENT),
    ],
)
def test_the_style_rule(
    registry: type[StatefulFunctions],
    fun: typing.Any,
    keywords: dict[str, typing.Any],
    style: str,
) -> None:
    functions = registry()

    functions.register("ex/fn", fun, **keywords)

    assert style_of(functions, "ex/fn") == style
    if style != LEGACY:
        assert functions.for_typename("ex/fn").fun is fun


def test_specs_and_states_together_are_refused() -> None:
    with pytest.raises(
        ValueError,
        match="ex/fn: give either specs= \\(3.x ValueSpecs\\) or states= \\(2.x Any states\\), not both",
    ):
        StatefulFunctions().register("ex/fn", untyped, specs=[], states=[])


def test_a_2x_function_with_a_non_protobuf_hint_is_refused() -> None:
    def greet(context, message: str):  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(LegacyFunctionError) as raised:
        StatefulFunctions().bind("ex/fn", states=["seen"])(greet)

    assert isinstance(raised.value, TypeError)
    assert (
        "the message parameter 'message' of the 2.x-style function ex/fn is annotated str"
        in str(raised.value)
    )
    assert (
        "must be a protobuf message class, a Union of them, or google.protobuf.any_pb2.Any"
        in str(raised.value)
    )


def test_an_unresolvable_string_hint_is_explained() -> None:
    def greet(context, message: "NoSuchMessage"):  # type: ignore[name-defined,no-untyped-def] # noqa: F821
        pass

    with pytest.raises(
        LegacyFunctionError,
        match="annotated NoSuchMessage \\(a string hint that could not be resolved",
    ):
        statefun.compat.StatefulFunctions().register("ex/fn", greet)
    StatefulFunctions().register("ex/fn", greet)  # a 3.x registry ignores hints it cannot read

    def failing_hint(context, message: "1/0"):  # type: ignore[no-untyped-def] # noqa: F722
        pass

    functions = StatefulFunctions()
    functions.register("ex/odd", failing_hint)
    assert functions.for_typename("ex/odd").fun is failing_hint


def test_a_2x_function_must_take_a_context_and_a_message() -> None:
    def three(context, message, extra):  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(
        LegacyFunctionError,
        match="ex/fn must take two arguments, a context and a message, but takes \\['context', 'message', 'extra'\\]",
    ):
        statefun.compat.StatefulFunctions().register("ex/fn", three)


def test_async_2x_functions_stay_async_and_methods_are_accepted() -> None:
    class Greeter:
        def greet(self, context, message: User):  # type: ignore[no-untyped-def]
            pass

        async def greet_later(self, context, message: User):  # type: ignore[no-untyped-def]
            pass

    functions = StatefulFunctions()
    functions.register("ex/now", Greeter().greet)
    functions.register("ex/later", Greeter().greet_later)

    assert is_legacy(functions, "ex/now") and not functions.for_typename("ex/now").is_async
    assert is_legacy(functions, "ex/later") and functions.for_typename("ex/later").is_async
    assert functions.for_typename("ex/now").fun.__name__ == "greet"


def test_an_adapter_is_not_adapted_twice() -> None:
    functions = StatefulFunctions()
    functions.register("ex/fn", typed_as_user)
    adapter = functions.for_typename("ex/fn").fun

    routed, specs, dialect = route_function("ex/fn", adapter, None, None, legacy_by_default=True)
    assert (routed, specs) == (adapter, None)
    assert dialect is not None and dialect.kind == LEGACY

    # Registered again under another name, it is still run as the 2.x function it adapts.
    functions.register("ex/again", adapter)
    assert style_of(functions, "ex/again") == LEGACY


def test_a_sync_2x_function_returning_a_coroutine_is_reported() -> None:
    async def work() -> None:
        pass

    def greet(context, message: User):  # type: ignore[no-untyped-def]
        return work()

    functions = StatefulFunctions()
    functions.register("ex/fn", greet)

    with pytest.raises(
        LegacyFunctionError, match="returned an awaitable but is not declared 'async def'"
    ):
        RequestReplyHandler(functions)(to_function("ex/fn", "1", [(None, typed(ANN))]))


def mixed_functions(seen: list[str]) -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("example/legacy", states=["last"])
    def legacy(context, message: typing.Union[User, Admin]):  # type: ignore[no-untyped-def]
        seen.append(f"legacy got {type(message).DESCRIPTOR.name} {message.name}")
        context["last"] = packed(message)
        if isinstance(message, Admin):
            return
        context.pack_and_send("example/current", message.user_id, Admin(name=message.name))

    @functions.bind("example/current", specs=[ValueSpec("visits", IntType)])
    def current(context: Context, message: Message) -> None:
        context.storage.visits = (context.storage.visits or 0) + 1
        seen.append(f"current got {message.value_typename()}")
        context.send(message_builder("example/legacy", "back", value=ANN, value_type=UserType))

    return functions


def test_2x_and_3x_functions_message_each_other_in_one_registry() -> None:
    seen: list[str] = []
    handler = RequestReplyHandler(mixed_functions(seen))

    legacy_result = from_function(
        handler(to_function("example/legacy", "Ann", [(None, typed(ANN))], state={"last": None}))
    ).invocation_result
    (to_current,) = legacy_result.outgoing_messages
    assert to_current.target == address("example/current", "u1")
    assert to_current.argument.typename == type_url(Admin)

    current_result = from_function(
        handler(
            to_function(
                "example/current",
                "u1",
                [(address("example/legacy", "Ann"), to_current.argument)],
                state={"visits": None},
            )
        )
    ).invocation_result
    (visits,) = current_result.state_mutations
    assert visits.state_value.typename == "io.statefun.types/int"
    (to_legacy,) = current_result.outgoing_messages
    assert to_legacy.argument.typename == UserType.typename == type_url(User)

    handler(
        to_function("example/legacy", "back", [(None, to_legacy.argument)], state={"last": None})
    )
    assert seen == [
        "legacy got User Ann",
        "current got type.googleapis.com/example.Admin",
        "legacy got User Ann",
    ]


def test_unannotated_functions_in_the_3x_registry_get_the_dual_message() -> None:
    received: list[object] = []
    functions = StatefulFunctions()

    @functions.bind("ex/fn")
    def fn(context, message):  # type: ignore[no-untyped-def]
        received.append(message)

    @functions.bind("ex/declared", specs=[])
    def declared(context, message):  # type: ignore[no-untyped-def]
        received.append(message)

    handler = RequestReplyHandler(functions)
    handler(to_function("ex/fn", "1", [(None, typed(ANN))]))
    handler(to_function("ex/declared", "1", [(None, typed(ANN))]))

    dual, plain = received
    assert isinstance(dual, DualMessage) and isinstance(dual, Message)
    assert not isinstance(dual, Any)
    assert dual.as_type(UserType) == ANN
    assert type(plain) is Message and not hasattr(plain, "Unpack")
