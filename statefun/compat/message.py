"""The message a function gets when its signature does not say 3.x or 2.x.

It is the 3.x ``Message`` (every 3.x member is inherited unchanged) plus the
``google.protobuf.Any`` members 2.x code calls on the message it received:
``Unpack`` (``False`` on a type mismatch, as ``Any.Unpack``), ``Is``,
``TypeName``, ``type_url`` and ``value``. It presents itself as ``Message``
(class name, ``repr``), so 3.x code sees the 3.x class.
"""

from __future__ import annotations

import typing

from google.protobuf.message import Message as ProtobufMessage

from statefun.compat.disguise import presented_as
from statefun.legacy_hints import HintingMember
from statefun.messages import Message, StrictMessage
from statefun.request_reply_pb2 import TypedValue

__all__ = ["DualMessage", "StrictDualMessage", "dual_message", "strict_dual_message", "ANY_MEMBERS"]

# The google.protobuf.Any members a DualMessage has.
ANY_MEMBERS = ("Unpack", "Is", "TypeName", "type_url", "value")

# Other members of google.protobuf.Any: a DualMessage says what it offers instead.
_OTHER_ANY_MEMBERS = frozenset(
    {
        "Pack",
        "SerializeToString",
        "SerializePartialToString",
        "ParseFromString",
        "MergeFromString",
        "CopyFrom",
        "MergeFrom",
        "HasField",
        "ClearField",
        "ListFields",
        "ByteSize",
        "IsInitialized",
        "WhichOneof",
        "DESCRIPTOR",
        "FromString",
    }
)


@presented_as(Message)
class DualMessage(Message):
    """A 3.x ``Message`` that also answers the ``google.protobuf.Any`` calls of 2.x code."""

    __slots__ = ()

    @property
    def type_url(self) -> str:
        """The value's typename; for protobuf values ``type.googleapis.com/<full name>``."""
        return self.value_typename()

    @property
    def value(self) -> bytes:
        """The value's bytes; ``b""`` when the message carries no value, as an empty ``Any``."""
        raw = self.raw_value()
        return b"" if raw is None else raw

    def TypeName(self) -> str:
        """The part of the type URL after its last ``/``, as ``Any.TypeName``."""
        return self.value_typename().rpartition("/")[2]

    def Is(self, descriptor: typing.Any) -> bool:
        """Whether the value is of the protobuf type ``descriptor``, as ``Any.Is``."""
        type_url = self.value_typename()
        return "/" in type_url and type_url.rpartition("/")[2] == descriptor.full_name

    def Unpack(self, message: ProtobufMessage) -> bool:
        """Parse the value into ``message`` if it is of its type; ``False`` otherwise, as ``Any``."""
        if not self.Is(message.DESCRIPTOR):
            return False
        message.ParseFromString(self.value)
        return True

    def __reduce__(self) -> tuple[typing.Any, ...]:
        # The class is named after Message, so pickle could not find it by name.
        return (dual_message, (self.target_typename, self.target_id, self.typed_value))


def _other_any_member_error(message: object, name: str) -> AttributeError:
    return AttributeError(
        f"message.{name}: the message of a function whose message parameter is not "
        "annotated is the 3.x Message with the google.protobuf.Any members 2.x code "
        f"reads ({', '.join(ANY_MEMBERS)}); to receive a real google.protobuf.Any, "
        "annotate the parameter: message: google.protobuf.any_pb2.Any"
    )


# Class attributes rather than a __getattr__: on CPython 3.11 a class with __getattr__ makes every
# attribute read of its instances slower (see statefun.legacy_hints).
for _name in sorted(_OTHER_ANY_MEMBERS):
    setattr(DualMessage, _name, HintingMember(_name, _other_any_member_error))
del _name


_new = object.__new__


def dual_message(target_typename: str, target_id: str, typed_value: TypedValue) -> DualMessage:
    """A ``DualMessage`` around a value the runtime sent: ``received_message``, as this class.

    Its assignments are ``received_message`` 's, repeated so that the handler pays one call
    per invocation, as for 3.x functions; tests/compat/test_message.py checks both agree.
    """
    message: DualMessage = _new(DualMessage)
    message.target_typename = target_typename
    message.target_id = target_id
    message._typed_value = typed_value
    return message


@presented_as(StrictMessage)
class StrictDualMessage(StrictMessage, DualMessage):
    """A ``DualMessage`` whose ``as_type``/``as_int``/… insist on the typename (``strict_message_types``)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[typing.Any, ...]:
        return (strict_dual_message, (self.target_typename, self.target_id, self.typed_value))


def strict_dual_message(
    target_typename: str, target_id: str, typed_value: TypedValue
) -> StrictDualMessage:
    """``dual_message`` for a handler made with ``strict_message_types=True``."""
    message: StrictDualMessage = _new(StrictDualMessage)
    message.target_typename = target_typename
    message.target_id = target_id
    message._typed_value = typed_value
    return message
