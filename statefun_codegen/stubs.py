"""What protoc's ``_pb2`` modules cannot express, found from the descriptors, and the repairs.

protoc accepts names that its Python output cannot carry: a keyword as an enum
value writes ``None: _ClassVar[E]`` into the stub (a syntax error), a field named
``bytes`` makes every ``bytes`` annotation in its class mean the field, a field
named ``SerializeToString`` replaces the method at run time, a top-level enum
value ``DESCRIPTOR`` replaces the module's descriptor. Each such name is either
repaired in the stub (the fix is certain) or refused at its declaration (when no
stub could be right). The checks read descriptors only, so they cost nothing on
large schemas; the repairs touch a stub only when its file needs one.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2

from .protoc_runner import default_json_name
from .schema import walk_messages

# Names a generated message class has (upb and pure-Python implementations together):
# a field, nested type or enum value with one of them breaks the class.
MESSAGE_ATTRIBUTES = frozenset(
    {
        "ByteSize",
        "Clear",
        "ClearExtension",
        "ClearField",
        "CopyFrom",
        "DESCRIPTOR",
        "DiscardUnknownFields",
        "Extensions",
        "FindInitializationErrors",
        "FromString",
        "HasExtension",
        "HasField",
        "IsInitialized",
        "ListFields",
        "MergeFrom",
        "MergeFromString",
        "ParseFromString",
        "RegisterExtension",
        "SerializePartialToString",
        "SerializeToString",
        "SetInParent",
        "UnknownFields",
        "WhichOneof",
        "_AssureWritable",
        "_CheckCalledFromGeneratedFile",
        "_InternalParse",
        "_InternalSerialize",
        "_ListFieldsItemKey",
        "_Modified",
        "_SetFrozen",
        "_SetListener",
        "_UpdateOneofState",
        "_cached_byte_size",
        "_cached_byte_size_dirty",
        "_extensions_by_name",
        "_extensions_by_number",
        "_fields",
        "_fields_by_tag",
        "_frozen",
        "_is_present_in_parent",
        "_listener",
        "_listener_for_children",
        "_message_set_decoders_by_tag",
        "_oneofs",
        "_unknown_fields",
    }
)
# The builtins protoc's stubs name unqualified in annotations.
ANNOTATION_BUILTINS = frozenset({"bool", "bytes", "float", "int", "str"})
# Names that can never be attributes in Python source (protoc writes them anyway).
UNWRITABLE = frozenset(keyword.kwlist) | {"__debug__"}
# Names our repairs add to a stub.
REPAIR_ALIASES = frozenset({"_Any", "_builtins"})
_SPECIAL = UNWRITABLE | MESSAGE_ATTRIBUTES | ANNOTATION_BUILTINS

_IMPORT_ALIAS = re.compile(r"^(?:from [\w.]+ )?import [\w.]+ as (\w+)$", re.MULTILINE)
_TYPING_NAMES = re.compile(r"^from [\w.]+ import (.+ as .+)$", re.MULTILINE)
_MODULE_ASSIGNMENT = re.compile(r"^(\w+) = ", re.MULTILINE)

# descriptor.proto field numbers, for SourceCodeInfo paths
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE, _FILE_EXTENSION = 4, 5, 6, 7
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM, _MESSAGE_EXTENSION = 2, 3, 4, 6
_ENUM_VALUE = 2


@dataclass(frozen=True)
class Problem:
    path: tuple[int, ...]  # SourceCodeInfo path of the declaration
    message: str
    severity: str = "error"
    hint: str = ""


@dataclass
class Repairs:
    drop_unwritable: bool = False  # enum values / extensions named None, True, class ...
    typed_kwargs: bool = False  # keyword-named fields: protoc's bare **kwargs
    module_classvars: bool = False  # top-level extensions: ClassVar outside a class
    drop_extension_dicts: bool = False  # 'Extensions: _python_message._ExtensionDict'
    qualified_builtins: bool = False  # a class defines str, bytes ...: write _builtins.str
    drop_services: bool = False  # py_generic_services: protoc's untyped service classes

    @property
    def any(self) -> bool:
        return any(
            (
                self.drop_unwritable,
                self.typed_kwargs,
                self.module_classvars,
                self.drop_extension_dicts,
                self.qualified_builtins,
                self.drop_services,
            )
        )


@dataclass
class _Scope:
    what: str  # "the module" or "message pkg.Msg"
    # name -> (path, kind, the member's own name: differs for a field's number constant)
    names: dict[str, tuple[tuple[int, ...], str, str]] = field(default_factory=dict)

    def define(
        self, name: str, path: tuple[int, ...], kind: str, problems: list[Problem], owner: str = ""
    ) -> None:
        previous = self.names.get(name)
        if previous is not None:
            problems.append(
                Problem(
                    path,
                    f"{_label(kind, name, owner)} gives {self.what} a second '{name}' in the "
                    f"generated Python (the first comes from {_label(previous[1], name, previous[2])}); "
                    "rename one",
                )
            )
            return
        self.names[name] = (path, kind, owner or name)


def _label(kind: str, name: str, owner: str) -> str:
    """How a member is named in a message (built only when there is something to report)."""
    if owner and owner != name:
        return f"the number constant of {kind} '{owner}'"
    return f"{kind} '{name}'"


def module_bound_names(py_text: str, pyi_text: str) -> frozenset[str]:
    """Names protoc's own module code binds at the top level of the .py and the .pyi."""
    heads = [py_text.partition("\nDESCRIPTOR")[0], pyi_text.partition("\nDESCRIPTOR")[0]]
    names = {"DESCRIPTOR", "_globals"} | REPAIR_ALIASES
    for head in heads:
        names.update(_IMPORT_ALIAS.findall(head))
        names.update(_MODULE_ASSIGNMENT.findall(head))
        for group in _TYPING_NAMES.findall(head):
            names.update(part.split(" as ")[-1].strip() for part in group.split(","))
    return frozenset(names)


def analyse(
    file: descriptor_pb2.FileDescriptorProto,
    py_text: str,
    pyi_text: str,
    keyword_types: frozenset[str],
) -> tuple[list[Problem], Repairs]:
    """Problems in ``file`` no stub can express, and the stub repairs it needs.

    ``keyword_types`` are full names (with a leading dot) of types in other files whose
    names hold a keyword: a field of ours referring to one cannot be typed either.
    """
    problems: list[Problem] = []
    repairs = Repairs()
    bound = module_bound_names(py_text, pyi_text)
    module = _Scope("the module")
    prefix = f".{file.package}." if file.package else "."
    top_names = {m.name for m in file.message_type} | {e.name for e in file.enum_type}

    def module_name(name: str, path: tuple[int, ...], kind: str, is_type: bool) -> None:
        if name in UNWRITABLE:
            if is_type:
                problems.append(
                    Problem(
                        path,
                        f"{kind} name '{name}' is a Python keyword, so the generated Python "
                        "could not name it; rename it",
                    )
                )
            else:
                repairs.drop_unwritable = True
            return
        if name in bound:
            problems.append(
                Problem(
                    path,
                    f"{kind} '{name}' would replace the '{name}' that the generated _pb2 "
                    "module defines for itself, breaking it; rename it",
                )
            )
            return
        if name in ANNOTATION_BUILTINS:
            problems.append(
                Problem(
                    path,
                    f"{kind} '{name}' has the name of the Python type {name}, which the "
                    "generated stub also uses in its annotations, so neither could be typed; "
                    "rename it",
                )
            )
            return
        module.define(name, path, kind, problems)

    for index, message in enumerate(file.message_type):
        module_name(message.name, (_FILE_MESSAGE, index), "message", True)
    for index, enum in enumerate(file.enum_type):
        module_name(enum.name, (_FILE_ENUM, index), "enum", True)
        for value_index, value in enumerate(enum.value):
            value_path = (_FILE_ENUM, index, _ENUM_VALUE, value_index)
            module_name(value.name, value_path, "enum value", False)
    for index, service in enumerate(file.service):
        module_name(service.name, (_FILE_SERVICE, index), "service", True)
    if file.service and file.options.py_generic_services:
        repairs.drop_services = True
        problems.append(
            Problem(
                (8,),  # the file's options
                "py_generic_services makes protoc write service classes its stub cannot type "
                "(they subclass the untyped google.protobuf.service), so the stub leaves them "
                "out; they still exist at run time",
                "warning",
                "the option is deprecated in protobuf; drop it unless you use the classes",
            )
        )
    for index, extension in enumerate(file.extension):
        repairs.module_classvars = True
        module_name(extension.name, (_FILE_EXTENSION, index), "extension", False)
        number_name = f"{extension.name.upper()}_FIELD_NUMBER"
        module_name(number_name, (_FILE_EXTENSION, index), "extension", False)
    for path, qualname, message in walk_messages(file.message_type, (_FILE_MESSAGE,), ""):
        _check_message(
            message, path, qualname, prefix, top_names, bound, keyword_types, problems, repairs
        )
    return problems, repairs


def _check_message(
    message: descriptor_pb2.DescriptorProto,
    path: tuple[int, ...],
    qualname: str,
    prefix: str,
    top_names: set[str],
    bound: frozenset[str],
    keyword_types: frozenset[str],
    problems: list[Problem],
    repairs: Repairs,
) -> None:
    what = f"message {prefix[1:]}{qualname}"
    scope = _Scope(what)
    # names this class's annotations (and its nested classes' bases) refer to unqualified
    referenced = set(bound)

    def root(type_name: str) -> str | None:
        """The top-level name of this file that a stub writes first for ``type_name``."""
        if not type_name.startswith(prefix):
            return None
        first = type_name[len(prefix) :].split(".")[0]
        return first if first in top_names else None

    if message.extension_range:
        repairs.drop_extension_dicts = True
    check_json = not message.options.deprecated_legacy_json_field_conflicts
    json_names: dict[str, str] = {}

    def member(name: str, member_path: tuple[int, ...], kind: str, owner: str = "") -> None:
        if name not in _SPECIAL and name[:2] != "__":  # the common case, first
            scope.define(name, member_path, kind, problems, owner)
            return
        if name in UNWRITABLE:
            if kind == "field":
                repairs.typed_kwargs = True
            elif kind in ("enum value", "extension"):
                repairs.drop_unwritable = True
            else:
                problems.append(
                    Problem(
                        member_path,
                        f"{kind} name '{name}' is a Python keyword, so the generated Python "
                        "could not name it; rename it",
                    )
                )
            return
        if name in MESSAGE_ATTRIBUTES or (name.startswith("__") and name.endswith("__")):
            problems.append(
                Problem(
                    member_path,
                    f"{kind} '{name}' of {what} would replace the protobuf message's own "
                    f"'{name}', breaking the generated class; rename it",
                )
            )
            return
        if name in ANNOTATION_BUILTINS:
            repairs.qualified_builtins = True
        scope.define(name, member_path, kind, problems, owner)

    for index, item in enumerate(message.field):
        name, type_name = item.name, item.type_name
        field_path = (*path, _MESSAGE_FIELD, index)
        member(name, field_path, "field")
        member(f"{name.upper()}_FIELD_NUMBER", field_path, "field", name)
        if check_json:
            json_name = item.json_name or default_json_name(name)
            other = json_names.setdefault(json_name, name)
            if other != name:
                problems.append(
                    Problem(
                        field_path,
                        f"field '{name}' of {what} has the JSON name '{json_name}', as "
                        f"field '{other}' has, so the protobuf runtime refuses to load the "
                        "module (duplicate json_name)",
                        hint="rename one of the fields, or give one its own json_name",
                    )
                )
        if not type_name:
            continue
        if type_name in keyword_types:
            problems.append(
                Problem(
                    field_path,
                    f"field '{name}' of {what} has the type {type_name[1:]}, "
                    "whose name is a Python keyword, so its stub could not name it",
                )
            )
        used = root(type_name)
        if used is not None:
            referenced.add(used)
    for index, nested in enumerate(message.nested_type):
        member(nested.name, (*path, _MESSAGE_NESTED, index), "nested message")
    for index, enum in enumerate(message.enum_type):
        enum_path = (*path, _MESSAGE_ENUM, index)
        member(enum.name, enum_path, "nested enum")
        referenced.add(qualname.split(".")[0])  # its values are annotated Outer.E here
        for value_index, value in enumerate(enum.value):
            member(value.name, (*enum_path, _ENUM_VALUE, value_index), "enum value")
    for index, extension in enumerate(message.extension):
        extension_path = (*path, _MESSAGE_EXTENSION, index)
        member(extension.name, extension_path, "extension")
        member(f"{extension.name.upper()}_FIELD_NUMBER", extension_path, "extension")
    for name in referenced & scope.names.keys():
        member_path, kind, owner = scope.names[name]
        problems.append(
            Problem(
                member_path,
                f"{_label(kind, name, owner)} of {what} hides the '{name}' that the class's "
                "generated stub refers to, so its annotations would mean this member; "
                "rename it",
            )
        )


def repair(text: str, repairs: Repairs) -> str:
    """Apply the repairs ``analyse`` asked for to protoc's stub text."""
    if not repairs.any:
        return text
    if repairs.drop_unwritable:
        names = "|".join(sorted(map(re.escape, UNWRITABLE)))
        text = re.sub(rf"^ *(?:{names}): [^\n]*\n", "", text, flags=re.MULTILINE)
    if repairs.drop_extension_dicts:
        text = re.sub(
            r"^ *Extensions: _python_message\._ExtensionDict\n", "", text, flags=re.MULTILINE
        )
    if repairs.module_classvars:
        text = re.sub(
            r"^(\w+_FIELD_NUMBER): _ClassVar\[int\]$", r"\1: int", text, flags=re.MULTILINE
        )
    if repairs.typed_kwargs:
        text = text.replace(", **kwargs) -> None: ...", ", **kwargs: _Any) -> None: ...")
        text = text.replace("(self, **kwargs) -> None: ...", "(self, **kwargs: _Any) -> None: ...")
        text = add_import(text, "from typing import Any as _Any")
    if repairs.qualified_builtins:
        text = _qualify_builtins(text)
        text = add_import(text, "import builtins as _builtins")
    if repairs.drop_services:
        text = re.sub(r"^class \w+\(_service\.service\): \.\.\.\n\n?", "", text, flags=re.MULTILINE)
        text = re.sub(r"^class \w+_Stub\(\w+\): \.\.\.\n\n?", "", text, flags=re.MULTILINE)
        text = text.replace("from google.protobuf import service as _service\n", "")
    return text.rstrip("\n") + "\n" if repairs.drop_services else text


# An unqualified builtin in an annotation or a base list: not an attribute or parameter
# name (those are followed by ':'), not a class being defined (a nested message named
# bytes), not inside a string, not part of a dotted name.
_BUILTIN_REFERENCE = re.compile(
    r"(?<![\w.'\"])(?<!class )(" + "|".join(sorted(ANNOTATION_BUILTINS)) + r")(?![\w'\"]|\s*:)"
)


def _qualify_builtins(text: str) -> str:
    head, sep, body = text.partition("\nDESCRIPTOR")
    lines = body.split("\n")
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("#", '"')) or not stripped:
            continue
        lines[index] = _BUILTIN_REFERENCE.sub(r"_builtins.\1", line)
    return head + sep + "\n".join(lines)


def add_import(text: str, line: str) -> str:
    """Add an import line after the stub's imports (once)."""
    if line in text:
        return text
    head, sep, body = text.partition("\nDESCRIPTOR")
    return f"{head}\n{line}{sep}{body}" if sep else f"{line}\n{text}"


assert not (ANNOTATION_BUILTINS - set(dir(builtins)))
