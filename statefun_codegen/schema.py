"""An index of the messages in the descriptors, with their comments and positions.

SourceCodeInfo is indexed once per file by location path (a dict), so finding
the comment or the position of any element is a lookup, never a scan.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.protobuf import descriptor_pb2

from .diagnostics import Diagnostic, Location
from .protoc_runner import ProtoInput, module_parts

_MESSAGE_TYPE = 4
_NESTED_TYPE = 3
_FIELD = 2
_PACKAGE = 2
_SYNTAX = 12
_EDITION = 14


@dataclass(frozen=True, eq=False)
class PyModule:
    """A ``_pb2`` module as generated code imports it."""

    alias: str  # name bound in the importing module
    package: str  # dotted package of the module inside the generated package ("" = root)
    name: str  # module name, e.g. "money_pb2"
    absolute: bool  # True: import from the absolute package (well-known types, foreign files)

    def import_line(self, level: int) -> str:
        """The import statement for a module ``level`` packages below the generated root."""
        if self.absolute:
            source = self.package
        else:
            source = "." * (level + 1) + self.package
        return f"from {source} import {self.name} as {self.alias}"


@dataclass(frozen=True, eq=False)
class MessageInfo:
    full_name: str
    qualname: str  # name inside its file's package, e.g. "Outer.Inner"
    proto_file: str
    module: PyModule
    doc: str
    location: Location
    is_map_entry: bool
    ours: bool  # declared in a file being generated

    @property
    def python_ref(self) -> str:
        return f"{self.module.alias}.{self.qualname}"


class Schema:
    """Messages by full name, plus per-file comment lookups."""

    def __init__(self, proto_input: ProtoInput) -> None:
        self.input = proto_input
        self.generated = set(proto_input.to_generate)
        self.messages: dict[str, MessageInfo] = {}
        self._stub_docs: dict[str, dict[str, str]] = {}
        self._field_docs: dict[str, dict[tuple[str, str], str]] = {}
        self._file_docs: dict[str, str] = {}
        self._file_modules: dict[str, PyModule] = {}
        self._files = {file.name: file for file in proto_input.files}
        self._all_locations: dict[str, dict[tuple[int, ...], list[int]]] = {}
        self._declarations: dict[str, Location] = {}
        self.warnings: list[Diagnostic] = []
        for file in proto_input.files:
            self._index_file(file)

    def _index_file(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        locations = _message_locations(file.source_code_info)
        module = _module_for(file.name, file.name in self.generated)
        self._file_modules[file.name] = module
        display = self.input.display_path(file.name)
        ours = file.name in self.generated

        def comment(location: descriptor_pb2.SourceCodeInfo.Location | None) -> str:
            text, valid = _comment(location)
            if not valid and ours and location is not None:
                self.warnings.append(
                    Diagnostic(
                        _span_location(display, list(location.span)),
                        "this comment is not valid UTF-8; its docstring shows the bad bytes "
                        "as U+FFFD",
                        "warning",
                        "save the .proto file as UTF-8",
                    )
                )
            return text

        docs: dict[str, str] = {}
        field_docs: dict[tuple[str, str], str] = {}
        self._file_docs[file.name] = comment(locations.get((_PACKAGE,))) or comment(
            locations.get((_SYNTAX,))
        )
        declaration = next(
            (locations[p] for p in ((_PACKAGE,), (_SYNTAX,), (_EDITION,)) if p in locations), None
        )
        self._declarations[file.name] = (
            _span_location(display, list(declaration.span)) if declaration else Location(display)
        )
        for path, qualname, message in walk_messages(file.message_type, (_MESSAGE_TYPE,), ""):
            location = locations.get(path)
            span = list(location.span) if location is not None else []
            doc = comment(location)
            full_name = f"{file.package}.{qualname}" if file.package else qualname
            self.messages[full_name] = MessageInfo(
                full_name=full_name,
                qualname=qualname,
                proto_file=file.name,
                module=module,
                doc=doc,
                location=Location(display, span[0] + 1, span[1] + 1) if span else Location(display),
                is_map_entry=message.options.map_entry,
                ours=file.name in self.generated,
            )
            if doc:
                docs[qualname] = doc
            for index, field in enumerate(message.field):
                field_doc = comment(locations.get((*path, _FIELD, index)))
                if field_doc:
                    field_docs[(qualname, field.name)] = field_doc
        self._stub_docs[file.name] = docs
        self._field_docs[file.name] = field_docs

    def stub_docstrings(self, proto_name: str) -> dict[str, str]:
        return self._stub_docs.get(proto_name, {})

    def field_docstrings(self, proto_name: str) -> dict[tuple[str, str], str]:
        """(message qualname, field name) -> docstring, for fields with comments."""
        return self._field_docs.get(proto_name, {})

    def messages_module(self, proto_name: str) -> PyModule:
        return self._file_modules[proto_name]

    def file_doc(self, proto_name: str) -> str:
        return self._file_docs.get(proto_name, "")

    def file(self, proto_name: str) -> descriptor_pb2.FileDescriptorProto:
        return self._files[proto_name]

    def location(self, proto_name: str, path: tuple[int, ...] = ()) -> Location:
        """Where the element at SourceCodeInfo ``path`` is declared (its name, when known).

        The whole index is built only for files that have a problem to report.
        """
        if not path and proto_name in self._declarations:
            return self._declarations[proto_name]
        display = self.input.display_path(proto_name)
        index = self._all_locations.get(proto_name)
        if index is None:
            file = self._files.get(proto_name)
            index = {}
            if file is not None:
                for location in file.source_code_info.location:
                    index.setdefault(tuple(location.path), list(location.span))
            self._all_locations[proto_name] = index
        candidates: list[tuple[int, ...]] = [(*path, 1), path]  # its name (field 1), else it
        if not path:
            candidates = [(_PACKAGE,), (_SYNTAX,), (_EDITION,)]
        for candidate in candidates:
            if candidate in index:
                return _span_location(display, index[candidate])
        return Location(display, 1, 1)

    def our_messages(self) -> list[MessageInfo]:
        return sorted(
            (m for m in self.messages.values() if m.ours and not m.is_map_entry),
            key=lambda m: m.full_name,
        )


def _message_locations(
    info: descriptor_pb2.SourceCodeInfo,
) -> dict[tuple[int, ...], descriptor_pb2.SourceCodeInfo.Location]:
    """Index, once, the locations we look up: messages (any depth), their fields, package, syntax.

    Fields, options and spans inside them are most of a file's locations; a
    cheap shape test skips them before any tuple is built.
    """
    index: dict[tuple[int, ...], descriptor_pb2.SourceCodeInfo.Location] = {}
    for location in info.location:
        path = location.path
        size = len(path)
        if size == 1 or (
            size >= 2
            and size % 2 == 0
            and path[0] == _MESSAGE_TYPE
            and (size == 2 or path[size - 2] in (_NESTED_TYPE, _FIELD))
        ):
            index[tuple(path)] = location
    return index


def walk_messages(
    messages: Iterable[descriptor_pb2.DescriptorProto], prefix: tuple[int, ...], parent: str
) -> Iterator[tuple[tuple[int, ...], str, descriptor_pb2.DescriptorProto]]:
    """Every message at any depth: (SourceCodeInfo path, qualname inside the package, it)."""
    for index, message in enumerate(messages):
        path = (*prefix, index)
        qualname = f"{parent}.{message.name}" if parent else message.name
        yield path, qualname, message
        yield from walk_messages(message.nested_type, (*path, _NESTED_TYPE), qualname)


def _span_location(path: str, span: list[int]) -> Location:
    return Location(path, span[0] + 1, span[1] + 1) if len(span) >= 2 else Location(path, 1, 1)


def _module_for(proto_name: str, ours: bool) -> PyModule:
    parts = module_parts(proto_name)  # protoc's own module naming
    alias = "_".join(parts)
    if not ours:
        alias = "_" + alias
    return PyModule(alias=alias, package=".".join(parts[:-1]), name=parts[-1], absolute=not ours)


def proto_path_problem(proto_name: str) -> str | None:
    """Why a .proto path cannot become an importable module path, if it cannot."""
    for part in module_parts(proto_name):
        if not part:
            return (
                f"the path {proto_name} has an empty part (two dots or slashes in a row, or "
                "a leading dot), so protoc's module path for it cannot be imported; rename it"
            )
        if not (part.isascii() and part.isidentifier()) or keyword.iskeyword(part):
            why = (
                "is a Python keyword"
                if keyword.iskeyword(part)
                else (
                    "starts with a digit"
                    if part[:1].isdigit()
                    else "is not an ASCII Python identifier"
                )
            )
            return (
                f"'{part}' in the path of {proto_name} {why}, so its generated module "
                "could not be imported; rename the file or directory"
            )
    return None


def clean_comment(text: str) -> str:
    """Comment text as protoc keeps it -> docstring body (one space removed, escaped).

    Control and format characters (bidirectional overrides among them) are written as
    escapes, so the source shows what the docstring holds.
    """
    lines = [line[1:] if line.startswith(" ") else line for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    body = "\n".join(line.rstrip() for line in lines)
    body = body.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if not _PLAIN_TEXT.match(body):  # most comments: nothing to escape, skip the char walk
        body = "".join(_visible(char) for char in body)
    if body.endswith('"'):
        body += " "
    return body


_PLAIN_TEXT = re.compile(r"[\t\n\x20-\x7e]*\Z")


def _visible(char: str) -> str:
    if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp"):
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _comment(location: descriptor_pb2.SourceCodeInfo.Location | None) -> tuple[str, bool]:
    """The comment's docstring text, and whether its bytes were valid UTF-8."""
    if location is None:
        return "", True
    raw: str | bytes = location.leading_comments or location.trailing_comments
    valid = True
    if isinstance(raw, bytes):  # protobuf hands out invalid UTF-8 in a string field as bytes
        raw, valid = raw.decode("utf-8", "replace"), False
    return (clean_comment(raw) if raw else ""), valid
