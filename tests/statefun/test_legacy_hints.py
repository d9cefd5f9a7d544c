"""2.x-style calls on the 3.x Message and context fail with errors that name the fix."""

from __future__ import annotations

import re
import typing

import pytest

from statefun import IntType, StatefulFunctions, ValueSpec
from statefun.messages import message_builder
from statefun.testing import FunctionHarness

FIX = (
    "for the 2.x programming model import StatefulFunctions from statefun.compat or annotate "
    "the message parameter with its protobuf type; see docs/compat-2x.md"
)


def run_unannotated(body: typing.Callable[[typing.Any, typing.Any], None]) -> None:
    """Register ``body`` as an unannotated function, the way 2.x code was written, and invoke it."""
    functions = StatefulFunctions()

    def legacy(context, message):  # type: ignore[no-untyped-def]
        body(context, message)

    functions.register("example/legacy", legacy, specs=[ValueSpec(name="seen", type=IntType)])
    FunctionHarness(functions, "example/legacy").invoke("hello", id="alice")


@pytest.mark.parametrize(
    "call, member, instead",
    [
        (lambda m: m.Unpack(object()), "message.Unpack", "message.as_type("),
        (lambda m: m.Is(object()), "message.Is", "message.is_type("),
        (lambda m: m.TypeName(), "message.TypeName", "message.value_typename()"),
        (lambda m: m.type_url, "message.type_url", "message.value_typename()"),
        (lambda m: m.value, "message.value", "message.raw_value()"),
    ],
)
def test_any_members_on_a_3x_message_name_the_member_and_the_fix(
    call: typing.Callable[[typing.Any], object], member: str, instead: str
) -> None:
    with pytest.raises(AttributeError) as raised:
        run_unannotated(lambda context, message: call(message))
    text = str(raised.value)
    assert text.startswith(
        f"{member} is a StateFun 2.x Message member, but this is the 3.x Message"
    )
    assert f"In 3.x use {instead}" in text
    assert text.endswith(FIX)


@pytest.mark.parametrize(
    "call, member",
    [
        (lambda c: c.pack_and_send("example/other", "id", object()), "context.pack_and_send"),
        (lambda c: c.reply(object()), "context.reply"),
        (lambda c: c.pack_and_reply(object()), "context.pack_and_reply"),
        (lambda c: c.state("seen"), "context.state"),
        (lambda c: c.pack_and_send_egress("example/out", object()), "context.pack_and_send_egress"),
    ],
)
def test_2x_context_methods_on_a_3x_context_name_the_member_and_the_fix(
    call: typing.Callable[[typing.Any], object], member: str
) -> None:
    with pytest.raises(AttributeError) as raised:
        run_unannotated(lambda context, message: call(context))
    text = str(raised.value)
    assert text.startswith(
        f"{member} is a StateFun 2.x context member, but this is the 3.x context"
    )
    assert text.endswith(FIX)


def test_state_access_names_the_storage_replacement() -> None:
    with pytest.raises(AttributeError, match=re.escape("context.storage.<name>")):
        run_unannotated(lambda context, message: context.state("seen"))


@pytest.mark.parametrize(
    "call, usage",
    [
        (lambda c: c["seen"], "context['seen']"),
        (lambda c: c.__setitem__("seen", 1), "context['seen'] = ..."),
        (lambda c: c.__delitem__("seen"), "del context['seen']"),
        (lambda c: "seen" in c, "'seen' in context"),
    ],
)
def test_subscripting_a_3x_context_names_the_usage_and_the_fix(
    call: typing.Callable[[typing.Any], object], usage: str
) -> None:
    with pytest.raises(TypeError) as raised:
        run_unannotated(lambda context, message: call(context))
    text = str(raised.value)
    assert text.startswith(f"{usage} is a StateFun 2.x context member")
    assert "context.storage.<name>" in text
    assert text.endswith(FIX)


def test_other_missing_attributes_keep_the_plain_error() -> None:
    message = message_builder("example/fn", "id", str_value="x")
    with pytest.raises(AttributeError, match=r"^'Message' object has no attribute 'nonsense'$"):
        message.nonsense  # type: ignore[attr-defined]
    assert not hasattr(message, "Unpack")
    with pytest.raises(
        AttributeError, match=r"^'BatchContext' object has no attribute 'nonsense'$"
    ):
        run_unannotated(lambda context, message: context.nonsense)


def test_the_3x_api_is_unaffected() -> None:
    seen: list[object] = []

    def body(context: typing.Any, message: typing.Any) -> None:
        seen.append((message.as_string(), context.storage.seen, context.address.id))

    run_unannotated(body)
    assert seen == [("hello", None, "alice")]


def test_the_hints_cost_attribute_lookups_nothing_and_give_way_to_a_subclass_getattr() -> None:
    # Class attributes rather than a __getattr__: on CPython 3.11 a __getattr__ makes every
    # attribute read of the class's instances take the slow path.
    from statefun.context import BatchContext
    from statefun.messages import Message

    assert "__getattr__" not in vars(Message) and not hasattr(BatchContext, "__getattr__")
    message = message_builder("example/fn", "id", str_value="x")
    assert not hasattr(message, "Unpack") and not hasattr(message, "value")
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        message.nothing  # type: ignore[attr-defined]

    class Answering(Message):
        __slots__ = ()

        def __getattr__(self, name: str) -> str:
            return f"answered {name}"

    answering = object.__new__(Answering)
    assert answering.Unpack == "answered Unpack"  # type: ignore[attr-defined]
