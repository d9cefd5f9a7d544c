"""Turning ingress values given as JSON into bytes, and egress bytes into JSON, per typename.

The runtime only knows typenames. Protobuf message types become known when their Python
modules are imported (``--proto-module pkg.messages_pb2``, or found next to module.yaml by
``discover_proto_modules``): then a JSON ingress value is converted with json_format, and an
egress can be decoded back to JSON (``--egress-type``).
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
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


def discover_proto_modules(module_file: str) -> tuple[list[str], list[str]]:
    """Import the ``*_pb2.py`` modules of the package that holds module_file (its directory and
    the subpackages below it), under their dotted package name so relative imports work.

    Nothing but files named ``*_pb2.py`` is imported (plus the package ``__init__`` files Python
    runs on the way). Returns the names imported and one warning per module that was not.
    """
    package_dir = os.path.dirname(os.path.abspath(module_file))
    if not os.path.isfile(os.path.join(package_dir, "__init__.py")):
        return [], []
    files = _pb2_files(package_dir)
    if not files:
        return [], []
    root = package_dir  # the top of the regular package: walk up while __init__.py exists
    while True:
        parent = os.path.dirname(root)
        if parent == root or not os.path.isfile(os.path.join(parent, "__init__.py")):
            break
        root = parent
    package = _package_name(root)
    loaded: list[str] = []
    warnings: list[str] = []
    for path in files:
        name = ".".join([*package, *os.path.relpath(path, root)[: -len(".py")].split(os.sep)])
        _classes.clear()  # types unknown so far may be known after this import
        try:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
            if origin is None or not os.path.samefile(origin, path):
                warnings.append(
                    f"{path}: not loaded: the module {name} is "
                    f"{origin or 'not found'}; import it with --proto-module"
                )
                continue
            importlib.import_module(name)
        except Exception as error:  # a broken module of the user's: say so and go on
            warnings.append(
                f"{path}: not loaded: importing {name} failed: {type(error).__name__}: {error}"
            )
            continue
        loaded.append(name)
    return loaded, warnings


def _pb2_files(package_dir: str) -> list[str]:
    """The *_pb2.py files of a package and of its subpackages (directories with __init__.py)."""
    found: list[str] = []
    for directory, subdirectories, names in os.walk(package_dir):
        subdirectories[:] = sorted(
            sub
            for sub in subdirectories
            if sub.isidentifier() and os.path.isfile(os.path.join(directory, sub, "__init__.py"))
        )
        for name in sorted(names):
            if name.endswith("_pb2.py") and name[: -len(".py")].isidentifier():
                found.append(os.path.join(directory, name))
    return found


def _package_name(root: str) -> list[str]:
    """The dotted name of the package at `root`, as parts, making it importable if needed.

    Preferred: a name through an entry of sys.path or the current directory (which counts, as
    for python -m), e.g. `examples.greeter` for ./examples/greeter when ./examples has no
    __init__.py. Otherwise root's parent directory is put on sys.path and the name is root's own.
    """
    cwd = os.getcwd()

    def on_path() -> list[str]:
        return [os.path.abspath(entry or cwd) for entry in sys.path if isinstance(entry, str)]

    parent = os.path.dirname(root)
    for base in sorted({*on_path(), cwd}, key=len, reverse=True):  # the closest base first
        relative = os.path.relpath(parent, base)
        parts = [] if relative == os.curdir else relative.split(os.sep)
        if parts and (parts[0] == os.pardir or not all(part.isidentifier() for part in parts)):
            continue
        parts.append(os.path.basename(root))
        added = base not in on_path()
        if added:
            sys.path.insert(0, base)
        # The top-level name must lead to this directory before anything is imported through it
        # (finding a top-level spec imports nothing); then the parents are namespace packages.
        if _is_package_at(parts[0], os.path.join(base, parts[0])) and (
            len(parts) == 1 or _is_package_at(".".join(parts), root)
        ):
            return parts
        if added:
            sys.path.remove(base)
    if parent not in on_path():
        sys.path.insert(0, parent)
    return [os.path.basename(root)]


def _is_package_at(name: str, directory: str) -> bool:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # e.g. a parent that is not a package
        return False
    locations = spec.submodule_search_locations if spec is not None else None
    wanted = os.path.realpath(directory)
    return any(os.path.realpath(str(place)) == wanted for place in locations or [])


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
