"""The ``_pb2.py`` / ``.pyi`` modules, made fit for a package and for ``mypy --strict``.

protoc itself writes them (``protoc_runner`` loads its texts); we then (1) drop
the protobuf version it stamps in, so a toolchain upgrade does not churn files,
(2) turn imports between the user's own modules into relative ones, in both
files, (3) give the stubs' bare ``Mapping`` its type arguments and apply the
repairs ``stubs`` found necessary, (4) carry .proto comments into the stubs as
docstrings, and (5) add our ``@generated`` header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .protoc_runner import module_path
from .schema import Schema
from .stubs import Repairs, add_import, repair

_VERSION_PIN = re.compile(
    r"from google\.protobuf import runtime_version as _runtime_version\n"
    r"|_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:    .*\n)*?\)\n"
    r"|# Protobuf Python Version: .*\n"
    r"|# NO CHECKED-IN PROTOBUF GENCODE\n"
)
_FROM_IMPORT = re.compile(r"^from ([\w.]+) import (\w+_pb2) as (\w+)$", re.MULTILINE)
_PLAIN_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)
_STAR_IMPORT = re.compile(r"^from ([\w.]+)_pb2 import \*$", re.MULTILINE)
# a public import's names, re-exported by the stub
_NAME_IMPORT = re.compile(r"^from ([\w.]+_pb2) import (\w+) as (\w+)$", re.MULTILINE)
_STUB_LINE = re.compile(
    r"^(?P<indent> *)(?:class (?P<cls>\w+)\((?P<base>[\w.]+)[^\n]*|(?P<field>[a-z_]\w*): [^\n]*)$",
    re.MULTILINE,
)


def build_pb2_modules(
    raw: Mapping[str, str],
    to_generate: Sequence[str],
    schema: Schema,
    header: Mapping[str, str],
    repairs: Mapping[str, Repairs],
) -> dict[str, str]:
    """Relative path (inside the generated package) -> text, for every file to generate."""
    ours = {module_path(name).replace("/", ".") for name in to_generate}
    result: dict[str, str] = {}
    for name in sorted(to_generate):
        base = module_path(name)
        depth = base.count("/")
        for suffix in (".py", ".pyi"):
            text = raw[base + suffix]
            if suffix == ".py":
                text = strip_version_pin(text)
            text = _relative_imports(text, ours, depth)
            if suffix == ".pyi":
                text = typed_mappings(text)
                text = repair(text, repairs.get(name, Repairs()))
                text = _docstrings(text, schema, name)
            result[base + suffix] = header[name] + text
    return result


def strip_version_pin(text: str) -> str:
    # the pin sits in the module header; scanning only that keeps big modules cheap
    head, marker, rest = text.partition("# @@protoc_insertion_point(imports)")
    return _VERSION_PIN.sub("", head) + marker + rest


def _relative_imports(text: str, ours: set[str], depth: int) -> str:
    # imports all come before the module's DESCRIPTOR; the rest can be large
    head, sep, body = text.partition("\nDESCRIPTOR")
    return _relative_import_lines(head, ours, depth) + sep + body


def _relative_import_lines(text: str, ours: set[str], depth: int) -> str:
    dots = "." * (depth + 1)

    def from_import(match: re.Match[str]) -> str:
        package, module, alias = match.groups()
        if f"{package}.{module}" not in ours:
            return match.group(0)
        return f"from {dots}{package} import {module} as {alias}"

    def plain_import(match: re.Match[str]) -> str:
        module, alias = match.groups()
        if module not in ours:
            return match.group(0)
        return f"from {dots} import {module} as {alias}"

    def star_import(match: re.Match[str]) -> str:
        module = match.group(1) + "_pb2"
        if module not in ours:
            return match.group(0)
        return f"from {dots}{module} import *"

    def name_import(match: re.Match[str]) -> str:
        module, name, alias = match.groups()
        if module not in ours:
            return match.group(0)
        return f"from {dots}{module} import {name} as {alias}"

    text = _FROM_IMPORT.sub(from_import, text)
    text = _PLAIN_IMPORT.sub(plain_import, text)
    text = _NAME_IMPORT.sub(name_import, text)
    return _STAR_IMPORT.sub(star_import, text)


def typed_mappings(text: str) -> str:
    """protoc's stubs use a bare ``_Mapping`` (always as ``_Mapping]``) that ``--strict`` rejects."""
    head, sep, body = text.partition("\nDESCRIPTOR")
    if "_Mapping]" not in body:
        return text
    body = body.replace("_Mapping]", "_Mapping[str, _Any]]")
    return add_import(f"{head}{sep}{body}", "from typing import Any as _Any")


def _docstrings(text: str, schema: Schema, proto_name: str) -> str:
    """.proto comments become docstrings in the stub: on message classes, and after fields.

    Only class and attribute lines matter (a regex finds them without walking every
    line); the indentation of each tells which class it belongs to.
    """
    docs = schema.stub_docstrings(proto_name)
    field_docs = schema.field_docstrings(proto_name)
    if not docs and not field_docs:
        return text
    pieces: list[str] = []
    position = 0
    stack: list[tuple[int, str | None]] = []  # (indent, message class name; None for enums)
    for match in _STUB_LINE.finditer(text):
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        doc: str | None = None
        if match["cls"] is not None:
            is_message = match["base"] == "_message.Message"
            stack.append((indent, match["cls"] if is_message else None))
            if is_message:
                doc = docs.get(_qualname(stack))
                indent += 4
        elif stack and stack[-1][1] is not None and indent == stack[-1][0] + 4:
            doc = field_docs.get((_qualname(stack), match["field"]))
        if doc:
            pieces.append(text[position : match.end() + 1])
            pieces.append(_docstring_block(doc, " " * indent))
            position = match.end() + 1
    pieces.append(text[position:])
    return "".join(pieces)


def _qualname(stack: list[tuple[int, str | None]]) -> str:
    return ".".join(name or "" for _, name in stack)


def _docstring_block(doc: str, indent: str) -> str:
    lines = doc.split("\n")
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""\n'
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in lines[1:])
    return f'{indent}"""{lines[0]}\n{body}{indent}"""\n'
