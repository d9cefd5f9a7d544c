"""The core both front ends call: descriptors + manifest text -> the files to write.

load (done by the caller) -> validate -> one model -> render. Nothing here
touches the output directory; ``writer.py`` does that, all or nothing.
"""

from __future__ import annotations

import keyword
import posixpath
from dataclasses import dataclass

from .diagnostics import Collector, Diagnostic, GenerationError, InternalError, format_all
from .manifest import parse_manifest_text, shown, text_problem
from .model import FORMATS, Model, Target, build_model
from .module_rules import read_module_yaml
from .pb2 import build_pb2_modules
from .proto_rules import check_protos
from .protoc_runner import ProtoInput, module_path
from .render_python import (
    blacken,
    header_comment,
    needs_black,
    render_body_stub,
    render_function,
    render_package_init,
    render_subpackage_init,
    render_types,
)
from .render_yaml import render_module_yaml
from .schema import Schema


@dataclass(frozen=True, eq=False)
class Options:
    module_format: str = "3.1"
    package: str = "generated"  # the generated subpackage inside the output directory
    module_yaml: str = "module.yaml"  # path of module.yaml inside the output directory
    stubs: bool = True  # create the user's function-body files when they are missing
    strict: bool = False  # warnings are errors


@dataclass(frozen=True, eq=False)
class OutputFile:
    path: str  # relative to the output directory, "/" separated
    content: str
    user_owned: bool = False  # created once if absent, never overwritten


@dataclass(frozen=True, eq=False)
class Generated:
    files: list[OutputFile]
    warnings: tuple[Diagnostic, ...]  # legal but probably wrong input: print them, exit 0


def check_options(options: Options) -> list[str]:
    problems = []
    if options.module_format not in FORMATS:
        problems.append(
            f"unknown module.yaml format '{options.module_format}' (choose {', '.join(FORMATS)})"
        )
    package = options.package
    if not (package.isascii() and package.isidentifier()) or keyword.iskeyword(package):
        problems.append(
            f"package '{shown(package)}' is not a Python identifier (ASCII letters, digits "
            "and '_', not starting with a digit, not a keyword)"
        )
    elif package.startswith("__") or package in ("functions", "types"):
        problems.append(f"package '{package}' is a name the generated code uses itself")
    module_yaml = options.module_yaml
    if text_problem(module_yaml) or not _safe_relative(module_yaml):
        problems.append(
            f"module_yaml '{shown(module_yaml)}' must be a relative path inside the output"
        )
    elif not module_yaml.endswith((".yaml", ".yml")):
        problems.append(f"module_yaml '{module_yaml}' must end in .yaml or .yml")
    return problems


def generate(
    proto_input: ProtoInput, manifest_text: str | bytes, manifest_path: str, options: Options
) -> Generated:
    """Validate everything, then render; GenerationError carries every problem (and warning)."""
    errors = Collector()
    errors.extend(proto_input.warnings)
    try:
        manifest, manifest_errors = parse_manifest_text(manifest_text, manifest_path)
        errors.extend(manifest_errors.diagnostics)
    except GenerationError as exc:  # the YAML itself could not be read
        manifest = None
        errors.extend(exc.diagnostics)
    schema = Schema(proto_input)
    errors.extend(schema.warnings)
    repairs = check_protos(schema, proto_input, errors)
    target = Target(options.module_format, options.package, tuple(sorted(repairs.items())))
    model = build_model(schema, manifest, errors, target) if manifest is not None else None
    if options.strict:
        errors.diagnostics = [d.as_error() for d in errors.diagnostics]
    errors.raise_if_errors()
    if model is None:  # every path to None records an error
        raise InternalError("the model was not built, but no error says why")
    files = render(model, schema, proto_input, options)
    _check_own_module_yaml(files, options)
    return Generated(files, tuple(sorted(set(errors.warnings))))


def _check_own_module_yaml(files: list[OutputFile], options: Options) -> None:
    """The runtime must load what we write: read it back with its rules (a bug otherwise)."""
    text = next(f.content for f in files if f.path == options.module_yaml)
    result = read_module_yaml(text, options.module_yaml)
    if result.diagnostics or result.format != options.module_format:
        raise InternalError(
            f"the generated {options.module_yaml} (format {options.module_format}, read as "
            f"'{result.format}') breaks the runtime's rules:\n" + format_all(result.diagnostics)
        )


def render(
    model: Model, schema: Schema, proto_input: ProtoInput, options: Options
) -> list[OutputFile]:
    package = options.package
    header = header_comment(model.sources)
    files: list[OutputFile] = []
    # protoc's layout is not black's, and black needs minutes on large stubs: users'
    # black/ruff runs over the repository skip these modules instead of failing on them
    proto_headers = {
        name: header_comment([name]) + "\n# fmt: off\n" for name in proto_input.to_generate
    }
    raw = dict(proto_input.python_outputs)
    repairs = {proto.name: proto.repairs for proto in model.protos}
    pb2 = build_pb2_modules(raw, proto_input.to_generate, schema, proto_headers, repairs)
    for path, text in pb2.items():
        files.append(OutputFile(f"{package}/{path}", text))
    directories = sorted(
        {posixpath.dirname(module_path(name)) for name in proto_input.to_generate} - {""}
    )
    packages: set[str] = set()
    for directory in directories:
        parts = directory.split("/")
        for depth in range(1, len(parts) + 1):
            packages.add("/".join(parts[:depth]))
    for directory in sorted(packages):
        files.append(
            OutputFile(
                f"{package}/{directory}/__init__.py",
                render_subpackage_init(
                    header, f"Protobuf modules of {directory.replace('/', '.')}."
                ),
            )
        )
    files.append(OutputFile(f"{package}/types.py", _python(render_types(model, header))))
    files.append(
        OutputFile(
            f"{package}/functions/__init__.py",
            render_subpackage_init(header, "One module of typed bindings per function."),
        )
    )
    for fn in model.functions:
        files.append(
            OutputFile(
                f"{package}/functions/{fn.module}.py", _python(render_function(model, fn, header))
            )
        )
    files.append(OutputFile(f"{package}/__init__.py", _python(render_package_init(model, header))))
    files.append(
        OutputFile(
            options.module_yaml,
            render_module_yaml(model, options.module_format, header_comment(model.sources)),
        )
    )
    if options.stubs:
        files.append(
            OutputFile(
                "__init__.py",
                '"""StateFun functions (created once by statefun-codegen)."""\n',
                True,
            )
        )
        for fn in model.functions:
            files.append(
                OutputFile(f"{fn.module}.py", _python(render_body_stub(fn, package)), True)
            )
    unsafe = [f.path for f in files if not _safe_relative(f.path)]
    if unsafe:  # every name was validated before it became a path
        raise InternalError(f"refusing to write outside the output directory: {unsafe}")
    seen: dict[str, str] = {}
    for file in files:
        other = seen.get(file.path.lower())
        if other is not None:
            raise InternalError(f"two generated files share a path: {other} and {file.path}")
        seen[file.path.lower()] = file.path
    return sorted(files, key=lambda f: f.path)


def _python(text: str) -> str:
    return blacken(text) if needs_black(text) else text


def _safe_relative(path: str) -> bool:
    if not path or path.startswith("/") or "\\" in path or ":" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))
