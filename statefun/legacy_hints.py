"""Errors that explain 2.x-style code running against the 3.x ``Message`` and context.

A function declared 3.x (``specs=[...]``, or ``statefun.Message``/``Context``
hints; docs/compat-2x.md gives the rule) receives the plain 3.x ``Message``
and context, exactly as upstream 3.x. Its 2.x calls would fail with a bare
``AttributeError``; these say what happened and how to fix it. (Functions whose
signature does not say get ``statefun.compat``'s dual message and context
instead, which answer the 2.x calls.) The errors are only built after a normal
attribute lookup has failed, so they cost the hot path nothing: each 2.x member
name is a class attribute of its own (``HintingMember``) that raises when read,
rather than a ``__getattr__`` on the class, which on CPython 3.11 slows every
attribute read of its instances (the interpreter does not specialize lookups on
such classes).
"""

from __future__ import annotations

import typing

__all__ = [
    "message_attribute_error",
    "context_attribute_error",
    "context_subscript_error",
    "HintingMember",
    "add_message_hints",
    "add_context_hints",
]

_FIX = (
    "for the 2.x programming model import StatefulFunctions from statefun.compat or annotate "
    "the message parameter with its protobuf type; see docs/compat-2x.md"
)

# 2.x received messages as google.protobuf.Any: its members, with the 3.x way to do the same.
_MESSAGE_MEMBERS = {
    "Unpack": "message.as_type(make_protobuf_type(YourMessage))",
    "Is": "message.is_type(make_protobuf_type(YourMessage))",
    "TypeName": "message.value_typename()",
    "type_url": "message.value_typename()",
    "value": "message.raw_value()",
    "Pack": "message_builder(..., value=..., value_type=make_protobuf_type(YourMessage))",
    "SerializeToString": "message.raw_value()",
    "ParseFromString": "message.as_type(...)",
    "HasField": "message.value_typename()",
    "ListFields": "message.value_typename() and message.raw_value()",
    "CopyFrom": "message.as_type(...)",
    "MergeFrom": "message.as_type(...)",
    "DESCRIPTOR": "message.value_typename()",
}

_STORAGE = "declare a ValueSpec (specs=[...]) and use context.storage.<name>"

_CONTEXT_MEMBERS = {
    "state": _STORAGE,
    "pack_and_send": "context.send(message_builder(target_typename=..., target_id=..., "
    "value=..., value_type=make_protobuf_type(YourMessage)))",
    "reply": "context.send(message_builder(target_typename=context.caller.typename, "
    "target_id=context.caller.id, ...))",
    "pack_and_reply": "context.send(message_builder(target_typename=context.caller.typename, "
    "target_id=context.caller.id, value=..., value_type=make_protobuf_type(YourMessage)))",
    "pack_and_send_after": "context.send_after(delay, message_builder(...))",
    "pack_and_send_egress": "context.send_egress(kafka_egress_message(...)) or "
    "egress_message_builder(...)",
}


def _hint(member: str, what: str, instead: str) -> str:
    return (
        f"{member} is a StateFun 2.x {what} member, but this is the 3.x {what}: the function was "
        f"registered as a 3.x function. In 3.x use {instead}; {_FIX}"
    )


def _missing(owner: object, name: str) -> AttributeError:
    return AttributeError(f"{type(owner).__name__!r} object has no attribute {name!r}")


def message_attribute_error(message: object, name: str) -> AttributeError:
    instead = _MESSAGE_MEMBERS.get(name)
    if instead is None:
        return _missing(message, name)
    return AttributeError(_hint(f"message.{name}", "Message", instead))


def context_attribute_error(context: object, name: str) -> AttributeError:
    instead = _CONTEXT_MEMBERS.get(name)
    if instead is None:
        return _missing(context, name)
    return AttributeError(_hint(f"context.{name}", "context", instead))


def context_subscript_error(name: object, usage: str) -> TypeError:
    return TypeError(_hint(usage.format(name=repr(name)), "context", _STORAGE))


class HintingMember:
    """A class attribute standing for a 2.x member: reading it on an instance raises the hint."""

    __slots__ = ("_name", "_error")

    def __init__(self, name: str, error: typing.Callable[[object, str], AttributeError]) -> None:
        self._name = name
        self._error = error

    def __get__(self, instance: object, owner: type | None = None) -> typing.Any:
        if instance is None:
            return self
        # A subclass with a __getattr__ of its own (statefun.compat's dual message) answers as
        # it would have, had this attribute not existed.
        fallback = getattr(type(instance), "__getattr__", None)
        if fallback is not None:
            return fallback(instance, self._name)
        raise self._error(instance, self._name)


def add_message_hints(cls: type) -> None:
    """Give the 3.x message class a ``HintingMember`` for each 2.x ``Any`` member."""
    for name in _MESSAGE_MEMBERS:
        setattr(cls, name, HintingMember(name, message_attribute_error))


def add_context_hints(cls: type) -> None:
    """Give the 3.x context class a ``HintingMember`` for each 2.x context member."""
    for name in _CONTEXT_MEMBERS:
        setattr(cls, name, HintingMember(name, context_attribute_error))
