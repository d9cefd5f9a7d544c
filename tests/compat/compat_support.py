"""Shared by the compat tests: the seeds' protobuf messages and ToFunction/FromFunction helpers.

The seed pages use ``User``, ``Admin``, ``Count``, ``Response`` and the
walkthrough's ``GreetRequest``/``GreetResponse``/``SeenCount`` (package
``example``) without defining them all; they are built here from a descriptor
in a private pool, so no protoc run or generated module is needed and the
classes cannot clash with another test's ``example`` package.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types
import typing

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message as ProtobufMessage

from statefun.request_reply_pb2 import Address, FromFunction, ToFunction, TypedValue

ANY_STATE_TYPENAME = "type.googleapis.com/google.protobuf.Any"

_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_INT64 = descriptor_pb2.FieldDescriptorProto.TYPE_INT64

_MESSAGES: dict[str, list[tuple[str, int, int]]] = {
    "User": [("user_id", 1, _STRING), ("name", 2, _STRING)],
    "Admin": [("name", 1, _STRING)],
    "Count": [("value", 1, _INT64)],
    "Response": [("message", 1, _STRING)],
    "GreetRequest": [("name", 1, _STRING)],
    "GreetResponse": [("name", 1, _STRING), ("greeting", 2, _STRING)],
    "SeenCount": [("seen", 1, _INT64)],
    # For the compat tests' own 2.x-style programs.
    "Item": [("sku", 1, _STRING), ("quantity", 2, _INT64)],
    "Total": [("value", 1, _INT64)],
}


def _build_classes() -> dict[str, type[ProtobufMessage]]:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="compat_examples.proto", package="example", syntax="proto3"
    )
    for message_name, fields in _MESSAGES.items():
        message_proto = file_proto.message_type.add(name=message_name)
        for field_name, number, field_type in fields:
            message_proto.field.add(
                name=field_name,
                number=number,
                type=field_type,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"example.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _build_classes()
CLASSES_BY_NAME: dict[str, type[ProtobufMessage]] = {
    cls.DESCRIPTOR.full_name: cls for cls in _CLASSES.values()
}
User: typing.Any = _CLASSES["User"]
Admin: typing.Any = _CLASSES["Admin"]
CountMessage: typing.Any = _CLASSES["Count"]
Response: typing.Any = _CLASSES["Response"]
GreetRequest: typing.Any = _CLASSES["GreetRequest"]
GreetResponse: typing.Any = _CLASSES["GreetResponse"]
SeenCount: typing.Any = _CLASSES["SeenCount"]
Item: typing.Any = _CLASSES["Item"]
Total: typing.Any = _CLASSES["Total"]


def Count(value: int) -> ProtobufMessage:
    """``Count(1)`` as the seed's count_greeter writes it (protobuf forbids positional args)."""
    return typing.cast(ProtobufMessage, CountMessage(value=value))


def type_url(message_class: typing.Any) -> str:
    return f"type.googleapis.com/{message_class.DESCRIPTOR.full_name}"


def typed(message: ProtobufMessage, typename: str | None = None) -> TypedValue:
    """A message as the runtime carries it: protobuf typenames are ``type.googleapis.com/<name>``."""
    return TypedValue(
        typename=typename or type_url(type(message)),
        has_value=True,
        value=message.SerializeToString(),
    )


def packed(message: ProtobufMessage) -> Any:
    envelope = Any()
    envelope.Pack(message)
    return envelope


def any_state(message: ProtobufMessage) -> TypedValue:
    """A 2.x state value as stored by the runtime: the serialized Any, typed as Any."""
    return TypedValue(
        typename=ANY_STATE_TYPENAME, has_value=True, value=packed(message).SerializeToString()
    )


def unpacked(envelope: Any | None, message_class: typing.Any) -> typing.Any:
    """The message in a state's ``Any`` (``None`` stays ``None``), checking its type."""
    if envelope is None:
        return None
    message = message_class()
    assert envelope.Unpack(message)
    return message


def declared(functions: typing.Any, typename: str) -> list[str]:
    """The names of the states the registered function asks the runtime for, in order."""
    return [spec.name for spec in functions.for_typename(typename).storage_spec.specs]


def address(typename: str, id: str) -> Address:
    namespace, name = typename.rsplit("/", 1)
    return Address(namespace=namespace, type=name, id=id)


Invocation = tuple[typing.Optional[Address], TypedValue]


def to_function(
    typename: str,
    id: str,
    invocations: typing.Sequence[Invocation],
    state: typing.Mapping[str, TypedValue | None] | None = None,
) -> bytes:
    """A serialized ToFunction batch; a state mapped to None is attached without a value."""
    request = ToFunction()
    batch = request.invocation
    batch.target.CopyFrom(address(typename, id))
    for state_name, value in (state or {}).items():
        persisted = batch.state.add(state_name=state_name)
        if value is not None:
            persisted.state_value.CopyFrom(value)
    for caller, argument in invocations:
        invocation = batch.invocations.add(argument=argument)
        if caller is not None:
            invocation.caller.CopyFrom(caller)
    return request.SerializeToString()


def from_function(data: bytes) -> FromFunction:
    response = FromFunction()
    response.ParseFromString(data)
    return response


def unpack_any_state(value: TypedValue, message_class: typing.Any) -> typing.Any:
    """The message inside a state mutation's value, checking it is typed as Any."""
    assert value.typename == ANY_STATE_TYPENAME
    assert value.has_value
    envelope = Any()
    envelope.ParseFromString(value.value)
    assert envelope.type_url == type_url(message_class)
    message = message_class()
    message.ParseFromString(envelope.value)
    return message


SNIPPETS = pathlib.Path(__file__).resolve().parent / "seed_snippets"


def load_snippet(name: str, **names: typing.Any) -> types.ModuleType:
    """A fresh instance of a ``seed_snippets`` module; ``names`` are set before its code runs.

    Fresh, so that no test sees another's registry (or the states it discovered).
    """
    spec = importlib.util.spec_from_file_location(f"seed_snippet_{name}", SNIPPETS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(names)
    sys.path.insert(0, str(SNIPPETS))  # for the walkthrough's `from messages_pb2 import ...`
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SNIPPETS))
    return module
