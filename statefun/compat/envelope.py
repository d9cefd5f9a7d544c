"""Between the 2.x ``google.protobuf.Any`` and the 3.x ``TypedValue``.

3.x names protobuf types ``type.googleapis.com/<full name>``, the ``Any``
convention, so an ``Any`` becomes ``TypedValue{typename = type_url, value}``
and back without renaming anything.
"""

from __future__ import annotations

from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message as ProtobufMessage

from statefun.messages import Message
from statefun.request_reply_pb2 import TypedValue

__all__ = ["envelope_of", "holds", "as_envelope", "packed", "typed_value_of"]

ProtobufClass = type[ProtobufMessage]


def envelope_of(typed_value: TypedValue) -> Any:
    """The 2.x ``Any`` for a 3.x ``TypedValue``: the typename is the type URL, the bytes the value.

    ``Any.Is`` compares only the part after the last ``/``, so ingress type
    URLs such as ``com.googleapis/example.GreetRequest`` match too.
    """
    value = typed_value.value if typed_value.has_value else b""
    return Any(type_url=typed_value.typename, value=value)


def holds(envelope: Any, cls: ProtobufClass) -> bool:
    """Whether the envelope's type URL names ``cls`` (what ``Any.Is`` checks)."""
    prefix, slash, full_name = envelope.type_url.rpartition("/")
    return bool(slash) and full_name == cls.DESCRIPTOR.full_name


def as_envelope(value: object, what: str, packing_hint: str) -> Any:
    """``value`` as the ``Any`` a 2.x call expects; a received 3.x ``Message`` is one too.

    ``what`` names the call in errors; ``packing_hint`` says how to pass a
    plain protobuf message instead.
    """
    if isinstance(value, Any):
        return value
    if isinstance(value, Message):
        raw = value.raw_value()
        return Any(type_url=value.value_typename(), value=b"" if raw is None else raw)
    if value is None:
        raise ValueError(f"{what}: the message is missing")
    hint = (
        f"; {packing_hint} to pass a {type(value).__name__}"
        if isinstance(value, ProtobufMessage)
        else ""
    )
    raise TypeError(f"{what} expects a google.protobuf.Any, got {type(value).__name__}{hint}")


def packed(message: object, what: str) -> Any:
    """``message`` packed into an ``Any``, for the ``pack_and_...`` calls."""
    if message is None:
        raise ValueError(f"{what}: the message is missing")
    if not isinstance(message, ProtobufMessage):
        raise TypeError(f"{what} expects a protobuf message, got {type(message).__name__}")
    envelope = Any()
    envelope.Pack(message)
    return envelope


def typed_value_of(envelope: Any, what: str) -> TypedValue:
    """The ``TypedValue`` carrying ``envelope``'s type URL and bytes."""
    if not envelope.type_url:
        raise ValueError(f"{what}: the Any has no type_url; Pack() a message into it first")
    return TypedValue(typename=envelope.type_url, has_value=True, value=envelope.value)
