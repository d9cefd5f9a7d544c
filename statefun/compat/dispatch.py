"""Type-hint dispatch of 2.x functions: which protobuf class a message is unpacked into.

A 2.x function's message parameter is either unannotated (it receives the
``google.protobuf.Any`` envelope), annotated with one protobuf message class,
or with a union of them (``typing.Union[A, B]``, ``typing.Optional[A]``,
``A | B``). ``google.protobuf.any_pb2.Any`` in the hint also means "give me the
envelope": it is the fallback when no other class of the hint matches.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass

from google.protobuf.any_pb2 import Any
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from statefun.compat.envelope import envelope_of, holds
from statefun.compat.errors import UndecodableMessageError, UnknownMessageTypeError

__all__ = [
    "MessageHint",
    "NOT_ANNOTATED",
    "message_parameters",
    "protobuf_hint_classes",
    "message_hint",
    "envelope_of",
    "holds",
    "payload_for",
]

ProtobufClass = type[ProtobufMessage]


class _NotAnnotated:
    """Marker for a parameter without a type hint (``inspect.Parameter.empty`` is untyped)."""

    def __repr__(self) -> str:
        return "NOT_ANNOTATED"


NOT_ANNOTATED = _NotAnnotated()


@dataclass(frozen=True)
class MessageHint:
    """What a 2.x function accepts: these classes, and/or the ``Any`` envelope itself."""

    classes: tuple[ProtobufClass, ...]
    accepts_envelope: bool

    def accepted_names(self) -> tuple[str, ...]:
        names = tuple(cls.DESCRIPTOR.full_name for cls in self.classes)
        return names + ((Any.DESCRIPTOR.full_name,) if self.accepts_envelope else ())


def message_parameters(fun: typing.Callable[..., object]) -> list[inspect.Parameter] | None:
    """The parameters ``fun`` would be called with, hints resolved where possible; ``None`` if opaque."""
    try:
        return list(inspect.signature(fun, eval_str=True).parameters.values())
    except Exception:
        # Evaluating a string hint may raise anything; keep the raw strings, callers decide.
        pass
    try:
        return list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return None


def annotation_of(parameter: inspect.Parameter) -> object:
    if parameter.annotation is inspect.Parameter.empty:
        return NOT_ANNOTATED
    return parameter.annotation


def _union_members(annotation: object) -> tuple[object, ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(member for member in typing.get_args(annotation) if member is not type(None))
    return (annotation,)


def _is_protobuf_class(candidate: object) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, ProtobufMessage)


def protobuf_hint_classes(annotation: object) -> tuple[ProtobufClass, ...] | None:
    """The protobuf classes of a 2.x hint, or ``None`` if the hint is not purely protobuf."""
    members = _union_members(annotation)
    if not members or not all(_is_protobuf_class(member) for member in members):
        return None
    return tuple(typing.cast(ProtobufClass, member) for member in members)


def message_hint(annotation: object) -> MessageHint | None:
    """The dispatch rule for a 2.x message parameter annotation; ``None`` if it is not a 2.x hint."""
    if annotation is NOT_ANNOTATED or annotation is typing.Any or annotation is object:
        return MessageHint(classes=(), accepts_envelope=True)
    classes = protobuf_hint_classes(annotation)
    if classes is None:
        return None
    unpacked = tuple(cls for cls in classes if cls is not Any)
    return MessageHint(classes=unpacked, accepts_envelope=len(unpacked) < len(classes))


def payload_for(hint: MessageHint, envelope: Any, function_typename: str) -> ProtobufMessage:
    """The first hint class the envelope holds, unpacked; else the envelope if accepted."""
    for cls in hint.classes:
        if holds(envelope, cls):
            message = cls()
            try:
                message.ParseFromString(envelope.value)
            except DecodeError as error:
                raise UndecodableMessageError(
                    f"the message of type {envelope.type_url} sent to {function_typename} could "
                    f"not be parsed as {cls.DESCRIPTOR.full_name}: {error}"
                ) from error
            return message
    if hint.accepts_envelope:
        return envelope
    raise UnknownMessageTypeError(envelope.type_url, function_typename, hint.accepted_names())
