"""Turning ingress values given as JSON into bytes, and egress bytes into JSON, per typename.

The runtime only knows typenames. Protobuf message types become known when their Python
modules are imported (``--proto-module pkg.messages_pb2``): then a JSON ingress value is
converted with json_format, and an egress can be decoded back to JSON (``--egress-type``).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import sys
from typing import Any

from google.protobuf import descriptor_pool, json_format, message, message_factory
from google.protobuf.descriptor import FieldDescriptor

from statefun.local.errors import ConfigError

PROTOBUF_PREFIX = "type.googleapis.com/"


class RecordError(ValueError):
    """An ingress record that can not be turned into a message; the text says why."""


def import_proto_modules(names: list[str]) -> None:
    """Import _pb2 modules by name; the current directory counts, as it does for python -m."""
    if names and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        _classes.clear()  # types unknown so far may be known after this import
        try:
            importlib.import_module(name)
        except Exception as error:  # any import failure is a user configuration problem
            raise ConfigError(f"--proto-module {name}: can not import it: {error}") from None


_classes: dict[str, type[message.Message] | None] = {}


def message_class(typename: str) -> type[message.Message] | None:
    """The protobuf class for 'type.googleapis.com/pkg.Msg' (or any 'prefix/pkg.Msg'), if loaded."""
    if typename not in _classes:
        _classes[typename] = _find_class(typename)
    return _classes[typename]


def _find_class(typename: str) -> type[message.Message] | None:
    full_name = typename.rpartition("/")[2]
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        return None
    return message_factory.GetMessageClass(descriptor)


def require_message_class(typename: str, option: str) -> type[message.Message]:
    cls = message_class(typename)
    if cls is None:
        raise ConfigError(
            f"{option}: protobuf message {typename.rpartition('/')[2]!r} is not known; "
            "import its _pb2 module with --proto-module"
        )
    return cls


# Fields whose JSON form is the Python value itself, so json_format's general (and slow) path
# can be skipped for messages made only of them: string, bool and 32-bit integers. 64-bit
# integers (strings in JSON), floats, bytes (base64), enums and messages take the general path.
_PLAIN_KINDS: dict[int, type] = {
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_BOOL: bool,
    FieldDescriptor.TYPE_INT32: int,
    FieldDescriptor.TYPE_SINT32: int,
    FieldDescriptor.TYPE_SFIXED32: int,
    FieldDescriptor.TYPE_UINT32: int,
    FieldDescriptor.TYPE_FIXED32: int,
}
_plain_messages: dict[type[message.Message], dict[str, type] | None] = {}


def _simple_fields(cls: type[message.Message]) -> dict[str, type] | None:
    """Field name → Python type, if every field of the message is a plain singular scalar."""
    if cls not in _plain_messages:
        fields: dict[str, type] | None = {}
        for field in cls.DESCRIPTOR.fields:
            repeated = getattr(field, "is_repeated", None)
            if repeated is None:  # protobuf before `is_repeated`
                repeated = getattr(field, "label", 0) == 3  # LABEL_REPEATED
            kind = _PLAIN_KINDS.get(field.type)
            if repeated or kind is None or fields is None:
                fields = None
                continue
            fields[field.name] = kind
        _plain_messages[cls] = fields
    return _plain_messages[cls]


def _construct_simple(cls: type[message.Message], value: dict[str, Any]) -> bytes | None:
    """The message's bytes when json_format would read `value` exactly as the constructor does;
    None to take json_format's path (which also produces the error messages)."""
    fields = _simple_fields(cls)
    if fields is None:
        return None
    for key, item in value.items():
        if type(item) is not fields.get(key):  # `type is`: a bool is not an integer here
            return None
    try:
        return cls(**value).SerializeToString()
    except (ValueError, TypeError):  # e.g. an integer out of range
        return None


def encode_value(record: dict[str, Any], value_type: str) -> bytes:
    """The bytes of an ingress record's value, as a Kafka/Kinesis record would carry them."""
    if "value_base64" in record:
        try:
            return base64.b64decode(str(record["value_base64"]), validate=True)
        except ValueError:
            raise RecordError("'value_base64' is not valid base64") from None
    if "value" not in record:
        raise RecordError("the record has no 'value' (or 'value_base64')")
    value = record["value"]
    if isinstance(value, str):
        return value.encode("utf-8")
    cls = message_class(value_type)
    if cls is not None:
        if not isinstance(value, dict):
            raise RecordError(
                f"{value_type} is a protobuf message; give its value as a JSON object"
            )
        fast = _construct_simple(cls, value)
        if fast is not None:
            return fast
        try:
            return json_format.ParseDict(value, cls()).SerializeToString()
        except json_format.ParseError as error:
            raise RecordError(f"value does not fit {value_type}: {error}") from None
    if value_type.startswith(PROTOBUF_PREFIX):
        raise RecordError(
            f"{value_type} names a protobuf message the runtime does not know: import its _pb2 "
            "module with --proto-module to give the value as JSON, or give 'value_base64'"
        )
    # Same bytes as the SDK's make_json_type: json.dumps, UTF-8.
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def describe_bytes(data: bytes, cls: type[message.Message] | None) -> dict[str, Any]:
    """JSON fields for an egress value: decoded message, UTF-8 text, or base64."""
    if cls is not None:
        try:
            parsed = cls.FromString(data)
            if _simple_fields(cls) is not None:
                return {"value": {field.name: value for field, value in parsed.ListFields()}}
            return {"value": json_format.MessageToDict(parsed, preserving_proto_field_name=True)}
        except message.DecodeError:
            pass
    try:
        return {"value": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"value_base64": base64.b64encode(data).decode("ascii")}
