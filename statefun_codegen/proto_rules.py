"""Validate the schema for Python: file paths that become modules, names the modules hold.

protoc accepts every schema that reaches here; these are the rules its *Python*
output adds. Each problem is reported at the declaration it is about (a path
problem at the file's package declaration), and the stub repairs each file needs
are returned for the render stage.
"""

from __future__ import annotations

import keyword

from google.protobuf import descriptor_pb2

from .diagnostics import Collector
from .protoc_runner import ProtoInput, module_parts
from .schema import Schema, proto_path_problem
from .stubs import Repairs, analyse

# names the generated package itself uses next to the protobuf modules
_PACKAGE_NAMES = {"types": "the generated types module", "functions": "the functions package"}


def check_protos(schema: Schema, proto_input: ProtoInput, errors: Collector) -> dict[str, Repairs]:
    """Every Python-level problem of the files to generate; the stub repairs of each file."""
    outputs = dict(proto_input.python_outputs)
    keyword_types = _keyword_types(proto_input, schema.generated)
    repairs: dict[str, Repairs] = {}
    modules: dict[str, str] = {}  # lower-cased dotted module -> the proto that makes it
    packages: dict[str, str] = {}  # lower-cased dotted package -> a proto inside it
    aliases: dict[str, str] = {}  # the name our modules import it by -> the proto
    for name in sorted(schema.generated):
        file = schema.file(name)
        where = schema.location(name)
        problem = proto_path_problem(name)
        if problem:
            errors.error(where, problem)
            continue
        parts = module_parts(name)
        dotted = ".".join(parts)
        modules.setdefault(dotted.lower(), name)  # one module each: protoc_runner checked
        alias = "_".join(parts)
        other = aliases.get(alias)
        if other is not None:
            errors.error(
                where,
                f"{name} and {other} would both be imported as {alias} by the generated "
                "modules (the alias joins the path's parts with '_'); rename one",
            )
        aliases.setdefault(alias, name)
        for depth in range(1, len(parts)):
            packages.setdefault(".".join(parts[:depth]).lower(), name)
        if len(parts) > 1 and parts[0] in _PACKAGE_NAMES:
            errors.error(
                where,
                f"the directory '{parts[0]}' of {name} would clash with "
                f"{_PACKAGE_NAMES[parts[0]]} inside the generated package; rename the directory",
            )
        if not (file.message_type or file.enum_type or file.service or file.extension):
            errors.warning(
                where,
                "the file declares no messages, enums or services, so its module is empty",
                "remove the file, or add the definitions it was meant to hold",
            )
        base = "/".join(parts)
        problems, file_repairs = analyse(
            file, outputs.get(base + ".py", ""), outputs.get(base + ".pyi", ""), keyword_types
        )
        for found in problems:
            where_found = schema.location(name, found.path)
            if found.severity == "warning":
                errors.warning(where_found, found.message, found.hint)
            else:
                errors.error(where_found, found.message, found.hint)
        repairs[name] = file_repairs
    for dotted, name in modules.items():
        if dotted in packages:
            errors.error(
                schema.location(name),
                f"the module of {name} has the same name as the package directory of "
                f"{packages[dotted]}; rename one",
            )
    return repairs


def _keyword_types(proto_input: ProtoInput, ours: set[str]) -> frozenset[str]:
    """Full names (leading dot) of other files' messages and enums named with a keyword.

    (Our own files report such a type at its declaration.) The package is not part of
    the Python name (modules come from file paths), so only the names inside it count.
    """
    found: set[str] = set()
    for file in proto_input.files:
        if file.name in ours:
            continue
        prefix = f".{file.package}" if file.package else ""
        pending: list[tuple[str, bool, descriptor_pb2.DescriptorProto]] = [
            (prefix, False, message) for message in file.message_type
        ]
        for enum in file.enum_type:
            if keyword.iskeyword(enum.name):
                found.add(f"{prefix}.{enum.name}")
        while pending:
            parent, inherited, message = pending.pop()
            full = f"{parent}.{message.name}"
            bad = inherited or keyword.iskeyword(message.name)
            if bad:
                found.add(full)
            for enum in message.enum_type:
                if bad or keyword.iskeyword(enum.name):
                    found.add(f"{full}.{enum.name}")
            pending.extend((full, bad, nested) for nested in message.nested_type)
    return frozenset(found)
