"""The core both front ends call: descriptors + manifest text -> the files to write.

load (done by the caller) -> validate -> one model -> render. Nothing here
touches the output directory; ``writer.py`` does that, all or nothing.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from .diagnostics import Collector, Diagnostic, GenerationError, Location
from .manifest import parse_manifest_text
from .model import Model, build_model
from .pb2 import build_pb2_modules, module_path, protoc_python_outputs
from .protoc_runner import ProtoInput
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
from .render_yaml import FORMATS, render_module_yaml
from .schema import Schema


@dataclass(frozen=True, eq=False)
class Options:
    module_format: str = "3.1"
    package: str = "generated"  # the generated subpackage inside the output directory
    module_yaml: str = "module.yaml"  # path of module.yaml inside the output directory
    stubs: bool = True  # create the user's function-body files when they are missing


@dataclass(frozen=True, eq=False)
class OutputFile:
    path: str  # relative to the output directory, "/" separated
    content: str
    user_owned: bool = False  # created once if absent, never overwritten


def check_options(options: Options) -> list[str]:
    problems = []
    if options.module_format not in FORMATS:
        problems.append(
            f"unknown module.yaml format '{options.module_format}' (choose {', '.join(FORMATS)})"
        )
    if not options.package.isidentifier():
        problems.append(f"package '{options.package}' is not a Python identifier")
    if not _safe_relative(options.module_yaml):
        problems.append(
            f"module_yaml '{options.module_yaml}' must be a relative path inside the output"
        )
    return problems


def generate(
    proto_input: ProtoInput, manifest_text: str, manifest_path: str, options: Options
) -> list[OutputFile]:
    errors = Collector()
    manifest, manifest_errors = parse_manifest_text(manifest_text, manifest_path)
    errors.diagnostics.extend(manifest_errors.diagnostics)
    schema = Schema(proto_input)
    model = build_model(schema, manifest, errors) if manifest is not None else None
    errors.raise_if_any()
    assert model is not None
    return render(model, schema, proto_input, options)


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
    raw = dict(proto_input.python_outputs) or protoc_python_outputs(
        proto_input.files, proto_input.to_generate
    )
    pb2 = build_pb2_modules(raw, proto_input.to_generate, schema, proto_headers)
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
            files.append(OutputFile(f"{fn.module}.py", _python(render_body_stub(fn)), True))
    unsafe = [f.path for f in files if not _safe_relative(f.path)]
    if unsafe:
        raise GenerationError(
            [
                Diagnostic(Location(p), "refusing to write outside the output directory")
                for p in unsafe
            ]
        )
    return sorted(files, key=lambda f: f.path)


def _python(text: str) -> str:
    return blacken(text) if needs_black(text) else text


def _safe_relative(path: str) -> bool:
    if not path or path.startswith("/") or "\\" in path or ":" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))
